//! Cheap forgeries must not turn a failing or unfinished test into a pass: bytes written into
//! a pipe the body finds in `/proc/self/fd`, a report printed on its own stdout, the test
//! process's or the supervisor's fds opened through `/proc`, and a killed supervisor. Each
//! body below tries one, as a student who wanted to cheat cheaply could, and must not pass.
use std::fs::OpenOptions;
use std::time::Duration;

use nix::sys::signal::{Signal, kill};
use nix::unistd::getppid;
use oskata_harness::{Isolation, Report, Verdict, procfs};
use oskata_protocol as protocol;

/// Runs `body` isolated with a short deadline and returns the report.
fn report(body: impl FnOnce()) -> Report {
    Isolation::new()
        .deadline(Duration::from_secs(5))
        .report(body)
}

/// The fds of this process that are the write end of a pipe, other than stdout and stderr.
fn writable_pipes() -> Vec<i32> {
    procfs::fds(nix::unistd::getpid())
        .unwrap()
        .into_iter()
        .filter(|fd| fd.fd > 2 && fd.pipe_inode().is_some() && fd.writable())
        .map(|fd| fd.fd)
        .collect()
}

/// Writes `bytes` to fd `fd`, ignoring the outcome.
fn write_to(fd: i32, bytes: &[u8]) {
    // SAFETY: writes a buffer we own to an fd number; a bad fd only gives EBADF.
    unsafe { libc::write(fd, bytes.as_ptr().cast(), bytes.len()) };
}

#[test]
fn records_written_into_the_result_pipe_do_not_count() {
    let r = report(|| {
        let pipes = writable_pipes();
        assert!(!pipes.is_empty(), "the body should hold its result pipe");
        for fd in pipes {
            for tag in [protocol::body::PASS, "pass", "verdict"] {
                write_to(fd, &protocol::frame(tag, ""));
            }
        }
        // Leave before the real result is sent, as a forger would.
        // SAFETY: ends the body process at once.
        unsafe { libc::_exit(0) }
    });
    assert_eq!(r.verdict, Verdict::Failed, "{r:?}");
    assert!(
        r.message
            .contains("exited with status 0 in the middle of the test"),
        "{r:?}"
    );
    assert!(
        r.message
            .contains("not sealed by the harness and were ignored"),
        "{r:?}"
    );
}

#[test]
fn a_report_printed_by_the_test_does_not_count() {
    let r = report(|| {
        let mut forged = protocol::REPORT_MARK.as_bytes().to_vec();
        forged.extend(protocol::frame(protocol::report::VERDICT, "passed"));
        forged.extend(protocol::frame(protocol::report::MESSAGE, ""));
        println!("{}", String::from_utf8_lossy(&forged));
        eprintln!("{}", protocol::verdict_line(Verdict::Passed));
        panic!("the real failure");
    });
    assert_eq!(r.verdict, Verdict::Failed, "{r:?}");
    assert!(r.message.contains("the real failure"), "{r:?}");
}

#[test]
fn the_test_process_and_the_supervisor_cannot_be_written_through_proc() {
    let r = report(|| {
        let parent = std::env::var("OSKATA_ISOLATED_PARENT").unwrap();
        let supervisor = getppid().to_string();
        for pid in [parent.as_str(), supervisor.as_str()] {
            for fd in [1, 2] {
                let path = format!("/proc/{pid}/fd/{fd}");
                let opened = OpenOptions::new().write(true).open(&path);
                assert!(
                    opened.is_err(),
                    "the test could open {path} for writing: it could forge the verdict there"
                );
            }
        }
    });
    assert!(r.passed(), "{r:?}");
}

#[test]
fn the_test_holds_no_capabilities() {
    let r = report(|| {
        let status = procfs::status(nix::unistd::getpid()).unwrap();
        for key in ["CapEff", "CapPrm", "CapInh", "CapAmb"] {
            assert_eq!(status.get(key), Some("0000000000000000"), "{key}");
        }
        if nix::unistd::geteuid().is_root() {
            assert_eq!(status.get("CapBnd"), Some("0000000000000000"), "CapBnd");
        }
    });
    assert!(r.passed(), "{r:?}");
}

#[test]
fn killing_the_supervisor_is_not_a_pass() {
    let r = report(|| {
        let _ = kill(getppid(), Signal::SIGKILL);
        // The body dies with its supervisor (its parent-death signal); wait for it.
        loop {
            std::thread::sleep(Duration::from_millis(10));
        }
    });
    assert_ne!(r.verdict, Verdict::Passed, "{r:?}");
    assert!(r.message.contains("was killed by SIGKILL"), "{r:?}");
}
