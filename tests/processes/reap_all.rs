//! processes/reap_all: every child made is waited for (no zombie, a status for each, in
//! spec order) and no other child of the caller is touched.

// The exercise under test: your stub (by default), the reference solution (`--features
// solutions`), or a shipped mistake that `cargo grade --mistakes` copies into target/.
#[cfg(not(any(feature = "solutions", feature = "mistake")))]
#[path = "../../exercises/processes/reap_all.rs"]
#[allow(dead_code)] // a stub does not use all of its API yet
mod reap_all;
#[cfg(all(feature = "solutions", not(feature = "mistake")))]
#[path = "../../solutions/processes/reap_all.rs"]
mod reap_all;
#[cfg(feature = "mistake")]
#[path = "../../target/oskata-mistake/processes/reap_all.rs"]
#[rustfmt::skip] // the copy exists only while the proof runs
mod reap_all;
use reap_all::*;

use std::os::fd::{AsFd, OwnedFd};
use std::panic::{self, AssertUnwindSafe};
use std::time::{Duration, Instant};

use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
use nix::sys::wait::{WaitStatus, waitpid};
use nix::unistd::{ForkResult, Pid, fork, pipe};
use oskata_harness::{body_pid, cases, isolated, poll as wait_for, procfs, student};
use proptest::prelude::*;
use proptest::test_runner::TestCaseError;
use rstest::rstest;

/// `n` children with distinct codes and lifetimes that make them finish out of spec order.
fn specs(n: usize) -> Vec<ChildSpec> {
    (0..n)
        .map(|i| ChildSpec {
            code: ((i * 37 + 5) % 256) as u8,
            lifetime: Duration::from_millis(((n - i) * 7 % 29) as u64),
        })
        .collect()
}

/// Checks what reap_all returned against the specs and against `/proc`; `Err` says what is wrong.
fn verify(specs: &[ChildSpec], got: &[WaitStatus], took: Duration) -> Result<(), String> {
    if got.len() != specs.len() {
        return Err(format!(
            "reap_all returned statuses for {} of its {} children: the others were never waited for, and stay \
             behind as zombies or orphans. Every child needs its own waitpid.",
            got.len(),
            specs.len()
        ));
    }
    let me = body_pid().expect("inside isolated()");
    let mut pids = Vec::new();
    for (i, (spec, status)) in specs.iter().zip(got).enumerate() {
        match *status {
            WaitStatus::Exited(pid, code) if code == i32::from(spec.code) => pids.push(pid),
            other => {
                return Err(format!(
                    "element {i} should be the status of the child made from specs[{i}], which exits with code {}; \
                     got {other:?} (return the statuses in the order of specs)",
                    spec.code
                ));
            }
        }
    }
    let mut unique = pids.clone();
    unique.sort();
    unique.dedup();
    if unique.len() != pids.len() || pids.contains(&me) {
        return Err(format!(
            "each status should name a different child of pid {me}; got pids {pids:?}"
        ));
    }
    for pid in &pids {
        if let Ok(s) = procfs::stat(*pid) {
            return Err(format!(
                "pid {pid} is still in /proc in state {} after reap_all returned: it was never waited for (nobody \
                 called waitpid on it)",
                s.state
            ));
        }
    }
    let longest = specs.iter().map(|s| s.lifetime).max().unwrap_or_default();
    if took < longest {
        return Err(format!(
            "reap_all returned after {took:?}, but one child sleeps {longest:?} before it exits: it cannot have \
             waited for all of them"
        ));
    }
    Ok(())
}

/// Calls the student's reap_all, timed.
fn timed_reap_all(specs: &[ChildSpec]) -> (nix::Result<Vec<WaitStatus>>, Duration) {
    let start = Instant::now();
    let got = student(|| reap_all(specs));
    (got, start.elapsed())
}

fn check(specs: &[ChildSpec], result: (nix::Result<Vec<WaitStatus>>, Duration)) {
    let (got, took) = result;
    let got = got.unwrap_or_else(|e| panic!("reap_all failed: {e}"));
    if let Err(why) = verify(specs, &got, took) {
        panic!("{why}");
    }
}

