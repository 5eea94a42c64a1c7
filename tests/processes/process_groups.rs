//! processes/process_groups: process groups (进程组). What the tests observe:
//! - each child's group in `/proc/<pid>/stat` (field 5) right after `spawn_group` returned,
//!   and the caller's own group, unchanged;
//! - after a group signal, the `waitpid` status of every member of the target group
//!   (`Signaled` with that signal), and for every other process (a second group, a child in
//!   the caller's group) `/proc` state `S` with no signal pending in `/proc/<pid>/status`.
//!
//! The contract, clause by clause, and the tests that check it:
//! - `spawn_group(n)`: `n` live children of the caller, in one new group led by the first,
//!   leader first: `children_share_a_new_group` (1, 3, 8);
//! - the group is set on both sides of each fork, so it is done when spawn_group returns:
//!   `every_child_is_in_the_group_when_spawn_group_returns` (each child held at birth by
//!   `oskata_harness::births` until the test has looked, so no scheduler luck decides it);
//! - the children wait for signals, and a default SIGTERM ends them: the group-signal tests;
//! - the caller stays in its own group: `check_group`, in every spawn test;
//! - `n == 0` starts nothing: `spawn_group_of_0_starts_nothing`;
//! - a failed fork: the children started are killed and waited for, then the error:
//!   `when_a_fork_fails_the_children_already_started_are_stopped_and_reaped` (only 2 more
//!   processes allowed, `oskata_harness::forks`; a child of the test in its own group must
//!   survive the cleanup);
//! - `group_of` is `getpgid`, `ESRCH` for a reaped pid: `group_of_agrees_with_proc`;
//! - `signal_group` reaches every member: `a_group_signal_reaches_every_member_and_nothing_else`
//!   (4 signals), also a member that is not the caller's child (a grandchild that joined the
//!   group itself): `a_group_signal_reaches_members_that_are_not_the_callers_children`;
//! - and no other process (a second group, a child in the caller's group, the member's own
//!   parent): the same two tests;
//! - `ESRCH` for a group with no member left: `a_group_with_no_members_left_is_esrch`;
//! - `EINVAL`, nothing sent, for a pgid of 1 or less: `group_0_is_refused_not_the_callers_own`,
//!   `other_pgids_of_1_or_less_are_refused` (1, a negated pid).

// The exercise under test: your stub (by default), the reference solution (`--features
// solutions`), or a shipped mistake that `cargo grade --mistakes` copies into target/.
#[cfg(not(any(feature = "solutions", feature = "mistake")))]
#[path = "../../exercises/processes/process_groups.rs"]
#[allow(dead_code)] // a stub does not use all of its API yet
mod process_groups;
#[cfg(all(feature = "solutions", not(feature = "mistake")))]
#[path = "../../solutions/processes/process_groups.rs"]
mod process_groups;
#[cfg(feature = "mistake")]
#[path = "../../target/oskata-mistake/processes/process_groups.rs"]
#[rustfmt::skip] // the copy exists only while the proof runs
mod process_groups;
use process_groups::*;

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use nix::errno::Errno;
use nix::sys::signal::{SigSet, SigmaskHow, Signal, kill, sigprocmask};
use nix::sys::wait::{WaitPidFlag, WaitStatus, waitpid};
use nix::unistd::{ForkResult, Pid, fork, pause};
use oskata_harness::evidence::{process_table, state_word};
use oskata_harness::procfs::{self, Stat};
use oskata_harness::{body_pid, isolated, poll, scaled, student};
use rstest::rstest;

/// How long the members of a signalled group may take to die (before `scaled`): they need
/// microseconds.
const DYING: Duration = Duration::from_secs(3);

/// Calls the student's `spawn_group`.
fn spawn(n: usize) -> Vec<Pid> {
    student(|| spawn_group(n)).unwrap_or_else(|e| panic!("spawn_group({n}) failed: {e}"))
}

/// Kills and reaps processes the test is done with.
fn stop(pids: &[Pid]) {
    for &pid in pids {
        let _ = kill(pid, Signal::SIGKILL);
        let _ = waitpid(pid, None);
    }
}

