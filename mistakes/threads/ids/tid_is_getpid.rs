//! # Thread ids — classic mistake: the thread id reported is getpid(), the process id
//!
//! (The reference solution's notes follow.)
//!
//!
//! Scoped workers ask the kernel their own ids after `on_thread(i)`, send them on a channel
//! and park until a stop flag is set. The caller waits for all `n` reports, calls
//! `while_running`, then stops and joins the workers, whatever `while_running` did.
use std::panic::{self, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::thread;

use nix::unistd::{Pid, getpid, gettid};

/// One thread's ids, as the kernel gave them to that thread.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ids {
    /// What `getpid()` returned on the thread: the process (thread group) id.
    pub pid: Pid,
    /// What `gettid()` returned on the thread: its own kernel task id.
    pub tid: Pid,
}

/// The ids of the calling thread and of every worker of [`thread_ids`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AllIds {
    /// The calling thread's own ids, asked on the calling thread.
    pub caller: Ids,
    /// Worker `i`'s ids at index `i`, asked on worker `i` itself.
    pub workers: Vec<Ids>,
}

/// The ids of the thread that calls it: both questions go to the kernel from here.
fn own_ids() -> Ids {
    Ids {
        pid: getpid(),
        // The mistake: getpid() is the process's id, the same on every thread.
        tid: getpid(),
    }
}

/// Starts `n` threads and collects the ids each one gets from the kernel; see the exercise
/// for the contract.
pub fn thread_ids(
    n: usize,
    on_thread: impl Fn(usize) + Sync,
    while_running: impl FnOnce(&AllIds),
) -> AllIds {
    let caller = own_ids();
    let stop = AtomicBool::new(false);
    let (stop, on_thread) = (&stop, &on_thread);
    thread::scope(|s| {
        let (tx, rx) = mpsc::channel();
        let handles: Vec<_> = (0..n)
            .map(|i| {
                let tx = tx.clone();
                s.spawn(move || {
                    on_thread(i);
                    // Asked here, on the worker: gettid answers for the thread that calls it.
                    let _ = tx.send((i, own_ids()));
                    drop(tx);
                    while !stop.load(Ordering::Acquire) {
                        thread::park();
                    }
                })
            })
            .collect();
        drop(tx);
        let mut workers: Vec<Option<Ids>> = vec![None; n];
        for (i, ids) in rx.iter().take(n) {
            workers[i] = Some(ids);
        }
        // A worker that died before reporting leaves a hole; its panic comes out of the scope.
        let all = workers
            .into_iter()
            .collect::<Option<Vec<Ids>>>()
            .map(|workers| AllIds { caller, workers });
        let looked = all
            .as_ref()
            .map(|all| panic::catch_unwind(AssertUnwindSafe(|| while_running(all))));
        stop.store(true, Ordering::Release);
        for h in &handles {
            h.thread().unpark();
        }
        for h in handles {
            let _ = h.join();
        }
        match (all, looked) {
            (Some(all), Some(Ok(()))) => all,
            (_, Some(Err(p))) => panic::resume_unwind(p),
            _ => panic!("a worker ended before it reported its ids"),
        }
    })
}
