//! io_models/signal_driven: signal-driven I/O (信号驱动 I/O), SIGIO waking a process asleep in
//! sigsuspend(2).
//!
//! How the tests run the waiter: each test forks a child that blocks SIGUSR1 and ignores SIGIO
//! (so the caller's mask and action are not the defaults, and their restoring shows), then
//! calls `wait_for_data` on a pipe's read end or one end of a Unix socket pair. The test, in
//! the parent, writes the data: before the child calls (data already there), or once it has
//! seen the child asleep. The child reports what it read and its own state afterwards on a
//! pipe, and exits.
//!
//! What the tests observe, never what the code under test claims:
//! - what the waiter is asleep in (`/proc/<pid>/syscall`: `rt_sigsuspend`, not `pause`, not a
//!   blocking `read`) and its state, before the data is written;
//! - `/proc/<pid>/status` during the sleep: `SigCgt` shows a handler for SIGIO, `SigBlk` does
//!   not hold SIGIO;
//! - the bytes queued for the waiter (`FIONREAD` on the test's copy of the read end): a waiter
//!   asleep while data waits is named at once (no SIGIO came, or data that was there before
//!   the wait was not looked for);
//! - the waiter's CPU time (`/proc/<pid>/stat` utime + stime) when it never sleeps;
//! - after the call, in the child: the bytes read, `SigBlk`, `SigIgn`/`SigCgt` for SIGIO, the
//!   fd's flags (`F_GETFL`) and owner (`F_GETOWN`).
//!
//! The contract, clause by clause, and the test that checks each:
//! - data written by another process wakes the waiter through SIGIO, and the call returns that
//!   data (`data_wakes_the_waiter`, on a pipe and on a socket);
//! - it sleeps in sigsuspend, with a SIGIO handler installed and SIGIO let in by the sleeping
//!   mask (`data_wakes_the_waiter`); a busy loop or pause(2) is reported as such;
//! - data that is there before the call is returned, not waited for
//!   (`data_already_there_is_returned`, pipe and socket);
//! - the signal mask, the SIGIO action and the fd's flags and owner are as before afterwards
//!   (every test, checked in the child after the call);
//! - errors of system calls are returned (`a_bad_fd_is_an_error`: EBADF, mask and action
//!   restored).

// The exercise under test: your stub (by default), the reference solution (`--features
// solutions`), or a shipped mistake that `cargo grade --mistakes` copies into target/.
#[cfg(not(any(feature = "solutions", feature = "mistake")))]
#[path = "../../exercises/io_models/signal_driven.rs"]
#[allow(dead_code)] // a stub does not use all of its API yet
mod signal_driven;
#[cfg(all(feature = "solutions", not(feature = "mistake")))]
#[path = "../../solutions/io_models/signal_driven.rs"]
mod signal_driven;
#[cfg(feature = "mistake")]
#[path = "../../target/oskata-mistake/io_models/signal_driven.rs"]
#[rustfmt::skip] // the copy exists only while the proof runs
mod signal_driven;
use signal_driven::*;

use std::fs;
use std::io::Read;
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::thread;
use std::time::{Duration, Instant};

use nix::fcntl::{FcntlArg, fcntl};
use nix::sys::signal::{SigHandler, SigSet, SigmaskHow, Signal, kill, signal, sigprocmask};
use nix::sys::socket::{AddressFamily, SockFlag, SockType, socketpair};
use nix::sys::wait::waitpid;
use nix::unistd::{ForkResult, Pid, fork, pipe, write};
use oskata_harness::{Isolation, procfs, scaled};
use rstest::rstest;

/// How long a correct waiter may take to reach its sleep or to return (before `scaled`).
const SETTLE: Duration = Duration::from_secs(5);

/// SIGIO's bit in a `/proc` signal mask (signal N is bit N-1).
const SIGIO_BIT: u64 = 1 << (libc::SIGIO - 1);
/// SIGUSR1's bit, the signal the child blocks before it calls.
const SIGUSR1_BIT: u64 = 1 << (libc::SIGUSR1 - 1);

/// What the data travels through.
#[derive(Debug, Clone, Copy)]
enum Channel {
    Pipe,
    Socket,
}

