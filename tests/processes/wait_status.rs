//! processes/wait_status: decode a raw wait status, checked against statuses built the way
//! the kernel encodes them (proptest) and against the raw statuses `waitpid(2)` returns for
//! real children that exit, abort, are killed, stopped and continued. The expected answer
//! for a real child always comes from the raw status itself (libc's W* macros), never from
//! what the test assumes the kernel did: the core-dump flag in particular depends on the
//! machine.
//!
//! The contract, clause by clause, and the tests that check it:
//! - an exit gives its code, 0 to 255: `exit_codes`, `real_children_that_exit`;
//! - a kill gives the signal, 1 to 64, and the core-dump flag apart from it:
//!   `killing_signals_with_and_without_core`, `real_children_killed_by_a_signal` (real-time
//!   signal 40 included), `real_child_that_aborts`;
//! - a stop gives the stop signal: `stopping_signals`, `real_child_stopped_continued_and_killed`
//!   (SIGSTOP, SIGTSTP, SIGTTIN, SIGTTOU);
//! - a traced child's stop at a ptrace event (bits 16-23) gives the stop signal alone:
//!   `ptrace_event_stops`, `real_traced_child_stops_at_a_ptrace_event`;
//! - a continue is `Continued`: `continued`, `real_child_stopped_continued_and_killed`.

// The exercise under test: your stub (by default), the reference solution (`--features
// solutions`), or a shipped mistake that `cargo grade --mistakes` copies into target/.
#[cfg(not(any(feature = "solutions", feature = "mistake")))]
#[path = "../../exercises/processes/wait_status.rs"]
#[allow(dead_code)] // a stub does not use all of its API yet
mod wait_status;
#[cfg(all(feature = "solutions", not(feature = "mistake")))]
#[path = "../../solutions/processes/wait_status.rs"]
mod wait_status;
#[cfg(feature = "mistake")]
#[path = "../../target/oskata-mistake/processes/wait_status.rs"]
#[rustfmt::skip] // the copy exists only while the proof runs
mod wait_status;
use wait_status::*;

use std::ptr;

use nix::sys::signal::{Signal, kill};
use nix::unistd::{ForkResult, Pid, fork, pause, setpgid};
use oskata_harness::{cases, isolated, student};
use proptest::prelude::*;
use proptest::test_runner::TestCaseError;
use rstest::rstest;

/// What the libc macros, applied to `raw`, say happened: the reference answer.
fn oracle(raw: i32) -> Decoded {
    if libc::WIFCONTINUED(raw) {
        Decoded::Continued
    } else if libc::WIFEXITED(raw) {
        Decoded::Exited {
            code: libc::WEXITSTATUS(raw) as u8,
        }
    } else if libc::WIFSIGNALED(raw) {
        Decoded::Signaled {
            signal: libc::WTERMSIG(raw),
            core_dumped: libc::WCOREDUMP(raw),
        }
    } else if libc::WIFSTOPPED(raw) {
        Decoded::Stopped {
            signal: libc::WSTOPSIG(raw),
        }
    } else {
        panic!("raw status {raw:#06x} is none of the four kinds: a bug in the test")
    }
}

/// How the bits of `raw` read, row by row, in words.
fn explain(raw: i32) -> String {
    let low7 = raw & 0x7f;
    match oracle(raw) {
        Decoded::Continued => format!(
            "raw status {raw:#06x} is the one value that means continued (WIFCONTINUED): the kernel reports a \
             child resumed by SIGCONT as exactly 0xffff. Its low byte is 0xff, not 0x7f, so it is not a stop"
        ),
        Decoded::Exited { code } => format!(
            "raw status {raw:#06x}: the low 7 bits are 0, so the child exited by itself (WIFEXITED); its exit \
             code is bits 8-15 (WEXITSTATUS) = {code}"
        ),
        Decoded::Signaled {
            signal,
            core_dumped,
        } => format!(
            "raw status {raw:#06x}: the low 7 bits are {low7}, neither 0 nor 0x7f, so signal {signal} killed the \
             child (WIFSIGNALED, WTERMSIG); bit 7 (0x80) is the core-dump flag (WCOREDUMP), here {}, and not part \
             of the signal number. There is no exit code: bits 8-15 mean one only when the low 7 bits are 0",
            u8::from(core_dumped)
        ),
        Decoded::Stopped { signal } => format!(
            "raw status {raw:#06x}: the low byte is exactly 0x7f, so the child is stopped (WIFSTOPPED) and bits \
             8-15 are the signal that stopped it (WSTOPSIG) = {signal}{}",
            if raw >> 16 != 0 {
                format!(
                    "; bits 16-23 ({}) are the ptrace event of a traced child's stop, not part of the signal",
                    raw >> 16
                )
            } else {
                String::new()
            }
        ),
    }
}

