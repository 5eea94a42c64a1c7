//! # What threads share and what each keeps to itself (线程共享与私有的资源)
//!
//! The threads of a process are tasks that the kernel made with `clone(2)` and the sharing
//! flags `CLONE_VM | CLONE_FILES | CLONE_FS | CLONE_SIGHAND | CLONE_THREAD` (what
//! `pthread_create(3)` passes). So they **share** (共享):
//!
//! - the address space: globals (`static`), the heap, every mapping (`CLONE_VM`); a store
//!   one thread makes is there for all;
//! - the fd table (`CLONE_FILES`): a file one thread opens is open in all, at the same
//!   number;
//! - the filesystem context (`CLONE_FS`): the working directory (`chdir(2)`) and umask;
//! - the signal dispositions (`CLONE_SIGHAND`): a handler, or `SIG_IGN`, set on one thread
//!   holds for the whole process.
//!
//! Each thread keeps **private** (私有):
//!
//! - its stack (线程栈): its own mapping, made by the thread library (glibc mmaps one per
//!   thread, with a guard page below it); the main thread's is `[stack]` in
//!   `/proc/self/maps`. Another thread *can* reach it through a pointer, since the memory is
//!   shared, but each thread's locals live in its own;
//! - its thread-local variables (线程局部存储, `thread_local!`, C's `__thread`): one copy
//!   per thread, reached through the thread's own TLS block;
//! - `errno`: glibc keeps it thread-local, so a failed call on one thread leaves another
//!   thread's errno as it was;
//! - its signal mask (信号屏蔽字): `pthread_sigmask(3)` changes the calling thread's mask
//!   alone (and in a threaded process so does `sigprocmask(2)`: there is no process-wide
//!   mask). `/proc/self/task/<tid>/status` shows each thread's own as `SigBlk`, while
//!   `SigIgn` and `SigCgt` (the dispositions) read the same in every thread's file;
//! - its tid, registers and scheduling state.
//!
//! Calls: clone(2) (its flags list), pthread_create(3), pthread_sigmask(3), sigaction(2),
//! chdir(2), open(2), errno(3), `/proc/self/maps` and `/proc/self/task/<tid>/status`
//! (proc(5)). In Rust: `std::thread::{scope, park}`, `thread_local!`, `nix::errno::Errno`,
//! `nix::sys::signal::{pthread_sigmask, sigaction, SigSet}`, `nix::unistd::{chdir, gettid}`,
//! `nix::fcntl::open`.
//!
//! Read: `man 7 pthreads` (its list of attributes shared and distinct per thread), `man 2
//! clone`, `man 3 errno`, `man 3 pthread_sigmask`, `man 7 signal` ("Signal mask and pending
//! signals"), `man 5 proc`.
use std::io;
use std::os::fd::OwnedFd;
use std::path::Path;

use nix::errno::Errno;
use nix::sys::signal::Signal;
use nix::unistd::Pid;

/// Where one thread's local variable lives.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StackSpot {
    /// The thread's tid (gettid(2), asked on it).
    pub tid: Pid,
    /// The address of a local variable of that thread's own function.
    pub addr: usize,
}

/// Starts `n` threads; each takes the address of a local variable of its own, on its own
/// stack, and reports it with its tid, then waits (blocked, not spinning) until let go, the
/// variable still alive. Once all have reported, and while all wait, calls
/// `while_running(&spots)` on the calling thread (worker `i` at index `i`); then lets them
/// go, joins every one, and returns the spots.
pub fn stack_spots(_n: usize, _while_running: impl FnOnce(&[StackSpot])) -> Vec<StackSpot> {
    todo!()
}

/// Adds `by` to the calling thread's own counter and returns its new value. Each thread's
/// counter starts at 0 and only that thread's calls change it.
pub fn add_to_local(_by: u64) -> u64 {
    todo!()
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

/// Calls `fail_here()` (a call that fails and sets errno) on the calling thread and reads
/// its errno; then runs `fail_there()` (another failing call) on a new thread, reads errno
/// there, and joins it; then reads the calling thread's errno again, making no call that
/// could change it in between.
pub fn errno_per_thread(_fail_here: impl FnOnce(), _fail_there: impl FnOnce() + Send) -> ErrnoSeen {
    todo!()
}

/// Starts one thread that blocks `sig` in its own signal mask, then, with `sig` still
/// blocked, reports its tid and waits until let go. Meanwhile the caller calls
/// `while_blocked(tid)`, then lets the thread go and joins it. No other thread's mask changes,
/// the caller's included.
pub fn block_on_one_thread(_sig: Signal, _while_blocked: impl FnOnce(Pid)) {
    todo!()
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

/// The global that [`change_on_a_thread`] stores `value` in: one variable for the whole
/// process, 0 until then.
pub fn global() -> u64 {
    todo!()
}

/// Starts one thread, which calls `before()` first, then makes every change of `changes`
/// (see [`Changes`]) and calls `after()` last; joins it and returns the fd it opened. The
/// calling thread changes nothing itself: every change is made on the new thread, and seen
/// by all.
pub fn change_on_a_thread(
    _changes: Changes<'_>,
    _before: impl FnOnce() + Send,
    _after: impl FnOnce() + Send,
) -> io::Result<OwnedFd> {
    todo!()
}
