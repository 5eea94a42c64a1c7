// depends on: options, protocol, cgroup, evidence, fdtable, guard, leftovers, mounts, procfs, raw,
// sysvipc, threads (stage B, the last).
//! The body process (B): forked by the supervisor, it puts itself in a known state, runs the
//! test body, checks what the body left behind, and sends one record to the supervisor.
//!
//! The known state matters because a process inherits more than memory: Rust's runtime sets
//! SIGPIPE to ignored, an ignored signal stays ignored across execve(2), and then `yes | head`
//! would behave unlike it does in any shell. So B resets every signal to its default, empties
//! the signal mask and turns off core dumps before the body starts.
use std::any::Any;
use std::io::Write;
use std::os::fd::{AsRawFd, IntoRawFd, OwnedFd};
use std::panic::{self, AssertUnwindSafe};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicI32, Ordering};

use nix::errno::Errno;
use nix::sched::{CloneFlags, unshare};
use nix::sys::resource::{Resource, setrlimit};
use nix::sys::signal::{SigSet, SigmaskHow, sigprocmask};
use nix::sys::stat::fstat;
use nix::unistd::{Gid, Pid, Uid, chdir, dup2_stderr, dup2_stdout, getpid, setsid};
use oskata_protocol as protocol;
use oskata_protocol::body::{LEAK, NOT_STARTED, NOTE, PANIC, PASS, STRAY};

use crate::cgroup::{self, Confinement};
use crate::evidence;
use crate::fdtable::{self, Reserve};
use crate::guard;
use crate::leftovers::Leftovers;
use crate::mounts::{self, Views};
use crate::options::Isolation;
use crate::procfs;
use crate::raw;
use crate::sysvipc;
use crate::threads;

/// The pid of the body process, 0 outside an isolated test.
static BODY_PID: AtomicI32 = AtomicI32::new(0);
/// The write end of the result pipe, moved high so student code is unlikely to collide.
static RESULT_FD: AtomicI32 = AtomicI32::new(-1);
static SCRATCH: OnceLock<PathBuf> = OnceLock::new();
/// The test's token (see `secret.rs`), which seals every record sent to the supervisor.
static TOKEN: OnceLock<String> = OnceLock::new();
static LAST_PANIC: Mutex<Option<String>> = Mutex::new(None);

/// The System V objects there were before the test, and when they were listed (seconds since
/// the epoch).
struct IpcBefore {
    objects: Vec<sysvipc::IpcObject>,
    taken: i64,
}

/// The exit status of a stray child stopped by the guard.
const STRAY_EXIT: i32 = 86;
/// The note in every report made without a private IPC namespace.
const NO_IPC_NAMESPACE: &str = "no private IPC namespace for this test (unshare refused, also with a user \
     namespace, or OSKATA_NO_NAMESPACES set): System V objects are told from other programs' by the pids the kernel \
     records on them, or, for one no process has used yet, by its creator's uid and its time of creation, so \
     a leak can go unnoticed or another program's object be taken for the test's";
/// The lowest fd number the result pipe is moved to.
const RESULT_FD_MIN: i32 = fdtable::HIGH_FD_MIN;

/// What the supervisor hands to the body process.
pub(crate) struct Setup<'a> {
    /// The test's token: every record sent to the supervisor is sealed with it.
    pub token: &'a str,
    pub result: OwnedFd,
    pub output: OwnedFd,
    pub scratch: PathBuf,
    pub cgroup: Option<&'a Confinement>,
    pub test: &'a str,
}

/// The pid of the process running the test body, or `None` outside an isolated test.
pub fn body_pid() -> Option<Pid> {
    match BODY_PID.load(Ordering::SeqCst) {
        0 => None,
        pid => Some(Pid::from_raw(pid)),
    }
}

/// A directory private to this test, removed with everything in it when the test ends.
///
/// Panics outside an isolated test body.
pub fn scratch_dir() -> PathBuf {
    SCRATCH
        .get()
        .cloned()
        .expect("scratch_dir() is only available inside isolated()")
}