/// The `/proc` records of `pids`, for messages.
fn stats(pids: &[Pid]) -> Vec<Stat> {
    pids.iter().filter_map(|&p| procfs::stat(p).ok()).collect()
}

/// A child of the test itself, in the test's own group, that waits for signals.
fn bystander() -> Pid {
    // SAFETY: the test process is single-threaded; the child only pauses until killed.
    match unsafe { fork() }.expect("fork") {
        ForkResult::Child => loop {
            pause();
        },
        ForkResult::Parent { child } => child,
    }
}

/// Checks that `spawn_group(n)` gave `n` live children of the caller, all in one new group
/// led by the first, and left the caller in its own group.
fn check_group(n: usize, pids: &[Pid]) {
    let me = body_pid().expect("inside isolated()");
    let mine = procfs::stat(me).expect("read the caller's stat");
    assert_eq!(
        pids.len(),
        n,
        "spawn_group({n}) returned {} pids: {pids:?}",
        pids.len()
    );
    let unique: BTreeSet<Pid> = pids.iter().copied().collect();
    assert_eq!(
        unique.len(),
        n,
        "spawn_group({n}) returned the same pid twice: {pids:?}"
    );
    assert_eq!(
        mine.pgrp,
        me.as_raw(),
        "spawn_group moved the caller (pid {me}) out of its own group into group {}: only the children go into \
         the new group (setpgid(child, ...), not setpgid(0, ...) in the parent)",
        mine.pgrp
    );
    let Some(&leader) = pids.first() else { return };
    let table = process_table(&stats(pids));
    for &pid in pids {
        let s = procfs::stat(pid).unwrap_or_else(|e| {
            panic!("spawn_group returned pid {pid}, which is not in /proc: {e}")
        });
        assert_eq!(
            s.ppid,
            me.as_raw(),
            "pid {pid} should be a child of the caller {me}; /proc shows ppid {}",
            s.ppid
        );
        assert!(
            s.state != 'Z',
            "pid {pid} has already exited (it is a zombie): the children should stay alive, waiting for a signal \
             (pause in a loop)\n{table}"
        );
        assert!(
            s.pgrp == leader.as_raw() || s.pgrp != mine.pgrp,
            "pid {pid} is still in the caller's group {} when spawn_group returned (/proc/{pid}/stat): it had not \
             yet run its own setpgid. After fork either process may run first, and here the child had not run at \
             all{}. Call setpgid on both sides of the fork, in the parent too (setpgid(child, {leader})), so \
             every child is in the group by the time spawn_group returns.\n{table}",
            s.pgrp,
            if s.state == 't' {
                " (the test held it at birth, state t in /proc, until spawn_group had returned)"
            } else {
                ""
            }
        );
        assert_eq!(
            s.pgrp,
            leader.as_raw(),
            "pid {pid} is in process group {} right after spawn_group returned (/proc/{pid}/stat), not in the \
             group of the leader {leader}: every child should be put into the leader's group, setpgid(child, \
             {leader}); only the first child leads a group of its own. Call setpgid in the parent as well as in \
             the child, so it is done by the time spawn_group returns.\n{table}",
            s.pgrp
        );
    }
}

#[rstest]
#[case(1)]
#[case(3)]
#[case(8)]
fn children_share_a_new_group(#[case] n: usize) {
    isolated(|| {
        let pids = spawn(n);
        check_group(n, &pids);
        stop(&pids);
    });
}

/// The group is set on both sides of each fork, so every child is in it by the time
/// spawn_group returns, whichever of the two runs first. Here each child is held at birth
/// (`oskata_harness::births`: stopped before it runs any code of its own) until spawn_group
/// has returned and the test has read its group, so a setpgid left to the child alone has
/// certainly not happened yet, on every run.
#[rstest]
#[case(1)]
#[case(4)]
fn every_child_is_in_the_group_when_spawn_group_returns(#[case] n: usize) {
    isolated(|| {
        let hold = match oskata_harness::births::hold_new_children(|| false) {
            Ok(hold) => Some(hold),
            Err(why) => {
                eprintln!("note: the test cannot hold new children here ({why}); they run freely");
                None
            }
        };
        let pids = spawn(n);
        let outcome = std::panic::catch_unwind(|| check_group(n, &pids));
        drop(hold);
        stop(&pids);
        outcome.unwrap_or_else(|p| std::panic::resume_unwind(p));
    });
}

