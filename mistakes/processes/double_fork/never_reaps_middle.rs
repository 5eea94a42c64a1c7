//! Mistake: the caller does not wait for the middle child (it exits at once anyway), which
//! stays behind as a zombie.
use std::io;

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
    // The mistake: no waitpid. "The middle child exits right away: nothing to wait for."
    Ok(middle)
}
