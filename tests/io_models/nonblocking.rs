//! io_models/nonblocking: O_NONBLOCK with fcntl, and a read that tells data, "would block" and
//! end of file apart (非阻塞 I/O).
//!
//! What the tests observe, never what the code under test claims:
//! - the file status flags in `/proc/self/fdinfo/<fd>` (`flags:`, octal) before and after
//!   `set_nonblocking`, on the fd, on a `dup` of it and on another open file description;
//! - the outcome of `read_some` on real pipes, TCP connections over 127.0.0.1 (port 0) and Unix
//!   socket pairs, each in the state the test put it in: empty with the writer open, holding
//!   bytes the test wrote (the test's own poll(2) sees them first), writer closed or shut down;
//! - the thread running `read_some`, in `/proc/self/task/<tid>/syscall`: a read (or poll) it sleeps
//!   in is reported at once, then the test wakes it with a byte, so nothing hangs.
//!
//! The contract, clause by clause, and the test that checks each:
//! - `set_nonblocking` sets O_NONBLOCK on pipes, TCP and Unix sockets
//!   (`set_nonblocking_sets_o_nonblock`, three kinds), keeps the other flags
//!   (`set_nonblocking_keeps_o_append`), leaves an already set flag set
//!   (`setting_it_twice_leaves_it_set`), and acts on the open file description: a dup shares it,
//!   the pipe's other end does not (`the_flag_belongs_to_the_open_file_description`);
//! - `read_some` on an empty, still open pipe or socket returns WouldBlock at once, never
//!   sleeping and never as an error (`empty_is_would_block`, three kinds);
//! - it returns Data(n) with exactly the bytes that were there, at most `buf.len()`, leaving the
//!   rest for the next read (`data_is_data`, `a_read_takes_at_most_the_buffer`, three kinds each);
//! - it returns Eof once the writer closed or shut down, and again on the next call, and only
//!   after the data (`a_closed_writer_is_eof`, three kinds);
//! - an empty buffer is EINVAL (`an_empty_buffer_is_einval`); other errors are returned
//!   (`other_errors_are_returned`: EBADF from a pipe's write end).
//!
//! Not tested: `EINTR`. A non-blocking read of a pipe or socket never sleeps, so no signal can
//! interrupt it; the retry is in the contract for completeness only.

// The exercise under test: your stub (by default), the reference solution (`--features
// solutions`), or a shipped mistake that `cargo grade --mistakes` copies into target/.
#[cfg(not(any(feature = "solutions", feature = "mistake")))]
#[path = "../../exercises/io_models/nonblocking.rs"]
#[allow(dead_code)] // a stub does not use all of its API yet
mod nonblocking;
#[cfg(all(feature = "solutions", not(feature = "mistake")))]
#[path = "../../solutions/io_models/nonblocking.rs"]
mod nonblocking;
#[cfg(feature = "mistake")]
#[path = "../../target/oskata-mistake/io_models/nonblocking.rs"]
#[rustfmt::skip] // the copy exists only while the proof runs
mod nonblocking;
use nonblocking::*;

use std::fs::{self, OpenOptions};
use std::net::{TcpListener, TcpStream};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::os::unix::fs::OpenOptionsExt;
use std::os::unix::net::UnixStream;
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use nix::errno::Errno;
use nix::fcntl::OFlag;
use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
use nix::sys::socket::{Shutdown, shutdown};
use nix::unistd::{dup, getpid, gettid, pipe, pipe2, write};
use oskata_harness::{isolated, procfs, scaled, scratch_dir, student};
use rstest::rstest;

/// O_NONBLOCK and O_APPEND as fdinfo shows them (octal 04000 and 02000).
const NONBLOCK: u32 = libc::O_NONBLOCK as u32;
const APPEND: u32 = libc::O_APPEND as u32;

