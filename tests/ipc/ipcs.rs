//! ipc/ipcs: the caller's System V objects (System V 进程间通信对象), and the limits and usage
//! that `ipcs -l` and `ipcs -u` show, read from `/proc/sysvipc/*` and `/proc/sys/kernel/*`.
//!
//! What the tests observe, never what the code under test claims:
//! - objects the test makes itself through libc in the test's private IPC namespace, with keys
//!   from `ipc_key`, sizes, modes, messages and attachments it chose, one segment made by a
//!   child (so its creator pid is not the test's), one removed while attached (`SHM_DEST`),
//!   and, where the namespace maps another uid (root), one object of each kind given to uid
//!   4242 with `IPC_SET`; everything the test made is removed afterwards;
//! - the kernel's own figures for the same things: `shmctl(SHM_INFO)`, `msgctl(MSG_INFO)`,
//!   `semctl(SEM_INFO)` for usage and `IPC_INFO` for limits, which the test checks its own
//!   model against before it judges the answer;
//! - limits the test writes itself into `/proc/sys/kernel/*` of its namespace (two rounds of
//!   unusual values), where it is that namespace's root: as root in the harness's namespace,
//!   otherwise in a user and IPC namespace of its own in which it maps itself to uid 0; where
//!   neither is permitted it says so and checks against the values it reads;
//! - the real `ipcs` program's output where util-linux's `ipcs` is installed (skipped with a
//!   note where it is not).
//!
//! The contract, clause by clause, and the test that checks each:
//! - `own_objects` lists exactly the caller's segments, queues and sets, with the right id,
//!   key, mode, size, nattch, owner, creator and last pids, rss, messages and bytes, and
//!   `dest` for a segment removed while attached (`own_objects_are_exactly_the_callers`);
//!   objects owned by another uid, also ones the caller created, are left out (the same test,
//!   where a second uid exists);
//! - `parse_shm`, `parse_msg`, `parse_sem` return every row of the real files
//!   (`parsers_read_the_kernels_files`), find columns by name whatever their order and width
//!   and ignore unknown ones (`parsers_find_columns_by_name`: the real files' columns reversed,
//!   padded and with an extra column; `parsers_read_signed_keys_octal_modes_and_big_sizes`:
//!   a negative key, perms `1600`, a size above 4 GiB), return no objects for a header alone,
//!   and refuse bad input with `InvalidData` instead of panicking (`parsers_refuse_bad_input`);
//! - `limits` reads each sysctl of the namespace, in its unit: `shmall` in pages and
//!   `shm_total_bytes` in bytes (saturating), the four fields of `sem` in order
//!   (`limits_are_the_namespaces_sysctls`);
//! - `usage` sums over every object of the namespace, whoever owns it: segments, pages
//!   rounded up, pages resident, queues, messages, bytes, sets, semaphores
//!   (`usage_sums_every_object_of_the_namespace`);
//! - all of it agrees with util-linux's `ipcs -l -b`, `ipcs -u` and `ipcs -m/-q/-s` where that
//!   program is installed (`agrees_with_util_linux_ipcs`).

// The exercise under test: your stub (by default), the reference solution (`--features
// solutions`), or a shipped mistake that `cargo grade --mistakes` copies into target/.
#[cfg(not(any(feature = "solutions", feature = "mistake")))]
#[path = "../../exercises/ipc/ipcs.rs"]
#[allow(dead_code)] // a stub does not use all of its API yet
mod ipcs;
#[cfg(all(feature = "solutions", not(feature = "mistake")))]
#[path = "../../solutions/ipc/ipcs.rs"]
mod ipcs;
#[cfg(feature = "mistake")]
#[path = "../../target/oskata-mistake/ipc/ipcs.rs"]
#[rustfmt::skip] // the copy exists only while the proof runs
mod ipcs;
use ipcs::*;

use std::collections::BTreeMap;
use std::fmt::Debug;
use std::fs;
use std::io;
use std::path::PathBuf;
use std::process::Command;

use nix::sched::{CloneFlags, unshare};
use nix::sys::wait::{WaitStatus, waitpid};
use nix::unistd::{ForkResult, fork, getegid, geteuid, getpid};
use oskata_harness::{Isolation, ipc_key, student};

/// The uid the test gives some of its objects to, where the namespace maps it.
const OTHER_UID: u32 = 4242;

/// The page size.
fn page() -> u64 {
    nix::unistd::sysconf(nix::unistd::SysconfVar::PAGE_SIZE)
        .ok()
        .flatten()
        .expect("sysconf(_SC_PAGESIZE)") as u64
}

// ---------------------------------------------------------------------------------------------
// The namespace
// ---------------------------------------------------------------------------------------------

/// The IPC namespace of this process, as `/proc/self/ns/ipc` names it.
fn ipc_namespace() -> Option<PathBuf> {
    fs::read_link("/proc/self/ns/ipc").ok()
}

/// What the test may do in the namespace its body runs in.
struct Namespace {
    /// The namespace is the test's alone (not the machine's).
    private: bool,
    /// The test is that namespace's root and may write its `/proc/sys/kernel/*`.
    writable: bool,
    /// Another uid exists in it, so objects can be given away.
    other_uid: bool,
    /// Why something is not possible, for the test's output.
    notes: Vec<String>,
}

/// Makes sure the body is in a private IPC namespace whose sysctls it may write, where that is
/// permitted. `outside` is the supervisor's IPC namespace, read before the body was forked: a
/// body whose namespace differs is in the harness's private one.
///
/// As root the harness's namespace belongs to the machine's user namespace, whose root the test
/// is: it may write. Unprivileged, the harness maps the test's uid to itself in a user namespace
/// of its own, whose root (uid 0) nobody is; so the test makes a user and IPC namespace of its
/// own below that one, mapping itself to uid 0 there (user_namespaces(7)). Root cannot do that
/// (mapping uid 0 of the parent needs CAP_SETFCAP, which the body gave up), and needs not.
fn prepare_namespace(outside: Option<PathBuf>) -> Namespace {
    let mut notes = Vec::new();
    let mut private = outside.is_some() && ipc_namespace() != outside;
    if !geteuid().is_root() {
        match own_namespace() {
            Ok(()) => private = true,
            Err(e) => notes.push(format!(
                "could not make a user and IPC namespace of the test's own ({e}): the limits cannot be written"
            )),
        }
    }
    let writable = private && probe_write();
    if private && !writable {
        notes.push(
            "the test is not root in its IPC namespace, so it cannot write /proc/sys/kernel/*: limits are checked \
             against the values the kernel shows, and a solution that returns the defaults is not caught here"
                .into(),
        );
    }
    if !private {
        notes.push(
            "no private IPC namespace: the test leaves the machine's limits alone, and checks only the objects it \
             made itself"
                .into(),
        );
    }
    let other_uid = private && geteuid().is_root() && uid_mapped(OTHER_UID);
    if !other_uid {
        notes.push(format!(
            "uid {OTHER_UID} does not exist in this namespace (only root's does): no object is given to another \
             owner, so leaving out other users' objects is not checked here"
        ));
    }
    for n in &notes {
        eprintln!("note: {n}");
    }
    Namespace {
        private,
        writable,
        other_uid,
        notes,
    }
}

/// A user namespace mapping this process's uid and gid to 0, and an IPC namespace owned by it.
fn own_namespace() -> io::Result<()> {
    let (uid, gid) = (geteuid(), getegid());
    unshare(CloneFlags::CLONE_NEWUSER | CloneFlags::CLONE_NEWIPC)?;
    fs::write("/proc/self/setgroups", "deny")?;
    fs::write("/proc/self/uid_map", format!("0 {uid} 1"))?;
    fs::write("/proc/self/gid_map", format!("0 {gid} 1"))?;
    Ok(())
}

