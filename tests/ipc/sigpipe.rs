//! ipc/sigpipe: writing to a pipe whose read ends are all closed (管道破裂): killed by SIGPIPE
//! at its default disposition, `EPIPE` with it ignored.
//!
//! What the tests observe, never what the code under test claims:
//! - the writer's fate from `waitpid`: killed by SIGPIPE, or exited 0;
//! - the errno the surviving writer sends back on a pipe of the test's (a kernel error number
//!   only its `write(2)` could have produced: the test makes sure nobody reads);
//! - the parent's fd table and its own SIGPIPE disposition (`SigIgn`/`SigCgt` in
//!   `/proc/<pid>/status`) before and after `spawn_writer`;
//! - a writer asleep in `write(2)` (`/proc/<pid>/syscall`) on a pipe of which some process still
//!   holds a read end (`/proc/<pid>/fd`, `fdinfo`), named at once with the holder;
//! - for `write_all`, the bytes that arrive, and a short write and an `EINTR` forced by a signal
//!   sent once `/proc` shows it asleep in write(2) on a full pipe.
//!
//! The contract, clause by clause, and the test that checks each:
//! - `write_all` writes every byte, finishing a write a signal cut short and retrying one that
//!   failed with EINTR (`write_all_finishes_a_write_cut_short_by_a_signal`), and returns EPIPE
//!   when no read end is left, from the start or after the reader went away mid-way
//!   (`write_all_returns_epipe`);
//! - `spawn_writer(Default, ..)`: the child is killed by SIGPIPE, whatever disposition it
//!   inherited, and reports nothing (`default_disposition_kills_the_writer`);
//! - `spawn_writer(Ignore, ..)`: the child survives, reports EPIPE and exits 0, whatever it
//!   inherited, and `/proc/<pid>/status` shows SIGPIPE ignored (not caught) while it writes its
//!   report, held up by a full report pipe (`ignored_disposition_gives_epipe`);
//! - the child closes its read end, and the parent both ends and its copy of `report`; the
//!   parent's SIGPIPE disposition and its other fds are as before (every `spawn_writer` test,
//!   through `run_writer`).

// The exercise under test: your stub (by default), the reference solution (`--features
// solutions`), or a shipped mistake that `cargo grade --mistakes` copies into target/.
#[cfg(not(any(feature = "solutions", feature = "mistake")))]
#[path = "../../exercises/ipc/sigpipe.rs"]
#[allow(dead_code)] // a stub does not use all of its API yet
mod sigpipe;
#[cfg(all(feature = "solutions", not(feature = "mistake")))]
#[path = "../../solutions/ipc/sigpipe.rs"]
mod sigpipe;
#[cfg(feature = "mistake")]
#[path = "../../target/oskata-mistake/ipc/sigpipe.rs"]
#[rustfmt::skip] // the copy exists only while the proof runs
mod sigpipe;
use sigpipe::*;

use std::os::fd::{AsRawFd, OwnedFd};
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use nix::errno::Errno;
use nix::fcntl::{FcntlArg, OFlag, fcntl};
use nix::sys::pthread::{pthread_kill, pthread_self};
use nix::sys::signal::{SaFlags, SigAction, SigHandler, SigSet, Signal, kill, sigaction, signal};
use nix::sys::wait::{WaitPidFlag, WaitStatus, waitpid};
use nix::unistd::{Pid, getpid, pipe, read};
use oskata_harness::{Isolation, evidence, poll, procfs, scaled, student};
use rstest::rstest;

/// How long a correct solution may take to reach a state the test waits for (before `scaled`).
const SETTLE: Duration = Duration::from_secs(8);

/// What the writer writes: four times what a pipe holds, so a writer that still has a reader
/// fills the pipe and sleeps instead of finishing.
const DATA_LEN: usize = 256 * 1024;

/// One page: the size the tests give a pipe they want full.
const PAGE: usize = 4096;

