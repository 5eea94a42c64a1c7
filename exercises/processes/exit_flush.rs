//! # exit flushes, _exit does not (退出与缓冲区)
//!
//! There are two ways to end a process on purpose, and they do different amounts of work:
//!
//! - `exit(3)` is a C library function. Before the process ends it runs the handlers
//!   registered with `atexit(3)` (退出处理函数), last registered first, then flushes and
//!   closes every C stdio stream (`FILE*`), and only then makes the `_exit` system call.
//! - `_exit(2)` is the system call itself: the kernel ends the process at once. Whatever a
//!   stdio stream still holds in its buffer (缓冲区) is lost, and no handler runs. The kernel
//!   does close the fds, so bytes already handed to `write(2)` are safe.
//!
//! Why it matters after `fork`: the child gets a copy of the parent's memory, including the
//! stdio buffers and the list of atexit handlers. A child that leaves by `exit` flushes the
//! copied buffers (output printed twice) and runs the parent's handlers (a temporary file
//! deleted, a log line written, by the wrong process). That is why a forked child that has
//! nothing of its own to flush leaves by `_exit`. And a child that *has* written through
//! stdio must leave by `exit` (or call `fflush` first), or its output vanishes.
//!
//! A C stream on a pipe is *fully buffered* (全缓冲): `fwrite` copies into a buffer in the
//! process's memory, and nothing reaches the pipe until the buffer fills, `fflush` is called,
//! or the stream is closed (which `exit` does). A stream on a terminal, such as stdout in an
//! interactive shell, is line buffered instead (flushed at each newline); stderr is not
//! buffered at all, terminal or not.
//!
//! Your child: registers an atexit handler, wraps the `out` fd in a C stream, writes the text
//! into it, waits for the caller's go-ahead, and leaves the way it was told. The tests read
//! the pipes and see which of the two jobs `exit` does actually happened.
//!
//! In Rust: `libc::atexit` takes an `extern "C" fn()` with no arguments, so the handler finds
//! its fd through a `static` (an `AtomicI32`, say) set before registering. `libc::fdopen(fd,
//! c"w".as_ptr())` gives the `*mut libc::FILE` (it takes over the fd: pass it
//! `into_raw_fd()`), `libc::setvbuf(stream, null_mut(), libc::_IOFBF, 0)` makes the buffering
//! explicit, and `libc::fwrite` copies bytes into it. Do not call `fflush`: when the text
//! reaches the pipe is what the tests look at. `libc::exit` and `libc::_exit` end the child.
//! Rust's `std::process::exit` calls the C `exit` too, but say what you mean.
//!
//! Syscalls and calls: fork(2), exit(3), _exit(2), atexit(3), fdopen(3), setvbuf(3),
//! fwrite(3), read(2). Read: `man 3 exit`, `man 2 _exit`, `man 3 atexit`, `man 3 setbuf`.
use std::io;
use std::os::fd::OwnedFd;

use nix::unistd::Pid;

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

/// Forks a child that writes `text` through a fully buffered C stdio stream and leaves by
/// `leave` with exit code `code`; returns the child's pid without waiting for it.
///
/// The child, in this order: registers an atexit handler that writes [`HANDLER_MARK`] to
/// `fds.marker`; wraps `fds.out` in a C stream (`fdopen`), makes it fully buffered and
/// `fwrite`s all of `text` into it (no `fflush`); reads one byte from `fds.go` (a read that
/// returns 0 or fails lets it go too); then calls `exit(code)` or `_exit(code)`. It never
/// returns from this function.
///
/// The parent closes its copies of the three fds and returns the pid. `text` is shorter than
/// 1024 bytes, so it fits in a stdio buffer.
pub fn spawn_writer(_text: &[u8], _leave: Leave, _code: u8, _fds: WriterFds) -> io::Result<Pid> {
    todo!()
}
