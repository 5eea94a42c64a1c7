//! # A pipe from parent to child (管道): each side closes the end it does not use
//!
//! A pipe is a one-way byte channel kept inside the kernel. `pipe(2)` makes one and hands
//! back two file descriptors: a **read end** and a **write end** (in C, `fds[0]` and
//! `fds[1]`; nix's `pipe()` returns `(read_end, write_end)` in that order). Bytes written to
//! the write end come out of the read end, in order, with no message boundaries. The kernel
//! buffers a limited amount (64 KiB by default on Linux): a writer that fills the buffer
//! sleeps until a reader drains it, and a reader of an empty pipe sleeps until data comes.
//!
//! A pipe has no name, so only processes that inherit its fds can use it: make it, then
//! `fork(2)`. After the fork **both** processes hold **both** ends, because the child gets a
//! copy of every open fd. Both copies of an end refer to the same open pipe end; closing a copy
//! in one process leaves the other copy working.
//!
//! ## Why each side closes the end it does not use
//!
//! `read(2)` on a pipe returns 0 (end of file) only when the buffer is empty **and no write
//! end is open anywhere**: not in the parent, not in the child, not in the reader itself.
//! A write end that nobody will ever write to still counts. So:
//!
//! - the **child** (the reader here) must `close(2)` its copy of the write end before it reads,
//!   or it waits forever for itself once the parent is done;
//! - the **parent** (the writer) must close its copy of the read end. While it holds one, a
//!   reader is still "there", so if the child dies the parent gets no `EPIPE`/`SIGPIPE`; it
//!   just sleeps in `write` once the buffer is full.
//!
//! Closing is the only way to say "I am done": the parent ends the stream by closing its write
//! end, and the child learns it because `read` returns 0. A `read` that returns fewer bytes than
//! asked for is not the end; it only means that was all the pipe held at that moment.
//!
//! In Rust an [`OwnedFd`] closes its fd when it is dropped, so "close" usually means `drop`.
//! A forked child must leave with `libc::_exit` (nix has no wrapper): returning would run the
//! caller's code a second time, and `exit` would run handlers that belong to the parent.
//!
//! ## What you write
//!
//! - [`copy_until_eof`]: the reader's loop: `read` into a buffer, `write` all of it out (a
//!   `write` may take only part of it), retry on `EINTR`, stop at 0.
//! - [`spawn_reader`]: a pipe, a fork, and the right closes on each side. The tests look at
//!   `/proc/<pid>/fd` of both processes while the child waits in `read`, and expect the
//!   parent to hold only the write end and the child only the read end.
//!
//! Man pages: pipe(2), pipe(7) (capacity, `EPIPE`, `PIPE_BUF`), fork(2), close(2), read(2),
//! write(2), _exit(2), signal(7) (`EINTR`, `SA_RESTART`), proc(5) (`/proc/<pid>/fd`,
//! `/proc/<pid>/fdinfo`).
use std::os::fd::{AsFd, OwnedFd};

use nix::unistd::Pid;

/// Copies everything that can be read from `from` into `to` until `read(2)` reports end of
/// file, and returns how many bytes were copied.
///
/// Read into a buffer of at least 8 KiB; write every byte read, looping when `write(2)` takes
/// only part of it; retry a call that fails with `EINTR`; return any other error.
///
/// Why 8 KiB: a pipe takes a write of at most `PIPE_BUF` (4 KiB) bytes whole or not at all,
/// but a bigger one may stop half way: when the pipe fills up, the writer sleeps, and a signal
/// then ends the call with the bytes taken so far (a short write). The tests send a signal to
/// the copy while it sleeps in such a write, into a pipe of one page (`F_SETPIPE_SZ`), and
/// check that every byte still arrives once.
///
/// `EINTR` is what a `read` or `write` still waiting returns when a signal arrives whose
/// handler was installed without `SA_RESTART` (see signal(7), "Interruption of system calls"):
/// the call was cut short before it transferred anything, so nothing is lost and the copy is
/// not over. The tests send such a signal while the copy sleeps in `read`, and in `write`.
pub fn copy_until_eof(_from: impl AsFd, _to: impl AsFd) -> nix::Result<u64> {
    todo!()
}

/// Creates a pipe and forks a child that copies everything arriving on the pipe into `sink`
/// until end of file, then leaves with `_exit(0)` (`_exit(1)` if the copy fails).
///
/// The parent returns the child's pid and the pipe's write end. Before either side goes on,
/// it closes the end of the pipe it does not use: the child the write end, the parent the read
/// end (and its copy of `sink`, which only the child writes to). The caller writes its data,
/// drops the write end to signal the end, and reaps the child with `waitpid`.
pub fn spawn_reader(_sink: OwnedFd) -> nix::Result<(Pid, OwnedFd)> {
    todo!()
}
