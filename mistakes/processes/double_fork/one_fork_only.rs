//! Mistake: forks once and runs the task in that child without waiting for it: the caller
//! cannot reap a child whose task may run for hours, so it is left to become a zombie.
use std::io;

use nix::unistd::{ForkResult, Pid, fork};

/// Runs `task` in a grandchild the caller never waits for; see the exercise.
pub fn spawn_detached(task: impl FnOnce()) -> io::Result<Pid> {
    // SAFETY: the child runs only the task and _exit; it never returns.
    match unsafe { fork() }? {
        ForkResult::Child => {
            task();
            // SAFETY: _exit ends the child at once, without the caller's destructors.
            unsafe { libc::_exit(0) }
        }
        // Not waiting: the task may run for a long time.
        ForkResult::Parent { child } => Ok(child),
    }
}