/// Whether writing a sysctl of the namespace works (writes back the value it holds).
fn probe_write() -> bool {
    fs::read_to_string("/proc/sys/kernel/msgmni")
        .and_then(|v| fs::write("/proc/sys/kernel/msgmni", v.trim()))
        .is_ok()
}

/// Whether `uid` is mapped in this process's user namespace.
fn uid_mapped(uid: u32) -> bool {
    let map = fs::read_to_string("/proc/self/uid_map").unwrap_or_default();
    map.lines().any(|l| {
        let w: Vec<u64> = l
            .split_whitespace()
            .filter_map(|x| x.parse().ok())
            .collect();
        w.len() == 3 && (w[0]..w[0] + w[2]).contains(&u64::from(uid))
    })
}

/// Writes `value` to `/proc/sys/kernel/<name>` and checks that it took.
fn write_sysctl(name: &str, value: &str) {
    let path = format!("/proc/sys/kernel/{name}");
    fs::write(&path, value).unwrap_or_else(|e| panic!("write {value:?} to {path}: {e}"));
    let back = fs::read_to_string(&path).unwrap_or_default();
    let words = |s: &str| s.split_whitespace().map(str::to_owned).collect::<Vec<_>>();
    assert_eq!(
        words(&back),
        words(value),
        "the test wrote {value:?} to {path}, the kernel shows {back:?}"
    );
}

// ---------------------------------------------------------------------------------------------
// The objects the test makes
// ---------------------------------------------------------------------------------------------

/// One object the test made, removed when dropped.
enum Made {
    Segment(i32),
    Queue(i32),
    Sems(i32),
    /// An attachment of a segment (its address), detached when dropped.
    Attached(usize),
}

impl Drop for Made {
    fn drop(&mut self) {
        // SAFETY: each call takes the id of an object this test made (or an address it
        // attached) and no buffer.
        unsafe {
            match *self {
                Made::Segment(id) => {
                    libc::shmctl(id, libc::IPC_RMID, std::ptr::null_mut());
                }
                Made::Queue(id) => {
                    libc::msgctl(id, libc::IPC_RMID, std::ptr::null_mut());
                }
                Made::Sems(id) => {
                    libc::semctl(id, 0, libc::IPC_RMID);
                }
                Made::Attached(addr) => {
                    libc::shmdt(addr as *const libc::c_void);
                }
            }
        }
    }
}

/// What the test made, what it expects of each, and the guards that remove it all.
struct World {
    /// The caller's own objects, as `own_objects` must list them.
    own: Objects,
    /// Objects given to `OTHER_UID` (not the caller's, but counted in the usage).
    given: Objects,
    /// The pages of shared memory the test touched.
    touched_pages: u64,
    /// Detachments first, then removals (fields drop in order: this one last of all).
    guards: Vec<Made>,
}

impl World {
    /// Every object of the namespace the test made, the caller's and the given ones.
    fn all(&self) -> Objects {
        let mut all = self.own.clone();
        all.segments.extend(self.given.segments.iter().cloned());
        all.queues.extend(self.given.queues.iter().cloned());
        all.sem_sets.extend(self.given.sem_sets.iter().cloned());
        all
    }
}

impl Drop for World {
    fn drop(&mut self) {
        // Detach before removing, so nothing lingers as SHM_DEST.
        let (attached, rest): (Vec<Made>, Vec<Made>) = self
            .guards
            .drain(..)
            .partition(|m| matches!(m, Made::Attached(_)));
        drop(attached);
        drop(rest);
    }
}

/// The last OS error, for a message.
fn os_error() -> io::Error {
    io::Error::last_os_error()
}

/// `shmget(key, size, IPC_CREAT | IPC_EXCL | mode | extra)`.
fn shmget(key: libc::key_t, size: u64, mode: u32, extra: libc::c_int) -> i32 {
    // SAFETY: shmget takes plain integers.
    let id = unsafe {
        libc::shmget(
            key,
            size as usize,
            libc::IPC_CREAT | libc::IPC_EXCL | mode as libc::c_int | extra,
        )
    };
    assert!(
        id >= 0,
        "shmget(key {key:#x}, {size} bytes, mode {mode:o}): {}",
        os_error()
    );
    id
}

/// Attaches segment `id`; returns the address.
fn shmat(id: i32) -> *mut u8 {
    // SAFETY: shmat with no address hint maps the segment somewhere free.
    let addr = unsafe { libc::shmat(id, std::ptr::null(), 0) };
    assert!(addr as isize != -1, "shmat({id}): {}", os_error());
    addr.cast()
}

/// `msgget(key, IPC_CREAT | IPC_EXCL | mode)`.
fn msgget(key: libc::key_t, mode: u32) -> i32 {
    // SAFETY: msgget takes plain integers.
    let id = unsafe { libc::msgget(key, libc::IPC_CREAT | libc::IPC_EXCL | mode as libc::c_int) };
    assert!(id >= 0, "msgget(key {key:#x}): {}", os_error());
    id
}

/// A message buffer: a type, then the text (`struct msgbuf` with room).
#[repr(C)]
struct MsgBuf {
    mtype: libc::c_long,
    mtext: [u8; 1024],
}

/// Sends a message of `len` bytes of type `mtype` to queue `id`.
fn msgsnd(id: i32, mtype: i64, len: usize) -> io::Result<()> {
    let mut buf = MsgBuf {
        mtype: mtype as libc::c_long,
        mtext: [0; 1024],
    };
    for (i, b) in buf.mtext.iter_mut().enumerate().take(len) {
        *b = (i as u8).wrapping_mul(31).wrapping_add(mtype as u8);
    }
    // SAFETY: the buffer holds a type and at least `len` bytes of text.
    let rc = unsafe { libc::msgsnd(id, (&raw const buf).cast(), len, libc::IPC_NOWAIT) };
    if rc == 0 { Ok(()) } else { Err(os_error()) }
}

/// Receives the first message of queue `id`; returns its length.
fn msgrcv(id: i32) -> io::Result<usize> {
    let mut buf = MsgBuf {
        mtype: 0,
        mtext: [0; 1024],
    };
    // SAFETY: the buffer has room for a type and 1024 bytes of text.
    let n = unsafe { libc::msgrcv(id, (&raw mut buf).cast(), 1024, 0, libc::IPC_NOWAIT) };
    if n >= 0 {
        Ok(n as usize)
    } else {
        Err(os_error())
    }
}

/// `semget(key, nsems, IPC_CREAT | IPC_EXCL | mode)`.
fn semget(key: libc::key_t, nsems: u64, mode: u32) -> i32 {
    // SAFETY: semget takes plain integers.
    let id = unsafe {
        libc::semget(
            key,
            nsems as libc::c_int,
            libc::IPC_CREAT | libc::IPC_EXCL | mode as libc::c_int,
        )
    };
    assert!(id >= 0, "semget(key {key:#x}, {nsems}): {}", os_error());
    id
}

/// Runs `f` in a forked child that then `_exit`s (0 when `f` returned true); returns the
/// child's pid once it has exited.
fn in_child(f: impl FnOnce() -> bool) -> i32 {
    // SAFETY: the child only makes System V calls and leaves through _exit.
    match unsafe { fork() }.expect("fork") {
        ForkResult::Child => {
            let ok = f();
            // SAFETY: _exit ends the forked copy without running the parent's destructors.
            unsafe { libc::_exit(if ok { 0 } else { 1 }) }
        }
        ForkResult::Parent { child } => {
            let status = waitpid(child, None).expect("waitpid");
            assert_eq!(
                status,
                WaitStatus::Exited(child, 0),
                "the test's helper child (pid {child}) failed"
            );
            child.as_raw()
        }
    }
}

