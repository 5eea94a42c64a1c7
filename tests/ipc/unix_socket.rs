//! ipc/unix_socket: a named Unix-domain stream socket (Unix 域套接字), server and client, and
//! who the client is (`SO_PEERCRED`).
//!
//! What the tests observe, never what the code under test claims:
//! - the file at the path (`lstat`: `S_IFSOCK`, its inode, a regular file's content) before
//!   and after each step;
//! - the listening socket's own options (`SO_ACCEPTCONN`, `SO_TYPE`, `SO_DOMAIN`), its name
//!   (`getsockname`) and `O_CLOEXEC` in `/proc/self/fdinfo`;
//! - the clients' pids as `fork` returned them, and their real uid and gid, against the
//!   credentials `serve` reports;
//! - every process's fd table in `/proc/<pid>/fd` (the server's after `serve`, each client's
//!   before and after `request`), and, while `serve` runs, what the server and the clients are
//!   asleep in (`/proc/<pid>/syscall`) and what is queued on the server's connection
//!   (`FIONREAD`), so a server and a client waiting for each other are named at once.
//!
//! The contract, clause by clause, and the test that checks each:
//! - `listen_at` makes a close-on-exec `AF_UNIX` `SOCK_STREAM` socket bound to the path (a
//!   socket file there) and listening (`listen_at_makes_a_listening_socket_file`);
//! - it removes a stale socket file first (`listen_at_removes_a_stale_socket_file`), and leaves
//!   anything else at the path alone, returning `EADDRINUSE` with no fd left open
//!   (`listen_at_leaves_a_file_that_is_not_a_socket`);
//! - `serve` reports each client's pid, uid and gid from `SO_PEERCRED`, in the order accepted,
//!   replies to each with its request reversed, closes each connection, and at the end closes
//!   the listener and removes the socket file (`serve_learns_who_each_client_is`: four
//!   clients in processes of their own, the fourth let go only once the server waits in accept
//!   holding no connection; `serve_with_no_clients_cleans_up`);
//! - `request` sends all of its data, shuts down its write side (else the server never sees end
//!   of file: reported as such), reads the whole reply and closes its socket
//!   (`a_big_request_crosses_both_ways`, and the clients of `serve_learns_who_each_client_is`);
//! - `request` returns `ENOENT` and `ECONNREFUSED` and leaves no fd open
//!   (`request_returns_the_errors_of_connect`).

// The exercise under test: your stub (by default), the reference solution (`--features
// solutions`), or a shipped mistake that `cargo grade --mistakes` copies into target/.
#[cfg(not(any(feature = "solutions", feature = "mistake")))]
#[path = "../../exercises/ipc/unix_socket.rs"]
#[allow(dead_code)] // a stub does not use all of its API yet
mod unix_socket;
#[cfg(all(feature = "solutions", not(feature = "mistake")))]
#[path = "../../solutions/ipc/unix_socket.rs"]
mod unix_socket;
#[cfg(feature = "mistake")]
#[path = "../../target/oskata-mistake/ipc/unix_socket.rs"]
#[rustfmt::skip] // the copy exists only while the proof runs
mod unix_socket;
use unix_socket::*;

use std::fs;
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use nix::errno::Errno;
use nix::sys::signal::{SigHandler, Signal, kill, signal};
use nix::sys::socket::{
    AddressFamily, SockFlag, SockType, UnixAddr, UnixCredentials, bind, getsockname, socket,
};
use nix::sys::wait::{WaitPidFlag, WaitStatus, waitpid};
use nix::unistd::{ForkResult, Pid, fork, getgid, getpid, getuid};
use oskata_harness::{Isolation, cases, evidence, poll, procfs, scaled, scratch_dir, student};

/// How long a correct client or server may take to reach its next step (before `scaled`).
const SETTLE: Duration = Duration::from_secs(5);

/// The lesson of a stale socket file.
const STALE: &str = "a socket file outlives the socket that bound it: closing a listening socket does not remove \
                     its name, so a server that ended (or crashed) leaves the file behind, and bind(2) to that \
                     path fails with EADDRINUSE. Remove the stale socket file first (lstat shows S_IFSOCK), then \
                     bind";