/// SIGPIPE's bit in the `SigIgn`/`SigCgt` masks of `/proc/<pid>/status`.
const SIGPIPE_BIT: u64 = 1 << (libc::SIGPIPE - 1);

/// The disposition the test process gives SIGPIPE before it calls `spawn_writer`: the child
/// inherits it.
#[derive(Debug, Clone, Copy)]
enum Inherited {
    /// `SIG_DFL`, as the harness leaves it.
    Default,
    /// `SIG_IGN`, as Rust's runtime sets it in every Rust program before `main`.
    Ignored,
}

/// The test process and all its descendants, in the kernel's words.
fn evidence_now() -> String {
    let me = getpid();
    let mut procs: Vec<procfs::Stat> = procfs::stat(me).into_iter().collect();
    procs.extend(procfs::descendants(me));
    format!(
        "What the kernel shows (the test process, the parent, is pid {me}):\n{}",
        evidence::describe(&procs)
    )
}

/// Kills and reaps `child` if it is still there, then fails with `msg`.
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

/// Sets the test process's own SIGPIPE disposition.
fn set_own(inherited: Inherited) {
    let handler = match inherited {
        Inherited::Default => SigHandler::SigDfl,
        Inherited::Ignored => SigHandler::SigIgn,
    };
    // SAFETY: SIG_DFL and SIG_IGN install no handler code.
    unsafe { signal(Signal::SIGPIPE, handler) }.expect("set SIGPIPE's disposition");
}

/// The test process's SIGPIPE disposition as `/proc` shows it: (ignored, caught).
fn own_disposition() -> (bool, bool) {
    let status = procfs::status(getpid()).expect("read /proc/self/status");
    let bit = |key| status.signal_mask(key).unwrap_or(0) & SIGPIPE_BIT != 0;
    (bit("SigIgn"), bit("SigCgt"))
}

/// Bytes that differ from their neighbours.
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

/// Which processes of the test's tree hold a read end of pipe `inode`, as (pid, fd).
fn read_end_holders(inode: u64) -> Vec<(i32, i32)> {
    let me = getpid();
    let mut procs: Vec<procfs::Stat> = procfs::stat(me).into_iter().collect();
    procs.extend(procfs::descendants(me));
    let mut out = Vec::new();
    for p in procs.iter().filter(|p| p.state != 'Z') {
        for f in procfs::fds(Pid::from_raw(p.pid)).unwrap_or_default() {
            if f.pipe_inode() == Some(inode) && f.readable() {
                out.push((p.pid, f.fd));
            }
        }
    }
    out
}

/// The pipe `pid` is in write(2) on right now, as (fd, inode).
fn writing_pipe(pid: Pid) -> Option<(i32, u64)> {
    let call = procfs::syscall(pid)?;
    if call.nr != libc::SYS_write && call.nr != libc::SYS_writev {
        return None;
    }
    let fd = call.args[0] as i32;
    let inode = procfs::fds(pid)
        .ok()?
        .into_iter()
        .find(|f| f.fd == fd)?
        .pipe_inode()?;
    Some((fd, inode))
}

