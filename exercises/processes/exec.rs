//! # fork + exec: run another program (执行程序)
//!
//! `fork(2)` copies the running program; it never starts a different one. Starting another
//! program takes a second step: the child calls one of the `exec` functions, and the kernel
//! replaces everything in that process (code, memory, stack) with the new program, loaded
//! fresh from its file. The process stays the same one: same pid, same parent, and the same
//! open file descriptors, except those marked close-on-exec. A shell runs every command this
//! way: fork, exec in the child, `waitpid` in the parent.
//!
//! Things to get right:
//!
//! - **exec does not return when it works.** The new program takes over and its `main` runs;
//!   your code in that process is gone. So any line after the exec call runs only when exec
//!   *failed* (no such file, not executable...). That line must end the child with
//!   `_exit(127)`, the status a shell gives "command not found": if it returned instead, the
//!   child would go on running the caller's code as a second copy.
//! - **argv[0] is the program's own name.** The argument vector the new program receives
//!   starts with its name; the real arguments come after it. `execvp(file, argv)` takes the
//!   file to run *and* the whole vector, so `argv` must be `[name, arg1, arg2, ...]`. Leave
//!   the name out and every argument moves one place left: the program thinks its first
//!   argument is its name.
//! - **PATH lookup.** A name without a `/`, like `ls`, is not a path: `execvp` (the `p` is for
//!   PATH) tries each directory of the `PATH` environment variable in turn, as a shell does.
//!   `execv` and `execve` take the name as a path and look nowhere else.
//! - **fds cross exec.** Every open fd stays open in the new program unless it has the
//!   close-on-exec flag (`FD_CLOEXEC`, set by `O_CLOEXEC` at open or with `fcntl`). That is how
//!   a shell hands a program its stdin and stdout, and why Rust's standard library opens
//!   files close-on-exec by default: fds nobody meant to pass on are not.
//! - **Status back.** The parent waits for that one child with `waitpid(child)` and hands back
//!   what it says: `Exited(pid, code)` or `Signaled(pid, signal, core)`.
//!
//! ## Prepare everything before the fork
//!
//! `fork` copies only the thread that calls it. If another thread of the caller held a lock
//! at that instant (the memory allocator's, say), the child's copy of that lock stays locked
//! for good: the thread that would have released it does not exist in the child. So between
//! fork and exec the child may only make async-signal-safe calls (see signal-safety(7)), and
//! allocating memory is not one of them. `run` is a safe public function that any program,
//! threads and all, may call, so it cannot assume it is alone.
//!
//! Build everything exec needs in the parent, before the fork: the `CString`s, and the array
//! of pointers to them that `execvp` takes (`Vec<*const c_char>`, the `as_ptr()` of each
//! string, with a null pointer at the end: that is how exec knows where argv stops). The child
//! then calls only `libc::execvp` and, if it returns, `libc::_exit`. nix's `execvp` does not
//! fit here: it builds that pointer array itself, allocating it, in the child.
//!
//! Syscalls: fork(2), execve(2) (`execvp` is the libc wrapper that searches PATH), _exit(2),
//! waitpid(2). In nix: `nix::unistd::fork`, `nix::sys::wait::waitpid`; `std::ffi::CString`
//! for the C strings; in the child `libc::execvp` and `libc::_exit`.
//!
//! Read: `man 2 execve`, `man 3 exec` (the `p` variants and PATH), `man 2 fcntl` (FD_CLOEXEC),
//! `man 7 signal-safety` (what a forked child of a threaded program may call).
use nix::sys::wait::WaitStatus;

/// Runs `program` with the arguments `args` in a new child process, waits for it, and
/// returns how it ended.
///
/// The new program's argument vector is `[program, args...]`: its name first, as argv[0].
/// A `program` without a `/` is looked up in the directories of `PATH`, and only there (not
/// in the current directory, unless `PATH` names it); one with a `/` is a path, absolute or
/// relative to the current directory, and `PATH` plays no part. The child inherits the
/// caller's fds, stdin and stdout included, except those marked close-on-exec.
///
/// The strings and the argv pointer array are ready before the fork; the child only execs.
/// If exec fails (no such program, not executable...), the child ends at once with
/// `_exit(127)`; it never returns from this function.
///
/// The parent waits for exactly that child and returns what `waitpid` said, e.g.
/// `WaitStatus::Exited(child, 7)` for a program that exited with 7, `Exited(child, 127)`
/// when the program could not be started. A `program` or argument containing a NUL byte
/// is an error (`EINVAL`) and starts nothing.
pub fn run(_program: &str, _args: &[&str]) -> nix::Result<WaitStatus> {
    todo!()
}
