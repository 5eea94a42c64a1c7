//! # vfork: borrow the parent's memory until exec (vfork)
//!
//! Most children a shell forks call exec at once, which throws away the copy of the parent's
//! memory that fork made for them. Before copy-on-write made fork cheap, BSD added `vfork(2)`
//! for exactly that case: the child gets no copy at all. It runs in the parent's own address
//! space, on the parent's own stack, and the kernel keeps the parent's calling thread asleep
//! until the child has either called exec (from then on the child has a fresh address space
//! of its own) or ended with `_exit`. Only then does `vfork` return in the parent. Linux
//! still has it, and it is still the fastest way to start a program from a process with a big
//! address space: glibc's `posix_spawn` (which Rust's `std::process::Command` uses where it
//! can) is built on the same idea, a clone with `CLONE_VM | CLONE_VFORK`.
//!
//! The price is that between `vfork` and exec the child is a guest in the parent's memory,
//! and everything it does there the parent finds afterwards:
//!
//! - **A variable the child writes is the parent's variable.** The same goes for the heap:
//!   an allocation in the child takes the allocator's lock and changes its lists in the
//!   parent's memory, and the block is never freed (the child's exec forgets it, the parent
//!   never knew it). `setenv` or `std::env::set_var` in the child changes the *parent's*
//!   environment. To run a program with extra variables, build its environment as an array
//!   (`envp`) before vfork and pass it to exec.
//! - **exit(3) in the child runs the parent's exit work.** It calls the atexit handlers and
//!   thread-local destructors, and flushes and closes every stdio stream: the parent's
//!   handlers run in the child, and the data in the parent's stdio buffers is written out
//!   (and gone from the parent's buffers). After a failed exec the child must end with
//!   `_exit(2)`, which does none of it. 127 is the status a shell gives "command not found".
//! - **The child must never return from the function that called vfork.** Its stack *is* the
//!   parent's stack: returning pops the frame the parent is still inside, and whatever the
//!   child calls next overwrites it.
//! - **The child must not wait for the parent.** The parent cannot run until the child has
//!   exec'd or exited, so a child that reads a pipe the parent is to write, or waits for a
//!   signal from it, waits forever: a deadlock. (Between fork and exec such a handshake
//!   works; under vfork it never can.)
//!
//! So the child does one thing, `execve`, and `_exit(127)` if that fails. Everything those two
//! calls need is ready before `vfork`: the `CString`s of the program, its arguments and its
//! environment entries (`NAME=value`), and the two null-terminated arrays of pointers to them
//! (`Vec<*const c_char>` ending with a null pointer; argv starts with the program's own name).
//! `libc::execvpe(file, argv, envp)` searches `PATH` for a name without a `/`, as `execvp`
//! does, and gives the new program the environment `envp`.
//!
//! ## vfork in Rust
//!
//! `libc::vfork` is the C function (nix has no wrapper: there is no safe way to offer one).
//! The compiler does not know that it returns twice, in two processes sharing one stack, so
//! keep the child's branch to a single call of a function that never returns (`-> !`), say
//! `unsafe fn exec_or_die(file, argv, envp) -> !`, marked `#[inline(never)]`: its frame then
//! lies below the parent's and the parent's own frame is left as it was. Pass it raw pointers
//! only, made before `vfork`; in the child do not touch a `Vec`, a `String`, a `Result` or
//! anything else that could allocate, panic or print.
//!
//! Syscalls: vfork(2), execve(2) (`execvpe` is the libc wrapper that searches PATH), _exit(2),
//! waitpid(2). In Rust: `libc::vfork`, `libc::execvpe`, `libc::_exit`,
//! `nix::sys::wait::waitpid`, `std::ffi::CString`, `std::env::vars_os` for the caller's
//! environment.
//!
//! Read: `man 2 vfork` (especially NOTES and BUGS), `man 3 exec` (`execvpe`), `man 7 environ`,
//! `man 3 exit` (what it runs), `man 2 _exit`.
use nix::sys::wait::WaitStatus;

/// Runs `program` through `vfork` + exec, waits for it and returns how it ended.
///
/// The new program's argv is `[program, args...]`; a `program` without a `/` is looked up in
/// the directories of the caller's `PATH`. Its environment is the caller's environment with
/// each `(name, value)` of `env` set in it (replacing the caller's variable of that name);
/// the caller's own environment stays as it was. The program inherits the caller's fds.
///
/// Every string and pointer array is made before `vfork`. The child only calls exec, and
/// `_exit(127)` if exec fails: it writes no memory of the caller, allocates nothing, waits for
/// nothing and never returns from this function. While it runs, until its exec, the caller's
/// thread is suspended inside `vfork`.
///
/// Returns what `waitpid` said about that child: `Exited(child, code)` for a program that
/// exited, `Exited(child, 127)` when it could not be started, `Signaled(..)` when a signal
/// killed it. A NUL byte in any string, or a name in `env` that is empty or holds a `=`, is
/// `EINVAL`, and starts nothing.
pub fn run(_program: &str, _args: &[&str], _env: &[(&str, &str)]) -> nix::Result<WaitStatus> {
    todo!()
}
