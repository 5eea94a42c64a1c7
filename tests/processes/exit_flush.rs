//! processes/exit_flush: `exit(3)` runs the atexit handlers and flushes C stdio buffers,
//! `_exit(2)` does neither.
//!
//! What the tests observe: the bytes in the two pipes the child was given (its stdio stream's
//! and its atexit handler's), first while the child waits for the go-ahead (seen asleep in
//! `read(2)` on the go pipe in `/proc/<pid>/syscall`: the text must still be in its buffer),
//! then after `waitpid` has collected it; and the exit status `waitpid` reports.
//!
//! `exit(3)` in the child also runs whatever the copy of the test process holds: its atexit
//! handlers (Rust and the harness register none) and the calling thread's thread-local
//! destructors (harmless). The child never returns into the test: `student()` stops one that
//! does.
//!
//! The contract, clause by clause, and the tests that check it:
//! - the child registers a handler that writes [`HANDLER_MARK`] exactly once, in the child
//!   (not the caller, whose later children would inherit it): every `Leave::Exit` case,
//!   `each_child_runs_its_handler_once` (several children from one caller);
//! - the text goes into a fully buffered C stream, not flushed: while the child waits, none
//!   of it is in the pipe (checked in every test that lets the child go);
//! - the child waits on `go`, and a byte, end of file or a failed read all let it go:
//!   every test (a byte), `end_of_file_on_go_lets_the_child_go` (the write end's only holder
//!   is another process, which ends), `a_failing_read_on_go_lets_the_child_go` (`go` is a
//!   pipe's write end: EBADF); a child that is let go and stays is named, spinning or asleep;
//! - `exit(code)`: handler, then the flush; `_exit(code)`: neither; the status is the code:
//!   `exit_flushes_the_stream_and_runs_the_handler`,
//!   `underscore_exit_drops_the_buffer_and_runs_no_handler`, `random_texts_and_endings`;
//! - it never returns from spawn_writer: the stray-child guard of `student()`;
//! - the parent closes its copies of the three fds (`check_fds` in every test) and returns
//!   the pid without waiting: a watcher process sees the test process blocked in a wait on a
//!   child that waits for the go-ahead, and lets it go so the call can return and be named.

// The exercise under test: your stub (by default), the reference solution (`--features
// solutions`), or a shipped mistake that `cargo grade --mistakes` copies into target/.
#[cfg(not(any(feature = "solutions", feature = "mistake")))]
#[path = "../../exercises/processes/exit_flush.rs"]
#[allow(dead_code)] // a stub does not use all of its API yet
mod exit_flush;
#[cfg(all(feature = "solutions", not(feature = "mistake")))]
#[path = "../../solutions/processes/exit_flush.rs"]
mod exit_flush;
#[cfg(feature = "mistake")]
#[path = "../../target/oskata-mistake/processes/exit_flush.rs"]
#[rustfmt::skip] // the copy exists only while the proof runs
mod exit_flush;
use exit_flush::*;

use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use nix::errno::Errno;
use nix::fcntl::{FcntlArg, OFlag, fcntl};
use nix::sys::signal::{Signal, kill};
use nix::sys::stat::fstat;
use nix::sys::wait::{WaitStatus, waitpid};
use nix::unistd::{ForkResult, Pid, fork, getpid, pause, pipe, read, write};
use oskata_harness::{Isolation, cases, poll, procfs, scaled, student};
use proptest::collection::vec;
use proptest::prelude::*;
use proptest::test_runner::TestCaseError;
use rstest::rstest;

/// One running writer child and the test's ends of its pipes.
struct Writer {
    child: Pid,
    /// How many children spawn_writer had made in this test process before this one.
    earlier: usize,
    /// Read end of the pipe the child's stdio stream writes to.
    out: OwnedFd,
    /// Read end of the pipe the child's atexit handler writes to.
    marker: OwnedFd,
    /// Write end of the go pipe: one byte lets the child leave.
    go: GoEnd,
    /// The go pipe's inode, to recognise the child's read on it.
    go_inode: u64,
}

