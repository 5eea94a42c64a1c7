//! ipc/socketpair: a socket pair (套接字对) between parent and child, and an open file
//! descriptor passed with SCM_RIGHTS.
//!
//! What the tests observe, never what the code under test claims:
//! - the control messages the kernel delivers (the test's own `recvmsg` with room for many
//!   fds, and `MSG_CTRUNC` in its flags), and the data bytes beside them;
//! - both fd tables in `/proc/<pid>/fd` (socket inodes, pipe inodes, paths), with the child
//!   seen asleep in `recvmsg(2)` or `read(2)` in `/proc/<pid>/syscall`, so that it has done
//!   what comes before;
//! - the open file behind a received fd: its offset, shared with the sender's fd (`lseek` on
//!   one moves the other), and `O_CLOEXEC` in `/proc/self/fdinfo/<fd>`;
//! - `SO_TYPE` and `SO_DOMAIN` of the parent's end; the child's exit status from `waitpid`.
//!
//! The contract, clause by clause, and the test that checks each:
//! - `send_fd` sends the data with exactly one fd in an `SCM_RIGHTS` control message, the fd
//!   refers to the caller's open file (same offset), and the caller's fd stays open
//!   (`send_fd_passes_the_open_file_in_scm_rights`);
//! - `send_fd` refuses empty data with EINVAL and sends nothing
//!   (`send_fd_refuses_empty_data`);
//! - `recv_fd` returns the data and a new fd for the same open file, close-on-exec, and opens
//!   nothing else (`recv_fd_gets_a_new_fd_for_the_same_open_file`);
//! - a message with no fd, two fds, or three (whose control data does not fit a buffer made
//!   for one, so `MSG_CTRUNC`) gets EBADMSG with every fd that arrived closed
//!   (`recv_fd_rejects_a_message_without_exactly_one_fd`, three cases);
//! - end of file is `Ok(None)` (`recv_fd_reports_end_of_file_as_none`), an empty buffer EINVAL
//!   with the message left queued (`recv_fd_refuses_an_empty_buffer`), and a `recvmsg` a
//!   signal interrupted is retried (`recv_fd_retries_when_a_signal_interrupts_it`);
//! - `spawn_file_reader` returns an `AF_UNIX` `SOCK_STREAM` socket, the parent keeps only that
//!   end and the child only the other, and the child exits 0 at end of file
//!   (`each_side_keeps_only_its_own_end`; every spawning test checks the parent's side);
//! - the child reads through the very open file the parent sent, from the parent's offset,
//!   with the file already unlinked, for request after request, and replies with the length
//!   and the bytes on the same socket (`the_child_reads_the_open_file_the_parent_sent`);
//! - the child holds the received fd under a new number while it reads, and closes it before
//!   the next request (`the_child_closes_each_fd_it_received`: a pipe's read end is passed, so
//!   the child can be seen holding it, asleep in read);
//! - the child exits 1 on a request without an fd (`the_child_exits_1_on_a_request_without_an_fd`).

// The exercise under test: your stub (by default), the reference solution (`--features
// solutions`), or a shipped mistake that `cargo grade --mistakes` copies into target/.
#[cfg(not(any(feature = "solutions", feature = "mistake")))]
#[path = "../../exercises/ipc/socketpair.rs"]
#[allow(dead_code)] // a stub does not use all of its API yet
mod socketpair;
#[cfg(all(feature = "solutions", not(feature = "mistake")))]
#[path = "../../solutions/ipc/socketpair.rs"]
mod socketpair;
#[cfg(feature = "mistake")]
#[path = "../../target/oskata-mistake/ipc/socketpair.rs"]
#[rustfmt::skip] // the copy exists only while the proof runs
mod socketpair;
use socketpair::*;

