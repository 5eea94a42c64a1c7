//! # A blocking echo server (阻塞 I/O), one thread per connection
//!
//! With **blocking I/O** (阻塞 I/O), the simplest model, a system call that cannot go on
//! puts the calling thread to sleep: `accept(2)` sleeps until a client connects, `read(2)`
//! (`recv`) until the peer sends something, `write(2)` (`send`) until the kernel's send buffer
//! has room. The code reads like a story, one step after another, and the kernel does the
//! waiting. The price: a thread asleep in `read` on one client does nothing else. A server
//! with a single thread that accepts a client and then echoes it until it leaves serves **one
//! client at a time**: a second client's connection is completed by the kernel (it sits in
//! the listener's accept queue, the backlog of listen(2)) but nobody calls `accept` for it
//! while the first client is quiet. So a blocking server gives each connection a thread (or
//! a process) of its own: the main thread only accepts, each connection thread only echoes.
//!
//! ## One connection's life
//!
//! `echo` reads into a buffer and writes back what it read, in a loop. A read returns what
//! has arrived so far, which may be a piece of what the client sent or several of its sends
//! together: TCP is a byte stream with no message boundaries, so the loop goes on until read
//! returns **0**, which means the client has shut down its sending side (`shutdown(SHUT_WR)`
//! or `close`). The client may still be reading then (a **half-close**, 半关闭): the server
//! writes back everything it read, and closes its socket last, which the client sees as end
//! of file. A write may take only part of the buffer (loop over the rest; `write_all` does).
//!
//! ## A client's trouble is that client's, not the server's
//!
//! Clients disappear: a client that closes with unread data in its socket, or is killed,
//! makes its kernel answer with a reset (RST). The server's next `read` then fails with
//! `ECONNRESET`, and a `write` with `ECONNRESET` or `EPIPE`. A `write(2)` to such a socket
//! also sends the writer **SIGPIPE**, whose default action kills the whole process, every
//! client with it. Either ignore SIGPIPE in the server or write with `send(2)` and
//! `MSG_NOSIGNAL` (std's `TcpStream` does the latter on Linux; `nix::unistd::write` on the fd
//! does not). Then handle the error like end of file: end that connection, close its socket,
//! and let the others go on. Never exit, and never retry a write that failed with `EPIPE`.
//!
//! Every connection's socket must be closed when the connection ends, or the fd leaks: the
//! kernel keeps the socket in `CLOSE_WAIT` (the peer is gone, this side never closed), and
//! after a few thousand clients `accept` fails with `EMFILE`. In Rust the socket is closed
//! when its `TcpStream` is dropped, so move the stream into its thread and let it go.
//!
//! ## How the tests run your server
//!
//! The test binds a `TcpListener` on `127.0.0.1` port 0 (the kernel picks a free port),
//! forks a child process that calls [`serve`] with it, and connects real clients to it.
//! The server runs until the test kills it with SIGKILL at the end. The child's SIGPIPE is at
//! its default action (the test sets it so; a plain Rust program starts with it ignored),
//! so a write that raises SIGPIPE kills your server. The test reads the server's threads,
//! what each is asleep in, and its fds from `/proc/<pid>/task` and `/proc/<pid>/fd`, and the
//! sockets' states from `/proc/net/tcp`.
//!
//! Man pages: socket(7), tcp(7), accept(2), listen(2), recv(2), send(2) (`MSG_NOSIGNAL`),
//! shutdown(2), signal(7) (SIGPIPE), pthreads(7), proc(5) (`/proc/net/tcp`).
use std::io;
use std::net::{TcpListener, TcpStream};

/// Echoes everything read from `stream` back to it until the client ends its sending side
/// (read returns 0), then closes the connection (drops the stream); returns how many bytes
/// were echoed.
///
/// Read into a buffer in a loop and write back every byte read (a write may take only part
/// of it); retry a call interrupted by a signal (`ErrorKind::Interrupted`). Any other error
/// (`ECONNRESET`, `EPIPE`) is returned: it ends this connection only. Never raise SIGPIPE.
pub fn echo(_stream: TcpStream) -> io::Result<u64> {
    todo!()
}

/// Serves `listener` for ever: accepts each connection and echoes it ([`echo`]) on a thread
/// of its own, so that a client that is slow, or sends nothing, does not hold up the others;
/// the accepting thread goes straight back to accept(2).
///
/// A connection's error ends that connection (its thread), never the server. An accept that
/// fails because of one client (`ECONNABORTED`, `EPROTO`, `EPERM`, or `EINTR`) is retried;
/// any other error of accept(2) (`EINVAL` on a socket that is not listening, `EMFILE`) is
/// returned. So `serve` returns only with an error.
pub fn serve(_listener: TcpListener) -> io::Result<()> {
    todo!()
}