/// Checks the parent right after `spawn_writer` returned: its fd table is what it was minus
/// `report` (no end of the writer's pipe, no copy of `report`), and its own SIGPIPE disposition
/// is unchanged.
fn check_parent(child: Pid, before: &[procfs::Fd], report_fd: i32, disposition: (bool, bool)) {
    let me = getpid();
    let after = procfs::fds(me).expect("read the test's fd table");
    for f in &after {
        if f.fd == report_fd && before.iter().any(|b| b == f) {
            fail(
                child,
                format!(
                    "after spawn_writer returned, the parent (pid {me}) still holds its copy of report on fd \
                     {report_fd} ({}): only the child writes the report, so the parent must close (drop) its copy \
                     after fork.\n{}",
                    f.target,
                    evidence_now()
                ),
            );
        }
        if before.iter().any(|b| b == f) {
            continue;
        }
        let what = match (f.pipe_inode(), f.readable()) {
            (Some(inode), true) => format!(
                "the read end of pipe:[{inode}], the writer's pipe. While the parent holds a read end the kernel \
                 counts a reader, so the child's write never fails and never raises SIGPIPE: once the pipe is full \
                 it just waits. After fork the parent must close its read end too"
            ),
            (Some(inode), false) => format!(
                "the write end of pipe:[{inode}]: the parent does not write, so it closes its copy after fork"
            ),
            (None, _) => format!("`{}`, which was not open before", f.target),
        };
        fail(
            child,
            format!(
                "after spawn_writer returned, the parent (pid {me}) holds fd {}, {what}.\n{}",
                f.fd,
                evidence_now()
            ),
        );
    }
    let now = own_disposition();
    if now != disposition {
        let word = |(ign, cgt): (bool, bool)| {
            if ign {
                "ignored"
            } else if cgt {
                "caught by a handler"
            } else {
                "the default"
            }
        };
        fail(
            child,
            format!(
                "spawn_writer changed the parent's own SIGPIPE disposition: /proc/{me}/status showed it {} before \
                 the call and {} after (SigIgn and SigCgt, bit 0x1000). Set the disposition in the child, after \
                 fork: a disposition belongs to one process, and the caller's is not yours to change.",
                word(disposition),
                word(now)
            ),
        );
    }
}

/// What became of one writer: its wait status and the bytes it reported.
struct Outcome {
    child: Pid,
    status: WaitStatus,
    report: Vec<u8>,
    /// SIGPIPE in the child's `SigIgn` and `SigCgt` while it sat writing its report, if it got
    /// that far.
    reporting: Option<(bool, bool)>,
}

