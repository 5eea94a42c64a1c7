//! A shared client driver for the io_models echo servers (select, poll, epoll).
//!
//! Include it in a test target with
//!
//! ```ignore
//! #[path = "support/echo_clients.rs"]
//! mod echo_clients;
//! ```
//!
//! and call it from inside an isolated test body (`oskata_harness::isolated` or
//! `Isolation::new()...run(..)`): it forks.
//!
//! # The server's contract, as this driver checks it
//!
//! A server is any `Fn(TcpListener) -> io::Result<()>` (a closure can bind extra arguments,
//! e.g. `|l| serve(l, Trigger::Edge)`). [`Server::spawn`] makes the listener itself (a TCP
//! socket on 127.0.0.1, port 0, `listen(2)` with backlog [`BACKLOG`]), forks, and calls the
//! server in the child; the test process closes its copy of the listener. The server runs
//! until the test kills it (SIGKILL, then `waitpid`): it must never return while it serves,
//! and returning (Ok or Err) or panicking fails the check, quoting what it returned. The
//! server is an echo server: every byte a client sends comes back to that client, in order;
//! when a client shuts down its sending side (half-close, the server reads end of file), the
//! server sends back what it still holds for that client and then closes that connection (the
//! client reads end of file); a client that vanishes (a reset, a close with unread data) is
//! closed by the server and the others are served on. A server never holds a socket of a
//! client that is gone for long ([`Server::wait_clients_closed`]).
//!
//! # The checks
//!
//! Each check starts its own server, bounds itself in time (every limit through
//! `oskata_harness::scaled`) and in the number of connections, fails with evidence (the
//! server's `/proc` state, its fd table, what each client sent and got) and kills and reaps
//! the server at the end, checking that no process and no listening socket is left:
//! - [`scripts`]: proptest-generated client scripts;
//! - [`burst`]: hundreds of simultaneous connects, all accepted and served;
//! - [`big_slow`]: 1 MiB to a client that reads slowly while it still sends;
//! - [`fairness`]: one flooding client does not starve the others;
//! - [`idle_cpu`]: an idle server (with idle, half-closed and reset clients) sleeps;
//! - [`many_clients`]: more than 1024 clients at once (raises `RLIMIT_NOFILE`).
//!
//! The lower-level pieces ([`Server`], [`Client`]) are public for exercise-specific tests.
#![allow(dead_code)] // each test target uses a part of the driver

