//! io_models/blocking_server: a blocking echo server (阻塞 I/O), one thread per connection.
//!
//! How the tests run the server: each test binds a `TcpListener` on 127.0.0.1 port 0, forks
//! a child that calls `serve` with it (its SIGPIPE set to the default action first, as a C
//! program would have it), drops its own copy of the listener, and kills and reaps the child
//! with SIGKILL at the end. Clients are real TCP sockets in the test process, at most eight
//! per test.
//!
//! What the tests observe, never what the code under test claims:
//! - the bytes each client gets back, and end of file when the server closes;
//! - the server's threads (`/proc/<pid>/task`), each one's state and the system call it is
//!   asleep in with its fd (`/proc/<pid>/task/<tid>/syscall`), and its fd table;
//! - `/proc/net/tcp`: which of the server's fds is which connection (by socket inode), each
//!   connection's TCP state (`CLOSE_WAIT`: the client closed, the server never did), and the
//!   listener's accept queue (connections the kernel completed that nobody accepted);
//! - the server's `waitpid` status (an exit, or SIGPIPE).
//!
//! The contract, clause by clause, and the test that checks each:
//! - `echo` returns the count at end of file and closes the connection
//!   (`echo_counts_what_it_echoed`);
//! - every client gets back exactly what it sent, in order, however it is chunked and whether
//!   it waits for each echo or not, several clients at once (`echoes_every_client_exactly`, a
//!   proptest of client scripts); the server reads until end of file, not once;
//! - a client that half-closes gets all its echo, then end of file
//!   (`a_half_closed_client_gets_everything_then_end_of_file`);
//! - a silent client does not hold up another (`a_silent_client_does_not_hold_up_another`:
//!   a server that serves one client at a time is named at once from `/proc`: no thread in
//!   accept, the second connection waiting in the accept queue);
//! - a client that resets its connection, while the server reads from it or writes to it,
//!   ends that connection only: the server neither exits nor dies of SIGPIPE, and goes on
//!   serving (`a_client_that_resets_does_not_end_the_server`, two cases);
//! - a finished connection's socket is closed and its thread ends: the server's fds and
//!   threads return to what they were (`finished_connections_are_closed`), a leaked socket
//!   named at once by its `CLOSE_WAIT` state;
//! - `serve` returns an error of accept(2) that is not a client's, here `EINVAL` from a socket
//!   that is not listening (`serve_returns_the_error_of_accept`).

// The exercise under test: your stub (by default), the reference solution (`--features
// solutions`), or a shipped mistake that `cargo grade --mistakes` copies into target/.
#[cfg(not(any(feature = "solutions", feature = "mistake")))]
#[path = "../../exercises/io_models/blocking_server.rs"]
#[allow(dead_code)] // a stub does not use all of its API yet
mod blocking_server;
#[cfg(all(feature = "solutions", not(feature = "mistake")))]
#[path = "../../solutions/io_models/blocking_server.rs"]
mod blocking_server;
#[cfg(feature = "mistake")]
#[path = "../../target/oskata-mistake/io_models/blocking_server.rs"]
#[rustfmt::skip] // the copy exists only while the proof runs
mod blocking_server;
use blocking_server::*;