/// Sets the test's own disposition to `inherited`, runs `spawn_writer(sigpipe, ..)`, checks
/// the parent, then waits for the child, failing at once if the kernel shows it asleep in
/// write(2) on a pipe some process still holds a read end of.
fn run_writer(sigpipe: Sigpipe, inherited: Inherited) -> Outcome {
    set_own(inherited);
    let (report_r, report_w) = pipe().expect("the report pipe");
    // The report pipe is made full (one page, filled): the child's report then waits in write(2)
    // until the test drains the filler, which lets the test read the child's disposition from
    // /proc while it is alive and past its write of the data.
    fcntl(&report_w, FcntlArg::F_SETPIPE_SZ(PAGE as libc::c_int)).expect("F_SETPIPE_SZ");
    let filler = [b'#'; PAGE];
    let mut off = 0;
    while off < PAGE {
        off += nix::unistd::write(&report_w, &filler[off..]).expect("fill the report pipe");
    }
    let report_inode = procfs::fds(getpid())
        .expect("read the test's fd table")
        .iter()
        .find(|f| f.fd == report_r.as_raw_fd())
        .and_then(procfs::Fd::pipe_inode)
        .expect("the report pipe's inode");
    let mut reporting = None;
    let me = getpid();
    let report_fd = report_w.as_raw_fd();
    let before = procfs::fds(me).expect("read the test's fd table");
    let disposition = own_disposition();
    let data = pattern(DATA_LEN);
    let child = student(|| spawn_writer(sigpipe, &data, report_w))
        .unwrap_or_else(|e| panic!("spawn_writer failed: {e}"));
    check_parent(child, &before, report_fd, disposition);
    let settle = scaled(SETTLE);
    let start = Instant::now();
    let mut round = 0;
    let status = loop {
        match waitpid(child, Some(WaitPidFlag::WNOHANG)) {
            Ok(WaitStatus::StillAlive) | Err(Errno::EINTR) => {}
            Ok(status) => break status,
            Err(e) => panic!("waitpid({child}) failed: {e}"),
        }
        // One look per round: two looks could see two different writes (the data, then the
        // report) and take the report pipe's legitimate reader, the test, for a fault.
        let writing = writing_pipe(child);
        if let Some((_, inode)) = writing
            && inode == report_inode
        {
            // Writing its report, past the data: once it sleeps there, read its disposition,
            // then let the report through.
            if reporting.is_none()
                && procfs::state(child) == Some('S')
                && let Ok(status) = procfs::status(child)
            {
                let bit = |key| status.signal_mask(key).unwrap_or(0) & SIGPIPE_BIT != 0;
                reporting = Some((bit("SigIgn"), bit("SigCgt")));
                let mut buf = [0u8; PAGE];
                let mut got = 0;
                while got < PAGE {
                    match read(&report_r, &mut buf[got..]) {
                        Ok(0) => break,
                        Ok(n) => got += n,
                        Err(Errno::EINTR) => {}
                        Err(e) => panic!("draining the report pipe: {e}"),
                    }
                }
            }
        } else if let Some((wfd, inode)) = writing {
            let holders = read_end_holders(inode);
            if let Some(&(pid, rfd)) = holders.first() {
                let who = if pid == child.as_raw() {
                    "the writer itself: it must close its own read end before it writes"
                } else if pid == me.as_raw() {
                    "the parent: it must close its read end after fork"
                } else {
                    "a process that does not read the pipe and so must close it"
                };
                fail(
                    child,
                    format!(
                        "the writer (pid {child}) is in write(2) on fd {wfd}, pipe:[{inode}], and pid {pid} still \
                         holds its read end (fd {rfd}), {who}. While any read end is open anywhere the kernel has \
                         a reader: no SIGPIPE, no EPIPE, the write just waits for room once the pipe is full \
                         (it has {DATA_LEN} bytes to write, a pipe holds 64 KiB), and nobody will ever read.\n{}",
                        evidence_now()
                    ),
                );
            }
        }
        if start.elapsed() > settle {
            fail(
                child,
                format!(
                    "after {settle:?} the writer (pid {child}) had neither died nor exited.\n{}",
                    evidence_now()
                ),
            );
        }
        poll::pause(&mut round);
    };
    // Every write end is closed now (the child has exited, the parent's copy was checked): read
    // what is there without blocking.
    fcntl(&report_r, FcntlArg::F_SETFL(OFlag::O_NONBLOCK)).expect("O_NONBLOCK");
    let mut report = Vec::new();
    let mut buf = [0u8; 64];
    while let Ok(n @ 1..) = read(&report_r, &mut buf) {
        report.extend_from_slice(&buf[..n]);
    }
    if reporting.is_none() {
        // Nothing was let through: the filler is still there, before whatever came.
        report.drain(..PAGE.min(report.len()));
    }
    set_own(Inherited::Default);
    Outcome {
        child,
        status,
        report,
        reporting,
    }
}

/// A report in words.
fn report_text(report: &[u8]) -> String {
    match <[u8; 4]>::try_from(report) {
        Ok(bytes) => match i32::from_le_bytes(bytes) {
            0 => "0 (write_all returned Ok: every byte written)".into(),
            n => format!("{n} ({})", Errno::from_raw(n)),
        },
        Err(_) => format!(
            "{} bytes {report:02x?}, not the 4 bytes of an i32",
            report.len()
        ),
    }
}

