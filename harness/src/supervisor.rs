// depends on: options, protocol, report, body, cgroup, evidence, procfs, raw, scratch, secret (stage C; never isolate).
//! The supervisor (C): runs in the re-executed test binary, forks the body process (B), and
//! watches it with a deadline. Whatever happens it then kills and reaps every descendant,
//! removes the scratch directory and the cgroups, and prints one framed report for the parent.
//! If the test process that started it dies first, it cleans up the same way and leaves.
//!
//! C is a child subreaper (prctl(2) `PR_SET_CHILD_SUBREAPER`): a process that loses its parent
//! anywhere below C is re-parented to C rather than to init, so a daemon that double-forked
//! and called setsid(2) is still found, killed and reaped here. Nothing can leave C's subtree
//! while C lives; but a process can start *beside* B (clone(2) with `CLONE_PARENT` makes it a
//! child of C), where B's leak check cannot see it, so C looks at its own children too.
use std::collections::BTreeMap;
use std::io::Write;
use std::os::fd::{AsFd, BorrowedFd, FromRawFd, OwnedFd};
use std::path::PathBuf;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use nix::errno::Errno;
use nix::fcntl::{FcntlArg, OFlag, fcntl};
use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
use nix::sys::signal::{Signal, kill, killpg};
use nix::sys::stat::{SFlag, fstat};
use nix::sys::wait::{WaitPidFlag, WaitStatus, waitpid};
use nix::unistd::{ForkResult, Pid, fork, getpgrp, getppid, pipe2, read, write};
use oskata_protocol::{self as protocol, Verdict};

use crate::body::{self, Setup};
use crate::cgroup::Confinement;
use crate::evidence;
use crate::options::{Isolation, PARENT_ENV};
use crate::procfs::{self, Stat};
use crate::raw;
use crate::report::Report;
use crate::scratch;
use crate::secret;

