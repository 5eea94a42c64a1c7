//! # Shared and private — classic mistake: the workers report a variable of the caller's frame as "their" local
//!
//! (The reference solution's notes follow.)
//!
//!
//! Workers that must stay alive park until a stop flag is set; every change of
//! `change_on_a_thread` is made on the one scoped thread; the counter is a `thread_local!`;
//! errno is read with `Errno::last()` on the thread that made the call, with nothing in
//! between; the mask is changed with `pthread_sigmask` on the worker only.
use std::cell::Cell;
use std::io;
use std::os::fd::OwnedFd;
use std::panic::{self, AssertUnwindSafe};
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc;
use std::thread;

use nix::errno::Errno;
use nix::fcntl::{OFlag, open};
use nix::sys::signal::{
    SaFlags, SigAction, SigHandler, SigSet, SigmaskHow, Signal, pthread_sigmask, sigaction,
};
use nix::sys::stat::Mode;
use nix::unistd::{Pid, chdir, gettid};

/// Where one thread's local variable lives.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StackSpot {
    /// The thread's tid (gettid(2), asked on it).
    pub tid: Pid,
    /// The address of a local variable of that thread's own function.
    pub addr: usize,
}

/// Parks until `stop` is set (park may wake spuriously, so check again each time).
fn park_until(stop: &AtomicBool) {
    while !stop.load(Ordering::Acquire) {
        thread::park();
    }
}

/// Starts `n` threads that report where a local of theirs lives; see the exercise.
pub fn stack_spots(n: usize, while_running: impl FnOnce(&[StackSpot])) -> Vec<StackSpot> {
    let stop = AtomicBool::new(false);
    let stop = &stop;
    // The mistake: a local of the caller's frame, on the caller's stack, shared by reference.
    let local = [0u8; 8];
    let local = &local;
    thread::scope(|s| {
        let (tx, rx) = mpsc::channel();
        let handles: Vec<_> = (0..n)
            .map(|i| {
                let tx = tx.clone();
                s.spawn(move || {
                    let _ = i;
                    let addr = std::hint::black_box(local) as *const [u8; 8] as usize;
                    let _ = tx.send((
                        i,
                        StackSpot {
                            tid: gettid(),
                            addr,
                        },
                    ));
                    drop(tx);
                    park_until(stop);
                    std::hint::black_box(&local);
                })
            })
            .collect();
        drop(tx);
        let mut spots: Vec<Option<StackSpot>> = vec![None; n];
        for (i, spot) in rx.iter().take(n) {
            spots[i] = Some(spot);
        }
        let spots: Option<Vec<StackSpot>> = spots.into_iter().collect();
        let looked = spots
            .as_ref()
            .map(|spots| panic::catch_unwind(AssertUnwindSafe(|| while_running(spots))));
        stop.store(true, Ordering::Release);
        for h in &handles {
            h.thread().unpark();
        }
        for h in handles {
            let _ = h.join();
        }
        match (spots, looked) {
            (Some(spots), Some(Ok(()))) => spots,
            (_, Some(Err(p))) => panic::resume_unwind(p),
            _ => panic!("a worker ended before it reported"),
        }
    })
}

thread_local! {
    /// One counter per thread: each thread that touches it gets its own, starting at 0.
    static COUNTER: Cell<u64> = const { Cell::new(0) };
}

/// Adds `by` to the calling thread's own counter and returns its new value.
pub fn add_to_local(by: u64) -> u64 {
    COUNTER.with(|c| {
        c.set(c.get() + by);
        c.get()
    })
}

/// The errno values [`errno_per_thread`] read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ErrnoSeen {
    /// The calling thread's errno right after `fail_here`.
    pub before: Errno,
    /// The other thread's errno right after `fail_there`, read on that thread.
    pub there: Errno,
    /// The calling thread's errno again, after the other thread's call and its join.
    pub after: Errno,
}

