//! ipc/posix_mqueue: POSIX message queues (POSIX 消息队列) with priorities, a non-blocking full
//! queue, a sender in another process, and mq_unlink.
//!
//! What the tests observe, never what the code under test claims:
//! - the queue's attributes as the kernel keeps them (`mq_getattr` on the descriptor: maxmsg,
//!   msgsize, curmsgs, O_NONBLOCK), its mode (`fstat` of the descriptor, an inode of the mqueue
//!   filesystem) and its access mode (`/proc/self/fdinfo/<fd>`);
//! - what the test's own `mq_send` / `mq_receive` (nix, with a buffer of the right size) get
//!   from or give to the student's calls: bytes and priorities;
//! - a blocked sender or receiver asleep in `mq_timedsend` / `mq_timedreceive`
//!   (`/proc/<pid>/syscall`), before the test makes room or sends;
//! - the sender child's exit status from `waitpid`, and whether a name exists (`mq_open`
//!   without `O_CREAT` failing with `ENOENT`); the harness also lists the test's mqueue
//!   filesystem after every test and fails one that left a queue behind.
//!
//! The contract, clause by clause, and the test that checks each:
//! - `create_queue` makes a queue with the asked mq_maxmsg and mq_msgsize, non-blocking exactly
//!   when asked (`create_queue_has_the_asked_attributes`, three sizes), open for reading and
//!   writing with mode 0600 (`create_queue_opens_read_write_with_mode_0600`), refuses an
//!   existing name with EEXIST and leaves that queue alone
//!   (`create_queue_refuses_an_existing_name`), and returns the kernel's other errors
//!   (`create_queue_returns_the_kernels_errors`: a size of 0, a name without its slash);
//! - `try_send` sends the bytes with the priority given (`try_send_sends_with_its_priority`),
//!   answers Ok(false) on a full non-blocking queue and sends nothing then
//!   (`try_send_says_full_on_a_full_nonblocking_queue`), waits on a full blocking queue, seen in
//!   mq_timedsend, until room is made (`try_send_waits_on_a_full_blocking_queue`), and returns
//!   other errors (`try_send_returns_other_errors`: EBADF, EMSGSIZE);
//! - `receive` gives the highest priority first and FIFO within one priority
//!   (`receive_takes_the_highest_priority_first_fifo_within_one`, 32 generated sequences),
//!   exactly the message's bytes (`receive_returns_exactly_the_message`), with a buffer of
//!   mq_msgsize whatever the message's length (`receive_sizes_its_buffer_from_mq_msgsize`),
//!   EAGAIN on an empty non-blocking queue (`receive_says_eagain_on_an_empty_nonblocking_queue`)
//!   and waits, in mq_timedreceive, on an empty blocking one
//!   (`receive_waits_on_an_empty_blocking_queue`), calling mq_receive again when a signal
//!   interrupts the wait (`receive_retries_when_a_signal_interrupts_it`);
//! - `spawn_sender`'s child opens the queue by name and delivers every message with its
//!   priority, then exits 0 (`spawn_sender_delivers_every_message_with_its_priority`), waits
//!   for room when the queue is full (`spawn_sender_waits_when_the_queue_is_full`), never
//!   creates the queue and exits 1 when there is none (`spawn_sender_never_creates_the_queue`);
//! - `remove_queue` frees the name while open descriptors keep working
//!   (`remove_queue_frees_the_name`) and returns ENOENT for a name that does not exist
//!   (`remove_queue_returns_enoent_for_no_such_queue`).
//!
//! Kernel limits the sizes respect: without privileges a queue holds at most 10 messages
//! (`fs.mqueue.msg_max`) of at most 8192 bytes (`msgsize_max`), and all of a user's queues at
//! most RLIMIT_MSGQUEUE (800 KiB) together, so the tests keep their queues small.

// The exercise under test: your stub (by default), the reference solution (`--features
// solutions`), or a shipped mistake that `cargo grade --mistakes` copies into target/.
#[cfg(not(any(feature = "solutions", feature = "mistake")))]
#[path = "../../exercises/ipc/posix_mqueue.rs"]
#[allow(dead_code)] // a stub does not use all of its API yet
mod posix_mqueue;
#[cfg(all(feature = "solutions", not(feature = "mistake")))]
#[path = "../../solutions/ipc/posix_mqueue.rs"]
mod posix_mqueue;
#[cfg(feature = "mistake")]
#[path = "../../target/oskata-mistake/ipc/posix_mqueue.rs"]
#[rustfmt::skip] // the copy exists only while the proof runs
mod posix_mqueue;
use posix_mqueue::*;

use std::os::fd::{AsFd, AsRawFd};
use std::panic::{AssertUnwindSafe, catch_unwind, resume_unwind};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use nix::errno::Errno;
use nix::mqueue::{MQ_OFlag, mq_close, mq_getattr, mq_open, mq_receive, mq_send, mq_unlink};
use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
use nix::sys::pthread::{pthread_kill, pthread_self};
use nix::sys::signal::{SaFlags, SigAction, SigHandler, SigSet, Signal, kill, sigaction};
use nix::sys::stat::{Mode, fstat};
use nix::sys::wait::{WaitPidFlag, WaitStatus, waitpid};
use nix::unistd::{Pid, getpid};
use oskata_harness::{Isolation, cases, evidence, ipc_name, procfs, scaled, student};
use proptest::collection::vec;
use proptest::prelude::*;
use rstest::rstest;

