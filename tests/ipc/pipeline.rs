//! ipc/pipeline: a shell pipeline `a | b | c` (管道线) of real programs, made with pipe,
//! fork, dup2 and execvp, every stage reaped and the last one's status returned.
//!
//! What the tests observe, never what the code under test claims:
//! - the bytes that come out of the last stage, read by the test from a pipe of its own, and
//!   the status `waitpid` gave for the last stage (the pid in the returned `WaitStatus` says
//!   which stage it belongs to);
//! - the fd tables of the caller and of every stage in `/proc/<pid>/fd` and `fdinfo`, matched
//!   by pipe inode, while the stages sleep in `read(2)` (seen in `/proc/<pid>/syscall`) after
//!   their exec (`/proc/<pid>/exe` is no longer the test binary);
//! - while the pipeline runs, every stage asleep in `read(2)` on a pipe that no live stage
//!   writes to any more, and the processes still holding that pipe's write end: reported at
//!   once as "stage K never saw EOF because pid N holds the write end of pipe:[inode]"; every
//!   stage asleep in `write(2)` on a pipe whose reader has exited, and who holds its read end
//!   ("stage K never got SIGPIPE because pid N holds the read end ..."); the caller asleep in
//!   `wait4` (or `read(2)`) with every process it waits for asleep on a pipe, waiting for
//!   the holders of that pipe's other end, back to the caller, none of them switched in or out
//!   over several looks (a deadlock, reported while the student's call is still blocked, by a
//!   watching thread that then kills the stages so that the call returns);
//! - after `wait_pipeline`, `waitpid(pid, WNOHANG)` on every stage (`ECHILD`: reaped) and the
//!   caller's children in `/proc`.
//!
//! The contract, clause by clause, and the test that checks each:
//! - the pipeline's output is what its programs make, for 1, 2, 3 and more stages, with
//!   `stdin` as the first stage's stdin and `stdout` as the last one's
//!   (`output_is_what_the_programs_make`, `the_first_stage_reads_the_callers_stdin`);
//! - stages run at the same time: more than a pipe buffer flows through every stage, and
//!   `spawn_pipeline` returns without waiting for any stage (`big_outputs_flow_through`;
//!   `stages_are_wired_in_order_and_keep_only_their_ends`, whose first stage waits for input
//!   the test sends only after `spawn_pipeline` returned; every run: no stage already reaped);
//! - stage K's stdout is the write end of the pipe whose read end is stage K+1's stdin, stderr
//!   is the caller's, and no stage holds any other end of the pipeline's pipes; the pids are
//!   returned in stage order (`stages_are_wired_in_order_and_keep_only_their_ends`);
//! - every unused end is closed everywhere, so the pipeline terminates: each stage sees end of
//!   file (every run, through `finish`), and a writer whose reader exited gets SIGPIPE
//!   (`a_stage_that_exits_early_ends_the_pipeline`: `yes | head -n 1`);
//! - the caller's fds are as before, no pipe end left in it (every run, through `spawn`;
//!   `the_callers_other_fds_are_left_alone`);
//! - a program that cannot be executed makes its stage exit 127, and the stage never returns
//!   into the caller (`a_missing_program_exits_127`);
//! - `wait_pipeline` returns the last stage's status, not the first's nor the worst
//!   (`the_status_is_the_last_stages`), blocks until the stages have exited
//!   (`wait_pipeline_waits_for_stages_still_running`), and reaps every stage (every run:
//!   no zombie, no child left);
//! - bad input is `EINVAL`, with nothing started and no fd left (`bad_input_is_einval`);
//! - a fork that fails part way is returned as the error, after the stages already started
//!   are killed and reaped, with no pipe end left in the caller
//!   (`a_failed_fork_kills_and_reaps_the_stages_started`: the test's tree capped at two more
//!   tasks with `oskata_harness::forks`; skipped, saying so, where no exact cap can be set);
//! - `capture_pipeline` returns the last stage's status and all its output, more than a pipe
//!   holds included, so it reads before it waits, and it closes its own write end before
//!   reading (else "capture_pipeline never saw EOF because pid N holds the write end ...");
//!   it leaves the caller's fds as they were and no child behind
//!   (`capture_pipeline_returns_output_and_status`).

// The exercise under test: your stub (by default), the reference solution (`--features
// solutions`), or a shipped mistake that `cargo grade --mistakes` copies into target/.
#[cfg(not(any(feature = "solutions", feature = "mistake")))]
#[path = "../../exercises/ipc/pipeline.rs"]
#[allow(dead_code)] // a stub does not use all of its API yet
mod pipeline;
#[cfg(all(feature = "solutions", not(feature = "mistake")))]
#[path = "../../solutions/ipc/pipeline.rs"]
mod pipeline;
#[cfg(feature = "mistake")]
#[path = "../../target/oskata-mistake/ipc/pipeline.rs"]
#[rustfmt::skip] // the copy exists only while the proof runs
mod pipeline;
use pipeline::*;

use std::fs;
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::path::PathBuf;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use nix::errno::Errno;
use nix::fcntl::{FcntlArg, OFlag, fcntl};
use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
use nix::sys::signal::{SigSet, Signal, kill};
use nix::sys::wait::{WaitPidFlag, WaitStatus, waitpid};
use nix::unistd::{Pid, getpid, pipe2, read, write};
use oskata_harness::{Isolation, evidence, poll, procfs, scaled, scratch_dir, student};
use rstest::rstest;

/// A pipeline literal, `pl![["echo", "x"], ["wc", "-c"]]`, typed `&[&[&str]]` (rstest passes
/// case arguments as they are, so arrays of different lengths need the slices made here).
macro_rules! pl {
    ($([$($arg:expr),* $(,)?]),* $(,)?) => {
        &[$(&[$($arg),*][..]),*][..]
    };
}

/// How long a correct pipeline may take to start, run or exit (before `scaled`): they need
/// milliseconds; every wrong one is caught by evidence long before this.
const SETTLE: Duration = Duration::from_secs(8);

/// The deadline of every isolated test: past every inner limit, so those report first.
const DEADLINE: Duration = Duration::from_secs(30);

/// A program that exists nowhere on `PATH`.
const MISSING: &str = "oskata-no-such-program";

/// The lesson of every hang caused by an end left open.
const EOF_RULE: &str = "read(2) on a pipe returns 0 (end of file) only when every write end of it is closed in every \
                        process";

// ---------------------------------------------------------------------------------------------
// Reading the kernel's evidence
// ---------------------------------------------------------------------------------------------

/// The kernel's account of the test's processes: table, fds, pipe ends and their holders.
fn evidence_now() -> String {
    format!(
        "What the kernel shows (the test process, the caller, is pid {}):\n{}",
        getpid(),
        evidence::describe(&procfs::tree())
    )
}

/// The path of the test binary, which a forked child runs until its exec.
fn test_exe() -> Option<PathBuf> {
    fs::read_link("/proc/self/exe").ok()
}

/// Whether `pid` has exec'd a program (its `/proc/<pid>/exe` is not the test binary): from
/// then on only the program runs, and it closes no fd it did not open.
fn execed(pid: i32) -> bool {
    match (fs::read_link(format!("/proc/{pid}/exe")), test_exe()) {
        (Ok(exe), Some(me)) => exe != me,
        _ => false,
    }
}

/// The argument vector `pid` runs with, from `/proc/<pid>/cmdline`.
fn cmdline(pid: i32) -> Vec<String> {
    fs::read(format!("/proc/{pid}/cmdline"))
        .map(|b| {
            b.split(|&c| c == 0)
                .filter(|s| !s.is_empty())
                .map(|s| String::from_utf8_lossy(s).into_owned())
                .collect()
        })
        .unwrap_or_default()
}

/// A pipeline as a shell would write it.
fn show(stages: &[&[&str]]) -> String {
    stages
        .iter()
        .map(|s| show_argv(s))
        .collect::<Vec<_>>()
        .join(" | ")
}

