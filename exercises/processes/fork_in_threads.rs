//! # fork in a threaded process (多线程中的 fork)
//!
//! `fork()` copies the whole address space, but only **one thread**: the one that called it.
//! The child starts with a single thread, even if the parent had fifty. Every other thread's
//! memory comes along (their stacks, their data, the locks they held), but the threads
//! themselves do not: nothing runs that code in the child, ever.
//!
//! That makes locks dangerous. Suppose thread B held a mutex at the moment thread A forked.
//! The child's copy of the mutex says "locked", and the only one who could unlock it, B, does
//! not exist in the child. If the child calls `lock()` it waits forever: a deadlock (死锁)
//! nobody can break. Joining B in the child waits forever too, for the same reason. The
//! mutex might be your own, or one hidden in a library (the allocator, stdio, a logger).
//!
//! So, after forking a threaded process, the child should do as little as it can (ideally
//! only async-signal-safe calls) and then exec or `_exit`. Here it will look at itself:
//!
//! - its thread count, from `/proc/self/task` (one entry per thread): exactly 1;
//! - the lock: `try_lock` does not wait, so it safely shows the lock is still held.
//!
//! Make the race certain, not likely: fork only after the holder thread has *told* you it has
//! the lock (a channel, say), and keep every thread alive until the child has been waited
//! for. Afterwards, in the parent, stop the threads, let the holder drop its guard, and join
//! them all before returning; `std::thread::scope` borrows the lock and makes joining
//! natural (`thread::park` and `Thread::unpark` are an easy way to keep workers waiting).
//!
//! Syscalls: fork(2), pipe(2), read(2)/write(2), _exit(2), waitpid(2); `/proc/self/task`
//! (proc(5)). In Rust: `std::thread::scope`, `std::sync::{Mutex, TryLockError, mpsc}`,
//! `nix::unistd::{fork, pipe}`, `nix::sys::wait::waitpid`, `libc::_exit`. nix's `fork` is
//! `unsafe` precisely because of this exercise: read its safety section.
//!
//! Read: `man 2 fork` (the list of what the child does not inherit: "The child process is
//! created with a single thread"), `man 3 pthread_atfork`, `man 7 signal-safety`.
use std::io;
use std::sync::Mutex;

use nix::sys::wait::WaitStatus;
use nix::unistd::Pid;

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

/// Forks while `workers` threads run and one of them holds `lock`, and lets the child look at
/// itself.
///
/// The parent starts `workers` threads (at least 1). The first locks `lock` and keeps it; all
/// of them stay alive until the parent stops them. Once the holder has the lock, the parent
/// forks.
///
/// The child counts its threads in `/proc/self/task`, calls `try_lock` on `lock` (never
/// `lock`), sends both results to the parent through a pipe, then waits until the parent
/// lets it go (end of file on a second pipe) and leaves with `_exit(0)`. It never returns
/// from this function, and never waits for a thread.
///
/// The parent calls `after_fork(child)` right after fork (the tests watch the child from
/// there, and may end it if it hangs), then reads the child's report, lets the child go and
/// waits for it, then stops its threads, which releases the lock, joins every one of them,
/// and returns a [`ChildView`]. When it returns, the caller has no extra thread and the lock
/// is free.
pub fn fork_in_threads(
    _workers: usize,
    _lock: &Mutex<()>,
    _after_fork: impl FnOnce(Pid),
) -> io::Result<ChildView> {
    todo!()
}
