//! ipc/fifo: a named pipe (有名管道, FIFO) made with mkfifo, opened by two processes that are
//! not each other's parent.
//!
//! What the tests observe, never what the code under test claims:
//! - the file at the path from `lstat(2)`: its type (`S_ISFIFO`), its permission bits, its
//!   inode (a stale FIFO must be replaced by a new one), under a umask chosen to change them;
//!   the umask afterwards (`/proc/<pid>/status`);
//! - each side asleep in `open(2)`/`openat(2)` (from `/proc/<pid>/syscall`, state S) while the
//!   other side does not exist yet, and going on once the test opens the other end;
//! - the bytes that cross, read by the test, by the student's reader in another process, or by
//!   a plain `cat`; the exit status of each process from `waitpid`.
//!
//! The contract, clause by clause, and the test that checks each:
//! - `make_fifo` makes a FIFO with exactly the asked mode whatever the umask, and leaves the
//!   umask alone (`fifo_has_exactly_the_asked_mode`);
//! - it replaces a stale regular file, a stale FIFO (a new inode) or a symbolic link (the link
//!   goes, its target stays) (`a_stale_file_is_replaced`);
//! - it returns errors: `ENOENT` for a missing parent directory, an error for a directory at
//!   the path, which stays as it was (`make_fifo_returns_errors`);
//! - `send` waits in open(2) until a reader opens, then writes everything and closes
//!   (`send_waits_for_a_reader`, the test as the reader; `send_feeds_cat`, with `cat` as the
//!   reader);
//! - `receive` waits in open(2) until a writer opens, then reads until end of file, not until a
//!   short read (`receive_waits_for_a_writer`, the test as the writer, pausing between two
//!   parts until the reader sleeps in read(2));
//! - data crosses intact between `send` and `receive` in two sibling processes, whatever the
//!   size, empty to several times the pipe's capacity (`data_crosses_between_two_processes`,
//!   a property test).

// The exercise under test: your stub (by default), the reference solution (`--features
// solutions`), or a shipped mistake that `cargo grade --mistakes` copies into target/.
#[cfg(not(any(feature = "solutions", feature = "mistake")))]
#[path = "../../exercises/ipc/fifo.rs"]
#[allow(dead_code)] // a stub does not use all of its API yet
mod fifo;
#[cfg(all(feature = "solutions", not(feature = "mistake")))]
#[path = "../../solutions/ipc/fifo.rs"]
mod fifo;
#[cfg(feature = "mistake")]
#[path = "../../target/oskata-mistake/ipc/fifo.rs"]
#[rustfmt::skip] // the copy exists only while the proof runs
mod fifo;
use fifo::*;

use std::fs;
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::fs::{FileTypeExt, MetadataExt, symlink};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use nix::errno::Errno;
use nix::fcntl::{OFlag, open};
use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
use nix::sys::signal::{SigHandler, Signal, kill, signal};
use nix::sys::stat::{Mode, fstat, umask};
use nix::sys::wait::{WaitPidFlag, WaitStatus, waitpid};
use nix::unistd::{ForkResult, Pid, fork, getpid, mkfifo, pipe, read, write};
use oskata_harness::{Isolation, evidence, procfs, scaled, scratch_dir, student};
use proptest::prelude::*;
use proptest::test_runner::{Config, RngAlgorithm, TestCaseError, TestError, TestRng, TestRunner};
use rstest::rstest;

/// How long correct code may take for anything here (before `scaled`).
const SETTLE: Duration = Duration::from_secs(5);

/// The test process and its descendants, in the kernel's words.
fn evidence_now() -> String {
    let me = getpid();
    let mut procs: Vec<procfs::Stat> = procfs::stat(me).into_iter().collect();
    procs.extend(procfs::descendants(me));
    format!(
        "What the kernel shows (the test process is pid {me}):\n{}",
        evidence::describe(&procs)
    )
}

/// Kills and reaps every child of the test process, then fails with `msg`.
fn fail(msg: String) -> ! {
    for child in procfs::children(getpid()) {
        let _ = kill(Pid::from_raw(child.pid), Signal::SIGKILL);
    }
    while matches!(waitpid(None, None), Ok(_) | Err(Errno::EINTR)) {}
    panic!("{msg}");
}