use std::fs;
use std::io::{self, ErrorKind, Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::os::fd::{AsRawFd, OwnedFd};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use nix::errno::Errno;
use nix::sys::signal::{SigHandler, Signal, kill, signal};
use nix::sys::socket::{AddressFamily, SockFlag, SockType, setsockopt, socket, sockopt};
use nix::sys::wait::{WaitPidFlag, WaitStatus, waitpid};
use nix::unistd::{ForkResult, Pid, fork, pipe};
use oskata_harness::{Isolation, cases, procfs, scaled, student};
use proptest::collection::vec;
use proptest::prelude::*;
use rstest::rstest;

/// How long a correct server may take to answer or to settle (before `scaled`). A correct
/// one needs milliseconds; the mistakes are named from `/proc` long before this.
const SETTLE: Duration = Duration::from_secs(5);

/// The lesson of the one-at-a-time server.
const ONE_AT_A_TIME: &str = "the server serves one client at a time: while one client is quiet, its thread sleeps in \
                             read(2) and nobody calls accept(2) for the next. Give each connection a thread of its \
                             own and send the accepting thread straight back to accept";

/// One line of `/proc/net/tcp`.
#[derive(Debug, Clone)]
struct Tcp {
    local_port: u16,
    remote_port: u16,
    state: u8,
    rx_queue: u64,
    inode: u64,
}

/// The IPv4 TCP sockets of this network namespace.
fn tcp_table() -> Vec<Tcp> {
    let text = fs::read_to_string("/proc/net/tcp").unwrap_or_default();
    let port = |addr: &str| {
        addr.split_once(':')
            .and_then(|(_, p)| u16::from_str_radix(p, 16).ok())
    };
    text.lines()
        .skip(1)
        .filter_map(|line| {
            let w: Vec<&str> = line.split_whitespace().collect();
            let (_, rx) = w.get(4)?.split_once(':')?;
            Some(Tcp {
                local_port: port(w.get(1)?)?,
                remote_port: port(w.get(2)?)?,
                state: u8::from_str_radix(w.get(3)?, 16).ok()?,
                rx_queue: u64::from_str_radix(rx, 16).ok()?,
                inode: w.get(9)?.parse().ok()?,
            })
        })
        .collect()
}

/// The text of a panic's payload.
fn panic_text(p: Box<dyn std::any::Any + Send>) -> String {
    p.downcast_ref::<&str>()
        .map(|s| (*s).to_owned())
        .or_else(|| p.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "a panic".to_owned())
}

/// A TCP state number in words (include/net/tcp_states.h).
fn state_name(state: u8) -> &'static str {
    match state {
        1 => "ESTABLISHED",
        2 => "SYN_SENT",
        3 => "SYN_RECV",
        4 => "FIN_WAIT1",
        5 => "FIN_WAIT2",
        6 => "TIME_WAIT",
        7 => "CLOSE",
        8 => "CLOSE_WAIT",
        9 => "LAST_ACK",
        10 => "LISTEN",
        11 => "CLOSING",
        _ => "?",
    }
}

const CLOSE_WAIT: u8 = 8;
const LISTEN: u8 = 10;

/// The inode of a `socket:[N]` fd target.
fn socket_inode(target: &str) -> Option<u64> {
    target
        .strip_prefix("socket:[")?
        .strip_suffix(']')?
        .parse()
        .ok()
}

/// A system call number in words.
fn call_name(nr: i64) -> String {
    let name = match nr {
        libc::SYS_read => "read",
        libc::SYS_recvfrom => "recvfrom",
        libc::SYS_recvmsg => "recvmsg",
        libc::SYS_readv => "readv",
        libc::SYS_write => "write",
        libc::SYS_sendto => "sendto",
        libc::SYS_sendmsg => "sendmsg",
        libc::SYS_writev => "writev",
        libc::SYS_accept => "accept",
        libc::SYS_accept4 => "accept4",
        libc::SYS_futex => "futex (a lock, a join or a condition variable)",
        libc::SYS_poll => "poll",
        libc::SYS_ppoll => "ppoll",
        libc::SYS_epoll_wait => "epoll_wait",
        libc::SYS_select => "select",
        libc::SYS_pselect6 => "pselect6",
        libc::SYS_nanosleep | libc::SYS_clock_nanosleep => "a sleep",
        _ => return format!("system call {nr}"),
    };
    name.to_owned()
}

fn is_read(nr: i64) -> bool {
    [
        libc::SYS_read,
        libc::SYS_recvfrom,
        libc::SYS_recvmsg,
        libc::SYS_readv,
    ]
    .contains(&nr)
}

fn is_write(nr: i64) -> bool {
    [
        libc::SYS_write,
        libc::SYS_sendto,
        libc::SYS_sendmsg,
        libc::SYS_writev,
    ]
    .contains(&nr)
}

fn is_accept(nr: i64) -> bool {
    nr == libc::SYS_accept || nr == libc::SYS_accept4
}

/// One thread of the server as the kernel shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Thread {
    tid: i32,
    state: char,
    /// The system call it is in (number, first argument), when it is in one.
    call: Option<(i64, i32)>,
}

/// Short pauses between looks at `/proc`, growing to 10 ms.
fn pause(round: &mut u32) {
    *round += 1;
    thread::sleep(Duration::from_micros(100 << (*round).min(7)));
}

/// The server: a forked child running `serve`, killed and reaped when this is dropped.
struct Server {
    pid: Pid,
    port: u16,
    listener_inode: u64,
    /// The read end of a pipe on which the child writes why `serve` ended (a panic's text).
    why: Option<OwnedFd>,
    reaped: Option<WaitStatus>,
}

