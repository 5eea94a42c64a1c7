//! io_models/epoll_server: level-triggered and edge-triggered echo servers on epoll (I/O 多路复用).
//!
//! What the tests observe, never what the code under test claims: every test runs `serve` in a
//! child process it forks (its soft `RLIMIT_NOFILE` lowered to 1024, `SIGPIPE` back to its
//! default action, no fd but the listener and stdio) and stops with `SIGKILL`, and drives it
//! with real TCP clients on 127.0.0.1. The evidence is the bytes the clients get back, the
//! server's CPU time (`/proc/<pid>/stat`), what it sleeps in (`/proc/<pid>/syscall`), its fd
//! table (`/proc/<pid>/fd`), the sockets' queues (`/proc/net/tcp`: the listening socket's accept
//! queue, each connection's unread bytes) and its exit status. A server that stalls is reported
//! as soon as the kernel shows it asleep in `epoll_wait` while work is waiting for it.
//!
//! The contract, clause by clause, and the test that checks each (each test in both modes,
//! `Trigger::Level` and `Trigger::Edge`):
//! - every client gets back exactly what it sent, in order, and after a half-close the rest and
//!   then end of file (every test; `clients_in_parallel_each_get_their_own_bytes`);
//! - every pending connection is accepted: a burst of hundreds of connects queued before the
//!   server's first `epoll_wait` (`a_burst_of_connects_is_fully_accepted`);
//! - everything a client sent is read, however much was queued at one event
//!   (`big_messages_queued_before_the_first_event_are_read_in_full`);
//! - unsent bytes wait in the connection's buffer for `EPOLLOUT`, none is dropped, and while
//!   they wait other clients are served (`a_slow_reader_gets_a_mebibyte_and_others_are_served`);
//! - an idle server sleeps: with open idle connections and after clients came and went, it uses
//!   (almost) no CPU over an idle second (`an_idle_server_uses_almost_no_cpu`);
//! - a connection whose client closed (end of file or reset) is closed by the server, and a
//!   reset client does not end the service (`closed_connections_leave_no_fd_behind`);
//! - with the shared driver (`support/echo_clients.rs`): proptest-generated client scripts,
//!   many clients at once with random chunk sizes, interleaved sends, half-closes and resets,
//!   each getting back exactly what it sent (`driver_scripts`); a flooding client does not
//!   starve the others (`driver_fairness`); 1 MiB to a client that reads slowly while it still
//!   sends (`driver_big_slow`); an idle server with idle, half-closed and reset clients sleeps
//!   (`driver_idle_cpu`);
//! - more than 1024 clients at once: the server raises its fd limit
//!   (`more_than_1024_clients_are_served`), and `raise_fd_limit` sets the soft limit to the hard
//!   one (`raise_fd_limit_reaches_the_hard_limit`).

// The exercise under test: your stub (by default), the reference solution (`--features
// solutions`), or a shipped mistake that `cargo grade --mistakes` copies into target/.
#[cfg(not(any(feature = "solutions", feature = "mistake")))]
#[path = "../../exercises/io_models/epoll_server.rs"]
#[allow(dead_code)] // a stub does not use all of its API yet
mod epoll_server;
#[cfg(all(feature = "solutions", not(feature = "mistake")))]
#[path = "../../solutions/io_models/epoll_server.rs"]
mod epoll_server;
#[cfg(feature = "mistake")]
#[path = "../../target/oskata-mistake/io_models/epoll_server.rs"]
#[rustfmt::skip] // the copy exists only while the proof runs
mod epoll_server;
use epoll_server::*;

// The shared client driver of the io_models echo servers (scripts, fairness, big_slow,
// idle_cpu): see its header for the server contract it checks.
#[path = "support/echo_clients.rs"]
mod echo_clients;

use std::fs;
use std::io;
use std::io::{ErrorKind, Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::os::fd::{AsRawFd, OwnedFd};
use std::thread;
use std::time::{Duration, Instant};

use nix::sys::resource::{Resource, getrlimit, setrlimit};
use nix::sys::signal::{SigHandler, Signal, kill, signal};
use nix::sys::socket::{
    AddressFamily, Backlog, SockFlag, SockType, listen, setsockopt, socket, sockopt,
};
use nix::sys::wait::{WaitPidFlag, WaitStatus, waitpid};
use nix::unistd::{ForkResult, Pid, fork, getpid, pipe};
use oskata_harness::{Isolation, procfs, scaled, student};
use rstest::rstest;

/// How long correct clients may take to get their echoes (before `scaled`): a correct server
/// needs milliseconds; a stalled one is named by evidence well before this.
const SETTLE: Duration = Duration::from_secs(8);
/// How long the kernel must keep showing the server asleep with work waiting before the test
/// calls it a stall (before `scaled`). A correct server is woken within microseconds.
const STALL: Duration = Duration::from_millis(400);

/// The two modes, for messages.
fn mode(t: Trigger) -> &'static str {
    match t {
        Trigger::Level => "level-triggered",
        Trigger::Edge => "edge-triggered (EPOLLET)",
    }
}

/// A listening TCP socket on 127.0.0.1, port 0 (the kernel picks one), with a backlog big enough
/// for the bursts here. Returns it and its port.
fn listener() -> (TcpListener, u16) {
    let l = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
    // listen(2) again on a listening socket sets its backlog (capped by somaxconn).
    listen(&l, Backlog::new(1024).expect("backlog")).expect("listen");
    let port = l.local_addr().expect("local_addr").port();
    (l, port)
}

/// The server under test, in a child process: killed and reaped when dropped.
struct Server {
    pid: Pid,
    port: u16,
    trigger: Trigger,
    /// What `serve` returned, written by the child before it exits.
    errors: OwnedFd,
    reaped: bool,
}

