//! Mistake: write_all treats EPIPE as the end of the job ("the reader is done"), returning Ok.
//!
//! # Writing to a pipe nobody reads (管道破裂, SIGPIPE and EPIPE)
//!
//! Reference solution. See `exercises/ipc/sigpipe.rs` for the lesson.
use std::os::fd::{AsFd, OwnedFd};

use nix::errno::Errno;
use nix::sys::signal::{SigHandler, Signal, signal};
use nix::unistd::{ForkResult, Pid, fork, pipe, write};

/// The disposition the writer gives SIGPIPE before it writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sigpipe {
    /// `SIG_DFL`: the default action, which terminates the writer.
    Default,
    /// `SIG_IGN`: the signal is discarded and `write(2)` fails with `EPIPE`.
    Ignore,
}

/// Writes all of `data`, looping over short writes and retrying `EINTR`; any other error,
/// `EPIPE` included, is returned.
pub fn write_all(fd: impl AsFd, data: &[u8]) -> nix::Result<()> {
    let mut done = 0;
    while done < data.len() {
        match write(fd.as_fd(), &data[done..]) {
            Ok(n) => done += n,
            Err(Errno::EINTR) => continue,
            // The mistake: "nobody wants the rest", as if that were success.
            Err(Errno::EPIPE) => return Ok(()),
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// Forks a writer whose pipe has no reader; the child reports the errno of its write (0 for
/// success) on `report` if it survives.
pub fn spawn_writer(sigpipe: Sigpipe, data: &[u8], report: OwnedFd) -> nix::Result<Pid> {
    let (read_end, write_end) = pipe()?;
    // SAFETY: the child sets a disposition, closes and writes fds, and leaves through _exit;
    // it takes no lock another thread might hold.
    match unsafe { fork() }? {
        ForkResult::Child => {
            let handler = match sigpipe {
                Sigpipe::Default => SigHandler::SigDfl,
                Sigpipe::Ignore => SigHandler::SigIgn,
            };
            // Set it whatever was inherited: an ignored SIGPIPE survives fork and exec, and
            // Rust's runtime ignores it before main.
            // SAFETY: SIG_DFL and SIG_IGN install no handler code.
            let set = unsafe { signal(Signal::SIGPIPE, handler) };
            // The writer's own read end would be a reader: no SIGPIPE, no EPIPE, only a
            // write that waits once the pipe is full.
            drop(read_end);
            let outcome = match set.and_then(|_| write_all(&write_end, data)) {
                Ok(()) => 0,
                Err(e) => e as i32,
            };
            let code = match write_all(&report, &outcome.to_le_bytes()) {
                Ok(()) => 0,
                Err(_) => 1,
            };
            // SAFETY: _exit ends this forked copy at once, without returning into the caller
            // or running destructors and atexit handlers that belong to the parent.
            unsafe { libc::_exit(code) }
        }
        ForkResult::Parent { child } => {
            // The parent neither reads nor writes this pipe, and the report is the child's.
            drop(read_end);
            drop(write_end);
            drop(report);
            Ok(child)
        }
    }
}
