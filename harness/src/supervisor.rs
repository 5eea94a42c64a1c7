// depends on: options, protocol, report, body, cgroup, evidence, procfs, raw, secret (stage C; never isolate).
//! The supervisor (C): runs in the re-executed test binary, forks the body process (B), and
//! watches it with a deadline. Whatever happens it then kills and reaps every descendant,
//! removes the scratch directory and the cgroup, and prints one framed report for the parent.
//! If the test process that started it dies first, it cleans up the same way and leaves.
//!
//! C is a child subreaper (prctl(2) `PR_SET_CHILD_SUBREAPER`): a process that loses its parent
//! anywhere below C is re-parented to C rather than to init, so a daemon that double-forked
//! and called setsid(2) is still found, killed and reaped here.
use std::io::Write;
use std::os::fd::{AsFd, BorrowedFd, FromRawFd, OwnedFd};
use std::path::PathBuf;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use nix::errno::Errno;
use nix::fcntl::{FcntlArg, OFlag, fcntl};
use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
use nix::sys::signal::{Signal, kill};
use nix::sys::wait::{WaitPidFlag, WaitStatus, waitpid};
use nix::unistd::{ForkResult, Pid, fork, getppid, pipe2, read};
use oskata_protocol::{self as protocol, Verdict};

use crate::body::{self, Setup};
use crate::cgroup::PidsCgroup;
use crate::evidence;
use crate::options::{Isolation, PARENT_ENV};
use crate::procfs;
use crate::raw;
use crate::report::Report;
use crate::secret;

/// How much of the test's output is kept: the start and the end, with a count of what fell
/// in between, so a flood of output costs memory once and never stalls the writers.
const KEEP_HEAD: usize = 32 * 1024;
const KEEP_TAIL: usize = 16 * 1024;

/// This test's token, which seals the report (see `secret.rs`).
static TOKEN: OnceLock<String> = OnceLock::new();

pub(crate) fn run(opts: &Isolation, name: &str, body: impl FnOnce()) -> ! {
    let token = match secret::receive() {
        Ok(token) => TOKEN.get_or_init(|| token),
        Err(e) => {
            eprintln!("oskata-harness: {e}");
            std::process::exit(1)
        }
    };
    let me = Pid::this();
    let parent = Parent::watch();
    // Not dumpable: no other process of the user may open /proc/<this pid>/fd/1, the pipe
    // the parent reads the report from (the body gives up CAP_SYS_PTRACE, which would).
    if let Err(e) = raw::set_dumpable(false) {
        finish(fatal(format!(
            "cannot make the supervisor non-dumpable (PR_SET_DUMPABLE): {e}"
        )));
    }
    if let Err(e) = raw::become_subreaper() {
        finish(fatal(format!("cannot become a child subreaper: {e}")));
    }
    let (res_r, res_w) = match pipe2(OFlag::O_CLOEXEC) {
        Ok(pipe) => pipe,
        Err(e) => finish(fatal(format!("pipe2 failed: {e}"))),
    };
    let (out_r, out_w) = match pipe2(OFlag::O_CLOEXEC) {
        Ok(pipe) => pipe,
        Err(e) => finish(fatal(format!("pipe2 failed: {e}"))),
    };
    // The supervisor drains both pipes without ever blocking on them, since a daemon may hold
    // a write end open for ever: a blocking read would hang it past the deadline. So a pipe
    // that cannot be made non-blocking fails the test. (Set before the fork, on the read ends
    // only, so no body has run yet.)
    for fd in [&res_r, &out_r] {
        if let Err(e) = fcntl(fd, FcntlArg::F_SETFL(OFlag::O_NONBLOCK)) {
            finish(fatal(format!(
                "cannot make the supervisor's pipes non-blocking (fcntl O_NONBLOCK): {e}"
            )));
        }
    }
    let scratch = scratch_path(me.as_raw() as u32);
    if let Err(e) = std::fs::create_dir_all(&scratch) {
        finish(fatal(format!(
            "cannot create the scratch directory {}: {e}",
            scratch.display()
        )));
    }
    let cgroup = PidsCgroup::create().ok();
    let _ = std::io::stdout().flush();

    // SAFETY: the body process only runs the harness's own setup and then the test body; the
    // other thread of this process (libtest's main thread) is parked waiting for the test.
    match unsafe { fork() } {
        Ok(ForkResult::Child) => {
            drop(res_r);
            drop(out_r);
            body::run(
                opts,
                body,
                Setup {
                    result: res_w,
                    output: out_w,
                    scratch,
                    cgroup: cgroup.as_ref(),
                    test: name,
                    token,
                },
            )
        }
        Ok(ForkResult::Parent { child }) => {
            drop(res_w);
            drop(out_w);
            let report = supervise(opts, child, res_r, out_r, &parent);
            kill_tree(me);
            let _ = std::fs::remove_dir_all(&scratch);
            drop(cgroup);
            match report {
                Some(report) => finish(report),
                // Nobody is left to read a report.
                None => std::process::exit(1),
            }
        }
        Err(e) => {
            let _ = std::fs::remove_dir_all(&scratch);
            drop(cgroup);
            finish(fatal(format!("fork failed: {e}")))
        }
    }
}

