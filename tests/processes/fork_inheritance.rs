//! processes/fork_inheritance: what a forked child inherits and what it does not. Each row is
//! checked in the kernel's own account, read while the child is held (blocked reading its go
//! pipe, seen in `/proc/<child>/syscall`), and then against the child's report:
//! - the parent set every row up itself (`the_parent_sets_every_row_up_itself`): its
//!   `/proc/<pid>/status` (SigBlk, SigPnd/ShdPnd, SigCgt, Umask), its cwd and fd table, a `POSIX`
//!   write lock of its own in `/proc/locks`, its armed ITIMER_REAL (getitimer);
//! - inherited: the fd, pointing to the same open file description (the child's fd table, kcmp
//!   KCMP_FILE where permitted) (`open_fds_are_inherited`); the mask and the handler (the child's
//!   SigBlk and SigCgt) (`the_mask_and_the_dispositions_are_inherited`); the working directory and
//!   the umask (`/proc/<child>/cwd`, Umask) (`the_working_directory_and_the_umask_are_inherited`);
//! - not inherited: the pending signal (the child's SigPnd and ShdPnd, while the parent's still
//!   has it) (`pending_signals_are_not_inherited`); the record lock (no lock of the child's in
//!   `/proc/locks`, and the child's F_GETLK names the parent) (`record_locks_are_not_inherited`);
//!   the alarm (the parent's SIGALRM becomes pending, blocked, when it fires; the child's never
//!   does; the child's alarm(0) finds none) (`an_alarm_is_not_inherited`);
//! - the child is held until let go, then reaped (`the_child_is_held_until_let_go_then_reaped`).
//!
//! Each test runs the whole call on several setups (signals, umasks) and checks its own row.

// The exercise under test: your stub (by default), the reference solution (`--features
// solutions`), or a shipped mistake that `cargo grade --mistakes` copies into target/.
#[cfg(not(any(feature = "solutions", feature = "mistake")))]
#[path = "../../exercises/processes/fork_inheritance.rs"]
#[allow(dead_code)] // a stub does not use all of its API yet
mod fork_inheritance;
#[cfg(all(feature = "solutions", not(feature = "mistake")))]
#[path = "../../solutions/processes/fork_inheritance.rs"]
mod fork_inheritance;
#[cfg(feature = "mistake")]
#[path = "../../target/oskata-mistake/processes/fork_inheritance.rs"]
#[rustfmt::skip] // the copy exists only while the proof runs
mod fork_inheritance;
use fork_inheritance::*;

use std::fs;
use std::os::fd::{AsRawFd, RawFd};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use nix::sys::signal::Signal;
use nix::sys::wait::WaitStatus;
use nix::unistd::Pid;
use oskata_harness::evidence::state_word;
use oskata_harness::procfs::{self, Status};
use oskata_harness::{body_pid, isolated, scaled, scratch_dir, student};
use rstest::rstest;

/// The signals and umask of one setup.
#[derive(Debug, Clone, Copy)]
struct Rows {
    blocked: Signal,
    pending: Signal,
    handled: Signal,
    umask: u32,
    alarm_seconds: u32,
}

/// An alarm far beyond any test's deadline: it never fires while the test runs.
const FAR: u32 = 600;

const ROWS_A: Rows = Rows {
    blocked: Signal::SIGUSR1,
    pending: Signal::SIGUSR2,
    handled: Signal::SIGTERM,
    umask: 0o027,
    alarm_seconds: FAR,
};
const ROWS_B: Rows = Rows {
    blocked: Signal::SIGPIPE,
    pending: Signal::SIGHUP,
    handled: Signal::SIGUSR1,
    umask: 0o077,
    alarm_seconds: FAR,
};
const ROWS_C: Rows = Rows {
    blocked: Signal::SIGINT,
    pending: Signal::SIGWINCH,
    handled: Signal::SIGQUIT,
    umask: 0o002,
    alarm_seconds: FAR,
};

/// One line of `/proc/locks` (proc(5)).
#[derive(Debug, Clone, PartialEq, Eq)]
struct Lock {
    /// `POSIX` (fcntl record lock), `FLOCK`, `OFDLCK` (F_OFD_SETLK), `LEASE`...
    class: String,
    /// `READ` or `WRITE`.
    kind: String,
    /// The owner's pid; -1 for OFD locks, which no process owns.
    pid: i32,
    /// `major:minor:inode` of the locked file (major and minor in hex).
    dev: (u32, u32),
    ino: u64,
    /// A waiter (`->`), not a held lock.
    waiting: bool,
}