/// Who holds the go pipe's write end.
enum GoEnd {
    /// The test process: the child holds a copy too (fork copies every fd), so only a byte
    /// can let it go.
    Here(OwnedFd),
    /// A holder process only, forked before the go pipe's read end was handed over, and the
    /// test process closed its own copy: the child has none, so ending the holder makes the
    /// child's read return 0, end of file.
    Held(Holder),
}

/// A process that only holds the write end of a pipe, until it is dropped (killed and reaped).
struct Holder(Pid);

impl Holder {
    /// Forks a holder of `write_end` (which the caller then closes) and of nothing else.
    fn of(write_end: &OwnedFd) -> Holder {
        let keep = write_end.as_raw_fd();
        // SAFETY: the test process is single-threaded; the child only closes fds and sleeps.
        match unsafe { fork() }.expect("fork") {
            ForkResult::Child => {
                // SAFETY: close_range(2) on fds this process owns, all but the one it holds.
                unsafe {
                    libc::syscall(libc::SYS_close_range, 0u32, (keep - 1) as u32, 0u32);
                    libc::syscall(libc::SYS_close_range, (keep + 1) as u32, u32::MAX, 0u32);
                }
                loop {
                    pause();
                }
            }
            ForkResult::Parent { child } => Holder(child),
        }
    }
}

impl Drop for Holder {
    fn drop(&mut self) {
        let _ = kill(self.0, Signal::SIGKILL);
        let _ = waitpid(self.0, None);
    }
}

fn nonblocking(fd: &OwnedFd) {
    let flags = fcntl(fd, FcntlArg::F_GETFL).expect("F_GETFL");
    fcntl(
        fd,
        FcntlArg::F_SETFL(OFlag::from_bits_truncate(flags) | OFlag::O_NONBLOCK),
    )
    .expect("F_SETFL O_NONBLOCK");
}

/// Everything in the pipe right now, without waiting for more.
fn pending(fd: &OwnedFd) -> Vec<u8> {
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        match read(fd.as_fd(), &mut buf) {
            Ok(0) | Err(Errno::EAGAIN) => return got,
            Ok(n) => got.extend_from_slice(&buf[..n]),
            Err(Errno::EINTR) => {}
            Err(e) => panic!("reading a pipe failed: {e}"),
        }
    }
}

/// Kills and reaps the child (so nothing is left behind), then fails with `msg`.
fn fail(child: Pid, msg: String) -> ! {
    let _ = kill(child, Signal::SIGKILL);
    let _ = waitpid(child, None);
    panic!("{msg}");
}

/// How many times this test process has called spawn_writer.
static SPAWNED: AtomicUsize = AtomicUsize::new(0);

/// Calls the student's spawn_writer; returns the child and how many calls came before.
fn spawn(text: &[u8], leave: Leave, code: u8, fds: WriterFds) -> (Pid, usize) {
    let earlier = SPAWNED.fetch_add(1, Ordering::SeqCst);
    let child = student(|| spawn_writer(text, leave, code, fds))
        .unwrap_or_else(|e| panic!("spawn_writer failed: {e}"));
    (child, earlier)
}

/// Makes the three pipes and calls the student's spawn_writer.
fn start(text: &[u8], leave: Leave, code: u8, how: Go) -> Writer {
    let (go_r, go_w) = pipe().expect("pipe");
    let go_inode = fstat(&go_r).expect("fstat").st_ino;
    let watcher = Watcher::of(&go_w, go_inode);
    let go = match how {
        Go::Byte => GoEnd::Here(go_w),
        Go::EndOfFile => {
            let holder = Holder::of(&go_w);
            // Now only the holder has a write end: the child cannot inherit one from here.
            drop(go_w);
            GoEnd::Held(holder)
        }
    };
    let (out, out_w) = pipe().expect("pipe");
    let (marker, marker_w) = pipe().expect("pipe");
    nonblocking(&out);
    nonblocking(&marker);
    let fds = WriterFds {
        out: out_w,
        marker: marker_w,
        go: go_r,
    };
    let (child, earlier) = spawn(text, leave, code, fds);
    if let Some(waited_for) = watcher.finish() {
        panic!(
            "spawn_writer did not return while its child waited for the go-ahead: the test process was seen \
             blocked in waitpid on pid {waited_for}, the child asleep in read(2) on the go pipe (the test had to \
             let it go so that spawn_writer could return at all). The go-ahead comes from the caller, after \
             spawn_writer has returned: return the child's pid at once, without waiting for it; the caller \
             collects it"
        );
    }
    Writer {
        child,
        earlier,
        out,
        marker,
        go,
        go_inode,
    }
}

