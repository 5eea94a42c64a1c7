//! Classic mistake: the copy loop takes a read shorter than its buffer for end of file.
//!
//! # A pipe from parent to child (管道): each side closes the end it does not use
//!
//! Reference solution. See `exercises/ipc/pipe_direction.rs` for the lesson.
use std::os::fd::{AsFd, OwnedFd};

use nix::errno::Errno;
use nix::unistd::{ForkResult, Pid, fork, pipe, read, write};

/// How much the copy loop asks `read(2)` for at a time.
const CHUNK: usize = 8192;

/// Copies everything that can be read from `from` into `to` until `read(2)` reports end of
/// file, and returns how many bytes were copied.
pub fn copy_until_eof(from: impl AsFd, to: impl AsFd) -> nix::Result<u64> {
    let mut buf = [0u8; CHUNK];
    let mut total = 0u64;
    loop {
        let n = match read(from.as_fd(), &mut buf) {
            Ok(0) => return Ok(total),
            Ok(n) => n,
            Err(Errno::EINTR) => continue,
            Err(e) => return Err(e),
        };
        let mut done = 0;
        while done < n {
            match write(to.as_fd(), &buf[done..n]) {
                Ok(written) => done += written,
                Err(Errno::EINTR) => continue,
                Err(e) => return Err(e),
            }
        }
        total += n as u64;
        // The mistake: a read shorter than the buffer is taken for end of file.
        if n < buf.len() {
            return Ok(total);
        }
    }
}

/// Creates a pipe and forks a child that copies everything arriving on the pipe into `sink`
/// until end of file, then leaves with `_exit(0)` (`_exit(1)` if the copy fails).
///
/// The parent returns the child's pid and the pipe's write end.
pub fn spawn_reader(sink: OwnedFd) -> nix::Result<(Pid, OwnedFd)> {
    let (read_end, write_end) = pipe()?;
    // SAFETY: the child only closes fds, runs the copy loop (read/write syscalls on a stack
    // buffer) and leaves through _exit; it takes no lock another thread might have held.
    match unsafe { fork() }? {
        ForkResult::Child => {
            // The child only reads: while it kept a write end, read() could never return 0.
            drop(write_end);
            let code = match copy_until_eof(&read_end, &sink) {
                Ok(_) => 0,
                Err(_) => 1,
            };
            // SAFETY: _exit ends this forked copy at once, without returning into the caller
            // or running destructors and atexit handlers that belong to the parent.
            unsafe { libc::_exit(code) }
        }
        ForkResult::Parent { child } => {
            // The parent only writes: the read end is the child's, and so is the sink.
            drop(read_end);
            drop(sink);
            Ok((child, write_end))
        }
    }
}