impl Server {
    /// Forks a child that serves `listener` in `trigger` mode; the test keeps no copy of the
    /// listener.
    fn start(listener: TcpListener, port: u16, trigger: Trigger) -> Server {
        let (err_r, err_w) = pipe().expect("pipe");
        let keep = [listener.as_raw_fd(), err_w.as_raw_fd()];
        // SAFETY: the child only closes fds, sets a limit and a signal disposition, and runs the
        // server; it leaves with _exit.
        match unsafe { fork() }.expect("fork") {
            ForkResult::Child => {
                close_all_but(&keep);
                let _ = signal_default_pipe();
                if let Ok((_, hard)) = getrlimit(Resource::RLIMIT_NOFILE) {
                    let _ = setrlimit(Resource::RLIMIT_NOFILE, 1024.min(hard), hard);
                }
                let outcome = std::panic::catch_unwind(move || serve(listener, trigger));
                let text = match outcome {
                    Ok(Err(e)) => format!("serve returned Err({e:?}): {}", e.desc()),
                    Ok(Ok(never)) => match never {},
                    // A stub's todo!() is passed on as it is, so the test reports "not started".
                    Err(p) => p
                        .downcast_ref::<String>()
                        .cloned()
                        .or_else(|| p.downcast_ref::<&str>().map(|s| (*s).to_owned()))
                        .map_or_else(
                            || "serve panicked".to_owned(),
                            |m| format!("serve panicked: {m}"),
                        ),
                };
                let _ = nix::unistd::write(&err_w, text.as_bytes());
                // SAFETY: ends the forked copy without running the test's code or destructors.
                unsafe { libc::_exit(1) }
            }
            ForkResult::Parent { child } => {
                drop(listener);
                drop(err_w);
                Server {
                    pid: child,
                    port,
                    trigger,
                    errors: err_r,
                    reaped: false,
                }
            }
        }
    }

    /// A client connected to the server (blocking, reads time out after a moment).
    fn connect(&mut self) -> TcpStream {
        match TcpStream::connect(("127.0.0.1", self.port)) {
            Ok(s) => {
                s.set_read_timeout(Some(Duration::from_millis(20)))
                    .expect("SO_RCVTIMEO");
                s
            }
            Err(e) => {
                self.check_exited("a client connects");
                panic!(
                    "a client could not connect to the server: {e}\n{}",
                    self.describe()
                )
            }
        }
    }

    /// Fails with the server's exit status and what `serve` said, if it is no longer running.
    fn check_alive(&mut self, doing: &str) {
        if self.reaped {
            return;
        }
        match waitpid(self.pid, Some(WaitPidFlag::WNOHANG)) {
            Ok(WaitStatus::StillAlive) | Err(nix::errno::Errno::EINTR) => {}
            Ok(status) => {
                self.reaped = true;
                let mut said = vec![0u8; 4096];
                let n = nix::unistd::read(&self.errors, &mut said).unwrap_or(0);
                let said = String::from_utf8_lossy(&said[..n]).into_owned();
                if let Some(todo) = said.strip_prefix("serve panicked: ")
                    && todo.starts_with("not yet implemented")
                {
                    panic!("{todo}");
                }
                let how = match status {
                    WaitStatus::Signaled(_, Signal::SIGPIPE, _) => {
                        "killed by SIGPIPE: it wrote to a connection its client had reset. A write to a \
                         socket whose peer is gone raises SIGPIPE, whose default action ends the process: \
                         send with MSG_NOSIGNAL (or ignore SIGPIPE) and treat EPIPE as that one connection \
                         being over"
                            .to_owned()
                    }
                    WaitStatus::Signaled(_, sig, _) => format!("killed by {sig}"),
                    WaitStatus::Exited(_, code) => format!("exited with status {code}"),
                    other => format!("{other:?}"),
                };
                let hint = if said.contains("EMFILE") {
                    " accept4 failed with EMFILE: the process reached its soft RLIMIT_NOFILE (1024 here). \
                     serve must first raise the soft limit to the hard limit (raise_fd_limit) to serve more \
                     than about 1020 clients."
                } else {
                    ""
                };
                panic!(
                    "the {} server (pid {}) stopped while {doing}: {how}. {said}.{hint} serve must run until \
                     it is killed.",
                    mode(self.trigger),
                    self.pid
                );
            }
            Err(e) => panic!("waitpid({}) failed: {e}", self.pid),
        }
    }

    /// After a client saw its connection end early: the server may be exiting (closing its
    /// fds on the way): waits a moment for that, and fails with its exit if so.
    fn check_exited(&mut self, doing: &str) {
        let start = Instant::now();
        while start.elapsed() < scaled(Duration::from_millis(500)) {
            self.check_alive(doing);
            if procfs::state(self.pid).is_some_and(|s| s == 'S') {
                return;
            }
            thread::sleep(Duration::from_millis(10));
        }
    }

    /// The server's CPU time (user + system), in clock ticks.
    fn cpu_ticks(&self) -> u64 {
        let text = fs::read_to_string(format!("/proc/{}/stat", self.pid)).unwrap_or_default();
        let rest = text.rsplit_once(") ").map_or("", |(_, r)| r);
        let f: Vec<&str> = rest.split_whitespace().collect();
        let get = |i: usize| f.get(i).and_then(|v| v.parse::<u64>().ok()).unwrap_or(0);
        get(11) + get(12)
    }

    /// Whether the server sleeps in epoll_wait (or epoll_pwait/epoll_pwait2), and with what
    /// timeout argument.
    fn in_epoll_wait(&self) -> Option<i64> {
        let call = procfs::syscall(self.pid)?;
        let waits = [libc::SYS_epoll_wait, libc::SYS_epoll_pwait, 441];
        (waits.contains(&call.nr) && procfs::state(self.pid) == Some('S'))
            .then_some(call.args[3] as i32 as i64)
    }