/// `Sigpipe::Default`: the writer dies of SIGPIPE at its first write, whatever it inherited;
/// with SIGPIPE ignored in the parent (as Rust's runtime leaves it) the child must set SIG_DFL
/// itself.
#[rstest]
#[case::inherited_default(Inherited::Default)]
#[case::inherited_ignored(Inherited::Ignored)]
fn default_disposition_kills_the_writer(#[case] inherited: Inherited) {
    Isolation::new().deadline(Duration::from_secs(20)).run(move || {
        let Outcome {
            child,
            status,
            report,
            ..
        } = run_writer(Sigpipe::Default, inherited);
        match status {
            WaitStatus::Signaled(_, Signal::SIGPIPE, _) if report.is_empty() => {}
            WaitStatus::Signaled(_, Signal::SIGPIPE, _) => panic!(
                "the writer (pid {child}) was killed by SIGPIPE, but the report pipe held {}: a writer killed by the \
                 signal reports nothing",
                report_text(&report)
            ),
            WaitStatus::Exited(_, 0) if report == (Errno::EPIPE as i32).to_le_bytes() => {
                let why = match inherited {
                    Inherited::Ignored => {
                        "The test's process had SIGPIPE ignored, as Rust's runtime sets it in every Rust \
                         program, and the child inherited that through fork. Sigpipe::Default must set SIG_DFL \
                         explicitly in the child: a disposition is inherited, never assumed to be the default \
                         (an ignored signal even stays ignored across exec)."
                    }
                    Inherited::Default => {
                        "The parent's SIGPIPE was at its default, so the child must have set it to ignored \
                         itself: Sigpipe::Default means SIG_DFL."
                    }
                };
                panic!(
                    "the writer (pid {child}) was not killed by SIGPIPE: it survived, reported that its write \
                     failed with EPIPE and exited 0. EPIPE reaches a writer only when SIGPIPE is ignored or \
                     caught; at the default disposition the kernel's SIGPIPE terminates it, and waitpid reports \
                     it killed by SIGPIPE. {why}"
                );
            }
            other => panic!(
                "the writer (pid {child}), with SIGPIPE at its default disposition, should be killed by SIGPIPE \
                 at its first write into a pipe with no read end; waitpid gave {other:?} and the report pipe held \
                 {}",
                report_text(&report)
            ),
        }
    });
}

/// `Sigpipe::Ignore`: the writer survives, its write fails with EPIPE, it reports EPIPE and
/// exits 0, whatever it inherited.
#[rstest]
#[case::inherited_default(Inherited::Default)]
#[case::inherited_ignored(Inherited::Ignored)]
fn ignored_disposition_gives_epipe(#[case] inherited: Inherited) {
    Isolation::new().deadline(Duration::from_secs(20)).run(move || {
        let Outcome {
            child,
            status,
            report,
            reporting,
        } = run_writer(Sigpipe::Ignore, inherited);
        let epipe = (Errno::EPIPE as i32).to_le_bytes();
        match status {
            WaitStatus::Exited(_, 0) if report == epipe => match reporting {
                Some((true, false)) => {}
                Some((_, true)) => panic!(
                    "the writer (pid {child}) reported EPIPE, but while it wrote its report /proc/{child}/status \
                     showed SIGPIPE caught by a handler (SigCgt), not ignored (SigIgn): Sigpipe::Ignore means \
                     SIG_IGN. A handler also turns the write into EPIPE, but it is not the same disposition: it is \
                     reset to the default by exec, while an ignored signal stays ignored."
                ),
                other => panic!(
                    "the writer (pid {child}) reported EPIPE, but while it wrote its report /proc/{child}/status did \
                     not show SIGPIPE ignored (SigIgn, SigCgt: {other:?})"
                ),
            },
            WaitStatus::Signaled(_, Signal::SIGPIPE, _) => panic!(
                "the writer (pid {child}) was killed by SIGPIPE: Sigpipe::Ignore must set SIGPIPE to SIG_IGN in the \
                 child before it writes ({}), so that the kernel's signal is discarded and write(2) fails with \
                 EPIPE instead.",
                match inherited {
                    Inherited::Default => "the parent's SIGPIPE was at its default, and the child inherited that",
                    Inherited::Ignored => "the parent's was ignored, so the child must have set the default",
                }
            ),
            WaitStatus::Exited(_, 0) if report == 0i32.to_le_bytes() => panic!(
                "the writer (pid {child}) reported success (0): write_all returned Ok although no read end of its \
                 pipe was open, so no byte can have been delivered. write(2) failed with EPIPE there, and \
                 write_all must return that error: EPIPE is not success."
            ),
            WaitStatus::Exited(_, 0) => panic!(
                "the writer (pid {child}) should report EPIPE ({}) as 4 little-endian bytes, but reported {}",
                Errno::EPIPE as i32,
                report_text(&report)
            ),
            other => panic!(
                "the writer (pid {child}), with SIGPIPE ignored, should survive its write, report EPIPE and exit 0; \
                 waitpid gave {other:?} and the report pipe held {}",
                report_text(&report)
            ),
        }
    });
}