impl Lock {
    fn parse(line: &str) -> Option<Lock> {
        let mut words = line.split_whitespace();
        words.next()?; // "N:"
        let mut class = words.next()?;
        let waiting = class == "->";
        if waiting {
            class = words.next()?;
        }
        let _mode = words.next()?; // ADVISORY / MANDATORY
        let kind = words.next()?;
        let pid = words.next()?.parse().ok()?;
        let mut id = words.next()?.split(':');
        let major = u32::from_str_radix(id.next()?, 16).ok()?;
        let minor = u32::from_str_radix(id.next()?, 16).ok()?;
        let ino = id.next()?.parse().ok()?;
        Some(Lock {
            class: class.to_owned(),
            kind: kind.to_owned(),
            pid,
            dev: (major, minor),
            ino,
            waiting,
        })
    }
}

/// The locks held on the file with this device and inode, from `/proc/locks`.
fn locks_on(dev: u64, ino: u64) -> Vec<Lock> {
    let text = fs::read_to_string("/proc/locks").expect("read /proc/locks");
    let id = (libc::major(dev), libc::minor(dev));
    text.lines()
        .filter_map(Lock::parse)
        .filter(|l| !l.waiting && l.ino == ino && l.dev == id)
        .collect()
}

/// One process as the kernel shows it.
#[derive(Debug, Clone)]
struct Proc {
    status: Status,
    cwd: Option<PathBuf>,
    /// What the fd under test points to, if open.
    fd_target: Option<String>,
}

impl Proc {
    fn read(pid: Pid, fd: RawFd) -> Proc {
        Proc {
            status: procfs::status(pid).unwrap_or_default(),
            cwd: procfs::cwd(pid).ok(),
            fd_target: fs::read_link(format!("/proc/{pid}/fd/{fd}"))
                .ok()
                .map(|p| p.to_string_lossy().into_owned()),
        }
    }
    fn mask(&self, key: &str) -> u64 {
        self.status.signal_mask(key).unwrap_or(0)
    }
    fn has(&self, key: &str, sig: Signal) -> bool {
        self.mask(key) & bit(sig) != 0
    }
    /// Pending for the thread (SigPnd) or for the whole process (ShdPnd).
    fn pending(&self, sig: Signal) -> bool {
        self.has("SigPnd", sig) || self.has("ShdPnd", sig)
    }
}

/// Signal N is bit N-1 in the masks of `/proc/<pid>/status`.
fn bit(sig: Signal) -> u64 {
    1u64 << (sig as i32 - 1)
}

/// `KCMP_FILE` from linux/kcmp.h: compare two processes' fds.
const KCMP_FILE: libc::c_int = 0;

/// Whether fd `fd` of `a` and fd `fd` of `b` are one open file description (kcmp(2)); `None`
/// where kcmp is missing or refused.
fn same_description(a: Pid, b: Pid, fd: RawFd) -> Option<bool> {
    // SAFETY: kcmp only compares kernel objects of two processes; no memory is passed.
    let r = unsafe {
        libc::syscall(
            libc::SYS_kcmp,
            a.as_raw(),
            b.as_raw(),
            KCMP_FILE,
            fd as libc::c_ulong,
            fd as libc::c_ulong,
        )
    };
    (r >= 0).then_some(r == 0)
}

/// The seconds left on the calling process's ITIMER_REAL (alarm's timer), rounded up.
fn own_alarm_left() -> f64 {
    // SAFETY: an all-zero itimerval is valid; getitimer fills it.
    let mut t: libc::itimerval = unsafe { std::mem::zeroed() };
    // SAFETY: getitimer writes into the itimerval we own.
    unsafe { libc::getitimer(libc::ITIMER_REAL, &mut t) };
    t.it_value.tv_sec as f64 + t.it_value.tv_usec as f64 / 1e6
}

/// What the test saw from the hook, with the child held.
#[derive(Debug, Clone)]
struct Held {
    caller: Pid,
    child: Pid,
    fd: RawFd,
    /// How the child was seen waiting: the fd it was blocked reading, or what it did instead.
    waiting: Result<i32, String>,
    parent: Proc,
    child_proc: Proc,
    locks: Vec<Lock>,
    parent_alarm: f64,
    same_file: Option<bool>,
    /// For the alarm test: whether the parent's SIGALRM became pending (the timer fired), and
    /// the child's status after that.
    fired: Option<(bool, Proc)>,
}