/// A write to a pipe with no reader fails with EPIPE instead of killing the process.
fn ignore_sigpipe() {
    // SAFETY: sets a disposition in the isolated test process; no handler code is involved.
    unsafe { signal(Signal::SIGPIPE, SigHandler::SigIgn) }.expect("ignore SIGPIPE");
}

/// Bytes that differ from their neighbours, so a lost or reordered chunk shows.
fn pattern(len: usize, seed: u32) -> Vec<u8> {
    let mut x: u32 = (0x9e37_79b9 ^ seed.wrapping_mul(0x85eb_ca6b)) | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            (x >> 24) as u8
        })
        .collect()
}

/// The type of the file at `path` in words, for messages (without following a link).
fn kind(path: &Path) -> String {
    match fs::symlink_metadata(path) {
        Err(e) => format!("nothing ({e})"),
        Ok(m) if m.file_type().is_fifo() => format!("a FIFO with mode {:04o}", m.mode() & 0o7777),
        Ok(m) if m.is_file() => format!(
            "a regular file of {} bytes with mode {:04o}",
            m.len(),
            m.mode() & 0o7777
        ),
        Ok(m) if m.is_dir() => "a directory".to_owned(),
        Ok(m) if m.file_type().is_symlink() => "a symbolic link".to_owned(),
        Ok(m) => format!("a file of mode {:o}", m.mode()),
    }
}

/// A FIFO made by the test itself (not by the student's `make_fifo`), mode 0600.
fn test_fifo(name: &str) -> PathBuf {
    let path = scratch_dir().join(name);
    mkfifo(&path, Mode::from_bits_truncate(0o600)).expect("the test's own mkfifo");
    path
}

/// Forks a child that runs `f` (student code, called directly: this child is the test's, and
/// leaves with `_exit`) and exits 0 when it returns `Ok`, 1 otherwise.
fn child(f: impl FnOnce() -> Result<(), String>) -> Pid {
    // SAFETY: the isolated test process is single-threaded here; the child runs `f` and _exits.
    match unsafe { fork() }.expect("fork") {
        ForkResult::Child => {
            // A panic must not unwind into the test's code in this copy of the process.
            let code = match std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)) {
                Ok(Ok(())) => 0,
                Ok(Err(why)) => {
                    eprintln!("{why}");
                    1
                }
                Err(panic) => {
                    let text = panic
                        .downcast_ref::<&str>()
                        .map(|s| s.to_string())
                        .or_else(|| panic.downcast_ref::<String>().cloned())
                        .unwrap_or_default();
                    if text.starts_with("not yet implemented") {
                        NOT_STARTED
                    } else {
                        PANICKED
                    }
                }
            };
            // SAFETY: leaves the forked child at once, without running the test's code.
            unsafe { libc::_exit(code) }
        }
        ForkResult::Parent { child } => child,
    }
}

/// The exit status of a child whose student code hit a `todo!()`.
const NOT_STARTED: i32 = 98;
/// The exit status of a child whose student code panicked otherwise.
const PANICKED: i32 = 99;

/// A stub's `todo!()` in a child is the whole test's "not started", not a failure.
fn not_started(status: WaitStatus) {
    if let WaitStatus::Exited(pid, NOT_STARTED) = status {
        panic!("not yet implemented (reached in the test's child process {pid})");
    }
}

/// A `waitpid` status in words.
fn status_text(status: Option<WaitStatus>) -> String {
    match status {
        Some(WaitStatus::Exited(_, 0)) => "exited with status 0".to_owned(),
        Some(WaitStatus::Exited(_, code)) => {
            format!("exited with status {code} (its call returned an error)")
        }
        Some(WaitStatus::Signaled(_, sig, _)) => format!("was killed by {sig}"),
        Some(other) => format!("{other:?}"),
        None => "is still running".to_owned(),
    }
}

/// How `pid` is doing: `Ok(true)` asleep in open(2)/openat(2), `Ok(false)` something else,
/// `Err(status)` it has exited (and is reaped).
fn in_open(pid: Pid) -> Result<bool, WaitStatus> {
    if procfs::state(pid) == Some('Z') {
        return Err(waitpid(pid, None).expect("waitpid"));
    }
    let opens = [libc::SYS_open, libc::SYS_openat, libc::SYS_openat2];
    Ok(procfs::syscall(pid).is_some_and(|c| opens.contains(&c.nr))
        && procfs::state(pid) == Some('S'))
}

