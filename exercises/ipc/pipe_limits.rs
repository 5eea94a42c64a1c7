//! # The limits of a pipe (管道的容量与原子写): capacity, `F_SETPIPE_SZ`, `PIPE_BUF`
//!
//! A pipe (管道) is a buffer in the kernel, and the buffer has a size: its **capacity**
//! (管道容量). On Linux it is a ring of page-sized slots, 16 pages (64 KiB) by default. A
//! blocking `write(2)` into a full pipe sleeps until a reader makes room; with `O_NONBLOCK`
//! set on the write end (`fcntl(fd, F_SETFL, flags | O_NONBLOCK)`) the same write fails at once
//! with `EAGAIN` instead. That is how a program can measure a pipe without a reader: set
//! `O_NONBLOCK`, write until `EAGAIN`, count what the kernel took.
//!
//! Two details decide whether the count is right:
//!
//! - **A non-blocking write can be partial.** Asked to write more than there is room for, the
//!   kernel takes what fits and returns that number (a short write); only the next call fails
//!   with `EAGAIN`. Count the return value of each write, never the length you asked for.
//! - **Slots are pages.** Data is stored in whole pages (4096 bytes here), and a small write
//!   is added to the last page only if it fits in what that page has left; otherwise it starts
//!   a new slot. Writes of 100 bytes leave 96 bytes unused in every page, and the pipe "fills
//!   up" at 64000 bytes. Writes of a page (or of any multiple of a page, or one write bigger
//!   than the pipe) pack the slots full, and the count is exactly the capacity.
//!
//! The capacity is not a constant: `fcntl(fd, F_SETPIPE_SZ, n)` changes it, and
//! `fcntl(fd, F_GETPIPE_SZ)` reads it. The kernel rounds `n` up to a power of two of pages (at
//! least one page), so asking for 5000 bytes gives 8192; the call returns the size it really
//! set. A process without `CAP_SYS_RESOURCE` may not go above `/proc/sys/fs/pipe-max-size`
//! (1 MiB by default): `EPERM`. Shrinking below what the pipe holds right now is `EBUSY`. So
//! never take the size you asked for as the size you got.
//!
//! ## `PIPE_BUF`: writes that never interleave (原子写)
//!
//! Several processes may write into one pipe. POSIX promises that a write of at most
//! `PIPE_BUF` bytes (4096 on Linux) is **atomic**: its bytes land in the pipe together, never
//! mixed with another writer's, even when the pipe is full and the writer has to wait (the
//! kernel then waits until there is room for all of it). A bigger write has no such promise:
//! the kernel may take it in pieces, and another writer's data may land between them. So
//! writers that share a pipe send each record in **one** `write(2)` call of at most
//! `PIPE_BUF` bytes; a record sent in two calls (a header, then a body) can be cut in half by
//! another writer's record.
//!
//! ## What you write
//!
//! - [`pipe_capacity`]: fill a pipe in non-blocking mode and count.
//! - [`set_pipe_size`]: `F_SETPIPE_SZ`, and the size the kernel really chose.
//! - [`write_record`]: one record, one atomic write.
//! - [`spawn_writers`] and [`reap_writers`]: several writer processes sharing one pipe, and
//!   the parent that waits for all of them.
//!
//! The tests make pipes of several sizes and compare your measurements with the kernel's own
//! (`F_GETPIPE_SZ`, and `FIONREAD`, the number of bytes queued); they hold your writers until
//! all of them are asleep in `write(2)` on a full pipe and then let them go at once; and they
//! count each writer's write calls in `/proc/<pid>/io` (`syscw`).
//!
//! Man pages: pipe(7) ("Pipe capacity", "PIPE_BUF"), fcntl(2) (`F_SETFL`, `F_GETPIPE_SZ`,
//! `F_SETPIPE_SZ`), write(2), fork(2), waitpid(2), proc(5) (`/proc/sys/fs/pipe-max-size`,
//! `/proc/<pid>/io`).
use std::os::fd::{AsFd, OwnedFd};

use nix::unistd::Pid;

/// The most bytes a pipe write may have and still be atomic (4096 on Linux).
pub const PIPE_BUF: usize = libc::PIPE_BUF;

/// Measures the capacity of the empty pipe whose write end is `write_end`: sets `O_NONBLOCK`,
/// writes until `write(2)` fails with `EAGAIN`, and returns how many bytes the pipe took.
///
/// The count must be exactly the pipe's capacity (what `F_GETPIPE_SZ` says), so write in
/// chunks that fill whole pages, and add up what each write returns. Leaves the pipe full, and
/// the fd's file status flags as it found them (clear `O_NONBLOCK` again if it was not set).
/// Retries a write that fails with `EINTR`; returns any other error.
pub fn pipe_capacity(_write_end: impl AsFd) -> nix::Result<usize> {
    todo!()
}

/// Asks the kernel to make the pipe behind `fd` (either end) hold `size` bytes, with
/// `F_SETPIPE_SZ`, and returns the capacity it really has now.
///
/// The kernel rounds the size up (see the module docs), so the result may be larger than
/// asked. Errors are returned as they are: `EPERM` above `/proc/sys/fs/pipe-max-size` for an
/// unprivileged process, `EBUSY` when the pipe holds more than the new size. A `size` that does
/// not fit in a C `int` is refused with `EINVAL` before any system call (it must not be
/// truncated into a small number).
pub fn set_pipe_size(_fd: impl AsFd, _size: usize) -> nix::Result<usize> {
    todo!()
}

/// Writes `record` into the pipe `fd` in one `write(2)` call, so that no other writer's bytes
/// can land inside it.
///
/// A record must have 1 to [`PIPE_BUF`] bytes; any other length is refused with `EINVAL`,
/// writing nothing. Retries the call when it fails with `EINTR` (a signal arrived while it
/// waited for room: nothing was written). A blocking write of at most `PIPE_BUF` bytes takes
/// all of it or nothing; should it ever return fewer bytes, return `EIO`.
pub fn write_record(_fd: impl AsFd, _record: &[u8]) -> nix::Result<()> {
    todo!()
}

/// Starts one writer process per batch, all writing into the pipe whose write end is
/// `write_end`, and returns their pids, in the order of `batches`, without waiting for them.
///
/// Writer `i` writes the records of `batches[i]` in order, each with [`write_record`], then
/// leaves with `_exit(0)`; if a record fails, it leaves with `_exit(1)` at once. The parent
/// closes its write end before it returns, so that the reader sees end of file once every
/// writer is done. If a fork fails, the writers already started are killed and reaped, and
/// the error is returned.
pub fn spawn_writers(_write_end: OwnedFd, _batches: &[Vec<Vec<u8>>]) -> nix::Result<Vec<Pid>> {
    todo!()
}

/// Waits for every writer in `pids` (retrying a wait that fails with `EINTR`) and returns how
/// many of them exited with status 0. Returns the error of a wait that fails otherwise.
pub fn reap_writers(_pids: &[Pid]) -> nix::Result<usize> {
    todo!()
}