/// How long correct code may take to fall asleep, to send or to exit (before `scaled`): it
/// needs milliseconds; a wrong one is caught by evidence long before.
const SETTLE: Duration = Duration::from_secs(5);

/// The test's own queue, made with nix (always `Some(&attr)` with `O_CREAT`: nix 0.31 drops the
/// mode and the attributes for `None`, and the variadic C `mq_open` then reads garbage).
fn own_queue(name: &str, maxmsg: i64, msgsize: i64, nonblocking: bool) -> MqdT {
    let mut flags = MQ_OFlag::O_CREAT | MQ_OFlag::O_EXCL | MQ_OFlag::O_RDWR;
    if nonblocking {
        flags |= MQ_OFlag::O_NONBLOCK;
    }
    let attr = MqAttr::new(0, maxmsg, msgsize, 0);
    mq_open(name, flags, Mode::from_bits_truncate(0o600), Some(&attr)).unwrap_or_else(|e| {
        panic!("the test's own mq_open({name}, maxmsg {maxmsg}, msgsize {msgsize}): {e}")
    })
}

/// Opens an existing queue by name, as the test.
fn open_existing(name: &str, flags: MQ_OFlag) -> nix::Result<MqdT> {
    mq_open(name, flags, Mode::empty(), None)
}

/// Whether the name `name` exists: `mq_open` without `O_CREAT` finds it.
fn exists(name: &str) -> bool {
    match open_existing(name, MQ_OFlag::O_RDONLY | MQ_OFlag::O_NONBLOCK) {
        Ok(q) => {
            let _ = mq_close(q);
            true
        }
        Err(_) => false,
    }
}

/// The test's receive, with a buffer of mq_msgsize; None when the queue is empty (the queue
/// must be non-blocking).
fn own_receive(q: &MqdT) -> Option<(u32, Vec<u8>)> {
    let size = mq_getattr(q).expect("mq_getattr").msgsize() as usize;
    let mut buf = vec![0u8; size];
    let mut prio = 0;
    match mq_receive(q, &mut buf, &mut prio) {
        Ok(n) => {
            buf.truncate(n);
            Some((prio, buf))
        }
        Err(Errno::EAGAIN) => None,
        Err(e) => panic!("the test's own mq_receive failed: {e}"),
    }
}

/// Everything in a non-blocking queue, in the order the kernel gives it.
fn own_drain(q: &MqdT) -> Vec<(u32, Vec<u8>)> {
    let mut got = Vec::new();
    while let Some(m) = own_receive(q) {
        got.push(m);
    }
    got
}

/// Messages shown briefly: `prio:"text"`.
fn show(msgs: &[(u32, Vec<u8>)]) -> String {
    let items: Vec<String> = msgs
        .iter()
        .map(|(p, m)| format!("{p}:{:?}", String::from_utf8_lossy(m)))
        .collect();
    format!("[{}]", items.join(", "))
}

/// The order the kernel promises: highest priority first, FIFO within one (a stable sort).
fn kernel_order(sent: &[(u32, Vec<u8>)]) -> Vec<(u32, Vec<u8>)> {
    let mut want = sent.to_vec();
    want.sort_by_key(|(p, _)| std::cmp::Reverse(*p));
    want
}

/// `(priority, bytes)` pairs from text.
fn msgs(items: &[(u32, &str)]) -> Vec<(u32, Vec<u8>)> {
    items
        .iter()
        .map(|(p, m)| (*p, m.as_bytes().to_vec()))
        .collect()
}

/// The access mode (`O_RDONLY` 0, `O_WRONLY` 1, `O_RDWR` 2) of our fd, from fdinfo.
fn access_mode(fd: i32) -> Option<i32> {
    let text = std::fs::read_to_string(format!("/proc/self/fdinfo/{fd}")).ok()?;
    let flags = text.lines().find_map(|l| l.strip_prefix("flags:"))?;
    i32::from_str_radix(flags.trim(), 8)
        .ok()
        .map(|f| f & libc::O_ACCMODE)
}

/// What the kernel shows about `pid` and its descendants.
fn evidence_of(pid: Pid) -> String {
    let mut procs: Vec<procfs::Stat> = procfs::stat(pid).into_iter().collect();
    procs.extend(procfs::descendants(pid));
    evidence::describe(&procs)
}

/// Kills and reaps `child` if it still runs.
fn reap(child: Pid) {
    if matches!(
        waitpid(child, Some(WaitPidFlag::WNOHANG)),
        Ok(WaitStatus::StillAlive)
    ) {
        let _ = kill(child, Signal::SIGKILL);
    }
    let _ = waitpid(child, None);
}

/// Waits for `child` to exit, at most `SETTLE`; on time out kills it and fails with what the
/// kernel showed (what it is asleep in).
fn wait_exit(child: Pid, what: &str) -> WaitStatus {
    let limit = scaled(SETTLE);
    let start = Instant::now();
    loop {
        match waitpid(child, Some(WaitPidFlag::WNOHANG)) {
            Ok(WaitStatus::StillAlive) => {}
            Ok(status) => return status,
            Err(Errno::ECHILD) => panic!(
                "waitpid({child}) failed with ECHILD: {what} (pid {child}) is not a child of the test any more, \
                 someone reaped it already. The function that forks returns the pid and leaves the waiting to its \
                 caller"
            ),
            Err(e) => panic!("waitpid({child}) failed: {e}"),
        }
        if start.elapsed() > limit {
            let seen = format!(
                "system call {:?}\n{}",
                procfs::syscall(child).map(|c| c.nr),
                evidence_of(child)
            );
            reap(child);
            panic!(
                "after {limit:?} {what} (pid {child}) had not exited; the kernel showed: {seen}"
            );
        }
        thread::sleep(Duration::from_millis(2));
    }
}