/// A whole run: the setup, what the hook saw and what the call returned.
struct Run {
    setup: Setup,
    me: Pid,
    file: (u64, u64),
    held: Vec<Held>,
    result: std::io::Result<Inheritance>,
}

/// Makes the file and the directory, calls the student's code, looks from the hook.
fn run(rows: Rows, await_alarm: bool) -> Run {
    let me = body_pid().expect("inside isolated()");
    let base = scratch_dir();
    let file = base.join("locked-file");
    fs::write(&file, "a file to lock\n").expect("write the file");
    let dir = base.join("work dir");
    fs::create_dir_all(&dir).expect("mkdir");
    let meta = fs::metadata(&file).expect("stat the file");
    let setup = Setup {
        file: file.clone(),
        blocked: rows.blocked,
        pending: rows.pending,
        handled: rows.handled,
        alarm_seconds: rows.alarm_seconds,
        umask: rows.umask,
        dir,
    };
    let mut held = Vec::new();
    let result = student(|| {
        fork_and_report(&setup, |child, fd| {
            held.push(look(me, child, fd, (meta.dev(), meta.ino()), await_alarm));
        })
    });
    Run {
        setup,
        me,
        file: (meta.dev(), meta.ino()),
        held,
        result,
    }
}

/// The hook's look: waits until the child blocks in a read (it has reported and waits to be let
/// go), then reads both processes and the locks.
fn look(caller: Pid, child: Pid, fd: RawFd, file: (u64, u64), await_alarm: bool) -> Held {
    let start = Instant::now();
    let waiting = loop {
        if let Some(at) = procfs::blocked_read_fd(child) {
            break Ok(at);
        }
        let state = procfs::state(child);
        if matches!(state, None | Some('Z')) {
            break Err("it had already exited".to_owned());
        }
        if start.elapsed() > scaled(Duration::from_secs(5)) {
            break Err(format!(
                "after 5 s it was {} and not blocked reading",
                state.map_or("gone".into(), state_word)
            ));
        }
        std::thread::sleep(Duration::from_millis(1));
    };
    let parent = Proc::read(caller, fd);
    let child_proc = Proc::read(child, fd);
    let fired = await_alarm.then(|| {
        let start = Instant::now();
        let fired = loop {
            let me = Proc::read(caller, fd);
            if me.pending(Signal::SIGALRM) {
                break true;
            }
            if start.elapsed() > scaled(Duration::from_secs(5)) {
                break false;
            }
            std::thread::sleep(Duration::from_millis(5));
        };
        // The child's copy of the timer, had it one, would have fired at the same moment.
        std::thread::sleep(Duration::from_millis(50));
        (fired, Proc::read(child, fd))
    });
    Held {
        caller,
        child,
        fd,
        waiting,
        parent,
        child_proc,
        locks: locks_on(file.0, file.1),
        parent_alarm: own_alarm_left(),
        same_file: same_description(caller, child, fd),
        fired,
    }
}

/// The result and the single look, after the checks every test needs.
fn checked(run: &Run) -> (&Inheritance, &Held) {
    let r = match &run.result {
        Ok(r) => r,
        Err(e) => panic!("fork_and_report({:?}, ..) failed: {e}", run.setup),
    };
    assert_eq!(
        run.held.len(),
        1,
        "fork_and_report should call while_held exactly once, while the child waits; it was called {} times",
        run.held.len()
    );
    let held = &run.held[0];
    assert_eq!(
        held.child, r.child,
        "while_held was given pid {}, but fork returned {}",
        held.child, r.child
    );
    assert_eq!(
        held.fd,
        r.file.as_raw_fd(),
        "while_held was given fd {}, but the file returned is fd {}",
        held.fd,
        r.file.as_raw_fd()
    );
    if let Err(what) = &held.waiting {
        panic!(
            "while while_held ran, pid {} should have been waiting to be let go (blocked reading its go pipe), \
             but {what}: after sending its report the child waits for a byte or end of file from the parent, and \
             only then leaves",
            held.child
        );
    }
    (r, held)
}

