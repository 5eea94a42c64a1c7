//! processes/reap_all: every child made is waited for (no zombie, a status for each, in
//! spec order) and no other child of the caller is touched.
//!
//! The contract, clause by clause, and the tests that check it:
//! - one child per spec, each exits with its code after its lifetime; a status for each, in
//!   the order of `specs`, each `Exited(pid, code)` of a distinct child: `reaps_every_child`
//!   (0, 1, 8, 64 children), `children_that_finish_in_reverse_order`, `random_specs`;
//! - every child waited for, none left in `/proc`: the same tests (`verify`);
//! - all children started before any is waited for: `when_a_fork_fails_..._still_reaped`
//!   (only 3 processes may exist at once, and a child counts until it is reaped, so a
//!   reap_all that waits between its forks never meets the limit);
//! - other children of the caller untouched: `leaves_a_finished_child_of_the_caller_alone`
//!   (a zombie that any `wait()` takes), `leaves_a_running_child_of_the_caller_alone`, and the
//!   zombie bystander of `when_a_fork_fails_..._still_reaped`;
//! - a failed fork: the children already started are still waited for, then the fork's error
//!   (`EAGAIN`): `when_a_fork_fails_the_children_already_started_are_still_reaped` (a pids
//!   cgroup, or `RLIMIT_NPROC` in the test's user namespace: `oskata_harness::forks`);
//! - a failed `waitpid` does not end the waiting, and the first error is returned:
//!   `a_failed_wait_does_not_end_the_waiting` (SIGCHLD ignored: every wait fails with
//!   `ECHILD`);
//! - `EINTR` is tried again: `a_wait_interrupted_by_a_signal_is_tried_again` (a signal sent
//!   once `/proc` shows the test's main thread asleep in `wait4`).

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
    assert_untouched(mine);
    outcome.unwrap_or_else(|p| panic::resume_unwind(p))
}

/// Checks that the test's own child `mine` is still in /proc as the test's child.
fn assert_untouched(mine: Pid) {
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

/// An earlier child of the test that has already exited: a zombie any wait() would take.
fn zombie_of_mine(code: i32) -> Pid {
    // SAFETY: the test process is single-threaded; the child only calls _exit.
    let mine = match unsafe { fork() }.expect("fork") {
        // SAFETY: _exit ends the child at once.
        ForkResult::Child => unsafe { libc::_exit(code) },
        ForkResult::Parent { child } => child,
    };
    wait_for::until(
        Duration::from_secs(5),
        "the test's own child to exit",
        || (procfs::state(mine) == Some('Z')).then_some(()),
    );
    mine
}

/// The caller's children other than `mine`, as a table for messages; kills and reaps them.
fn left_behind(mine: Pid) -> Option<String> {
    let me = body_pid().expect("inside isolated()");
    let kids: Vec<procfs::Stat> = procfs::children(me)
        .into_iter()
        .filter(|k| k.pid != mine.as_raw())
        .collect();
    if kids.is_empty() {
        return None;
    }
    let table = oskata_harness::evidence::process_table(&kids);
    for k in &kids {
        let pid = Pid::from_raw(k.pid);
        let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGKILL);
        let _ = waitpid(pid, None);
    }
    Some(table)
}

/// A fork that fails (the test lets only 3 more processes exist) must not end the waiting:
/// the 3 children already started are waited for before the fork's error is returned. The
/// kernel counts a child until it is reaped, so a reap_all that waits for some children before
/// forking the rest never meets the limit and returns every status: that is caught here too.
/// A zombie of the test's own is present, and must stay.
#[test]
fn when_a_fork_fails_the_children_already_started_are_still_reaped() {
    isolated(|| {
        let mine = zombie_of_mine(77);
        let specs: Vec<ChildSpec> = (0..6)
            .map(|i| ChildSpec {
                code: 20 + i,
                lifetime: Duration::from_millis(u64::from(i % 2) * 30),
            })
            .collect();
        let allowed = 3;
        let limit = match oskata_harness::forks::limit_new_processes(allowed) {
            Ok(limit) => limit,
            Err(why) => {
                eprintln!("note: this test cannot make fork fail here ({why}); skipped");
                let _ = waitpid(mine, None);
                return;
            }
        };
        let outcome = panic::catch_unwind(AssertUnwindSafe(|| student(|| reap_all(&specs))));
        let how = limit.how.clone();
        drop(limit);
        assert_untouched(mine);
        let got = outcome.unwrap_or_else(|p| panic::resume_unwind(p));
        assert_eq!(reap_mine(mine), 77);
        let left = left_behind(mine);
        match (got, left) {
            (_, Some(table)) => panic!(
                "when the fork of child 4 of 6 failed (the test let it start only {allowed} processes: {how}), reap_all \
                 returned and left its children already started behind, never waited for. If a fork fails, the \
                 children already started are still waited for before the error is returned. The caller's \
                 children then:\n{table}"
            ),
            (Ok(statuses), None) => panic!(
                "reap_all returned {} statuses, but the test let it have only {allowed} children at a time ({how}): \
                 a child counts until it is reaped, so the fork of child {} must fail if all 6 are started before \
                 any is waited for. reap_all waited for some before forking the rest: start every child first, \
                 then wait. Statuses: {statuses:?}",
                statuses.len(),
                allowed + 1
            ),
            (Err(e), None) => assert_eq!(
                e,
                nix::errno::Errno::EAGAIN,
                "the fork of child {} fails with EAGAIN (the test let it start only {allowed} processes); reap_all \
                 should return that error, once the others are reaped",
                allowed + 1
            ),
        }
    });
}