#[test]
fn group_of_agrees_with_proc() {
    isolated(|| {
        let me = body_pid().expect("inside isolated()");
        let pids = spawn(3);
        for &pid in pids.iter().chain([me].iter()) {
            let seen = procfs::stat(pid).expect("read stat").pgrp;
            let got = student(|| group_of(pid));
            assert_eq!(
                got,
                Ok(Pid::from_raw(seen)),
                "group_of({pid}) should be {seen}, its group in /proc/{pid}/stat"
            );
        }
        stop(&pids);
        let gone = pids[1];
        assert_eq!(
            student(|| group_of(gone)),
            Err(Errno::ESRCH),
            "group_of({gone}) after that process was reaped should fail with ESRCH (no such process)"
        );
    });
}

/// Reaps `pids` as they die, for at most `limit`: the statuses, and the pids still alive.
fn reap_within(pids: &[Pid], limit: Duration) -> (Vec<WaitStatus>, Vec<Pid>) {
    let start = Instant::now();
    let mut left = pids.to_vec();
    let mut done = Vec::new();
    let mut nap = Duration::from_micros(100);
    loop {
        left.retain(|&pid| match waitpid(pid, Some(WaitPidFlag::WNOHANG)) {
            Ok(WaitStatus::StillAlive) => true,
            Ok(status) => {
                done.push(status);
                false
            }
            Err(e) => panic!("waitpid({pid}) failed: {e}"),
        });
        if left.is_empty() || start.elapsed() > limit {
            return (done, left);
        }
        std::thread::sleep(nap);
        nap = (nap * 2).min(Duration::from_millis(20));
    }
}

/// Waits until every one of `pids` sleeps (in `pause`), so that afterwards a process that is
/// not asleep, or has a signal pending, can only have been hit by a signal.
fn asleep(pids: &[Pid]) {
    poll::until_seen(
        Duration::from_secs(5),
        "every child to wait for a signal (state S, asleep in pause)",
        || {
            stats(pids)
                .iter()
                .map(|s| (s.pid, s.state))
                .collect::<Vec<_>>()
        },
        |seen| seen.len() == pids.len() && seen.iter().all(|(_, st)| *st == 'S'),
    );
}

/// True when `/proc/<pid>/status` shows a signal pending for the process or its thread group.
fn signal_pending(pid: Pid) -> bool {
    procfs::status(pid).is_ok_and(|s| {
        s.signal_mask("SigPnd").unwrap_or(0) != 0 || s.signal_mask("ShdPnd").unwrap_or(0) != 0
    })
}

