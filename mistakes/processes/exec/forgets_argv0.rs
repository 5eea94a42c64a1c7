//! Mistake: the argument vector handed to execvp holds only the arguments, not the program's
//! name as argv[0], so every argument moves one place left.
use std::ffi::{CString, c_char};

use nix::errno::Errno;
use nix::sys::wait::{WaitStatus, waitpid};
use nix::unistd::{ForkResult, fork};

/// Runs `program` with `args` in a child and returns its status; see the exercise.
pub fn run(program: &str, args: &[&str]) -> nix::Result<WaitStatus> {
    let c = |s: &str| CString::new(s).map_err(|_| Errno::EINVAL);
    let file = c(program)?;
    // The mistake: the arguments, and nothing else; no argv[0].
    let mut argv = Vec::new();
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
    // SAFETY: the child allocates nothing and takes no lock: it only calls execvp on memory
    // prepared before the fork, then _exit, so a lock held by another thread of the caller at
    // fork time cannot hang it. (glibc's execvp searches PATH in a stack buffer, no malloc.)
    match unsafe { fork() }? {
        ForkResult::Child => {
            // SAFETY: `file` and every pointer in `argv_ptrs` point to C strings owned by
            // `file` and `argv`, alive in this process; the array ends with a null pointer.
            // execvp returns only if the program could not be started.
            unsafe { libc::execvp(file.as_ptr(), argv_ptrs.as_ptr()) };
            // SAFETY: _exit ends the child at once, without running the caller's destructors
            // or atexit handlers; 127 is what a shell reports for "command not found".
            unsafe { libc::_exit(127) }
        }
        ForkResult::Parent { child } => waitpid(child, None),
    }
}
