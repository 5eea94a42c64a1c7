//! # System V message queues (System V 消息队列): typed messages, IPC_NOWAIT, IPC_RMID
//!
//! A pipe carries bytes with no boundaries and no order but arrival. A **message queue** carries
//! whole messages, each with a **type**: a positive number the sender chooses. The receiver
//! can ask for the oldest message of any type, of one type, or of the lowest type up to some
//! bound, so one queue can serve as several channels, or as a queue with priorities. The
//! kernel keeps the messages, so sender and receiver need not run at the same time.
//!
//! System V IPC (svipc(7)) has three kinds of objects: message queues, shared memory segments
//! and semaphore sets. They share a style that is older than file descriptors:
//!
//! - an object is found by a **key** (`key_t`, a number both sides agree on, often made with
//!   `ftok(3)`), and `msgget(key, flags)` returns its **id**, an integer every process uses to
//!   name it. `IPC_CREAT` makes the queue if the key has none; with `IPC_EXCL` too, msgget
//!   fails with `EEXIST` rather than hand back an old queue full of old messages. The low nine
//!   bits of the flags are the queue's permissions (like a file's mode; the umask plays no
//!   part).
//! - an object is **not** a file and does not go away when its last user exits or closes
//!   anything: it lives until someone removes it with `msgctl(id, IPC_RMID, NULL)`, or the
//!   machine reboots. A queue left behind is a leak that `ipcs -q` (and
//!   `/proc/sysvipc/msg`) shows to every later program. Removing it is immediate: messages
//!   still queued are lost and anyone waiting on it wakes up with `EIDRM`.
//!
//! ## Sending and receiving (msgop(2))
//!
//! A message in memory is a C struct: a `long mtype` followed by the text, `char mtext[]`.
//! `msgsnd(id, &msg, msgsz, flags)` queues `msgsz` bytes of text with its type; `msgrcv(id,
//! &msg, msgsz, msgtyp, flags)` copies the type and at most `msgsz` bytes of text into `msg`
//! and returns the text's length. In both, **msgsz counts the text only, not the mtype field**:
//! passing `sizeof(struct)` is the classic mistake (the kernel then sends bytes beyond the
//! text, or writes past the receiver's buffer). A message longer than `msgsz` makes msgrcv fail
//! with `E2BIG` and stay queued (unless `MSG_NOERROR` asks to cut it).
//!
//! `msgtyp` chooses which message msgrcv takes:
//!
//! | msgtyp | takes |
//! |---|---|
//! | `0` | the oldest message, whatever its type |
//! | `t > 0` | the oldest message of type `t` |
//! | `-t < 0` | the oldest message of the **lowest** type that is `<= t` |
//!
//! When no message matches, msgrcv sleeps until one arrives; with `IPC_NOWAIT` in its flags it
//! fails at once with `ENOMSG` instead. (msgsnd sleeps while the queue is full, `msg_qbytes`,
//! by default `/proc/sys/kernel/msgmnb` = 16384 bytes; with `IPC_NOWAIT` it fails with
//! `EAGAIN`.) A signal whose handler runs ends either sleep with `EINTR`, and these two calls
//! are never restarted by the kernel, whatever `SA_RESTART` says (signal(7)); nothing was
//! sent or taken, so the call can simply be made again.
//!
//! nix has no wrappers for System V IPC, so you call `libc::msgget`, `libc::msgsnd`,
//! `libc::msgrcv` and `libc::msgctl` yourself. Put each behind one small safe function that
//! turns -1 into the error (`Errno::result(rc)` does exactly that, reading `errno`), and say in
//! a `// SAFETY:` comment why the pointer you pass is valid for what the kernel does with it.
//! Declare the message as `#[repr(C)] struct { mtype: libc::c_long, mtext: [u8; MAX_TEXT] }`.
//!
//! ## What you write
//!
//! - [`create_queue`], [`send`], [`receive`], [`remove_queue`]: the four calls, made safe.
//! - [`spawn_sender`]: a forked child that sends a list of messages; the queue is the only
//!   thing it shares with the parent.
//! - [`gather`]: the whole life of a queue: create, let a child send, receive, reap the child,
//!   remove. The tests check afterwards that nothing is left.
//!
//! Man pages: svipc(7), msgget(2), msgop(2) (msgsnd, msgrcv), msgctl(2), proc(5)
//! (`/proc/sysvipc/msg`), ipcs(1), ipcrm(1).
use nix::unistd::Pid;

