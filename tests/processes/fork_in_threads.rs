//! processes/fork_in_threads: the child of a threaded process has exactly one thread
//! (`/proc/<child>/task`), its copy of a lock another thread held is locked for good (read
//! from `/proc/<child>/mem`), and the parent releases the lock and joins its threads. A child
//! that waits on the lock or on a thread is caught stuck in a futex and named.
//!
//! The contract, clause by clause, and the test that checks each:
//! - `workers` threads run at the fork, and the child has exactly one
//!   (`/proc/<child>/task`) and reports it (`the_child_has_only_the_forking_thread`);
//! - the first worker holds the lock at the fork: the child's copy is locked (read from
//!   `/proc/<child>/mem`) and reported so (`the_lock_stays_held_in_the_child`); the parent forks
//!   only once the holder has said it has the lock, which the test makes certain by taking the
//!   lock first and handing it over only when `/proc` shows the worker waiting for it
//!   (`forks_only_once_the_holder_has_the_lock`);
//! - the child never calls `lock` nor waits for a thread, and waits on its pipe until let go
//!   (every test, through `watch`);
//! - the parent reaps the child (exit 0), frees the lock and joins every thread before it
//!   returns (`the_parent_releases_the_lock_and_joins_its_threads`);
//! - the caller is left as it was: a child it had before (an unreaped zombie) not collected,
//!   its fd table unchanged (`the_caller_is_left_as_it_was`).

// The exercise under test: your stub (by default), the reference solution (`--features
// solutions`), or a shipped mistake that `cargo grade --mistakes` copies into target/.
#[cfg(not(any(feature = "solutions", feature = "mistake")))]
#[path = "../../exercises/processes/fork_in_threads.rs"]
#[allow(dead_code)] // a stub does not use all of its API yet
mod fork_in_threads;
#[cfg(all(feature = "solutions", not(feature = "mistake")))]
#[path = "../../solutions/processes/fork_in_threads.rs"]
mod fork_in_threads;
#[cfg(feature = "mistake")]
#[path = "../../target/oskata-mistake/processes/fork_in_threads.rs"]
#[rustfmt::skip] // the copy exists only while the proof runs
mod fork_in_threads;
use fork_in_threads::*;

use std::fs::File;
use std::io;
use std::os::unix::fs::FileExt;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, mpsc};
use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, kill};
use nix::sys::wait::{WaitPidFlag, WaitStatus, waitpid};
use nix::unistd::{ForkResult, Pid, fork, getpid, gettid};
use oskata_harness::{body_pid, isolated, poll, procfs, scaled, student};
use rstest::rstest;

/// How long the child may take to reach its wait on the pipe (before `scaled`).
const PATIENCE: Duration = Duration::from_secs(5);

/// What the test saw once the child was waiting on its pipe.
#[derive(Debug)]
struct Look {
    caller: Pid,
    child_tasks: Vec<i32>,
    parent_tasks: Vec<i32>,
    lock_free_in_parent: bool,
    /// The bytes of the child's copy of the lock.
    child_lock: io::Result<Vec<u8>>,
}

/// How the watch in `after_fork` ended.
enum Watch {
    Waiting(Look),
    /// The child could not go on (it was killed so the parent can finish): why.
    Stuck(String),
}

/// The bytes of `lock` in the memory of `pid`, read through `/proc/<pid>/mem`.
fn lock_bytes(pid: Pid, lock: &Mutex<()>) -> io::Result<Vec<u8>> {
    let mut bytes = vec![0u8; size_of::<Mutex<()>>()];
    File::open(format!("/proc/{pid}/mem"))?.read_exact_at(&mut bytes, lock_addr(lock))?;
    Ok(bytes)
}

fn lock_addr(lock: &Mutex<()>) -> u64 {
    lock as *const Mutex<()> as u64
}

/// The futex address `pid` is blocked on, if it sits in futex(2) right now.
fn futex_wait_addr(pid: Pid) -> Option<u64> {
    let call = procfs::syscall(pid)?;
    (call.nr == libc::SYS_futex).then_some(call.args[0])
}

