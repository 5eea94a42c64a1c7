// depends on: options, protocol, raw, report, scratch, secret, supervisor, cgroup, evidence, procfs
// (stage P, first of the line; never body).
//! The parent side of an isolated test: re-execute the test binary for this one test, wait
//! for the supervisor's report, and turn it into a pass or a panic with evidence.
//!
//! Every wait here has a deadline: the supervisor's stdout and stderr are read without
//! blocking and given up on shortly after it exits (a survivor may hold them open for ever),
//! and a supervisor that gives no report is diagnosed from what this process can see and
//! killed with everything under it. Whatever happened, what is left of the test is then found
//! and killed: the members of its cgroups, and every process that carries its mark, a token
//! in the environment variable `OSKATA_TREE` (see ARCHITECTURE.md, "The test harness").
use std::collections::BTreeMap;
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::os::unix::process::CommandExt;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use nix::errno::Errno;
use nix::fcntl::{FcntlArg, OFlag, fcntl};
use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
use nix::sys::signal::Signal;
use nix::sys::wait::{Id, WaitPidFlag, WaitStatus, waitid};
use nix::unistd::{Pid, read};
use oskata_protocol::{self as protocol, Verdict};

use crate::cgroup::Confinement;
use crate::evidence;
use crate::options::{CHILD_ENV, Isolation, PARENT_ENV, TREE_ENV, scaled};
use crate::procfs::{self, Stat};
use crate::report::Report;
use crate::{raw, scratch, secret, supervisor};

thread_local! {
    /// Whether this test thread has already run an isolated body.
    static CALLED: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// How long the parent waits past the test's own deadline for the supervisor to report: it
/// needs time to stop, read and kill the tree.
const GRACE: Duration = Duration::from_secs(20);
/// How long past the deadline a supervisor seen stopped (state `T`) is waited for.
const STOPPED_GRACE: Duration = Duration::from_secs(2);
/// How long the supervisor's output is read after it has exited: what it wrote is in the
/// pipes by then, and a survivor holding a write end would keep them open for ever.
const AFTER_EXIT: Duration = Duration::from_millis(200);
/// How long killing what is left may take.
const KILL_LIMIT: Duration = Duration::from_secs(5);
/// How much of the supervisor's stdout (the report is at its end) and stderr is kept.
const KEEP_OUT: usize = 8 << 20;
const KEEP_ERR: usize = 1 << 20;

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
    // Not dumpable: no other process of the user may open /proc/<this pid>/fd/1 or 2, where
    // the grader reads the verdict (the body gives up CAP_SYS_PTRACE, which would).
    raw::set_dumpable(false)
        .expect("oskata-harness: cannot make the test process non-dumpable (PR_SET_DUMPABLE)");
    // The secret that seals the report, handed over on a pipe (see secret.rs).
    let seal = secret::fresh().expect("oskata-harness: cannot draw a token (getrandom)");
    let seal_pipe =
        secret::pipe_holding(&seal).expect("oskata-harness: cannot make the token pipe");
    let seal_fd = seal_pipe.as_raw_fd();
    let exe = std::env::current_exe().expect("oskata-harness: cannot find the test binary");
    let token = tree_token();
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
    .env(TREE_ENV, &token)
    .stdin(Stdio::null())
    .stdout(Stdio::piped())
    .stderr(Stdio::piped());
    // A session of its own, not only a process group: were C's group in this process's
    // session, this process's death would leave it an orphaned group, and the kernel sends
    // SIGHUP and SIGCONT to an orphaned group that holds a stopped process (the body, stopped
    // before it left for its own session, or C itself, stopped by a test): SIGHUP killed C
    // before it could kill its tree and remove its scratch directory, and SIGCONT woke a
    // stopped C (see credentials(7), "orphaned process group").
    // SAFETY: between fork and exec the child only calls setsid, dup2 and fcntl, all
    // async-signal-safe.
    unsafe {
        cmd.pre_exec(move || {
            if libc::setsid() == -1 {
                return Err(std::io::Error::last_os_error());
            }
            secret::pass_on(seal_fd)
        })
    };
    let mut child = cmd
        .spawn()
        .expect("oskata-harness: cannot re-execute the test binary");
    drop(seal_pipe);
    let pid = Pid::from_raw(child.id() as i32);
    let mut out = Stream::new(child.stdout.take().map(OwnedFd::from), KEEP_OUT);
    let mut err = Stream::new(child.stderr.take().map(OwnedFd::from), KEEP_ERR);

    let report = match watch(pid, opts.limit(), &mut out, &mut err) {
        Some(exit) => {
            read_on(&mut out, &mut err, scaled(AFTER_EXIT));
            match find_report(&out.bytes, &seal) {
                Some(report) => report,
                None => no_report(name, pid, exit, &out, &err),
            }
        }
        None => stuck(name, pid, opts.limit(), &err),
    };
    let left = sweep(pid, &token);
    // Reaped only now, after the sweep: see `ended`.
    let _ = child.try_wait();
    // The supervisor removes its scratch directory itself, unless something killed it.
    let _ = scratch::remove_tree(&supervisor::scratch_path(pid.as_raw() as u32));
    with_leftovers(report, &left)
}