/// Gives object `made` to `OTHER_UID` with `IPC_STAT` and `IPC_SET` (its creator may).
fn give_away(made: &Made) {
    // SAFETY: each *_ds is plain data that IPC_STAT fills in before IPC_SET reads it.
    let rc = unsafe {
        match *made {
            Made::Segment(id) => {
                let mut ds: libc::shmid_ds = std::mem::zeroed();
                let mut rc = libc::shmctl(id, libc::IPC_STAT, &mut ds);
                if rc == 0 {
                    ds.shm_perm.uid = OTHER_UID;
                    rc = libc::shmctl(id, libc::IPC_SET, &mut ds);
                }
                rc
            }
            Made::Queue(id) => {
                let mut ds: libc::msqid_ds = std::mem::zeroed();
                let mut rc = libc::msgctl(id, libc::IPC_STAT, &mut ds);
                if rc == 0 {
                    ds.msg_perm.uid = OTHER_UID;
                    rc = libc::msgctl(id, libc::IPC_SET, &mut ds);
                }
                rc
            }
            Made::Sems(id) => {
                let mut ds: libc::semid_ds = std::mem::zeroed();
                let mut rc = libc::semctl(id, 0, libc::IPC_STAT, &raw mut ds);
                if rc == 0 {
                    ds.sem_perm.uid = OTHER_UID;
                    rc = libc::semctl(id, 0, libc::IPC_SET, &raw mut ds);
                }
                rc
            }
            Made::Attached(_) => 0,
        }
    };
    assert_eq!(rc, 0, "IPC_SET uid {OTHER_UID}: {}", os_error());
}

/// Makes the test's objects (the children first: a child inherits the attachments, and its
/// exit would be the segments' last detach, `lpid`):
///
/// - segment A: key 1, 1 byte, mode 600, made by a child that then exited, never attached;
/// - segment B: key 2, 5 pages and 1 byte, mode 640, attached twice by the test, 3 pages
///   written;
/// - segment C: `IPC_PRIVATE`, 5 GiB and 1 byte (`SHM_NORESERVE`, never touched), mode 604;
/// - segment D: key 3, 3 pages, mode 666, attached, then removed: `SHM_DEST`, key 0;
/// - queue P: key 10, mode 600, messages of 1, 100 and 777 bytes sent by a child;
/// - queue Q: `IPC_PRIVATE`, mode 620, two messages sent by the test, one taken by a child;
/// - queue R: key 11, mode 644, empty;
/// - sets S (key 20, 1 semaphore, 600), T (`IPC_PRIVATE`, 7, 660), U (key 21, 30, 606);
/// - where `give` and another uid exists: segment E (key 4, 1 page, 644), queue V (key 12, a
///   50-byte message), set W (key 22, 5, 644), all given to uid 4242.
fn make_world(give: bool) -> World {
    let page = page();
    let me = getpid().as_raw();
    let uid = geteuid().as_raw();
    let mut guards = Vec::new();
    let mut own = Objects::default();
    let mut given = Objects::default();
    let seg = |key, id, mode, size, nattch, cpid, lpid, rss, dest| Segment {
        key,
        id,
        mode,
        dest,
        size,
        nattch,
        uid,
        cpid,
        lpid,
        rss,
    };

    // A: made by a child.
    let key_a = ipc_key(1);
    let mut id_a = -1;
    let child_a = in_child(|| {
        // SAFETY: shmget takes plain integers.
        unsafe { libc::shmget(key_a, 1, libc::IPC_CREAT | libc::IPC_EXCL | 0o600) >= 0 }
    });
    // SAFETY: shmget without IPC_CREAT looks the key up.
    let found = unsafe { libc::shmget(key_a, 0, 0) };
    if found >= 0 {
        id_a = found;
        guards.push(Made::Segment(found));
    }
    assert!(
        id_a >= 0,
        "the segment the child made is not there: {}",
        os_error()
    );
    own.segments
        .push(seg(key_a, id_a, 0o600, 1, 0, child_a, 0, 0, false));

    // P: messages sent by a child.
    let id_p = msgget(ipc_key(10), 0o600);
    guards.push(Made::Queue(id_p));
    let sender = in_child(|| {
        [(3, 1), (1, 100), (2, 777)]
            .iter()
            .all(|&(t, n)| msgsnd(id_p, t, n).is_ok())
    });
    own.queues.push(Queue {
        key: ipc_key(10),
        id: id_p,
        mode: 0o600,
        uid,
        bytes: 878,
        messages: 3,
        lspid: sender,
        lrpid: 0,
    });

    // Q: two sent by the test, one taken by a child.
    let id_q = msgget(libc::IPC_PRIVATE, 0o620);
    guards.push(Made::Queue(id_q));
    msgsnd(id_q, 7, 64).expect("msgsnd");
    msgsnd(id_q, 9, 300).expect("msgsnd");
    let receiver = in_child(|| msgrcv(id_q).is_ok_and(|n| n == 64));
    own.queues.push(Queue {
        key: 0,
        id: id_q,
        mode: 0o620,
        uid,
        bytes: 300,
        messages: 1,
        lspid: me,
        lrpid: receiver,
    });

    // R: empty.
    let id_r = msgget(ipc_key(11), 0o644);
    guards.push(Made::Queue(id_r));
    own.queues.push(Queue {
        key: ipc_key(11),
        id: id_r,
        mode: 0o644,
        uid,
        bytes: 0,
        messages: 0,
        lspid: 0,
        lrpid: 0,
    });

    // B: attached twice, three pages written.
    let size_b = 5 * page + 1;
    let id_b = shmget(ipc_key(2), size_b, 0o640, 0);
    guards.push(Made::Segment(id_b));
    let first = shmat(id_b);
    guards.push(Made::Attached(first as usize));
    let second = shmat(id_b);
    guards.push(Made::Attached(second as usize));
    for off in [0, page, 3 * page + 5] {
        // SAFETY: the offsets lie inside the attached segment of 5 pages and a byte.
        unsafe { first.add(off as usize).write_volatile(0x5a) };
    }
    let touched_pages = 3;
    own.segments.push(seg(
        ipc_key(2),
        id_b,
        0o640,
        size_b,
        2,
        me,
        me,
        touched_pages * page,
        false,
    ));

    // C: huge, never touched.
    let size_c = 5 * 1024 * 1024 * 1024 + 1;
    let id_c = shmget(libc::IPC_PRIVATE, size_c, 0o604, libc::SHM_NORESERVE);
    guards.push(Made::Segment(id_c));
    own.segments
        .push(seg(0, id_c, 0o604, size_c, 0, me, 0, 0, false));

    // D: attached, then removed while attached.
    let size_d = 3 * page;
    let id_d = shmget(ipc_key(3), size_d, 0o666, 0);
    let addr_d = shmat(id_d);
    guards.push(Made::Attached(addr_d as usize));
    // SAFETY: IPC_RMID takes no buffer.
    assert_eq!(
        unsafe { libc::shmctl(id_d, libc::IPC_RMID, std::ptr::null_mut()) },
        0,
        "IPC_RMID on segment {id_d}"
    );
    own.segments
        .push(seg(0, id_d, 0o666, size_d, 1, me, me, 0, true));

    // S, T, U.
    for (key, nsems, mode) in [
        (ipc_key(20), 1, 0o600),
        (libc::IPC_PRIVATE, 7, 0o660),
        (ipc_key(21), 30, 0o606),
    ] {
        let id = semget(key, nsems, mode);
        guards.push(Made::Sems(id));
        own.sem_sets.push(SemSet {
            key,
            id,
            mode,
            uid,
            nsems,
        });
    }

    if give {
        let id_e = shmget(ipc_key(4), page, 0o644, 0);
        guards.push(Made::Segment(id_e));
        give_away(guards.last().expect("the object just made"));
        given.segments.push(Segment {
            uid: OTHER_UID,
            ..seg(ipc_key(4), id_e, 0o644, page, 0, me, 0, 0, false)
        });
        let id_v = msgget(ipc_key(12), 0o644);
        guards.push(Made::Queue(id_v));
        msgsnd(id_v, 1, 50).expect("msgsnd");
        give_away(guards.last().expect("the object just made"));
        given.queues.push(Queue {
            key: ipc_key(12),
            id: id_v,
            mode: 0o644,
            uid: OTHER_UID,
            bytes: 50,
            messages: 1,
            lspid: me,
            lrpid: 0,
        });
        let id_w = semget(ipc_key(22), 5, 0o644);
        guards.push(Made::Sems(id_w));
        give_away(guards.last().expect("the object just made"));
        given.sem_sets.push(SemSet {
            key: ipc_key(22),
            id: id_w,
            mode: 0o644,
            uid: OTHER_UID,
            nsems: 5,
        });
    }
    let mut world = World {
        own,
        given,
        touched_pages,
        guards,
    };
    settle_rss(&mut world);
    world
}

