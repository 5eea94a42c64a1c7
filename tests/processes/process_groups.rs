//! processes/process_groups: process groups (进程组). What the tests observe:
//! - each child's group in `/proc/<pid>/stat` (field 5) right after `spawn_group` returned,
//!   and the caller's own group, unchanged;
//! - after a group signal, the `waitpid` status of every member of the target group
//!   (`Signaled` with that signal), and for every other process (a second group, a child in
//!   the caller's group) `/proc` state `S` with no signal pending in `/proc/<pid>/status`.

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
