//! Reads one test's output and exit into a status and a message. The verdict words, the
//! verdict line and "not started" come from `oskata-protocol`, as the harness writes them.
use oskata_protocol::{is_not_started, parse_verdict_line};

/// The status of one test: the harness's [`oskata_protocol::Verdict`], also for tests the
/// harness never reached (a crash, the grader's own deadline).
pub use oskata_protocol::Verdict as TestStatus;

/// Serializes a status as its stable word (`not_started`), for the JSON documents.
pub fn serialize_status<S: serde::Serializer>(
    status: &TestStatus,
    s: S,
) -> Result<S::Ok, S::Error> {
    s.serialize_str(status.word())
}

/// How a test process ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ending {
    /// It exited with this code.
    Exited(i32),
    /// It was killed by this signal (not by the grader).
    Signaled(i32),
    /// The grader killed it at its deadline of this many seconds.
    Deadline(u64),
    /// The grader was interrupted and killed it.
    Interrupted,
}

/// What the grader concluded about one test.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outcome {
    /// The status.
    pub status: TestStatus,
    /// Why, for anything but a pass (empty when passed).
    pub message: String,
}

/// Classifies one test run from its libtest output (stdout), its stderr and how it ended.
pub fn classify(name: &str, stdout: &str, stderr: &str, ending: Ending) -> Outcome {
    let outcome = |status, message: String| Outcome {
        status,
        message: message.trim().to_owned(),
    };
    match ending {
        Ending::Deadline(secs) => {
            return outcome(
                TestStatus::TimedOut,
                format!(
                    "the test did not finish within the grader's deadline of {secs} s and was killed"
                ),
            );
        }
        Ending::Interrupted => {
            return outcome(
                TestStatus::Failed,
                "the grader was interrupted before the test finished".into(),
            );
        }
        _ => {}
    }
    // A pass is libtest's: the harness writes no verdict line for one, so a "passed" verdict
    // line was written by something else, such as student code writing to the test process's
    // stderr through /proc/<pid>/fd/2, and a test process that exited 0 passed, whatever lines
    // its output holds.
    if ending != Ending::Exited(0)
        && let Some(found) = verdict(stderr).or_else(|| verdict(stdout))
    {
        return found;
    }
    let panic = last_panic(stderr, name);
    match ending {
        Ending::Signaled(sig) => {
            let mut m = format!("the test process was killed by {}", signal_name(sig));
            if let Some(p) = panic {
                m.push_str(&format!(" after a panic:\n{p}"));
            }
            outcome(TestStatus::Crashed, m)
        }
        Ending::Exited(0) => match passed_count(stdout) {
            Some(n) if n > 0 => outcome(TestStatus::Passed, String::new()),
            Some(_) => outcome(
                TestStatus::Failed,
                format!("libtest ran no test named `{name}` (0 passed): the test did not run (is it #[ignore]d?)"),
            ),
            None => outcome(
                TestStatus::Failed,
                "the test process exited with status 0 before libtest reported a result: something called \
                 exit() in the process that runs the test, where only a forked child should exit"
                    .into(),
            ),
        },
        Ending::Exited(code) => match panic {
            Some(p) if is_not_started(&p) => outcome(TestStatus::NotStarted, p),
            Some(p) => outcome(TestStatus::Failed, p),
            None if code == 101 => outcome(TestStatus::Failed, format!("the test failed (exit 101):\n{stderr}")),
            None => outcome(
                TestStatus::Failed,
                format!(
                    "the test process exited with status {code} before the test finished: something called \
                     exit() in the process that runs the test, where only a forked child should exit"
                ),
            ),
        },
        Ending::Deadline(_) | Ending::Interrupted => unreachable!("handled above"),
    }
}

/// The harness's verdict, if its verdict line is in `text`: the status and the message after
/// it. A line that says "passed" is not the harness's and is passed over.
fn verdict(text: &str) -> Option<Outcome> {
    let mut lines = text.lines();
    let (status, rest) = lines
        .by_ref()
        .filter_map(parse_verdict_line)
        .find(|(status, _)| *status != TestStatus::Passed)?;
    let mut message: Vec<&str> = Vec::new();
    if !rest.is_empty() {
        message.push(rest);
    }
    message.extend(lines.take_while(|l| !ends_panic(l)));
    Some(Outcome {
        status,
        message: message.join("\n").trim().to_owned(),
    })
}