impl Server {
    /// Binds 127.0.0.1:0, forks the server and waits until a thread of it sleeps in accept(2).
    fn start() -> Server {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
        // Accepted sockets inherit the listener's send buffer. Left to autotuning, loopback
        // send buffers grow to megabytes, and a server echoing to a client that does not read
        // may not fill its own before the test gives up (seen once in CI): 32 KiB makes the
        // server's writes block after a few dozen KiB. It changes nothing else.
        setsockopt(&listener, sockopt::SndBuf, &(32 * 1024)).expect("SO_SNDBUF");
        let port = listener.local_addr().expect("local_addr").port();
        let me = nix::unistd::getpid();
        let listener_inode = procfs::fds(me)
            .expect("the test's fds")
            .iter()
            .find(|f| f.fd == listener.as_raw_fd())
            .and_then(|f| socket_inode(&f.target))
            .expect("the listener's socket inode");
        let (why_r, why_w) = pipe().expect("pipe");
        // SAFETY: SIG_DFL installs no handler.
        unsafe { signal(Signal::SIGPIPE, SigHandler::SigDfl) }.expect("SIGPIPE to default");
        // SAFETY: the body has one thread here (clients are started after); the child runs
        // the server and leaves with _exit.
        match unsafe { fork() }.expect("fork") {
            ForkResult::Child => {
                drop(why_r);
                let result = catch_unwind(AssertUnwindSafe(|| serve(listener)));
                let (text, code) = match result {
                    Ok(Ok(())) => ("serve returned Ok(())".to_owned(), 0),
                    Ok(Err(e)) => (format!("serve returned Err({e})"), 3),
                    Err(p) => (panic_text(p), 101),
                };
                let _ = nix::unistd::write(&why_w, text.as_bytes());
                // SAFETY: ends the forked server at once, running none of the test's code.
                unsafe { libc::_exit(code) }
            }
            ForkResult::Parent { child } => {
                drop(why_w);
                drop(listener);
                // SAFETY: SIG_IGN installs no handler; the test's clients must not die of it.
                unsafe { signal(Signal::SIGPIPE, SigHandler::SigIgn) }.expect("ignore SIGPIPE");
                let mut server = Server {
                    pid: child,
                    port,
                    listener_inode,
                    why: Some(why_r),
                    reaped: None,
                };
                server.await_accepting("after it started");
                server
            }
        }
    }

    /// Fails if the server has ended, saying how.
    fn check_alive(&mut self, when: &str) {
        if self.reaped.is_none() {
            match waitpid(self.pid, Some(WaitPidFlag::WNOHANG)) {
                Ok(WaitStatus::StillAlive) | Err(Errno::EINTR) => return,
                Ok(status) => self.reaped = Some(status),
                Err(e) => panic!("waitpid({}) failed: {e}", self.pid),
            }
        }
        let mut text = String::new();
        if let Some(fd) = self.why.take() {
            let _ = fs::File::from(fd).read_to_string(&mut text);
        }
        let pid = self.pid;
        match self.reaped {
            Some(WaitStatus::Exited(_, 101)) => {
                panic!("{text}\n(the server, pid {pid}, panicked in serve {when})")
            }
            Some(WaitStatus::Signaled(_, Signal::SIGPIPE, _)) => panic!(
                "the server (pid {pid}) was killed by SIGPIPE {when}: it wrote to a connection the client had \
                 reset, and write(2) on such a socket sends the writer SIGPIPE, whose default action kills the \
                 whole process, every other client's connection with it. Write with send(2) and MSG_NOSIGNAL \
                 (std's TcpStream does), or ignore SIGPIPE, and end that one connection on EPIPE or ECONNRESET; \
                 never write again after EPIPE."
            ),
            Some(WaitStatus::Exited(_, code)) => panic!(
                "the server exited (pid {pid}, status {code}) {when}{}. A client's error (ECONNRESET, EPIPE) \
                 must end only that client's connection: close its socket, end its thread, and let the server \
                 go on; serve returns only when accept(2) itself fails.",
                if text.is_empty() {
                    String::new()
                } else {
                    format!(" ({text})")
                }
            ),
            other => panic!("the server (pid {pid}) ended {when}: {other:?}"),
        }
    }

    /// The server's threads with their states and system calls.
    fn threads(&self) -> Vec<Thread> {
        procfs::threads(self.pid)
            .unwrap_or_default()
            .into_iter()
            .map(|tid| {
                let state = procfs::task_stat(self.pid, tid).map_or('?', |s| s.state);
                let call = procfs::thread_syscall(self.pid, tid)
                    .filter(|_| state == 'S' || state == 'D')
                    .map(|c| (c.nr, c.args[0] as i32));
                Thread { tid, state, call }
            })
            .collect()
    }

    /// The server's fds.
    fn fds(&self) -> Vec<procfs::Fd> {
        procfs::fds(self.pid).unwrap_or_default()
    }

