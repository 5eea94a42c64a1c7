//! Mistake: the read end of the go-ahead pipe is turned into a raw fd for the child's argument
//! and never closed, so every call leaves an fd open in the caller.
use std::ffi::{c_int, c_void};
use std::io;
use std::os::fd::{IntoRawFd, RawFd};
use std::panic::{self, AssertUnwindSafe};
use std::sync::atomic::{AtomicU64, Ordering};

use nix::sys::wait::{WaitStatus, waitpid};
use nix::unistd::{Pid, pipe, write};

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

/// The child's stack size: plenty for a read and a store.
const STACK_SIZE: usize = 64 * 1024;

/// What the child needs, handed to it by address.
struct ChildArgs<'a> {
    go: RawFd,
    target: &'a AtomicU64,
    value: u64,
}

/// The child's whole life: wait for the go-ahead byte, store the value, return the exit code.
/// It must stay small: with CLONE_VM it runs on the parent's memory (and thread-local
/// storage) beside the parent, so it calls nothing that allocates or takes locks.
extern "C" fn child_main(arg: *mut c_void) -> c_int {
    // SAFETY: `arg` points to the ChildArgs in clone_and_write's frame (or, without CLONE_VM,
    // to this process's copy of it), which stays alive until the parent has waited for us.
    let args = unsafe { &*(arg as *const ChildArgs<'_>) };
    let mut byte = 0u8;
    // SAFETY: reads at most one byte into a local.
    let n = unsafe { libc::read(args.go, (&raw mut byte).cast(), 1) };
    if n != 1 {
        return 1;
    }
    args.target.store(args.value, Ordering::SeqCst);
    0
}

/// Starts a child with clone(2) that writes `value` into `target`; see the exercise for the
/// contract.
pub fn clone_and_write(
    share_memory: bool,
    target: &AtomicU64,
    value: u64,
    while_child_waits: impl FnOnce(Pid),
) -> io::Result<CloneReport> {
    let (go_read, go_write) = pipe()?;
    let mut stack = vec![0u8; STACK_SIZE];
    let args = ChildArgs {
        // The mistake: the OwnedFd is given up for a raw fd that nobody closes.
        go: go_read.into_raw_fd(),
        target,
        value,
    };
    // The low byte of the flags is the signal the parent gets when the child ends: SIGCHLD
    // makes it an ordinary child that waitpid sees.
    let mut flags = libc::SIGCHLD;
    if share_memory {
        flags |= libc::CLONE_VM;
    }
    // The stack grows down: clone wants its top end, aligned to 16 bytes.
    let end = stack.as_mut_ptr_range().end;
    let top = end.wrapping_sub(end as usize % 16);
    // SAFETY: child_main only reads `args` and stores into an atomic; `args` and `stack` live
    // in this frame, and this function waits for the child before either is dropped.
    let pid = unsafe {
        libc::clone(
            child_main,
            top.cast(),
            flags,
            (&raw const args).cast_mut().cast(),
        )
    };
    if pid == -1 {
        return Err(io::Error::last_os_error());
    }
    let child = Pid::from_raw(pid);
    // Whatever the callback does, the child must be let go and waited for before `stack` and
    // `args` go away.
    let looked = panic::catch_unwind(AssertUnwindSafe(|| while_child_waits(child)));
    let sent = write(&go_write, b"g");
    let status = waitpid(child, None);
    drop(stack);
    if let Err(p) = looked {
        panic::resume_unwind(p);
    }
    sent?;
    Ok(CloneReport {
        child,
        parent_sees: target.load(Ordering::SeqCst),
        status: status?,
    })
}