/// Calls student code that may fork. If a forked child returns from it (or panics out of it)
/// instead of exiting, that child is stopped here at once and the test fails with
/// "a child process returned into the test instead of exiting". The process that called
/// `student` gets the function's result as usual.
pub fn student<T>(f: impl FnOnce() -> T) -> T {
    let result = panic::catch_unwind(AssertUnwindSafe(f));
    stop_if_stray(result.as_ref().err().map(|p| panic_text(p.as_ref())));
    result.unwrap_or_else(|p| panic::resume_unwind(p))
}

fn send(tag: &str, payload: &str) {
    let fd = RESULT_FD.load(Ordering::SeqCst);
    if fd < 0 {
        return;
    }
    let token = TOKEN.get().map_or("", String::as_str);
    let bytes = protocol::frame(&protocol::seal(token, tag), payload);
    // SAFETY: writes a buffer we own to the result pipe's fd (inherited across fork).
    let _ = unsafe { libc::write(fd, bytes.as_ptr().cast(), bytes.len()) };
}

/// In a forked copy of the body process: report and leave without running more test code.
fn stop_if_stray(panicked: Option<String>) {
    let body = BODY_PID.load(Ordering::SeqCst);
    let me = getpid().as_raw();
    if body == 0 || me == body {
        return;
    }
    let how = match panicked {
        Some(msg) => format!(" (it panicked: {msg})"),
        None => String::new(),
    };
    send(
        STRAY,
        &format!(
            "a child process returned into the test instead of exiting: pid {me}, forked from the test process \
             {body}, came back from the code under test{how}. A child must end with exit() or _exit() (or exec); \
             otherwise it goes on to run the caller's code as a second copy."
        ),
    );
    let _ = std::io::stdout().flush();
    // SAFETY: _exit never returns and runs no destructors or atexit handlers: right for a copy.
    unsafe { libc::_exit(STRAY_EXIT) }
}

