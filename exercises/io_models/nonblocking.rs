//! # Non-blocking I/O (非阻塞 I/O): O_NONBLOCK, and a read that says what happened
//!
//! By default a descriptor is **blocking** (阻塞): `read(2)` on an empty pipe or socket puts the
//! thread to sleep until data arrives or the other side closes. A server with many clients
//! cannot afford that: one silent client would stop it. With the flag **`O_NONBLOCK`** set, the
//! same `read` never sleeps; it returns at once with one of three answers, and the caller has
//! to tell them apart:
//!
//! | `read(2)` returns | meaning |
//! |---|---|
//! | `n > 0` | **data**: `n` bytes were placed in the buffer (maybe fewer than asked: that is all there was, or all that fit) |
//! | `-1` with `errno` `EAGAIN` (= `EWOULDBLOCK` on Linux) | **would block**: nothing there *now*, but the other side is still open; try again later (after poll(2) says readable) |
//! | `0` | **end of file**: the writer closed (a pipe's last write end closed, a socket's peer did `shutdown(SHUT_WR)` or `close`), and no more data will ever come |
//!
//! The classic mistake is to treat 0 as "no data yet". It is the opposite: it is the end, and it
//! stays the end, so a loop that waits for "more data" after a 0 spins forever. `EAGAIN` is the
//! "not yet" answer, and it is not an error in a non-blocking program: it is the normal answer
//! that sends it back to its event loop. `EINTR` (a signal arrived during the call) means the
//! call did nothing and is simply made again; a non-blocking read hardly ever sleeps, so it
//! hardly ever sees one, but the rule costs one line.
//!
//! ## Setting the flag: fcntl(F_GETFL / F_SETFL)
//!
//! `O_NONBLOCK` is a **file status flag**, like `O_APPEND`; they are read together with
//! `fcntl(fd, F_GETFL)` and written together with `fcntl(fd, F_SETFL, flags)`. `F_SETFL` replaces
//! them all, so the only correct way to add one is read, or in, write back: `F_SETFL` with only
//! `O_NONBLOCK` would clear `O_APPEND` (the access mode, `O_RDONLY` and so on, cannot be changed
//! this way and is ignored). Do not confuse it with `F_GETFD` / `F_SETFD`: those hold the
//! **descriptor flags**, of which there is just one, `FD_CLOEXEC`; `O_NONBLOCK` given there is
//! silently dropped. (`ioctl(fd, FIONBIO, &1)` sets the same flag too.) Setting a flag that is
//! already set must leave it set: or, never toggle.
//!
//! The status flags live in the **open file description** (打开文件描述), the kernel object a
//! descriptor points to, not in the descriptor: every fd made from it by `dup(2)` or inherited
//! across `fork(2)` shares them. Make a pipe's read end non-blocking and its duplicate in another
//! process is non-blocking too (which may surprise a program that did not expect it); the pipe's
//! *write* end is another open file description and keeps its own flags. `/proc/<pid>/fdinfo/<fd>`
//! shows them: its `flags:` line is octal, `O_NONBLOCK` is `04000` and `O_APPEND` `02000`.
//!
//! In nix: `nix::fcntl::{fcntl, FcntlArg::{F_GETFL, F_SETFL}, OFlag}` (`F_GETFL` returns the
//! bits as an `i32`: `OFlag::from_bits_retain`), `nix::unistd::read`, `nix::errno::Errno`
//! (`Errno::EAGAIN`, `Errno::EWOULDBLOCK` is the same value).
//!
//! ## What you write
//!
//! - [`set_nonblocking`]: add `O_NONBLOCK`, keep every other flag.
//! - [`read_some`]: one non-blocking read, as a [`ReadOutcome`].
//!
//! The tests use real pipes, TCP connections over 127.0.0.1 and Unix socket pairs; they read
//! the flags from `/proc/self/fdinfo`, and watch the reading thread in
//! `/proc/self/task/<tid>/syscall`: a read that sleeps is reported at once, never waited out.
//!
//! Man pages: fcntl(2) (`F_GETFL`, `F_SETFL`, file status flags), open(2) (`O_NONBLOCK`), read(2),
//! pipe(7), socket(7), tcp(7), unix(7), shutdown(2), dup(2), proc(5) (`/proc/<pid>/fdinfo`),
//! errno(3) (`EAGAIN`, `EWOULDBLOCK`), signal(7) (`EINTR`).
use std::os::fd::AsFd;

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

/// Sets `O_NONBLOCK` on the open file description behind `fd` with `fcntl(F_GETFL)` then
/// `fcntl(F_SETFL)`, keeping every other file status flag (`O_APPEND`, ...) as it was. Setting it
/// when it is already set leaves it set. Returns the error of either call.
pub fn set_nonblocking(_fd: impl AsFd) -> nix::Result<()> {
    todo!()
}

/// Makes one `read(2)` of at most `buf.len()` bytes from `fd` (which the caller has made
/// non-blocking) and says what happened: [`ReadOutcome::Data`] with the count,
/// [`ReadOutcome::WouldBlock`] for `EAGAIN`/`EWOULDBLOCK`, [`ReadOutcome::Eof`] for 0. Retries
/// a read that failed with `EINTR`; returns every other error. An empty `buf` is `EINVAL`,
/// returned without reading (a read of 0 bytes returns 0, which would look like end of file).
pub fn read_some(_fd: impl AsFd, _buf: &mut [u8]) -> nix::Result<ReadOutcome> {
    todo!()
}
