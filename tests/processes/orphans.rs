//! processes/orphans: a parent exits before its child; the orphan is adopted by the nearest
//! child subreaper (here the test process) and reports its new parent only after the old one
//! is gone.
//!
//! What the tests observe, beside the orphan's own report:
//! - in the parent, from `before_parent_exits`: its real pid (written to the scratch dir), and
//!   the parent is kept alive until the orphan is asleep (waiting, as it should) or has
//!   already exited (it reported without waiting). So an orphan that asks `getppid()` before
//!   its parent has exited is caught on every run: its parent was certainly still alive;
//! - in the caller, from `after_adoption`: the orphan's `/proc/<pid>/stat`, whose ppid is the
//!   kernel's word on who adopted it;
//! - afterwards: both children reaped (gone from `/proc`), the orphan's wait status.

// The exercise under test: your stub (by default), the reference solution (`--features
// solutions`), or a shipped mistake that `cargo grade --mistakes` copies into target/.
#[cfg(not(any(feature = "solutions", feature = "mistake")))]
#[path = "../../exercises/processes/orphans.rs"]
#[allow(dead_code)] // a stub does not use all of its API yet
mod orphans;
#[cfg(all(feature = "solutions", not(feature = "mistake")))]
#[path = "../../solutions/processes/orphans.rs"]
mod orphans;
#[cfg(feature = "mistake")]
#[path = "../../target/oskata-mistake/processes/orphans.rs"]
#[rustfmt::skip] // the copy exists only while the proof runs
mod orphans;
use orphans::*;

use std::fs;
use std::time::{Duration, Instant};

use nix::sys::wait::WaitStatus;
use nix::unistd::{Pid, getpid};
use oskata_harness::evidence::state_word;
use oskata_harness::procfs::{self, Stat};
use oskata_harness::{body_pid, isolated, scratch_dir, student};

/// What the test saw around one call.
struct Seen {
    report: Orphan,
    /// The pid `before_parent_exits` ran in: the real parent.
    real_parent: Pid,
    /// The pid `before_parent_exits` was given.
    hook_orphan: Pid,
    /// The orphan's stat while `after_adoption` ran.
    adopted: Stat,
}

/// Runs in the parent, just before it exits: records the parent's pid, then keeps the parent
/// alive until the orphan is asleep (waiting for its parent to go) or has exited already.
fn hold_parent(orphan: Pid) {
    let _ = fs::write(
        scratch_dir().join("parent"),
        format!("{} {orphan}", getpid()),
    );
    let start = Instant::now();
    let mut warned = false;
    while let Some(state) = procfs::state(orphan) {
        if state == 'S' || state == 'Z' {
            break;
        }
        if !warned && start.elapsed() > Duration::from_secs(3) {
            eprintln!(
                "the parent (pid {}) is waiting for the orphan {orphan} to go to sleep between its getppid() checks, \
                 but the orphan is still {}: does it check in a busy loop, without sleeping?",
                getpid(),
                state_word(state)
            );
            warned = true;
        }
        std::thread::sleep(Duration::from_micros(200));
    }
}

fn run() -> Seen {
    let me = body_pid().expect("inside isolated()");
    let mut adopted = None;
    let report = student(|| {
        orphan_and_adopt(hold_parent, |orphan| {
            let stat = procfs::stat(orphan).unwrap_or_else(|_| {
                panic!(
                    "the orphan {orphan} is already gone from /proc when after_adoption ran: reap it only after \
                     calling after_adoption"
                )
            });
            adopted = Some(stat);
        })
    })
    .unwrap_or_else(|e| panic!("orphan_and_adopt failed: {e}"));
    let adopted =
        adopted.unwrap_or_else(|| panic!("orphan_and_adopt never called after_adoption(orphan)"));
    let recorded = fs::read_to_string(scratch_dir().join("parent")).unwrap_or_else(|_| {
        panic!(
            "before_parent_exits was never called: the parent should call it just before it exits"
        )
    });
    let mut pids = recorded
        .split_whitespace()
        .map(|w| Pid::from_raw(w.parse().expect("a pid")));
    let (real_parent, hook_orphan) = (pids.next().unwrap(), pids.next().unwrap());
    assert_ne!(
        real_parent, me,
        "before_parent_exits ran in the caller (pid {me}), not in the parent: the parent calls it after forking \
         the orphan"
    );
    assert_eq!(
        report.parent, real_parent,
        "orphan_and_adopt says the parent was pid {}, but before_parent_exits ran in pid {real_parent}",
        report.parent
    );
    assert_eq!(
        report.orphan, hook_orphan,
        "the orphan reported pid {}, but the parent forked pid {hook_orphan} (the pid given to \
         before_parent_exits)",
        report.orphan
    );
    Seen {
        report,
        real_parent,
        hook_orphan,
        adopted,
    }
}

#[test]
fn orphan_reports_its_new_parent() {
    isolated(|| {
        let s = run();
        let me = body_pid().expect("inside isolated()");
        let got = s.report.new_parent;
        if got == s.real_parent {
            panic!(
                "the orphan {} reported its parent as pid {got}, its original parent; but /proc/{}/stat shows pid \
                 {} adopted it once pid {got} exited. The orphan read getppid() before its parent had exited: the \
                 test kept pid {got} alive until the orphan was asleep or had exited, so at that moment its parent \
                 was still there. Check getppid() in a loop until it no longer names the original parent, and only \
                 then report it.",
                s.hook_orphan, s.hook_orphan, s.adopted.ppid
            );
        }
        assert_eq!(
            got, me,
            "the orphan reported its new parent as pid {got}, but the process that adopted it is the test process \
             {me}, a child subreaper (/proc shows ppid {})",
            s.adopted.ppid
        );
    });
}

#[test]
fn proc_shows_the_adoption() {
    isolated(|| {
        let s = run();
        let me = body_pid().expect("inside isolated()");
        assert_eq!(
            s.adopted.ppid,
            me.as_raw(),
            "while after_adoption ran, /proc/{}/stat showed ppid {}: once its parent {} has exited, the orphan's \
             parent is the nearest child subreaper, the test process {me}",
            s.hook_orphan,
            s.adopted.ppid,
            s.real_parent
        );
    });
}

#[test]
fn caller_reaps_parent_and_orphan() {
    isolated(|| {
        let s = run();
        let orphan = s.hook_orphan;
        assert_eq!(
            s.report.status,
            WaitStatus::Exited(orphan, 0),
            "the status should be the orphan's (pid {orphan}, exit code 0), collected by its new parent with \
             waitpid"
        );
        for (what, pid) in [("parent", s.real_parent), ("orphan", orphan)] {
            if let Some(state) = procfs::state(pid) {
                panic!(
                    "the {what} {pid} is still in /proc ({}) after orphan_and_adopt returned: it exited but nobody \
                     called waitpid on it. The caller reaps the parent, and the orphan too: it adopted it.",
                    state_word(state)
                );
            }
        }
    });
}

#[test]
fn each_call_makes_a_new_orphan() {
    isolated(|| {
        let first = run().report;
        let _ = fs::remove_file(scratch_dir().join("parent"));
        let second = run().report;
        assert!(
            first.orphan != second.orphan && first.parent != second.parent,
            "two calls should make two parents and two orphans: {first:?}, {second:?}"
        );
        assert!(
            procfs::children(body_pid().expect("inside isolated()")).is_empty(),
            "children are left after two calls"
        );
    });
}
