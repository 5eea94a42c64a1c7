//! # Process groups: signal a whole job at once (进程组)
//!
//! Every process belongs to a process group, named by a number, the pgid; the process whose
//! pid equals the pgid is the group's leader. A child starts in its parent's group. Groups are
//! how a shell runs a job: all the processes of `a | b | c` go into one new group, so Ctrl-C
//! (the terminal sends SIGINT to its foreground group) or `kill %1` reaches every one of them,
//! and none of the shell's other jobs, nor the shell itself.
//!
//! - `setpgid(pid, pgid)` moves process `pid` into group `pgid`. `setpgid(child, child)` makes
//!   the child the leader of a new group; `setpgid(child, leader)` puts it into the existing
//!   group of `leader`. A 0 means "the caller" for `pid`, and "the same as `pid`" for `pgid`,
//!   so a child can call `setpgid(0, 0)` to lead a group of its own, or `setpgid(0, leader)`.
//!   A process may move itself or its own children (until they exec), only within its session.
//! - `getpgid(pid)` reads a process's group (`/proc/<pid>/stat` field 5 shows the same).
//! - `kill(pid, sig)` with a positive pid signals that one process. `kill(-pgid, sig)`, a
//!   negative number, signals every process in group `pgid` (that is what `killpg(3)` does).
//!   Beware: `kill(0, sig)` is the caller's *own* group, and `kill(-1, sig)` every process
//!   you are allowed to signal: never send those by accident.
//!
//! A race hides in "fork, then setpgid": after `fork` both processes run in any order. If only
//! the child joins the group, the parent may signal the group before the child has run; if
//! only the parent moves the child, the child may already rely on being in it. Shells
//! therefore call `setpgid` on both sides, with the same arguments: whichever runs first makes
//! it so, and the second call changes nothing.
//!
//! Syscalls: fork(2), setpgid(2), getpgid(2), kill(2), pause(2), _exit(2), waitpid(2). In
//! nix: `nix::unistd::{fork, setpgid, getpgid, pause}`, `nix::sys::signal::{kill, killpg}`
//! (`kill` takes a `Pid`: `Pid::from_raw(-pgid)` is a group), `nix::sys::wait::waitpid`;
//! `_exit` through `libc::_exit`.
//!
//! Read: `man 2 setpgid` (and its NOTES on job control), `man 2 kill` (the meaning of pid > 0,
//! 0, -1 and < -1), `man 7 credentials` (process groups and sessions), `man 5 proc` (stat).
use nix::sys::signal::Signal;
use nix::unistd::Pid;

/// Starts `n` children, all in one new process group led by the first of them, and returns
/// their pids, the leader first.
///
/// Each child waits for signals forever (`pause` in a loop) and never returns from this
/// function; with the default dispositions, a signal such as SIGTERM ends it. The group is
/// set on both sides of each fork (in the parent and in the child), so every child is in it
/// by the time this returns. The caller stays in its own group. `n == 0` starts nothing.
///
/// If a fork fails, the children already started are killed and waited for before the error
/// is returned.
pub fn spawn_group(_n: usize) -> nix::Result<Vec<Pid>> {
    todo!()
}

/// The process group of `pid`, as the kernel reports it (`getpgid`).
pub fn group_of(_pid: Pid) -> nix::Result<Pid> {
    todo!()
}

/// Sends `sig` to every process in the process group `pgid`, and to no other process.
///
/// Fails with `ESRCH` when the group has no member left. A `pgid` of 1 or less names no group
/// this function may signal (negated, 0 and 1 would become `kill(0)`, the caller's own group,
/// and `kill(-1)`, every process): return `EINVAL` for those without sending anything.
pub fn signal_group(_pgid: Pid, _sig: Signal) -> nix::Result<()> {
    todo!()
}
