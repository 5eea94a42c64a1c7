//! processes/zombies: a zombie is state `Z` in `/proc/<pid>/stat` until `waitpid` removes it;
//! the state is read after the *last* `)`, whatever name the process gave itself.
//!
//! What the tests observe: processes the test names itself with `prctl(PR_SET_NAME)` (a
//! sleeper, a zombie), confirmed by the harness's own stat parser before the student's
//! detector is asked; and the student's zombie in `/proc` while `while_zombie` runs, and its
//! absence once it is reaped.
//!
//! The contract, clause by clause, and the tests that check it:
//! - `stat_state` reads the first field after the *last* `)`:
//!   `stat_state_reads_after_the_last_paren` (names with spaces and parentheses),
//!   `stat_state_on_random_names`;
//! - `None` for what is not a stat line (no `(`, no `)` after it, nothing after the name):
//!   `stat_state_rejects_what_is_not_a_stat_line`;
//! - `is_zombie` is true for state `Z` only: `is_zombie_says_no_for_a_sleeper`,
//!   `is_zombie_says_yes_for_a_zombie` (real processes named to fool naive parsers);
//! - `is_zombie` of a pid that is gone is the read's `NotFound` error:
//!   `is_zombie_fails_for_a_reaped_pid`. (Its `InvalidData` error for a file that is not a stat
//!   line cannot be reached: the kernel writes every `/proc/<pid>/stat`.)
//! - `zombie_then_reap`: the child renames itself and exits with `code`; `while_zombie` sees
//!   it as a zombie child of the caller with that name; the status is `Exited(child, code)`; it
//!   is gone afterwards: `zombie_then_reap_shows_the_zombie_then_reaps_it`;
//! - `while_zombie` only once `is_zombie` said yes, and before the reap:
//!   `while_zombie_runs_only_once_the_child_is_a_zombie` (the child held at birth by
//!   `oskata_harness::births` until the parent is seen asleep, so no scheduler luck decides);
//! - the child, not the caller, is renamed: `zombie_then_reap_leaves_the_callers_name_alone`;
//! - the reap is `waitpid` on that child, no other: `zombie_then_reap_leaves_an_earlier_child_
//!   of_the_caller_alone` (a zombie of the test's own that any `wait()` would take);
//! - if `is_zombie` fails, the child is still reaped and the error returned:
//!   `zombie_then_reap_reaps_the_child_when_is_zombie_fails` (a full fd table: every read of
//!   `/proc` fails with `EMFILE`).

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
#[case("4242 sleep) S 1 2 3")]
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

/// The caller's children, for messages.
fn children_table() -> String {
    let me = body_pid().expect("inside isolated()");
    oskata_harness::evidence::process_table(&procfs::children(me))
}

/// An earlier child of the caller that has exited and that the caller means to reap itself: a
/// zombie that any `wait()` would take. zombie_then_reap must leave it alone.
#[test]
fn zombie_then_reap_leaves_an_earlier_child_of_the_caller_alone() {
    isolated(|| {
        let mine = Named::spawn("mine", true);
        let status = student(|| zombie_then_reap("zombie", 5, |_| {}))
            .unwrap_or_else(|e| panic!("zombie_then_reap failed: {e}"));
        let state = procfs::state(mine.pid);
        assert_eq!(
            state,
            Some('Z'),
            "zombie_then_reap reaped pid {}, a child it did not create: the test forked it earlier and meant to \
             reap it itself. Its status is gone now ({status:?} was returned). wait() and waitpid(-1) take any \
             child; reap the one you forked with waitpid(child).\n{}",
            mine.pid,
            children_table()
        );
        let got = status.pid();
        mine.finish();
        assert!(
            got.is_some() && got != Some(Pid::from_raw(0)),
            "zombie_then_reap returned {status:?}: the status of the child it forked"
        );
        let me = body_pid().expect("inside isolated()");
        assert!(
            procfs::children(me).is_empty(),
            "zombie_then_reap left a child behind:\n{}",
            children_table()
        );
    });
}

/// The caller's own name is not the child's: the child renames itself after the fork.
#[test]
fn zombie_then_reap_leaves_the_callers_name_alone() {
    isolated(|| {
        let ours = CString::new("zombie-caller").expect("no NUL");
        prctl::set_name(&ours).expect("name the test process");
        let me = body_pid().expect("inside isolated()");
        let mut child_name = None;
        student(|| {
            zombie_then_reap("renamed", 0, |child| {
                child_name = procfs::stat(child).ok().map(|s| s.comm);
            })
        })
        .unwrap_or_else(|e| panic!("zombie_then_reap failed: {e}"));
        let now = procfs::stat(me).expect("read the caller's stat").comm;
        assert_eq!(
            now, "zombie-caller",
            "zombie_then_reap renamed the caller (pid {me}) to {now:?}: prctl(PR_SET_NAME) names the calling \
             process, so only the child may call it, after the fork"
        );
        assert_eq!(
            child_name.as_deref(),
            Some("renamed"),
            "the zombie should be named \"renamed\": the child calls prctl(PR_SET_NAME) before it exits"
        );
    });
}

/// The fd limit the test lowers, restored on drop (also when the test panics).
struct NoFiles {
    soft: u64,
    hard: u64,
    dups: Vec<OwnedFd>,
}

