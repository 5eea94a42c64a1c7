//! io_models/poll_server: a single-threaded echo server on poll(2) (I/O 多路复用, I/O
//! multiplexing).
//!
//! poll(2) does what select(2) does, with a better interface: instead of three bitmaps of
//! `FD_SETSIZE` (1024) bits it takes an array of `struct pollfd`, one entry per descriptor
//! (here nix's [`nix::poll::PollFd`]), each with the descriptor, the `events` you ask about
//! (`POLLIN`: readable, `POLLOUT`: writable) and the `revents` the kernel fills in. So:
//! - there is no limit at 1024: the array holds any descriptor number, as many as
//!   `RLIMIT_NOFILE` lets the process open;
//! - `events` is not overwritten: only `revents` is, on every call;
//! - the cost is still one pass over every entry per call (epoll(7) is the answer to that).
//!
//! Some conditions are reported in `revents` whether or not you asked for them: `POLLHUP`
//! (the connection is shut in both directions, e.g. the peer reset it), `POLLERR` (an error is
//! pending on the socket, e.g. `ECONNRESET`) and `POLLNVAL` (the descriptor is not open). A
//! server that only looks for `POLLIN` and `POLLOUT` and leaves such a client in the array is
//! told about it again at once, on every call, forever: a busy loop, and a descriptor that is
//! never closed. Close it and drop it from the array.
//!
//! A timeout of `PollTimeout::NONE` sleeps until something is ready; `PollTimeout::ZERO` only
//! looks, and a loop of those burns a whole CPU while nothing happens.
//!
//! As for select: make every socket non-blocking (O_NONBLOCK), do one read per ready client
//! per turn, keep the bytes a short write did not take and ask for `POLLOUT` only while a
//! client has some.
//!
//! Read: poll(2), socket(7), tcp(7), accept(2), shutdown(2), getrlimit(2) (`RLIMIT_NOFILE`).
//!
//! # The contract of [`serve`]
//!
//! - one process, one thread; every wait is one poll call with no timeout;
//! - accepts every client of `listener`, more than 1024 at once if `RLIMIT_NOFILE` allows,
//!   and echoes every byte a client sends back to that client, in order, however the bytes are
//!   chunked and however the clients interleave;
//! - a client that shuts down its sending side (the server reads end of file) gets the rest of
//!   its echo, and then the server closes its connection;
//! - a client that closes early or resets (`POLLHUP`/`POLLERR`, or a read or write fails:
//!   `ECONNRESET`, `EPIPE`) is closed and dropped from the array; the others are served on;
//! - no client starves: each turn takes at most one read of a bounded buffer per client;
//! - it never returns while it serves; the tests stop it by killing its process. It returns an
//!   error only for a failure of the listener itself or of poll.

use std::io;
use std::net::TcpListener;

/// Runs a single-threaded echo server on `listener` with poll(2), serving every client (see
/// the contract above) until the process is killed.
///
/// Returns only on an error of the listener or of poll itself (never `Ok`).
pub fn serve(_listener: TcpListener) -> io::Result<()> {
    todo!()
}
