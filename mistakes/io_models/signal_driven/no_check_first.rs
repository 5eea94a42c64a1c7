//! # Signal-driven I/O (信号驱动 I/O): the kernel sends SIGIO when data arrives
//!
//! Reference solution. See `exercises/io_models/signal_driven.rs` for the lesson.
use std::os::fd::{AsFd, AsRawFd};
use std::sync::atomic::{AtomicBool, Ordering};

use nix::errno::Errno;
use nix::fcntl::{FcntlArg, OFlag, fcntl};
use nix::sys::signal::{SaFlags, SigAction, SigHandler, SigSet, SigmaskHow, Signal, sigaction};
use nix::unistd::{getpid, read};

/// Set by the handler; the wait itself only needs the handler to run (it ends sigsuspend).
static ARRIVED: AtomicBool = AtomicBool::new(false);

extern "C" fn on_sigio(_: libc::c_int) {
    ARRIVED.store(true, Ordering::SeqCst);
}

/// Waits, asleep in sigsuspend(2), until `fd` has data, then reads it into `buf` and returns
/// the count (0 at end of file). Restores the fd's flags and owner, the signal mask and the
/// SIGIO action before it returns.
pub fn wait_for_data(fd: impl AsFd, buf: &mut [u8]) -> nix::Result<usize> {
    let fd = fd.as_fd();
    let raw = fd.as_raw_fd();
    // Block SIGIO first: from here on a SIGIO stays pending until sigsuspend lets it in.
    let mut block = SigSet::empty();
    block.add(Signal::SIGIO);
    let mut old_mask = SigSet::empty();
    nix::sys::signal::pthread_sigmask(SigmaskHow::SIG_BLOCK, Some(&block), Some(&mut old_mask))?;
    let action = SigAction::new(
        SigHandler::Handler(on_sigio),
        SaFlags::empty(),
        SigSet::empty(),
    );
    // SAFETY: the handler only stores to an atomic, which is async-signal-safe.
    let old_action = match unsafe { sigaction(Signal::SIGIO, &action) } {
        Ok(old) => old,
        Err(e) => {
            let _ =
                nix::sys::signal::pthread_sigmask(SigmaskHow::SIG_SETMASK, Some(&old_mask), None);
            return Err(e);
        }
    };
    let result = armed_wait(fd, raw, buf, &old_mask);
    // SAFETY: puts back the action the caller had.
    let _ = unsafe { sigaction(Signal::SIGIO, &old_action) };
    nix::sys::signal::pthread_sigmask(SigmaskHow::SIG_SETMASK, Some(&old_mask), None)?;
    result
}

/// With SIGIO blocked and handled: arms the fd, checks, sleeps, disarms.
fn armed_wait(
    fd: std::os::fd::BorrowedFd<'_>,
    raw: i32,
    buf: &mut [u8],
    old_mask: &SigSet,
) -> nix::Result<usize> {
    let flags = OFlag::from_bits_retain(fcntl(fd, FcntlArg::F_GETFL)?);
    // SAFETY: F_GETOWN takes no argument.
    let old_owner = Errno::result(unsafe { libc::fcntl(raw, libc::F_GETOWN) })?;
    // SAFETY: F_SETOWN takes a pid: SIGIO for this fd goes to this process.
    Errno::result(unsafe { libc::fcntl(raw, libc::F_SETOWN, getpid().as_raw()) })?;
    let result = fcntl(
        fd,
        FcntlArg::F_SETFL(flags | OFlag::O_ASYNC | OFlag::O_NONBLOCK),
    )
    .and_then(|_| {
        let mut sleep_mask = *old_mask;
        sleep_mask.remove(Signal::SIGIO);
        loop {
            // The mistake: sleep first, as if every byte came with a SIGIO of its own.
            sleep_mask.suspend()?;
            match read(fd, buf) {
                Ok(n) => return Ok(n),
                Err(Errno::EAGAIN) => {}
                Err(Errno::EINTR) => continue,
                Err(e) => return Err(e),
            }
        }
    });
    let _ = fcntl(fd, FcntlArg::F_SETFL(flags));
    // SAFETY: as above, the owner the fd had.
    let _ = unsafe { libc::fcntl(raw, libc::F_SETOWN, old_owner) };
    result
}
