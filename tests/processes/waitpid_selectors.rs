//! processes/waitpid_selectors: waitpid's pid argument (> 0, -1, 0, < -1) collects exactly
//! the selected children, and WNOHANG never blocks.
//!
//! Each test makes a family of children in distinct process groups (arranged with setpgid and
//! checked in `/proc/<pid>/stat`), each blocked reading its own pipe until the test lets it
//! exit. The test releases some of them, waits until `/proc` shows them as zombies, calls the
//! student's function, and then reads `/proc` again: a reaped child is gone, an untouched one
//! is still a zombie or still running (a pid whose `/proc` entry names another parent has been
//! reaped and handed to an unrelated process). The call runs on a second thread of the test
//! process, so a call that blocks is seen asleep in wait4(2) in
//! `/proc/<pid>/task/<tid>/syscall` (with its pid and options arguments). A correct call may
//! sleep for an instant inside wait4 without blocking (a page fault, a lock), so the sleep
//! counts as blocking only once it has lasted [`ASLEEP`] without the thread waking up in
//! between (its `voluntary_ctxt_switches` unchanged); then the children are released so
//! nothing hangs.
//!
//! The contract, clause by clause, and the tests that check it:
//! - `wait_one` returns at once with one selected child that has ended, leaving every other
//!   child as it was (older ready children outside the selection are there to be taken by a
//!   wrong selector): `wait_one_for_one_pid`, `wait_one_for_any_child`,
//!   `wait_one_for_the_own_group`, `wait_one_for_a_given_group`;
//! - it blocks while every selected child runs, in a wait whose pid argument is the selection
//!   (a group id passed as a pid is named), and returns the one that then exits:
//!   `wait_one_blocks_until_a_selected_child_exits`;
//! - a kill ends the wait as an exit does, with `Signaled`: `wait_one_is_ended_by_a_kill`;
//! - a stop or a continue does not (no `WUNTRACED`, no `WCONTINUED`): the wait is seen to wake
//!   for each and go back to sleep, `wait_one_is_not_ended_by_a_stop`;
//! - `reap_ready` collects exactly the selected children that have ended, at once, with their
//!   statuses in the order waitpid gave them (oldest first), and never touches a child outside
//!   the selection: `reap_ready_collects_exactly_the_ready_selected_children`,
//!   `random_families` (exits, kills and running children in random groups);
//! - killed children are ended children: `reap_ready_returns_killed_children_too`;
//! - stopped children are left alone: `reap_ready_leaves_stopped_children_alone`;
//! - it never blocks: every `reap_ready` test fails a call asleep in a wait for [`ASLEEP`], and
//!   `reap_ready_returns_at_once_when_nothing_is_ready` has only running children;
//! - `ECHILD` is no error, the result is what was collected so far:
//!   `reap_ready_without_children_is_empty` (nothing at all), and every case whose selection's
//!   last child is collected (`Child`, a group of one) hits `ECHILD` after collecting.

// The exercise under test: your stub (by default), the reference solution (`--features
// solutions`), or a shipped mistake that `cargo grade --mistakes` copies into target/.
#[cfg(not(any(feature = "solutions", feature = "mistake")))]
#[path = "../../exercises/processes/waitpid_selectors.rs"]
#[allow(dead_code)] // a stub does not use all of its API yet
mod waitpid_selectors;
#[cfg(all(feature = "solutions", not(feature = "mistake")))]
#[path = "../../solutions/processes/waitpid_selectors.rs"]
mod waitpid_selectors;
#[cfg(feature = "mistake")]
#[path = "../../target/oskata-mistake/processes/waitpid_selectors.rs"]
#[rustfmt::skip] // the copy exists only while the proof runs
mod waitpid_selectors;
use waitpid_selectors::*;

use std::any::Any;
use std::os::fd::{AsRawFd, OwnedFd};
use std::panic::{self, AssertUnwindSafe};
use std::sync::Arc;
use std::sync::atomic::{AtomicI32, Ordering};
use std::sync::mpsc::{self, Receiver, TryRecvError};
use std::thread;
use std::time::{Duration, Instant};

use nix::errno::Errno;
use nix::sys::signal::{Signal, kill};
use nix::sys::wait::{WaitStatus, waitpid};
use nix::unistd::{ForkResult, Pid, fork, getpgrp, gettid, pipe, read, setpgid, write};
use oskata_harness::{body_pid, cases, isolated, poll, procfs, scaled, student};
use proptest::prelude::*;
use proptest::test_runner::TestCaseError;
use rstest::rstest;

/// How long a correct call may take to return, or a released child to exit (scaled).
const SETTLE: Duration = Duration::from_secs(5);

/// How long the call must stay in one unbroken sleep in a wait before it counts as blocked
/// (scaled): far longer than a page fault or a lock inside a wait4 that returns at once.
const ASLEEP: Duration = Duration::from_millis(100);

/// The state of the test's child `pid` in `/proc`, or `None` once it is gone: reaped, or
/// reaped and its pid already reused by a process that is not the test's child.
fn kid_state(pid: Pid) -> Option<char> {
    let parent = body_pid().expect("inside isolated()");
    procfs::stat(pid)
        .ok()
        .filter(|s| s.ppid == parent.as_raw())
        .map(|s| s.state)
}

/// Which process group a child of the family lives in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Where {
    /// The test process's own group.
    Own,
    /// A new group; its first child is the leader.
    G1,
    /// Another new group.
    G2,
}

/// One child of the test, blocked in read(2) until released.
struct Kid {
    pid: Pid,
    pgid: Pid,
    code: u8,
    /// The signal the test killed it with, if it did: then it ends Signaled, not Exited.
    killed: Option<Signal>,
    /// The write end of the child's pipe: one byte (or closing it) lets the child exit.
    release: Option<OwnedFd>,
}

