//! # What a child inherits across fork, and what it does not (继承与不继承)
//!
//! `fork(2)` makes the child a copy of the parent, but not a copy of everything. What belongs
//! to the process as a *view* of the system is copied; what is an *event* or a *claim* the
//! parent made is not, because in the child it would be a lie or a conflict:
//!
//! | inherited (the child starts with a copy) | not inherited (the child starts without) |
//! |---|---|
//! | open file descriptors, each pointing to the same open file description as the parent's | record locks taken with `fcntl` (`F_SETLK`): they belong to the process that took them |
//! | signal dispositions (handlers, `SIG_IGN`) | pending alarms: `alarm(2)` timers are cleared |
//! | the signal mask | pending signals: the child's pending set starts empty |
//! | the working directory | |
//! | the file-creation mask (umask) | |
//!
//! Why the right-hand column: a record lock says "process P owns bytes x..y of this file"; if
//! the child owned them too, two processes would hold one exclusive lock. An alarm or a
//! pending signal was meant for the parent: delivering a second copy to the child would make
//! one event happen twice. So in the child `sigpending` comes back empty, `alarm(0)` finds no
//! alarm (it returns 0), and `fcntl(F_GETLK)` reports the parent's lock as a lock held by
//! another process (the parent's pid in `l_pid`): the child cannot take it.
//!
//! One trap: `flock(2)` locks are not record locks. An flock lock belongs to the *open file
//! description*, the kernel object that an fd points to, and a forked child's fd points to the
//! same one: the child holds the parent's flock lock as much as the parent does. BSD's flock
//! and POSIX's fcntl locks look alike and behave differently across fork; `/proc/locks` shows
//! which is which (`POSIX` for fcntl record locks, `FLOCK` for flock, `OFDLCK` for the
//! `F_OFD_SETLK` locks, which also follow the open file description).
//!
//! The kernel shows all of this per process: `/proc/<pid>/status` has `SigBlk` (the mask),
//! `SigPnd` and `ShdPnd` (signals pending for the thread and for the whole process), `SigCgt`
//! (signals with a handler) and `Umask`; `/proc/<pid>/cwd` is the working directory;
//! `/proc/<pid>/fd` the fd table; `/proc/locks` every lock with its kind and owner.
//!
//! ## The exercise
//!
//! Set each row up in the parent, fork, and let the child look at itself and report what it
//! sees. The report must be the child's own look, taken after the fork, in the child: values
//! computed in the parent before the fork are the parent's, and for the right-hand column they
//! are wrong. Send it to the parent through a pipe ([`ChildView::to_bytes`] and
//! [`ChildView::from_bytes`] are written for you); then the child waits on a second pipe until
//! the parent lets it go, so the tests can read its `/proc` while it exists, and leaves with
//! `_exit(0)`.
//!
//! Syscalls: open(2), fcntl(2) (`F_SETLK`, `F_GETLK` with a `struct flock`), sigprocmask(2),
//! sigaction(2), kill(2), sigpending(2), alarm(2), umask(2), chdir(2), fork(2), pipe(2),
//! read(2)/write(2), _exit(2), waitpid(2). In Rust: `nix::fcntl::{open, fcntl, FcntlArg}`
//! with a `libc::flock`, `nix::sys::signal::{sigprocmask, sigaction, kill, SigSet}`,
//! `nix::unistd::{alarm, chdir, fork, pipe, getpid}`, `nix::sys::stat::{umask, fstat, stat}`;
//! nix has no `sigpending` and no way to read a disposition without changing it: use
//! `libc::sigpending` with `libc::sigismember`, and `libc::sigaction` with a null new action.
//!
//! Read: `man 2 fork` (the list of what the child does not inherit), `man 2 fcntl` (Advisory
//! record locking), `man 2 flock`, `man 7 signal` (Signal mask and pending signals),
//! `man 2 alarm`, `man 5 proc` (`/proc/<pid>/status`, `/proc/locks`).
use std::io;
use std::os::fd::{OwnedFd, RawFd};
use std::path::PathBuf;

use nix::sys::signal::Signal;
use nix::sys::wait::WaitStatus;
use nix::unistd::Pid;

/// What the parent sets up before it forks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Setup {
    /// An existing file. The parent opens it read-write and keeps that fd open across the
    /// fork, and through it takes an `fcntl` write lock (`F_SETLK`, `F_WRLCK`) on the whole
    /// file (`l_whence` `SEEK_SET`, `l_start` 0, `l_len` 0).
    pub file: PathBuf,
    /// The parent blocks this signal (adds it to its signal mask).
    pub blocked: Signal,
    /// The parent blocks this signal as well and sends it to itself, so that it is pending
    /// when the parent forks.
    pub pending: Signal,
    /// The parent installs a handler for this signal: a function that does nothing.
    pub handled: Signal,
    /// The parent arms an alarm, SIGALRM in this many seconds (at least 1).
    pub alarm_seconds: u32,
    /// The parent's file-creation mask (umask), such as `0o027`.
    pub umask: u32,
    /// The parent makes this directory its working directory.
    pub dir: PathBuf,
}