/// Whether `pid` is asleep in read(2) on the pipe with inode `go_inode`.
fn reads_go(pid: Pid, go_inode: u64) -> bool {
    let Some(fd) = procfs::blocked_read_fd(pid) else {
        return false;
    };
    procfs::fds(pid).is_ok_and(|fds| {
        fds.iter()
            .any(|f| f.fd == fd && f.pipe_inode() == Some(go_inode))
    })
}

/// A process that watches the test process while it calls spawn_writer, holding a copy of the
/// go pipe's write end. Should the test process be seen asleep in a wait on a child of its
/// that waits for the go-ahead (so spawn_writer waits for a child that only the caller can let
/// go), [`LOOKS`] looks in a row, the watcher notes that child's pid and lets it go, so that
/// the call returns and the test can say what happened instead of running into its deadline.
struct Watcher {
    /// The watcher, until it has been ended.
    pid: Option<Pid>,
    /// Read end (non-blocking) of the pipe the watcher notes a waited-for pid on.
    report: OwnedFd,
}

/// How many looks in a row, 5 ms apart, the test process must be seen waiting.
const LOOKS: u32 = 10;

impl Watcher {
    fn of(go_w: &OwnedFd, go_inode: u64) -> Watcher {
        let (report, report_w) = pipe().expect("pipe");
        nonblocking(&report);
        let body = getpid();
        // SAFETY: the test process is single-threaded; the child only reads /proc, writes to
        // its two pipes and sleeps, and never returns.
        match unsafe { fork() }.expect("fork") {
            ForkResult::Child => {
                let me = getpid();
                let mut seen = 0;
                loop {
                    let waited = procfs::children(body).into_iter().find(|k| {
                        k.pid != me.as_raw()
                            && reads_go(Pid::from_raw(k.pid), go_inode)
                            && procfs::waits_for(body, k)
                    });
                    seen = if waited.is_some() { seen + 1 } else { 0 };
                    if let Some(kid) = waited
                        && seen >= LOOKS
                    {
                        let _ = write(&report_w, &kid.pid.to_ne_bytes());
                        let _ = write(go_w, b"g");
                        loop {
                            pause();
                        }
                    }
                    thread::sleep(Duration::from_millis(5));
                }
            }
            ForkResult::Parent { child } => Watcher {
                pid: Some(child),
                report,
            },
        }
    }

    /// Ends the watcher; the pid it noted, if it saw the test process wait.
    fn finish(mut self) -> Option<Pid> {
        self.end();
        let mut word = [0u8; 4];
        match read(self.report.as_fd(), &mut word) {
            Ok(4) => Some(Pid::from_raw(i32::from_ne_bytes(word))),
            _ => None,
        }
    }
}

impl Watcher {
    /// Kills and reaps the watcher, once.
    fn end(&mut self) {
        if let Some(pid) = self.pid.take() {
            let _ = kill(pid, Signal::SIGKILL);
            let _ = waitpid(pid, None);
        }
    }
}

impl Drop for Watcher {
    /// A test that fails while the watcher runs leaves no process behind.
    fn drop(&mut self) {
        self.end();
    }
}