fn panic_text(payload: &(dyn Any + Send)) -> String {
    if let Some(s) = payload.downcast_ref::<&str>() {
        s.to_string()
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else {
        "a panic with a non-text payload".into()
    }
}

/// Runs in the body process; never returns.
pub(crate) fn run(opts: &Isolation, body: impl FnOnce(), setup: Setup<'_>) -> ! {
    BODY_PID.store(getpid().as_raw(), Ordering::SeqCst);
    let _ = TOKEN.set(setup.token.to_owned());
    // The supervisor made itself non-dumpable, and fork copied that; the test's processes
    // must be dumpable again, or the test could not read their /proc/<pid>/fd and syscall.
    if let Err(e) = raw::set_dumpable(true) {
        setup_failed("make the test process dumpable again (PR_SET_DUMPABLE)", e);
    }
    let harness_pipes =
        [&setup.output, &setup.result].map(|fd| fstat(fd).map_or(0, |st| st.st_ino).to_string());
    // SAFETY: the body process has a single thread, so nothing reads the environment meanwhile.
    unsafe { std::env::set_var(evidence::HARNESS_PIPES_ENV, harness_pipes.join(",")) };
    let _ = SCRATCH.set(setup.scratch.clone());
    // SAFETY: F_DUPFD_CLOEXEC duplicates an fd we own to the lowest free number >= 900.
    let high = unsafe {
        libc::fcntl(
            setup.result.as_raw_fd(),
            libc::F_DUPFD_CLOEXEC,
            RESULT_FD_MIN,
        )
    };
    if high >= 0 {
        drop(setup.result);
        RESULT_FD.store(high, Ordering::SeqCst);
    } else {
        RESULT_FD.store(setup.result.into_raw_fd(), Ordering::SeqCst);
    }
    // A promise: the report shows what the test printed, and output never goes to the
    // supervisor's own stdout, where the parent reads the report. Without it, fail.
    if let Err(e) = dup2_stdout(&setup.output) {
        setup_failed("capture the test's stdout (dup2 onto fd 1)", e);
    }
    if let Err(e) = dup2_stderr(&setup.output) {
        setup_failed("capture the test's stderr (dup2 onto fd 2)", e);
    }
    drop(setup.output);
    close_inherited_fds(RESULT_FD.load(Ordering::SeqCst));

    // The directory the test binary was started in, before the body leaves it for the scratch
    // directory: files the test writes there are leaks too.
    let start_dir = std::env::current_dir().ok();
    let (mut notes, namespaces) = prepare(setup.cgroup, opts.wants_namespaces());
    let views = namespaces
        .mount
        .then(|| private_views(namespaces.ipc, &setup.scratch, start_dir.as_deref()))
        .flatten();
    let watched = Watched {
        mounts_before: mounts::ids(),
        private_mounts: views.is_some(),
        leftovers: Leftovers::watch(views.as_ref(), namespaces.ipc, start_dir.as_deref()),
        scratch: std::fs::canonicalize(&setup.scratch).unwrap_or_else(|_| setup.scratch.clone()),
        reserve: fdtable::reserve(),
    };
    notes.extend(watched.leftovers.notes.iter().cloned());
    // A promise: relative paths the code under test writes land in the scratch directory,
    // removed after; in any other directory they would be left behind. Without it, fail.
    if let Err(e) = chdir(&setup.scratch) {
        setup_failed(
            &format!(
                "enter the scratch directory {} (chdir)",
                setup.scratch.display()
            ),
            e,
        );
    }
    if opts.terminal
        && let Err(e) = acquire_terminal()
    {
        setup_failed("give the test a controlling terminal", e);
    }
    for note in &notes {
        send(NOTE, note);
    }
    // A promise: the test's code holds no capability, so it cannot reach into the test
    // process's or the supervisor's fds through /proc (CAP_SYS_PTRACE), move out of its
    // cgroup's limits or signal what is not its own; and nothing it execs gets any back.
    if let Err(e) = raw::drop_capabilities() {
        setup_failed(
            "give up the test's capabilities (PR_CAPBSET_DROP, capset)",
            e,
        );
    }
    let private_ipc = namespaces.ipc;
    let fds_before = if opts.check_fds {
        procfs::fds(getpid()).unwrap_or_default()
    } else {
        Vec::new()
    };
    let ipc_before = IpcBefore {
        objects: sysvipc::list(),
        taken: std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs() as i64),
    };

    panic::set_hook(Box::new(|info| {
        let msg = panic_text(info.payload());
        let at = info
            .location()
            .map(|l| format!(" at {}:{}", l.file(), l.line()))
            .unwrap_or_default();
        *LAST_PANIC.lock().unwrap_or_else(|e| e.into_inner()) =
            Some(format!("{msg}\n(panicked{at})"));
    }));
    let _ = setup.test;
    let result = panic::catch_unwind(AssertUnwindSafe(body));
    stop_if_stray(result.as_ref().err().map(|p| panic_text(p.as_ref())));
    // Also after a failure: what the test left outside its scratch directory is removed.
    let mut checked = leak_check(opts, watched, &fds_before, &ipc_before, private_ipc);
    // An escape the supervisor can miss: the test left its cgroups and ended between two of
    // the supervisor's looks. Where the body still is tells.
    if let Some(moved) = setup.cgroup.and_then(|cg| cg.left(getpid().as_raw())) {
        checked.leaks.insert(
            0,
            format!(
                "pid {} (the test process) moved itself out of the test's cgroup ({moved}): out of \
                 it, the test's limits on processes and memory no longer hold for it",
                getpid()
            ),
        );
    }
    match result {
        Err(payload) => {
            let recorded = LAST_PANIC.lock().unwrap_or_else(|e| e.into_inner()).take();
            let msg = recorded.unwrap_or_else(|| panic_text(payload.as_ref()));
            let tag = if protocol::is_not_started(&msg) {
                NOT_STARTED
            } else {
                PANIC
            };
            send(tag, &msg);
        }
        Ok(()) if checked.leaks.is_empty() => send(PASS, ""),
        Ok(()) => send(LEAK, &checked.leaks.join("\n")),
    }
    // A thread left running may hold the lock of stdout for ever: then leave without it (what
    // was printed up to the last newline is in the pipe already).
    if !checked.threads_left {
        let _ = std::io::stdout().flush();
    }
    // SAFETY: leave without returning into libtest, which would report on its own.
    unsafe { libc::_exit(0) }
}

