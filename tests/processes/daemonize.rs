//! processes/daemonize: a daemon (守护进程) detached from its caller. The test process gets a
//! pseudo-terminal as its controlling terminal, sets umask 027, works in its scratch directory
//! and opens extra fds (a file, a pipe, a copy at fd 321) before it calls `daemonize`. The
//! daemon's task records its pid in a file and stays alive until the test releases it (a file
//! in the scratch directory) or until it sees its parent blocked in a wait for it
//! (`poll::hold`), which it records: that record, not a timer, tells a daemon that never
//! detached. The test reads the daemon in `/proc` (stat: session, process group, tty_nr;
//! status: Umask; the cwd link; the fd table), compares with its own, and finally releases and
//! reaps it (the daemon was re-parented to the test process, a child subreaper). One test also
//! has the daemon open a new pseudo-terminal, to see whether it becomes its controlling terminal.
//!
//! The contract, clause by clause, and the tests that check it (`start` checks the first four
//! on every call, before any test looks further):
//! - the task runs in the daemon, whose pid is returned: `start`;
//! - nobody waits for the daemon, which lives on: `start` (the task's `poll::hold` names a
//!   waiting parent);
//! - the caller's children are untouched but for the first child: `start` (an earlier zombie
//!   child of the test that any `wait()` would take);
//! - the caller's fds (numbers, targets, access modes), session, group and terminal are
//!   unchanged: `start`, and its umask and working directory:
//!   `works_from_root_with_umask_0_and_leaves_the_caller_alone`;
//! - the first child has exited and been reaped when daemonize returns:
//!   `returns_the_daemons_pid_and_reaps_the_first_child`;
//! - a session of its own that it does not lead, in the first child's group:
//!   `has_a_session_of_its_own_and_does_not_lead_it`;
//! - no controlling terminal, and none can be acquired: `has_no_controlling_terminal`,
//!   `cannot_acquire_a_controlling_terminal`;
//! - umask 0, working directory `/`: `works_from_root_with_umask_0_and_leaves_the_caller_alone`;
//! - every inherited fd closed, 0, 1 and 2 on `/dev/null`, 0 readable and 1 and 2 writable:
//!   `keeps_only_dev_null_on_0_1_2`;
//! - `_exit(0)` once the task returns: `start` (the daemon's wait status after the release).

// The exercise under test: your stub (by default), the reference solution (`--features
// solutions`), or a shipped mistake that `cargo grade --mistakes` copies into target/.
#[cfg(not(any(feature = "solutions", feature = "mistake")))]
#[path = "../../exercises/processes/daemonize.rs"]
#[allow(dead_code)] // a stub does not use all of its API yet
mod daemonize;
#[cfg(all(feature = "solutions", not(feature = "mistake")))]
#[path = "../../solutions/processes/daemonize.rs"]
mod daemonize;
#[cfg(feature = "mistake")]
#[path = "../../target/oskata-mistake/processes/daemonize.rs"]
#[rustfmt::skip] // the copy exists only while the proof runs
mod daemonize;
use daemonize::*;

use std::fs::{self, File};
use std::os::fd::{AsFd, FromRawFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use nix::fcntl::{FcntlArg, OFlag, fcntl, open};
use nix::pty::{grantpt, posix_openpt, ptsname_r, unlockpt};
use nix::sys::signal::{SigHandler, Signal, signal};
use nix::sys::stat::{Mode, fstat, major, minor, umask};
use nix::sys::wait::{WaitStatus, waitpid};
use nix::unistd::{Pid, chdir, getpid, pipe};
use oskata_harness::evidence::{describe, state_word};
use oskata_harness::poll as wait_for;
use oskata_harness::procfs::{self, Fd, Stat};
use oskata_harness::{Isolation, body_pid, scaled, scratch_dir, student};

/// The caller's umask, which the daemon must not keep.
const CALLER_UMASK: u32 = 0o027;
/// The fd number of the extra copy the test opens high up.
const HIGH_FD: i32 = 321;
/// The file the daemon's task writes its pid into once it runs.
const READY: &str = "daemon-ready";
/// The file whose existence releases the daemon's task.
const RELEASE: &str = "daemon-release";
/// The file the task writes when it saw its parent wait for it: "waited-on by pid N".
const WAITED_ON: &str = "daemon-waited-on";
/// The file the terminal probe writes: "<tty_nr before> <tty_nr after> <major>:<minor>".
const TERMINAL: &str = "daemon-terminal";

/// What the daemon's task does before it reports ready.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Probe {
    /// Nothing: the daemon just runs.
    Nothing,
    /// Opens a new pseudo-terminal, without O_NOCTTY, and records its tty_nr before and after.
    OpenTerminal,
}