/// Waits until the child sleeps in read(2) on the go pipe: by then it has written its text.
fn await_waiting(w: &Writer) {
    let child = w.child;
    let waiting = poll::until(
        Duration::from_secs(5),
        "the child to wait in read(2) on the go pipe",
        || {
            if procfs::state(child) == Some('Z') {
                return Some(false);
            }
            reads_go(child, w.go_inode).then_some(true)
        },
    );
    if !waiting {
        let status = waitpid(child, None);
        panic!(
            "pid {child} ended ({status:?}) before the test let it go: after writing, the child must wait for a \
             byte (or end of file) on the `go` fd, and only then leave"
        );
    }
}

/// What one run left in the pipes, and how the child ended.
struct Outcome {
    child: Pid,
    /// How many children spawn_writer had made in this test process before this one.
    earlier: usize,
    status: WaitStatus,
    text: Vec<u8>,
    marks: Vec<u8>,
}

/// How the test lets a waiting child go.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Go {
    /// One byte written into the go pipe.
    Byte,
    /// The go pipe's only write end closed: the child's read returns 0, end of file.
    EndOfFile,
}

/// How long a child that was let go may take to end (scaled).
const SETTLE: Duration = Duration::from_secs(5);

/// Waits until the child, let go as `how` says, has ended (a zombie), and collects it; kills
/// it and fails with what `/proc` shows when it does not end.
fn reap_after(child: Pid, how: &str) -> WaitStatus {
    let start = Instant::now();
    while !matches!(procfs::state(child), Some('Z') | None) {
        if start.elapsed() > scaled(SETTLE) {
            let doing = match (procfs::state(child), procfs::blocked_read_fd(child)) {
                (_, Some(fd)) => format!("asleep in read(2) on its fd {fd}"),
                (Some('R'), None) => "running: spinning in a loop".to_string(),
                (Some(state), None) => format!("in state {state}"),
                (None, None) => "gone".to_string(),
            };
            fail(
                child,
                format!(
                    "pid {child} was let go ({how}), yet {:?} later it is still there, {doing}. Once the go-ahead \
                     has come the child leaves: a read(2) on the go fd that returns a byte, returns 0 (end of file: \
                     no writer is left, so no byte will ever come) or fails, all mean go. Do not read again",
                    scaled(SETTLE)
                ),
            );
        }
        thread::sleep(Duration::from_millis(1));
    }
    match waitpid(child, None) {
        Ok(status) => status,
        Err(Errno::ECHILD) => panic!(
            "pid {child} had already been collected when the test, its caller, went to collect it: spawn_writer \
             waited for the child. Return the child's pid at once, without waiting for it; the caller collects it"
        ),
        Err(e) => panic!("waitpid on the writer child: {e}"),
    }
}

/// Runs one writer to the end: checks that nothing reached the pipes before the go-ahead,
/// lets it go, reaps it, and collects what reached the pipes.
fn run(text: &[u8], leave: Leave, code: u8) -> Outcome {
    run_go(text, leave, code, Go::Byte)
}

/// [`run`], letting the child go as `go` says.
fn run_go(text: &[u8], leave: Leave, code: u8, go: Go) -> Outcome {
    let w = start(text, leave, code, go);
    let child = w.child;
    await_waiting(&w);
    let early = pending(&w.out);
    if !early.is_empty() {
        fail(
            child,
            format!(
                "while pid {child} waited for the go-ahead, {} of the {} bytes of its text had already reached the \
                 pipe: they were not held in a stdio buffer. Write the text with fwrite into a fully buffered C \
                 stream (fdopen, setvbuf _IOFBF), not with write(2), and do not fflush it: a stream on a pipe keeps \
                 what it is given in the process's memory until the buffer fills, fflush is called or the \
                 process leaves by exit(3)",
                early.len(),
                text.len()
            ),
        );
    }
    if !pending(&w.marker).is_empty() {
        fail(
            child,
            format!(
                "the atexit handler of pid {child} wrote its mark before the child was let go: it should run only \
                 inside exit(3)"
            ),
        );
    }
    let Writer {
        out,
        marker,
        go: go_w,
        earlier,
        ..
    } = w;
    let how = match go_w {
        GoEnd::Here(fd) => {
            write(&fd, b"g").expect("write the go-ahead");
            "one byte arrived on the go pipe"
        }
        // The holder's end was the only one: the child's read now returns 0.
        GoEnd::Held(holder) => {
            drop(holder);
            "the go pipe's only write end was closed, so its read returns 0: end of file"
        }
    };
    let status = reap_after(child, how);
    // The child is gone and the parent closed its copies: all it wrote is in the pipes.
    Outcome {
        child,
        earlier,
        status,
        text: pending(&out),
        marks: pending(&marker),
    }
}