/// What `pid` is asleep in, in words, for a message.
fn doing(pid: Pid) -> String {
    match (procfs::state(pid), procfs::syscall(pid)) {
        (Some('S'), Some(c)) => {
            let name = match c.nr {
                libc::SYS_read => "read(2)".to_owned(),
                libc::SYS_write => "write(2)".to_owned(),
                libc::SYS_open | libc::SYS_openat => "open(2)".to_owned(),
                libc::SYS_wait4 | libc::SYS_waitid => "a wait".to_owned(),
                libc::SYS_poll | libc::SYS_ppoll => "poll(2)".to_owned(),
                n => format!("system call {n}"),
            };
            format!("asleep in {name} (first argument {})", c.args[0] as i64)
        }
        (state, _) => format!("in state {state:?}"),
    }
}

/// Waits until `pid` sleeps in open(2) (the other side of the FIFO not being there yet);
/// fails with `lesson` when it exits first or sleeps in anything else instead.
fn await_open(pid: Pid, who: &str, lesson: &str) {
    let start = Instant::now();
    let limit = scaled(SETTLE);
    let mut asleep_elsewhere: Option<Instant> = None;
    loop {
        match in_open(pid) {
            Ok(true) => return,
            Err(status) => fail({
                not_started(status);
                format!(
                    "{who} (pid {pid}) {} while nobody had opened the other end of the FIFO: {lesson}",
                    status_text(Some(status))
                )
            }),
            Ok(false) => {
                if procfs::state(pid) == Some('S') && procfs::syscall(pid).is_some() {
                    let since = *asleep_elsewhere.get_or_insert_with(Instant::now);
                    if since.elapsed() > Duration::from_millis(50) {
                        fail(format!(
                            "{who} (pid {pid}) is {} while nobody has opened the other end of the FIFO, so its open \
                             did not wait: {lesson}\n{}",
                            doing(pid),
                            evidence_now()
                        ));
                    }
                } else {
                    asleep_elsewhere = None;
                }
            }
        }
        if start.elapsed() > limit {
            fail(format!(
                "after {limit:?} {who} (pid {pid}) was not asleep in open(2) on the FIFO ({}).\n{}",
                doing(pid),
                evidence_now()
            ));
        }
        thread::sleep(Duration::from_millis(1));
    }
}

/// Reads `fd` until end of file, with a deadline; `what` names it for the message.
fn read_all(fd: impl AsFd, what: &str) -> Vec<u8> {
    let start = Instant::now();
    let limit = 2 * scaled(SETTLE);
    let mut got = Vec::new();
    let mut buf = vec![0u8; 65536];
    loop {
        let mut fds = [PollFd::new(fd.as_fd(), PollFlags::POLLIN)];
        match poll(&mut fds, PollTimeout::from(50u8)) {
            Ok(0) | Err(Errno::EINTR) => {
                if start.elapsed() > limit {
                    fail(format!(
                        "after {limit:?} {what} had given {} bytes and no end of file.\n{}",
                        got.len(),
                        evidence_now()
                    ));
                }
                continue;
            }
            Ok(_) => {}
            Err(e) => fail(format!("poll on {what}: {e}")),
        }
        match read(fd.as_fd(), &mut buf) {
            Ok(0) => return got,
            Ok(n) => got.extend_from_slice(&buf[..n]),
            Err(Errno::EINTR) => {}
            Err(e) => fail(format!("reading {what}: {e}")),
        }
    }
}

/// Writes all of `data` into `fd`.
fn write_all(fd: impl AsFd, data: &[u8], what: &str) {
    let mut off = 0;
    while off < data.len() {
        match write(fd.as_fd(), &data[off..]) {
            Ok(n) => off += n,
            Err(Errno::EINTR) => {}
            Err(e) => fail(format!(
                "writing {what} failed after {off} of {} bytes: {e}",
                data.len()
            )),
        }
    }
}