/// Everything the test saw, taken while the daemon ran its task.
struct Seen {
    pid: Pid,
    stat: Stat,
    umask: Option<u32>,
    cwd: String,
    fds: Vec<Fd>,
    caller: Stat,
    caller_umask: Option<u32>,
    /// The caller's working directory, with symlinks resolved.
    caller_cwd: PathBuf,
    /// The scratch directory, with symlinks resolved.
    scratch: PathBuf,
    /// The caller's children right after `daemonize` returned, the test's own zombie left out.
    caller_children: Vec<Stat>,
    /// What the terminal probe recorded, if it ran.
    terminal: Option<String>,
}

impl Seen {
    /// The caller and the daemon as a process table, for messages.
    fn table(&self) -> String {
        oskata_harness::evidence::process_table(&[self.caller.clone(), self.stat.clone()])
    }
}

/// Runs isolated with a controlling terminal, so that losing it can be seen.
fn isolated_with_terminal(body: impl FnOnce()) {
    Isolation::new().controlling_terminal().run(body)
}

/// Opens a new pseudo-terminal (pty(7)) the way a careless daemon might: its slave side by
/// name, without O_NOCTTY. Returns "<tty_nr before> <tty_nr after> <major>:<minor>", or
/// "error: ..." if the terminal could not be opened. SIGHUP is ignored first: a daemon that
/// does acquire the terminal would get a hang-up when the test closes it again.
fn open_new_terminal() -> String {
    let me = getpid();
    let tty_nr = || procfs::stat(me).map(|s| s.tty_nr);
    let probe = || -> Result<String, String> {
        // SAFETY: SIG_IGN runs no code in this process.
        unsafe { signal(Signal::SIGHUP, SigHandler::SigIgn) }.map_err(|e| e.to_string())?;
        let before = tty_nr().map_err(|e| e.to_string())?;
        let master = posix_openpt(OFlag::O_RDWR | OFlag::O_NOCTTY).map_err(|e| e.to_string())?;
        grantpt(&master).map_err(|e| e.to_string())?;
        unlockpt(&master).map_err(|e| e.to_string())?;
        let name = ptsname_r(&master).map_err(|e| e.to_string())?;
        let slave = open(name.as_str(), OFlag::O_RDWR, Mode::empty()).map_err(|e| e.to_string())?;
        let rdev = fstat(&slave).map_err(|e| e.to_string())?.st_rdev;
        let after = tty_nr().map_err(|e| e.to_string())?;
        drop(slave);
        drop(master);
        Ok(format!("{before} {after} {}:{}", major(rdev), minor(rdev)))
    };
    probe().unwrap_or_else(|e| format!("error: {e}"))
}

/// The daemon's task: probe if asked, record its pid (atomically, by rename), then stay alive
/// until the test releases it or its parent is seen waiting for it, and record the latter.
fn task(scratch: &Path, caller: Pid, probe: Probe) {
    let me = getpid();
    assert_ne!(
        me, caller,
        "the task ran in the calling process {caller}: daemonize must run it in the daemon (the grandchild) \
         and return in the caller at once"
    );
    if probe == Probe::OpenTerminal {
        let _ = fs::write(scratch.join(TERMINAL), open_new_terminal());
    }
    let ready = scratch.join(READY);
    let tmp = ready.with_extension("tmp");
    if fs::write(&tmp, me.to_string()).is_ok() {
        let _ = fs::rename(&tmp, &ready);
    }
    let release = scratch.join(RELEASE);
    wait_for::hold_or_record(&scratch.join(WAITED_ON), || release.exists());
}