/// Fails the test as a harness error: a step of the body's setup that one of the harness's
/// promises rests on did not work, so the test's result could not be trusted. Sends a
/// [`PANIC`] record "oskata-harness: cannot <step>: <errno>" and leaves at once, without
/// running the body.
fn setup_failed(step: &str, error: impl std::fmt::Display) -> ! {
    send(PANIC, &format!("oskata-harness: cannot {step}: {error}"));
    // SAFETY: leave at once, running no test code and no destructors; the supervisor reports
    // the failure from the record just sent.
    unsafe { libc::_exit(0) }
}

/// Opens a new pseudo-terminal (pty(7)) and makes its slave side the controlling terminal of
/// this session leader with `TIOCSCTTY` (ioctl_tty(2)). Both ends move above fd 900 and stay
/// open for the life of the body, so the terminal does not hang up.
fn acquire_terminal() -> std::io::Result<()> {
    let pty = nix::pty::openpty(None, None)?;
    for fd in [&pty.master, &pty.slave] {
        // SAFETY: duplicates an fd we own above 900; the copy lives until the body exits.
        unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_DUPFD_CLOEXEC, RESULT_FD_MIN + 1) };
    }
    // SAFETY: TIOCSCTTY takes an int argument; we are a session leader without a terminal.
    if unsafe { libc::ioctl(pty.slave.as_raw_fd(), libc::TIOCSCTTY, 0) } == -1 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(())
}

/// Closes every fd above 2 except the result pipe: what the test binary inherited (cargo's
/// jobserver pipe, a terminal) is no business of the test and would only clutter its evidence.
///
/// A promise (the test starts with only the standard fds, and a leaked fd is the test's own):
/// where close_range(2) is missing (`ENOSYS`: Linux before 5.9; `EPERM`: a container's seccomp
/// profile that refuses system calls it does not know) the fds listed in `/proc/self/fd` are
/// closed one by one instead; any other failure, or no listing either, fails the test.
fn close_inherited_fds(keep: i32) {
    let ranges = [(3, keep - 1), (keep + 1, i32::MAX)];
    for (first, last) in ranges.into_iter().filter(|(a, b)| a <= b) {
        // SAFETY: close_range(2) closes fds of this process that no live object refers to:
        // the harness's own are 0 to 2 and `keep`, and whatever in the supervisor's stack owns
        // an fd (its pidfd of the parent) is never dropped here, since this process never
        // returns into that stack.
        let rc = unsafe { libc::syscall(libc::SYS_close_range, first as u32, last as u32, 0u32) };
        match Errno::result(rc) {
            Ok(_) => {}
            Err(Errno::ENOSYS | Errno::EPERM) => return close_listed_fds(keep),
            Err(e) => setup_failed("close the fds the test binary inherited (close_range)", e),
        }
    }
}

/// The slow way of [`close_inherited_fds`]: closes each fd above 2 but `keep` that
/// `/proc/self/fd` lists (the listing leaves out its own directory stream).
fn close_listed_fds(keep: i32) {
    let open = match procfs::fds(getpid()) {
        Ok(open) => open,
        Err(e) => setup_failed(
            "close the inherited fds (no close_range, and /proc/self/fd unreadable)",
            e,
        ),
    };
    for fd in open.iter().map(|f| f.fd).filter(|&fd| fd > 2 && fd != keep) {
        // The result is not needed: Linux releases the fd even when close(2) reports EINTR
        // or EIO, and EBADF means it is closed already.
        // SAFETY: as in `close_inherited_fds`, no live object refers to these fds.
        unsafe { libc::close(fd) };
    }
}

