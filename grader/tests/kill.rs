//! Killing the grader itself, even with SIGKILL, leaves nothing of its run behind: each test
//! process it starts has a parent-death signal, and the harness's supervisor in that test
//! watches the test process's pidfd and kills the body's tree when it dies.
//!
//! This runs the real grader on the real kit (`--solutions`, so that the tests fork and last
//! long enough to be caught running) and builds that exercise's test target if it is stale.
//! Once a test's body runs, the body is stopped (SIGSTOP), so the test by itself would run on
//! to its deadline, stretched to 100 s; then the grader is killed, and every process of the
//! run must be gone well before that.
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

/// The exercise graded; its test binary is `target/debug/deps/<TARGET>-<hash>`.
const EXERCISE: &str = "processes/fork_basics";
const TARGET: &str = "processes_fork_basics-";
/// How long the grader may take to build and list before its first test runs.
const START_LIMIT: Duration = Duration::from_secs(300);
/// How long the run's processes may take to go once the grader is killed: well within the
/// stopped test's own deadline (10 s times [`DEADLINE_SCALE`]).
const GONE_LIMIT: Duration = Duration::from_secs(20);
/// `OSKATA_DEADLINE_SCALE` for the run: a test left alone would last 100 s.
const DEADLINE_SCALE: &str = "10";
/// How often `/proc` is looked at while waiting for a test body (tests are short).
const FAST: Duration = Duration::from_millis(2);
/// How often `/proc` is looked at while waiting for the run's processes to go.
const SLOW: Duration = Duration::from_millis(20);
/// Runs of the grader to try, should every test finish between two looks at `/proc`.
const ATTEMPTS: usize = 5;

/// One process: pid, parent pid, command line.
#[derive(Debug, Clone)]
struct Proc {
    pid: i32,
    ppid: i32,
    cmdline: Vec<String>,
}

/// Every process readable in `/proc` now (those that exit while being read are left out).
fn processes() -> Vec<Proc> {
    let Ok(dir) = fs::read_dir("/proc") else {
        return Vec::new();
    };
    dir.filter_map(|e| e.ok()?.file_name().to_str()?.parse::<i32>().ok())
        .filter_map(|pid| {
            let stat = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
            let ppid = stat[stat.rfind(')')? + 1..]
                .split_whitespace()
                .nth(1)?
                .parse()
                .ok()?;
            let raw = fs::read(format!("/proc/{pid}/cmdline")).ok()?;
            let cmdline = raw
                .split(|&b| b == 0)
                .filter(|a| !a.is_empty())
                .map(|a| String::from_utf8_lossy(a).into_owned())
                .collect();
            Some(Proc { pid, ppid, cmdline })
        })
        .collect()
}

/// A test that `grader` runs now whose body has started: the test binary and the body's pid.
/// The test process (P) is the grader's child, its supervisor (C) is P's, the body (B) is C's,
/// and all three run the test binary.
fn running_body(grader: i32) -> Option<(String, i32)> {
    let procs = processes();
    let child_of = |parent: i32, exe: &str| {
        procs
            .iter()
            .find(move |p| p.ppid == parent && p.cmdline.first().is_some_and(|a| a == exe))
    };
    let test = procs.iter().find(|p| {
        p.ppid == grader
            && p.cmdline.first().is_some_and(|a| a.contains(TARGET))
            && p.cmdline.iter().any(|a| a == "--exact")
    })?;
    let exe = test.cmdline[0].clone();
    let supervisor = child_of(test.pid, &exe)?;
    let body = child_of(supervisor.pid, &exe)?;
    Some((exe, body.pid))
}

/// Stops `pid`; true once it is seen stopped (false when it exited first).
fn stop(pid: i32) -> bool {
    if kill(Pid::from_raw(pid), Signal::SIGSTOP).is_err() {
        return false;
    }
    let state = || {
        let stat = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
        stat[stat.rfind(')')? + 1..]
            .split_whitespace()
            .next()?
            .chars()
            .next()
    };
    poll(Duration::from_secs(5), FAST, || match state() {
        Some('T') => Some(true),
        Some('Z') | None => Some(false),
        Some(_) => None,
    })
    .unwrap_or(false)
}

/// The processes running `exe` now.
fn running(exe: &str) -> Vec<Proc> {
    processes()
        .into_iter()
        .filter(|p| p.cmdline.first().is_some_and(|a| a == exe))
        .collect()
}