/// Waits for `pid` with a deadline (polling), returns its status.
fn reap(pid: Pid, who: &str) -> WaitStatus {
    let start = Instant::now();
    loop {
        match waitpid(pid, Some(WaitPidFlag::WNOHANG)) {
            Ok(WaitStatus::StillAlive) | Err(Errno::EINTR) => {}
            Ok(status) => {
                not_started(status);
                return status;
            }
            Err(e) => panic!("waitpid({pid}): {e}"),
        }
        if start.elapsed() > scaled(SETTLE) {
            fail(format!(
                "after {:?} {who} (pid {pid}) had not exited ({}).\n{}",
                scaled(SETTLE),
                doing(pid),
                evidence_now()
            ));
        }
        thread::sleep(Duration::from_millis(1));
    }
}

/// A child running the student's `receive(path)` that hands what it got to the test through
/// a pipe; returns its pid and the pipe's read end.
fn receiver(path: &Path) -> (Pid, OwnedFd) {
    let (result_r, result_w) = pipe().expect("pipe");
    let path = path.to_owned();
    // The closure owns the write end: the child uses it, and the parent drops it unused.
    let pid = child(move || {
        let got = receive(&path).map_err(|e| format!("receive failed: {e}"))?;
        let mut off = 0;
        while off < got.len() {
            off += write(&result_w, &got[off..]).map_err(|e| format!("result pipe: {e}"))?;
        }
        Ok(())
    });
    (pid, result_r)
}

/// Compares what arrived with what was sent, without printing megabytes.
fn expect_same(sent: &[u8], got: &[u8], how: &str) {
    if got == sent {
        return;
    }
    let first = sent
        .iter()
        .zip(got)
        .position(|(a, b)| a != b)
        .unwrap_or(sent.len().min(got.len()));
    let hint = if got.len() < sent.len() && sent.starts_with(got) {
        " It is the start of the data: the reading stopped early. Read until read(2) returns 0, which happens \
         once every writer has closed the FIFO; a short read only means nothing more had arrived yet."
    } else {
        ""
    };
    fail(format!(
        "{how}: {} bytes arrived of the {} sent, differing from byte {first} on.{hint}",
        got.len(),
        sent.len()
    ));
}

/// The exit status must be 0.
fn expect_exit_0(status: WaitStatus, who: &str) {
    if !matches!(status, WaitStatus::Exited(_, 0)) {
        fail(format!(
            "{who} {}; it should have succeeded",
            status_text(Some(status))
        ));
    }
}

const WRITER_MUST_WAIT: &str = "send did not wait for a reader. open(2) of a FIFO for writing (O_WRONLY, without \
                                O_NONBLOCK) sleeps until some process opens it for reading; that is how the two \
                                sides meet. O_NONBLOCK makes it fail with ENXIO instead, and O_RDWR never waits \
                                (POSIX leaves it undefined): the data then goes into a pipe nobody reads, and is lost \
                                when the last end closes.";

const READER_MUST_WAIT: &str = "receive did not wait for a writer. open(2) of a FIFO for reading (O_RDONLY, without \
                                O_NONBLOCK) sleeps until some process opens it for writing. With O_NONBLOCK it \
                                returns at once, and read(2) returns 0 (end of file) while no writer has it open, so \
                                the reader gives up before the writer arrives.";

// ---------------------------------------------------------------------------------------------
// make_fifo

/// Under a umask that would change it, `make_fifo` gives the FIFO exactly the asked mode;
/// the path is a FIFO (S_ISFIFO); the umask is as before.
#[rstest]
#[case::private(0o600, 0o077)]
#[case::group_read(0o640, 0o077)]
#[case::everyone(0o666, 0o022)]
#[case::odd(0o604, 0o000)]
fn fifo_has_exactly_the_asked_mode(#[case] mode: u32, #[case] mask: u32) {
    Isolation::new().deadline(Duration::from_secs(15)).check_fds().run(|| {
        umask(Mode::from_bits_truncate(mask));
        let path = scratch_dir().join("fifo");
        let made = student(|| make_fifo(&path, Mode::from_bits_truncate(mode)));
        let mask_after = procfs::status(getpid()).ok().and_then(|s| s.umask());
        made.unwrap_or_else(|e| panic!("make_fifo({}, {mode:04o}) failed on an empty path: {e}", path.display()));
        let meta = fs::symlink_metadata(&path)
            .unwrap_or_else(|e| panic!("make_fifo returned Ok, but lstat({}) fails: {e}", path.display()));
        if !meta.file_type().is_fifo() {
            panic!(
                "make_fifo made {} at {}, not a FIFO: use mkfifo(3) (nix::unistd::mkfifo), which makes a special file \
                 of type S_IFIFO",
                kind(&path),
                path.display()
            );
        }
        let got = meta.mode() & 0o7777;
        if got != mode {
            let why = if got == mode & !mask {
                format!(
                    "that is {mode:04o} filtered through the umask {mask:04o} (mode & !umask): mkfifo applies the \
                     umask like every file creation. The contract is the exact mode: set it afterwards with chmod(2) \
                     (fchmodat, or std::fs::set_permissions), which the umask does not filter"
                )
            } else {
                "it should be exactly the mode asked for".to_owned()
            };
            panic!("make_fifo({}, {mode:04o}) made a FIFO with mode {got:04o}: {why}.", path.display());
        }
        if mask_after != Some(mask) {
            panic!(
                "after make_fifo the process's umask is {:?} (/proc/<pid>/status), but it was {mask:04o}: the umask \
                 belongs to the whole process, so leave it alone (or put it back); chmod after mkfifo needs no umask \
                 change at all.",
                mask_after.map(|m| format!("{m:04o}"))
            );
        }
    });
}

