//! # Make a zombie, see it, reap it (僵尸进程)
//!
//! When a process ends, the kernel frees its memory and files at once but keeps a small
//! record of it: its pid, its exit status, its resource usage. That record waits for the
//! parent to collect it with `waitpid`. Between the child's exit and the parent's `waitpid`
//! the process is a zombie (僵尸进程): it runs no code, yet it still has a pid and a line in
//! `/proc`, with state `Z`. Reaping (回收) it with `waitpid` removes the record, and the pid
//! vanishes from `/proc`. A parent that never reaps fills the process table with zombies.
//!
//! The kernel shows every process's state in `/proc/<pid>/stat`, one line of fields:
//!
//! ```text
//! 4242 (sleep) S 4200 4242 4200 0 -1 ...
//! pid  (comm)  state ppid pgrp session ...
//! ```
//!
//! Field 2 is the command name in parentheses, and it is the trap. A process may rename
//! itself to anything up to 15 bytes with `prctl(PR_SET_NAME)`, spaces and parentheses
//! included, so a sleeping process named `a) Z (b` has the line `4242 (a) Z (b) S 4200 ...`.
//! Splitting the line on spaces, or cutting it at the first `)`, reads `Z` there: a lie. The
//! name ends at the *last* `)` of the line; the state is the first field after it.
//!
//! Syscalls and files: fork(2), prctl(2) with `PR_SET_NAME` (nix:
//! `nix::sys::prctl::set_name`, which takes a `&CStr`), _exit(2) (`libc::_exit`), waitpid(2),
//! and `/proc/<pid>/stat` (read it with `std::fs::read_to_string`).
//!
//! Read: `man 5 proc` (`/proc/pid/stat`, the state letters), `man 2 wait` (NOTES: zombies),
//! `man 2 prctl` (`PR_SET_NAME`).
use std::io;

use nix::sys::wait::WaitStatus;
use nix::unistd::Pid;

/// The state letter (`R`, `S`, `D`, `Z`, `T`, ...) in the text of a `/proc/<pid>/stat` file,
/// or `None` when the text is not a stat line (no `(`, no `)` after it, nothing after the
/// name).
///
/// The command name in parentheses may itself hold spaces, `(` and `)`: the state is the
/// first field after the *last* `)`.
pub fn stat_state(_stat: &str) -> Option<char> {
    todo!()
}

/// True when `pid` is a zombie right now: its `/proc/<pid>/stat` shows state `Z`.
///
/// Reads the file and parses it with [`stat_state`]. A process that no longer exists (a
/// reaped zombie, for one) has no `/proc/<pid>` at all: return the error from reading the
/// file (kind `NotFound`). A file that is not a stat line is an `InvalidData` error.
pub fn is_zombie(_pid: Pid) -> io::Result<bool> {
    todo!()
}

/// Makes a zombie, watches it, then reaps it.
///
/// Forks a child that names itself `name` with `prctl(PR_SET_NAME)` and then leaves with
/// `_exit(code)`; it never returns from this function. The parent does not wait for it
/// yet: it checks [`is_zombie`] on the child until that says yes (sleep a millisecond
/// between checks), then calls `while_zombie(child)` (the tests look at the zombie in
/// `/proc` there), and only then reaps the child with `waitpid` and returns its status.
///
/// If [`is_zombie`] fails, the child is still reaped before the error is returned.
pub fn zombie_then_reap(
    _name: &str,
    _code: u8,
    _while_zombie: impl FnOnce(Pid),
) -> io::Result<WaitStatus> {
    todo!()
}