#[rstest]
#[case(Signal::SIGTERM)]
#[case(Signal::SIGKILL)]
#[case(Signal::SIGUSR1)]
#[case(Signal::SIGHUP)]
fn a_group_signal_reaches_every_member_and_nothing_else(#[case] sig: Signal) {
    isolated(|| {
        let target = spawn(4);
        let other = spawn(3);
        let beside = bystander();
        let leader = target[0];
        let everyone = [target.as_slice(), other.as_slice(), &[beside]].concat();
        asleep(&everyone);
        let before = stats(&everyone);

        student(|| signal_group(leader, sig))
            .unwrap_or_else(|e| panic!("signal_group({leader}, {sig}) failed: {e}"));
        let dying = scaled(DYING);
        let (statuses, alive) = reap_within(&target, dying);
        if !alive.is_empty() {
            let in_group = alive
                .iter()
                .all(|p| procfs::stat(*p).is_ok_and(|s| s.pgrp == leader.as_raw()));
            let why = if in_group {
                format!(
                    "they are in group {leader} (see PGID), so a group signal should have reached them. kill({leader}, \
                     ...) signals the one process whose pid is {leader}; kill(-pgid) (a negative pid) signals \
                     every process in the group: use kill(-pgid) or killpg"
                )
            } else {
                format!(
                    "they are not in group {leader} at all (see PGID): spawn_group should have put every child \
                     into the leader's group"
                )
            };
            panic!(
                "after signal_group({leader}, {sig}), {alive:?} of the group's members were still alive {dying:?} \
                 later: {why}.\nThe processes before the signal:\n{}Now:\n{}",
                process_table(&before),
                process_table(&stats(&alive))
            );
        }
        for status in &statuses {
            assert!(
                matches!(status, WaitStatus::Signaled(_, s, _) if *s == sig),
                "every member of group {leader} should have been killed by {sig}; waitpid reported {status:?}"
            );
        }
        // The same kill(2) call marked every process it hit before it returned: one still
        // asleep with nothing pending was not hit.
        for &pid in other.iter().chain([beside].iter()) {
            let s = procfs::stat(pid).expect("read stat");
            assert!(
                s.state == 'S' && !signal_pending(pid),
                "pid {pid}, in group {} and not in the target group {leader}, was hit by signal_group({leader}, \
                 {sig}): it is {} {}. A group signal must reach the members of that group only: kill(-pgid), \
                 never kill(0, ..) (the caller's own group) or kill(-1, ..) (every process)",
                s.pgrp,
                state_word(s.state),
                if signal_pending(pid) {
                    "with a signal pending"
                } else {
                    ""
                }
            );
        }
        stop(&other);
        stop(&[beside]);
    });
}

#[test]
fn a_group_with_no_members_left_is_esrch() {
    isolated(|| {
        let pids = spawn(2);
        let leader = pids[0];
        stop(&pids);
        assert_eq!(
            student(|| signal_group(leader, Signal::SIGTERM)),
            Err(Errno::ESRCH),
            "group {leader} has no member left (all of them were reaped): kill(-{leader}, ..) fails with ESRCH, \
             and signal_group should return that error"
        );
    });
}

#[test]
fn group_0_is_refused_not_the_callers_own() {
    isolated(|| {
        // Block SIGUSR1 in the test process: if it is sent to our group, it stays pending
        // here instead of killing the test, and the test can say what happened.
        let mut usr1 = SigSet::empty();
        usr1.add(Signal::SIGUSR1);
        sigprocmask(SigmaskHow::SIG_BLOCK, Some(&usr1), None).expect("block SIGUSR1");
        let got = student(|| signal_group(Pid::from_raw(0), Signal::SIGUSR1));
        let me = body_pid().expect("inside isolated()");
        assert!(
            !signal_pending(me),
            "signal_group(0, SIGUSR1) sent SIGUSR1 to the caller's own process group (the test process has it \
             pending now): negated, 0 is still 0, and kill(0, ..) means \"my own group\". Refuse a pgid of 0 or \
             1 with EINVAL"
        );
        assert_eq!(
            got,
            Err(Errno::EINVAL),
            "signal_group(0, ..) should refuse with EINVAL: 0 names no group (kill(0) would be the caller's own)"
        );
    });
}

/// A pgid that `signal_group` must refuse besides 0: 1, and a negative number.
#[derive(Debug, Clone, Copy)]
enum NotAGroup {
    /// Negated, 1 is -1: kill(-1, ..) signals every process the caller may signal.
    One,
    /// The bystander's pid, negated: negated again it is kill(pid, ..), that one process.
    NegatedPid,
}

