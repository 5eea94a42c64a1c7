//! processes/zombies: a zombie is state `Z` in `/proc/<pid>/stat` until `waitpid` removes it;
//! the state is read after the *last* `)`, whatever name the process gave itself.
//!
//! What the tests observe: processes the test names itself with `prctl(PR_SET_NAME)` (a
//! sleeper, a zombie), confirmed by the harness's own stat parser before the student's
//! detector is asked; and the student's zombie in `/proc` while `while_zombie` runs, and its
//! absence once it is reaped.

// The exercise under test: your stub (by default), the reference solution (`--features
// solutions`), or a shipped mistake that `cargo grade --mistakes` copies into target/.
#[cfg(not(any(feature = "solutions", feature = "mistake")))]
#[path = "../../exercises/processes/zombies.rs"]
#[allow(dead_code)] // a stub does not use all of its API yet
mod zombies;
#[cfg(all(feature = "solutions", not(feature = "mistake")))]
#[path = "../../solutions/processes/zombies.rs"]
mod zombies;
#[cfg(feature = "mistake")]
#[path = "../../target/oskata-mistake/processes/zombies.rs"]
#[rustfmt::skip] // the copy exists only while the proof runs
mod zombies;
use zombies::*;

use std::ffi::CString;
use std::io;
use std::os::fd::OwnedFd;
use std::time::Duration;

use nix::sys::prctl;
use nix::sys::wait::{WaitStatus, waitpid};
use nix::unistd::{ForkResult, Pid, fork, pipe, read};
use oskata_harness::evidence::state_word;
use oskata_harness::{body_pid, cases, isolated, poll, procfs, student};
use proptest::test_runner::TestCaseError;
use rstest::rstest;

/// The fields after the state in a real stat line (ppid, pgrp, session, tty, ...).
const TAIL: &str = "4200 4242 4200 0 -1 4194560 97 0 0 0 0 0 0 0 20 0 1 0 123456 2502656 220";

/// What goes wrong with a name like `name`, and the one sound way to parse.
fn lesson(name: &str) -> String {
    let mut why = format!(
        "The command name (field 2, in parentheses) is `{name}`: a process picks it with prctl(PR_SET_NAME), and \
         it may contain spaces, `(` and `)`."
    );
    if name.contains(char::is_whitespace) {
        why.push_str(" Splitting the line on spaces breaks that name into several fields.");
    }
    if name.contains(')') {
        why.push_str(" Cutting the line at the first `)` ends the name too early.");
    }
    why.push_str(
        " The name ends at the last `)` of the line; the state is the first field after it.",
    );
    why
}

/// Checks `stat_state` on a stat line built from `name` and `state`.
fn check_line(name: &str, state: char) -> Result<(), String> {
    let line = format!("4242 ({name}) {state} {TAIL}\n");
    let got = student(|| stat_state(&line));
    if got == Some(state) {
        Ok(())
    } else {
        Err(format!(
            "stat_state({line:?}) returned {got:?}, but the state is {state:?}. {}",
            lesson(name)
        ))
    }
}

#[rstest]
#[case("sleep", 'S')]
#[case("a) Z (b", 'S')]
#[case("x R y", 'Z')]
#[case(")", 'R')]
#[case("((", 'D')]
#[case(") Z ) Z", 'T')]
#[case("", 'Z')]
fn stat_state_reads_after_the_last_paren(#[case] name: &str, #[case] state: char) {
    isolated(|| check_line(name, state).unwrap_or_else(|why| panic!("{why}")));
}

#[test]
fn stat_state_on_random_names() {
    isolated(|| {
        let name = proptest::string::string_regex("[a-zA-Z0-9 ()]{0,15}").expect("regex");
        let state = proptest::sample::select(vec!['R', 'S', 'D', 'Z', 'T', 't', 'X', 'I']);
        cases::check(64, (name, state), |(name, state)| {
            check_line(&name, state).map_err(TestCaseError::fail)
        });
    });
}

#[rstest]
#[case("")]
#[case("4242 sleep S 1 2 3")]
#[case("4242 (sleep)")]
#[case("4242 (sleep)   \n")]
#[case(") x (")]
#[case("4242 ) S (sleep")]
fn stat_state_rejects_what_is_not_a_stat_line(#[case] text: &str) {
    isolated(|| {
        let got = student(|| stat_state(text));
        assert_eq!(
            got, None,
            "stat_state({text:?}) should be None: that text has no `(name)` followed by a state (the name starts \
             at the first `(` and ends at the last `)`, which must come after it)"
        );
    });
}

/// A child of the test that named itself; `hold` keeps a sleeper asleep until dropped.
struct Named {
    pid: Pid,
    hold: Option<OwnedFd>,
}

impl Named {
    /// Forks a child that renames itself to `name`, then exits (`zombie`) or sleeps in
    /// `read(2)` until the test lets it go; returns once `/proc` shows it named and in state
    /// `Z` or `S`.
    fn spawn(name: &str, zombie: bool) -> Named {
        let cname = CString::new(name).expect("no NUL in the name");
        let (read_end, write_end): (OwnedFd, OwnedFd) = pipe().expect("pipe");
        // SAFETY: the test process is single-threaded; the child renames itself, maybe
        // reads a pipe, and calls _exit.
        let pid = match unsafe { fork() }.expect("fork") {
            ForkResult::Child => {
                drop(write_end);
                let _ = prctl::set_name(&cname);
                if !zombie {
                    let _ = read(&read_end, &mut [0u8; 1]);
                }
                // SAFETY: _exit ends the child at once.
                unsafe { libc::_exit(0) }
            }
            ForkResult::Parent { child } => child,
        };
        drop(read_end);
        let want = if zombie { 'Z' } else { 'S' };
        poll::until_seen(
            Duration::from_secs(5),
            &format!("the test's child {pid} to be named {name:?} in state {want}"),
            || procfs::stat(pid).ok(),
            |s| {
                s.as_ref()
                    .is_some_and(|s| s.comm == name && s.state == want)
            },
        );
        Named {
            pid,
            hold: (!zombie).then_some(write_end),
        }
    }

