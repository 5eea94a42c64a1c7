//! io_models/select_server: a single-threaded echo server on select(2) (I/O 多路复用, I/O
//! multiplexing).
//!
//! A blocking server spends its life asleep in one `read` or one `accept`: while it waits for
//! one client, the others wait for it. I/O multiplexing turns this around: the server sleeps
//! in *one* call that watches *all* its descriptors at once and returns as soon as any of them
//! is ready; it then does exactly the work that cannot block (one read on a readable socket,
//! one write on a writable one, accept on a readable listener) and goes back to sleep. One
//! thread serves every client.
//!
//! select(2) is the oldest such call. It takes three descriptor sets (`fd_set`, here nix's
//! [`nix::sys::select::FdSet`]): the ones to watch for reading, for writing, and for
//! exceptional conditions, plus `nfds` and a timeout:
//! - an `fd_set` is a bitmap of `FD_SETSIZE` (1024) bits, one per descriptor number `0..1024`:
//!   a descriptor of 1024 or more simply has no bit. In C, `FD_SET(1024, &set)` writes past
//!   the set (undefined behaviour); nix's `FdSet::insert` panics instead. A server must check
//!   before inserting: refuse such a client (close it), never crash;
//! - `nfds` is not a count: the kernel looks at descriptors `0..nfds`, so it is the highest
//!   descriptor in any set *plus one*;
//! - the sets are in-out arguments: select overwrites each with the descriptors that are
//!   ready. Before every call they must be filled again with everything to watch;
//! - the timeout `None` means "sleep until something is ready"; a zero timeout means "just
//!   look", and a loop of those burns a whole CPU while nothing happens.
//!
//! A readable socket has bytes, or end of file (read returns 0: the client shut down its
//! sending side), or an error (a reset client: `ECONNRESET`). A writable socket has room in its
//! send buffer; but `write` may take only part of what you give it (a short write), so each
//! client keeps the bytes it has not written back yet and the server watches that socket for
//! writing only while it holds some. Put the sockets in non-blocking mode (O_NONBLOCK): a
//! server that blocks in any one call serves no one meanwhile.
//!
//! Read: select(2), select_tut(2), socket(7), tcp(7), accept(2), shutdown(2), fcntl(2).
//!
//! # The contract of [`serve`]
//!
//! - one process, one thread; every wait is one select call with no timeout;
//! - accepts every client of `listener` and echoes every byte a client sends back to that
//!   client, in order, however the bytes are chunked and however the clients interleave;
//! - a client that shuts down its sending side (the server reads end of file) gets the rest of
//!   its echo, and then the server closes its connection;
//! - a client that closes early or resets (a read or write fails: `ECONNRESET`, `EPIPE`) is
//!   closed; the server goes on serving the others;
//! - no client starves: each turn takes at most one read of a bounded buffer per client;
//! - a client whose accepted descriptor is `FD_SETSIZE` or more is closed at once (refused),
//!   and the server goes on serving the others;
//! - it never returns while it serves; the tests stop it by killing its process. It returns an
//!   error only for a failure of the listener itself or of select.

use std::io;
use std::net::TcpListener;

/// select(2) can watch descriptors `0` to `FD_SETSIZE - 1` only: an `fd_set` is a bitmap of
/// this many bits (libc's `FD_SETSIZE`).
pub const FD_SETSIZE: i32 = libc::FD_SETSIZE as i32;

/// Runs a single-threaded echo server on `listener` with select(2), serving every client
/// (see the contract above) until the process is killed.
///
/// Returns only on an error of the listener or of select itself (never `Ok`).
pub fn serve(_listener: TcpListener) -> io::Result<()> {
    todo!()
}
