//! ipc/pipe_direction: a pipe from parent to child (管道), each side closing the end it does
//! not use.
//!
//! What the tests observe, never what the code under test claims:
//! - the fd table of both processes in `/proc/<pid>/fd` and the access mode in
//!   `/proc/<pid>/fdinfo`, matched by pipe inode, while the child sleeps in `read(2)` (seen in
//!   `/proc/<pid>/syscall`): by then it has done all its closing;
//! - who still holds a write end when the child cannot see end of file, reported at once
//!   instead of waiting for a deadline;
//! - the child's exit status from `waitpid`, and the bytes that reached the sink file;
//! - for a signal that interrupts `copy_until_eof`: the copy seen asleep in `read(2)` on the
//!   empty pipe (`/proc/<pid>/syscall`) when the signal is sent, and its handler run before
//!   any more data is written, so that `read` cannot have returned anything but `EINTR`.
//!
//! The contract, clause by clause, and the test that checks each:
//! - `copy_until_eof` copies everything until read(2) returns 0, not until a short read, and
//!   returns the count (`copy_until_eof_copies_everything_and_counts_it`);
//! - it retries a read that a signal interrupted
//!   (`copy_until_eof_retries_a_read_interrupted_by_a_signal`);
//! - its buffer is at least 8 KiB, it writes the rest of a write that a signal cut short, and
//!   retries a write that failed with EINTR
//!   (`copy_until_eof_finishes_a_write_cut_short_by_a_signal`: the sink a pipe of one page,
//!   each signal sent once `/proc` shows the copy asleep in write(2) on the full pipe);
//! - it returns any other error (`copy_until_eof_returns_other_errors`: EBADF);
//! - `spawn_reader` returns the write end, and the parent holds no other end of the pipe and no
//!   copy of the sink (every test that spawns, through `spawn` and `check_parent_side`), and
//!   leaves the caller's other fds as they were
//!   (`spawn_reader_leaves_the_callers_other_fds_alone`);
//! - the child holds only the read end and sees end of file once the parent closes its end
//!   (`each_side_keeps_only_its_own_end`), reads until end of file however little comes at a
//!   time (`child_reads_until_eof_not_until_a_short_read`), delivers every byte
//!   (`payload_arrives_intact`, `random_payloads_arrive_intact`) and exits 0;
//! - the child exits 1 when its copy fails (`child_exits_1_when_its_copy_fails`: a sink open
//!   read-only).

// The exercise under test: your stub (by default), the reference solution (`--features
// solutions`), or a shipped mistake that `cargo grade --mistakes` copies into target/.
#[cfg(not(any(feature = "solutions", feature = "mistake")))]
#[path = "../../exercises/ipc/pipe_direction.rs"]
#[allow(dead_code)] // a stub does not use all of its API yet
mod pipe_direction;
#[cfg(all(feature = "solutions", not(feature = "mistake")))]
#[path = "../../solutions/ipc/pipe_direction.rs"]
mod pipe_direction;
#[cfg(feature = "mistake")]
#[path = "../../target/oskata-mistake/ipc/pipe_direction.rs"]
#[rustfmt::skip] // the copy exists only while the proof runs
mod pipe_direction;
use pipe_direction::*;

