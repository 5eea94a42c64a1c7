//! processes/fork_basics: fork returns twice; the child's pid and ppid, seen from both sides
//! and from `/proc`; the child is reaped, and the caller keeps no fd it opened (every test
//! checks with `check_fds` that both pipe ends are closed in the parent once it returns).

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

use nix::sys::wait::WaitStatus;
use nix::unistd::{Pid, getpid};
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
    let body = body_pid().expect("inside isolated()");
    let mut seen: Option<(Stat, Vec<Stat>)> = None;
    let report = student(|| {
        fork_and_report(code, |child| {
            assert_eq!(
                getpid(),
                body,
                "before_wait ran in pid {}, not in the parent {body}: only the parent should call it",
                getpid()
            );
            let stat = procfs::stat(child).unwrap_or_else(|e| {
                panic!("before_wait got pid {child}, but /proc/{child}/stat cannot be read ({e}): that is not a process that exists")
            });
            seen = Some((stat, procfs::children(body)));
        })
    })
    .unwrap_or_else(|e| panic!("fork_and_report({code}) failed: {e}"));
    let (stat, callers_children) =
        seen.unwrap_or_else(|| panic!("fork_and_report never called before_wait(child)"));

    // Reaped means gone: no /proc entry. A zombie stays until someone waits for it. Once the
    // child is reaped its pid may already belong to an unrelated process: an entry whose
    // parent is not the caller is not the child, so it counts as gone.
    let child = report.child;
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

#[test]
fn child_reports_its_own_pid() {
    Isolation::new().check_fds().run(|| {
        let r = run(0).report;
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
        let r = run(code).report;
        assert_eq!(
            r.status,
            WaitStatus::Exited(r.child, code.into()),
            "waitpid should report that pid {} exited with code {code}",
            r.child
        );
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
