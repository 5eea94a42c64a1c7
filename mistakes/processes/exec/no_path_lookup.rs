//! Mistake: execv instead of execvp: the name is taken as a path relative to the current
//! directory and PATH is never searched, so `sh` or `ls` cannot be found.
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
    // The array execv reads, ending with a null pointer. Made here, in the parent: the child
    // must not allocate (nix's execv would build this array in the child).
    let argv_ptrs: Vec<*const c_char> = argv
        .iter()
        .map(|a| a.as_ptr())
        .chain(std::iter::once(std::ptr::null()))
        .collect();
    // SAFETY: the child allocates nothing and takes no lock: it only calls execv on memory
    // prepared before the fork, then _exit, so a lock held by another thread of the caller at
    // fork time cannot hang it.
    match unsafe { fork() }? {
        ForkResult::Child => {
            // The mistake: execv, not execvp: the name is a path and PATH is never searched.
            // SAFETY: `file` and every pointer in `argv_ptrs` point to C strings owned by
            // `file` and `argv`, alive in this process; the array ends with a null pointer.
            // execv returns only if the program could not be started.
            unsafe { libc::execv(file.as_ptr(), argv_ptrs.as_ptr()) };
            // SAFETY: _exit ends the child at once, without running the caller's destructors
            // or atexit handlers; 127 is what a shell reports for "command not found".
            unsafe { libc::_exit(127) }
        }
        ForkResult::Parent { child } => waitpid(child, None),
    }
}