/// Waits until `pid` (its main thread) is asleep in system call `nr`, at most `SETTLE`.
fn asleep_in(pid: Pid, nr: i64) -> bool {
    let limit = scaled(SETTLE);
    let start = Instant::now();
    loop {
        if procfs::syscall(pid).is_some_and(|c| c.nr == nr) && procfs::state(pid) == Some('S') {
            return true;
        }
        if start.elapsed() > limit || matches!(procfs::state(pid), None | Some('Z')) {
            return false;
        }
        thread::sleep(Duration::from_millis(1));
    }
}

/// `create_queue` with the sizes asked: `mq_getattr` on the descriptor it returns reads them
/// back, with `O_NONBLOCK` in `mq_flags` exactly when asked, and no message in it.
#[rstest]
#[case::one_small_blocking(1, 16, false)]
#[case::four_nonblocking(4, 128, true)]
#[case::ten_of_the_largest(10, 8192, false)]
fn create_queue_has_the_asked_attributes(
    #[case] maxmsg: i64,
    #[case] msgsize: i64,
    #[case] nonblocking: bool,
) {
    Isolation::new().check_fds().run(move || {
        let name = ipc_name("attr");
        let q = student(|| create_queue(&name, maxmsg, msgsize, nonblocking))
            .unwrap_or_else(|e| panic!("create_queue({name}, {maxmsg}, {msgsize}, {nonblocking}) failed: {e}"));
        let attr = mq_getattr(&q).expect("mq_getattr on the queue create_queue returned");
        let _ = mq_close(q);
        let _ = mq_unlink(name.as_str());
        assert_eq!(
            (attr.maxmsg(), attr.msgsize()),
            (maxmsg, msgsize),
            "the queue's attributes, read back with mq_getattr, are mq_maxmsg {} and mq_msgsize {}, not the {maxmsg} \
             and {msgsize} asked for: the sizes are fixed when the queue is made, by the struct mq_attr passed to \
             mq_open with O_CREAT (nix: Some(&MqAttr::new(0, maxmsg, msgsize, 0))); without it the kernel uses its \
             defaults (/proc/sys/fs/mqueue/msg_default, msgsize_default)",
            attr.maxmsg(),
            attr.msgsize()
        );
        let is_nonblocking = attr.flags() & libc::O_NONBLOCK as i64 != 0;
        assert_eq!(
            is_nonblocking, nonblocking,
            "mq_getattr says the descriptor is {}blocking, but create_queue was asked for a {}blocking one: \
             O_NONBLOCK belongs in mq_open's flags (mq_attr's mq_flags is ignored by mq_open)",
            if is_nonblocking { "non-" } else { "" },
            if nonblocking { "non-" } else { "" }
        );
        assert_eq!(attr.curmsgs(), 0, "a new queue holds no messages, mq_curmsgs is {}", attr.curmsgs());
    });
}

/// The descriptor is open for reading and writing (fdinfo's access mode), and the queue's
/// permission bits (`fstat` of the descriptor) are 0600.
#[test]
fn create_queue_opens_read_write_with_mode_0600() {
    Isolation::new().check_fds().run(|| {
        let name = ipc_name("mode");
        let q = student(|| create_queue(&name, 2, 64, true)).expect("create_queue");
        let mode = fstat(q.as_fd()).map(|st| st.st_mode & 0o7777);
        let access = access_mode(q.as_raw_fd());
        let _ = mq_close(q);
        let _ = mq_unlink(name.as_str());
        let mode = mode.expect("fstat of the queue's descriptor");
        assert_eq!(
            mode, 0o600,
            "the queue {name} has mode {mode:o}: create_queue must give it 0600, read and write for its owner only. \
             A queue's mode, like a file's, says who else may open it by name; 0666 lets every user on the machine \
             read your messages and inject their own"
        );
        assert_eq!(
            access,
            Some(libc::O_RDWR),
            "the descriptor create_queue returned is open with access mode {access:?} (/proc/self/fdinfo: 0 \
             O_RDONLY, 1 O_WRONLY, 2 O_RDWR), not O_RDWR: the caller both sends and receives on it"
        );
    });
}

/// A queue of that name exists already (the test's, with a message in it): `create_queue`
/// fails with EEXIST, and that queue keeps its sizes and its message.
#[test]
fn create_queue_refuses_an_existing_name() {
    Isolation::new().check_fds().run(|| {
        let name = ipc_name("exists");
        let mine = own_queue(&name, 3, 32, true);
        mq_send(&mine, b"already here", 4).expect("the test's mq_send");
        let got = student(|| create_queue(&name, 5, 64, true));
        let attr = mq_getattr(&mine).expect("mq_getattr");
        let (reopened, err) = match got {
            Ok(q) => {
                let _ = mq_close(q);
                (true, None)
            }
            Err(e) => (false, Some(e)),
        };
        let left = own_drain(&mine);
        let _ = mq_close(mine);
        let _ = mq_unlink(name.as_str());
        if reopened {
            panic!(
                "create_queue({name}) returned a descriptor although a queue of that name already existed (with \
                 maxmsg 3, msgsize 32 and a message in it): it opened the existing queue instead of failing with \
                 EEXIST. O_CREAT alone means \"create if missing\"; O_CREAT | O_EXCL means \"create, and fail if \
                 the name is taken\", the only way to know the queue is new and has the attributes you asked for"
            );
        }
        assert_eq!(err, Some(Errno::EEXIST), "create_queue on an existing name must return EEXIST");
        assert_eq!(
            (attr.maxmsg(), attr.msgsize(), left.len()),
            (3, 32, 1),
            "the existing queue was changed by create_queue's failed attempt"
        );
    });
}