/// Which private namespaces the body process entered.
#[derive(Debug, Clone, Copy, Default)]
struct Namespaces {
    ipc: bool,
    mount: bool,
}

/// Puts the body process into the known state; returns notes about what was not permitted,
/// and the namespaces it entered.
fn prepare(cgroup: Option<&Confinement>, namespaces: bool) -> (Vec<String>, Namespaces) {
    let mut notes = Vec::new();
    // Should the supervisor die, the body dies with it (the supervisor's parent then kills
    // what is left).
    if let Err(e) = raw::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL as usize) {
        setup_failed(
            "tie the test process to the supervisor (PR_SET_PDEATHSIG)",
            e,
        );
    }
    // A promise: a session of its own (and so a process group of its own, with no terminal),
    // so signals sent to a group or a terminal's foreground job reach only this test, and a
    // test of sessions and groups sees the ones it expects. Without it, fail.
    if let Err(e) = setsid() {
        setup_failed("give the test a session of its own (setsid)", e);
    }
    // A promise: orphans of the test's processes are re-parented to the body, so a test of
    // daemons and reaping sees them as the exercise says. Without it, fail.
    if let Err(e) = raw::become_subreaper() {
        setup_failed(
            "make the test process a child subreaper (prctl PR_SET_CHILD_SUBREAPER)",
            e,
        );
    }
    reset_dispositions();
    let _ = sigprocmask(SigmaskHow::SIG_SETMASK, Some(&SigSet::empty()), None);
    // glibc's sigprocmask keeps its own internal signals (32, 33) as they were; the raw
    // syscall clears them too, so the mask really is empty, as after a shell's fork.
    let empty: u64 = 0;
    // SAFETY: rt_sigprocmask with a valid 8-byte set and no old-set pointer.
    unsafe {
        libc::syscall(
            libc::SYS_rt_sigprocmask,
            libc::SIG_SETMASK,
            &empty as *const u64,
            std::ptr::null::<u64>(),
            8,
        )
    };
    let _ = setrlimit(Resource::RLIMIT_CORE, 0, 0);
    if let Err(e) = guard::refuse_kill_all() {
        notes.push(format!(
            "kill(-1, ...) is not blocked in this test ({e}): it would signal every process you own"
        ));
    }

    // A promise: the test stays within its limits (processes, memory) and in the cgroups the
    // supervisor freezes and kills; rlimits stand in where no cgroup is writable. A cgroup that
    // was made but cannot be joined fails the test.
    match cgroup::confine(cgroup) {
        Ok(more) => notes.extend(more),
        Err((step, e)) => setup_failed(&step, e),
    }
    let entered = if namespaces {
        enter_namespaces()
    } else {
        Namespaces::default()
    };
    if !entered.ipc {
        notes.push(NO_IPC_NAMESPACE.into());
    }
    (notes, entered)
}

/// Enters a private IPC namespace and, where permitted, a private mount namespace with it: as
/// root with unshare(2), else inside a user namespace that grants the right.
fn enter_namespaces() -> Namespaces {
    let (ipc, mount) = (CloneFlags::CLONE_NEWIPC, CloneFlags::CLONE_NEWNS);
    let both = Namespaces {
        ipc: true,
        mount: true,
    };
    let ipc_only = Namespaces {
        ipc: true,
        mount: false,
    };
    if unshare(ipc | mount).is_ok() {
        both
    } else if unshare(ipc).is_ok() {
        ipc_only
    } else if private_namespaces_as_user(ipc | mount).is_ok() {
        both
    } else if private_namespaces_as_user(ipc).is_ok() {
        ipc_only
    } else {
        Namespaces::default()
    }
}

