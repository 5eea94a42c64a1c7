//! # The limits of a pipe (管道的容量与原子写): capacity, `F_SETPIPE_SZ`, `PIPE_BUF`
//!
//! Reference solution. See `exercises/ipc/pipe_limits.rs` for the lesson.
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};

use nix::errno::Errno;
use nix::fcntl::{FcntlArg, OFlag, fcntl};
use nix::sys::signal::{Signal, kill};
use nix::sys::wait::{WaitStatus, waitpid};
use nix::unistd::{ForkResult, Pid, fork, write};

/// The most bytes a pipe write may have and still be atomic (4096 on Linux).
pub const PIPE_BUF: usize = libc::PIPE_BUF;

/// What the fill loop writes at a time: 64 KiB, a multiple of every page size Linux uses, so
/// every slot it fills is filled whole (and one write may well be partial: that is counted).
const CHUNK: usize = 64 * 1024;

/// Measures the capacity of the empty pipe whose write end is `write_end`: sets `O_NONBLOCK`,
/// writes until `EAGAIN`, restores the flags, and returns how many bytes the pipe took.
pub fn pipe_capacity(write_end: impl AsFd) -> nix::Result<usize> {
    let fd = write_end.as_fd();
    let flags = OFlag::from_bits_retain(fcntl(fd, FcntlArg::F_GETFL)?);
    fcntl(fd, FcntlArg::F_SETFL(flags | OFlag::O_NONBLOCK))?;
    let filled = fill(fd);
    // Put the flags back even when the fill failed; the fill's error comes first.
    let restored = fcntl(fd, FcntlArg::F_SETFL(flags));
    let total = filled?;
    restored?;
    Ok(total)
}

/// Writes page-multiple chunks into a non-blocking pipe until it refuses more, adding up what
/// each write really took.
fn fill(fd: BorrowedFd<'_>) -> nix::Result<usize> {
    let chunk = vec![0u8; CHUNK];
    let mut total = 0;
    loop {
        match write(fd, &chunk) {
            // Never for a pipe with a reader, but a loop that adds 0 forever would hang.
            Ok(0) => return Ok(total),
            Ok(n) => total += n,
            Err(Errno::EAGAIN) => return Ok(total),
            Err(Errno::EINTR) => {}
            Err(e) => return Err(e),
        }
    }
}

/// Asks for a pipe capacity of `size` bytes with `F_SETPIPE_SZ` and returns the capacity the
/// kernel really set, read back with `F_GETPIPE_SZ`.
pub fn set_pipe_size(fd: impl AsFd, size: usize) -> nix::Result<usize> {
    // `size as c_int` would turn 4 GiB + 8 KiB into 8 KiB: refuse what does not fit.
    let asked = libc::c_int::try_from(size).map_err(|_| Errno::EINVAL)?;
    let fd = fd.as_fd();
    fcntl(fd, FcntlArg::F_SETPIPE_SZ(asked))?;
    // The kernel rounded the request up: what counts is what it set.
    let got = fcntl(fd, FcntlArg::F_GETPIPE_SZ)?;
    Ok(got as usize)
}

/// Writes `record` (1 to `PIPE_BUF` bytes) into the pipe `fd` in one `write(2)` call,
/// retrying on `EINTR`.
pub fn write_record(fd: impl AsFd, record: &[u8]) -> nix::Result<()> {
    if record.is_empty() || record.len() > PIPE_BUF {
        return Err(Errno::EINVAL);
    }
    loop {
        match write(fd.as_fd(), record) {
            Ok(n) if n == record.len() => return Ok(()),
            // A blocking write of at most PIPE_BUF bytes is all or nothing.
            Ok(_) => return Err(Errno::EIO),
            Err(Errno::EINTR) => {}
            Err(e) => return Err(e),
        }
    }
}

/// Starts one writer process per batch and returns their pids without waiting for them.
pub fn spawn_writers(write_end: OwnedFd, batches: &[Vec<Vec<u8>>]) -> nix::Result<Vec<Pid>> {
    let mut pids = Vec::with_capacity(batches.len());
    for batch in batches {
        // SAFETY: the child writes with write(2) from memory it already has and leaves with
        // _exit; it takes no lock that another thread of the parent might hold.
        match unsafe { fork() } {
            Ok(ForkResult::Child) => {
                let ok = batch
                    .iter()
                    .all(|record| write_record(&write_end, record).is_ok());
                // SAFETY: _exit ends the forked copy at once, without returning into the
                // caller or running its destructors and atexit handlers.
                unsafe { libc::_exit(if ok { 0 } else { 1 }) }
            }
            Ok(ForkResult::Parent { child }) => pids.push(child),
            Err(e) => {
                for &pid in &pids {
                    let _ = kill(pid, Signal::SIGKILL);
                }
                for &pid in &pids {
                    while waitpid(pid, None) == Err(Errno::EINTR) {}
                }
                return Err(e);
            }
        }
    }
    // The parent writes nothing: while it held a write end, the reader could not see EOF.
    drop(write_end);
    Ok(pids)
}

/// Waits for every writer in `pids` and returns how many exited with status 0.
pub fn reap_writers(pids: &[Pid]) -> nix::Result<usize> {
    let mut succeeded = 0;
    for &pid in pids {
        loop {
            match waitpid(pid, None) {
                Ok(WaitStatus::Exited(_, 0)) => {
                    succeeded += 1;
                    break;
                }
                Ok(_) => break,
                Err(Errno::EINTR) => {}
                Err(e) => return Err(e),
            }
        }
    }
    Ok(succeeded)
}