/// A mark for one supervisor's tree, unique on this machine: this process's pid, a count and
/// the time.
fn tree_token() -> String {
    static COUNT: AtomicU64 = AtomicU64::new(0);
    let n = COUNT.fetch_add(1, Ordering::Relaxed);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    format!("{}-{n}-{nanos}", std::process::id())
}

/// One of the supervisor's output pipes, read without blocking; keeps the first and the last
/// bytes within a bound.
struct Stream {
    fd: Option<OwnedFd>,
    bytes: Vec<u8>,
    keep: usize,
}

impl Stream {
    fn new(fd: Option<OwnedFd>, keep: usize) -> Stream {
        // A pipe that stays blocking could hang this process on a survivor that holds its
        // write end; such a pipe is not read at all.
        let fd = fd.filter(|fd| {
            fcntl(fd, FcntlArg::F_GETFL).is_ok_and(|flags| {
                let flags = OFlag::from_bits_truncate(flags) | OFlag::O_NONBLOCK;
                fcntl(fd, FcntlArg::F_SETFL(flags)).is_ok()
            })
        });
        Stream {
            fd,
            bytes: Vec::new(),
            keep,
        }
    }

    /// Reads what the pipe has now; closes it at end-of-file.
    fn drain(&mut self) {
        let Some(fd) = &self.fd else { return };
        let mut buf = [0u8; 64 * 1024];
        let open = loop {
            match read(fd.as_fd(), &mut buf) {
                Ok(0) => break false,
                Ok(n) => keep_bounded(&mut self.bytes, &buf[..n], self.keep),
                Err(Errno::EINTR) => continue,
                Err(Errno::EAGAIN) => break true,
                Err(_) => break false,
            }
        };
        if !open {
            self.fd = None;
        }
    }

    fn text(&self) -> String {
        String::from_utf8_lossy(&self.bytes).into_owned()
    }
}

/// Appends `more` to `bytes`, keeping the first and the last halves of `keep` bytes.
fn keep_bounded(bytes: &mut Vec<u8>, more: &[u8], keep: usize) {
    bytes.extend_from_slice(more);
    if bytes.len() > keep {
        let half = keep / 2;
        let cut = bytes.len() - half;
        bytes.drain(half..cut);
    }
}

/// Polls both streams (and the supervisor's pidfd) for at most `limit`, draining them.
fn poll_streams(out: &mut Stream, err: &mut Stream, pidfd: Option<&OwnedFd>, limit: Duration) {
    let mut fds: Vec<PollFd> = [&out.fd, &err.fd]
        .into_iter()
        .flatten()
        .map(|fd| PollFd::new(fd.as_fd(), PollFlags::POLLIN))
        .collect();
    if let Some(p) = pidfd {
        fds.push(PollFd::new(p.as_fd(), PollFlags::POLLIN));
    }
    let ms = limit.as_millis().clamp(1, 50) as u16;
    if fds.is_empty() {
        thread::sleep(Duration::from_millis(u64::from(ms)));
    } else {
        let _ = poll(&mut fds, PollTimeout::from(ms));
    }
    drop(fds);
    out.drain();
    err.drain();
}