#[rstest]
#[case::usr1_usr2_term(ROWS_A)]
#[case::pipe_hup_usr1(ROWS_B)]
#[case::int_winch_quit(ROWS_C)]
fn the_parent_sets_every_row_up_itself(#[case] rows: Rows) {
    isolated(|| {
        let run = run(rows, false);
        let (_, held) = checked(&run);
        let p = &held.parent;
        let me = run.me;
        for sig in [rows.blocked, rows.pending] {
            assert!(
                p.has("SigBlk", sig),
                "{sig} should be blocked in the caller (SigBlk of /proc/{me}/status is {:x}): block both the blocked \
                 and the pending signal with sigprocmask, in the parent",
                p.mask("SigBlk")
            );
        }
        assert!(
            p.pending(rows.pending),
            "{} should be pending in the caller (SigPnd {:x}, ShdPnd {:x} in /proc/{me}/status): send it to the \
             parent itself (kill(getpid(), ..)) after blocking it",
            rows.pending,
            p.mask("SigPnd"),
            p.mask("ShdPnd")
        );
        assert!(
            p.has("SigCgt", rows.handled),
            "the caller should have a handler for {} (SigCgt {:x}, SigIgn {:x} in /proc/{me}/status): install a \
             handler function with sigaction, in the parent",
            rows.handled,
            p.mask("SigCgt"),
            p.mask("SigIgn")
        );
        assert_eq!(
            p.status.umask(),
            Some(rows.umask),
            "the caller's umask (Umask in /proc/{me}/status) should be {:o}",
            rows.umask
        );
        assert_eq!(
            p.cwd.as_deref(),
            Some(run.setup.dir.as_path()),
            "the caller's working directory (/proc/{me}/cwd) should be {}",
            run.setup.dir.display()
        );
        assert_eq!(
            p.fd_target.as_deref().map(Path::new),
            Some(run.setup.file.as_path()),
            "fd {} of the caller should be the file {}",
            held.fd,
            run.setup.file.display()
        );
        let left = held.parent_alarm;
        assert!(
            left > 0.0 && left <= f64::from(rows.alarm_seconds),
            "the caller's alarm (ITIMER_REAL, getitimer) has {left:.1} s left; it should be armed for {} s",
            rows.alarm_seconds
        );
        expect_parents_record_lock(&run, held);
    });
}

/// The caller holds a POSIX write lock of its own on the file (and not an flock or OFD lock).
fn expect_parents_record_lock(run: &Run, held: &Held) {
    let me = run.me;
    let file = run.setup.file.display();
    if let Some(shared) = held
        .locks
        .iter()
        .find(|l| l.class == "FLOCK" || l.class == "OFDLCK")
    {
        let how = if shared.class == "FLOCK" {
            "flock(2)"
        } else {
            "fcntl(F_OFD_SETLK)"
        };
        panic!(
            "/proc/locks shows a {} lock on {file} ({shared:?}), taken with {how}, not a POSIX record lock: such \
             locks belong to the open file description, and the child's inherited fd points to that same \
             description, so the child shares the lock instead of being refused it. Take the lock with fcntl \
             F_SETLK (struct flock, F_WRLCK over the whole file): a record lock belongs to the process",
            shared.class
        );
    }
    let ours = held
        .locks
        .iter()
        .find(|l| l.class == "POSIX" && l.pid == me.as_raw());
    assert!(
        ours.is_some_and(|l| l.kind == "WRITE"),
        "/proc/locks should show a POSIX WRITE lock on {file} held by the caller {me}; the locks on it are {:?}. \
         Take it with fcntl F_SETLK and l_type F_WRLCK, in the parent, before the fork",
        held.locks
    );
}

#[rstest]
#[case::usr1_usr2_term(ROWS_A)]
#[case::pipe_hup_usr1(ROWS_B)]
fn open_fds_are_inherited(#[case] rows: Rows) {
    isolated(|| {
        let run = run(rows, false);
        let (r, held) = checked(&run);
        let child = r.child;
        let fd = held.fd;
        let file = run.setup.file.display();
        assert_eq!(
            held.child_proc.fd_target.as_deref().map(Path::new),
            Some(run.setup.file.as_path()),
            "fd {fd} of the child (/proc/{child}/fd/{fd}) should be the file {file}, as in the parent: the child \
             inherits every open fd (the one the parent opened the file on included); it is {:?}",
            held.child_proc.fd_target
        );
        assert_ne!(
            held.same_file,
            Some(false),
            "fd {fd} of the child is {file}, but kcmp(KCMP_FILE) says it is not the parent's open file description: \
             an inherited fd points to the very description the parent's does (offset and flags shared); the \
             child should use the fd it inherited, not open the file again"
        );
        assert_eq!(
            r.view.fd_inode, run.file.1,
            "the child reported inode {} for fd {fd}; fstat in the child should give the file's inode {}",
            r.view.fd_inode, run.file.1
        );
    });
}