/// The fresh `/dev/shm`, mqueue and `/tmp` of the private mount namespace (see `mounts`), with
/// the scratch directory, the starting directory and the test binary's own kept at their
/// paths; `None` where propagation cannot be made private (then nothing is mounted).
fn private_views(ipc: bool, scratch: &Path, start_dir: Option<&Path>) -> Option<Views> {
    let mut keep = vec![scratch.to_owned()];
    keep.extend(start_dir.map(Path::to_owned));
    keep.extend(
        std::env::current_exe()
            .ok()
            .and_then(|exe| exe.parent().map(Path::to_owned)),
    );
    match mounts::set_up(ipc, scratch, &keep) {
        Ok(views) => Some(views),
        Err(mounts::Failure::Refused) => None,
        Err(mounts::Failure::Broken(step, e)) => setup_failed(&step, e),
    }
}

/// Sets every signal's disposition to the default, through the raw syscall because glibc's
/// sigaction refuses its reserved signals and an ignored one stays ignored across exec.
/// Signal 33 keeps glibc's own handler: glibc needs it for setuid(2) in threaded programs.
fn reset_dispositions() {
    // The kernel's struct sigaction: handler, flags, restorer, mask (x86_64 and aarch64 order).
    #[repr(C)]
    struct KernelSigaction {
        handler: usize,
        flags: u64,
        restorer: usize,
        mask: u64,
    }
    let default = KernelSigaction {
        handler: libc::SIG_DFL,
        flags: 0,
        restorer: 0,
        mask: 0,
    };
    for sig in 1..=64 {
        if sig != libc::SIGKILL && sig != libc::SIGSTOP && sig != 33 {
            // SAFETY: rt_sigaction with a valid struct and no old-action pointer.
            unsafe {
                libc::syscall(
                    libc::SYS_rt_sigaction,
                    sig,
                    &default as *const KernelSigaction,
                    std::ptr::null::<u8>(),
                    8,
                )
            };
        }
    }
}

/// Unprivileged route to private namespaces (`flags`): a user namespace that maps our own uid
/// and gid to themselves (user_namespaces(7)), which grants the right to unshare the others.
fn private_namespaces_as_user(flags: CloneFlags) -> std::io::Result<()> {
    let (uid, gid) = (Uid::current(), Gid::current());
    unshare(CloneFlags::CLONE_NEWUSER | flags)?;
    std::fs::write("/proc/self/setgroups", "deny")?;
    std::fs::write("/proc/self/uid_map", format!("{uid} {uid} 1"))?;
    std::fs::write("/proc/self/gid_map", format!("{gid} {gid} 1"))?;
    Ok(())
}

/// What the body process noted before the test, for the leak check.
struct Watched {
    /// Mount ids before the body.
    mounts_before: Vec<u64>,
    /// Whether the mount namespace is the test's own (with fresh views).
    private_mounts: bool,
    leftovers: Leftovers,
    /// The scratch directory's canonical path, as mountinfo names it.
    scratch: PathBuf,
    reserve: Reserve,
}

/// What the leak check found.
struct Checked {
    /// One sentence each.
    leaks: Vec<String>,
    /// Whether a thread of the test still runs.
    threads_left: bool,
}