/// The kernel's resident count for the test's shared memory (`SHM_INFO`) should be the pages
/// it wrote; where this kernel gives shared memory larger pages, the test takes its figure.
fn settle_rss(world: &mut World) {
    let rss = kernel_shm_info().shm_rss;
    if rss != world.touched_pages {
        eprintln!(
            "note: the test wrote {} pages of segment B, the kernel counts {rss} resident (larger pages?): the \
             kernel's figure is expected",
            world.touched_pages
        );
        world.touched_pages = rss;
        let page = page();
        if let Some(b) = world.own.segments.iter_mut().find(|s| s.rss > 0) {
            b.rss = rss * page;
        }
    }
}

// ---------------------------------------------------------------------------------------------
// The kernel's own figures (IPC_INFO, SHM_INFO, MSG_INFO, SEM_INFO)
// ---------------------------------------------------------------------------------------------

/// `struct shm_info` (linux/shm.h), which `shmctl(SHM_INFO)` fills in.
#[repr(C)]
#[derive(Default, Debug)]
struct ShmInfo {
    used_ids: libc::c_int,
    shm_tot: libc::c_ulong,
    shm_rss: libc::c_ulong,
    shm_swp: libc::c_ulong,
    swap_attempts: libc::c_ulong,
    swap_successes: libc::c_ulong,
}

/// `struct shminfo64`, which `shmctl(IPC_INFO)` fills in.
#[repr(C)]
#[derive(Default, Debug)]
struct ShmLimits {
    shmmax: libc::c_ulong,
    shmmin: libc::c_ulong,
    shmmni: libc::c_ulong,
    shmseg: libc::c_ulong,
    shmall: libc::c_ulong,
    unused: [libc::c_ulong; 4],
}

/// `SHM_INFO` (linux/shm.h; libc has no constant).
const SHM_INFO: libc::c_int = 14;

/// The kernel's `SHM_INFO`: segments, pages allocated, resident and swapped.
fn kernel_shm_info() -> ShmInfo {
    let mut info = ShmInfo::default();
    // SAFETY: SHM_INFO writes a struct shm_info through the buffer pointer.
    let rc = unsafe { libc::shmctl(0, SHM_INFO, (&raw mut info).cast()) };
    assert!(rc >= 0, "shmctl(SHM_INFO): {}", os_error());
    info
}

/// The kernel's `MSG_INFO` (`msgpool` queues, `msgmap` messages, `msgtql` bytes) or, with
/// `IPC_INFO`, its limits.
fn kernel_msginfo(cmd: libc::c_int) -> libc::msginfo {
    // SAFETY: msginfo is plain data; MSG_INFO/IPC_INFO write one through the pointer.
    let mut info: libc::msginfo = unsafe { std::mem::zeroed() };
    let rc = unsafe { libc::msgctl(0, cmd, (&raw mut info).cast()) };
    assert!(rc >= 0, "msgctl({cmd}): {}", os_error());
    info
}

/// The kernel's `SEM_INFO` (`semusz` sets, `semaem` semaphores) or, with `IPC_INFO`, its
/// limits.
fn kernel_seminfo(cmd: libc::c_int) -> libc::seminfo {
    // SAFETY: seminfo is plain data; SEM_INFO/IPC_INFO write one through the pointer.
    let mut info: libc::seminfo = unsafe { std::mem::zeroed() };
    let rc = unsafe { libc::semctl(0, 0, cmd, &raw mut info) };
    assert!(rc >= 0, "semctl({cmd}): {}", os_error());
    info
}

/// The kernel's shared memory limits (`IPC_INFO`).
fn kernel_shm_limits() -> ShmLimits {
    let mut info = ShmLimits::default();
    // SAFETY: IPC_INFO writes a struct shminfo64 through the buffer pointer.
    let rc = unsafe { libc::shmctl(0, libc::IPC_INFO, (&raw mut info).cast()) };
    assert!(rc >= 0, "shmctl(IPC_INFO): {}", os_error());
    info
}

// ---------------------------------------------------------------------------------------------
// Comparing
// ---------------------------------------------------------------------------------------------

/// The text of one of the three files.
fn sysvipc(file: &str) -> String {
    fs::read_to_string(format!("/proc/sysvipc/{file}"))
        .unwrap_or_else(|e| panic!("read /proc/sysvipc/{file}: {e}"))
}

/// What the kernel's file says, for a message.
fn kernel_shows(file: &str) -> String {
    format!("/proc/sysvipc/{file} reads:\n{}", sysvipc(file))
}

/// A hint for a field that differs in a way a classic mistake makes.
fn field_hint(field: &str, _got: &str, _want: &str) -> String {
    if field == "mode" || field == "dest" {
        return " `perms` is octal: 600 means rw------- (0o600, which is 384), so read it with \
                u32::from_str_radix(word, 8); mode is its nine permission bits (perms & 0o777), and SHM_DEST \
                (0o1000) is `dest`"
            .into();
    }
    if field == "uid" {
        return " `uid` is the owner (which IPC_SET changes), `cuid` the creator".into();
    }
    " (were the columns taken by position rather than by their names in the header?)".into()
}