/// A stale regular file, a stale FIFO or a symbolic link at the path: `make_fifo` removes it
/// and makes a new FIFO with the asked mode (a stale FIFO is not kept: the inode changes; a
/// link goes, its target stays).
#[rstest]
#[case::regular_file("file")]
#[case::old_fifo("fifo")]
#[case::symbolic_link("link")]
fn a_stale_file_is_replaced(#[case] stale: &str) {
    Isolation::new().deadline(Duration::from_secs(15)).check_fds().run(|| {
        umask(Mode::from_bits_truncate(0o022));
        let path = scratch_dir().join("fifo");
        let target = scratch_dir().join("target-of-the-link");
        match stale {
            "file" => fs::write(&path, b"left behind by an earlier run").expect("write the stale file"),
            "fifo" => {
                mkfifo(&path, Mode::from_bits_truncate(0o600)).expect("mkfifo the stale FIFO");
            }
            _ => {
                fs::write(&target, b"not to be touched").expect("write the link's target");
                symlink(&target, &path).expect("make the stale link");
            }
        }
        // Held open (O_PATH, the link itself for a link), the stale inode cannot be freed and its
        // number cannot be reused for the new file: a different inode means a new file.
        let held = open(&path, OFlag::O_PATH | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC, Mode::empty())
            .expect("open the stale file with O_PATH");
        let old_ino = fstat(&held).expect("fstat the stale file").st_ino;
        let before = kind(&path);
        let made = student(|| make_fifo(&path, Mode::from_bits_truncate(0o640)));
        match made {
            Ok(()) => {}
            Err(Errno::EEXIST) => panic!(
                "make_fifo failed with EEXIST: {before} was already at {} (a stale file from an earlier run), and \
                 mkfifo refuses a name that exists. The program owns this path: remove what is there first (unlink, \
                 treating ENOENT as \"nothing to remove\"), then make the FIFO.",
                path.display()
            ),
            Err(e) => panic!("make_fifo failed with {e} where {before} was at the path"),
        }
        let meta = fs::symlink_metadata(&path).expect("lstat after make_fifo");
        if !meta.file_type().is_fifo() || meta.mode() & 0o7777 != 0o640 {
            panic!(
                "where {before} was, make_fifo(0640) left {}: it should remove the stale file and make a FIFO with \
                 mode 0640",
                kind(&path)
            );
        }
        if meta.ino() == old_ino {
            panic!(
                "make_fifo kept the stale FIFO at {} (same inode {old_ino}) instead of making a new one: remove \
                 whatever is at the path first, whatever its type. An old FIFO may still be open in some forgotten \
                 process, which would then meet the new reader.",
                path.display()
            );
        }
        drop(held);
        if stale == "link" {
            let left = fs::read(&target).ok();
            if left.as_deref() != Some(&b"not to be touched"[..]) {
                panic!(
                    "the link's target {} was changed or removed ({}): unlink(2) removes the link itself, never what \
                     it points to",
                    target.display(),
                    kind(&target)
                );
            }
        }
    });
}