/// `write_all` with SIGPIPE ignored: into a pipe with no reader at all, and into one whose
/// reader takes 10 KiB and then closes its end while the write waits for room. Both are
/// `Err(EPIPE)`.
#[rstest]
#[case::no_reader_from_the_start(0)]
#[case::reader_leaves_mid_way(10 * 1024)]
fn write_all_returns_epipe(#[case] taken: usize) {
    Isolation::new()
        .deadline(Duration::from_secs(20))
        .check_fds()
        .run(move || {
            set_own(Inherited::Ignored);
            let (read_end, write_end) = pipe().expect("pipe");
            let me = getpid();
            let wfd = write_end.as_raw_fd();
            let reader = thread::spawn(move || -> Result<(), String> {
                let limit = scaled(SETTLE);
                let mut got = 0;
                let mut buf = vec![0u8; taken.max(1)];
                while got < taken {
                    match read(&read_end, &mut buf[..taken - got]) {
                        Ok(0) => break,
                        Ok(n) => got += n,
                        Err(Errno::EINTR) => {}
                        Err(e) => return Err(format!("reader: {e}")),
                    }
                }
                // Leave only while write_all sleeps in write(2) on the full pipe (or is done).
                let start = Instant::now();
                while taken > 0
                    && procfs::syscall(me).is_none_or(|c| c.nr != libc::SYS_write || c.args[0] as i32 != wfd)
                {
                    if start.elapsed() > limit {
                        break;
                    }
                    thread::sleep(Duration::from_micros(200));
                }
                drop(read_end);
                Ok(())
            });
            if taken == 0 {
                reader.join().expect("the reader").expect("the reader");
                let got = student(|| write_all(&write_end, b"nobody reads this"));
                assert_eq!(
                    got,
                    Err(Errno::EPIPE),
                    "write_all into a pipe whose read ends are all closed: write(2) fails with EPIPE (SIGPIPE is \
                     ignored here), and write_all must return that error, not Ok: nothing was delivered"
                );
                return;
            }
            let data = pattern(DATA_LEN);
            let got = student(|| write_all(&write_end, &data));
            let trouble = reader.join().expect("the reader thread");
            assert_eq!(
                got,
                Err(Errno::EPIPE),
                "write_all of {DATA_LEN} bytes; the reader took {taken} and closed its end while the write waited \
                 for room: the write returns what it took, and the next one fails with EPIPE. write_all must return \
                 that error, not Ok: the rest was never delivered"
            );
            if let Err(e) = trouble {
                panic!("{e}");
            }
        });
}

/// How many times [`count_signal`] ran.
static SIGNALS: AtomicU32 = AtomicU32::new(0);

/// Set once the code under test has returned, so the helper stops waiting for it to sleep.
static RETURNED: AtomicBool = AtomicBool::new(false);

/// A SIGUSR1 handler that does nothing but count.
extern "C" fn count_signal(_: libc::c_int) {
    SIGNALS.fetch_add(1, Ordering::SeqCst);
}

/// Bytes queued in a pipe (FIONREAD on one of its ends).
fn queued(fd: &OwnedFd) -> usize {
    let mut n: libc::c_int = 0;
    // SAFETY: FIONREAD writes one int into `n`.
    let r = unsafe { libc::ioctl(fd.as_raw_fd(), libc::FIONREAD, &raw mut n) };
    if r < 0 { 0 } else { n as usize }
}

