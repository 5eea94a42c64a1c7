//! Classic mistake: one pipe for both directions; the parent and the server share its two ends.
//!
//! # Request and response over two pipes (管道): a tiny server in a forked child
//!
//! Reference solution. See `exercises/ipc/pipe_duplex.rs` for the lesson.
use std::os::fd::{AsFd, OwnedFd};

use nix::errno::Errno;
use nix::sys::wait::{WaitStatus, waitpid};
use nix::unistd::{ForkResult, Pid, fork, pipe, read, write};

/// The largest message either side sends or accepts: 1 MiB.
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

/// Writes all of `buf`, looping over short writes and retrying `EINTR`.
fn write_all(fd: impl AsFd, buf: &[u8]) -> nix::Result<()> {
    let mut done = 0;
    while done < buf.len() {
        match write(fd.as_fd(), &buf[done..]) {
            Ok(n) => done += n,
            Err(Errno::EINTR) => continue,
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// Fills `buf` from `fd`, looping over short reads and retrying `EINTR`. Returns how many
/// bytes it got: fewer than `buf.len()` only at end of file.
fn read_full(fd: impl AsFd, buf: &mut [u8]) -> nix::Result<usize> {
    let mut got = 0;
    while got < buf.len() {
        match read(fd.as_fd(), &mut buf[got..]) {
            Ok(0) => break,
            Ok(n) => got += n,
            Err(Errno::EINTR) => continue,
            Err(e) => return Err(e),
        }
    }
    Ok(got)
}

/// Writes one frame: the length as 4 little-endian bytes, then the message.
pub fn send_message(fd: impl AsFd, message: &[u8]) -> nix::Result<()> {
    if message.len() > MAX_MESSAGE {
        return Err(Errno::EMSGSIZE);
    }
    let len = message.len() as u32;
    write_all(fd.as_fd(), &len.to_le_bytes())?;
    write_all(fd.as_fd(), message)
}

/// Reads one frame; `Ok(None)` at end of file before the first byte of a frame.
pub fn recv_message(fd: impl AsFd) -> nix::Result<Option<Vec<u8>>> {
    let mut header = [0u8; 4];
    match read_full(fd.as_fd(), &mut header)? {
        0 => return Ok(None),
        4 => {}
        _ => return Err(Errno::EPROTO),
    }
    let len = u32::from_le_bytes(header) as usize;
    if len > MAX_MESSAGE {
        return Err(Errno::EMSGSIZE);
    }
    let mut message = vec![0u8; len];
    if read_full(fd.as_fd(), &mut message)? < len {
        return Err(Errno::EPROTO);
    }
    Ok(Some(message))
}

/// The child's loop: answer every request until end of file.
fn serve(requests: &OwnedFd, responses: &OwnedFd) -> nix::Result<()> {
    while let Some(request) = recv_message(requests)? {
        send_message(responses, &request.to_ascii_uppercase())?;
    }
    Ok(())
}

/// Starts the server in a forked child; returns its pid and the parent's two ends.
pub fn spawn_server() -> nix::Result<Server> {
    // The mistake: one pipe for both directions, "the parent writes, the server answers".
    let (read_end, write_end) = pipe()?;
    // SAFETY: the child only closes fds, runs the server loop (read/write syscalls and heap
    // buffers) and leaves through _exit; the test process that forks has a single thread
    // when it calls this.
    match unsafe { fork() }? {
        ForkResult::Child => {
            // The mistake: the server reads requests from and writes responses to the same pipe.
            let code = match serve(&read_end, &write_end) {
                Ok(()) => 0,
                Err(_) => 1,
            };
            // SAFETY: _exit ends this forked copy at once, without returning into the caller
            // or running destructors and atexit handlers that belong to the parent.
            unsafe { libc::_exit(code) }
        }
        ForkResult::Parent { child } => {
            Ok(Server {
                pid: child,
                // The mistake: both of the parent's ends belong to the one pipe.
                requests: write_end,
                responses: read_end,
            })
        }
    }
}

/// Sends each request and reads its response before the next one.
pub fn round_trips(server: &Server, requests: &[Vec<u8>]) -> nix::Result<Vec<Vec<u8>>> {
    let mut responses = Vec::with_capacity(requests.len());
    for request in requests {
        send_message(&server.requests, request)?;
        match recv_message(&server.responses)? {
            Some(response) => responses.push(response),
            None => return Err(Errno::EPIPE),
        }
    }
    Ok(responses)
}

/// Closes the parent's ends (requests first), then reaps the server.
pub fn stop_server(server: Server) -> nix::Result<WaitStatus> {
    let Server {
        pid,
        requests,
        responses,
    } = server;
    drop(requests);
    drop(responses);
    loop {
        match waitpid(pid, None) {
            Err(Errno::EINTR) => continue,
            other => return other,
        }
    }
}
