//! ipc/pipe_duplex: request and response over two pipes (管道) between a parent and a forked
//! server.
//!
//! What the tests observe, never what the code under test claims:
//! - the bytes on the wire: the test reads what `send_message` wrote and writes what
//!   `recv_message` and the server read, in its own code, following the documented frame;
//! - the fd tables of both processes (`/proc/<pid>/fd`, access modes from `fdinfo`), matched by
//!   pipe inode, once the server sleeps in `read(2)` on the requests pipe (`/proc/<pid>/syscall`):
//!   by then it has done its closing;
//! - what each process is blocked in and whether it still makes system calls
//!   (`/proc/<pid>/syscall`, `/proc/<pid>/task/<tid>/io`): a deadlock is named at once, with who
//!   waits for whom, and broken by killing the server, instead of waiting for the deadline;
//! - who still holds the requests' write end when the server cannot see end of file;
//! - `waitpid`'s statuses, and `/proc/<pid>` gone (reaped, no zombie) after `stop_server`.
//!
//! The contract, clause by clause, and the test that checks each:
//! - `send_message` writes the 4-byte little-endian length and the message, all of it, also
//!   beyond a pipe's capacity (`send_message_writes_one_frame`); refuses a message above
//!   `MAX_MESSAGE` with EMSGSIZE, writing nothing (`send_message_refuses_a_message_too_big`);
//!   finishes a write a signal cut short and retries one that failed with EINTR
//!   (`send_message_finishes_a_write_cut_short_by_a_signal`);
//!   returns EPIPE when nobody can read (`send_message_returns_epipe_without_a_reader`);
//! - `recv_message` reads whole frames however they are cut into reads
//!   (`recv_message_reads_frames_arriving_in_pieces`), retries a read a signal interrupted
//!   (`recv_message_retries_a_read_interrupted_by_a_signal`), `Ok(None)` at end of file before a
//!   frame, EPROTO at end of file inside one, EMSGSIZE for a length above `MAX_MESSAGE`
//!   (`recv_message_reports_a_bad_frame`);
//! - `spawn_server` uses two pipes, and each side holds only its two ends
//!   (`each_side_holds_only_its_ends`, and every test that spawns, through `check_parent_side`
//!   and `check_server_side`); the server answers each request with its ASCII upper case, in
//!   order, for K round trips, more than the pipes hold in all (`server_answers_in_order`);
//!   it exits 0 when the parent closes the requests' write end (`each_side_holds_only_its_ends`,
//!   `server_answers_in_order`) and 1 when a request is cut short
//!   (`server_exits_1_on_a_truncated_request`);
//! - `round_trips` returns the responses in order, in lockstep, for K round trips against the
//!   test's own server (`round_trips_in_lockstep`), and EPIPE when the server hangs up
//!   (`round_trips_reports_a_server_that_hangs_up`);
//! - `stop_server` closes the requests' write end before it waits, reaps the server and returns
//!   the kernel's status (`stop_server_closes_then_reaps`).

// The exercise under test: your stub (by default), the reference solution (`--features
// solutions`), or a shipped mistake that `cargo grade --mistakes` copies into target/.
#[cfg(not(any(feature = "solutions", feature = "mistake")))]
#[path = "../../exercises/ipc/pipe_duplex.rs"]
#[allow(dead_code)] // a stub does not use all of its API yet
mod pipe_duplex;
#[cfg(all(feature = "solutions", not(feature = "mistake")))]
#[path = "../../solutions/ipc/pipe_duplex.rs"]
mod pipe_duplex;
#[cfg(feature = "mistake")]
#[path = "../../target/oskata-mistake/ipc/pipe_duplex.rs"]
#[rustfmt::skip] // the copy exists only while the proof runs
mod pipe_duplex;
use pipe_duplex::*;

use std::fs;
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use nix::errno::Errno;
use nix::fcntl::{FcntlArg, OFlag, fcntl};
use nix::sys::pthread::{pthread_kill, pthread_self};
use nix::sys::signal::{SaFlags, SigAction, SigHandler, SigSet, Signal, kill, sigaction, signal};
use nix::sys::wait::{WaitPidFlag, WaitStatus, waitpid};
use nix::unistd::{ForkResult, Pid, fork, getpid, pipe, read, write};
use oskata_harness::{Isolation, evidence, poll, procfs, scaled, student};
use rstest::rstest;

/// How long a correct solution may take to reach a state the test waits for (before
/// `scaled`). It needs milliseconds; every wrong one is caught by evidence long before this.
const SETTLE: Duration = Duration::from_secs(8);

/// The lesson the one-pipe mistake gets.
const ONE_WAY: &str = "a pipe is one-way: whatever goes into its write end comes out of its read end to whoever \
                       reads first, and the kernel does not know which process the bytes were meant for. With one \
                       pipe for both directions the parent can read back its own request, and the server its own \
                       response. A conversation both ways needs two pipes: requests (parent writes, server reads) \
                       and responses (server writes, parent reads)";

/// The kernel's account of the test's processes: table, fds, pipe ends and their holders.
fn evidence_now() -> String {
    format!(
        "What the kernel shows (the test process, the client, is pid {}):\n{}",
        getpid(),
        evidence::describe(&procfs::tree())
    )
}

/// The same without the harness's lines about readers waiting for EOF: while the parent holds
/// the requests' write end on purpose, a server waiting in read is no fault.
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

/// Kills and reaps `child` if it is still there, so nothing is left behind.
fn reap(child: Pid) {
    if matches!(
        waitpid(child, Some(WaitPidFlag::WNOHANG)),
        Ok(WaitStatus::StillAlive)
    ) {
        let _ = kill(child, Signal::SIGKILL);
        let _ = waitpid(child, None);
    }
}

/// Stops and reaps the child, then fails with `msg`.
fn fail(child: Pid, msg: String) -> ! {
    reap(child);
    panic!("{msg}");
}

/// Lets a write to a pipe without readers fail with EPIPE instead of killing the process (the
/// server forked later inherits it).
fn ignore_sigpipe() {
    // SAFETY: sets a disposition in the isolated test process; no handler code is involved.
    unsafe { signal(Signal::SIGPIPE, SigHandler::SigIgn) }.expect("ignore SIGPIPE");
}

