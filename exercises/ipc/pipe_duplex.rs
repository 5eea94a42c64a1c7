//! # Request and response over two pipes (管道): a tiny server in a forked child
//!
//! A pipe is **one-way**. `pipe(2)` makes one channel with a read end and a write end, and
//! whatever is written to the write end comes out of the read end, whoever reads it. There is
//! no "my side" and "your side": if a parent and its child share one pipe for both directions,
//! the parent may read back its own request before the child sees it, and the child may read
//! its own reply as the next request. The kernel does not know who meant the bytes for whom.
//! So a conversation in both directions (全双工, duplex) needs **two** pipes:
//!
//! ```text
//!             requests pipe
//!   parent  ── write end ─────────> read end ──  child (the server)
//!           <─ read end <───────── write end ──
//!             responses pipe
//! ```
//!
//! After `fork(2)` both processes hold all four ends. Each closes the two it does not use:
//! the parent keeps the requests' write end and the responses' read end, the child the
//! requests' read end and the responses' write end. The rules from `ipc/pipe_direction` hold
//! for each pipe: `read(2)` returns 0 (end of file) only once every write end in every process
//! is closed, so the server, which loops "read a request, write a response", ends when the
//! parent closes the requests' write end, and only if the server closed its own copy of it.
//!
//! ## Messages on a byte stream
//!
//! A pipe carries bytes, not messages: one `write` may arrive in several `read`s, and two
//! writes may arrive in one read. So both sides agree on a frame: a 4-byte **length**, in
//! little-endian byte order (`u32::to_le_bytes`), then that many bytes of message. To read a
//! message, read exactly 4 bytes, then exactly that many: loop until you have them all, since
//! every `read` may return less than asked. End of file before the first byte of a frame is
//! the clean end of the conversation; end of file inside a frame means the writer went away in
//! the middle of a message, a protocol error.
//!
//! ## Why lockstep
//!
//! A pipe holds only 64 KiB. A client that writes all its requests before reading any response
//! deadlocks once the data is bigger than that: the server blocks writing a response nobody
//! reads, and so stops reading requests; the client blocks writing a request nobody reads. Each
//! waits for the other forever. Send one request, read its response, then send the next.
//!
//! ## What you write
//!
//! - [`send_message`] and [`recv_message`]: the frame, written whole and read whole.
//! - [`spawn_server`]: two pipes, a fork, the right closes on each side, and the server loop
//!   in the child: for each request, the response is the request with ASCII letters made upper
//!   case (`to_ascii_uppercase`).
//! - [`round_trips`]: the client side, in lockstep.
//! - [`stop_server`]: end the conversation and reap the server.
//!
//! The tests look at `/proc/<pid>/fd` and `/proc/<pid>/fdinfo` of both processes (which pipe,
//! by inode, and which end, by access mode), at what each process is blocked in
//! (`/proc/<pid>/syscall`), and at `waitpid`'s statuses.
//!
//! Man pages: pipe(2), pipe(7) (capacity, end of file, `EPIPE`), fork(2), close(2), read(2),
//! write(2), waitpid(2), _exit(2), proc(5).
use std::os::fd::{AsFd, OwnedFd};

use nix::sys::wait::WaitStatus;
use nix::unistd::Pid;

/// The largest message either side sends or accepts: 1 MiB. A length header above it is
/// refused (`EMSGSIZE`) rather than believed: a garbled header must not make the reader
/// allocate gigabytes.
pub const MAX_MESSAGE: usize = 1 << 20;

/// The parent's handle on a running server.
#[derive(Debug)]
pub struct Server {
    /// The server's pid, for `waitpid`.
    pub pid: Pid,
    /// The write end of the requests pipe: the parent writes requests here.
    pub requests: OwnedFd,
    /// The read end of the responses pipe: the parent reads responses here.
    pub responses: OwnedFd,
}

/// Writes one frame to `fd`: `message.len()` as 4 little-endian bytes, then the message.
///
/// Every byte is written: loop while `write(2)` takes only part of a buffer, retry a call that
/// failed with `EINTR`, return any other error (`EPIPE` when nobody can read any more). A
/// message longer than [`MAX_MESSAGE`] is refused with `Err(EMSGSIZE)` before anything is
/// written.
pub fn send_message(_fd: impl AsFd, _message: &[u8]) -> nix::Result<()> {
    todo!()
}

/// Reads one frame from `fd` and returns its message, or `Ok(None)` when `read(2)` reports end
/// of file before the first byte of a frame (the writer is done).
///
/// Reads exactly 4 bytes of length and then exactly that many bytes, looping over short reads
/// and retrying `EINTR`. End of file inside a frame (in the length or in the message) is
/// `Err(EPROTO)`; a length above [`MAX_MESSAGE`] is `Err(EMSGSIZE)`; any other error is
/// returned.
pub fn recv_message(_fd: impl AsFd) -> nix::Result<Option<Vec<u8>>> {
    todo!()
}

/// Starts the server: makes two pipes (requests and responses), forks, and returns the child's
/// pid with the parent's two ends.
///
/// Before either side goes on, each closes the ends it does not use: the parent keeps only the
/// requests' write end and the responses' read end; the child only the requests' read end and
/// the responses' write end. The child then answers each request with
/// `request.to_ascii_uppercase()` (with [`recv_message`] and [`send_message`]) until end of
/// file, and leaves with `_exit(0)`; if receiving or sending fails, with `_exit(1)`.
pub fn spawn_server() -> nix::Result<Server> {
    todo!()
}

/// Sends each request to the server in order and returns the responses in the same order.
///
/// Lockstep: read the response to one request before sending the next (the tests send more
/// than two pipes can hold). A server that closes its end instead of answering is
/// `Err(EPIPE)`; other errors are returned.
pub fn round_trips(_server: &Server, _requests: &[Vec<u8>]) -> nix::Result<Vec<Vec<u8>>> {
    todo!()
}

/// Ends the conversation and reaps the server: closes the parent's ends (the requests' write
/// end first: that is the server's end of file), then waits for the server with `waitpid` and
/// returns the status the kernel reported.
pub fn stop_server(_server: Server) -> nix::Result<WaitStatus> {
    todo!()
}
