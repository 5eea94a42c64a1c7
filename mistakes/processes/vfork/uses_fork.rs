//! Mistake: starts the child with fork instead of vfork: the caller is not suspended while the
//! child gets ready to exec, and the child has a copy of the caller's memory.
use std::ffi::{CString, c_char};
use std::os::unix::ffi::OsStrExt;

use nix::errno::Errno;
use nix::sys::wait::{WaitStatus, waitpid};
use nix::unistd::Pid;

/// Runs `program` with `args` and `env` through vfork + exec; see the exercise.
pub fn run(program: &str, args: &[&str], env: &[(&str, &str)]) -> nix::Result<WaitStatus> {
    let c = |bytes: &[u8]| CString::new(bytes).map_err(|_| Errno::EINVAL);
    let file = c(program.as_bytes())?;
    // argv[0] is the program's own name; the arguments follow it.
    let mut argv = vec![file.clone()];
    for arg in args {
        argv.push(c(arg.as_bytes())?);
    }
    // envp: the caller's variables, except those `env` replaces, then `env`'s own.
    for (name, _) in env {
        if name.is_empty() || name.contains('=') {
            return Err(Errno::EINVAL);
        }
    }
    let mut envp = Vec::new();
    for (name, value) in std::env::vars_os() {
        if env.iter().any(|(n, _)| n.as_bytes() == name.as_bytes()) {
            continue;
        }
        let mut entry = name.as_bytes().to_vec();
        entry.push(b'=');
        entry.extend_from_slice(value.as_bytes());
        envp.push(c(&entry)?);
    }
    for (name, value) in env {
        envp.push(c(format!("{name}={value}").as_bytes())?);
    }
    let argv_ptrs = pointers(&argv);
    let envp_ptrs = pointers(&envp);

    let (file_ptr, argv_ptr, envp_ptr) = (file.as_ptr(), argv_ptrs.as_ptr(), envp_ptrs.as_ptr());
    // The mistake: fork, not vfork.
    // SAFETY: the forked child only calls exec_or_die, on memory prepared before the fork.
    let pid = unsafe { libc::fork() };
    if pid == 0 {
        // SAFETY: see `exec_or_die`; the three pointers are valid and null-terminated.
        unsafe { exec_or_die(file_ptr, argv_ptr, envp_ptr) }
    }
    if pid < 0 {
        return Err(Errno::last());
    }
    // Here the child has exec'd or exited: the kernel let this thread go on.
    waitpid(Pid::from_raw(pid), None)
}

/// The null-terminated array of pointers that exec reads.
fn pointers(strings: &[CString]) -> Vec<*const c_char> {
    strings
        .iter()
        .map(|s| s.as_ptr())
        .chain(std::iter::once(std::ptr::null()))
        .collect()
}

/// The vfork child's whole life: exec the program, or end at once with status 127.
///
/// Kept out of line so that the child's calls push their frames below the parent's frame,
/// which the parent still needs when it resumes.
///
/// # Safety
///
/// `file` is a C string, `argv` and `envp` are null-terminated arrays of C strings; all stay
/// valid while the child runs.
#[inline(never)]
unsafe fn exec_or_die(
    file: *const c_char,
    argv: *const *const c_char,
    envp: *const *const c_char,
) -> ! {
    // SAFETY: the caller's contract; execvpe returns only when the program could not start.
    unsafe { libc::execvpe(file, argv, envp) };
    // SAFETY: _exit ends the child at once: no atexit handler, no stdio flush, no destructor,
    // nothing that would run in (and change) the parent's memory.
    unsafe { libc::_exit(127) }
}
