//! processes/fork_basics: fork returns twice; the child's pid and ppid, seen from both sides
//! and from `/proc`; the child is reaped, and the caller keeps no fd it opened (every test
//! checks with `check_fds` that both pipe ends are closed in the parent once it returns).
//!
//! The contract, clause by clause, and the tests that check it:
//! - one new child, a real child of the caller (its ppid in `/proc`, the caller's only child
//!   while `before_wait` runs): `child_is_a_real_child_in_proc`, `each_call_makes_a_new_child`;
//! - the child reports its own pid and its parent's, asked after the fork:
//!   `child_reports_its_own_pid` (against fork's return; a swapped report is named),
//!   `childs_parent_is_the_caller`;
//! - the child ends with `exit_code` and never returns: `status_is_the_childs_exit` (0, 1, 42,
//!   255), and the stray-child guard of `student()` in every test;
//! - `before_wait` runs in the parent, with the pid fork returned, while the child still exists
//!   (one called after waitpid is named): every test, through `run`;
//! - the parent then waits for that child, and the status is what waitpid said: every test
//!   (no zombie left, no StillAlive), `an_earlier_child_of_the_caller_is_left_alone` (an earlier
//!   exited child of the caller stays a zombie, and its status is not returned).
//!
//! Not observable, so not checked: whether the parent reads the report before calling
//! `before_wait` (the child may have written it or not by then; nothing in `/proc` says).

// The exercise under test: your stub (by default), the reference solution (`--features
// solutions`), or a shipped mistake that `cargo grade --mistakes` copies into target/.
#[cfg(not(any(feature = "solutions", feature = "mistake")))]
#[path = "../../exercises/processes/fork_basics.rs"]
#[allow(dead_code)] // a stub does not use all of its API yet
mod fork_basics;
#[cfg(all(feature = "solutions", not(feature = "mistake")))]
#[path = "../../solutions/processes/fork_basics.rs"]
mod fork_basics;
#[cfg(feature = "mistake")]
#[path = "../../target/oskata-mistake/processes/fork_basics.rs"]
#[rustfmt::skip] // the copy exists only while the proof runs
mod fork_basics;
use fork_basics::*;

use std::time::Duration;

use nix::sys::wait::{WaitStatus, waitpid};
use nix::unistd::{ForkResult, Pid, fork, getpid};
use oskata_harness::procfs::{self, Stat};
use oskata_harness::{Isolation, body_pid, poll, student};
use rstest::rstest;

/// What the test saw of the child in `/proc` while `before_wait` ran.
struct Seen {
    report: ForkReport,
    /// The child's `/proc/<pid>/stat` during `before_wait`.
    stat: Stat,
    /// The test process's children during `before_wait`.
    callers_children: Vec<Stat>,
}

/// Runs the student's function, looks at the child in `/proc` from `before_wait`, and checks
/// that the child is gone (reaped) once the function has returned.
fn run(code: u8) -> Seen {
    run_beside(code, &[])
}

/// [`run`], while the caller has the children `beside` of its own, exited and not yet
/// collected: the status must not be one of theirs.
fn run_beside(code: u8, beside: &[Pid]) -> Seen {
    let body = body_pid().expect("inside isolated()");
    let mut seen: Option<(Pid, std::io::Result<Stat>, Vec<Stat>)> = None;
    let report = student(|| {
        fork_and_report(code, |child| {
            assert_eq!(
                getpid(),
                body,
                "before_wait ran in pid {}, not in the parent {body}: only the parent should call it",
                getpid()
            );
            seen = Some((child, procfs::stat(child), procfs::children(body)));
        })
    })
    .unwrap_or_else(|e| panic!("fork_and_report({code}) failed: {e}"));
    let (given, stat, callers_children) =
        seen.unwrap_or_else(|| panic!("fork_and_report never called before_wait(child)"));
    let child = report.child;
    assert_ne!(
        report.status,
        WaitStatus::StillAlive,
        "fork_and_report({code}) returned the status StillAlive: that is waitpid's answer with WNOHANG while the \
         child has not exited yet. Wait for the child without WNOHANG, so that the status is its exit"
    );
    if let Some(pid) = report.status.pid() {
        assert!(
            !beside.contains(&pid),
            "fork_and_report({code}) returned {:?}, the status of pid {pid}: a child the caller had made earlier \
             and not yet collected, not the one it forked ({child}). waitpid(-1) (or wait()) takes any child of the \
             caller; wait for the pid fork returned",
            report.status
        );
    }
    let stat = match stat {
        Ok(stat) => stat,
        Err(e) if given == child => panic!(
            "before_wait({child}) was called when /proc/{child} no longer existed ({e}): the child had already been \
             collected by waitpid. Call before_wait first and waitpid after it: the tests look at the child while \
             it still exists (running, or a zombie until it is waited for)"
        ),
        Err(e) => panic!(
            "before_wait got pid {given}, but /proc/{given}/stat cannot be read ({e}): that is not a process that \
             exists. Pass it the pid fork returned to the parent ({child})"
        ),
    };
    assert_eq!(
        given, child,
        "before_wait was called with pid {given}, but fork returned {child} to the parent: pass before_wait the \
         child's pid, as fork returned it"
    );

    // Reaped means gone: no /proc entry. A zombie stays until someone waits for it. Once the
    // child is reaped its pid may already belong to an unrelated process: an entry whose
    // parent is not the caller is not the child, so it counts as gone.
    let left = poll::until(
        Duration::from_secs(5),
        "the child to exit",
        || match procfs::stat(child) {
            Err(_) => Some(None),
            Ok(s) if s.ppid != body.as_raw() => Some(None),
            Ok(s) if s.state == 'Z' => Some(Some('Z')),
            Ok(_) => None,
        },
    );
    assert!(
        left.is_none(),
        "pid {child} is a zombie (state Z) after fork_and_report returned: it exited but nobody called waitpid on it"
    );
    Seen {
        report,
        stat,
        callers_children,
    }
}

