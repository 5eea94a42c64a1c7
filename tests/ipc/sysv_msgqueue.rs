//! ipc/sysv_msgqueue: System V message queues (System V 消息队列): typed messages, selective
//! receive, IPC_NOWAIT and IPC_RMID.
//!
//! What the tests observe, never what the code under test claims:
//! - the queue as the kernel lists it in `/proc/sysvipc/msg` (key, mode, bytes and messages
//!   queued, pid of the last sender) and `msgctl(IPC_STAT)`;
//! - the messages the test itself sends and takes with raw msgsnd(2)/msgrcv(2), so the
//!   student's `send` is judged by what the kernel stored and `receive` by what the kernel had;
//! - the receiver asleep in msgrcv(2) in `/proc/<pid>/syscall` (its id, size, type and flags
//!   arguments), before another process sends the message it waits for; and a receive asked
//!   not to wait that sleeps anyway, seen there and released by the test at once;
//! - a forked sender's exit status from `waitpid`; what the harness finds left after the test
//!   (a queue never removed, a child never reaped).
//!
//! The contract, clause by clause, and the test that checks each:
//! - `create_queue` makes a new queue at the key with the mode asked
//!   (`create_queue_makes_a_queue_with_the_key_and_mode`), and fails with EEXIST when one is
//!   there (`create_queue_refuses_a_key_in_use`);
//! - `send` queues exactly the text, with its type: msgsz counts the text, not the mtype field
//!   (`send_queues_exactly_the_text`); it refuses a text longer than MAX_TEXT (E2BIG) and a
//!   type not positive (EINVAL) and queues nothing then (`send_refuses_what_it_cannot_send`);
//! - `receive` with `Select::Type(t)` takes the oldest message of type t
//!   (`receive_by_type_takes_the_oldest_of_that_type`), with `Select::UpTo(t)` the oldest of the
//!   lowest type <= t (`receive_up_to_takes_the_lowest_type_first`), with `Select::Any` the
//!   oldest (`receive_any_takes_the_oldest`); random sequences against a model of the kernel's
//!   rule (`random_sends_and_receives_follow_the_kernels_rule`);
//! - with `nowait` it fails with ENOMSG when nothing matches, at once, leaving the queue as it
//!   was (`receive_nowait_fails_with_enomsg_without_waiting`); without it, it sleeps in msgrcv
//!   until another process sends a matching message
//!   (`receive_waits_until_another_process_sends`), and calls msgrcv again when a signal
//!   interrupts it (`receive_goes_on_after_a_signal`);
//! - `send` waits while the queue is full (no IPC_NOWAIT) and calls msgsnd again when a signal
//!   interrupts it (`send_waits_while_the_queue_is_full_and_goes_on_after_a_signal`);
//! - it takes a text of up to MAX_TEXT bytes and refuses a longer one with E2BIG, leaving it
//!   queued (`receive_refuses_a_message_longer_than_max_text`); it rejects a selector type not
//!   positive with EINVAL (`receive_rejects_a_type_not_positive`);
//! - `remove_queue` removes the queue: IPC_STAT then fails with EINVAL, /proc/sysvipc/msg no
//!   longer lists it, and removing it again is an error (`remove_queue_removes_it`);
//! - `spawn_sender` sends from a child process, in order, and the child exits 0
//!   (`spawn_sender_sends_from_a_child`), or 1 when a send fails
//!   (`spawn_sender_child_exits_1_when_a_send_fails`);
//! - `gather` passes the messages from a child to the parent and leaves no queue and no child
//!   behind (`gather_passes_the_messages_and_leaves_nothing`: the harness's leak check names a
//!   queue left with its id, key and mode, and a zombie), the parent waiting in msgrcv for what
//!   the child sends (`gather_receives_what_the_child_sends`: the child held stopped at birth
//!   until the parent is seen asleep in msgrcv); it refuses a key in use with EEXIST and
//!   leaves that queue alone (`gather_refuses_a_key_in_use_and_leaves_that_queue`).

// The exercise under test: your stub (by default), the reference solution (`--features
// solutions`), or a shipped mistake that `cargo grade --mistakes` copies into target/.
#[cfg(not(any(feature = "solutions", feature = "mistake")))]
#[path = "../../exercises/ipc/sysv_msgqueue.rs"]
#[allow(dead_code)] // a stub does not use all of its API yet
mod sysv_msgqueue;
#[cfg(all(feature = "solutions", not(feature = "mistake")))]
#[path = "../../solutions/ipc/sysv_msgqueue.rs"]
mod sysv_msgqueue;
#[cfg(feature = "mistake")]
#[path = "../../target/oskata-mistake/ipc/sysv_msgqueue.rs"]
#[rustfmt::skip] // the copy exists only while the proof runs
mod sysv_msgqueue;
use sysv_msgqueue::*;

use std::fs;
use std::os::fd::OwnedFd;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use nix::errno::Errno;
use nix::sys::pthread::{pthread_kill, pthread_self};
use nix::sys::signal::{SaFlags, SigAction, SigHandler, SigSet, Signal, sigaction};
use nix::sys::wait::{WaitStatus, waitpid};
use nix::unistd::{ForkResult, Pid, fork, getpid, pipe, read, write};
use oskata_harness::{Isolation, births, ipc_key, scaled, scratch_dir, student};
use proptest::collection::vec;
use proptest::prelude::*;
use proptest::test_runner::{Config, TestError, TestRunner};
use rstest::rstest;

/// How long a correct solution may take to reach its msgrcv or let a child finish (before
/// `scaled`); it needs milliseconds.
const SETTLE: Duration = Duration::from_secs(5);

/// The lesson about msgsz.
const MSGSZ: &str = "msgsz, the size argument of msgsnd(2) and msgrcv(2), counts only the text (mtext), not the \
                     mtype field in front of it: passing the size of the whole struct is the classic mistake";