#[rstest]
#[case::one(NotAGroup::One)]
#[case::a_negated_pid(NotAGroup::NegatedPid)]
fn other_pgids_of_1_or_less_are_refused(#[case] pgid: NotAGroup) {
    isolated(|| {
        // SIGURG, because a signal_group that lets 1 through sends kill(-1, SIGURG), to every
        // process this user may signal, well beyond the test: SIGURG is ignored by default, so
        // it harms none of them. Blocked here before the fork, so that the bystander inherits
        // the block and a SIGURG sent to it stays pending in its /proc status, for the test to
        // see, instead of being discarded.
        let mut urg = SigSet::empty();
        urg.add(Signal::SIGURG);
        sigprocmask(SigmaskHow::SIG_BLOCK, Some(&urg), None).expect("block SIGURG");
        let beside = bystander();
        asleep(&[beside]);
        let (raw, means) = match pgid {
            NotAGroup::One => (
                1,
                "kill(-1, ..), which signals every process the caller may signal".to_owned(),
            ),
            NotAGroup::NegatedPid => (
                -beside.as_raw(),
                format!("kill({beside}, ..), which signals the one process {beside}"),
            ),
        };
        let got = student(|| signal_group(Pid::from_raw(raw), Signal::SIGURG));
        let s = procfs::stat(beside).expect("read stat");
        let pending = signal_pending(beside);
        assert!(
            s.state == 'S' && !pending,
            "signal_group({raw}, SIGURG) signalled pid {beside}, a child of the test that is in no group it was \
             asked to signal: it is {} {}. Negated, {raw} becomes {means}. A pgid of 1 or less names no group: \
             refuse it with EINVAL before calling kill",
            state_word(s.state),
            if pending { "with SIGURG pending" } else { "" }
        );
        assert_eq!(
            got,
            Err(Errno::EINVAL),
            "signal_group({raw}, ..) should refuse with EINVAL: a pgid of 1 or less names no group (negated, it \
             would be {means})"
        );
        stop(&[beside]);
    });
}

/// The caller's children other than `keep`; kills and reaps them, and returns them as a table.
fn children_left(keep: &[Pid]) -> Option<String> {
    let me = body_pid().expect("inside isolated()");
    let kids: Vec<Stat> = procfs::children(me)
        .into_iter()
        .filter(|k| !keep.contains(&Pid::from_raw(k.pid)))
        .collect();
    if kids.is_empty() {
        return None;
    }
    let table = process_table(&kids);
    stop(
        &kids
            .iter()
            .map(|k| Pid::from_raw(k.pid))
            .collect::<Vec<_>>(),
    );
    Some(table)
}

#[test]
fn spawn_group_of_0_starts_nothing() {
    isolated(|| {
        let pids = spawn(0);
        let left = children_left(&[]);
        assert!(
            pids.is_empty() && left.is_none(),
            "spawn_group(0) should start no child at all and return no pid; it returned {pids:?} and the caller \
             now has these children:\n{}",
            left.unwrap_or_default()
        );
    });
}

/// If a fork fails, the children already started are killed and waited for before the error
/// is returned. The test lets only 2 more processes exist (`oskata_harness::forks`), so the
/// third fork fails with `EAGAIN`. A child of the test's own, in the test's group, must
/// survive the cleanup untouched.
#[test]
fn when_a_fork_fails_the_children_already_started_are_stopped_and_reaped() {
    isolated(|| {
        let beside = bystander();
        asleep(&[beside]);
        let allowed = 2;
        let limit = match oskata_harness::forks::limit_new_processes(allowed) {
            Ok(limit) => limit,
            Err(why) => {
                eprintln!("note: this test cannot make fork fail here ({why}); skipped");
                stop(&[beside]);
                return;
            }
        };
        let got =
            std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| student(|| spawn_group(5))));
        let how = limit.how.clone();
        drop(limit);
        let s = procfs::stat(beside).expect("read the bystander's stat");
        assert!(
            s.state == 'S' && !signal_pending(beside),
            "pid {beside}, a child of the test in the caller's own group, was hit when spawn_group cleaned up after \
             its failed fork: it is {}{}. Stop the children you started by their own pids, never with kill(0, ..) \
             (the caller's group) or kill(-1, ..)",
            state_word(s.state),
            if signal_pending(beside) {
                " with a signal pending"
            } else {
                ""
            }
        );
        let got = got.unwrap_or_else(|p| std::panic::resume_unwind(p));
        let left = children_left(&[beside]);
        stop(&[beside]);
        match (got, left) {
            (_, Some(table)) => panic!(
                "the third fork of spawn_group(5) failed (the test let it start only {allowed} processes: {how}), \
                 and spawn_group left the children it had started behind: if a fork fails, the children already \
                 started are killed and waited for before the error is returned (a killed child that nobody \
                 waits for stays a zombie). The caller's children then:\n{table}"
            ),
            (Ok(pids), None) => panic!(
                "spawn_group(5) returned {pids:?}, but the test let it start only {allowed} processes ({how}): \
                 its third fork must have failed, and it should have returned that error (EAGAIN)"
            ),
            (Err(e), None) => assert_eq!(
                e,
                Errno::EAGAIN,
                "the third fork fails with EAGAIN (the test let spawn_group start only {allowed} processes); \
                 spawn_group should return that error"
            ),
        }
    });
}

