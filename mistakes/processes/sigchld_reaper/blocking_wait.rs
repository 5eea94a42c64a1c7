//! Mistake: the handler reaps with a blocking waitpid(-1) until ECHILD, so it waits for
//! children that are still running and the whole program stands still.
use std::sync::atomic::{AtomicUsize, Ordering};

use nix::errno::Errno;
use nix::sys::signal::{SaFlags, SigAction, SigHandler, SigSet, Signal, sigaction, signal};
use nix::sys::wait::{WaitStatus, waitpid};

/// Children reaped by the handler. An atomic: the only kind of shared state a handler may
/// touch.
static REAPED: AtomicUsize = AtomicUsize::new(0);

/// The `SIGCHLD` handler: reaps every exited child, counts them, keeps `errno`.
extern "C" fn on_sigchld(_signal: libc::c_int) {
    let saved = Errno::last_raw();
    // One signal may stand for many children: loop until none is left to reap.
    loop {
        // The mistake: no WNOHANG, so this waits for children still running.
        match waitpid(None, None) {
            // Without WNOHANG a 0 never comes; ECHILD: no children at all.
            Ok(WaitStatus::StillAlive) | Err(_) => break,
            Ok(_) => {
                REAPED.fetch_add(1, Ordering::SeqCst);
            }
        }
    }
    Errno::set_raw(saved);
}

/// Installs the reaper; see the exercise.
pub fn install_reaper() -> nix::Result<()> {
    let action = SigAction::new(
        SigHandler::Handler(on_sigchld),
        SaFlags::SA_RESTART | SaFlags::SA_NOCLDSTOP,
        SigSet::empty(),
    );
    // SAFETY: the handler only calls waitpid, updates an atomic and saves/restores errno, all
    // async-signal-safe.
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