/// The test's children and their groups.
struct Family {
    kids: Vec<Kid>,
    own: Pid,
    g1: Option<Pid>,
    g2: Option<Pid>,
}

/// Forks a child that waits for one byte (or end of file) on a pipe, then exits with `code`.
fn spawn_kid(code: u8) -> (Pid, OwnedFd) {
    let (read_end, write_end) = pipe().expect("pipe");
    // SAFETY: the child only makes async-signal-safe calls (close_range, read, _exit), so
    // other threads of the test process (a finished watcher) cannot hold anything it needs.
    match unsafe { fork() }.expect("fork") {
        ForkResult::Child => {
            // Keep only the own read end: another child's write end held here would keep
            // that child from ever seeing end of file.
            let fd = read_end.as_raw_fd();
            // SAFETY: close_range(2) on fds this process owns; nothing here uses them.
            unsafe {
                libc::syscall(libc::SYS_close_range, 3u32, (fd - 1) as u32, 0u32);
                libc::syscall(libc::SYS_close_range, (fd + 1) as u32, u32::MAX, 0u32);
            }
            let mut byte = [0u8; 1];
            while read(&read_end, &mut byte) == Err(Errno::EINTR) {}
            // SAFETY: _exit ends the child without running the test's code.
            unsafe { libc::_exit(code.into()) }
        }
        ForkResult::Parent { child } => (child, write_end),
    }
}

impl Family {
    /// Makes one child per entry, in order, with codes 10, 11, 12...; the first child placed
    /// in G1 (or G2) becomes that group's leader, the next ones join it.
    fn build(places: &[Where]) -> Family {
        let mut fam = Family {
            kids: Vec::new(),
            own: getpgrp(),
            g1: None,
            g2: None,
        };
        for (i, place) in places.iter().enumerate() {
            let code = 10 + i as u8;
            let (pid, release) = spawn_kid(code);
            let pgid = match place {
                Where::Own => fam.own,
                Where::G1 => *fam.g1.get_or_insert(pid),
                Where::G2 => *fam.g2.get_or_insert(pid),
            };
            if pgid != fam.own {
                setpgid(pid, pgid).expect("setpgid");
            }
            let seen = procfs::stat(pid).expect("the child's /proc entry").pgrp;
            assert_eq!(seen, pgid.as_raw(), "/proc/{pid}/stat shows group {seen}");
            fam.kids.push(Kid {
                pid,
                pgid,
                code,
                killed: None,
                release: Some(release),
            });
        }
        fam
    }

    /// The standard family, oldest first: own group, G2 leader, G1 leader, G1 member, own group.
    /// The kernel looks at children oldest first, so where a wrong selector could pick
    /// either of two ready children, the wrong one is the older.
    fn standard() -> Family {
        Family::build(&[Where::Own, Where::G2, Where::G1, Where::G1, Where::Own])
    }

    fn pid(&self, i: usize) -> Pid {
        self.kids[i].pid
    }

    fn kid(&self, pid: Pid) -> Option<&Kid> {
        self.kids.iter().find(|k| k.pid == pid)
    }

    /// Lets the children at `which` exit and waits until `/proc` shows each as a zombie.
    fn release(&mut self, which: &[usize]) {
        for &i in which {
            if let Some(fd) = self.kids[i].release.take() {
                let _ = write(&fd, b"x");
            }
        }
        for &i in which {
            let pid = self.kids[i].pid;
            poll::until(SETTLE, &format!("pid {pid} to exit"), || {
                matches!(kid_state(pid), Some('Z') | None).then_some(())
            });
        }
    }

    /// Kills the child at `i` with `signal` and waits until `/proc` shows it as a zombie.
    fn kill(&mut self, i: usize, signal: Signal) {
        let pid = self.kids[i].pid;
        kill(pid, signal).expect("kill");
        self.kids[i].killed = Some(signal);
        poll::until(SETTLE, &format!("pid {pid} to die of {signal}"), || {
            matches!(kid_state(pid), Some('Z') | None).then_some(())
        });
        // Its release must never be written: a pipe with no reader left raises SIGPIPE.
        self.kids[i].release = None;
    }

    /// Continues the stopped child at `i` and waits until `/proc` no longer shows it stopped.
    fn cont(&self, i: usize) {
        let pid = self.kids[i].pid;
        kill(pid, Signal::SIGCONT).expect("kill SIGCONT");
        poll::until(SETTLE, &format!("pid {pid} to continue"), || {
            (kid_state(pid) != Some('T')).then_some(())
        });
    }

    /// Stops the child at `i` with SIGSTOP and waits until `/proc` shows it stopped (`T`).
    fn stop(&self, i: usize) {
        let pid = self.kids[i].pid;
        kill(pid, Signal::SIGSTOP).expect("kill SIGSTOP");
        poll::until(SETTLE, &format!("pid {pid} to stop"), || {
            (kid_state(pid) == Some('T')).then_some(())
        });
    }

    /// Lets every child exit and reaps what is left, so the test leaves nothing behind.
    fn finish(&mut self) {
        for kid in &self.kids {
            // A stopped child could not read its release.
            let _ = kill(kid.pid, Signal::SIGCONT);
        }
        let all: Vec<usize> = (0..self.kids.len()).collect();
        self.release(&all);
        for kid in &self.kids {
            let _ = waitpid(kid.pid, None);
        }
    }