/// Runs in `after_fork`: waits until the child waits on its pipe (then looks at it), or is
/// stuck in a futex wait, which in a single-threaded process nothing can ever end (then says
/// why and kills it, so the student's parent side can finish), giving up after `patience`.
/// Never panics: it runs inside the student's code, which still has threads to stop.
fn watch(child: Pid, lock: &Mutex<()>, patience: Duration) -> Watch {
    let start = Instant::now();
    loop {
        let state = procfs::state(child);
        if matches!(state, None | Some('Z')) {
            return Watch::Stuck(format!(
                "the child (pid {child}) ended before the parent let it go: after sending its report it should wait \
                 (reading its pipe) until the parent closes the other end"
            ));
        }
        if procfs::blocked_read_fd(child).is_some() {
            let me = getpid();
            return Watch::Waiting(Look {
                caller: me,
                child_tasks: procfs::threads(child).unwrap_or_default(),
                parent_tasks: procfs::threads(me).unwrap_or_default(),
                lock_free_in_parent: lock.try_lock().is_ok(),
                child_lock: lock_bytes(child, lock),
            });
        }
        if let Some(addr) = futex_wait_addr(child).filter(|_| state == Some('S')) {
            let _ = kill(child, Signal::SIGKILL);
            let at = lock_addr(lock);
            let on_the_lock = (at..at + size_of::<Mutex<()>>() as u64).contains(&addr);
            return Watch::Stuck(if on_the_lock {
                format!(
                    "the child (pid {child}) is stuck for good in a futex wait on the lock (at {addr:#x}): the thread \
                     that held the lock when fork was called was not copied into the child, so nobody in the child \
                     can ever unlock it. In the child call try_lock, never lock. (The test killed the child.)"
                )
            } else {
                format!(
                    "the child (pid {child}) is stuck for good in a futex wait at {addr:#x}, which is not the lock: it \
                     waits for something only another thread could do, such as a thread to finish (join). The child \
                     has only the thread that called fork, so it waits for a thread that does not exist in the child. \
                     (The test killed the child.)"
                )
            });
        }
        if start.elapsed() > patience {
            let _ = kill(child, Signal::SIGKILL);
            return Watch::Stuck(format!(
                "the child (pid {child}) neither waited on its pipe nor got stuck in a futex within {patience:?}; it \
                 was in state {state:?} (the test killed it)"
            ));
        }
        std::thread::sleep(Duration::from_millis(2));
    }
}

/// The child's view, what the test saw, and the lock's bytes before the call (unlocked).
struct Run {
    view: ChildView,
    look: Look,
    unlocked: Vec<u8>,
}

fn run(workers: usize, lock: &Mutex<()>) -> Run {
    run_with(workers, lock, |_| {})
}

/// [`run`], with `first(child)` called in `after_fork` before the watch (it must not panic).
fn run_with(workers: usize, lock: &Mutex<()>, first: impl FnOnce(Pid)) -> Run {
    let unlocked = lock_bytes(getpid(), lock).expect("the test reads its own memory");
    // Scaled here, not in `watch`, which must not panic (on a bad OSKATA_DEADLINE_SCALE).
    let patience = scaled(PATIENCE);
    let mut watched = None;
    let result = student(|| {
        fork_in_threads(workers, lock, |child| {
            first(child);
            watched = Some(watch(child, lock, patience))
        })
    });
    let look = match watched {
        Some(Watch::Stuck(why)) => panic!("{why}"),
        Some(Watch::Waiting(look)) => Some(look),
        None => None,
    };
    let view = result.unwrap_or_else(|e| panic!("fork_in_threads({workers}, ..) failed: {e}"));
    let look = look.unwrap_or_else(|| panic!("fork_in_threads never called after_fork(child)"));
    let me = body_pid().expect("inside isolated()");
    assert_eq!(
        look.caller, me,
        "after_fork ran in pid {}, not in the parent {me}: only the parent calls it",
        look.caller
    );
    Run {
        view,
        look,
        unlocked,
    }
}

#[rstest]
#[case(1)]
#[case(3)]
#[case(8)]
fn the_child_has_only_the_forking_thread(#[case] workers: usize) {
    isolated(|| {
        let lock = Mutex::new(());
        let Run { view, look, .. } = run(workers, &lock);
        let me = body_pid().expect("inside isolated()");
        let child = view.child;
        assert_eq!(
            look.parent_tasks.len(),
            workers + 1,
            "right after fork the parent should have its own thread and {workers} workers, {} in all; \
             /proc/{me}/task lists {:?}: start the workers before fork and keep them until the child is reaped",
            workers + 1,
            look.parent_tasks
        );
        assert_eq!(
            look.child_tasks,
            vec![child.as_raw()],
            "/proc/{child}/task should list exactly one thread, the child itself"
        );
        assert_eq!(
            view.threads_in_child,
            1,
            "the child reported {} threads, but /proc/{child}/task lists only 1 while the parent has {}: fork copies \
             only the calling thread. Count /proc/self/task in the child, after fork.",
            view.threads_in_child,
            look.parent_tasks.len()
        );
    });
}