/// What the body left behind, one sentence each; removes leaked IPC objects, mounts and files
/// as it goes. First frees the fd reserve, so a full fd table blinds nothing.
fn leak_check(
    opts: &Isolation,
    watched: Watched,
    fds_before: &[procfs::Fd],
    ipc_before: &IpcBefore,
    private_ipc: bool,
) -> Checked {
    let me = getpid();
    let full_table = watched.reserve.release();
    let mut leaks = threads::left_running(me);
    let threads_left = !leaks.is_empty();
    let tree = procfs::descendants(me);
    for z in tree
        .iter()
        .filter(|p| p.state == 'Z' && p.ppid == me.as_raw() && !procfs::alive(p))
    {
        leaks.push(format!(
            "pid {} ({}) is a zombie (state Z): it exited but nobody called waitpid on it",
            z.pid, z.comm
        ));
    }
    if tree
        .iter()
        .any(|p| p.ppid != me.as_raw() || procfs::alive(p))
    {
        leaks.push(format!(
            "processes are still alive after the test ended (a daemon, or a child nobody waited for):\n{}",
            evidence::describe(&tree)
        ));
    }
    // In a private namespace every object is the test's. Without one, an object is the
    // test's if it is new and the kernel recorded one of the test's processes on it, or, when
    // it records none (a semaphore set no semop touched, a queue never used), if this user
    // made it since the test started.
    let in_tree = |pid: &i32| *pid == me.as_raw() || tree.iter().any(|p| p.pid == *pid);
    let known: Vec<(sysvipc::Kind, i32)> =
        ipc_before.objects.iter().map(|o| (o.kind, o.id)).collect();
    let uid = nix::unistd::geteuid().as_raw();
    let unused_and_new = |o: &sysvipc::IpcObject| {
        o.pids.is_empty() && o.cuid == uid && o.ctime.is_some_and(|t| t >= ipc_before.taken)
    };
    let ours = |o: &sysvipc::IpcObject| {
        private_ipc
            || (!known.contains(&(o.kind, o.id))
                && (o.pids.iter().any(in_tree) || unused_and_new(o)))
    };
    // A segment already removed but still attached (by a process that is still exiting, or
    // by this one) goes at its last detach: not a leak.
    for object in sysvipc::list()
        .into_iter()
        .filter(|o| !o.marked_for_removal())
        .filter(ours)
    {
        leaks.push(format!(
            "{object} was left behind: nobody removed it with IPC_RMID"
        ));
        let _ = sysvipc::remove(&object);
    }
    leaks.extend(mounts::left_behind(
        &watched.mounts_before,
        watched.private_mounts,
        &watched.scratch,
    ));
    leaks.extend(watched.leftovers.check());
    if opts.check_fds {
        let result_fd = RESULT_FD.load(Ordering::SeqCst);
        for fd in procfs::fds(me).unwrap_or_default() {
            if fd.fd != result_fd && !fds_before.contains(&fd) {
                leaks.push(format!(
                    "fd {} ({}) is still open in the test process: nobody closed it",
                    fd.fd, fd.target
                ));
            }
        }
    }
    leaks.extend(full_table);
    Checked {
        leaks,
        threads_left,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Without close_range(2), the fds above 2 are closed one by one, except the result pipe,
    /// through which this body still reports that it passed.
    #[test]
    fn without_close_range_the_inherited_fds_are_closed_one_by_one() {
        crate::isolated(|| {
            let extra = std::fs::File::open("/dev/null").unwrap().into_raw_fd();
            let keep = RESULT_FD.load(Ordering::SeqCst);
            close_listed_fds(keep);
            // SAFETY: F_GETFD only asks whether `extra` is open.
            let flags = unsafe { libc::fcntl(extra, libc::F_GETFD) };
            assert_eq!(Errno::result(flags), Err(Errno::EBADF));
            let left: Vec<i32> = procfs::fds(getpid())
                .unwrap()
                .iter()
                .map(|f| f.fd)
                .filter(|&fd| fd > 2)
                .collect();
            assert_eq!(left, vec![keep]);
        });
    }

    /// A failed setup step is a harness error that names the step and the errno.
    #[test]
    fn a_failed_setup_step_fails_the_test_loudly() {
        let r = crate::Isolation::new().report(|| setup_failed("do a step (step)", Errno::EPERM));
        assert_eq!(r.verdict, protocol::Verdict::Failed, "{r:?}");
        assert!(
            r.message
                .starts_with("oskata-harness: cannot do a step (step): EPERM"),
            "{r:?}"
        );
    }
}