    /// A child in words: pid, group and state.
    fn name(&self, pid: Pid, state: Option<char>) -> String {
        let Some(kid) = self.kid(pid) else {
            return format!("pid {pid}");
        };
        let group = if kid.pgid == self.own {
            format!("the caller's own group {}", self.own)
        } else if kid.pgid == kid.pid {
            format!("group {}, which it leads", kid.pgid)
        } else {
            format!("group {}", kid.pgid)
        };
        let state = match (state, kid.killed) {
            (Some('Z'), Some(signal)) => format!("killed by {signal}, a zombie"),
            (Some('Z'), None) => "exited, a zombie".to_string(),
            (Some('T'), _) => "stopped by a signal, still alive".to_string(),
            (Some(_), _) => "still running".to_string(),
            (None, _) => "gone".to_string(),
        };
        format!("pid {pid} ({group}, {state})")
    }

    /// Whether `selector` covers the child `kid`.
    fn selects(&self, selector: Selector, kid: &Kid) -> bool {
        match selector {
            Selector::Child(pid) => kid.pid == pid,
            Selector::AnyChild => true,
            Selector::OwnGroup => kid.pgid == self.own,
            Selector::Group(pgid) => kid.pgid == pgid,
        }
    }
}

/// A selector as the tests write it: `Group(1234)` rather than `Group(Pid(1234))`.
fn show(selector: Selector) -> String {
    match selector {
        Selector::Child(pid) => format!("Child({pid})"),
        Selector::AnyChild => "AnyChild".into(),
        Selector::OwnGroup => "OwnGroup".into(),
        Selector::Group(pgid) => format!("Group({pgid})"),
    }
}

/// What `selector` means as a waitpid call, in words.
fn meaning(selector: Selector, own: Pid) -> String {
    match selector {
        Selector::Child(pid) => format!("Child({pid}) is waitpid({pid}): that one child only"),
        Selector::AnyChild => "AnyChild is waitpid(-1): any child of the caller".into(),
        Selector::OwnGroup => format!(
            "OwnGroup is waitpid(0): only children in the caller's own process group ({own})"
        ),
        Selector::Group(g) => format!(
            "Group({g}) is waitpid(-{g}): only children in process group {g} (a positive {g} would mean the one \
             child with pid {g})"
        ),
    }
}

/// What a blocked wait4/waitid call was asked to wait for, from its raw pid argument, as
/// `selector` was meant.
fn waited_for(pid: i32, selector: Selector, own: Pid) -> String {
    match pid {
        -1 => "pid -1 = any child".into(),
        0 => format!("pid 0 = any child in the caller's own group {own}"),
        p if p < 0 => format!("pid {p} = any child in process group {}", -p),
        p if matches!(selector, Selector::Group(_)) => format!(
            "pid {p} = only the child with pid {p}: a positive pid selects only the child with that pid (here the \
             group's leader), even when it is also a group id; a group is selected with its negative, -pgid"
        ),
        p => format!("pid {p} = only the child with pid {p}"),
    }
}

/// The children of the family that waitpid's raw pid argument covers.
fn covered_by_arg(fam: &Family, pid: i32) -> Vec<Pid> {
    fam.kids
        .iter()
        .filter(|k| match pid {
            -1 => true,
            0 => k.pgid == fam.own,
            p if p < 0 => k.pgid.as_raw() == -p,
            p => k.pid.as_raw() == p,
        })
        .map(|k| k.pid)
        .collect()
}

/// The children of the family that `selector` covers.
fn covered_by(fam: &Family, selector: Selector) -> Vec<Pid> {
    fam.kids
        .iter()
        .filter(|k| fam.selects(selector, k))
        .map(|k| k.pid)
        .collect()
}

/// Where the thread running the student's call sends what the call returned (or its panic).
type Reply<T> = Receiver<Result<T, Box<dyn Any + Send>>>;

/// How the student's call ended, as seen from the test's main thread.
enum Outcome<T> {
    Returned(T),
    /// The call sleeps in wait4/waitid: the waited-for pid (as waitpid means it) and options.
    Blocked {
        pid: i32,
        options: u64,
        /// The thread running the call.
        tid: i32,
        rx: Reply<T>,
    },
}

/// The blocked wait of thread `tid` of this process, as (pid as waitpid means it, options).
fn blocked_wait(tid: i32) -> Option<(i32, u64)> {
    let me = body_pid().expect("inside isolated()");
    let call = procfs::thread_syscall(me, tid)?;
    let arg = |n: usize| call.args[n];
    if call.nr == libc::SYS_wait4 {
        Some((arg(0) as i64 as i32, arg(2)))
    } else if call.nr == libc::SYS_waitid {
        // waitid(idtype, id, infop, options): P_ALL, P_PID or P_PGID (0 = own group).
        let id = arg(1) as i64 as i32;
        let pid = match arg(0) as u32 {
            libc::P_ALL => -1,
            libc::P_PID => id,
            _ if id == 0 => 0,
            _ => -id,
        };
        Some((pid, arg(3)))
    } else {
        None
    }
}

/// How many voluntary context switches thread `tid` of this process has made: one each time
/// it went to sleep (`voluntary_ctxt_switches` in `/proc/<tid>/status`, which describes that
/// one thread).
fn sleeps_of(tid: i32) -> Option<u64> {
    procfs::status(Pid::from_raw(tid))
        .ok()?
        .get("voluntary_ctxt_switches")?
        .parse()
        .ok()
}

/// A sleep in a wait seen on the thread running the call, and since when.
struct Asleep {
    pid: i32,
    options: u64,
    /// `sleeps_of` right after the first look: unchanged later means the thread has not
    /// woken up (and gone back to sleep) since.
    sleeps: u64,
    since: Instant,
}