/// The kernel's errors come back as errors: a queue of 0 messages is EINVAL, and so is a name
/// without its leading slash; no queue is made for either.
#[test]
fn create_queue_returns_the_kernels_errors() {
    Isolation::new().check_fds().run(|| {
        let name = ipc_name("zero");
        let got = student(|| create_queue(&name, 0, 64, true));
        let made = exists(&name);
        let _ = mq_unlink(name.as_str());
        if let Ok(q) = got {
            let _ = mq_close(q);
            panic!(
                "create_queue({name}, max_messages 0) succeeded: mq_open refuses mq_maxmsg 0 with EINVAL; the \
                 attributes did not reach it (nix: pass Some(&attr))"
            );
        }
        assert_eq!(got.err(), Some(Errno::EINVAL), "create_queue with max_messages 0");
        assert!(!made, "a queue {name} exists after create_queue failed");
        let bare = name.trim_start_matches('/').to_string();
        let got = student(|| create_queue(&bare, 2, 64, true)).map(|q| {
            let _ = mq_close(q);
        });
        assert_eq!(
            got.err(),
            Some(Errno::EINVAL),
            "create_queue({bare:?}) with a name that does not start with a slash: glibc's mq_open refuses it with \
             EINVAL, and create_queue must return that error"
        );
    });
}

/// What `try_send` sends, the test receives with the priority given: bytes and priority.
#[test]
fn try_send_sends_with_its_priority() {
    Isolation::new().check_fds().run(|| {
        let name = ipc_name("prio");
        let q = own_queue(&name, 4, 64, true);
        let sent = msgs(&[(7, "seven"), (0, "zero"), (31, "thirty-one")]);
        let mut results = Vec::new();
        for (p, m) in &sent {
            results.push(student(|| try_send(&q, *p, m)));
        }
        let got = own_drain(&q);
        let _ = mq_close(q);
        let _ = mq_unlink(name.as_str());
        assert!(
            results.iter().all(|r| *r == Ok(true)),
            "try_send into a queue with room returned {results:?}, not Ok(true) each time"
        );
        let want = kernel_order(&sent);
        assert_eq!(
            got,
            want,
            "try_send was called with {}; the queue gave the test {}, but it should give {}: each message is sent \
             with its priority (mq_send's last argument), and the kernel hands out the highest priority first",
            show(&sent),
            show(&got),
            show(&want)
        );
    });
}

/// A non-blocking queue of 3 takes 3 messages; the 4th `try_send` answers Ok(false) at once
/// (the kernel said EAGAIN) and the queue still holds exactly the first 3.
#[test]
fn try_send_says_full_on_a_full_nonblocking_queue() {
    Isolation::new().check_fds().run(|| {
        let name = ipc_name("full");
        let q = own_queue(&name, 3, 16, true);
        let mut results = Vec::new();
        for i in 0..5u8 {
            results.push(student(|| try_send(&q, 1, &[b'a' + i])));
        }
        let curmsgs = mq_getattr(&q).expect("mq_getattr").curmsgs();
        let got = own_drain(&q);
        let _ = mq_close(q);
        let _ = mq_unlink(name.as_str());
        let want = [Ok(true), Ok(true), Ok(true), Ok(false), Ok(false)];
        if results[3] == Err(Errno::EAGAIN) {
            panic!(
                "try_send on the full non-blocking queue (mq_maxmsg 3, 3 messages in it) returned Err(EAGAIN): \
                 EAGAIN from mq_send on a non-blocking queue means the queue is full, nothing was sent and \
                 nothing is broken; it is the answer Ok(false), for the caller to retry later or drop the message"
            );
        }
        assert_eq!(
            results, want,
            "five try_send calls into a non-blocking queue of 3 should answer Ok(true) three times, then Ok(false) \
             (queue full)"
        );
        assert_eq!(
            (curmsgs, got),
            (3, msgs(&[(1, "a"), (1, "b"), (1, "c")])),
            "the full queue should hold the first three messages, unchanged"
        );
    });
}

