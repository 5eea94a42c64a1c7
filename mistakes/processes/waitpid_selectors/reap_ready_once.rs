//! Mistake: reap_ready calls waitpid with WNOHANG only once, so of several ready children it
//! collects one and leaves the others as zombies.
use nix::errno::Errno;
use nix::sys::wait::{WaitPidFlag, WaitStatus, waitpid};
use nix::unistd::Pid;

/// Which children of the caller a wait may collect.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Selector {
    /// Only the child with this pid.
    Child(Pid),
    /// Any child of the caller.
    AnyChild,
    /// Any child in the caller's own process group.
    OwnGroup,
    /// Any child in the process group with this id (a positive pgid).
    Group(Pid),
}

/// waitpid's first argument for `selector`: pid, -1, 0 or -pgid.
fn target(selector: Selector) -> Pid {
    match selector {
        Selector::Child(pid) => pid,
        Selector::AnyChild => Pid::from_raw(-1),
        Selector::OwnGroup => Pid::from_raw(0),
        Selector::Group(pgid) => Pid::from_raw(-pgid.as_raw()),
    }
}

/// Waits, blocking, for one selected child to exit and returns its status.
pub fn wait_one(selector: Selector) -> nix::Result<WaitStatus> {
    waitpid(target(selector), None)
}

/// Collects every selected child that has already exited, never blocking.
pub fn reap_ready(selector: Selector) -> nix::Result<Vec<WaitStatus>> {
    // The mistake: one look only: whatever else is ready stays behind.
    match waitpid(target(selector), Some(WaitPidFlag::WNOHANG)) {
        Ok(WaitStatus::StillAlive) | Err(Errno::ECHILD) => Ok(Vec::new()),
        Ok(status) => Ok(vec![status]),
        Err(e) => Err(e),
    }
}
