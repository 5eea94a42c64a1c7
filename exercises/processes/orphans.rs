//! # Orphans and their adoption (孤儿进程)
//!
//! A process whose parent exits first becomes an orphan (孤儿进程). It keeps running; the
//! kernel gives it a new parent at the moment the old one exits, so that someone will still
//! reap it when it dies. The new parent is the nearest ancestor that has declared itself a
//! child subreaper (`prctl(PR_SET_CHILD_SUBREAPER)`; service managers such as `systemd --user`
//! do), or else `init`, pid 1. The tests run your code under a subreaper: the orphan is
//! adopted by the very process that called your function, which must then reap it like any
//! child of its own.
//!
//! The orphan learns of its adoption through `getppid()`, whose answer changes when the parent
//! exits. Two traps:
//!
//! - **Asking too early.** Right after the fork the parent is usually still alive, and
//!   `getppid()` names it. The orphan must wait until the answer is no longer its original
//!   parent's pid, and only then report. Know that pid from before the fork (the parent's
//!   `getpid()`, copied into the child), and check `getppid()` against it in a loop, sleeping a
//!   millisecond between checks.
//! - **Trusting a proxy.** End of file on a pipe from the parent is not proof of adoption:
//!   a dying process closes its files before the kernel hands its children to a new parent,
//!   so the orphan could see EOF and still read the old parent's pid.
//!
//! Syscalls: fork(2), getpid(2)/getppid(2), pipe(2), _exit(2) (`libc::_exit`), waitpid(2),
//! nanosleep(2) (`std::thread::sleep`). In nix: `nix::unistd::{fork, getpid, getppid, pipe}`,
//! `nix::sys::wait::waitpid`.
//!
//! Read: `man 2 getppid`, `man 2 prctl` (`PR_SET_CHILD_SUBREAPER`), `man 2 _exit` (what
//! happens to the children of a process that exits).
use std::io;

use nix::sys::wait::WaitStatus;
use nix::unistd::Pid;

/// What [`orphan_and_adopt`] saw.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Orphan {
    /// The parent: forked by the caller, it forks the orphan and then exits.
    pub parent: Pid,
    /// The orphan, as it reported its own pid.
    pub orphan: Pid,
    /// What `getppid()` returned in the orphan after its parent had exited, as it reported it.
    pub new_parent: Pid,
    /// The orphan's exit status, as the caller (its new parent) collected it with `waitpid`.
    pub status: WaitStatus,
}

/// Makes an orphan and adopts it.
///
/// The caller forks the *parent*. The parent forks the *orphan*, then calls
/// `before_parent_exits(orphan)` (the tests check the orphan's state there), then leaves with
/// `_exit(0)`. The orphan waits until `getppid()` no longer names its original parent (sleeping
/// a millisecond between checks), sends its own pid and that new parent pid to the caller
/// through a pipe, and leaves with `_exit(0)`. Neither child ever returns from this function.
///
/// The caller reaps the parent, reads the orphan's report, calls `after_adoption(orphan)`
/// (the tests look at the orphan in `/proc` there), then reaps the orphan, which is now its
/// own child, and returns what it saw.
pub fn orphan_and_adopt(
    _before_parent_exits: impl FnOnce(Pid),
    _after_adoption: impl FnOnce(Pid),
) -> io::Result<Orphan> {
    todo!()
}