/// Compares two lists of one kind by id; `what` names the kind, `file` its file. `others` are
/// objects of the namespace the list must not hold (given to another uid).
#[allow(clippy::too_many_arguments)] // one kind's lists, its names and its two accessors
fn compare<T: Debug + Clone>(
    what: &str,
    file: &str,
    call: &str,
    got: &[T],
    want: &[T],
    others: &[T],
    id: impl Fn(&T) -> i32,
    fields: impl Fn(&T) -> Vec<(&'static str, String)>,
) {
    let by_id = |v: &[T]| {
        v.iter()
            .map(|o| (id(o), o.clone()))
            .collect::<BTreeMap<_, _>>()
    };
    let (got_map, want_map, other_map) = (by_id(got), by_id(want), by_id(others));
    if got_map.len() != got.len() {
        panic!(
            "{call} lists a {what} id more than once: {got:?}\n{}",
            kernel_shows(file)
        );
    }
    for (i, o) in &got_map {
        if let Some(other) = other_map.get(i) {
            let owner = fields(other)
                .into_iter()
                .find(|(f, _)| *f == "uid")
                .map(|(_, v)| v)
                .unwrap_or_default();
            panic!(
                "{call} lists {what} id {i}, which is owned by uid {owner}, not by the caller (euid {}): the test \
                 made it, then gave it to uid {owner} with IPC_SET, so its `uid` column is {owner} and only its \
                 `cuid` (creator) is the caller's. The caller's objects are those whose owner `uid` is the caller's \
                 effective uid; the others are left out.\nlisted: {o:?}\n{}",
                geteuid(),
                kernel_shows(file)
            );
        }
        if !want_map.contains_key(i) {
            panic!(
                "{call} lists {what} id {i}, which the test did not make: {o:?}\n{}",
                kernel_shows(file)
            );
        }
    }
    for (i, w) in &want_map {
        let Some(g) = got_map.get(i) else {
            panic!(
                "{call} does not list {what} id {i}, which the test made and the caller owns: {w:?}\nit listed: \
                 {got:?}\n{}",
                kernel_shows(file)
            );
        };
        for ((field, gv), (_, wv)) in fields(g).into_iter().zip(fields(w)) {
            if gv != wv {
                panic!(
                    "{call}: {what} id {i} has {field} = {gv}, but the kernel holds {wv} (the test made it so, and \
                     /proc/sysvipc/{file} shows it).{}\ngot:      {g:?}\nexpected: {w:?}\n{}",
                    field_hint(field, &gv, &wv),
                    kernel_shows(file)
                );
            }
        }
    }
}

/// The fields of a segment, by name.
fn seg_fields(s: &Segment) -> Vec<(&'static str, String)> {
    vec![
        ("key", s.key.to_string()),
        ("mode", s.mode.to_string()),
        ("dest", s.dest.to_string()),
        ("size", s.size.to_string()),
        ("nattch", s.nattch.to_string()),
        ("uid", s.uid.to_string()),
        ("cpid", s.cpid.to_string()),
        ("lpid", s.lpid.to_string()),
        ("rss", s.rss.to_string()),
    ]
}

/// The fields of a queue, by name.
fn queue_fields(q: &Queue) -> Vec<(&'static str, String)> {
    vec![
        ("key", q.key.to_string()),
        ("mode", q.mode.to_string()),
        ("uid", q.uid.to_string()),
        ("bytes", q.bytes.to_string()),
        ("messages", q.messages.to_string()),
        ("lspid", q.lspid.to_string()),
        ("lrpid", q.lrpid.to_string()),
    ]
}

/// The fields of a semaphore set, by name.
fn sem_fields(s: &SemSet) -> Vec<(&'static str, String)> {
    vec![
        ("key", s.key.to_string()),
        ("mode", s.mode.to_string()),
        ("uid", s.uid.to_string()),
        ("nsems", s.nsems.to_string()),
    ]
}

/// Checks `got` against `want`, kind by kind; `others` must not be listed; `private` says
/// whether every object of the namespace is the test's (else only the test's are judged).
fn check_objects(call: &str, got: &Objects, want: &Objects, others: &Objects, private: bool) {
    let keep = |ids: Vec<i32>| move |id: i32| private || ids.contains(&id);
    let seg_ids = keep(
        want.segments
            .iter()
            .chain(&others.segments)
            .map(|s| s.id)
            .collect(),
    );
    let q_ids = keep(
        want.queues
            .iter()
            .chain(&others.queues)
            .map(|q| q.id)
            .collect(),
    );
    let s_ids = keep(
        want.sem_sets
            .iter()
            .chain(&others.sem_sets)
            .map(|s| s.id)
            .collect(),
    );
    let segs: Vec<Segment> = got
        .segments
        .iter()
        .filter(|s| seg_ids(s.id))
        .cloned()
        .collect();
    let queues: Vec<Queue> = got.queues.iter().filter(|q| q_ids(q.id)).cloned().collect();
    let sems: Vec<SemSet> = got
        .sem_sets
        .iter()
        .filter(|s| s_ids(s.id))
        .cloned()
        .collect();
    compare(
        "shared memory segment",
        "shm",
        call,
        &segs,
        &want.segments,
        &others.segments,
        |s| s.id,
        seg_fields,
    );
    compare(
        "message queue",
        "msg",
        call,
        &queues,
        &want.queues,
        &others.queues,
        |q| q.id,
        queue_fields,
    );
    compare(
        "semaphore set",
        "sem",
        call,
        &sems,
        &want.sem_sets,
        &others.sem_sets,
        |s| s.id,
        sem_fields,
    );
}

/// The three parsers on three texts; a panic other than `todo!()` becomes a failure that says
/// which text made it.
fn parse_all(shm: &str, msg: &str, sem: &str) -> Objects {
    let seg = student(|| parse_shm(shm));
    let q = student(|| parse_msg(msg));
    let s = student(|| parse_sem(sem));
    let failed = |what: &str, text: &str, e: io::Error| -> ! {
        panic!("{what} failed on this text: {e}\n{text}")
    };
    Objects {
        segments: seg.unwrap_or_else(|e| failed("parse_shm", shm, e)),
        queues: q.unwrap_or_else(|e| failed("parse_msg", msg, e)),
        sem_sets: s.unwrap_or_else(|e| failed("parse_sem", sem, e)),
    }
}

/// The message of a panic payload.
fn panic_text(e: &(dyn std::any::Any + Send)) -> String {
    e.downcast_ref::<String>()
        .cloned()
        .or_else(|| e.downcast_ref::<&str>().map(|s| (*s).to_owned()))
        .unwrap_or_default()
}

/// Runs `f`; a failure in it (but `todo!()`, which must stay "not yet implemented") is made
/// again with `hint` first and the text the parsers were given last.
fn with_hint(hint: &str, text: &str, f: impl FnOnce()) {
    if let Err(e) = std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)) {
        let msg = panic_text(&*e);
        if msg.starts_with("not yet implemented") {
            std::panic::resume_unwind(e);
        }
        panic!("{hint}.\n{msg}\nThe text given to parse_shm:\n{text}");
    }
}

// ---------------------------------------------------------------------------------------------
// The tests
// ---------------------------------------------------------------------------------------------

/// `own_objects` lists exactly the objects the test made and owns, each with the values the
/// kernel holds, and none of those given to another uid.
#[test]
fn own_objects_are_exactly_the_callers() {
    let outside = ipc_namespace();
    Isolation::new().run(move || {
        let ns = prepare_namespace(outside);
        let world = make_world(ns.other_uid);
        let got = student(own_objects).unwrap_or_else(|e| panic!("own_objects failed: {e}"));
        check_objects("own_objects", &got, &world.own, &world.given, ns.private);
        drop(world);
    });
}

/// The parsers on the real files return every object of the namespace, the given ones too.
#[test]
fn parsers_read_the_kernels_files() {
    let outside = ipc_namespace();
    Isolation::new().run(move || {
        let ns = prepare_namespace(outside);
        let world = make_world(ns.other_uid);
        let got = parse_all(&sysvipc("shm"), &sysvipc("msg"), &sysvipc("sem"));
        check_objects(
            "parse_shm/parse_msg/parse_sem on the kernel's files",
            &got,
            &world.all(),
            &Objects::default(),
            ns.private,
        );
        drop(world);
    });
}

/// The real files rewritten: columns in reverse order, a column no kernel has (`future`) put
/// second, every word padded to a new width with tabs and spaces. The same objects must come
/// out.
#[test]
fn parsers_find_columns_by_name() {
    let outside = ipc_namespace();
    Isolation::new().run(move || {
        let ns = prepare_namespace(outside);
        let world = make_world(ns.other_uid);
        let shuffle = |text: &str| {
            let mut out = String::new();
            for (n, line) in text.lines().enumerate() {
                let mut words: Vec<&str> = line.split_whitespace().collect();
                words.reverse();
                words.insert(1, if n == 0 { "future" } else { "-17" });
                let padded: Vec<String> = words
                    .iter()
                    .enumerate()
                    .map(|(i, w)| format!("{:>width$}", w, width = 3 + (i * 7) % 13))
                    .collect();
                out.push_str(&padded.join(if n % 2 == 0 { " \t" } else { "  " }));
                out.push('\n');
            }
            out
        };
        let (shm, msg, sem) = (
            shuffle(&sysvipc("shm")),
            shuffle(&sysvipc("msg")),
            shuffle(&sysvipc("sem")),
        );
        let hint = "the parsers were given the kernel's files with their columns reversed, an unknown column \
                    `future` second, and other widths: every column must be found by its name in the header \
                    line, since kernels add and move columns";
        with_hint(hint, &shm, || {
            let got = parse_all(&shm, &msg, &sem);
            check_objects(
                "the parsers on reordered columns",
                &got,
                &world.all(),
                &Objects::default(),
                ns.private,
            )
        });
        drop(world);
    });
}

