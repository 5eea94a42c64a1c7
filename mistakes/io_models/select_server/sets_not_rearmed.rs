//! # A single-threaded echo server on select(2) (I/O 多路复用)
//!
//! Reference solution. See `exercises/io_models/select_server.rs` for the lesson.
use std::io::{self, ErrorKind, Read, Write};
use std::net::TcpListener;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd};

use nix::errno::Errno;
use nix::sys::select::{FdSet, select};

/// select(2) can watch descriptors 0 to `FD_SETSIZE - 1` only: an `fd_set` is a bitmap of
/// this many bits.
pub const FD_SETSIZE: i32 = libc::FD_SETSIZE as i32;

/// How much a client's echo may hold before the server stops reading from that client.
pub const MAX_PENDING: usize = 256 * 1024;

/// The most one read takes from one client per turn of the loop.
pub const READ_CHUNK: usize = 16 * 1024;

/// One client: its socket and the bytes read from it that are not yet written back.
struct Conn {
    stream: std::net::TcpStream,
    pending: Vec<u8>,
    /// The client shut down its sending side (read returned 0).
    read_closed: bool,
}

/// Runs an echo server on `listener` until the process is killed.
pub fn serve(listener: TcpListener) -> io::Result<()> {
    listener.set_nonblocking(true)?;
    let mut conns: Vec<Conn> = Vec::new();
    let mut buf = vec![0u8; READ_CHUNK];
    // The mistake: the read set is made once, before the loop, and handed to select every
    // time; select overwrites it with the descriptors that were ready.
    let mut readable = FdSet::new();
    // SAFETY: the listener outlives the loop.
    readable.insert(unsafe { BorrowedFd::borrow_raw(listener.as_raw_fd()) });
    loop {
        let mut writable = FdSet::new();
        let mut highest = listener.as_raw_fd();
        for c in &conns {
            let fd = c.stream.as_fd();
            if !c.pending.is_empty() {
                // SAFETY: each socket is open while it is in the list.
                writable.insert(unsafe { BorrowedFd::borrow_raw(fd.as_raw_fd()) });
            }
            highest = highest.max(fd.as_raw_fd());
        }
        // nfds is one more than the highest descriptor in any set.
        match select(highest + 1, &mut readable, &mut writable, None, None) {
            Ok(_) => {}
            Err(Errno::EINTR) => continue,
            Err(e) => return Err(e.into()),
        }
        // SAFETY: the listener outlives the loop.
        let new_client = readable.contains(unsafe { BorrowedFd::borrow_raw(listener.as_raw_fd()) });
        let ready: Vec<(bool, bool)> = conns
            .iter()
            .map(|c| {
                (
                    // SAFETY: each socket is open while it is in the list.
                    readable.contains(unsafe { BorrowedFd::borrow_raw(c.stream.as_raw_fd()) }),
                    // SAFETY: each socket is open while it is in the list.
                    writable.contains(unsafe { BorrowedFd::borrow_raw(c.stream.as_raw_fd()) }),
                )
            })
            .collect();
        let mut closed = Vec::new();
        for (i, (c, (can_read, can_write))) in conns.iter_mut().zip(ready).enumerate() {
            let mut gone = false;
            if can_read {
                match c.stream.read(&mut buf) {
                    Ok(0) => c.read_closed = true,
                    Ok(n) => c.pending.extend_from_slice(&buf[..n]),
                    Err(e)
                        if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::Interrupted) => {}
                    Err(_) => gone = true,
                }
            }
            if !gone && can_write {
                match c.stream.write(&c.pending) {
                    // Keep what the kernel did not take: it goes out on a later turn.
                    Ok(n) => {
                        c.pending.drain(..n);
                    }
                    Err(e)
                        if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::Interrupted) => {}
                    Err(_) => gone = true,
                }
            }
            if gone || (c.read_closed && c.pending.is_empty()) {
                closed.push(i);
            }
        }
        for i in closed.into_iter().rev() {
            // SAFETY: the socket is still open here.
            readable.remove(unsafe { BorrowedFd::borrow_raw(conns[i].stream.as_raw_fd()) });
            conns.swap_remove(i);
        }
        if new_client {
            let before = conns.len();
            accept_all(&listener, &mut conns)?;
            for c in &conns[before..] {
                // The mistake: a client is put in the read set once, when it is accepted.
                // SAFETY: the socket stays open while it is in the list (removed above first).
                readable.insert(unsafe { BorrowedFd::borrow_raw(c.stream.as_raw_fd()) });
            }
        }
    }
}

/// Accepts every connection waiting on `listener`; closes at once one whose descriptor
/// select cannot watch.
fn accept_all(listener: &TcpListener, conns: &mut Vec<Conn>) -> io::Result<()> {
    loop {
        match listener.accept() {
            Ok((stream, _)) => {
                if stream.as_raw_fd() >= FD_SETSIZE {
                    eprintln!(
                        "select_server: refused a client: its descriptor {} is not below FD_SETSIZE ({FD_SETSIZE})",
                        stream.as_raw_fd()
                    );
                    drop(stream);
                    continue;
                }
                stream.set_nonblocking(true)?;
                conns.push(Conn {
                    stream,
                    pending: Vec::new(),
                    read_closed: false,
                });
            }
            Err(e) if e.kind() == ErrorKind::WouldBlock => return Ok(()),
            Err(e)
                if matches!(
                    e.kind(),
                    ErrorKind::Interrupted
                        | ErrorKind::ConnectionAborted
                        | ErrorKind::ConnectionReset
                ) => {}
            Err(e) => return Err(e),
        }
    }
}