/// The last panic message in `stderr`, preferring the panics of the test's own thread.
fn last_panic(stderr: &str, name: &str) -> Option<String> {
    let lines: Vec<&str> = stderr.lines().collect();
    let starts: Vec<(usize, &str)> = lines
        .iter()
        .enumerate()
        .filter_map(|(i, l)| panic_thread(l).map(|t| (i, t)))
        .collect();
    let (start, _) = starts
        .iter()
        .rev()
        .find(|(_, t)| *t == name)
        .or(starts.last())?;
    let body: Vec<&str> = lines[start + 1..]
        .iter()
        .copied()
        .take_while(|l| !ends_panic(l))
        .collect();
    Some(body.join("\n").trim().to_owned())
}

/// The thread name of a `thread '<name>' (<tid>) panicked at <file>:<line>:<col>:` line (the
/// thread id is new in Rust 1.92).
fn panic_thread(line: &str) -> Option<&str> {
    let rest = line.strip_prefix("thread '")?;
    let (thread, tail) = rest.rsplit_once("' ")?;
    let tail = match tail.strip_prefix('(') {
        Some(t) => t.split_once(") ")?.1,
        None => tail,
    };
    tail.starts_with("panicked at ").then_some(thread)
}

/// True for the lines that end a panic message.
fn ends_panic(line: &str) -> bool {
    line.starts_with("note: run with `RUST_BACKTRACE=1`")
        || line.starts_with("stack backtrace:")
        || panic_thread(line).is_some()
}

/// The `N passed` count of libtest's `test result:` line.
fn passed_count(stdout: &str) -> Option<u32> {
    let line = stdout
        .lines()
        .rev()
        .find(|l| l.starts_with("test result:"))?;
    let before = line.split(" passed").next()?;
    before.rsplit(' ').next()?.parse().ok()
}