/// The waiter's end and the test's writing end.
fn channel(kind: Channel) -> (OwnedFd, OwnedFd) {
    match kind {
        Channel::Pipe => pipe().expect("pipe"),
        Channel::Socket => socketpair(
            AddressFamily::Unix,
            SockType::Stream,
            None,
            SockFlag::SOCK_CLOEXEC,
        )
        .expect("socketpair"),
    }
}

/// Bytes queued for reading on `fd`.
fn queued(fd: RawFd) -> usize {
    let mut n: libc::c_int = 0;
    // SAFETY: FIONREAD writes one int into `n`.
    let r = unsafe { libc::ioctl(fd, libc::FIONREAD, &raw mut n) };
    if r < 0 { 0 } else { n as usize }
}

/// utime + stime of `pid`, in clock ticks.
fn cpu_ticks(pid: Pid) -> u64 {
    let text = fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let rest: Vec<&str> = text
        .rsplit_once(')')
        .map_or("", |(_, r)| r)
        .split_whitespace()
        .collect();
    let field = |n: usize| {
        rest.get(n - 3)
            .and_then(|w| w.parse::<u64>().ok())
            .unwrap_or(0)
    };
    field(14) + field(15)
}

/// A signal mask line of `pid`'s status.
fn mask(pid: Pid, key: &str) -> u64 {
    procfs::status(pid)
        .ok()
        .and_then(|s| s.signal_mask(key))
        .unwrap_or(0)
}

/// Kills and reaps the child, then fails.
fn fail(child: Pid, msg: String) -> ! {
    let _ = kill(child, Signal::SIGKILL);
    let _ = waitpid(child, None);
    panic!("{msg}");
}

/// The child's side: set the caller's state, call, report.
fn waiter(fd: OwnedFd, report: OwnedFd) -> ! {
    let mut block = SigSet::empty();
    block.add(Signal::SIGUSR1);
    let setup = sigprocmask(SigmaskHow::SIG_SETMASK, Some(&block), None)
        // SAFETY: SIG_IGN installs no handler.
        .and_then(|_| unsafe { signal(Signal::SIGIO, SigHandler::SigIgn) }.map(drop));
    let flags_before = fcntl(&fd, FcntlArg::F_GETFL).unwrap_or(-1);
    let mut out = String::new();
    if let Err(e) = setup {
        out.push_str(&format!("SETUP {e}\n"));
    }
    let mut buf = [0u8; 256];
    match catch_unwind(AssertUnwindSafe(|| wait_for_data(&fd, &mut buf))) {
        Ok(Ok(n)) => out.push_str(&format!(
            "DATA {}\n",
            String::from_utf8_lossy(&buf[..n.min(buf.len())])
        )),
        Ok(Err(e)) => out.push_str(&format!("ERR {e}\n")),
        Err(p) => {
            let text = p
                .downcast_ref::<&str>()
                .map(|s| (*s).to_owned())
                .or_else(|| p.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "a panic".to_owned());
            out = format!("PANIC {text}\n");
        }
    }
    let me = nix::unistd::getpid();
    out.push_str(&format!(
        "AFTER blk={:x} ign={:x} cgt={:x} flags={:x} before={:x} owner={}\n",
        mask(me, "SigBlk"),
        mask(me, "SigIgn"),
        mask(me, "SigCgt"),
        fcntl(&fd, FcntlArg::F_GETFL).unwrap_or(-1),
        flags_before,
        // SAFETY: F_GETOWN takes no argument.
        unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_GETOWN) }
    ));
    let _ = write(&report, out.as_bytes());
    // SAFETY: ends the forked waiter at once, running none of the test's code.
    unsafe { libc::_exit(0) }
}

/// What the child reported.
struct Outcome {
    result: Result<String, String>,
    after: String,
}