/// What the child sees of itself, asked of the kernel in the child, after the fork.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ChildView {
    /// `getpid()` in the child.
    pub pid: i32,
    /// The inode number that `fstat` gives for the fd number the parent opened the file on;
    /// 0 when that fd is not open in the child.
    pub fd_inode: u64,
    /// Whether [`Setup::blocked`] is in the child's signal mask.
    pub blocked: bool,
    /// Whether [`Setup::pending`] is pending in the child (`sigpending`).
    pub pending: bool,
    /// Whether the child's disposition of [`Setup::handled`] is a handler function (not
    /// `SIG_DFL`, not `SIG_IGN`).
    pub handled: bool,
    /// The seconds left on the child's alarm: what `alarm(0)` returns in the child, 0 when it
    /// has none.
    pub alarm_left: u32,
    /// What `fcntl(F_GETLK)` in the child says about a write lock on the whole file: the pid
    /// of the process holding a lock that would block it (`l_pid`), 0 when none would
    /// (`l_type` comes back `F_UNLCK`).
    pub lock_holder: i32,
    /// The child's umask.
    pub umask: u32,
    /// The inode number of the child's working directory (`stat(".")`).
    pub cwd_inode: u64,
}

impl ChildView {
    /// The number of bytes of [`ChildView::to_bytes`].
    pub const SIZE: usize = 4 + 8 + 3 + 4 + 4 + 4 + 8;

    /// The view as a fixed number of bytes, to write into a pipe. It allocates nothing, so the
    /// child may call it.
    pub fn to_bytes(self) -> [u8; Self::SIZE] {
        let mut out = [0u8; Self::SIZE];
        let mut at = 0;
        let mut put = |bytes: &[u8]| {
            out[at..at + bytes.len()].copy_from_slice(bytes);
            at += bytes.len();
        };
        put(&self.pid.to_le_bytes());
        put(&self.fd_inode.to_le_bytes());
        put(&[self.blocked as u8, self.pending as u8, self.handled as u8]);
        put(&self.alarm_left.to_le_bytes());
        put(&self.lock_holder.to_le_bytes());
        put(&self.umask.to_le_bytes());
        put(&self.cwd_inode.to_le_bytes());
        out
    }

    /// The view back from the bytes of [`ChildView::to_bytes`]; `None` unless `bytes` has
    /// exactly [`ChildView::SIZE`] bytes.
    pub fn from_bytes(bytes: &[u8]) -> Option<ChildView> {
        if bytes.len() != Self::SIZE {
            return None;
        }
        let mut at = 0;
        let mut take = |n: usize| {
            let part = &bytes[at..at + n];
            at += n;
            part
        };
        let u32_of = |b: &[u8]| u32::from_le_bytes(b.try_into().unwrap_or_default());
        let u64_of = |b: &[u8]| u64::from_le_bytes(b.try_into().unwrap_or_default());
        let pid = u32_of(take(4)) as i32;
        let fd_inode = u64_of(take(8));
        let flags = take(3);
        let (blocked, pending, handled) = (flags[0] != 0, flags[1] != 0, flags[2] != 0);
        let alarm_left = u32_of(take(4));
        let lock_holder = u32_of(take(4)) as i32;
        let umask = u32_of(take(4));
        let cwd_inode = u64_of(take(8));
        Some(ChildView {
            pid,
            fd_inode,
            blocked,
            pending,
            handled,
            alarm_left,
            lock_holder,
            umask,
            cwd_inode,
        })
    }
}

/// What [`fork_and_report`] hands back.
#[derive(Debug)]
pub struct Inheritance {
    /// The fd the parent opened [`Setup::file`] on; it still holds the parent's lock.
    pub file: OwnedFd,
    /// The pid fork returned to the parent.
    pub child: Pid,
    /// What the child reported.
    pub view: ChildView,
    /// What `waitpid` on the child returned.
    pub status: WaitStatus,
}

/// Sets up every row of `setup` in the calling process, forks, and returns what the child saw.
///
/// In the parent, before the fork: open [`Setup::file`] read-write and take the write lock
/// with `fcntl(F_SETLK)` (a lock that cannot be taken is an error), block
/// [`Setup::blocked`] and [`Setup::pending`], send [`Setup::pending`] to itself, install the
/// handler for [`Setup::handled`], arm the alarm, set the umask and change to [`Setup::dir`].
/// All of it stays in place in the caller after this function returns.
///
/// In the child: fill in a [`ChildView`] by asking the kernel (see each field), write its
/// bytes into a pipe made before the fork, then wait until the parent lets it go (a byte, or
/// end of file, on a second pipe) and leave with `_exit(0)`; it never returns from this
/// function.
///
/// The parent reads the whole report, then calls `while_held(child, fd)` (the child's pid and
/// the number of the fd it opened), while the child waits to be let go: the tests look at both
/// processes in `/proc` then. Then it lets the child go, waits for it and returns an
/// [`Inheritance`].
pub fn fork_and_report(
    _setup: &Setup,
    _while_held: impl FnOnce(Pid, RawFd),
) -> io::Result<Inheritance> {
    todo!()
}