/// On a full blocking queue `try_send` sleeps in mq_timedsend, seen by a helper thread in
/// `/proc/<pid>/syscall`, until the helper receives one message; then it sends and returns
/// Ok(true).
#[test]
fn try_send_waits_on_a_full_blocking_queue() {
    Isolation::new().check_fds().run(|| {
        let name = ipc_name("block");
        let q = own_queue(&name, 2, 16, false);
        mq_send(&q, b"one", 1).expect("mq_send");
        mq_send(&q, b"two", 1).expect("mq_send");
        let me = getpid();
        let done = Arc::new(AtomicBool::new(false));
        let (helper_name, helper_done) = (name.clone(), done.clone());
        let helper = thread::spawn(move || {
            let slept = asleep_unless(me, libc::SYS_mq_timedsend, &helper_done);
            let seen = procfs::syscall(me).map(|c| c.nr);
            let q = open_existing(&helper_name, MQ_OFlag::O_RDONLY | MQ_OFlag::O_NONBLOCK).expect("open the queue");
            let first = own_receive(&q);
            let _ = mq_close(q);
            (slept, seen, first)
        });
        let got = catch_unwind(AssertUnwindSafe(|| student(|| try_send(&q, 2, b"three"))));
        done.store(true, Ordering::SeqCst);
        let joined = helper.join();
        // A panic of the code under test (a stub's todo!()) is reported after the helper is joined.
        let got = got.unwrap_or_else(|p| resume_unwind(p));
        let (slept, seen, first) = joined.expect("the helper thread");
        let rest = own_nonblocking_drain(&name);
        let _ = mq_close(q);
        let _ = mq_unlink(name.as_str());
        if got == Ok(false) {
            panic!(
                "try_send on a full blocking queue returned Ok(false): only a non-blocking descriptor gets EAGAIN; on \
                 a blocking one mq_send waits for room and then sends"
            );
        }
        assert_eq!(got, Ok(true), "try_send on a full blocking queue, once room was made");
        assert!(
            slept,
            "try_send on a full blocking queue never slept in mq_timedsend (last system call seen: {seen:?}): a \
             blocking mq_send on a full queue waits in the kernel until a receiver makes room"
        );
        assert_eq!(
            (first, rest),
            (Some((1, b"one".to_vec())), msgs(&[(2, "three"), (1, "two")])),
            "after the wait the queue should hold the message try_send sent"
        );
    });
}

/// Like [`asleep_in`], but gives up as soon as `done` is set (the call returned).
fn asleep_unless(pid: Pid, nr: i64, done: &AtomicBool) -> bool {
    let limit = scaled(SETTLE);
    let start = Instant::now();
    loop {
        if procfs::syscall(pid).is_some_and(|c| c.nr == nr) && procfs::state(pid) == Some('S') {
            return true;
        }
        if start.elapsed() > limit || done.load(Ordering::SeqCst) {
            return false;
        }
        thread::sleep(Duration::from_millis(1));
    }
}

/// Everything left in queue `name`, through a second, non-blocking descriptor.
fn own_nonblocking_drain(name: &str) -> Vec<(u32, Vec<u8>)> {
    let q = open_existing(name, MQ_OFlag::O_RDONLY | MQ_OFlag::O_NONBLOCK)
        .expect("open the queue again");
    let got = own_drain(&q);
    let _ = mq_close(q);
    got
}

/// Errors other than "full" are returned: EBADF on a descriptor open only for reading,
/// EMSGSIZE for a message longer than mq_msgsize; neither sends anything.
#[test]
fn try_send_returns_other_errors() {
    Isolation::new().check_fds().run(|| {
        let name = ipc_name("errors");
        let q = own_queue(&name, 2, 8, true);
        let reader = open_existing(&name, MQ_OFlag::O_RDONLY | MQ_OFlag::O_NONBLOCK).expect("a read-only descriptor");
        let on_reader = student(|| try_send(&reader, 1, b"x"));
        let too_long = student(|| try_send(&q, 1, b"nine byte"));
        let got = own_drain(&q);
        let _ = mq_close(reader);
        let _ = mq_close(q);
        let _ = mq_unlink(name.as_str());
        assert_eq!(
            on_reader,
            Err(Errno::EBADF),
            "try_send on a descriptor open only for reading: mq_send fails with EBADF, and try_send must return it \
             (only EAGAIN means \"full\")"
        );
        assert_eq!(
            too_long,
            Err(Errno::EMSGSIZE),
            "try_send of 9 bytes into a queue whose mq_msgsize is 8: mq_send fails with EMSGSIZE, and try_send must \
             return it"
        );
        assert!(got.is_empty(), "the failed sends put {} in the queue", show(&got));
    });
}

/// The test sends a generated sequence (priorities 0-3, up to 10 messages) with its own
/// `mq_send`; `receive` must give them highest priority first, FIFO within a priority.
#[test]
fn receive_takes_the_highest_priority_first_fifo_within_one() {
    Isolation::new().check_fds().run(|| {
        let name = ipc_name("order");
        let q = own_queue(&name, 10, 32, true);
        let strategy = vec((0u32..4, vec(any::<u8>(), 0..32)), 1..=10);
        cases::check(32, strategy, |sent| {
            // Whatever a case that failed (or panicked) left in the queue goes first.
            own_drain(&q);
            for (i, (p, m)) in sent.iter().enumerate() {
                mq_send(&q, m, *p).unwrap_or_else(|e| panic!("the test's mq_send of message {i}: {e}"));
            }
            let mut got = Vec::new();
            for _ in 0..sent.len() {
                match student(|| receive(&q)) {
                    Ok(m) => got.push(m),
                    Err(e) => {
                        own_drain(&q);
                        return Err(TestCaseError::fail(format!(
                            "receive failed ({e}) with {} messages still in the queue",
                            sent.len() - got.len()
                        )));
                    }
                }
            }
            own_drain(&q);
            let want = kernel_order(&sent);
            prop_assert!(
                got == want,
                "the test sent (priority:bytes) {:?}; receive gave {:?}, the kernel's order is {:?}: highest \
                 priority first, and within a priority the oldest first. Return the priority mq_receive stored, \
                 and the message's bytes",
                sent,
                got,
                want
            );
            Ok(())
        });
        let _ = mq_close(q);
        let _ = mq_unlink(name.as_str());
    });
}