impl NoFiles {
    /// Fills fds 0-2 where they are free and lowers the soft RLIMIT_NOFILE to 3: from now on
    /// no open(2) can succeed, so every read of /proc fails with EMFILE.
    fn take() -> NoFiles {
        use nix::sys::resource::{Resource, getrlimit, setrlimit};
        let (soft, hard) = getrlimit(Resource::RLIMIT_NOFILE).expect("getrlimit");
        let mut dups = Vec::new();
        let open_fds: Vec<i32> = procfs::fds(Pid::this())
            .expect("read the fd table")
            .iter()
            .map(|f| f.fd)
            .collect();
        for fd in 0..3 {
            if !open_fds.contains(&fd) {
                let null = std::fs::File::open("/dev/null").expect("open /dev/null");
                dups.push(OwnedFd::from(null));
            }
        }
        setrlimit(Resource::RLIMIT_NOFILE, 3, hard).expect("lower RLIMIT_NOFILE");
        NoFiles { soft, hard, dups }
    }

    fn give_back(&self) {
        use nix::sys::resource::{Resource, setrlimit};
        let _ = setrlimit(Resource::RLIMIT_NOFILE, self.soft, self.hard);
    }
}

impl Drop for NoFiles {
    fn drop(&mut self) {
        self.give_back();
        self.dups.clear();
    }
}

/// If is_zombie fails, the child is still reaped before the error is returned. The test fills
/// the fd table (`RLIMIT_NOFILE` 3, fds 0-2 open), so reading `/proc/<child>/stat` fails with
/// EMFILE whatever the child's state: is_zombie can only fail. A zombie_then_reap that keeps
/// asking is let go after 3 s (a thread of the test then lifts the limit) and named.
#[test]
fn zombie_then_reap_reaps_the_child_when_is_zombie_fails() {
    isolated(|| {
        use std::sync::mpsc;
        let me = body_pid().expect("inside isolated()");
        let (done_tx, done_rx) = mpsc::channel::<()>();
        let limit = NoFiles::take();
        let (soft, hard) = (limit.soft, limit.hard);
        let rescue = std::thread::spawn(move || {
            let patience = oskata_harness::scaled(Duration::from_secs(3));
            if done_rx.recv_timeout(patience).is_err() {
                use nix::sys::resource::{Resource, setrlimit};
                let _ = setrlimit(Resource::RLIMIT_NOFILE, soft, hard);
                return true;
            }
            false
        });
        let mut watched = false;
        let got = student(|| zombie_then_reap("no-files", 9, |_| watched = true));
        limit.give_back();
        let _ = done_tx.send(());
        let lifted = rescue.join().expect("the rescue thread");
        drop(limit);
        let left = procfs::children(me);
        let table = children_table();
        for k in &left {
            let _ = waitpid(Pid::from_raw(k.pid), None);
        }
        if !left.is_empty() {
            panic!(
                "is_zombie failed (the test had filled the fd table, so /proc/<child>/stat could not be opened: \
                 EMFILE), and zombie_then_reap returned {got:?} without reaping its child: if is_zombie fails, \
                 the child must still be reaped with waitpid before the error is returned, or it stays a zombie \
                 for good.\n{table}"
            );
        }
        if let Ok(status) = got {
            panic!(
                "zombie_then_reap returned Ok({status:?}), but is_zombie could only fail here (the test had filled \
                 the fd table, so /proc/<child>/stat could not be opened: EMFILE){}. When is_zombie fails, return \
                 its error (after reaping the child), instead of trying again{}.",
                if lifted {
                    "; it went on asking until the test lifted the limit after 3 s"
                } else {
                    ""
                },
                if watched {
                    "; and call while_zombie only once is_zombie has said yes"
                } else {
                    ""
                }
            );
        }
    });
}

/// while_zombie runs only once the child is a zombie: the parent checks is_zombie until it says
/// yes. The child is held at birth (`oskata_harness::births`: stopped, `t` in `/proc`, before
/// it runs any code) until the parent is seen asleep (between its checks, or in a wait), so a
/// zombie_then_reap that calls while_zombie without checking finds a child that has not even
/// run, on every run, whatever the scheduler does.
#[test]
fn while_zombie_runs_only_once_the_child_is_a_zombie() {
    isolated(|| {
        let me = body_pid().expect("inside isolated()");
        let asleep = || {
            procfs::stat(me).is_ok_and(|s| s.state == 'S')
                && procfs::syscall(me).is_some_and(|c| {
                    ![
                        libc::SYS_clone,
                        libc::SYS_clone3,
                        libc::SYS_fork,
                        libc::SYS_vfork,
                    ]
                    .contains(&c.nr)
                })
        };
        let mut looks = 0;
        let hold = oskata_harness::births::hold_new_children(move || {
            looks = if asleep() { looks + 1 } else { 0 };
            looks >= 3
        });
        let hold = match hold {
            Ok(hold) => Some(hold),
            Err(why) => {
                eprintln!("note: the test cannot hold new children here ({why}); they run freely");
                None
            }
        };
        let mut seen = None;
        let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            student(|| {
                zombie_then_reap("held", 3, |child| {
                    seen = Some(procfs::stat(child).ok());
                })
            })
        }));
        drop(hold);
        let got = outcome.unwrap_or_else(|p| std::panic::resume_unwind(p));
        let status = got.unwrap_or_else(|e| panic!("zombie_then_reap failed: {e}"));
        let Some(stat) = seen else {
            panic!("zombie_then_reap never called while_zombie")
        };
        match stat {
            Some(s) if s.state == 'Z' => {}
            Some(s) => panic!(
                "pid {} is {} when while_zombie ran, not yet a zombie: the parent should wait until is_zombie says \
                 yes{}. A child is a zombie only once it has exited; call is_zombie in a loop (sleeping a \
                 millisecond between checks) before while_zombie.",
                s.pid,
                state_word(s.state),
                if s.state == 't' {
                    " (the test held the child at birth, so it had not even run: state t, until the parent was seen \
                     asleep)"
                } else {
                    ""
                }
            ),
            None => panic!(
                "the child ({status:?}) is already gone from /proc when while_zombie ran: it was reaped too early; \
                 call waitpid after while_zombie"
            ),
        }
    });
}
