//! # Non-blocking I/O (非阻塞 I/O): O_NONBLOCK, and a read that says what happened
//!
//! A classic mistake: setting O_NONBLOCK among the descriptor flags (F_SETFD), where it is dropped. See `exercises/io_models/nonblocking.rs` for the lesson.
use std::os::fd::AsFd;

use nix::errno::Errno;
use nix::fcntl::{FcntlArg, FdFlag, OFlag, fcntl};
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
    // The mistake: F_GETFD / F_SETFD hold the descriptor flags (FD_CLOEXEC), not O_NONBLOCK.
    let flags = fcntl(fd.as_fd(), FcntlArg::F_GETFD)?;
    let flags = FdFlag::from_bits_retain(flags | OFlag::O_NONBLOCK.bits());
    fcntl(fd.as_fd(), FcntlArg::F_SETFD(flags))?;
    Ok(())
}

/// Makes one non-blocking `read(2)` and says what happened.
pub fn read_some(fd: impl AsFd, buf: &mut [u8]) -> nix::Result<ReadOutcome> {
    if buf.is_empty() {
        return Err(Errno::EINVAL);
    }
    loop {
        return match read(fd.as_fd(), buf) {
            Ok(0) => Ok(ReadOutcome::Eof),
            Ok(n) => Ok(ReadOutcome::Data(n)),
            // EWOULDBLOCK is EAGAIN on Linux.
            Err(Errno::EAGAIN) => Ok(ReadOutcome::WouldBlock),
            Err(Errno::EINTR) => continue,
            Err(e) => Err(e),
        };
    }
}
