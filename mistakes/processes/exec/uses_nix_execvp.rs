//! Mistake: the child calls nix's execvp, which builds the null-terminated pointer array
//! itself, in the child: an allocation between fork and exec, which can hang for good in a
//! program where another thread held the allocator's lock when it forked.
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
    // SAFETY: up to the exec the child takes no lock of its own; what nix's execvp does in it
    // is this file's mistake.
    match unsafe { fork() }? {
        ForkResult::Child => {
            // The mistake: nix's execvp collects the pointers into a new Vec here, in the child.
            // It returns only if the program could not be started.
            let _ = execvp(&file, &argv);
            // SAFETY: _exit ends the child at once, without running the caller's destructors
            // or atexit handlers; 127 is what a shell reports for "command not found".
            unsafe { libc::_exit(127) }
        }
        ForkResult::Parent { child } => waitpid(child, None),
    }
}