/// How much of the test's output is kept: the start and the end, with a count of what fell
/// in between, so a flood of output costs memory once and never stalls the writers.
const KEEP_HEAD: usize = 32 * 1024;
const KEEP_TAIL: usize = 16 * 1024;
/// How often the supervisor looks at its own children while the body runs.
const TICK: Duration = Duration::from_millis(50);
/// How long stopping the tree at the deadline may take before the evidence is read anyway.
const STOP_LIMIT: Duration = Duration::from_secs(2);
/// How long killing the tree may take before the survivors are reported.
const KILL_LIMIT: Duration = Duration::from_secs(5);
/// How long the report may take to reach the test process once it is written.
const REPORT_LIMIT: Duration = Duration::from_secs(10);
/// `PF_EXITING` in `/proc/<pid>/stat`'s flags: the task has begun to exit.
const PF_EXITING: u32 = 0x4;

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
    // Its own pipes are not the test's business: the evidence leaves them out.
    evidence::hide_pipes(
        [&res_r, &out_r]
            .iter()
            .filter_map(|fd| nix::sys::stat::fstat(fd).ok())
            .map(|st| st.st_ino)
            .collect(),
    );
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
    // A promise: the test's limits hold, and at the deadline the tree stops at once, where a
    // cgroup can do it. A hierarchy that is not writable is no error (the body falls back to
    // rlimits); a cgroup made but not set up is.
    let mut confinement = match Confinement::create(me, opts.limits) {
        Ok(c) => c,
        Err(e) => {
            let _ = scratch::remove_tree(&scratch);
            finish(fatal(e))
        }
    };
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
                    cgroup: Some(&confinement),
                    test: name,
                    token,
                },
            )
        }
        Ok(ForkResult::Parent { child }) => {
            drop(res_w);
            drop(out_w);
            let report = match confinement.enter(child) {
                Ok(()) => supervise(opts, child, res_r, out_r, &parent, &confinement),
                Err(e) => Some(fatal(e)),
            };
            let mut problems = Vec::new();
            let survivors = kill_tree(me, &confinement);
            if !survivors.is_empty() {
                problems.push(format!(
                    "oskata-harness: these of the test's processes could not be killed within {KILL_LIMIT:?}:\n{}",
                    evidence::process_table(&survivors)
                ));
            }
            if let Err(e) = scratch::remove_tree(&scratch)
                && e.kind() != std::io::ErrorKind::NotFound
            {
                problems.push(format!(
                    "oskata-harness: cannot remove the scratch directory {}: {e}",
                    scratch.display()
                ));
            }
            if let Err(e) = confinement.remove() {
                problems.push(format!("oskata-harness: {e}"));
            }
            match report {
                Some(report) => finish(with_problems(report, &problems)),
                // Nobody is left to read a report.
                None => std::process::exit(1),
            }
        }
        Err(e) => {
            let _ = scratch::remove_tree(&scratch);
            drop(confinement);
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
    /// Reads P's pid from [`PARENT_ENV`] (a value that is not a pid fails the test) and opens a
    /// pidfd on it; leaves at once if P is already gone.
    fn watch() -> Parent {
        let pid = match std::env::var(PARENT_ENV) {
            Err(_) => None,
            Ok(text) => match text.parse::<i32>() {
                Ok(pid) if pid > 0 => Some(Pid::from_raw(pid)),
                _ => finish(fatal(format!("{PARENT_ENV} is not a pid: {text:?}"))),
            },
        };
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
/// re-executed test binary. The write never blocks for longer than [`REPORT_LIMIT`], even if
/// the parent stopped reading.
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
    let _ = std::io::stdout().flush();
    write_within(std::io::stdout().as_fd(), &out, REPORT_LIMIT);
    std::process::exit(0)
}

/// Writes `bytes` to `fd`, waiting for room at most `limit` in all. Only a pipe (the test
/// process's, in every real run) is made non-blocking: a terminal's open file is shared with
/// the shell, which would be left non-blocking too; such a write may block.
fn write_within(fd: BorrowedFd<'_>, mut bytes: &[u8], limit: Duration) {
    let pipe = fstat(fd)
        .is_ok_and(|st| SFlag::from_bits_truncate(st.st_mode) & SFlag::S_IFMT == SFlag::S_IFIFO);
    if let (true, Ok(flags)) = (pipe, fcntl(fd, FcntlArg::F_GETFL)) {
        let flags = OFlag::from_bits_truncate(flags) | OFlag::O_NONBLOCK;
        let _ = fcntl(fd, FcntlArg::F_SETFL(flags));
    }
    let start = Instant::now();
    while !bytes.is_empty() {
        let left = limit.saturating_sub(start.elapsed());
        if left.is_zero() {
            return;
        }
        match write(fd, bytes) {
            Ok(n) => bytes = &bytes[n..],
            Err(Errno::EAGAIN | Errno::EINTR) => {
                let mut fds = [PollFd::new(fd, PollFlags::POLLOUT)];
                let _ = poll(&mut fds, millis(left.min(TICK)));
            }
            Err(_) => return, // EPIPE: nobody reads any more
        }
    }
}

fn fatal(message: String) -> Report {
    Report {
        verdict: Verdict::Failed,
        message: format!("oskata-harness: {message}"),
        output: String::new(),
    }
}

/// The report with the harness's own cleanup problems added: a test that left something the
/// harness could not remove has not passed.
fn with_problems(mut report: Report, problems: &[String]) -> Report {
    if problems.is_empty() {
        return report;
    }
    if report.verdict == Verdict::Passed {
        report.verdict = Verdict::Failed;
    }
    let mut message = std::mem::take(&mut report.message);
    for p in problems {
        if !message.is_empty() {
            message.push('\n');
        }
        message.push_str(p);
    }
    report.message = message;
    report
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

/// A pidfd on `pid` (pidfd_open(2)), or `None` where the kernel has none.
pub(crate) fn pidfd_open(pid: Pid) -> Option<OwnedFd> {
    // SAFETY: pidfd_open(2) takes a pid and flags and returns a new fd or -1.
    let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid.as_raw(), 0) };
    // SAFETY: a non-negative return is a fresh fd that we now own.
    (fd >= 0).then(|| unsafe { OwnedFd::from_raw_fd(fd as i32) })
}

/// A poll(2) timeout of `d`, at least 1 ms.
fn millis(d: Duration) -> PollTimeout {
    PollTimeout::try_from(d.as_millis().clamp(1, i32::MAX as u128) as i32)
        .unwrap_or(PollTimeout::MAX)
}

enum Ending {
    Exited(WaitStatus),
    /// The deadline passed: the evidence, read with the tree stopped.
    Deadline(String),
    /// The body moved itself out of the test's cgroup: stopped at once, with the evidence.
    Escaped(String),
    /// waitpid on the body failed: a harness error.
    Lost(Errno),
}

