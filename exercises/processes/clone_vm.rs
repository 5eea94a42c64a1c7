//! # clone, with and without CLONE_VM (共享地址空间)
//!
//! On Linux, `fork` and `pthread_create` are both built on one system call, `clone(2)`. Its
//! flags say what the new task shares with its creator instead of getting a copy: `CLONE_VM`
//! the address space (memory), `CLONE_FILES` the fd table, `CLONE_SIGHAND` the signal
//! handlers, `CLONE_THREAD` the thread group (then it is a thread, not a process). With no
//! sharing flags, clone is fork: the child gets a copy-on-write copy of the memory, and what
//! it writes stays its own. With `CLONE_VM` alone, the child is still a separate process (its
//! own pid, its own fd table), but it runs in the *parent's* memory: a store by the child is a
//! store in the parent. That is how threads see each other's writes, and how `vfork` lets the
//! child borrow the parent's memory until it calls exec.
//!
//! What clone needs that fork does not:
//!
//! - **A stack for the child.** With CLONE_VM the child cannot keep using the parent's stack
//!   (both would push onto the same memory), so you hand it one: a buffer of your own, passed
//!   by its *top* end (stacks grow down on x86-64 and arm64), aligned to 16 bytes. The buffer
//!   must outlive the child.
//! - **A function to run.** The child starts in an `extern "C" fn(*mut c_void) -> c_int` with
//!   the argument you pass; when that function returns, the child exits with its return value
//!   as exit code. Everything it uses must also outlive the child.
//! - **An exit signal.** The low byte of the flags is the signal the parent receives when the
//!   child ends. Pass `SIGCHLD` to get an ordinary child that `waitpid` sees. With any other
//!   value (0 included) the child is a "clone child": plain `waitpid` fails with `ECHILD`, and
//!   only `__WCLONE` or `__WALL` finds it. `/proc/<pid>/stat` field 38 shows the exit signal.
//!
//! A CLONE_VM child shares more than you asked: without `CLONE_SETTLS` it even uses the
//! parent's thread-local storage (errno included). Keep its code tiny: a read from a pipe, an
//! atomic store, return. No allocation, no locks, no printing, no panics.
//!
//! Use `libc::clone`. nix has `nix::sched::clone`, but it is unsound with CLONE_VM: it passes
//! the child a pointer to its own local copy of the closure, which is gone (and the box freed)
//! as soon as it returns to you, while the child may still be about to read it (nix issues
//! #360 and #2803). Fine without CLONE_VM, broken with it; one path for both is simpler.
//!
//! Syscalls: clone(2), pipe(2), read(2)/write(2), waitpid(2). In Rust: `libc::clone`,
//! `libc::{CLONE_VM, SIGCHLD}`, `nix::unistd::{pipe, write}`, `nix::sys::wait::waitpid`,
//! `std::sync::atomic::AtomicU64`.
//!
//! Read: `man 2 clone` (the flags CLONE_VM and CLONE_THREAD, and "The child termination
//! signal"), `man 2 wait` (`__WCLONE`, `__WALL`), `man 5 proc` (stat field 38).
use std::io;
use std::sync::atomic::AtomicU64;

use nix::sys::wait::WaitStatus;
use nix::unistd::Pid;

/// What [`clone_and_write`] saw.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CloneReport {
    /// The pid clone returned to the parent.
    pub child: Pid,
    /// What the parent read from `target` after the child had exited.
    pub parent_sees: u64,
    /// What `waitpid` on the child returned.
    pub status: WaitStatus,
}

/// Starts a child with `clone(2)` that stores `value` into `target`, sharing the caller's
/// memory if and only if `share_memory` (flag `CLONE_VM`).
///
/// The child is an ordinary child process: its exit signal is `SIGCHLD`, it runs on a stack
/// you give it, and no other sharing flag is passed. It waits for a go-ahead byte on a pipe,
/// then stores `value` into `target`, then exits with code 0 (by returning 0 from its entry
/// function); it never returns from this function.
///
/// The parent calls `while_child_waits(child)` while the child waits for the go-ahead (the
/// tests look at the child in `/proc` then), sends the go-ahead, waits for the child with
/// `waitpid`, then reads `target` and returns a [`CloneReport`].
pub fn clone_and_write(
    _share_memory: bool,
    _target: &AtomicU64,
    _value: u64,
    _while_child_waits: impl FnOnce(Pid),
) -> io::Result<CloneReport> {
    todo!()
}
