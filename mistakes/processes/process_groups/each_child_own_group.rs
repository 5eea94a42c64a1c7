//! Mistake: every child is given a group of its own (setpgid(child, child), setpgid(0, 0))
//! instead of joining the first child's group, so the "group" holds only its leader.
use nix::errno::Errno;
use nix::sys::signal::{Signal, kill};
use nix::sys::wait::waitpid;
use nix::unistd::{ForkResult, Pid, fork, getpgid, pause, setpgid};

/// Starts `n` children in one new group led by the first; see the exercise.
pub fn spawn_group(n: usize) -> nix::Result<Vec<Pid>> {
    let mut pids: Vec<Pid> = Vec::with_capacity(n);
    for _ in 0..n {
        // The mistake: a new group for each child (pgid 0 means "the same as the pid being
        // moved"), not the first child's.
        let leader = Pid::from_raw(0);
        // SAFETY: the child only calls setpgid and pause until a signal ends it.
        match unsafe { fork() } {
            Ok(ForkResult::Child) => {
                // Our side of the race: join (or found) the group before anything else.
                let _ = setpgid(Pid::from_raw(0), leader);
                loop {
                    pause();
                }
            }
            Ok(ForkResult::Parent { child }) => {
                pids.push(child);
                // The parent's side: by the time we return, the child is in the group.
                if let Err(e) = setpgid(child, leader) {
                    stop_all(&pids);
                    return Err(e);
                }
            }
            Err(e) => {
                stop_all(&pids);
                return Err(e);
            }
        }
    }
    Ok(pids)
}

/// Kills and reaps the children started so far.
fn stop_all(pids: &[Pid]) {
    for &pid in pids {
        let _ = kill(pid, Signal::SIGKILL);
        let _ = waitpid(pid, None);
    }
}

/// The process group of `pid`.
pub fn group_of(pid: Pid) -> nix::Result<Pid> {
    getpgid(Some(pid))
}

/// Sends `sig` to every member of group `pgid`: a negative pid names a group.
pub fn signal_group(pgid: Pid, sig: Signal) -> nix::Result<()> {
    // Negated, 0 would be kill(0) (our own group) and 1 kill(-1) (everyone we may signal).
    if pgid.as_raw() <= 1 {
        return Err(Errno::EINVAL);
    }
    kill(Pid::from_raw(-pgid.as_raw()), sig)
}