/// A sentence naming the classic mistake that turns `expected` into `got`, if one fits.
fn diagnose(expected: Decoded, got: Decoded) -> &'static str {
    use Decoded::*;
    match (expected, got) {
        (Signaled { .. }, Exited { .. }) => {
            "\nIt read an exit code from a child that a signal killed: ask WIFEXITED (low 7 bits 0) before \
             reading WEXITSTATUS."
        }
        (Exited { .. }, Signaled { .. }) => {
            "\nIt took a child that exited for one a signal killed: WIFEXITED and WIFSIGNALED are mixed up. The \
             exit code lives in bits 8-15, the killing signal in bits 0-6."
        }
        (Signaled { signal: s, .. }, Signaled { signal: g, .. }) if g == s | 0x80 => {
            "\nThe core-dump flag is not part of the signal number: WTERMSIG is the low 7 bits (status & 0x7f)."
        }
        (Signaled { .. }, Signaled { .. }) => {
            "\nThe signal number is bits 0-6 and the core-dump flag is bit 7 (0x80)."
        }
        (Stopped { .. }, Signaled { signal: 127, .. }) => {
            "\nIt took a stopped child for one killed by signal 127, and there is no signal 127: 0x7f in the low 7 \
             bits is not a signal number but the mark of a stop. Test for a stop (the whole low byte is 0x7f, \
             WIFSTOPPED) before taking nonzero low 7 bits for the killing signal: WIFSIGNALED is true only when \
             they are neither 0 nor 0x7f."
        }
        (Stopped { signal: s }, Stopped { signal: g }) if g != s && g & 0xff == s => {
            "\nBits 16-23 of a traced child's stop hold a ptrace event (PTRACE_EVENT_*), which is not part of \
             the signal: WSTOPSIG is bits 8-15 only, (status >> 8) & 0xff."
        }
        (Continued, Stopped { .. }) => {
            "\n0xffff is the one value that means continued: test for it before testing for a stop (a stop has \
             exactly 0x7f in the whole low byte, not just in the low 7 bits)."
        }
        _ => "",
    }
}

/// Runs the student's decode on `raw` and compares with the reference answer.
fn check(raw: i32, what: &str) -> Result<(), String> {
    let expected = oracle(raw);
    let got = student(|| decode(raw));
    if got == expected {
        return Ok(());
    }
    Err(format!(
        "{what}: decode({raw:#06x}) returned {got:?}, expected {expected:?}.\n{}.{}",
        explain(raw),
        diagnose(expected, got)
    ))
}

fn check_or_panic(raw: i32, what: &str) {
    if let Err(why) = check(raw, what) {
        panic!("{why}");
    }
}

/// The statuses the kernel builds (see wait_task_zombie and wait_task_stopped in
/// kernel/exit.c): `(code & 0xff) << 8`, `sig | 0x80 if core`, `sig << 8 | 0x7f`, `0xffff`.
fn exited(code: u8) -> i32 {
    i32::from(code) << 8
}
fn signaled(signal: i32, core: bool) -> i32 {
    signal | if core { 0x80 } else { 0 }
}
fn stopped(signal: i32) -> i32 {
    (signal << 8) | 0x7f
}
const CONTINUED: i32 = 0xffff;
/// A traced child's stop at a ptrace event (see ptrace_event in kernel/ptrace.c and
/// ptrace(2), "PTRACE_EVENT stops"): the event in bits 16-23 above an ordinary stop.
fn event_stop(event: i32, signal: i32) -> i32 {
    (event << 16) | stopped(signal)
}

#[test]
fn exit_codes() {
    isolated(|| {
        cases::check(256, any::<u8>(), |code| {
            let raw = exited(code);
            assert_eq!(oracle(raw), Decoded::Exited { code });
            check(raw, &format!("a child that exited with code {code}"))
                .map_err(TestCaseError::fail)
        });
    });
}

#[test]
fn killing_signals_with_and_without_core() {
    isolated(|| {
        cases::check(256, (1i32..=64, any::<bool>()), |(signal, core)| {
            let raw = signaled(signal, core);
            assert_eq!(
                oracle(raw),
                Decoded::Signaled {
                    signal,
                    core_dumped: core
                }
            );
            let what = format!(
                "a child killed by signal {signal}{}",
                if core { " that dumped core" } else { "" }
            );
            check(raw, &what).map_err(TestCaseError::fail)
        });
    });
}