/// Bytes that differ from their neighbours, lower-case letters among them, so a lost,
/// reordered or unconverted chunk shows.
fn pattern(len: usize, seed: u32) -> Vec<u8> {
    let mut x: u32 = 0x9e37_79b9 ^ seed.wrapping_mul(0x85eb_ca6b);
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            (x >> 24) as u8
        })
        .collect()
}

/// Request `i` of `k`: its number in words, then a pattern of its own; requests of the big
/// case are 4 KiB, so that `k` of them (and their responses) are more than a pipe holds.
fn requests(k: usize) -> Vec<Vec<u8>> {
    (0..k)
        .map(|i| {
            let mut r = format!("request {i} of {k}: ").into_bytes();
            let len = if k >= 32 { 4096 } else { 3 + i * 37 };
            r.extend(pattern(len, i as u32));
            r
        })
        .collect()
}

/// The server's rule.
fn upper(request: &[u8]) -> Vec<u8> {
    request.iter().map(u8::to_ascii_uppercase).collect()
}

/// A message in words for a failure: its length and first bytes.
fn show(message: &[u8]) -> String {
    let head: String = String::from_utf8_lossy(&message[..message.len().min(40)])
        .chars()
        .map(|c| if c.is_control() { '.' } else { c })
        .collect();
    format!("{} bytes, starting {head:?}", message.len())
}