/// What the kernel shows of the test's processes.
fn evidence_now() -> String {
    let me = getpid();
    let mut procs: Vec<procfs::Stat> = procfs::stat(me).into_iter().collect();
    procs.extend(procfs::descendants(me));
    format!(
        "What the kernel shows (the test process, the server, is pid {me}):\n{}",
        evidence::describe(&procs)
    )
}

/// Kills and reaps the given children, then fails with `msg`.
fn fail(children: &[Pid], msg: String) -> ! {
    for &c in children {
        let _ = kill(c, Signal::SIGKILL);
        let _ = waitpid(c, None);
    }
    panic!("{msg}");
}

/// The socket's path in the scratch directory.
fn socket_path(name: &str) -> PathBuf {
    scratch_dir().join(name)
}

/// What is at `path`, in words, for messages.
fn what_is_at(path: &Path) -> String {
    match fs::symlink_metadata(path) {
        Ok(m) if m.file_type().is_socket() => format!("a socket file (inode {})", m.ino()),
        Ok(m) if m.is_file() => format!("a regular file of {} bytes", m.len()),
        Ok(m) if m.is_dir() => "a directory".into(),
        Ok(m) => format!("a file of type {:?}", m.file_type()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => "nothing".into(),
        Err(e) => format!("(lstat failed: {e})"),
    }
}

/// An int socket option of `fd` (level SOL_SOCKET).
fn sockopt_int(fd: &OwnedFd, name: libc::c_int) -> libc::c_int {
    let mut v: libc::c_int = 0;
    let mut len = size_of::<libc::c_int>() as libc::socklen_t;
    // SAFETY: getsockopt writes one int and its length into the two locals.
    let r = unsafe {
        libc::getsockopt(
            fd.as_raw_fd(),
            libc::SOL_SOCKET,
            name,
            (&raw mut v).cast(),
            &raw mut len,
        )
    };
    assert_eq!(r, 0, "getsockopt({name}): {}", Errno::last());
    v
}

/// The `flags:` line of `/proc/self/fdinfo/<fd>` (octal).
fn fdinfo_flags(fd: RawFd) -> Option<i32> {
    let text = fs::read_to_string(format!("/proc/self/fdinfo/{fd}")).ok()?;
    let line = text.lines().find_map(|l| l.strip_prefix("flags:"))?;
    i32::from_str_radix(line.trim(), 8).ok()
}

/// Bytes queued for reading on fd `fd` of this process (FIONREAD), if it is open.
fn queued(fd: RawFd) -> Option<usize> {
    let mut n: libc::c_int = 0;
    // SAFETY: FIONREAD writes one int into `n`; a closed fd gives EBADF and nothing else.
    let r = unsafe { libc::ioctl(fd, libc::FIONREAD, &raw mut n) };
    (r == 0).then_some(n as usize)
}

/// The fd table of this process.
fn my_fds() -> Vec<procfs::Fd> {
    procfs::fds(getpid()).expect("read the test's own /proc/<pid>/fd")
}

/// The fds in `after` that are not in `before` (same number, same target).
fn new_fds(before: &[procfs::Fd], after: &[procfs::Fd]) -> Vec<procfs::Fd> {
    after
        .iter()
        .filter(|f| !before.iter().any(|b| b.fd == f.fd && b.target == f.target))
        .cloned()
        .collect()
}

/// An fd table in one line.
fn show(fds: &[procfs::Fd]) -> String {
    fds.iter()
        .map(|f| format!("{} -> {}", f.fd, f.target))
        .collect::<Vec<_>>()
        .join(", ")
}

/// A socket bound to `path` by the test and closed again, without unlinking: the stale socket
/// file an earlier server leaves. Returns the file's inode.
fn make_stale_socket(path: &Path) -> u64 {
    let sock = socket(
        AddressFamily::Unix,
        SockType::Stream,
        SockFlag::SOCK_CLOEXEC,
        None,
    )
    .expect("socket");
    bind(
        sock.as_raw_fd(),
        &UnixAddr::new(path).expect("a socket address"),
    )
    .expect("the test's bind");
    nix::sys::socket::listen(&sock, nix::sys::socket::Backlog::new(4).expect("backlog"))
        .expect("the test's listen");
    drop(sock);
    let m = fs::symlink_metadata(path).expect("the stale socket file");
    assert!(m.file_type().is_socket());
    m.ino()
}

/// Read-like system calls a process waits for data in.
const READS: [i64; 5] = [
    libc::SYS_read,
    libc::SYS_readv,
    libc::SYS_recvfrom,
    libc::SYS_recvmsg,
    libc::SYS_pread64,
];

/// The fd `pid` is asleep reading, if it is.
fn asleep_reading(pid: Pid) -> Option<i32> {
    let call = procfs::syscall(pid)?;
    (READS.contains(&call.nr) && procfs::state(pid) == Some('S')).then_some(call.args[0] as i32)
}

/// System calls a server may wait in for any fd, a new connection included.
const POLLS: [i64; 6] = [
    libc::SYS_poll,
    libc::SYS_ppoll,
    libc::SYS_select,
    libc::SYS_pselect6,
    libc::SYS_epoll_wait,
    libc::SYS_epoll_pwait,
];

/// A client the test forked: it calls `request` and writes what happened to `report`.
struct Client {
    pid: Pid,
    data: Vec<u8>,
    report: PathBuf,
}

/// What a client reported.
struct Outcome {
    /// `OK`, `ERR <errno>` or `PANIC <message>`.
    status: String,
    /// The client's own fds that `request` left open (empty when none).
    leaked: String,
    /// The client's real pid, uid and gid, as it saw them.
    ids: String,
    reply: Vec<u8>,
}

/// Forks a client that sends `data` to the server at `path` with the student's `request`.
/// The child closes the fd `listener` it inherited (the server's), and reports to a file.
fn spawn_client(path: &Path, data: Vec<u8>, listener: RawFd, k: usize) -> Client {
    spawn_gated_client(path, data, listener, k, None)
}

/// [`spawn_client`], with a client that first waits for a byte (or end of file) on `gate`.
fn spawn_gated_client(
    path: &Path,
    data: Vec<u8>,
    listener: RawFd,
    k: usize,
    gate: Option<OwnedFd>,
) -> Client {
    let report = scratch_dir().join(format!("client-{k}.report"));
    // SAFETY: the test process is single-threaded here; the child makes system calls, builds
    // a report, and leaves with _exit.
    match unsafe { fork() }.expect("fork a client") {
        ForkResult::Child => {
            // SAFETY: closes the child's copy of the server's listening socket.
            unsafe { libc::close(listener) };
            // A server that stops reading early makes the client's write fail with EPIPE
            // (reported) rather than kill it.
            // SAFETY: ignoring a signal involves no handler code.
            let _ = unsafe { signal(Signal::SIGPIPE, SigHandler::SigIgn) };
            if let Some(gate) = gate {
                let _ = nix::unistd::read(&gate, &mut [0u8; 1]);
            }
            let before = procfs::fds(getpid()).unwrap_or_default();
            let got = catch_unwind(AssertUnwindSafe(|| request(path, &data)));
            let after = procfs::fds(getpid()).unwrap_or_default();
            let leaked = show(&new_fds(&before, &after));
            let (status, reply) = match got {
                Ok(Ok(reply)) => ("OK".to_owned(), reply),
                Ok(Err(e)) => (format!("ERR {e}"), Vec::new()),
                Err(p) => {
                    let msg = p
                        .downcast_ref::<&str>()
                        .map(|s| s.to_string())
                        .or_else(|| p.downcast_ref::<String>().cloned())
                        .unwrap_or_default();
                    (format!("PANIC {}", msg.replace('\n', " ")), Vec::new())
                }
            };
            let ids = format!("{} {} {}", getpid(), getuid(), getgid());
            let mut out = format!("{status}\n{leaked}\n{ids}\n").into_bytes();
            out.extend_from_slice(&reply);
            let code = if fs::write(&report, out).is_ok() {
                0
            } else {
                2
            };
            // SAFETY: _exit ends the forked client without returning into the test.
            unsafe { libc::_exit(code) }
        }
        ForkResult::Parent { child } => {
            drop(gate);
            Client {
                pid: child,
                data,
                report,
            }
        }
    }
}

/// Reads a client's report after it exited.
fn outcome(c: &Client) -> Outcome {
    let raw = fs::read(&c.report).unwrap_or_default();
    let mut parts = raw.splitn(4, |&b| b == b'\n');
    let mut line = || String::from_utf8_lossy(parts.next().unwrap_or_default()).into_owned();
    let (status, leaked, ids) = (line(), line(), line());
    let reply = parts.next().unwrap_or_default().to_vec();
    Outcome {
        status,
        leaked,
        ids,
        reply,
    }
}

/// Waits until client `c` is connected and waiting for its reply (asleep reading), or has
/// already exited; fails at once if it sleeps in connect(2) (the backlog is full).
fn await_connected(c: &Client, all: &[Pid]) {
    let settle = scaled(SETTLE);
    let start = Instant::now();
    let mut round = 0;
    loop {
        if asleep_reading(c.pid).is_some() || procfs::state(c.pid).is_none_or(|s| s == 'Z') {
            return;
        }
        if procfs::syscall(c.pid).is_some_and(|s| s.nr == libc::SYS_connect)
            && procfs::state(c.pid) == Some('S')
            && start.elapsed() > scaled(Duration::from_millis(200))
        {
            fail(
                all,
                format!(
                    "client pid {} is asleep in connect(2): the listening socket's queue is full. listen(2)'s \
                     backlog says how many connections may wait to be accepted; it should be at least 8.\n{}",
                    c.pid,
                    evidence_now()
                ),
            );
        }
        if start.elapsed() > settle {
            fail(
                all,
                format!(
                    "after {settle:?} client pid {} had neither connected and sent its request (to wait for the \
                     reply) nor exited.\n{}",
                    c.pid,
                    evidence_now()
                ),
            );
        }
        poll::pause(&mut round);
    }
}

/// Calls the student's `serve` while a watcher thread looks for the server and every client
/// waiting for each other: the server asleep reading a connection with nothing queued, every
/// live client asleep reading too. A client that shut down its write side cannot be that
/// server's peer (the server's read would return 0), so this is a deadlock: the watcher names
/// it and kills the clients, which ends the server's read. Returns serve's result and the
/// watcher's finding.
fn serve_watched(
    listener: OwnedFd,
    clients: &[Client],
) -> (nix::Result<Vec<UnixCredentials>>, Option<String>) {
    serve_watched_gated(listener, clients, None)
}

/// A client held back until the server waits in accept: the gate's write end, and the
/// server's fd table before `listen_at`.
struct Gate {
    release: OwnedFd,
    before: Vec<procfs::Fd>,
}

/// [`serve_watched`], and also: the first time the server is seen asleep in accept(2), its fd
/// table must hold no connection (every client served so far has had its connection closed);
/// then the gated client is let go.
fn serve_watched_gated(
    listener: OwnedFd,
    clients: &[Client],
    gate: Option<Gate>,
) -> (nix::Result<Vec<UnixCredentials>>, Option<String>) {
    let me = getpid();
    let listener_fd = listener.as_raw_fd();
    // A client the watcher kills leaves the server's reply nowhere to go: let that write fail
    // with EPIPE rather than kill the test.
    // SAFETY: ignoring a signal involves no handler code.
    unsafe { signal(Signal::SIGPIPE, SigHandler::SigIgn) }.expect("ignore SIGPIPE");
    let pids: Vec<Pid> = clients.iter().map(|c| c.pid).collect();
    let done = Arc::new(AtomicBool::new(false));
    let watcher = {
        let done = Arc::clone(&done);
        let pids = pids.clone();
        thread::spawn(move || {
            let mut streak = 0;
            let mut gate = gate;
            let mut finding = None;
            while !done.load(Ordering::SeqCst) {
                let accepting = procfs::syscall(me)
                    .is_some_and(|c| c.nr == libc::SYS_accept || c.nr == libc::SYS_accept4)
                    && procfs::state(me) == Some('S');
                let polling = procfs::syscall(me).is_some_and(|c| POLLS.contains(&c.nr))
                    && procfs::state(me) == Some('S');
                if polling && !accepting {
                    // A server that waits in poll(2) or its kin cannot be told waiting for a
                    // client from waiting for data: let the gated client go, unchecked.
                    drop(gate.take());
                }
                if accepting && let Some(g) = gate.take() {
                    let kept: Vec<procfs::Fd> = new_fds(&g.before, &my_fds())
                        .into_iter()
                        .filter(|f| f.fd != listener_fd && f.target.starts_with("socket:"))
                        .collect();
                    if !kept.is_empty() {
                        finding = Some(format!(
                            "the server (pid {me}) is asleep in accept(2) waiting for its next client while it \
                             still holds [{}] besides the listening socket (fd {listener_fd}): the connections of \
                             earlier clients. serve takes one client at a time: accept, read, reply, close. Close each connection once its client has the reply: \
                             the client reads until end of file, which it sees only when the server closes its \
                             side, and each connection kept open is an fd (and a waiting client) more per client",
                            show(&kept)
                        ));
                    }
                    let _ = nix::unistd::write(&g.release, b"go");
                }
                let stuck = asleep_reading(me).filter(|&fd| queued(fd) == Some(0));
                let live: Vec<Pid> = pids
                    .iter()
                    .copied()
                    .filter(|&p| procfs::state(p).is_some_and(|s| s != 'Z'))
                    .collect();
                let all_reading =
                    !live.is_empty() && live.iter().all(|&p| asleep_reading(p).is_some());
                if let (Some(fd), true) = (stuck, all_reading) {
                    streak += 1;
                    if streak >= 5 {
                        let text = format!(
                            "the server (pid {me}) is asleep reading its connection on fd {fd}, with nothing \
                             queued, while every client still running ({}) is asleep reading too, waiting for its \
                             reply: they wait for each other. The server reads the request until end of file, which \
                             comes only when the client says it has sent everything: the client must call \
                             shutdown(fd, Shutdown::Write) after writing its request (closing would also end the \
                             stream, but then the reply could not arrive). The client never shut down its write side, \
                             so the server never saw end of file. The test killed the clients to end it.\n{}",
                            live.iter()
                                .map(|p| format!("pid {p}"))
                                .collect::<Vec<_>>()
                                .join(", "),
                            evidence_now()
                        );
                        for p in &pids {
                            let _ = kill(*p, Signal::SIGKILL);
                        }
                        return finding.or(Some(text));
                    }
                } else {
                    streak = 0;
                }
                thread::sleep(Duration::from_millis(10));
            }
            // A gated client the server never waited for goes now (dropping the write end).
            drop(gate);
            finding
        })
    };
    let got = student(|| serve(listener, clients.len()));
    done.store(true, Ordering::SeqCst);
    let finding = watcher.join().expect("the watcher thread");
    (got, finding)
}

/// Reaps every client, failing with evidence if one does not exit (it never got the end of
/// its reply: the server kept its connection open).
fn reap(clients: &[Client]) {
    let pids: Vec<Pid> = clients.iter().map(|c| c.pid).collect();
    let settle = scaled(SETTLE);
    let start = Instant::now();
    let mut round = 0;
    for c in clients {
        loop {
            match waitpid(c.pid, Some(WaitPidFlag::WNOHANG)) {
                Ok(WaitStatus::Exited(_, 0)) => break,
                Ok(WaitStatus::StillAlive) | Err(Errno::EINTR) => {}
                Ok(other) => fail(
                    &pids,
                    format!("client pid {} ended as {other:?}, not with status 0", c.pid),
                ),
                Err(e) => panic!("waitpid({}): {e}", c.pid),
            }
            if start.elapsed() > settle {
                fail(
                    &pids,
                    format!(
                        "after serve returned, client pid {} was still waiting {settle:?} later (asleep reading: \
                         {:?}): it never saw the end of its reply. The server must close each connection once it \
                         has replied; the test process (the server) holds [{}].\n{}",
                        c.pid,
                        asleep_reading(c.pid),
                        show(&my_fds()),
                        evidence_now()
                    ),
                );
            }
            poll::pause(&mut round);
        }
    }
}

/// Checks a client's report: `request` succeeded, left no fd open, and got its request back
/// reversed.
fn check_client(c: &Client) {
    let o = outcome(c);
    if o.status != "OK" {
        let hint = if o.status.contains("EPIPE") || o.status.contains("ECONNRESET") {
            " The server closed the connection while the client was still sending: it must read the request until \
             end of file (read returning 0), however many reads that takes, before it replies and closes."
        } else {
            ""
        };
        panic!(
            "client pid {}: request returned {} instead of the reply.{hint}",
            c.pid, o.status
        );
    }
    assert!(
        o.leaked.is_empty(),
        "client pid {}: request left fds open in the client: [{}]. The client closes its socket when it has the \
         reply (an OwnedFd does when dropped)",
        c.pid,
        o.leaked
    );
    let mut expected = c.data.clone();
    expected.reverse();
    if o.reply != expected {
        let why = if o.reply.len() < expected.len() && expected.ends_with(&o.reply) {
            " The reply is the end of the expected one: the server replied to only the first part of the request. \
             A read on a stream returns what has arrived so far; the request is everything up to end of file."
        } else if o.reply.len() < expected.len() && expected.starts_with(&o.reply) {
            " It is the start of the reply: the client stopped reading early; the reply is everything until the \
             server closes the connection (read returns 0)."
        } else {
            ""
        };
        panic!(
            "client pid {} sent {} bytes and got a reply of {} bytes that is not its request reversed.{why}",
            c.pid,
            c.data.len(),
            o.reply.len()
        );
    }
}

/// The checks after `serve` returned: the socket file is gone and the server holds no socket
/// it did not hold before `listen_at`.
fn check_server_cleaned_up(path: &Path, before: &[procfs::Fd]) {
    let left = new_fds(before, &my_fds());
    if !left.is_empty() {
        panic!(
            "after serve returned, the server (pid {}) still holds [{}], fds it did not have before listen_at: the \
             listening socket is still open, or a client's connection. serve closes each connection when its client \
             is served, and the listening socket when it stops; while the listener is open, clients can still \
             connect to a server that no longer accepts",
            getpid(),
            show(&left)
        );
    }
    if fs::symlink_metadata(path).is_ok() {
        panic!(
            "the socket file is still there after serve ended ({} at {}): closing the listening socket does not \
             remove its name. The server removes it (unlink) when it stops; else the next server's bind fails with \
             EADDRINUSE, and clients find a name that nobody answers (ECONNREFUSED)",
            what_is_at(path),
            path.display()
        );
    }
}

/// `listen_at` makes a socket file at the path and returns a close-on-exec AF_UNIX stream socket
/// that listens and is named by that path.
#[test]
fn listen_at_makes_a_listening_socket_file() {
    Isolation::new().deadline(Duration::from_secs(15)).check_fds().run(|| {
        let path = socket_path("server.sock");
        let before = my_fds();
        let listener = student(|| listen_at(&path))
            .unwrap_or_else(|e| panic!("listen_at({}) failed: {e}", path.display()));
        let m = fs::symlink_metadata(&path).ok();
        assert!(
            m.is_some_and(|m| m.file_type().is_socket()),
            "after listen_at, {} is {}, not a socket file: bind(2) makes one at the path",
            path.display(),
            what_is_at(&path)
        );
        let domain = sockopt_int(&listener, libc::SO_DOMAIN);
        let ty = sockopt_int(&listener, libc::SO_TYPE);
        assert!(
            domain == libc::AF_UNIX && ty == libc::SOCK_STREAM,
            "the socket listen_at returned has SO_DOMAIN {domain} and SO_TYPE {ty}: it must be AF_UNIX ({}) and \
             SOCK_STREAM ({})",
            libc::AF_UNIX,
            libc::SOCK_STREAM
        );
        assert_eq!(
            sockopt_int(&listener, libc::SO_ACCEPTCONN),
            1,
            "the socket listen_at returned is bound but does not listen (SO_ACCEPTCONN is 0): it never called \
             listen(2), so a client's connect fails with ECONNREFUSED and accept fails with EINVAL. The order is \
             socket, bind, listen, and only then accept"
        );
        let name: UnixAddr = getsockname(listener.as_raw_fd()).expect("getsockname");
        assert_eq!(
            name.path(),
            Some(path.as_path()),
            "the listening socket's name (getsockname) should be the path it was bound to"
        );
        let flags = fdinfo_flags(listener.as_raw_fd()).unwrap_or(0);
        assert!(
            flags & libc::O_CLOEXEC != 0,
            "the listening socket is not close-on-exec (flags 0{flags:o}): make it with SOCK_CLOEXEC"
        );
        let added = new_fds(&before, &my_fds());
        assert!(
            added.len() == 1 && added[0].fd == listener.as_raw_fd(),
            "listen_at should open exactly one fd, the socket it returns; the table gained [{}]",
            show(&added)
        );
    });
}

/// With no clients, `serve` closes the listener and removes the socket file.
#[test]
fn serve_with_no_clients_cleans_up() {
    Isolation::new()
        .deadline(Duration::from_secs(15))
        .check_fds()
        .run(|| {
            let path = socket_path("server.sock");
            let before = my_fds();
            let listener = student(|| listen_at(&path))
                .unwrap_or_else(|e| panic!("listen_at({}) failed: {e}", path.display()));
            let got = student(|| serve(listener, 0));
            assert!(
                matches!(&got, Ok(v) if v.is_empty()),
                "serve with no clients should return Ok with no credentials, not {got:?}"
            );
            check_server_cleaned_up(&path, &before);
        });
}

/// A socket file left by an earlier server (the test binds one, listens, and closes it without
/// unlinking) is removed, and `listen_at` binds a new socket at the path.
#[test]
fn listen_at_removes_a_stale_socket_file() {
    Isolation::new().deadline(Duration::from_secs(15)).check_fds().run(|| {
        let path = socket_path("server.sock");
        let stale = make_stale_socket(&path);
        // A second name for the stale file keeps its inode (and number) alive, so the file at
        // the path afterwards can be told from it.
        let keep = socket_path("stale.keep");
        fs::hard_link(&path, &keep).expect("link the stale socket file");
        let got = student(|| listen_at(&path));
        let listener = match got {
            Ok(l) => l,
            Err(Errno::EADDRINUSE) => panic!(
                "listen_at failed with EADDRINUSE on a path that held a stale socket file (inode {stale}, from a \
                 socket the test bound and closed): {STALE}"
            ),
            Err(e) => panic!("listen_at failed with {e} on a path that held a stale socket file: {STALE}"),
        };
        let m = fs::symlink_metadata(&path).ok();
        assert!(
            m.as_ref().is_some_and(|m| m.file_type().is_socket() && m.ino() != stale),
            "after listen_at, {} is {} (the stale socket file was inode {stale}): it should be a new socket file, \
             made by listen_at's own bind",
            path.display(),
            what_is_at(&path)
        );
        assert_eq!(
            sockopt_int(&listener, libc::SO_ACCEPTCONN),
            1,
            "the socket listen_at returned does not listen (SO_ACCEPTCONN 0)"
        );
        let _ = fs::remove_file(&keep);
    });
}

/// A regular file at the path is not a stale socket: `listen_at` must leave it, content and
/// all, and return bind's EADDRINUSE with no fd left open.
#[test]
fn listen_at_leaves_a_file_that_is_not_a_socket() {
    Isolation::new().deadline(Duration::from_secs(15)).check_fds().run(|| {
        let path = socket_path("server.sock");
        let content = cases::random_bytes(100);
        fs::write(&path, &content).expect("write a regular file at the path");
        let before = my_fds();
        let got = student(|| listen_at(&path));
        let text = format!("{got:?}");
        drop(got);
        let now = fs::read(&path).ok();
        if now.as_deref() != Some(&content[..]) {
            panic!(
                "listen_at deleted a file that is not a socket: {} was a regular file of 100 bytes, and after \
                 listen_at ({text}) it is {}. Only a stale socket file (S_IFSOCK, as lstat shows) may be removed; \
                 anything else at the path is someone's data, and the server must fail (bind gives EADDRINUSE) \
                 rather than delete it",
                path.display(),
                what_is_at(&path)
            );
        }
        let left = new_fds(&before, &my_fds());
        assert!(
            left.is_empty(),
            "listen_at failed ({text}) but left fds open: [{}]. A socket made before a failing bind must be closed",
            show(&left)
        );
        assert_eq!(
            text,
            format!("{:?}", Err::<(), Errno>(Errno::EADDRINUSE)),
            "listen_at on a path that holds a regular file should return bind's error, EADDRINUSE"
        );
    });
}

/// Three clients in processes of their own, connected one after another before the server
/// accepts (each seen waiting for its reply), and a fourth that connects only once the server,
/// done with those three, waits in accept (when it must hold none of their connections):
/// `serve` reports each one's pid (the one `fork` returned, never the server's), uid and gid,
/// in that order; each client gets its request reversed and closes its socket; afterwards the
/// server holds no socket and the file is gone.
#[test]
fn serve_learns_who_each_client_is() {
    Isolation::new().deadline(Duration::from_secs(20)).check_fds().run(|| {
        let path = socket_path("server.sock");
        let before = my_fds();
        let listener = student(|| listen_at(&path))
            .unwrap_or_else(|e| panic!("listen_at({}) failed: {e}", path.display()));
        let mut clients = Vec::new();
        for k in 0..3 {
            let c = spawn_client(&path, cases::random_bytes(1000 + 500 * k), listener.as_raw_fd(), k);
            let pids: Vec<Pid> = clients.iter().map(|c: &Client| c.pid).chain([c.pid]).collect();
            await_connected(&c, &pids);
            clients.push(c);
        }
        // The fourth connects only once the server waits in accept, its first three served.
        let (gate_r, gate_w) = nix::unistd::pipe().expect("pipe");
        let fourth = spawn_gated_client(&path, cases::random_bytes(700), listener.as_raw_fd(), 3, Some(gate_r));
        clients.push(fourth);
        let pids: Vec<Pid> = clients.iter().map(|c| c.pid).collect();
        let gate = Gate {
            release: gate_w,
            before: before.clone(),
        };
        let (got, finding) = serve_watched_gated(listener, &clients, Some(gate));
        if let Some(text) = finding {
            fail(&pids, text);
        }
        let peers = match got {
            Ok(p) => p,
            Err(e) => fail(&pids, format!("serve failed: {e}")),
        };
        reap(&clients);
        let me = getpid();
        if peers.len() != 4 {
            panic!("serve served 4 clients but returned {} credentials", peers.len());
        }
        for (k, (c, p)) in clients.iter().zip(&peers).enumerate() {
            let o = outcome(c);
            if p.pid() == me.as_raw() {
                panic!(
                    "serve reported pid {} for client {} (pid {}): that is the server's own pid, the server's own \
                     credentials. SO_PEERCRED on the listening socket gives whoever called listen(2); ask the \
                     connection accept returned, whose peer is the client",
                    p.pid(),
                    k + 1,
                    c.pid
                );
            }
            assert_eq!(
                p.pid(),
                c.pid.as_raw(),
                "client {} was forked as pid {} (and connected {}), but serve reported pid {} for it. The clients \
                 connected one after another, so accept takes them in that order; the credentials must be the \
                 kernel's record of who connected (SO_PEERCRED on the accepted connection)",
                k + 1,
                c.pid,
                ["first", "second", "third", "fourth"][k],
                p.pid()
            );
            assert_eq!(
                format!("{} {} {}", p.pid(), p.uid(), p.gid()),
                o.ids,
                "the credentials serve reported for client {} (pid, uid, gid) differ from the client's own real ids",
                k + 1
            );
            check_client(c);
        }
        check_server_cleaned_up(&path, &before);
    });
}

/// One client sends 300 KB, far more than a socket buffers, while the server reads: the
/// server must read to end of file, the client write everything and read the whole reply.
#[test]
fn a_big_request_crosses_both_ways() {
    Isolation::new()
        .deadline(Duration::from_secs(20))
        .check_fds()
        .run(|| {
            let path = socket_path("server.sock");
            let before = my_fds();
            let listener = student(|| listen_at(&path))
                .unwrap_or_else(|e| panic!("listen_at({}) failed: {e}", path.display()));
            let clients = vec![spawn_client(
                &path,
                cases::random_bytes(300_000),
                listener.as_raw_fd(),
                0,
            )];
            let pids: Vec<Pid> = clients.iter().map(|c| c.pid).collect();
            let (got, finding) = serve_watched(listener, &clients);
            if let Some(text) = finding {
                fail(&pids, text);
            }
            if let Err(e) = got {
                fail(&pids, format!("serve failed: {e}"));
            }
            reap(&clients);
            check_client(&clients[0]);
            check_server_cleaned_up(&path, &before);
        });
}

/// `request` to a path where nothing is returns ENOENT; to a stale socket file (nobody listens)
/// ECONNREFUSED; and leaves no fd open either way.
#[test]
fn request_returns_the_errors_of_connect() {
    Isolation::new().deadline(Duration::from_secs(15)).check_fds().run(|| {
        let path = socket_path("nobody.sock");
        let before = my_fds();
        let got = student(|| request(&path, b"hello"));
        assert_eq!(
            got,
            Err(Errno::ENOENT),
            "request to {}, where nothing is, should return connect's error, ENOENT",
            path.display()
        );
        make_stale_socket(&path);
        let got = student(|| request(&path, b"hello"));
        assert_eq!(
            got,
            Err(Errno::ECONNREFUSED),
            "request to a socket file nobody listens on any more should return connect's error, ECONNREFUSED"
        );
        let left = new_fds(&before, &my_fds());
        assert!(
            left.is_empty(),
            "request failed but left fds open: [{}]. Its socket must be closed on every path out",
            show(&left)
        );
        let _ = fs::remove_file(&path);
    });
}
