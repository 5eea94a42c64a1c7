//! Mistake: when exec fails, the child returns the error from run instead of ending with
//! _exit(127): a second copy of the caller goes on running the caller's code.
use std::ffi::{CString, c_char};

use nix::errno::Errno;
use nix::sys::wait::{WaitStatus, waitpid};
use nix::unistd::{ForkResult, fork};

/// Runs `program` with `args` in a child and returns its status; see the exercise.
pub fn run(program: &str, args: &[&str]) -> nix::Result<WaitStatus> {
    let c = |s: &str| CString::new(s).map_err(|_| Errno::EINVAL);
    let file = c(program)?;
    // argv[0] is the program's own name; the arguments follow it.
    let mut argv = vec![file.clone()];
    for arg in args {
        argv.push(c(arg)?);
    }
    // The array execvp reads, ending with a null pointer. Made here, in the parent: the child
    // must not allocate (nix's execvp would build this array in the child).
    let argv_ptrs: Vec<*const c_char> = argv
        .iter()
        .map(|a| a.as_ptr())
        .chain(std::iter::once(std::ptr::null()))
        .collect();
    // SAFETY: up to the exec the child allocates nothing and takes no lock: it calls execvp on
    // memory prepared before the fork. What it does when execvp fails is this file's mistake.
    match unsafe { fork() }? {
        ForkResult::Child => {
            // SAFETY: `file` and every pointer in `argv_ptrs` point to C strings owned by
            // `file` and `argv`, alive in this process; the array ends with a null pointer.
            // execvp returns only if the program could not be started: hand the error back.
            unsafe { libc::execvp(file.as_ptr(), argv_ptrs.as_ptr()) };
            // The mistake: no _exit(127); the child returns into the caller's code.
            Err(Errno::last())
        }
        ForkResult::Parent { child } => waitpid(child, None),
    }
}