/// Fails if the report holds the child's two answers the wrong way round.
fn not_swapped(r: &ForkReport) {
    let me = body_pid().expect("inside isolated()");
    assert!(
        !(r.reported_pid == me && r.reported_ppid == r.child),
        "the child's report came back swapped: pid {} (the parent's) and ppid {} (the child's own). The parent \
         must read the two values in the order the child wrote them: getpid() first, then getppid()",
        r.reported_pid,
        r.reported_ppid
    );
}

/// Fails unless the status is the child's exit with `code`.
fn exited_with(r: &ForkReport, code: u8) {
    assert_eq!(
        r.status,
        WaitStatus::Exited(r.child, code.into()),
        "waitpid should report that pid {} exited with code {code}: the child leaves with the code it was given \
         (_exit(exit_code)), and the status is what waitpid on the child returned",
        r.child
    );
}

#[test]
fn child_reports_its_own_pid() {
    Isolation::new().check_fds().run(|| {
        let r = run(0).report;
        not_swapped(&r);
        assert_eq!(
            r.reported_pid, r.child,
            "the child reported pid {} but fork returned {} to the parent: ask getpid() in the child, after fork \
             (a value computed before fork is the parent's)",
            r.reported_pid, r.child
        );
    });
}

#[test]
fn childs_parent_is_the_caller() {
    Isolation::new().check_fds().run(|| {
        let r = run(0).report;
        not_swapped(&r);
        let me = body_pid().expect("inside isolated()");
        assert_eq!(
            r.reported_ppid, me,
            "the child reported ppid {} but its parent, the process that called fork_and_report, is pid {me}: ask \
             getppid() in the child, after fork (a value computed before fork is the parent's)",
            r.reported_ppid
        );
    });
}

#[test]
fn child_is_a_real_child_in_proc() {
    Isolation::new().check_fds().run(|| {
        let s = run(0);
        let me = body_pid().expect("inside isolated()");
        let child = s.report.child;
        assert_eq!(
            s.stat.ppid,
            me.as_raw(),
            "/proc/{child}/stat shows ppid {}, but the process that called fork_and_report is pid {me}",
            s.stat.ppid
        );
        let kids: Vec<i32> = s.callers_children.iter().map(|k| k.pid).collect();
        assert_eq!(
            kids,
            vec![child.as_raw()],
            "while before_wait ran, the caller should have exactly one child, the one fork returned ({child}); /proc \
             shows {kids:?}"
        );
    });
}

#[rstest]
#[case(0)]
#[case(1)]
#[case(42)]
#[case(255)]
fn status_is_the_childs_exit(#[case] code: u8) {
    Isolation::new().check_fds().run(|| {
        exited_with(&run(code).report, code);
    });
}

#[test]
fn each_call_makes_a_new_child() {
    Isolation::new().check_fds().run(|| {
        let pids: Vec<Pid> = (0..5u8).map(|i| run(i).report.child).collect();
        let mut unique = pids.clone();
        unique.sort();
        unique.dedup();
        assert_eq!(
            unique.len(),
            pids.len(),
            "five calls should fork five different children, got pids {pids:?}"
        );
        assert!(
            procfs::children(body_pid().expect("inside isolated()")).is_empty(),
            "children are left after five calls"
        );
    });
}

#[test]
fn an_earlier_child_of_the_caller_is_left_alone() {
    Isolation::new().check_fds().run(|| {
        // A child the caller made before, exited and not yet collected: the oldest zombie, so
        // the first one a wait for any child would take.
        // SAFETY: the test process is single-threaded; the child only calls _exit.
        let earlier = match unsafe { fork() }.expect("fork") {
            // SAFETY: _exit ends the child at once.
            ForkResult::Child => unsafe { libc::_exit(3) },
            ForkResult::Parent { child } => child,
        };
        poll::until(Duration::from_secs(5), "the earlier child to exit", || {
            (procfs::state(earlier) == Some('Z')).then_some(())
        });
        exited_with(&run_beside(7, &[earlier]).report, 7);
        assert_eq!(
            procfs::state(earlier),
            Some('Z'),
            "pid {earlier}, a child the caller had made earlier (exited, waiting to be collected by the caller), \
             is gone after fork_and_report returned: fork_and_report collected it. Wait for the child it forked \
             only, with waitpid on the pid fork returned"
        );
        assert_eq!(
            waitpid(earlier, None),
            Ok(WaitStatus::Exited(earlier, 3)),
            "the earlier child {earlier} should still be there to collect"
        );
    });
}
