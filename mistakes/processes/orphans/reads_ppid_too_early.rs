//! Mistake: the orphan asks getppid() right away, before its parent has exited, and reports
//! the parent that is about to leave instead of the one that adopts it.
use std::fs::File;
use std::io::{self, Read, Write};

use nix::sys::wait::{WaitStatus, waitpid};
use nix::unistd::{ForkResult, Pid, fork, getpid, getppid, pipe};

/// What [`orphan_and_adopt`] saw.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Orphan {
    /// The parent: forked by the caller, it forks the orphan and then exits.
    pub parent: Pid,
    /// The orphan, as it reported its own pid.
    pub orphan: Pid,
    /// What `getppid()` returned in the orphan after its parent had exited, as it reported it.
    pub new_parent: Pid,
    /// The orphan's exit status, as the caller (its new parent) collected it with `waitpid`.
    pub status: WaitStatus,
}

/// Makes an orphan and adopts it; see the exercise for the contract.
pub fn orphan_and_adopt(
    before_parent_exits: impl FnOnce(Pid),
    after_adoption: impl FnOnce(Pid),
) -> io::Result<Orphan> {
    let (read_end, write_end) = pipe()?;
    // SAFETY: both children run only the code below and end with _exit; neither returns.
    let parent = match unsafe { fork() }? {
        ForkResult::Child => {
            drop(read_end);
            // SAFETY: as above; the orphan only asks getppid, writes a pipe and exits.
            match unsafe { fork() } {
                Ok(ForkResult::Child) => {
                    // The mistake: asked at once, while the parent has not exited yet.
                    let mut report = [0u8; 8];
                    report[..4].copy_from_slice(&getpid().as_raw().to_ne_bytes());
                    report[4..].copy_from_slice(&getppid().as_raw().to_ne_bytes());
                    let _ = File::from(write_end).write_all(&report);
                    // SAFETY: _exit ends the orphan at once, without the caller's destructors.
                    unsafe { libc::_exit(0) }
                }
                Ok(ForkResult::Parent { child }) => {
                    drop(write_end);
                    before_parent_exits(child);
                    // SAFETY: _exit ends the parent at once; its child becomes an orphan.
                    unsafe { libc::_exit(0) }
                }
                // SAFETY: _exit ends the parent at once; the caller sees the failure.
                Err(_) => unsafe { libc::_exit(1) },
            }
        }
        ForkResult::Parent { child } => child,
    };
    drop(write_end);
    let parent_status = waitpid(parent, None)?;
    let mut report = [0u8; 8];
    File::from(read_end).read_exact(&mut report).map_err(|e| {
        io::Error::other(format!(
            "no report from the orphan ({e}); the parent {parent_status:?}"
        ))
    })?;
    let word = |at: usize| {
        Pid::from_raw(i32::from_ne_bytes(
            report[at..at + 4].try_into().expect("4 bytes"),
        ))
    };
    let orphan = word(0);
    after_adoption(orphan);
    // Adopted: the orphan is the caller's child now, and the caller must reap it.
    let status = waitpid(orphan, None)?;
    Ok(Orphan {
        parent,
        orphan,
        new_parent: word(4),
        status,
    })
}