use std::fs;
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::path::Path;
use std::sync::atomic::{AtomicU32, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use nix::errno::Errno;
use nix::fcntl::{FcntlArg, OFlag, fcntl};
use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
use nix::sys::pthread::{pthread_kill, pthread_self};
use nix::sys::signal::{SaFlags, SigAction, SigHandler, SigSet, Signal, kill, sigaction, signal};
use nix::sys::wait::{WaitPidFlag, WaitStatus, waitpid};
use nix::unistd::{Pid, getpid, pipe, write};
use oskata_harness::{Isolation, evidence, poll, procfs, scaled, scratch_dir, student};
use proptest::collection::vec;
use proptest::prelude::*;
use proptest::test_runner::{Config, TestError, TestRunner};
use rstest::rstest;

/// How long a correct child may take to reach its `read`, drain the pipe or exit (before
/// `scaled`). A correct solution needs milliseconds; every wrong one is caught by evidence
/// long before this.
const SETTLE: Duration = Duration::from_secs(5);

/// The lesson every early stop points to.
const SHORT_READ: &str = "a short read is not end of file: read(2) returning fewer bytes than asked only means the \
                          pipe held no more at that moment; end of file is read(2) returning 0, which happens once \
                          every write end in every process is closed";

/// The kernel's account of the test's processes: table, fds, pipe ends and their holders.
fn evidence_now() -> String {
    format!(
        "What the kernel shows (the test process is pid {}):\n{}",
        getpid(),
        evidence::describe(&procfs::tree())
    )
}

/// The same, without the harness's lines about readers waiting for EOF: while the parent still
/// holds the write end it is about to hand back, a child waiting in read is no fault.
fn evidence_before_close() -> String {
    let text = evidence_now();
    let kept: Vec<&str> = text
        .lines()
        .filter(|l| !l.contains("the reader never saw EOF"))
        .collect();
    kept.join("\n")
}

/// A `waitpid` result in words.
fn exit_text(status: nix::Result<WaitStatus>) -> String {
    match status {
        Ok(WaitStatus::Exited(_, code)) => format!("with status {code}"),
        Ok(WaitStatus::Signaled(_, sig, _)) => format!("killed by {sig}"),
        Ok(other) => format!("{other:?}"),
        Err(e) => format!("waitpid failed: {e}"),
    }
}

/// Stops and reaps the child (so nothing is left behind), then fails with `msg`.
fn fail(child: Pid, msg: String) -> ! {
    if matches!(
        waitpid(child, Some(WaitPidFlag::WNOHANG)),
        Ok(WaitStatus::StillAlive)
    ) {
        let _ = kill(child, Signal::SIGKILL);
        let _ = waitpid(child, None);
    }
    panic!("{msg}");
}

/// The fd `pid` is asleep reading, if it is the read end of pipe `inode`.
fn reading_pipe(pid: Pid, inode: u64) -> Option<i32> {
    let fd = procfs::blocked_read_fd(pid)?;
    let fds = procfs::fds(pid).ok()?;
    fds.iter()
        .any(|f| f.fd == fd && f.pipe_inode() == Some(inode))
        .then_some(fd)
}

/// Every write end of pipe `inode` open in the test's process tree, as (pid, fd).
fn write_end_holders(inode: u64) -> Vec<(i32, i32)> {
    let mut out = Vec::new();
    for p in procfs::tree().iter().filter(|p| p.state != 'Z') {
        for f in procfs::fds(Pid::from_raw(p.pid)).unwrap_or_default() {
            if f.pipe_inode() == Some(inode) && f.writable() {
                out.push((p.pid, f.fd));
            }
        }
    }
    out
}

/// Checks the parent's side right after `spawn_reader` returned: `write_end` is the write end
/// of a pipe, and the test process holds no other fd of that pipe. Returns the pipe's inode.
fn check_parent_side(child: Pid, write_end: &OwnedFd) -> u64 {
    let me = getpid();
    let raw = write_end.as_raw_fd();
    let fds = procfs::fds(me).unwrap_or_else(|e| panic!("cannot read /proc/{me}/fd: {e}"));
    let Some(returned) = fds.iter().find(|f| f.fd == raw) else {
        fail(
            child,
            format!(
                "spawn_reader returned fd {raw}, but /proc/{me}/fd has no fd {raw}: it is not open"
            ),
        );
    };
    let Some(inode) = returned.pipe_inode() else {
        fail(
            child,
            format!(
                "spawn_reader returned fd {raw}, which is `{}`, not an end of a pipe: it should return the write \
                 end of the pipe it made with pipe(2).\n{}",
                returned.target,
                evidence_before_close()
            ),
        );
    };
    if returned.readable() {
        fail(
            child,
            format!(
                "the ends are swapped: spawn_reader returned fd {raw}, the read end of pipe:[{inode}] (fdinfo shows \
                 it open read-only), so the child must have been given the write end to read from. pipe(2) puts the \
                 read end in fds[0] and the write end in fds[1], and nix's pipe() returns (read_end, write_end) in \
                 that order. Data goes from parent to child: the parent keeps and returns the write end, the child \
                 keeps the read end.\n{}",
                evidence_before_close()
            ),
        );
    }
    let others: Vec<_> = fds
        .iter()
        .filter(|f| f.fd != raw && f.pipe_inode() == Some(inode))
        .collect();
    if let Some(other) = others.iter().find(|f| f.readable()) {
        fail(
            child,
            format!(
                "the parent still holds the read end of pipe:[{inode}] on fd {} (pid {me}, the test process that \
                     called spawn_reader). The parent only writes, so after fork it must close the read end, which \
                     belongs to the child. While the parent holds a read end the kernel counts it as a reader: if \
                     the child dies, the parent's write never fails with EPIPE and instead sleeps forever once the \
                     pipe is full.\n{}",
                other.fd,
                evidence_before_close()
            ),
        );
    }
    if let Some(other) = others.first() {
        fail(
            child,
            format!(
                "the parent holds a second write end of pipe:[{inode}] on fd {} besides fd {raw} it returned (pid \
                 {me}, the test process). When the caller closes the end it was given, this copy stays open and the \
                 child never sees end of file.\n{}",
                other.fd,
                evidence_before_close()
            ),
        );
    }
    inode
}

/// Waits until the child sleeps in `read` on pipe `inode`; returns the fd it reads on.
/// `when` says what the parent has done so far, for the message if the child exits instead.
fn await_reading(child: Pid, inode: u64, when: &str) -> i32 {
    let (settle, grace) = (scaled(SETTLE), scaled(Duration::from_millis(200)));
    let start = Instant::now();
    let mut round = 0;
    loop {
        if let Some(fd) = reading_pipe(child, inode) {
            return fd;
        }
        if procfs::state(child) == Some('Z') {
            let status = waitpid(child, None);
            panic!(
                "the child (pid {child}) exited ({}) {when}. It should sleep in read(2) on the read end of \
                 pipe:[{inode}] until data arrives or every write end is closed; a status of 1 means its copy \
                 failed, for example reading from the write end (EBADF).",
                exit_text(status)
            );
        }
        if let Some(fd) = procfs::blocked_read_fd(child) {
            let what = procfs::fds(child)
                .unwrap_or_default()
                .into_iter()
                .find(|f| f.fd == fd)
                .map_or_else(|| "closed".to_owned(), |f| f.target);
            if start.elapsed() > grace {
                fail(
                    child,
                    format!(
                        "the child (pid {child}) is asleep reading fd {fd} ({what}), not the read end of \
                         pipe:[{inode}] the parent writes to.\n{}",
                        evidence_before_close()
                    ),
                );
            }
        }
        if start.elapsed() > settle {
            fail(
                child,
                format!(
                    "after {settle:?} the child (pid {child}) was still not asleep in read(2) on the read end of \
                     pipe:[{inode}] ({when}).\n{}",
                    evidence_before_close()
                ),
            );
        }
        poll::pause(&mut round);
    }
}

/// After the parent dropped its write end: waits for the child to see end of file and exit,
/// and returns its status. Fails at once when the kernel shows it never can: the child asleep
/// reading the pipe while some process still holds a write end of it.
fn await_exit(child: Pid, inode: u64) -> WaitStatus {
    let me = getpid().as_raw();
    let settle = scaled(SETTLE);
    let start = Instant::now();
    let mut round = 0;
    loop {
        match waitpid(child, Some(WaitPidFlag::WNOHANG)) {
            Ok(WaitStatus::StillAlive) | Err(Errno::EINTR) => {}
            Ok(status) => return status,
            Err(e) => panic!("waitpid({child}) failed: {e}"),
        }
        if let Some(fd) = reading_pipe(child, inode) {
            let holders = write_end_holders(inode);
            if !holders.is_empty() {
                let mut why = Vec::new();
                for (pid, wfd) in holders {
                    let (who, advice) = if pid == child.as_raw() {
                        (
                            ", the reader itself",
                            "The child only reads, so right after fork it must close its copy of the write end, \
                             before its first read: otherwise it waits for data from itself.",
                        )
                    } else if pid == me {
                        (
                            ", the parent",
                            "The parent may keep only the write end it returns: any other copy must be closed.",
                        )
                    } else {
                        (
                            "",
                            "Every process that does not write to the pipe must close its write end.",
                        )
                    };
                    why.push(format!(
                        "pid {child} is blocked reading pipe:[{inode}] on fd {fd}: the reader never saw EOF because \
                         pid {pid} still holds the write end (fd {wfd}{who}). {advice}"
                    ));
                }
                fail(
                    child,
                    format!(
                        "the parent has closed the write end it was given, yet the child cannot finish: read(2) \
                         returns 0 (end of file) only when every write end in every process is closed.\n{}\n{}",
                        why.join("\n"),
                        evidence_now()
                    ),
                );
            }
        }
        if start.elapsed() > settle {
            fail(
                child,
                format!(
                    "after {settle:?} the child (pid {child}) had not exited although the parent closed its write \
                     end of pipe:[{inode}].\n{}",
                    evidence_now()
                ),
            );
        }
        poll::pause(&mut round);
    }
}

/// The child must have left with `_exit(0)` after copying everything.
fn expect_clean_exit(child: Pid, status: WaitStatus) {
    match status {
        WaitStatus::Exited(_, 0) => {}
        WaitStatus::Exited(_, code) => panic!(
            "the child (pid {child}) exited with status {code}, not 0: its copy to the sink failed (status 1), or \
             it left some other way. It should copy until end of file and then _exit(0)."
        ),
        WaitStatus::Signaled(_, sig, _) => {
            panic!("the child (pid {child}) was killed by {sig} instead of exiting 0")
        }
        other => panic!("the child (pid {child}) did not exit normally: {other:?}"),
    }
}

/// Writes all of `payload` into the write end without ever sleeping blind: when the pipe is
/// full, waits for room while watching that the child is still there to drain it.
fn feed(child: Pid, write_end: &OwnedFd, payload: &[u8]) {
    let flags = fcntl(write_end, FcntlArg::F_GETFL).expect("F_GETFL on the write end");
    fcntl(
        write_end,
        FcntlArg::F_SETFL(OFlag::from_bits_truncate(flags) | OFlag::O_NONBLOCK),
    )
    .expect("F_SETFL O_NONBLOCK on the write end");
    let (len, mut off) = (payload.len(), 0);
    let settle = scaled(SETTLE);
    let mut since_progress = Instant::now();
    while off < len {
        match write(write_end, &payload[off..]) {
            Ok(n) => {
                off += n;
                since_progress = Instant::now();
            }
            Err(Errno::EINTR) => {}
            Err(Errno::EAGAIN) => {
                if procfs::state(child) == Some('Z') {
                    let status = waitpid(child, None);
                    panic!(
                        "the child (pid {child}) exited ({}) while the pipe still held data and the parent \
                         had {} of {len} bytes left to write: it stopped reading before end of file. {SHORT_READ}.",
                        exit_text(status),
                        len - off
                    );
                }
                if since_progress.elapsed() > settle {
                    fail(
                        child,
                        format!(
                            "the pipe stayed full for {settle:?} with {} of {len} bytes still to write: the child (pid \
                             {child}) is not draining it.\n{}",
                            len - off,
                            evidence_now()
                        ),
                    );
                }
                let mut fds = [PollFd::new(write_end.as_fd(), PollFlags::POLLOUT)];
                let _ = poll(&mut fds, PollTimeout::from(10u8));
            }
            Err(Errno::EPIPE) => fail(
                child,
                format!(
                    "writing to the pipe failed with EPIPE after {off} of {len} bytes: no read end is open anywhere \
                     any more, so the child closed it or exited before end of file. {SHORT_READ}."
                ),
            ),
            Err(e) => fail(
                child,
                format!("writing to the write end spawn_reader returned failed: {e}"),
            ),
        }
    }
}

/// Compares what reached the sink with what was written, without printing megabytes.
fn expect_same(sent: &[u8], path: &Path) {
    let got =
        fs::read(path).unwrap_or_else(|e| panic!("cannot read the sink {}: {e}", path.display()));
    if got == sent {
        return;
    }
    let first = sent
        .iter()
        .zip(&got)
        .position(|(a, b)| a != b)
        .unwrap_or(sent.len().min(got.len()));
    let hint = if got.len() < sent.len() && sent.starts_with(&got) {
        format!(" It is the start of the data: the copy stopped early. {SHORT_READ}.")
    } else {
        String::new()
    };
    panic!(
        "the sink holds {} bytes but the parent wrote {}; they first differ at byte {first}.{hint}",
        got.len(),
        sent.len()
    );
}

/// A sink file in the scratch directory, under a fresh name.
fn new_sink() -> (OwnedFd, std::path::PathBuf) {
    static N: AtomicU32 = AtomicU32::new(0);
    let path = scratch_dir().join(format!("sink-{}", N.fetch_add(1, Ordering::SeqCst)));
    let file =
        fs::File::create(&path).unwrap_or_else(|e| panic!("cannot create {}: {e}", path.display()));
    (OwnedFd::from(file), path)
}

/// Lets a write to a pipe without readers fail with EPIPE (reported) instead of killing the test.
fn ignore_sigpipe() {
    // SAFETY: sets a disposition in the isolated test process; no handler code is involved.
    unsafe { signal(Signal::SIGPIPE, SigHandler::SigIgn) }.expect("ignore SIGPIPE");
}

/// Bytes that differ from their neighbours, so a lost or reordered chunk shows.
fn pattern(len: usize) -> Vec<u8> {
    let mut x: u32 = 0x9e37_79b9;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            (x >> 24) as u8
        })
        .collect()
}