/// A message as the test sends and takes it.
type Msg = (libc::c_long, Vec<u8>);

/// The kernel's raw message layout, for the test's own msgsnd/msgrcv: a bigger text than
/// MAX_TEXT, so the test can send messages the student's receive must refuse.
#[repr(C)]
struct RawMsg {
    mtype: libc::c_long,
    mtext: [u8; 2 * MAX_TEXT],
}

/// A queue the test owns, removed when dropped (whatever the student did to it).
struct Queue {
    id: i32,
}

impl Drop for Queue {
    fn drop(&mut self) {
        // SAFETY: IPC_RMID reads no buffer; the id may be gone already (EINVAL is fine).
        unsafe { libc::msgctl(self.id, libc::IPC_RMID, std::ptr::null_mut()) };
    }
}

/// A new queue made by the test itself at `ipc_key(tag)`, mode 600.
fn test_queue(tag: u8) -> Queue {
    // SAFETY: msgget takes two integers.
    let id = unsafe { libc::msgget(ipc_key(tag), libc::IPC_CREAT | libc::IPC_EXCL | 0o600) };
    assert!(id >= 0, "the test's msgget failed: {}", Errno::last());
    Queue { id }
}

/// The test's own msgsnd (IPC_NOWAIT: the test's queues never fill up).
fn raw_send(id: i32, mtype: libc::c_long, text: &[u8]) {
    let mut m = RawMsg {
        mtype,
        mtext: [0; 2 * MAX_TEXT],
    };
    m.mtext[..text.len()].copy_from_slice(text);
    // SAFETY: the kernel reads mtype and text.len() bytes of mtext, all inside `m`.
    let rc = unsafe { libc::msgsnd(id, (&raw const m).cast(), text.len(), libc::IPC_NOWAIT) };
    assert_eq!(rc, 0, "the test's msgsnd failed: {}", Errno::last());
}

/// The test's own msgrcv with IPC_NOWAIT: what the kernel holds for `msgtyp`.
fn raw_receive(id: i32, msgtyp: libc::c_long) -> Result<Msg, Errno> {
    let mut m = RawMsg {
        mtype: 0,
        mtext: [0; 2 * MAX_TEXT],
    };
    // SAFETY: the kernel writes mtype and at most 2 * MAX_TEXT bytes of mtext, inside `m`.
    let n = unsafe {
        libc::msgrcv(
            id,
            (&raw mut m).cast(),
            2 * MAX_TEXT,
            msgtyp,
            libc::IPC_NOWAIT,
        )
    };
    if n < 0 {
        Err(Errno::last())
    } else {
        Ok((m.mtype, m.mtext[..n as usize].to_vec()))
    }
}

/// Everything left in the queue, oldest first, taken out.
fn drain(id: i32) -> Vec<Msg> {
    let mut out = Vec::new();
    while let Ok(m) = raw_receive(id, 0) {
        out.push(m);
    }
    out
}

/// One line of /proc/sysvipc/msg.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Listed {
    key: i32,
    id: i32,
    perms: u32,
    cbytes: u64,
    qnum: u64,
    lspid: i32,
    lrpid: i32,
}

/// Every queue the kernel lists in this IPC namespace.
fn listed() -> Vec<Listed> {
    let text = fs::read_to_string("/proc/sysvipc/msg").expect("read /proc/sysvipc/msg");
    let mut lines = text.lines();
    let header: Vec<&str> = lines.next().unwrap_or("").split_whitespace().collect();
    let col = |name: &str| {
        header
            .iter()
            .position(|h| *h == name)
            .unwrap_or_else(|| panic!("/proc/sysvipc/msg has no {name} column"))
    };
    let (key, id, perms, cbytes, qnum, lspid, lrpid) = (
        col("key"),
        col("msqid"),
        col("perms"),
        col("cbytes"),
        col("qnum"),
        col("lspid"),
        col("lrpid"),
    );
    lines
        .filter_map(|l| {
            let w: Vec<&str> = l.split_whitespace().collect();
            Some(Listed {
                key: w.get(key)?.parse().ok()?,
                id: w.get(id)?.parse().ok()?,
                perms: u32::from_str_radix(w.get(perms)?, 8).ok()?,
                cbytes: w.get(cbytes)?.parse().ok()?,
                qnum: w.get(qnum)?.parse().ok()?,
                lspid: w.get(lspid)?.parse().ok()?,
                lrpid: w.get(lrpid)?.parse().ok()?,
            })
        })
        .collect()
}

/// The kernel's line for queue `id`, if it lists one.
fn listed_id(id: i32) -> Option<Listed> {
    listed().into_iter().find(|q| q.id == id)
}

/// msgctl(IPC_STAT) of `id`.
fn ipc_stat(id: i32) -> Result<libc::msqid_ds, Errno> {
    // SAFETY: an all-zero msqid_ds is a valid value of that plain C struct.
    let mut ds: libc::msqid_ds = unsafe { std::mem::zeroed() };
    // SAFETY: IPC_STAT writes one msqid_ds into `ds`.
    let rc = unsafe { libc::msgctl(id, libc::IPC_STAT, &raw mut ds) };
    if rc < 0 { Err(Errno::last()) } else { Ok(ds) }
}

/// Bytes in words, as text when they are printable.
fn show(text: &[u8]) -> String {
    match std::str::from_utf8(text) {
        Ok(s) if text.len() <= 64 => format!("{s:?}"),
        _ => format!("{} bytes", text.len()),
    }
}

/// A message in words.
fn show_msg(m: &Msg) -> String {
    format!("(type {}, {})", m.0, show(&m.1))
}

/// A list of messages in words.
fn show_all(ms: &[Msg]) -> String {
    let parts: Vec<String> = ms.iter().map(show_msg).collect();
    format!("[{}]", parts.join(", "))
}