use std::fmt::Write as _;
use std::fs;
use std::io::{self, ErrorKind, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::os::fd::{AsFd, AsRawFd, OwnedFd, RawFd};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::thread;
use std::time::{Duration, Instant};

use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
use nix::sys::resource::{Resource, getrlimit, setrlimit};
use nix::sys::signal::{Signal, kill};
use nix::sys::socket::{Backlog, listen, setsockopt, sockopt};
use nix::sys::wait::{WaitPidFlag, WaitStatus, waitpid};
use nix::unistd::{ForkResult, Pid, fork, pipe};
use oskata_harness::{procfs, scaled};
use proptest::collection::vec;
use proptest::prelude::*;
use proptest::test_runner::TestCaseError;

/// The backlog the driver's listener is given (`listen(2)`): room for a burst of connects
/// that all complete their handshake before the server accepts any of them.
pub const BACKLOG: i32 = 512;

/// How long (before `scaled`) a correct server may take to answer, accept, or close: it needs
/// milliseconds; every wrong one is caught by evidence well before a test's own deadline.
pub const SETTLE: Duration = Duration::from_secs(5);

/// The deadline an isolated test calling one check should give itself (before `scaled`).
pub const TEST_DEADLINE: Duration = Duration::from_secs(40);

// ---------------------------------------------------------------------------------------------
// The server process
// ---------------------------------------------------------------------------------------------

/// An echo server running in a child process of the test.
///
/// Dropping it kills and reaps the child (no check); [`Server::stop`] does the same and checks
/// that the process and its listening socket are gone.
pub struct Server {
    pid: Pid,
    addr: SocketAddr,
    /// Read end of a pipe the child writes its fate into (what the server returned or its
    /// panic message) if it ever stops serving.
    fate: Option<OwnedFd>,
    fate_text: String,
    reaped: Option<WaitStatus>,
    /// The server's socket fds right after it started (the listener, and whatever the
    /// setup left open): the baseline for counting client sockets.
    baseline: usize,
    /// Said first in every failure (see [`Server::set_lesson`]).
    lesson: String,
}

/// Makes the listener the way every check wants it: 127.0.0.1, port 0, backlog [`BACKLOG`].
pub fn listener() -> io::Result<TcpListener> {
    let l = TcpListener::bind("127.0.0.1:0")?;
    // listen(2) again on a listening socket sets its backlog anew (std chose 128).
    listen(&l, Backlog::new(BACKLOG).map_err(io::Error::from)?)?;
    Ok(l)
}

impl Server {
    /// Forks a child that runs `server` on a fresh [`listener`].
    pub fn spawn(server: impl FnOnce(TcpListener) -> io::Result<()>) -> Server {
        Server::spawn_with(|| {}, server)
    }

    /// Like [`Server::spawn`], but the child first runs `setup` (e.g. to raise a limit or
    /// occupy fds), before the server is called.
    pub fn spawn_with(
        setup: impl FnOnce(),
        server: impl FnOnce(TcpListener) -> io::Result<()>,
    ) -> Server {
        let l = listener().expect("the test could not make its listening socket");
        let addr = l.local_addr().expect("getsockname on the listener");
        let (fate_r, fate_w) = pipe().expect("pipe for the server's fate");
        // SAFETY: the test body is single-threaded at this point (the driver starts its client
        // threads only after the fork), and the child only runs the server and then _exits.
        match unsafe { fork() }.expect("fork the server") {
            ForkResult::Child => {
                drop(fate_r);
                let outcome = catch_unwind(AssertUnwindSafe(|| {
                    setup();
                    server(l)
                }));
                let (text, code) = match outcome {
                    Ok(Ok(())) => ("the server returned Ok(()) while it had clients to serve (it must serve until it is killed)".to_owned(), 0),
                    Ok(Err(e)) => (format!("the server returned Err({e}) (kind {:?}) while it had clients to serve", e.kind()), 1),
                    Err(p) => {
                        let msg = p
                            .downcast_ref::<String>()
                            .cloned()
                            .or_else(|| p.downcast_ref::<&str>().map(|s| (*s).to_owned()))
                            .unwrap_or_default();
                        (format!("the server panicked: {msg}"), 101)
                    }
                };
                let _ = nix::unistd::write(&fate_w, text.as_bytes());
                // SAFETY: _exit ends the forked child at once, running no test code.
                unsafe { libc::_exit(code) }
            }
            ForkResult::Parent { child } => {
                drop(fate_w);
                drop(l);
                let _ = nix::fcntl::fcntl(
                    &fate_r,
                    nix::fcntl::FcntlArg::F_SETFL(nix::fcntl::OFlag::O_NONBLOCK),
                );
                let mut s = Server {
                    pid: child,
                    addr,
                    fate: Some(fate_r),
                    fate_text: String::new(),
                    reaped: None,
                    baseline: 0,
                    lesson: String::new(),
                };
                s.baseline = s.wait_listening();
                s
            }
        }
    }

    /// Waits until the child holds its listening socket (its setup is done), and returns how
    /// many sockets it holds then.
    fn wait_listening(&mut self) -> usize {
        let start = Instant::now();
        loop {
            self.check_alive("starting");
            if let Some(fds) = self.sockets() {
                if !fds.is_empty() && procfs::state(self.pid) == Some('S') {
                    return fds.len();
                }
            }
            if start.elapsed() > scaled(SETTLE) {
                return self.sockets().map_or(1, |f| f.len().max(1));
            }
            thread::sleep(Duration::from_millis(1));
        }
    }

    /// The server's pid.
    pub fn pid(&self) -> Pid {
        self.pid
    }

    /// The address it listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The socket fds the server holds now (from `/proc/<pid>/fd`), `None` if unreadable.
    pub fn sockets(&self) -> Option<Vec<i32>> {
        let fds = procfs::fds(self.pid).ok()?;
        Some(
            fds.iter()
                .filter(|f| f.target.starts_with("socket:"))
                .map(|f| f.fd)
                .collect(),
        )
    }

    /// How many client sockets the server holds now (its sockets beyond the baseline).
    pub fn client_sockets(&self) -> usize {
        self.sockets()
            .map_or(0, |s| s.len().saturating_sub(self.baseline))
    }

    /// Connects a new client (nonblocking after the connect).
    pub fn connect(&mut self) -> Client {
        self.check_alive("accepting a new client");
        match Client::connect(self.addr) {
            Ok(c) => c,
            Err(e) => {
                let ev = self.evidence();
                self.fail(format!(
                    "a client could not connect to the server at {}: {e}\n{ev}",
                    self.addr
                ))
            }
        }
    }

    /// The server's CPU time so far (all threads), from `/proc/<pid>/stat` utime + stime.
    pub fn cpu_time(&self) -> Duration {
        cpu_time(self.pid)
    }

    /// What the kernel shows of the server, in words.
    pub fn evidence(&mut self) -> String {
        self.read_fate();
        let pid = self.pid;
        let mut out = String::new();
        match procfs::stat(pid) {
            Ok(s) => {
                let _ = writeln!(
                    out,
                    "The server (pid {pid}): state {} ({}), {} thread(s), CPU time so far {:?}, in {}",
                    s.state,
                    oskata_harness::evidence::state_word(s.state),
                    s.num_threads,
                    cpu_time(pid),
                    syscall_text(pid)
                );
            }
            Err(_) => {
                let _ = writeln!(out, "The server (pid {pid}) is gone from /proc.");
            }
        }
        if let Some(st) = self.reaped {
            let _ = writeln!(out, "It was reaped: {st:?}.");
        }
        if !self.fate_text.is_empty() {
            let _ = writeln!(out, "It said: {}", self.fate_text);
        }
        if let Ok(fds) = procfs::fds(pid) {
            let socks = fds
                .iter()
                .filter(|f| f.target.starts_with("socket:"))
                .count();
            let list: Vec<String> = fds
                .iter()
                .take(24)
                .map(|f| format!("{}->{}", f.fd, f.target))
                .collect();
            let _ = writeln!(
                out,
                "Its fd table: {} fds, {socks} sockets ({} of them the listener and what it held at start); first fds: {}{}",
                fds.len(),
                self.baseline,
                list.join(", "),
                if fds.len() > 24 { ", ..." } else { "" }
            );
        }
        out
    }

    fn read_fate(&mut self) {
        if let Some(fd) = &self.fate {
            let mut buf = [0u8; 4096];
            while let Ok(n) = nix::unistd::read(fd, &mut buf) {
                if n == 0 {
                    break;
                }
                self.fate_text.push_str(&String::from_utf8_lossy(&buf[..n]));
            }
        }
    }

    /// Fails at once (with evidence) if the server process has ended.
    pub fn check_alive(&mut self, doing: &str) {
        if self.reaped.is_none() {
            match waitpid(self.pid, Some(WaitPidFlag::WNOHANG)) {
                Ok(WaitStatus::StillAlive) => return,
                Ok(st) => self.reaped = Some(st),
                Err(_) => {}
            }
        }
        let ev = self.evidence();
        let how = match self.reaped {
            Some(WaitStatus::Exited(_, c)) => format!("exited with status {c}"),
            Some(WaitStatus::Signaled(_, s, _)) => format!("was killed by {s}"),
            other => format!("ended ({other:?})"),
        };
        self.fail(format!(
            "the server {how} while the test was {doing}; an echo server serves until it is killed, and a client that \
             misbehaves (resets, closes early, sends a lot) is closed, not a reason to stop serving the others\n{ev}"
        ))
    }

    /// Kills and reaps the server, then panics with `msg` (and the lesson, if one is set).
    pub fn fail(&mut self, msg: String) -> ! {
        self.kill_and_reap();
        if self.lesson.is_empty() {
            panic!("{msg}");
        }
        panic!("{}\n{msg}", self.lesson);
    }

    /// Sets a sentence said first in every failure from now on: what the test that is running
    /// checks, in the exercise's words (empty: none).
    pub fn set_lesson(&mut self, lesson: &str) {
        self.lesson = lesson.to_owned();
    }

    fn kill_and_reap(&mut self) {
        if self.reaped.is_none() {
            let _ = kill(self.pid, Signal::SIGKILL);
            self.reaped = waitpid(self.pid, None).ok();
        }
    }

    /// Waits until the server holds at most `n` client sockets; fails with evidence otherwise.
    pub fn wait_clients_closed(&mut self, n: usize, why: &str) {
        let start = Instant::now();
        loop {
            self.check_alive(
                "waiting for the server to close the sockets of clients that are gone",
            );
            let held = self.client_sockets();
            if held <= n {
                return;
            }
            if start.elapsed() > scaled(SETTLE) {
                let ev = self.evidence();
                self.fail(format!(
                    "the server still holds {held} client sockets, {} more than the {n} clients still connected, {:?} after \
                     {why}: a client that half-closed (read returns 0, once its echo is sent) or vanished (read or write \
                     fails, e.g. ECONNRESET, EPIPE; poll reports POLLHUP/POLLERR) must be closed and dropped from the set\n{ev}",
                    held - n,
                    start.elapsed()
                ));
            }
            thread::sleep(Duration::from_millis(2));
        }
    }

    /// Kills and reaps the server and checks that nothing is left: no process, no listening
    /// socket on its port.
    pub fn stop(mut self) {
        self.check_alive("finishing");
        self.kill_and_reap();
        let port = self.addr.port();
        if let Some(line) = listening_on(port) {
            panic!(
                "after the server was killed and reaped, a socket still listens on port {port}: {line} (the test's copy \
                 of the listener should have been closed after the fork)"
            );
        }
        if procfs::stat(self.pid).is_ok_and(|s| s.state != 'Z') {
            panic!(
                "the server pid {} is still alive after it was reaped",
                self.pid
            );
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.kill_and_reap();
    }
}

/// A line of /proc/net/tcp showing a LISTEN socket on `port`, if any.
pub fn listening_on(port: u16) -> Option<String> {
    let text = fs::read_to_string("/proc/net/tcp").ok()?;
    text.lines().skip(1).find_map(|l| {
        let f: Vec<&str> = l.split_whitespace().collect();
        let local = f.get(1)?;
        let p = u16::from_str_radix(local.rsplit(':').next()?, 16).ok()?;
        (p == port && f.get(3) == Some(&"0A")).then(|| l.trim().to_owned())
    })
}

/// utime + stime of `pid` (all its threads), from `/proc/<pid>/stat`.
pub fn cpu_time(pid: Pid) -> Duration {
    let Ok(text) = fs::read_to_string(format!("/proc/{pid}/stat")) else {
        return Duration::ZERO;
    };
    let Some(rest) = text.rfind(')').map(|i| &text[i + 2..]) else {
        return Duration::ZERO;
    };
    let f: Vec<&str> = rest.split_whitespace().collect();
    // Fields 14 and 15 of stat(5); `rest` starts at field 3.
    let ticks: u64 = f.get(11).and_then(|s| s.parse().ok()).unwrap_or(0)
        + f.get(12).and_then(|s| s.parse().ok()).unwrap_or(0);
    // SAFETY: sysconf reads a constant.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1) as u64;
    Duration::from_micros(ticks * 1_000_000 / hz)
}

/// The system call `pid` sleeps in, from `/proc/<pid>/syscall`, in words.
pub fn syscall_text(pid: Pid) -> String {
    let Ok(text) = fs::read_to_string(format!("/proc/{pid}/syscall")) else {
        return "an unknown place (no /proc/<pid>/syscall)".into();
    };
    let first = text.split_whitespace().next().unwrap_or("");
    let name = match first.parse::<i64>() {
        Ok(0) => "read(2)",
        Ok(1) => "write(2)",
        Ok(7) => "poll(2)",
        Ok(23) => "select(2)",
        Ok(43) => "accept(2)",
        Ok(44) => "sendto(2)",
        Ok(45) => "recvfrom(2)",
        Ok(232) => "epoll_wait(2)",
        Ok(270) => "pselect6(2)",
        Ok(271) => "ppoll(2)",
        Ok(281) => "epoll_pwait(2)",
        Ok(288) => "accept4(2)",
        Ok(441) => "epoll_pwait2(2)",
        Ok(n) => return format!("system call {n}"),
        Err(_) if first == "running" => "no system call (running in user space)",
        Err(_) => return format!("{:?}", text.trim()),
    };
    name.to_owned()
}

// ---------------------------------------------------------------------------------------------
// Clients
// ---------------------------------------------------------------------------------------------

/// One client connection (nonblocking), with what it sent and what came back.
pub struct Client {
    pub stream: Option<TcpStream>,
    pub sent: Vec<u8>,
    pub got: Vec<u8>,
    /// The server closed (read returned 0).
    pub eof: bool,
    /// A read failed (e.g. ECONNRESET).
    pub error: Option<io::Error>,
}

impl Client {
    /// Connects (blocking) and makes the socket nonblocking.
    pub fn connect(addr: SocketAddr) -> io::Result<Client> {
        let s = TcpStream::connect_timeout(&addr, scaled(SETTLE))?;
        s.set_nonblocking(true)?;
        s.set_nodelay(true)?;
        Ok(Client {
            stream: Some(s),
            sent: Vec::new(),
            got: Vec::new(),
            eof: false,
            error: None,
        })
    }

    fn fd(&self) -> Option<RawFd> {
        self.stream.as_ref().map(|s| s.as_raw_fd())
    }

    /// Reads what is there now (never blocks). Returns the bytes read.
    pub fn drain(&mut self) -> usize {
        let Some(s) = self.stream.as_mut() else {
            return 0;
        };
        if self.eof || self.error.is_some() {
            return 0;
        }
        let mut total = 0;
        let mut buf = [0u8; 65536];
        loop {
            match s.read(&mut buf) {
                Ok(0) => {
                    self.eof = true;
                    return total;
                }
                Ok(n) => {
                    self.got.extend_from_slice(&buf[..n]);
                    total += n;
                }
                Err(e) if e.kind() == ErrorKind::WouldBlock => return total,
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(e) => {
                    self.error = Some(e);
                    return total;
                }
            }
        }
    }

    /// Sends what it can of `data` now (never blocks); returns how much.
    pub fn try_send(&mut self, data: &[u8]) -> io::Result<usize> {
        let s = self.stream.as_mut().expect("send on a closed client");
        match s.write(data) {
            Ok(n) => {
                self.sent.extend_from_slice(&data[..n]);
                Ok(n)
            }
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::Interrupted) => Ok(0),
            Err(e) => Err(e),
        }
    }

    /// Shuts down the sending side (half-close): the server reads end of file.
    pub fn half_close(&mut self) -> io::Result<()> {
        self.stream
            .as_ref()
            .expect("half-close of a closed client")
            .shutdown(Shutdown::Write)
    }

    /// Closes at once, with SO_LINGER 0 when `reset` (the server sees a reset).
    pub fn close(&mut self, reset: bool) {
        if let Some(s) = self.stream.take() {
            if reset {
                let _ = setsockopt(
                    &s,
                    sockopt::Linger,
                    &libc::linger {
                        l_onoff: 1,
                        l_linger: 0,
                    },
                );
            }
            drop(s);
        }
    }

    /// A summary of what this client sent and got.
    pub fn summary(&self) -> String {
        let first_diff = self.sent.iter().zip(&self.got).position(|(a, b)| a != b);
        let mut s = format!(
            "sent {} bytes, got back {}",
            self.sent.len(),
            self.got.len()
        );
        if let Some(i) = first_diff {
            let _ = write!(
                s,
                ", first different at offset {i} (sent {:#04x}, got {:#04x})",
                self.sent[i], self.got[i]
            );
        } else if self.got.len() < self.sent.len() {
            let _ = write!(s, " (a correct prefix; the rest never came)");
        } else if self.got.len() > self.sent.len() {
            let _ = write!(s, " (more than it sent)");
        }
        if self.eof {
            s.push_str(", then end of file");
        }
        if let Some(e) = &self.error {
            let _ = write!(s, ", then the error {e}");
        }
        s
    }
}

/// Waits until one of `clients` is readable (or `limit` passes).
fn wait_readable(clients: &[&Client], limit: Duration) {
    let fds: Vec<RawFd> = clients.iter().filter_map(|c| c.fd()).collect();
    if fds.is_empty() {
        thread::sleep(limit.min(Duration::from_millis(1)));
        return;
    }
    // SAFETY: every fd is held open by its client for the duration of the call.
    let borrowed: Vec<_> = fds
        .iter()
        .map(|&fd| unsafe { std::os::fd::BorrowedFd::borrow_raw(fd) })
        .collect();
    let mut pfds: Vec<PollFd> = borrowed
        .iter()
        .map(|b| PollFd::new(*b, PollFlags::POLLIN))
        .collect();
    let ms = limit.as_millis().min(1000) as u16;
    let _ = poll(&mut pfds, PollTimeout::from(ms));
}

/// Sends all of `data` from client `i`, reading every client's echoes meanwhile so that no
/// one's buffers fill; fails (with evidence) if the server takes none of it for too long.
pub fn send_all(server: &mut Server, clients: &mut [Client], i: usize, data: &[u8]) {
    let mut off = 0;
    let mut stalled = Instant::now();
    while off < data.len() {
        match clients[i].try_send(&data[off..]) {
            Ok(0) => {}
            Ok(n) => {
                off += n;
                stalled = Instant::now();
                continue;
            }
            Err(e) => {
                let ev = server.evidence();
                server.fail(format!(
                    "client {i} could not send to the server: {e} (client: {})\n{ev}",
                    clients[i].summary()
                ));
            }
        }
        for c in clients.iter_mut() {
            c.drain();
        }
        if stalled.elapsed() > scaled(SETTLE) {
            let ev = server.evidence();
            let table = table(clients);
            server.fail(format!(
                "client {i} could not send the rest of its {} bytes for {:?}: the server stopped reading from it \
                 (its socket buffers are full){table}\n{ev}",
                data.len() - off,
                stalled.elapsed()
            ));
        }
        server.check_alive("sending");
        let s = clients[i].stream.as_ref().unwrap();
        let mut p = [PollFd::new(s.as_fd(), PollFlags::POLLOUT)];
        let _ = poll(&mut p, PollTimeout::from(5u8));
    }
}

/// Reads until `done(client)` holds for every client in `which`, with a deadline; on the
/// deadline fails with what each got.
pub fn read_until(
    server: &mut Server,
    clients: &mut [Client],
    which: &[usize],
    what: &str,
    done: impl Fn(&Client) -> bool,
) {
    let start = Instant::now();
    loop {
        for &i in which {
            clients[i].drain();
        }
        if which.iter().all(|&i| done(&clients[i])) {
            return;
        }
        if let Some(&i) = which
            .iter()
            .find(|&&i| (clients[i].eof || clients[i].error.is_some()) && !done(&clients[i]))
        {
            let ev = server.evidence();
            let c = &clients[i];
            server.fail(format!(
                "client {i} was cut off before {what}: {} (the server must send back every byte a client sent, then \
                 close; a write that takes only part of the buffer leaves the rest to send when the socket is \
                 writable again)\n{ev}",
                c.summary()
            ));
        }
        if start.elapsed() > scaled(SETTLE) {
            let waiting: Vec<usize> = which
                .iter()
                .copied()
                .filter(|&i| !done(&clients[i]))
                .collect();
            let ev = server.evidence();
            let mut t = String::new();
            for &i in waiting.iter().take(8) {
                let _ = write!(t, "\n  client {i}: {}", clients[i].summary());
            }
            server.fail(format!(
                "{} of {} clients were still waiting for {what} after {:?}:{t}{}\n{ev}",
                waiting.len(),
                which.len(),
                start.elapsed(),
                if waiting.len() > 8 { "\n  ..." } else { "" }
            ));
        }
        server.check_alive(what);
        let refs: Vec<&Client> = which
            .iter()
            .map(|&i| &clients[i])
            .filter(|c| !done(c))
            .collect();
        wait_readable(&refs, Duration::from_millis(20));
    }
}

fn table(clients: &[Client]) -> String {
    let mut t = String::new();
    for (i, c) in clients.iter().enumerate().take(8) {
        let _ = write!(t, "\n  client {i}: {}", c.summary());
    }
    t
}

/// Every byte back, in order, then end of file.
fn echoed_then_eof(c: &Client) -> bool {
    c.eof && c.got == c.sent
}

/// Every byte back so far (more may come).
fn echoed(c: &Client) -> bool {
    c.got.len() >= c.sent.len()
}

fn check_echo(server: &mut Server, clients: &[Client], which: &[usize]) {
    for &i in which {
        if clients[i].got != clients[i].sent {
            let ev = server.evidence();
            server.fail(format!(
                "client {i} did not get back exactly what it sent, in order: {} (an echo server returns each \
                 client's bytes to that client, unchanged and in order)\n{ev}",
                clients[i].summary()
            ));
        }
    }
}

/// Bytes that tell clients and offsets apart: a wrong byte names where it came from.
pub fn pattern(client: usize, len: usize, seed: u64) -> Vec<u8> {
    let mut x = (seed ^ (client as u64 + 1).wrapping_mul(0x9E37_79B9_7F4A_7C15)) | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

// ---------------------------------------------------------------------------------------------
// The checks
// ---------------------------------------------------------------------------------------------

/// How a scripted client ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum End {
    /// shutdown(Write), then read to end of file: must get back all it sent.
    HalfClose,
    /// close(2) with its echoes unread (the kernel resets the connection).
    Close,
    /// SO_LINGER 0, then close: a reset at once.
    Reset,
}

/// One scripted client: the chunks it sends and how it ends.
#[derive(Debug, Clone)]
pub struct ClientScript {
    pub chunks: Vec<usize>,
    pub end: End,
}

/// A whole script: the clients, all connected at once, and the order in which they act (each
/// entry is a client index; its n-th appearance is that client's n-th step: a chunk, then
/// its end).
#[derive(Debug, Clone)]
pub struct Script {
    pub clients: Vec<ClientScript>,
    pub order: Vec<usize>,
}

/// The strategy for [`scripts`]: 1 to `max_clients` clients, up to 6 chunks each of 1 byte to
/// 24 KiB, mostly half-closing.
pub fn script_strategy(max_clients: usize) -> impl Strategy<Value = Script> {
    let chunk = prop_oneof![4 => 1usize..200, 2 => 200usize..4096, 1 => 4096usize..24576];
    let end = prop_oneof![6 => Just(End::HalfClose), 1 => Just(End::Close), 1 => Just(End::Reset)];
    let client = (vec(chunk, 0..6), end).prop_map(|(chunks, end)| ClientScript { chunks, end });
    vec(client, 1..=max_clients).prop_flat_map(|clients| {
        let order: Vec<usize> = clients
            .iter()
            .enumerate()
            .flat_map(|(i, c)| std::iter::repeat_n(i, c.chunks.len() + 1))
            .collect();
        (Just(clients), Just(order).prop_shuffle())
            .prop_map(|(clients, order)| Script { clients, order })
    })
}

/// Runs one script against a running server; returns Err with evidence on failure (the server
/// is left running for the next case when it holds).
pub fn run_script(server: &mut Server, script: &Script, seed: u64) -> Result<(), TestCaseError> {
    let outcome = catch_unwind(AssertUnwindSafe(|| run_script_inner(server, script, seed)));
    outcome.map_err(|p| {
        let msg = p
            .downcast_ref::<String>()
            .cloned()
            .or_else(|| p.downcast_ref::<&str>().map(|s| (*s).to_owned()))
            .unwrap_or_default();
        TestCaseError::fail(msg)
    })
}

fn run_script_inner(server: &mut Server, script: &Script, seed: u64) {
    let n = script.clients.len();
    let mut clients: Vec<Client> = (0..n).map(|_| server.connect()).collect();
    let mut step = vec![0usize; n];
    for &i in &script.order {
        let cs = &script.clients[i];
        let k = step[i];
        step[i] += 1;
        if k < cs.chunks.len() {
            let data = pattern(i, cs.chunks[k], seed + k as u64);
            send_all(server, &mut clients, i, &data);
        } else {
            match cs.end {
                End::HalfClose => {
                    if let Err(e) = clients[i].half_close() {
                        let ev = server.evidence();
                        server.fail(format!(
                            "client {i} could not shut down its write side: {e}\n{ev}"
                        ));
                    }
                }
                End::Close => clients[i].close(false),
                End::Reset => clients[i].close(true),
            }
        }
        for c in clients.iter_mut() {
            c.drain();
        }
    }
    let halves: Vec<usize> = (0..n)
        .filter(|&i| script.clients[i].end == End::HalfClose)
        .collect();
    read_until(
        server,
        &mut clients,
        &halves,
        "all its bytes back and then end of file after it half-closed",
        echoed_then_eof,
    );
    check_echo(server, &clients, &halves);
    drop(clients);
    server.wait_clients_closed(0, "every client of the script was done");
}

/// `scripts`: `cases` proptest-generated scripts of up to `max_clients` clients each, against
/// one server that must survive them all; then one more client must be served.
pub fn scripts(server: impl FnOnce(TcpListener) -> io::Result<()>, cases: u32, max_clients: usize) {
    let mut s = Server::spawn(server);
    let config = proptest::test_runner::Config {
        cases,
        // A failure kills the server: later cases could only fail for that reason.
        max_shrink_iters: 0,
        failure_persistence: None,
        ..proptest::test_runner::Config::default()
    };
    let mut runner = proptest::test_runner::TestRunner::new_with_rng(
        config,
        proptest::test_runner::TestRng::deterministic_rng(
            proptest::test_runner::RngAlgorithm::ChaCha,
        ),
    );
    let cell = std::cell::RefCell::new(&mut s);
    let result = runner.run(&script_strategy(max_clients), |script| {
        let mut guard = cell.borrow_mut();
        run_script(&mut guard, &script, 7)
    });
    match result {
        Ok(()) => {}
        Err(proptest::test_runner::TestError::Fail(why, script)) => {
            panic!("{}\n(the failing script: {script:?})", why.message())
        }
        Err(e) => panic!("the property test gave up: {e}"),
    }
    round_trip(&mut s, b"still serving after the scripts");
    s.stop();
}

/// One client sends `msg`, half-closes, and must get it back then end of file.
pub fn round_trip(server: &mut Server, msg: &[u8]) {
    let mut c = vec![server.connect()];
    send_all(server, &mut c, 0, msg);
    let _ = c[0].half_close();
    read_until(server, &mut c, &[0], "its bytes back", echoed_then_eof);
    check_echo(server, &c, &[0]);
}

/// Each client in `which` sends `msg` and must get it back (more may follow on the same
/// connections later).
pub fn round_trips(server: &mut Server, clients: &mut [Client], which: &[usize], msg: &[u8]) {
    for &i in which {
        send_all(server, clients, i, msg);
    }
    read_until(server, clients, which, "its echo", echoed);
    check_echo(server, clients, which);
}

/// Every open client half-closes and must get the rest of its echo and end of file; then they
/// are dropped and the server must close their sockets.
pub fn echo_then_eof_all(server: &mut Server, clients: &mut Vec<Client>) {
    let open: Vec<usize> = (0..clients.len())
        .filter(|&i| clients[i].stream.is_some() && !clients[i].eof && clients[i].error.is_none())
        .collect();
    for &i in &open {
        if let Err(e) = clients[i].half_close() {
            let ev = server.evidence();
            server.fail(format!(
                "client {i} could not shut down its write side: {e}\n{ev}"
            ));
        }
    }
    read_until(
        server,
        clients,
        &open,
        "the rest of its echo and then end of file after it half-closed",
        echoed_then_eof,
    );
    check_echo(server, clients, &open);
    clients.clear();
    server.wait_clients_closed(0, "every client was done and closed");
}

/// `burst`: `n` clients connect at once (all before any is served), each sends a message and
/// half-closes; every one must get its message back. `n` must fit in the backlog
/// ([`BACKLOG`]) and, for select, below FD_SETSIZE.
pub fn burst(server: impl FnOnce(TcpListener) -> io::Result<()>, n: usize) {
    let mut s = Server::spawn(server);
    let mut clients: Vec<Client> = (0..n).map(|_| s.connect()).collect();
    for (i, c) in clients.iter_mut().enumerate() {
        let msg = format!("client {i} of the burst says hello\n");
        let _ = c.try_send(msg.as_bytes());
    }
    for i in 0..n {
        if clients[i].sent.len() < format!("client {i} of the burst says hello\n").len() {
            let rest = format!("client {i} of the burst says hello\n").into_bytes();
            let done = clients[i].sent.len();
            send_all(&mut s, &mut clients, i, &rest[done..]);
        }
        let _ = clients[i].half_close();
    }
    let all: Vec<usize> = (0..n).collect();
    read_until(
        &mut s,
        &mut clients,
        &all,
        &format!(
            "its message back (a burst of {n} connects, all queued before the server accepted any)"
        ),
        echoed_then_eof,
    );
    check_echo(&mut s, &clients, &all);
    drop(clients);
    s.wait_clients_closed(0, "the burst's clients were done");
    s.stop();
}

/// `big_slow`: a client sends 1 MiB while it reads its echo slowly (4 KiB at a time with
/// pauses); it must get back every byte, in order. A second, small client must be served
/// meanwhile.
pub fn big_slow(server: impl FnOnce(TcpListener) -> io::Result<()>) {
    const TOTAL: usize = 1 << 20;
    let mut s = Server::spawn(server);
    let mut clients = vec![s.connect(), s.connect()];
    let data = pattern(0, TOTAL, 99);
    let mut off = 0;
    let mut stalled = Instant::now();
    let mut buf = vec![0u8; 4096];
    let mut reads = 0u64;
    let mut small_done = false;
    loop {
        // Send what the socket takes now.
        if off < TOTAL {
            match clients[0].try_send(&data[off..(off + 65536).min(TOTAL)]) {
                Ok(n) => {
                    off += n;
                    if n > 0 {
                        stalled = Instant::now();
                    }
                }
                Err(e) => {
                    let ev = s.evidence();
                    s.fail(format!(
                        "the big client could not send: {e} ({})\n{ev}",
                        clients[0].summary()
                    ));
                }
            }
            if off == TOTAL {
                let _ = clients[0].half_close();
            }
        }
        // Read a little, slowly.
        let c = &mut clients[0];
        match c.stream.as_mut().unwrap().read(&mut buf) {
            Ok(0) => c.eof = true,
            Ok(n) => {
                c.got.extend_from_slice(&buf[..n]);
                stalled = Instant::now();
                reads += 1;
            }
            Err(e) if e.kind() == ErrorKind::WouldBlock => {}
            Err(e) => c.error = Some(e),
        }
        if c.eof || c.error.is_some() {
            break;
        }
        if c.got.len() > c.sent.len() || c.got[..] != c.sent[..c.got.len()] {
            break;
        }
        if !small_done && off > TOTAL / 4 {
            // Meanwhile a small client must be served.
            small_done = true;
            send_all(
                &mut s,
                &mut clients,
                1,
                b"a small client while a big one is slow",
            );
            let _ = clients[1].half_close();
            read_until(
                &mut s,
                &mut clients,
                &[1],
                "its short echo while a 1 MiB client read slowly",
                echoed_then_eof,
            );
            check_echo(&mut s, &clients, &[1]);
        }
        if stalled.elapsed() > scaled(SETTLE) {
            let ev = s.evidence();
            s.fail(format!(
                "nothing moved for {:?} between the server and a client sending 1 MiB and reading it back slowly: \
                 {} of {TOTAL} bytes sent ({})\n{ev}",
                stalled.elapsed(),
                off,
                clients[0].summary()
            ));
        }
        s.check_alive("echoing 1 MiB to a slow reader");
        if reads % 8 == 0 {
            thread::sleep(Duration::from_micros(500));
        }
        let st = clients[0].stream.as_ref().unwrap();
        let mut p = [PollFd::new(st.as_fd(), PollFlags::POLLIN)];
        let _ = poll(&mut p, PollTimeout::from(5u8));
    }
    let c = &clients[0];
    if !(c.eof && c.got == c.sent && off == TOTAL) {
        let ev = s.evidence();
        s.fail(format!(
            "a client sending 1 MiB and reading slowly did not get back exactly what it sent: {} (when write(2) \
             takes only part of a buffer, the server must keep the rest and send it once the socket is writable \
             again; it must never drop it)\n{ev}",
            c.summary()
        ));
    }
    drop(clients);
    s.wait_clients_closed(0, "the 1 MiB client was done");
    s.stop();
}

/// `fairness`: while one client floods the server (sending and reading back as fast as it
/// can, in a thread), `others` clients each make `rounds` round trips; each round trip must
/// finish within `bound` (before `scaled`). Reports the latencies measured.
pub fn fairness(
    server: impl FnOnce(TcpListener) -> io::Result<()>,
    others: usize,
    rounds: usize,
    bound: Duration,
) {
    let mut s = Server::spawn(server);
    let flood = Client::connect(s.addr()).expect("the flooding client connects");
    let mut stream = flood.stream.unwrap();
    stream.set_nonblocking(false).unwrap();
    let mut reader = stream.try_clone().unwrap();
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let stop_w = stop.clone();
    let writer = thread::spawn(move || {
        let chunk = vec![0x5au8; 65536];
        let mut sent = 0u64;
        stream
            .set_write_timeout(Some(Duration::from_millis(200)))
            .unwrap();
        while !stop_w.load(std::sync::atomic::Ordering::Relaxed) {
            match stream.write(&chunk) {
                Ok(n) => sent += n as u64,
                Err(e)
                    if matches!(
                        e.kind(),
                        ErrorKind::WouldBlock | ErrorKind::TimedOut | ErrorKind::Interrupted
                    ) => {}
                Err(_) => break,
            }
        }
        let _ = stream.shutdown(Shutdown::Write);
        sent
    });
    let reader = thread::spawn(move || {
        let mut buf = vec![0u8; 65536];
        let mut got = 0u64;
        let mut wrong = 0u64;
        reader.set_read_timeout(Some(scaled(SETTLE))).unwrap();
        loop {
            match reader.read(&mut buf) {
                Ok(0) => return Ok((got, wrong)),
                Ok(n) => {
                    got += n as u64;
                    wrong += buf[..n].iter().filter(|&&b| b != 0x5a).count() as u64;
                }
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(e) => return Err((got, e)),
            }
        }
    });
    // Let the flood get going: the server must have moved a few MiB of it... measured from
    // the flood's own counter would need shared state; the first round trip simply starts
    // after the server has begun to echo (its socket count shows the flooder).
    let t0 = Instant::now();
    while s.client_sockets() < 1 && t0.elapsed() < scaled(SETTLE) {
        thread::sleep(Duration::from_millis(1));
    }
    thread::sleep(Duration::from_millis(50));
    let mut clients: Vec<Client> = (0..others).map(|_| s.connect()).collect();
    let mut worst = Duration::ZERO;
    let mut lat = Vec::new();
    for r in 0..rounds {
        for i in 0..others {
            let msg = format!("round {r} of client {i}\n");
            let start = Instant::now();
            let want = clients[i].sent.len() + msg.len();
            send_all(&mut s, &mut clients, i, msg.as_bytes());
            let limit = scaled(bound);
            loop {
                clients[i].drain();
                if clients[i].got.len() >= want || clients[i].eof || clients[i].error.is_some() {
                    break;
                }
                if start.elapsed() > limit {
                    stop.store(true, std::sync::atomic::Ordering::Relaxed);
                    let ev = s.evidence();
                    s.fail(format!(
                        "while one client flooded the server, another client's round trip (round {r}, client {i}) \
                         took more than {limit:?} and was still waiting ({}): one busy client must not starve the \
                         others; serve each ready client a bounded amount per turn (one read of a buffer, not \
                         `read until it would block`) and go back to the multiplexer. Latencies so far: {lat:?}\n{ev}",
                        clients[i].summary()
                    ));
                }
                s.check_alive("flooded");
                wait_readable(&[&clients[i]], Duration::from_millis(10));
            }
            let took = start.elapsed();
            worst = worst.max(took);
            lat.push(took);
        }
    }
    check_echo(&mut s, &clients, &(0..others).collect::<Vec<_>>());
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let sent = writer.join().unwrap();
    let got = reader.join().unwrap();
    match got {
        Ok((got, 0)) if got == sent => {}
        Ok((got, wrong)) => {
            let ev = s.evidence();
            s.fail(format!(
                "the flooding client sent {sent} bytes and got back {got} ({wrong} of them wrong) before end of file\n{ev}"
            ));
        }
        Err((got, e)) => {
            let ev = s.evidence();
            s.fail(format!(
                "the flooding client sent {sent} bytes, got back {got}, then its read failed: {e} (after it \
                 half-closed, the server must send back the rest and close)\n{ev}"
            ));
        }
    }
    eprintln!(
        "fairness: {} round trips beside a flood; worst {worst:?}, median {:?}",
        lat.len(),
        {
            let mut l = lat.clone();
            l.sort();
            l[l.len() / 2]
        }
    );
    drop(clients);
    s.wait_clients_closed(0, "the flood and the other clients were done");
    s.stop();
}

/// `idle_cpu`: with a few idle clients connected (each after one round trip), one that
/// half-closed and one that reset, the server must sleep: over an idle window of one second
/// (stretched by `scaled`) its utime + stime may grow by at most 5% of the window.
pub fn idle_cpu(server: impl FnOnce(TcpListener) -> io::Result<()>) {
    let mut s = Server::spawn(server);
    let mut clients: Vec<Client> = (0..5).map(|_| s.connect()).collect();
    for i in 0..5 {
        send_all(
            &mut s,
            &mut clients,
            i,
            format!("idle client {i}\n").as_bytes(),
        );
    }
    read_until(
        &mut s,
        &mut clients,
        &[0, 1, 2, 3, 4],
        "its first echo",
        echoed,
    );
    let _ = clients[3].half_close();
    read_until(
        &mut s,
        &mut clients,
        &[3],
        "end of file after it half-closed",
        echoed_then_eof,
    );
    clients[3].close(false);
    clients[4].close(true);
    s.wait_clients_closed(
        3,
        "one client half-closed (and was answered) and another reset",
    );
    // Wait until the server sleeps, then measure.
    let start = Instant::now();
    while procfs::state(s.pid()) != Some('S') && start.elapsed() < scaled(SETTLE) {
        thread::sleep(Duration::from_millis(5));
    }
    let window = scaled(Duration::from_secs(1));
    let before = s.cpu_time();
    let t = Instant::now();
    thread::sleep(window);
    let used = s.cpu_time().saturating_sub(before);
    let elapsed = t.elapsed();
    let allowed = elapsed / 20;
    eprintln!("idle_cpu: the idle server used {used:?} of CPU in {elapsed:?}");
    if used > allowed {
        let ev = s.evidence();
        s.fail(format!(
            "an idle server used {used:?} of CPU (utime + stime in /proc/{}/stat) in {elapsed:?} of idling, more than \
             the {allowed:?} allowed: it is busy looping. With nothing to do, the multiplexer must block (a timeout \
             of None or a long one, never zero); and a client that hung up or reset must be closed and removed \
             from the set, or the call reports it ready at once, forever\n{ev}",
            s.pid()
        ));
    }
    // They are still served.
    for i in 0..3 {
        send_all(&mut s, &mut clients, i, b"back from idling\n");
    }
    read_until(
        &mut s,
        &mut clients,
        &[0, 1, 2],
        "its echo after the idle second",
        echoed,
    );
    check_echo(&mut s, &clients, &[0, 1, 2]);
    drop(clients);
    s.wait_clients_closed(0, "the idle clients closed");
    s.stop();
}

/// Raises this process's soft `RLIMIT_NOFILE` to at least `want` (within the hard limit);
/// returns false (with a note on stderr) if the hard limit is too low.
pub fn raise_nofile(want: u64) -> bool {
    let (soft, hard) = getrlimit(Resource::RLIMIT_NOFILE).expect("getrlimit(RLIMIT_NOFILE)");
    if soft >= want {
        return true;
    }
    if hard < want {
        eprintln!(
            "note: skipped: this check needs {want} descriptors, and RLIMIT_NOFILE's hard limit is {hard} (only root \
             may raise it)"
        );
        return false;
    }
    setrlimit(Resource::RLIMIT_NOFILE, want, hard)
        .expect("setrlimit(RLIMIT_NOFILE) within the hard limit");
    true
}

/// `many_clients`: `n` clients (more than 1024) connected at the same time, each sends a
/// message and half-closes only once all are connected; every one must get its message back.
/// Raises `RLIMIT_NOFILE` for the test and (inherited through fork) the server first; skips
/// with a note when the hard limit is too low.
pub fn many_clients(server: impl FnOnce(TcpListener) -> io::Result<()>, n: usize) {
    if !raise_nofile(n as u64 + 256) {
        return;
    }
    let mut s = Server::spawn(server);
    let mut clients = Vec::with_capacity(n);
    for i in 0..n {
        clients.push(s.connect());
        let msg = format!("client {i} of {n}\n");
        let _ = clients[i].try_send(msg.as_bytes());
    }
    // All connected at once: wait until the server holds them all.
    let start = Instant::now();
    loop {
        let held = s.client_sockets();
        if held >= n {
            break;
        }
        if start.elapsed() > scaled(SETTLE) {
            let ev = s.evidence();
            s.fail(format!(
                "with {n} clients connected at once, the server holds only {held} client sockets after {:?} (a \
                 server that cannot watch more than 1024 descriptors, or stops accepting, fails here)\n{ev}",
                start.elapsed()
            ));
        }
        s.check_alive(&format!("connecting {n} clients"));
        for c in clients.iter_mut() {
            c.drain();
        }
        thread::sleep(Duration::from_millis(5));
    }
    for i in 0..n {
        let msg = format!("client {i} of {n}\n").into_bytes();
        let done = clients[i].sent.len();
        if done < msg.len() {
            send_all(&mut s, &mut clients, i, &msg[done..]);
        }
        let _ = clients[i].half_close();
    }
    let all: Vec<usize> = (0..n).collect();
    read_until(
        &mut s,
        &mut clients,
        &all,
        &format!("its message back ({n} clients connected at once)"),
        echoed_then_eof,
    );
    check_echo(&mut s, &clients, &all);
    drop(clients);
    s.wait_clients_closed(0, "all the clients were done");
    s.stop();
}

/// Makes `fd` the lowest free descriptor number's filler: the child's setup for tests that
/// need the server's next accepted socket at a given number. Opens `/dev/null` until the next
/// free fd is `next`; the fds stay open (they are the child's, ended with it).
pub fn occupy_fds_below(next: RawFd) {
    loop {
        let fd = nix::fcntl::open(
            "/dev/null",
            nix::fcntl::OFlag::O_RDONLY,
            nix::sys::stat::Mode::empty(),
        )
        .expect("open /dev/null to occupy a descriptor");
        let raw = fd.as_raw_fd();
        std::mem::forget(fd);
        if raw >= next - 1 {
            return;
        }
    }
}