/// Runs the student's call on a second thread and watches it: it either returns, or stays
/// asleep in one wait4/waitid for [`ASLEEP`] (a wait that blocks). One look at a sleeping
/// thread is not enough: a call that returns at once may sleep for an instant inside wait4
/// (a page fault writing the status, a lock), WNOHANG or not.
fn watch<T: Send + 'static>(what: &str, call: impl FnOnce() -> T + Send + 'static) -> Outcome<T> {
    let (tx, rx) = mpsc::channel();
    let tid = Arc::new(AtomicI32::new(0));
    let tid_in = Arc::clone(&tid);
    thread::spawn(move || {
        tid_in.store(gettid().as_raw(), Ordering::SeqCst);
        let result = panic::catch_unwind(AssertUnwindSafe(|| student(call)));
        let _ = tx.send(result);
    });
    let start = Instant::now();
    let mut asleep: Option<Asleep> = None;
    loop {
        match rx.try_recv() {
            Ok(result) => {
                return Outcome::Returned(result.unwrap_or_else(|p| panic::resume_unwind(p)));
            }
            Err(TryRecvError::Disconnected) => panic!("the thread running the call vanished"),
            Err(TryRecvError::Empty) => {}
        }
        let t = tid.load(Ordering::SeqCst);
        let seen = if t == 0 { None } else { blocked_wait(t) };
        match (seen, &asleep) {
            (None, _) => asleep = None,
            // The same wait, and no sleep began since the first look: one unbroken sleep.
            (Some((pid, options)), Some(a))
                if a.pid == pid && a.options == options && sleeps_of(t) == Some(a.sleeps) =>
            {
                if a.since.elapsed() >= scaled(ASLEEP) {
                    return Outcome::Blocked {
                        pid,
                        options,
                        tid: t,
                        rx,
                    };
                }
            }
            (Some((pid, options)), _) => {
                asleep = sleeps_of(t).map(|sleeps| Asleep {
                    pid,
                    options,
                    sleeps,
                    since: Instant::now(),
                });
            }
        }
        if start.elapsed() > scaled(SETTLE) {
            panic!(
                "{what} neither returned within {:?} nor is asleep in a wait: it keeps itself busy. A loop \
                 that calls waitpid with WNOHANG again while it reports StillAlive waits for running children after \
                 all; stop at the first StillAlive",
                scaled(SETTLE)
            );
        }
        thread::sleep(Duration::from_micros(200));
    }
}

/// The call blocked where it must not: release everything, let the call finish, and fail.
fn blocked_failure<T>(
    fam: &mut Family,
    call: &str,
    selector: Selector,
    pid: i32,
    options: u64,
    rx: Reply<T>,
    why: String,
) -> ! {
    let own = fam.own;
    fam.finish();
    let _ = rx.recv_timeout(scaled(SETTLE));
    let nohang = if options & libc::WNOHANG as u64 == 0 {
        ", without WNOHANG"
    } else {
        ""
    };
    panic!(
        "{call} is asleep in a wait for {} (options {options:#x}{nohang}). {why}",
        waited_for(pid, selector, own)
    );
}

/// The selected children that are zombies right now, in words.
fn ready_selected(fam: &Family, selector: Selector) -> Vec<String> {
    fam.kids
        .iter()
        .filter(|k| fam.selects(selector, k) && kid_state(k.pid) == Some('Z'))
        .map(|k| fam.name(k.pid, Some('Z')))
        .collect()
}