/// `write_all` into a pipe of one page (`F_SETPIPE_SZ`) that nobody drains yet. Its write of
/// 40 000 bytes fills the pipe and sleeps; a signal whose handler has no SA_RESTART ends it with
/// the 4096 bytes it took (a short write). The next write sleeps having taken nothing, and a
/// second signal makes it fail with EINTR. Each signal is sent once `/proc` shows the writer
/// asleep in write(2) with the pipe full. Then the test drains: every byte must arrive, once, in
/// order.
#[test]
fn write_all_finishes_a_write_cut_short_by_a_signal() {
    Isolation::new()
        .deadline(Duration::from_secs(20))
        .check_fds()
        .run(short_write);
}

/// The body of [`write_all_finishes_a_write_cut_short_by_a_signal`].
fn short_write() {
    set_own(Inherited::Ignored);
    let action = SigAction::new(
        SigHandler::Handler(count_signal),
        SaFlags::empty(),
        SigSet::empty(),
    );
    // SAFETY: the handler only adds to an atomic counter, which is async-signal-safe.
    unsafe { sigaction(Signal::SIGUSR1, &action) }.expect("sigaction(SIGUSR1)");
    let (sink_r, sink_w) = pipe().expect("pipe");
    let page = 4096;
    let size = fcntl(&sink_w, FcntlArg::F_SETPIPE_SZ(page as libc::c_int)).expect("F_SETPIPE_SZ");
    assert_eq!(size as usize, page, "the pipe should hold one page");
    let data = pattern(40_000);
    let me = getpid();
    let wfd = sink_w.as_raw_fd();
    let writer = pthread_self();
    let limit = scaled(SETTLE);
    let helper = thread::spawn(move || {
        let mut trouble = None;
        for round in 1..=2u32 {
            let start = Instant::now();
            let mut pauses = 0;
            loop {
                let asleep = procfs::state(me) == Some('S')
                    && procfs::syscall(me)
                        .is_some_and(|c| c.nr == libc::SYS_write && c.args[0] as i32 == wfd);
                if asleep && queued(&sink_r) == page {
                    break;
                }
                if RETURNED.load(Ordering::SeqCst) {
                    // It returned without writing the rest: the bytes tell.
                    break;
                }
                if start.elapsed() > limit {
                    trouble = Some(format!(
                        "after {limit:?} write_all (pid {me}) was not asleep in write(2) on fd {wfd}, the full \
                         pipe (signal {round} of 2 not sent)"
                    ));
                    break;
                }
                poll::pause(&mut pauses);
            }
            if trouble.is_some() || RETURNED.load(Ordering::SeqCst) {
                break;
            }
            let _ = pthread_kill(writer, Signal::SIGUSR1);
            let start = Instant::now();
            while SIGNALS.load(Ordering::SeqCst) < round && start.elapsed() < limit {
                thread::sleep(Duration::from_millis(1));
            }
        }
        let mut got = Vec::new();
        let mut buf = [0u8; 8192];
        loop {
            match read(&sink_r, &mut buf) {
                Ok(0) => break,
                Ok(n) => got.extend_from_slice(&buf[..n]),
                Err(Errno::EINTR) => {}
                Err(_) => break,
            }
        }
        (trouble, got)
    });
    let result = student(|| write_all(&sink_w, &data));
    RETURNED.store(true, Ordering::SeqCst);
    drop(sink_w);
    let (trouble, got) = helper.join().expect("the helper thread");
    match result {
        Ok(()) => {}
        Err(Errno::EINTR) => panic!(
            "write_all returned Err(EINTR): a write(2) into the full pipe was interrupted by a signal (SIGUSR1, \
             whose handler has no SA_RESTART) before it took anything. EINTR means nothing was transferred and \
             nothing is lost: call write again."
        ),
        Err(e) => panic!(
            "write_all failed ({e}) while a signal interrupted its write(2) into a full pipe"
        ),
    }
    if let Some(why) = trouble {
        panic!("{why}");
    }
    if got != data {
        panic!(
            "the pipe received {} of the {} bytes write_all was given. The test interrupted its write(2) after the \
             full pipe had taken {page} bytes: write(2) then returns {page}, a short write, and the rest must still \
             be written, in a loop. A write's return value is how many bytes it took.",
            got.len(),
            data.len()
        );
    }
}
