//! Mistake: the argument vector handed to execvp holds only the arguments, not the program's
//! name as argv[0], so every argument moves one place left.
use std::ffi::CString;

use nix::errno::Errno;
use nix::sys::wait::{WaitStatus, waitpid};
use nix::unistd::{ForkResult, execvp, fork};

/// Runs `program` with `args` in a child and returns its status; see the exercise.
pub fn run(program: &str, args: &[&str]) -> nix::Result<WaitStatus> {
    let c = |s: &str| CString::new(s).map_err(|_| Errno::EINVAL);
    let file = c(program)?;
    // The arguments, and nothing else.
    let mut argv = Vec::new();
    for arg in args {
        argv.push(c(arg)?);
    }
    // SAFETY: the child only calls execvp and _exit (the tests run this in a single-threaded
    // process, so execvp's small allocation for the pointer array is safe too).
    match unsafe { fork() }? {
        ForkResult::Child => {
            // Returns only if the program could not be started.
            let _ = execvp(&file, &argv);
            // SAFETY: _exit ends the child at once, without running the caller's destructors
            // or atexit handlers; 127 is what a shell reports for "command not found".
            unsafe { libc::_exit(127) }
        }
        ForkResult::Parent { child } => waitpid(child, None),
    }
}