/// A missing parent directory is `ENOENT`; a directory at the path is an error and stays,
/// with what it holds.
#[test]
fn make_fifo_returns_errors() {
    Isolation::new().deadline(Duration::from_secs(15)).check_fds().run(|| {
        let missing = scratch_dir().join("no-such-directory").join("fifo");
        let got = student(|| make_fifo(&missing, Mode::from_bits_truncate(0o600)));
        assert_eq!(
            got,
            Err(Errno::ENOENT),
            "make_fifo({}) whose parent directory does not exist: mkfifo fails with ENOENT, and make_fifo must \
             return it",
            missing.display()
        );
        let dir = scratch_dir().join("a-directory");
        fs::create_dir(&dir).expect("mkdir");
        fs::write(dir.join("inside"), b"keep me").expect("write inside the directory");
        let got = student(|| make_fifo(&dir, Mode::from_bits_truncate(0o600)));
        let intact = fs::read(dir.join("inside")).ok();
        if got.is_ok() || intact.as_deref() != Some(&b"keep me"[..]) {
            panic!(
                "make_fifo on a path that is a directory returned {got:?} and left {} there (its file {}): unlink(2) \
                 fails on a directory (EISDIR), and make_fifo must return that error, removing nothing",
                kind(&dir),
                if intact.is_some() { "intact" } else { "gone" }
            );
        }
    });
}

// ---------------------------------------------------------------------------------------------
// send and receive

/// The student's `send` in a child: it sleeps in open(2) while no reader exists; once the test
/// opens the FIFO for reading, it writes everything (here 200 KB, more than the pipe holds, so
/// the test reads while it writes) and closes: the test sees end of file and the child exits 0.
#[test]
fn send_waits_for_a_reader() {
    Isolation::new().deadline(Duration::from_secs(20)).run(|| {
        ignore_sigpipe();
        let path = test_fifo("fifo");
        let data = pattern(200_000, 1);
        let (p, d) = (path.clone(), data.clone());
        let writer = child(move || send(&p, &d).map_err(|e| format!("send failed: {e}")));
        await_open(writer, "send", WRITER_MUST_WAIT);
        let fifo = open(&path, OFlag::O_RDONLY | OFlag::O_CLOEXEC, Mode::empty())
            .expect("the test opens the FIFO to read");
        let got = read_all(&fifo, "the FIFO (the test reading what send wrote)");
        expect_exit_0(reap(writer, "send's process"), "send's process");
        expect_same(&data, &got, "through the FIFO from send to the test");
    });
}

/// The student's `receive` in a child: it sleeps in open(2) while no writer exists; the test
/// then opens the FIFO for writing, sends a part, waits until the reader sleeps in read(2),
/// sends the rest and closes. Everything must come back, and the child exit 0.
#[test]
fn receive_waits_for_a_writer() {
    Isolation::new().deadline(Duration::from_secs(20)).run(|| {
        ignore_sigpipe();
        let path = test_fifo("fifo");
        let (reader, result) = receiver(&path);
        await_open(reader, "receive", READER_MUST_WAIT);
        let fifo = open(&path, OFlag::O_WRONLY | OFlag::O_CLOEXEC, Mode::empty())
            .expect("the test opens the FIFO to write");
        let first = pattern(1000, 2);
        let rest = pattern(150_000, 3);
        write_all(&fifo, &first, "the first part into the FIFO");
        // The reader has had a short read and must go back to read(2), not return.
        let start = Instant::now();
        // Asleep (S) in read: it has taken everything there was, the first part included.
        while procfs::blocked_read_fd(reader).is_none() || procfs::state(reader) != Some('S') {
            if procfs::state(reader) == Some('Z') {
                break;
            }
            if start.elapsed() > scaled(SETTLE) {
                fail(format!(
                    "receive's process (pid {reader}) never read the first part.\n{}",
                    evidence_now()
                ));
            }
            thread::sleep(Duration::from_millis(1));
        }
        if procfs::state(reader) != Some('Z') {
            write_all(&fifo, &rest, "the rest into the FIFO");
        }
        drop(fifo);
        let got = read_all(&result, "the result pipe of receive's process");
        expect_exit_0(reap(reader, "receive's process"), "receive's process");
        let sent = [first, rest].concat();
        expect_same(
            &sent,
            &got,
            "through the FIFO from the test to receive, the writer still open after the first part",
        );
    });
}