/// How long a correct read may take to come back, or a byte to become readable (before
/// `scaled`); a correct one needs microseconds.
const SETTLE: Duration = Duration::from_secs(5);

/// The lesson of the flags.
const STATUS_FLAG: &str = "O_NONBLOCK is a file status flag: read them with fcntl(F_GETFL), or in O_NONBLOCK, write \
                           them back with fcntl(F_SETFL). (F_SETFD sets the descriptor flags, of which FD_CLOEXEC is \
                           the only one: O_NONBLOCK given there is dropped without an error)";

/// The lesson of 0.
const ZERO_IS_EOF: &str = "read(2) returning 0 means end of file: the writer has closed (or shut down its side) and no \
                           more data will ever come. It is not \"no data yet\" (that is EAGAIN): a caller that waits \
                           for more data after a 0 spins forever. 0 means end of file, Eof";

/// The kinds of descriptor the tests read from.
#[derive(Debug, Clone, Copy)]
enum Kind {
    Pipe,
    Tcp,
    Unix,
}

/// A reading end and the test's writing end of one channel.
struct Channel {
    kind: Kind,
    reader: OwnedFd,
    writer: Option<OwnedFd>,
}

impl Channel {
    fn new(kind: Kind) -> Channel {
        let (reader, writer) = match kind {
            Kind::Pipe => pipe().expect("the test's pipe"),
            Kind::Tcp => {
                let listener = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
                let client =
                    TcpStream::connect(listener.local_addr().expect("addr")).expect("connect");
                let (server, _) = listener.accept().expect("accept");
                (OwnedFd::from(server), OwnedFd::from(client))
            }
            Kind::Unix => {
                let (a, b) = UnixStream::pair().expect("socketpair");
                (OwnedFd::from(a), OwnedFd::from(b))
            }
        };
        Channel {
            kind,
            reader,
            writer: Some(writer),
        }
    }

    fn name(&self) -> &'static str {
        match self.kind {
            Kind::Pipe => "the read end of a pipe",
            Kind::Tcp => "a TCP socket connected over 127.0.0.1",
            Kind::Unix => "one end of a Unix socket pair",
        }
    }

    /// Writes all of `data` from the test's end.
    fn send(&self, data: &[u8]) {
        let w = self.writer.as_ref().expect("the writer is open");
        let mut rest = data;
        while !rest.is_empty() {
            rest = &rest[write(w, rest).expect("the test's write")..];
        }
    }

    /// Closes the writer (a pipe) or shuts down its sending side (a socket, which stays open).
    fn close_writer(&mut self) {
        match self.kind {
            Kind::Pipe => drop(self.writer.take()),
            _ => shutdown(
                self.writer.as_ref().expect("open").as_raw_fd(),
                Shutdown::Write,
            )
            .expect("the test's shutdown(SHUT_WR)"),
        }
    }

    /// Waits (the test's own poll) until the reader is readable: data or end of file arrived.
    fn await_readable(&self) {
        let mut fds = [PollFd::new(self.reader.as_fd(), PollFlags::POLLIN)];
        let ms = scaled(SETTLE).as_millis().min(60_000) as u16;
        let n = poll(&mut fds, PollTimeout::from(ms)).expect("the test's poll");
        assert!(
            n == 1,
            "after {ms} ms {} is still not readable",
            self.name()
        );
    }
}

/// The flags of this process's fd from `/proc/self/fdinfo/<fd>`.
fn flags(fd: impl AsFd) -> u32 {
    let raw = fd.as_fd().as_raw_fd();
    let text = fs::read_to_string(format!("/proc/self/fdinfo/{raw}"))
        .unwrap_or_else(|e| panic!("cannot read /proc/self/fdinfo/{raw}: {e}"));
    text.lines()
        .find_map(|l| l.strip_prefix("flags:"))
        .and_then(|f| u32::from_str_radix(f.trim(), 8).ok())
        .unwrap_or_else(|| panic!("no flags line in /proc/self/fdinfo/{raw}: {text}"))
}

