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

use std::os::fd::{AsFd, OwnedFd};
use std::time::Duration;

use nix::errno::Errno;
use nix::fcntl::{FcntlArg, OFlag, fcntl};
use nix::sys::signal::{Signal, kill};
use nix::sys::stat::fstat;
use nix::sys::wait::{WaitStatus, waitpid};
use nix::unistd::{Pid, pipe, read, write};
use oskata_harness::{Isolation, cases, poll, procfs, student};
use proptest::collection::vec;
use proptest::prelude::*;
use proptest::test_runner::TestCaseError;
use rstest::rstest;

/// One running writer child and the test's ends of its pipes.
struct Writer {
    child: Pid,
    /// Read end of the pipe the child's stdio stream writes to.
    out: OwnedFd,
    /// Read end of the pipe the child's atexit handler writes to.
    marker: OwnedFd,
    /// Write end of the go pipe: one byte lets the child leave.
    go: OwnedFd,
    /// The go pipe's inode, to recognise the child's read on it.
    go_inode: u64,
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

/// Makes the three pipes and calls the student's spawn_writer.
fn start(text: &[u8], leave: Leave, code: u8) -> Writer {
    let (out, out_w) = pipe().expect("pipe");
    let (marker, marker_w) = pipe().expect("pipe");
    let (go_r, go) = pipe().expect("pipe");
    let go_inode = fstat(&go_r).expect("fstat").st_ino;
    nonblocking(&out);
    nonblocking(&marker);
    let fds = WriterFds {
        out: out_w,
        marker: marker_w,
        go: go_r,
    };
    let child = student(|| spawn_writer(text, leave, code, fds))
        .unwrap_or_else(|e| panic!("spawn_writer failed: {e}"));
    Writer {
        child,
        out,
        marker,
        go,
        go_inode,
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
            let fd = procfs::blocked_read_fd(child)?;
            let fds = procfs::fds(child).ok()?;
            fds.iter()
                .any(|f| f.fd == fd && f.pipe_inode() == Some(w.go_inode))
                .then_some(true)
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
    status: WaitStatus,
    text: Vec<u8>,
    marks: Vec<u8>,
}

/// Runs one writer to the end: checks that nothing reached the pipes before the go-ahead,
/// lets it go, reaps it, and collects what reached the pipes.
fn run(text: &[u8], leave: Leave, code: u8) -> Outcome {
    let w = start(text, leave, code);
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
    write(&w.go, b"g").expect("write the go-ahead");
    let status = waitpid(child, None).expect("waitpid on the writer child");
    // The child is gone and the parent closed its copies: all it wrote is in the pipes.
    Outcome {
        child,
        status,
        text: pending(&w.out),
        marks: pending(&w.marker),
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