/// Polls `f` every `tick` until it gives a value or `limit` passes.
fn poll<T>(limit: Duration, tick: Duration, mut f: impl FnMut() -> Option<T>) -> Option<T> {
    let start = Instant::now();
    loop {
        if let Some(v) = f() {
            return Some(v);
        }
        if start.elapsed() > limit {
            return None;
        }
        thread::sleep(tick);
    }
}

/// A supervisor's scratch directory (`oskata-<pid>`) anywhere under `dir`, two levels deep.
fn scratch_dirs(dir: &Path) -> Vec<PathBuf> {
    let entries = |d: &Path| -> Vec<PathBuf> {
        fs::read_dir(d)
            .into_iter()
            .flatten()
            .flatten()
            .map(|e| e.path())
            .collect()
    };
    let is_scratch = |p: &PathBuf| {
        p.file_name()
            .and_then(|n| n.to_str())
            .and_then(|n| n.strip_prefix("oskata-"))
            .is_some_and(|pid| pid.parse::<u32>().is_ok())
    };
    entries(dir)
        .into_iter()
        .flat_map(|d| {
            let mut inner = entries(&d);
            inner.push(d);
            inner
        })
        .filter(is_scratch)
        .collect()
}

/// The grader's TMPDIR, removed when dropped (what a killed grader leaves there goes with it).
struct Tmp(PathBuf);

impl Tmp {
    fn create() -> Tmp {
        let dir = std::env::temp_dir().join(format!("oskata-kill-grader-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).unwrap();
        Tmp(dir)
    }
}

impl Drop for Tmp {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

/// The grader on the kit, with its own TMPDIR, its stderr to a file there.
fn start_grader(root: &Path, tmp: &Path) -> Child {
    let stderr = fs::File::create(tmp.join("grader.stderr")).unwrap();
    Command::new(env!("CARGO_BIN_EXE_oskata-grade"))
        .arg("--root")
        .arg(root)
        .args(["--solutions", "--exercise", EXERCISE, "--jobs", "1"])
        .env("TMPDIR", tmp)
        .env("OSKATA_DEADLINE_SCALE", DEADLINE_SCALE)
        .env("NO_COLOR", "1")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(stderr)
        .spawn()
        .unwrap()
}

#[test]
fn killing_the_grader_leaves_no_test_process() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap();
    let tmp = Tmp::create();
    let tmp = tmp.0.as_path();
    let stderr = || fs::read_to_string(tmp.join("grader.stderr")).unwrap_or_default();

    for _ in 0..ATTEMPTS {
        let mut grader = start_grader(root, tmp);
        let pid = grader.id() as i32;
        // A body caught running and stopped, or None when the grader finished first.
        let caught = poll(START_LIMIT, FAST, || {
            if let Some((exe, body)) = running_body(pid)
                && stop(body)
            {
                return Some(Some(exe));
            }
            grader.try_wait().unwrap().map(|_| None)
        });
        let exe = match caught {
            None => {
                let _ = grader.kill();
                let _ = grader.wait();
                panic!(
                    "no test started within {START_LIMIT:?}; the grader said:\n{}",
                    stderr()
                );
            }
            // Every test finished between two looks at /proc: again.
            Some(None) => continue,
            Some(Some(exe)) => exe,
        };

        kill(Pid::from_raw(pid), Signal::SIGKILL).unwrap();
        grader.wait().unwrap();
        let gone = poll(GONE_LIMIT, SLOW, || running(&exe).is_empty().then_some(()));
        let left = running(&exe);
        for p in &left {
            let _ = kill(Pid::from_raw(p.pid), Signal::SIGKILL);
        }
        let listed: Vec<String> = left
            .iter()
            .map(|p| format!("pid {} (parent {}): {}", p.pid, p.ppid, p.cmdline.join(" ")))
            .collect();
        assert!(
            gone.is_some(),
            "{} processes of the run outlived the grader by {GONE_LIMIT:?}:\n{}",
            left.len(),
            listed.join("\n")
        );
        // The supervisors also removed their scratch directories on their way out.
        let scratch = poll(GONE_LIMIT, SLOW, || {
            scratch_dirs(tmp).is_empty().then_some(())
        });
        assert!(scratch.is_some(), "left: {:?}", scratch_dirs(tmp));
        return;
    }
    panic!(
        "in {ATTEMPTS} runs no test body was caught running; the grader said:\n{}",
        stderr()
    );
}