/// A member of the group that is not a child of the caller: a grandchild of the test that
/// joined the leader's group itself (`setpgid(0, leader)`), under a parent of its own that
/// stays in the test's group. A group signal reaches it; its parent is not touched.
#[test]
fn a_group_signal_reaches_members_that_are_not_the_callers_children() {
    isolated(|| {
        let target = spawn(3);
        let leader = target[0];
        // SAFETY: the test process is single-threaded; the child forks once and pauses, and
        // the grandchild joins the group and pauses, both until killed.
        let parent = match unsafe { fork() }.expect("fork") {
            ForkResult::Child => {
                // SAFETY: a single-threaded copy; the grandchild only calls setpgid and pause.
                if let Ok(ForkResult::Child) = unsafe { fork() } {
                    let _ = nix::unistd::setpgid(Pid::from_raw(0), leader);
                }
                loop {
                    pause();
                }
            }
            ForkResult::Parent { child } => child,
        };
        let member = poll::until_seen(
            Duration::from_secs(5),
            &format!("a child of pid {parent} asleep in group {leader}"),
            || {
                procfs::children(parent)
                    .into_iter()
                    .find(|s| s.pgrp == leader.as_raw() && s.state == 'S')
            },
            Option::is_some,
        )
        .expect("seen");
        let member_pid = Pid::from_raw(member.pid);
        asleep(&[target.as_slice(), &[parent]].concat());
        let before = stats(&[target.as_slice(), &[parent, member_pid]].concat());

        student(|| signal_group(leader, Signal::SIGTERM))
            .unwrap_or_else(|e| panic!("signal_group({leader}, SIGTERM) failed: {e}"));
        let (_, alive) = reap_within(&target, scaled(DYING));
        let member_died = dies_within(member_pid, scaled(DYING));
        let p = procfs::stat(parent).expect("read stat");
        let parent_hit = p.state != 'S' || signal_pending(parent);
        // The member is the parent's child: once the parent is reaped it is the test's.
        stop(&alive);
        stop(&[parent]);
        stop(&[member_pid]);
        assert!(
            member_died,
            "pid {member_pid} is in group {leader} (it joined it itself with setpgid; it is a child of pid {parent}, not a child of the caller), yet signal_group({leader}, SIGTERM) did not reach it: it is still alive {:?} later. A group signal reaches every process in the group, whoever started it: kill(-pgid) does that in one call, while signalling the pids spawn_group returned, or the caller's children, misses the others.\nThe processes before the signal:\n{}",
            scaled(DYING),
            process_table(&before)
        );
        assert!(
            alive.is_empty(),
            "after signal_group({leader}, SIGTERM), {alive:?} of the group's members were still alive:\n{}",
            process_table(&before)
        );
        assert!(
            !parent_hit,
            "pid {parent}, in the test's own group and not in group {leader}, was hit by signal_group({leader}, \
             SIGTERM): it is {}. A group signal must reach the members of that group only\n{}",
            state_word(p.state),
            process_table(&before)
        );
    });
}

/// Whether `pid` dies (a zombie, or gone) within `limit`.
fn dies_within(pid: Pid, limit: Duration) -> bool {
    let start = Instant::now();
    loop {
        if matches!(procfs::state(pid), None | Some('Z')) {
            return true;
        }
        if start.elapsed() > limit {
            return false;
        }
        std::thread::sleep(Duration::from_millis(1));
    }
}
