//! # Writing to a pipe nobody reads (管道破裂, SIGPIPE and EPIPE)
//!
//! A pipe's reader and writer are often different programs (`producer | consumer`). When the
//! consumer exits early, the producer's next `write(2)` has nobody left to write to: every read
//! end of the pipe is closed, in every process. Buffering the data would be pointless, so the
//! kernel refuses the write, in two ways at once:
//!
//! - it sends the writer the signal **SIGPIPE** ("broken pipe"). Its default action terminates
//!   the process, so a producer whose consumer is gone simply dies quietly: that is how
//!   `yes | head -1` ends. Its parent's `waitpid` then reports "killed by signal SIGPIPE"
//!   (`WIFSIGNALED`, `WTERMSIG == SIGPIPE`), not an exit status;
//! - if the writer survives the signal, because SIGPIPE is **ignored** (`SIG_IGN`) or caught,
//!   `write(2)` fails with **`EPIPE`**, and the program can handle it like any other error.
//!
//! While even one read end is open anywhere, even in the writer itself, there *is* a reader as
//! far as the kernel knows: no signal, no `EPIPE`. A write then waits for room once the pipe is
//! full (64 KiB), for ever if that reader never reads. So the writer must close its own copy of
//! the read end, and so must every other process that got one through `fork`.
//!
//! ## Dispositions are inherited
//!
//! What a process does with a signal, its *disposition* (default, ignore, or a handler), is
//! copied to a child by `fork(2)`, and an *ignored* signal stays ignored across `execve(2)`. So
//! a process cannot assume it starts with the default: Rust's own runtime sets SIGPIPE to
//! ignored before `main` (so that Rust programs see `EPIPE` as an `io::Error`), and every
//! program such a process starts inherits that unless someone resets it. To get the default
//! action you set `SIG_DFL` yourself. (`/proc/<pid>/status` shows the ignored signals as the
//! `SigIgn` bit mask: signal N is bit N-1, SIGPIPE is 13, so `0x1000`.)
//!
//! In nix, `nix::sys::signal::signal(Signal::SIGPIPE, SigHandler::SigDfl)` (or `SigIgn`) sets
//! a disposition; it is `unsafe` because it could install a handler. Set it **in the child**
//! only: the parent's own disposition is not yours to change.
//!
//! ## What you write
//!
//! - [`write_all`]: every byte, looping over short writes, retrying `EINTR`, and returning
//!   `EPIPE` (and every other error) as the error it is.
//! - [`spawn_writer`]: a pipe, a fork, and in the child: the disposition asked for, the read
//!   end closed, the write attempted, the outcome reported to the parent. The tests judge from
//!   the kernel's side: the child's wait status (killed by SIGPIPE or not), the errno it sends
//!   back, and `/proc` (which fds each side holds, what the child is blocked in, the parent's
//!   own `SigIgn`).
//!
//! Man pages: pipe(7) ("If all file descriptors referring to the read end of a pipe have been
//! closed..."), signal(7) (default actions), signal(2), sigaction(2), write(2) (`EPIPE`),
//! fork(2), execve(2) (dispositions across exec), waitpid(2), proc(5) (`SigIgn`).
use std::os::fd::{AsFd, OwnedFd};

use nix::unistd::Pid;

/// The disposition the writer gives SIGPIPE before it writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sigpipe {
    /// `SIG_DFL`: the default action, which terminates the writer.
    Default,
    /// `SIG_IGN`: the signal is discarded and `write(2)` fails with `EPIPE`.
    Ignore,
}

/// Writes all of `data` to `fd`: loops while `write(2)` takes only part of the buffer,
/// retries a call that failed with `EINTR`, and returns any other error, `EPIPE` included: a
/// write nobody can read has not succeeded.
pub fn write_all(_fd: impl AsFd, _data: &[u8]) -> nix::Result<()> {
    todo!()
}

/// Forks a writer whose pipe has no reader, and returns its pid.
///
/// Makes a pipe, then forks. The **child** sets SIGPIPE's disposition to exactly `sigpipe`
/// (whatever it inherited), closes its read end, and calls [`write_all`] with `data` on the
/// write end. If it is still alive afterwards it reports the outcome on `report`: 4 bytes,
/// `i32::to_le_bytes` of the errno number (`Errno as i32`) of the error `write_all` returned,
/// or of 0 if it returned `Ok`; then it leaves with `_exit(0)` (`_exit(1)` if the report
/// cannot be written). With `Sigpipe::Default` it never gets that far.
///
/// The **parent** closes both ends of the pipe (its read end too: while it holds one, the
/// child has a reader) and its copy of `report`, leaves its own disposition of SIGPIPE alone,
/// and returns. The caller reaps the child.
pub fn spawn_writer(_sigpipe: Sigpipe, _data: &[u8], _report: OwnedFd) -> nix::Result<Pid> {
    todo!()
}
