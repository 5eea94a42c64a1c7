// depends on: options, protocol, report, supervisor, cgroup (stage P, first of the line; never
// body).
//! The parent side of an isolated test: re-execute the test binary for this one test, wait
//! for the supervisor's report, and turn it into a pass or a panic with evidence.
use std::io::Read;
use std::os::unix::process::CommandExt;
use std::process::{Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use oskata_protocol::{self as protocol, Verdict};

use crate::cgroup::Confinement;
use crate::options::{CHILD_ENV, Isolation, PARENT_ENV};
use crate::report::Report;
use crate::supervisor;

thread_local! {
    /// Whether this test thread has already run an isolated body.
    static CALLED: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// How long the parent waits past the test's own deadline for the supervisor to report.
const GRACE: Duration = Duration::from_secs(20);

/// Runs `body` isolated with the default options and panics with the evidence if it fails.
pub fn isolated(body: impl FnOnce()) {
    Isolation::new().run(body)
}

/// Running a test: the options themselves and their builder methods are in `options.rs`.
impl Isolation {
    /// Runs `body` isolated and panics, with the verdict tag the grader reads, unless it passed.
    pub fn run(self, body: impl FnOnce()) {
        let report = self.report(body);
        if !report.passed() {
            let output = if report.output.is_empty() {
                String::new()
            } else {
                format!(
                    "\n--- what the test's processes printed ---\n{}",
                    report.output
                )
            };
            panic!(
                "{}\n{}{output}",
                protocol::verdict_line(report.verdict),
                report.message
            );
        }
    }

    /// Runs `body` isolated and returns the report instead of panicking: for tests of the
    /// harness itself, which need to see a failure happen.
    pub fn report(self, body: impl FnOnce()) -> Report {
        let name = match thread::current().name() {
            Some(name) if name != "main" => name.to_owned(),
            _ => panic!(
                "oskata-harness: isolated() must be called from a #[test] function's own thread"
            ),
        };
        if std::env::var(CHILD_ENV).is_ok_and(|n| n == name) {
            supervisor::run(&self, &name, body)
        }
        // The re-executed binary supervises the first isolated() it reaches, so a second one
        // in the same test would silently re-run the first body.
        if CALLED.replace(true) {
            panic!(
                "oskata-harness: `{name}` calls isolated() twice; use one isolated body per test"
            );
        }
        spawn_supervisor(&self, &name)
    }
}

/// Starts `<this test binary> --exact <name>` as the supervisor and waits for its report.
fn spawn_supervisor(opts: &Isolation, name: &str) -> Report {
    let exe = std::env::current_exe().expect("oskata-harness: cannot find the test binary");
    let mut cmd = Command::new(exe);
    cmd.args([
        name,
        "--exact",
        "--nocapture",
        "--test-threads=1",
        "--include-ignored",
    ])
    .env(CHILD_ENV, name)
    .env(PARENT_ENV, std::process::id().to_string())
    .stdin(Stdio::null())
    .stdout(Stdio::piped())
    .stderr(Stdio::piped())
    .process_group(0);
    let mut child = cmd
        .spawn()
        .expect("oskata-harness: cannot re-execute the test binary");
    let pid = child.id() as i32;
    let mut stdout = child.stdout.take().expect("piped stdout");
    let mut stderr = child.stderr.take().expect("piped stderr");
    let err_reader = thread::spawn(move || {
        let mut buf = Vec::new();
        let _ = (&mut stderr).take(1 << 20).read_to_end(&mut buf);
        buf
    });
    let out_reader = thread::spawn(move || {
        let mut buf = Vec::new();
        let _ = (&mut stdout).take(8 << 20).read_to_end(&mut buf);
        buf
    });

    let limit = opts.limit() + GRACE;
    let start = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait for the supervisor") {
            break Some(status);
        }
        if start.elapsed() > limit {
            let pid = nix::unistd::Pid::from_raw(pid);
            supervisor::kill_from_outside(pid, &Confinement::of_supervisor(pid));
            let _ = child.wait();
            break None;
        }
        thread::sleep(Duration::from_millis(5));
    };
    // The supervisor removes its scratch directory itself, unless something killed it.
    let _ = std::fs::remove_dir_all(supervisor::scratch_path(pid as u32));
    let out = out_reader.join().unwrap_or_default();
    let err = err_reader.join().unwrap_or_default();
    let Some(status) = status else {
        return Report {
            verdict: Verdict::TimedOut,
            message: format!(
                "the harness's supervisor for `{name}` gave no report within {limit:?} and was killed; \
                 this is a bug in the harness, not in your code. Its stderr:\n{}",
                String::from_utf8_lossy(&err)
            ),
            output: String::new(),
        };
    };
    match find_report(&out) {
        Some(report) => report,
        None => Report {
            verdict: Verdict::Failed,
            message: format!(
                "the re-executed test binary did not run `{name}` (it sent no report; exit {status}). \
                 Each isolated test needs a unique name and must call isolated() from its own #[test] \
                 thread.\nstdout:\n{}\nstderr:\n{}",
                String::from_utf8_lossy(&out),
                String::from_utf8_lossy(&err)
            ),
            output: String::new(),
        },
    }
}

/// The supervisor's report: the framed records after the last [`protocol::REPORT_MARK`].
fn find_report(out: &[u8]) -> Option<Report> {
    let mark = protocol::REPORT_MARK.as_bytes();
    let at = out.windows(mark.len()).rposition(|w| w == mark)?;
    let recs = protocol::records(&out[at + mark.len()..]);
    let get = |tag: &str| recs.iter().find(|(t, _)| t == tag).map(|(_, v)| v.clone());
    Some(Report {
        verdict: Verdict::from_word(&get(protocol::report::VERDICT)?)?,
        message: get(protocol::report::MESSAGE).unwrap_or_default(),
        output: get(protocol::report::OUTPUT).unwrap_or_default(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_re_exec_that_runs_no_test_fails_loudly() {
        let r = spawn_supervisor(&Isolation::new(), "no::such::test");
        assert_eq!(r.verdict, Verdict::Failed);
        assert!(r.message.contains("did not run `no::such::test`"), "{r:?}");
    }
}
