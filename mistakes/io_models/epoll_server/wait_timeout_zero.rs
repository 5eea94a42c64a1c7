//! # An echo server on epoll (I/O 多路复用), level-triggered and edge-triggered
//!
//! A classic mistake: epoll_wait with a timeout of 0, a busy loop. See `exercises/io_models/epoll_server.rs` for the lesson.
use std::collections::{HashMap, VecDeque};
use std::convert::Infallible;
use std::net::TcpListener;
use std::os::fd::{AsFd, AsRawFd, FromRawFd, OwnedFd, RawFd};

use nix::errno::Errno;
use nix::fcntl::{FcntlArg, OFlag, fcntl};
use nix::sys::epoll::{Epoll, EpollCreateFlags, EpollEvent, EpollFlags, EpollTimeout};
use nix::sys::resource::{Resource, getrlimit, setrlimit};
use nix::sys::socket::{MsgFlags, SockFlag, accept4, recv, send};

/// How epoll reports readiness to [`serve`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Trigger {
    /// Level-triggered (水平触发): `epoll_wait` reports an fd for as long as it is ready.
    Level,
    /// Edge-triggered (边缘触发, `EPOLLET`): `epoll_wait` reports an fd when it becomes ready.
    Edge,
}

/// The `data` of the listening socket's event (a connection's is its fd number).
const LISTENER: u64 = u64::MAX;
/// Bytes asked for by one `recv`.
const CHUNK: usize = 16 * 1024;
/// Edge-triggered: the most reads one connection gets per turn before the others are served.
const BUDGET: usize = 16;

/// Raises this process's soft limit on open fds (`RLIMIT_NOFILE`) to its hard limit, and
/// returns the new soft limit.
pub fn raise_fd_limit() -> nix::Result<u64> {
    let (soft, hard) = getrlimit(Resource::RLIMIT_NOFILE)?;
    if soft < hard {
        setrlimit(Resource::RLIMIT_NOFILE, hard, hard)?;
    }
    Ok(hard)
}

/// One client connection: its socket, the bytes still to echo, and what it waits for.
struct Conn {
    fd: OwnedFd,
    out: VecDeque<u8>,
    /// The client sent end of file (or the reads are over): only the output is left.
    eof: bool,
    /// The interest registered with epoll now.
    interest: EpollFlags,
}

/// What a step on a connection decided.
enum Next {
    Keep,
    Close,
}

/// Serves an echo service on `listener` with epoll in the given trigger mode, forever.
///
/// Returns only on an error that ends the service (epoll itself failing, `accept4` failing with
/// anything but `EAGAIN`, `EINTR` or `ECONNABORTED`).
pub fn serve(listener: TcpListener, trigger: Trigger) -> nix::Result<Infallible> {
    raise_fd_limit()?;
    let listener = OwnedFd::from(listener);
    set_nonblocking(&listener)?;
    let epoll = Epoll::new(EpollCreateFlags::EPOLL_CLOEXEC)?;
    let et = match trigger {
        Trigger::Level => EpollFlags::empty(),
        Trigger::Edge => EpollFlags::EPOLLET,
    };
    epoll.add(
        &listener,
        EpollEvent::new(EpollFlags::EPOLLIN | et, LISTENER),
    )?;
    let mut conns: HashMap<RawFd, Conn> = HashMap::new();
    // Edge-triggered connections that used their budget with bytes still unread: no new edge
    // will come for those, so they are served again without waiting.
    let mut unfinished: Vec<RawFd> = Vec::new();
    let mut events = vec![EpollEvent::empty(); 256];
    loop {
        // The mistake: a timeout of 0 "to stay responsive": epoll_wait never sleeps.
        let timeout = EpollTimeout::ZERO;
        let n = match epoll.wait(&mut events, timeout) {
            Ok(n) => n,
            Err(Errno::EINTR) => continue,
            Err(e) => return Err(e),
        };
        let mut todo: Vec<(RawFd, EpollFlags)> = std::mem::take(&mut unfinished)
            .into_iter()
            .map(|fd| (fd, EpollFlags::EPOLLIN))
            .collect();
        for ev in &events[..n] {
            if ev.data() == LISTENER {
                accept_all(&listener, &epoll, et, &mut conns)?;
            } else {
                todo.push((ev.data() as RawFd, ev.events()));
            }
        }
        for (fd, flags) in todo {
            let Some(conn) = conns.get_mut(&fd) else {
                continue; // closed earlier in this turn
            };
            let mut more = false;
            let next = step(conn, flags, trigger, &mut more);
            match next.and_then(|n| rearm(&epoll, conn, et).map(|()| n)) {
                Ok(Next::Keep) => {
                    if more && !unfinished.contains(&fd) {
                        unfinished.push(fd);
                    }
                }
                Ok(Next::Close) | Err(_) => {
                    if let Some(conn) = conns.remove(&fd) {
                        let _ = epoll.delete(&conn.fd);
                    }
                    unfinished.retain(|&u| u != fd);
                }
            }
        }
    }
}