/// Something the supervisor itself saw, beyond what the body reported: a process beside the
/// body, one that left the test's cgroup, a zombie leader, the OOM killer.
struct Finding {
    verdict: Verdict,
    text: String,
}

/// The body's two pipes (records and output), drained without ever blocking: a daemon may
/// hold a write end open for ever.
struct Pipes {
    results_fd: OwnedFd,
    output_fd: OwnedFd,
    open: [bool; 2],
    results: Vec<u8>,
    output: Captured,
}

impl Pipes {
    fn new(results_fd: OwnedFd, output_fd: OwnedFd) -> Pipes {
        Pipes {
            results_fd,
            output_fd,
            open: [true; 2],
            results: Vec::new(),
            output: Captured::default(),
        }
    }

    /// Waits at most `tick` for either open pipe or any of `also` to be ready, then drains.
    fn wait(&mut self, also: &[Option<&OwnedFd>], tick: Duration) {
        let ends = [&self.results_fd, &self.output_fd];
        let mut fds: Vec<PollFd> = ends
            .iter()
            .zip(self.open)
            .filter(|(_, open)| *open)
            .map(|(fd, _)| fd.as_fd())
            .chain(also.iter().flatten().map(|fd| fd.as_fd()))
            .map(|fd| PollFd::new(fd, PollFlags::POLLIN))
            .collect();
        let _ = poll(&mut fds, millis(tick));
        drop(fds);
        self.drain();
    }

    /// Reads what the open pipes have now, closing each at end-of-file.
    fn drain(&mut self) {
        if self.open[0] {
            let results = &mut self.results;
            self.open[0] = drain(self.results_fd.as_fd(), &mut |b| {
                results.extend_from_slice(b)
            });
        }
        if self.open[1] {
            let output = &mut self.output;
            self.open[1] = drain(self.output_fd.as_fd(), &mut |b| output.push(b));
        }
    }
}

/// Watches the body until it exits, its deadline passes or it leaves its cgroups, and returns
/// the report; `None` when the test process that wanted the report has died.
fn supervise(
    opts: &Isolation,
    child: Pid,
    res_r: OwnedFd,
    out_r: OwnedFd,
    parent: &Parent,
    cg: &Confinement,
) -> Option<Report> {
    let me = Pid::this();
    let pidfd = pidfd_open(child);
    let deadline = Instant::now() + opts.limit();
    let mut pipes = Pipes::new(res_r, out_r);
    let mut beside = Beside::default();
    let (ending, mut findings) = loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            let (evidence, found) = stop_and_read(me, child, cg, &mut beside);
            break (Ending::Deadline(evidence), found);
        }
        // Out of its cgroups (where the supervisor put it) the body is no longer limited: end
        // the test now.
        // (What it moved to is told from what was seen now: by the time the tree is stopped
        // the body may have begun to exit, and an exiting task shows no cgroups.)
        if let Some(moved) = cg.left(child.as_raw()) {
            let comm = procfs::stat(child).map_or_else(|_| "?".to_owned(), |s| s.comm);
            let (evidence, mut found) = stop_and_read(me, child, cg, &mut beside);
            found.retain(|f| !f.text.starts_with(&format!("pid {child} (")));
            found.insert(0, escaped(child.as_raw(), &comm, &moved));
            break (Ending::Escaped(evidence), found);
        }
        // Wake up now and then to look for processes started beside the body (and, without
        // pidfds, to ask waitpid and getppid).
        pipes.wait(&[pidfd.as_ref(), parent.pidfd.as_ref()], left.min(TICK));
        if parent.gone() {
            return None;
        }
        beside.look(me, child);
        match waitpid(child, Some(WaitPidFlag::WNOHANG)) {
            Ok(WaitStatus::StillAlive) | Err(Errno::EINTR) => {}
            Ok(status) => break (Ending::Exited(status), Vec::new()),
            Err(e) => break (Ending::Lost(e), Vec::new()),
        }
    };
    pipes.drain();
    let token = TOKEN.get().map_or("", String::as_str);
    let (mut records, forged) = protocol::sealed_records(token, &pipes.results);
    if forged > 0 {
        records.push((
            protocol::body::NOTE.to_owned(),
            format!(
                "{forged} record(s) on the harness's result pipe were not sealed by the harness and were \
                 ignored: something in the test wrote into the pipe (found in /proc/self/fd?)"
            ),
        ));
    }
    let output = pipes.output.text();
    if let Ending::Exited(status) = &ending {
        findings = after_exit(me, cg, &records, &mut beside, *status, &output);
    }
    Some(verdict(opts, ending, &records, output, findings))
}