#[test]
fn the_lock_stays_held_in_the_child() {
    isolated(|| {
        let lock = Mutex::new(());
        let Run {
            view,
            look,
            unlocked,
        } = run(2, &lock);
        let child = view.child;
        assert!(
            !look.lock_free_in_parent,
            "right after fork the lock was free in the parent: the first worker should take it, and the parent fork \
             only once that worker has said it holds it"
        );
        let copy = look
            .child_lock
            .as_ref()
            .unwrap_or_else(|e| panic!("cannot read the lock in /proc/{child}/mem: {e}"));
        assert_ne!(
            copy, &unlocked,
            "the child's copy of the lock (read from /proc/{child}/mem) is unlocked: at the moment of fork no thread \
             held it. Fork only after the holder has said it has the lock."
        );
        assert!(
            view.lock_held_in_child,
            "the child's copy of the lock is locked (read from /proc/{child}/mem), yet the child reported \
             lock_held_in_child = false: report whether try_lock failed with WouldBlock in the child"
        );
    });
}

#[test]
fn the_parent_releases_the_lock_and_joins_its_threads() {
    isolated(|| {
        let lock = Mutex::new(());
        let Run { view, .. } = run(4, &lock);
        let me = body_pid().expect("inside isolated()");
        let child = view.child;
        assert_eq!(
            view.status,
            WaitStatus::Exited(child, 0),
            "waitpid should report that pid {child} exited with code 0"
        );
        assert!(
            procfs::state(child).is_none(),
            "pid {child} is still in /proc after fork_in_threads returned: nobody called waitpid on it"
        );
        assert!(
            lock.try_lock().is_ok(),
            "the lock is still held after fork_in_threads returned: stop the holder thread so it drops its guard, \
             and join it, before returning"
        );
        poll::until_seen(
            Duration::from_secs(2),
            "the test process to be back to one thread: join every thread fork_in_threads started before returning",
            || procfs::threads(me).unwrap_or_default(),
            |tids| tids == &vec![me.as_raw()],
        );
    });
}

/// Set by the test's own thread just before it lets go of the lock it took first (see
/// [`forks_only_once_the_holder_has_the_lock`]). The child's copy of it, read from
/// `/proc/<child>/mem`, tells what it was at the moment of fork.
static HANDED_OVER: AtomicBool = AtomicBool::new(false);
/// Set in `after_fork`: the fork has happened, so the test's thread may let go.
static FORKED: AtomicBool = AtomicBool::new(false);

/// Whether some thread of the test process other than `not` is asleep in futex(2) on `lock`.
fn someone_waits_on(lock: &Mutex<()>, not: &[i32]) -> bool {
    let me = getpid();
    let at = lock_addr(lock);
    procfs::threads(me)
        .unwrap_or_default()
        .into_iter()
        .filter(|tid| !not.contains(tid))
        .any(|tid| {
            procfs::thread_syscall(me, tid).is_some_and(|c| {
                c.nr == libc::SYS_futex
                    && (at..at + size_of::<Mutex<()>>() as u64).contains(&c.args[0])
            })
        })
}

/// Whether the test's main thread (the one in fork_in_threads) is asleep, in a system call,
/// rather than running.
fn main_thread_sleeps() -> bool {
    let me = getpid();
    procfs::task_stat(me, me.as_raw()).is_ok_and(|s| s.state == 'S')
        && procfs::syscall(me).is_some()
}