/// `send` in the test process, `cat <fifo>` (an exec'd program, started first and asleep in its
/// open) as the reader: cat's output must be the data.
#[test]
fn send_feeds_cat() {
    Isolation::new().deadline(Duration::from_secs(20)).run(|| {
        ignore_sigpipe();
        let path = test_fifo("fifo");
        let out = scratch_dir().join("cat-output");
        // Reaped with waitpid (`reap`, which has a deadline), not Child::wait.
        #[allow(clippy::zombie_processes)]
        let cat = Command::new("cat")
            .arg(&path)
            .stdout(Stdio::from(
                fs::File::create(&out).expect("create cat's output"),
            ))
            .spawn()
            .expect("run cat");
        let cat_pid = Pid::from_raw(cat.id() as i32);
        await_open(cat_pid, "cat", "cat should wait in open(2) for a writer");
        let data = pattern(100_000, 4);
        let sent = student(|| send(&path, &data));
        if let Err(e) = sent {
            fail(format!("send failed with {e} while cat had the FIFO open for reading"));
        }
        // send has returned: it must not hold the FIFO open any more, or cat never sees EOF.
        let me = getpid();
        let fifo_name = path.display().to_string();
        let kept: Vec<i32> = procfs::fds(me)
            .unwrap_or_default()
            .iter()
            .filter(|f| f.target == fifo_name)
            .map(|f| f.fd)
            .collect();
        if !kept.is_empty() {
            fail(format!(
                "send returned, but the test process (pid {me}) still holds {fifo_name} open on fd {kept:?}: cat (pid \
                 {cat_pid}) never sees end of file while a write end is open. send closes the FIFO (drops its fd) \
                 when it has written everything.\n{}",
                evidence_now()
            ));
        }
        let status = reap(cat_pid, "cat");
        let got = fs::read(&out).expect("read cat's output");
        assert!(
            matches!(status, WaitStatus::Exited(_, 0)),
            "cat {}: it should have read the FIFO to its end",
            status_text(Some(status))
        );
        expect_same(&data, &got, "through the FIFO from send to cat");
    });
}

/// `oskata_harness::cases::check` with fewer shrinking steps: a step that fails may wait for
/// a deadline, so a failure is reported after a few steps rather than dozens.
fn few_shrinks<S>(cases: u32, strategy: S, test: impl Fn(S::Value) -> Result<(), TestCaseError>)
where
    S: Strategy,
    S::Value: std::fmt::Debug,
{
    let config = Config {
        cases,
        max_shrink_iters: 4,
        failure_persistence: None,
        ..Config::default()
    };
    let mut runner =
        TestRunner::new_with_rng(config, TestRng::deterministic_rng(RngAlgorithm::ChaCha));
    match runner.run(&strategy, test) {
        Ok(()) => {}
        Err(TestError::Fail(why, value)) => {
            panic!("{}\n(smallest failing input: {value:?})", why.message())
        }
        Err(TestError::Abort(why)) => panic!("the property test gave up: {}", why.message()),
    }
}

/// `make_fifo`, then `receive` and `send` in two children of the test (siblings, neither
/// forked from the other): what `receive` got is what `send` sent, for payloads from empty
/// to several times the pipe's capacity.
#[test]
fn data_crosses_between_two_processes() {
    Isolation::new().deadline(Duration::from_secs(60)).run(|| {
        ignore_sigpipe();
        let sizes = prop_oneof![0..64usize, 4000..5000usize, 60_000..300_000usize];
        few_shrinks(16, (sizes, any::<u32>()), |(len, seed)| {
            let path = scratch_dir().join("fifo");
            student(|| make_fifo(&path, Mode::from_bits_truncate(0o600)))
                .unwrap_or_else(|e| fail(format!("make_fifo failed: {e}")));
            let data = pattern(len, seed);
            let (reader, result) = receiver(&path);
            let (p, d) = (path.clone(), data.clone());
            let writer = child(move || send(&p, &d).map_err(|e| format!("send failed: {e}")));
            let got = read_all(&result, "the result pipe of receive's process");
            expect_exit_0(reap(writer, "send's process"), "send's process");
            expect_exit_0(reap(reader, "receive's process"), "receive's process");
            expect_same(&data, &got, "through the FIFO from send to receive");
            Ok(())
        });
    });
}