#[test]
fn stopping_signals() {
    isolated(|| {
        cases::check(128, 1i32..=64, |signal| {
            let raw = stopped(signal);
            assert_eq!(oracle(raw), Decoded::Stopped { signal });
            check(raw, &format!("a child stopped by signal {signal}")).map_err(TestCaseError::fail)
        });
    });
}

#[test]
fn ptrace_event_stops() {
    isolated(|| {
        // PTRACE_EVENT_FORK (1) to PTRACE_EVENT_SECCOMP (7), and PTRACE_EVENT_STOP (128).
        let events = prop::sample::select(vec![1, 2, 3, 4, 5, 6, 7, 128]);
        cases::check(128, (events, 1i32..=64), |(event, signal)| {
            let raw = event_stop(event, signal);
            assert_eq!(oracle(raw), Decoded::Stopped { signal });
            check(
                raw,
                &format!("a traced child stopped by signal {signal} at ptrace event {event}"),
            )
            .map_err(TestCaseError::fail)
        });
    });
}

#[test]
fn continued() {
    isolated(|| {
        assert_eq!(oracle(CONTINUED), Decoded::Continued);
        check_or_panic(CONTINUED, "a child resumed by SIGCONT");
    });
}

/// Forks a child that runs `child` (which must not return) and gives its pid.
fn spawn(child: impl FnOnce()) -> Pid {
    // SAFETY: the test process is single-threaded; the child runs `child`, then _exit.
    match unsafe { fork() }.expect("fork") {
        ForkResult::Child => {
            child();
            // SAFETY: _exit ends the child without running the test's code.
            unsafe { libc::_exit(100) }
        }
        ForkResult::Parent { child } => child,
    }
}

/// A child that sleeps in pause() until a signal ends it.
fn spawn_sleeper() -> Pid {
    spawn(|| {
        loop {
            pause();
        }
    })
}

/// The raw status `waitpid(pid, &status, flags)` stores.
fn raw_wait(pid: Pid, flags: i32) -> i32 {
    let mut raw = 0;
    // SAFETY: waitpid with a valid pointer to an int.
    let got = unsafe { libc::waitpid(pid.as_raw(), &mut raw, flags) };
    assert_eq!(
        got,
        pid.as_raw(),
        "waitpid({pid}) failed: {}",
        std::io::Error::last_os_error()
    );
    raw
}

#[test]
fn real_children_that_exit() {
    isolated(|| {
        for code in 0..=255u8 {
            let child = spawn(move || {
                // SAFETY: _exit ends the child with the code under test.
                unsafe { libc::_exit(code.into()) }
            });
            let raw = raw_wait(child, 0);
            check_or_panic(
                raw,
                &format!("pid {child} called _exit({code}) and waitpid reported it"),
            );
        }
    });
}

#[rstest]
#[case::sighup(libc::SIGHUP)]
#[case::sigint(libc::SIGINT)]
#[case::sigquit(libc::SIGQUIT)]
#[case::sigkill(libc::SIGKILL)]
#[case::sigsegv(libc::SIGSEGV)]
#[case::sigterm(libc::SIGTERM)]
#[case::sigusr1(libc::SIGUSR1)]
#[case::realtime(40)]
fn real_children_killed_by_a_signal(#[case] signal: i32) {
    isolated(|| {
        let child = spawn_sleeper();
        // SAFETY: kill(2) of our own child.
        assert_eq!(unsafe { libc::kill(child.as_raw(), signal) }, 0, "kill");
        let raw = raw_wait(child, 0);
        assert!(
            libc::WIFSIGNALED(raw) && libc::WTERMSIG(raw) == signal,
            "the kernel reported {raw:#06x} for a child sent signal {signal}"
        );
        check_or_panic(
            raw,
            &format!("pid {child} was sent signal {signal} and waitpid reported it"),
        );
    });
}

#[test]
fn real_child_that_aborts() {
    isolated(|| {
        // abort() raises SIGABRT, whose default action is to dump core. Whether a core file
        // is written (and bit 7 set) depends on RLIMIT_CORE and core_pattern: the raw status
        // says, so the test reads the flag from it instead of assuming.
        let child = spawn(|| std::process::abort());
        let raw = raw_wait(child, 0);
        check_or_panic(
            raw,
            &format!("pid {child} called abort() and waitpid reported it"),
        );
    });
}