/// One argument vector as a shell would write it.
fn show_argv(argv: &[&str]) -> String {
    argv.iter()
        .map(|a| {
            if !a.is_empty()
                && a.chars()
                    .all(|c| c.is_ascii_alphanumeric() || "-_./".contains(c))
            {
                (*a).to_owned()
            } else {
                format!("'{}'", a.replace('\'', r"'\''"))
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// The fd table of `pid`, empty when it cannot be read.
fn fds_of(pid: i32) -> Vec<procfs::Fd> {
    procfs::fds(Pid::from_raw(pid)).unwrap_or_default()
}

/// The pipe inode and fd entry of `fd` in `pid`, if it is a pipe end.
fn pipe_fd(pid: i32, fd: i32) -> Option<procfs::Fd> {
    fds_of(pid)
        .into_iter()
        .find(|f| f.fd == fd && f.pipe_inode().is_some())
}

/// The inode of the pipe `fd` is an end of, in this process.
fn own_inode(fd: &impl AsRawFd) -> u64 {
    let raw = fd.as_raw_fd();
    procfs::fds(getpid())
        .unwrap_or_default()
        .iter()
        .find(|f| f.fd == raw)
        .and_then(procfs::Fd::pipe_inode)
        .expect("the test's own pipe in /proc/self/fd")
}

/// Every end of pipe `inode` open in a live process of the tree, as (pid, fd, is_write_end).
fn ends_of(inode: u64) -> Vec<(i32, i32, bool)> {
    let mut out = Vec::new();
    for p in procfs::tree().iter().filter(|p| p.state != 'Z') {
        for f in fds_of(p.pid) {
            if f.pipe_inode() == Some(inode) {
                out.push((p.pid, f.fd, f.writable()));
            }
        }
    }
    out
}

/// Bytes queued in a pipe (FIONREAD on one of its ends in this process).
fn queued(raw: i32) -> Option<usize> {
    let mut n: libc::c_int = 0;
    // SAFETY: FIONREAD writes one int into `n`; a bad fd only makes the call fail.
    let r = unsafe { libc::ioctl(raw, libc::FIONREAD, &raw mut n) };
    (r >= 0).then_some(n as usize)
}

/// What `pid` is asleep in on a pipe: Some((fd, inode, is_write)) when it sleeps (state S) in
/// read(2) or write(2) (or their vector forms) on a pipe end.
fn asleep_on_pipe(pid: i32) -> Option<(i32, u64, bool)> {
    let p = Pid::from_raw(pid);
    if procfs::state(p) != Some('S') {
        return None;
    }
    let call = procfs::syscall(p)?;
    let writes = [libc::SYS_write, libc::SYS_writev, libc::SYS_pwrite64];
    let (fd, is_write) = if let Some(fd) = procfs::blocked_read_fd(p) {
        (fd, false)
    } else if writes.contains(&call.nr) {
        (call.args[0] as i32, true)
    } else {
        return None;
    };
    let inode = pipe_fd(pid, fd)?.pipe_inode()?;
    Some((fd, inode, is_write))
}

/// Which stage (1-based) `pid` is: by its place in `pids` when known, else by matching its
/// argv with the stages' (several stages alike are told apart by start time).
fn stage_of(pid: i32, stages: &[&[&str]], pids: &[Pid]) -> Option<usize> {
    if let Some(i) = pids.iter().position(|p| p.as_raw() == pid) {
        return Some(i + 1);
    }
    let argv = cmdline(pid);
    let alike: Vec<usize> = (0..stages.len())
        .filter(|&i| {
            stages[i].len() == argv.len() && stages[i].iter().zip(&argv).all(|(a, b)| a == b)
        })
        .collect();
    match alike[..] {
        [] => None,
        [one] => Some(one + 1),
        _ => {
            // Processes running this same argv, in the order they were started.
            let mut same: Vec<procfs::Stat> = procfs::descendants(getpid())
                .into_iter()
                .filter(|s| cmdline(s.pid) == argv)
                .collect();
            same.sort_by_key(|s| (s.starttime, s.pid));
            let rank = same.iter().position(|s| s.pid == pid)?;
            alike.get(rank).map(|i| i + 1)
        }
    }
}

/// "stage K (pid N, `argv`)" or "pid N (`argv`)" for a process that is no stage.
fn name(pid: i32, stages: &[&[&str]], pids: &[Pid]) -> String {
    let argv = cmdline(pid);
    let shown = show_argv(&argv.iter().map(String::as_str).collect::<Vec<_>>());
    match stage_of(pid, stages, pids) {
        Some(k) => format!("stage {k} (pid {pid}, `{shown}`)"),
        None => format!("pid {pid} (`{shown}`)"),
    }
}

/// Who holds an end, and what it should have done: for the messages.
fn holder(
    pid: i32,
    fd: i32,
    stage: usize,
    stages: &[&[&str]],
    pids: &[Pid],
) -> (String, &'static str) {
    if pid == getpid().as_raw() {
        (
            format!("the caller of spawn_pipeline, fd {fd}"),
            "The caller only starts the stages: once a stage is started, the parent must close (drop) its \
             copies of both ends of every pipe that stage uses. It neither reads nor writes them.",
        )
    } else if stage_of(pid, stages, pids) == Some(stage) {
        (
            format!("stage {stage} itself, fd {fd}"),
            "A stage must close every pipe end it inherited except its stdin and stdout before it execs (or the \
             pipes must be close-on-exec): the program never closes fds it did not open, so here it keeps its own \
             pipe open and waits for itself.",
        )
    } else {
        (
            format!("{}, fd {fd}", name(pid, stages, pids)),
            "That process inherited the end at fork (it was forked after the pipe was made) and kept it: each child \
             must close every pipe end it does not use before exec, or the pipes must be close-on-exec.",
        )
    }
}

/// A pipeline that can never finish, from `/proc`: a stage asleep in read(2) on a pipe that no
/// live process writes to on its stdout, while some process still holds a write end; or a
/// stage asleep in write(2) on a full pipe that no live process reads on its stdin (nor the
/// test, on the output pipe `output`), while some process still holds a read end. Holders
/// must be final: the caller (outside student code, or asleep in a system call) or a child
/// that has exec'd.
///
/// `caller_final`: whether the caller's fd table can no longer change (spawn_pipeline has
/// returned). Returns the message, or None.
fn stuck(
    stages: &[&[&str]],
    pids: &[Pid],
    output: Option<u64>,
    caller_final: bool,
) -> Option<String> {
    let me = getpid().as_raw();
    let procs = procfs::tree();
    let live: Vec<i32> = procs
        .iter()
        .filter(|p| p.state != 'Z')
        .map(|p| p.pid)
        .collect();
    let is_final = |pid: i32| if pid == me { caller_final } else { execed(pid) };
    for p in procs.iter().filter(|p| p.pid != me && p.state == 'S') {
        let Some((fd, inode, is_write)) = asleep_on_pipe(p.pid) else {
            continue;
        };
        if !execed(p.pid) {
            continue;
        }
        let Some(stage) = stage_of(p.pid, stages, pids) else {
            continue;
        };
        let ends = ends_of(inode);
        // The process that should feed (or drain) this pipe: a live one with it on its stdout
        // (or stdin), or the test itself draining the pipeline's output.
        let (want_fd, want_write) = if is_write { (0, false) } else { (1, true) };
        let partner = live.iter().any(|&q| {
            q != me
                && fds_of(q).iter().any(|f| {
                    f.fd == want_fd && f.pipe_inode() == Some(inode) && f.writable() == want_write
                })
        }) || (is_write && output == Some(inode));
        if partner {
            continue;
        }
        let others: Vec<(i32, i32)> = ends
            .iter()
            .filter(|&&(_, _, w)| w == want_write)
            .map(|&(pid, fd, _)| (pid, fd))
            .collect();
        if others.is_empty() || !others.iter().all(|&(pid, _)| is_final(pid)) {
            continue;
        }
        let who = name(p.pid, stages, pids);
        let mut lines = Vec::new();
        for (pid, hfd) in others {
            let (desc, advice) = holder(pid, hfd, stage, stages, pids);
            if is_write {
                lines.push(format!(
                    "stage {stage} never got SIGPIPE because pid {pid} holds the read end of pipe:[{inode}] ({desc}). \
                     {who} is asleep in write(2) on fd {fd}: the pipe is full and no live stage reads it any \
                     more (its reader has exited). With no read end open anywhere the kernel would end that \
                     write with SIGPIPE and the stage would finish, as `yes` does in `yes | head -n 1`; a read \
                     end kept by a process that never reads makes the writer wait forever. {advice}"
                ));
            } else {
                lines.push(format!(
                    "stage {stage} never saw EOF because pid {pid} holds the write end of pipe:[{inode}] ({desc}). \
                     {who} is asleep in read(2) on fd {fd}, and no live stage writes into that pipe any more \
                     ({}): {EOF_RULE}. {advice}",
                    if stage == 1 {
                        "it is the stdin the caller gave, and the caller has closed its own end"
                    } else {
                        "the stage before it has exited"
                    }
                ));
            }
        }
        return Some(lines.join("\n"));
    }
    None
}

/// Where a process sleeps on a pipe: (fd, inode, is_write, holders of the other end as
/// (pid, fd)).
type PipeWait = (i32, u64, bool, Vec<(i32, i32)>);

/// What `pid` sleeps waiting for on a pipe, when it is asleep in read(2) or write(2) on a
/// pipe end.
fn waits_on(pid: i32) -> Option<PipeWait> {
    let (fd, inode, is_write) = asleep_on_pipe(pid)?;
    let other = ends_of(inode)
        .into_iter()
        .filter(|&(_, _, w)| w != is_write)
        .map(|(p, f, _)| (p, f))
        .collect();
    Some((fd, inode, is_write, other))
}

/// How many times `pid` has been switched out, voluntarily or not: the same number in two
/// looks means it has not run in between.
fn switches(pid: i32) -> u64 {
    let Ok(st) = procfs::status(Pid::from_raw(pid)) else {
        return u64::MAX;
    };
    ["voluntary_ctxt_switches", "nonvoluntary_ctxt_switches"]
        .iter()
        .filter_map(|k| st.get(k)?.parse::<u64>().ok())
        .sum()
}

/// A hang the caller is part of, while student code runs, and the caller's fds to turn into
/// /dev/null to end it (when the caller waits for itself). The caller is asleep in waitpid on
/// a stage, or in read(2) on a pipe; from there each process waited for is asleep on a pipe
/// (after its exec), waiting for the holders of that pipe's other end, back to the caller.
/// Returns the finding and a fingerprint (who, and how often each was switched out), which
/// must not change over several looks: nothing in the chain runs.
fn caller_deadlock(stages: &[&[&str]], advice: &str) -> Option<(String, Vec<i32>, Vec<u64>)> {
    let me = getpid().as_raw();
    if procfs::state(getpid()) != Some('S') {
        return None;
    }
    let mut print = vec![me as u64, switches(me)];
    let (start, how) = if let Some(x) = procfs::children(getpid())
        .into_iter()
        .find(|c| c.state != 'Z' && procfs::waits_for(getpid(), c))
    {
        (
            vec![x.pid],
            format!("blocked in waitpid for {}", name(x.pid, stages, &[])),
        )
    } else {
        let (fd, inode, false, holders) = waits_on(me)? else {
            return None;
        };
        if holders.is_empty() {
            return None;
        }
        if holders.iter().all(|&(p, _)| p == me) {
            let fds: Vec<i32> = holders.iter().map(|&(_, f)| f).collect();
            let list: Vec<String> = fds.iter().map(i32::to_string).collect();
            return Some((
                format!(
                    "capture_pipeline never saw EOF because pid {me} holds the write end of pipe:[{inode}] (the caller \
                     itself, fd {}). It is asleep in read(2) on fd {fd}, the read end of the pipe whose write end it gave \
                     the last stage as stdout, and no stage holds that write end any more: {EOF_RULE}, the reader's \
                     own included. Once spawn_pipeline has returned, the last stage has its copy: close (drop) the \
                     caller's own before reading.",
                    list.join(", ")
                ),
                fds,
                print,
            ));
        }
        (
            holders
                .iter()
                .map(|&(p, _)| p)
                .filter(|&p| p != me)
                .collect(),
            format!("asleep in read(2) on fd {fd} from pipe:[{inode}]"),
        )
    };
    let mut queue = start;
    let mut seen: Vec<i32> = Vec::new();
    let mut lines = Vec::new();
    while let Some(p) = queue.pop() {
        if p == me || seen.contains(&p) {
            continue;
        }
        seen.push(p);
        if !execed(p) {
            return None;
        }
        let (fd, inode, is_write, holders) = waits_on(p)?;
        print.extend([p as u64, switches(p)]);
        let others: Vec<String> = holders
            .iter()
            .map(|&(h, hfd)| {
                if h == me {
                    format!("the caller (fd {hfd})")
                } else if h == p {
                    format!("itself (fd {hfd})")
                } else {
                    format!("{} (fd {hfd})", name(h, stages, &[]))
                }
            })
            .collect();
        let full = if is_write {
            holders
                .iter()
                .find(|&&(h, _)| h == me)
                .and_then(|&(_, f)| queued(f))
                .map(|n| format!(", which holds {n} bytes (a pipe holds 64 KiB)"))
                .unwrap_or_default()
        } else {
            String::new()
        };
        lines.push(format!(
            "{} is asleep in {} on fd {fd}, pipe:[{inode}]{full}, waiting for the holders of its {} end: {}",
            name(p, stages, &[]),
            if is_write { "write(2)" } else { "read(2)" },
            if is_write { "read" } else { "write" },
            others.join(", ")
        ));
        queue.extend(holders.iter().map(|&(h, _)| h).filter(|&h| h != p));
    }
    if lines.is_empty() {
        return None;
    }
    Some((
        format!(
            "deadlock: the caller (pid {me}) is {how}, and nothing can move: each process waits for another of \
             them, and the caller is among them.\n{}\n{advice}",
            lines.join("\n")
        ),
        Vec::new(),
        print,
    ))
}

/// Kills every descendant of the test and reaps the children, so nothing is left behind.
fn kill_all() {
    for _ in 0..50 {
        let kids = procfs::descendants(getpid());
        if kids.is_empty() {
            break;
        }
        for k in &kids {
            let _ = kill(Pid::from_raw(k.pid), Signal::SIGKILL);
        }
        while let Ok(s) = waitpid(None::<Pid>, Some(WaitPidFlag::WNOHANG)) {
            if s == WaitStatus::StillAlive {
                break;
            }
        }
        thread::sleep(Duration::from_millis(2));
    }
}

/// Stops the pipeline, reaps it, and fails with `msg`.
fn fail(msg: String) -> ! {
    kill_all();
    panic!("{msg}");
}

/// Runs student code that may block (`what` names it) while a thread watches: when the caller
/// is seen in a deadlock with a stage (with `deadlocks`), or the call runs past [`SETTLE`], the
/// thread records why, kills the pipeline until the call returns, and the test fails with it.
fn guarded<T>(
    what: &str,
    stages: &[&[&str]],
    advice: &str,
    deadlocks: bool,
    f: impl FnOnce() -> T,
) -> T {
    struct Done<'a>(&'a AtomicBool);
    impl Drop for Done<'_> {
        fn drop(&mut self) {
            self.0.store(true, Ordering::SeqCst);
        }
    }
    let done = AtomicBool::new(false);
    let verdict: Mutex<Option<String>> = Mutex::new(None);
    let settle = scaled(SETTLE);
    let result = thread::scope(|s| {
        s.spawn(|| {
            let start = Instant::now();
            let mut round = 0;
            let mut seen = 0;
            let mut last_print: Vec<u64> = Vec::new();
            while !done.load(Ordering::SeqCst) {
                let found = if deadlocks {
                    caller_deadlock(stages, advice)
                } else {
                    None
                };
                // The same finding in a few looks in a row, with nobody in it switched in or out
                // in between: nothing moved.
                let (found, unblock) = match found {
                    Some((msg, fds, print)) => {
                        seen = if print == last_print { seen + 1 } else { 1 };
                        last_print = print;
                        if seen >= 4 {
                            (Some(msg), fds)
                        } else {
                            (None, Vec::new())
                        }
                    }
                    None => {
                        seen = 0;
                        last_print.clear();
                        (None, Vec::new())
                    }
                };
                let late = (start.elapsed() > settle).then(|| {
                    format!(
                        "{what} had not returned after {settle:?}.\n{}",
                        evidence_now()
                    )
                });
                if let Some(msg) = found.map(|m| format!("{m}\n{}", evidence_now())).or(late) {
                    *verdict.lock().unwrap() = Some(msg);
                    // The caller waits for an end it holds itself: put /dev/null in its place,
                    // so that its read sees end of file and the call returns.
                    if let Ok(null) = fs::File::open("/dev/null") {
                        for fd in unblock {
                            // SAFETY: replaces the caller's own fd `fd` (a pipe's write end) by a
                            // copy of /dev/null; the fd stays open, so its owner's close is sound.
                            unsafe { libc::dup2(null.as_raw_fd(), fd) };
                        }
                    }
                    while !done.load(Ordering::SeqCst) {
                        for k in procfs::descendants(getpid()) {
                            let _ = kill(Pid::from_raw(k.pid), Signal::SIGKILL);
                        }
                        thread::sleep(Duration::from_millis(5));
                    }
                    return;
                }
                poll::pause(&mut round);
            }
        });
        let _done = Done(&done);
        f()
    });
    if let Some(msg) = verdict.lock().unwrap().take() {
        fail(msg);
    }
    result
}

const CAPTURE_ADVICE: &str = "capture_pipeline must read the output until end of file before it waits for the \
                              stages: a stage with more to write than the pipe holds sleeps until the caller reads, \
                              so a caller that waits first waits for a stage that waits for it.";

const SPAWN_ADVICE: &str = "spawn_pipeline must start every stage and return at once, without waiting for any: \
                            the stages run at the same time, each draining the pipe the one before it fills; \
                            wait_pipeline reaps them afterwards.";

// ---------------------------------------------------------------------------------------------
// Running a pipeline the way a shell does, checking each step
// ---------------------------------------------------------------------------------------------

/// What a finished pipeline gave.
struct Outcome {
    output: Vec<u8>,
    status: WaitStatus,
    pids: Vec<Pid>,
}

/// A started pipeline, with the test's read end of its output.
struct Started<'s> {
    stages: &'s [&'s [&'s str]],
    pids: Vec<Pid>,
    out_r: OwnedFd,
    out_inode: u64,
    /// What was wrong with the caller's fd table after the call, reported unless a hang is
    /// found first (it is then its cause, told better by the hang).
    caller_fds: Option<String>,
}

/// A pipe whose ends close on exec (as std's fds do): the test's own ends never reach a stage.
fn cloexec_pipe() -> (OwnedFd, OwnedFd) {
    pipe2(OFlag::O_CLOEXEC).expect("pipe2")
}

/// An fd table as text.
fn show_fds(fds: &[procfs::Fd]) -> String {
    fds.iter()
        .map(|f| {
            let end = match (f.pipe_inode().is_some(), f.access) {
                (false, _) => "",
                (true, 0) => " (read end)",
                (true, 1) => " (write end)",
                _ => " (read-write)",
            };
            format!("{} -> {}{end}", f.fd, f.target)
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// Compares the caller's fd table with `before`: what changed, in words, or None.
fn caller_change(before: &[procfs::Fd], what: &str) -> Option<String> {
    let me = getpid();
    let after = procfs::fds(me).unwrap_or_default();
    if after == before {
        return None;
    }
    let gained: Vec<procfs::Fd> = after
        .iter()
        .filter(|f| !before.contains(f))
        .cloned()
        .collect();
    let lost: Vec<procfs::Fd> = before
        .iter()
        .filter(|f| !after.contains(f))
        .cloned()
        .collect();
    let mut why = Vec::new();
    if !gained.is_empty() {
        why.push(format!(
            "it holds fds it did not have before: {}. A pipe end the parent keeps is an end no stage can close for it: \
             a write end keeps the next stage from ever seeing end of file, a read end keeps the stage before from \
             ever getting SIGPIPE. Once the stages are started the parent must close both ends of every pipe it made",
            show_fds(&gained)
        ));
    }
    if !lost.is_empty() {
        why.push(format!(
            "fds it had are gone or changed: {}. stdin and stdout are only borrowed: the children get copies \
             through fork and dup2, and the caller's own fds stay as they were",
            show_fds(&lost)
        ));
    }
    Some(format!(
        "after {what} returned, the caller's fd table (pid {me}) is not as it was: {}.",
        why.join("; ")
    ))
}

/// Calls `spawn_pipeline(stages, stdin, <a pipe of the test's>)` and checks at once what the
/// kernel shows: the pids are the caller's children, none already reaped (it must not wait);
/// the caller's fd table is noted.
fn spawn<'s>(stages: &'s [&'s [&'s str]], stdin: OwnedFd) -> Started<'s> {
    let (out_r, out_w) = cloexec_pipe();
    let out_inode = own_inode(&out_r);
    let me = getpid();
    let before = procfs::fds(me).expect("read the caller's fd table");
    let pids = guarded("spawn_pipeline", stages, SPAWN_ADVICE, true, || {
        student(|| spawn_pipeline(stages, &stdin, &out_w))
    })
    .unwrap_or_else(|e| fail(format!("spawn_pipeline({}) failed: {e}", show(stages))));
    let caller_fds = caller_change(&before, "spawn_pipeline");
    let closed = |fd: &OwnedFd| fcntl(fd, FcntlArg::F_GETFD).is_err();
    if caller_fds.is_some() && (closed(&out_w) || closed(&stdin)) {
        // The student closed the caller's own fd: dropping it again would be a double close.
        std::mem::forget(out_w);
        std::mem::forget(stdin);
        fail(caller_fds.unwrap_or_default());
    }
    drop(out_w);
    drop(stdin);
    if pids.len() != stages.len() {
        fail(format!(
            "spawn_pipeline({}) returned {} pids for {} stages: one pid per stage, in stage order.",
            show(stages),
            pids.len(),
            stages.len()
        ));
    }
    for (i, pid) in pids.iter().enumerate() {
        match procfs::stat(*pid) {
            Ok(s) if s.ppid == me.as_raw() => {}
            Ok(s) => fail(format!(
                "spawn_pipeline returned pid {pid} for stage {}, but its parent is pid {}, not the caller (pid {me}): \
                 the caller forks every stage itself, so that it can wait for each.\n{}",
                i + 1,
                s.ppid,
                evidence_now()
            )),
            Err(_) => fail(format!(
                "stage {} (pid {pid}) was already reaped when spawn_pipeline returned: spawn_pipeline waited for it. \
                 {SPAWN_ADVICE}",
                i + 1
            )),
        }
    }
    Started {
        stages,
        pids,
        out_r,
        out_inode,
        caller_fds,
    }
}

/// Reads the pipeline's output until end of file while watching it for a stage that can never
/// finish, waits until every stage has exited (each a zombie, not reaped), then calls
/// `wait_pipeline` and checks that it reaped them all.
fn finish(run: Started<'_>) -> Outcome {
    let Started {
        stages,
        pids,
        out_r,
        out_inode,
        caller_fds,
    } = run;
    let flags = fcntl(&out_r, FcntlArg::F_GETFL).expect("F_GETFL");
    fcntl(
        &out_r,
        FcntlArg::F_SETFL(OFlag::from_bits_truncate(flags) | OFlag::O_NONBLOCK),
    )
    .expect("F_SETFL");
    let settle = scaled(SETTLE);
    let mut output = Vec::new();
    let mut eof = false;
    let mut since = Instant::now();
    let mut seen = 0;
    let mut buf = vec![0u8; 65536];
    loop {
        if !eof {
            let mut p = [PollFd::new(out_r.as_fd(), PollFlags::POLLIN)];
            let _ = poll(&mut p, PollTimeout::from(5u8));
            loop {
                match read(&out_r, &mut buf) {
                    Ok(0) => {
                        eof = true;
                        break;
                    }
                    Ok(n) => {
                        output.extend_from_slice(&buf[..n]);
                        since = Instant::now();
                    }
                    Err(Errno::EAGAIN) => break,
                    Err(Errno::EINTR) => {}
                    Err(e) => fail(format!("reading the pipeline's output failed: {e}")),
                }
            }
        } else {
            thread::sleep(Duration::from_millis(1));
        }
        let exited = pids
            .iter()
            .all(|p| matches!(procfs::state(*p), Some('Z') | None));
        if eof && exited {
            break;
        }
        // A hang, seen in a few looks in a row.
        match stuck(stages, &pids, Some(out_inode), true) {
            Some(msg) => {
                seen += 1;
                if seen >= 3 {
                    let note = caller_fds
                        .as_ref()
                        .map(|c| format!("\nAlso, {c}"))
                        .unwrap_or_default();
                    fail(format!(
                        "{msg}{note}\nThe pipeline: {}\n{}",
                        show(stages),
                        evidence_now()
                    ));
                }
            }
            None => seen = 0,
        }
        if exited && !eof {
            // The last stage is gone, yet the output pipe has a writer.
            let holders: Vec<String> = ends_of(out_inode)
                .into_iter()
                .filter(|&(_, _, w)| w)
                .map(|(pid, fd, _)| {
                    if pid == getpid().as_raw() {
                        format!("pid {pid} (the caller of spawn_pipeline, fd {fd})")
                    } else {
                        format!("{} fd {fd}", name(pid, stages, &pids))
                    }
                })
                .collect();
            if !holders.is_empty() && since.elapsed() > Duration::from_millis(50) {
                fail(format!(
                    "every stage has exited, but the pipeline's output (pipe:[{out_inode}], the stdout the caller gave) \
                     never saw EOF because {} still holds its write end: {EOF_RULE}. Only the last stage's stdout \
                     should be that pipe, and the caller's own copy is the caller's to close.\n{}",
                    holders.join(", "),
                    evidence_now()
                ));
            }
        }
        if since.elapsed() > settle {
            fail(format!(
                "the pipeline `{}` had not finished after {settle:?} (output {}, stages {}).\n{}",
                show(stages),
                if eof { "at end of file" } else { "still open" },
                if exited {
                    "all exited"
                } else {
                    "not all exited"
                },
                evidence_now()
            ));
        }
    }
    if let Some(c) = caller_fds {
        fail(c);
    }
    let status = guarded("wait_pipeline", stages, "", false, || {
        student(|| wait_pipeline(&pids))
    })
    .unwrap_or_else(|e| fail(format!("wait_pipeline failed: {e}")));
    expect_reaped(&pids, &status);
    Outcome {
        output,
        status,
        pids,
    }
}

/// After `wait_pipeline`: every stage reaped (waitpid says ECHILD), and no child left at all.
fn expect_reaped(pids: &[Pid], status: &WaitStatus) {
    for (i, pid) in pids.iter().enumerate() {
        match waitpid(*pid, Some(WaitPidFlag::WNOHANG)) {
            Err(Errno::ECHILD) => {}
            Ok(WaitStatus::StillAlive) => fail(format!(
                "stage {} (pid {pid}) was still running after wait_pipeline returned {status:?}: wait_pipeline must \
                 block in waitpid until every stage has exited (no WNOHANG), and reap each.",
                i + 1
            )),
            Ok(s) => fail(format!(
                "stage {} (pid {pid}) had exited but was left a zombie after wait_pipeline returned (the test has now \
                 reaped it: {s:?}): wait_pipeline must call waitpid on every stage, not only the last; a child \
                 nobody waits for stays in the process table as a zombie (僵尸进程).",
                i + 1
            )),
            Err(e) => fail(format!("waitpid({pid}, WNOHANG) failed: {e}")),
        }
    }
    let left = procfs::child_pids(getpid());
    if !left.is_empty() {
        fail(format!(
            "after wait_pipeline the caller still has children {left:?} that were no stage of the pipeline: \
             spawn_pipeline forks exactly one child per stage.\n{}",
            evidence_now()
        ));
    }
}

/// Writes `data` into `fd` and closes it, in a thread of its own with SIGPIPE blocked: when
/// the stages are gone the write fails with EPIPE (no matter, the checks tell why) instead of
/// killing the test; a SIGPIPE left pending ends with the thread.
fn write_quietly(fd: OwnedFd, data: &[u8]) {
    thread::scope(|s| {
        s.spawn(move || {
            let mut pipe = SigSet::empty();
            pipe.add(Signal::SIGPIPE);
            let _ = pipe.thread_block();
            let _ = write(&fd, data);
            drop(fd);
        });
    });
}

/// An input file in the scratch directory holding `data`, open for reading.
fn input_file(data: &[u8]) -> OwnedFd {
    static N: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    let path = scratch_dir().join(format!("input-{}", N.fetch_add(1, Ordering::SeqCst)));
    fs::write(&path, data).expect("write the input file");
    OwnedFd::from(fs::File::open(&path).expect("open the input file"))
}

/// Runs the whole pipeline on `input`: spawn, read, wait, with every check on the way.
fn run(stages: &[&[&str]], input: &[u8]) -> Outcome {
    let stdin = input_file(input);
    let started = spawn(stages, stdin);
    finish(started)
}

/// How a stage ended, as a case expects it.
#[derive(Debug, Clone, Copy)]
enum Ends {
    Code(i32),
    Killed(Signal),
}

/// The status `wait_pipeline` returned must be the last stage's and look like `want`.
fn expect_status(stages: &[&[&str]], out: &Outcome, want: Ends) {
    let last = *out.pids.last().expect("a stage");
    let n = out.pids.len();
    let got_pid = out.status.pid();
    let right = match (want, out.status) {
        (Ends::Code(c), WaitStatus::Exited(p, code)) => code == c && p == last,
        (Ends::Killed(s), WaitStatus::Signaled(p, sig, _)) => sig == s && p == last,
        _ => false,
    };
    if right {
        return;
    }
    let which = got_pid
        .and_then(|p| out.pids.iter().position(|q| *q == p))
        .map(|i| format!(", the status of stage {} (pid {})", i + 1, out.pids[i]))
        .unwrap_or_default();
    let expected = match want {
        Ends::Code(c) => format!("exits with status {c}"),
        Ends::Killed(s) => format!("is killed by {s}"),
    };
    panic!(
        "wait_pipeline returned {:?}{which}. In `{}` the last stage, stage {n} (pid {last}, `{}`), {expected}, and \
         the status of the last stage is the pipeline's status, whatever the others did (a shell's $?), as waitpid \
         gave it.",
        out.status,
        show(stages),
        show_argv(stages[n - 1])
    );
}

/// The output must be `want`.
fn expect_output(stages: &[&[&str]], out: &Outcome, want: &[u8]) {
    if out.output == want {
        return;
    }
    let cut = |b: &[u8]| {
        let s = String::from_utf8_lossy(&b[..b.len().min(120)]).into_owned();
        if b.len() > 120 {
            format!("{s:?}... ({} bytes)", b.len())
        } else {
            format!("{s:?}")
        }
    };
    panic!(
        "the pipeline `{}` wrote {} to the stdout the caller gave, but its programs make {}: each stage's stdout \
         must be the next stage's stdin, the first stage must read the caller's stdin and the last must write to \
         the caller's stdout.",
        show(stages),
        cut(&out.output),
        cut(want)
    );
}

// ---------------------------------------------------------------------------------------------
// The tests
// ---------------------------------------------------------------------------------------------

/// Pipelines of 1 to 5 stages of real programs (found through `PATH`, one by absolute path):
/// the output is what the programs make and the status is 0.
#[rstest]
#[case::one_stage(pl![["echo", "hello"]], b"hello\n")]
#[case::absolute_path(pl![["/bin/echo", "by", "path"]], b"by path\n")]
#[case::two_stages(pl![["echo", "hello world"], ["tr", "a-z", "A-Z"]], b"HELLO WORLD\n")]
#[case::three_stages(pl![["echo", "one two three"], ["tr", " ", "\\n"], ["wc", "-l"]], b"3\n")]
#[case::four_stages(
    pl![["printf", "b\\na\\nc\\n"], ["sort"], ["head", "-n", "2"], ["tr", "a-z", "A-Z"]],
    b"A\nB\n"
)]
#[case::five_stages(
    pl![["echo", "abc"], ["cat"], ["tr", "a", "x"], ["cat"], ["tr", "c", "z"]],
    b"xbz\n"
)]
fn output_is_what_the_programs_make(#[case] stages: &[&[&str]], #[case] want: &[u8]) {
    Isolation::new().deadline(DEADLINE).check_fds().run(|| {
        let out = run(stages, b"");
        expect_output(stages, &out, want);
        expect_status(stages, &out, Ends::Code(0));
    });
}

