//! # POSIX message queues (POSIX 消息队列): priorities, a full queue, and unlinking the name
//!
//! Reference solution. See `exercises/ipc/posix_mqueue.rs` for the lesson.
use nix::errno::Errno;
use nix::mqueue::{MQ_OFlag, mq_close, mq_getattr, mq_open, mq_receive, mq_send, mq_unlink};
pub use nix::mqueue::{MqAttr, MqdT};
use nix::sys::stat::Mode;
use nix::unistd::{ForkResult, Pid, fork};

/// Creates a new queue `name` (`O_CREAT | O_EXCL | O_RDWR`, mode 0600) with the asked size,
/// non-blocking when `nonblocking` is true.
pub fn create_queue(
    name: &str,
    max_messages: i64,
    message_size: i64,
    nonblocking: bool,
) -> nix::Result<MqdT> {
    let mut flags = MQ_OFlag::O_CREAT | MQ_OFlag::O_EXCL | MQ_OFlag::O_RDWR;
    if nonblocking {
        flags |= MQ_OFlag::O_NONBLOCK;
    }
    // mq_flags is ignored by mq_open (the O_NONBLOCK in the open flags decides), and
    // mq_curmsgs too.
    let attr = MqAttr::new(0, max_messages, message_size, 0);
    // Some(&attr), never None, with O_CREAT: nix 0.31 passes neither mode nor attributes for
    // None, and the variadic C mq_open then reads garbage for both (EINVAL or EFAULT).
    mq_open(name, flags, Mode::from_bits_truncate(0o600), Some(&attr))
}

/// Sends one message; `Ok(false)` when a non-blocking queue is full.
pub fn try_send(queue: &MqdT, priority: u32, message: &[u8]) -> nix::Result<bool> {
    loop {
        match mq_send(queue, message, priority) {
            Ok(()) => return Ok(true),
            Err(Errno::EAGAIN) => return Ok(false),
            Err(Errno::EINTR) => continue,
            Err(e) => return Err(e),
        }
    }
}

/// Receives the next message, with a buffer of the queue's `mq_msgsize`.
pub fn receive(queue: &MqdT) -> nix::Result<(u32, Vec<u8>)> {
    let size = mq_getattr(queue)?.msgsize();
    let mut buf = vec![0u8; size as usize];
    let mut priority = 0;
    loop {
        match mq_receive(queue, &mut buf, &mut priority) {
            Ok(n) => {
                buf.truncate(n);
                return Ok((priority, buf));
            }
            Err(Errno::EINTR) => continue,
            Err(e) => return Err(e),
        }
    }
}

/// What the sender child does: open by name, send everything, close.
fn send_by_name(name: &str, messages: &[(u32, Vec<u8>)]) -> nix::Result<()> {
    // No O_CREAT: the queue must exist; so None is fine here.
    // The mistake: the sender creates the queue when it is missing.
    let attr = MqAttr::new(0, 10, 64, 0);
    // The mistake: (continued) O_CREAT, so a missing receiver goes unnoticed.
    let queue = mq_open(
        name,
        MQ_OFlag::O_WRONLY | MQ_OFlag::O_CREAT,
        Mode::from_bits_truncate(0o600),
        Some(&attr),
    )?;
    for (priority, message) in messages {
        loop {
            match mq_send(&queue, message, *priority) {
                Ok(()) => break,
                Err(Errno::EINTR) => continue,
                Err(e) => return Err(e),
            }
        }
    }
    mq_close(queue)
}

/// Forks a child that opens `name` and sends `messages`, then `_exit(0)` (1 on failure).
pub fn spawn_sender(name: &str, messages: &[(u32, Vec<u8>)]) -> nix::Result<Pid> {
    // SAFETY: the child only makes system calls on memory it owns (the name and the messages
    // were copied by fork) and leaves through _exit; it takes no lock another thread may hold.
    match unsafe { fork() }? {
        ForkResult::Child => {
            let code = match send_by_name(name, messages) {
                Ok(()) => 0,
                Err(_) => 1,
            };
            // SAFETY: _exit ends the forked copy without returning into the caller's code.
            unsafe { libc::_exit(code) }
        }
        ForkResult::Parent { child } => Ok(child),
    }
}

/// Removes the queue's name.
pub fn remove_queue(name: &str) -> nix::Result<()> {
    mq_unlink(name)
}