    /// The sockets on the server's side of its port in /proc/net/tcp.
    fn sockets(&self) -> Vec<TcpLine> {
        tcp_lines()
            .into_iter()
            .filter(|l| l.local_port == self.port)
            .collect()
    }

    /// The server's open sockets, from its fd table.
    fn socket_fds(&self) -> Vec<procfs::Fd> {
        procfs::fds(self.pid)
            .unwrap_or_default()
            .into_iter()
            .filter(|f| f.target.starts_with("socket:"))
            .collect()
    }

    /// What the server is doing, in words, for a message.
    fn describe(&self) -> String {
        let call = procfs::syscall(self.pid);
        let state = procfs::state(self.pid);
        let listen = self.sockets().into_iter().find(|l| l.st == 0x0A);
        let conns: Vec<TcpLine> = self
            .sockets()
            .into_iter()
            .filter(|l| l.st != 0x0A)
            .collect();
        let unread: usize = conns.iter().map(|l| l.rx_queue).sum();
        format!(
            "The server (pid {}) is in state {state:?}, system call {:?}; it holds {} sockets; the listening \
             socket has {} connections waiting to be accepted; its {} connections on port {} hold {unread} unread \
             bytes in their receive queues.",
            self.pid,
            call.map(|c| c.nr),
            self.socket_fds().len(),
            listen.map_or(0, |l| l.rx_queue),
            conns.len(),
            self.port
        )
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if !self.reaped {
            let _ = kill(self.pid, Signal::SIGKILL);
            let _ = waitpid(self.pid, None);
        }
    }
}

/// In the forked server: close every fd but stdio and `keep` (the test's client sockets must not
/// stay open in the server, or closing them would not reach it).
fn close_all_but(keep: &[i32]) {
    let fds: Vec<i32> = fs::read_dir("/proc/self/fd")
        .map(|d| {
            d.filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok())
                .collect()
        })
        .unwrap_or_default();
    for fd in fds {
        if fd > 2 && !keep.contains(&fd) {
            // SAFETY: closes an fd of this forked copy that the server has no use for.
            unsafe { libc::close(fd) };
        }
    }
}

/// In the forked server: SIGPIPE back to its default action, as in any fresh program (the Rust
/// runtime of the test binary ignores it).
fn signal_default_pipe() -> nix::Result<SigHandler> {
    // SAFETY: SIG_DFL installs no handler.
    unsafe { signal(Signal::SIGPIPE, SigHandler::SigDfl) }
}

/// A client of the server on `port`.
fn connect(port: u16) -> TcpStream {
    let s = TcpStream::connect(("127.0.0.1", port)).expect("connect to the server");
    s.set_read_timeout(Some(Duration::from_millis(20)))
        .expect("SO_RCVTIMEO");
    s
}

/// One line of /proc/net/tcp.
#[derive(Clone, Debug)]
struct TcpLine {
    local_port: u16,
    remote_port: u16,
    st: u8,
    tx_queue: usize,
    rx_queue: usize,
}

/// The IPv4 TCP sockets the kernel knows, from /proc/net/tcp. For a listening socket (st 0A)
/// rx_queue is the number of connections waiting to be accepted.
fn tcp_lines() -> Vec<TcpLine> {
    let text = fs::read_to_string("/proc/net/tcp").unwrap_or_default();
    let port = |a: &str| {
        a.rsplit_once(':')
            .and_then(|(_, p)| u16::from_str_radix(p, 16).ok())
    };
    text.lines()
        .skip(1)
        .filter_map(|line| {
            let f: Vec<&str> = line.split_whitespace().collect();
            let (tx, rx) = f.get(4)?.split_once(':')?;
            Some(TcpLine {
                local_port: port(f.get(1)?)?,
                remote_port: port(f.get(2)?)?,
                st: u8::from_str_radix(f.get(3)?, 16).ok()?,
                tx_queue: usize::from_str_radix(tx, 16).ok()?,
                rx_queue: usize::from_str_radix(rx, 16).ok()?,
            })
        })
        .collect()
}

/// Watches the server while clients wait: fails at once when it has stopped, and when the kernel
/// shows it asleep in epoll_wait for a while with work waiting for it.
struct Watch {
    since: Option<Instant>,
}

impl Watch {
    fn new() -> Watch {
        Watch { since: None }
    }

    fn check(&mut self, server: &mut Server, doing: &str) {
        server.check_alive(doing);
        let stalled = server.in_epoll_wait().and_then(|_| {
            let socks = server.sockets();
            let queued = socks
                .iter()
                .find(|l| l.st == 0x0A)
                .map_or(0, |l| l.rx_queue);
            if queued > 0 {
                return Some(format!(
                    "the listening socket still has {queued} connections waiting in the listening socket's accept \
                     queue (/proc/net/tcp), while the server sleeps in epoll_wait. {}",
                    if server.trigger == Trigger::Edge {
                        "An edge-triggered listener is reported once when connections arrive, however many \
                         arrived: after that event, call accept4 until it fails with EAGAIN, or the rest are \
                         never accepted (lost connections)."
                    } else {
                        "A level-triggered listener with connections waiting is reported again at once: the \
                         server should not be asleep."
                    }
                ));
            }
            let unread: Vec<&TcpLine> = socks
                .iter()
                .filter(|l| l.st == 0x01 && l.rx_queue > 0)
                .collect();
            if let Some(l) = unread.first() {
                return Some(format!(
                    "{} connections have unread bytes in its receive queue (the one from client port {} holds \
                     {} bytes, /proc/net/tcp), while the server sleeps in epoll_wait. {}",
                    unread.len(),
                    l.remote_port,
                    l.rx_queue,
                    if server.trigger == Trigger::Edge {
                        "An edge-triggered socket is reported once when data arrives: read until recv fails \
                         with EAGAIN, or what is left is never reported again and that client stalls."
                    } else {
                        "A level-triggered socket with data is reported again at once: is it still in the \
                         interest list with EPOLLIN?"
                    }
                ));
            }
            None
        });
        match (stalled, self.since) {
            (None, _) => self.since = None,
            (Some(_), None) => self.since = Some(Instant::now()),
            (Some(why), Some(t)) if t.elapsed() > scaled(STALL) => panic!(
                "the {} server stalls while {doing}: {why}\n{}",
                mode(server.trigger),
                server.describe()
            ),
            (Some(_), Some(_)) => {}
        }
    }
}