#[rstest]
#[case::usr1_usr2_term(ROWS_A)]
#[case::pipe_hup_usr1(ROWS_B)]
#[case::int_winch_quit(ROWS_C)]
fn the_mask_and_the_dispositions_are_inherited(#[case] rows: Rows) {
    isolated(|| {
        let run = run(rows, false);
        let (r, held) = checked(&run);
        let child = r.child;
        let c = &held.child_proc;
        for sig in [rows.blocked, rows.pending] {
            assert!(
                c.has("SigBlk", sig),
                "{sig} is blocked in the parent but not in the child (SigBlk of /proc/{child}/status is {:x}): the \
                 child inherits the mask the parent has at the fork, so block it in the parent before forking",
                c.mask("SigBlk")
            );
        }
        assert!(
            c.has("SigCgt", rows.handled),
            "the parent has a handler for {} but the child has none (SigCgt of /proc/{child}/status is {:x}): the \
             child inherits the dispositions the parent has at the fork, so install the handler before forking",
            rows.handled,
            c.mask("SigCgt")
        );
        assert!(
            r.view.blocked,
            "the child reported {} as not blocked, yet the kernel shows it in the child's SigBlk: ask the child's \
             own mask (sigprocmask with a null new set), in the child",
            rows.blocked
        );
        assert!(
            r.view.handled,
            "the child reported no handler for {}, yet the kernel shows one in the child's SigCgt: ask the child's \
             disposition (sigaction with a null new action), in the child",
            rows.handled
        );
    });
}

#[rstest]
#[case::usr1_usr2_term(ROWS_A)]
#[case::pipe_hup_usr1(ROWS_B)]
#[case::int_winch_quit(ROWS_C)]
fn pending_signals_are_not_inherited(#[case] rows: Rows) {
    isolated(|| {
        let run = run(rows, false);
        let (r, held) = checked(&run);
        let child = r.child;
        let sig = rows.pending;
        assert!(
            held.parent.pending(sig),
            "{sig} should be pending in the parent (its /proc status) while the child is held: block it, then send \
             it to the parent itself, before the fork"
        );
        let c = &held.child_proc;
        assert!(
            !c.pending(sig),
            "{sig} shows as pending in the child (SigPnd {:x}, ShdPnd {:x} of /proc/{child}/status): a forked \
             child starts with no pending signals; was it sent to the child?",
            c.mask("SigPnd"),
            c.mask("ShdPnd")
        );
        assert!(
            !r.view.pending,
            "the child reported {sig} as pending, but the kernel shows nothing pending in the child (SigPnd {:x}, \
             ShdPnd {:x} of /proc/{child}/status) while it is pending in the parent: a forked child starts with \
             an empty pending set. The report was computed before fork, in the parent: ask sigpending in the \
             child, after the fork",
            c.mask("SigPnd"),
            c.mask("ShdPnd")
        );
    });
}

#[rstest]
#[case::usr1_usr2_term(ROWS_A)]
#[case::pipe_hup_usr1(ROWS_B)]
fn record_locks_are_not_inherited(#[case] rows: Rows) {
    isolated(|| {
        let run = run(rows, false);
        let (r, held) = checked(&run);
        let child = r.child;
        let me = run.me;
        expect_parents_record_lock(&run, held);
        let childs: Vec<&Lock> = held
            .locks
            .iter()
            .filter(|l| l.pid == child.as_raw())
            .collect();
        assert!(
            childs.is_empty(),
            "/proc/locks shows the child {child} holding locks on the file: {childs:?}. A record lock is not \
             inherited: the child starts with none (and the child should take none)"
        );
        assert_eq!(
            r.view.lock_holder,
            me.as_raw(),
            "the child reported that F_GETLK names pid {} as holding a lock that blocks it (0: none), but \
             /proc/locks shows the parent {me} holding a POSIX write lock on the file and the child holding none: \
             the parent's lock is not the child's, so F_GETLK in the child should name the parent. In the parent \
             itself F_GETLK finds no conflict (a process's own locks never block it): a report computed before \
             fork says that",
            r.view.lock_holder
        );
    });
}

