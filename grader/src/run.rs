//! Runs tests: each in its own process group with a deadline, several at once.
use std::io::{ErrorKind, Read};
use std::os::fd::AsFd;
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use nix::fcntl::{FcntlArg, OFlag, fcntl};
use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
use nix::sys::signal::{Signal, killpg};
use nix::unistd::{Pid, getpid};

use crate::binary::Binary;
use crate::classify::{Ending, Outcome, TestStatus, classify};
use crate::{reaper, signals};

/// How much of the start of each stream is kept.
const KEEP_HEAD: usize = 192 * 1024;
/// How much of the end of each stream is kept (panic messages come last).
const KEEP_TAIL: usize = 64 * 1024;
/// How often a running test is checked for exit, deadline and interruption.
const TICK: Duration = Duration::from_millis(10);

/// One test to run: `<exe> <name> --exact`.
#[derive(Debug, Clone)]
pub struct Job {
    /// The exercise's test binary, as the build left it.
    pub exe: Binary,
    /// The test's full name, e.g. `fork_basics::child_reports_its_parent`.
    pub name: String,
}

/// How tests are run.
#[derive(Debug, Clone)]
pub struct Runner {
    /// The kit's root: the tests' working directory.
    pub root: PathBuf,
    /// The grader's deadline for one test.
    pub timeout: Duration,
    /// How many tests run at once.
    pub jobs: usize,
}

impl Runner {
    /// Runs every job, `self.jobs` at a time, calling `done` as each finishes; the outcomes
    /// come back in the jobs' order. Leaves no process behind.
    pub fn run_all(&self, jobs: &[Job], done: impl Fn(&Job, &Outcome) + Sync) -> Vec<Outcome> {
        let next = AtomicUsize::new(0);
        let results: Mutex<Vec<Option<Outcome>>> = Mutex::new(vec![None; jobs.len()]);
        thread::scope(|s| {
            for _ in 0..self.jobs.clamp(1, jobs.len().max(1)) {
                s.spawn(|| {
                    loop {
                        let i = next.fetch_add(1, Ordering::SeqCst);
                        let Some(job) = jobs.get(i) else { break };
                        let outcome = self.run_one(job);
                        done(job, &outcome);
                        results.lock().unwrap_or_else(|e| e.into_inner())[i] = Some(outcome);
                    }
                });
            }
        });
        reaper::sweep();
        let results = results.into_inner().unwrap_or_else(|e| e.into_inner());
        results
            .into_iter()
            .map(|o| o.expect("every job ran"))
            .collect()
    }

    /// Runs one test and classifies it; a test binary that changed since the build fails
    /// the test without being run.
    pub fn run_one(&self, job: &Job) -> Outcome {
        let failed = |message| Outcome {
            status: TestStatus::Failed,
            message,
        };
        if let Err(why) = job.exe.check() {
            return failed(why);
        }
        match self.execute(&job.exe.path, &job.name) {
            Ok((stdout, stderr, ending)) => classify(&job.name, &stdout, &stderr, ending),
            Err(e) => failed(format!(
                "the grader could not run {}: {e}",
                job.exe.path.display()
            )),
        }
    }

    fn execute(&self, exe: &Path, name: &str) -> std::io::Result<(String, String, Ending)> {
        // The test's TMPDIR: what it leaves there (a scratch directory of a supervisor that the
        // deadline killed, say) is removed with the directory once the test is over.
        let tmp = TestTmp::create()?;
        let mut cmd = Command::new(exe);
        cmd.args([name, "--exact", "--nocapture", "--test-threads=1"])
            .current_dir(&self.root)
            .env("TMPDIR", tmp.path())
            .env("OSKATA_GRADER", "1")
            .env("CARGO_MANIFEST_DIR", &self.root)
            .env("RUST_BACKTRACE", "0")
            .env_remove("RUST_LIB_BACKTRACE")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .process_group(0);
        let grader = getpid();
        // SAFETY: prctl(2) and getppid(2) are async-signal-safe, and the closure allocates
        // nothing (an io::Error from an errno does not), so it is sound between fork and exec.
        unsafe {
            cmd.pre_exec(move || reaper::pdeath_guard(grader));
        }
        let mut child = reaper::spawn(&mut cmd)?;
        let pid = child.id();
        let result = self.watch(&mut child);
        // Whatever the test left in its process group goes now; the rest is swept below.
        let _ = killpg(Pid::from_raw(pid as i32), Signal::SIGKILL);
        reaper::finished(pid);
        reaper::sweep();
        drop(tmp);
        result
    }

