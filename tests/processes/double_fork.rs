//! processes/double_fork: a task runs in a grandchild; the caller waits only for the middle
//! child, keeps no zombie, and the grandchild is adopted (by the test process, a subreaper).
//!
//! The task sends its pid and parent's pid through a pipe, then stays alive until the test
//! releases it, at most 3 s, and finally writes a marker file. So, observed rather than
//! claimed:
//! - a caller that waited for the grandchild (in the middle child or itself) returns only
//!   after those 3 s, with the grandchild already gone: caught with its time, no hang;
//! - a correct caller returns while the grandchild still runs: `/proc` shows it alive, with
//!   the test process as its parent, and no zombie among the caller's children;
//! - after the release, the marker proves the task ran to its end.
use std::fs;
use std::io::Read;
use std::os::fd::{AsFd, OwnedFd};
use std::time::{Duration, Instant};

use nix::poll::{PollFd, PollFlags, poll};
use nix::sys::wait::{WaitStatus, waitpid};
use nix::unistd::{Pid, getpid, getppid, pipe, write};
use oskata::processes::double_fork::*;
use oskata_harness::evidence::{self, state_word};
use oskata_harness::{body_pid, isolated, poll as wait_for, procfs, scratch_dir, student};

/// How long the task waits for the test to release it.
const TASK_LIMIT_MS: u16 = 3000;

/// The task: report (pid, ppid), wait for the release (at most [`TASK_LIMIT_MS`]), write the
/// marker. Runs in whatever process the code under test calls it in.
fn task(report: OwnedFd, release: OwnedFd) -> impl FnOnce() {
    move || {
        let mut words = [0u8; 8];
        words[..4].copy_from_slice(&getpid().as_raw().to_ne_bytes());
        words[4..].copy_from_slice(&getppid().as_raw().to_ne_bytes());
        let _ = write(&report, &words);
        let mut fds = [PollFd::new(release.as_fd(), PollFlags::POLLIN)];
        let _ = poll(&mut fds, TASK_LIMIT_MS);
        let _ = fs::write(scratch_dir().join("ran"), format!("done {}", getpid()));
    }
}

/// The caller's children and the rest of its tree, for messages.
fn tree() -> String {
    let me = body_pid().expect("inside isolated()");
    evidence::process_table(&procfs::descendants(me))
}

/// Runs spawn_detached on the task and checks everything; `Ok` or the lesson.
fn run_once() {
    let me = body_pid().expect("inside isolated()");
    let (report_r, report_w): (OwnedFd, OwnedFd) = pipe().expect("pipe");
    let (release_r, release_w): (OwnedFd, OwnedFd) = pipe().expect("pipe");
    let start = Instant::now();
    let middle = student(|| spawn_detached(task(report_w, release_r)))
        .unwrap_or_else(|e| panic!("spawn_detached failed: {e}"));
    let took = start.elapsed();

    // The task ran somewhere: it sent its pid and its parent's pid first thing.
    let mut fds = [PollFd::new(report_r.as_fd(), PollFlags::POLLIN)];
    let ready = poll(&mut fds, 5000u16).unwrap_or(0);
    assert!(
        ready > 0,
        "the task never started: within 5 s nothing came from it (it sends its pid first thing). The grandchild \
         should call task().\n{}",
        tree()
    );
    let mut words = [0u8; 8];
    std::fs::File::from(report_r)
        .read_exact(&mut words)
        .expect("the task's report");
    let word = |at: usize| Pid::from_raw(i32::from_ne_bytes(words[at..at + 4].try_into().unwrap()));
    let (grandchild, first_parent) = (word(0), word(4));
    assert_ne!(
        grandchild, me,
        "the task ran in the caller (pid {me}) itself: it should run in a grandchild"
    );
    assert_ne!(
        grandchild, middle,
        "the task ran in pid {grandchild}, the very child spawn_detached returned, not in a grandchild: the caller \
         cannot both wait for that child (and so for the task) and leave no zombie. Fork twice: the middle child \
         forks the grandchild that runs the task, and exits at once."
    );
    assert!(
        first_parent == middle || first_parent == me,
        "when the task started, its parent was pid {first_parent}; it should be the middle child {middle} that \
         spawn_detached returned (or, if that one had already exited, the test process {me} that adopted it)"
    );

    // The caller must not have waited for the task: the grandchild still runs, adopted.
    match procfs::stat(grandchild) {
        Ok(stat) if stat.state != 'Z' => assert_eq!(
            stat.ppid,
            me.as_raw(),
            "the grandchild {grandchild} is running but its parent is pid {}, not the test process {me}: once the \
             middle child {middle} has exited, the orphaned grandchild is adopted by the nearest subreaper, the \
             test process.\n{}",
            stat.ppid,
            tree()
        ),
        _ if took < Duration::from_millis(TASK_LIMIT_MS.into()) => panic!(
            "the grandchild {grandchild} is already gone or dead {took:.1?} after spawn_detached was called, though \
             its task runs until the test releases it: something ended or reaped it early.\n{}",
            tree()
        ),
        _ => panic!(
            "spawn_detached returned after {took:.1?}, and by then the grandchild {grandchild} had finished its task \
             (which runs until the test releases it, at most 3 s) and was gone or dead: spawn_detached waited for \
             the grandchild, in the middle child or in the caller. That brings back the very wait a double fork \
             avoids: the middle child exits right after its fork, and nobody waits for the grandchild."
        ),
    }

    // The middle child must be reaped: gone, not a zombie.
    let end = wait_for::until(
        Duration::from_secs(5),
        &format!("the middle child {middle} to exit"),
        || match procfs::state(middle) {
            None => Some(None),
            Some('Z') => Some(Some('Z')),
            Some(_) => None,
        },
    );
    if end.is_some() {
        panic!(
            "pid {middle}, the middle child, is a zombie (state Z) after spawn_detached returned: it exited but \
             nobody called waitpid on it. It is the caller's own child: reap it (it exits at once, so that wait is \
             short).\n{}",
            tree()
        );
    }
    let kids: Vec<String> = procfs::children(me)
        .iter()
        .filter(|k| k.pid != grandchild.as_raw())
        .map(|k| format!("pid {} ({})", k.pid, state_word(k.state)))
        .collect();
    assert!(
        kids.is_empty(),
        "besides the adopted grandchild, the caller should keep no child at all; /proc shows {}\n{}",
        kids.join(", "),
        tree()
    );

    // Release the task; it writes its marker and exits, and the test (its adopter) reaps it.
    write(&release_w, b"go").expect("release the task");
    let status = waitpid(grandchild, None).expect("the test reaps the grandchild it adopted");
    assert_eq!(
        status,
        WaitStatus::Exited(grandchild, 0),
        "the grandchild should leave with _exit(0) once the task returns"
    );
    let marker = fs::read_to_string(scratch_dir().join("ran")).unwrap_or_default();
    assert_eq!(
        marker,
        format!("done {grandchild}"),
        "the task did not run to its end in the grandchild {grandchild}"
    );
    let _ = fs::remove_file(scratch_dir().join("ran"));
}

#[test]
fn task_runs_in_an_adopted_grandchild() {
    isolated(run_once);
}

#[test]
fn caller_keeps_no_child_after_several_calls() {
    isolated(|| {
        for _ in 0..3 {
            run_once();
        }
        let me = body_pid().expect("inside isolated()");
        assert!(
            procfs::children(me).is_empty(),
            "children are left after three calls:\n{}",
            tree()
        );
    });
}