/// `SIGSEGV (signal 11)` or `signal 77`.
pub fn signal_name(sig: i32) -> String {
    match nix::sys::signal::Signal::try_from(sig) {
        Ok(s) => format!("{} (signal {sig})", s.as_str()),
        Err(_) => format!("signal {sig}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const NAME: &str = "fork_basics::child_reports_its_parent";
    const OK: &str = "\nrunning 1 test\ntest fork_basics::child_reports_its_parent ... ok\n\n\
        test result: ok. 1 passed; 0 failed; 0 ignored; 0 measured; 3 filtered out; finished in 0.01s\n\n";
    const FAILED: &str = "\nrunning 1 test\ntest fork_basics::child_reports_its_parent ... FAILED\n\n\
        failures:\n\nfailures:\n    fork_basics::child_reports_its_parent\n\n\
        test result: FAILED. 0 passed; 1 failed; 0 ignored; 0 measured; 3 filtered out; finished in 0.01s\n\n";

    fn panic_text(thread: &str, msg: &str) -> String {
        format!(
            "thread '{thread}' (1234) panicked at tests/processes/fork_basics.rs:12:5:\n{msg}\n\
             note: run with `RUST_BACKTRACE=1` environment variable to display a backtrace\n"
        )
    }

    #[test]
    fn a_pass() {
        let o = classify(NAME, OK, "", Ending::Exited(0));
        assert_eq!(
            o,
            Outcome {
                status: TestStatus::Passed,
                message: String::new()
            }
        );
    }

    #[test]
    fn zero_tests_ran_is_a_failure() {
        let out = OK.replace("1 passed", "0 passed");
        let o = classify(NAME, &out, "", Ending::Exited(0));
        assert_eq!(o.status, TestStatus::Failed);
        assert!(o.message.contains("did not run"), "{}", o.message);
    }

    #[test]
    fn exit_zero_without_a_result_is_a_failure() {
        let o = classify(NAME, "\nrunning 1 test\n", "", Ending::Exited(0));
        assert_eq!(o.status, TestStatus::Failed);
        assert!(o.message.contains("exit()"));
    }

    #[test]
    fn todo_is_not_started() {
        let o = classify(
            NAME,
            FAILED,
            &panic_text(NAME, "not yet implemented"),
            Ending::Exited(101),
        );
        assert_eq!(
            o,
            Outcome {
                status: TestStatus::NotStarted,
                message: "not yet implemented".into()
            }
        );
        let o = classify(
            NAME,
            FAILED,
            &panic_text(NAME, "not yet implemented: fork here"),
            Ending::Exited(101),
        );
        assert_eq!(o.status, TestStatus::NotStarted);
    }

    #[test]
    fn a_panic_is_a_failure_with_its_message() {
        let msg = "assertion `left == right` failed: wrong parent\n  left: 1\n right: 2";
        let o = classify(NAME, FAILED, &panic_text(NAME, msg), Ending::Exited(101));
        assert_eq!(
            o,
            Outcome {
                status: TestStatus::Failed,
                message: msg.into()
            }
        );
    }

    #[test]
    fn panic_lines_with_and_without_thread_ids() {
        assert_eq!(
            panic_thread("thread 'a::b' (4242) panicked at src/x.rs:1:2:"),
            Some("a::b")
        );
        assert_eq!(
            panic_thread("thread 'a::b' panicked at src/x.rs:1:2:"),
            Some("a::b")
        );
        assert_eq!(panic_thread("thread 'a' says hi"), None);
    }

    #[test]
    fn the_test_threads_last_panic_wins() {
        let stderr = format!(
            "{}thread '{NAME}' panicked at tests/x.rs:3:1:\nthe real one\n",
            panic_text("helper", "from a helper thread")
        );
        let o = classify(NAME, FAILED, &stderr, Ending::Exited(101));
        assert_eq!(o.message, "the real one");
    }

    #[test]
    fn the_verdict_tag_decides() {
        for (word, status) in [
            ("failed", TestStatus::Failed),
            ("not_started", TestStatus::NotStarted),
            ("timed_out", TestStatus::TimedOut),
            ("crashed", TestStatus::Crashed),
            ("leaked", TestStatus::Leaked),
        ] {
            let msg = format!(
                "@@oskata-verdict:{word}@@ {}\nthe body left pid 42 running\n--- what the test's processes printed ---\nhello",
                word.replace('_', " ")
            );
            let stderr = panic_text(NAME, &msg)
                .replace("tests/processes/fork_basics.rs", "harness/src/isolate.rs");
            let o = classify(NAME, FAILED, &stderr, Ending::Exited(101));
            assert_eq!(o.status, status);
            assert_eq!(
                o.message,
                "the body left pid 42 running\n--- what the test's processes printed ---\nhello"
            );
        }
    }

    /// Student code can write to the test process's stderr (through /proc/<pid>/fd/2) before
    /// the harness's verdict: a "passed" line there never makes a failing test pass.
    #[test]
    fn a_forged_pass_is_not_a_pass() {
        let real = panic_text(
            NAME,
            "@@oskata-verdict:failed@@ failed\nthe child was never reaped",
        );
        for forged in [
            "@@oskata-verdict:passed@@ passed\n".to_owned(),
            panic_text(NAME, "@@oskata-verdict:passed@@ passed"),
        ] {
            let o = classify(
                NAME,
                FAILED,
                &format!("{forged}{real}"),
                Ending::Exited(101),
            );
            assert_eq!(
                o,
                Outcome {
                    status: TestStatus::Failed,
                    message: "the child was never reaped".into()
                }
            );
        }
        let o = classify(
            NAME,
            FAILED,
            &panic_text(NAME, "@@oskata-verdict:passed@@ passed"),
            Ending::Exited(101),
        );
        assert_eq!(o.status, TestStatus::Failed);
        // libtest's own pass stands, whatever lines the output holds.
        let o = classify(
            NAME,
            OK,
            "@@oskata-verdict:failed@@ failed\n",
            Ending::Exited(0),
        );
        assert_eq!(o.status, TestStatus::Passed);
    }

    #[test]
    fn a_signal_is_a_crash() {
        let o = classify(NAME, "\nrunning 1 test\n", "", Ending::Signaled(11));
        assert_eq!(o.status, TestStatus::Crashed);
        assert!(o.message.contains("SIGSEGV"), "{}", o.message);
    }

    #[test]
    fn the_deadline_is_a_timeout() {
        let o = classify(NAME, "", "", Ending::Deadline(60));
        assert_eq!(o.status, TestStatus::TimedOut);
        assert!(o.message.contains("60 s"));
    }

    #[test]
    fn an_exit_in_the_test_process_is_a_failure() {
        let o = classify(NAME, "\nrunning 1 test\n", "", Ending::Exited(3));
        assert_eq!(o.status, TestStatus::Failed);
        assert!(o.message.contains("status 3"));
    }
}
