//! Mistake: reaps with wait(), which takes any child of the caller, not necessarily the middle one.
use std::io;

use nix::sys::wait::{WaitStatus, wait};
use nix::unistd::{ForkResult, Pid, fork};

/// Runs `task` in a grandchild the caller never waits for; see the exercise.
pub fn spawn_detached(task: impl FnOnce()) -> io::Result<Pid> {
    // SAFETY: both children run only the code below and end with _exit; neither returns.
    let middle = match unsafe { fork() }? {
        ForkResult::Child => {
            // SAFETY: as above.
            let code = match unsafe { fork() } {
                Ok(ForkResult::Child) => {
                    task();
                    // SAFETY: _exit ends the grandchild at once, without the caller's destructors.
                    unsafe { libc::_exit(0) }
                }
                // No waitpid here: that is exactly the wait the double fork avoids.
                Ok(ForkResult::Parent { .. }) => 0,
                Err(_) => 1,
            };
            // SAFETY: _exit ends the middle child at once; the grandchild becomes an orphan.
            unsafe { libc::_exit(code) }
        }
        ForkResult::Parent { child } => child,
    };
    // The middle child exits right away, so this wait is short, and it leaves no zombie.
    // The mistake: the first child to be collected is taken for the middle one.
    match wait()? {
        WaitStatus::Exited(_, 0) => Ok(middle),
        other => Err(io::Error::other(format!(
            "the middle child {middle} ended with {other:?}: its fork failed"
        ))),
    }
}