#[rstest]
#[case::far_alarm(false)]
#[case::alarm_that_fires(true)]
fn an_alarm_is_not_inherited(#[case] fires: bool) {
    isolated(|| {
        let mut rows = ROWS_A;
        if fires {
            // SIGALRM blocked in the parent (and so in the child): when a timer fires, its signal
            // stays pending where /proc shows it.
            rows.blocked = Signal::SIGALRM;
            rows.alarm_seconds = 1;
        }
        let run = run(rows, fires);
        let (r, held) = checked(&run);
        let child = r.child;
        let me = run.me;
        if let Some((fired, after)) = &held.fired {
            assert!(
                fired,
                "the parent armed an alarm of 1 s with SIGALRM blocked, so SIGALRM should have become pending in \
                 the parent within 5 s; /proc/{me}/status never showed it: arm it with alarm(2) in the parent"
            );
            assert!(
                !after.pending(Signal::SIGALRM),
                "the parent's alarm fired (SIGALRM pending in the parent), and SIGALRM is pending in the child too \
                 (SigPnd {:x}, ShdPnd {:x} of /proc/{child}/status): a forked child has no alarm of its own unless it \
                 arms one; the parent's is not inherited",
                after.mask("SigPnd"),
                after.mask("ShdPnd")
            );
        }
        assert_eq!(
            r.view.alarm_left, 0,
            "the child reported {} s left on its alarm, but alarms are not inherited: a forked child starts with \
             none, so alarm(0) in the child returns 0 (the parent's alarm has {:.0} s left). The report was computed \
             before fork, in the parent: ask alarm in the child",
            r.view.alarm_left, held.parent_alarm
        );
    });
}

#[rstest]
#[case::usr1_usr2_term(ROWS_A)]
#[case::pipe_hup_usr1(ROWS_B)]
#[case::int_winch_quit(ROWS_C)]
fn the_working_directory_and_the_umask_are_inherited(#[case] rows: Rows) {
    isolated(|| {
        let run = run(rows, false);
        let (r, held) = checked(&run);
        let child = r.child;
        let dir = &run.setup.dir;
        assert_eq!(
            held.child_proc.cwd.as_deref(),
            Some(dir.as_path()),
            "the child's working directory (/proc/{child}/cwd) should be {}, the parent's: the child inherits the \
             directory the parent has at the fork, so chdir before forking",
            dir.display()
        );
        assert_eq!(
            held.child_proc.status.umask(),
            Some(rows.umask),
            "the child's umask (Umask of /proc/{child}/status) should be the parent's {:o}: the child inherits the \
             umask the parent has at the fork, so set it before forking",
            rows.umask
        );
        let dir_ino = fs::metadata(dir).expect("stat the directory").ino();
        assert_eq!(
            r.view.cwd_inode,
            dir_ino,
            "the child reported inode {} for its working directory; stat(\".\") in the child should give {} ({})",
            r.view.cwd_inode,
            dir_ino,
            dir.display()
        );
        assert_eq!(
            r.view.umask, rows.umask,
            "the child reported umask {:o}; the kernel shows {:o} in the child",
            r.view.umask, rows.umask
        );
    });
}

#[test]
fn the_child_is_held_until_let_go_then_reaped() {
    isolated(|| {
        let run = run(ROWS_A, false);
        let (r, held) = checked(&run);
        let child = r.child;
        assert_eq!(
            held.caller, run.me,
            "while_held ran in pid {}, not in the parent {}: only the parent calls it",
            held.caller, run.me
        );
        assert_eq!(
            r.view.pid,
            child.as_raw(),
            "the child reported pid {}, but fork returned {child}: ask getpid in the child",
            r.view.pid
        );
        assert_eq!(
            r.status,
            WaitStatus::Exited(child, 0),
            "waitpid should report that pid {child} exited with code 0 (_exit(0) once let go)"
        );
        assert!(
            procfs::children(run.me).is_empty(),
            "fork_and_report returned, but the caller still has children: {:?}",
            procfs::children(run.me)
        );
    });
}
