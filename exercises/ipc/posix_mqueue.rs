//! # POSIX message queues (POSIX 消息队列): priorities, a full queue, and unlinking the name
//!
//! A POSIX message queue is a list of **messages** kept by the kernel under a **name** such as
//! `/orders` (a slash, then no other slash). Unlike a pipe it keeps message boundaries: each
//! `mq_send(3)` puts one whole message in, each `mq_receive(3)` takes one whole message out.
//! And every message carries a **priority**, an unsigned number: a receive always takes the
//! oldest message of the **highest** priority in the queue, so priority 9 overtakes priority 1,
//! while messages of the same priority come out in the order they were sent (FIFO).
//!
//! `mq_open(3)` opens a queue by name and returns a descriptor (an fd on Linux; nix wraps it
//! as [`MqdT`], which is **not** closed when dropped: call `mq_close`). With `O_CREAT` it
//! makes the queue if the name is new, with the permission bits you pass and the two
//! attributes that fix its size for good (`struct mq_attr`, nix's [`MqAttr`]):
//!
//! - `mq_maxmsg`: how many messages it holds at most (Linux allows up to
//!   `/proc/sys/fs/mqueue/msg_max`, 10 by default, without privileges);
//! - `mq_msgsize`: the longest message in bytes (up to `/proc/sys/fs/mqueue/msgsize_max`,
//!   8192 by default).
//!
//! `O_EXCL` with `O_CREAT` makes the open fail with `EEXIST` when the name already exists,
//! so you know the queue is yours and new. `mq_getattr(3)` reads the attributes back, with
//! `mq_curmsgs`, the number of messages waiting now, and `mq_flags`, which says whether this
//! descriptor is non-blocking.
//!
//! ## Full and empty queues
//!
//! A send into a full queue **sleeps** until a receiver makes room, and a receive from an
//! empty queue sleeps until a message comes (in the kernel both are `mq_timedsend` /
//! `mq_timedreceive` with no timeout: that is what `/proc/<pid>/syscall` shows). Opened with
//! `O_NONBLOCK`, the same calls fail at once with `EAGAIN` instead. `EAGAIN` is no failure of
//! the queue: it is the answer "full" (or "empty"), and the caller decides what to do.
//!
//! A receive must offer a buffer of at least `mq_msgsize` bytes, **whatever the length of the
//! message waiting**: with a smaller one `mq_receive` fails with `EMSGSIZE` and the message
//! stays in the queue. So read `mq_msgsize` with `mq_getattr` first. The call returns the
//! message's length; only that many bytes of the buffer are the message.
//!
//! ## The name outlives everybody
//!
//! A queue lives in the kernel until its name is removed with `mq_unlink(3)` **and** the last
//! descriptor is closed, even after every process that used it has exited (Linux shows the
//! names in the mqueue filesystem, usually mounted on `/dev/mqueue`). A program that never
//! calls `mq_unlink` leaves a queue behind on the machine, with its messages in it, until the
//! next reboot. After `mq_unlink` the name is free at once (a new `mq_open` without `O_CREAT`
//! fails with `ENOENT`), while descriptors already open keep working.
//!
//! ## A bug in nix to step around
//!
//! nix 0.31's `mq_open(name, O_CREAT | ..., mode, None)` calls the C `mq_open` with only two
//! arguments, dropping the mode and the attributes. The C function is variadic: with `O_CREAT`
//! it reads a mode and an attribute pointer that were never passed, garbage, and fails with
//! `EINVAL` or `EFAULT` (or worse, makes a queue with a random mode). So with `O_CREAT` always
//! pass `Some(&attr)`; `None` is fine for an open without `O_CREAT`.
//!
//! ## What you write
//!
//! - [`create_queue`]: a new queue with the asked size, mode 0600, blocking or not.
//! - [`try_send`]: one message with its priority; "full" is an answer, not an error.
//! - [`receive`]: one message and its priority, with a buffer of the right size.
//! - [`spawn_sender`]: a child process that opens the queue **by name** and sends to it.
//! - [`remove_queue`]: unlink the name.
//!
//! Man pages: mq_overview(7), mq_open(3), mq_send(3), mq_receive(3), mq_getattr(3),
//! mq_close(3), mq_unlink(3), fork(2), _exit(2).
pub use nix::mqueue::{MqAttr, MqdT};
use nix::unistd::Pid;

/// Creates a **new** queue called `name`, open for reading and writing, with room for
/// `max_messages` messages of at most `message_size` bytes each, owner-only permissions
/// (mode 0600), and non-blocking (`O_NONBLOCK`) when `nonblocking` is true.
///
/// Fails with `EEXIST` when a queue of that name already exists (`O_CREAT | O_EXCL`), and
/// returns every other error of `mq_open` too (`EINVAL` for sizes the kernel refuses, ...).
pub fn create_queue(
    _name: &str,
    _max_messages: i64,
    _message_size: i64,
    _nonblocking: bool,
) -> nix::Result<MqdT> {
    todo!()
}

/// Sends `message` with `priority` on `queue`.
///
/// Returns `Ok(true)` once the message is in the queue, and `Ok(false)` when the queue is full
/// and the descriptor is non-blocking (`mq_send` failed with `EAGAIN`: nothing was sent). On a
/// blocking descriptor a full queue makes the call wait for room. Every other error (`EBADF`
/// for a descriptor not open for writing, `EMSGSIZE` for a message longer than `mq_msgsize`)
/// is returned.
pub fn try_send(_queue: &MqdT, _priority: u32, _message: &[u8]) -> nix::Result<bool> {
    todo!()
}

/// Receives the next message from `queue`: the oldest of the highest priority. Returns its
/// priority and its bytes (exactly the message, not the whole buffer).
///
/// The buffer must be at least the queue's `mq_msgsize` bytes long (read it with
/// `mq_getattr`). On a blocking descriptor an empty queue makes the call wait; on a
/// non-blocking one it fails with `EAGAIN`, which is returned like every other error. A wait
/// cut short by a signal (`EINTR`, from a handler installed without `SA_RESTART`) took no
/// message: call `mq_receive` again.
pub fn receive(_queue: &MqdT) -> nix::Result<(u32, Vec<u8>)> {
    todo!()
}

/// Forks a child that opens the existing queue `name` by its name (write only, blocking, and
/// never creating it), sends every message of `messages` in order with its priority, waiting
/// whenever the queue is full, closes its descriptor and leaves with `_exit(0)`; if any step
/// fails (no such queue, say) it leaves with `_exit(1)`. Returns the child's pid to the
/// parent, which reaps it with `waitpid`.
pub fn spawn_sender(_name: &str, _messages: &[(u32, Vec<u8>)]) -> nix::Result<Pid> {
    todo!()
}

/// Removes the name `name` (`mq_unlink`): the queue disappears once the last descriptor open
/// on it is closed, and the name is free at once. Returns the error of `mq_unlink` (`ENOENT`
/// when there is no such queue).
pub fn remove_queue(_name: &str) -> nix::Result<()> {
    todo!()
}