    /// The TCP line of one of the server's fds, if it is an IPv4 TCP socket.
    fn tcp_of(&self, fd: i32, table: &[Tcp]) -> Option<Tcp> {
        let inode = self
            .fds()
            .into_iter()
            .find(|f| f.fd == fd)
            .and_then(|f| socket_inode(&f.target))?;
        table.iter().find(|t| t.inode == inode).cloned()
    }

    /// Connections waiting in the listener's accept queue.
    fn accept_queue(&self) -> u64 {
        tcp_table()
            .iter()
            .find(|t| t.inode == self.listener_inode && t.state == LISTEN)
            .map_or(0, |t| t.rx_queue)
    }

    /// The server's fd that is the server side of `client`'s connection.
    fn fd_of(&self, client: &TcpStream) -> Option<i32> {
        let cport = client.local_addr().ok()?.port();
        let table = tcp_table();
        let inode = table
            .iter()
            .find(|t| t.local_port == self.port && t.remote_port == cport && t.inode != 0)?
            .inode;
        self.fds()
            .into_iter()
            .find(|f| socket_inode(&f.target) == Some(inode))
            .map(|f| f.fd)
    }

    /// The server as the kernel shows it: threads and what they sleep in, fds and their TCP
    /// states, the accept queue.
    fn describe(&self) -> String {
        let table = tcp_table();
        let mut out = format!(
            "What the kernel shows of the server (pid {}, listening on 127.0.0.1:{}; {} connection(s) waiting in \
             its accept queue):\n",
            self.pid,
            self.port,
            self.accept_queue()
        );
        for t in self.threads() {
            let doing = match t.call {
                Some((nr, fd)) if is_read(nr) || is_write(nr) || is_accept(nr) => {
                    let what = self
                        .tcp_of(fd, &table)
                        .map(|c| self.connection_words(&c))
                        .unwrap_or_default();
                    format!("asleep in {} on fd {fd}{what}", call_name(nr))
                }
                Some((nr, _)) => format!("asleep in {}", call_name(nr)),
                None if t.state == 'R' => "running (a busy loop?)".to_owned(),
                None => format!("state {}", t.state),
            };
            out.push_str(&format!("  thread {}: {doing}\n", t.tid));
        }
        for f in self.fds() {
            let what = socket_inode(&f.target)
                .and_then(|i| table.iter().find(|t| t.inode == i))
                .map(|c| self.connection_words(c))
                .unwrap_or_default();
            out.push_str(&format!("  fd {} -> {}{what}\n", f.fd, f.target));
        }
        out
    }

    fn connection_words(&self, c: &Tcp) -> String {
        if c.state == LISTEN {
            format!(" (the listener, port {})", c.local_port)
        } else {
            format!(
                " (connection from client port {}, {})",
                c.remote_port,
                state_name(c.state)
            )
        }
    }

    /// Waits until the server has a thread asleep in accept(2).
    fn await_accepting(&mut self, when: &str) {
        let limit = scaled(SETTLE);
        let start = Instant::now();
        let mut round = 0;
        loop {
            self.check_alive(when);
            if self
                .threads()
                .iter()
                .any(|t| t.call.is_some_and(|(nr, _)| is_accept(nr)))
            {
                return;
            }
            if start.elapsed() > limit {
                panic!(
                    "after {limit:?} no thread of the server was asleep in accept(2) ({when}).\n{}",
                    self.describe()
                );
            }
            pause(&mut round);
        }
    }