/// Messages of 0, 1, 100 and exactly mq_msgsize (200) bytes come back with exactly their bytes.
#[test]
fn receive_returns_exactly_the_message() {
    Isolation::new().check_fds().run(|| {
        let name = ipc_name("exact");
        let q = own_queue(&name, 4, 200, true);
        let sizes = [0usize, 1, 100, 200];
        for (i, n) in sizes.iter().enumerate() {
            let m: Vec<u8> = (0..*n).map(|j| (j * 7 + i) as u8).collect();
            mq_send(&q, &m, 1).expect("the test's mq_send");
        }
        let mut got = Vec::new();
        for _ in sizes {
            got.push(student(|| receive(&q)));
        }
        own_drain(&q);
        let _ = mq_close(q);
        let _ = mq_unlink(name.as_str());
        for (i, (n, r)) in sizes.iter().zip(&got).enumerate() {
            let want: Vec<u8> = (0..*n).map(|j| (j * 7 + i) as u8).collect();
            match r {
                Ok((1, m)) if *m == want => {}
                Ok((p, m)) => panic!(
                    "message {i} was {n} bytes with priority 1; receive returned {} bytes with priority {p}{}: \
                     mq_receive returns the message's length, and only that many bytes of the buffer are the \
                     message",
                    m.len(),
                    if m.len() == *n { " (different bytes)" } else { "" }
                ),
                Err(e) => panic!("receive of message {i} ({n} bytes) failed: {e}"),
            }
        }
    });
}

/// A queue of mq_msgsize 8192 holding a 5-byte message: `receive` must offer a buffer of 8192
/// bytes, since `mq_receive` refuses a smaller one with EMSGSIZE whatever the message's length.
#[test]
fn receive_sizes_its_buffer_from_mq_msgsize() {
    Isolation::new().check_fds().run(|| {
        let name = ipc_name("bigmsg");
        let q = own_queue(&name, 2, 8192, true);
        mq_send(&q, b"short", 3).expect("the test's mq_send");
        let big = vec![b'x'; 8192];
        mq_send(&q, &big, 1).expect("the test's mq_send");
        let first = student(|| receive(&q));
        let second = student(|| receive(&q));
        let left = own_drain(&q).len();
        let _ = mq_close(q);
        let _ = mq_unlink(name.as_str());
        if first == Err(Errno::EMSGSIZE) {
            panic!(
                "receive failed with EMSGSIZE on a 5-byte message, in a queue whose mq_msgsize is 8192: the receive \
                 buffer was smaller than the queue's mq_msgsize. mq_receive checks the buffer against the largest \
                 message the queue may hold, not against the message waiting, and refuses a smaller one (the \
                 message stays queued). Read mq_msgsize with mq_getattr and offer that many bytes"
            );
        }
        assert_eq!(first, Ok((3, b"short".to_vec())), "receive of the 5-byte message");
        assert_eq!(second, Ok((1, big)), "receive of the 8192-byte message (mq_msgsize long)");
        assert_eq!(left, 0, "messages left after two receives");
    });
}

/// An empty non-blocking queue: `receive` returns Err(EAGAIN) at once, not a message.
#[test]
fn receive_says_eagain_on_an_empty_nonblocking_queue() {
    Isolation::new().check_fds().run(|| {
        let name = ipc_name("empty");
        let q = own_queue(&name, 2, 32, true);
        let got = student(|| receive(&q));
        let _ = mq_close(q);
        let _ = mq_unlink(name.as_str());
        assert_eq!(
            got,
            Err(Errno::EAGAIN),
            "receive on an empty non-blocking queue: mq_receive fails with EAGAIN (no message now), and receive \
             must return that error, not an empty message"
        );
    });
}

/// An empty blocking queue: `receive` sleeps in mq_timedreceive (the test's helper thread sees
/// it in `/proc/<pid>/syscall`) until the helper sends, then returns that message.
#[test]
fn receive_waits_on_an_empty_blocking_queue() {
    Isolation::new().check_fds().run(|| {
        let name = ipc_name("wait");
        let q = own_queue(&name, 2, 32, false);
        let me = getpid();
        let done = Arc::new(AtomicBool::new(false));
        let (sender_name, helper_done) = (name.clone(), done.clone());
        let helper = thread::spawn(move || {
            let slept = asleep_unless(me, libc::SYS_mq_timedreceive, &helper_done);
            let seen = procfs::syscall(me).map(|c| c.nr);
            let q = open_existing(&sender_name, MQ_OFlag::O_WRONLY).expect("open the queue to send");
            mq_send(&q, b"late", 6).expect("the helper's mq_send");
            let _ = mq_close(q);
            (slept, seen)
        });
        let got = catch_unwind(AssertUnwindSafe(|| student(|| receive(&q))));
        done.store(true, Ordering::SeqCst);
        let joined = helper.join();
        // A panic of the code under test (a stub's todo!()) is reported after the helper is joined.
        let got = got.unwrap_or_else(|p| resume_unwind(p));
        let (slept, seen) = joined.expect("the helper thread");
        let left = own_nonblocking_drain(&name);
        let _ = mq_close(q);
        let _ = mq_unlink(name.as_str());
        assert_eq!(got, Ok((6, b"late".to_vec())), "receive on an empty blocking queue should wait for the message");
        assert!(
            slept,
            "receive did not sleep in mq_timedreceive on the empty blocking queue (last system call seen: {seen:?})"
        );
        assert!(left.is_empty(), "left in the queue: {}", show(&left));
    });
}