/// The pid the daemon recorded as waiting for it, if it saw one.
fn waiter(scratch: &Path) -> Option<Pid> {
    wait_for::recorded_waiter(&scratch.join(WAITED_ON))
}

/// Fails, naming the waiter, if the daemon recorded that a parent waited for it.
fn assert_nobody_waited(scratch: &Path, pid: Pid, caller: Pid) {
    let Some(waiter) = waiter(scratch) else {
        return;
    };
    let who = if waiter == caller {
        format!("the caller (the test process {caller}, which adopted it)")
    } else {
        format!("its parent (pid {waiter}, the first child, whose second fork made it)")
    };
    panic!(
        "the daemon (pid {pid}) never detached: it saw {who} asleep in waitpid for it (/proc/{waiter}/syscall) \
         while its task was still running, and ended so that the test would not hang. Nobody may wait for a \
         daemon, which lives on. daemonize should return at once: the first child exits right after its second \
         fork, and the caller waits for the first child only."
    );
}

/// An earlier child of the caller that has exited: a zombie any `wait()` would take.
fn zombie_of_mine() -> Pid {
    // SAFETY: the test process is single-threaded; the child only calls _exit.
    let mine = match unsafe { nix::unistd::fork() }.expect("fork") {
        // SAFETY: _exit ends the child at once.
        nix::unistd::ForkResult::Child => unsafe { libc::_exit(3) },
        nix::unistd::ForkResult::Parent { child } => child,
    };
    wait_for::until(
        Duration::from_secs(5),
        "the test's own child to exit",
        || (procfs::state(mine) == Some('Z')).then_some(()),
    );
    mine
}

/// An fd as a line of a table: number, target, access mode.
fn fd_line(f: &Fd) -> String {
    let mode = match f.access {
        0 => "read-only",
        1 => "write-only",
        _ => "read-write",
    };
    format!("fd {} {} ({mode})", f.fd, f.target)
}

/// Fails unless the caller's fd table (numbers, targets, access modes), session, group and
/// terminal are what they were before `daemonize`.
fn assert_caller_unchanged(before: &Stat, after: &Stat, fds_before: &[Fd], fds_after: &[Fd]) {
    let me = after.pid;
    let opened: Vec<String> = fds_after
        .iter()
        .filter(|f| !fds_before.contains(f))
        .map(fd_line)
        .collect();
    let closed: Vec<String> = fds_before
        .iter()
        .filter(|f| !fds_after.contains(f))
        .map(fd_line)
        .collect();
    assert!(
        opened.is_empty(),
        "{} still open in the caller (pid {me}) after daemonize returned, and it was not before: the caller must \
         close every fd it opened for the daemon (both ends of the pipe the first child reports through: its \
         write end right after the fork, its read end once the pid is read). A write end left open keeps the pipe \
         from ever reaching end of file.\nBefore: {fds_before:?}",
        opened.join(", ")
    );
    assert!(
        closed.is_empty(),
        "daemonize closed or changed {} of the caller (pid {me}): only the daemon closes its fds, after the forks; \
         the caller keeps running with every fd it had",
        closed.join(", ")
    );
    assert_eq!(
        (before.session, before.pgrp, before.tty_nr),
        (after.session, after.pgrp, after.tty_nr),
        "daemonize changed the caller's own session, process group or terminal (sid, pgid, tty_nr in \
         /proc/{me}/stat): setsid belongs in the first child, after the fork"
    );
}

/// Extra fds in the caller, as a daemon's starter may have them: a file, a pipe, a high copy.
fn open_extra_fds(scratch: &Path) -> Vec<OwnedFd> {
    let file = File::create(scratch.join("caller-log")).expect("create a file");
    let (r, w) = pipe().expect("pipe");
    let raw = fcntl(file.as_fd(), FcntlArg::F_DUPFD(HIGH_FD)).expect("fcntl(F_DUPFD)");
    // SAFETY: fcntl just returned this new fd, and nothing else owns it.
    let high = unsafe { OwnedFd::from_raw_fd(raw) };
    vec![file.into(), r, w, high]
}