/// How many times the mark appears in what the handler pipe received.
fn count_marks(marks: &[u8]) -> usize {
    marks
        .chunks(HANDLER_MARK.len())
        .filter(|c| *c == HANDLER_MARK)
        .count()
}

/// Checks one outcome against what `leave` must do; `Err` says what is wrong.
fn verify(text: &[u8], leave: Leave, code: u8, o: &Outcome) -> Result<(), String> {
    let child = o.child;
    if o.status != WaitStatus::Exited(child, code.into()) {
        return Err(format!(
            "waitpid reported {:?} for pid {child}, which should have left with exit code {code}",
            o.status
        ));
    }
    let marks = count_marks(&o.marks);
    if marks * HANDLER_MARK.len() != o.marks.len() {
        return Err(format!(
            "the atexit handler's pipe received {:?}, which is not {:?} repeated",
            String::from_utf8_lossy(&o.marks),
            String::from_utf8_lossy(HANDLER_MARK)
        ));
    }
    if marks > 1 && o.earlier == 0 {
        return Err(format!(
            "the atexit handler ran {marks} times in pid {child}, which left once, and it is the first child this \
             caller made: each registration with atexit(3) runs once, so the child registered the handler {marks} \
             times. Register it once, in the child"
        ));
    }
    if marks > 1 {
        return Err(format!(
            "the atexit handler ran {marks} times in pid {child}, which left once: fork copies the list of atexit \
             handlers, so a handler registered in the caller (the parent) before forking runs in every later child \
             that calls exit(3). Register it in the child, after fork"
        ));
    }
    let flushed = o.text == text;
    let handler = marks == 1;
    if !o.text.is_empty() && !flushed {
        return Err(format!(
            "the pipe received {} bytes that are not the {} bytes of the text",
            o.text.len(),
            text.len()
        ));
    }
    match leave {
        Leave::Exit if o.text.is_empty() && !text.is_empty() && !handler => Err(format!(
            "pid {child} was told to leave by exit(3), but its stdio buffer never reached the pipe and its atexit \
             handler never ran: so the child left by _exit(2), which drops the stdio buffer and runs no handler. \
             exit(3) runs the handlers, then flushes every stream"
        )),
        Leave::Exit if !handler => Err(format!(
            "pid {child} was told to leave by exit(3), but its atexit handler never wrote {:?}: exit runs every \
             handler registered with atexit(3) in the process that calls it",
            String::from_utf8_lossy(HANDLER_MARK)
        )),
        Leave::Exit if !flushed => Err(format!(
            "pid {child} left by exit(3) and its handler ran, but its text never reached the pipe: exit flushes \
             every C stream, so the text was not written into a stream on the `out` fd"
        )),
        Leave::UnderscoreExit if handler => Err(format!(
            "pid {child} was told to leave by _exit(2), but its atexit handler ran{}: so the child left by \
             exit(3), which runs the handlers and flushes stdio. _exit ends the process at once",
            if flushed && !text.is_empty() {
                " and its buffered text reached the pipe"
            } else {
                ""
            }
        )),
        Leave::UnderscoreExit if flushed && !text.is_empty() => Err(format!(
            "pid {child} was told to leave by _exit(2), yet its buffered text reached the pipe: something flushed \
             the stdio buffer before the process ended. _exit(2) throws the buffer away; that is the point of \
             this case, so do not fflush"
        )),
        _ => Ok(()),
    }
}

fn check(text: &[u8], leave: Leave, code: u8) {
    let o = run(text, leave, code);
    if let Err(why) = verify(text, leave, code, &o) {
        panic!("{why}");
    }
}

