// depends on: options, evidence, procfs (used by the body, stage B).
//! Threads the test started and left running.
//!
//! The body process has exactly one thread when the test starts (it was forked from the
//! supervisor's test thread). When the test returns, any other thread in `/proc/<pid>/task`
//! was started by the test and nobody joined it: it runs on, unsupervised, until the process
//! exits. A thread that has done its work but is still on its way out (its closure returned,
//! the C library is freeing its stack) is not that mistake, so the check waits a moment for
//! threads to leave before it names those still there.
use std::time::{Duration, Instant};

use nix::unistd::Pid;

use crate::evidence::{state_word, syscall_name};
use crate::procfs;

/// How long a thread on its way out is given to finish (scaled like every deadline).
const GRACE: Duration = Duration::from_millis(500);

/// One sentence for each thread of `pid` other than its main one still there once a thread on
/// its way out has had [`GRACE`] to finish: its tid, name, state and system call.
pub(crate) fn left_running(pid: Pid) -> Vec<String> {
    let others = || {
        procfs::threads(pid)
            .unwrap_or_default()
            .into_iter()
            .filter(|&tid| tid != pid.as_raw())
            .collect::<Vec<_>>()
    };
    let limit = crate::scaled(GRACE);
    let start = Instant::now();
    let mut pause = Duration::from_micros(100);
    let mut left = others();
    while !left.is_empty() && start.elapsed() < limit {
        std::thread::sleep(pause);
        pause = (pause * 2).min(Duration::from_millis(10));
        left = others();
    }
    left.into_iter()
        .filter_map(|tid| describe(pid, tid))
        .collect()
}

/// The sentence for thread `tid` of `pid`, `None` if it is gone.
fn describe(pid: Pid, tid: i32) -> Option<String> {
    let stat = procfs::task_stat(pid, tid).ok()?;
    Some(format!(
        "thread {tid} ({}) is still running after the test returned: a thread that nobody joined. It is {}{}. \
         Join every thread you start before returning (JoinHandle::join, pthread_join), or start it in \
         std::thread::scope",
        stat.comm,
        state_word(stat.state),
        in_syscall(pid, tid),
    ))
}

/// ", in the system call ..." from `/proc/<pid>/task/<tid>/syscall`, or "" where unreadable.
fn in_syscall(pid: Pid, tid: i32) -> String {
    let file = format!("/proc/{pid}/task/{tid}/syscall");
    let Ok(text) = std::fs::read_to_string(&file) else {
        return String::new();
    };
    if text.trim() == "running" {
        return format!(", running its own code, not in a system call ({file})");
    }
    match procfs::thread_syscall(pid, tid) {
        Some(call) => format!(
            ", in the system call {} with arguments {:#x}, {:#x}, {:#x} ({file}: {})",
            syscall_name(call.nr),
            call.args[0],
            call.args[1],
            call.args[2],
            text.trim()
        ),
        None => format!(" ({file}: {})", text.trim()),
    }
}
