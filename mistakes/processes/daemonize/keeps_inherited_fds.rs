//! Mistake: only fds 0, 1 and 2 are redirected to /dev/null; every other fd the caller had
//! open (files, pipes, the terminal) stays open in the daemon.
use std::fs::File;
use std::io::{self, Read, Write};
use std::os::fd::OwnedFd;

use nix::fcntl::{OFlag, open};
use nix::sys::stat::{Mode, umask};
use nix::sys::wait::waitpid;
use nix::unistd::{
    ForkResult, Pid, chdir, dup2_stderr, dup2_stdin, dup2_stdout, fork, pipe, setsid,
};

/// Starts a daemon that runs `task` and returns its pid; see the exercise for the contract.
pub fn daemonize(task: impl FnOnce()) -> io::Result<Pid> {
    let (read_end, write_end) = pipe()?;
    // SAFETY: the first child only calls setsid, fork, write and _exit; the daemon sets
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

/// The first child: a new session, then the daemon; reports the daemon's pid and exits.
fn first_child(report: OwnedFd, task: impl FnOnce()) -> ! {
    // A new session and process group, led by this process, without a controlling terminal.
    if setsid().is_err() {
        exit(1)
    }
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

/// In the grandchild, which is in the new session but does not lead it.
fn become_daemon() -> nix::Result<()> {
    umask(Mode::empty());
    chdir("/")?;
    // The mistake: only 0, 1 and 2 are put on /dev/null; the rest is left as inherited.
    let null = open("/dev/null", OFlag::O_RDWR, Mode::empty())?;
    dup2_stdin(&null)?;
    dup2_stdout(&null)?;
    dup2_stderr(&null)?;
    Ok(())
}

fn exit(code: i32) -> ! {
    // SAFETY: _exit ends this process at once, without running the caller's destructors or
    // atexit handlers (they belong to the caller); it never returns.
    unsafe { libc::_exit(code) }
}
