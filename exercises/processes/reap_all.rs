//! # Reap every child you made, and only those (回收子进程)
//!
//! A parent that starts several children owes each of them one `waitpid`: that is how it
//! learns how the child ended, and how the kernel learns it may finally free the child's
//! entry. A child that has exited but has not been waited for stays a zombie (僵尸进程);
//! stopping after the first status leaves the rest as zombies.
//!
//! Which children to wait for matters as much as how many. `wait()`, which is
//! `waitpid(-1, ...)`, takes *any* child of the calling process, including ones that other
//! code in the same process created and intends to wait for itself (a library, a server
//! loop, the test calling you). Once you have reaped someone else's child, its status is
//! gone: they get `ECHILD` and never learn how it ended. So a function that forks helpers
//! should wait for exactly the pids `fork` gave it: `waitpid(pid, ...)` with pid > 0.
//!
//! The children here finish in whatever order their lifetimes say, not in the order they
//! were made. That is no problem for `waitpid(pid)`: waiting for a child that already exited
//! returns at once with its saved status, and waiting for one still running blocks until it
//! ends. The kernel keeps each status until its parent collects it.
//!
//! Syscalls: fork(2), nanosleep(2) (`std::thread::sleep` in the child is fine), _exit(2),
//! waitpid(2). In nix: `nix::unistd::fork`, `nix::sys::wait::{waitpid, WaitStatus}`;
//! `_exit` through `libc::_exit`.
//!
//! Read: `man 2 wait` (the NOTES on zombies, and the pid argument: < -1, -1, 0, > 0).
use std::time::Duration;

use nix::sys::wait::WaitStatus;

/// One child to start.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ChildSpec {
    /// The exit code the child ends with.
    pub code: u8,
    /// How long the child sleeps before it exits.
    pub lifetime: Duration,
}

/// Starts one child per spec, all of them before waiting for any, and waits for every one.
///
/// Each child sleeps for its `lifetime`, then leaves with `_exit(code)`; none of them ever
/// returns from this function. The parent waits for exactly the children it forked, and
/// returns their statuses as `waitpid` reported them, in the order of `specs` (element `i`
/// is the status of the child made from `specs[i]`; a child that exited normally gives
/// `WaitStatus::Exited(its_pid, code)`).
///
/// Other children of the calling process are not touched: they are still there, unreaped,
/// when this returns. If a fork fails, the children already started are still waited for
/// before the error is returned; likewise a `waitpid` that fails does not end the waiting: the
/// other children are still collected, and then the first error is returned. (A wait cut
/// short by a signal handler, `EINTR`, is simply tried again: the child is still there.)
pub fn reap_all(_specs: &[ChildSpec]) -> nix::Result<Vec<WaitStatus>> {
    todo!()
}