    /// Waits until the server's fds and threads are back to `fds` and `threads` in number.
    /// Fails at once when every thread sleeps and a socket of a client that has closed is
    /// still open (`CLOSE_WAIT`): the server will never close it.
    fn await_settled(&mut self, fds: usize, threads: usize, when: &str) {
        let limit = scaled(SETTLE);
        let start = Instant::now();
        let mut round = 0;
        let mut same = 0;
        let mut last = None;
        loop {
            self.check_alive(when);
            let now_threads = self.threads();
            let now_fds = self.fds();
            if now_fds.len() == fds && now_threads.len() <= threads {
                return;
            }
            let table = tcp_table();
            let leaked: Vec<String> = now_fds
                .iter()
                .filter_map(|f| {
                    let c = table
                        .iter()
                        .find(|t| Some(t.inode) == socket_inode(&f.target))?;
                    (c.state == CLOSE_WAIT)
                        .then(|| format!("fd {} (client port {})", f.fd, c.remote_port))
                })
                .collect();
            let asleep = now_threads.iter().all(|t| t.state == 'S');
            let look = (now_threads.clone(), now_fds.len());
            if asleep && !leaked.is_empty() && last.as_ref() == Some(&look) {
                same += 1;
            } else {
                same = 0;
            }
            last = Some(look);
            if same >= 5 {
                panic!(
                    "the server never closed a finished connection: {} still open in state CLOSE_WAIT (the \
                     client has closed its end and the server has read end of file, but never closed its socket), \
                     while all its threads sleep ({when}). Close each connection's socket when its echo ends, \
                     error or end of file (drop the TcpStream): an fd left open is a leak, and after a few \
                     thousand clients accept fails with EMFILE.\n{}",
                    leaked.join(", "),
                    self.describe()
                );
            }
            if start.elapsed() > limit {
                panic!(
                    "after {limit:?} the server still held {} fds and {} threads (it had {fds} and {threads} with \
                     no client) {when}: a finished connection's socket must be closed and its thread must end.\n{}",
                    now_fds.len(),
                    now_threads.len(),
                    self.describe()
                );
            }
            pause(&mut round);
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if self.reaped.is_none() {
            let _ = kill(self.pid, Signal::SIGKILL);
            let _ = waitpid(self.pid, None);
        }
    }
}

/// A client connected to the server, reads bounded by [`SETTLE`].
fn connect(server: &Server) -> TcpStream {
    let s = TcpStream::connect(("127.0.0.1", server.port)).expect("connect to the server");
    s.set_read_timeout(Some(scaled(SETTLE)))
        .expect("set_read_timeout");
    s
}

/// Reads exactly `want` bytes; `Err` says what came instead.
fn read_exactly(s: &mut TcpStream, want: usize) -> Result<Vec<u8>, String> {
    let mut got = vec![0u8; want];
    let mut have = 0;
    while have < want {
        match s.read(&mut got[have..]) {
            Ok(0) => {
                return Err(format!(
                    "the server closed the connection after echoing {have} of the {want} bytes awaited: it must \
                     read until the client ends its side (read returns 0), not stop after one read"
                ));
            }
            Ok(n) => have += n,
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                return Err(format!(
                    "no echo came for {:?}: {have} of {want} bytes arrived",
                    scaled(SETTLE)
                ));
            }
            Err(e) => {
                return Err(format!(
                    "reading the echo failed after {have} of {want} bytes: {e}"
                ));
            }
        }
    }
    Ok(got)
}

/// Reads until end of file; `Err` says what came instead.
fn read_to_end(s: &mut TcpStream) -> Result<Vec<u8>, String> {
    let mut got = Vec::new();
    match s.read_to_end(&mut got) {
        Ok(_) => Ok(got),
        Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => Err(format!(
            "no end of file came for {:?} after the client shut down its side ({} bytes had come back): the \
             server never closed a finished connection (its socket stays in CLOSE_WAIT): once read returns 0, \
             write back what is left and close the socket (drop the TcpStream, and keep no copy of it)",
            scaled(SETTLE),
            got.len()
        )),
        Err(e) => Err(format!("reading to end of file failed: {e}")),
    }
}

fn pattern(len: usize, seed: u8) -> Vec<u8> {
    (0..len)
        .map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed))
        .collect()
}

/// `echo` on a connection the test accepted itself, in a thread: it returns the count at end
/// of file, and the client then sees end of file.
#[test]
fn echo_counts_what_it_echoed() {
    Isolation::new().deadline(Duration::from_secs(20)).run(|| {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let mut client = TcpStream::connect(listener.local_addr().unwrap()).expect("connect");
        client
            .set_read_timeout(Some(scaled(SETTLE)))
            .expect("timeout");
        let (conn, _) = listener.accept().expect("accept");
        let (tx, rx) = mpsc::channel();
        thread::spawn(move || {
            let _ = tx.send(
                catch_unwind(AssertUnwindSafe(|| student(|| echo(conn)))).map_err(panic_text),
            );
        });
        // A failure of the client's side first gives the echo's own panic, if it panicked.
        let echo_panic = |e: String| -> ! {
            if let Ok(Err(p)) = rx.recv_timeout(Duration::from_secs(1)) {
                panic!("{p}");
            }
            panic!("{e}")
        };
        let mut sent = Vec::new();
        for (i, len) in [5usize, 3000, 20_000].into_iter().enumerate() {
            let chunk = pattern(len, i as u8);
            client.write_all(&chunk).expect("send");
            let back = read_exactly(&mut client, len).unwrap_or_else(|e| echo_panic(e));
            assert_eq!(
                back, chunk,
                "the echo of chunk {i} differs from what was sent"
            );
            sent.extend(chunk);
        }
        client.shutdown(Shutdown::Write).expect("shutdown(Write)");
        let rest = read_to_end(&mut client).unwrap_or_else(|e| echo_panic(e));
        assert!(
            rest.is_empty(),
            "echo sent {} bytes nobody sent",
            rest.len()
        );
        match rx.recv_timeout(scaled(SETTLE)) {
            Ok(Err(p)) => panic!("{p}"),
            Ok(Ok(Ok(n))) => assert_eq!(
                n,
                sent.len() as u64,
                "echo echoed {} bytes but returned {n}: it returns the count",
                sent.len()
            ),
            Ok(Ok(Err(e))) => {
                panic!("echo returned Err({e}) at an orderly end of file: read returning 0 is Ok")
            }
            Err(_) => panic!(
                "echo did not return within {:?} of end of file",
                scaled(SETTLE)
            ),
        }
    });
}