/// Calls the student's `spawn_reader(sink)`, then checks that the parent no longer holds the
/// sink: only the child writes to it.
fn spawn(sink: OwnedFd) -> (Pid, OwnedFd) {
    let me = getpid();
    let sink_fd = sink.as_raw_fd();
    let sink_target = fs::read_link(format!("/proc/{me}/fd/{sink_fd}")).ok();
    let (child, write_end) =
        student(|| spawn_reader(sink)).unwrap_or_else(|e| panic!("spawn_reader failed: {e}"));
    let now = fs::read_link(format!("/proc/{me}/fd/{sink_fd}")).ok();
    if now.is_some() && now == sink_target && sink_fd != write_end.as_raw_fd() {
        fail(
            child,
            format!(
                "after spawn_reader returned, the parent (pid {me}) still holds its copy of the sink on fd {sink_fd} \
                 ({}): only the child writes to the sink, so the parent must close (drop) its copy after fork, as \
                 it closes the read end. A copy left open is an fd the caller never asked for, and the file stays \
                 open as long as the caller lives.\n{}",
                now.map(|p| p.display().to_string()).unwrap_or_default(),
                evidence_before_close()
            ),
        );
    }
    (child, write_end)
}

/// One delivery: spawn the reader, check the parent's side, write, close, reap, compare.
fn deliver(payload: &[u8]) {
    let (sink, path) = new_sink();
    let (child, write_end) = spawn(sink);
    let inode = check_parent_side(child, &write_end);
    feed(child, &write_end, payload);
    drop(write_end);
    let status = await_exit(child, inode);
    expect_clean_exit(child, status);
    expect_same(payload, &path);
    let _ = fs::remove_file(&path);
}