/// How the supervisor ended.
#[derive(Debug, Clone, Copy)]
enum Exit {
    Code(i32),
    Signal(Signal),
    /// Something else in this process reaped it (a `waitpid(-1)` in another test).
    Unknown,
}

/// How the supervisor ended, if it has, seen without reaping it: until it is reaped its pid
/// stays its own, and with it the names of its cgroups, which [`sweep`] reads.
fn ended(pid: Pid) -> Option<Exit> {
    let flags = WaitPidFlag::WEXITED | WaitPidFlag::WNOHANG | WaitPidFlag::WNOWAIT;
    match waitid(Id::Pid(pid), flags) {
        Ok(WaitStatus::Exited(_, code)) => Some(Exit::Code(code)),
        Ok(WaitStatus::Signaled(_, sig, _)) => Some(Exit::Signal(sig)),
        Ok(_) | Err(Errno::EINTR) => None,
        Err(_) => Some(Exit::Unknown),
    }
}

/// Reads the supervisor's output until it exits (`Some`, with how) or gives no sign of
/// reporting (`None`): 20 s past the deadline, or 2 s past it when it is seen stopped.
fn watch(pid: Pid, limit: Duration, out: &mut Stream, err: &mut Stream) -> Option<Exit> {
    let pidfd = supervisor::pidfd_open(pid);
    let start = Instant::now();
    let (stopped_at, give_up) = (limit + scaled(STOPPED_GRACE), limit + scaled(GRACE));
    loop {
        poll_streams(out, err, pidfd.as_ref(), Duration::from_millis(50));
        if let Some(exit) = ended(pid) {
            return Some(exit);
        }
        let elapsed = start.elapsed();
        let halted = || procfs::state(pid).is_some_and(|s| matches!(s, 'T' | 't'));
        if elapsed > give_up || (elapsed > stopped_at && halted()) {
            return None;
        }
    }
}

/// After the supervisor has exited: reads on until both pipes are at end-of-file, or `limit`.
fn read_on(out: &mut Stream, err: &mut Stream, limit: Duration) {
    let start = Instant::now();
    while (out.fd.is_some() || err.fd.is_some()) && start.elapsed() < limit {
        poll_streams(out, err, None, limit.saturating_sub(start.elapsed()));
    }
}

/// The report when the supervisor exited without one: it was killed, or it never ran the test.
fn no_report(name: &str, pid: Pid, exit: Exit, out: &Stream, err: &Stream) -> Report {
    if let Exit::Signal(sig) = exit {
        return Report {
            verdict: Verdict::Crashed,
            message: format!(
                "the harness's supervisor (pid {pid}) was killed by {sig} before it could report, so the test \
                 has no result: a process of the test may have signalled it (the supervisor is the test \
                 process's parent, so kill(getppid(), ...) in the test process reaches it), or the kernel's \
                 OOM killer chose it"
            ),
            output: String::new(),
        };
    }
    let status = match exit {
        Exit::Code(code) => format!("status {code}"),
        _ => "status unknown: something else reaped it".into(),
    };
    Report {
        verdict: Verdict::Failed,
        message: format!(
            "the re-executed test binary did not run `{name}` (it sent no report; exit {status}). \
             Each isolated test needs a unique name and must call isolated() from its own #[test] \
             thread.\nstdout:\n{}\nstderr:\n{}",
            out.text(),
            err.text()
        ),
        output: String::new(),
    }
}