/// Reads from every client until each has got back `expected[i]` (and, with `eof`, end of
/// file after it), watching the server meanwhile. Fails on a byte that differs, an early end of
/// file, a reset, or a stall.
fn collect(
    server: &mut Server,
    clients: &mut [TcpStream],
    expected: &[Vec<u8>],
    eof: bool,
    doing: &str,
) {
    for c in clients.iter() {
        c.set_nonblocking(true).expect("O_NONBLOCK on a client");
    }
    let mut got: Vec<Vec<u8>> = vec![Vec::new(); clients.len()];
    let mut done = vec![false; clients.len()];
    let mut watch = Watch::new();
    let mut unclosed_since: Option<Instant> = None;
    let limit = scaled(SETTLE);
    let start = Instant::now();
    let mut buf = vec![0u8; 64 * 1024];
    while done.iter().any(|d| !d) {
        let mut progress = false;
        for (i, c) in clients.iter_mut().enumerate() {
            if done[i] {
                continue;
            }
            loop {
                match c.read(&mut buf) {
                    Ok(0) => {
                        if got[i].len() < expected[i].len() {
                            server.check_exited(doing);
                            panic!(
                                "client {i} of {} got end of file after {} of the {} bytes it sent, while {doing}: \
                                 the {} server closed the connection with bytes still owed. Bytes that send(2) did \
                                 not take (a partial write, or EAGAIN) must stay in the connection's buffer, wait \
                                 for EPOLLOUT and be sent; the connection is closed only once they are all sent.",
                                clients_len(&got),
                                got[i].len(),
                                expected[i].len(),
                                mode(server.trigger)
                            );
                        }
                        done[i] = true;
                        progress = true;
                        break;
                    }
                    Ok(n) => {
                        let at = got[i].len();
                        got[i].extend_from_slice(&buf[..n]);
                        progress = true;
                        check_prefix(server, i, &got[i], &expected[i], at, doing);
                        if !eof && got[i].len() == expected[i].len() {
                            done[i] = true;
                            break;
                        }
                    }
                    Err(e) if e.kind() == ErrorKind::WouldBlock => break,
                    Err(e) if e.kind() == ErrorKind::Interrupted => {}
                    Err(e) => {
                        server.check_exited(doing);
                        panic!(
                            "client {i} failed reading its echo ({e}) after {} of {} bytes, while {doing}: the {} \
                         server reset the connection.\n{}",
                            got[i].len(),
                            expected[i].len(),
                            mode(server.trigger),
                            server.describe()
                        )
                    }
                }
            }
        }
        if !progress {
            watch.check(server, doing);
            let owed = (0..clients.len()).any(|i| !done[i] && got[i].len() < expected[i].len());
            if eof && !owed && server.in_epoll_wait().is_some() {
                let t = *unclosed_since.get_or_insert_with(Instant::now);
                if t.elapsed() > scaled(STALL) * 2 {
                    panic!(
                        "{} clients had all their bytes back but never saw end of file, although each had \
                         half-closed, while {doing}; the {} server sleeps in epoll_wait: it never closed their \
                         connections. When recv returns 0 (end of file) and the echo is all sent, that connection \
                         is over: delete it from epoll and close its fd.\n{}",
                        done.iter().filter(|d| !**d).count(),
                        mode(server.trigger),
                        server.describe()
                    );
                }
            } else {
                unclosed_since = None;
            }
            if start.elapsed() > limit {
                server.check_alive(doing);
                let unclosed: Vec<usize> = (0..clients.len())
                    .filter(|&i| !done[i] && got[i].len() == expected[i].len())
                    .collect();
                if eof && unclosed.len() == done.iter().filter(|d| !**d).count() {
                    panic!(
                        "after {limit:?}, while {doing}, {} clients had all their bytes back but never saw end of file, \
                         although each had half-closed: the {} server never closed their connections. When recv \
                         returns 0 (end of file) and the echo is all sent, that connection is over: delete it from \
                         epoll and close its fd.\n{}",
                        unclosed.len(),
                        mode(server.trigger),
                        server.describe()
                    );
                }
                let waiting: Vec<String> = (0..clients.len())
                    .filter(|&i| !done[i])
                    .take(5)
                    .map(|i| {
                        format!(
                            "client {i} got {} of {} bytes",
                            got[i].len(),
                            expected[i].len()
                        )
                    })
                    .collect();
                panic!(
                    "after {limit:?}, while {doing}, {} of {} clients still waited ({}{}) on the {} server.\n{}",
                    done.iter().filter(|d| !**d).count(),
                    clients.len(),
                    waiting.join(", "),
                    if eof {
                        ", or for end of file after their echo"
                    } else {
                        ""
                    },
                    mode(server.trigger),
                    server.describe()
                );
            }
            thread::sleep(Duration::from_millis(1));
        }
    }
    for c in clients.iter() {
        c.set_nonblocking(false).expect("blocking again");
    }
}