/// Forks the waiter on `kind`; writes `data` before the fork when `early`, else once the
/// waiter is seen asleep in rt_sigsuspend (checking its handler and mask then). Returns what
/// the child reported, after checking the state it left.
fn run(kind: Channel, early: bool, data: &str) -> String {
    let (wait_end, write_end) = channel(kind);
    let (report_r, report_w) = pipe().expect("pipe");
    if early {
        write(&write_end, data.as_bytes()).expect("write the data");
    }
    // SAFETY: the body has one thread; the child calls the waiter and leaves with _exit.
    let child = match unsafe { fork() }.expect("fork") {
        ForkResult::Child => {
            drop(report_r);
            drop(write_end);
            let fd = wait_end.try_clone().expect("dup");
            drop(wait_end);
            waiter(fd, report_w)
        }
        ForkResult::Parent { child } => child,
    };
    drop(report_w);
    let qfd = wait_end.as_raw_fd();
    let limit = scaled(SETTLE);
    let start = Instant::now();
    let mut written = early;
    let mut slept = false;
    let mut stuck = 0;
    let mut round = 0u32;
    loop {
        let state = procfs::state(child);
        if state == Some('Z') || state.is_none() {
            break;
        }
        let call = procfs::syscall(child).filter(|_| state == Some('S'));
        match call.map(|c| c.nr) {
            Some(libc::SYS_rt_sigsuspend) => {
                slept = true;
                if !written {
                    let cgt = mask(child, "SigCgt");
                    if cgt & SIGIO_BIT == 0 {
                        fail(
                            child,
                            format!(
                                "the waiter (pid {child}) sleeps in rt_sigsuspend with no handler for SIGIO \
                                 (SigCgt {cgt:x} in /proc/{child}/status lacks bit {SIGIO_BIT:x}): install one \
                                 with sigaction before sleeping; SIGIO's default action kills the process"
                            ),
                        );
                    }
                    let blk = mask(child, "SigBlk");
                    if blk & SIGIO_BIT != 0 {
                        fail(
                            child,
                            format!(
                                "the waiter (pid {child}) sleeps in rt_sigsuspend with SIGIO blocked (SigBlk \
                                 {blk:x}): the mask given to sigsuspend must let SIGIO in (the old mask without \
                                 SIGIO), or nothing can wake it"
                            ),
                        );
                    }
                    write(&write_end, data.as_bytes()).expect("write the data");
                    written = true;
                } else if queued(qfd) > 0 {
                    stuck += 1;
                    if stuck >= 10 {
                        let why = if early {
                            "the data was written before wait_for_data was called, and it is still there: the \
                             kernel raises SIGIO only when new data arrives, so data already queued when the fd \
                             is armed sends none. Try a (non-blocking) read before each sleep, with SIGIO \
                             blocked, and sleep only on EAGAIN"
                        } else {
                            "no SIGIO came although data arrived: the kernel sends SIGIO only to the fd's owner, \
                             set with fcntl(fd, F_SETOWN, getpid()), and only with O_ASYNC set by F_SETFL. \
                             Without an owner (missing F_SETOWN) no signal is ever sent"
                        };
                        fail(
                            child,
                            format!(
                                "the waiter (pid {child}) is asleep in rt_sigsuspend while {} bytes wait for it \
                                 (FIONREAD): {why}.",
                                queued(qfd)
                            ),
                        );
                    }
                }
            }
            Some(libc::SYS_pause) => fail(
                child,
                format!(
                    "the waiter (pid {child}) sleeps in pause(2): a lost wake-up waits there. If the data and its \
                     SIGIO come between the check and pause, the handler runs before pause, and pause sleeps \
                     for a signal that has already come, for ever. Block SIGIO, check, then sleep with \
                     sigsuspend(old mask without SIGIO), which unblocks and sleeps in one step."
                ),
            ),
            Some(nr) if [libc::SYS_read, libc::SYS_recvfrom, libc::SYS_readv].contains(&nr) => {
                fail(
                    child,
                    format!(
                        "the waiter (pid {child}) sleeps in a blocking read(2) (system call {nr}): that is blocking \
                     I/O, not signal-driven. Set O_NONBLOCK, and sleep in sigsuspend until SIGIO says data came"
                    ),
                )
            }
            _ => {}
        }
        let busy = !slept && cpu_ticks(child) >= 50;
        if busy || start.elapsed() > limit {
            let ticks = cpu_ticks(child);
            let why = if !slept && ticks >= 10 {
                format!(
                    "it never slept and used {} ms of CPU: a busy loop, trying read over and over. Sleep in \
                     sigsuspend until SIGIO comes",
                    ticks * 10
                )
            } else {
                format!(
                    "state {state:?}, system call {:?}, {} ms of CPU",
                    procfs::syscall(child).map(|c| c.nr),
                    ticks * 10
                )
            };
            fail(
                child,
                format!(
                    "after {:?} the waiter (pid {child}) was {} ({} bytes queued for it): {why}.",
                    start.elapsed(),
                    if written {
                        "still not done"
                    } else {
                        "not asleep in rt_sigsuspend"
                    },
                    queued(qfd)
                ),
            );
        }
        round += 1;
        thread::sleep(Duration::from_micros(200 << round.min(6)));
    }
    let mut text = String::new();
    let _ = fs::File::from(report_r).read_to_string(&mut text);
    let _ = waitpid(child, None);
    outcome(&text, child).check(data)
}

