//! # System V message queues (System V 消息队列): typed messages, IPC_NOWAIT, IPC_RMID
//!
//! A shipped mistake: `send` passes msgsz counting the mtype field too.
use nix::errno::Errno;
use nix::sys::wait::{WaitStatus, waitpid};
use nix::unistd::{ForkResult, Pid, fork};

/// The longest message text this module sends or receives, in bytes.
pub const MAX_TEXT: usize = 256;

/// Which message `receive` takes from the queue.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Select {
    /// The oldest message, whatever its type (`msgtyp` 0).
    Any,
    /// The oldest message of exactly this type (`msgtyp` = the type, > 0).
    Type(libc::c_long),
    /// The oldest message of the lowest type that is at most this one (`msgtyp` = minus it).
    UpTo(libc::c_long),
}

/// One message as msgsnd(2) and msgrcv(2) see it: the type, then the text.
#[repr(C)]
struct Message {
    mtype: libc::c_long,
    mtext: [u8; MAX_TEXT],
}

/// msgget(2), -1 made an error.
fn msgget(key: libc::key_t, flags: libc::c_int) -> nix::Result<i32> {
    // SAFETY: msgget takes two integers and touches no memory of ours.
    Errno::result(unsafe { libc::msgget(key, flags) })
}

/// msgsnd(2) of `size` bytes of `msg`'s text, -1 made an error.
fn msgsnd(id: i32, msg: &Message, size: usize, flags: libc::c_int) -> nix::Result<()> {
    assert!(size <= MAX_TEXT);
    // SAFETY: the kernel reads the mtype field and `size` bytes of mtext, all inside `msg`.
    Errno::result(unsafe { libc::msgsnd(id, (msg as *const Message).cast(), size, flags) })
        .map(drop)
}

/// msgrcv(2) into `msg`, at most MAX_TEXT bytes of text; returns the text's length.
fn msgrcv(
    id: i32,
    msg: &mut Message,
    msgtyp: libc::c_long,
    flags: libc::c_int,
) -> nix::Result<usize> {
    // SAFETY: the kernel writes the mtype field and at most MAX_TEXT bytes of mtext, all
    // inside `msg`.
    let n = unsafe { libc::msgrcv(id, (msg as *mut Message).cast(), MAX_TEXT, msgtyp, flags) };
    Errno::result(n).map(|n| n as usize)
}

/// msgctl(2) with IPC_RMID, -1 made an error.
fn msgctl_rmid(id: i32) -> nix::Result<()> {
    // SAFETY: IPC_RMID reads no buffer; a null pointer is allowed.
    Errno::result(unsafe { libc::msgctl(id, libc::IPC_RMID, std::ptr::null_mut()) }).map(drop)
}

/// Creates a new queue at `key` with permission bits `mode`; fails with `EEXIST` if one is
/// there already. Returns the queue's id.
pub fn create_queue(key: libc::key_t, mode: u32) -> nix::Result<i32> {
    msgget(
        key,
        libc::IPC_CREAT | libc::IPC_EXCL | (mode & 0o777) as libc::c_int,
    )
}

/// Sends `text` as a message of type `mtype`, waiting while the queue is full.
pub fn send(id: i32, mtype: libc::c_long, text: &[u8]) -> nix::Result<()> {
    if mtype <= 0 {
        return Err(Errno::EINVAL);
    }
    if text.len() > MAX_TEXT {
        return Err(Errno::E2BIG);
    }
    let mut msg = Message {
        mtype,
        mtext: [0; MAX_TEXT],
    };
    msg.mtext[..text.len()].copy_from_slice(text);
    loop {
        // The mistake: msgsz counts the mtype field too, as with sizeof(struct) in C.
        match msgsnd(
            id,
            &msg,
            text.len() + std::mem::size_of::<libc::c_long>(),
            0,
        ) {
            Err(Errno::EINTR) => continue,
            other => return other,
        }
    }
}

/// Takes the message `which` selects; waits for one unless `nowait`, in which case it fails
/// with `ENOMSG` when none matches. Returns the message's type and text.
pub fn receive(id: i32, which: Select, nowait: bool) -> nix::Result<(libc::c_long, Vec<u8>)> {
    let msgtyp = match which {
        Select::Any => 0,
        Select::Type(t) if t > 0 => t,
        Select::UpTo(t) if t > 0 => -t,
        _ => return Err(Errno::EINVAL),
    };
    let flags = if nowait { libc::IPC_NOWAIT } else { 0 };
    let mut msg = Message {
        mtype: 0,
        mtext: [0; MAX_TEXT],
    };
    loop {
        match msgrcv(id, &mut msg, msgtyp, flags) {
            Ok(n) => return Ok((msg.mtype, msg.mtext[..n].to_vec())),
            Err(Errno::EINTR) => continue,
            Err(e) => return Err(e),
        }
    }
}

/// Removes the queue at once (msgctl(2) `IPC_RMID`).
pub fn remove_queue(id: i32) -> nix::Result<()> {
    msgctl_rmid(id)
}

/// Forks a child that sends each of `messages`, in order, then leaves with `_exit(0)`
/// (`_exit(1)` if a send fails). Returns the child's pid; the caller reaps it.
pub fn spawn_sender(id: i32, messages: &[(libc::c_long, Vec<u8>)]) -> nix::Result<Pid> {
    // SAFETY: the child only makes msgsnd calls on memory it already has and leaves through
    // _exit; it takes no lock another thread might hold.
    match unsafe { fork() }? {
        ForkResult::Child => {
            let ok = messages.iter().all(|(t, text)| send(id, *t, text).is_ok());
            // SAFETY: _exit ends this forked copy without running the parent's destructors
            // or returning into the caller.
            unsafe { libc::_exit(if ok { 0 } else { 1 }) }
        }
        ForkResult::Parent { child } => Ok(child),
    }
}

/// Creates a queue at `key` with `mode`, has a forked child send `messages` through it,
/// receives as many messages as were sent (the oldest first), reaps the child, removes the
/// queue and returns what it received. Fails with `EIO` if the child did not exit with 0.
pub fn gather(
    key: libc::key_t,
    mode: u32,
    messages: &[(libc::c_long, Vec<u8>)],
) -> nix::Result<Vec<(libc::c_long, Vec<u8>)>> {
    let id = create_queue(key, mode)?;
    let result = exchange(id, messages);
    // Removed on every path: a queue outlives every process that used it.
    let removed = remove_queue(id);
    let got = result?;
    removed?;
    Ok(got)
}

/// The part of [`gather`] between creating and removing the queue.
fn exchange(
    id: i32,
    messages: &[(libc::c_long, Vec<u8>)],
) -> nix::Result<Vec<(libc::c_long, Vec<u8>)>> {
    let child = spawn_sender(id, messages)?;
    let mut got = Vec::with_capacity(messages.len());
    let mut failed = None;
    for _ in messages {
        match receive(id, Select::Any, false) {
            Ok(m) => got.push(m),
            Err(e) => {
                // Removing the queue now ends a send the child may be waiting in (EIDRM),
                // so the wait below cannot hang.
                let _ = remove_queue(id);
                failed = Some(e);
                break;
            }
        }
    }
    let status = loop {
        match waitpid(child, None) {
            Err(Errno::EINTR) => continue,
            other => break other?,
        }
    };
    if let Some(e) = failed {
        return Err(e);
    }
    match status {
        WaitStatus::Exited(_, 0) => Ok(got),
        _ => Err(Errno::EIO),
    }
}