fn clients_len(got: &[Vec<u8>]) -> usize {
    got.len()
}

/// Fails if client `i`'s bytes so far are not the start of what it sent.
fn check_prefix(server: &Server, i: usize, got: &[u8], expected: &[u8], from: usize, doing: &str) {
    if got.len() > expected.len() {
        panic!(
            "client {i} got {} bytes back but sent only {}, while {doing}: the {} server sent some bytes twice, or \
             another client's bytes",
            got.len(),
            expected.len(),
            mode(server.trigger)
        );
    }
    if let Some(k) = (from..got.len()).find(|&k| got[k] != expected[k]) {
        panic!(
            "client {i} got back bytes that differ from what it sent, from byte {k} on (of {}), while {doing}: an \
             echo server returns each client's own bytes, in order. When send(2) takes only part of a buffer, the \
             rest must be sent next, before any later bytes; nothing may be dropped or repeated.",
            expected.len()
        );
    }
}

/// A payload that tells positions apart: byte k of client `seed` is not byte k of another.
fn payload(seed: usize, len: usize) -> Vec<u8> {
    (0..len)
        .map(|k| ((k as u64 * 31 + seed as u64 * 7 + k as u64 / 251) % 251) as u8)
        .collect()
}

/// Writes all of `data` to a client, watching the server while the socket is full.
fn send_all(server: &mut Server, c: &mut TcpStream, data: &[u8], doing: &str) {
    c.set_nonblocking(true).expect("O_NONBLOCK");
    let mut off = 0;
    let mut watch = Watch::new();
    let start = Instant::now();
    while off < data.len() {
        match c.write(&data[off..]) {
            Ok(n) => off += n,
            Err(e) if e.kind() == ErrorKind::WouldBlock => {
                watch.check(server, doing);
                if start.elapsed() > scaled(SETTLE) {
                    panic!(
                        "after {:?} a client could still not send its bytes ({off} of {} sent), while {doing}: the \
                         server does not read from it.\n{}",
                        scaled(SETTLE),
                        data.len(),
                        server.describe()
                    );
                }
                thread::sleep(Duration::from_millis(1));
            }
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(e) => {
                server.check_exited(doing);
                panic!("a client's send failed ({e}) while {doing}")
            }
        }
    }
    c.set_nonblocking(false).expect("blocking again");
}

/// Waits until the server shows the kernel it is idle: asleep in epoll_wait.
fn await_asleep(server: &mut Server, doing: &str) {
    let start = Instant::now();
    while server.in_epoll_wait().is_none() {
        server.check_alive(doing);
        if start.elapsed() > scaled(SETTLE) {
            panic!(
                "after {:?} the {} server was not asleep in epoll_wait, while {doing}.\n{}",
                scaled(SETTLE),
                mode(server.trigger),
                server.describe()
            );
        }
        thread::sleep(Duration::from_millis(2));
    }
}

/// Clients connect and send one message each, then half-close, all at once; each must get its
/// own bytes back, then end of file.
#[rstest]
fn clients_in_parallel_each_get_their_own_bytes(
    #[values(Trigger::Level, Trigger::Edge)] trigger: Trigger,
) {
    Isolation::new().deadline(Duration::from_secs(20)).run(|| {
        let (l, port) = listener();
        let mut server = student(|| Server::start(l, port, trigger));
        let mut clients: Vec<TcpStream> = (0..40).map(|_| server.connect()).collect();
        let sent: Vec<Vec<u8>> = (0..clients.len())
            .map(|i| payload(i, 1 + (i * 3917) % 30_000))
            .collect();
        for (i, c) in clients.iter_mut().enumerate() {
            send_all(&mut server, c, &sent[i], "clients send their messages");
            c.shutdown(Shutdown::Write).expect("half-close");
        }
        collect(
            &mut server,
            &mut clients,
            &sent,
            true,
            "40 clients wait for their echoes",
        );
    });
}

/// Hundreds of clients connect and send before the server starts: all of them are in the
/// listening socket's accept queue at its first epoll_wait, so an edge-triggered listener is
/// reported once for the lot.
#[rstest]
fn a_burst_of_connects_is_fully_accepted(
    #[values(Trigger::Level, Trigger::Edge)] trigger: Trigger,
) {
    Isolation::new().deadline(Duration::from_secs(20)).run(|| {
        let somaxconn: usize = fs::read_to_string("/proc/sys/net/core/somaxconn")
            .ok()
            .and_then(|s| s.trim().parse().ok())
            .unwrap_or(128);
        let n = 300.min(somaxconn);
        let (l, port) = listener();
        let mut clients: Vec<TcpStream> = (0..n).map(|_| connect(port)).collect();
        let sent: Vec<Vec<u8>> = (0..n).map(|i| format!("hello from client {i}\n").into_bytes()).collect();
        for (i, c) in clients.iter_mut().enumerate() {
            c.write_all(&sent[i]).expect("a short message fits the socket");
        }
        let queued = tcp_lines()
            .into_iter()
            .find(|t| t.local_port == port && t.st == 0x0A)
            .map_or(0, |t| t.rx_queue);
        assert!(
            queued >= n - 1,
            "the test meant {n} connections to wait in the accept queue before the server starts, but \
             /proc/net/tcp shows {queued}"
        );
        let mut server = student(|| Server::start(l, port, trigger));
        collect(
            &mut server,
            &mut clients,
            &sent,
            false,
            &format!("a burst of {n} connections queued before the server started waits for its echoes"),
        );
    });
}