/// The longest message text this module sends or receives, in bytes.
pub const MAX_TEXT: usize = 256;

/// Which message [`receive`] takes from the queue.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Select {
    /// The oldest message, whatever its type (`msgtyp` 0).
    Any,
    /// The oldest message of exactly this type (`msgtyp` = the type, which must be > 0).
    Type(libc::c_long),
    /// The oldest message of the lowest type that is at most this one (`msgtyp` = minus it;
    /// the bound must be > 0).
    UpTo(libc::c_long),
}

/// Creates a **new** queue at `key` with permission bits `mode` (`msgget` with `IPC_CREAT |
/// IPC_EXCL | mode`) and returns its id. Fails with `EEXIST` if the key already has a queue.
pub fn create_queue(_key: libc::key_t, _mode: u32) -> nix::Result<i32> {
    todo!()
}

/// Sends `text` as one message of type `mtype` on queue `id`, waiting while the queue is full
/// and calling msgsnd again if a signal interrupts it (`EINTR`).
///
/// Fails with `EINVAL` if `mtype` is not > 0 and with `E2BIG` if `text` is longer than
/// [`MAX_TEXT`], sending nothing; returns msgsnd's error otherwise.
pub fn send(_id: i32, _mtype: libc::c_long, _text: &[u8]) -> nix::Result<()> {
    todo!()
}

/// Takes the message `which` selects from queue `id` and returns its type and text.
///
/// If none matches: with `nowait`, fails at once with `ENOMSG` (`IPC_NOWAIT`); without, sleeps
/// in msgrcv until a matching message is sent (calling it again after `EINTR`). A message
/// longer than [`MAX_TEXT`] is refused with `E2BIG` and stays queued. A `Type` or `UpTo` whose
/// number is not > 0 fails with `EINVAL`, taking nothing.
pub fn receive(_id: i32, _which: Select, _nowait: bool) -> nix::Result<(libc::c_long, Vec<u8>)> {
    todo!()
}

/// Removes queue `id` at once (`msgctl(id, IPC_RMID, NULL)`), with any messages still in it.
/// Returns msgctl's error (`EINVAL` for an id that names no queue).
pub fn remove_queue(_id: i32) -> nix::Result<()> {
    todo!()
}

/// Forks a child that sends each of `messages` (type, text) on queue `id`, in order, with
/// [`send`], then leaves with `_exit(0)`, or with `_exit(1)` as soon as a send fails. Returns
/// the child's pid; the caller reaps it with `waitpid`.
pub fn spawn_sender(_id: i32, _messages: &[(libc::c_long, Vec<u8>)]) -> nix::Result<Pid> {
    todo!()
}

/// The whole life of a queue: creates one at `key` with `mode` ([`create_queue`]: fails with
/// `EEXIST`, touching nothing, if the key is in use), has a child send `messages` through it
/// ([`spawn_sender`]), receives as many messages as were sent with `Select::Any` (waiting for
/// each), reaps the child, removes the queue, and returns the messages received, in order.
///
/// The queue is removed whatever happens once it exists. Fails with `EIO` if the child did not
/// exit with status 0.
pub fn gather(
    _key: libc::key_t,
    _mode: u32,
    _messages: &[(libc::c_long, Vec<u8>)],
) -> nix::Result<Vec<(libc::c_long, Vec<u8>)>> {
    todo!()
}