use std::fs;
use std::io::{IoSlice, IoSliceMut};
use std::os::fd::{AsFd, AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::path::PathBuf;
use std::sync::atomic::{AtomicU32, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use nix::cmsg_space;
use nix::errno::Errno;
use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
use nix::sys::pthread::{pthread_kill, pthread_self};
use nix::sys::signal::{SaFlags, SigAction, SigHandler, SigSet, Signal, kill, sigaction, signal};
use nix::sys::socket::{
    AddressFamily, ControlMessage, ControlMessageOwned, MsgFlags, SockFlag, SockType, recvmsg,
    sendmsg,
};
use nix::sys::wait::{WaitPidFlag, WaitStatus, waitpid};
use nix::unistd::{Pid, Whence, getpid, lseek, pipe, read, write};
use oskata_harness::{Isolation, cases, evidence, poll, procfs, scaled, scratch_dir, student};
use rstest::rstest;

/// How long a correct child may take to reach its next `recvmsg`, reply or exit (before
/// `scaled`). A correct solution needs milliseconds.
const SETTLE: Duration = Duration::from_secs(5);

/// What the kernel shows of the test's processes.
fn evidence_now() -> String {
    let me = getpid();
    let mut procs: Vec<procfs::Stat> = procfs::stat(me).into_iter().collect();
    procs.extend(procfs::descendants(me));
    format!(
        "What the kernel shows (the test process is pid {me}):\n{}",
        evidence::describe(&procs)
    )
}

/// Stops and reaps the child (so nothing is left behind), then fails with `msg`.
fn fail(child: Pid, msg: String) -> ! {
    if matches!(
        waitpid(child, Some(WaitPidFlag::WNOHANG)),
        Ok(WaitStatus::StillAlive)
    ) {
        let _ = kill(child, Signal::SIGKILL);
        let _ = waitpid(child, None);
    }
    panic!("{msg}");
}

/// A file of random content in the scratch directory, under a fresh name.
fn new_file(len: usize) -> (PathBuf, Vec<u8>) {
    static N: AtomicU32 = AtomicU32::new(0);
    let path = scratch_dir().join(format!("file-{}", N.fetch_add(1, Ordering::SeqCst)));
    let content = cases::random_bytes(len);
    fs::write(&path, &content).unwrap_or_else(|e| panic!("cannot write {}: {e}", path.display()));
    (path, content)
}

/// Opens `path` read-only.
fn open(path: &PathBuf) -> OwnedFd {
    OwnedFd::from(fs::File::open(path).unwrap_or_else(|e| panic!("open {}: {e}", path.display())))
}

/// The test's own socket pair.
fn pair() -> (OwnedFd, OwnedFd) {
    nix::sys::socket::socketpair(
        AddressFamily::Unix,
        SockType::Stream,
        None,
        SockFlag::SOCK_CLOEXEC,
    )
    .expect("socketpair")
}

/// The test's own sender: `data` with these fds in one SCM_RIGHTS message (none: plain data).
fn send_with(sock: &OwnedFd, data: &[u8], fds: &[RawFd]) {
    let iov = [IoSlice::new(data)];
    let cmsg = [ControlMessage::ScmRights(fds)];
    let cmsgs: &[ControlMessage] = if fds.is_empty() { &[] } else { &cmsg };
    let n = sendmsg::<()>(sock.as_raw_fd(), &iov, cmsgs, MsgFlags::empty(), None)
        .expect("the test's sendmsg");
    assert_eq!(
        n,
        data.len(),
        "the test's sendmsg sent only part of its data"
    );
}

/// What the test's own receiver got: data, fds, flags. Never blocks: `None` when nothing is
/// queued.
struct Got {
    data: Vec<u8>,
    fds: Vec<OwnedFd>,
    rights_messages: usize,
    flags: MsgFlags,
}

/// Receives what is queued on `sock`, with room for 16 fds.
fn recv_now(sock: &OwnedFd) -> Option<Got> {
    let mut buf = vec![0u8; 4096];
    let mut space = cmsg_space!([RawFd; 16]);
    let mut iov = [IoSliceMut::new(&mut buf)];
    let msg = match recvmsg::<()>(
        sock.as_raw_fd(),
        &mut iov,
        Some(&mut space),
        MsgFlags::MSG_DONTWAIT | MsgFlags::MSG_CMSG_CLOEXEC,
    ) {
        Ok(msg) => msg,
        Err(Errno::EAGAIN) => return None,
        Err(e) => panic!("the test's recvmsg failed: {e}"),
    };
    let mut fds = Vec::new();
    let mut rights_messages = 0;
    for cmsg in msg.cmsgs().expect("parse control messages") {
        if let ControlMessageOwned::ScmRights(raw) = cmsg {
            rights_messages += 1;
            // SAFETY: the kernel just installed these fds in this process for the test.
            fds.extend(raw.into_iter().map(|r| unsafe { OwnedFd::from_raw_fd(r) }));
        }
    }
    let (bytes, flags) = (msg.bytes, msg.flags);
    buf.truncate(bytes);
    Some(Got {
        data: buf,
        fds,
        rights_messages,
        flags,
    })
}

/// The current offset of the open file behind `fd`.
fn offset(fd: &impl AsFd) -> i64 {
    lseek(fd.as_fd(), 0, Whence::SeekCur).expect("lseek SEEK_CUR")
}

/// The `flags:` line of `/proc/<pid>/fdinfo/<fd>` (octal: file status flags and O_CLOEXEC).
fn fdinfo_flags(pid: Pid, fd: RawFd) -> Option<i32> {
    let text = fs::read_to_string(format!("/proc/{pid}/fdinfo/{fd}")).ok()?;
    let line = text.lines().find_map(|l| l.strip_prefix("flags:"))?;
    i32::from_str_radix(line.trim(), 8).ok()
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

/// Bytes queued for reading on a socket of this process (FIONREAD).
fn queued(fd: &OwnedFd) -> usize {
    let mut n: libc::c_int = 0;
    // SAFETY: FIONREAD writes one int into `n`.
    let r = unsafe { libc::ioctl(fd.as_raw_fd(), libc::FIONREAD, &raw mut n) };
    if r < 0 { 0 } else { n as usize }
}

/// A socket's inode from an fd's link target, `socket:[inode]`.
fn socket_inode(f: &procfs::Fd) -> Option<u64> {
    f.target
        .strip_prefix("socket:[")?
        .strip_suffix(']')?
        .parse()
        .ok()
}

/// An fd table in one line.
fn show(fds: &[procfs::Fd]) -> String {
    fds.iter()
        .map(|f| format!("{} -> {}", f.fd, f.target))
        .collect::<Vec<_>>()
        .join(", ")
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

/// A `waitpid` result in words.
fn exit_text(status: nix::Result<WaitStatus>) -> String {
    match status {
        Ok(WaitStatus::Exited(_, code)) => format!("exited with status {code}"),
        Ok(WaitStatus::Signaled(_, sig, _)) => format!("was killed by {sig}"),
        Ok(other) => format!("ended as {other:?}"),
        Err(e) => format!("could not be waited for: {e}"),
    }
}

// ---------------------------------------------------------------------------------------------
// send_fd and recv_fd in the test process, against the test's own receiver and sender.

/// `send_fd` puts exactly one fd in one SCM_RIGHTS control message beside the data; the fd
/// the test receives is a new number for the same open file (moving its offset moves the
/// caller's); the caller's fd is still open.
#[test]
fn send_fd_passes_the_open_file_in_scm_rights() {
    Isolation::new().deadline(Duration::from_secs(15)).check_fds().run(|| {
        let (a, b) = pair();
        let (path, content) = new_file(5000);
        let file = open(&path);
        let target = fs::read_link(format!("/proc/self/fd/{}", file.as_raw_fd())).ok();
        let data = b"here is a file";
        student(|| send_fd(&a, &file, data))
            .unwrap_or_else(|e| panic!("send_fd(socket, file, {data:?}) failed: {e}"));
        let Some(got) = recv_now(&b) else {
            panic!(
                "send_fd returned Ok, but nothing at all arrived at the other end of the socket pair: it must \
                 send the data, with the fd, on the socket it was given"
            );
        };
        if got.fds.is_empty() {
            let text = String::from_utf8_lossy(&got.data);
            let path_text = path.display().to_string();
            let why = if text.contains(&path_text) || text.contains("file-") {
                format!(
                    "send_fd sent the file's path ({text:?}) instead of the open file. A path is only a name: the \
                     receiver would open the file anew, with an offset of its own, and could not at all if the file \
                     were unlinked or out of its reach. The kernel passes the open file itself when the fd goes in \
                     an SCM_RIGHTS control message"
                )
            } else if got.data.len() >= 4
                && got.data.windows(4).any(|w| w == file.as_raw_fd().to_ne_bytes())
            {
                format!(
                    "send_fd sent the fd's number ({}) as plain data bytes {:?}: the number means nothing in another \
                     process, whose fd table is its own (there it is some other file, or nothing). Put the fd in an \
                     SCM_RIGHTS control message (ControlMessage::ScmRights) given to sendmsg, and the kernel \
                     installs a new fd for the same open file in the receiver",
                    file.as_raw_fd(),
                    got.data
                )
            } else {
                format!(
                    "the message send_fd sent ({} data bytes: {:?}) carried no SCM_RIGHTS control message, so no fd \
                     arrived. The fd must go in ControlMessage::ScmRights given to sendmsg, beside the data",
                    got.data.len(),
                    String::from_utf8_lossy(&got.data)
                )
            };
            panic!("{why}");
        }
        assert_eq!(
            got.data,
            data.to_vec(),
            "the data that arrived with the fd differs from what send_fd was given"
        );
        assert!(
            !got.flags.contains(MsgFlags::MSG_CTRUNC),
            "the test's receiver, with room for 16 fds, saw MSG_CTRUNC"
        );
        assert!(
            got.fds.len() == 1 && got.rights_messages == 1,
            "send_fd sent {} fds in {} SCM_RIGHTS messages; it must send exactly one fd, the one it was given",
            got.fds.len(),
            got.rights_messages
        );
        let received = &got.fds[0];
        assert_ne!(
            received.as_raw_fd(),
            file.as_raw_fd(),
            "the received fd has the caller's number although the caller's fd should still be open"
        );
        let now = fs::read_link(format!("/proc/self/fd/{}", file.as_raw_fd())).ok();
        assert!(
            now.is_some() && now == target,
            "after send_fd the caller's fd {} is {} (it was {target:?}): send_fd borrows the fd it sends and must \
             leave it open; the receiver gets a new fd of its own",
            file.as_raw_fd(),
            now.map_or("closed".to_owned(), |p| format!("{p:?}"))
        );
        lseek(received, 1234, Whence::SeekSet).expect("lseek on the received fd");
        assert_eq!(
            offset(&file),
            1234,
            "after the test moved the offset of the fd it received to 1234, the caller's fd is at another \
             offset: they are not the same open file. send_fd must pass the caller's own fd, not a file opened \
             anew"
        );
        let mut buf = [0u8; 16];
        let n = read(received, &mut buf).expect("read through the received fd");
        assert_eq!(&buf[..n], &content[1234..1234 + n], "the received fd reads other content");
    });
}

/// `send_fd` with empty data returns EINVAL and sends nothing: no data, no fd.
#[test]
fn send_fd_refuses_empty_data() {
    Isolation::new().deadline(Duration::from_secs(15)).check_fds().run(|| {
        let (a, b) = pair();
        let (path, _) = new_file(100);
        let file = open(&path);
        let got = student(|| send_fd(&a, &file, b""));
        let arrived = recv_now(&b);
        if let Some(msg) = &arrived {
            panic!(
                "send_fd with empty data sent {} data bytes and {} fds (it returned {got:?}): it must return \
                 Err(EINVAL) and send nothing",
                msg.data.len(),
                msg.fds.len()
            );
        }
        assert_eq!(
            got,
            Err(Errno::EINVAL),
            "send_fd with empty data must return Err(EINVAL): on a stream socket a sendmsg with no data bytes \
             sends no control message either, so the fd would be lost without a word"
        );
    });
}

/// `recv_fd` returns the data and a new fd for the same open file as the sender's, marked
/// close-on-exec, and opens no other fd.
#[test]
fn recv_fd_gets_a_new_fd_for_the_same_open_file() {
    Isolation::new().deadline(Duration::from_secs(15)).check_fds().run(|| {
        let (a, b) = pair();
        let (path, content) = new_file(3000);
        let file = open(&path);
        send_with(&a, b"hello", &[file.as_raw_fd()]);
        let before = my_fds();
        let mut buf = [0u8; 64];
        let got = student(|| recv_fd(&b, &mut buf));
        let after = my_fds();
        let (n, fd) = match got {
            Ok(Some(x)) => x,
            other => panic!(
                "recv_fd on a message of 5 data bytes with one fd in SCM_RIGHTS returned {other:?}, not \
                 Ok(Some((5, fd)))"
            ),
        };
        assert_eq!(n, 5, "recv_fd should report the 5 data bytes of the message");
        assert_eq!(&buf[..5], b"hello", "recv_fd should put the data bytes in buf");
        let added = new_fds(&before, &after);
        assert!(
            added.len() == 1 && added[0].fd == fd.as_raw_fd(),
            "recv_fd should add exactly one fd to the receiver's table, the one it returns ({}); the table gained \
             [{}]",
            fd.as_raw_fd(),
            show(&added)
        );
        lseek(&fd, 777, Whence::SeekSet).expect("lseek on the fd recv_fd returned");
        assert_eq!(
            offset(&file),
            777,
            "the fd recv_fd returned has an offset of its own (the sender's fd did not move with it): it is not \
             the open file that was sent, but one opened anew"
        );
        let mut head = [0u8; 8];
        let k = read(&fd, &mut head).expect("read through the received fd");
        assert_eq!(&head[..k], &content[777..777 + k]);
        let flags = fdinfo_flags(getpid(), fd.as_raw_fd()).expect("read the received fd's fdinfo");
        assert!(
            flags & libc::O_CLOEXEC != 0,
            "the fd recv_fd returned is not close-on-exec (/proc/self/fdinfo/{} shows flags 0{flags:o}, without \
             O_CLOEXEC 02000000): pass MSG_CMSG_CLOEXEC to recvmsg, so that the fds that arrive are closed in any \
             program this process executes, like every fd the kit's code opens",
            fd.as_raw_fd()
        );
    });
}

/// A message that carries no fd, two fds, or three (more than a buffer made for one fd holds,
/// so the kernel sets MSG_CTRUNC and closes what did not fit): `Err(EBADMSG)`, and the fd table
/// is as before, every fd that arrived closed.
#[rstest]
#[case::no_fd(0)]
#[case::two_fds(2)]
#[case::three_fds(3)]
fn recv_fd_rejects_a_message_without_exactly_one_fd(#[case] count: usize) {
    Isolation::new().deadline(Duration::from_secs(15)).check_fds().run(move || {
        let (a, b) = pair();
        let files: Vec<(PathBuf, OwnedFd)> = (0..count)
            .map(|_| {
                let (path, _) = new_file(10);
                let fd = open(&path);
                (path, fd)
            })
            .collect();
        let raw: Vec<RawFd> = files.iter().map(|(_, f)| f.as_raw_fd()).collect();
        send_with(&a, b"request", &raw);
        let before = my_fds();
        let mut buf = [0u8; 64];
        let got = student(|| recv_fd(&b, &mut buf));
        // What recv_fd returned holds fds of its own; drop it before reading the table again.
        let returned = format!("{got:?}");
        let ok = got.is_ok();
        let is_ebadmsg = matches!(got, Err(Errno::EBADMSG));
        drop(got);
        let what = match count {
            0 => "no fd (plain data, no control message)".to_owned(),
            2 => "two fds in one SCM_RIGHTS message".to_owned(),
            _ => "three fds in one SCM_RIGHTS message (with a buffer sized for one fd, cmsg_space!(RawFd), the \
                  kernel delivers what fits, closes the rest and sets MSG_CTRUNC in the flags)"
                .to_owned(),
        };
        let left = new_fds(&before, &my_fds());
        if !left.is_empty() {
            panic!(
                "after recv_fd on a message carrying {what}, the receiver still holds fds it did not have before: \
                 [{}] (recv_fd returned {returned}). Every fd that arrives is the receiver's to close: wrap each \
                 in an OwnedFd as soon as recvmsg returns, and every fd that arrived must be closed when the \
                 message is rejected",
                show(&left)
            );
        }
        if ok {
            panic!(
                "recv_fd returned {returned} for a message carrying {what}: a message must carry exactly one fd, \
                 and one with none, more than one, or MSG_CTRUNC in recvmsg's flags gets Err(EBADMSG). Count the \
                 fds in every SCM_RIGHTS control message, and look at MSG_CTRUNC"
            );
        }
        assert!(
            is_ebadmsg,
            "recv_fd on a message carrying {what} should return Err(EBADMSG), not {returned}"
        );
    });
}

/// With the peer's end closed and nothing queued, `recv_fd` returns `Ok(None)`.
#[test]
fn recv_fd_reports_end_of_file_as_none() {
    Isolation::new().deadline(Duration::from_secs(15)).check_fds().run(|| {
        let (a, b) = pair();
        drop(a);
        let mut buf = [0u8; 64];
        let got = student(|| recv_fd(&b, &mut buf));
        assert!(
            matches!(got, Ok(None)),
            "recv_fd on a socket whose peer has closed its end returned {got:?}: recvmsg returns 0 bytes and no \
             control message there, which is end of file, Ok(None)"
        );
    });
}

/// An empty buffer gets `Err(EINVAL)`, and the message waiting on the socket stays queued.
#[test]
fn recv_fd_refuses_an_empty_buffer() {
    Isolation::new().deadline(Duration::from_secs(15)).check_fds().run(|| {
        let (a, b) = pair();
        let (path, _) = new_file(10);
        let file = open(&path);
        send_with(&a, b"x", &[file.as_raw_fd()]);
        let before = my_fds();
        let got = student(|| recv_fd(&b, &mut []));
        let text = format!("{got:?}");
        drop(got);
        let added = new_fds(&before, &my_fds());
        assert!(
            added.is_empty(),
            "recv_fd with an empty buffer left new fds open: [{}]",
            show(&added)
        );
        assert_eq!(
            text,
            format!("{:?}", Err::<Option<(usize, OwnedFd)>, Errno>(Errno::EINVAL)),
            "recv_fd with an empty buffer must return Err(EINVAL) without receiving: with no room for data, \
             recvmsg returning 0 bytes could not be told from end of file"
        );
        assert_eq!(
            queued(&b),
            1,
            "recv_fd with an empty buffer must leave the waiting message queued"
        );
    });
}

/// How many times the SIGUSR1 handler ran.
static SIGNALS: AtomicU32 = AtomicU32::new(0);

extern "C" fn count_signal(_: libc::c_int) {
    SIGNALS.fetch_add(1, Ordering::SeqCst);
}

/// `recv_fd` asleep in `recvmsg` on an empty socket gets a signal whose handler has no
/// SA_RESTART (sent once `/proc` shows it asleep there): recvmsg fails with EINTR, and recv_fd
/// must call it again and return the message the test sends after the handler has run.
#[test]
fn recv_fd_retries_when_a_signal_interrupts_it() {
    Isolation::new().deadline(Duration::from_secs(15)).check_fds().run(|| {
        let action = SigAction::new(
            SigHandler::Handler(count_signal),
            SaFlags::empty(),
            SigSet::empty(),
        );
        // SAFETY: the handler only adds to an atomic counter, which is async-signal-safe.
        unsafe { sigaction(Signal::SIGUSR1, &action) }.expect("sigaction(SIGUSR1)");
        let (a, b) = pair();
        let (path, _) = new_file(10);
        let file = open(&path);
        let me = getpid();
        let sock_fd = b.as_raw_fd() as u64;
        let receiver = pthread_self();
        let limit = scaled(SETTLE);
        let sender = thread::spawn(move || -> Result<(), String> {
            let start = Instant::now();
            let mut round = 0;
            loop {
                let asleep = procfs::syscall(me)
                    .is_some_and(|c| c.nr == libc::SYS_recvmsg && c.args[0] == sock_fd)
                    && procfs::state(me) == Some('S');
                if asleep {
                    break;
                }
                if start.elapsed() > limit {
                    return Err(format!(
                        "after {limit:?} recv_fd (pid {me}) was not asleep in recvmsg(2) on fd {sock_fd}, the empty \
                         socket (system call now: {:?})",
                        procfs::syscall(me).map(|c| c.nr)
                    ));
                }
                poll::pause(&mut round);
            }
            pthread_kill(receiver, Signal::SIGUSR1).map_err(|e| format!("pthread_kill: {e}"))?;
            let start = Instant::now();
            while SIGNALS.load(Ordering::SeqCst) == 0 {
                if start.elapsed() > limit {
                    return Err("the SIGUSR1 handler never ran".into());
                }
                thread::sleep(Duration::from_millis(1));
            }
            send_with(&a, b"after the signal", &[file.as_raw_fd()]);
            // Keep the sending end open until the receiver is done, so that no end of file
            // can come before the message.
            let start = Instant::now();
            while procfs::syscall(me).is_some_and(|c| c.nr == libc::SYS_recvmsg) {
                if start.elapsed() > limit {
                    break;
                }
                thread::sleep(Duration::from_millis(1));
            }
            drop(a);
            Ok(())
        });
        let mut buf = [0u8; 64];
        let got = student(|| recv_fd(&b, &mut buf));
        let outcome = format!("{got:?}");
        let ok = matches!(&got, Ok(Some((16, _))));
        drop(got);
        let sent = sender.join().expect("the sender thread");
        if let Err(why) = sent {
            panic!("{why} (recv_fd returned {outcome})");
        }
        if outcome == format!("{:?}", Err::<(), Errno>(Errno::EINTR)) {
            panic!(
                "recv_fd returned Err(EINTR): its recvmsg(2) was interrupted by a signal (SIGUSR1, whose handler \
                 was installed without SA_RESTART) while it waited on the empty socket. EINTR means the call was \
                 cut short before anything arrived: nothing is lost, call recvmsg again"
            );
        }
        assert!(
            ok,
            "recv_fd should return the 16 bytes and the fd sent after the signal, not {outcome}"
        );
        assert_eq!(&buf[..16], b"after the signal");
    });
}

// ---------------------------------------------------------------------------------------------
// spawn_file_reader: the pair across a fork.

/// The parent's side right after `spawn_file_reader`.
struct Spawned {
    child: Pid,
    sock: OwnedFd,
    /// The test process's fd table before the call (the child inherits all of it).
    before: Vec<procfs::Fd>,
    /// The inode of the parent's end.
    inode: u64,
}

/// Calls the student's `spawn_file_reader` and checks the parent's side: exactly one new fd,
/// an AF_UNIX stream socket, every other fd as before.
fn spawn() -> Spawned {
    let me = getpid();
    let before = my_fds();
    let (child, sock) =
        student(spawn_file_reader).unwrap_or_else(|e| panic!("spawn_file_reader failed: {e}"));
    let after = my_fds();
    let raw = sock.as_raw_fd();
    let added = new_fds(&before, &after);
    let gone: Vec<procfs::Fd> = new_fds(&after, &before);
    let Some(inode) = after.iter().find(|f| f.fd == raw).and_then(socket_inode) else {
        fail(
            child,
            format!(
                "spawn_file_reader returned fd {raw}, which is not a socket in /proc/{me}/fd ([{}])",
                show(&after)
            ),
        );
    };
    if added.len() > 1 {
        fail(
            child,
            format!(
                "the parent still holds the child's end: after spawn_file_reader the parent (pid {me}) gained \
                 [{}], not only the end it returned (fd {raw}). After fork each side closes the end it does not \
                 use; an end the parent keeps is a second peer for nobody, and while any copy of the child's end \
                 is open in the parent, the parent cannot see end of file when the child goes away.\n{}",
                show(&added),
                evidence_now()
            ),
        );
    }
    if !gone.is_empty() {
        fail(
            child,
            format!(
                "spawn_file_reader closed fds of the caller that are not its own: [{}]",
                show(&gone)
            ),
        );
    }
    let ty = sockopt_int(&sock, libc::SO_TYPE);
    let domain = sockopt_int(&sock, libc::SO_DOMAIN);
    if ty != libc::SOCK_STREAM || domain != libc::AF_UNIX {
        fail(
            child,
            format!(
                "the returned socket has SO_DOMAIN {domain} and SO_TYPE {ty}; the pair must be AF_UNIX ({}) and \
                 SOCK_STREAM ({})",
                libc::AF_UNIX,
                libc::SOCK_STREAM
            ),
        );
    }
    Spawned {
        child,
        sock,
        before,
        inode,
    }
}

/// Waits until the child sleeps in `recvmsg` (its next request), then checks its fd table: it
/// holds one end of its own, not the parent's, and nothing else new. Returns its table.
/// `when` says where the conversation is, for the messages.
fn await_request(s: &Spawned, when: &str) -> Vec<procfs::Fd> {
    let child = s.child;
    let settle = scaled(SETTLE);
    let start = Instant::now();
    let mut round = 0;
    loop {
        let asleep = procfs::syscall(child).is_some_and(|c| c.nr == libc::SYS_recvmsg)
            && procfs::state(child) == Some('S');
        if asleep {
            break;
        }
        if procfs::state(child) == Some('Z') {
            let status = waitpid(child, None);
            panic!(
                "the child (pid {child}) {} {when}, instead of waiting in recvmsg(2) (recv_fd) for the next request \
                 on its end of the pair",
                exit_text(status)
            );
        }
        if start.elapsed() > settle {
            fail(
                child,
                format!(
                    "after {settle:?} the child (pid {child}) was still not asleep in recvmsg(2) waiting for a \
                     request ({when}).\n{}",
                    evidence_now()
                ),
            );
        }
        poll::pause(&mut round);
    }
    let fds = procfs::fds(child).unwrap_or_default();
    let added = new_fds(&s.before, &fds);
    if let Some(kept) = fds.iter().find(|f| socket_inode(f) == Some(s.inode)) {
        fail(
            child,
            format!(
                "the child still holds the parent's end (socket:[{}]) on fd {} ({when}). After fork each side \
                 closes the end it does not use: while the child keeps a copy of the parent's end, the connection \
                 stays open however the parent closes its own, so the child never sees end of file and waits \
                 forever.\n{}",
                s.inode,
                kept.fd,
                evidence_now()
            ),
        );
    }
    let sockets: Vec<&procfs::Fd> = added.iter().filter(|f| socket_inode(f).is_some()).collect();
    if sockets.len() != 1 {
        fail(
            child,
            format!(
                "the child (pid {child}) should hold exactly one end of the pair besides what it inherited, yet it \
                 has [{}] ({when})",
                show(&added)
            ),
        );
    }
    fds
}

/// Reads the child's reply: an 8-byte little-endian length, then that many bytes. Fails with
/// evidence when the child exits or stalls instead.
fn read_reply(s: &Spawned, when: &str) -> Vec<u8> {
    let child = s.child;
    let settle = scaled(SETTLE);
    let mut got = Vec::new();
    let mut want = 8usize;
    let mut header_done = false;
    let start = Instant::now();
    loop {
        if got.len() >= want {
            if header_done {
                return got;
            }
            let len = u64::from_le_bytes(got[..8].try_into().expect("8 bytes"));
            assert!(
                len < (1 << 24),
                "the child's reply starts with a length of {len} bytes: far more than the file holds (the length \
                 goes first, as 8 bytes little-endian)"
            );
            got.drain(..8);
            want = len as usize;
            header_done = true;
            continue;
        }
        let mut fds = [PollFd::new(s.sock.as_fd(), PollFlags::POLLIN)];
        let _ = poll(&mut fds, PollTimeout::from(20u8));
        let mut buf = [0u8; 8192];
        match nix::sys::socket::recv(s.sock.as_raw_fd(), &mut buf, MsgFlags::MSG_DONTWAIT) {
            Ok(0) => {
                let status = waitpid(child, None);
                panic!(
                    "the child (pid {child}) closed its end after {} bytes of a reply {when}, and {}. A status of 1 \
                     means something failed in it: a request without exactly one fd, or a read through the fd \
                     (EBADF: the fd it used is not the file, for example a number read from the data bytes, or a \
                     path that no longer exists)",
                    got.len() + if header_done { 8 } else { 0 },
                    exit_text(status)
                );
            }
            Ok(n) => got.extend_from_slice(&buf[..n]),
            Err(Errno::EAGAIN | Errno::EINTR) => {}
            Err(e) => fail(child, format!("reading the child's reply failed: {e}")),
        }
        if start.elapsed() > settle {
            fail(
                child,
                format!(
                    "after {settle:?} the reply {when} was still incomplete ({} bytes).\n{}",
                    got.len(),
                    evidence_now()
                ),
            );
        }
    }
}

/// Closes the parent's end and expects the child to exit with `code` soon.
fn close_and_expect_exit(s: Spawned, code: i32, why: &str) {
    let child = s.child;
    drop(s.sock);
    let settle = scaled(SETTLE);
    let start = Instant::now();
    let mut round = 0;
    let status = loop {
        match waitpid(child, Some(WaitPidFlag::WNOHANG)) {
            Ok(WaitStatus::StillAlive) | Err(Errno::EINTR) => {}
            Ok(status) => break status,
            Err(e) => panic!("waitpid({child}) failed: {e}"),
        }
        if start.elapsed() > settle {
            fail(
                child,
                format!(
                    "after {settle:?} the child (pid {child}) had not exited although the parent closed its end of \
                     the pair.\n{}",
                    evidence_now()
                ),
            );
        }
        poll::pause(&mut round);
    };
    match status {
        WaitStatus::Exited(_, c) if c == code => {}
        other => panic!(
            "the child (pid {child}) {}; it should exit with status {code} {why}",
            exit_text(Ok(other))
        ),
    }
}

/// While the child waits for a request, the parent holds only the end it got and the child
/// only the other; when the parent closes its end the child sees end of file and exits 0.
#[test]
fn each_side_keeps_only_its_own_end() {
    Isolation::new().deadline(Duration::from_secs(15)).run(|| {
        let s = spawn();
        await_request(&s, "before any request");
        close_and_expect_exit(s, 0, "at end of file on its end of the pair");
    });
}

/// The file is made after the fork (so the child cannot have inherited it), opened, moved to an
/// offset and unlinked before it is sent with the student's `send_fd`: only the open file
/// itself reaches it. The reply, on the same socket, is the content from that offset on, and
/// afterwards the parent's fd has moved to the end: the child read the parent's own open file.
/// A second request shows the child serves in a loop.
#[test]
fn the_child_reads_the_open_file_the_parent_sent() {
    Isolation::new().deadline(Duration::from_secs(20)).run(|| {
        let s = spawn();
        await_request(&s, "before any request");
        for (round, (len, at)) in [(10_000usize, 1234i64), (3000, 0)].into_iter().enumerate() {
            let (path, content) = new_file(len);
            let file = open(&path);
            lseek(&file, at, Whence::SeekSet).expect("lseek");
            fs::remove_file(&path).expect("unlink the file");
            let when = format!("to request {} (a file of {len} bytes, sent at offset {at})", round + 1);
            if let Err(e) = student(|| send_fd(&s.sock, &file, b"read this")) {
                fail(s.child, format!("send_fd failed: {e}"));
            }
            let reply = read_reply(&s, &when);
            let expected = &content[at as usize..];
            if reply.as_slice() != expected {
                let why = if reply == content && at > 0 {
                    format!(
                        "the child read the whole file from offset 0, not from offset {at} where the parent's open \
                         file stood: it read a file opened anew (by its path, or through /proc), an open file \
                         description with an offset of its own. The fd SCM_RIGHTS passes refers to the sender's \
                         open file, offset included"
                    )
                } else {
                    format!(
                        "the reply holds {} bytes, not the {} the file holds from offset {at} on",
                        reply.len(),
                        expected.len()
                    )
                };
                fail(s.child, format!("{why} ({when})"));
            }
            let now = offset(&file);
            if now != len as i64 {
                fail(
                    s.child,
                    format!(
                        "after the child read the file to its end, the parent's fd is at offset {now}, not {len}: the \
                         child read through another open file (opened anew), not the one passed. A passed fd shares \
                         the offset with the sender's ({when})"
                    ),
                );
            }
            await_request(&s, &format!("after the reply {when}"));
        }
        close_and_expect_exit(s, 0, "at end of file on its end of the pair");
    });
}

/// A pipe's read end is passed (with the test's own sender): the child, reading it to end of
/// file, is seen asleep in read(2) on a new fd that is that pipe; once the test has written and
/// closed the write end, the reply is what it wrote, and the child, back in recvmsg, no longer
/// holds any fd of the pipe.
#[test]
fn the_child_closes_each_fd_it_received() {
    Isolation::new().deadline(Duration::from_secs(20)).run(|| {
        // SAFETY: ignoring a signal involves no handler code.
        unsafe { signal(Signal::SIGPIPE, SigHandler::SigIgn) }.expect("ignore SIGPIPE");
        let s = spawn();
        let child = s.child;
        let table = await_request(&s, "before any request");
        let (r, w) = pipe().expect("pipe");
        let pipe_inode = procfs::fds(getpid())
            .unwrap_or_default()
            .into_iter()
            .find(|f| f.fd == r.as_raw_fd())
            .and_then(|f| f.pipe_inode())
            .expect("the pipe's inode");
        send_with(&s.sock, b"read this", &[r.as_raw_fd()]);
        drop(r);
        let settle = scaled(SETTLE);
        let start = Instant::now();
        let mut round = 0;
        let fd = loop {
            if let Some(fd) = procfs::blocked_read_fd(child) {
                let fds = procfs::fds(child).unwrap_or_default();
                if fds.iter().any(|f| f.fd == fd && f.pipe_inode() == Some(pipe_inode)) {
                    break fd;
                }
            }
            if procfs::state(child) == Some('Z') {
                let status = waitpid(child, None);
                panic!(
                    "the child (pid {child}) {} after it was sent the read end of pipe:[{pipe_inode}], which it \
                     should read to end of file",
                    exit_text(status)
                );
            }
            if start.elapsed() > settle {
                fail(
                    child,
                    format!(
                        "after {settle:?} the child (pid {child}) was not asleep in read(2) on the pipe:[{pipe_inode}] \
                         it was sent.\n{}",
                        evidence_now()
                    ),
                );
            }
            poll::pause(&mut round);
        };
        if table.iter().any(|f| f.fd == fd) {
            fail(
                child,
                format!(
                    "the child reads pipe:[{pipe_inode}] on fd {fd}, a number it already had before the request"
                ),
            );
        }
        let data = cases::random_bytes(2000);
        write(&w, &data).expect("write to the pipe");
        drop(w);
        let reply = read_reply(&s, "to a request with a pipe's read end");
        if reply != data {
            fail(
                child,
                format!(
                    "the reply holds {} bytes, not the {} the test wrote into the pipe whose read end it sent",
                    reply.len(),
                    data.len()
                ),
            );
        }
        let after = await_request(&s, "after replying about the pipe");
        if let Some(kept) = after.iter().find(|f| f.pipe_inode() == Some(pipe_inode)) {
            fail(
                child,
                format!(
                    "the child still holds the received fd {} (pipe:[{pipe_inode}]) after replying, as it waits for \
                     the next request. An fd that arrives with SCM_RIGHTS is the receiver's own, like one it opened: \
                     close it (drop the OwnedFd) when done, or each request leaves one more open file behind.\n{}",
                    kept.fd,
                    evidence_now()
                ),
            );
        }
        close_and_expect_exit(s, 0, "at end of file on its end of the pair");
    });
}

/// A request of plain data with no fd: the child's `recv_fd` fails with EBADMSG, and the child
/// exits 1.
#[test]
fn the_child_exits_1_on_a_request_without_an_fd() {
    Isolation::new().deadline(Duration::from_secs(15)).run(|| {
        let s = spawn();
        await_request(&s, "before any request");
        write(&s.sock, b"no fd here").expect("write a plain request");
        let child = s.child;
        let settle = scaled(SETTLE);
        let start = Instant::now();
        let mut round = 0;
        loop {
            match waitpid(child, Some(WaitPidFlag::WNOHANG)) {
                Ok(WaitStatus::Exited(_, 1)) => break,
                Ok(WaitStatus::StillAlive) | Err(Errno::EINTR) => {}
                Ok(other) => panic!(
                    "the child (pid {child}) {} after a request that carried no fd; it should exit with status 1 \
                     (recv_fd returns EBADMSG)",
                    exit_text(Ok(other))
                ),
                Err(e) => panic!("waitpid: {e}"),
            }
            if start.elapsed() > settle {
                fail(
                    child,
                    format!(
                        "after {settle:?} the child (pid {child}) was still running after a request that carried no \
                         fd; it should exit with status 1.\n{}",
                        evidence_now()
                    ),
                );
            }
            poll::pause(&mut round);
        }
    });
}
