//! # A single-threaded echo server on select(2) (I/O 多路复用)
//!
//! Reference solution. See `exercises/io_models/select_server.rs` for the lesson.
use std::io::{self, ErrorKind, Read, Write};
use std::net::TcpListener;
use std::os::fd::{AsFd, AsRawFd};

use nix::errno::Errno;
use nix::sys::select::{FdSet, select};
// The mistake: (the zero timeout below).
use nix::sys::time::{TimeVal, TimeValLike};

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
    loop {
        // select overwrites its sets with the ready descriptors: build them afresh each turn.
        let mut readable = FdSet::new();
        let mut writable = FdSet::new();
        readable.insert(listener.as_fd());
        let mut highest = listener.as_raw_fd();
        for c in &conns {
            let fd = c.stream.as_fd();
            if !c.read_closed && c.pending.len() < MAX_PENDING {
                readable.insert(fd);
            }
            if !c.pending.is_empty() {
                writable.insert(fd);
            }
            highest = highest.max(fd.as_raw_fd());
        }
        // nfds is one more than the highest descriptor in any set.
        // The mistake: a zero timeout makes select return at once, ready or not: a busy loop.
        let mut zero = TimeVal::zero();
        match select(highest + 1, &mut readable, &mut writable, None, &mut zero) {
            Ok(_) => {}
            Err(Errno::EINTR) => continue,
            Err(e) => return Err(e.into()),
        }
        let new_client = readable.contains(listener.as_fd());
        let ready: Vec<(bool, bool)> = conns
            .iter()
            .map(|c| {
                (
                    readable.contains(c.stream.as_fd()),
                    writable.contains(c.stream.as_fd()),
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
            conns.swap_remove(i);
        }
        if new_client {
            accept_all(&listener, &mut conns)?;
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