/// What the supervisor sees of its tree once the body has exited (and its children were
/// re-parented here): processes beside the body, zombie leaders, processes that left the
/// test's cgroup, the OOM killer's work, an allocation that failed at the address-space limit.
fn after_exit(
    me: Pid,
    cg: &Confinement,
    records: &[(String, String)],
    beside: &mut Beside,
    status: WaitStatus,
    output: &str,
) -> Vec<Finding> {
    // A body that passed had no descendants left (its leak check saw none), so none came here
    // from it: every child of the supervisor now was started beside it.
    if records.iter().any(|(t, _)| t == protocol::body::PASS) {
        beside.note_all(me);
    }
    let tree = procfs::descendants(me);
    let mut findings = beside.findings();
    findings.extend(
        tree.iter()
            .filter_map(evidence::zombie_leader)
            .map(|text| Finding {
                verdict: Verdict::Leaked,
                text,
            }),
    );
    findings.extend(escapes(&tree, cg));
    findings.extend(memory_findings(cg, status, output));
    findings
}

/// The OOM killer's work in the test's memory cgroup, or an allocation that failed at the
/// per-process address-space limit where there is no memory cgroup.
fn memory_findings(cg: &Confinement, status: WaitStatus, output: &str) -> Option<Finding> {
    let mib = cg.limits().memory >> 20;
    if cg.memory_limited() {
        let kills = cg.oom_kills();
        if kills == 0 {
            return None;
        }
        let victims = cg.oom_victims();
        let who = if victims.is_empty() {
            format!("{kills} of them")
        } else {
            victims.join(", ")
        };
        return Some(Finding {
            verdict: Verdict::Crashed,
            text: format!(
                "the test's processes ran out of the test's memory limit of {mib} MiB (the OOM killer killed {who})"
            ),
        });
    }
    let failed = output
        .lines()
        .find(|l| l.contains("memory allocation of ") && l.contains(" failed"))?;
    let aborted = matches!(status, WaitStatus::Signaled(_, Signal::SIGABRT, _));
    Some(Finding {
        verdict: if aborted {
            Verdict::Crashed
        } else {
            Verdict::Failed
        },
        text: format!(
            "the test's processes ran out of memory: \"{}\". Each may map at most {} MiB of address \
             space (RLIMIT_AS; no memory cgroup is writable here, so the limit is per process)",
            failed.trim(),
            cg.limits().address_space() >> 20
        ),
    })
}

/// The processes of `tree` that left the test's cgroups, one failure each.
fn escapes(tree: &[Stat], cg: &Confinement) -> Vec<Finding> {
    if cg.is_empty() {
        return Vec::new();
    }
    tree.iter()
        .filter(|p| procfs::alive(p))
        .filter_map(|p| Some(escaped(p.pid, &p.comm, &cg.left(p.pid)?)))
        .collect()
}

/// The failure of process `pid` (named `comm`) that left the test's cgroups as `moved` says.
fn escaped(pid: i32, comm: &str, moved: &str) -> Finding {
    Finding {
        verdict: Verdict::Failed,
        text: format!(
            "pid {pid} ({comm}) moved itself out of the test's cgroup ({moved}): out of it, the test's \
             limits on processes and memory no longer hold for it"
        ),
    }
}

/// The children of the supervisor other than the body: started beside it, not under it.
#[derive(Default)]
struct Beside {
    seen: BTreeMap<i32, Stat>,
}

impl Beside {
    /// Notes the supervisor's children other than `body` while `body` lives and is not yet
    /// exiting: until then, no child of the body can have been re-parented here.
    fn look(&mut self, me: Pid, body: Pid) {
        let kids = procfs::child_pids(me);
        if kids.iter().all(|&k| k == body.as_raw()) {
            return;
        }
        let running = procfs::stat(body)
            .is_ok_and(|b| !matches!(b.state, 'Z' | 'X') && b.flags & PF_EXITING == 0);
        if running {
            self.note(kids.into_iter().filter(|&k| k != body.as_raw()));
        }
    }

    /// Notes every child of the supervisor (the body being gone).
    fn note_all(&mut self, me: Pid) {
        self.note(procfs::child_pids(me).into_iter());
    }

