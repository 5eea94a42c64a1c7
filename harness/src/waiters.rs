//! Telling, from `/proc`, which of the test's own threads sleep in the kernel and where.
//!
//! A thread blocked in `Mutex::lock` or `Condvar::wait` sleeps in futex(2): its
//! `/proc/self/task/<tid>/stat` shows state `S` and its `syscall` file the futex call with the
//! address as the first argument. A synchronization test uses this to wait until its threads
//! are really asleep in a lock (rather than sleeping for a while and hoping), and to say, when
//! they stay asleep for good, which thread waits on which address.
use nix::unistd::getpid;

use crate::procfs;

/// A thread of this process, as seen in `/proc/self/task/<tid>`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Seen {
    /// Asleep (state `S`) in futex(2) on this address.
    Futex(u64),
    /// Asleep in another system call (its number).
    Syscall(i64),
    /// Running or runnable, or in user space.
    Running,
    /// The thread has exited.
    Gone,
}

/// What thread `tid` of this process is doing right now.
pub fn seen(tid: i32) -> Seen {
    let me = getpid();
    let Ok(stat) = procfs::task_stat(me, tid) else {
        return Seen::Gone;
    };
    if matches!(stat.state, 'Z' | 'X') {
        return Seen::Gone;
    }
    if stat.state != 'S' {
        return Seen::Running;
    }
    match procfs::thread_syscall(me, tid) {
        Some(call) if call.nr == libc::SYS_futex => Seen::Futex(call.args[0]),
        Some(call) => Seen::Syscall(call.nr),
        None => Seen::Running,
    }
}

/// Whether thread `tid` of this process sleeps in futex(2) right now (in a lock or a wait).
pub fn asleep_in_futex(tid: i32) -> bool {
    matches!(seen(tid), Seen::Futex(_))
}

/// One line per thread: `name (tid N): asleep in futex wait on 0x...` or what else it does.
pub fn describe(threads: &[(String, i32)]) -> String {
    threads
        .iter()
        .map(|(name, tid)| {
            let what = match seen(*tid) {
                Seen::Futex(addr) => format!("asleep in a futex wait on {addr:#x}"),
                Seen::Syscall(nr) => format!("asleep in system call {nr}"),
                Seen::Running => "running".to_owned(),
                Seen::Gone => "finished".to_owned(),
            };
            format!("  {name} (tid {tid}): {what}")
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// How a crew of threads run by [`supervise`] ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Every thread returned.
    Done,
    /// A thread panicked (the first one seen): its name and its panic message.
    Panicked { name: String, message: String },
    /// Every thread not yet finished slept in futex(2) while the progress counter stood still
    /// for the whole quiet time: a deadlock or a lost wake-up. One line per thread.
    Stuck { threads: String },
}

/// A thread for [`supervise`]: its name and what it runs.
pub type Worker = (String, Box<dyn FnOnce() + Send + 'static>);

/// Runs `workers`, each on a thread of its own, until all return, one panics, or all that are
/// left sleep in futex(2) while `progress` (which the workers bump as they go) does not move
/// for `quiet` (scaled). Never hangs on stuck threads: it leaves them (the isolated body's end
/// takes them down) and says where each sleeps.
///
/// Stuck is decided on the kernel's word, not on a timer alone: a thread merely slow or
/// starved of CPU is runnable, not asleep in a futex, and keeps the crew from being called
/// stuck.
pub fn supervise(
    workers: Vec<Worker>,
    progress: &std::sync::atomic::AtomicU64,
    quiet: std::time::Duration,
) -> Outcome {
    use std::sync::atomic::Ordering;
    use std::sync::{Arc, Mutex, mpsc};
    use std::time::Instant;

    let quiet = crate::scaled(quiet);
    let panics: Arc<Mutex<Vec<(String, String)>>> = Arc::default();
    let (tids_tx, tids_rx) = mpsc::channel();
    let mut handles = Vec::new();
    for (name, work) in workers {
        let (tids_tx, panics) = (tids_tx.clone(), Arc::clone(&panics));
        let thread_name = name.clone();
        let handle = std::thread::Builder::new()
            .name(thread_name)
            .spawn(move || {
                let _ = tids_tx.send(nix::unistd::gettid().as_raw());
                drop(tids_tx);
                if let Err(payload) = std::panic::catch_unwind(std::panic::AssertUnwindSafe(work)) {
                    let message = payload
                        .downcast_ref::<&str>()
                        .map(|s| s.to_string())
                        .or_else(|| payload.downcast_ref::<String>().cloned())
                        .unwrap_or_else(|| "(a panic without a message)".to_owned());
                    panics.lock().unwrap().push((name, message));
                }
            })
            .expect("cannot start a thread");
        handles.push(handle);
    }
    drop(tids_tx);
    let tids: Vec<i32> = tids_rx.iter().collect();
    let names: Vec<String> = handles
        .iter()
        .map(|h| h.thread().name().unwrap_or("?").to_owned())
        .collect();
    let mut last = (progress.load(Ordering::SeqCst), Instant::now());
    loop {
        if let Some((name, message)) = panics.lock().unwrap().first().cloned() {
            return Outcome::Panicked { name, message };
        }
        if handles.iter().all(|h| h.is_finished()) {
            for h in handles {
                let _ = h.join();
            }
            return Outcome::Done;
        }
        let now = progress.load(Ordering::SeqCst);
        let left: Vec<(String, i32)> = handles
            .iter()
            .zip(&names)
            .zip(&tids)
            .filter(|((h, _), _)| !h.is_finished())
            .map(|((_, n), t)| (n.clone(), *t))
            .collect();
        let all_asleep = left.iter().all(|(_, tid)| asleep_in_futex(*tid));
        if now != last.0 || !all_asleep {
            last = (now, Instant::now());
        } else if last.1.elapsed() >= quiet {
            return Outcome::Stuck {
                threads: describe(&left),
            };
        }
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
}
