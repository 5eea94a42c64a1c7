//! # A socket pair (套接字对) between parent and child, and an fd passed with SCM_RIGHTS
//!
//! `socketpair(2)` makes two sockets that are already connected to each other, like a pipe
//! with no name; made before `fork(2)`, it joins parent and child. Unlike a pipe it is
//! **full duplex**: each end is open for reading *and* writing, and what one end writes the
//! other end reads. So each side keeps one end and closes the other, and both talk through the
//! end they kept. With `AF_UNIX` (also called `AF_LOCAL`) and `SOCK_STREAM` the bytes flow as
//! a stream, as in a pipe: no message boundaries, and a `read` that returns 0 means the peer
//! has closed its end (end of file).
//!
//! ## Passing an open file with `SCM_RIGHTS`
//!
//! A Unix-domain socket can carry more than bytes: **ancillary data** (辅助数据), sent and
//! received with `sendmsg(2)` and `recvmsg(2)` as *control messages* beside the ordinary data
//! (see cmsg(3) for their layout and unix(7), "Ancillary messages"). A control message of
//! level `SOL_SOCKET` and type `SCM_RIGHTS` holds an array of file descriptors. The kernel does
//! not send those numbers; it looks up the **open file** each one refers to in the sender's fd
//! table and, when the message is received, installs a new fd for that same open file in the
//! receiver's table, at whatever number is free there. So:
//!
//! - the receiver gets a **new fd number**; the number the sender used means nothing in
//!   another process (writing it as a plain int in the data bytes passes nothing at all);
//! - both fds refer to the **same open file description** (the same file *offset* and status
//!   flags), exactly as after `dup(2)` or `fork(2)`: when one side reads or seeks, the other
//!   side's offset moves too. Opening the file again by its path would give a new open file
//!   with an offset of its own, and would not work at all if the path were gone or out of the
//!   receiver's reach: passing the fd passes the access itself;
//! - the fd passed may be anything: a file, a pipe end, another socket.
//!
//! Two practical rules. On a stream socket ancillary data travels with at least one byte of
//! real data: a `sendmsg` with no data sends no control message either, so the fd would be
//! silently lost. And the receiver must make room for the control message (nix's
//! `cmsg_space!` macro sizes the buffer); when the message does not fit, the kernel delivers
//! what fits, discards the rest (closing the fds that did not fit) and sets `MSG_CTRUNC` in
//! the flags `recvmsg` returns. Every fd that arrives is the receiver's to close, whether it
//! wanted it or not. Ask `recvmsg` for `MSG_CMSG_CLOEXEC` so that the fds arrive close-on-exec,
//! as every fd should that is not meant for a program this process may execute.
//!
//! In nix: `socketpair(AddressFamily::Unix, SockType::Stream, None, flags)` returns two
//! `OwnedFd`s; `sendmsg::<()>(fd, &iov, &[ControlMessage::ScmRights(&fds)], flags, None)`;
//! `recvmsg::<()>(fd, &mut iov, Some(&mut cmsg_buffer), flags)` returns a `RecvMsg` whose
//! `cmsgs()` yields `ControlMessageOwned::ScmRights(Vec<RawFd>)` and whose `flags` hold
//! `MSG_CTRUNC`. Mind one trap: when `MSG_CTRUNC` is set, nix's `cmsgs()` refuses to parse the
//! control data at all (it returns `ENOBUFS`), although the fds that fitted *have* arrived. So
//! either walk that buffer yourself with libc's `CMSG_FIRSTHDR`, `CMSG_NXTHDR` and `CMSG_DATA`
//! (as cmsg(3) shows in C) to close them, or give `recvmsg` room for the most fds one message
//! can carry (`SCM_MAX_FD`, 253: see unix(7)), so that an `SCM_RIGHTS` message is never cut
//! short. Note too that `cmsg_space!(RawFd)` is rounded up for alignment and holds two fds. A
//! raw fd received is yours: wrap it in an [`OwnedFd`] at once
//! (`OwnedFd::from_raw_fd`, which is `unsafe`: say why it is sound) so it is closed when
//! dropped. A forked child leaves with `libc::_exit`.
//!
//! ## What you write
//!
//! - [`send_fd`] and [`recv_fd`]: one fd with some bytes of data, each way, with the checks a
//!   receiver owes itself.
//! - [`spawn_file_reader`]: a socket pair and a child that, for each fd it receives, sends back
//!   everything that can be read through it. The tests watch both fd tables in
//!   `/proc/<pid>/fd`, and whether the child reads the very open file the parent sent (its
//!   offset), not a file of the same name.
//!
//! Man pages: socketpair(2), unix(7), sendmsg(2), recvmsg(2), cmsg(3), socket(7), dup(2)
//! (open file descriptions), open(2), fork(2), _exit(2), proc(5) (`/proc/<pid>/fdinfo`).
use std::os::fd::{AsFd, OwnedFd};

use nix::unistd::Pid;

/// Sends `data` over the connected stream socket `sock` with one open file descriptor, `fd`,
/// attached as an `SCM_RIGHTS` control message (one `sendmsg(2)` carrying both; should it send
/// only part of `data`, write the rest as plain data). The caller keeps `fd`: it stays open
/// here.
///
/// `data` must not be empty (on a stream socket the fd rides on the data): return
/// `Err(EINVAL)` then, and send nothing. Retry a call that fails with `EINTR`; return any other
/// error.
pub fn send_fd(_sock: impl AsFd, _fd: impl AsFd, _data: &[u8]) -> nix::Result<()> {
    todo!()
}

/// Receives one message from the stream socket `sock` with `recvmsg(2)`: its data into `buf`,
/// and the file descriptor that came with it, which must arrive close-on-exec
/// (`MSG_CMSG_CLOEXEC`).
///
/// Returns `Ok(Some((n, fd)))` with the number of data bytes put in `buf`, and `Ok(None)` at end
/// of file (the peer closed its end: no data, no fd).
///
/// A message must carry exactly one fd. One that carries none, or more than one, or whose
/// control data was cut short (`MSG_CTRUNC`), gets `Err(EBADMSG)`, and every fd that did arrive
/// is closed first: nothing is left open behind an error. An empty `buf` gets `Err(EINVAL)` (with
/// no room for data, a message could not be told from end of file). Retry a `recvmsg` that
/// fails with `EINTR`; return any other error.
pub fn recv_fd(_sock: impl AsFd, _buf: &mut [u8]) -> nix::Result<Option<(usize, OwnedFd)>> {
    todo!()
}

/// Creates a `socketpair(AF_UNIX, SOCK_STREAM)` and forks a child; returns the child's pid and
/// the parent's end of the pair. Each side closes the end it does not use before going on.
///
/// The child serves on its end, in a loop: it receives a request with [`recv_fd`] (some bytes
/// of data, up to 64, which it ignores, and an fd); reads through that fd from its current
/// offset to end of file; closes the fd; and replies on the socket with the length of what it
/// read, as 8 bytes little-endian (`u64::to_le_bytes`), followed by those bytes. Then it waits for
/// the next request. At end of file on the socket it leaves with `_exit(0)`; when anything fails
/// (a request without exactly one fd, a read or a write that fails) with `_exit(1)`.
///
/// The caller sends requests with [`send_fd`], reads the replies from the same end (the pair is
/// full duplex), closes its end when done and reaps the child with `waitpid`.
pub fn spawn_file_reader() -> nix::Result<(Pid, OwnedFd)> {
    todo!()
}