    fn note(&mut self, pids: impl Iterator<Item = i32>) {
        for pid in pids {
            if let Ok(s) = procfs::stat(Pid::from_raw(pid)) {
                self.seen.entry(pid).or_insert(s);
            }
        }
    }

    fn findings(&self) -> Vec<Finding> {
        self.seen
            .values()
            .map(|s| {
                let exited = if procfs::alive(s) {
                    ""
                } else {
                    "; it has exited, and only the supervisor could have waited for it"
                };
                Finding {
                    verdict: Verdict::Leaked,
                    text: format!(
                        "pid {} ({}) was started beside the test process, not under it (clone with CLONE_PARENT?): \
                         its parent is the harness's supervisor, so the test's own leak check cannot see it{exited}",
                        s.pid, s.comm
                    ),
                }
            })
            .collect()
    }
}

/// At the deadline (or when the body left its cgroup): stops the tree first (so a fork loop
/// cannot keep the supervisor from reading it, and nothing changes while it is read), then
/// reads the evidence, with each process's state as it was just before the stop. Returns the
/// evidence and the findings; the tree is left stopped, for [`kill_tree`].
fn stop_and_read(
    me: Pid,
    body: Pid,
    cg: &Confinement,
    beside: &mut Beside,
) -> (String, Vec<Finding>) {
    let before = procfs::descendants(me);
    let settled = stop_tree(me, cg);
    let mut tree = procfs::descendants(me);
    states_before(&mut tree, &before);
    beside.look(me, body);
    let mut findings = beside.findings();
    findings.extend(escapes(&tree, cg));
    let mut evidence = evidence::describe(&tree);
    if !settled {
        evidence.push_str(&format!(
            "  (the test's processes did not all stop within {STOP_LIMIT:?}, so some of this may have changed while it was read)\n"
        ));
    }
    (evidence, findings)
}

/// Gives each process of `tree` the state it had in `before` (the same process: same pid and
/// start time), since stopping the tree turns every state into `T` (or `D`, frozen).
pub(crate) fn states_before(tree: &mut [Stat], before: &[Stat]) {
    for p in tree {
        if let Some(b) = before
            .iter()
            .find(|b| b.pid == p.pid && b.starttime == p.starttime)
        {
            p.state = b.state;
        }
    }
}

/// The verdict on the body's records (tags of [`protocol::body`]), how it ended, and what the
/// supervisor found itself (which comes first in the message, and can only make it worse).
fn verdict(
    opts: &Isolation,
    ending: Ending,
    records: &[(String, String)],
    output: String,
    findings: Vec<Finding>,
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
    let stray_text = strays.join("\n");

    let (mut verdict, message) = match ending {
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
        Ending::Escaped(evidence) => (
            Verdict::Failed,
            format!("The test was stopped there. What was running:\n{evidence}"),
        ),
        Ending::Lost(e) => (
            Verdict::Failed,
            format!("oskata-harness: cannot wait for the test process (waitpid): {e}"),
        ),
        Ending::Exited(_) if !strays.is_empty() => (Verdict::Failed, stray_text),
        Ending::Exited(status) => body_verdict(&all, status),
    };
    let mut lines: Vec<String> = Vec::new();
    for f in findings {
        if verdict != Verdict::TimedOut && severity(f.verdict) > severity(verdict) {
            verdict = f.verdict;
        }
        lines.push(f.text);
    }
    if !message.is_empty() {
        lines.push(message);
    }
    lines.extend(notes);
    Report {
        verdict,
        message: lines.join("\n"),
        output,
    }
}

/// How bad a verdict is, for combining the body's with the supervisor's findings.
fn severity(v: Verdict) -> u8 {
    match v {
        Verdict::Passed => 0,
        Verdict::NotStarted => 1,
        Verdict::Leaked => 2,
        Verdict::Failed => 3,
        Verdict::Crashed => 4,
        Verdict::TimedOut => 5,
    }
}