/// The first stage reads the stdin the caller gave (a file here), all of it, the last writes
/// to the stdout it gave.
#[rstest]
#[case::one_stage(pl![["cat"]], false)]
#[case::two_stages(pl![["cat"], ["tr", "a-z", "A-Z"]], true)]
#[case::three_stages(pl![["tr", "a-z", "A-Z"], ["cat"], ["tr", "E", "e"]], true)]
fn the_first_stage_reads_the_callers_stdin(#[case] stages: &[&[&str]], #[case] upper: bool) {
    Isolation::new().deadline(DEADLINE).check_fds().run(|| {
        let input = b"from the caller's stdin\n".repeat(3);
        let out = run(stages, &input);
        let mut want = if upper {
            input.to_ascii_uppercase()
        } else {
            input.clone()
        };
        if stages.len() == 3 {
            want = want
                .iter()
                .map(|&b| if b == b'E' { b'e' } else { b })
                .collect();
        }
        expect_output(stages, &out, &want);
        expect_status(stages, &out, Ends::Code(0));
    });
}

/// Many times a pipe's 64 KiB through every stage: the stages must run at the same time, so
/// a caller that waits for one stage before starting the next deadlocks, and is told so.
#[rstest]
#[case::counted(pl![["head", "-c", "1000000", "/dev/zero"], ["tr", "\\0", "x"], ["wc", "-c"]], None, b"1000000\n".to_vec())]
#[case::captured(pl![["yes", "abcdefghi"], ["head", "-n", "30000"]], None, b"abcdefghi\n".repeat(30000))]
#[case::from_stdin(pl![["cat"], ["cat"], ["cat"]], Some(300_000), Vec::new())]
fn big_outputs_flow_through(
    #[case] stages: &[&[&str]],
    #[case] input: Option<usize>,
    #[case] want: Vec<u8>,
) {
    Isolation::new().deadline(DEADLINE).check_fds().run(|| {
        let data: Vec<u8> = (0..input.unwrap_or(0))
            .map(|i| (i * 7 % 251) as u8)
            .collect();
        let out = run(stages, &data);
        let want = if input.is_some() { data } else { want };
        expect_output(stages, &out, &want);
        expect_status(stages, &out, Ends::Code(0));
    });
}