/// Calls `daemonize`, waits until the daemon runs its task, reads it in `/proc`, then releases
/// and reaps it. Panics with the evidence if the daemon does not come up as one.
fn start(probe: Probe) -> Seen {
    let me = body_pid().expect("inside isolated()");
    let scratch = scratch_dir();
    umask(Mode::from_bits_truncate(CALLER_UMASK));
    chdir(&scratch).expect("chdir to the scratch directory");
    let extra = open_extra_fds(&scratch);
    let ready = scratch.join(READY);
    let for_task = scratch.clone();
    let mine = zombie_of_mine();
    let fds_before = procfs::fds(me).expect("read the caller's fds");
    let caller_before = procfs::stat(me).expect("read the caller's stat");

    let pid = student(|| daemonize(move || task(&for_task, me, probe)))
        .unwrap_or_else(|e| panic!("daemonize failed: {e}"));
    let fds_after = procfs::fds(me).expect("read the caller's fds");
    let all_children = procfs::children(me);
    assert_eq!(
        procfs::state(mine),
        Some('Z'),
        "daemonize reaped pid {mine}, a child it did not create: the test forked it earlier and meant to reap it \
         itself. wait() and waitpid(-1) take any child; wait for the first child by the pid the first fork \
         returned.\nThe caller's children now:\n{}",
        oskata_harness::evidence::process_table(&all_children)
    );
    let caller_children: Vec<Stat> = all_children
        .into_iter()
        .filter(|k| k.pid != mine.as_raw())
        .collect();

    // The task writes the file as soon as the daemon is set up.
    let limit = scaled(Duration::from_secs(5));
    let returned = Instant::now();
    let task_pid = loop {
        if let Ok(text) = fs::read_to_string(&ready) {
            break text.trim().parse::<i32>().expect("a pid in the ready file");
        }
        if returned.elapsed() > limit {
            panic!(
                "daemonize returned {pid}, but no daemon ran the task within {limit:?} (it writes {} first thing). \
                 What the kernel shows:\n{}",
                ready.display(),
                describe(&procfs::descendants(me))
            );
        }
        std::thread::sleep(Duration::from_millis(2));
    };
    assert_eq!(
        task_pid,
        pid.as_raw(),
        "daemonize returned pid {pid}, but the task ran in pid {task_pid}: return the daemon's pid, the one \
         the second fork returned in the first child (send it to the caller through a pipe)"
    );
    let stat = match procfs::stat(pid) {
        Ok(s) if s.state != 'Z' => s,
        other => {
            assert_nobody_waited(&scratch, pid, me);
            panic!(
                "the daemon (pid {pid}) ran its task but is gone ({}) before the test could look at it: it should \
                 live on, running its task until the test lets it go",
                other.map_or("no /proc entry".into(), |s| state_word(s.state))
            )
        }
    };
    let status = procfs::status(pid).expect("read the daemon's status");
    let cwd = procfs::cwd(pid)
        .map(|p| p.display().to_string())
        .unwrap_or_else(|e| format!("(unreadable: {e})"));
    let fds = procfs::fds(pid).expect("read the daemon's fds");
    let resolved = |p: PathBuf| fs::canonicalize(&p).unwrap_or(p);
    let seen = Seen {
        pid,
        stat,
        umask: status.umask(),
        cwd,
        fds,
        caller: procfs::stat(me).expect("read the caller's stat"),
        caller_umask: procfs::status(me)
            .expect("read the caller's status")
            .umask(),
        caller_cwd: resolved(std::env::current_dir().expect("the caller's cwd")),
        scratch: resolved(scratch.clone()),
        caller_children,
        terminal: fs::read_to_string(scratch.join(TERMINAL)).ok(),
    };
    assert_nobody_waited(&scratch, pid, me);
    assert_caller_unchanged(&caller_before, &seen.caller, &fds_before, &fds_after);
    // Release the daemon first, then reap it: it was re-parented to this process (a child
    // subreaper), and seeing this process wait for it before the release would end it early.
    File::create(scratch.join(RELEASE)).expect("create the release file");
    let ended = wait_for::until_seen(
        Duration::from_secs(5),
        &format!("the daemon {pid} to exit once its task returned"),
        || procfs::state(pid),
        |s| matches!(s, None | Some('Z')),
    );
    let status = waitpid(pid, None);
    assert!(
        ended.is_none() || matches!(status, Ok(WaitStatus::Exited(p, 0)) if p == pid),
        "the daemon (pid {pid}) ended with {status:?} once its task returned: after task() it leaves with \
         _exit(0)"
    );
    let _ = waitpid(mine, None);
    drop(extra);
    seen
}

