//! Mistake: the handler does not save and restore errno, so the interrupted code finds
//! ECHILD from the handler's last waitpid in place of its own errno.
use std::sync::atomic::{AtomicUsize, Ordering};

use nix::sys::signal::{SaFlags, SigAction, SigHandler, SigSet, Signal, sigaction, signal};
use nix::sys::wait::{WaitPidFlag, WaitStatus, waitpid};

/// Children reaped by the handler. An atomic: the only kind of shared state a handler may
/// touch.
static REAPED: AtomicUsize = AtomicUsize::new(0);

/// The `SIGCHLD` handler: reaps every exited child and counts them (and leaves `errno` changed).
extern "C" fn on_sigchld(_signal: libc::c_int) {
    // The mistake: errno is not saved here (nor restored at the end).
    // One signal may stand for many children: loop until none is left to reap.
    loop {
        match waitpid(None, Some(WaitPidFlag::WNOHANG)) {
            // 0: the children left are all still running. ECHILD: no children at all.
            Ok(WaitStatus::StillAlive) | Err(_) => break,
            Ok(_) => {
                REAPED.fetch_add(1, Ordering::SeqCst);
            }
        }
    }
    // The mistake: errno is not restored: waitpid's ECHILD is left behind.
}

/// Installs the reaper; see the exercise.
pub fn install_reaper() -> nix::Result<()> {
    let action = SigAction::new(
        SigHandler::Handler(on_sigchld),
        SaFlags::SA_RESTART | SaFlags::SA_NOCLDSTOP,
        SigSet::empty(),
    );
    // SAFETY: not met, and that is this file's mistake: the handler only calls waitpid and
    // updates an atomic (both async-signal-safe), but it leaves waitpid's errno behind in place
    // of the errno of the code it interrupted.
    unsafe { sigaction(Signal::SIGCHLD, &action) }?;
    Ok(())
}

/// How many children the handler has reaped so far; see the exercise.
pub fn reaped_count() -> usize {
    REAPED.load(Ordering::SeqCst)
}

/// Asks the kernel to reap children itself; see the exercise.
pub fn auto_reap() -> nix::Result<()> {
    // SAFETY: SIG_IGN runs no code in this process.
    unsafe { signal(Signal::SIGCHLD, SigHandler::SigIgn) }?;
    Ok(())
}
