//! Mistake: waits with wait() (waitpid(-1)) until ECHILD, so it also reaps children of the
//! caller that it never created.
use std::time::Duration;

use nix::sys::wait::{WaitStatus, wait};
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
    // The mistake: wait() for any child until there are none left, then sort the statuses out.
    let mut by_pid = std::collections::HashMap::new();
    loop {
        match wait() {
            Ok(status) => {
                if let Some(pid) = status.pid() {
                    by_pid.insert(pid, status);
                }
            }
            Err(nix::errno::Errno::ECHILD) => break,
            Err(nix::errno::Errno::EINTR) => {}
            Err(e) => {
                failed.get_or_insert(e);
                break;
            }
        }
    }
    let statuses: Vec<WaitStatus> = pids
        .iter()
        .filter_map(|pid| by_pid.get(pid).copied())
        .collect();
    match failed {
        Some(e) => Err(e),
        None => Ok(statuses),
    }
}
