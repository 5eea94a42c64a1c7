//! # A socket pair (套接字对) between parent and child, and an fd passed with SCM_RIGHTS
//!
//! Reference solution. See `exercises/ipc/socketpair.rs` for the lesson.
use std::io::{IoSlice, IoSliceMut};
use std::os::fd::{AsFd, AsRawFd, FromRawFd, OwnedFd, RawFd};

use nix::cmsg_space;
use nix::errno::Errno;
use nix::sys::socket::{
    AddressFamily, ControlMessage, ControlMessageOwned, MsgFlags, SockFlag, SockType, recvmsg,
    sendmsg, socketpair,
};
use nix::unistd::{ForkResult, Pid, fork, read, write};

/// Sends `data` over the connected stream socket `sock` with one open file descriptor, `fd`,
/// attached as an `SCM_RIGHTS` control message. The caller keeps `fd` open.
///
/// `data` must not be empty: `Err(EINVAL)`, and nothing is sent.
pub fn send_fd(sock: impl AsFd, fd: impl AsFd, data: &[u8]) -> nix::Result<()> {
    if data.is_empty() {
        return Err(Errno::EINVAL);
    }
    let fds = [fd.as_fd().as_raw_fd()];
    let cmsg = [ControlMessage::ScmRights(&fds)];
    let iov = [IoSlice::new(data)];
    let sent = loop {
        match sendmsg::<()>(
            sock.as_fd().as_raw_fd(),
            &iov,
            &cmsg,
            MsgFlags::empty(),
            None,
        ) {
            Ok(n) => break n,
            Err(Errno::EINTR) => continue,
            Err(e) => return Err(e),
        }
    };
    // The fd went with the first byte; the rest of a short send goes as plain data.
    let mut done = sent;
    while done < data.len() {
        match write(sock.as_fd(), &data[done..]) {
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
    let mut space = cmsg_space!(RawFd);
    let (bytes, truncated, fds) = loop {
        let mut iov = [IoSliceMut::new(buf)];
        let msg = match recvmsg::<()>(
            sock.as_fd().as_raw_fd(),
            &mut iov,
            Some(&mut space),
            MsgFlags::MSG_CMSG_CLOEXEC,
        ) {
            Ok(msg) => msg,
            Err(Errno::EINTR) => continue,
            Err(e) => return Err(e),
        };
        let (bytes, flags) = (msg.bytes, msg.flags);
        if flags.contains(MsgFlags::MSG_CTRUNC) {
            // nix will not parse control data the kernel cut short (cmsgs() fails with
            // ENOBUFS), yet the fds that fitted have arrived: find and close them by hand.
            close_rights(&mut space);
            break (bytes, true, Vec::new());
        }
        let mut fds: Vec<OwnedFd> = Vec::new();
        for cmsg in msg.cmsgs()? {
            if let ControlMessageOwned::ScmRights(raw) = cmsg {
                // SAFETY: the kernel has just installed these fds in this process for us;
                // nothing else owns them.
                fds.extend(raw.into_iter().map(|r| unsafe { OwnedFd::from_raw_fd(r) }));
            }
        }
        break (bytes, false, fds);
    };
    if truncated {
        return Err(Errno::EBADMSG);
    }
    if bytes == 0 && fds.is_empty() {
        return Ok(None);
    }
    if fds.len() != 1 {
        // Dropping the vector closes every fd that did arrive.
        return Err(Errno::EBADMSG);
    }
    let fd = fds.into_iter().next().expect("exactly one fd");
    Ok(Some((bytes, fd)))
}

/// Closes every fd of the `SCM_RIGHTS` messages in a control buffer that `recvmsg` filled, walking
/// it with the cmsg(3) macros (for a buffer the kernel cut short, which nix will not parse).
fn close_rights(space: &mut [u8]) {
    // SAFETY: an all-zero msghdr is a valid empty one; only its control fields are used.
    let mut hdr: libc::msghdr = unsafe { std::mem::zeroed() };
    hdr.msg_control = space.as_mut_ptr().cast();
    hdr.msg_controllen = space.len();
    let end = space.as_ptr() as usize + space.len();
    // SAFETY: the header points at our buffer with its true length; CMSG_FIRSTHDR and
    // CMSG_NXTHDR stay inside it (they return null past its end or at a length too small).
    let mut c = unsafe { libc::CMSG_FIRSTHDR(&hdr) };
    while !c.is_null() {
        // SAFETY: `c` is a header inside the buffer (see above); its data follows it there.
        let (level, kind, len, data) = unsafe {
            (
                (*c).cmsg_level,
                (*c).cmsg_type,
                (*c).cmsg_len,
                libc::CMSG_DATA(c),
            )
        };
        if level == libc::SOL_SOCKET && kind == libc::SCM_RIGHTS {
            let room = end.saturating_sub(data as usize);
            let payload = len.saturating_sub(data as usize - c as usize);
            for i in 0..payload.min(room) / size_of::<RawFd>() {
                // SAFETY: the fd number lies inside the buffer; it may be unaligned.
                let fd = unsafe { data.cast::<RawFd>().add(i).read_unaligned() };
                // SAFETY: the kernel installed this fd for us and nothing else owns it.
                drop(unsafe { OwnedFd::from_raw_fd(fd) });
            }
        }
        // SAFETY: as for CMSG_FIRSTHDR.
        c = unsafe { libc::CMSG_NXTHDR(&hdr, c) };
    }
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