/// The scratch directory of the supervisor with this pid: `$TMPDIR/oskata-<pid>`. The parent
/// test process removes it too once the supervisor is gone, in case the supervisor was killed.
pub(crate) fn scratch_path(supervisor: u32) -> PathBuf {
    std::env::temp_dir().join(format!("oskata-{supervisor}"))
}

/// The test process (P) that started this supervisor. If P dies (Ctrl-C in `cargo test`, or a
/// test runner's own timeout), the supervisor notices, kills the body's whole tree, removes the
/// scratch directory and leaves. A parent-death signal would kill the supervisor at once and
/// orphan the tree instead, so the supervisor watches P through a pidfd (pidfd_open(2)), or by
/// asking getppid(2) now and then where pidfds are missing.
struct Parent {
    pid: Option<Pid>,
    pidfd: Option<OwnedFd>,
}

impl Parent {
    fn watch() -> Parent {
        let pid = std::env::var(PARENT_ENV)
            .ok()
            .and_then(|p| p.parse::<i32>().ok())
            .map(Pid::from_raw);
        let pidfd = pid.and_then(pidfd_open);
        let parent = Parent { pid, pidfd };
        // Checked after pidfd_open, so the pidfd cannot name a newer process with a reused pid.
        if parent.gone() {
            std::process::exit(1);
        }
        parent
    }

    /// Whether the test process has died (this process was re-parented).
    fn gone(&self) -> bool {
        self.pid.is_some_and(|pid| getppid() != pid)
    }
}
/// Prints the report for the parent, each record sealed with the test's token, and leaves this
/// re-executed test binary.
fn finish(report: Report) -> ! {
    let token = TOKEN.get().map_or("", String::as_str);
    let sealed = |tag: &str| protocol::seal(token, tag);
    let mut out = protocol::REPORT_MARK.as_bytes().to_vec();
    out.extend(protocol::frame(
        &sealed(protocol::report::VERDICT),
        report.verdict.word(),
    ));
    out.extend(protocol::frame(
        &sealed(protocol::report::MESSAGE),
        &report.message,
    ));
    out.extend(protocol::frame(
        &sealed(protocol::report::OUTPUT),
        &report.output,
    ));
    let mut stdout = std::io::stdout().lock();
    let _ = stdout.write_all(&out);
    let _ = stdout.flush();
    std::process::exit(0)
}

fn fatal(message: String) -> Report {
    Report {
        verdict: Verdict::Failed,
        message: format!("oskata-harness: {message}"),
        output: String::new(),
    }
}

/// Output kept within bounds.
#[derive(Default)]
struct Captured {
    head: Vec<u8>,
    tail: Vec<u8>,
    dropped: usize,
}

impl Captured {
    fn push(&mut self, mut bytes: &[u8]) {
        let room = KEEP_HEAD.saturating_sub(self.head.len());
        let take = room.min(bytes.len());
        self.head.extend_from_slice(&bytes[..take]);
        bytes = &bytes[take..];
        self.tail.extend_from_slice(bytes);
        if self.tail.len() > KEEP_TAIL {
            let cut = self.tail.len() - KEEP_TAIL;
            self.dropped += cut;
            self.tail.drain(..cut);
        }
    }

    fn text(&self) -> String {
        let mut s = String::from_utf8_lossy(&self.head).into_owned();
        if self.dropped > 0 {
            s.push_str(&format!(
                "\n[... {} bytes of output left out ...]\n",
                self.dropped
            ));
        }
        s.push_str(&String::from_utf8_lossy(&self.tail));
        s
    }
}

