//! processes/double_fork: a task runs in a grandchild; the caller waits only for the middle
//! child, keeps no zombie, and the grandchild is adopted (by the test process, a subreaper).
//!
//! The task sends its pid and parent's pid through a pipe, then stays alive until the test
//! releases it (a byte on a pipe) or until it sees its parent blocked in a wait for it
//! (`poll::hold`), and records which of the two ended it. No timer decides anything:
//! - a caller that waited for the grandchild (in the middle child or itself) is caught by
//!   that record, which names the waiting process from `/proc/<pid>/syscall`; the task then
//!   exits, so the wrong caller returns instead of hanging;
//! - a caller that did not reap the middle child leaves it a zombie, which `/proc` shows;
//! - a correct caller returns while the grandchild still runs: `/proc` shows it alive, with
//!   the test process as its parent, and no zombie among the caller's children;
//! - after the release, a marker file proves the task ran to its end.
//!
//! The contract, clause by clause, and the tests that check it:
//! - the task runs in a grandchild, neither in the caller nor in the child returned:
//!   `task_runs_in_an_adopted_grandchild` (and every call of `caller_keeps_no_child_...`);
//! - the middle child exits at once, without waiting for the grandchild; nobody waits for it:
//!   the same tests (the task's `poll::hold` names a waiting parent);
//! - the grandchild leaves with `_exit(0)` after the task: the same tests (its status, and
//!   the marker written after the release);
//! - the caller waits for the middle child only, which leaves no zombie, and returns its pid:
//!   the same tests, and `leaves_an_earlier_child_of_the_caller_alone` (a zombie of the
//!   test's own that any `wait()` would take);
//! - the caller keeps no child after several calls: `caller_keeps_no_child_after_several_calls`;
//! - a middle child whose fork fails exits with 1, and the caller returns an error:
//!   `when_the_second_fork_fails_spawn_detached_returns_an_error` (1 more process allowed,
//!   `oskata_harness::forks`).

// The exercise under test: your stub (by default), the reference solution (`--features
// solutions`), or a shipped mistake that `cargo grade --mistakes` copies into target/.
#[cfg(not(any(feature = "solutions", feature = "mistake")))]
#[path = "../../exercises/processes/double_fork.rs"]
#[allow(dead_code)] // a stub does not use all of its API yet
mod double_fork;
#[cfg(all(feature = "solutions", not(feature = "mistake")))]
#[path = "../../solutions/processes/double_fork.rs"]
mod double_fork;
#[cfg(feature = "mistake")]
#[path = "../../target/oskata-mistake/processes/double_fork.rs"]
#[rustfmt::skip] // the copy exists only while the proof runs
mod double_fork;
use double_fork::*;

use std::fs;
use std::io::Read;
use std::os::fd::{AsFd, OwnedFd};
use std::time::Duration;

use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
use nix::sys::wait::{WaitStatus, waitpid};
use nix::unistd::{Pid, getpid, getppid, pipe, write};
use oskata_harness::evidence::{self, state_word};
use oskata_harness::poll::{self as wait_for, Held};
use oskata_harness::{body_pid, isolated, procfs, scaled, scratch_dir, student};

/// The file the task writes when it ran to its end after the release.
const RAN: &str = "ran";
/// The file the task writes when it saw its parent wait for it: "waited-on by pid N".
const WAITED_ON: &str = "waited-on";

/// Whether `fd` has something to read (or its writers are gone) right now.
fn readable(fd: &OwnedFd) -> bool {
    let mut fds = [PollFd::new(fd.as_fd(), PollFlags::POLLIN)];
    poll(&mut fds, PollTimeout::ZERO).is_ok_and(|n| n > 0)
}

