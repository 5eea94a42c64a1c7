//! Mistake: the vfork child calls nix's execvpe, which builds the argv and envp pointer arrays
//! itself, allocating them in the caller's heap (and never freeing them).
use std::ffi::CString;
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
    // libc marks vfork deprecated: rustc cannot be told that it returns twice, so in general
    // the child could overwrite a stack slot the parent still needs.
    // SAFETY: vfork's child runs on this thread's stack and in this process's memory until it
    // execs or exits. The child's branch below is one call to an out-of-line function that
    // never returns, with references to `file`, `argv` and `envp`, all alive until after the
    // child is gone. That it allocates in the caller's heap is this file's mistake.
    #[allow(deprecated)]
    let pid = unsafe { libc::vfork() };
    if pid == 0 {
        exec_or_die(&file, &argv, &envp)
    }
    if pid < 0 {
        return Err(Errno::last());
    }
    // Here the child has exec'd or exited: the kernel let this thread go on.
    waitpid(Pid::from_raw(pid), None)
}

/// The vfork child's whole life: exec the program, or end at once with status 127.
///
/// Kept out of line so that the child's calls push their frames below the parent's frame,
/// which the parent still needs when it resumes.
///
/// The strings stay valid while the child runs.
#[inline(never)]
fn exec_or_die(file: &CString, argv: &[CString], envp: &[CString]) -> ! {
    // The mistake: nix's execvpe allocates its pointer arrays, here in the caller's heap.
    let _ = nix::unistd::execvpe(file, argv, envp);
    // SAFETY: _exit ends the child at once: no atexit handler, no stdio flush, no destructor,
    // nothing that would run in (and change) the parent's memory.
    unsafe { libc::_exit(127) }
}