/// Several clients each queue a big message (tens of KiB) and half-close before the server
/// starts: each connection is reported once, with all of it waiting.
#[rstest]
fn big_messages_queued_before_the_first_event_are_read_in_full(
    #[values(Trigger::Level, Trigger::Edge)] trigger: Trigger,
) {
    Isolation::new().deadline(Duration::from_secs(20)).run(|| {
        let (l, port) = listener();
        let mut clients: Vec<TcpStream> = (0..6).map(|_| connect(port)).collect();
        let mut sent = Vec::new();
        for (i, c) in clients.iter_mut().enumerate() {
            // What fits without the server reading: the connection's receive queue and the
            // client's send buffer.
            let data = payload(i, 48 * 1024);
            c.set_nonblocking(true).expect("O_NONBLOCK");
            let mut off = 0;
            while off < data.len() {
                match c.write(&data[off..]) {
                    Ok(n) => off += n,
                    Err(e) if e.kind() == ErrorKind::WouldBlock => break,
                    Err(e) => panic!("a client's send failed: {e}"),
                }
            }
            assert!(
                off >= 32 * 1024,
                "only {off} bytes fitted in a connection before the server read: the test needs at least 32 KiB"
            );
            c.set_nonblocking(false).expect("blocking");
            c.shutdown(Shutdown::Write).expect("half-close");
            sent.push(data[..off].to_vec());
        }
        let mut server = student(|| Server::start(l, port, trigger));
        collect(
            &mut server,
            &mut clients,
            &sent,
            true,
            "clients whose big messages were queued before the server started wait for their echoes",
        );
    });
}

/// A client sends 1 MiB and reads nothing until the server has read all of it (its receive
/// buffer small): the server's sends fall short, and it must keep the rest. Meanwhile another
/// client is served. Then the slow client reads, slowly at first.
#[rstest]
fn a_slow_reader_gets_a_mebibyte_and_others_are_served(
    #[values(Trigger::Level, Trigger::Edge)] trigger: Trigger,
) {
    Isolation::new().deadline(Duration::from_secs(25)).run(|| {
        let (l, port) = listener();
        let mut server = student(|| Server::start(l, port, trigger));
        let fd = socket(AddressFamily::Inet, SockType::Stream, SockFlag::SOCK_CLOEXEC, None).expect("socket");
        setsockopt(&fd, sockopt::RcvBuf, &4096).expect("SO_RCVBUF");
        let addr = libc::sockaddr_in {
            sin_family: libc::AF_INET as libc::sa_family_t,
            sin_port: port.to_be(),
            sin_addr: libc::in_addr { s_addr: u32::from_be_bytes([127, 0, 0, 1]).to_be() },
            sin_zero: [0; 8],
        };
        // SAFETY: connects a socket we own to an address held in a local of the right size.
        let r = unsafe {
            libc::connect(
                fd.as_raw_fd(),
                (&raw const addr).cast(),
                size_of::<libc::sockaddr_in>() as libc::socklen_t,
            )
        };
        assert_eq!(r, 0, "connect the slow client: {}", std::io::Error::last_os_error());
        let mut slow = TcpStream::from(fd);
        let slow_port = slow.local_addr().expect("local_addr").port();
        // Rounds of 1 MiB until the kernel cannot hold all of it (the client's receive queue and
        // the server's send queue): from then on the server holds the rest itself, after sends
        // that fell short. At most 8 MiB.
        let mut data = Vec::new();
        let mut held = 0;
        for round in 0..8 {
            let chunk = payload(99 + round, 1 << 20);
            send_all(&mut server, &mut slow, &chunk, "a client sends 1 MiB and reads nothing");
            data.extend_from_slice(&chunk);
            // The server has everything once the client has no bytes in flight and the
            // server's end of the connection no unread bytes.
            let start = Instant::now();
            let mut watch = Watch::new();
            loop {
                let mine = tcp_lines()
                    .into_iter()
                    .find(|t| t.local_port == slow_port && t.remote_port == port);
                let theirs: Vec<TcpLine> = server.sockets().into_iter().filter(|t| t.remote_port == slow_port).collect();
                let unread: usize = theirs.iter().map(|t| t.rx_queue).sum();
                if mine.as_ref().is_some_and(|m| m.tx_queue == 0) && unread == 0 {
                    held = theirs.iter().map(|t| t.tx_queue).sum::<usize>() + queued(&slow);
                    break;
                }
                watch.check(&mut server, "the slow client's bytes are on their way to the server");
                if start.elapsed() > scaled(SETTLE) {
                    panic!(
                        "after {:?} the server had not read the slow client's bytes ({:?} still in the client's \
                         send queue). Keep reading from a client while its echo waits to be sent.\n{}",
                        scaled(SETTLE),
                        mine.map(|m| m.tx_queue),
                        server.describe()
                    );
                }
                thread::sleep(Duration::from_millis(2));
            }
            if held < data.len() {
                break;
            }
        }
        assert!(
            held < data.len(),
            "the kernel's socket buffers held all {} bytes the test sent: no send could fall short",
            data.len()
        );
        slow.shutdown(Shutdown::Write).expect("half-close");
        await_asleep(&mut server, "the slow client reads nothing yet");
        let mut other = vec![server.connect()];
        let ping = vec![b"ping while another client's bytes wait".to_vec()];
        send_all(&mut server, &mut other[0], &ping[0], "a client sends");
        collect(&mut server, &mut other, &ping, false, "a second client waits while the slow client reads nothing");
        // Slowly at first: a few small reads with pauses, then the rest.
        let mut first = Vec::new();
        let mut buf = [0u8; 1024];
        slow.set_read_timeout(Some(scaled(SETTLE))).expect("SO_RCVTIMEO");
        for _ in 0..16 {
            match slow.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => first.extend_from_slice(&buf[..n]),
                Err(e) => panic!("the slow client's read failed: {e}"),
            }
            thread::sleep(Duration::from_millis(2));
        }
        check_prefix(&server, 0, &first, &data, 0, "the slow client reads its first bytes");
        let mut rest = [slow];
        let tail = vec![data[first.len()..].to_vec()];
        collect(&mut server, &mut rest, &tail, true, "the slow client reads the rest of its 1 MiB");
    });
}