/// `yes` never stops writing: `yes | head -n 1` ends only because `yes` gets SIGPIPE once
/// `head` has exited, which needs every read end of their pipe closed everywhere.
#[rstest]
#[case::two_stages(pl![["yes"], ["head", "-n", "1"]], b"y\n")]
#[case::three_stages(pl![["yes"], ["cat"], ["head", "-n", "2"]], b"y\ny\n")]
#[case::counted(pl![["yes"], ["head", "-n", "3"], ["wc", "-l"]], b"3\n")]
fn a_stage_that_exits_early_ends_the_pipeline(#[case] stages: &[&[&str]], #[case] want: &[u8]) {
    Isolation::new().deadline(DEADLINE).check_fds().run(|| {
        let out = run(stages, b"");
        expect_output(stages, &out, want);
        expect_status(stages, &out, Ends::Code(0));
    });
}

/// The pipeline's status is the last stage's: not the first's, not the worst.
#[rstest]
#[case::last_exits_3(pl![["echo", "x"], ["sh", "-c", "cat >/dev/null; exit 3"]], Ends::Code(3))]
#[case::first_fails(pl![["sh", "-c", "exit 4"], ["cat"]], Ends::Code(0))]
#[case::middle_fails(pl![["echo", "x"], ["sh", "-c", "cat >/dev/null; exit 5"], ["cat"]], Ends::Code(0))]
#[case::each_fails(pl![["sh", "-c", "exit 2"], ["sh", "-c", "cat >/dev/null; exit 6"], ["sh", "-c", "exit 7"]], Ends::Code(7))]
#[case::last_is_false(pl![["echo", "x"], ["cat"], ["false"]], Ends::Code(1))]
#[case::last_killed(pl![["echo", "x"], ["sh", "-c", "kill -TERM $$"]], Ends::Killed(Signal::SIGTERM))]
fn the_status_is_the_last_stages(#[case] stages: &[&[&str]], #[case] want: Ends) {
    Isolation::new().deadline(DEADLINE).check_fds().run(|| {
        let out = run(stages, b"");
        expect_status(stages, &out, want);
    });
}

