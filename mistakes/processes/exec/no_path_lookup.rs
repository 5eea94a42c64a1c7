//! Mistake: execv instead of execvp: the name is taken as a path relative to the current
//! directory and PATH is never searched, so `sh` or `ls` cannot be found.
use std::ffi::CString;

use nix::errno::Errno;
use nix::sys::wait::{WaitStatus, waitpid};
use nix::unistd::{ForkResult, execv, fork};

/// Runs `program` with `args` in a child and returns its status; see the exercise.
pub fn run(program: &str, args: &[&str]) -> nix::Result<WaitStatus> {
    let c = |s: &str| CString::new(s).map_err(|_| Errno::EINVAL);
    let file = c(program)?;
    // argv[0] is the program's own name; the arguments follow it.
    let mut argv = vec![file.clone()];
    for arg in args {
        argv.push(c(arg)?);
    }
    // SAFETY: the child only calls execv and _exit (the tests run this in a single-threaded
    // process, so execv's small allocation for the pointer array is safe too).
    match unsafe { fork() }? {
        ForkResult::Child => {
            // Returns only if the program could not be started.
            let _ = execv(&file, &argv);
            // SAFETY: _exit ends the child at once, without running the caller's destructors
            // or atexit handlers; 127 is what a shell reports for "command not found".
            unsafe { libc::_exit(127) }
        }
        ForkResult::Parent { child } => waitpid(child, None),
    }
}