/// Checks what a call returned against `/proc` before and after; panics with the lesson.
/// `all_ready`: the call had to collect every selected zombie (reap_ready) rather than one.
fn verify(
    fam: &Family,
    call: &str,
    selector: Selector,
    before: &[Option<char>],
    got: &[WaitStatus],
    all_ready: bool,
) -> Result<(), String> {
    let mut collected = Vec::new();
    for status in got {
        let pid = match *status {
            WaitStatus::Exited(pid, _) | WaitStatus::Signaled(pid, _, _) => pid,
            WaitStatus::Stopped(pid, signal) => {
                return Err(format!(
                    "{call} returned {status:?}: {} was stopped by {signal}, and a stop is not an end (the child \
                     can be continued and still has to exit). waitpid reports stops only when asked with WUNTRACED; \
                     {call} waits for children that ended (exited or were killed), so give waitpid no WUNTRACED",
                    fam.name(pid, kid_state(pid))
                ));
            }
            WaitStatus::Continued(pid) => {
                return Err(format!(
                    "{call} returned {status:?}: {} was continued by SIGCONT, which is not an end. waitpid \
                     reports that only when asked with WCONTINUED; {call} waits for children that ended (exited or \
                     were killed), so give waitpid no WCONTINUED",
                    fam.name(pid, kid_state(pid))
                ));
            }
            WaitStatus::StillAlive => {
                return Err(format!(
                    "{call} returned StillAlive among its statuses: that is waitpid's answer that no selected child \
                     has ended yet (WNOHANG), not the status of a child. {}",
                    if all_ready {
                        "It ends reap_ready's loop and is not part of the result"
                    } else {
                        "wait_one must block, without WNOHANG, until a selected child ends"
                    }
                ));
            }
            other => {
                return Err(format!(
                    "{call} returned {other:?}: the selected children here end by exiting or by a kill, so every \
                     status should be Exited(pid, code) or Signaled(pid, signal, core)"
                ));
            }
        };
        let Some(i) = fam.kids.iter().position(|k| k.pid == pid) else {
            return Err(format!(
                "{call} returned a status for pid {pid}, which is not a child of the caller"
            ));
        };
        let kid = &fam.kids[i];
        if !fam.selects(selector, kid) {
            return Err(format!(
                "{call} collected {}, a child outside the selection: {}.",
                fam.name(pid, before[i]),
                meaning(selector, fam.own)
            ));
        }
        if before[i] != Some('Z') {
            return Err(format!(
                "{call} collected {}: it waited for a child that had not ended yet",
                fam.name(pid, before[i])
            ));
        }
        match (*status, kid.killed) {
            (WaitStatus::Exited(_, code), None) if code == i32::from(kid.code) => {}
            (WaitStatus::Signaled(_, signal, _), Some(killed)) if signal == killed => {}
            (WaitStatus::Exited(_, code), None) => {
                return Err(format!(
                    "{call} says pid {pid} exited with {code}, but it exits with {}",
                    kid.code
                ));
            }
            (_, Some(killed)) => {
                return Err(format!(
                    "{call} returned {status:?} for pid {pid}, which the test killed with {killed}: return each \
                     status as waitpid gave it, here Signaled({pid}, {killed}, ..)"
                ));
            }
            (_, None) => {
                return Err(format!(
                    "{call} returned {status:?} for pid {pid}, which exited with code {}: return each status as \
                     waitpid gave it, here Exited({pid}, {})",
                    kid.code, kid.code
                ));
            }
        }
        if collected.contains(&pid) {
            return Err(format!("{call} returned pid {pid} twice"));
        }
        collected.push(pid);
    }
    // No selected child left at all: the next waitpid after the last collection said ECHILD.
    let none_left = fam
        .kids
        .iter()
        .all(|k| !fam.selects(selector, k) || kid_state(k.pid).is_none());
    for (i, kid) in fam.kids.iter().enumerate() {
        let now = kid_state(kid.pid);
        let returned = collected.contains(&kid.pid);
        if now.is_none() && !returned && !fam.selects(selector, kid) {
            return Err(format!(
                "{} was collected by {call}, which returned no status for it, and it is a child outside the \
                 selection: {}.",
                fam.name(kid.pid, before[i]),
                meaning(selector, fam.own)
            ));
        }
        if now.is_none() && !returned {
            let killed = match kid.killed {
                Some(signal) => format!(
                    " It was killed by {signal}, and waitpid reported that as Signaled: a kill ends a child as \
                     surely as an exit does, so its status belongs in the result too."
                ),
                None => String::new(),
            };
            let echild = if all_ready && none_left {
                " No selected child is left now, so the waitpid after the last one failed with ECHILD: that ends \
                 the loop with what was collected so far, which is the result, not an error and not nothing."
            } else {
                ""
            };
            return Err(format!(
                "{} was collected by {call}, which returned no status for it: every status waitpid gives back \
                 belongs in the result.{killed}{echild}",
                fam.name(kid.pid, before[i]),
            ));
        }
        if all_ready
            && !returned
            && fam.selects(selector, kid)
            && before[i] == Some('Z')
            && !collected.is_empty()
        {
            return Err(format!(
                "{call} left {} behind although the selection covers it: keep calling waitpid with WNOHANG until \
                 it reports that no selected child is ready (StillAlive) or that none is left (ECHILD)",
                fam.name(kid.pid, now)
            ));
        }
    }
    // Nothing collected at all, with a selected child ready: no loop was missing, the wait
    // never selected it (a waitpid with WNOHANG collects a zombie it covers at once).
    let missed: Vec<String> = fam
        .kids
        .iter()
        .enumerate()
        .filter(|&(i, k)| fam.selects(selector, k) && before[i] == Some('Z'))
        .map(|(_, k)| fam.name(k.pid, kid_state(k.pid)))
        .collect();
    if all_ready && collected.is_empty() && !missed.is_empty() {
        return Err(format!(
            "{call} collected nothing, although the selection covers {}: the pid argument it gave waitpid \
             does not select these children (a waitpid with WNOHANG whose argument covers a zombie collects it at \
             once). {}.",
            missed.join(" and "),
            meaning(selector, fam.own)
        ));
    }
    // waitpid reports ready children oldest first (the kernel walks its list of children in
    // the order they were forked), and the result keeps that order.
    let order: Vec<usize> = collected
        .iter()
        .filter_map(|pid| fam.kids.iter().position(|k| k.pid == *pid))
        .collect();
    if order.windows(2).any(|w| w[0] > w[1]) {
        let oldest_first: Vec<Pid> = fam
            .kids
            .iter()
            .map(|k| k.pid)
            .filter(|pid| collected.contains(pid))
            .collect();
        return Err(format!(
            "{call} returned the statuses of {collected:?} in another order than waitpid gave them ({oldest_first:?}: \
             of several ready children waitpid reports the oldest first). Keep each status in the order of the call \
             that returned it"
        ));
    }
    if !all_ready && collected.len() != 1 {
        return Err(format!(
            "{call} should collect exactly one child; it returned {got:?}"
        ));
    }
    Ok(())
}

/// The state of every child of the family, in order.
fn states(fam: &Family) -> Vec<Option<char>> {
    fam.kids.iter().map(|k| kid_state(k.pid)).collect()
}

/// Calls `wait_one(selector)` with at least one selected child ready: it must return at once
/// with one of them and leave every other child as it was.
fn wait_one_ready(mut fam: Family, selector: Selector) {
    let call = format!("wait_one({})", show(selector));
    let before = states(&fam);
    let ready = ready_selected(&fam, selector);
    match watch(&call, move || wait_one(selector)) {
        Outcome::Returned(got) => {
            let got = got.unwrap_or_else(|e| panic!("{call} failed: {e}"));
            let checked = verify(&fam, &call, selector, &before, &[got], false);
            fam.finish();
            checked.unwrap_or_else(|why| panic!("{why}"));
        }
        Outcome::Blocked {
            pid, options, rx, ..
        } => {
            let why = format!(
                "It should have returned at once: the selection covers {}, which had already exited. {}.",
                ready.join(" and "),
                meaning(selector, fam.own)
            );
            blocked_failure(&mut fam, &call, selector, pid, options, rx, why)
        }
    }
}