/// The test's own framing: writes all of `bytes`, retrying EINTR.
fn put(fd: impl AsFd, bytes: &[u8]) -> nix::Result<()> {
    let mut off = 0;
    while off < bytes.len() {
        match write(fd.as_fd(), &bytes[off..]) {
            Ok(n) => off += n,
            Err(Errno::EINTR) => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// The test's own framing: one frame, 4 little-endian bytes of length and the message.
fn put_frame(fd: impl AsFd, message: &[u8]) -> nix::Result<()> {
    let mut bytes = (message.len() as u32).to_le_bytes().to_vec();
    bytes.extend_from_slice(message);
    put(fd, &bytes)
}

/// The test's own framing: fills `buf`, returns how much it got before end of file.
fn take(fd: impl AsFd, buf: &mut [u8]) -> nix::Result<usize> {
    let mut got = 0;
    while got < buf.len() {
        match read(fd.as_fd(), &mut buf[got..]) {
            Ok(0) => break,
            Ok(n) => got += n,
            Err(Errno::EINTR) => {}
            Err(e) => return Err(e),
        }
    }
    Ok(got)
}

/// The test's own framing: one frame, `Ok(None)` at end of file before it, `Err` with words
/// for anything else.
fn take_frame(fd: impl AsFd) -> Result<Option<Vec<u8>>, String> {
    let mut header = [0u8; 4];
    match take(fd.as_fd(), &mut header).map_err(|e| format!("read failed: {e}"))? {
        0 => return Ok(None),
        4 => {}
        n => return Err(format!("end of file after {n} of the 4 length bytes")),
    }
    let len = u32::from_le_bytes(header) as usize;
    if len > MAX_MESSAGE {
        return Err(format!(
            "a length header of {len} (bytes {header:02x?}), more than MAX_MESSAGE: the frame is 4 \
             little-endian bytes of length, then the message"
        ));
    }
    let mut message = vec![0u8; len];
    let got = take(fd.as_fd(), &mut message).map_err(|e| format!("read failed: {e}"))?;
    if got < len {
        return Err(format!(
            "end of file after {got} of the {len} bytes the length header announced"
        ));
    }
    Ok(Some(message))
}

/// The pipe inode of one of the test process's own fds.
fn own_inode(fd: &OwnedFd) -> Option<u64> {
    procfs::fds(getpid())
        .ok()?
        .into_iter()
        .find(|f| f.fd == fd.as_raw_fd())
        .and_then(|f| f.pipe_inode())
}

/// Which ends of pipe `inode` each process of the tree holds, in words.
fn holders(inode: u64) -> String {
    let me = getpid().as_raw();
    let mut out = Vec::new();
    for p in procfs::tree().iter().filter(|p| p.state != 'Z') {
        let ends: Vec<String> = procfs::fds(Pid::from_raw(p.pid))
            .unwrap_or_default()
            .into_iter()
            .filter(|f| f.pipe_inode() == Some(inode))
            .map(|f| {
                let end = if f.writable() { "write" } else { "read" };
                format!("the {end} end on fd {}", f.fd)
            })
            .collect();
        if !ends.is_empty() {
            let who = if p.pid == me {
                "the parent"
            } else {
                "the server"
            };
            out.push(format!(
                "pid {} ({who}) holds {}",
                p.pid,
                ends.join(" and ")
            ));
        }
    }
    out.join("; ")
}

/// Checks the parent's side right after `spawn_server` returned: `requests` is the write end
/// of one pipe, `responses` the read end of another, and the parent holds no other end of
/// either. Returns the two inodes.
fn check_parent_side(server: &Server) -> (u64, u64) {
    let me = getpid();
    let child = server.pid;
    let fds = procfs::fds(me).unwrap_or_else(|e| panic!("cannot read /proc/{me}/fd: {e}"));
    let find = |fd: &OwnedFd, name: &str| -> (u64, bool) {
        let raw = fd.as_raw_fd();
        let Some(f) = fds.iter().find(|f| f.fd == raw) else {
            fail(
                child,
                format!(
                    "Server::{name} is fd {raw}, but /proc/{me}/fd has no fd {raw}: it is not open"
                ),
            );
        };
        let Some(inode) = f.pipe_inode() else {
            fail(
                child,
                format!(
                    "Server::{name} is fd {raw}, which is `{}`, not an end of a pipe.\n{}",
                    f.target,
                    evidence_before_close()
                ),
            );
        };
        (inode, f.writable())
    };
    let (req, req_writable) = find(&server.requests, "requests");
    let (resp, resp_writable) = find(&server.responses, "responses");
    if req == resp {
        // Give the server a moment to have closed what it closes: the fork gave it copies.
        let limit = scaled(Duration::from_millis(300));
        let start = Instant::now();
        while procfs::blocked_read_fd(child).is_none() && start.elapsed() < limit {
            thread::sleep(Duration::from_millis(2));
        }
        fail(
            child,
            format!(
                "requests (fd {}) and responses (fd {}) are the two ends of ONE pipe, pipe:[{req}]: {}; {ONE_WAY}.\n{}",
                server.requests.as_raw_fd(),
                server.responses.as_raw_fd(),
                holders(req),
                evidence_before_close()
            ),
        );
    }
    if !req_writable {
        fail(
            child,
            format!(
                "Server::requests (fd {}) is the read end of pipe:[{req}] (fdinfo shows it open read-only): the \
                 parent writes requests, so it keeps the write end of the requests pipe. nix's pipe() returns \
                 (read_end, write_end).\n{}",
                server.requests.as_raw_fd(),
                evidence_before_close()
            ),
        );
    }
    if resp_writable {
        fail(
            child,
            format!(
                "Server::responses (fd {}) is the write end of pipe:[{resp}]: the parent reads responses, so it \
                 keeps the read end of the responses pipe. nix's pipe() returns (read_end, write_end).\n{}",
                server.responses.as_raw_fd(),
                evidence_before_close()
            ),
        );
    }
    let ours = [server.requests.as_raw_fd(), server.responses.as_raw_fd()];
    for f in fds.iter().filter(|f| !ours.contains(&f.fd)) {
        let advice = if f.pipe_inode() == Some(req) {
            "the read end of the requests pipe is the server's: while the parent holds it, the kernel counts it \
             as a reader, so a request written after the server died would sleep in write(2) instead of failing \
             with EPIPE"
        } else if f.pipe_inode() == Some(resp) {
            "the write end of the responses pipe is the server's: while the parent holds it, the parent can never \
             see end of file on responses, so it would wait forever for a server that died"
        } else {
            continue;
        };
        fail(
            child,
            format!(
                "after spawn_server returned, the parent (pid {me}) still holds fd {} ({}, {}): {advice}. After \
                 fork, close the ends you do not use.\n{}",
                f.fd,
                f.target,
                if f.writable() {
                    "a write end"
                } else {
                    "a read end"
                },
                evidence_before_close()
            ),
        );
    }
    (req, resp)
}

/// Waits until the server sleeps in `read(2)` on the requests pipe (so it has done its
/// closing), then checks that it holds only the requests' read end and the responses' write
/// end.
fn check_server_side(child: Pid, req: u64, resp: u64) {
    let settle = scaled(SETTLE);
    let start = Instant::now();
    let mut round = 0;
    loop {
        if let Some(fd) = procfs::blocked_read_fd(child) {
            let fds = procfs::fds(child).unwrap_or_default();
            let on = fds.iter().find(|f| f.fd == fd);
            if on.and_then(procfs::Fd::pipe_inode) == Some(req) {
                break;
            }
            if start.elapsed() > scaled(Duration::from_millis(300)) {
                fail(
                    child,
                    format!(
                        "the server (pid {child}) is asleep reading fd {fd} ({}), not the read end of the requests \
                         pipe pipe:[{req}], where the parent writes its requests.\n{}",
                        on.map_or("closed".to_owned(), |f| f.target.clone()),
                        evidence_before_close()
                    ),
                );
            }
        }
        if procfs::state(child) == Some('Z') {
            let status = waitpid(child, None);
            panic!(
                "the server (pid {child}) exited ({}) before the parent sent anything or closed its ends. It \
                 should sleep in read(2) on the requests pipe until a request comes or every write end is closed.",
                exit_text(status)
            );
        }
        if start.elapsed() > settle {
            fail(
                child,
                format!(
                    "after {settle:?} the server (pid {child}) was still not asleep in read(2) on the requests pipe \
                     pipe:[{req}].\n{}",
                    evidence_before_close()
                ),
            );
        }
        poll::pause(&mut round);
    }
    let fds = procfs::fds(child).unwrap_or_default();
    for f in &fds {
        let problem = match (f.pipe_inode(), f.writable()) {
            (Some(i), true) if i == req => format!(
                "the server (pid {child}) still holds the write end of the requests pipe pipe:[{req}] (fd {}): it \
                 only reads requests, so right after fork it must close that copy, or it will never see end of \
                 file when the parent closes its own",
                f.fd
            ),
            (Some(i), false) if i == resp => format!(
                "the server (pid {child}) still holds the read end of the responses pipe pipe:[{resp}] (fd {}): it \
                 only writes responses, so it must close that copy; while it holds it, a response written after the \
                 parent went away would sleep in write(2) instead of failing with EPIPE",
                f.fd
            ),
            _ => continue,
        };
        fail(child, format!("{problem}.\n{}", evidence_before_close()));
    }
    if !fds
        .iter()
        .any(|f| f.pipe_inode() == Some(resp) && f.writable())
    {
        fail(
            child,
            format!(
                "the server (pid {child}) holds no write end of the responses pipe pipe:[{resp}]: it cannot answer.\n{}",
                evidence_before_close()
            ),
        );
    }
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

/// After the parent closed the requests' write end: waits for the server to exit and returns
/// its status. Fails at once when the kernel shows it never can: the server asleep reading the
/// requests pipe while some process still holds a write end of it.
fn await_exit(child: Pid, req: u64) -> WaitStatus {
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
        let reading = procfs::blocked_read_fd(child).filter(|fd| {
            procfs::fds(child)
                .unwrap_or_default()
                .iter()
                .any(|f| f.fd == *fd && f.pipe_inode() == Some(req))
        });
        if let Some(fd) = reading {
            let holders = write_end_holders(req);
            if let Some(&(pid, wfd)) = holders.first() {
                let who = if pid == child.as_raw() {
                    "the server itself. It only reads requests, so right after fork it must close its copy of the \
                     requests' write end: otherwise it waits for a request from itself"
                } else if pid == me {
                    "the parent. The parent must close every copy of the requests' write end to end the conversation"
                } else {
                    "a process that does not write requests, and so must close it"
                };
                fail(
                    child,
                    format!(
                        "the parent has closed its requests' write end, yet the server cannot finish: pid {child} is \
                         blocked reading pipe:[{req}] on fd {fd}: the reader never saw EOF because pid {pid} still \
                         holds the write end (fd {wfd}), {who}. read(2) returns 0 (end of file) only when every \
                         write end in every process is closed.\n{}",
                        evidence_now()
                    ),
                );
            }
        }
        if start.elapsed() > settle {
            fail(
                child,
                format!(
                    "after {settle:?} the server (pid {child}) had not exited although the parent closed the \
                     requests' write end.\n{}",
                    evidence_now()
                ),
            );
        }
        poll::pause(&mut round);
    }
}

/// The server must have left with `_exit(0)` at end of file.
fn expect_clean_exit(child: Pid, status: WaitStatus) {
    match status {
        WaitStatus::Exited(_, 0) => {}
        WaitStatus::Exited(_, code) => panic!(
            "the server (pid {child}) exited with status {code}, not 0, at end of file: receiving or sending \
             failed (status 1), or it left some other way. It should answer every request, then _exit(0) when \
             recv_message reports end of file (Ok(None))."
        ),
        WaitStatus::Signaled(_, sig, _) => {
            panic!("the server (pid {child}) was killed by {sig} instead of exiting 0")
        }
        other => panic!("the server (pid {child}) did not exit normally: {other:?}"),
    }
}

/// Calls the student's `spawn_server` and checks both sides; returns the server and the two
/// inodes.
fn spawn() -> (Server, u64, u64) {
    let server = student(spawn_server).unwrap_or_else(|e| panic!("spawn_server failed: {e}"));
    let (req, resp) = check_parent_side(&server);
    check_server_side(server.pid, req, resp);
    (server, req, resp)
}

/// A server of the test's own, speaking the documented frame: answers each request with its
/// upper case until end of file, then exits with `code`; with `mute`, reads one request and
/// exits without answering. Holds only its two ends.
fn test_server(code: i32, mute: bool) -> (Server, u64, u64) {
    let (req_r, req_w) = pipe().expect("pipe");
    let (resp_r, resp_w) = pipe().expect("pipe");
    // SAFETY: the body has one thread here; the child only reads, writes and _exits.
    match unsafe { fork() }.expect("fork") {
        ForkResult::Child => {
            drop(req_w);
            drop(resp_r);
            let status = loop {
                match take_frame(&req_r) {
                    Ok(None) => break code,
                    Ok(Some(_)) if mute => break code,
                    Ok(Some(request)) => {
                        if put_frame(&resp_w, &upper(&request)).is_err() {
                            break 101;
                        }
                    }
                    Err(_) => break 100,
                }
            };
            // SAFETY: leaves the forked copy at once.
            unsafe { libc::_exit(status) }
        }
        ForkResult::Parent { child } => {
            drop(req_r);
            drop(resp_w);
            let (req, resp) = (
                own_inode(&req_w).expect("the test's pipe"),
                own_inode(&resp_r).expect("the test's pipe"),
            );
            let server = Server {
                pid: child,
                requests: req_w,
                responses: resp_r,
            };
            (server, req, resp)
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

/// System calls a process's thread has moved through system calls so far: read and write counts from
/// `/proc/<pid>/task/<tid>/io` (0 when it cannot be read).
fn syscalls_made(pid: Pid, tid: Pid) -> u64 {
    fs::read_to_string(format!("/proc/{pid}/task/{tid}/io"))
        .map(|text| {
            text.lines()
                .filter_map(|l| {
                    l.strip_prefix("syscr:")
                        .or_else(|| l.strip_prefix("syscw:"))
                })
                .filter_map(|v| v.trim().parse::<u64>().ok())
                .sum()
        })
        .unwrap_or(0)
}

/// What a thread is asleep in, if it is a read or write on a pipe: (is_write, fd, inode).
fn pipe_call(pid: Pid) -> Option<(bool, i32, u64)> {
    if procfs::state(pid) != Some('S') {
        return None;
    }
    let call = procfs::syscall(pid)?;
    let is_write = if call.nr == libc::SYS_write || call.nr == libc::SYS_writev {
        true
    } else if call.nr == libc::SYS_read || call.nr == libc::SYS_readv {
        false
    } else {
        return None;
    };
    let fd = call.args[0] as i32;
    let inode = procfs::fds(pid)
        .ok()?
        .into_iter()
        .find(|f| f.fd == fd)?
        .pipe_inode()?;
    Some((is_write, fd, inode))
}

/// A thread that watches the client (the test process's main thread) and the server while the
/// code under test runs, and names a deadlock as soon as the kernel shows one, killing the
/// server to end it (the client's call then fails or returns, and the test reports).
struct Watch {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<Option<String>>>,
    server: Pid,
}

impl Watch {
    fn start(server: Pid, req: u64, resp: u64) -> Watch {
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let me = getpid();
        let thread = thread::spawn(move || {
            let settle = scaled(SETTLE) * 2;
            let start = Instant::now();
            let mut last: Option<(String, u64, u64)> = None;
            let mut same = 0;
            while !flag.load(Ordering::SeqCst) {
                let found = Self::look(me, server, req, resp);
                match found {
                    Some(what) => {
                        let counts = (syscalls_made(me, me), syscalls_made(server, server));
                        let seen = (what.clone(), counts.0, counts.1);
                        same = if last.as_ref() == Some(&seen) {
                            same + 1
                        } else {
                            0
                        };
                        last = Some(seen);
                        // Ten looks in a row, 5 ms apart, both asleep in the same calls and
                        // neither having made a single system call: nobody is left to wake them.
                        if same >= 10 {
                            let msg = format!("{what}\n{}", evidence_now());
                            let _ = kill(server, Signal::SIGKILL);
                            return Some(msg);
                        }
                    }
                    None => {
                        last = None;
                        same = 0;
                    }
                }
                if start.elapsed() > settle {
                    let msg = format!(
                        "after {settle:?} the client's call had not returned.\n{}",
                        evidence_now()
                    );
                    let _ = kill(server, Signal::SIGKILL);
                    return Some(msg);
                }
                thread::sleep(Duration::from_millis(5));
            }
            None
        });
        Watch {
            stop,
            thread: Some(thread),
            server,
        }
    }

    /// One look: a deadlock described in words, if the two sleep where neither can wake the
    /// other.
    fn look(me: Pid, server: Pid, req: u64, resp: u64) -> Option<String> {
        if procfs::state(server) == Some('S')
            && procfs::blocked_read_fd(server).is_some()
            && let Ok(stat) = procfs::stat(server)
            && procfs::waits_for(me, &stat)
            && let Some((false, _, inode)) = pipe_call(server)
            && inode == req
            && let Some(&(_, wfd)) = write_end_holders(req)
                .iter()
                .find(|(pid, _)| *pid == me.as_raw())
        {
            return Some(format!(
                "the client (pid {me}) waits in waitpid for the server (pid {server}), while the server waits in \
                 read(2) on the requests pipe pipe:[{req}], whose write end the client itself still holds (fd {wfd}): \
                 the reader never saw EOF because pid {me} still holds the write end, so the server never exits and \
                 waitpid never returns. Close the requests' write end first, then wait. (The test killed the server \
                 to end the wait.)"
            ));
        }
        let (client_writes, cfd, cinode) = pipe_call(me)?;
        let (server_writes, sfd, sinode) = pipe_call(server)?;
        if client_writes && server_writes && cinode == req && sinode == resp {
            return Some(format!(
                "deadlock: the client (pid {me}) is asleep in write(2) on the requests pipe pipe:[{req}] (fd {cfd}) \
                 and the server (pid {server}) is asleep in write(2) on the responses pipe pipe:[{resp}] (fd {sfd}), \
                 and neither has made a system call since: both pipes are full (a pipe holds 64 KiB) and each waits \
                 for the other to read. The client must work in lockstep: read the response to a request before \
                 sending the next. Sending every request first works only while all of them and their responses fit \
                 in the two pipes. (The test killed the server to end the deadlock.)"
            ));
        }
        if !client_writes && !server_writes && cinode == resp && sinode == req {
            return Some(format!(
                "deadlock: the client (pid {me}) is asleep in read(2) on the responses pipe pipe:[{resp}] (fd {cfd}) \
                 and the server (pid {server}) is asleep in read(2) on the requests pipe pipe:[{req}] (fd {sfd}), \
                 and neither has made a system call since: each waits for the other to write. The request was not \
                 sent whole: a frame is its 4-byte little-endian length and then every byte of the message. (The test \
                 killed the server to end the deadlock.)"
            ));
        }
        None
    }

    /// Stops watching; the deadlock it named, if any.
    fn finish(mut self) -> Option<String> {
        self.stop.store(true, Ordering::SeqCst);
        self.thread.take().and_then(|t| t.join().ok()).flatten()
    }
}

/// Fails with what the watch saw, if it saw anything, reaping the server.
fn fail_if_seen(watch: Watch) {
    let server = watch.server;
    if let Some(msg) = watch.finish() {
        fail(server, msg);
    }
}

/// `send_message` writes exactly the documented frame: 4 little-endian bytes of length, then
/// the message, all of it, even when it is much more than the pipe holds (a thread drains it).
#[rstest]
#[case::empty(0)]
#[case::one_byte(1)]
#[case::a_few_pages(5000)]
#[case::more_than_a_pipe(200_000)]
#[case::max_message(MAX_MESSAGE)]
fn send_message_writes_one_frame(#[case] len: usize) {
    Isolation::new()
        .deadline(Duration::from_secs(20))
        .check_fds()
        .run(move || {
            let (read_end, write_end) = pipe().expect("pipe");
            let drain = thread::spawn(move || {
                let mut got = Vec::new();
                let mut buf = vec![0u8; 65536];
                loop {
                    match read(&read_end, &mut buf) {
                        Ok(0) | Err(_) => return got,
                        Ok(n) => got.extend_from_slice(&buf[..n]),
                    }
                }
            });
            let message = pattern(len, 7);
            let sent = student(|| send_message(&write_end, &message));
            drop(write_end);
            let got = drain.join().expect("the draining thread");
            if let Err(e) = sent {
                panic!("send_message of a {len}-byte message failed: {e}");
            }
            let mut expected = (len as u32).to_le_bytes().to_vec();
            expected.extend_from_slice(&message);
            if got != expected {
                let header: Vec<u8> = got.iter().take(4).copied().collect();
                panic!(
                    "send_message of a {len}-byte message wrote {} bytes, starting with {header:02x?}; the frame is \
                     the length as 4 little-endian bytes ({:02x?}, u32::to_le_bytes) followed by the {len} bytes \
                     of the message, {} bytes in all, every one written (a write(2) may take only part of a \
                     buffer: loop until it is all gone).",
                    got.len(),
                    &expected[..4],
                    expected.len()
                );
            }
        });
}

/// A message above `MAX_MESSAGE` is refused with EMSGSIZE, and nothing reaches the pipe.
#[test]
fn send_message_refuses_a_message_too_big() {
    Isolation::new().deadline(Duration::from_secs(15)).check_fds().run(|| {
        let (read_end, write_end) = pipe().expect("pipe");
        fcntl(&read_end, FcntlArg::F_SETFL(OFlag::O_NONBLOCK))
            .expect("O_NONBLOCK");
        // A thread drains whatever comes, so a wrong send_message cannot hang on the full pipe.
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let drain = thread::spawn(move || {
            let mut total = 0usize;
            let mut buf = vec![0u8; 65536];
            loop {
                match read(&read_end, &mut buf) {
                    Ok(0) => return total,
                    Ok(n) => total += n,
                    Err(Errno::EAGAIN) if flag.load(Ordering::SeqCst) => return total,
                    Err(_) => thread::sleep(Duration::from_millis(1)),
                }
            }
        });
        let message = vec![b'x'; MAX_MESSAGE + 1];
        let sent = student(|| send_message(&write_end, &message));
        stop.store(true, Ordering::SeqCst);
        drop(write_end);
        let written = drain.join().expect("the draining thread");
        assert_eq!(
            sent,
            Err(Errno::EMSGSIZE),
            "send_message of a message of MAX_MESSAGE + 1 bytes must be refused with Err(EMSGSIZE): the reader \
             would refuse its length header anyway"
        );
        assert_eq!(
            written, 0,
            "send_message refused the message too big, but {written} bytes reached the pipe: check the length \
             before writing anything, or the reader sees half a frame"
        );
    });
}

/// With every read end closed (and SIGPIPE ignored), write(2) fails with EPIPE, and
/// `send_message` returns it rather than reporting success.
#[test]
fn send_message_returns_epipe_without_a_reader() {
    Isolation::new().deadline(Duration::from_secs(15)).check_fds().run(|| {
        ignore_sigpipe();
        let (read_end, write_end) = pipe().expect("pipe");
        drop(read_end);
        let sent = student(|| send_message(&write_end, b"nobody reads this"));
        assert_eq!(
            sent,
            Err(Errno::EPIPE),
            "send_message into a pipe whose read ends are all closed: write(2) fails with EPIPE (SIGPIPE is \
             ignored here), and send_message must return that error: the message did not arrive"
        );
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

/// `send_message` into a pipe of one page (`F_SETPIPE_SZ`, one buffer slot) that nobody drains
/// yet: the 4 length bytes fit, the 40 000 bytes of the message fill the slot and the write
/// sleeps; a
/// signal whose handler has no SA_RESTART ends it with what it took (a short write). The next
/// write sleeps having taken nothing, and a second signal makes it fail with EINTR. Each signal
/// is sent once `/proc` shows the writer asleep in write(2) with the pipe full. Then the test
/// drains: the whole frame must arrive, once, in order.
#[test]
fn send_message_finishes_a_write_cut_short_by_a_signal() {
    Isolation::new()
        .deadline(Duration::from_secs(20))
        .check_fds()
        .run(short_write);
}

/// The body of [`send_message_finishes_a_write_cut_short_by_a_signal`].
fn short_write() {
    ignore_sigpipe();
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
    let message = pattern(40_000, 11);
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
                // Asleep in write means the pipe is full; more than the 4 length bytes in it
                // means the sleeping write has taken part of the message (the first round), or
                // that the pipe is still full (the second).
                if asleep && queued(&sink_r) > 4 {
                    break;
                }
                if RETURNED.load(Ordering::SeqCst) {
                    // It returned without writing the rest: the bytes tell.
                    break;
                }
                if start.elapsed() > limit {
                    trouble = Some(format!(
                        "after {limit:?} send_message (pid {me}) was not asleep in write(2) on fd {wfd}, the full \
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
    let result = student(|| send_message(&sink_w, &message));
    RETURNED.store(true, Ordering::SeqCst);
    drop(sink_w);
    let (trouble, got) = helper.join().expect("the helper thread");
    match result {
        Ok(()) => {}
        Err(Errno::EINTR) => panic!(
            "send_message returned Err(EINTR): a write(2) into the full pipe was interrupted by a signal (SIGUSR1, \
             whose handler has no SA_RESTART) before it took anything. EINTR means nothing was transferred and \
             nothing is lost: call write again."
        ),
        Err(e) => panic!(
            "send_message failed ({e}) while a signal interrupted its write(2) into a full pipe"
        ),
    }
    if let Some(why) = trouble {
        panic!("{why}");
    }
    let mut frame = (message.len() as u32).to_le_bytes().to_vec();
    frame.extend_from_slice(&message);
    if got != frame {
        panic!(
            "the pipe received {} of the {} bytes of the frame. The test interrupted a write(2) once the full pipe \
             (one page) had taken part of the message: write(2) then returns how much it took, a short write, and \
             the rest must still be written, in a loop.",
            got.len(),
            frame.len()
        );
    }
}

/// Frames cut into many reads: the length in two pieces, a message in pieces, a message much
/// bigger than the pipe; each piece is written only once `recv_message` sleeps in `read(2)` on
/// the pipe (seen in `/proc`), so every read returns exactly one piece. Then end of file:
/// `Ok(None)`.
#[test]
fn recv_message_reads_frames_arriving_in_pieces() {
    Isolation::new().deadline(Duration::from_secs(20)).check_fds().run(|| {
        ignore_sigpipe();
        let (read_end, write_end) = pipe().expect("pipe");
        let rfd = read_end.as_raw_fd();
        let big = pattern(100_000, 3);
        let expected: Vec<Vec<u8>> = vec![Vec::new(), b"hello".to_vec(), big.clone()];
        let frame = |m: &[u8]| {
            let mut f = (m.len() as u32).to_le_bytes().to_vec();
            f.extend_from_slice(m);
            f
        };
        // Each frame cut at these offsets.
        let cuts: Vec<(Vec<u8>, Vec<usize>)> = vec![
            (frame(b""), vec![2]),
            (frame(b"hello"), vec![1, 4, 6]),
            (frame(&big), vec![4, 5, 30_000]),
        ];
        let me = getpid();
        let done = Arc::new(AtomicBool::new(false));
        let flag = done.clone();
        let writer = thread::spawn(move || -> Result<(), String> {
            let limit = scaled(SETTLE);
            for (bytes, at) in cuts {
                let mut bounds = vec![0];
                bounds.extend(at);
                bounds.push(bytes.len());
                for w in bounds.windows(2) {
                    // Wait for recv_message to have taken the last piece and to sleep in read on
                    // the pipe again, unless the test is over: so each read gets one piece.
                    let start = Instant::now();
                    while procfs::blocked_read_fd(me) != Some(rfd) || queued(&write_end) != 0 {
                        if flag.load(Ordering::SeqCst) {
                            return Ok(());
                        }
                        if start.elapsed() > limit {
                            return Err(format!(
                                "after {limit:?} recv_message (pid {me}) was not asleep in read(2) on fd {rfd}"
                            ));
                        }
                        thread::sleep(Duration::from_micros(200));
                    }
                    if put(&write_end, &bytes[w[0]..w[1]]).is_err() {
                        return Ok(());
                    }
                }
            }
            Ok(())
        });
        let mut got = Vec::new();
        for _ in 0..=expected.len() {
            let r = student(|| recv_message(&read_end));
            let stop = !matches!(r, Ok(Some(_)));
            got.push(r);
            if stop {
                break;
            }
        }
        done.store(true, Ordering::SeqCst);
        drop(read_end);
        let trouble = writer.join().expect("the writer thread");
        for (i, want) in expected.iter().enumerate() {
            match got.get(i) {
                Some(Ok(Some(m))) if m == want => {}
                Some(Ok(Some(m))) => panic!(
                    "recv_message returned {} for message {i}, which was {}: the frame arrived in several reads \
                     (the test wrote each piece once recv_message slept in read(2)), and a read(2) that returns \
                     fewer bytes than asked is a short read, not the whole: read again until you have the 4 \
                     length bytes, then until you have that many bytes of message.",
                    show(m),
                    show(want)
                ),
                Some(other) => panic!(
                    "recv_message returned {other:?} for message {i} ({}), which arrived in several reads: a short \
                     read is not an error and not end of file; loop until the frame is whole.",
                    show(want)
                ),
                None => unreachable!(),
            }
        }
        match got.get(expected.len()) {
            Some(Ok(None)) => {}
            other => panic!(
                "after the last frame the writer closed the pipe: recv_message must return Ok(None) at end of file \
                 before a frame, but returned {other:?}"
            ),
        }
        if let Err(e) = trouble {
            panic!("{e}");
        }
    });
}

/// `recv_message` asleep in `read(2)` on an empty pipe gets a signal whose handler has no
/// SA_RESTART: that read fails with EINTR, which only means "call me again". The signal is sent
/// once `/proc` shows it asleep in read on the pipe, and the frame is written only after the
/// handler ran, so the interrupted read can have returned nothing but EINTR.
#[test]
fn recv_message_retries_a_read_interrupted_by_a_signal() {
    Isolation::new()
        .deadline(Duration::from_secs(20))
        .check_fds()
        .run(|| {
            let action = SigAction::new(
                SigHandler::Handler(count_signal),
                SaFlags::empty(),
                SigSet::empty(),
            );
            // SAFETY: the handler only adds to an atomic counter, which is async-signal-safe.
            unsafe { sigaction(Signal::SIGUSR1, &action) }.expect("sigaction(SIGUSR1)");
            ignore_sigpipe();
            let (read_end, write_end) = pipe().expect("pipe");
            let rfd = read_end.as_raw_fd();
            let me = getpid();
            let reader = pthread_self();
            let helper = thread::spawn(move || -> Result<(), String> {
                let limit = scaled(SETTLE);
                let start = Instant::now();
                while procfs::blocked_read_fd(me) != Some(rfd) {
                    if RETURNED.load(Ordering::SeqCst) {
                        return Ok(());
                    }
                    if start.elapsed() > limit {
                        return Err(format!(
                            "after {limit:?} recv_message (pid {me}) was not asleep in read(2) on fd {rfd}, the \
                             empty pipe"
                        ));
                    }
                    thread::sleep(Duration::from_micros(200));
                }
                pthread_kill(reader, Signal::SIGUSR1).map_err(|e| format!("pthread_kill: {e}"))?;
                let start = Instant::now();
                while SIGNALS.load(Ordering::SeqCst) == 0 {
                    if start.elapsed() > limit {
                        return Err("the SIGUSR1 handler never ran".into());
                    }
                    thread::sleep(Duration::from_millis(1));
                }
                // The read is over; if recv_message went back to read, this frame ends it.
                let _ = put_frame(&write_end, b"after the signal");
                Ok(())
            });
            let got = student(|| recv_message(&read_end));
            RETURNED.store(true, Ordering::SeqCst);
            drop(read_end);
            let trouble = helper.join().expect("the helper thread");
            match got {
                Ok(Some(m)) if m == b"after the signal" => {}
                Err(Errno::EINTR) => panic!(
                    "recv_message returned Err(EINTR): its read(2) was interrupted by a signal (SIGUSR1, whose \
                     handler has no SA_RESTART) while it waited on the empty pipe. EINTR means the call was cut \
                     short before anything was read: nothing is lost and the writer is still there, so call read \
                     again; it is neither end of file nor a real failure."
                ),
                other => panic!(
                    "recv_message, interrupted by a signal while it waited, and then given the frame \
                     \"after the signal\", returned {other:?}"
                ),
            }
            if let Err(e) = trouble {
                panic!("{e}");
            }
        });
}

/// What the test writes before closing the pipe, and what `recv_message` must say.
#[rstest]
#[case::nothing(Vec::new(), Ok(None))]
#[case::half_a_length(vec![5, 0], Err(Errno::EPROTO))]
#[case::half_a_message([10u32.to_le_bytes().to_vec(), b"abc".to_vec()].concat(), Err(Errno::EPROTO))]
#[case::length_too_big(((MAX_MESSAGE + 1) as u32).to_le_bytes().to_vec(), Err(Errno::EMSGSIZE))]
fn recv_message_reports_a_bad_frame(
    #[case] bytes: Vec<u8>,
    #[case] want: nix::Result<Option<Vec<u8>>>,
) {
    Isolation::new()
        .deadline(Duration::from_secs(15))
        .check_fds()
        .run(move || {
            let (read_end, write_end) = pipe().expect("pipe");
            put(&write_end, &bytes).expect("write to the test's pipe");
            drop(write_end);
            let got = student(|| recv_message(&read_end));
            let lesson = match want {
                Ok(None) => {
                    "end of file before the first byte of a frame is the clean end: Ok(None)"
                }
                Err(Errno::EPROTO) => {
                    "end of file inside a frame means the writer went away in the middle of a message: \
                     Err(EPROTO), not a message and not a clean end"
                }
                _ => {
                    "a length above MAX_MESSAGE is refused with Err(EMSGSIZE) before reading the message: a \
                     garbled header must not be believed"
                }
            };
            assert_eq!(
                got, want,
                "recv_message on a pipe holding {bytes:02x?} and then end of file: {lesson}"
            );
        });
}

/// While the server waits for a request, `/proc` shows the parent holding only the requests'
/// write end and the responses' read end, the server only the other two; once the parent closes
/// the requests' write end the server sees end of file and exits 0.
#[test]
fn each_side_holds_only_its_ends() {
    Isolation::new().deadline(Duration::from_secs(20)).run(|| {
        ignore_sigpipe();
        let (server, req, _resp) = spawn();
        let Server {
            pid,
            requests,
            responses,
        } = server;
        drop(requests);
        let status = await_exit(pid, req);
        expect_clean_exit(pid, status);
        drop(responses);
    });
}

/// K round trips with the student's server, the test speaking the frame itself in lockstep:
/// each response is its request in upper case, in order; 64 requests of 4 KiB are more than the
/// two pipes hold. Then the server exits 0 at end of file.
#[rstest]
#[case::none(0)]
#[case::one(1)]
#[case::seven(7)]
#[case::more_than_the_pipes_hold(64)]
fn server_answers_in_order(#[case] k: usize) {
    Isolation::new().deadline(Duration::from_secs(30)).run(move || {
        ignore_sigpipe();
        let (server, req, resp) = spawn();
        let watch = Watch::start(server.pid, req, resp);
        let mut trouble = None;
        for (i, request) in requests(k).iter().enumerate() {
            if let Err(e) = put_frame(&server.requests, request) {
                trouble = Some(format!(
                    "sending request {i} to the server failed ({e}): the server closed its end."
                ));
                break;
            }
            match take_frame(&server.responses) {
                Ok(Some(response)) if response == upper(request) => {}
                Ok(Some(response)) => {
                    let own = if response == *request {
                        " That is the request itself, unchanged: did the parent read its own request back?"
                    } else {
                        ""
                    };
                    trouble = Some(format!(
                        "the response to request {i} ({}) was {}, not the request in ASCII upper case.{own}",
                        show(request),
                        show(&response)
                    ));
                    break;
                }
                Ok(None) => {
                    trouble = Some(format!(
                        "the server closed the responses pipe instead of answering request {i} ({})",
                        show(request)
                    ));
                    break;
                }
                Err(e) => {
                    trouble = Some(format!("the response to request {i}: {e}"));
                    break;
                }
            }
        }
        fail_if_seen(watch);
        if let Some(why) = trouble {
            fail(server.pid, why);
        }
        let Server {
            pid,
            requests,
            responses,
        } = server;
        drop(requests);
        let status = await_exit(pid, req);
        expect_clean_exit(pid, status);
        drop(responses);
    });
}

/// A request cut short (2 of its 4 length bytes, then end of file) makes the server's
/// `recv_message` fail with EPROTO, and the server exits 1.
#[test]
fn server_exits_1_on_a_truncated_request() {
    Isolation::new().deadline(Duration::from_secs(20)).run(|| {
        ignore_sigpipe();
        let (server, req, _resp) = spawn();
        let Server {
            pid,
            requests,
            responses,
        } = server;
        put(&requests, &[9, 0]).expect("write half a length");
        drop(requests);
        let status = await_exit(pid, req);
        drop(responses);
        match status {
            WaitStatus::Exited(_, 1) => {}
            other => panic!(
                "the server (pid {pid}) got 2 of the 4 length bytes of a request and then end of file: its \
                 recv_message must fail (EPROTO), and the server then leaves with _exit(1); waitpid gave {other:?}"
            ),
        }
    });
}

/// `round_trips` against the test's own server: K requests, the responses in order; 64 of 4
/// KiB are more than the two pipes hold, so a client that sends everything before reading
/// deadlocks, which the watch names at once.
#[rstest]
#[case::none(0)]
#[case::one(1)]
#[case::seven(7)]
#[case::more_than_the_pipes_hold(64)]
fn round_trips_in_lockstep(#[case] k: usize) {
    Isolation::new().deadline(Duration::from_secs(30)).run(move || {
        ignore_sigpipe();
        let (server, req, resp) = test_server(0, false);
        let sent = requests(k);
        let watch = Watch::start(server.pid, req, resp);
        let got = student(|| round_trips(&server, &sent));
        fail_if_seen(watch);
        let got = got.unwrap_or_else(|e| fail(server.pid, format!("round_trips of {k} requests failed: {e}")));
        if got.len() != k {
            fail(
                server.pid,
                format!("round_trips of {k} requests returned {} responses", got.len()),
            );
        }
        for (i, (request, response)) in sent.iter().zip(&got).enumerate() {
            if *response != upper(request) {
                fail(
                    server.pid,
                    format!(
                        "round_trips returned {} as response {i}, but the server answered request {i} ({}) with \
                         its upper case: the responses must come back in the order of the requests",
                        show(response),
                        show(request)
                    ),
                );
            }
        }
        let Server {
            pid,
            requests,
            responses,
        } = server;
        drop(requests);
        let status = await_exit(pid, req);
        drop(responses);
        assert!(
            matches!(status, WaitStatus::Exited(_, 0)),
            "the test's server should have exited 0 after the requests, but waitpid gave {status:?}: round_trips \
             sent something that was not a whole frame (status 100)"
        );
    });
}

/// The test's server reads the first request and exits without answering: `round_trips` must
/// return `Err(EPIPE)`, not the responses it has so far.
#[test]
fn round_trips_reports_a_server_that_hangs_up() {
    Isolation::new().deadline(Duration::from_secs(20)).run(|| {
        ignore_sigpipe();
        let (server, req, resp) = test_server(0, true);
        let sent = requests(3);
        let watch = Watch::start(server.pid, req, resp);
        let got = student(|| round_trips(&server, &sent));
        fail_if_seen(watch);
        reap(server.pid);
        assert!(
            matches!(got, Err(Errno::EPIPE)),
            "the server read the first request and exited without answering; round_trips must return \
             Err(EPIPE), but returned {:?}",
            got.map(|r| r.len())
        );
    });
}

/// `stop_server` on the test's own server, which exits with `code` at end of file: it returns
/// exactly that status, the server has been reaped (no `/proc/<pid>`, waitpid says ECHILD), and
/// a wait begun before the close is named at once.
#[rstest]
#[case::exit_0(0)]
#[case::exit_7(7)]
fn stop_server_closes_then_reaps(#[case] code: i32) {
    Isolation::new().deadline(Duration::from_secs(20)).run(move || {
        ignore_sigpipe();
        let (server, req, resp) = test_server(code, false);
        let pid = server.pid;
        // One round trip first: the server is up and waiting in read for the next request.
        put_frame(&server.requests, b"ping").expect("send a request");
        assert_eq!(take_frame(&server.responses), Ok(Some(b"PING".to_vec())));
        let watch = Watch::start(pid, req, resp);
        let status = student(|| stop_server(server));
        fail_if_seen(watch);
        if procfs::state(pid).is_some() {
            // Not reaped. It has exited or is about to (its requests' end is closed): wait for
            // the zombie, which tells the lesson best.
            let limit = scaled(SETTLE);
            let start = Instant::now();
            while procfs::state(pid) != Some('Z') && start.elapsed() < limit {
                thread::sleep(Duration::from_millis(2));
            }
            let state = procfs::state(pid);
            let what = if state == Some('Z') {
                "has exited and is a zombie: nobody reaped it".to_owned()
            } else {
                format!("is still there (state {state:?}), and nobody reaped it")
            };
            fail(
                pid,
                format!(
                    "stop_server returned {status:?}, but the server (pid {pid}) {what}. stop_server must wait for \
                     it with waitpid, which removes the zombie and gives the real status.\n{}",
                    evidence_now()
                ),
            );
        }
        assert_eq!(
            status,
            Ok(WaitStatus::Exited(pid, code)),
            "the server exited with status {code}: stop_server must return the status waitpid reported"
        );
        assert_eq!(
            waitpid(pid, Some(WaitPidFlag::WNOHANG)),
            Err(Errno::ECHILD),
            "after stop_server the server (pid {pid}) must be reaped"
        );
    });
}