/// A program that does not exist: execvp fails, and that stage exits 127 (a shell's "command
/// not found"), without ever returning into the caller; the other stages run as usual.
#[rstest]
#[case::alone(pl![[MISSING]], Ends::Code(127), b"")]
#[case::last(pl![["echo", "x"], [MISSING]], Ends::Code(127), b"")]
#[case::first(pl![[MISSING, "arg"], ["wc", "-c"]], Ends::Code(0), b"0\n")]
#[case::middle(pl![["echo", "x"], [MISSING], ["wc", "-c"]], Ends::Code(0), b"0\n")]
fn a_missing_program_exits_127(
    #[case] stages: &[&[&str]],
    #[case] want: Ends,
    #[case] output: &[u8],
) {
    Isolation::new().deadline(DEADLINE).check_fds().run(|| {
        let out = run(stages, b"");
        if let (Ends::Code(127), WaitStatus::Exited(p, code)) = (want, out.status)
            && Some(&p) == out.pids.last()
            && code != 127
        {
            panic!(
                "the last stage's program `{MISSING}` does not exist, and it exited with status {code}: after \
                 execvp fails the child must leave with _exit(127), which is what a shell reports for a command \
                 that cannot be found."
            );
        }
        expect_status(stages, &out, want);
        expect_output(stages, &out, output);
    });
}