/// Accepts every pending connection, until `accept4` says `EAGAIN`.
fn accept_all(
    listener: &OwnedFd,
    epoll: &Epoll,
    et: EpollFlags,
    conns: &mut HashMap<RawFd, Conn>,
) -> nix::Result<()> {
    loop {
        let raw = match accept4(
            listener.as_raw_fd(),
            SockFlag::SOCK_NONBLOCK | SockFlag::SOCK_CLOEXEC,
        ) {
            Ok(raw) => raw,
            Err(Errno::EAGAIN) => return Ok(()),
            Err(Errno::EINTR | Errno::ECONNABORTED) => continue,
            Err(e) => return Err(e),
        };
        // SAFETY: accept4 just returned this fd, and nothing else owns it.
        let fd = unsafe { OwnedFd::from_raw_fd(raw) };
        let interest = EpollFlags::EPOLLIN;
        epoll.add(&fd, EpollEvent::new(interest | et, raw as u64))?;
        conns.insert(
            raw,
            Conn {
                fd,
                out: VecDeque::new(),
                eof: false,
                interest,
            },
        );
    }
}

/// Reads what the connection has (edge-triggered: until `EAGAIN` or the budget is spent, then
/// `more` is set), and sends what it can of the output.
fn step(
    conn: &mut Conn,
    flags: EpollFlags,
    trigger: Trigger,
    more: &mut bool,
) -> nix::Result<Next> {
    let readable = EpollFlags::EPOLLIN | EpollFlags::EPOLLHUP | EpollFlags::EPOLLERR;
    if flags.intersects(readable) && !conn.eof {
        let mut buf = [0u8; CHUNK];
        let mut reads = 0;
        loop {
            match recv(conn.fd.as_raw_fd(), &mut buf, MsgFlags::empty()) {
                Ok(0) => {
                    conn.eof = true;
                    break;
                }
                Ok(n) => conn.out.extend(&buf[..n]),
                Err(Errno::EINTR) => continue,
                Err(Errno::EAGAIN) => break,
                Err(_) => return Ok(Next::Close), // reset by the peer: nobody to echo to
            }
            reads += 1;
            if trigger == Trigger::Level {
                break; // epoll will say again if more is there
            }
            if reads == BUDGET {
                *more = true;
                break;
            }
        }
    }
    while !conn.out.is_empty() {
        let (head, _) = conn.out.as_slices();
        match send(conn.fd.as_raw_fd(), head, MsgFlags::MSG_NOSIGNAL) {
            Ok(n) => {
                conn.out.drain(..n);
            }
            Err(Errno::EINTR) => continue,
            Err(Errno::EAGAIN) => break,
            Err(_) => return Ok(Next::Close), // EPIPE, ECONNRESET: the client is gone
        }
    }
    if conn.eof && conn.out.is_empty() {
        return Ok(Next::Close);
    }
    Ok(Next::Keep)
}

/// Tells epoll what the connection waits for now: input until end of file, output while bytes
/// are unsent. Only a change costs an `epoll_ctl`.
fn rearm(epoll: &Epoll, conn: &mut Conn, et: EpollFlags) -> nix::Result<()> {
    let mut want = EpollFlags::empty();
    if !conn.eof {
        want |= EpollFlags::EPOLLIN;
    }
    if !conn.out.is_empty() {
        want |= EpollFlags::EPOLLOUT;
    }
    if want != conn.interest {
        let mut ev = EpollEvent::new(want | et, conn.fd.as_raw_fd() as u64);
        epoll.modify(conn.fd.as_fd(), &mut ev)?;
        conn.interest = want;
    }
    Ok(())
}

/// Sets `O_NONBLOCK` on `fd`, keeping its other status flags.
fn set_nonblocking(fd: &OwnedFd) -> nix::Result<()> {
    let flags = OFlag::from_bits_retain(fcntl(fd, FcntlArg::F_GETFL)?);
    fcntl(fd, FcntlArg::F_SETFL(flags | OFlag::O_NONBLOCK))?;
    Ok(())
}
