//! # Which children does waitpid wait for? (等待子进程的选择)
//!
//! The first argument of `waitpid(pid, &status, options)` selects the children the call may
//! collect. Only children of the caller are ever candidates; among them:
//!
//! | `pid`    | waits for                                                          |
//! |----------|--------------------------------------------------------------------|
//! | `> 0`    | the one child with that pid                                        |
//! | `-1`     | any child at all (this is what `wait(&status)` does)               |
//! | `0`      | any child in the caller's own process group (进程组)               |
//! | `< -1`   | any child in process group `-pid` (so `-pgid`)                     |
//!
//! A child may leave its parent's process group with `setpgid(2)` (shells put each pipeline
//! in a group of its own, so they can wait for one job and stop or continue it as a whole).
//! Its group id is field 5 of `/proc/<pid>/stat`; that is how the tests arrange and check it.
//!
//! Without options `waitpid` *blocks* until a selected child terminates (a child that stops
//! or continues counts only when asked for, with `WUNTRACED` or `WCONTINUED`). With `WNOHANG`
//! it never blocks: it returns the pid of a selected child that has already ended, or 0 when
//! there are selected children but none has ended yet (nix calls that
//! `WaitStatus::StillAlive`). When no child matches the selector at all it fails with
//! `ECHILD`. A loop of `WNOHANG` calls until 0 or `ECHILD` collects every child that is ready
//! *now* and leaves the others running: the way a SIGCHLD handler or an event loop reaps.
//!
//! In nix: `nix::sys::wait::waitpid(pid, flags)` takes `Option<Pid>` (`None` is -1) or a
//! `Pid`: `Pid::from_raw(0)` for the own group, `Pid::from_raw(-pgid)` for a given group;
//! `WaitPidFlag::WNOHANG`.
//!
//! The mistakes to avoid: collecting a child outside the selection (one the caller did not
//! mean, e.g. waiting with -1 where a group was asked), treating a group id as a pid (that
//! waits for the group's leader only), and blocking where `WNOHANG` was asked: a caller that
//! polls must never be held up by a child that is still running.
//!
//! Read: `man 2 waitpid`, `man 2 setpgid`, `man 7 credentials` (process groups).
use nix::sys::wait::WaitStatus;
use nix::unistd::Pid;

/// Which children of the caller a wait may collect.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Selector {
    /// Only the child with this pid.
    Child(Pid),
    /// Any child of the caller.
    AnyChild,
    /// Any child in the caller's own process group.
    OwnGroup,
    /// Any child in the process group with this id (a positive pgid).
    Group(Pid),
}

/// Waits, blocking, until one child chosen by `selector` has exited (or was killed), collects
/// it and returns its status: `Exited(pid, code)`, or `Signaled(pid, signal, core)`.
///
/// Only ends are waited for (no `WUNTRACED`, no `WCONTINUED`): a child that is stopped, or
/// continued, does not end the wait.
pub fn wait_one(_selector: Selector) -> nix::Result<WaitStatus> {
    todo!()
}

/// Collects every child chosen by `selector` that has already ended (exited, or was killed by
/// a signal), without ever blocking, and returns their statuses (`Exited` or `Signaled`) in
/// the order `waitpid` gave them. A stopped child has not ended: it is left alone.
///
/// Stops when `waitpid` says no selected child is ready ([`WaitStatus::StillAlive`]) or that
/// there is no selected child at all (`ECHILD`, which is not an error here: the result is then
/// what was collected so far, possibly nothing). Selected children still running are left
/// alone; children outside the selection are never touched.
pub fn reap_ready(_selector: Selector) -> nix::Result<Vec<WaitStatus>> {
    todo!()
}
