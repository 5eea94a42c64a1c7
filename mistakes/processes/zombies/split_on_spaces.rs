//! Mistake: reads the state as the third word of the stat line, split on spaces, so a command
//! name with spaces in it shifts every field.
use std::ffi::CString;
use std::io;
use std::time::Duration;

use nix::sys::prctl;
use nix::sys::wait::{WaitStatus, waitpid};
use nix::unistd::{ForkResult, Pid, fork};

/// The state letter in the text of a `/proc/<pid>/stat` file; see the exercise.
pub fn stat_state(stat: &str) -> Option<char> {
    stat.find('(')?;
    stat.rfind(')')?;
    // The mistake: field 3 is the state... unless the name holds spaces.
    stat.split_whitespace().nth(2)?.chars().next()
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
            // Not waitpid yet: that would remove the very zombie we want to see.
            let seen = loop {
                match is_zombie(child) {
                    Ok(true) => break Ok(()),
                    Ok(false) => std::thread::sleep(Duration::from_millis(1)),
                    Err(e) => break Err(e),
                }
            };
            if seen.is_ok() {
                while_zombie(child);
            }
            let status = waitpid(child, None)?;
            seen.map(|()| status)
        }
    }
}