/// A receive's result in words.
fn show_result(r: &nix::Result<Msg>) -> String {
    match r {
        Ok(m) => format!("Ok{}", show_msg(m)),
        Err(e) => format!("Err({e})"),
    }
}

/// Loads the test's queue with a mix of types: 3 "a", 1 "b", 2 "c", 1 "d", 3 "e".
fn mixed_queue(tag: u8) -> Queue {
    let q = test_queue(tag);
    for (t, text) in [(3, "a"), (1, "b"), (2, "c"), (1, "d"), (3, "e")] {
        raw_send(q.id, t, text.as_bytes());
    }
    q
}

/// What the main thread was seen doing while the student's receive ran.
#[derive(Debug, Clone, Copy)]
struct Seen {
    /// msgrcv's arguments: id, msgsz, msgtyp, msgflg.
    args: (i32, u64, i64, u64),
}

/// Whether `pid`'s main thread sleeps in msgrcv(2) right now, with its arguments.
fn sleeping_in_msgrcv(pid: Pid) -> Option<Seen> {
    let call = oskata_harness::procfs::syscall(pid)?;
    (call.nr == libc::SYS_msgrcv && oskata_harness::procfs::state(pid) == Some('S')).then_some(
        Seen {
            args: (
                call.args[0] as i32,
                call.args[2],
                call.args[3] as i64,
                call.args[4],
            ),
        },
    )
}

/// Runs `receive` in the test's main thread while a watcher thread looks at it: if the main
/// thread is seen asleep in msgrcv, the watcher records the call and runs `release` (which
/// must make the receive return), once. Returns the receive's result and what was seen.
fn watched_receive(
    id: i32,
    which: Select,
    nowait: bool,
    release: impl FnOnce() + Send + 'static,
) -> (nix::Result<Msg>, Option<Seen>) {
    let me = getpid();
    let done = Arc::new(AtomicBool::new(false));
    let flag = Arc::clone(&done);
    let watcher = thread::spawn(move || {
        let mut pause = Duration::from_micros(100);
        while !flag.load(Ordering::SeqCst) {
            if let Some(seen) = sleeping_in_msgrcv(me) {
                release();
                return Some(seen);
            }
            thread::sleep(pause);
            pause = (pause * 2).min(Duration::from_millis(5));
        }
        None
    });
    let got = student(|| receive(id, which, nowait));
    done.store(true, Ordering::SeqCst);
    let seen = watcher.join().expect("the watcher thread");
    (got, seen)
}

#[rstest]
#[case(0o600)]
#[case(0o640)]
#[case(0o404)]
fn create_queue_makes_a_queue_with_the_key_and_mode(#[case] mode: u32) {
    Isolation::new().deadline(Duration::from_secs(15)).run(|| {
        let key = ipc_key(1);
        let id = student(|| create_queue(key, mode)).unwrap_or_else(|e| {
            panic!("create_queue({key:#x}, {mode:o}) failed: {e} (no queue had that key)")
        });
        let _guard = Queue { id };
        let Some(line) = listed_id(id) else {
            panic!(
                "create_queue returned id {id}, but /proc/sysvipc/msg lists no queue with that id: {:?}",
                listed()
            );
        };
        assert_eq!(
            line.key, key,
            "the queue create_queue made (id {id}) has key {:#x} in /proc/sysvipc/msg, not the key asked, {key:#x}: \
             msgget(2) takes the key as its first argument (IPC_PRIVATE, 0, would make a queue no other process can \
             find by key)",
            line.key
        );
        assert_eq!(
            line.perms, mode,
            "the queue create_queue made (id {id}, key {key:#x}) has mode {:o} in /proc/sysvipc/msg, not the mode \
             asked, {mode:o}: the low 9 bits of msgget's flags are the permission bits, or-ed with IPC_CREAT | \
             IPC_EXCL (msgget ignores the umask)",
            line.perms
        );
        let ds = ipc_stat(id).expect("IPC_STAT of the new queue");
        assert_eq!(
            (ds.msg_perm.__key, u32::from(ds.msg_perm.mode) & 0o777),
            (key, mode),
            "IPC_STAT shows key and mode differing from what was asked"
        );
        assert_eq!(ds.msg_qnum, 0, "a new queue holds no message");
    });
}

#[test]
fn create_queue_refuses_a_key_in_use() {
    Isolation::new().deadline(Duration::from_secs(15)).run(|| {
        let q = test_queue(2);
        raw_send(q.id, 1, b"already here");
        let got = student(|| create_queue(ipc_key(2), 0o600));
        if let Ok(other) = got
            && other != q.id
        {
            let _ = Queue { id: other };
        }
        assert_eq!(
            got,
            Err(Errno::EEXIST),
            "create_queue at a key where a queue already exists (id {}, holding a message) must fail with EEXIST: \
             create a NEW queue with IPC_CREAT | IPC_EXCL; without IPC_EXCL msgget hands back the old queue and its \
             old messages",
            q.id
        );
        assert_eq!(
            drain(q.id),
            vec![(1, b"already here".to_vec())],
            "the queue already there must be left as it was"
        );
    });
}

#[test]
fn send_queues_exactly_the_text() {
    Isolation::new().deadline(Duration::from_secs(15)).run(|| {
        let q = test_queue(3);
        let long: Vec<u8> = (0..MAX_TEXT).map(|i| b'a' + (i % 26) as u8).collect();
        let cases: [(libc::c_long, Vec<u8>); 4] = [
            (7, b"hello".to_vec()),
            (1, Vec::new()),
            (42, long),
            (i64::from(i32::MAX) as libc::c_long + 5, b"big type".to_vec()),
        ];
        for (mtype, text) in cases {
            let got = student(|| send(q.id, mtype, &text));
            assert_eq!(
                got,
                Ok(()),
                "send(id {}, type {mtype}, {}) failed on an empty queue",
                q.id,
                show(&text)
            );
            let line = listed_id(q.id).expect("the test's queue in /proc/sysvipc/msg");
            if line.qnum != 1 || line.cbytes != text.len() as u64 {
                panic!(
                    "after send(type {mtype}, a text of {} bytes) on an empty queue, /proc/sysvipc/msg shows {} \
                     message(s) holding {} bytes (cbytes), not 1 message of {} bytes. {MSGSZ}; the kernel queues \
                     exactly msgsz bytes of text.",
                    text.len(),
                    line.qnum,
                    line.cbytes,
                    text.len()
                );
            }
            let kernel = raw_receive(q.id, 0).expect("the message send queued");
            assert_eq!(
                kernel,
                (mtype, text.clone()),
                "send(type {mtype}, {}) queued {} instead",
                show(&text),
                show_msg(&kernel)
            );
        }
    });
}