    /// Collects the child's output until it exits, its deadline passes or the grader is interrupted.
    fn watch(&self, child: &mut Child) -> std::io::Result<(String, String, Ending)> {
        let pid = Pid::from_raw(child.id() as i32);
        let mut stdout = child.stdout.take().expect("piped stdout");
        let mut stderr = child.stderr.take().expect("piped stderr");
        for fd in [stdout.as_fd(), stderr.as_fd()] {
            fcntl(fd, FcntlArg::F_SETFL(OFlag::O_NONBLOCK))?;
        }
        let (mut out, mut err) = (Captured::default(), Captured::default());
        let (mut out_open, mut err_open) = (true, true);
        let deadline = Instant::now() + self.timeout;
        let ending = loop {
            let mut fds = Vec::new();
            if out_open {
                fds.push(PollFd::new(stdout.as_fd(), PollFlags::POLLIN));
            }
            if err_open {
                fds.push(PollFd::new(stderr.as_fd(), PollFlags::POLLIN));
            }
            if fds.is_empty() {
                thread::sleep(TICK);
            } else {
                let _ = poll(&mut fds, PollTimeout::from(TICK.as_millis() as u8));
            }
            drop(fds);
            out_open = out_open && drain(&mut stdout, &mut out);
            err_open = err_open && drain(&mut stderr, &mut err);
            if let Some(status) = child.try_wait()? {
                break ending_of(status);
            }
            let stop = if signals::interrupted() {
                Some(Ending::Interrupted)
            } else if Instant::now() >= deadline {
                Some(Ending::Deadline(self.timeout.as_secs()))
            } else {
                None
            };
            if let Some(ending) = stop {
                let _ = killpg(pid, Signal::SIGKILL);
                child.wait()?;
                break ending;
            }
        };
        // What the test wrote before it ended is in the pipes now; a leftover process may hold
        // them open, so never wait for end-of-file.
        drain(&mut stdout, &mut out);
        drain(&mut stderr, &mut err);
        Ok((out.text(), err.text(), ending))
    }
}

/// The start of a test's TMPDIR's name: `oskata-grade-<grader's pid>-<n>`.
const TMP_PREFIX: &str = "oskata-grade-";

/// A temporary directory for one test, removed with its contents when dropped.
struct TestTmp(PathBuf);

impl TestTmp {
    fn create() -> std::io::Result<TestTmp> {
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        let n = NEXT.fetch_add(1, Ordering::SeqCst);
        let name = format!("{TMP_PREFIX}{}-{n}", std::process::id());
        let path = std::env::temp_dir().join(name);
        std::fs::create_dir_all(&path)?;
        Ok(TestTmp(path))
    }

    fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TestTmp {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Removes from `dir` the tests' TMPDIRs of graders that no longer run: a grader killed with
/// SIGKILL leaves its tests' directories behind (the tests themselves die with it). A
/// directory whose grader's pid is in use, by a grader or not, is left alone.
pub fn remove_stale_tmps(dir: &Path) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let pid = name
            .to_str()
            .and_then(|n| n.strip_prefix(TMP_PREFIX))
            .and_then(|rest| rest.split_once('-'))
            .and_then(|(pid, n)| Some((pid.parse::<u32>().ok()?, n.parse::<u64>().ok()?)))
            .map(|(pid, _)| pid);
        if let Some(pid) = pid
            && !Path::new(&format!("/proc/{pid}")).exists()
        {
            let _ = std::fs::remove_dir_all(entry.path());
        }
    }
}

fn ending_of(status: ExitStatus) -> Ending {
    match (status.code(), status.signal()) {
        (Some(code), _) => Ending::Exited(code),
        (None, Some(sig)) => Ending::Signaled(sig),
        (None, None) => Ending::Exited(-1),
    }
}

/// Reads what `pipe` has now into `into`; false at end-of-file or on an error.
fn drain(pipe: &mut impl Read, into: &mut Captured) -> bool {
    let mut buf = [0u8; 16 * 1024];
    loop {
        match pipe.read(&mut buf) {
            Ok(0) => return false,
            Ok(n) => into.push(&buf[..n]),
            Err(e) if e.kind() == ErrorKind::Interrupted => continue,
            Err(e) if e.kind() == ErrorKind::WouldBlock => return true,
            Err(_) => return false,
        }
    }
}

/// One output stream, bounded: its start and its end, and a count of what fell between.
#[derive(Debug, Default)]
struct Captured {
    head: Vec<u8>,
    tail: Vec<u8>,
    dropped: usize,
}

impl Captured {
    fn push(&mut self, mut bytes: &[u8]) {
        let take = KEEP_HEAD.saturating_sub(self.head.len()).min(bytes.len());
        self.head.extend_from_slice(&bytes[..take]);
        bytes = &bytes[take..];
        self.tail.extend_from_slice(bytes);
        if self.tail.len() > 2 * KEEP_TAIL {
            let cut = self.tail.len() - KEEP_TAIL;
            self.dropped += cut;
            self.tail.drain(..cut);
        }
    }

