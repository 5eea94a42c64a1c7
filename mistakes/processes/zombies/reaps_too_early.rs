//! Mistake: reaps the child with waitpid before looking at it, so there is no zombie left to
//! see when while_zombie runs.
use std::ffi::CString;
use std::io;

use nix::sys::prctl;
use nix::sys::wait::{WaitStatus, waitpid};
use nix::unistd::{ForkResult, Pid, fork};

/// The state letter in the text of a `/proc/<pid>/stat` file; see the exercise.
pub fn stat_state(stat: &str) -> Option<char> {
    let open = stat.find('(')?;
    let close = stat.rfind(')')?;
    // The name is what lies between them: a `)` before the first `(` is no name at all.
    if close < open {
        return None;
    }
    stat[close + 1..].split_whitespace().next()?.chars().next()
}

/// True when `pid` is a zombie right now; see the exercise.
pub fn is_zombie(pid: Pid) -> io::Result<bool> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/stat"))?;
    match stat_state(&text) {
        Some(state) => Ok(state == 'Z'),
        None => Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!("not a stat line: {text:?}"),
        )),
    }
}

/// Makes a zombie, watches it, then reaps it; see the exercise.
pub fn zombie_then_reap(
    name: &str,
    code: u8,
    while_zombie: impl FnOnce(Pid),
) -> io::Result<WaitStatus> {
    let name = CString::new(name).map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))?;
    // SAFETY: the child only renames itself and calls _exit; it never returns into the caller.
    match unsafe { fork() }? {
        ForkResult::Child => {
            let _ = prctl::set_name(&name);
            // SAFETY: _exit ends the child at once, without the parent's copied destructors.
            unsafe { libc::_exit(code.into()) }
        }
        ForkResult::Parent { child } => {
            // The mistake: wait for it to die first, then have a look.
            let status = waitpid(child, None)?;
            while_zombie(child);
            Ok(status)
        }
    }
}
