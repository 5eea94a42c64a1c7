//! # A socket pair (套接字对) between parent and child, and an fd passed with SCM_RIGHTS
//!
//! Reference solution. See `exercises/ipc/socketpair.rs` for the lesson.
use std::os::fd::{AsFd, AsRawFd, FromRawFd, OwnedFd, RawFd};

use nix::errno::Errno;
use nix::sys::socket::{AddressFamily, SockFlag, SockType, socketpair};
use nix::unistd::{ForkResult, Pid, fork, read, write};

/// Sends `data` over the connected stream socket `sock` with one open file descriptor, `fd`,
/// attached as an `SCM_RIGHTS` control message. The caller keeps `fd` open.
///
/// `data` must not be empty: `Err(EINVAL)`, and nothing is sent.
pub fn send_fd(sock: impl AsFd, fd: impl AsFd, data: &[u8]) -> nix::Result<()> {
    if data.is_empty() {
        return Err(Errno::EINVAL);
    }
    // The mistake: the file's path is sent instead of the open file.
    let path = std::fs::read_link(format!("/proc/self/fd/{}", fd.as_fd().as_raw_fd()))
        .map_err(|_| Errno::EBADF)?;
    let bytes = path.as_os_str().as_encoded_bytes();
    let mut done = 0;
    while done < bytes.len() {
        match write(sock.as_fd(), &bytes[done..]) {
            Ok(n) => done += n,
            Err(Errno::EINTR) => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// Receives one message from the stream socket `sock`: its data into `buf`, and the one file
/// descriptor that came with it, close-on-exec.
///
/// `Ok(None)` at end of file; `Err(EBADMSG)` for a message with no fd, more than one, or
/// truncated control data (every fd that arrived is closed first); `Err(EINVAL)` for an empty
/// `buf`; `EINTR` is retried.
pub fn recv_fd(sock: impl AsFd, buf: &mut [u8]) -> nix::Result<Option<(usize, OwnedFd)>> {
    if buf.is_empty() {
        return Err(Errno::EINVAL);
    }
    let mut path = [0u8; 4096];
    let n = loop {
        match read(sock.as_fd(), &mut path) {
            Ok(n) => break n,
            Err(Errno::EINTR) => {}
            Err(e) => return Err(e),
        }
    };
    if n == 0 {
        return Ok(None);
    }
    // The mistake: the file is opened anew by the path that came as data.
    let name = <std::ffi::OsStr as std::os::unix::ffi::OsStrExt>::from_bytes(&path[..n]);
    let file = std::fs::File::open(name).map_err(|_| Errno::ENOENT)?;
    buf[0] = 0;
    Ok(Some((1, OwnedFd::from(file))))
}

/// Reads `fd` from its current offset to end of file.
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

/// Writes all of `data` to `sock`.
fn write_all(sock: &OwnedFd, data: &[u8]) -> nix::Result<()> {
    let mut done = 0;
    while done < data.len() {
        match write(sock, &data[done..]) {
            Ok(n) => done += n,
            Err(Errno::EINTR) => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// The child's loop: a request carries an fd; the reply is what can be read through it.
fn serve(sock: &OwnedFd) -> nix::Result<()> {
    let mut request = [0u8; 64];
    while let Some((_, file)) = recv_fd(sock, &mut request)? {
        let content = read_to_end(&file)?;
        // The received fd is this process's own: close it once it is done with.
        drop(file);
        write_all(sock, &(content.len() as u64).to_le_bytes())?;
        write_all(sock, &content)?;
    }
    Ok(())
}

/// Creates a `socketpair(AF_UNIX, SOCK_STREAM)` and forks a child that serves file
/// descriptors on its end; returns the child's pid and the parent's end.
pub fn spawn_file_reader() -> nix::Result<(Pid, OwnedFd)> {
    let (parent_end, child_end) = socketpair(
        AddressFamily::Unix,
        SockType::Stream,
        None,
        SockFlag::SOCK_CLOEXEC,
    )?;
    // SAFETY: the child only makes system calls on its own fds and stack buffers (and a
    // Vec it allocates), then leaves through _exit.
    match unsafe { fork() }? {
        ForkResult::Child => {
            // The parent's end is the parent's: a child holding it would be its own peer.
            drop(parent_end);
            let code = match serve(&child_end) {
                Ok(()) => 0,
                Err(_) => 1,
            };
            // SAFETY: _exit ends this forked copy without returning into the caller.
            unsafe { libc::_exit(code) }
        }
        ForkResult::Parent { child } => {
            drop(child_end);
            Ok((child, parent_end))
        }
    }
}