#[test]
fn send_refuses_what_it_cannot_send() {
    Isolation::new().deadline(Duration::from_secs(15)).run(|| {
        let q = test_queue(4);
        let too_long = vec![b'x'; MAX_TEXT + 1];
        let got = student(|| send(q.id, 1, &too_long));
        assert_eq!(
            got,
            Err(Errno::E2BIG),
            "send of a text of MAX_TEXT + 1 = {} bytes must fail with E2BIG and send nothing",
            MAX_TEXT + 1
        );
        for mtype in [0, -3] {
            let got = student(|| send(q.id, mtype, b"no type"));
            assert_eq!(
                got,
                Err(Errno::EINVAL),
                "send with type {mtype} must fail with EINVAL: a message's type must be > 0 (msgsnd(2))"
            );
        }
        let left = drain(q.id);
        assert!(
            left.is_empty(),
            "a send that failed queued {} anyway",
            show_all(&left)
        );
    });
}

#[test]
fn receive_by_type_takes_the_oldest_of_that_type() {
    Isolation::new().deadline(Duration::from_secs(15)).run(|| {
        let q = mixed_queue(5);
        let expect: [(libc::c_long, &str); 4] = [(1, "b"), (3, "a"), (1, "d"), (2, "c")];
        for (t, text) in expect {
            let got = student(|| receive(q.id, Select::Type(t), true));
            assert_eq!(
                got,
                Ok((t, text.as_bytes().to_vec())),
                "receive(Select::Type({t})) on a queue loaded with (3 \"a\"), (1 \"b\"), (2 \"c\"), (1 \"d\"), (3 \
                 \"e\") (minus what earlier receives took) got {}: a msgtyp > 0 takes the oldest message of exactly \
                 that type (msgop(2))",
                show_result(&got)
            );
        }
        assert_eq!(drain(q.id), vec![(3, b"e".to_vec())], "what is left");
    });
}

#[test]
fn receive_up_to_takes_the_lowest_type_first() {
    Isolation::new().deadline(Duration::from_secs(15)).run(|| {
        let q = mixed_queue(6);
        let steps: [(libc::c_long, nix::Result<Msg>); 5] = [
            (2, Ok((1, b"b".to_vec()))),
            (2, Ok((1, b"d".to_vec()))),
            (2, Ok((2, b"c".to_vec()))),
            (2, Err(Errno::ENOMSG)),
            (5, Ok((3, b"a".to_vec()))),
        ];
        for (t, expected) in steps {
            let got = student(|| receive(q.id, Select::UpTo(t), true));
            assert_eq!(
                got,
                expected,
                "receive(Select::UpTo({t}), nowait) on a queue loaded with (3 \"a\"), (1 \"b\"), (2 \"c\"), (1 \"d\"), \
                 (3 \"e\") (minus what earlier receives took) got {} instead of {}: a NEGATIVE msgtyp, -{t}, takes \
                 the oldest message of the lowest type <= {t}; msgtyp {t} (the wrong sign) would take type {t} only",
                show_result(&got),
                show_result(&expected)
            );
        }
        assert_eq!(drain(q.id), vec![(3, b"e".to_vec())], "what is left");
    });
}

#[test]
fn receive_any_takes_the_oldest() {
    Isolation::new().deadline(Duration::from_secs(15)).run(|| {
        let q = mixed_queue(7);
        let mut got = Vec::new();
        for _ in 0..5 {
            match student(|| receive(q.id, Select::Any, true)) {
                Ok(m) => got.push(m),
                Err(e) => panic!(
                    "receive(Select::Any, nowait) failed with {e} after taking {} from a queue of 5 messages",
                    show_all(&got)
                ),
            }
        }
        let sent: Vec<Msg> = [(3, "a"), (1, "b"), (2, "c"), (1, "d"), (3, "e")]
            .iter()
            .map(|(t, s)| (*t, s.as_bytes().to_vec()))
            .collect();
        assert_eq!(
            got,
            sent,
            "receive(Select::Any) five times took {} from a queue loaded with {}: msgtyp 0 takes the oldest message \
             whatever its type, so they come out in the order sent",
            show_all(&got),
            show_all(&sent)
        );
        let last = student(|| receive(q.id, Select::Any, true));
        assert_eq!(
            last,
            Err(Errno::ENOMSG),
            "receive(Select::Any, nowait) on the emptied queue"
        );
    });
}

