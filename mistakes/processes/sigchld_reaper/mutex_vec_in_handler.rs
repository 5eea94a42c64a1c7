//! Mistake: the handler records reaped pids in a Mutex<Vec<Pid>>: it takes a lock and
//! allocates, neither of which is async-signal-safe.
use std::sync::Mutex;

use nix::errno::Errno;
use nix::sys::signal::{SaFlags, SigAction, SigHandler, SigSet, Signal, sigaction, signal};
use nix::sys::wait::{WaitPidFlag, WaitStatus, waitpid};
use nix::unistd::Pid;

// The mistake: a Mutex<Vec>, which the signal handler locks and grows.
/// Children reaped by the handler.
static REAPED: Mutex<Vec<Pid>> = Mutex::new(Vec::new());

/// The `SIGCHLD` handler: reaps every exited child, records its pid in a locked `Vec`, keeps
/// `errno`.
extern "C" fn on_sigchld(_signal: libc::c_int) {
    let saved = Errno::last_raw();
    // One signal may stand for many children: loop until none is left to reap.
    loop {
        match waitpid(None, Some(WaitPidFlag::WNOHANG)) {
            // 0: the children left are all still running. ECHILD: no children at all.
            Ok(WaitStatus::StillAlive) | Err(_) => break,
            Ok(status) => {
                if let Some(pid) = status.pid() {
                    // The mistake: a lock, and maybe an allocation, in a signal handler.
                    REAPED.lock().unwrap_or_else(|e| e.into_inner()).push(pid);
                }
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
    // SAFETY: not met, and that is this file's mistake: besides waitpid and saving errno (both
    // async-signal-safe), the handler locks a Mutex and pushes into a Vec, which may allocate:
    // a signal that lands while the program holds that lock or is inside malloc can deadlock it.
    unsafe { sigaction(Signal::SIGCHLD, &action) }?;
    Ok(())
}

/// How many children the handler has reaped so far; see the exercise.
pub fn reaped_count() -> usize {
    REAPED.lock().unwrap_or_else(|e| e.into_inner()).len()
}

/// Asks the kernel to reap children itself; see the exercise.
pub fn auto_reap() -> nix::Result<()> {
    // SAFETY: SIG_IGN runs no code in this process.
    unsafe { signal(Signal::SIGCHLD, SigHandler::SigIgn) }?;
    Ok(())
}