/// The report when the supervisor gave no sign of reporting: stops it and its tree, reads
/// what this process can see, says why in [`explain`], then kills them all.
fn stuck(name: &str, pid: Pid, limit: Duration, err: &Stream) -> Report {
    let cg = Confinement::of_supervisor(pid);
    let state = procfs::state(pid);
    let before = procfs::descendants(pid);
    let _ = nix::sys::signal::kill(pid, Signal::SIGSTOP);
    supervisor::stop_tree(pid, &cg);
    let mut tree = procfs::descendants(pid);
    supervisor::states_before(&mut tree, &before);
    let seen = Seen {
        pid,
        state,
        processes: tree.len(),
        running: before.iter().filter(|p| p.state == 'R').count(),
        cpus: thread::available_parallelism().map_or(1, |n| n.get()),
        evidence: evidence::describe(&tree),
    };
    let message = explain(name, &seen, limit, &err.text());
    supervisor::kill_from_outside(pid, &cg);
    let start = Instant::now();
    while ended(pid).is_none() && start.elapsed() < KILL_LIMIT {
        thread::sleep(Duration::from_millis(1));
    }
    Report {
        verdict: Verdict::TimedOut,
        message,
        output: String::new(),
    }
}

/// What this process saw of a supervisor that gave no report, and of its tree.
struct Seen {
    pid: Pid,
    /// The supervisor's state letter, `None` once it is gone.
    state: Option<char>,
    processes: usize,
    /// How many of the tree were running (`R`) just before they were stopped.
    running: usize,
    cpus: usize,
    evidence: String,
}

/// Why the supervisor gave no report, from what was seen: it was stopped by a signal (state
/// `T`), or the test's processes kept it from running (it was runnable, and at least as many
/// of them ran as there are CPUs), or neither, and only then "a bug in the harness".
fn explain(name: &str, seen: &Seen, limit: Duration, stderr: &str) -> String {
    let (pid, evidence) = (seen.pid, &seen.evidence);
    let state = seen.state.map_or("gone".into(), evidence::state_word);
    match seen.state {
        Some(letter @ ('T' | 't')) => format!(
            "the supervisor (pid {pid}) was stopped by a signal (state {letter}) and could not end the test \
             at its deadline of {limit:?}: a process of the test stopped it (SIGSTOP, or SIGTSTP, SIGTTIN or \
             SIGTTOU, sent to the test process's parent or to its process group?). What was running:\n{evidence}"
        ),
        Some('R') if seen.running >= seen.cpus => format!(
            "the test's processes ({} of them, {} running) kept the supervisor (pid {pid}, state {state}) \
             from running: it could not stop them at the deadline of {limit:?} and report within {:?} more \
             (a fork loop?). What was running:\n{evidence}",
            seen.processes,
            seen.running,
            scaled(GRACE)
        ),
        _ => format!(
            "the harness's supervisor for `{name}` (pid {pid}, state {state}) gave no report within {:?} \
             and was killed; this is a bug in the harness, not in your code. What was running:\n{evidence}\
             Its stderr:\n{stderr}",
            limit + scaled(GRACE),
        ),
    }
}

/// Finds and kills what is left of the test once its supervisor is gone: the members of its
/// cgroups (where there were any), and every process whose environment carries its mark.
/// Returns a line for each, as it was when found.
fn sweep(supervisor: Pid, token: &str) -> Vec<String> {
    let mut cg = Confinement::of_supervisor(supervisor);
    let mark = format!("{TREE_ENV}={token}");
    let me = std::process::id() as i32;
    let mut found: BTreeMap<(i32, u64), String> = BTreeMap::new();
    let start = Instant::now();
    let mut pause = Duration::from_micros(100);
    loop {
        let members = cg.members();
        let left: Vec<Stat> = procfs::all()
            .into_iter()
            .filter(|s| s.pid != me && procfs::alive(s))
            .filter(|s| {
                members.contains(&s.pid) || procfs::environ_has(Pid::from_raw(s.pid), &mark)
            })
            .collect();
        if left.is_empty() || start.elapsed() > KILL_LIMIT {
            break;
        }
        for s in &left {
            found.entry((s.pid, s.starttime)).or_insert_with(|| {
                format!(
                    "  pid {} ({}, session {}): {}",
                    s.pid,
                    evidence::state_word(s.state),
                    s.session,
                    procfs::cmdline(Pid::from_raw(s.pid))
                )
            });
        }
        cg.kill_all();
        supervisor::stop_and_kill(&left);
        thread::sleep(pause);
        pause = (pause * 2).min(Duration::from_millis(5));
    }
    let _ = cg.remove();
    found.into_values().collect()
}