#[test]
fn receive_nowait_fails_with_enomsg_without_waiting() {
    Isolation::new().deadline(Duration::from_secs(15)).run(|| {
        let q = test_queue(8);
        raw_send(q.id, 1, b"type one");
        let cases: [(Select, libc::c_long); 3] = [
            (Select::Type(2), 2),
            (Select::UpTo(0x7fff), 1),
            (Select::Any, 1),
        ];
        for (i, (which, release_type)) in cases.into_iter().enumerate() {
            // The third case empties the queue first: nothing at all matches then.
            if i == 2 {
                drain(q.id);
            }
            if i == 1 {
                // UpTo finds the type-1 message: take it out, then nothing up to 0x7fff matches.
                drain(q.id);
                raw_send(q.id, 0x8000, b"too high");
            }
            let before = listed_id(q.id).expect("the test's queue");
            let id = q.id;
            let (got, seen) = watched_receive(q.id, which, true, move || {
                raw_send(id, release_type, b"sent by the test to end a wait");
            });
            if let Some(s) = seen {
                panic!(
                    "receive({which:?}, nowait = true) slept in msgrcv(2) (seen in /proc/{}/syscall: msgrcv(id {}, \
                     msgsz {}, msgtyp {}, msgflg {:#o})) although no message matched and it was asked not to wait; the \
                     test sent a message to wake it ({}). With nowait, pass IPC_NOWAIT in msgflg: msgrcv then fails at \
                     once with ENOMSG.",
                    getpid(),
                    s.args.0,
                    s.args.1,
                    s.args.2,
                    s.args.3,
                    show_result(&got)
                );
            }
            assert_eq!(
                got,
                Err(Errno::ENOMSG),
                "receive({which:?}, nowait = true) when no message in the queue matches must fail with ENOMSG"
            );
            let after = listed_id(q.id).expect("the test's queue");
            assert_eq!(
                (after.qnum, after.cbytes),
                (before.qnum, before.cbytes),
                "a receive that found nothing changed the queue"
            );
        }
    });
}

#[test]
fn receive_waits_until_another_process_sends() {
    Isolation::new().deadline(Duration::from_secs(20)).run(|| {
        let q = test_queue(9);
        raw_send(q.id, 3, b"not this one");
        let (go_r, go_w) = pipe().expect("pipe");
        // SAFETY: the child only reads a pipe, makes one msgsnd and leaves through _exit.
        let sender = match unsafe { fork() }.expect("fork") {
            ForkResult::Child => {
                drop(go_w);
                let mut b = [0u8; 1];
                if matches!(read(&go_r, &mut b), Ok(1)) {
                    raw_send(q.id, 5, b"late");
                }
                // SAFETY: ends the test's helper child at once.
                unsafe { libc::_exit(0) }
            }
            ForkResult::Parent { child } => child,
        };
        drop(go_r);
        let start = Instant::now();
        let limit = scaled(SETTLE);
        let go: Arc<std::sync::Mutex<Option<OwnedFd>>> = Arc::new(std::sync::Mutex::new(Some(go_w)));
        let go2 = Arc::clone(&go);
        let me = getpid();
        let done = Arc::new(AtomicBool::new(false));
        let flag = Arc::clone(&done);
        let watcher = thread::spawn(move || {
            let mut seen = None;
            let mut pause = Duration::from_micros(100);
            while !flag.load(Ordering::SeqCst) && start.elapsed() < limit {
                if let Some(s) = sleeping_in_msgrcv(me) {
                    seen = Some(s);
                    break;
                }
                thread::sleep(pause);
                pause = (pause * 2).min(Duration::from_millis(5));
            }
            // Seen asleep or not, let the sender go, so that a receive waiting anywhere ends.
            if let Some(fd) = go2.lock().expect("lock").take() {
                let _ = write(&fd, b"g");
            }
            seen
        });
        let got = student(|| receive(q.id, Select::Type(5), false));
        done.store(true, Ordering::SeqCst);
        let seen = watcher.join().expect("the watcher thread");
        drop(go.lock().expect("lock").take());
        let status = waitpid(sender, None).expect("reap the test's sender");
        assert_eq!(status, WaitStatus::Exited(sender, 0), "the test's sender");
        let Some(s) = seen else {
            panic!(
                "receive(Select::Type(5), nowait = false) on a queue holding only a type-3 message was never seen \
                 asleep in msgrcv(2) in /proc/{me}/syscall; it returned {} before another process sent a type-5 \
                 message. Without nowait, msgrcv must be called with no IPC_NOWAIT in msgflg: it then sleeps until \
                 a message of the type asked arrives.",
                show_result(&got)
            );
        };
        let (id, msgsz, msgtyp, flags) = s.args;
        if msgsz != MAX_TEXT as u64 {
            panic!(
                "receive slept in msgrcv(id {id}, msgsz {msgsz}, msgtyp {msgtyp}, msgflg {flags:#o}): msgsz should be \
                 MAX_TEXT = {MAX_TEXT}, the size of the text buffer. {MSGSZ}."
            );
        }
        assert_eq!(
            (id, msgtyp),
            (q.id, 5),
            "receive(Select::Type(5)) slept in msgrcv with id {id} and msgtyp {msgtyp}"
        );
        assert_eq!(
            flags & libc::IPC_NOWAIT as u64,
            0,
            "a waiting msgrcv has no IPC_NOWAIT"
        );
        assert_eq!(
            got,
            Ok((5, b"late".to_vec())),
            "receive(Select::Type(5)) slept in msgrcv until another process (pid {sender}) sent (type 5, \"late\"); \
             it should return that message"
        );
        assert_eq!(
            drain(q.id),
            vec![(3, b"not this one".to_vec())],
            "the type-3 message stays"
        );
    });
}

#[test]
fn receive_refuses_a_message_longer_than_max_text() {
    Isolation::new().deadline(Duration::from_secs(15)).run(|| {
        let q = test_queue(10);
        let long = vec![b'L'; MAX_TEXT + 1];
        raw_send(q.id, 1, &long);
        let got = student(|| receive(q.id, Select::Any, true));
        assert_eq!(
            got.as_ref().err(),
            Some(&Errno::E2BIG),
            "receive of a message of MAX_TEXT + 1 = {} bytes got {}: msgrcv(2) with msgsz MAX_TEXT = {MAX_TEXT} and \
             without MSG_NOERROR fails with E2BIG and leaves the message queued. {MSGSZ}; a msgsz bigger than the \
             text buffer lets the kernel write past it.",
            MAX_TEXT + 1,
            show_result(&got)
        );
        assert_eq!(
            drain(q.id),
            vec![(1, long)],
            "the message too long stays queued"
        );
    });
}