/// Rows the test writes itself: a negative key, perms with SHM_DEST (`1600`), a size above
/// 4 GiB, big pids, columns in an order of the test's choosing.
#[test]
fn parsers_read_signed_keys_octal_modes_and_big_sizes() {
    Isolation::new().run(|| {
        let shm = "rss  perms nattch     key     size cpid lpid shmid   uid\n\
                   8192  1600      3 -1412567295 17179869185 4194000 12 98305 4242\n\
                   0      644      0       0       1    7    0     0     0\n";
        let msg = "qnum lrpid  msqid perms cbytes      key lspid   uid extra\n\
                   4     99 32768   640   4000 -2 4194303 1000 x\n";
        let sem = "nsems      key semid perms  uid\n\
                   250 2147483647 65536 777 65534\n";
        let got = parse_all(shm, msg, sem);
        let want = Objects {
            segments: vec![
                Segment {
                    key: -1412567295,
                    id: 98305,
                    mode: 0o600,
                    dest: true,
                    size: 17179869185,
                    nattch: 3,
                    uid: 4242,
                    cpid: 4194000,
                    lpid: 12,
                    rss: 8192,
                },
                Segment {
                    key: 0,
                    id: 0,
                    mode: 0o644,
                    dest: false,
                    size: 1,
                    nattch: 0,
                    uid: 0,
                    cpid: 7,
                    lpid: 0,
                    rss: 0,
                },
            ],
            queues: vec![Queue {
                key: -2,
                id: 32768,
                mode: 0o640,
                uid: 1000,
                bytes: 4000,
                messages: 4,
                lspid: 4194303,
                lrpid: 99,
            }],
            sem_sets: vec![SemSet {
                key: i32::MAX,
                id: 65536,
                mode: 0o777,
                uid: 65534,
                nsems: 250,
            }],
        };
        for (g, w) in got.segments.iter().zip(&want.segments) {
            assert_eq!(
                g, w,
                "parse_shm on this text:\n{shm}\nkey is signed decimal, perms octal (1600 = SHM_DEST and mode \
                 0o600), size may exceed 4 GiB (u64)"
            );
        }
        assert_eq!(got.segments.len(), 2, "parse_shm on:\n{shm}\ngot {:?}", got.segments);
        assert_eq!(
            got.queues, want.queues,
            "parse_msg on this text (columns found by name, an unknown column `extra`):\n{msg}"
        );
        assert_eq!(got.sem_sets, want.sem_sets, "parse_sem on this text:\n{sem}");
        let header_only = student(|| parse_sem("       key      semid perms      nsems   uid   gid  cuid  cgid      otime      ctime\n"));
        assert!(
            matches!(&header_only, Ok(v) if v.is_empty()),
            "parse_sem on a header line alone (a namespace with no sets) should be Ok(no sets), not {header_only:?}"
        );
    });
}

/// Bad input is `Err(InvalidData)`, never a panic and never `Ok`.
#[test]
fn parsers_refuse_bad_input() {
    Isolation::new().run(|| {
        let header = "       key      shmid perms                  size  cpid  lpid nattch   uid   gid  cuid  cgid      atime      dtime      ctime                   rss                  swap";
        let row = "         0         12   600                  4096   77    0      0     0     0     0     0          0          0 1700000000                     0                     0";
        let cases: Vec<(&str, String)> = vec![
            ("an empty text (no header line)", String::new()),
            (
                "a header without a `size` column",
                format!("{}\n{}\n", header.replace(" size ", " sise "), row),
            ),
            (
                "a size that is not a number",
                format!("{header}\n{}\n", row.replace(" 4096 ", " 4k96 ")),
            ),
            (
                "perms that are not octal",
                format!("{header}\n{}\n", row.replace(" 600 ", " 680 ")),
            ),
            (
                "a row cut short",
                format!("{header}\n         0         12   600\n"),
            ),
            (
                "a negative size",
                format!("{header}\n{}\n", row.replace(" 4096 ", " -4096 ")),
            ),
        ];
        for (what, text) in cases {
            let got = student(|| {
                std::panic::catch_unwind(|| parse_shm(&text)).map_err(|e| {
                    let msg = panic_text(&*e);
                    if msg.starts_with("not yet implemented") {
                        std::panic::resume_unwind(e);
                    }
                    msg
                })
            });
            match got {
                Err(panic) => panic!(
                    "parse_shm panicked ({panic}) on {what}; bad input must be an error, \
                     Err(io::ErrorKind::InvalidData), never a panic:\n{text}"
                ),
                Ok(Ok(v)) => panic!(
                    "parse_shm returned Ok({v:?}) for {what}; it must return Err(io::ErrorKind::InvalidData):\n{text}"
                ),
                Ok(Err(e)) => assert_eq!(
                    e.kind(),
                    io::ErrorKind::InvalidData,
                    "parse_shm on {what} failed with {e} ({:?}), not with kind InvalidData",
                    e.kind()
                ),
            }
        }
    });
}

/// One round of limits the test writes into `/proc/sys/kernel/*` (or reads back from there).
struct Round {
    shmmax: u64,
    shmall: u64,
    shmmni: u64,
    msgmax: u64,
    msgmnb: u64,
    msgmni: u64,
    sem: [u64; 4],
}

impl Round {
    fn write(&self) {
        write_sysctl("shmmax", &self.shmmax.to_string());
        write_sysctl("shmall", &self.shmall.to_string());
        write_sysctl("shmmni", &self.shmmni.to_string());
        write_sysctl("msgmax", &self.msgmax.to_string());
        write_sysctl("msgmnb", &self.msgmnb.to_string());
        write_sysctl("msgmni", &self.msgmni.to_string());
        let [a, b, c, d] = self.sem;
        write_sysctl("sem", &format!("{a} {b} {c} {d}"));
    }

    /// The values the kernel shows now, read by the test.
    fn read() -> Round {
        let one = |name: &str| -> u64 {
            let path = format!("/proc/sys/kernel/{name}");
            fs::read_to_string(&path)
                .unwrap_or_else(|e| panic!("read {path}: {e}"))
                .trim()
                .parse()
                .unwrap_or_else(|e| panic!("{path}: {e}"))
        };
        let sem: Vec<u64> = fs::read_to_string("/proc/sys/kernel/sem")
            .expect("read /proc/sys/kernel/sem")
            .split_whitespace()
            .map(|w| w.parse().expect("a number in /proc/sys/kernel/sem"))
            .collect();
        Round {
            shmmax: one("shmmax"),
            shmall: one("shmall"),
            shmmni: one("shmmni"),
            msgmax: one("msgmax"),
            msgmnb: one("msgmnb"),
            msgmni: one("msgmni"),
            sem: sem
                .try_into()
                .expect("four numbers in /proc/sys/kernel/sem"),
        }
    }

    fn expected(&self) -> Limits {
        let [semmsl, semmns, semopm, semmni] = self.sem;
        Limits {
            shmmax: self.shmmax,
            shmall: self.shmall,
            shm_total_bytes: self.shmall.saturating_mul(page()),
            shmmni: self.shmmni,
            msgmax: self.msgmax,
            msgmnb: self.msgmnb,
            msgmni: self.msgmni,
            semmsl,
            semmns,
            semopm,
            semmni,
        }
    }

    /// The kernel's `IPC_INFO` agrees with what the test wrote (a check of the test itself).
    fn check_kernel(&self) {
        let shm = kernel_shm_limits();
        let msg = kernel_msginfo(libc::IPC_INFO);
        let sem = kernel_seminfo(libc::IPC_INFO);
        let kernel = (
            (shm.shmmax, shm.shmall, shm.shmmni),
            (msg.msgmax as u64, msg.msgmnb as u64, msg.msgmni as u64),
            [sem.semmsl, sem.semmns, sem.semopm, sem.semmni].map(|v| v as u64),
        );
        let wrote = (
            (self.shmmax, self.shmall, self.shmmni),
            (self.msgmax, self.msgmnb, self.msgmni),
            self.sem,
        );
        // shmmni, msgmni and semmni are capped by IPCMNI in IPC_INFO; the test writes less.
        assert_eq!(
            kernel, wrote,
            "the kernel's IPC_INFO disagrees with the limits the test wrote (a fault of the test)"
        );
    }
}

