//! # fork returns twice (创建进程)
//!
//! `fork()` makes a new process that is a copy of the caller: same memory contents, same open
//! file descriptors, same position in the code. From that moment two processes are running
//! the line after the call, and the only way each can tell which one it is, is the value
//! `fork` handed back:
//!
//! - in the **parent** (the process that called it), the pid of the new child;
//! - in the **child**, 0 (nix gives you `ForkResult::Child` and `ForkResult::Parent { child }`).
//!
//! So one call "returns twice", once in each process. Everything after that is up to you:
//!
//! - The child knows itself through `getpid()` and its parent through `getppid()`. Ask *after*
//!   the fork: a value computed before it is the parent's, copied into the child.
//! - The child must end by leaving the process: `_exit(code)` (or `exit`, or exec). If it just
//!   returns, it goes on running the caller's code as a second copy of the program.
//! - The parent must collect the child with `waitpid(child, ...)`. Until it does, the kernel
//!   keeps the dead child's entry (its pid and exit status) around: a zombie (僵尸进程).
//! - Memory is copied, not shared: to tell the parent something, the child needs a channel
//!   such as a pipe (管道) created *before* the fork, so both processes hold its ends.
//!
//! Syscalls: fork(2), getpid(2)/getppid(2), pipe(2), write(2)/read(2), _exit(2),
//! waitpid(2). In nix: `nix::unistd::{fork, getpid, getppid, pipe}`,
//! `nix::sys::wait::waitpid`; `_exit` only through `libc::_exit`. `fork` is `unsafe` in nix:
//! in a process with several threads the child gets only a copy of the calling thread (the
//! tests run your code in a single-threaded process).
//!
//! Read: `man 2 fork`, `man 2 _exit`, `man 2 waitpid`, `man 7 pipe`.
use std::io;

use nix::sys::wait::WaitStatus;
use nix::unistd::Pid;

/// What [`fork_and_report`] saw, from both sides of the fork.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ForkReport {
    /// What `fork` returned in the parent: the pid of the new child.
    pub child: Pid,
    /// What `getpid()` returned in the child, as the child reported it.
    pub reported_pid: Pid,
    /// What `getppid()` returned in the child, as the child reported it.
    pub reported_ppid: Pid,
    /// What `waitpid` on the child returned in the parent.
    pub status: WaitStatus,
}

/// Forks one child and gathers both views of it.
///
/// The child sends its own pid and its parent's pid to the parent (through a pipe, say) and
/// then ends with exit code `exit_code`; it never returns from this function.
///
/// The parent reads the child's report, then calls `before_wait(child)` with the pid fork
/// returned (the tests use it to look at the child in `/proc` while it still exists), then
/// waits for the child and returns a [`ForkReport`].
pub fn fork_and_report(_exit_code: u8, _before_wait: impl FnOnce(Pid)) -> io::Result<ForkReport> {
    todo!()
}