#[test]
fn receive_rejects_a_type_not_positive() {
    Isolation::new().deadline(Duration::from_secs(15)).run(|| {
        let q = test_queue(11);
        raw_send(q.id, 1, b"one");
        raw_send(q.id, 4, b"four");
        for which in [
            Select::Type(0),
            Select::Type(-4),
            Select::UpTo(0),
            Select::UpTo(-1),
        ] {
            let got = student(|| receive(q.id, which, true));
            assert_eq!(
                got,
                Err(Errno::EINVAL),
                "receive({which:?}) must fail with EINVAL (the types in Type and UpTo are > 0); it got {}",
                show_result(&got)
            );
        }
        assert_eq!(drain(q.id).len(), 2, "both messages stay queued");
    });
}

#[test]
fn remove_queue_removes_it() {
    Isolation::new().deadline(Duration::from_secs(15)).run(|| {
        let q = test_queue(12);
        raw_send(q.id, 1, b"gone with the queue");
        let got = student(|| remove_queue(q.id));
        assert_eq!(got, Ok(()), "remove_queue of an existing queue");
        match ipc_stat(q.id) {
            Err(Errno::EINVAL) => {}
            other => panic!(
                "after remove_queue({}), msgctl(IPC_STAT) gave {:?} instead of failing with EINVAL: the queue still \
                 exists. msgctl(id, IPC_RMID, NULL) removes it at once, messages and all.",
                q.id,
                other.map(|ds| ds.msg_qnum)
            ),
        }
        assert_eq!(
            listed_id(q.id),
            None,
            "/proc/sysvipc/msg still lists the removed queue"
        );
        let again = student(|| remove_queue(q.id));
        assert_eq!(
            again,
            Err(Errno::EINVAL),
            "remove_queue of a queue already removed must return msgctl's error, EINVAL"
        );
    });
}

#[test]
fn spawn_sender_sends_from_a_child() {
    Isolation::new().deadline(Duration::from_secs(15)).run(|| {
        let q = test_queue(13);
        let messages: Vec<Msg> = vec![
            (2, b"first".to_vec()),
            (9, b"second".to_vec()),
            (2, b"third".to_vec()),
            (1, Vec::new()),
        ];
        let child = student(|| spawn_sender(q.id, &messages)).expect("spawn_sender");
        assert_ne!(
            child,
            getpid(),
            "spawn_sender must return the child's pid"
        );
        let status = waitpid(child, None).expect("waitpid on the sender");
        assert_eq!(
            status,
            WaitStatus::Exited(child, 0),
            "the sender child should exit 0 after sending all"
        );
        let line = listed_id(q.id).expect("the test's queue");
        let bytes: usize = messages.iter().map(|m| m.1.len()).sum();
        assert_eq!(
            (line.qnum, line.cbytes),
            (messages.len() as u64, bytes as u64),
            "after the sender exited, /proc/sysvipc/msg shows {} messages of {} bytes in all, not {} of {bytes}",
            line.qnum,
            line.cbytes,
            messages.len()
        );
        assert_eq!(
            line.lspid, child.as_raw(),
            "the last message was sent by pid {} (lspid in /proc/sysvipc/msg), not by the child {child}: the \
             child must do the sending",
            line.lspid
        );
        let got = drain(q.id);
        assert_eq!(
            got,
            messages,
            "the child sent {} instead of {}, in order",
            show_all(&got),
            show_all(&messages)
        );
    });
}

#[test]
fn spawn_sender_child_exits_1_when_a_send_fails() {
    Isolation::new().deadline(Duration::from_secs(15)).run(|| {
        let q = test_queue(14);
        let id = q.id;
        drop(q);
        let messages: Vec<Msg> = vec![(1, b"nowhere to go".to_vec())];
        let child = student(|| spawn_sender(id, &messages)).expect("spawn_sender");
        let status = waitpid(child, None).expect("waitpid on the sender");
        assert_eq!(
            status,
            WaitStatus::Exited(child, 1),
            "spawn_sender on a removed queue: the child's msgsnd fails (EINVAL), so it must exit with status 1"
        );
    });
}

#[test]
fn gather_passes_the_messages_and_leaves_nothing() {
    Isolation::new().deadline(Duration::from_secs(20)).run(|| {
        // More than the queue holds at once (msgmnb, 16384 bytes): the child must wait in msgsnd
        // until the parent takes some.
        let mut messages: Vec<Msg> = (0..100)
            .map(|i| (1 + (i % 4), vec![b'a' + (i % 26) as u8; 200 + i as usize % 50]))
            .collect();
        messages.push((3, Vec::new()));
        let key = ipc_key(15);
        let got = student(|| gather(key, 0o600, &messages));
        match got {
            Ok(got) if got == messages => {}
            Ok(got) => panic!(
                "gather returned {} messages, differing from the {} sent: receive them with Select::Any, the oldest \
                 first, so they come out in the order the child sent them",
                got.len(),
                messages.len()
            ),
            Err(e) => panic!("gather failed: {e}"),
        }
        // Whatever gather left (a queue at the key, a child not reaped) the harness reports
        // with its id, key and mode, and removes.
    });
}

#[test]
fn gather_refuses_a_key_in_use_and_leaves_that_queue() {
    Isolation::new().deadline(Duration::from_secs(15)).run(|| {
        let q = test_queue(16);
        raw_send(q.id, 1, b"someone else's");
        let got = student(|| gather(ipc_key(16), 0o600, &[(1, b"mine".to_vec())]));
        assert_eq!(
            got,
            Err(Errno::EEXIST),
            "gather at a key where another queue exists must fail with EEXIST (create_queue uses IPC_EXCL)"
        );
        assert!(
            ipc_stat(q.id).is_ok(),
            "gather removed the queue that was already at its key (id {}): remove only the queue you created",
            q.id
        );
        assert_eq!(drain(q.id), vec![(1, b"someone else's".to_vec())]);
    });
}

