//! # Non-blocking I/O (非阻塞 I/O): O_NONBLOCK, and a read that says what happened
//!
//! A classic mistake: taking read(2)'s 0 for "no data yet". See `exercises/io_models/nonblocking.rs` for the lesson.
use std::os::fd::AsFd;

use nix::errno::Errno;
use nix::fcntl::{FcntlArg, OFlag, fcntl};
use nix::unistd::read;

/// What one non-blocking read found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReadOutcome {
    /// `read(2)` placed this many bytes (at least 1) at the start of the buffer.
    Data(usize),
    /// Nothing to read now, the writer still open: `read(2)` failed with `EAGAIN`/`EWOULDBLOCK`.
    WouldBlock,
    /// End of file: `read(2)` returned 0; no data will ever come again.
    Eof,
}

/// Sets `O_NONBLOCK` on the open file description behind `fd`, keeping the other flags.
pub fn set_nonblocking(fd: impl AsFd) -> nix::Result<()> {
    let flags = OFlag::from_bits_retain(fcntl(fd.as_fd(), FcntlArg::F_GETFL)?);
    fcntl(fd.as_fd(), FcntlArg::F_SETFL(flags | OFlag::O_NONBLOCK))?;
    Ok(())
}

/// Makes one non-blocking `read(2)` and says what happened.
pub fn read_some(fd: impl AsFd, buf: &mut [u8]) -> nix::Result<ReadOutcome> {
    if buf.is_empty() {
        return Err(Errno::EINVAL);
    }
    loop {
        return match read(fd.as_fd(), buf) {
            // The mistake: 0 is end of file, not "nothing yet".
            Ok(0) => Ok(ReadOutcome::WouldBlock),
            Ok(n) => Ok(ReadOutcome::Data(n)),
            // EWOULDBLOCK is EAGAIN on Linux.
            Err(Errno::EAGAIN) => Ok(ReadOutcome::WouldBlock),
            Err(Errno::EINTR) => continue,
            Err(e) => Err(e),
        };
    }
}