/// Calls `reap_ready(selector)`: it must return at once with exactly the selected children
/// that had exited, leaving the rest as they were.
fn reap_ready_now(fam: &mut Family, selector: Selector) -> Result<(), String> {
    let call = format!("reap_ready({})", show(selector));
    let before = states(fam);
    match watch(&call, move || reap_ready(selector)) {
        Outcome::Returned(got) => {
            let got = match got {
                Ok(got) => got,
                Err(Errno::ECHILD) => {
                    let taken: Vec<String> = fam
                        .kids
                        .iter()
                        .enumerate()
                        .filter(|&(i, k)| before[i].is_some() && kid_state(k.pid).is_none())
                        .map(|(i, k)| fam.name(k.pid, before[i]))
                        .collect();
                    return Err(format!(
                        "{call} failed with ECHILD{}. ECHILD means that no selected child is left (any more): it \
                         ends the loop, and is not an error here. Return what was collected so far, possibly \
                         nothing",
                        if taken.is_empty() {
                            String::new()
                        } else {
                            format!(", after collecting {}", taken.join(" and "))
                        }
                    ));
                }
                Err(e) => return Err(format!("{call} failed: {e}")),
            };
            verify(fam, &call, selector, &before, &got, true)
        }
        Outcome::Blocked {
            pid, options, rx, ..
        } => {
            let running: Vec<String> = fam
                .kids
                .iter()
                .filter(|k| fam.selects(selector, k) && kid_state(k.pid) != Some('Z'))
                .map(|k| fam.name(k.pid, Some('S')))
                .collect();
            let why = format!(
                "reap_ready must never block: every waitpid it makes needs WNOHANG, so that while a selected child \
                 is still running ({}) the call returns at once with what was ready",
                running.join(", ")
            );
            blocked_failure(fam, &call, selector, pid, options, rx, why)
        }
    }
}

#[test]
fn wait_one_for_one_pid() {
    isolated(|| {
        let mut fam = Family::standard();
        // Two ready children in the own group: the older one is not the one asked for.
        fam.release(&[0, 4]);
        let target = fam.pid(4);
        wait_one_ready(fam, Selector::Child(target));
    });
}

#[test]
fn wait_one_for_any_child() {
    isolated(|| {
        let mut fam = Family::standard();
        // The only ready child is outside the caller's group.
        fam.release(&[3]);
        wait_one_ready(fam, Selector::AnyChild);
    });
}

#[test]
fn wait_one_for_the_own_group() {
    isolated(|| {
        let mut fam = Family::standard();
        // Ready: the G2 leader (older) and a child of the own group.
        fam.release(&[1, 4]);
        wait_one_ready(fam, Selector::OwnGroup);
    });
}

#[test]
fn wait_one_for_a_given_group() {
    isolated(|| {
        let mut fam = Family::standard();
        // Ready: one child of the own group, the G2 leader and the G1 member; G1's leader
        // still runs.
        fam.release(&[0, 1, 3]);
        let g1 = fam.g1.expect("G1");
        wait_one_ready(fam, Selector::Group(g1));
    });
}

/// Which selector a case uses, given the standard family.
#[derive(Debug, Clone, Copy)]
enum Pick {
    /// Child(the G1 member).
    ChildMember,
    /// Child(the G1 leader).
    ChildLeader,
    Any,
    Own,
    G1,
    G2,
}

impl Pick {
    fn selector(self, fam: &Family) -> Selector {
        match self {
            Pick::ChildMember => Selector::Child(fam.pid(3)),
            Pick::ChildLeader => Selector::Child(fam.pid(2)),
            Pick::Any => Selector::AnyChild,
            Pick::Own => Selector::OwnGroup,
            Pick::G1 => Selector::Group(fam.g1.expect("G1")),
            Pick::G2 => Selector::Group(fam.g2.expect("G2")),
        }
    }
}

/// While every selected child runs, wait_one sleeps in the wait; once one of them exits, it
/// returns that one and nothing else.
#[rstest]
#[case::one_pid(Pick::ChildMember, 3)]
#[case::any_child(Pick::Any, 1)]
#[case::own_group(Pick::Own, 4)]
#[case::given_group(Pick::G1, 3)]
fn wait_one_blocks_until_a_selected_child_exits(#[case] pick: Pick, #[case] target: usize) {
    isolated(|| {
        let mut fam = Family::standard();
        let selector = pick.selector(&fam);
        let call = format!("wait_one({})", show(selector));
        match watch(&call, move || wait_one(selector)) {
            Outcome::Returned(got) => {
                fam.finish();
                panic!(
                    "{call} returned {got:?} while every selected child was still running: wait_one must block \
                     (no WNOHANG) until a selected child exits. {}.",
                    meaning(selector, fam.own)
                );
            }
            Outcome::Blocked {
                pid, options, rx, ..
            } => {
                // Asleep, as it should be; but waiting for the right children?
                if covered_by_arg(&fam, pid) != covered_by(&fam, selector) {
                    let why = format!("That is not the selection: {}.", meaning(selector, fam.own));
                    blocked_failure(&mut fam, &call, selector, pid, options, rx, why);
                }
                let mut before = states(&fam);
                fam.release(&[target]);
                before[target] = Some('Z');
                let who = fam.name(fam.pid(target), Some('Z'));
                let got = match rx.recv_timeout(scaled(SETTLE)) {
                    Ok(result) => result.unwrap_or_else(|p| panic::resume_unwind(p)),
                    Err(_) => {
                        fam.finish();
                        panic!(
                            "{call} stayed asleep in a wait for {} for {:?} after {who} exited, although the \
                             selection covers it: {}.",
                            waited_for(pid, selector, fam.own),
                            scaled(SETTLE),
                            meaning(selector, fam.own)
                        );
                    }
                };
                let got = got.unwrap_or_else(|e| panic!("{call} failed: {e}"));
                let checked = verify(&fam, &call, selector, &before, &[got], false);
                fam.finish();
                checked.unwrap_or_else(|why| panic!("{why}"));
            }
        }
    });
}

