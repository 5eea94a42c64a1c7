//! Mistake: the vfork child sets the program's variables with setenv and execs with the
//! environment it has, as after fork; but it runs in the caller's memory, so setenv changes the
//! caller's own environment.
use std::ffi::{CString, c_char};

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
    for (name, _) in env {
        if name.is_empty() || name.contains('=') {
            return Err(Errno::EINVAL);
        }
    }
    // The names and values as C strings, made before vfork.
    let mut vars = Vec::new();
    for (name, value) in env {
        vars.push((c(name.as_bytes())?, c(value.as_bytes())?));
    }
    let argv_ptrs = pointers(&argv);
    let (file_ptr, argv_ptr) = (file.as_ptr(), argv_ptrs.as_ptr());
    // libc marks vfork deprecated: rustc cannot be told that it returns twice, so in general
    // the child could overwrite a stack slot the parent still needs.
    // SAFETY: vfork's child runs on this thread's stack and in this process's memory until it
    // execs or exits. The child's branch below is one call to an out-of-line function that
    // never returns, with pointers into `file`, `argv_ptrs` and `vars`, all alive until after
    // the child is gone. What that function does to the caller's environment is this file's
    // mistake.
    #[allow(deprecated)]
    let pid = unsafe { libc::vfork() };
    if pid == 0 {
        // SAFETY: see `exec_or_die`; the pointers are valid and null-terminated.
        unsafe { exec_or_die(file_ptr, argv_ptr, &vars) }
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
/// `file` is a C string, `argv` a null-terminated array of C strings; all stay
/// valid while the child runs.
#[inline(never)]
unsafe fn exec_or_die(
    file: *const c_char,
    argv: *const *const c_char,
    vars: &[(CString, CString)],
) -> ! {
    // The mistake: setenv in the vfork child sets the variable in the caller's environment.
    for (name, value) in vars {
        // SAFETY: two C strings made before vfork.
        unsafe { libc::setenv(name.as_ptr(), value.as_ptr(), 1) };
    }
    // SAFETY: the caller's contract; execvp returns only when the program could not start.
    unsafe { libc::execvp(file, argv) };
    // SAFETY: _exit ends the child at once: no atexit handler, no stdio flush, no destructor,
    // nothing that would run in (and change) the parent's memory.
    unsafe { libc::_exit(127) }
}