/// With the first stage waiting for input the test has not sent: every stage is seen after
/// its exec, asleep in read(2) on its stdin, and `/proc` shows each one's fds: stdin the read
/// end of the pipe the stage before writes to (the first: the caller's stdin), stdout the
/// write end of the pipe the next reads (the last: the caller's stdout), stderr the caller's,
/// and no other end of the pipeline's pipes. Then the input goes in and comes out transformed.
#[test]
fn stages_are_wired_in_order_and_keep_only_their_ends() {
    Isolation::new().deadline(DEADLINE).check_fds().run(|| {
        let stages: &[&[&str]] = &[&["cat"], &["tr", "a-z", "A-Z"], &["cat"], &["tr", "-d", "X"]];
        let (in_r, in_w) = cloexec_pipe();
        let in_inode = own_inode(&in_r);
        let run = spawn(stages, in_r);
        if let Some(c) = &run.caller_fds {
            fail(c.clone());
        }
        let pids: Vec<i32> = run.pids.iter().map(|p| p.as_raw()).collect();
        let n = pids.len();
        // Every stage exec'd and asleep reading its stdin: its own closing is done by then.
        let settle = scaled(SETTLE);
        let start = Instant::now();
        let mut round = 0;
        loop {
            let reading: Vec<bool> = pids
                .iter()
                .map(|&p| execed(p) && asleep_on_pipe(p).is_some_and(|(fd, _, w)| fd == 0 && !w))
                .collect();
            if reading.iter().all(|r| *r) {
                break;
            }
            for (i, &p) in pids.iter().enumerate() {
                if matches!(procfs::state(Pid::from_raw(p)), Some('Z') | None) {
                    fail(format!(
                        "stage {} (pid {p}) exited while the test still held the pipeline's input open: it should \
                         be asleep in read(2) on its stdin, waiting for the stage before it (or for the caller's \
                         stdin). A stage ends this early when its stdin is not its pipe (it read something else to \
                         its end, the caller's own stdin perhaps), or when its program could not run.\n{}",
                        i + 1,
                        evidence_now()
                    ));
                }
            }
            if start.elapsed() > settle {
                let late: Vec<String> = (0..n)
                    .filter(|&i| !reading[i])
                    .map(|i| format!("stage {} (pid {})", i + 1, pids[i]))
                    .collect();
                fail(format!(
                    "after {settle:?}, {} not asleep in read(2) on fd 0 after its exec, as a stage waiting for \
                     input should be: its stdin is not the pipe it should read.\n{}",
                    late.join(", "),
                    evidence_now()
                ));
            }
            poll::pause(&mut round);
        }
        let my_err = fds_of(getpid().as_raw()).into_iter().find(|f| f.fd == 2).map(|f| f.target);
        let mut links: Vec<u64> = Vec::new();
        let mut problems = Vec::new();
        for (i, &p) in pids.iter().enumerate() {
            let k = i + 1;
            let fds = fds_of(p);
            let get = |fd: i32| fds.iter().find(|f| f.fd == fd);
            let show_one = |fd: i32| get(fd).map_or("closed".to_owned(), |f| show_fds(std::slice::from_ref(f)));
            // stdout
            let out = get(1).filter(|f| f.writable()).and_then(procfs::Fd::pipe_inode);
            if k == n {
                if out != Some(run.out_inode) {
                    problems.push(format!(
                        "stage {k} (pid {p}, the last) has stdout (fd 1) {}, not the write end of pipe:[{}], the \
                         stdout the caller gave: dup2 the caller's stdout onto fd 1 of the last stage",
                        show_one(1),
                        run.out_inode
                    ));
                }
            } else {
                match out {
                    Some(i) if i != run.out_inode && i != in_inode => links.push(i),
                    _ => problems.push(format!(
                        "stage {k} (pid {p}) has stdout (fd 1) {}, not the write end of a pipe of its own to stage \
                         {}: dup2(write_end, 1) makes it the stage's stdout",
                        show_one(1),
                        k + 1
                    )),
                }
            }
            // stdin
            let inp = get(0).filter(|f| f.readable()).and_then(procfs::Fd::pipe_inode);
            let want_in = if k == 1 { Some(in_inode) } else { links.get(i - 1).copied() };
            if want_in.is_some() && inp != want_in {
                let whose = if k == 1 {
                    "the stdin the caller gave".to_owned()
                } else {
                    format!("the pipe stage {} writes to", k - 1)
                };
                problems.push(format!(
                    "stage {k} (pid {p}) has stdin (fd 0) {}, not the read end of pipe:[{}], {whose}: \
                     dup2(read_end, 0) makes it the stage's stdin",
                    show_one(0),
                    want_in.unwrap_or_default()
                ));
            }
            if get(2).map(|f| f.target.clone()) != my_err {
                problems.push(format!(
                    "stage {k} (pid {p}) has stderr (fd 2) {}, not the caller's stderr: only stdin and stdout are \
                     redirected",
                    show_one(2)
                ));
            }
        }
        // No stage holds any other end of the pipeline's pipes.
        let mut ours: Vec<u64> = vec![in_inode, run.out_inode];
        for &p in &pids {
            ours.extend(fds_of(p).iter().filter(|f| f.fd <= 1).filter_map(procfs::Fd::pipe_inode));
        }
        for (i, &p) in pids.iter().enumerate() {
            for f in fds_of(p) {
                if f.fd > 2 && f.pipe_inode().is_some_and(|i| ours.contains(&i)) {
                    problems.push(format!(
                        "stage {} (pid {p}) holds fd {}, the {} end of {}, besides its stdin and stdout: a stage must \
                         close every pipe end it inherited but those two before exec (or the pipes must be \
                         close-on-exec); a kept write end keeps a reader from ever seeing end of file, a kept read \
                         end keeps a writer from ever getting SIGPIPE",
                        i + 1,
                        f.fd,
                        if f.writable() { "write" } else { "read" },
                        f.target
                    ));
                }
            }
        }
        if !problems.is_empty() {
            fail(format!(
                "the stages of `{}` are not wired as a pipeline:\n{}\n{}",
                show(stages),
                problems.join("\n"),
                evidence_now()
            ));
        }
        write_quietly(in_w, b"hello pipeline\nxyz\n");
        let out = finish(run);
        expect_output(stages, &out, b"HELLO PIPELINE\nYZ\n");
        expect_status(stages, &out, Ends::Code(0));
    });
}