/// While the child waits in `read`, `/proc` shows the parent holding only the write end and
/// the child only the read end; once the parent closes its end the child sees EOF and exits 0.
#[test]
fn each_side_keeps_only_its_own_end() {
    Isolation::new().deadline(Duration::from_secs(15)).run(|| {
        let (sink, _path) = new_sink();
        let (child, write_end) =
            spawn(sink);
        // The parent: the returned fd is a write end, and no other fd of that pipe is open here.
        let inode = check_parent_side(child, &write_end);
        // The child: asleep in read(2) on the read end, so it has done its closing already.
        let rfd = await_reading(child, inode, "before the parent wrote anything or closed its write end");
        let child_fds = procfs::fds(child).unwrap_or_default();
        if !child_fds.iter().any(|f| f.fd == rfd && f.pipe_inode() == Some(inode) && f.readable()) {
            fail(
                child,
                format!("the child (pid {child}) should hold the read end of pipe:[{inode}] on fd {rfd}.\n{}", evidence_now()),
            );
        }
        // A write end left in the child shows here: with the parent's closed, the child still
        // sleeps in read, and await_exit names who keeps it from seeing EOF.
        drop(write_end);
        let status = await_exit(child, inode);
        expect_clean_exit(child, status);
    });
}

/// The child copies what arrives and goes back to `read` while the write end is open, however
/// little came: only the parent's close ends the stream.
#[test]
fn child_reads_until_eof_not_until_a_short_read() {
    Isolation::new().deadline(Duration::from_secs(20)).run(|| {
        ignore_sigpipe();
        let (sink, path) = new_sink();
        let (child, write_end) =
            spawn(sink);
        let inode = check_parent_side(child, &write_end);
        await_reading(child, inode, "before the parent wrote anything or closed its write end");
        let settle = scaled(SETTLE);
        let mut sent = Vec::new();
        for part in [&b"a few bytes, "[..], &b"then a few more, "[..], &pattern(100_000)[..]] {
            feed(child, &write_end, part);
            sent.extend_from_slice(part);
            // Look at the sink first, then at the child: a read seen after the bytes landed is
            // a read that came after them.
            let start = Instant::now();
            let mut round = 0;
            loop {
                let copied = fs::metadata(&path).map(|m| m.len()).unwrap_or(0);
                if copied == sent.len() as u64 && reading_pipe(child, inode).is_some() {
                    break;
                }
                if procfs::state(child) == Some('Z') {
                    let status = waitpid(child, None);
                    panic!(
                        "the child (pid {child}) exited ({}) after copying {copied} bytes while the parent \
                         still held the write end open, so more data could have come: {SHORT_READ}.",
                        exit_text(status)
                    );
                }
                if start.elapsed() > settle {
                    fail(
                        child,
                        format!(
                            "after {settle:?} the sink held {copied} of the {} bytes written so far, or the child \
                             (pid {child}) was not back in read(2) on pipe:[{inode}].\n{}",
                            sent.len(),
                            evidence_now()
                        ),
                    );
                }
                poll::pause(&mut round);
            }
        }
        drop(write_end);
        let status = await_exit(child, inode);
        expect_clean_exit(child, status);
        expect_same(&sent, &path);
    });
}

