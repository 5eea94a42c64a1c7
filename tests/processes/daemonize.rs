//! processes/daemonize: a daemon (守护进程) detached from its caller. The test process gets a
//! pseudo-terminal as its controlling terminal, sets umask 027, works in its scratch directory
//! and opens extra fds (a file, a pipe, a copy at fd 321) before it calls `daemonize`. The
//! daemon's task records its pid in a file and sleeps; the test then reads the daemon in
//! `/proc` (stat: session, process group, tty_nr; status: Umask; the cwd link; the fd table),
//! compares with its own, and finally kills and reaps it (the daemon was re-parented to the
//! test process, a child subreaper).
use std::fs::{self, File};
use std::os::fd::{AsFd, FromRawFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use nix::fcntl::{FcntlArg, fcntl};
use nix::sys::signal::{Signal, kill};
use nix::sys::stat::{Mode, umask};
use nix::sys::wait::waitpid;
use nix::unistd::{Pid, chdir, getpid, pipe};
use oskata::processes::daemonize::*;
use oskata_harness::evidence::{describe, state_word};
use oskata_harness::procfs::{self, Fd, Stat};
use oskata_harness::{Isolation, body_pid, scratch_dir, student};

/// How long the daemon's task keeps it alive: far longer than a correct test needs, short
/// enough that a caller that waits for the daemon comes back well before the deadline.
const LIFETIME: Duration = Duration::from_secs(5);
/// The caller's umask, which the daemon must not keep.
const CALLER_UMASK: u32 = 0o027;
/// The fd number of the extra copy the test opens high up.
const HIGH_FD: i32 = 321;

/// Everything the test saw, taken while the daemon ran its task.
struct Seen {
    pid: Pid,
    stat: Stat,
    umask: Option<u32>,
    cwd: String,
    fds: Vec<Fd>,
    caller: Stat,
    caller_umask: Option<u32>,
    caller_cwd: PathBuf,
    scratch: PathBuf,
    /// The caller's children right after `daemonize` returned.
    caller_children: Vec<Stat>,
}

impl Seen {
    /// The caller and the daemon as a process table, for messages.
    fn table(&self) -> String {
        oskata_harness::evidence::process_table(&[self.caller.clone(), self.stat.clone()])
    }
}

/// Runs isolated with a controlling terminal, so that losing it can be seen.
fn isolated_with_terminal(body: impl FnOnce()) {
    Isolation::new()
        .controlling_terminal()
        .deadline(Duration::from_secs(15))
        .run(body)
}

/// The daemon's task: record its pid (atomically, by rename) and stay alive a while.
fn task(ready: &Path, caller: Pid) {
    let me = getpid();
    assert_ne!(
        me, caller,
        "the task ran in the calling process {caller}: daemonize must run it in the daemon (the grandchild) \
         and return in the caller at once"
    );
    let tmp = ready.with_extension("tmp");
    if fs::write(&tmp, me.to_string()).is_ok() {
        let _ = fs::rename(&tmp, ready);
    }
    std::thread::sleep(LIFETIME);
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

/// Calls `daemonize`, waits until the daemon runs its task, reads it in `/proc`, then kills
/// and reaps it. Panics with the evidence if the daemon does not come up as one.
fn start() -> Seen {
    let me = body_pid().expect("inside isolated()");
    let scratch = scratch_dir();
    umask(Mode::from_bits_truncate(CALLER_UMASK));
    chdir(&scratch).expect("chdir to the scratch directory");
    let extra = open_extra_fds(&scratch);
    let ready = scratch.join("daemon-ready");
    let for_task = ready.clone();

    let started = Instant::now();
    let pid = student(|| daemonize(move || task(&for_task, me)))
        .unwrap_or_else(|e| panic!("daemonize failed: {e}"));
    let took = started.elapsed();
    let caller_children = procfs::children(me);

    // The task writes the file as soon as the daemon is set up.
    let task_pid = loop {
        if let Ok(text) = fs::read_to_string(&ready) {
            break text.trim().parse::<i32>().expect("a pid in the ready file");
        }
        if started.elapsed() > took + Duration::from_secs(5) {
            panic!(
                "daemonize returned {pid}, but no daemon ran the task within 5 s (it writes {} first thing). \
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
        _ if took >= LIFETIME => panic!(
            "daemonize returned after {took:?}, only once the daemon (pid {pid}) had already ended: its task \
             keeps it alive for {LIFETIME:?}, so the caller (or the first child) waited for the daemon. It \
             never detached. daemonize should return at once: the first child exits right after its second \
             fork, and the caller waits for the first child only"
        ),
        other => panic!(
            "the daemon (pid {pid}) ran its task but is gone ({}) before the test could look at it: it should \
             live on, running its task",
            other.map_or("no /proc entry".into(), |s| state_word(s.state))
        ),
    };
    let status = procfs::status(pid).expect("read the daemon's status");
    let cwd = procfs::cwd(pid)
        .map(|p| p.display().to_string())
        .unwrap_or_else(|e| format!("(unreadable: {e})"));
    let fds = procfs::fds(pid).expect("read the daemon's fds");
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
        caller_cwd: std::env::current_dir().expect("the caller's cwd"),
        scratch,
        caller_children,
    };
    // The daemon was re-parented to this process (a child subreaper): stop and reap it.
    let _ = kill(pid, Signal::SIGKILL);
    let _ = waitpid(pid, None);
    drop(extra);
    seen
}

#[test]
fn returns_the_daemons_pid_and_reaps_the_first_child() {
    isolated_with_terminal(|| {
        let s = start();
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
        let s = start();
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
        let s = start();
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
        let s = start();
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
        let s = start();
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
                Some(_) => {}
            }
        }
    });
}