/// The caller's own fds (a pipe of its own, both ends, and a file) are untouched: open, the
/// same, and no new one, after `spawn_pipeline` (checked in `spawn`) and after the run.
#[test]
fn the_callers_other_fds_are_left_alone() {
    Isolation::new().deadline(DEADLINE).check_fds().run(|| {
        let (mine_r, mine_w) = cloexec_pipe();
        let file = fs::File::open("/dev/null").expect("open /dev/null");
        let before = procfs::fds(getpid()).expect("the caller's fds");
        let stages: &[&[&str]] = &[&["echo", "abc"], &["tr", "b", "B"], &["cat"]];
        let out = run(stages, b"");
        expect_output(stages, &out, b"aBc\n");
        let after = procfs::fds(getpid()).expect("the caller's fds");
        assert_eq!(
            show_fds(&after),
            show_fds(&before),
            "after the pipeline ran, the caller's fd table should be as before"
        );
        drop((mine_r, mine_w, file));
    });
}

/// `wait_pipeline` called while the stages still wait for input: it must block in waitpid
/// until they have exited. The test sends the input only once it sees the caller asleep in
/// wait4 (or gives up when wait_pipeline returns first), so a wait that does not block returns
/// while the stages still run, and is caught.
#[test]
fn wait_pipeline_waits_for_stages_still_running() {
    Isolation::new().deadline(DEADLINE).check_fds().run(|| {
        let stages: &[&[&str]] = &[&["cat"], &["tr", "a-z", "A-Z"]];
        let (in_r, in_w) = cloexec_pipe();
        let run = spawn(stages, in_r);
        if let Some(c) = &run.caller_fds {
            fail(c.clone());
        }
        let Started { pids, out_r, .. } = run;
        let me = getpid();
        let returned = AtomicBool::new(false);
        let released = AtomicBool::new(false);
        let (status, early, output) = thread::scope(|s| {
            let helper = s.spawn(|| {
                let mut round = 0;
                let start = Instant::now();
                let give_up = scaled(Duration::from_millis(500));
                while !returned.load(Ordering::SeqCst) && start.elapsed() < give_up {
                    let waiting = procfs::state(me) == Some('S')
                        && procfs::syscall(me).is_some_and(|c| c.nr == libc::SYS_wait4 || c.nr == libc::SYS_waitid);
                    if waiting {
                        break;
                    }
                    poll::pause(&mut round);
                }
                released.store(true, Ordering::SeqCst);
                // Either way the stages get their input and end.
                write_quietly(in_w, b"abc\n");
                // Their output, until end of file or a limit (a hang is the watcher's to tell).
                let mut got = Vec::new();
                let mut buf = [0u8; 4096];
                let start = Instant::now();
                while start.elapsed() < scaled(SETTLE) {
                    let mut p = [PollFd::new(out_r.as_fd(), PollFlags::POLLIN)];
                    if poll(&mut p, PollTimeout::from(10u8)).unwrap_or(0) == 0 {
                        continue;
                    }
                    match read(&out_r, &mut buf) {
                        Ok(0) => break,
                        Ok(n) => got.extend_from_slice(&buf[..n]),
                        Err(Errno::EINTR) => {}
                        Err(_) => break,
                    }
                }
                got
            });
            let status = guarded("wait_pipeline", stages, "", false, || student(|| wait_pipeline(&pids)));
            let early = !released.load(Ordering::SeqCst);
            returned.store(true, Ordering::SeqCst);
            let got = helper.join().expect("the helper thread");
            (status, early, got)
        });
        let status = status.unwrap_or_else(|e| fail(format!("wait_pipeline failed: {e}")));
        if early {
            fail(format!(
                "wait_pipeline returned {status:?} while the stages were still running (they were waiting for \
                 input the test had not sent yet): \
                 wait_pipeline must block in waitpid(pid, 0) until each stage has exited, not poll with WNOHANG \
                 (whose StillAlive is no status)."
            ));
        }
        expect_reaped(&pids, &status);
        let out = Outcome { output, status, pids };
        expect_output(stages, &out, b"ABC\n");
        expect_status(stages, &out, Ends::Code(0));
    });
}