    fn text(&self) -> String {
        let mut s = String::from_utf8_lossy(&self.head).into_owned();
        let (dropped, tail) = match self.tail.len().checked_sub(KEEP_TAIL) {
            Some(cut) => (self.dropped + cut, &self.tail[cut..]),
            None => (self.dropped, &self.tail[..]),
        };
        if dropped > 0 {
            s.push_str(&format!("\n[... {dropped} bytes of output left out ...]\n"));
        }
        s.push_str(&String::from_utf8_lossy(tail));
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An executable shell script standing in for a test binary.
    fn script(name: &str, body: &str) -> PathBuf {
        use std::os::unix::fs::PermissionsExt;
        let path =
            std::env::temp_dir().join(format!("oskata-grader-{}-{name}.sh", std::process::id()));
        std::fs::write(&path, format!("#!/bin/sh\n{body}\n")).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
        path
    }

    fn alive(pid: i32) -> bool {
        std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|s| !s.contains(") Z "))
    }

    #[test]
    fn deadlines_and_leftovers() {
        reaper::become_subreaper().unwrap();
        let runner = Runner {
            root: std::env::temp_dir(),
            timeout: Duration::from_millis(300),
            jobs: 2,
        };

        // A daemon in its own session outlives the "test": the grader kills it.
        let exe = script(
            "leak",
            "setsid sleep 1000 &\necho \"daemon $!\"\nmkdir \"$TMPDIR/oskata-1\"\necho \"tmp $TMPDIR\"\n\
             echo 'test result: ok. 1 passed;'",
        );
        let (out, _, ending) = runner.execute(&exe, "t").unwrap();
        assert_eq!(ending, Ending::Exited(0));
        let pid: i32 = out
            .lines()
            .find_map(|l| l.strip_prefix("daemon "))
            .unwrap()
            .parse()
            .unwrap();
        assert!(!alive(pid), "the daemon {pid} survived");
        // What the test left in its own TMPDIR went with it.
        let tmp = out.lines().find_map(|l| l.strip_prefix("tmp ")).unwrap();
        assert_ne!(Path::new(tmp), std::env::temp_dir());
        assert!(!Path::new(tmp).exists(), "{tmp} was left behind");
        std::fs::remove_file(exe).unwrap();

        // An endless test is stopped at the deadline, with what it printed.
        let exe = script("loop", "echo started\nsleep 1000");
        let start = Instant::now();
        let (out, _, ending) = runner.execute(&exe, "t").unwrap();
        assert_eq!((ending, out.as_str()), (Ending::Deadline(0), "started\n"));
        assert!(start.elapsed() < Duration::from_secs(5));
        std::fs::remove_file(exe).unwrap();
    }

    #[test]
    fn a_binary_changed_after_the_build_is_never_run() {
        let runner = Runner {
            root: std::env::temp_dir(),
            timeout: Duration::from_secs(5),
            jobs: 1,
        };
        let exe = script("changed", "echo 'test result: ok. 1 passed;'");
        let ran = exe.with_extension("ran");
        let job = Job {
            exe: Binary::record(exe.clone()).unwrap(),
            name: "t".into(),
        };
        assert_eq!(runner.run_one(&job).status, TestStatus::Passed);

        // Something replaces the binary with one that would also pass, and says it ran.
        let fake = script(
            "changed",
            &format!(
                "touch '{}'\necho 'test result: ok. 1 passed;'",
                ran.display()
            ),
        );
        assert_eq!(fake, exe);
        let outcome = runner.run_one(&job);
        assert_eq!(
            outcome,
            Outcome {
                status: TestStatus::Failed,
                message: format!(
                    "the test binary {} changed after it was built (something replaced it): \
                     rebuild with cargo grade",
                    exe.display()
                ),
            }
        );
        assert!(!ran.exists(), "the changed binary ran");
        std::fs::remove_file(exe).unwrap();
    }

    #[test]
    fn tmps_of_graders_that_are_gone_are_removed() {
        let dir = std::env::temp_dir().join(format!("oskata-stale-{}", std::process::id()));
        // No pid is above the kernel's largest pid_max, 2^22.
        let names = [
            format!("{TMP_PREFIX}4194305-0"),
            format!("{TMP_PREFIX}{}-3", std::process::id()),
            format!("{TMP_PREFIX}4194305-x"),
            "oskata-4194305".to_owned(),
        ];
        for name in &names {
            std::fs::create_dir_all(dir.join(name).join("inside")).unwrap();
        }
        remove_stale_tmps(&dir);
        let left: Vec<bool> = names.iter().map(|n| dir.join(n).exists()).collect();
        assert_eq!(left, [false, true, true, true]);
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn captured_keeps_the_head_and_the_tail() {
        let mut c = Captured::default();
        c.push(&vec![b'a'; KEEP_HEAD]);
        for _ in 0..10 {
            c.push(&vec![b'b'; KEEP_TAIL]);
        }
        c.push(b"the end");
        let text = c.text();
        assert!(text.starts_with('a') && text.ends_with("the end"));
        assert!(text.contains(&format!(
            "[... {} bytes of output left out ...]",
            9 * KEEP_TAIL + 7
        )));
        assert!(text.len() < KEEP_HEAD + KEEP_TAIL + 100);
    }
}