/// Reads whatever `fd` has now; returns false at end-of-file.
fn drain(fd: BorrowedFd<'_>, sink: &mut dyn FnMut(&[u8])) -> bool {
    let mut buf = [0u8; 16 * 1024];
    loop {
        match read(fd, &mut buf) {
            Ok(0) => return false,
            Ok(n) => sink(&buf[..n]),
            Err(Errno::EINTR) => continue,
            Err(_) => return true, // EAGAIN: nothing more for now
        }
    }
}

fn pidfd_open(pid: Pid) -> Option<OwnedFd> {
    // SAFETY: pidfd_open(2) takes a pid and flags and returns a new fd or -1.
    let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid.as_raw(), 0) };
    // SAFETY: a non-negative return is a fresh fd that we now own.
    (fd >= 0).then(|| unsafe { OwnedFd::from_raw_fd(fd as i32) })
}

enum Ending {
    Exited(WaitStatus),
    Deadline(String),
}

/// Watches the body until it exits or its deadline passes, and returns the report; `None` when
/// the test process that wanted the report has died.
fn supervise(
    opts: &Isolation,
    child: Pid,
    res_r: OwnedFd,
    out_r: OwnedFd,
    parent: &Parent,
) -> Option<Report> {
    let pidfd = pidfd_open(child);
    let start = Instant::now();
    let limit = opts.limit();
    let mut results = Vec::new();
    let mut output = Captured::default();
    let (mut res_open, mut out_open) = (true, true);
    let ending = loop {
        let left = limit.saturating_sub(start.elapsed());
        if left.is_zero() {
            let procs = procfs::descendants(Pid::this());
            break Ending::Deadline(evidence::describe(&procs));
        }
        let mut fds = Vec::new();
        if res_open {
            fds.push(PollFd::new(res_r.as_fd(), PollFlags::POLLIN));
        }
        if out_open {
            fds.push(PollFd::new(out_r.as_fd(), PollFlags::POLLIN));
        }
        if let Some(p) = &pidfd {
            fds.push(PollFd::new(p.as_fd(), PollFlags::POLLIN));
        }
        if let Some(p) = &parent.pidfd {
            fds.push(PollFd::new(p.as_fd(), PollFlags::POLLIN));
        }
        // Without pidfds, wake up now and then to ask waitpid and getppid.
        let tick = if pidfd.is_some() && (parent.pid.is_none() || parent.pidfd.is_some()) {
            left
        } else {
            left.min(Duration::from_millis(10))
        };
        let _ = poll(
            &mut fds,
            PollTimeout::try_from(tick.as_millis().max(1) as i32).unwrap_or(PollTimeout::MAX),
        );
        drop(fds);
        if parent.gone() {
            return None;
        }
        if res_open {
            res_open = drain(res_r.as_fd(), &mut |b| results.extend_from_slice(b));
        }
        if out_open {
            out_open = drain(out_r.as_fd(), &mut |b| output.push(b));
        }
        match waitpid(child, Some(WaitPidFlag::WNOHANG)) {
            Ok(WaitStatus::StillAlive) | Err(Errno::EINTR) => {}
            Ok(status) => break Ending::Exited(status),
            Err(e) => break Ending::Exited(WaitStatus::Exited(child, -(e as i32))),
        }
    };
    // Collect what is still in the pipes (a daemon may hold them open: never wait for EOF).
    drain(res_r.as_fd(), &mut |b| results.extend_from_slice(b));
    drain(out_r.as_fd(), &mut |b| output.push(b));
    let token = TOKEN.get().map_or("", String::as_str);
    let (mut records, forged) = protocol::sealed_records(token, &results);
    if forged > 0 {
        records.push((
            protocol::body::NOTE.to_owned(),
            format!(
                "{forged} record(s) on the harness's result pipe were not sealed by the harness and were \
                 ignored: something in the test wrote into the pipe (found in /proc/self/fd?)"
            ),
        ));
    }
    Some(verdict(opts, ending, &records, output.text()))
}