/// Explains a wrong limit.
fn limit_hint(field: &str, got: u64, want: &Limits) -> String {
    if field == "shm_total_bytes" && got == want.shmall {
        return format!(
            "shmall counts pages, not bytes: shm_total_bytes is shmall ({}) times the page size ({})",
            want.shmall,
            page()
        );
    }
    if field == "shm_total_bytes" {
        return "shm_total_bytes is shmall times the page size, saturating at u64::MAX when that does not fit".into();
    }
    let defaults = [
        ("msgmni", 32000),
        ("msgmax", 8192),
        ("msgmnb", 16384),
        ("shmmni", 4096),
        ("semmsl", 32000),
        ("semmns", 1024000000),
        ("semopm", 500),
        ("semmni", 32000),
        ("shmmax", 18446744073692774399),
        ("shmall", 18446744073692774399),
    ];
    if defaults.contains(&(field, got)) {
        return format!(
            "{got} is the kernel's default for {field}, but this namespace holds another value: read \
             /proc/sys/kernel/{} each time rather than assuming the default",
            if field.starts_with("sem") {
                "sem"
            } else {
                field
            }
        );
    }
    if field.starts_with("sem") {
        return "/proc/sys/kernel/sem holds four numbers in this order: semmsl semmns semopm semmni".into();
    }
    format!("read it from /proc/sys/kernel/{field}")
}

/// Checks `limits()` against `want`, field by field.
fn check_limits(want: &Limits, when: &str) {
    let got = student(limits).unwrap_or_else(|e| panic!("limits() failed: {e}"));
    let fields = |l: &Limits| {
        [
            ("shmmax", l.shmmax),
            ("shmall", l.shmall),
            ("shm_total_bytes", l.shm_total_bytes),
            ("shmmni", l.shmmni),
            ("msgmax", l.msgmax),
            ("msgmnb", l.msgmnb),
            ("msgmni", l.msgmni),
            ("semmsl", l.semmsl),
            ("semmns", l.semmns),
            ("semopm", l.semopm),
            ("semmni", l.semmni),
        ]
    };
    for ((field, g), (_, w)) in fields(&got).into_iter().zip(fields(want)) {
        if g != w {
            panic!(
                "limits(): {field} is {g}, but the namespace holds {w} ({when}). {}\ngot:      {got:?}\nexpected: \
                 {want:?}",
                limit_hint(field, g, want)
            );
        }
    }
}

/// The test writes two rounds of unusual limits into its namespace's `/proc/sys/kernel/*` and
/// checks `limits` after each. The second round's `shmall` times the page size does not fit in
/// 64 bits.
#[test]
fn limits_are_the_namespaces_sysctls() {
    let outside = ipc_namespace();
    Isolation::new().run(move || {
        let ns = prepare_namespace(outside);
        if !ns.writable {
            let now = Round::read();
            now.check_kernel();
            check_limits(
                &now.expected(),
                &format!("as the kernel shows them; {}", ns.notes.join("; ")),
            );
            return;
        }
        let rounds = [
            Round {
                shmmax: 123_456_789,
                shmall: 98_765,
                shmmni: 321,
                msgmax: 7_919,
                msgmnb: 13_331,
                msgmni: 173,
                sem: [271, 31_013, 37, 119],
            },
            Round {
                shmmax: 4_242_424_242,
                shmall: (1 << 62) + 3,
                shmmni: 77,
                msgmax: 65_001,
                msgmnb: 99_991,
                msgmni: 9,
                sem: [3, 33, 5, 11],
            },
        ];
        for (n, round) in rounds.iter().enumerate() {
            round.write();
            round.check_kernel();
            check_limits(
                &round.expected(),
                &format!(
                    "the test wrote them into /proc/sys/kernel/*, round {} of 2",
                    n + 1
                ),
            );
        }
    });
}

/// What `usage` must give for the test's objects, which are every object of the namespace.
fn expected_usage(world: &World) -> Usage {
    let all = world.all();
    let page = page();
    Usage {
        shm_segments: all.segments.len() as u64,
        shm_pages_allocated: all.segments.iter().map(|s| s.size.div_ceil(page)).sum(),
        shm_pages_resident: world.touched_pages,
        msg_queues: all.queues.len() as u64,
        msg_messages: all.queues.iter().map(|q| q.messages).sum(),
        msg_bytes: all.queues.iter().map(|q| q.bytes).sum(),
        sem_sets: all.sem_sets.len() as u64,
        sem_semaphores: all.sem_sets.iter().map(|s| s.nsems).sum(),
    }
}

/// The kernel's own usage figures (`SHM_INFO`, `MSG_INFO`, `SEM_INFO`), as a `Usage`.
fn kernel_usage() -> Usage {
    let shm = kernel_shm_info();
    let msg = kernel_msginfo(libc::MSG_INFO);
    let sem = kernel_seminfo(libc::SEM_INFO);
    Usage {
        shm_segments: shm.used_ids as u64,
        shm_pages_allocated: shm.shm_tot,
        shm_pages_resident: shm.shm_rss,
        msg_queues: msg.msgpool as u64,
        msg_messages: msg.msgmap as u64,
        msg_bytes: msg.msgtql as u64,
        sem_sets: sem.semusz as u64,
        sem_semaphores: sem.semaem as u64,
    }
}

/// Explains a wrong usage figure.
fn usage_hint(field: &str, got: u64, world: &World) -> String {
    let all = world.all();
    let page = page();
    let floor: u64 = all.segments.iter().map(|s| s.size / page).sum();
    let own = |f: &dyn Fn(&Objects) -> u64| f(&world.own);
    match field {
        "shm_pages_allocated" if got == floor => format!(
            "{got} is the sum of each size divided by the page size rounded down; a segment takes whole pages, so \
             a segment of 1 byte takes 1 page and one of 5 pages and 1 byte takes 6: round each size up \
             (size.div_ceil(page))"
        ),
        "shm_pages_resident" => format!(
            "pages resident is the sum of the `rss` column, which is in bytes, divided by the page size ({page}); \
             the test wrote to {} pages",
            world.touched_pages
        ),
        _ if !world.given.segments.is_empty()
            && [
                own(&|o| o.segments.len() as u64),
                own(&|o| o.queues.len() as u64),
                own(&|o| o.queues.iter().map(|q| q.messages).sum()),
                own(&|o| o.queues.iter().map(|q| q.bytes).sum()),
                own(&|o| o.sem_sets.len() as u64),
                own(&|o| o.sem_sets.iter().map(|s| s.nsems).sum()),
                own(&|o| o.segments.iter().map(|s| s.size.div_ceil(page)).sum()),
            ]
            .contains(&got) =>
        {
            "usage counts every object of the namespace, whoever owns it, as `ipcs -u` does: the objects given \
             to another uid count too"
                .into()
        }
        _ => "usage sums over every row of /proc/sysvipc/{shm,msg,sem}".into(),
    }
}

