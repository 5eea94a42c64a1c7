//! # A named Unix-domain stream socket (Unix 域套接字): server and client, and who the client is
//!
//! Reference solution. See `exercises/ipc/unix_socket.rs` for the lesson.
use std::os::fd::{AsFd, AsRawFd, FromRawFd, IntoRawFd, OwnedFd};
use std::path::Path;

use nix::errno::Errno;
use nix::sys::socket::{
    AddressFamily, Backlog, Shutdown, SockFlag, SockType, UnixAddr, UnixCredentials, accept4, bind,
    connect, getsockname, getsockopt, listen, shutdown, socket, sockopt,
};
use nix::sys::stat::{SFlag, lstat};
use nix::unistd::{read, unlink, write};

/// How many connections may wait to be accepted.
const BACKLOG: i32 = 16;

/// Creates an `AF_UNIX` `SOCK_STREAM` socket bound to `path` and listening, after removing a
/// stale socket file there; anything else at `path` is left alone and bind's `EADDRINUSE`
/// returned.
pub fn listen_at(path: &Path) -> nix::Result<OwnedFd> {
    match lstat(path) {
        Ok(st) if SFlag::from_bits_truncate(st.st_mode) & SFlag::S_IFMT == SFlag::S_IFSOCK => {
            // A socket file outlives the socket that made it: an earlier server's is stale.
            unlink(path)?;
        }
        Ok(_) | Err(Errno::ENOENT) => {}
        Err(e) => return Err(e),
    }
    let addr = UnixAddr::new(path)?;
    let sock = socket(
        AddressFamily::Unix,
        SockType::Stream,
        SockFlag::SOCK_CLOEXEC,
        None,
    )?;
    bind(sock.as_raw_fd(), &addr)?;
    listen(&sock, Backlog::new(BACKLOG)?)?;
    Ok(sock)
}

/// Reads from `fd` until end of file.
fn read_to_end(fd: &OwnedFd) -> nix::Result<Vec<u8>> {
    let mut out = Vec::new();
    let mut buf = [0u8; 8192];
    loop {
        match read(fd, &mut buf) {
            Ok(0) => return Ok(out),
            Ok(n) => out.extend_from_slice(&buf[..n]),
            Err(Errno::EINTR) => {}
            Err(e) => return Err(e),
        }
    }
}

/// Writes all of `data` to `fd`.
fn write_all(fd: &OwnedFd, data: &[u8]) -> nix::Result<()> {
    let mut done = 0;
    while done < data.len() {
        match write(fd, &data[done..]) {
            Ok(n) => done += n,
            Err(Errno::EINTR) => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// Accepts `clients` connections one after another on `listener`; for each, learns the
/// client's credentials with `SO_PEERCRED`, reads its request to end of file, replies with the
/// request's bytes in reverse order and closes the connection. Then closes the listener and
/// removes its socket file. Returns the credentials, in the order the clients were accepted.
pub fn serve(listener: OwnedFd, clients: usize) -> nix::Result<Vec<UnixCredentials>> {
    // The mistake: the listener is turned into a raw fd, which nothing ever closes.
    let listener = listener.into_raw_fd();
    let mut peers = Vec::with_capacity(clients);
    for _ in 0..clients {
        let raw = loop {
            match accept4(listener, SockFlag::SOCK_CLOEXEC) {
                Ok(fd) => break fd,
                Err(Errno::EINTR) => {}
                Err(e) => return Err(e),
            }
        };
        // SAFETY: accept4 has just made this fd for us; nothing else owns it.
        let conn = unsafe { OwnedFd::from_raw_fd(raw) };
        // The connection's peer is the client; the listener's would be this server itself.
        peers.push(getsockopt(&conn, sockopt::PeerCredentials)?);
        let mut request = read_to_end(&conn)?;
        request.reverse();
        write_all(&conn, &request)?;
        drop(conn);
    }
    let name: UnixAddr = getsockname(listener)?;
    if let Some(path) = name.path() {
        unlink(path)?;
    }
    Ok(peers)
}

/// Connects to the server listening at `path`, sends `data`, shuts down its own write side so
/// that the server sees end of file, and returns the whole reply (read until the server closes).
pub fn request(path: &Path, data: &[u8]) -> nix::Result<Vec<u8>> {
    let addr = UnixAddr::new(path)?;
    let sock = socket(
        AddressFamily::Unix,
        SockType::Stream,
        SockFlag::SOCK_CLOEXEC,
        None,
    )?;
    loop {
        match connect(sock.as_raw_fd(), &addr) {
            Ok(()) => break,
            Err(Errno::EINTR) => {}
            Err(e) => return Err(e),
        }
    }
    write_all(&sock, data)?;
    shutdown(sock.as_fd().as_raw_fd(), Shutdown::Write)?;
    read_to_end(&sock)
}