/// Payloads at the edges: nothing, one byte, `PIPE_BUF`, exactly the 64 KiB capacity, one
/// byte more, and many times the capacity (the parent must wait for the child to drain).
#[rstest]
#[case::empty(0)]
#[case::one_byte(1)]
#[case::pipe_buf(4096)]
#[case::capacity(65536)]
#[case::capacity_plus_one(65537)]
#[case::one_mib(1 << 20)]
fn payload_arrives_intact(#[case] len: usize) {
    Isolation::new()
        .deadline(Duration::from_secs(20))
        .check_fds()
        .run(|| {
            ignore_sigpipe();
            deliver(&pattern(len));
        });
}

/// Random payloads, small and larger than the pipe, each through a fresh child.
#[test]
fn random_payloads_arrive_intact() {
    Isolation::new()
        .deadline(Duration::from_secs(60))
        .check_fds()
        .run(|| {
            ignore_sigpipe();
            let config = Config {
                cases: 24,
                failure_persistence: None,
                max_shrink_iters: 32,
                ..Config::default()
            };
            let payloads = prop_oneof![
                vec(any::<u8>(), 0..64),
                vec(any::<u8>(), 0..8192),
                vec(any::<u8>(), 60_000..200_000),
            ];
            let result = TestRunner::new(config).run(&payloads, |payload| {
                deliver(&payload);
                Ok(())
            });
            match result {
                Ok(()) => {}
                Err(TestError::Fail(why, payload)) => {
                    panic!(
                        "{why}\n(the smallest failing payload proptest found has {} bytes)",
                        payload.len()
                    )
                }
                Err(e) => panic!("{e}"),
            }
        });
}

/// `copy_until_eof` on its own: a writer thread sends a little, waits until it has been copied,
/// then sends much more than the pipe holds; the copy must return only at end of file.
#[test]
fn copy_until_eof_copies_everything_and_counts_it() {
    Isolation::new().deadline(Duration::from_secs(15)).check_fds().run(|| {
        ignore_sigpipe();
        let (read_end, write_end) = pipe().expect("pipe");
        let (sink, path) = new_sink();
        let first = b"the first few bytes".to_vec();
        let rest = pattern(300_000);
        let expected: Vec<u8> = [first.clone(), rest.clone()].concat();
        let watched = path.clone();
        let settle = scaled(SETTLE);
        let writer = thread::spawn(move || -> Result<(), String> {
            let write_all = |data: &[u8]| -> Result<(), String> {
                let mut off = 0;
                while off < data.len() {
                    match write(&write_end, &data[off..]) {
                        Ok(n) => off += n,
                        Err(Errno::EINTR) => {}
                        Err(e) => return Err(format!("writer: {e} after {off} bytes")),
                    }
                }
                Ok(())
            };
            write_all(&first)?;
            // Hold back the rest until the first bytes reached the sink: the reader has had a
            // short read by then, with the write end still open.
            let start = Instant::now();
            while fs::metadata(&watched).map(|m| m.len()).unwrap_or(0) < first.len() as u64 {
                if start.elapsed() > settle {
                    return Err("writer: the first bytes never reached the sink".into());
                }
                thread::sleep(Duration::from_millis(1));
            }
            write_all(&rest)
        });
        let copied = student(|| copy_until_eof(&read_end, &sink));
        drop(read_end);
        let copied = copied.unwrap_or_else(|e| panic!("copy_until_eof failed: {e}"));
        let on_disk = fs::metadata(&path).map(|m| m.len()).unwrap_or(0);
        let total = expected.len() as u64;
        if on_disk < total {
            panic!(
                "copy_until_eof returned ({copied}) with {on_disk} of the {total} bytes in the sink, while the writer \
                 still held the write end open: {SHORT_READ}."
            );
        }
        if copied != total {
            panic!("copy_until_eof copied {on_disk} bytes into the sink but returned {copied}: it must return the count.");
        }
        match writer.join() {
            Ok(Ok(())) => {}
            Ok(Err(e)) => panic!("{e}"),
            Err(_) => panic!("the writer thread panicked"),
        }
        expect_same(&expected, &path);
    });
}

/// How many times [`count_signal`] ran.
static SIGNALS: AtomicU32 = AtomicU32::new(0);

/// A SIGUSR1 handler that does nothing but count.
extern "C" fn count_signal(_: libc::c_int) {
    SIGNALS.fetch_add(1, Ordering::SeqCst);
}

/// `copy_until_eof` asleep in `read` on an empty pipe gets a signal whose handler was
/// installed without `SA_RESTART`: that `read` fails with `EINTR`, which only means "call me
/// again". The copy must go on and return everything the writer sends afterwards.
///
/// A writer thread sends a few bytes, waits until they reached the sink and `/proc` shows the
/// copy back asleep in `read` on the pipe, then signals the copying thread and waits until the
/// handler ran. Nothing was written in between, so the interrupted read had nothing to return:
/// it can only have failed with `EINTR`. Only then does the writer send the rest and close.
#[test]
fn copy_until_eof_retries_a_read_interrupted_by_a_signal() {
    Isolation::new()
        .deadline(Duration::from_secs(15))
        .check_fds()
        .run(interrupted_copy);
}