/// The verdict from the body's own records, or from how it ended when it sent none.
fn body_verdict<'a>(all: &dyn Fn(&str) -> Vec<&'a str>, status: WaitStatus) -> (Verdict, String) {
    use protocol::body as record;
    if let Some(msg) = all(record::NOT_STARTED).first() {
        return (Verdict::NotStarted, msg.to_string());
    }
    if let Some(msg) = all(record::PANIC).first() {
        return (Verdict::Failed, msg.to_string());
    }
    if let Some(msg) = all(record::LEAK).first() {
        return (Verdict::Leaked, msg.to_string());
    }
    if !all(record::PASS).is_empty() {
        return (Verdict::Passed, String::new());
    }
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

/// Whether `p` is stopped (`T`, or `t` under a tracer); for a zombie leader, whether all its
/// threads that run on are.
fn stopped(p: &Stat) -> bool {
    if p.state == 'Z' {
        let pid = Pid::from_raw(p.pid);
        return procfs::zombie_leader_threads(p).iter().all(|&tid| {
            procfs::task_stat(pid, tid).is_ok_and(|t| matches!(t.state, 'T' | 't' | 'Z' | 'X'))
        });
    }
    matches!(p.state, 'T' | 't' | 'X')
}

/// Stops every descendant of `root` so none can fork, exit or change the evidence: freezes the
/// test's cgroup where there is a freezer, then sends SIGSTOP to the rest, each process group
/// first (a fork loop stops at once), then each process, until a look finds none running.
/// False if that took longer than [`STOP_LIMIT`].
pub(crate) fn stop_tree(root: Pid, cg: &Confinement) -> bool {
    let frozen = cg.freeze(Duration::from_millis(500));
    let own_groups = [getpgrp().as_raw(), procfs::stat(root).map_or(0, |s| s.pgrp)];
    let mut signalled: Vec<i32> = Vec::new();
    let start = Instant::now();
    let mut pause = Duration::from_micros(100);
    loop {
        let procs = procfs::descendants(root);
        let running: Vec<&Stat> = procs
            .iter()
            .filter(|p| procfs::alive(p) && !stopped(p))
            .filter(|p| !(frozen && cg.in_freezer(p.pid)))
            .collect();
        if running.is_empty() {
            return true;
        }
        if start.elapsed() > STOP_LIMIT {
            return false;
        }
        for p in &running {
            if p.pgrp > 0 && !own_groups.contains(&p.pgrp) && !signalled.contains(&p.pgrp) {
                signalled.push(p.pgrp);
                let _ = killpg(Pid::from_raw(p.pgrp), Signal::SIGSTOP);
            }
        }
        for p in &running {
            let _ = kill(Pid::from_raw(p.pid), Signal::SIGSTOP);
        }
        std::thread::sleep(pause);
        pause = (pause * 2).min(Duration::from_millis(10));
    }
}

/// Kills a supervisor that gave no report, and everything under it, from outside: stops it
/// first (it is the subreaper, so orphans below it stay below it), then kills the test's
/// cgroups and its descendants, then it. Its parent reaps it; the init process or the next
/// subreaper up reaps the rest.
pub(crate) fn kill_from_outside(supervisor: Pid, cg: &Confinement) {
    let _ = kill(supervisor, Signal::SIGSTOP);
    cg.kill_all();
    let start = Instant::now();
    let mut pause = Duration::from_micros(100);
    loop {
        let alive: Vec<Stat> = procfs::descendants(supervisor)
            .into_iter()
            .filter(procfs::alive)
            .collect();
        if alive.is_empty() || start.elapsed() > KILL_LIMIT {
            break;
        }
        stop_and_kill(&alive);
        std::thread::sleep(pause);
        pause = (pause * 2).min(Duration::from_millis(5));
    }
    let _ = kill(supervisor, Signal::SIGKILL);
}

/// SIGSTOP to all (so none forks while the others die), then SIGKILL to all; a signal to a
/// zombie leader's pid reaches the threads that run on.
pub(crate) fn stop_and_kill(procs: &[Stat]) {
    for p in procs {
        let _ = kill(Pid::from_raw(p.pid), Signal::SIGSTOP);
    }
    for p in procs {
        let _ = kill(Pid::from_raw(p.pid), Signal::SIGKILL);
    }
}

/// Kills and reaps every descendant of this process (which is their subreaper), repeating
/// until none is left or [`KILL_LIMIT`] passes; returns the ones still alive then.
fn kill_tree(me: Pid, cg: &Confinement) -> Vec<Stat> {
    cg.kill_all();
    let start = Instant::now();
    let mut pause = Duration::from_micros(100);
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
        if procs.is_empty() {
            return Vec::new();
        }
        let alive: Vec<Stat> = procs.into_iter().filter(procfs::alive).collect();
        if start.elapsed() > KILL_LIMIT {
            return alive;
        }
        stop_and_kill(&alive);
        std::thread::sleep(pause);
        pause = (pause * 2).min(Duration::from_millis(5));
    }
}