/// Reads errno on two threads around each one's failing call; see the exercise.
pub fn errno_per_thread(fail_here: impl FnOnce(), fail_there: impl FnOnce() + Send) -> ErrnoSeen {
    fail_here();
    let before = Errno::last();
    // The worker's failing call sets the worker's errno only. Spawning and joining make calls
    // on this thread too, but calls that succeed leave errno as it was.
    let there = thread::scope(|s| {
        s.spawn(|| {
            fail_there();
            Errno::last()
        })
        .join()
        .unwrap_or_else(|p| panic::resume_unwind(p))
    });
    let after = Errno::last();
    ErrnoSeen {
        before,
        there,
        after,
    }
}

/// Blocks `sig` on one new thread only; see the exercise.
pub fn block_on_one_thread(sig: Signal, while_blocked: impl FnOnce(Pid)) {
    let stop = AtomicBool::new(false);
    let stop = &stop;
    thread::scope(|s| {
        let (tx, rx) = mpsc::channel();
        let worker = s.spawn(move || {
            let mut set = SigSet::empty();
            set.add(sig);
            // pthread_sigmask changes the mask of the thread that calls it, and no other.
            let blocked = pthread_sigmask(SigmaskHow::SIG_BLOCK, Some(&set), None);
            let _ = tx.send(blocked.map(|()| gettid()));
            drop(tx);
            park_until(stop);
        });
        let looked = match rx.recv() {
            Ok(Ok(tid)) => panic::catch_unwind(AssertUnwindSafe(|| while_blocked(tid))),
            Ok(Err(e)) => Err(Box::new(format!("pthread_sigmask failed: {e}")) as _),
            Err(_) => Err(Box::new("the worker ended before it reported") as _),
        };
        stop.store(true, Ordering::Release);
        worker.thread().unpark();
        let _ = worker.join();
        if let Err(p) = looked {
            panic::resume_unwind(p);
        }
    });
}

/// What [`change_on_a_thread`] changes, from one thread, for the whole process.
#[derive(Debug)]
pub struct Changes<'a> {
    /// Stored into the global that [`global`] reads.
    pub value: u64,
    /// The caller's heap buffer: every byte is set to `fill`.
    pub heap: &'a mut [u8],
    /// The byte written all over `heap`.
    pub fill: u8,
    /// A file to open read-only (with `O_CLOEXEC`); the fd is left open and returned.
    pub open: &'a Path,
    /// A signal whose disposition is set to `SIG_IGN`.
    pub ignore: Signal,
    /// The new working directory.
    pub dir: &'a Path,
}

/// One variable for the whole process: every thread reads and writes the same one.
static GLOBAL: AtomicU64 = AtomicU64::new(0);

/// The global that [`change_on_a_thread`] stores `value` in.
pub fn global() -> u64 {
    GLOBAL.load(Ordering::SeqCst)
}

/// Makes every change of `changes` on one new thread; see the exercise.
pub fn change_on_a_thread(
    changes: Changes<'_>,
    before: impl FnOnce() + Send,
    after: impl FnOnce() + Send,
) -> io::Result<OwnedFd> {
    let Changes {
        value,
        heap,
        fill,
        open: path,
        ignore,
        dir,
    } = changes;
    thread::scope(|s| {
        s.spawn(move || -> io::Result<OwnedFd> {
            before();
            GLOBAL.store(value, Ordering::SeqCst);
            heap.fill(fill);
            let fd = open(path, OFlag::O_RDONLY | OFlag::O_CLOEXEC, Mode::empty())?;
            let ignore_it = SigAction::new(SigHandler::SigIgn, SaFlags::empty(), SigSet::empty());
            // SAFETY: SIG_IGN runs no code of ours, so no handler can break any invariant.
            unsafe { sigaction(ignore, &ignore_it) }?;
            chdir(dir)?;
            after();
            Ok(fd)
        })
        .join()
        .unwrap_or_else(|p| panic::resume_unwind(p))
    })
}
