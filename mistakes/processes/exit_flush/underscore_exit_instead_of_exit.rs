//! Mistake: the child always leaves by _exit, also where exit was asked: its stdio buffer is
//! thrown away and its atexit handler never runs.
use std::io;
use std::os::fd::{IntoRawFd, OwnedFd};
use std::ptr;
use std::sync::atomic::{AtomicI32, Ordering};

use nix::unistd::{ForkResult, Pid, fork, read};

/// How the child leaves the process once it is allowed to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Leave {
    /// `exit(3)`: atexit handlers, then every stdio stream flushed and closed, then `_exit`.
    Exit,
    /// `_exit(2)`: the process ends at once; stdio buffers are lost and no handler runs.
    UnderscoreExit,
}

/// What the child's atexit handler writes to the `marker` fd, exactly once, when it runs.
pub const HANDLER_MARK: &[u8] = b"atexit handler ran\n";

/// The fds handed to the child. The parent closes its copies (it only forks).
#[derive(Debug)]
pub struct WriterFds {
    /// A pipe's write end: the child's C stdio stream writes the text here.
    pub out: OwnedFd,
    /// A pipe's write end: the child's atexit handler writes [`HANDLER_MARK`] here.
    pub marker: OwnedFd,
    /// A pipe's read end: after writing, the child waits here until one byte (or end of
    /// file) arrives, and only then leaves.
    pub go: OwnedFd,
}

/// The fd the atexit handler writes to; set in the child before the handler is registered.
static MARKER_FD: AtomicI32 = AtomicI32::new(-1);

/// The atexit handler: runs inside `exit`, in the child, before the streams are flushed.
extern "C" fn write_mark() {
    let fd = MARKER_FD.load(Ordering::SeqCst);
    // SAFETY: write(2) of a static buffer to an fd the child owns.
    unsafe { libc::write(fd, HANDLER_MARK.as_ptr().cast(), HANDLER_MARK.len()) };
}

/// Forks the writer child; see the exercise for the contract.
pub fn spawn_writer(text: &[u8], leave: Leave, code: u8, fds: WriterFds) -> io::Result<Pid> {
    // SAFETY: the child only registers a handler, writes through stdio, reads a pipe and
    // leaves by exit or _exit; it never returns into the caller.
    match unsafe { fork() }? {
        ForkResult::Child => {
            // Registered here, in the child: a handler registered in the parent would be
            // copied into every later child too.
            MARKER_FD.store(fds.marker.into_raw_fd(), Ordering::SeqCst);
            // SAFETY: registers a plain extern "C" function with no captured state.
            unsafe { libc::atexit(write_mark) };
            // SAFETY: fdopen takes over the fd; setvbuf asks for full buffering before any
            // output; fwrite copies `text` (valid for its length) into the stream's buffer.
            unsafe {
                let stream = libc::fdopen(fds.out.into_raw_fd(), c"w".as_ptr());
                if !stream.is_null() {
                    libc::setvbuf(stream, ptr::null_mut(), libc::_IOFBF, 0);
                    libc::fwrite(text.as_ptr().cast(), 1, text.len(), stream);
                }
            }
            // Wait for the go-ahead: one byte, end of file or an error all let us go.
            let mut byte = [0u8; 1];
            while read(&fds.go, &mut byte) == Err(nix::errno::Errno::EINTR) {}
            // The mistake: _exit whichever way `leave` asks.
            let _ = leave;
            // SAFETY: _exit ends the process at once and never returns.
            unsafe { libc::_exit(code.into()) }
        }
        // Dropping `fds` closes the parent's copies: only the child holds them now.
        ForkResult::Parent { child } => Ok(child),
    }
}