/// The call runs on a thread and is asleep in a wait, as a blocking wait_one must be while
/// every selected child runs; fails (after cleaning up) if it returned instead.
fn blocked_call(
    fam: &mut Family,
    call: &str,
    selector: Selector,
) -> (i32, Reply<nix::Result<WaitStatus>>) {
    match watch(call, move || wait_one(selector)) {
        Outcome::Returned(got) => {
            fam.finish();
            panic!(
                "{call} returned {got:?} while every selected child was still running: wait_one must block \
                 (no WNOHANG) until a selected child ends. {}.",
                meaning(selector, fam.own)
            );
        }
        Outcome::Blocked { tid, rx, .. } => (tid, rx),
    }
}

/// After a selected child stopped or continued, which wakes a parent waiting for it: what the
/// call on thread `tid` returned, if it did, or `None` once it sleeps in the wait again (one
/// more voluntary context switch than `slept`, counted before the signal was sent).
fn returned_or_slept_again<T>(rx: &Reply<T>, tid: i32, slept: u64, event: &str) -> Option<T> {
    let what = format!("the call to return or to sleep again in its wait after {event}");
    let result = poll::until(SETTLE, &what, || {
        if let Ok(result) = rx.try_recv() {
            return Some(Some(result));
        }
        let again = blocked_wait(tid).is_some() && sleeps_of(tid).is_some_and(|n| n > slept);
        again.then_some(None)
    })?;
    Some(result.unwrap_or_else(|p| panic::resume_unwind(p)))
}

/// The G1 member (kid 3) is selected by each case; it is stopped while wait_one waits. A stop
/// is not an end: the kernel wakes a parent that waits for a child when that child stops, and
/// a wait for ends goes back to sleep, which `/proc` shows (asleep in the wait again, with one
/// more voluntary context switch). The same for SIGCONT, which wakes it too. Then the child
/// exits, and wait_one returns that exit.
#[rstest]
#[case::one_pid(Pick::ChildMember)]
#[case::any_child(Pick::Any)]
#[case::given_group(Pick::G1)]
fn wait_one_is_not_ended_by_a_stop(#[case] pick: Pick) {
    isolated(|| {
        let mut fam = Family::standard();
        let selector = pick.selector(&fam);
        let call = format!("wait_one({})", show(selector));
        let (tid, rx) = blocked_call(&mut fam, &call, selector);
        let target = 3;
        let slept = sleeps_of(tid).expect("the call's thread in /proc");
        fam.stop(target);
        if let Some(got) = returned_or_slept_again(&rx, tid, slept, "the stop") {
            let who = fam.name(fam.pid(target), kid_state(fam.pid(target)));
            fam.finish();
            panic!(
                "{call} returned {got:?} as soon as {who} was stopped by SIGSTOP: a stop is not an end (the child \
                 can be continued, and has still to exit). waitpid reports stops only when asked with WUNTRACED; \
                 wait_one waits until a selected child ends (exits or is killed), so give waitpid no WUNTRACED"
            );
        }
        let slept = sleeps_of(tid).expect("the call's thread in /proc");
        fam.cont(target);
        if let Some(got) = returned_or_slept_again(&rx, tid, slept, "the continue") {
            let who = fam.name(fam.pid(target), kid_state(fam.pid(target)));
            fam.finish();
            panic!(
                "{call} returned {got:?} as soon as {who} was continued by SIGCONT: that is not an end either. \
                 waitpid reports it only when asked with WCONTINUED; wait_one waits until a selected child ends \
                 (exits or is killed), so give waitpid no WCONTINUED"
            );
        }
        let mut before = states(&fam);
        fam.release(&[target]);
        before[target] = Some('Z');
        let who = fam.name(fam.pid(target), Some('Z'));
        let Ok(result) = rx.recv_timeout(scaled(SETTLE)) else {
            fam.finish();
            panic!(
                "{call} stayed asleep for {:?} after {who} was stopped, continued and then exited, although the \
                 selection covers it: {}.",
                scaled(SETTLE),
                meaning(selector, fam.own)
            );
        };
        let got = result
            .unwrap_or_else(|p| panic::resume_unwind(p))
            .unwrap_or_else(|e| panic!("{call} failed: {e}"));
        let checked = verify(&fam, &call, selector, &before, &[got], false);
        fam.finish();
        checked.unwrap_or_else(|why| panic!("{why}"));
    });
}

/// The G1 member (kid 3), selected by each case, is killed with SIGKILL while wait_one waits:
/// a kill ends a child, so wait_one returns at once with `Signaled(pid, SIGKILL, false)`.
#[rstest]
#[case::one_pid(Pick::ChildMember)]
#[case::any_child(Pick::Any)]
#[case::given_group(Pick::G1)]
fn wait_one_is_ended_by_a_kill(#[case] pick: Pick) {
    isolated(|| {
        let mut fam = Family::standard();
        let selector = pick.selector(&fam);
        let call = format!("wait_one({})", show(selector));
        let (_, rx) = blocked_call(&mut fam, &call, selector);
        let target = 3;
        let mut before = states(&fam);
        fam.kill(target, Signal::SIGKILL);
        before[target] = Some('Z');
        let who = fam.name(fam.pid(target), Some('Z'));
        let Ok(result) = rx.recv_timeout(scaled(SETTLE)) else {
            fam.finish();
            panic!(
                "{call} stayed asleep for {:?} after {who}, although the selection covers it: a kill ends a \
                 child as surely as an exit does, and waitpid reports it as Signaled(pid, signal, core). Return \
                 that status; do not wait again for an Exited one",
                scaled(SETTLE)
            );
        };
        let got = match result.unwrap_or_else(|p| panic::resume_unwind(p)) {
            Ok(got) => got,
            Err(Errno::ECHILD) => {
                fam.finish();
                panic!(
                    "{call} failed with ECHILD after {who}: waitpid had reported the kill (Signaled) and collected \
                     the child, and the call then waited again, for a child that no longer existed: a kill ends a \
                     child as surely as an exit does. Return the Signaled status"
                );
            }
            Err(e) => panic!("{call} failed: {e}"),
        };
        let checked = verify(&fam, &call, selector, &before, &[got], false);
        fam.finish();
        checked.unwrap_or_else(|why| panic!("{why}"));
    });
}