/// With idle connections open (each has had an echo; one client half-closed and left), the
/// server must sleep: its CPU time over an idle second stays under a tenth of it.
#[rstest]
fn an_idle_server_uses_almost_no_cpu(#[values(Trigger::Level, Trigger::Edge)] trigger: Trigger) {
    Isolation::new().deadline(Duration::from_secs(20)).run(|| {
        let (l, port) = listener();
        let mut server = student(|| Server::start(l, port, trigger));
        let mut clients: Vec<TcpStream> = (0..8).map(|_| server.connect()).collect();
        let sent: Vec<Vec<u8>> = (0..8).map(|i| payload(i, 2000 + i * 100)).collect();
        for (i, c) in clients.iter_mut().enumerate() {
            send_all(&mut server, c, &sent[i], "a client sends");
        }
        collect(&mut server, &mut clients, &sent, false, "idle clients get a first echo");
        let mut gone = vec![server.connect()];
        let bye = vec![b"bye".to_vec()];
        send_all(&mut server, &mut gone[0], &bye[0], "a client sends");
        gone[0].shutdown(Shutdown::Write).expect("half-close");
        collect(&mut server, &mut gone, &bye, true, "a client says bye and half-closes");
        drop(gone);
        let tick = nix::unistd::sysconf(nix::unistd::SysconfVar::CLK_TCK)
            .ok()
            .flatten()
            .unwrap_or(100) as f64;
        let before = server.cpu_ticks();
        let t0 = Instant::now();
        let interval = scaled(Duration::from_secs(1));
        while t0.elapsed() < interval {
            server.check_alive("idle");
            thread::sleep(Duration::from_millis(50));
        }
        let used = (server.cpu_ticks() - before) as f64 / tick;
        let wall = t0.elapsed().as_secs_f64();
        if used > wall / 10.0 {
            panic!(
                "the {} server used {used:.2} s of CPU time (/proc/{}/stat, utime + stime) in {wall:.2} s with nothing \
                 to do: a busy loop. An idle server sleeps in epoll_wait with no timeout (-1). Look for a timeout of 0, \
                 or an interest that is always true: EPOLLOUT on a socket with nothing to send (it is almost always \
                 writable), or EPOLLIN on a socket whose client has sent end of file.\n{}",
                mode(trigger),
                server.pid,
                server.describe()
            );
        }
        let timeout = server.in_epoll_wait();
        if let Some(t) = timeout
            && t >= 0
        {
            panic!(
                "the idle {} server sleeps in epoll_wait with a timeout of {t} ms: with nothing to do it should wait \
                 with no timeout (-1), not wake up to poll",
                mode(trigger)
            );
        }
    });
}

/// Clients come and go, some closing normally, some resetting (SO_LINGER 0) with echoes still
/// owed: the server closes each connection and keeps only its listener; it still serves a new
/// client after that.
#[rstest]
fn closed_connections_leave_no_fd_behind(
    #[values(Trigger::Level, Trigger::Edge)] trigger: Trigger,
) {
    Isolation::new().deadline(Duration::from_secs(20)).run(|| {
        let (l, port) = listener();
        let mut server = student(|| Server::start(l, port, trigger));
        await_asleep(&mut server, "starting");
        let baseline = server.socket_fds().len();
        // Normal goodbyes.
        let mut clients: Vec<TcpStream> = (0..10).map(|_| server.connect()).collect();
        let sent: Vec<Vec<u8>> = (0..10).map(|i| payload(i, 500 + i)).collect();
        for (i, c) in clients.iter_mut().enumerate() {
            send_all(&mut server, c, &sent[i], "a client sends");
            c.shutdown(Shutdown::Write).expect("half-close");
        }
        collect(&mut server, &mut clients, &sent, true, "clients say goodbye");
        drop(clients);
        // Resets: each sends 256 KiB and reads nothing, then resets the connection.
        for i in 0..6 {
            let mut c = server.connect();
            send_all(&mut server, &mut c, &payload(i, 256 * 1024), "a client floods before resetting");
            let linger = libc::linger { l_onoff: 1, l_linger: 0 };
            // SAFETY: sets SO_LINGER on a socket we own from a stack value of the right size.
            let r = unsafe {
                libc::setsockopt(
                    c.as_raw_fd(),
                    libc::SOL_SOCKET,
                    libc::SO_LINGER,
                    (&raw const linger).cast(),
                    size_of::<libc::linger>() as libc::socklen_t,
                )
            };
            assert_eq!(r, 0, "SO_LINGER");
            drop(c);
        }
        let start = Instant::now();
        loop {
            server.check_alive("clients reset their connections");
            let socks = server.socket_fds();
            if socks.len() <= baseline {
                break;
            }
            if start.elapsed() > scaled(SETTLE) {
                panic!(
                    "every client has closed its connection, yet the {} server (pid {}) still holds {} sockets where it \
                     held {baseline} before any client came ({}). When recv returns 0 (end of file, once the echo is \
                     sent) or fails with ECONNRESET, or send fails with EPIPE, that connection is over: delete it \
                     from epoll and close its fd, or the server runs out of fds.",
                    mode(trigger),
                    server.pid,
                    socks.len(),
                    socks.iter().map(|f| format!("fd {} -> {}", f.fd, f.target)).collect::<Vec<_>>().join(", ")
                );
            }
            thread::sleep(Duration::from_millis(5));
        }
        let mut again = vec![server.connect()];
        let hi = vec![b"still there?".to_vec()];
        send_all(&mut server, &mut again[0], &hi[0], "a client sends");
        collect(&mut server, &mut again, &hi, false, "a new client comes after the resets");
    });
}

