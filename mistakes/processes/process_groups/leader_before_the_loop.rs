//! Mistake: forks the leader before the loop, whatever `n` is, so `spawn_group(0)` starts a child.
use nix::errno::Errno;
use nix::sys::signal::{Signal, kill};
use nix::sys::wait::waitpid;
use nix::unistd::{ForkResult, Pid, fork, getpgid, pause, setpgid};

/// Starts `n` children in one new group led by the first; see the exercise.
pub fn spawn_group(n: usize) -> nix::Result<Vec<Pid>> {
    let mut pids: Vec<Pid> = Vec::with_capacity(n);
    // The mistake: the leader is forked unconditionally, then the n - 1 others.
    for _ in 0..n.max(1) {
        // The group to join: none yet for the first child, which leads a new one (pgid 0
        // means "the same as the pid being moved").
        let leader = pids.first().copied().unwrap_or(Pid::from_raw(0));
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
