//! The grader is a child subreaper: whatever a test leaves behind is re-parented to the grader
//! once the test's process is gone, and [`sweep`] kills and reaps it. Tests are spawned through
//! [`spawn`] so that a sweep never touches a test that is still running, nor its process group.
use std::collections::BTreeSet;
use std::fs;
use std::io;
use std::process::{Child, Command};
use std::sync::{Mutex, MutexGuard};
use std::thread;
use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, kill};
use nix::sys::wait::{WaitPidFlag, WaitStatus, waitpid};
use nix::unistd::Pid;

/// The pids (each also a process group id) of the tests running now.
static RUNNING: Mutex<BTreeSet<i32>> = Mutex::new(BTreeSet::new());

/// How long one sweep may keep killing before it gives up (a process stuck in the kernel).
const SWEEP_LIMIT: Duration = Duration::from_secs(5);

fn running() -> MutexGuard<'static, BTreeSet<i32>> {
    RUNNING.lock().unwrap_or_else(|e| e.into_inner())
}

/// In a child of the grader before exec (a test's process, cargo): dies with the grader. If
/// the grader thread waiting for it dies (the grader is killed, even by SIGKILL), the child
/// gets SIGKILL: a test's supervisor, which watches the test's pidfd, then kills the body's
/// tree; cargo's compilers finish their one file and exit. A grader that died before the
/// signal was armed has already re-parented this process, so exec is refused.
pub fn pdeath_guard(grader: Pid) -> std::io::Result<()> {
    nix::sys::prctl::set_pdeathsig(Signal::SIGKILL).map_err(std::io::Error::from)?;
    if nix::unistd::getppid() != grader {
        return Err(std::io::Error::from_raw_os_error(nix::libc::ESRCH));
    }
    Ok(())
}

/// Makes the grader a child subreaper.
pub fn become_subreaper() -> nix::Result<()> {
    nix::sys::prctl::set_child_subreaper(true)
}

/// Spawns a test that must run in its own process group, and records it as running.
pub fn spawn(cmd: &mut Command) -> io::Result<Child> {
    let mut running = running();
    let child = cmd.spawn()?;
    running.insert(child.id() as i32);
    Ok(child)
}

/// Records that the test with this pid has been waited for.
pub fn finished(pid: u32) {
    running().remove(&(pid as i32));
}

/// Kills (SIGKILL) and reaps every child of the grader that is not a running test nor in a
/// running test's process group, until none is left.
pub fn sweep() {
    let running = running();
    let me = Pid::this().as_raw();
    let start = Instant::now();
    loop {
        let strays: Vec<i32> = children(me)
            .into_iter()
            .filter(|&(pid, pgrp)| !running.contains(&pid) && !running.contains(&pgrp))
            .map(|(pid, _)| pid)
            .collect();
        if strays.is_empty() || start.elapsed() > SWEEP_LIMIT {
            return;
        }
        // Stop them all first, so that none can fork while the others die.
        for &pid in &strays {
            let _ = kill(Pid::from_raw(pid), Signal::SIGSTOP);
        }
        for &pid in &strays {
            let _ = kill(Pid::from_raw(pid), Signal::SIGKILL);
        }
        for &pid in &strays {
            while start.elapsed() <= SWEEP_LIMIT {
                match waitpid(
                    Pid::from_raw(pid),
                    Some(WaitPidFlag::WNOHANG | WaitPidFlag::__WALL),
                ) {
                    Ok(WaitStatus::StillAlive) => thread::sleep(Duration::from_millis(1)),
                    _ => break,
                }
            }
        }
    }
}

/// `(pid, process group)` of each process whose parent is `parent`, from /proc.
fn children(parent: i32) -> Vec<(i32, i32)> {
    let Ok(dir) = fs::read_dir("/proc") else {
        return Vec::new();
    };
    dir.filter_map(|e| e.ok()?.file_name().to_str()?.parse::<i32>().ok())
        .filter_map(|pid| {
            let (ppid, pgrp) =
                parent_and_group(&fs::read_to_string(format!("/proc/{pid}/stat")).ok()?)?;
            (ppid == parent).then_some((pid, pgrp))
        })
        .collect()
}

/// The ppid and pgrp fields of a /proc/<pid>/stat line (after the command, which may hold spaces).
fn parent_and_group(stat: &str) -> Option<(i32, i32)> {
    let mut fields = stat[stat.rfind(')')? + 1..].split_whitespace();
    let _state = fields.next()?;
    Some((fields.next()?.parse().ok()?, fields.next()?.parse().ok()?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_stat_lines() {
        assert_eq!(
            parent_and_group("42 (a (weird) name) S 7 42 42 0 -1"),
            Some((7, 42))
        );
        assert_eq!(parent_and_group("garbage"), None);
    }
}