/// `ptrace(2)` on this child is allowed: it asks for it itself (PTRACE_TRACEME), and the test
/// process, its parent, traces it. Where a security policy forbids that, the child says so
/// with the exit code [`NO_PTRACE`] and the test checks that exit alone.
#[test]
fn real_traced_child_stops_at_a_ptrace_event() {
    isolated(|| {
        let child = spawn(|| {
            // SAFETY: PTRACE_TRACEME takes no pointers; raise(3) and _exit are
            // async-signal-safe.
            unsafe {
                if libc::ptrace(
                    libc::PTRACE_TRACEME,
                    0,
                    ptr::null_mut::<libc::c_void>(),
                    ptr::null_mut::<libc::c_void>(),
                ) != 0
                {
                    libc::_exit(NO_PTRACE);
                }
                libc::raise(libc::SIGSTOP);
                libc::_exit(5)
            }
        });
        // A tracee's stops are reported without WUNTRACED.
        let raw = raw_wait(child, 0);
        check_or_panic(
            raw,
            &format!("pid {child}, traced, stopped itself with SIGSTOP and waitpid reported it"),
        );
        if libc::WIFEXITED(raw) {
            return;
        }
        let options = (libc::PTRACE_O_TRACEEXIT | libc::PTRACE_O_EXITKILL) as usize;
        // SAFETY: PTRACE_SETOPTIONS and PTRACE_CONT on our stopped tracee; no pointers are
        // dereferenced (the options and the signal travel in the data argument).
        unsafe {
            assert_eq!(
                libc::ptrace(
                    libc::PTRACE_SETOPTIONS,
                    child.as_raw(),
                    ptr::null_mut::<libc::c_void>(),
                    options as *mut libc::c_void
                ),
                0,
                "PTRACE_SETOPTIONS"
            );
            assert_eq!(
                libc::ptrace(
                    libc::PTRACE_CONT,
                    child.as_raw(),
                    ptr::null_mut::<libc::c_void>(),
                    ptr::null_mut::<libc::c_void>()
                ),
                0,
                "PTRACE_CONT"
            );
        }
        let raw = raw_wait(child, 0);
        assert_eq!(
            raw >> 16,
            libc::PTRACE_EVENT_EXIT,
            "the kernel reported {raw:#x} for a tracee stopping at its exit (PTRACE_O_TRACEEXIT)"
        );
        check_or_panic(
            raw,
            &format!(
                "pid {child}, traced with PTRACE_O_TRACEEXIT, stopped on its way out and waitpid reported it"
            ),
        );
        // SAFETY: as above.
        unsafe {
            assert_eq!(
                libc::ptrace(
                    libc::PTRACE_CONT,
                    child.as_raw(),
                    ptr::null_mut::<libc::c_void>(),
                    ptr::null_mut::<libc::c_void>()
                ),
                0,
                "PTRACE_CONT"
            );
        }
        let raw = raw_wait(child, 0);
        check_or_panic(
            raw,
            &format!("pid {child} then exited with 5 and waitpid reported it"),
        );
    });
}

/// The exit code of a child that was not allowed to be traced.
const NO_PTRACE: i32 = 99;

#[rstest]
#[case::sigstop(Signal::SIGSTOP)]
#[case::sigtstp(Signal::SIGTSTP)]
#[case::sigttin(Signal::SIGTTIN)]
#[case::sigttou(Signal::SIGTTOU)]
fn real_child_stopped_continued_and_killed(#[case] stop: Signal) {
    isolated(|| {
        let child = spawn_sleeper();
        // A group of its own: the kernel discards SIGTSTP, SIGTTIN and SIGTTOU sent to an
        // orphaned process group, and the test's own group is one (its parent is in another
        // session). The child's group has a parent (the test) in the same session.
        setpgid(child, child).expect("setpgid");
        kill(child, stop).expect("kill");
        let raw = raw_wait(child, libc::WUNTRACED);
        check_or_panic(
            raw,
            &format!("pid {child} was stopped by {stop} and waitpid(WUNTRACED) reported it"),
        );
        kill(child, Signal::SIGCONT).expect("kill");
        let raw = raw_wait(child, libc::WCONTINUED);
        check_or_panic(
            raw,
            &format!("pid {child} was resumed by SIGCONT and waitpid(WCONTINUED) reported it"),
        );
        kill(child, Signal::SIGKILL).expect("kill");
        let raw = raw_wait(child, 0);
        check_or_panic(
            raw,
            &format!("pid {child} was then killed by SIGKILL and waitpid reported it"),
        );
    });
}