/// `usage` sums up every object of the namespace, the ones given to another uid included; the
/// test's own sums agree with the kernel's `SHM_INFO`, `MSG_INFO` and `SEM_INFO` first.
#[test]
fn usage_sums_every_object_of_the_namespace() {
    let outside = ipc_namespace();
    Isolation::new().run(move || {
        let ns = prepare_namespace(outside);
        let world = make_world(ns.other_uid);
        let want = expected_usage(&world);
        if !ns.private {
            // Other programs' objects count too, and may come and go: only a lower bound holds.
            let got = student(usage).unwrap_or_else(|e| panic!("usage() failed: {e}"));
            eprintln!("note: not a private namespace: usage is only checked to count at least the test's objects");
            let low = |g: &Usage| {
                [
                    g.shm_segments >= want.shm_segments,
                    g.shm_pages_allocated >= want.shm_pages_allocated,
                    g.msg_queues >= want.msg_queues,
                    g.msg_messages >= want.msg_messages,
                    g.msg_bytes >= want.msg_bytes,
                    g.sem_sets >= want.sem_sets,
                    g.sem_semaphores >= want.sem_semaphores,
                ]
                .iter()
                .all(|&ok| ok)
            };
            assert!(low(&got), "usage() {got:?} counts less than the test's own objects {want:?}");
            drop(world);
            return;
        }
        assert_eq!(
            kernel_usage(),
            want,
            "the kernel's SHM_INFO/MSG_INFO/SEM_INFO disagree with the test's own sums over the objects it \
             made (a fault of the test)"
        );
        let got = student(usage).unwrap_or_else(|e| panic!("usage() failed: {e}"));
        let fields = |u: &Usage| {
            [
                ("shm_segments", u.shm_segments),
                ("shm_pages_allocated", u.shm_pages_allocated),
                ("shm_pages_resident", u.shm_pages_resident),
                ("msg_queues", u.msg_queues),
                ("msg_messages", u.msg_messages),
                ("msg_bytes", u.msg_bytes),
                ("sem_sets", u.sem_sets),
                ("sem_semaphores", u.sem_semaphores),
            ]
        };
        for ((field, g), (_, w)) in fields(&got).into_iter().zip(fields(&want)) {
            if g != w {
                panic!(
                    "usage(): {field} is {g}, but the kernel counts {w}. {}\ngot:      {got:?}\nexpected: \
                     {want:?}\n{}\n{}\n{}",
                    usage_hint(field, g, &world),
                    kernel_shows("shm"),
                    kernel_shows("msg"),
                    kernel_shows("sem")
                );
            }
        }
        drop(world);
    });
}

/// The numbers `ipcs` prints after `label` (`label = N` or `label N`), for each line that
/// starts with it.
fn ipcs_number(text: &str, label: &str) -> Option<u64> {
    text.lines()
        .map(str::trim)
        .find_map(|l| l.strip_prefix(label))
        .and_then(|rest| {
            rest.trim_start_matches([' ', '='])
                .split_whitespace()
                .next()?
                .parse()
                .ok()
        })
}

/// Runs `ipcs` with `args`; `None` where it is not installed.
fn run_ipcs(args: &[&str]) -> Option<String> {
    let out = Command::new("ipcs").args(args).output().ok()?;
    assert!(
        out.status.success(),
        "ipcs {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    Some(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// The ids in the first column of `ipcs -m`, `-q` or `-s` output that is a number (the second).
fn ipcs_ids(text: &str) -> Vec<i32> {
    let mut ids: Vec<i32> = text
        .lines()
        .filter(|l| l.starts_with("0x"))
        .filter_map(|l| l.split_whitespace().nth(1)?.parse().ok())
        .collect();
    ids.sort_unstable();
    ids
}

/// util-linux's `ipcs` (where installed) shows the same limits (`-l -b`), usage (`-u`) and
/// objects (`-m`, `-q`, `-s`, which list every owner's) as the student's functions.
#[test]
fn agrees_with_util_linux_ipcs() {
    let outside = ipc_namespace();
    Isolation::new().run(move || {
        let ns = prepare_namespace(outside);
        if ns.writable {
            Round {
                shmmax: 6_543_210_987,
                shmall: 2_345_678,
                shmmni: 999,
                msgmax: 4_321,
                msgmnb: 54_321,
                msgmni: 777,
                sem: [101, 2_023, 47, 333],
            }
            .write();
        }
        let world = make_world(ns.other_uid);
        let Some(l_text) = run_ipcs(&["-l", "-b"]) else {
            eprintln!("note: util-linux's ipcs is not installed: this comparison is skipped");
            // Still judge the student's code on something: its usage against the kernel's.
            let got = student(usage).unwrap_or_else(|e| panic!("usage() failed: {e}"));
            if ns.private {
                assert_eq!(got, kernel_usage(), "usage() against the kernel's SHM_INFO/MSG_INFO/SEM_INFO");
            }
            return;
        };
        if !ns.private {
            eprintln!("note: not a private namespace: ipcs's usage and lists change under other programs, not compared");
        }
        let u_text = run_ipcs(&["-u"]).expect("ipcs -u");
        let lim = student(limits).unwrap_or_else(|e| panic!("limits() failed: {e}"));
        let use_ = student(usage).unwrap_or_else(|e| panic!("usage() failed: {e}"));
        let checks: [(&str, &str, u64); 18] = [
            (&l_text, "max queues system wide", lim.msgmni),
            (&l_text, "max size of message (bytes)", lim.msgmax),
            (&l_text, "default max size of queue (bytes)", lim.msgmnb),
            (&l_text, "max number of segments", lim.shmmni),
            (&l_text, "max seg size (bytes)", lim.shmmax),
            (&l_text, "max total shared memory (bytes)", lim.shm_total_bytes),
            (&l_text, "max number of arrays", lim.semmni),
            (&l_text, "max semaphores per array", lim.semmsl),
            (&l_text, "max semaphores system wide", lim.semmns),
            (&l_text, "max ops per semop call", lim.semopm),
            (&u_text, "allocated queues", use_.msg_queues),
            (&u_text, "used headers", use_.msg_messages),
            (&u_text, "used space", use_.msg_bytes),
            (&u_text, "segments allocated", use_.shm_segments),
            (&u_text, "pages allocated", use_.shm_pages_allocated),
            (&u_text, "pages resident", use_.shm_pages_resident),
            (&u_text, "used arrays", use_.sem_sets),
            (&u_text, "allocated semaphores", use_.sem_semaphores),
        ];
        for (text, label, mine) in checks {
            if !ns.private && std::ptr::eq(text, u_text.as_str()) {
                continue;
            }
            let theirs = ipcs_number(text, label)
                .unwrap_or_else(|| panic!("no line `{label}` in ipcs's output:\n{text}"));
            assert_eq!(
                mine, theirs,
                "`ipcs` shows `{label}` = {theirs}, the student's answer is {mine}. ipcs's output:\n{text}"
            );
        }
        if ns.private {
            let own = student(own_objects).unwrap_or_else(|e| panic!("own_objects() failed: {e}"));
            let all = world.all();
            let sorted = |mut v: Vec<i32>| {
                v.sort_unstable();
                v
            };
            for (flag, listed, mine, given) in [
                (
                    "-m",
                    sorted(all.segments.iter().map(|s| s.id).collect()),
                    sorted(own.segments.iter().map(|s| s.id).collect()),
                    world.given.segments.len(),
                ),
                (
                    "-q",
                    sorted(all.queues.iter().map(|q| q.id).collect()),
                    sorted(own.queues.iter().map(|q| q.id).collect()),
                    world.given.queues.len(),
                ),
                (
                    "-s",
                    sorted(all.sem_sets.iter().map(|s| s.id).collect()),
                    sorted(own.sem_sets.iter().map(|s| s.id).collect()),
                    world.given.sem_sets.len(),
                ),
            ] {
                let text = run_ipcs(&[flag]).expect("ipcs");
                // ipcs lists keyed objects with a 0x key; IPC_PRIVATE ones too (0x00000000).
                let theirs = ipcs_ids(&text);
                assert_eq!(theirs, listed, "`ipcs {flag}` lists these ids:\n{text}");
                assert_eq!(
                    mine.len() + given,
                    theirs.len(),
                    "`ipcs {flag}` lists every owner's objects ({theirs:?}); own_objects gave {mine:?}, and {given} \
                     of them belong to uid {OTHER_UID}:\n{text}"
                );
                assert!(
                    mine.iter().all(|id| theirs.contains(id)),
                    "own_objects gave ids {mine:?}, `ipcs {flag}` lists {theirs:?}:\n{text}"
                );
            }
        }
        drop(world);
    });
}
