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
//!
//! The contract, clause by clause, and the tests that check it (`run` checks the first three
//! on every call):
//! - the parent forks the orphan, calls `before_parent_exits(orphan)` in itself, then exits:
//!   `run` (the pid the hook ran in, and the orphan it was given);
//! - the orphan reports its own pid: `run`;
//! - the caller's fds are as before (the report pipe closed on both ends): `run`;
//! - the orphan reports `getppid()` only once it no longer names the original parent:
//!   `orphan_reports_its_new_parent` (the parent is held alive until the orphan is asleep, and
//!   its fds are closed while it still lives, so neither an early `getppid()` nor end of file
//!   on a pipe taken for proof is caught by luck);
//! - `after_adoption` sees the orphan, still unreaped, adopted by the caller (a subreaper):
//!   `proc_shows_the_adoption`;
//! - the caller reaps the parent and then the orphan, and returns the orphan's status:
//!   `caller_reaps_parent_and_orphan`, `each_call_makes_a_new_orphan`;
//! - only its own children: `leaves_an_earlier_child_of_the_caller_alone` (a zombie of the
//!   test's own that any `wait()` would take);
//! - neither child returns into the caller: `student`'s guard, in every test.

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
/// Then it closes every fd of the parent above 2, as the parent's exit would, but while the
/// parent still lives, and keeps the parent alive until the orphan has acted on that (exited,
/// or is asleep again in anything but a read): an orphan that takes end of file on a pipe from
/// its parent for proof of adoption then reads the old parent's pid, on every run.
fn hold_parent(orphan: Pid) {
    let _ = fs::write(
        scratch_dir().join("parent"),
        format!("{} {orphan}", getpid()),
    );
    asleep_or_gone(orphan);
    // SAFETY: closes this process's own fds above 2; it holds no OwnedFd it will use again, and
    // all it does afterwards is _exit.
    unsafe { libc::close_range(3, u32::MAX, 0) };
    let start = Instant::now();
    let mut looks = 0;
    while start.elapsed() < oskata_harness::scaled(Duration::from_secs(3)) {
        let settled = match procfs::state(orphan) {
            None | Some('Z') => break,
            Some('S') => procfs::blocked_read_fd(orphan).is_none(),
            Some(_) => false,
        };
        looks = if settled { looks + 1 } else { 0 };
        if looks >= 3 {
            break;
        }
        std::thread::sleep(Duration::from_micros(500));
    }
}

/// Waits until `orphan` is asleep or has exited (or is gone).
fn asleep_or_gone(orphan: Pid) {
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
    let fds_before = procfs::fds(me).expect("read the caller's fds");
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
    let fds_after = procfs::fds(me).expect("read the caller's fds");
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
    let opened: Vec<String> = fds_after
        .iter()
        .filter(|f| !fds_before.contains(f))
        .map(|f| format!("fd {} ({})", f.fd, f.target))
        .collect();
    assert!(
        opened.is_empty(),
        "{} still open in the caller (pid {me}) after orphan_and_adopt returned, and it was not before: the caller \
         closes its write end of the report pipe right after the fork, and its read end once the report is read. \
         A write end left open would keep the caller from ever seeing end of file if the orphan died without \
         reporting.",
        opened.join(", ")
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
                 then report it. (End of file on a pipe from the parent is no proof that it has exited either: a \
                 dying process closes its files before its children are handed to a new parent, and here the test \
                 closed the parent's fds while it still lived.)",
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

/// The caller reaps its own children only: an earlier child of the caller, a zombie that any
/// `wait()` would take, is left alone.
#[test]
fn leaves_an_earlier_child_of_the_caller_alone() {
    isolated(|| {
        // SAFETY: the test process is single-threaded; the child only calls _exit.
        let mine = match unsafe { nix::unistd::fork() }.expect("fork") {
            // SAFETY: _exit ends the child at once.
            nix::unistd::ForkResult::Child => unsafe { libc::_exit(3) },
            nix::unistd::ForkResult::Parent { child } => child,
        };
        oskata_harness::poll::until(
            Duration::from_secs(5),
            "the test's own child to exit",
            || (procfs::state(mine) == Some('Z')).then_some(()),
        );
        let me = body_pid().expect("inside isolated()");
        let outcome = std::panic::catch_unwind(run);
        let state = procfs::state(mine);
        let kids = procfs::children(me);
        let table = oskata_harness::evidence::process_table(&kids);
        for k in &kids {
            let _ = nix::sys::wait::waitpid(Pid::from_raw(k.pid), None);
        }
        assert_eq!(
            state,
            Some('Z'),
            "orphan_and_adopt reaped pid {mine}, a child it did not create: the test forked it earlier and meant to \
             reap it itself. wait() and waitpid(-1) take any child; wait for the parent and then the orphan by \
             their own pids.\nThe caller's children now:\n{table}"
        );
        outcome.unwrap_or_else(|p| std::panic::resume_unwind(p));
    });
}