/// The task: report (pid, ppid), stay alive until the release or until the parent is seen
/// waiting for it, and record which. Runs in whatever process the code under test calls it in.
fn task(report: OwnedFd, release: OwnedFd) -> impl FnOnce() {
    move || {
        let mut words = [0u8; 8];
        words[..4].copy_from_slice(&getpid().as_raw().to_ne_bytes());
        words[4..].copy_from_slice(&getppid().as_raw().to_ne_bytes());
        let _ = write(&report, &words);
        let record = scratch_dir().join(WAITED_ON);
        if wait_for::hold_or_record(&record, || readable(&release)) == Held::Released {
            let _ = fs::write(scratch_dir().join(RAN), format!("done {}", getpid()));
        }
    }
}

/// The pid the task recorded as waiting for it, if it saw one.
fn waiter() -> Option<Pid> {
    wait_for::recorded_waiter(&scratch_dir().join(WAITED_ON))
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
    let middle = student(|| spawn_detached(task(report_w, release_r)))
        .unwrap_or_else(|e| panic!("spawn_detached failed: {e}"));

    // The task ran somewhere: it sent its pid and its parent's pid first thing.
    let limit = scaled(Duration::from_secs(5));
    let mut fds = [PollFd::new(report_r.as_fd(), PollFlags::POLLIN)];
    let ready = poll(
        &mut fds,
        PollTimeout::try_from(limit).unwrap_or(PollTimeout::MAX),
    )
    .unwrap_or(0);
    assert!(
        ready > 0,
        "the task never started: within {limit:?} nothing came from it (it sends its pid first thing). The \
         grandchild should call task().\n{}",
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

    // The middle child exits at once: wait until it has (gone if reaped, a zombie if not).
    let end = wait_for::until(
        Duration::from_secs(5),
        &format!("the middle child {middle} to exit"),
        || match procfs::state(middle) {
            None => Some(None),
            Some('Z') => Some(Some('Z')),
            Some(_) => None,
        },
    );
    // Nobody may have waited for the grandchild: the task records it if its parent did.
    if let Some(waiter) = waiter() {
        let who = if waiter == middle {
            format!("the middle child {middle}")
        } else if waiter == me {
            format!("the caller (the test process {me}, which adopted the grandchild)")
        } else {
            format!("pid {waiter}")
        };
        panic!(
            "{who} waited for the grandchild {grandchild}: the task saw its parent asleep in waitpid for it \
             (/proc/{waiter}/syscall), while its work was not done, and then ended so that the test would not \
             hang. That brings back the very wait a double fork avoids: the middle child exits right after its \
             fork, without waiting, and nobody waits for the grandchild; the orphan is adopted and reaped by its \
             adopter.\n{}",
            tree()
        );
    }
    if end.is_some() {
        panic!(
            "pid {middle}, the middle child, is a zombie (state Z) after spawn_detached returned: it exited but \
             nobody called waitpid on it. It is the caller's own child: reap it (it exits at once, so that wait is \
             short).\n{}",
            tree()
        );
    }

    // The middle child is gone, so the grandchild, still running its task, has been adopted.
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
        other => panic!(
            "the grandchild {grandchild} is {} after spawn_detached returned, though its task runs until the test \
             releases it (or until its parent waits for it, which it would have recorded): something ended or \
             reaped it early.\n{}",
            other.map_or("gone".into(), |s| state_word(s.state)),
            tree()
        ),
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
    let marker = fs::read_to_string(scratch_dir().join(RAN)).unwrap_or_default();
    assert_eq!(
        marker,
        format!("done {grandchild}"),
        "the task did not run to its end in the grandchild {grandchild}"
    );
    let _ = fs::remove_file(scratch_dir().join(RAN));
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

/// Kills and reaps every child of the caller; returns them as a table, or `None` if none.
fn clear_children() -> Option<String> {
    let me = body_pid().expect("inside isolated()");
    let kids = procfs::children(me);
    if kids.is_empty() {
        return None;
    }
    let table = evidence::process_table(&kids);
    for k in &kids {
        let pid = Pid::from_raw(k.pid);
        let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGKILL);
        let _ = waitpid(pid, None);
    }
    Some(table)
}

/// When the middle child cannot fork the grandchild it exits with 1, and spawn_detached returns
/// an error. The test lets only 1 more process exist (`oskata_harness::forks`): the middle child
/// is made, the grandchild's fork fails with `EAGAIN`.
#[test]
fn when_the_second_fork_fails_spawn_detached_returns_an_error() {
    isolated(|| {
        let limit = match oskata_harness::forks::limit_new_processes(1) {
            Ok(limit) => limit,
            Err(why) => {
                eprintln!("note: this test cannot make fork fail here ({why}); skipped");
                return;
            }
        };
        let ran = scratch_dir().join(RAN);
        let marker = ran.clone();
        let got = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            student(|| spawn_detached(move || drop(fs::write(&marker, getpid().to_string()))))
        }));
        let how = limit.how.clone();
        drop(limit);
        let got = got.unwrap_or_else(|p| std::panic::resume_unwind(p));
        let left = clear_children();
        if let Some(table) = left {
            panic!(
                "the middle child's fork failed (the test let spawn_detached start only 1 process: {how}), and the \
                 caller was left with children after spawn_detached returned {got:?}: the middle child exits at \
                 once (with 1, since its fork failed), and the caller reaps it.\n{table}"
            );
        }
        if let Ok(middle) = got {
            let ran_in = fs::read_to_string(&ran)
                .ok()
                .and_then(|t| t.parse::<i32>().ok());
            assert_ne!(
                ran_in,
                Some(middle.as_raw()),
                "the task ran in pid {middle}, the very child spawn_detached returned, not in a grandchild: the \
                 caller cannot both wait for that child (and so for the task) and leave no zombie. Fork twice: the \
                 middle child forks the grandchild that runs the task, and exits at once."
            );
            panic!(
                "spawn_detached returned Ok({middle}), but the middle child could not fork the grandchild (the \
                 test let spawn_detached start only 1 process: {how}), so the task {}. The middle child exits with \
                 1 when its fork fails, and the caller, seeing that status from waitpid, returns an error instead \
                 of the pid: a middle child that did not exit with 0 did not start the task.",
                if ran.exists() {
                    "ran anyway, in the middle child itself"
                } else {
                    "never ran"
                }
            );
        }
    });
}

