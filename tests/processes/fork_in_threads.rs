//! processes/fork_in_threads: the child of a threaded process has exactly one thread
//! (`/proc/<child>/task`), its copy of a lock another thread held is locked for good (read
//! from `/proc/<child>/mem`), and the parent releases the lock and joins its threads. A child
//! that waits on the lock or on a thread is caught stuck in a futex and named.

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
use std::sync::Mutex;
use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, kill};
use nix::sys::wait::WaitStatus;
use nix::unistd::{Pid, getpid};
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
    let unlocked = lock_bytes(getpid(), lock).expect("the test reads its own memory");
    // Scaled here, not in `watch`, which must not panic (on a bad OSKATA_DEADLINE_SCALE).
    let patience = scaled(PATIENCE);
    let mut watched = None;
    let result = student(|| {
        fork_in_threads(workers, lock, |child| {
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