/// One client's script: chunks, each with whether the client waits for its echo before
/// sending the next.
type Script = Vec<(Vec<u8>, bool)>;

fn run_client(port: u16, script: Script) -> Result<(), String> {
    let mut s = TcpStream::connect(("127.0.0.1", port)).map_err(|e| format!("connect: {e}"))?;
    s.set_read_timeout(Some(scaled(SETTLE)))
        .map_err(|e| e.to_string())?;
    let mut sent = Vec::new();
    let mut back = Vec::new();
    for (chunk, wait) in script {
        s.write_all(&chunk).map_err(|e| format!("send: {e}"))?;
        sent.extend_from_slice(&chunk);
        if wait {
            back.extend(read_exactly(&mut s, sent.len() - back.len())?);
        }
    }
    s.shutdown(Shutdown::Write)
        .map_err(|e| format!("shutdown: {e}"))?;
    back.extend(read_exactly(&mut s, sent.len() - back.len())?);
    let extra = read_to_end(&mut s)?;
    if !extra.is_empty() {
        return Err(format!("{} bytes came back that nobody sent", extra.len()));
    }
    if back != sent {
        let at = back
            .iter()
            .zip(&sent)
            .position(|(a, b)| a != b)
            .unwrap_or(0);
        return Err(format!(
            "the echo differs from what the client sent from byte {at} on ({} bytes sent)",
            sent.len()
        ));
    }
    Ok(())
}

/// proptest: one to four clients at once, each with its own chunks (1 to 3000 bytes, up to
/// six), some waiting for each echo, some sending on; each shuts down its side at the end and
/// must get back exactly what it sent, in order, then end of file.
#[test]
fn echoes_every_client_exactly() {
    Isolation::new().deadline(Duration::from_secs(40)).run(|| {
        let server = std::cell::RefCell::new(Server::start());
        let chunk = (vec(any::<u8>(), 1..3000), any::<bool>());
        let clients = vec(vec(chunk, 1..6), 1..=4);
        let port = server.borrow().port;
        cases::check(24, clients, |scripts| {
            let handles: Vec<_> = scripts
                .into_iter()
                .map(|s| thread::spawn(move || run_client(port, s)))
                .collect();
            for (k, h) in handles.into_iter().enumerate() {
                let r = h
                    .join()
                    .unwrap_or_else(|_| Err("the client thread panicked".into()));
                if let Err(e) = r {
                    let mut server = server.borrow_mut();
                    server.check_alive("while clients were being echoed");
                    return Err(TestCaseError::fail(format!(
                        "client {k}: {e}\n{}",
                        server.describe()
                    )));
                }
            }
            Ok(())
        });
        server
            .borrow_mut()
            .check_alive("after the clients were done");
    });
}

/// A client sends 256 KiB (from a thread of its own, while it reads) and shuts down its
/// writing side: it gets every byte back, then end of file; the server's socket for it is
/// then closed.
#[test]
fn a_half_closed_client_gets_everything_then_end_of_file() {
    Isolation::new().deadline(Duration::from_secs(20)).run(|| {
        let mut server = Server::start();
        let (fds, threads) = (server.fds().len(), server.threads().len());
        let mut client = connect(&server);
        let data = pattern(256 * 1024, 7);
        let mut writer = client.try_clone().expect("clone the client socket");
        let sent = data.clone();
        let w = thread::spawn(move || -> io::Result<()> {
            for piece in sent.chunks(10_000) {
                writer.write_all(piece)?;
            }
            writer.shutdown(Shutdown::Write)
        });
        let got = read_to_end(&mut client);
        w.join().expect("writer").expect("the client's sends");
        let got = got.unwrap_or_else(|e| {
            server.check_alive("while it echoed a half-closed client");
            panic!("{e}\n{}", server.describe())
        });
        assert!(
            got == data,
            "the half-closed client got {} bytes back, not the {} it sent (or not the same): after the client's \
             shutdown(SHUT_WR) the server reads end of file only once it has read everything, and must write all \
             of it back before it closes",
            got.len(),
            data.len()
        );
        drop(client);
        server.await_settled(fds, threads, "after the half-closed client left");
    });
}