/// The body of [`copy_until_eof_retries_a_read_interrupted_by_a_signal`].
fn interrupted_copy() {
    ignore_sigpipe();
    // No SA_RESTART: the kernel does not restart the interrupted read, it fails with EINTR.
    let action = SigAction::new(
        SigHandler::Handler(count_signal),
        SaFlags::empty(),
        SigSet::empty(),
    );
    // SAFETY: the handler only adds to an atomic counter, which is async-signal-safe.
    unsafe { sigaction(Signal::SIGUSR1, &action) }.expect("sigaction(SIGUSR1)");
    let (read_end, write_end) = pipe().expect("pipe");
    let rfd = read_end.as_raw_fd();
    let me = getpid();
    let inode = procfs::fds(me)
        .unwrap_or_default()
        .iter()
        .find(|f| f.fd == rfd)
        .and_then(procfs::Fd::pipe_inode)
        .expect("the test's pipe in /proc/self/fd");
    let (sink, path) = new_sink();
    let first = b"before the signal".to_vec();
    let rest = pattern(100_000);
    let expected: Vec<u8> = [first.clone(), rest.clone()].concat();
    // The body's only thread until now: the one that runs the copy, with tid == pid, so
    // /proc/<pid>/syscall shows what it is blocked in.
    let copier = pthread_self();
    let watched = path.clone();
    let writer = thread::spawn(move || -> Result<(), String> {
        let limit = oskata_harness::scaled(Duration::from_secs(5));
        let write_all = |data: &[u8]| -> Result<(), String> {
            let mut off = 0;
            while off < data.len() {
                match write(&write_end, &data[off..]) {
                    Ok(n) => off += n,
                    Err(Errno::EINTR) => {}
                    Err(e) => return Err(format!("writer: {e} after {off} bytes")),
                }
            }
            Ok(())
        };
        write_all(&first)?;
        // The sink first, then the syscall: a read seen after the bytes landed came after
        // them, so it sleeps on an empty pipe.
        let start = Instant::now();
        let mut round = 0;
        loop {
            let copied = fs::metadata(&watched).map(|m| m.len()).unwrap_or(0);
            if copied >= first.len() as u64 && reading_pipe(me, inode) == Some(rfd) {
                break;
            }
            if start.elapsed() > limit {
                return Err(format!(
                    "after {limit:?} the sink held {copied} of the first {} bytes, or \
                     copy_until_eof (pid {me}) was not asleep in read(2) on fd {rfd}, the \
                     read end of pipe:[{inode}]",
                    first.len()
                ));
            }
            poll::pause(&mut round);
        }
        pthread_kill(copier, Signal::SIGUSR1).map_err(|e| format!("writer: pthread_kill: {e}"))?;
        // The handler runs as the read returns to user space: once it has, the read is over.
        let start = Instant::now();
        let mut round = 0;
        while SIGNALS.load(Ordering::SeqCst) == 0 {
            if start.elapsed() > limit {
                return Err(format!(
                    "the SIGUSR1 handler had not run {limit:?} after the signal was sent"
                ));
            }
            poll::pause(&mut round);
        }
        write_all(&rest)
    });
    let copied = student(|| copy_until_eof(&read_end, &sink));
    drop(read_end);
    let total = expected.len() as u64;
    let on_disk = fs::metadata(&path).map(|m| m.len()).unwrap_or(0);
    match copied {
        Err(Errno::EINTR) => panic!(
            "copy_until_eof returned Err(EINTR) with {on_disk} of the {total} bytes in \
             the sink: its read(2) was interrupted by a signal (SIGUSR1, whose handler \
             was installed without SA_RESTART) while it waited on the empty pipe. EINTR \
             means the call was cut short before anything was read: nothing is lost and \
             the writer is still there, so call read again; it is neither end of file \
             nor a real failure."
        ),
        Err(e) => panic!("copy_until_eof failed: {e}"),
        Ok(n) if on_disk < total => panic!(
            "copy_until_eof returned ({n}) with {on_disk} of the {total} bytes in the \
             sink, while the writer still held the write end open: {SHORT_READ}."
        ),
        Ok(n) if n != total => panic!(
            "copy_until_eof copied {on_disk} bytes into the sink but returned {n}: it \
             must return the count."
        ),
        Ok(_) => {}
    }
    match writer.join() {
        Ok(Ok(())) => {}
        Ok(Err(e)) => panic!("{e}"),
        Err(_) => panic!("the writer thread panicked"),
    }
    assert_eq!(
        SIGNALS.load(Ordering::SeqCst),
        1,
        "the SIGUSR1 handler should have run exactly once, during the copy's read"
    );
    expect_same(&expected, &path);
}

/// The copy leaves with `_exit(1)` when it fails: here the sink is open read-only, so the
/// child's first write(2) to it fails with EBADF.
#[test]
fn child_exits_1_when_its_copy_fails() {
    Isolation::new().deadline(Duration::from_secs(15)).run(|| {
        ignore_sigpipe();
        let path = scratch_dir().join("read-only-sink");
        fs::write(&path, b"").expect("create the sink file");
        let sink = OwnedFd::from(fs::File::open(&path).expect("open the sink read-only"));
        let (child, write_end) = spawn(sink);
        let inode = check_parent_side(child, &write_end);
        // One byte, written at once: the pipe is empty, so this never waits; an EPIPE (the child
        // already gone) is no matter, its status tells.
        let _ = write(&write_end, b"x");
        drop(write_end);
        let status = await_exit(child, inode);
        match status {
            WaitStatus::Exited(_, 1) => {}
            WaitStatus::Exited(_, 0) => panic!(
                "the child (pid {child}) exited with status 0 although its copy failed: the sink it was given is \
                 open read-only, so write(2) to it fails with EBADF and copy_until_eof returns that error. When the \
                 copy fails the child must exit with status 1 (_exit(1)), so that the parent's waitpid learns that \
                 the data did not arrive."
            ),
            other => panic!(
                "the child (pid {child}) should exit with status 1 when its copy fails (the sink is open read-only: \
                 write(2) fails with EBADF); waitpid gave {other:?}"
            ),
        }
        let copied = fs::metadata(&path).map(|m| m.len()).unwrap_or(0);
        assert_eq!(copied, 0, "nothing can have reached a read-only sink");
    });
}

