//! # A single-threaded echo server on poll(2) (I/O 多路复用)
//!
//! Reference solution. See `exercises/io_models/poll_server.rs` for the lesson.
use std::io::{self, ErrorKind, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::os::fd::AsFd;

use nix::errno::Errno;
use nix::poll::{PollFd, PollFlags, PollTimeout, poll};

/// How much a client's echo may hold before the server stops reading from that client.
pub const MAX_PENDING: usize = 256 * 1024;

/// The most one read takes from one client per turn of the loop.
pub const READ_CHUNK: usize = 16 * 1024;

/// One client: its socket and the bytes read from it that are not yet written back.
struct Conn {
    stream: TcpStream,
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
        // One entry per descriptor, the listener first; poll leaves `events` alone and fills
        // `revents`, so the array could be kept, but the events change with each client's state.
        let mut fds = Vec::with_capacity(conns.len() + 1);
        fds.push(PollFd::new(listener.as_fd(), PollFlags::POLLIN));
        for c in &conns {
            let mut events = PollFlags::empty();
            if !c.read_closed && c.pending.len() < MAX_PENDING {
                events |= PollFlags::POLLIN;
            }
            if !c.pending.is_empty() {
                events |= PollFlags::POLLOUT;
            }
            fds.push(PollFd::new(c.stream.as_fd(), events));
        }
        match poll(&mut fds, PollTimeout::NONE) {
            Ok(_) => {}
            Err(Errno::EINTR) => continue,
            Err(e) => return Err(e.into()),
        }
        let revents: Vec<PollFlags> = fds
            .iter()
            .map(|f| f.revents().unwrap_or(PollFlags::empty()))
            .collect();
        drop(fds);
        let mut closed = Vec::new();
        for (i, (c, r)) in conns.iter_mut().zip(&revents[1..]).enumerate() {
            let mut gone = false;
            if r.contains(PollFlags::POLLIN) {
                match c.stream.read(&mut buf) {
                    Ok(0) => c.read_closed = true,
                    Ok(n) => c.pending.extend_from_slice(&buf[..n]),
                    Err(e)
                        if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::Interrupted) => {}
                    Err(_) => gone = true,
                }
            }
            if !gone && r.contains(PollFlags::POLLOUT) {
                match c.stream.write(&c.pending) {
                    // Keep what the kernel did not take: it goes out on a later turn.
                    // The mistake: what write did not take is thrown away with the rest.
                    Ok(_) => c.pending.clear(),
                    Err(e)
                        if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::Interrupted) => {}
                    Err(_) => gone = true,
                }
            }
            // A hung-up or failed socket is reported whatever was asked for: close it, or poll
            // reports it again at once, forever.
            if r.intersects(PollFlags::POLLHUP | PollFlags::POLLERR | PollFlags::POLLNVAL) {
                gone = true;
            }
            if gone || (c.read_closed && c.pending.is_empty()) {
                closed.push(i);
            }
        }
        for i in closed.into_iter().rev() {
            conns.swap_remove(i);
        }
        if revents[0].contains(PollFlags::POLLIN) {
            accept_all(&listener, &mut conns)?;
        }
    }
}

/// Accepts every connection waiting on `listener`.
fn accept_all(listener: &TcpListener, conns: &mut Vec<Conn>) -> io::Result<()> {
    loop {
        match listener.accept() {
            Ok((stream, _)) => {
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