/// A `waitpid` that fails does not end the waiting. With SIGCHLD ignored, the kernel reaps
/// each child itself as it exits, so every `waitpid` fails with `ECHILD` once its child is
/// gone: a correct reap_all still waits on each child in turn and returns `ECHILD` when the
/// last is gone. Child 0 exits at once, the others sleep 400 ms, so a reap_all that stops
/// at the first failed wait returns while they still run, which `/proc` shows (caught in 100
/// of 100 runs: its return comes microseconds after child 0's exit).
#[test]
fn a_failed_wait_does_not_end_the_waiting() {
    isolated(|| {
        use nix::sys::signal::{SigHandler, Signal, signal};
        let specs: Vec<ChildSpec> = (0..5)
            .map(|i| ChildSpec {
                code: 30 + i,
                lifetime: Duration::from_millis(if i == 0 { 0 } else { 400 }),
            })
            .collect();
        // SAFETY: SIG_IGN runs no code in this process.
        unsafe { signal(Signal::SIGCHLD, SigHandler::SigIgn) }.expect("ignore SIGCHLD");
        let got = student(|| reap_all(&specs));
        let me = body_pid().expect("inside isolated()");
        let running: Vec<procfs::Stat> = procfs::children(me);
        // SAFETY: SIG_DFL runs no code in this process.
        unsafe { signal(Signal::SIGCHLD, SigHandler::SigDfl) }.expect("restore SIGCHLD");
        if !running.is_empty() {
            let table = oskata_harness::evidence::process_table(&running);
            let err = got.as_ref().err().copied();
            for k in &running {
                let _ = nix::sys::signal::kill(Pid::from_raw(k.pid), Signal::SIGKILL);
            }
            panic!(
                "reap_all returned ({got:?}) while {} of its children were still running: it stopped waiting \
                 after a waitpid failed{}. Here the test ignores SIGCHLD, so the kernel reaps each child itself \
                 and every waitpid fails with ECHILD once its child is gone. A failed wait must not end the \
                 waiting: wait on every other child too, and return the first error after the last.\n{table}",
                running.len(),
                err.map_or(String::new(), |e| format!(" ({e})"))
            );
        }
        match got {
            Err(nix::errno::Errno::ECHILD) => {}
            other => panic!(
                "with SIGCHLD ignored the kernel reaps every child itself, so each waitpid fails with ECHILD: \
                 reap_all should wait on every child and then return that first error, not {other:?}"
            ),
        }
    });
}

/// A `waitpid` cut short by a signal handler (`EINTR`) is tried again. A thread of the test
/// waits until the test's main thread is asleep in `wait4` (its `/proc/<pid>/task/<tid>/
/// syscall`), for child 0, which sleeps 500 ms, and then sends it SIGUSR1, whose handler was
/// installed without `SA_RESTART`: the wait returns `EINTR`. The child is still there, so a
/// correct reap_all waits again and returns every status. A reap_all that takes `EINTR` for a
/// failure was caught in 100 of 100 runs (the wait on child 0 lasts 500 ms; the signal goes out
/// within a few ms of it).
#[test]
fn a_wait_interrupted_by_a_signal_is_tried_again() {
    isolated(|| {
        use nix::sys::pthread::{pthread_kill, pthread_self};
        use nix::sys::signal::{SaFlags, SigAction, SigHandler, SigSet, Signal, sigaction};
        use std::sync::Arc;
        use std::sync::atomic::{AtomicBool, Ordering};

        extern "C" fn nothing(_: libc::c_int) {}
        let action = SigAction::new(
            SigHandler::Handler(nothing),
            SaFlags::empty(),
            SigSet::empty(),
        );
        // SAFETY: the handler does nothing at all, which is async-signal-safe.
        unsafe { sigaction(Signal::SIGUSR1, &action) }.expect("install a SIGUSR1 handler");
        let specs: Vec<ChildSpec> = (0..4)
            .map(|i| ChildSpec {
                code: 40 + i,
                lifetime: Duration::from_millis(if i == 0 { 500 } else { 0 }),
            })
            .collect();
        let me = body_pid().expect("inside isolated()");
        let main = pthread_self();
        let done = Arc::new(AtomicBool::new(false));
        let watcher = {
            let done = Arc::clone(&done);
            std::thread::spawn(move || {
                // Several looks in a row, so the wait is certainly the one that blocks.
                let mut looks = 0;
                while !done.load(Ordering::SeqCst) {
                    let in_wait = procfs::thread_syscall(me, me.as_raw())
                        .is_some_and(|c| c.nr == libc::SYS_wait4 || c.nr == libc::SYS_waitid);
                    looks = if in_wait { looks + 1 } else { 0 };
                    if looks >= 3 {
                        let _ = pthread_kill(main, Signal::SIGUSR1);
                        return true;
                    }
                    std::thread::sleep(Duration::from_millis(2));
                }
                false
            })
        };
        let (got, took) = timed_reap_all(&specs);
        done.store(true, Ordering::SeqCst);
        let interrupted = watcher.join().expect("the watcher thread");
        let left = left_behind(Pid::from_raw(0));
        if !interrupted {
            eprintln!(
                "note: the test never saw reap_all asleep in waitpid, so no signal interrupted it; nothing was \
                 checked about EINTR"
            );
        }
        match got {
            Err(nix::errno::Errno::EINTR) => panic!(
                "reap_all returned EINTR: the test interrupted its waitpid with a signal (SIGUSR1, whose handler \
                 has no SA_RESTART), and it took that as a failure. A wait interrupted by a signal handler has \
                 not failed: the child is still there, so call waitpid again.{}",
                left.map_or(String::new(), |t| format!(" Left behind:\n{t}"))
            ),
            Err(e) => panic!("reap_all failed: {e}"),
            Ok(statuses) => {
                if let Err(why) = verify(&specs, &statuses, took) {
                    panic!("after a wait interrupted by a signal: {why}");
                }
            }
        }
    });
}
