//! Mistake: the middle child waits for the grandchild before it exits, so the caller, waiting
//! for the middle child, waits for the whole task after all.
use std::io;

use nix::sys::wait::{WaitStatus, waitpid};
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
                // The mistake: the middle child waits for the grandchild before leaving.
                Ok(ForkResult::Parent { child }) => match waitpid(child, None) {
                    Ok(_) => 0,
                    Err(_) => 1,
                },
                Err(_) => 1,
            };
            // SAFETY: _exit ends the middle child at once; the grandchild becomes an orphan.
            unsafe { libc::_exit(code) }
        }
        ForkResult::Parent { child } => child,
    };
    // The middle child exits right away, so this wait is short, and it leaves no zombie.
    match waitpid(middle, None)? {
        WaitStatus::Exited(_, 0) => Ok(middle),
        other => Err(io::Error::other(format!(
            "the middle child {middle} ended with {other:?}: its fork failed"
        ))),
    }
}