/// The test takes the lock first, on a thread of its own, so that the worker meant to hold it
/// has to wait for it, and hands it over only once `/proc` shows that worker asleep on the
/// lock and the calling thread asleep too (waiting to hear that the worker has it), or after
/// [`HANDOVER_GRACE`] of the worker waiting. A fork made before the handover copies memory
/// in which the test's flag [`HANDED_OVER`] is still false, whichever thread runs first: the
/// child's copy of the flag is the kernel's record of the moment of fork. (A caller that
/// forks without waiting escapes only by stalling for the whole grace between starting the
/// holder and forking.) Measured on this kit's 2-core machine under load: the shipped
/// `forks_without_waiting` was caught by this test in 100 of 100 runs (and by
/// `the_lock_stays_held_in_the_child`, which relies on the scheduler, in 98 of 100).
#[test]
fn forks_only_once_the_holder_has_the_lock() {
    isolated(|| {
        let lock = Mutex::new(());
        let (held_tx, held_rx) = mpsc::channel();
        let patience = scaled(PATIENCE);
        let grace = scaled(HANDOVER_GRACE);
        let mut gate_in_child: Option<io::Result<bool>> = None;
        let run = std::thread::scope(|s| {
            let lock = &lock;
            let first = s.spawn(move || {
                let guard = lock.lock().unwrap_or_else(|e| e.into_inner());
                let _ = held_tx.send(gettid().as_raw());
                let me = gettid().as_raw();
                let start = Instant::now();
                let mut waited_since: Option<Instant> = None;
                let mut sleeping_looks = 0;
                while !FORKED.load(Ordering::SeqCst) && start.elapsed() < patience {
                    if someone_waits_on(lock, &[me, getpid().as_raw()]) {
                        let since = *waited_since.get_or_insert_with(Instant::now);
                        sleeping_looks = if main_thread_sleeps() {
                            sleeping_looks + 1
                        } else {
                            0
                        };
                        if sleeping_looks >= 3 || since.elapsed() > grace {
                            break;
                        }
                    } else {
                        waited_since = None;
                        sleeping_looks = 0;
                    }
                    std::thread::sleep(Duration::from_millis(1));
                }
                HANDED_OVER.store(true, Ordering::SeqCst);
                drop(guard);
            });
            let _ = held_rx.recv();
            // A panic on the way (a stub, say) must not leave the test's thread holding on.
            let run = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                run_with(2, lock, |child| {
                    let mut byte = [0u8; 1];
                    gate_in_child = Some(
                        File::open(format!("/proc/{child}/mem"))
                            .and_then(|f| f.read_exact_at(&mut byte, HANDED_OVER.as_ptr() as u64))
                            .map(|()| byte[0] != 0),
                    );
                    FORKED.store(true, Ordering::SeqCst);
                })
            }));
            FORKED.store(true, Ordering::SeqCst);
            let _ = first.join();
            run.unwrap_or_else(|p| std::panic::resume_unwind(p))
        });
        let child = run.view.child;
        match gate_in_child {
            Some(Ok(true)) => {}
            Some(Ok(false)) => panic!(
                "the parent forked before the worker had the lock: the child's copy of memory (read from \
                 /proc/{child}/mem) shows the moment of fork, and at that moment the lock was not yet the \
                 worker's (the test's own thread still held it, and the worker was still waiting to take it). \
                 Starting the holder is not enough: fork only after the holder has told you it holds the lock (a \
                 channel, say), or the child's copy of the lock is held or free by luck."
            ),
            Some(Err(e)) => {
                panic!("cannot read the child's copy of memory in /proc/{child}/mem: {e}")
            }
            None => panic!("fork_in_threads never called after_fork(child)"),
        }
        assert!(
            run.view.lock_held_in_child,
            "the lock was held at the moment of fork, yet the child reported lock_held_in_child = false: report \
             whether try_lock failed with WouldBlock in the child"
        );
    });
}

/// How long the test's thread holds the lock once the worker waits for it, when the calling
/// thread is not seen asleep meanwhile (before `scaled`).
const HANDOVER_GRACE: Duration = Duration::from_millis(500);

/// The caller as it was: a child it had before the call (an unreaped zombie) is not collected,
/// and its fd table is the same after the call.
#[test]
fn the_caller_is_left_as_it_was() {
    isolated(|| {
        let me = body_pid().expect("inside isolated()");
        // SAFETY: the test process is single-threaded; the child only calls _exit.
        let bystander = match unsafe { fork() }.expect("fork") {
            // SAFETY: _exit ends the child at once.
            ForkResult::Child => unsafe { libc::_exit(42) },
            ForkResult::Parent { child } => child,
        };
        poll::until(
            Duration::from_secs(5),
            &format!("pid {bystander} to exit"),
            || (procfs::state(bystander) == Some('Z')).then_some(()),
        );
        let fds_before = procfs::fds(me).expect("read the test's fd table");
        let lock = Mutex::new(());
        let Run { view, .. } = run(2, &lock);
        if procfs::state(bystander) != Some('Z') {
            panic!(
                "pid {bystander}, a child the caller had started before it called fork_in_threads (it had exited, \
                 its status not yet collected), was reaped by fork_in_threads: the caller's own children are not \
                 yours to collect. Wait for the child you forked, waitpid(child, ..), not for any child (wait(), \
                 waitpid(-1, ..)); fork_in_threads's wait returned {:?}",
                view.status
            );
        }
        assert_eq!(
            waitpid(bystander, Some(WaitPidFlag::WNOHANG)),
            Ok(WaitStatus::Exited(bystander, 42)),
            "the caller's own child {bystander} should still have its status for the caller to collect"
        );
        let fds_after = procfs::fds(me).expect("read the test's fd table");
        let opened: Vec<String> = fds_after
            .iter()
            .filter(|f| !fds_before.contains(f))
            .map(|f| format!("fd {} -> {}", f.fd, f.target))
            .collect();
        assert!(
            opened.is_empty() && fds_after.len() == fds_before.len(),
            "fork_in_threads left the caller's fd table changed (/proc/{me}/fd): {} still open. Close every end \
             of both pipes once the child has been waited for",
            opened.join(", ")
        );
    });
}
