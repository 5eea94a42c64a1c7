//! Mistake: when exec fails, the vfork child returns the error from run instead of ending with
//! _exit(127): it goes on running the caller's code, on the caller's own stack.
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
    // libc marks vfork deprecated: rustc cannot be told that it returns twice, so in general
    // the child could overwrite a stack slot the parent still needs.
    // SAFETY: vfork's child runs on this thread's stack and in this process's memory until it
    // execs or exits. The child's branch below calls execvpe with three pointers computed
    // before vfork, all alive until after the child is gone. What it does when execvpe fails
    // is this file's mistake.
    #[allow(deprecated)]
    let pid = unsafe { libc::vfork() };
    if pid == 0 {
        // SAFETY: the three pointers are valid and null-terminated.
        unsafe { libc::execvpe(file_ptr, argv_ptr, envp_ptr) };
        // The mistake: the child returns from run.
        return Err(Errno::last());
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