/// `copy_until_eof` returns an error that is neither EINTR nor end of file, here EBADF from a
/// write to an fd open read-only, instead of going on or reporting success.
#[test]
fn copy_until_eof_returns_other_errors() {
    Isolation::new().deadline(Duration::from_secs(15)).check_fds().run(|| {
        let (read_end, write_end) = pipe().expect("pipe");
        write(&write_end, b"some bytes").expect("write to the test's pipe");
        drop(write_end);
        let path = scratch_dir().join("read-only-sink");
        fs::write(&path, b"").expect("create the sink file");
        let sink = fs::File::open(&path).expect("open the sink read-only");
        let got = student(|| copy_until_eof(&read_end, &sink));
        assert_eq!(
            got,
            Err(Errno::EBADF),
            "copy_until_eof from a pipe into an fd open read-only: write(2) fails with EBADF, and copy_until_eof \
             must return that error (only EINTR is retried, and only read(2) returning 0 is the end)"
        );
    });
}

/// The caller's fds that have nothing to do with the pipe (a pipe of its own, both ends, and a
/// file) are still open after `spawn_reader`, as they were; the only changes to its fd table are
/// the write end it gets and the sink it gave away.
#[test]
fn spawn_reader_leaves_the_callers_other_fds_alone() {
    Isolation::new().deadline(Duration::from_secs(15)).run(|| {
        let me = getpid();
        let (other_r, other_w) = pipe().expect("the caller's own pipe");
        let file = fs::File::open("/dev/null").expect("open /dev/null");
        let (sink, _path) = new_sink();
        let sink_fd = sink.as_raw_fd();
        let before = procfs::fds(me).expect("read the test's fd table");
        let (child, write_end) = spawn(sink);
        let inode = check_parent_side(child, &write_end);
        let after = procfs::fds(me).expect("read the test's fd table");
        let expected: Vec<&procfs::Fd> = before.iter().filter(|f| f.fd != sink_fd).collect();
        let kept: Vec<&procfs::Fd> = after
            .iter()
            .filter(|f| f.fd != write_end.as_raw_fd())
            .collect();
        if kept != expected {
            let show = |fds: &[&procfs::Fd]| {
                fds.iter()
                    .map(|f| format!("{} -> {} (mode {})", f.fd, f.target, f.access))
                    .collect::<Vec<_>>()
                    .join(", ")
            };
            fail(
                child,
                format!(
                    "spawn_reader changed fds of the caller (pid {me}) that are not its to touch: besides the write \
                     end it returns and the sink it closes, the caller's fd table should be as before, [{}], but it \
                     is [{}]. Close only the pipe's read end and the sink in the parent.",
                    show(&expected),
                    show(&kept)
                ),
            );
        }
        drop(write_end);
        let status = await_exit(child, inode);
        expect_clean_exit(child, status);
        drop((other_r, other_w, file));
    });
}

/// The sink's read end in a thread: whatever the copy writes, in the order written, until end
/// of file. Never panics; returns the bytes.
fn drain(sink: OwnedFd) -> Vec<u8> {
    let mut got = Vec::new();
    let mut buf = [0u8; 8192];
    loop {
        match nix::unistd::read(&sink, &mut buf) {
            Ok(0) => return got,
            Ok(n) => got.extend_from_slice(&buf[..n]),
            Err(Errno::EINTR) => {}
            Err(_) => return got,
        }
    }
}

/// Bytes queued in a pipe (FIONREAD on one of its ends).
fn queued(fd: &OwnedFd) -> usize {
    let mut n: libc::c_int = 0;
    // SAFETY: FIONREAD writes one int into `n`.
    let r = unsafe { libc::ioctl(fd.as_raw_fd(), libc::FIONREAD, &raw mut n) };
    if r < 0 { 0 } else { n as usize }
}

/// What the copying thread (the test process's main thread) is asleep writing to right now, if
/// it sleeps in write(2), writev(2) or pwrite(2): (fd, count).
fn blocked_write(me: Pid) -> Option<(i32, u64)> {
    let call = procfs::syscall(me)?;
    let writes = [libc::SYS_write, libc::SYS_writev, libc::SYS_pwrite64];
    (writes.contains(&call.nr) && procfs::state(me) == Some('S'))
        .then_some((call.args[0] as i32, call.args[2]))
}

/// `copy_until_eof` into a pipe of one page (4 KiB, `F_SETPIPE_SZ`) that nobody drains yet,
/// from a pipe that holds much more. Its first write, of a whole buffer (at least 8 KiB, more
/// than the pipe can take), fills the pipe and sleeps; a signal whose handler has no
/// SA_RESTART then ends it with the bytes it took: a short write, certain because the test
/// sends the signal only once `/proc` shows the copy asleep in write(2) on the full pipe. The
/// copy must write the rest; it then sleeps again, in a write that has taken nothing, and a
/// second signal makes that one fail with EINTR, to be retried. Then the test drains the pipe:
/// every byte must arrive, once, in order.
#[test]
fn copy_until_eof_finishes_a_write_cut_short_by_a_signal() {
    Isolation::new()
        .deadline(Duration::from_secs(15))
        .check_fds()
        .run(short_write_copy);
}

