//! Mistake: waits with -1 where the caller's own group (0) was asked, so it collects children
//! in other process groups too.
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
        // The mistake: -1 (any child), not 0 (a child in the caller's own group).
        Selector::OwnGroup => Pid::from_raw(-1),
        Selector::Group(pgid) => Pid::from_raw(-pgid.as_raw()),
    }
}

/// Waits, blocking, for one selected child to exit and returns its status.
pub fn wait_one(selector: Selector) -> nix::Result<WaitStatus> {
    waitpid(target(selector), None)
}

/// Collects every selected child that has already exited, never blocking.
pub fn reap_ready(selector: Selector) -> nix::Result<Vec<WaitStatus>> {
    let mut reaped = Vec::new();
    loop {
        match waitpid(target(selector), Some(WaitPidFlag::WNOHANG)) {
            // Selected children exist, but none has exited yet.
            Ok(WaitStatus::StillAlive) => return Ok(reaped),
            Ok(status) => reaped.push(status),
            // No selected child at all (any more).
            Err(Errno::ECHILD) => return Ok(reaped),
            Err(Errno::EINTR) => {}
            Err(e) => return Err(e),
        }
    }
}