/// The report with what [`sweep`] found added: a test that left processes behind its
/// supervisor has not passed.
fn with_leftovers(mut report: Report, left: &[String]) -> Report {
    if left.is_empty() {
        return report;
    }
    if report.verdict == Verdict::Passed {
        report.verdict = Verdict::Failed;
    }
    report.message = format!(
        "{}\nThese of the test's processes outlived its supervisor and were killed:\n{}",
        report.message,
        left.join("\n")
    );
    report
}

/// The supervisor's report: the first set of records after a [`protocol::REPORT_MARK`] that
/// are sealed with this test's token. Anything else on the supervisor's stdout (libtest's own
/// lines, bytes some other process managed to write there) is passed over.
fn find_report(out: &[u8], seal: &str) -> Option<Report> {
    let mark = protocol::REPORT_MARK.as_bytes();
    let starts = out
        .windows(mark.len())
        .enumerate()
        .filter(|(_, w)| *w == mark)
        .map(|(at, _)| at + mark.len());
    starts.into_iter().find_map(|at| {
        let (recs, _) = protocol::sealed_records(seal, &out[at..]);
        let get = |tag: &str| recs.iter().find(|(t, _)| t == tag).map(|(_, v)| v.clone());
        Some(Report {
            verdict: Verdict::from_word(&get(protocol::report::VERDICT)?)?,
            message: get(protocol::report::MESSAGE).unwrap_or_default(),
            output: get(protocol::report::OUTPUT).unwrap_or_default(),
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_sealed_report_counts() {
        let sealed = |token: &str, verdict: &str, message: &str| {
            let mut out = protocol::REPORT_MARK.as_bytes().to_vec();
            out.extend(protocol::frame(
                &protocol::seal(token, protocol::report::VERDICT),
                verdict,
            ));
            out.extend(protocol::frame(
                &protocol::seal(token, protocol::report::MESSAGE),
                message,
            ));
            out
        };
        let mut out = b"running 1 test\n".to_vec();
        out.extend(sealed("forged", "passed", "all good"));
        out.extend(sealed("7e57", "failed", "the real one"));
        out.extend(sealed("forged", "passed", "after"));
        let r = find_report(&out, "7e57").unwrap();
        assert_eq!(
            (r.verdict, r.message.as_str()),
            (Verdict::Failed, "the real one")
        );
        assert!(find_report(&out, "0ther").is_none());
    }

    fn seen(state: char, running: usize) -> Seen {
        Seen {
            pid: Pid::from_raw(42),
            state: Some(state),
            processes: 64,
            running,
            cpus: 2,
            evidence: "(table)\n".into(),
        }
    }

    /// The harness is blamed only when nothing the test process can see explains the silence.
    #[test]
    fn a_silent_supervisor_is_explained_by_what_can_be_seen() {
        let limit = Duration::from_secs(1);
        let stopped = explain("t", &seen('T', 0), limit, "");
        assert!(
            stopped.starts_with("the supervisor (pid 42) was stopped by a signal (state T)"),
            "{stopped}"
        );
        let starved = explain("t", &seen('R', 64), limit, "");
        assert!(
            starved.starts_with(
                "the test's processes (64 of them, 64 running) kept the supervisor (pid 42"
            ),
            "{starved}"
        );
        for (state, running) in [('R', 1), ('S', 64), ('D', 0)] {
            let bug = explain("t", &seen(state, running), limit, "");
            assert!(bug.contains("this is a bug in the harness"), "{bug}");
        }
    }

    #[test]
    fn a_re_exec_that_runs_no_test_fails_loudly() {
        let r = spawn_supervisor(&Isolation::new(), "no::such::test");
        assert_eq!(r.verdict, Verdict::Failed);
        assert!(r.message.contains("did not run `no::such::test`"), "{r:?}");
    }
}