#[test]
fn returns_the_daemons_pid_and_reaps_the_first_child() {
    isolated_with_terminal(|| {
        let s = start(Probe::Nothing);
        if let Some(kid) = s.caller_children.iter().find(|k| k.pid != s.pid.as_raw()) {
            panic!(
                "pid {}, in state {}, was still a child of the caller when daemonize returned: the first child \
                 must exit right after its second fork, and the caller must wait for it (waitpid on the pid the first fork \
                 returned) before it returns, or it stays behind as a zombie. The caller's children then:\n{}",
                kid.pid,
                state_word(kid.state),
                oskata_harness::evidence::process_table(&s.caller_children)
            );
        }
    });
}

#[test]
fn has_a_session_of_its_own_and_does_not_lead_it() {
    isolated_with_terminal(|| {
        let s = start(Probe::Nothing);
        let (pid, sid) = (s.pid.as_raw(), s.stat.session);
        assert_ne!(
            sid,
            s.caller.session,
            "the daemon (pid {pid}) is still in the caller's session {sid}: the first child must call setsid() to \
             start a new session, which also leaves the caller's controlling terminal behind.\n{}",
            s.table()
        );
        assert_ne!(
            sid,
            pid,
            "the daemon (pid {pid}) is the leader of its session (sid {sid} == its pid): a session leader that \
             opens a terminal gets it as its controlling terminal. Fork a second time after setsid() and let the \
             first child exit: the grandchild is in the new session without leading it.\n{}",
            s.table()
        );
        assert_ne!(
            s.stat.pgrp,
            pid,
            "the daemon (pid {pid}) leads its own process group: it should be in the group setsid() made for the \
             first child.\n{}",
            s.table()
        );
    });
}

#[test]
fn has_no_controlling_terminal() {
    isolated_with_terminal(|| {
        let s = start(Probe::Nothing);
        assert_ne!(
            s.caller.tty_nr, 0,
            "the test process should have a controlling terminal (harness problem)"
        );
        assert_eq!(
            s.stat.tty_nr,
            0,
            "the daemon (pid {}) still has a controlling terminal (tty_nr {} in /proc/{}/stat; 0 means none), the \
             caller's, inherited: keys pressed there (Ctrl-C) and its hang-up would reach it. setsid() in the \
             first child starts a new session without a terminal; the second fork keeps the daemon from ever \
             getting one back.\n{}",
            s.pid,
            s.stat.tty_nr,
            s.pid,
            s.table()
        );
    });
}

#[test]
fn works_from_root_with_umask_0_and_leaves_the_caller_alone() {
    isolated_with_terminal(|| {
        let s = start(Probe::Nothing);
        assert_eq!(
            s.cwd, "/",
            "the daemon (pid {}) works in {} (/proc/{}/cwd), the directory it inherited: chdir(\"/\") so it keeps \
             no file system busy",
            s.pid, s.cwd, s.pid
        );
        assert_eq!(
            s.umask,
            Some(0),
            "the daemon's umask is {:o} (Umask: in /proc/{}/status): call umask(0) so the files it creates get \
             exactly the modes it asks for",
            s.umask.unwrap_or(0o777),
            s.pid
        );
        assert_eq!(
            s.caller_umask,
            Some(CALLER_UMASK),
            "daemonize changed the caller's own umask from {CALLER_UMASK:o} to {:o}: the caller keeps running \
             here, so set the umask in the child, after fork",
            s.caller_umask.unwrap_or(0o777)
        );
        assert_eq!(
            s.caller_cwd, s.scratch,
            "daemonize changed the caller's own working directory: chdir in the child, after fork"
        );
    });
}

