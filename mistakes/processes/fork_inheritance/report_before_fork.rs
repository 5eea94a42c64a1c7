//! Mistake: the view is computed in the parent before the fork, and the child only sends it:
//! it reports the parent's pending signal, alarm and lock, which the child does not inherit.
use std::io;
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::path::PathBuf;

use nix::errno::Errno;
use nix::fcntl::{FcntlArg, OFlag, fcntl, open};
use nix::sys::signal::{
    SaFlags, SigAction, SigHandler, SigSet, SigmaskHow, Signal, kill, sigaction, sigprocmask,
};
use nix::sys::stat::{Mode, fstat, stat, umask};
use nix::sys::wait::{WaitStatus, waitpid};
use nix::unistd::{ForkResult, Pid, alarm, chdir, fork, getpid, pipe, read, write};

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

/// The handler the parent installs: it does nothing (the signal is never expected to come).
extern "C" fn ignore_quietly(_: libc::c_int) {}

/// A `struct flock` asking about, or for, a write lock on the whole file.
fn whole_file_write_lock() -> libc::flock {
    // SAFETY: an all-zero flock is a valid value; the fields that matter are set below.
    let mut lock: libc::flock = unsafe { std::mem::zeroed() };
    lock.l_type = libc::F_WRLCK as libc::c_short;
    lock.l_whence = libc::SEEK_SET as libc::c_short;
    lock.l_start = 0;
    lock.l_len = 0;
    lock
}

/// Sets up every row, forks, and returns what the child saw; see the exercise.
pub fn fork_and_report(
    setup: &Setup,
    while_held: impl FnOnce(Pid, RawFd),
) -> io::Result<Inheritance> {
    // The parent's setup, all of it before the fork.
    let file = open(&setup.file, OFlag::O_RDWR | OFlag::O_CLOEXEC, Mode::empty())?;
    fcntl(&file, FcntlArg::F_SETLK(&whole_file_write_lock()))?;
    let mut mask = SigSet::empty();
    mask.add(setup.blocked);
    mask.add(setup.pending);
    sigprocmask(SigmaskHow::SIG_BLOCK, Some(&mask), None)?;
    kill(getpid(), setup.pending)?;
    let action = SigAction::new(
        SigHandler::Handler(ignore_quietly),
        SaFlags::SA_RESTART,
        SigSet::empty(),
    );
    // SAFETY: the handler does nothing, so it is async-signal-safe.
    unsafe { sigaction(setup.handled, &action) }?;
    alarm::set(setup.alarm_seconds);
    umask(Mode::from_bits_truncate(setup.umask as libc::mode_t));
    chdir(&setup.dir)?;

    let fd = file.as_raw_fd();
    let (report_read, report_write) = pipe()?;
    let (go_read, go_write) = pipe()?;
    let (blocked, pending, handled) = (
        setup.blocked as libc::c_int,
        setup.pending as libc::c_int,
        setup.handled as libc::c_int,
    );
    // The mistake: the look is taken here, in the parent, before the fork.
    let view = look_at_myself(&file, blocked, pending, handled);
    // SAFETY: the child writes a fixed-size buffer, waits on a pipe and leaves with _exit; it
    // allocates nothing and never returns.
    match unsafe { fork() }? {
        ForkResult::Child => {
            drop(report_read);
            drop(go_write);
            let _ = write(&report_write, &view.to_bytes());
            // Held here until the parent lets us go: a byte, end of file or an error.
            let mut byte = [0u8; 1];
            while read(&go_read, &mut byte) == Err(Errno::EINTR) {}
            // SAFETY: _exit ends the child at once, running none of the caller's code.
            unsafe { libc::_exit(0) }
        }
        ForkResult::Parent { child } => {
            drop(report_write);
            drop(go_read);
            let mut bytes = Vec::with_capacity(ChildView::SIZE);
            let mut buf = [0u8; ChildView::SIZE];
            loop {
                match read(&report_read, &mut buf) {
                    Ok(0) => break,
                    Ok(n) => {
                        bytes.extend_from_slice(&buf[..n]);
                        if bytes.len() >= ChildView::SIZE {
                            break;
                        }
                    }
                    Err(Errno::EINTR) => {}
                    Err(e) => {
                        drop(go_write);
                        let _ = waitpid(child, None);
                        return Err(e.into());
                    }
                }
            }
            let view = ChildView::from_bytes(&bytes);
            if view.is_some() {
                while_held(child, fd);
            }
            drop(go_write);
            let status = waitpid(child, None)?;
            let view = view.ok_or_else(|| {
                io::Error::new(io::ErrorKind::UnexpectedEof, "the child sent no report")
            })?;
            Ok(Inheritance {
                file,
                child,
                view,
                status,
            })
        }
    }
}

/// The child's look at itself, each answer from the kernel, taken after the fork.
fn look_at_myself(
    file: &OwnedFd,
    blocked: libc::c_int,
    pending: libc::c_int,
    handled: libc::c_int,
) -> ChildView {
    let mut lock = whole_file_write_lock();
    // SAFETY: each call fills a local of the type it expects (a zeroed sigset_t, sigaction and
    // the flock above); sigprocmask and sigaction get a null new value, so they only read.
    let (blocked, pending, handler, asked) = unsafe {
        let mut mask: libc::sigset_t = std::mem::zeroed();
        libc::sigprocmask(libc::SIG_BLOCK, std::ptr::null(), &mut mask);
        let mut waiting: libc::sigset_t = std::mem::zeroed();
        libc::sigpending(&mut waiting);
        let mut old: libc::sigaction = std::mem::zeroed();
        libc::sigaction(handled, std::ptr::null(), &mut old);
        let asked = libc::fcntl(file.as_raw_fd(), libc::F_GETLK, &mut lock);
        (
            libc::sigismember(&mask, blocked) == 1,
            libc::sigismember(&waiting, pending) == 1,
            old.sa_sigaction,
            asked,
        )
    };
    let lock_holder = if asked == 0 && lock.l_type != libc::F_UNLCK as libc::c_short {
        lock.l_pid
    } else {
        0
    };
    // umask can only be read by setting it: put the old value back at once.
    let old_mask = umask(Mode::empty());
    umask(old_mask);
    ChildView {
        pid: getpid().as_raw(),
        fd_inode: fstat(file).map_or(0, |st| st.st_ino),
        blocked,
        pending,
        handled: handler != libc::SIG_DFL && handler != libc::SIG_IGN,
        alarm_left: alarm::cancel().unwrap_or(0),
        lock_holder,
        umask: old_mask.bits(),
        cwd_inode: stat(".").map_or(0, |st| st.st_ino),
    }
}