/// Client A connects and sends nothing; client B connects and sends a line: B's echo must
/// come while A is silent. A server with no thread in accept(2) and B waiting in the accept
/// queue is named at once.
#[test]
fn a_silent_client_does_not_hold_up_another() {
    Isolation::new().deadline(Duration::from_secs(20)).run(|| {
        let mut server = Server::start();
        let mut a = connect(&server);
        let limit = scaled(SETTLE);
        let start = Instant::now();
        let mut round = 0;
        while server.fd_of(&a).is_none() {
            server.check_alive("after a client connected");
            if start.elapsed() > limit {
                panic!(
                    "after {limit:?} the server had not accepted the first client.\n{}",
                    server.describe()
                );
            }
            pause(&mut round);
        }
        let mut b = connect(&server);
        b.set_nonblocking(true).expect("nonblocking");
        b.write_all(b"is anybody there?").expect("send");
        let mut got = Vec::new();
        let start = Instant::now();
        let mut round = 0;
        let mut stuck = 0;
        while got.len() < 17 {
            let mut buf = [0u8; 64];
            match b.read(&mut buf) {
                Ok(0) => panic!("the server closed the second client's connection before echoing it"),
                Ok(n) => {
                    got.extend_from_slice(&buf[..n]);
                    continue;
                }
                Err(e) if e.kind() == ErrorKind::WouldBlock => {}
                Err(e) => panic!("reading the second client's echo: {e}"),
            }
            server.check_alive("while one client was silent");
            let threads = server.threads();
            let accepting = threads.iter().any(|t| t.call.is_some_and(|(nr, _)| is_accept(nr)));
            let asleep = threads.iter().all(|t| t.state == 'S');
            if !accepting && asleep && server.accept_queue() > 0 && server.fd_of(&b).is_none() {
                stuck += 1;
            } else {
                stuck = 0;
            }
            if stuck >= 5 {
                panic!(
                    "{ONE_AT_A_TIME}. The first client is connected and silent; the second client's connection \
                     waits in the listener's accept queue (/proc/net/tcp), not accepted, while no thread of the \
                     server is in accept(2) and every one sleeps.\n{}",
                    server.describe()
                );
            }
            if start.elapsed() > limit {
                panic!(
                    "after {limit:?} the second client had no echo ({} bytes) while the first was silent: \
                     {ONE_AT_A_TIME}.\n{}",
                    got.len(),
                    server.describe()
                );
            }
            pause(&mut round);
        }
        assert_eq!(got, b"is anybody there?", "the second client's echo differs");
        a.write_all(b"late").expect("send");
        let back = read_exactly(&mut a, 4).unwrap_or_else(|e| panic!("the first client: {e}"));
        assert_eq!(back, b"late", "the first client's echo differs");
    });
}

/// Where the server is when the client resets its connection.
#[derive(Debug, Clone, Copy)]
enum Moment {
    /// Asleep in read on the connection.
    Reading,
    /// Asleep in write on it: the client sent without reading until the server's writes
    /// filled both socket buffers.
    Writing,
}

/// Whether a thread of the server sleeps in a read (or write) on `fd`.
fn sleeps_in(server: &Server, fd: i32, moment: Moment) -> bool {
    server.threads().iter().any(|t| {
        t.call.is_some_and(|(nr, arg)| {
            arg == fd
                && match moment {
                    Moment::Reading => is_read(nr),
                    Moment::Writing => is_write(nr),
                }
        })
    })
}