/// Calls the student's `set_nonblocking` and fails unless it returned Ok.
fn set(fd: impl AsFd, what: &str) {
    let raw = fd.as_fd().as_raw_fd();
    let got = student(|| set_nonblocking(fd));
    assert_eq!(got, Ok(()), "set_nonblocking on {what} (fd {raw}) failed");
}

/// Fails unless fdinfo shows O_NONBLOCK on `fd`.
fn expect_nonblocking(fd: impl AsFd, what: &str, before: u32) {
    let raw = fd.as_fd().as_raw_fd();
    let now = flags(fd);
    assert!(
        now & NONBLOCK != 0,
        "after set_nonblocking on {what} (fd {raw}), /proc/self/fdinfo/{raw} shows flags {now:#o} (before: \
         {before:#o}), without O_NONBLOCK ({NONBLOCK:#o}). {STATUS_FLAG}"
    );
}

/// The system calls a reading thread may be seen asleep in.
fn sleeping_call(nr: i64) -> Option<&'static str> {
    [
        (libc::SYS_read, "read"),
        (libc::SYS_readv, "readv"),
        (libc::SYS_pread64, "pread64"),
        (libc::SYS_recvfrom, "recvfrom"),
        (libc::SYS_recvmsg, "recvmsg"),
        (libc::SYS_poll, "poll"),
        (libc::SYS_ppoll, "ppoll"),
        (libc::SYS_select, "select"),
        (libc::SYS_pselect6, "pselect6"),
        (libc::SYS_epoll_wait, "epoll_wait"),
        (libc::SYS_epoll_pwait, "epoll_pwait"),
    ]
    .iter()
    .find(|(n, _)| *n == nr)
    .map(|(_, name)| *name)
}

/// Runs `read_some(ch.reader, buf of len)` on a thread of its own and watches it. If the
/// thread is seen asleep in a read or a wait, the test wakes it with a byte and fails at once.
/// Returns the outcome and the bytes read.
fn read_watched(ch: &Channel, len: usize) -> (nix::Result<ReadOutcome>, Vec<u8>) {
    let reader = ch.reader.try_clone().expect("the test's dup of the reader");
    let raw = reader.as_raw_fd();
    let (tid_tx, tid_rx) = mpsc::channel();
    let handle = thread::spawn(move || {
        tid_tx.send(gettid().as_raw()).expect("send tid");
        let mut buf = vec![0u8; len];
        let got = student(|| read_some(&reader, &mut buf));
        (got, buf)
    });
    let tid = tid_rx.recv().expect("the reading thread's tid");
    let start = Instant::now();
    let mut asleep = None;
    while !handle.is_finished() {
        if let Some(call) = procfs::thread_syscall(getpid(), tid)
            && let Some(name) = sleeping_call(call.nr)
            && procfs::task_stat(getpid(), tid).is_ok_and(|s| s.state == 'S')
        {
            asleep = Some((name, call.args[0]));
            break;
        }
        if start.elapsed() > scaled(SETTLE) {
            panic!(
                "read_some on {} (fd {raw}) had not returned after {:?}; its thread (tid {tid}) is {:?}",
                ch.name(),
                scaled(SETTLE),
                procfs::task_stat(getpid(), tid).map(|s| s.state)
            );
        }
        thread::sleep(Duration::from_micros(200));
    }
    if let Some((name, arg)) = asleep {
        // Wake it: a byte for the pipe or socket it sleeps on, so the thread can be joined.
        let wake = match &ch.writer {
            Some(w) => write(w, b"!").is_ok(),
            None => false,
        };
        if wake {
            let _ = handle.join();
        }
        let flags_now = flags(&ch.reader);
        panic!(
            "read_some on {} (fd {raw}, flags {flags_now:#o} in /proc/self/fdinfo) slept: its thread (tid {tid}) \
             was seen asleep in {name}(2) (first argument {arg}) in /proc/self/task/{tid}/syscall, so the test \
             woke it with a byte. A non-blocking read never sleeps: on an fd with O_NONBLOCK set, read(2) on \
             an empty pipe or socket fails at once with EAGAIN, and read_some must call read(2) directly, not \
             wait for data first. {}",
            ch.name(),
            if flags_now & NONBLOCK == 0 {
                STATUS_FLAG
            } else {
                "Here O_NONBLOCK was set, so the wait came from read_some itself"
            }
        );
    }
    // A panic of read_some (a stub's todo!() among them) keeps its own message.
    handle
        .join()
        .unwrap_or_else(|p| std::panic::resume_unwind(p))
}

