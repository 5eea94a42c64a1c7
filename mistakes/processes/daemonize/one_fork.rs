//! Mistake: one fork only. The child calls setsid and becomes the daemon itself, so it
//! leads its session and could acquire a controlling terminal again by opening one.
use std::io;
use std::os::fd::IntoRawFd;

use nix::fcntl::{OFlag, open};
use nix::sys::stat::{Mode, umask};
use nix::unistd::{ForkResult, Pid, chdir, dup2_stderr, dup2_stdout, fork, setsid};

/// Starts a daemon that runs `task` and returns its pid; see the exercise for the contract.
pub fn daemonize(task: impl FnOnce()) -> io::Result<Pid> {
    // SAFETY: the child sets itself up with plain syscalls before it runs the task, and never
    // returns.
    match unsafe { fork() }? {
        ForkResult::Child => {
            // A new session and process group, led by this process, without a terminal...
            if setsid().is_err() {
                exit(1)
            }
            // The mistake: ...and no second fork: the daemon is this session leader itself.
            if become_daemon().is_err() {
                exit(1)
            }
            task();
            exit(0)
        }
        // The child is the daemon: the caller already knows its pid.
        ForkResult::Parent { child } => Ok(child),
    }
}

/// In the child, the leader of the new session.
fn become_daemon() -> nix::Result<()> {
    umask(Mode::empty());
    chdir("/")?;
    // Every fd, whatever its number: 0, 1, 2 and all the caller had open.
    // SAFETY: close_range only closes fds; this process holds no OwnedFd any more.
    if unsafe { libc::close_range(0, u32::MAX, 0) } == -1 {
        return Err(nix::errno::Errno::last());
    }
    // The lowest free fd is 0 now, so /dev/null lands there; 1 and 2 become copies of it.
    let null = open("/dev/null", OFlag::O_RDWR, Mode::empty())?;
    dup2_stdout(&null)?;
    dup2_stderr(&null)?;
    // Keep fd 0 open for good: it is the daemon's stdin.
    let _ = null.into_raw_fd();
    Ok(())
}

fn exit(code: i32) -> ! {
    // SAFETY: _exit ends this process at once, without running the caller's destructors or
    // atexit handlers (they belong to the caller); it never returns.
    unsafe { libc::_exit(code) }
}