/// Bad input is `EINVAL`, found before anything is started: no stages, a stage with no
/// program, a NUL byte in a program or an argument (also in a later stage). No child is
/// forked and no fd is left in the caller; `wait_pipeline` of no pids is `EINVAL` too.
#[test]
fn bad_input_is_einval() {
    Isolation::new().deadline(DEADLINE).check_fds().run(|| {
        let cases: &[(&str, &[&[&str]])] = &[
            ("no stages", &[]),
            ("a stage with no program", &[&[]]),
            ("a later stage with no program", &[&["echo", "x"], &[]]),
            ("a NUL byte in a program", &[&["ec\0ho"]]),
            ("a NUL byte in an argument of a later stage", &[&["echo", "x"], &["tr", "a\0", "b"]]),
        ];
        let me = getpid();
        for (what, stages) in cases {
            let stdin = input_file(b"");
            let (out_r, out_w) = cloexec_pipe();
            let before = procfs::fds(me).expect("the caller's fds");
            let got = student(|| spawn_pipeline(stages, &stdin, &out_w));
            let kids = procfs::child_pids(me);
            if !kids.is_empty() {
                fail(format!(
                    "spawn_pipeline with {what} started children {kids:?} before it found the input bad: check every \
                     stage (and build every C string) before the first fork, and return EINVAL."
                ));
            }
            match got {
                Err(Errno::EINVAL) => {}
                other => fail(format!(
                    "spawn_pipeline with {what} ({stages:?}) returned {other:?}: it should return Err(EINVAL) without \
                     starting anything."
                )),
            }
            if let Some(c) = caller_change(&before, "spawn_pipeline") {
                fail(c);
            }
            drop((stdin, out_r, out_w));
        }
        let got = student(|| wait_pipeline(&[]));
        assert_eq!(got, Err(Errno::EINVAL), "wait_pipeline(&[]) should return Err(EINVAL)");
    });
}

/// `capture_pipeline` returns what the last stage wrote, much more than a pipe holds included,
/// and the last stage's status; afterwards the caller has the fds it had (both ends of the
/// capture pipe closed) and no child left, zombie or not.
#[rstest]
#[case::three_stages(pl![["echo", "one two three"], ["tr", " ", "\\n"], ["wc", "-l"]], b"3\n".to_vec(), 0)]
#[case::big(pl![["yes", "abcdefghi"], ["head", "-n", "30000"]], b"abcdefghi\n".repeat(30000), 0)]
#[case::big_through_three(
    pl![["head", "-c", "200000", "/dev/zero"], ["tr", "\\0", "z"], ["cat"]],
    b"z".repeat(200_000),
    0
)]
#[case::last_exits_3(pl![["echo", "x"], ["sh", "-c", "cat; exit 3"]], b"x\n".to_vec(), 3)]
#[case::first_fails(pl![["sh", "-c", "exit 4"], ["cat"]], Vec::new(), 0)]
fn capture_pipeline_returns_output_and_status(
    #[case] stages: &[&[&str]],
    #[case] want: Vec<u8>,
    #[case] code: i32,
) {
    Isolation::new().deadline(DEADLINE).check_fds().run(|| {
        let me = getpid();
        let stdin = input_file(b"");
        let before = procfs::fds(me).expect("the caller's fds");
        let got = guarded("capture_pipeline", stages, CAPTURE_ADVICE, true, || {
            student(|| capture_pipeline(stages, &stdin))
        });
        let (status, output) =
            got.unwrap_or_else(|e| fail(format!("capture_pipeline({}) failed: {e}", show(stages))));
        if let Some(c) = caller_change(&before, "capture_pipeline") {
            fail(c);
        }
        let left = procfs::child_pids(me);
        if !left.is_empty() {
            let zombies: Vec<&i32> = left
                .iter()
                .filter(|p| procfs::state(Pid::from_raw(**p)) == Some('Z'))
                .collect();
            fail(format!(
                "after capture_pipeline returned the caller still has children {left:?} (zombies among them: \
                 {zombies:?}): it must wait for every stage (wait_pipeline) before it returns.\n{}",
                evidence_now()
            ));
        }
        let out = Outcome {
            output,
            status,
            pids: Vec::new(),
        };
        expect_output(stages, &out, &want);
        match status {
            WaitStatus::Exited(_, c) if c == code => {}
            other => panic!(
                "capture_pipeline(`{}`) returned the status {other:?}; the last stage, `{}`, exits with status \
                 {code}, and the status of the last stage is the pipeline's status.",
                show(stages),
                show_argv(stages[stages.len() - 1])
            ),
        }
        drop(stdin);
    });
}

/// A fork that fails part way (the test's tree may start only two more tasks, so the third
/// stage's fork fails with EAGAIN): spawn_pipeline returns that error, after killing and
/// reaping the two stages already started (they wait for input that will never come), and
/// leaves no pipe end in the caller.
#[test]
fn a_failed_fork_kills_and_reaps_the_stages_started() {
    Isolation::new().deadline(DEADLINE).check_fds().run(|| {
        let stages: &[&[&str]] = pl![["cat"], ["cat"], ["cat"]];
        let me = getpid();
        let (in_r, in_w) = cloexec_pipe();
        let (out_r, out_w) = cloexec_pipe();
        let before = procfs::fds(me).expect("the caller's fds");
        let advice = "After a failed fork, spawn_pipeline must kill the stages it already started (they may wait \
                      for input that never comes) and then reap them, before it returns the error.";
        // The watcher thread is running before the cap is set, so it is not counted against it.
        let got = guarded("spawn_pipeline", stages, advice, true, || {
            let limit = match oskata_harness::forks::limit_new_processes(2) {
                Ok(l) => l,
                Err(why) => return Err(why),
            };
            let got = student(|| spawn_pipeline(stages, &in_r, &out_w));
            drop(limit);
            Ok(got)
        });
        let got = match got {
            Ok(got) => got,
            Err(why) => {
                println!("no exact cap on forks here ({why}): the check is skipped");
                return;
            }
        };
        let left = procfs::child_pids(me);
        if !left.is_empty() {
            let zombies: Vec<&i32> = left
                .iter()
                .filter(|p| procfs::state(Pid::from_raw(**p)) == Some('Z'))
                .collect();
            fail(format!(
                "spawn_pipeline returned {got:?} after the third fork failed, but the stages it had started are \
                 still there (children {left:?}, zombies among them {zombies:?}). {advice}\n{}",
                evidence_now()
            ));
        }
        if let Some(c) = caller_change(&before, "spawn_pipeline") {
            fail(format!("{c} (The third fork had failed.)"));
        }
        match got {
            Err(Errno::EAGAIN) => {}
            other => fail(format!(
                "with only two more processes allowed, the third stage's fork fails with EAGAIN, and \
                 spawn_pipeline should return that error; it returned {other:?}"
            )),
        }
        drop((in_r, in_w, out_r, out_w));
    });
}