/// A client resets its connection (SO_LINGER 0, then close: an RST) while the server sleeps
/// reading from it, or writing to it: the server's call fails with ECONNRESET (and a later
/// write with EPIPE, which raises SIGPIPE unless MSG_NOSIGNAL). The server must close that
/// connection and go on: it is alive, its fds are back to what they were, and another client
/// is echoed.
#[rstest]
#[case::while_it_reads(Moment::Reading)]
#[case::while_it_writes(Moment::Writing)]
fn a_client_that_resets_does_not_end_the_server(#[case] moment: Moment) {
    Isolation::new().deadline(Duration::from_secs(20)).run(|| {
        let mut server = Server::start();
        let (fds, threads) = (server.fds().len(), server.threads().len());
        let mut a = connect(&server);
        a.write_all(b"hello").expect("send");
        assert_eq!(read_exactly(&mut a, 5).unwrap_or_else(|e| panic!("{e}")), b"hello");
        let fd = server.fd_of(&a).unwrap_or_else(|| {
            panic!("the server holds no socket for the first client.\n{}", server.describe())
        });
        if let Moment::Writing = moment {
            setsockopt(&a, sockopt::RcvBuf, &4096).expect("SO_RCVBUF");
            a.set_nonblocking(true).expect("nonblocking");
        }
        let block = vec![0x5au8; 64 * 1024];
        let limit = scaled(SETTLE);
        let start = Instant::now();
        let mut round = 0;
        while !sleeps_in(&server, fd, moment) {
            server.check_alive("while the client was still connected");
            if let Moment::Writing = moment {
                // Send without reading, as much as the socket takes now.
                loop {
                    match a.write(&block) {
                        Ok(_) => {}
                        Err(e) if e.kind() == ErrorKind::WouldBlock => break,
                        Err(e) => panic!("the client's send failed: {e}"),
                    }
                }
            }
            if start.elapsed() > limit {
                panic!(
                    "after {limit:?} no thread of the server was asleep {} fd {fd}, the client's connection.\n{}",
                    match moment {
                        Moment::Reading => "reading",
                        Moment::Writing => "writing to",
                    },
                    server.describe()
                );
            }
            pause(&mut round);
        }
        let linger = libc::linger {
            l_onoff: 1,
            l_linger: 0,
        };
        setsockopt(&a, sockopt::Linger, &linger).expect("SO_LINGER 0");
        drop(a);
        server.await_settled(fds, threads, "after a client reset its connection");
        let mut b = connect(&server);
        b.write_all(b"still there?").expect("send");
        match read_exactly(&mut b, 12) {
            Ok(back) => assert_eq!(back, b"still there?", "the next client's echo differs"),
            Err(e) => {
                server.check_alive("after a client reset its connection");
                panic!("the next client: {e}\n{}", server.describe());
            }
        }
    });
}

/// Eight clients, four at a time, each echoed and gone: the server's fds and threads come
/// back to what they were with no client, and it sleeps in accept again.
#[test]
fn finished_connections_are_closed() {
    Isolation::new().deadline(Duration::from_secs(20)).run(|| {
        let mut server = Server::start();
        let (fds, threads) = (server.fds().len(), server.threads().len());
        for round in 0..2u8 {
            let handles: Vec<_> = (0..4u8)
                .map(|k| {
                    let port = server.port;
                    thread::spawn(move || {
                        run_client(port, vec![(pattern(100, round * 4 + k), true)])
                    })
                })
                .collect();
            for h in handles {
                if let Err(e) = h.join().expect("client thread") {
                    server.check_alive("while clients were echoed");
                    panic!("{e}\n{}", server.describe());
                }
            }
        }
        server.await_settled(fds, threads, "after eight clients had come and gone");
        server.await_accepting("after eight clients had come and gone");
    });
}

/// `serve` on a TCP socket that is not listening: accept(2) fails with EINVAL, which is not a
/// client's error, and serve must return it rather than go on (or panic).
#[test]
fn serve_returns_the_error_of_accept() {
    Isolation::new().deadline(Duration::from_secs(20)).run(|| {
        let sock = socket(
            AddressFamily::Inet,
            SockType::Stream,
            SockFlag::SOCK_CLOEXEC,
            None,
        )
        .expect("socket");
        let listener = TcpListener::from(sock);
        let (tx, rx) = mpsc::channel();
        thread::spawn(move || {
            let _ = tx.send(catch_unwind(AssertUnwindSafe(|| student(|| serve(listener)))).map_err(panic_text));
        });
        match rx.recv_timeout(scaled(SETTLE)) {
            Ok(Err(p)) => panic!("{p}"),
            Ok(Ok(Err(e))) if e.raw_os_error() == Some(libc::EINVAL) => {}
            Ok(Ok(Err(e))) => panic!("serve returned Err({e}); accept(2) on a socket that is not listening fails with EINVAL"),
            Ok(Ok(Ok(()))) => panic!("serve returned Ok(()) although accept(2) failed with EINVAL: return the error"),
            Err(mpsc::RecvTimeoutError::Disconnected) => panic!("serve panicked instead of returning accept's error"),
            Err(mpsc::RecvTimeoutError::Timeout) => panic!(
                "serve had not returned {:?} after accept(2) failed with EINVAL (a socket that is not listening): \
                 an error of accept that is not one client's (EINVAL, EMFILE) must be returned, not retried for \
                 ever",
                scaled(SETTLE)
            ),
        }
    });
}
