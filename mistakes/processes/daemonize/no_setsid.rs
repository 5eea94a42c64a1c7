//! Mistake: forks twice but never calls setsid, so the daemon stays in the caller's session
//! and keeps the caller's controlling terminal.
use std::fs::File;
use std::io::{self, Read, Write};
use std::os::fd::{IntoRawFd, OwnedFd};

use nix::fcntl::{OFlag, open};
use nix::sys::stat::{Mode, umask};
use nix::sys::wait::waitpid;
use nix::unistd::{ForkResult, Pid, chdir, dup2_stderr, dup2_stdout, fork, pipe};

/// Starts a daemon that runs `task` and returns its pid; see the exercise for the contract.
pub fn daemonize(task: impl FnOnce()) -> io::Result<Pid> {
    let (read_end, write_end) = pipe()?;
    // SAFETY: the first child only calls fork, write and _exit; the daemon sets
    // itself up with plain syscalls before it runs the task, and never returns.
    match unsafe { fork() }? {
        ForkResult::Child => {
            drop(read_end);
            first_child(write_end, task)
        }
        ForkResult::Parent { child } => {
            drop(write_end);
            let mut pid = [0u8; 4];
            let got = File::from(read_end).read_exact(&mut pid);
            // The first child exits right after its fork: wait for it, whatever it reported.
            let status = waitpid(child, None)?;
            got.map_err(|e| {
                io::Error::other(format!(
                    "the first child ended ({status:?}) without reporting the daemon's pid: {e}"
                ))
            })?;
            Ok(Pid::from_raw(i32::from_ne_bytes(pid)))
        }
    }
}

/// The first child: forks the daemon; reports the daemon's pid and exits.
fn first_child(report: OwnedFd, task: impl FnOnce()) -> ! {
    // The mistake: no setsid here; the fork alone is taken to detach.
    // SAFETY: as above; this process only writes the pid and exits.
    match unsafe { fork() } {
        Ok(ForkResult::Parent { child }) => {
            let sent = File::from(report).write_all(&child.as_raw().to_ne_bytes());
            exit(if sent.is_ok() { 0 } else { 1 })
        }
        Ok(ForkResult::Child) => {
            // Ours is only a copy; drop it before closing fds by number.
            drop(report);
            if become_daemon().is_err() {
                exit(1)
            }
            task();
            exit(0)
        }
        Err(_) => exit(1),
    }
}

/// In the grandchild (here still in the caller's session: nobody called setsid).
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
