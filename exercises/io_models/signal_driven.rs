//! # Signal-driven I/O (信号驱动 I/O): the kernel sends SIGIO when data arrives
//!
//! In **signal-driven I/O** (信号驱动 I/O) a process does not sleep in `read(2)` on one fd;
//! it asks the kernel to send it a signal, **SIGIO**, whenever an fd becomes readable, and is
//! free until then. Three steps arm an fd (fcntl(2)):
//!
//! 1. a handler for SIGIO (sigaction(2)): SIGIO's default action kills the process;
//! 2. `fcntl(fd, F_SETOWN, getpid())`: the fd's **owner**, the process the signal goes to.
//!    Without an owner the kernel sends the signal to nobody: no SIGIO, ever (the classic
//!    mistake). nix has no wrapper; call `libc::fcntl`;
//! 3. `fcntl(fd, F_SETFL, flags | O_ASYNC)`: turn the signal on (and `O_NONBLOCK`, so that a
//!    read with no data returns `EAGAIN` instead of sleeping).
//!
//! The kernel raises SIGIO when new data arrives. It says nothing about data that was already
//! there when the fd was armed, so the process must look before it sleeps.
//!
//! ## Sleeping until the signal, without losing it
//!
//! The obvious loop, "try a read; on `EAGAIN`, `pause()`", has a hole: if the data (and its
//! SIGIO) arrive after the read and before `pause`, the handler runs right then, and `pause`
//! sleeps for a signal that has already come: a **lost wake-up**, forever. The race-free
//! pattern blocks the signal while looking:
//!
//! ```text
//! sigprocmask(SIG_BLOCK, {SIGIO}, &old)       a SIGIO now stays pending
//! loop {
//!     read (non-blocking) -> data: done       the check
//!     sigsuspend(old minus SIGIO)             atomically unblock and sleep; a pending
//! }                                           SIGIO ends it at once
//! sigprocmask(SIG_SETMASK, &old, NULL)        the caller's mask, as it was
//! ```
//!
//! `sigsuspend(2)` swaps the mask and sleeps in one step, so no signal can slip in between.
//! It returns (with `EINTR`) after a handler ran; nix's `SigSet::suspend` calls it. In a
//! process with several threads use `pthread_sigmask` (nix: `pthread_sigmask`) and know that
//! the signal may go to another thread that has it unblocked.
//!
//! Leave things as you found them: the fd's flags and owner, the signal mask, and the SIGIO
//! action the caller had (sigaction returns the old one).
//!
//! ## What the tests look at
//!
//! The waiter runs in a forked child. The test reads `/proc/<pid>/syscall` (it must be asleep
//! in `rt_sigsuspend`, not `pause`, not running in a loop), `/proc/<pid>/status` (`SigCgt`:
//! a handler for SIGIO; `SigBlk`: the masks before, during and after), and what is queued in
//! the pipe (`FIONREAD`). A waiter asleep while data waits is reported at once.
//!
//! Man pages: fcntl(2) (`F_SETOWN`, `O_ASYNC`, `F_SETFL`), signal(7), sigaction(2),
//! sigprocmask(2), sigsuspend(2), pause(2), pipe(7), socket(7) (`SIGIO`), proc(5).
use std::os::fd::AsFd;

/// Waits, asleep in sigsuspend(2), until `fd` has data, then reads it into `buf` and returns
/// how many bytes were read (0 at end of file).
///
/// Blocks SIGIO, installs a SIGIO handler, makes this process the fd's owner and sets
/// `O_ASYNC | O_NONBLOCK`; then, in a loop, tries a read and sleeps in sigsuspend with the old
/// mask (SIGIO unblocked) while the read says `EAGAIN`. Before returning, data or error, it
/// restores the fd's flags and owner, the SIGIO action and the signal mask. Errors of the
/// system calls are returned.
pub fn wait_for_data(_fd: impl AsFd, _buf: &mut [u8]) -> nix::Result<usize> {
    todo!()
}