/// The kernel's rule for msgrcv with IPC_NOWAIT, on a model of the queue.
fn model_take(queue: &mut Vec<Msg>, which: Select) -> nix::Result<Msg> {
    let pos = match which {
        Select::Any => (!queue.is_empty()).then_some(0),
        Select::Type(t) => queue.iter().position(|m| m.0 == t),
        Select::UpTo(t) => queue
            .iter()
            .filter(|m| m.0 <= t)
            .map(|m| m.0)
            .min()
            .and_then(|low| queue.iter().position(|m| m.0 == low)),
    };
    pos.map(|p| queue.remove(p)).ok_or(Errno::ENOMSG)
}

#[test]
fn random_sends_and_receives_follow_the_kernels_rule() {
    Isolation::new().deadline(Duration::from_secs(60)).run(|| {
        let q = test_queue(17);
        let config = Config {
            cases: 32,
            failure_persistence: None,
            max_shrink_iters: 64,
            ..Config::default()
        };
        let op = prop_oneof![
            (1..5 as libc::c_long, vec(any::<u8>(), 0..12)).prop_map(|(t, x)| (0u8, t, x)),
            Just((1u8, 0, Vec::new())),
            (1..6 as libc::c_long).prop_map(|t| (2u8, t, Vec::new())),
            (1..6 as libc::c_long).prop_map(|t| (3u8, t, Vec::new())),
        ];
        let result = TestRunner::new(config).run(&vec(op, 1..24), |ops| {
            drain(q.id);
            let mut model: Vec<Msg> = Vec::new();
            let mut log = Vec::new();
            for (kind, t, text) in ops {
                if kind == 0 {
                    let r = student(|| send(q.id, t, &text));
                    log.push(format!("send({t}, {}) = {r:?}", show(&text)));
                    prop_assert_eq!(r, Ok(()), "{}", log.join("; "));
                    model.push((t, text));
                    continue;
                }
                let which = match kind {
                    1 => Select::Any,
                    2 => Select::Type(t),
                    _ => Select::UpTo(t),
                };
                let r = student(|| receive(q.id, which, true));
                let expected = model_take(&mut model, which);
                log.push(format!("receive({which:?}) = {}", show_result(&r)));
                prop_assert_eq!(
                    &r,
                    &expected,
                    "after {}: the kernel's rule gives {} (msgtyp 0: the oldest; > 0: the oldest of that type; \
                     < 0: the oldest of the lowest type <= |msgtyp|)",
                    log.join("; "),
                    show_result(&expected)
                );
            }
            let left = drain(q.id);
            prop_assert_eq!(&left, &model, "what was left in the queue");
            Ok(())
        });
        match result {
            Ok(()) => {}
            Err(TestError::Fail(why, _)) => panic!("{why}"),
            Err(e) => panic!("{e}"),
        }
    });
}

/// How many SIGUSR1 the test process has handled.
static SIGNALS: AtomicU32 = AtomicU32::new(0);

extern "C" fn count_signal(_: libc::c_int) {
    SIGNALS.fetch_add(1, Ordering::SeqCst);
}

/// What [`interrupt_once`]'s watcher saw.
#[derive(Debug, Clone, Copy, Default)]
struct Interrupted {
    /// The call was seen asleep, and the signal sent.
    signalled: bool,
    /// After the handler ran, the call was seen asleep again (made again after EINTR).
    again: bool,
}

/// Installs a counting SIGUSR1 handler without SA_RESTART, then runs `call` in the main thread
/// while a watcher waits to see it asleep in system call `nr`, interrupts it with SIGUSR1, waits
/// to see it asleep in `nr` again (or return), and then runs `release`, which must let the call
/// finish.
fn interrupt_once<T>(
    nr: libc::c_long,
    call: impl FnOnce() -> T,
    release: impl FnOnce() + Send + 'static,
) -> (T, Interrupted) {
    let action = SigAction::new(
        SigHandler::Handler(count_signal),
        SaFlags::empty(),
        SigSet::empty(),
    );
    // SAFETY: the handler only adds to an atomic counter, which is async-signal-safe.
    unsafe { sigaction(Signal::SIGUSR1, &action) }.expect("sigaction(SIGUSR1)");
    let me = getpid();
    let main = pthread_self();
    let done = Arc::new(AtomicBool::new(false));
    let flag = Arc::clone(&done);
    let limit = scaled(SETTLE);
    let asleep = move || {
        oskata_harness::procfs::syscall(me).is_some_and(|c| c.nr == nr)
            && oskata_harness::procfs::state(me) == Some('S')
    };
    let watcher = thread::spawn(move || {
        let mut seen = Interrupted::default();
        let wait_for = |what: &dyn Fn() -> bool| {
            let start = Instant::now();
            let mut pause = Duration::from_micros(100);
            while !flag.load(Ordering::SeqCst) && start.elapsed() < limit {
                if what() {
                    return true;
                }
                thread::sleep(pause);
                pause = (pause * 2).min(Duration::from_millis(5));
            }
            false
        };
        if wait_for(&asleep) && pthread_kill(main, Signal::SIGUSR1).is_ok() {
            seen.signalled = true;
            let before = Instant::now();
            while SIGNALS.load(Ordering::SeqCst) == 0 && before.elapsed() < limit {
                thread::sleep(Duration::from_millis(1));
            }
            seen.again = wait_for(&asleep);
        }
        release();
        seen
    });
    let got = call();
    done.store(true, Ordering::SeqCst);
    let seen = watcher.join().expect("the watcher thread");
    (got, seen)
}

/// msgrcv and msgsnd are never restarted after a signal handler (signal(7)).
const NO_RESTART: &str = "msgsnd(2) and msgrcv(2) are never restarted after a signal handler, SA_RESTART or not \
                          (signal(7), \"Interruption of system calls\"): they fail with EINTR, having done nothing, \
                          and the call must simply be made again";