/// Ready: a child of the own group, the G2 leader and the G1 member; still running: the G1
/// leader and another child of the own group. reap_ready collects exactly the ready ones
/// its selector covers, at once.
#[rstest]
#[case::one_ready_pid(Pick::ChildMember)]
#[case::one_running_pid(Pick::ChildLeader)]
#[case::any_child(Pick::Any)]
#[case::own_group(Pick::Own)]
#[case::group_with_a_running_leader(Pick::G1)]
#[case::group_of_one(Pick::G2)]
fn reap_ready_collects_exactly_the_ready_selected_children(#[case] pick: Pick) {
    isolated(|| {
        let mut fam = Family::standard();
        fam.release(&[0, 1, 3]);
        let selector = pick.selector(&fam);
        let checked = reap_ready_now(&mut fam, selector);
        fam.finish();
        checked.unwrap_or_else(|why| panic!("{why}"));
    });
}

/// Ended: a child of the own group and the G1 leader by exiting, the G1 member by SIGKILL; still
/// running: the G2 leader and another child of the own group. A kill is an end too: reap_ready
/// returns its Signaled status with the exits.
#[rstest]
#[case::one_killed_pid(Pick::ChildMember)]
#[case::any_child(Pick::Any)]
#[case::group_of_an_exit_and_a_kill(Pick::G1)]
fn reap_ready_returns_killed_children_too(#[case] pick: Pick) {
    isolated(|| {
        let mut fam = Family::standard();
        fam.release(&[0, 2]);
        fam.kill(3, Signal::SIGKILL);
        let selector = pick.selector(&fam);
        let checked = reap_ready_now(&mut fam, selector);
        fam.finish();
        checked.unwrap_or_else(|why| panic!("{why}"));
    });
}

/// Exited: a child of the own group; stopped by SIGSTOP: the G1 member and the other child of
/// the own group. A stop is not an end: reap_ready collects the exit only and leaves the
/// stopped children alone.
#[rstest]
#[case::one_stopped_pid(Pick::ChildMember)]
#[case::any_child(Pick::Any)]
#[case::own_group(Pick::Own)]
#[case::given_group(Pick::G1)]
fn reap_ready_leaves_stopped_children_alone(#[case] pick: Pick) {
    isolated(|| {
        let mut fam = Family::standard();
        fam.release(&[0]);
        fam.stop(3);
        fam.stop(4);
        let selector = pick.selector(&fam);
        let checked = reap_ready_now(&mut fam, selector);
        fam.finish();
        checked.unwrap_or_else(|why| panic!("{why}"));
    });
}

/// Nothing has exited: every selector returns nothing, at once.
#[test]
fn reap_ready_returns_at_once_when_nothing_is_ready() {
    isolated(|| {
        let mut fam = Family::standard();
        let mut selectors: Vec<Selector> =
            fam.kids.iter().map(|k| Selector::Child(k.pid)).collect();
        selectors.extend([
            Selector::AnyChild,
            Selector::OwnGroup,
            Selector::Group(fam.g1.expect("G1")),
            Selector::Group(fam.g2.expect("G2")),
        ]);
        for selector in selectors {
            if let Err(why) = reap_ready_now(&mut fam, selector) {
                fam.finish();
                panic!("{why}");
            }
        }
        fam.finish();
    });
}

/// No children at all: waitpid fails with ECHILD, which reap_ready reports as nothing ready.
#[test]
fn reap_ready_without_children_is_empty() {
    isolated(|| {
        for selector in [Selector::AnyChild, Selector::OwnGroup] {
            let got = student(|| reap_ready(selector));
            assert_eq!(
                got,
                Ok(Vec::new()),
                "reap_ready({}) with no children at all: waitpid fails with ECHILD, which means nothing \
                 is left to collect, so the result is an empty list",
                show(selector)
            );
        }
    });
}

/// Random families, random children ended (by an exit or a kill), a random selector.
#[test]
fn random_families() {
    isolated(|| {
        // Each child: its group, and whether it still runs (0), exits (1) or is killed (2).
        let places = prop::collection::vec((0u8..3, 0u8..3), 1..7);
        let strategy = (places, 0u8..5, any::<prop::sample::Index>());
        cases::check(24, strategy, |(kids, kind, index)| {
            let places: Vec<Where> = kids
                .iter()
                .map(|&(g, _)| [Where::Own, Where::G1, Where::G2][g as usize])
                .collect();
            let mut fam = Family::build(&places);
            let ready: Vec<usize> = (0..kids.len()).filter(|&i| kids[i].1 == 1).collect();
            fam.release(&ready);
            for i in (0..kids.len()).filter(|&i| kids[i].1 == 2) {
                fam.kill(i, Signal::SIGTERM);
            }
            let selector = match kind {
                0 => Selector::Child(fam.pid(index.index(kids.len()))),
                1 => Selector::AnyChild,
                2 => Selector::OwnGroup,
                3 => Selector::Group(fam.g1.unwrap_or(fam.own)),
                _ => Selector::Group(fam.g2.unwrap_or(fam.own)),
            };
            let checked = reap_ready_now(&mut fam, selector);
            fam.finish();
            checked.map_err(TestCaseError::fail)
        });
    });
}