/// The body of [`copy_until_eof_finishes_a_write_cut_short_by_a_signal`].
fn short_write_copy() {
    ignore_sigpipe();
    let action = SigAction::new(
        SigHandler::Handler(count_signal),
        SaFlags::empty(),
        SigSet::empty(),
    );
    // SAFETY: the handler only adds to an atomic counter, which is async-signal-safe.
    unsafe { sigaction(Signal::SIGUSR1, &action) }.expect("sigaction(SIGUSR1)");
    let (src_r, src_w) = pipe().expect("pipe");
    let (sink_r, sink_w) = pipe().expect("pipe");
    let page: usize = 4096;
    let size = fcntl(&sink_w, FcntlArg::F_SETPIPE_SZ(page as libc::c_int))
        .expect("F_SETPIPE_SZ on the sink pipe");
    assert_eq!(size as usize, page, "the sink pipe should hold one page");
    // All of it fits in the source pipe at once (64 KiB): the copy reads whole buffers.
    let data = pattern(40_000);
    let mut off = 0;
    while off < data.len() {
        off += write(&src_w, &data[off..]).expect("fill the source pipe");
    }
    drop(src_w);
    let me = getpid();
    let sink_fd = sink_w.as_raw_fd();
    let copier = pthread_self();
    let limit = scaled(SETTLE);
    let helper = thread::spawn(move || {
        let mut seen = Vec::new();
        let mut trouble = None;
        for round in 1..=2u32 {
            // The copy asleep in a write to the sink, and the sink full: the write has taken what
            // fits (all of a first write bigger than the pipe, nothing of the one after).
            let start = Instant::now();
            let mut pauses = 0;
            let blocked = loop {
                if let Some((fd, count)) = blocked_write(me)
                    && fd == sink_fd
                    && queued(&sink_r) == page
                {
                    break Some(count);
                }
                if start.elapsed() > limit {
                    break None;
                }
                poll::pause(&mut pauses);
            };
            let Some(count) = blocked else {
                trouble = Some(format!(
                    "after {limit:?} copy_until_eof (pid {me}) was not asleep in write(2) on fd {sink_fd}, the full \
                     sink pipe (signal {round} of 2 not sent; the copy's state {:?}, system call {:?})",
                    procfs::state(me),
                    procfs::syscall(me).map(|c| c.nr)
                ));
                break;
            };
            seen.push(count);
            if pthread_kill(copier, Signal::SIGUSR1).is_err() {
                trouble = Some("pthread_kill failed".into());
                break;
            }
            let start = Instant::now();
            while SIGNALS.load(Ordering::SeqCst) < round && start.elapsed() < limit {
                thread::sleep(Duration::from_millis(1));
            }
        }
        (seen, trouble, drain(sink_r))
    });
    let copied = student(|| copy_until_eof(&src_r, &sink_w));
    drop(sink_w);
    let (seen, trouble, got) = helper.join().expect("the helper thread");
    if let Some(first) = seen.first()
        && *first <= PIPE_BUF
    {
        panic!(
            "copy_until_eof's first write(2) asked for {first} bytes: read into a buffer of at least 8 KiB, more \
             than PIPE_BUF ({PIPE_BUF}). A pipe takes a write of up to PIPE_BUF bytes whole or not at all, so with \
             a smaller buffer the copy never meets a short write into a pipe, and the loop that finishes one goes \
             untested."
        );
    }
    match copied {
        Err(Errno::EINTR) => panic!(
            "copy_until_eof returned Err(EINTR): a write(2) into the full sink pipe was interrupted by a signal \
             (SIGUSR1, whose handler was installed without SA_RESTART) before it had taken anything. EINTR from \
             write means the same as from read: nothing was transferred, nothing is lost, call it again."
        ),
        Err(e) => panic!(
            "copy_until_eof failed ({e}) while a signal interrupted its write(2) into a full pipe: a write cut short \
             returns how many bytes it took (a short write), and one that took nothing fails with EINTR; neither is \
             an error, write the rest"
        ),
        Ok(_) => {}
    }
    if let Some(why) = trouble {
        panic!("{why}");
    }
    if got != data {
        let first = data
            .iter()
            .zip(&got)
            .position(|(a, b)| a != b)
            .unwrap_or(data.len().min(got.len()));
        panic!(
            "the sink pipe received {} of the {} bytes, differing from the data from byte {first} on. The test \
             interrupted copy_until_eof's write(2) of {} bytes after the full pipe had taken {page} of them: \
             write(2) then returns {page}, a short write, and the rest of the buffer ({} bytes) must still be \
             written, in a loop, before the next read. A write's return value is how many bytes it took.",
            got.len(),
            data.len(),
            seen.first().copied().unwrap_or(0),
            seen.first()
                .copied()
                .unwrap_or(0)
                .saturating_sub(page as u64)
        );
    }
    match copied {
        Ok(n) if n == data.len() as u64 => {}
        Ok(n) => panic!(
            "copy_until_eof copied all {} bytes into the sink but returned {n}: it must return the count.",
            data.len()
        ),
        Err(_) => unreachable!(),
    }
}

/// PIPE_BUF on Linux: a pipe write of at most this many bytes is atomic.
const PIPE_BUF: u64 = libc::PIPE_BUF as u64;
