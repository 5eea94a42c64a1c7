//! Mistake: when exec fails, the child returns the error from run (the `?`) instead of
//! ending with _exit(127): a second copy of the caller goes on running the caller's code.
use std::ffi::CString;

use nix::errno::Errno;
use nix::sys::wait::{WaitStatus, waitpid};
use nix::unistd::{ForkResult, execvp, fork};

/// Runs `program` with `args` in a child and returns its status; see the exercise.
pub fn run(program: &str, args: &[&str]) -> nix::Result<WaitStatus> {
    let c = |s: &str| CString::new(s).map_err(|_| Errno::EINVAL);
    let file = c(program)?;
    // argv[0] is the program's own name; the arguments follow it.
    let mut argv = vec![file.clone()];
    for arg in args {
        argv.push(c(arg)?);
    }
    // SAFETY: the child only calls execvp and _exit (the tests run this in a single-threaded
    // process, so execvp's small allocation for the pointer array is safe too).
    match unsafe { fork() }? {
        ForkResult::Child => {
            // Returns only if the program could not be started: hand the error back.
            match execvp(&file, &argv)? {}
        }
        ForkResult::Parent { child } => waitpid(child, None),
    }
}