/// Parses the child's report.
fn outcome(text: &str, child: Pid) -> Outcome {
    if let Some(p) = text.strip_prefix("PANIC ") {
        panic!("{}\n(in the waiter, pid {child})", p.trim_end());
    }
    let line = |tag: &str| {
        text.lines()
            .find_map(|l| l.strip_prefix(tag))
            .map(str::to_owned)
    };
    if let Some(e) = line("SETUP ") {
        panic!("the test could not set up the waiter: {e}");
    }
    let result = match (line("DATA "), line("ERR ")) {
        (Some(d), _) => Ok(d),
        (None, Some(e)) => Err(e),
        _ => panic!("the waiter (pid {child}) reported nothing: {text:?}"),
    };
    Outcome {
        result,
        after: line("AFTER ").unwrap_or_default(),
    }
}

impl Outcome {
    /// Checks the state the call left; returns the data read (or panics with the error).
    fn check(self, data: &str) -> String {
        self.restored();
        match self.result {
            Ok(d) => {
                assert_eq!(
                    d, data,
                    "wait_for_data returned other bytes than the test wrote"
                );
                d
            }
            Err(e) => panic!("wait_for_data returned Err({e}) although data came"),
        }
    }

    /// The mask, SIGIO action and fd flags and owner as before the call.
    fn restored(&self) {
        let get = |key: &str| {
            self.after
                .split_whitespace()
                .find_map(|w| w.strip_prefix(key))
                .and_then(|v| i64::from_str_radix(v, 16).ok())
                .unwrap_or(-1)
        };
        let blk = get("blk=") as u64;
        assert!(
            blk == SIGUSR1_BIT,
            "after wait_for_data the signal mask is {blk:x} (SigBlk), not the caller's {SIGUSR1_BIT:x} (SIGUSR1 \
             blocked): restore the old mask (sigprocmask(SIG_SETMASK, &old)) before returning"
        );
        let (ign, cgt) = (get("ign=") as u64, get("cgt=") as u64);
        assert!(
            ign & SIGIO_BIT != 0 && cgt & SIGIO_BIT == 0,
            "after wait_for_data SIGIO is {} (SigIgn {ign:x}, SigCgt {cgt:x}), but the caller had it ignored: \
             put back the old SIGIO action that sigaction returned",
            if cgt & SIGIO_BIT != 0 {
                "still caught by your handler"
            } else {
                "at its default action"
            }
        );
        let (flags, before) = (get("flags="), get("before="));
        assert!(
            flags == before,
            "after wait_for_data the fd's flags are {flags:x}, not {before:x} as before (F_GETFL): clear the \
             O_ASYNC and O_NONBLOCK you set, or the caller's next read no longer blocks and SIGIO goes on coming"
        );
        let owner = self
            .after
            .split_whitespace()
            .find_map(|w| w.strip_prefix("owner="))
            .unwrap_or("?");
        assert!(
            owner == "0",
            "after wait_for_data the fd's owner (F_GETOWN) is {owner}, not 0 as before: put back the old owner"
        );
    }
}