/// SIGUSR1 deliveries seen by [`count_signal`].
static SIGNALS: AtomicU32 = AtomicU32::new(0);

/// A handler that only counts (async-signal-safe).
extern "C" fn count_signal(_: libc::c_int) {
    SIGNALS.fetch_add(1, Ordering::SeqCst);
}

/// `receive` asleep in mq_timedreceive on an empty blocking queue gets a signal whose handler
/// was installed without SA_RESTART, so mq_receive fails with EINTR; `receive` must call it
/// again (the helper sees it asleep once more) and return the message the helper then sends.
#[test]
fn receive_retries_when_a_signal_interrupts_it() {
    Isolation::new().check_fds().run(|| {
        let action = SigAction::new(SigHandler::Handler(count_signal), SaFlags::empty(), SigSet::empty());
        // SAFETY: the handler only adds to an atomic counter, which is async-signal-safe.
        unsafe { sigaction(Signal::SIGUSR1, &action) }.expect("sigaction(SIGUSR1)");
        let name = ipc_name("eintr");
        let q = own_queue(&name, 2, 32, false);
        let me = getpid();
        let receiver = pthread_self();
        let done = Arc::new(AtomicBool::new(false));
        let (sender_name, helper_done) = (name.clone(), done.clone());
        let helper = thread::spawn(move || {
            let first = asleep_unless(me, libc::SYS_mq_timedreceive, &helper_done);
            let mut again = false;
            if first && pthread_kill(receiver, Signal::SIGUSR1).is_ok() {
                let start = Instant::now();
                while SIGNALS.load(Ordering::SeqCst) == 0 && start.elapsed() < scaled(SETTLE) {
                    thread::sleep(Duration::from_millis(1));
                }
                again = asleep_unless(me, libc::SYS_mq_timedreceive, &helper_done);
            }
            let q = open_existing(&sender_name, MQ_OFlag::O_WRONLY).expect("open the queue to send");
            mq_send(&q, b"after the signal", 4).expect("the helper's mq_send");
            let _ = mq_close(q);
            (first, again)
        });
        let got = catch_unwind(AssertUnwindSafe(|| student(|| receive(&q))));
        done.store(true, Ordering::SeqCst);
        let joined = helper.join();
        let got = got.unwrap_or_else(|p| resume_unwind(p));
        let (first, again) = joined.expect("the helper thread");
        let left = own_nonblocking_drain(&name);
        let _ = mq_close(q);
        let _ = mq_unlink(name.as_str());
        assert!(first, "receive never slept in mq_timedreceive on the empty blocking queue");
        if got == Err(Errno::EINTR) {
            panic!(
                "receive returned Err(EINTR): mq_receive was interrupted by a signal (SIGUSR1, whose handler was \
                 installed without SA_RESTART) while it waited on the empty queue. EINTR means the call was cut short \
                 before it took any message: nothing is lost, call mq_receive again"
            );
        }
        assert_eq!(got, Ok((4, b"after the signal".to_vec())), "receive after the signal");
        assert!(again, "receive did not go back to sleep in mq_timedreceive after the signal");
        assert!(left.is_empty(), "left in the queue: {}", show(&left));
    });
}

/// `spawn_sender`'s child opens the queue by name and sends six messages of three priorities
/// into a queue with room for all; once it has exited 0, the queue holds them in the kernel's
/// order, each with its priority.
#[test]
fn spawn_sender_delivers_every_message_with_its_priority() {
    Isolation::new().check_fds().run(|| {
        let name = ipc_name("child");
        let q = own_queue(&name, 8, 64, true);
        let sent = msgs(&[(1, "low 1"), (5, "mid 1"), (9, "high"), (1, "low 2"), (5, "mid 2"), (0, "zero")]);
        let child = student(|| spawn_sender(&name, &sent)).expect("spawn_sender");
        let status = wait_exit(child, "spawn_sender's child");
        let got = own_drain(&q);
        let _ = mq_close(q);
        let _ = mq_unlink(name.as_str());
        assert_eq!(
            status,
            WaitStatus::Exited(child, 0),
            "spawn_sender's child (pid {child}) should open {name} by name, send every message, close and _exit(0) \
             (the queue was there and had room for all of them); the queue got {}",
            show(&got)
        );
        let want = kernel_order(&sent);
        assert_eq!(
            got,
            want,
            "the child sent {} into the queue; the test received {}, but should have received {}",
            show(&sent),
            show(&got),
            show(&want)
        );
    });
}

