//! # An echo server on epoll (I/O 多路复用): level-triggered and edge-triggered
//!
//! One thread, many clients. Instead of one blocking thread per connection, the server puts
//! every socket in **non-blocking** mode (非阻塞, `O_NONBLOCK`: a call that would have to wait
//! fails with `EAGAIN` instead) and asks the kernel which of them are ready. `epoll(7)` is
//! Linux's interface for that question: `epoll_create1(2)` makes an epoll instance (an fd),
//! `epoll_ctl(2)` adds, modifies or deletes an fd in its *interest list* together with the
//! events wanted (`EPOLLIN`: readable, `EPOLLOUT`: writable) and a `u64` of your choice that
//! comes back with each event, and `epoll_wait(2)` sleeps until some of them are ready and
//! returns those. nix wraps the three as [`nix::sys::epoll::Epoll`] (`new`, `add`, `modify`,
//! `delete`, `wait`) and `EpollEvent::new(flags, data)`.
//!
//! ## Level-triggered and edge-triggered (水平触发 / 边缘触发)
//!
//! - **Level-triggered** (the default): `epoll_wait` reports an fd *as long as* it is ready.
//!   Read part of the data and it is reported again; that makes it forgiving, but it also means
//!   an interest that is always true (`EPOLLOUT` on a socket with nothing to send: a socket is
//!   almost always writable) wakes the loop at once every time: a busy loop that burns a CPU.
//!   So ask for `EPOLLOUT` only while a connection has unsent bytes, and stop asking for
//!   `EPOLLIN` once a client has sent end of file.
//! - **Edge-triggered** (`EpollFlags::EPOLLET`): `epoll_wait` reports an fd when it *becomes*
//!   ready (new data arrived, new room in the send buffer, new connections queued). What you
//!   leave unread is not reported again: after an event, read (or accept) **until `EAGAIN`**,
//!   or the rest waits forever. One accept per event on a burst of connections loses all but the
//!   first; one read per event on a big message stalls that client.
//!
//! Edge-triggered draining has a fairness problem of its own: a client that sends without
//! pause can keep a "read until `EAGAIN`" loop busy for a long time. A fair server gives each
//! connection a budget of reads per turn and remembers the ones it left unfinished (no new edge
//! will come for them), serving them again on the next turn (with `epoll_wait` timeout 0).
//!
//! ## Writing: partial writes and per-connection buffers
//!
//! A non-blocking `send(2)` takes only what fits in the socket's send buffer, possibly nothing
//! (`EAGAIN`). An echo server that reads 1 MiB from a client who reads slowly cannot send it at
//! once: it keeps the unsent bytes in that connection's own output buffer, asks for `EPOLLOUT`,
//! and sends more when the socket becomes writable, meanwhile serving everyone else. Bytes that
//! are dropped after a short write never reach the client.
//!
//! ## Closing, errors, limits
//!
//! - `recv` returning 0 is end of file (the client shut down its sending side, a half-close):
//!   finish sending what it is owed, then close the connection. Closing an fd removes it from
//!   the epoll interest list (when no other copy of it is open); delete it first anyway.
//! - A client may vanish abruptly (a reset): `recv` fails with `ECONNRESET`, `send` with
//!   `EPIPE` or `ECONNRESET`. Drop that connection and go on. Send with `MSG_NOSIGNAL`, or a
//!   write to a reset socket kills the whole server with `SIGPIPE`.
//! - Every connection is an fd, and a process may have at most `RLIMIT_NOFILE` of them open
//!   (the soft limit, often 1024; `accept` fails with `EMFILE` beyond it). A process may raise
//!   its soft limit up to the hard limit without privileges: `getrlimit(2)` / `setrlimit(2)`.
//! - An idle server sleeps in `epoll_wait` with timeout -1 (`EpollTimeout::NONE`): a timeout of
//!   0 returns at once, and a loop around it never sleeps.
//!
//! ## What you write
//!
//! - [`raise_fd_limit`]: raise the soft `RLIMIT_NOFILE` to the hard limit.
//! - [`serve`]: the echo server, in either [`Trigger`] mode. The tests run it in a child process
//!   they fork and stop with `SIGKILL`, connect real TCP clients to it on 127.0.0.1, and read its
//!   CPU time (`/proc/<pid>/stat`), its fd table (`/proc/<pid>/fd`), what it is asleep in
//!   (`/proc/<pid>/syscall`) and the sockets' queues (`/proc/net/tcp`).
//!
//! Man pages: epoll(7), epoll_create1(2), epoll_ctl(2), epoll_wait(2), socket(7), tcp(7),
//! accept4(2), recv(2), send(2) (`MSG_NOSIGNAL`), fcntl(2) (`O_NONBLOCK`), getrlimit(2),
//! shutdown(2).
use std::convert::Infallible;
use std::net::TcpListener;

/// How epoll reports readiness to [`serve`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Trigger {
    /// Level-triggered (水平触发): `epoll_wait` reports an fd for as long as it is ready.
    Level,
    /// Edge-triggered (边缘触发, `EPOLLET` on every fd): `epoll_wait` reports an fd when it
    /// becomes ready; the server must then read or accept until `EAGAIN`.
    Edge,
}

/// Raises this process's soft limit on open fds (`RLIMIT_NOFILE`) to its hard limit (leaving the
/// hard limit as it is), and returns the new soft limit.
pub fn raise_fd_limit() -> nix::Result<u64> {
    todo!()
}

/// Serves an echo service on `listener` with epoll in the given trigger mode, forever: every
/// byte a client sends comes back to it, in order.
///
/// - First raise the fd limit ([`raise_fd_limit`]), so that more than 1024 clients can be served.
/// - Put the listener and every accepted connection in non-blocking mode and register them with
///   one epoll instance, all with `EPOLLET` in [`Trigger::Edge`] mode, none in
///   [`Trigger::Level`] mode. Sleep in `epoll_wait` with no timeout while nothing is to be done.
/// - Accept every pending connection when the listener is reported.
/// - Keep each connection's unsent bytes in its own buffer; ask for `EPOLLOUT` only while that
///   buffer is not empty.
/// - When a client sends end of file, send it the rest of its bytes, then close the connection.
///   When a client resets its connection, close it. Either way the server keeps no fd for it.
/// - One client's traffic must not hold up the others for long (no unbounded loop on one fd).
///
/// Returns only on an error that ends the service: an epoll call failing, or `accept4` failing
/// with anything but `EAGAIN`, `EINTR` or `ECONNABORTED` (for example `EMFILE`).
pub fn serve(_listener: TcpListener, _trigger: Trigger) -> nix::Result<Infallible> {
    todo!()
}