/// 1100 clients at once, the server started with a soft fd limit of 1024: each gets its echo.
#[rstest]
fn more_than_1024_clients_are_served(#[values(Trigger::Level, Trigger::Edge)] trigger: Trigger) {
    Isolation::new().deadline(Duration::from_secs(30)).run(|| {
        let n = 1100;
        let (_, hard) = getrlimit(Resource::RLIMIT_NOFILE).expect("getrlimit");
        if hard < 2 * n as u64 + 64 {
            eprintln!(
                "skipped: the hard RLIMIT_NOFILE is {hard}, too low for {n} clients and the server"
            );
            return;
        }
        let (l, port) = listener();
        let mut server = student(|| Server::start(l, port, trigger));
        setrlimit(Resource::RLIMIT_NOFILE, hard, hard).expect("raise the test's own fd limit");
        let mut clients = Vec::new();
        let mut sent = Vec::new();
        for i in 0..n {
            let mut c = server.connect();
            let msg = format!("client {i} of {n}").into_bytes();
            send_all(&mut server, &mut c, &msg, "a client sends");
            clients.push(c);
            sent.push(msg);
            if i % 100 == 99 {
                server.check_alive(&format!("{} clients are connected", i + 1));
            }
        }
        collect(
            &mut server,
            &mut clients,
            &sent,
            false,
            &format!("{n} clients at once wait for their echoes"),
        );
    });
}

/// `raise_fd_limit` sets the soft RLIMIT_NOFILE to the hard limit and returns it.
#[test]
fn raise_fd_limit_reaches_the_hard_limit() {
    Isolation::new().run(|| {
        let (_, hard) = getrlimit(Resource::RLIMIT_NOFILE).expect("getrlimit");
        setrlimit(Resource::RLIMIT_NOFILE, 256.min(hard), hard).expect("lower the soft limit");
        let got = student(raise_fd_limit);
        let (soft, hard_after) = getrlimit(Resource::RLIMIT_NOFILE).expect("getrlimit");
        assert_eq!(
            (soft, hard_after),
            (hard, hard),
            "after raise_fd_limit the soft RLIMIT_NOFILE should be the hard limit ({hard}) and the hard limit \
             unchanged (getrlimit(2) shows soft {soft}, hard {hard_after})"
        );
        assert_eq!(got, Ok(hard), "raise_fd_limit should return the new soft limit");
        let _ = getpid();
    });
}

/// `serve` in the shape the driver runs: it never returns but with an error.
fn driver_server(trigger: Trigger) -> impl FnOnce(TcpListener) -> io::Result<()> {
    move |l| match serve(l, trigger) {
        Ok(never) => match never {},
        Err(e) => Err(io::Error::from(e)),
    }
}

/// One round trip on a server of the test's own first, so that a stub is reported as not
/// started (the driver reports a server's panic in its own words).
fn probe(trigger: Trigger) {
    let (l, port) = listener();
    let mut server = Server::start(l, port, trigger);
    let mut c = vec![server.connect()];
    let msg = vec![b"probe".to_vec()];
    send_all(&mut server, &mut c[0], &msg[0], "a client sends");
    c[0].shutdown(Shutdown::Write).expect("half-close");
    collect(
        &mut server,
        &mut c,
        &msg,
        true,
        "a first client makes one round trip",
    );
}

/// The driver's proptest scripts: many clients at once, random chunk sizes, interleaved
/// sends, half-closes and abrupt disconnects; every client gets back exactly what it sent.
#[rstest]
fn driver_scripts(#[values(Trigger::Level, Trigger::Edge)] trigger: Trigger) {
    Isolation::new()
        .deadline(echo_clients::TEST_DEADLINE)
        .run(|| {
            student(|| probe(trigger));
            student(|| echo_clients::scripts(driver_server(trigger), 24, 12))
        });
}

/// The driver's fairness check: while one client floods the server, the others' round trips
/// finish within a generous bound.
#[rstest]
fn driver_fairness(#[values(Trigger::Level, Trigger::Edge)] trigger: Trigger) {
    Isolation::new()
        .deadline(echo_clients::TEST_DEADLINE)
        .run(|| {
            student(|| probe(trigger));
            student(|| echo_clients::fairness(driver_server(trigger), 4, 5, Duration::from_secs(2)))
        });
}

/// The driver's 1 MiB to a client that reads slowly while it still sends.
#[rstest]
fn driver_big_slow(#[values(Trigger::Level, Trigger::Edge)] trigger: Trigger) {
    Isolation::new()
        .deadline(echo_clients::TEST_DEADLINE)
        .run(|| {
            student(|| probe(trigger));
            student(|| echo_clients::big_slow(driver_server(trigger)))
        });
}

/// The driver's idle check: with idle, half-closed and reset clients the server sleeps.
#[rstest]
fn driver_idle_cpu(#[values(Trigger::Level, Trigger::Edge)] trigger: Trigger) {
    Isolation::new()
        .deadline(echo_clients::TEST_DEADLINE)
        .run(|| {
            student(|| probe(trigger));
            student(|| echo_clients::idle_cpu(driver_server(trigger)))
        });
}

/// Bytes waiting in a socket's receive queue (FIONREAD).
fn queued(s: &TcpStream) -> usize {
    let mut n: libc::c_int = 0;
    // SAFETY: FIONREAD writes one int into `n`.
    let r = unsafe { libc::ioctl(s.as_raw_fd(), libc::FIONREAD, &raw mut n) };
    if r < 0 { 0 } else { n as usize }
}