/// Runs reap_all with one child of the test's own (`mine`) present, then checks first of all
/// that `mine` is untouched: still in /proc as the test's child, and waitable by the test.
/// Returns what reap_all returned (a panic in it is carried on after the check).
fn reap_all_beside(mine: Pid, specs: &[ChildSpec]) -> (nix::Result<Vec<WaitStatus>>, Duration) {
    let outcome = panic::catch_unwind(AssertUnwindSafe(|| timed_reap_all(specs)));
    let me = body_pid().expect("inside isolated()");
    let stolen = format!(
        "reap_all reaped pid {mine}, a child it did not create: the test forked it before calling reap_all and \
         meant to wait for it itself. wait() and waitpid(-1) take any child; wait for the pids your forks returned."
    );
    let stat = procfs::stat(mine).unwrap_or_else(|_| panic!("{stolen} (/proc/{mine} is gone)"));
    assert_eq!(
        stat.ppid,
        me.as_raw(),
        "pid {mine} should still be a child of the test process {me}: {stat:?}"
    );
    outcome.unwrap_or_else(|p| panic::resume_unwind(p))
}

/// Waits for the test's own child and expects it to have exited on its own.
fn reap_mine(mine: Pid) -> i32 {
    match waitpid(mine, None) {
        Ok(WaitStatus::Exited(pid, code)) if pid == mine => code,
        other => panic!(
            "reap_all reaped pid {mine}, a child it did not create: the test's own waitpid on it returned {other:?}"
        ),
    }
}

#[rstest]
#[case(0)]
#[case(1)]
#[case(8)]
#[case(64)]
fn reaps_every_child(#[case] n: usize) {
    isolated(|| {
        let specs = specs(n);
        check(&specs, timed_reap_all(&specs));
    });
}

#[test]
fn children_that_finish_in_reverse_order() {
    isolated(|| {
        // The first child lives longest and the last one exits at once.
        let specs: Vec<ChildSpec> = (0..6)
            .map(|i| ChildSpec {
                code: 10 + i,
                lifetime: Duration::from_millis(u64::from(5 - i) * 20),
            })
            .collect();
        check(&specs, timed_reap_all(&specs));
    });
}

#[test]
fn leaves_a_finished_child_of_the_caller_alone() {
    isolated(|| {
        // SAFETY: the test process is single-threaded; the child only calls _exit.
        let mine = match unsafe { fork() }.expect("fork") {
            // SAFETY: _exit ends the child at once.
            ForkResult::Child => unsafe { libc::_exit(77) },
            ForkResult::Parent { child } => child,
        };
        // Let it become a zombie first: then any wait()/waitpid(-1) will certainly take it.
        wait_for::until(
            Duration::from_secs(5),
            "the test's own child to exit",
            || (procfs::state(mine) == Some('Z')).then_some(()),
        );
        let specs = specs(4);
        let result = reap_all_beside(mine, &specs);
        assert_eq!(
            procfs::state(mine),
            Some('Z'),
            "pid {mine} should still be an unreaped zombie"
        );
        assert_eq!(reap_mine(mine), 77);
        check(&specs, result);
    });
}

#[test]
fn leaves_a_running_child_of_the_caller_alone() {
    isolated(|| {
        let (read_end, write_end): (OwnedFd, OwnedFd) = pipe().expect("pipe");
        // SAFETY: the test process is single-threaded; the child only polls a pipe and exits.
        let mine = match unsafe { fork() }.expect("fork") {
            ForkResult::Child => {
                drop(write_end);
                // Wait for the test to close its write end (EOF), at most 3 s.
                let mut fds = [PollFd::new(read_end.as_fd(), PollFlags::POLLIN)];
                let ready = poll(&mut fds, PollTimeout::from(3000u16)).unwrap_or(0);
                // SAFETY: _exit ends the child at once.
                unsafe { libc::_exit(if ready > 0 { 7 } else { 99 }) }
            }
            ForkResult::Parent { child } => child,
        };
        drop(read_end);
        wait_for::until(
            Duration::from_secs(5),
            "the test's own child to block on its pipe",
            || (procfs::state(mine) == Some('S')).then_some(()),
        );
        let specs = specs(4);
        let result = reap_all_beside(mine, &specs);
        // Now let it finish, and collect it ourselves.
        drop(write_end);
        let code = reap_mine(mine);
        assert!(
            code == 7 || code == 99,
            "the test's own child exited with {code}"
        );
        check(&specs, result);
    });
}

#[test]
fn random_specs() {
    isolated(|| {
        // Each case: (exit code, lifetime in ms) per child.
        let strategy = proptest::collection::vec((any::<u8>(), 0u64..15), 0..12);
        cases::check(24, strategy, |raw| {
            let specs: Vec<ChildSpec> = raw
                .iter()
                .map(|&(code, ms)| ChildSpec {
                    code,
                    lifetime: Duration::from_millis(ms),
                })
                .collect();
            let (got, took) = timed_reap_all(&specs);
            let got = got.map_err(|e| TestCaseError::fail(format!("reap_all failed: {e}")))?;
            verify(&specs, &got, took).map_err(TestCaseError::fail)
        });
    });
}