/// A channel whose reader `set_nonblocking` (the student's) has made non-blocking, checked in
/// fdinfo.
fn nonblocking_channel(kind: Kind) -> Channel {
    let ch = Channel::new(kind);
    let before = flags(&ch.reader);
    set(&ch.reader, ch.name());
    expect_nonblocking(&ch.reader, ch.name(), before);
    ch
}

/// Fails unless `got` is `want`, naming what each outcome means.
fn expect_outcome(got: nix::Result<ReadOutcome>, want: ReadOutcome, ch: &Channel, state: &str) {
    if got == Ok(want) {
        return;
    }
    let name = ch.name();
    match (want, got) {
        (ReadOutcome::Eof, Ok(ReadOutcome::WouldBlock)) => {
            panic!("read_some on {name} {state} returned WouldBlock. {ZERO_IS_EOF}")
        }
        (ReadOutcome::WouldBlock, Err(e @ Errno::EAGAIN)) => panic!(
            "read_some on {name} {state} returned the error {e}. EAGAIN (EWOULDBLOCK) is not an error for a \
             non-blocking read: it is the normal answer \"nothing there now, try again later\", \
             ReadOutcome::WouldBlock"
        ),
        (ReadOutcome::WouldBlock, Ok(ReadOutcome::Eof)) => panic!(
            "read_some on {name} {state} returned Eof, but the writer is still open: read(2) failed with \
             EAGAIN there (nothing now, more may come), which is WouldBlock; Eof is only read(2) returning 0"
        ),
        (want, got) => {
            panic!("read_some on {name} {state} returned {got:?}, expected Ok({want:?})")
        }
    }
}

const KINDS: [Kind; 3] = [Kind::Pipe, Kind::Tcp, Kind::Unix];

#[rstest]
#[case::pipe(Kind::Pipe)]
#[case::tcp(Kind::Tcp)]
#[case::unix(Kind::Unix)]
fn set_nonblocking_sets_o_nonblock(#[case] kind: Kind) {
    isolated(|| {
        // Makes the channel, calls set_nonblocking and checks fdinfo.
        drop(nonblocking_channel(kind));
    });
}

#[test]
fn set_nonblocking_keeps_o_append() {
    isolated(|| {
        let path = scratch_dir().join("log");
        let file = OpenOptions::new()
            .append(true)
            .create(true)
            .mode(0o600)
            .open(&path)
            .expect("the test's open(O_WRONLY | O_APPEND)");
        let before = flags(&file);
        assert!(
            before & APPEND != 0,
            "the test's file lacks O_APPEND: {before:#o}"
        );
        set(&file, "a file opened O_WRONLY | O_APPEND");
        expect_nonblocking(&file, "a file opened O_WRONLY | O_APPEND", before);
        let after = flags(&file);
        assert!(
            after & APPEND != 0,
            "set_nonblocking cleared O_APPEND: /proc/self/fdinfo shows flags {before:#o} before and {after:#o} \
             after. F_SETFL replaces every file status flag at once, so F_SETFL with O_NONBLOCK alone clears \
             the others (O_APPEND here: the file's next writes would overwrite it instead of appending). {STATUS_FLAG}"
        );
        assert_eq!(
            after & 0o3,
            before & 0o3,
            "set_nonblocking changed the access mode ({before:#o} -> {after:#o})"
        );
    });
}

