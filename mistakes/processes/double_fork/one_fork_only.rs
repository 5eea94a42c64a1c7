//! Mistake: forks once and runs the task in that child without waiting for it: the caller
//! cannot reap a child whose task may run for hours, so it is left to become a zombie.
use std::io;

use nix::unistd::{ForkResult, Pid, fork};

/// Runs `task` in a grandchild the caller never waits for; see the exercise.
pub fn spawn_detached(task: impl FnOnce()) -> io::Result<Pid> {
    // SAFETY: the child runs only the task and _exit; it never returns.
    match unsafe { fork() }? {
        ForkResult::Child => {
            // The mistake: no second fork; the task runs in the caller's own child.
            task();
            // SAFETY: _exit ends the child at once, without the caller's destructors.
            unsafe { libc::_exit(0) }
        }
        // The mistake: not waiting (the task may run for a long time), so it is never reaped.
        ForkResult::Parent { child } => Ok(child),
    }
}
