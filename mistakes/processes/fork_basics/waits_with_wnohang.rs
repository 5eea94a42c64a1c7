//! Mistake: the parent collects the child with WNOHANG, which answers at once, StillAlive, when
//! the child has not exited yet, and leaves it to become a zombie.
use std::fs::File;
use std::io::{self, Read, Write};

use nix::sys::wait::{WaitPidFlag, WaitStatus, waitpid};
use nix::unistd::{ForkResult, Pid, fork, getpid, getppid, pipe};

/// What [`fork_and_report`] saw, from both sides of the fork.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ForkReport {
    /// What `fork` returned in the parent: the pid of the new child.
    pub child: Pid,
    /// What `getpid()` returned in the child, as the child reported it.
    pub reported_pid: Pid,
    /// What `getppid()` returned in the child, as the child reported it.
    pub reported_ppid: Pid,
    /// What `waitpid` on the child returned in the parent.
    pub status: WaitStatus,
}

/// Forks one child and gathers both views of it; see the exercise for the contract.
pub fn fork_and_report(exit_code: u8, before_wait: impl FnOnce(Pid)) -> io::Result<ForkReport> {
    let (read_end, write_end) = pipe()?;
    // SAFETY: the child only calls getpid/getppid, writes to a pipe and calls _exit; it never
    // returns into code that might rely on other threads or on locks they hold.
    match unsafe { fork() }? {
        ForkResult::Child => {
            drop(read_end);
            // Asked here, after the fork: these are the child's own answers.
            let mut report = [0u8; 8];
            report[..4].copy_from_slice(&getpid().as_raw().to_ne_bytes());
            report[4..].copy_from_slice(&getppid().as_raw().to_ne_bytes());
            let _ = File::from(write_end).write_all(&report);
            // SAFETY: _exit ends this process at once without running the parent's copied
            // destructors or atexit handlers; it never returns.
            unsafe { libc::_exit(exit_code.into()) }
        }
        ForkResult::Parent { child } => {
            // Close our copy of the write end: if the child dies early, read sees EOF.
            drop(write_end);
            let mut report = [0u8; 8];
            let got = File::from(read_end).read_exact(&mut report);
            if got.is_ok() {
                before_wait(child);
            }
            // The mistake: a look, not a wait.
            let status = waitpid(child, Some(WaitPidFlag::WNOHANG))?;
            got?;
            let word = |at: usize| {
                Pid::from_raw(i32::from_ne_bytes(
                    report[at..at + 4].try_into().expect("4 bytes"),
                ))
            };
            Ok(ForkReport {
                child,
                reported_pid: word(0),
                reported_ppid: word(4),
                status,
            })
        }
    }
}
