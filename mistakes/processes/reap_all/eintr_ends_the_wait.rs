//! Mistake: a waitpid cut short by a signal handler (EINTR) is taken as a failure and not tried
//! again, so that child is never collected.
use std::time::Duration;

use nix::sys::wait::{WaitStatus, waitpid};
use nix::unistd::{ForkResult, Pid, fork};

/// One child to start.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ChildSpec {
    /// The exit code the child ends with.
    pub code: u8,
    /// How long the child sleeps before it exits.
    pub lifetime: Duration,
}

/// Starts one child per spec and waits for exactly those; see the exercise for the contract.
pub fn reap_all(specs: &[ChildSpec]) -> nix::Result<Vec<WaitStatus>> {
    let mut pids: Vec<Pid> = Vec::with_capacity(specs.len());
    let mut failed = None;
    for spec in specs {
        // SAFETY: the child only sleeps and calls _exit; it never returns into the caller.
        match unsafe { fork() } {
            Ok(ForkResult::Child) => {
                std::thread::sleep(spec.lifetime);
                // SAFETY: _exit ends the child at once, without running the parent's copied
                // destructors or atexit handlers; it never returns.
                unsafe { libc::_exit(spec.code.into()) }
            }
            Ok(ForkResult::Parent { child }) => pids.push(child),
            Err(e) => {
                failed = Some(e);
                break;
            }
        }
    }
    // Only our own pids, one waitpid each: nobody else's child is touched. A failed wait does
    // not stop the loop: every child started is still waited for, and the first error (of a
    // fork or a wait) is reported once all of them are.
    let mut statuses = Vec::with_capacity(pids.len());
    for &pid in &pids {
        // The mistake: no retry on EINTR.
        match waitpid(pid, None) {
            Ok(status) => statuses.push(status),
            Err(e) => {
                failed.get_or_insert(e);
            }
        }
    }
    match failed {
        Some(e) => Err(e),
        None => Ok(statuses),
    }
}