/// A queue of 2 and eight messages: the child must sleep in mq_timedsend on the full queue
/// (not fail with EAGAIN, not spin) until the test, receiving on its own non-blocking
/// descriptor, makes room; all eight arrive, those of one priority in the order sent.
#[test]
fn spawn_sender_waits_when_the_queue_is_full() {
    Isolation::new().check_fds().run(|| {
        let name = ipc_name("slow");
        let q = own_queue(&name, 2, 16, true);
        let sent: Vec<(u32, Vec<u8>)> = (0..8u32).map(|i| (i % 3, format!("m{i}").into_bytes())).collect();
        let child = student(|| spawn_sender(&name, &sent)).expect("spawn_sender");
        let slept = asleep_in(child, libc::SYS_mq_timedsend);
        let mut got = Vec::new();
        let limit = scaled(SETTLE);
        let start = Instant::now();
        let status = loop {
            got.extend(own_drain(&q));
            match waitpid(child, Some(WaitPidFlag::WNOHANG)) {
                Ok(WaitStatus::StillAlive) => {}
                Ok(status) => break status,
                Err(e) => panic!("waitpid: {e}"),
            }
            if start.elapsed() > limit {
                let seen = evidence_of(child);
                reap(child);
                panic!(
                    "spawn_sender's child (pid {child}) had not exited {limit:?} after the test started receiving \
                     ({} of 8 messages arrived): {seen}",
                    got.len()
                );
            }
            let mut fds = [PollFd::new(q.as_fd(), PollFlags::POLLIN)];
            let _ = poll(&mut fds, PollTimeout::from(10u8));
        };
        got.extend(own_drain(&q));
        let _ = mq_close(q);
        let _ = mq_unlink(name.as_str());
        if let WaitStatus::Exited(_, 1) = status {
            panic!(
                "spawn_sender's child (pid {child}) exited with status 1 after sending {} of 8 messages into a queue \
                 of 2: a sender must wait for room when the queue is full. Open the queue blocking (no O_NONBLOCK): \
                 mq_send then sleeps until a receiver takes a message, where a non-blocking one fails with EAGAIN",
                got.len()
            );
        }
        assert_eq!(status, WaitStatus::Exited(child, 0), "spawn_sender's child should _exit(0)");
        assert!(
            slept,
            "spawn_sender's child never slept in mq_timedsend although the queue holds only 2 of its 8 messages"
        );
        for prio in 0..3 {
            let of = |v: &[(u32, Vec<u8>)]| v.iter().filter(|(p, _)| *p == prio).cloned().collect::<Vec<_>>();
            assert_eq!(
                of(&got),
                of(&sent),
                "the messages of priority {prio}, in the order received; all sent: {}, all received: {}",
                show(&sent),
                show(&got)
            );
        }
    });
}

/// No queue of that name: the child's `mq_open` fails, it exits 1, and it did not create the
/// queue (an open by name without O_CREAT).
#[test]
fn spawn_sender_never_creates_the_queue() {
    Isolation::new().check_fds().run(|| {
        let name = ipc_name("nosuch");
        let child = student(|| spawn_sender(&name, &msgs(&[(1, "lost")]))).expect("spawn_sender");
        let status = wait_exit(child, "spawn_sender's child");
        let made = exists(&name);
        let _ = mq_unlink(name.as_str());
        assert!(
            !made,
            "spawn_sender's child created the queue {name}, which did not exist: the sender opens the receiver's \
             queue by name, without O_CREAT, so that a typo or a missing receiver is an error (ENOENT) rather \
             than a new queue nobody reads"
        );
        assert_eq!(
            status,
            WaitStatus::Exited(child, 1),
            "spawn_sender's child, finding no queue {name} (mq_open: ENOENT), should _exit(1)"
        );
    });
}

/// With the queue open (the test holds a descriptor with a message in it), `remove_queue`
/// returns Ok and the name is gone at once: `mq_open` without O_CREAT fails with ENOENT, and
/// the name can be created anew; the open descriptor still reads its message.
#[test]
fn remove_queue_frees_the_name() {
    Isolation::new().check_fds().run(|| {
        let name = ipc_name("unlink");
        let q = own_queue(&name, 2, 16, true);
        mq_send(&q, b"kept", 2).expect("the test's mq_send");
        let removed = student(|| remove_queue(&name));
        let after = open_existing(&name, MQ_OFlag::O_RDONLY);
        let still = own_receive(&q);
        let _ = mq_close(q);
        match after {
            Ok(q2) => {
                let _ = mq_close(q2);
                let _ = mq_unlink(name.as_str());
                panic!(
                    "after remove_queue({name}) returned {removed:?}, mq_open({name}) still finds the queue: POSIX \
                     message queue {name} was left behind: nobody called mq_unlink. A queue outlives every process \
                     that used it, with its messages, until its name is unlinked (mq_unlink) or the machine \
                     reboots; mq_close only closes this process's descriptor"
                );
            }
            Err(e) => assert_eq!(e, Errno::ENOENT, "mq_open of the removed name"),
        }
        assert_eq!(removed, Ok(()), "remove_queue({name})");
        // Where the machine mounts the mqueue filesystem on /dev/mqueue (this test's own mount,
        // made by the harness), the name is gone from its listing too.
        let entry = std::path::Path::new("/dev/mqueue").join(name.trim_start_matches('/'));
        assert!(
            !entry.exists(),
            "{} is still listed after remove_queue: nobody called mq_unlink",
            entry.display()
        );
        assert_eq!(
            still,
            Some((2, b"kept".to_vec())),
            "a descriptor open before mq_unlink should still read the queue's message"
        );
        let again = own_queue(&name, 2, 16, true);
        let _ = mq_close(again);
        let _ = mq_unlink(name.as_str());
    });
}

/// A name that was never made: `remove_queue` returns Err(ENOENT), not Ok.
#[test]
fn remove_queue_returns_enoent_for_no_such_queue() {
    Isolation::new().check_fds().run(|| {
        let name = ipc_name("never");
        let got = student(|| remove_queue(&name));
        assert_eq!(
            got,
            Err(Errno::ENOENT),
            "remove_queue({name}) of a queue that does not exist: mq_unlink fails with ENOENT, and remove_queue \
             must return it"
        );
    });
}