#[test]
fn receive_goes_on_after_a_signal() {
    Isolation::new().deadline(Duration::from_secs(20)).run(|| {
        let q = test_queue(18);
        let id = q.id;
        let (got, seen) = interrupt_once(
            libc::SYS_msgrcv,
            || student(|| receive(id, Select::Type(5), false)),
            move || raw_send(id, 5, b"after the signal"),
        );
        if got == Err(Errno::EINTR) {
            panic!(
                "receive(Select::Type(5), nowait = false) returned Err(EINTR): while it slept in msgrcv the test \
                 sent SIGUSR1, whose handler ran. {NO_RESTART}."
            );
        }
        assert!(
            seen.signalled,
            "receive(Select::Type(5), nowait = false) on an empty queue was never seen asleep in msgrcv(2); it \
             returned {}",
            show_result(&got)
        );
        assert!(
            seen.again,
            "after the signal, receive was not seen asleep in msgrcv again; it returned {}",
            show_result(&got)
        );
        assert_eq!(
            got,
            Ok((5, b"after the signal".to_vec())),
            "receive should return the message sent after the signal"
        );
    });
}

/// The test's msgsnd with IPC_NOWAIT, its error returned.
fn raw_try_send(id: i32, mtype: libc::c_long, text: &[u8]) -> Result<(), Errno> {
    let mut m = RawMsg {
        mtype,
        mtext: [0; 2 * MAX_TEXT],
    };
    m.mtext[..text.len()].copy_from_slice(text);
    // SAFETY: the kernel reads mtype and text.len() bytes of mtext, all inside `m`.
    let rc = unsafe { libc::msgsnd(id, (&raw const m).cast(), text.len(), libc::IPC_NOWAIT) };
    if rc == 0 { Ok(()) } else { Err(Errno::last()) }
}

#[test]
fn send_waits_while_the_queue_is_full_and_goes_on_after_a_signal() {
    Isolation::new().deadline(Duration::from_secs(20)).run(|| {
        let q = test_queue(19);
        let chunk = vec![b'f'; MAX_TEXT];
        let mut filled = 0;
        loop {
            match raw_try_send(q.id, 1, &chunk) {
                Ok(()) => filled += 1,
                Err(Errno::EAGAIN) => break,
                Err(e) => panic!("the test's msgsnd failed: {e}"),
            }
            assert!(filled < 100_000, "the test's queue never filled up");
        }
        let id = q.id;
        let (got, seen) = interrupt_once(
            libc::SYS_msgsnd,
            || student(|| send(id, 9, b"squeezed in")),
            move || {
                let _ = raw_receive(id, 0);
            },
        );
        match got {
            Err(Errno::EAGAIN) => panic!(
                "send on a full queue returned EAGAIN at once: that is msgsnd with IPC_NOWAIT. send must wait while \
                 the queue is full (msgflg 0): msgsnd then sleeps until a receiver makes room"
            ),
            Err(Errno::EINTR) => panic!(
                "send returned Err(EINTR): while it slept in msgsnd on the full queue, the test sent SIGUSR1, \
                 whose handler ran. {NO_RESTART}."
            ),
            Err(e) => panic!("send on a full queue failed with {e} while the test interrupted it"),
            Ok(()) => {}
        }
        assert!(
            seen.signalled && seen.again,
            "send on a full queue was not seen asleep in msgsnd(2), before and after a signal ({seen:?})"
        );
        let all = drain(q.id);
        assert_eq!(
            all.last(),
            Some(&(9, b"squeezed in".to_vec())),
            "the message send waited to queue should be the newest in the queue ({} messages)",
            all.len()
        );
        assert_eq!(all.len(), filled, "one message was taken to make room, one added");
    });
}

#[test]
fn gather_receives_what_the_child_sends() {
    Isolation::new().deadline(Duration::from_secs(20)).run(|| {
        let me = getpid();
        let returned = scratch_dir().join("returned");
        let waited = scratch_dir().join("waited");
        let (flag, mark) = (returned.clone(), waited.clone());
        // Every child starts stopped, and stays so until the parent is seen asleep in msgrcv
        // (noted in a file), in waitpid, or gather has returned: the messages can only come
        // from the child once the parent waits for them.
        let hold = births::hold_new_children(move || {
            if flag.exists() {
                return true;
            }
            if sleeping_in_msgrcv(me).is_some() {
                let _ = fs::write(&mark, b"");
                return true;
            }
            // A parent waiting for its child before it received anything: let the child go.
            oskata_harness::procfs::syscall(me)
                .is_some_and(|c| c.nr == libc::SYS_wait4 || c.nr == libc::SYS_waitid)
        });
        let hold = match hold {
            Ok(hold) => Some(hold),
            Err(why) => {
                eprintln!("note: the test cannot hold new children here ({why}); they run freely");
                None
            }
        };
        let messages: Vec<Msg> = vec![(4, b"from".to_vec()), (2, b"the child".to_vec())];
        let got = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            student(|| gather(ipc_key(20), 0o600, &messages))
        }));
        fs::write(&returned, b"").expect("write the test's flag file");
        let held = hold.is_some();
        drop(hold);
        let got = got.unwrap_or_else(|p| std::panic::resume_unwind(p));
        match &got {
            Ok(got) if *got == messages => {}
            Ok(got) => panic!(
                "gather returned {}, not the messages sent, {}",
                show_all(got),
                show_all(&messages)
            ),
            Err(e) => panic!("gather failed: {e}"),
        }
        if held && !waited.exists() {
            panic!(
                "gather returned the messages without ever sleeping in msgrcv(2), although the test held every \
                 child it forked stopped at birth until then: the messages did not come from a child. gather must \
                 have spawn_sender's child send them, and receive them in the parent (waiting for each)."
            );
        }
    });
}