#[test]
fn setting_it_twice_leaves_it_set() {
    isolated(|| {
        for (what, already) in [
            ("a pipe made with pipe2(O_NONBLOCK)", true),
            ("a pipe set twice", false),
        ] {
            let (r, _w) = if already {
                pipe2(OFlag::O_NONBLOCK).expect("pipe2")
            } else {
                pipe().expect("pipe")
            };
            if !already {
                set(&r, what);
            }
            let before = flags(&r);
            set(&r, what);
            let after = flags(&r);
            assert!(
                after & NONBLOCK != 0,
                "on {what}, O_NONBLOCK was already set (fdinfo flags {before:#o}) and set_nonblocking cleared it \
                 (now {after:#o}): it toggles the flag (xor) rather than setting it. Or it in: flags | O_NONBLOCK"
            );
        }
    });
}

#[test]
fn the_flag_belongs_to_the_open_file_description() {
    isolated(|| {
        let (r, w) = pipe().expect("pipe");
        let copy = dup(&r).expect("dup");
        let w_before = flags(&w);
        set(&copy, "a dup of a pipe's read end");
        expect_nonblocking(&copy, "a dup of a pipe's read end", 0);
        let original = flags(&r);
        assert!(
            original & NONBLOCK != 0,
            "set_nonblocking on a dup (fd {}) of the read end (fd {}) did not reach the original: its flags are \
             {original:#o}. Both fds refer to one open file description, which holds the status flags",
            copy.as_raw_fd(),
            r.as_raw_fd()
        );
        let w_after = flags(&w);
        assert_eq!(
            w_after & NONBLOCK,
            w_before & NONBLOCK,
            "set_nonblocking on the read end changed the write end's flags ({w_before:#o} -> {w_after:#o}): \
             it is another open file description and must be left alone"
        );
    });
}

#[rstest]
#[case::pipe(Kind::Pipe)]
#[case::tcp(Kind::Tcp)]
#[case::unix(Kind::Unix)]
fn empty_is_would_block(#[case] kind: Kind) {
    isolated(|| {
        let ch = nonblocking_channel(kind);
        for round in 0..2 {
            let (got, _) = read_watched(&ch, 64);
            expect_outcome(
                got,
                ReadOutcome::WouldBlock,
                &ch,
                &format!(
                    "with nothing in it and the writer open (call {})",
                    round + 1
                ),
            );
        }
    });
}

/// Reads once and checks that exactly `want` came.
fn expect_data(ch: &Channel, len: usize, want: &[u8], state: &str) {
    let (got, buf) = read_watched(ch, len);
    expect_outcome(got, ReadOutcome::Data(want.len()), ch, state);
    assert_eq!(
        &buf[..want.len()],
        want,
        "read_some on {} {state} said Data({}), but the first {} bytes of the buffer are not the bytes \
         written",
        ch.name(),
        want.len(),
        want.len()
    );
}

#[rstest]
#[case::pipe(Kind::Pipe)]
#[case::tcp(Kind::Tcp)]
#[case::unix(Kind::Unix)]
fn data_is_data(#[case] kind: Kind) {
    isolated(|| {
        let ch = nonblocking_channel(kind);
        ch.send(b"hello");
        ch.await_readable();
        expect_data(
            &ch,
            64,
            b"hello",
            "holding the 5 bytes \"hello\" (64-byte buffer)",
        );
        let (got, _) = read_watched(&ch, 64);
        expect_outcome(
            got,
            ReadOutcome::WouldBlock,
            &ch,
            "after its 5 bytes were read",
        );
    });
}

