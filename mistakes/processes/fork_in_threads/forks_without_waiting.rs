//! Mistake: the parent starts the holder thread and forks at once, without waiting to hear that
//! the holder has the lock, so whether the child's copy of the lock is held is up to the
//! scheduler.
use std::fs::{self, File};
use std::io::{self, Read, Write};
use std::os::fd::OwnedFd;
use std::panic::{self, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, TryLockError, mpsc};
use std::thread;

use nix::sys::wait::{WaitStatus, waitpid};
use nix::unistd::{ForkResult, Pid, fork, pipe};

/// What the child of [`fork_in_threads`] found, and how it ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ChildView {
    /// The pid fork returned to the parent.
    pub child: Pid,
    /// How many entries the child counted in its `/proc/self/task`, after the fork.
    pub threads_in_child: usize,
    /// True when `try_lock` on the lock failed in the child with `WouldBlock`.
    pub lock_held_in_child: bool,
    /// What `waitpid` on the child returned.
    pub status: WaitStatus,
}

/// Parks until `stop` is set (park may wake spuriously, so check again each time).
fn park_until(stop: &AtomicBool) {
    while !stop.load(Ordering::Acquire) {
        thread::park();
    }
}

/// Forks while `workers` threads run and one of them holds `lock`; see the exercise for the
/// contract.
pub fn fork_in_threads(
    workers: usize,
    lock: &Mutex<()>,
    after_fork: impl FnOnce(Pid),
) -> io::Result<ChildView> {
    if workers == 0 {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "at least one worker holds the lock",
        ));
    }
    let report = pipe()?;
    let release = pipe()?;
    let stop = AtomicBool::new(false);
    let stop = &stop;
    let outcome = thread::scope(|s| {
        let (held_tx, _held_rx) = mpsc::channel::<()>();
        let mut handles = vec![s.spawn(move || {
            let _guard = lock.lock().unwrap_or_else(|e| e.into_inner());
            let _ = held_tx.send(());
            park_until(stop);
        })];
        for _ in 1..workers {
            handles.push(s.spawn(move || park_until(stop)));
        }
        // Fork only once the lock is really held by another thread. A panic on the way (from
        // after_fork, say) is caught and kept: the threads must be stopped and joined first.
        // The mistake: no wait for the holder's word before the fork.
        let outcome = panic::catch_unwind(AssertUnwindSafe(|| {
            fork_and_watch(lock, after_fork, report, release)
        }));
        // Whatever happened, stop every thread and join it: the holder drops the guard.
        stop.store(true, Ordering::Release);
        for h in &handles {
            h.thread().unpark();
        }
        for h in handles {
            let _ = h.join();
        }
        outcome
    });
    // Only now, with every thread joined, may a panic from after_fork go on: raised inside the
    // scope, it would leave the workers parked, and the scope waits for them forever.
    outcome.unwrap_or_else(|p| panic::resume_unwind(p))
}

type PipeEnds = (OwnedFd, OwnedFd);

/// Forks; the child reports and waits, the parent watches, reads the report, lets it go and
/// reaps it.
fn fork_and_watch(
    lock: &Mutex<()>,
    after_fork: impl FnOnce(Pid),
    (report_read, report_write): PipeEnds,
    (release_read, release_write): PipeEnds,
) -> io::Result<ChildView> {
    // SAFETY: the child runs only code that needs no other thread: it reads /proc, tries the
    // lock without blocking, writes a pipe and leaves with _exit.
    match unsafe { fork() }? {
        ForkResult::Child => {
            drop((report_read, release_write));
            let code = child_side(lock, report_write, release_read);
            // SAFETY: _exit ends the child without running the parent's copied destructors.
            unsafe { libc::_exit(code) }
        }
        ForkResult::Parent { child } => {
            drop((report_write, release_read));
            let looked = panic::catch_unwind(AssertUnwindSafe(|| after_fork(child)));
            let mut message = [0u8; 9];
            let got = File::from(report_read).read_exact(&mut message);
            // End of file on the release pipe lets the child exit; then collect it.
            drop(release_write);
            let status = waitpid(child, None)?;
            if let Err(p) = looked {
                panic::resume_unwind(p);
            }
            got?;
            let count = u64::from_ne_bytes(message[..8].try_into().expect("8 bytes"));
            Ok(ChildView {
                child,
                threads_in_child: count as usize,
                lock_held_in_child: message[8] == 1,
                status,
            })
        }
    }
}

/// The child: count own threads, try the lock, report, wait for end of file. Returns the exit
/// code.
fn child_side(lock: &Mutex<()>, report: OwnedFd, release: OwnedFd) -> i32 {
    // Only the thread that called fork exists here; the others were not copied.
    // read_dir allocates, and malloc is not async-signal-safe: another thread may have held an
    // allocator lock at the fork. It is safe here because glibc's fork takes malloc's locks
    // before forking and resets them in the child; with another libc or allocator, count the
    // entries with raw open(2) and getdents64(2) into a buffer on the stack instead.
    let threads = fs::read_dir("/proc/self/task").map_or(0, |d| d.count());
    // The holder's lock came along in the copied memory, locked, with no owner to unlock it:
    // lock() would wait forever, try_lock() tells.
    let held = matches!(lock.try_lock(), Err(TryLockError::WouldBlock));
    let mut message = [0u8; 9];
    message[..8].copy_from_slice(&(threads as u64).to_ne_bytes());
    message[8] = u8::from(held);
    if File::from(report).write_all(&message).is_err() {
        return 1;
    }
    let _ = File::from(release).read(&mut [0u8; 1]);
    0
}