/// The caller waits for the middle child only: an earlier child of the caller, a zombie that
/// any `wait()` would take, is left alone.
#[test]
fn leaves_an_earlier_child_of_the_caller_alone() {
    isolated(|| {
        // SAFETY: the test process is single-threaded; the child only calls _exit.
        let mine = match unsafe { nix::unistd::fork() }.expect("fork") {
            // SAFETY: _exit ends the child at once.
            nix::unistd::ForkResult::Child => unsafe { libc::_exit(7) },
            nix::unistd::ForkResult::Parent { child } => child,
        };
        wait_for::until(
            Duration::from_secs(5),
            "the test's own child to exit",
            || (procfs::state(mine) == Some('Z')).then_some(()),
        );
        let (report_r, report_w): (OwnedFd, OwnedFd) = pipe().expect("pipe");
        let (release_r, release_w): (OwnedFd, OwnedFd) = pipe().expect("pipe");
        let got = student(|| spawn_detached(task(report_w, release_r)));
        let still = procfs::state(mine);
        let table = tree();
        let _ = write(&release_w, b"go");
        drop(report_r);
        let _ = clear_children();
        assert_eq!(
            still,
            Some('Z'),
            "spawn_detached reaped pid {mine}, a child it did not create: the test forked it earlier and meant to \
             reap it itself. wait() and waitpid(-1) take any child; wait for the middle child by its pid, \
             waitpid(middle).\n{table}"
        );
        got.unwrap_or_else(|e| panic!("spawn_detached failed: {e}"));
    });
}