/// The verdict on the body's records (tags of [`protocol::body`]) and how it ended.
fn verdict(
    opts: &Isolation,
    ending: Ending,
    records: &[(String, String)],
    output: String,
) -> Report {
    use protocol::body as record;
    let all = |tag: &str| {
        records
            .iter()
            .filter(|(t, _)| t == tag)
            .map(|(_, v)| v.as_str())
            .collect::<Vec<_>>()
    };
    let strays = all(record::STRAY);
    let mut notes: Vec<String> = all(record::NOTE)
        .iter()
        .map(|n| format!("note: {n}"))
        .collect();
    notes.dedup();
    let with_notes = |msg: String| {
        if notes.is_empty() {
            msg
        } else {
            format!("{msg}\n{}", notes.join("\n"))
        }
    };
    let stray_text = strays.join("\n");

    let (verdict, message) = match ending {
        Ending::Deadline(evidence) => {
            let mut m = format!(
                "the test did not finish within its deadline of {:?}. What was still running:\n{evidence}",
                opts.limit()
            );
            if !strays.is_empty() {
                m = format!("{stray_text}\n{m}");
            }
            (Verdict::TimedOut, m)
        }
        Ending::Exited(_) if !strays.is_empty() => (Verdict::Failed, stray_text),
        Ending::Exited(status) => {
            if let Some(msg) = all(record::NOT_STARTED).first() {
                (Verdict::NotStarted, msg.to_string())
            } else if let Some(msg) = all(record::PANIC).first() {
                (Verdict::Failed, msg.to_string())
            } else if let Some(msg) = all(record::LEAK).first() {
                (Verdict::Leaked, msg.to_string())
            } else if !all(record::PASS).is_empty() {
                (Verdict::Passed, String::new())
            } else {
                match status {
                    WaitStatus::Signaled(pid, sig, core) => (
                        Verdict::Crashed,
                        format!(
                            "the test process (pid {pid}) was killed by {sig}{} before the test finished",
                            if core { " (core dumped)" } else { "" }
                        ),
                    ),
                    WaitStatus::Exited(pid, code) => (
                        Verdict::Failed,
                        format!(
                            "the test process (pid {pid}) exited with status {code} in the middle of the test: \
                             something called exit() in the process that runs the test, where only a forked child should exit"
                        ),
                    ),
                    other => (
                        Verdict::Failed,
                        format!("the test process ended oddly: {other:?}"),
                    ),
                }
            }
        }
    };
    Report {
        verdict,
        message: with_notes(message),
        output,
    }
}

/// Kills a supervisor that gave no report, and everything under it, from outside: stops it
/// first (it is the subreaper, so orphans below it stay below it), then stops and kills its
/// descendants, then kills it. Its parent reaps it; the init process or the next subreaper up
/// reaps the rest.
pub(crate) fn kill_from_outside(supervisor: Pid) {
    let _ = kill(supervisor, Signal::SIGSTOP);
    let start = Instant::now();
    loop {
        let alive: Vec<_> = procfs::descendants(supervisor)
            .into_iter()
            .filter(|p| p.state != 'Z')
            .collect();
        if alive.is_empty() || start.elapsed() > Duration::from_secs(5) {
            break;
        }
        for p in &alive {
            let _ = kill(Pid::from_raw(p.pid), Signal::SIGSTOP);
        }
        for p in &alive {
            let _ = kill(Pid::from_raw(p.pid), Signal::SIGKILL);
        }
        std::thread::sleep(Duration::from_millis(1));
    }
    let _ = kill(supervisor, Signal::SIGKILL);
}

/// Kills and reaps every descendant of this process (which is their subreaper), repeating
/// until none is left: stop them all first so none can fork while the others die.
fn kill_tree(me: Pid) {
    let start = Instant::now();
    loop {
        while let Ok(status) = waitpid(
            None::<Pid>,
            Some(WaitPidFlag::WNOHANG | WaitPidFlag::__WALL),
        ) {
            if status == WaitStatus::StillAlive {
                break;
            }
        }
        let procs = procfs::descendants(me);
        if procs.is_empty() || start.elapsed() > Duration::from_secs(5) {
            return;
        }
        for p in procs.iter().filter(|p| p.state != 'Z') {
            let _ = kill(Pid::from_raw(p.pid), Signal::SIGSTOP);
        }
        for p in procs.iter().filter(|p| p.state != 'Z') {
            let _ = kill(Pid::from_raw(p.pid), Signal::SIGKILL);
        }
        std::thread::sleep(Duration::from_millis(1));
    }
}
