//! # A named Unix-domain stream socket (Unix 域套接字): server and client, and who the client is
//!
//! A pipe or a socket pair joins only processes that inherit it. A **named** Unix-domain socket
//! joins any two processes on the machine that can reach a path: the server binds its socket to
//! a name in the file system, and clients connect to that name. unix(7) calls it `AF_UNIX` (or
//! `AF_LOCAL`); with `SOCK_STREAM` each connection is a full-duplex byte stream, as with TCP,
//! but nothing leaves the kernel.
//!
//! ## The server's calls, in this order
//!
//! 1. `socket(2)`: `socket(AddressFamily::Unix, SockType::Stream, SockFlag::SOCK_CLOEXEC,
//!    None)` in nix; a socket with no name yet.
//! 2. `bind(2)` to a `UnixAddr` made from the path (at most 107 bytes). bind **creates a
//!    socket file** at the path (`S_IFSOCK`, shown as `s` by `ls -l`). The file is only a name:
//!    no data goes through it, and it is **not** removed when the socket is closed. A server
//!    that ended (or crashed) leaves it behind, and the next `bind` to that path fails with
//!    `EADDRINUSE`. So a server removes a *stale* socket file first, and only a socket file:
//!    whatever else is at the path (a regular file, a directory) is someone's data, never to be
//!    deleted by a server that merely wants the name; `lstat(2)` tells what is there.
//! 3. `listen(2)` with a backlog: only now does the socket accept connections, and the kernel
//!    queues up to about the backlog's number of them until the server takes them. Connecting
//!    to a bound socket that does not listen fails with `ECONNREFUSED`, and `accept` on it
//!    with `EINVAL`.
//! 4. `accept(2)` (or `accept4` with `SOCK_CLOEXEC`) takes the next queued connection and
//!    returns a **new** socket for it; the listening socket goes on listening. Each client
//!    gets its own connected socket, which the server closes when done with that client.
//!
//! The client needs two calls: `socket(2)` and `connect(2)` to the same path. Then both sides
//! `read` and `write`. A client that has sent its whole request and wants the reply says so
//! with `shutdown(fd, Shutdown::Write)` (shutdown(2)): its side of the stream is closed for
//! writing, the server's `read` returns 0 (end of file), and the client can still read the reply.
//! (Closing the socket instead would also end the stream, but then the reply has nowhere to go.)
//!
//! ## Who is on the other end: `SO_PEERCRED`
//!
//! A Unix-domain socket knows who connected: the kernel records the **credentials** of the
//! process that called `connect` (its pid, uid and gid) at that moment, and the server reads
//! them with `getsockopt(conn, SO_PEERCRED)` (nix: `getsockopt(&conn,
//! sockopt::PeerCredentials)`, a `UnixCredentials` with `pid()`, `uid()`, `gid()`). The client
//! cannot forge them: they are the kernel's own record, which is why servers such as D-Bus or
//! systemd use them to decide what a client may do. Ask the **accepted** connection: on the
//! listening socket `SO_PEERCRED` gives the credentials of whoever called `listen`, that is the
//! server itself.
//!
//! ## Cleaning up
//!
//! Close each accepted connection when its client is served, close the listening socket when
//! the server stops, and remove the socket file: it is the server's, and a name left behind
//! is what makes the next server's `bind` fail.
//!
//! ## What you write
//!
//! [`listen_at`] (steps 1-3 with the stale file removed first), [`serve`] (accept, who, read,
//! reply, close; then clean up) and [`request`] (the client). The tests run each client in a
//! process of its own that they fork, so its pid is not the server's, and compare what `serve`
//! reports with the pids they got from `fork`.
//!
//! Man pages: unix(7), socket(2), bind(2), listen(2), accept(2), connect(2), shutdown(2),
//! getsockopt(2) and socket(7) (`SO_PEERCRED`, `SO_ACCEPTCONN`), getsockname(2), lstat(2),
//! inode(7) (`S_IFSOCK`), unlink(2).
use std::os::fd::OwnedFd;
use std::path::Path;

use nix::sys::socket::UnixCredentials;

/// Creates an `AF_UNIX` `SOCK_STREAM` socket (close-on-exec), binds it to `path` and makes it
/// listen with a backlog of at least 8; returns the listening socket.
///
/// If a socket file is already at `path` (a stale one, left by a server that has gone), remove
/// it first. If anything else is there, leave it alone: `bind` then fails with `EADDRINUSE`,
/// and that error is returned (as is any other error, with no fd left open).
pub fn listen_at(_path: &Path) -> nix::Result<OwnedFd> {
    todo!()
}

/// Serves `clients` connections on `listener`, one after another: for each, `accept` it, learn
/// the client's credentials with `SO_PEERCRED` on the accepted connection, read the request
/// until end of file, reply with the request's bytes in reverse order, and close the
/// connection. Then close the listening socket and remove its socket file (its path is the
/// listener's own name: `getsockname(2)`, nix's `getsockname::<UnixAddr>`).
///
/// Returns the clients' credentials in the order they were accepted, or the first error.
pub fn serve(_listener: OwnedFd, _clients: usize) -> nix::Result<Vec<UnixCredentials>> {
    todo!()
}

/// The client: connects a new `AF_UNIX` `SOCK_STREAM` socket to the server at `path`, writes all
/// of `data`, shuts down its write side (so the server sees end of file), reads the reply until
/// the server closes the connection, closes its socket and returns the reply.
///
/// Errors are returned: `ENOENT` when nothing is at `path`, `ECONNREFUSED` when nobody listens
/// on the socket there.
pub fn request(_path: &Path, _data: &[u8]) -> nix::Result<Vec<u8>> {
    todo!()
}