/// The waiter sleeps in rt_sigsuspend (handler installed, SIGIO not blocked in the sleeping
/// mask); the test, another process, writes; SIGIO wakes the waiter and it returns the data.
#[rstest]
#[case::pipe(Channel::Pipe)]
#[case::socket(Channel::Socket)]
fn data_wakes_the_waiter(#[case] kind: Channel) {
    Isolation::new().deadline(Duration::from_secs(20)).run(|| {
        run(kind, false, "woken by SIGIO");
    });
}

/// The data is queued before wait_for_data is called: no SIGIO will come for it, so the call
/// must find it by looking first.
#[rstest]
#[case::pipe(Channel::Pipe)]
#[case::socket(Channel::Socket)]
fn data_already_there_is_returned(#[case] kind: Channel) {
    Isolation::new().deadline(Duration::from_secs(20)).run(|| {
        run(kind, true, "here before you");
    });
}

/// On an fd that is not open, wait_for_data returns EBADF (from fcntl) and still leaves the
/// mask and the SIGIO action as they were.
#[test]
fn a_bad_fd_is_an_error() {
    Isolation::new()
        .deadline(Duration::from_secs(20))
        .run(|| {
            let (r, w) = pipe().expect("pipe");
            drop(w);
            let (report_r, report_w) = pipe().expect("pipe");
            // SAFETY: the body has one thread; the child leaves with _exit.
            let child = match unsafe { fork() }.expect("fork") {
                ForkResult::Child => {
                    drop(report_r);
                    // The number of a closed fd: every call on it fails with EBADF.
                    let raw = r.as_raw_fd();
                    drop(r);
                    waiter_bad(raw, report_w)
                }
                ForkResult::Parent { child } => child,
            };
            drop(report_w);
            let limit = scaled(SETTLE);
            let start = Instant::now();
            while !matches!(procfs::state(child), Some('Z') | None) {
                if start.elapsed() > limit {
                    fail(
                        child,
                        format!(
                            "wait_for_data on a closed fd did not return within {limit:?}: fcntl on it fails with \
                             EBADF, return that error"
                        ),
                    );
                }
                thread::sleep(Duration::from_millis(2));
            }
            let mut text = String::new();
            let _ = fs::File::from(report_r).read_to_string(&mut text);
            let _ = waitpid(child, None);
            if let Some(p) = text.strip_prefix("PANIC ") {
                panic!("{}\n(in the waiter, pid {child})", p.trim_end());
            }
            let first = text.lines().next().unwrap_or("");
            assert!(
                first.starts_with("ERR EBADF"),
                "wait_for_data on a closed fd should return Err(EBADF); the waiter reported {first:?}"
            );
            let blk = text
                .split_whitespace()
                .find_map(|w| w.strip_prefix("blk="))
                .and_then(|v| u64::from_str_radix(v, 16).ok());
            assert_eq!(
                blk,
                Some(SIGUSR1_BIT),
                "after wait_for_data failed the signal mask must be the caller's again (SIGUSR1 only)"
            );
        });
}

/// The waiter's side for a closed fd number.
fn waiter_bad(raw: RawFd, report: OwnedFd) -> ! {
    let mut block = SigSet::empty();
    block.add(Signal::SIGUSR1);
    let _ = sigprocmask(SigmaskHow::SIG_SETMASK, Some(&block), None);
    // SAFETY: a borrowed view of a closed fd number; the calls on it fail with EBADF.
    let bad = unsafe { std::os::fd::BorrowedFd::borrow_raw(raw) };
    let mut buf = [0u8; 16];
    let mut out = match catch_unwind(AssertUnwindSafe(|| wait_for_data(bad, &mut buf))) {
        Ok(Ok(n)) => format!("DATA {n} bytes\n"),
        Ok(Err(e)) => format!("ERR {e}\n"),
        Err(p) => format!(
            "PANIC {}\n",
            p.downcast_ref::<&str>()
                .map(|s| (*s).to_owned())
                .or_else(|| p.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "a panic".to_owned())
        ),
    };
    let me = nix::unistd::getpid();
    out.push_str(&format!("AFTER blk={:x}\n", mask(me, "SigBlk")));
    let _ = write(&report, out.as_bytes());
    // SAFETY: ends the forked waiter at once.
    unsafe { libc::_exit(0) }
}