#[rstest]
#[case::pipe(Kind::Pipe)]
#[case::tcp(Kind::Tcp)]
#[case::unix(Kind::Unix)]
fn a_read_takes_at_most_the_buffer(#[case] kind: Kind) {
    isolated(|| {
        let ch = nonblocking_channel(kind);
        let data: Vec<u8> = (0..100u8).collect();
        ch.send(&data);
        ch.await_readable();
        expect_data(&ch, 30, &data[..30], "holding 100 bytes (a 30-byte buffer)");
        // The rest, in as many reads as it takes (a stream may hand them over in parts).
        let mut got = Vec::new();
        while got.len() < 70 {
            ch.await_readable();
            let (outcome, buf) = read_watched(&ch, 128);
            match outcome {
                Ok(ReadOutcome::Data(n)) if n > 0 && n <= 128 => got.extend_from_slice(&buf[..n]),
                other => panic!(
                    "read_some on {} after 30 of 100 bytes were read returned {other:?}; 70 bytes are still there",
                    ch.name()
                ),
            }
        }
        assert_eq!(
            got,
            &data[30..],
            "the 70 bytes after the first 30 did not come back intact"
        );
    });
}

#[rstest]
#[case::pipe(Kind::Pipe)]
#[case::tcp(Kind::Tcp)]
#[case::unix(Kind::Unix)]
fn a_closed_writer_is_eof(#[case] kind: Kind) {
    isolated(|| {
        let mut ch = nonblocking_channel(kind);
        let closed = match kind {
            Kind::Pipe => "after its only write end was closed",
            _ => "after the peer did shutdown(SHUT_WR)",
        };
        ch.send(b"ab");
        ch.close_writer();
        ch.await_readable();
        expect_data(
            &ch,
            64,
            b"ab",
            &format!("{closed}, with 2 bytes still in it"),
        );
        // Readable again with its data read: the end has arrived (over TCP the FIN is a packet
        // of its own, which a loaded machine may deliver a little after shutdown returned).
        ch.await_readable();
        for round in 0..2 {
            let (got, _) = read_watched(&ch, 64);
            expect_outcome(
                got,
                ReadOutcome::Eof,
                &ch,
                &format!("{closed}, its data read (call {})", round + 1),
            );
        }
    });
}

#[test]
fn an_empty_buffer_is_einval() {
    isolated(|| {
        for kind in KINDS {
            let ch = nonblocking_channel(kind);
            ch.send(b"x");
            ch.await_readable();
            let got = student(|| read_some(&ch.reader, &mut []));
            assert_eq!(
                got,
                Err(Errno::EINVAL),
                "read_some on {} with an empty buffer must return EINVAL: read(2) of 0 bytes returns 0, which \
                 is no answer (it would look like end of file)",
                ch.name()
            );
            expect_data(
                &ch,
                8,
                b"x",
                "after a read with an empty buffer (the byte must still be there)",
            );
        }
    });
}

#[test]
fn other_errors_are_returned() {
    isolated(|| {
        let (_r, w) = pipe().expect("pipe");
        set(&w, "a pipe's write end");
        let mut buf = [0u8; 16];
        let got = student(|| read_some(&w, &mut buf));
        assert_eq!(
            got,
            Err(Errno::EBADF),
            "read_some on a pipe's write end must return the error of read(2), EBADF (not open for reading)"
        );
        // A number that was just closed, so no fd of this single-threaded body has it.
        let gone = dup(&w).expect("dup").as_raw_fd();
        assert!(
            fs::read_link(format!("/proc/self/fd/{gone}")).is_err(),
            "fd {gone} is open"
        );
        // SAFETY: fcntl on a closed number only fails with EBADF; nothing is read or written.
        let closed = unsafe { BorrowedFd::borrow_raw(gone) };
        let got = student(|| set_nonblocking(closed));
        assert_eq!(
            got,
            Err(Errno::EBADF),
            "set_nonblocking on fd {gone}, which is not open, must return the error of fcntl(2), EBADF"
        );
    });
}
