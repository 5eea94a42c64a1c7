//! Mistake: reap_ready keeps only the Exited statuses and drops the Signaled ones, so the
//! children a signal killed are collected without a word.
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

/// Waits, blocking, for one selected child to end (exit or be killed) and returns its status.
pub fn wait_one(selector: Selector) -> nix::Result<WaitStatus> {
    waitpid(target(selector), None)
}

/// Collects every selected child that has already ended (exited or killed), never blocking.
pub fn reap_ready(selector: Selector) -> nix::Result<Vec<WaitStatus>> {
    let mut reaped = Vec::new();
    loop {
        match waitpid(target(selector), Some(WaitPidFlag::WNOHANG)) {
            // Selected children exist, but none has exited yet.
            Ok(WaitStatus::StillAlive) => return Ok(reaped),
            // The mistake: only exits are kept; a killed child is reaped and forgotten.
            Ok(status @ WaitStatus::Exited(..)) => reaped.push(status),
            Ok(_) => {}
            // No selected child at all (any more).
            Err(Errno::ECHILD) => return Ok(reaped),
            Err(Errno::EINTR) => {}
            Err(e) => return Err(e),
        }
    }
}
