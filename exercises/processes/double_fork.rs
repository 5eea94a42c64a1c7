//! # The double fork (两次 fork)
//!
//! Sometimes a program wants to start a long task and forget about it: not wait for it, yet
//! not leave a zombie (僵尸进程) behind either. A plain fork cannot give both. Whoever forks a
//! child owes it a `waitpid`: skip it and the finished child stays a zombie; do it and the
//! caller is stuck until the task ends.
//!
//! The classic way out is to fork twice (两次 fork):
//!
//! ```text
//! caller ── fork ──> middle ── fork ──> grandchild: runs the task, then _exit
//!   │                  └── _exit at once, without waiting
//!   └── waitpid(middle): returns almost at once
//! ```
//!
//! The middle child exists only to be a parent that dies. When it exits, its child, the
//! grandchild, becomes an orphan (孤儿进程) and is adopted by the nearest child subreaper
//! (`prctl(PR_SET_CHILD_SUBREAPER)`) or by init, pid 1, which reap it whenever it ends.
//! The caller waits only for the middle child, which lives for microseconds, so it keeps no
//! zombie and never waits for the task. (The tests run your code under a subreaper: the
//! grandchild is adopted by the test process, which the test uses to watch it.)
//!
//! Two ways to get it wrong: waiting for the grandchild (in the middle child, or in the
//! caller), which brings back the very wait you set out to avoid; and not waiting for the
//! middle child, which leaves it a zombie.
//!
//! Syscalls: fork(2) twice, _exit(2) (`libc::_exit`), waitpid(2). In nix:
//! `nix::unistd::fork`, `nix::sys::wait::{waitpid, WaitStatus}`.
//!
//! Read: `man 2 fork`, `man 2 wait`, `man 2 prctl` (`PR_SET_CHILD_SUBREAPER`), and the
//! double-fork step of `man 7 daemon` (SysV daemons).
use std::io;

use nix::unistd::Pid;

/// Runs `task` in a grandchild that the caller never waits for, and returns the pid of the
/// middle child, already reaped.
///
/// The caller forks the middle child. The middle child forks the grandchild and then leaves
/// at once with `_exit(0)`, without waiting (with `_exit(1)` if that fork fails). The
/// grandchild calls `task()` and leaves with `_exit(0)`. Neither child ever returns from this
/// function. The caller waits for the middle child only; if the middle child did not exit
/// with 0, this returns an error.
pub fn spawn_detached(_task: impl FnOnce()) -> io::Result<Pid> {
    todo!()
}