#[test]
fn keeps_only_dev_null_on_0_1_2() {
    isolated_with_terminal(|| {
        let s = start(Probe::Nothing);
        let pid = s.pid;
        let table: Vec<String> = s
            .fds
            .iter()
            .map(|f| format!("{}={}", f.fd, f.target))
            .collect();
        let others: Vec<&Fd> = s.fds.iter().filter(|f| f.fd > 2).collect();
        if !others.is_empty() {
            let list: Vec<String> = others
                .iter()
                .map(|f| format!("fd {} ({})", f.fd, f.target))
                .collect();
            panic!(
                "{} still open in the daemon (pid {pid}): it inherited every fd of the caller (the test opened a \
                 file, a pipe and fd {HIGH_FD}; it also holds a terminal), and must close all of them, whatever \
                 their numbers: close_range(2) closes a whole range in one call, or close each fd listed in \
                 /proc/self/fd. /proc/{pid}/fd: {table:?}",
                list.join(", ")
            );
        }
        for n in 0..=2 {
            match s.fds.iter().find(|f| f.fd == n) {
                None => panic!(
                    "fd {n} is not open in the daemon (pid {pid}): after closing everything, open /dev/null (it \
                     lands on fd 0, the lowest free number) and dup2 it onto 1 and 2, so stdin, stdout and stderr \
                     exist and lead nowhere; otherwise the next file the daemon opens becomes its stdin or stdout. \
                     /proc/{pid}/fd: {table:?}"
                ),
                Some(f) if f.target != "/dev/null" => panic!(
                    "fd {n} of the daemon (pid {pid}) is {}, not /dev/null: put 0, 1 and 2 on /dev/null. \
                     /proc/{pid}/fd: {table:?}",
                    f.target
                ),
                Some(f) if (n == 0 && !f.readable()) || (n > 0 && !f.writable()) => panic!(
                    "{} in the daemon (pid {pid}, /proc/{pid}/fdinfo/{n}): fd {n} is the daemon's {}, so it must be \
                     open for {}; a {} on it fails with EBADF (println! would panic). Open /dev/null with O_RDWR, \
                     then copy it onto 1 and 2.",
                    fd_line(f),
                    ["stdin", "stdout", "stderr"][n as usize],
                    if n == 0 { "reading" } else { "writing" },
                    if n == 0 { "read" } else { "write" }
                ),
                Some(_) => {}
            }
        }
    });
}

#[test]
fn cannot_acquire_a_controlling_terminal() {
    isolated_with_terminal(|| {
        let s = start(Probe::OpenTerminal);
        let pid = s.pid;
        let record = s
            .terminal
            .as_deref()
            .expect("the daemon's terminal probe left no record (a harness problem)");
        if let Some(e) = record.strip_prefix("error: ") {
            panic!(
                "the daemon (pid {pid}) could not open a new pseudo-terminal to probe with ({e}): this test needs \
                 /dev/ptmx and devpts, which the harness also uses"
            );
        }
        let words: Vec<&str> = record.split_whitespace().collect();
        let [before, after, device] = words[..] else {
            panic!("the daemon's terminal probe wrote {record:?} (a harness problem)")
        };
        let (before, after): (i32, i32) = (
            before.parse().expect("tty_nr before"),
            after.parse().expect("tty_nr after"),
        );
        assert_eq!(
            before, 0,
            "the daemon (pid {pid}) still has a controlling terminal (tty_nr {before} in /proc/{pid}/stat) before \
             it opens any: it kept the caller's. setsid() in the first child starts a new session without one."
        );
        assert_eq!(
            after,
            0,
            "the daemon (pid {pid}) is the leader of its session (sid {}), so a terminal it opens takes hold of it: \
             it opened a new pseudo-terminal (device {device}) without O_NOCTTY, and tty_nr in /proc/{pid}/stat went \
             from 0 to {after}. The first terminal a session leader without one opens becomes its controlling \
             terminal (open(2), O_NOCTTY; ioctl_tty(2), TIOCSCTTY), and with it come the terminal's Ctrl-C and \
             hang-up. Fork a second time after setsid() and let the first child exit: the grandchild is in the new \
             session without leading it, so no terminal it opens can become its controlling terminal.\n{}",
            s.stat.session,
            s.table()
        );
    });
}