/// A text of `len` printable bytes.
fn text_of(len: usize) -> Vec<u8> {
    (0..len).map(|i| b'a' + (i % 26) as u8).collect()
}

#[rstest]
#[case::one_byte(b"x".to_vec(), 0)]
#[case::a_line(b"hello from the child\n".to_vec(), 3)]
#[case::no_newline(b"no newline at the end".to_vec(), 42)]
#[case::a_thousand_bytes(text_of(1000), 255)]
fn exit_flushes_the_stream_and_runs_the_handler(#[case] text: Vec<u8>, #[case] code: u8) {
    Isolation::new()
        .check_fds()
        .run(|| check(&text, Leave::Exit, code));
}

#[rstest]
#[case::one_byte(b"x".to_vec(), 0)]
#[case::a_line(b"hello from the child\n".to_vec(), 3)]
#[case::no_newline(b"no newline at the end".to_vec(), 42)]
#[case::a_thousand_bytes(text_of(1000), 255)]
fn underscore_exit_drops_the_buffer_and_runs_no_handler(#[case] text: Vec<u8>, #[case] code: u8) {
    Isolation::new()
        .check_fds()
        .run(|| check(&text, Leave::UnderscoreExit, code));
}

/// Several children in a row from one caller: each one's handler runs once, in that child.
#[test]
fn each_child_runs_its_handler_once() {
    Isolation::new().check_fds().run(|| {
        for i in 0..3u8 {
            check(format!("child number {i}\n").as_bytes(), Leave::Exit, i);
        }
        check(b"and one that leaves by _exit", Leave::UnderscoreExit, 9);
    });
}

/// End of file on the go pipe is a go-ahead too: the test closes the pipe's only write end
/// while the child waits.
#[rstest]
#[case::by_exit(Leave::Exit)]
#[case::by_underscore_exit(Leave::UnderscoreExit)]
fn end_of_file_on_go_lets_the_child_go(#[case] leave: Leave) {
    Isolation::new().check_fds().run(|| {
        let text = b"held until end of file\n";
        let o = run_go(text, leave, 5, Go::EndOfFile);
        if let Err(why) = verify(text, leave, 5, &o) {
            panic!("{why}");
        }
    });
}

/// A read on `go` that fails is a go-ahead too: here `go` is a pipe's write end, which read(2)
/// refuses (EBADF), so the child leaves as soon as it has written.
#[rstest]
#[case::by_exit(Leave::Exit)]
#[case::by_underscore_exit(Leave::UnderscoreExit)]
fn a_failing_read_on_go_lets_the_child_go(#[case] leave: Leave) {
    Isolation::new().check_fds().run(|| {
        let (out, out_w) = pipe().expect("pipe");
        let (marker, marker_w) = pipe().expect("pipe");
        let (_unread, go_w) = pipe().expect("pipe");
        nonblocking(&out);
        nonblocking(&marker);
        let text = b"the go fd cannot be read";
        let fds = WriterFds {
            out: out_w,
            marker: marker_w,
            go: go_w,
        };
        let (child, earlier) = spawn(text, leave, 6, fds);
        let status = reap_after(
            child,
            "its read(2) on the go fd failed (EBADF: the fd is a pipe's write end)",
        );
        let o = Outcome {
            child,
            earlier,
            status,
            text: pending(&out),
            marks: pending(&marker),
        };
        if let Err(why) = verify(text, leave, 6, &o) {
            panic!("{why}");
        }
    });
}

#[test]
fn random_texts_and_endings() {
    Isolation::new()
        .deadline(Duration::from_secs(30))
        .check_fds()
        .run(|| {
            let strategy = (vec(any::<u8>(), 0..1000), any::<bool>(), any::<u8>());
            cases::check(32, strategy, |(text, by_exit, code)| {
                let leave = if by_exit {
                    Leave::Exit
                } else {
                    Leave::UnderscoreExit
                };
                let o = run(&text, leave, code);
                verify(&text, leave, code, &o).map_err(TestCaseError::fail)
            });
        });
}