    /// Lets the child go (if asleep) and reaps it.
    fn finish(mut self) {
        drop(self.hold.take());
        waitpid(self.pid, None).expect("the test reaps its own child");
    }
}

/// The start of `pid`'s stat line as the kernel shows it (up to the session), for messages.
fn stat_line(pid: Pid) -> String {
    let text = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let Some(close) = text.rfind(')') else {
        return text.trim_end().to_owned();
    };
    let fields: Vec<&str> = text[close + 1..].split_whitespace().take(4).collect();
    format!("{} {} ...", &text[..=close], fields.join(" "))
}

#[rstest]
#[case("sleeper")]
#[case("a) Z (b")]
#[case("Z) Z Z")]
#[case(") Z")]
fn is_zombie_says_no_for_a_sleeper(#[case] name: &str) {
    isolated(|| {
        let named = Named::spawn(name, false);
        let pid = named.pid;
        let line = stat_line(pid);
        let got = student(|| is_zombie(pid));
        named.finish();
        match got {
            Ok(false) => {}
            Ok(true) => panic!(
                "pid {pid} is asleep in read(2) (state S), but is_zombie said it is a zombie. Its stat line is \
                 `{line}`. {}",
                lesson(name)
            ),
            Err(e) => panic!(
                "is_zombie({pid}) failed ({e}) on a live process whose stat line is `{line}`. {}",
                lesson(name)
            ),
        }
    });
}

#[rstest]
#[case("zombie")]
#[case("a) R (b")]
#[case("x R y")]
#[case("(S)")]
fn is_zombie_says_yes_for_a_zombie(#[case] name: &str) {
    isolated(|| {
        let named = Named::spawn(name, true);
        let pid = named.pid;
        let line = stat_line(pid);
        let got = student(|| is_zombie(pid));
        named.finish();
        match got {
            Ok(true) => {}
            Ok(false) => panic!(
                "pid {pid} has exited and nobody has reaped it yet, so it is a zombie (state Z), but is_zombie said \
                 no. Its stat line is `{line}`. {}",
                lesson(name)
            ),
            Err(e) => panic!(
                "is_zombie({pid}) failed ({e}) on a zombie whose stat line is `{line}`. {}",
                lesson(name)
            ),
        }
    });
}

#[test]
fn is_zombie_fails_for_a_reaped_pid() {
    isolated(|| {
        let named = Named::spawn("reaped", true);
        let pid = named.pid;
        named.finish();
        let got = student(|| is_zombie(pid));
        match got {
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            other => panic!(
                "pid {pid} was reaped, so /proc/{pid} no longer exists: a reaped zombie is gone, not a process in \
                 some state. is_zombie should return the NotFound error from reading /proc/{pid}/stat; it returned \
                 {other:?}"
            ),
        }
    });
}

#[rstest]
#[case("zombie", 0)]
#[case("a) Z (b", 42)]
#[case("reap-me", 255)]
fn zombie_then_reap_shows_the_zombie_then_reaps_it(#[case] name: &str, #[case] code: u8) {
    isolated(|| {
        let me = body_pid().expect("inside isolated()");
        let mut seen = None;
        let status = student(|| {
            zombie_then_reap(name, code, |child| {
                let stat = procfs::stat(child).unwrap_or_else(|_| {
                    panic!(
                        "pid {child} is already gone from /proc when while_zombie ran: it was reaped too early. A \
                         zombie exists only between the child's exit and the parent's waitpid, so call waitpid \
                         after while_zombie, not before"
                    )
                });
                assert_eq!(
                    stat.state,
                    'Z',
                    "pid {child} is {} when while_zombie ran, not yet a zombie: the parent should wait until \
                     is_zombie says yes (stat line `{}`)",
                    state_word(stat.state),
                    stat_line(child)
                );
                assert_eq!(
                    stat.ppid,
                    me.as_raw(),
                    "the zombie {child} should be a child of the caller {me}: {stat:?}"
                );
                assert_eq!(
                    stat.comm, name,
                    "the zombie {child} is named {:?}, not {name:?}: the child should rename itself with \
                     prctl(PR_SET_NAME) before it exits",
                    stat.comm
                );
                seen = Some(child);
            })
        })
        .unwrap_or_else(|e| panic!("zombie_then_reap({name:?}, {code}) failed: {e}"));
        let child = seen.unwrap_or_else(|| panic!("zombie_then_reap never called while_zombie"));
        assert_eq!(
            status,
            WaitStatus::Exited(child, code.into()),
            "waitpid should report that pid {child} exited with code {code}"
        );
        if let Some(state) = procfs::state(child) {
            panic!(
                "pid {child} is still in /proc ({}) after zombie_then_reap returned: it exited but nobody called \
                 waitpid on it",
                state_word(state)
            );
        }
    });
}
