//! processes/vfork: run a program through vfork + exec. What the tests observe, never what the
//! code claims:
//! - the caller is suspended inside vfork while the child has not exec'd, and the child runs in
//!   the caller's address space until then (`the_caller_is_suspended_in_vfork_until_the_exec`):
//!   the test holds the child at its execve with a seccomp filter of its own (`SECCOMP_RET_USER_NOTIF`,
//!   before the kernel has loaded anything) and reads, from another thread, the caller's state and
//!   system call in `/proc/<pid>/task/<tid>/{stat,syscall}`, whether a page the caller maps right
//!   then shows in `/proc/<child>/maps`, and kcmp(KCMP_VM) where permitted; then again once the
//!   program runs, blocked on a pipe the test holds;
//! - the status waitpid gave back against what the program did, 127 when exec fails
//!   (`exit_status_comes_back`, `a_program_that_cannot_start_gives_127`);
//! - after a failed exec the child leaves by _exit: the caller's atexit handler does not run and
//!   its unflushed stdio buffer is not written (`a_failed_exec_runs_none_of_the_callers_exit_work`);
//!   no child ever comes back into the test (`student()`);
//! - the program's argv and environment as it prints them, and the caller's environment after the
//!   call (`arguments_arrive_intact`, `the_program_gets_the_environment_and_the_caller_keeps_its_own`);
//! - on every call: allocations made in the caller's heap by a process that is not the caller (a
//!   counting global allocator that asks getpid), a child blocked in anything but execve while the
//!   caller is inside vfork (a deadlock, which the test ends by killing the child), and no child
//!   left once `run` returned;
//! - bad strings give EINVAL and start nothing (`bad_strings_are_einval_and_start_nothing`).

// The exercise under test: your stub (by default), the reference solution (`--features
// solutions`), or a shipped mistake that `cargo grade --mistakes` copies into target/.
#[cfg(not(any(feature = "solutions", feature = "mistake")))]
#[path = "../../exercises/processes/vfork.rs"]
#[allow(dead_code)] // a stub does not use all of its API yet
mod vfork;
#[cfg(all(feature = "solutions", not(feature = "mistake")))]
#[path = "../../solutions/processes/vfork.rs"]
mod vfork;
#[cfg(feature = "mistake")]
#[path = "../../target/oskata-mistake/processes/vfork.rs"]
#[rustfmt::skip] // the copy exists only while the proof runs
mod vfork;
use vfork::*;

use std::alloc::{GlobalAlloc, Layout, System};
use std::fs::{self, File};
use std::io::{self, Read};
use std::os::fd::{AsFd, AsRawFd, FromRawFd, IntoRawFd, OwnedFd, RawFd};
use std::os::unix::fs::PermissionsExt;
use std::panic::{self, AssertUnwindSafe};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicI32, AtomicUsize, Ordering};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use nix::errno::Errno;
use nix::fcntl::{FcntlArg, OFlag, fcntl};
use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
use nix::sys::signal::{Signal, kill};
use nix::sys::wait::WaitStatus;
use nix::unistd::{Pid, dup2_stdin, dup2_stdout, pipe2, read, write};
use oskata_harness::evidence::state_word;
use oskata_harness::procfs::{self, Syscall};
use oskata_harness::{body_pid, isolated, scratch_dir, student};
use rstest::rstest;

// ---------------------------------------------------------------------------------------------
// Allocations in the caller's heap by another process.

/// The system allocator, which also counts, while [`ARMED`], the allocations made by a process
/// other than [`CALLER`]. Only a process that shares the caller's memory (a vfork child before
/// its exec) can change these counters where the caller sees them.
struct Counting;

static ARMED: AtomicBool = AtomicBool::new(false);
static CALLER: AtomicI32 = AtomicI32::new(0);
static FOREIGN_ALLOCS: AtomicUsize = AtomicUsize::new(0);
static FOREIGN_PID: AtomicI32 = AtomicI32::new(0);

impl Counting {
    fn note(&self) {
        if ARMED.load(Ordering::Relaxed) {
            // SAFETY: getpid has no preconditions; it is a system call, not a cached value.
            let me = unsafe { libc::getpid() };
            if me != CALLER.load(Ordering::Relaxed) {
                FOREIGN_ALLOCS.fetch_add(1, Ordering::SeqCst);
                FOREIGN_PID.store(me, Ordering::SeqCst);
            }
        }
    }
}

// SAFETY: every call is passed on to the system allocator unchanged; counting touches only
// atomics.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        self.note();
        // SAFETY: the caller's contract for `alloc`, passed on.
        unsafe { System.alloc(layout) }
    }
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        self.note();
        // SAFETY: the caller's contract for `alloc_zeroed`, passed on.
        unsafe { System.alloc_zeroed(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: the caller's contract for `dealloc`, passed on.
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        self.note();
        // SAFETY: the caller's contract for `realloc`, passed on.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static COUNTING: Counting = Counting;

// ---------------------------------------------------------------------------------------------
// A deadlock: the child waits while the caller is inside vfork.

/// Whether a blocked system call is vfork's wait: `vfork`, or `clone`/`clone3` (a clone with
/// CLONE_VFORK is the only one that stays inside the call once the child exists).
fn is_vfork_wait(call: &Syscall) -> bool {
    #[cfg(target_arch = "x86_64")]
    if call.nr == libc::SYS_vfork {
        return true;
    }
    call.nr == libc::SYS_clone || call.nr == libc::SYS_clone3
}

/// The name of a system call number, for messages.
fn syscall_name(nr: i64) -> String {
    let known: &[(i64, &str)] = &[
        (libc::SYS_read, "read"),
        (libc::SYS_write, "write"),
        (libc::SYS_wait4, "wait4"),
        (libc::SYS_waitid, "waitid"),
        (libc::SYS_clone, "clone"),
        (libc::SYS_clone3, "clone3"),
        (libc::SYS_execve, "execve"),
        (libc::SYS_execveat, "execveat"),
        (libc::SYS_futex, "futex"),
        (libc::SYS_ppoll, "ppoll"),
        (libc::SYS_rt_sigsuspend, "rt_sigsuspend"),
        (libc::SYS_rt_sigtimedwait, "rt_sigtimedwait"),
        (libc::SYS_nanosleep, "nanosleep"),
        (libc::SYS_clock_nanosleep, "clock_nanosleep"),
        #[cfg(target_arch = "x86_64")]
        (libc::SYS_vfork, "vfork"),
        #[cfg(target_arch = "x86_64")]
        (libc::SYS_fork, "fork"),
        #[cfg(target_arch = "x86_64")]
        (libc::SYS_pause, "pause"),
        #[cfg(target_arch = "x86_64")]
        (libc::SYS_poll, "poll"),
    ];
    known.iter().find(|(n, _)| *n == nr).map_or_else(
        || format!("system call {nr}"),
        |(_, name)| (*name).to_owned(),
    )
}

/// What a thread is doing, for messages: "S (sleeping) in wait4" or "R (running), in no
/// system call".
fn doing(state: Option<char>, call: Option<Syscall>) -> String {
    let Some(state) = state else {
        return "gone".into();
    };
    let word = state_word(state);
    match call {
        Some(c) if c.nr >= 0 => format!("{word} in {}", syscall_name(c.nr)),
        _ => format!("{word}, in no system call"),
    }
}

/// A child seen blocked while the caller was inside vfork.
#[derive(Debug, Clone, Copy)]
struct Deadlock {
    child: i32,
    state: char,
    call: Syscall,
}

/// How long a child must be seen waiting, with the caller inside vfork, to count as a deadlock.
const DEADLOCK_AFTER: Duration = Duration::from_millis(300);

/// Watches the caller's thread and its children on a thread of its own; a child seen blocked
/// in any system call but execve (or exit) for [`DEADLOCK_AFTER`] while the caller sits inside
/// vfork is killed, which lets vfork return, and reported.
struct Watch {
    stop: Arc<AtomicBool>,
    handle: Option<JoinHandle<Option<Deadlock>>>,
}

impl Watch {
    fn start(caller: Pid) -> Watch {
        let stop = Arc::new(AtomicBool::new(false));
        let flag = Arc::clone(&stop);
        let handle = thread::spawn(move || {
            let mut seen: Option<(Deadlock, Instant)> = None;
            while !flag.load(Ordering::SeqCst) {
                let now = blocked_child(caller);
                seen = match (now, seen) {
                    (Some(d), Some((s, since))) if s.child == d.child => Some((d, since)),
                    (Some(d), _) => Some((d, Instant::now())),
                    (None, _) => None,
                };
                if let Some((d, since)) = seen
                    && since.elapsed() >= DEADLOCK_AFTER
                {
                    let _ = kill(Pid::from_raw(d.child), Signal::SIGKILL);
                    return Some(d);
                }
                thread::sleep(Duration::from_millis(2));
            }
            None
        });
        Watch {
            stop,
            handle: Some(handle),
        }
    }

    /// Stops the watcher and says what it saw.
    fn finish(mut self) -> Option<Deadlock> {
        self.stop.store(true, Ordering::SeqCst);
        self.handle.take().and_then(|h| h.join().ok()).flatten()
    }
}

impl Drop for Watch {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(h) = self.handle.take() {
            let _ = h.join();
        }
    }
}

/// A child of `caller` blocked in a system call other than execve or exit while the caller's
/// thread is inside vfork.
fn blocked_child(caller: Pid) -> Option<Deadlock> {
    let call = procfs::thread_syscall(caller, caller.as_raw())?;
    if !is_vfork_wait(&call) {
        return None;
    }
    let allowed = [
        libc::SYS_execve,
        libc::SYS_execveat,
        libc::SYS_exit,
        libc::SYS_exit_group,
    ];
    procfs::child_pids(caller).into_iter().find_map(|kid| {
        let pid = Pid::from_raw(kid);
        let state = procfs::state(pid)?;
        if !matches!(state, 'S' | 'D') {
            return None;
        }
        let call = procfs::syscall(pid)?;
        (call.nr >= 0 && !allowed.contains(&call.nr)).then_some(Deadlock {
            child: kid,
            state,
            call,
        })
    })
}

// ---------------------------------------------------------------------------------------------
// Calling run.

/// What `run` returned and what the program wrote to its stdout.
struct Ran {
    status: WaitStatus,
    out: Vec<u8>,
}

/// How the call looks in a message: `run("sh", ["-c", "exit 7"], [])`.
fn call(program: &str, args: &[&str], env: &[(&str, &str)]) -> String {
    format!("run({program:?}, {args:?}, {env:?})")
}

/// A copy of `fd` at the lowest free number >= 10, close-on-exec.
fn saved(fd: impl AsFd) -> OwnedFd {
    let raw = fcntl(fd, FcntlArg::F_DUPFD_CLOEXEC(10)).expect("fcntl(F_DUPFD_CLOEXEC)");
    // SAFETY: fcntl just returned this new fd, and nothing else owns it.
    unsafe { OwnedFd::from_raw_fd(raw) }
}

/// Calls the student's `run` with the test's stdout on a pipe (the program inherits it as its
/// fd 1), watching for a deadlock and for allocations by the child; then checks that the
/// child was reaped.
fn run_watched(program: &str, args: &[&str], env: &[(&str, &str)]) -> nix::Result<Ran> {
    let me = body_pid().expect("inside isolated()");
    let what = call(program, args, env);
    let (read_end, write_end) = pipe2(OFlag::O_CLOEXEC).expect("pipe2");
    let stdout = saved(io::stdout());
    dup2_stdout(&write_end).expect("dup2 onto stdout");
    drop(write_end);

    CALLER.store(me.as_raw(), Ordering::SeqCst);
    FOREIGN_ALLOCS.store(0, Ordering::SeqCst);
    let watch = Watch::start(me);
    ARMED.store(true, Ordering::SeqCst);
    let got = panic::catch_unwind(AssertUnwindSafe(|| student(|| run(program, args, env))));
    ARMED.store(false, Ordering::SeqCst);
    let deadlock = watch.finish();
    dup2_stdout(&stdout).expect("restore stdout");
    drop(stdout);
    let got = got.unwrap_or_else(|p| panic::resume_unwind(p));

    if let Some(d) = deadlock {
        let on = if d.call.nr == libc::SYS_read {
            format!(" on fd {}", d.call.args[0] as i64)
        } else {
            String::new()
        };
        panic!(
            "{what}: pid {} (the vfork child) sat {}{on} for {DEADLOCK_AFTER:?} while the caller was still \
             suspended inside vfork, so the test killed it (run then returned {got:?}). That is a deadlock: the \
             caller cannot run until the child has exec'd or exited, so nothing the child waits for from it can \
             ever come. Under vfork the child waits for nothing: it calls exec at once",
            d.child,
            doing(Some(d.state), Some(d.call)),
        );
    }
    let foreign = FOREIGN_ALLOCS.load(Ordering::SeqCst);
    if foreign > 0 {
        panic!(
            "{what}: pid {} (the vfork child) allocated memory {foreign} times in the caller's heap before it \
             exec'd or exited (the test's counting allocator, in the caller's memory, saw calls from a pid \
             that is not the caller's). The vfork child borrows the caller's memory: an allocation there changes \
             the caller's heap, takes its allocator's lock and is never freed. Build every CString and both \
             pointer arrays before vfork, and in the child call only the libc functions execvpe and _exit (nix's \
             exec functions build their pointer arrays, allocating)",
            FOREIGN_PID.load(Ordering::SeqCst)
        );
    }
    let status = got?;
    if let Some(kid) = procfs::children(me).first() {
        panic!(
            "{what} returned {status:?}, but pid {} ({}) is still a child of the test process {me} in /proc: run \
             must wait for the child it started (waitpid on its pid) before it returns",
            kid.pid,
            state_word(kid.state)
        );
    }
    if status.pid() == Some(me) {
        panic!(
            "{what} returned a status for the test process itself ({status:?}): return what waitpid said about the child"
        );
    }
    // Every write end is closed now (ours, and the child's, which is gone): read to EOF.
    let mut out = Vec::new();
    File::from(read_end)
        .read_to_end(&mut out)
        .expect("read the program's output");
    Ok(Ran { status, out })
}

/// [`run_watched`], failing the test if `run` returned an error.
fn run_ok(program: &str, args: &[&str], env: &[(&str, &str)]) -> Ran {
    run_watched(program, args, env)
        .unwrap_or_else(|e| panic!("{} failed: {e}", call(program, args, env)))
}

/// Fails if the child could not start a program that is on PATH (status 127).
fn expect_started(what: &str, program: &str, status: WaitStatus) {
    if matches!(status, WaitStatus::Exited(_, 127)) && !program.contains('/') {
        panic!(
            "{what} returned {status:?}: 127 means the child could not start {program:?}, which is there to be \
             found. A name without a slash is searched for in the directories of PATH: execvpe does that, execve \
             does not"
        );
    }
}

// ---------------------------------------------------------------------------------------------
// Holding the child at its execve: a seccomp filter that hands execve to the test.

#[cfg(target_arch = "x86_64")]
const AUDIT_ARCH: u32 = 0xc000_003e;
#[cfg(target_arch = "aarch64")]
const AUDIT_ARCH: u32 = 0xc000_00b7;

/// A seccomp filter on the calling thread (and so on every child it makes) that stops each
/// execve and execveat before the kernel does anything, until the test lets it go on.
struct ExecTrap {
    fd: OwnedFd,
}

impl ExecTrap {
    /// Installs the filter on the calling thread; `Err` where seccomp notifications are not
    /// permitted.
    fn install() -> io::Result<ExecTrap> {
        let stmt = |code: u32, k: u32| libc::sock_filter {
            code: code as u16,
            jt: 0,
            jf: 0,
            k,
        };
        let jump = |k: u32, jt: u8, jf: u8| libc::sock_filter {
            code: (libc::BPF_JMP | libc::BPF_JEQ | libc::BPF_K) as u16,
            jt,
            jf,
            k,
        };
        let load = libc::BPF_LD | libc::BPF_W | libc::BPF_ABS;
        let ret = libc::BPF_RET | libc::BPF_K;
        // Offsets into struct seccomp_data: nr at 0, arch at 4.
        let mut program = [
            stmt(load, 4),                           // 0: A = arch
            jump(AUDIT_ARCH, 0, 3),                  // 1: another entry goes to 5
            stmt(load, 0),                           // 2: A = nr
            jump(libc::SYS_execve as u32, 2, 0),     // 3: execve goes to 6
            jump(libc::SYS_execveat as u32, 1, 0),   // 4: execveat goes to 6
            stmt(ret, libc::SECCOMP_RET_ALLOW),      // 5
            stmt(ret, libc::SECCOMP_RET_USER_NOTIF), // 6
        ];
        let prog = libc::sock_fprog {
            len: program.len() as u16,
            filter: program.as_mut_ptr(),
        };
        // SAFETY: PR_SET_NO_NEW_PRIVS takes integer arguments.
        if unsafe { libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) } != 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: seccomp reads the filter through the pointer, which outlives the call.
        let fd = unsafe {
            libc::syscall(
                libc::SYS_seccomp,
                libc::SECCOMP_SET_MODE_FILTER,
                libc::SECCOMP_FILTER_FLAG_NEW_LISTENER,
                &prog as *const libc::sock_fprog,
            )
        };
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: seccomp just returned this fd (the listener), and nothing else owns it.
        Ok(ExecTrap {
            fd: unsafe { OwnedFd::from_raw_fd(fd as RawFd) },
        })
    }

    /// The next held execve, waiting at most `limit`; `None` if none came, or when `stop`
    /// became readable first.
    fn next(&self, limit: Duration, stop: Option<&OwnedFd>) -> Option<libc::seccomp_notif> {
        let start = Instant::now();
        loop {
            let left = limit.saturating_sub(start.elapsed());
            if left.is_zero() {
                return None;
            }
            let ms = left.as_millis().min(1000) as u16;
            let mut fds = vec![PollFd::new(self.fd.as_fd(), PollFlags::POLLIN)];
            if let Some(s) = stop {
                fds.push(PollFd::new(s.as_fd(), PollFlags::POLLIN));
            }
            match poll(&mut fds, PollTimeout::from(ms)) {
                Ok(0) | Err(Errno::EINTR) => continue,
                Ok(_) => {}
                Err(e) => panic!("poll on the seccomp listener failed: {e}"),
            }
            if fds
                .get(1)
                .and_then(|f| f.revents())
                .is_some_and(|r| !r.is_empty())
            {
                return None;
            }
            // SAFETY: an all-zero seccomp_notif is what SECCOMP_IOCTL_NOTIF_RECV asks for.
            let mut notif: libc::seccomp_notif = unsafe { std::mem::zeroed() };
            // SAFETY: the ioctl writes one seccomp_notif into `notif`, which we own.
            let rc = unsafe {
                libc::ioctl(
                    self.fd.as_raw_fd(),
                    libc::SECCOMP_IOCTL_NOTIF_RECV as _,
                    &mut notif,
                )
            };
            if rc == 0 {
                return Some(notif);
            }
            // ENOENT: the held process died before we took its call.
            match Errno::last() {
                Errno::EINTR | Errno::ENOENT => continue,
                e => panic!("SECCOMP_IOCTL_NOTIF_RECV failed: {e}"),
            }
        }
    }

    /// Lets the held execve `id` go on, as if no filter had stopped it.
    fn go_on(&self, id: u64) {
        let mut resp = libc::seccomp_notif_resp {
            id,
            val: 0,
            error: 0,
            flags: libc::SECCOMP_USER_NOTIF_FLAG_CONTINUE as u32,
        };
        // SAFETY: the ioctl reads one seccomp_notif_resp from `resp`, which we own.
        let rc = unsafe {
            libc::ioctl(
                self.fd.as_raw_fd(),
                libc::SECCOMP_IOCTL_NOTIF_SEND as _,
                &mut resp,
            )
        };
        // ENOENT: the process died meanwhile (the test killed it, say).
        if rc != 0 && Errno::last() != Errno::ENOENT {
            panic!("SECCOMP_IOCTL_NOTIF_SEND failed: {}", Errno::last());
        }
    }
}

/// `KCMP_VM` from linux/kcmp.h: compare two processes' address spaces.
const KCMP_VM: libc::c_int = 1;

/// Asks the kernel whether `a` and `b` share one address space (kcmp(2), KCMP_VM); `None`
/// where kcmp is missing (ENOSYS) or refused (EPERM, EACCES: a seccomp profile, a ptrace check).
fn same_vm(a: Pid, b: Pid) -> Option<bool> {
    // SAFETY: kcmp only compares kernel objects of two processes; no memory is passed.
    let r = unsafe { libc::syscall(libc::SYS_kcmp, a.as_raw(), b.as_raw(), KCMP_VM, 0, 0) };
    match r {
        0 => Some(true),
        r if r > 0 => Some(false),
        _ => match Errno::last() {
            Errno::ENOSYS | Errno::EPERM | Errno::EACCES => None,
            e => panic!("kcmp(KCMP_VM) on the test's own child failed: {e}"),
        },
    }
}

/// Whether a page this process maps right now shows in `/proc/<child>/maps`: it does when the
/// child shares this address space, and cannot when the child has a copy (made before the
/// page existed) or an address space of its own. `None` if the maps could not be read.
fn fresh_page_shows_in(child: Pid) -> Option<bool> {
    let len = 4096;
    // SAFETY: a new private anonymous mapping, unmapped below; nothing else refers to it.
    let page = unsafe {
        libc::mmap(
            std::ptr::null_mut(),
            len,
            libc::PROT_READ,
            libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
            -1,
            0,
        )
    };
    assert_ne!(page, libc::MAP_FAILED, "mmap of one page failed");
    let addr = page as u64;
    let maps = fs::read_to_string(format!("/proc/{child}/maps")).ok();
    // SAFETY: unmaps exactly the mapping made above.
    unsafe { libc::munmap(page, len) };
    let maps = maps?;
    Some(maps.lines().any(|line| {
        line.split_whitespace()
            .next()
            .and_then(|r| r.split_once('-'))
            .and_then(|(s, e)| {
                Some((
                    u64::from_str_radix(s, 16).ok()?,
                    u64::from_str_radix(e, 16).ok()?,
                ))
            })
            .is_some_and(|(s, e)| (s..e).contains(&addr))
    }))
}

/// The caller and its child at one moment.
#[derive(Debug, Clone)]
struct Look {
    caller_state: Option<char>,
    caller_call: Option<Syscall>,
    child_ppid: Option<i32>,
    child_state: Option<char>,
    child_call: Option<Syscall>,
    same_vm: Option<bool>,
    page_shows: Option<bool>,
}

/// Looks at the caller and its child once the caller's thread has gone to sleep in a system
/// call that `settled` accepts (or after [`wait_limit`], with whatever was seen last): the
/// caller may still be on its way into the call it will sleep in.
fn look(caller: Pid, child: Pid, settled: impl Fn(&Syscall) -> bool) -> Look {
    let start = Instant::now();
    let (caller_state, caller_call) = loop {
        let state = procfs::task_stat(caller, caller.as_raw())
            .ok()
            .map(|s| s.state);
        let call = procfs::thread_syscall(caller, caller.as_raw());
        let asleep =
            matches!(state, Some('S' | 'D')) && call.is_some_and(|c| c.nr >= 0 && settled(&c));
        if asleep || start.elapsed() > wait_limit() {
            break (state, call);
        }
        thread::sleep(Duration::from_millis(1));
    };
    let child_stat = procfs::stat(child).ok();
    Look {
        caller_state,
        caller_call,
        child_ppid: child_stat.as_ref().map(|s| s.ppid),
        child_state: child_stat.map(|s| s.state),
        child_call: procfs::syscall(child),
        same_vm: same_vm(caller, child),
        page_shows: fresh_page_shows_in(child),
    }
}

/// What the listener saw: at the child's first execve, and once the program blocked on stdin.
#[derive(Debug, Default)]
struct Held {
    child: Option<Pid>,
    at_exec: Option<Look>,
    after_exec: Option<Look>,
    /// Why the listener stopped early, if it did.
    trouble: Option<String>,
}

/// The listener's life: hold the first execve and look, let it go, look again when the program
/// reads its stdin, release it by writing to `go`, and let every later execve go on until `stop`.
fn listen(trap: ExecTrap, caller: Pid, go: OwnedFd, stop: OwnedFd) -> Held {
    let mut held = Held::default();
    let Some(first) = trap.next(wait_limit(), Some(&stop)) else {
        held.trouble = Some("no execve came from the child".into());
        return held;
    };
    let child = Pid::from_raw(first.pid as i32);
    held.child = Some(child);
    // Whatever the caller sleeps in while the child is held: vfork's wait, or (after a fork) waitpid.
    held.at_exec = Some(look(caller, child, |_| true));
    trap.go_on(first.id);
    let start = Instant::now();
    loop {
        if let Some(n) = trap.next(Duration::from_millis(5), Some(&stop)) {
            trap.go_on(n.id);
        }
        if procfs::blocked_read_fd(child) == Some(0) {
            // Once the program runs, the caller has left vfork: wait until it sleeps elsewhere.
            held.after_exec = Some(look(caller, child, |c| !is_vfork_wait(c)));
            break;
        }
        if procfs::state(child).is_none_or(|s| s == 'Z') {
            held.trouble = Some(format!(
                "pid {child} ended before the program read its stdin"
            ));
            break;
        }
        if start.elapsed() > wait_limit() {
            held.trouble = Some(format!(
                "the program in pid {child} never blocked reading its stdin (it is {})",
                doing(procfs::state(child), procfs::syscall(child))
            ));
            break;
        }
    }
    let _ = write(&go, b"go\n");
    drop(go);
    while let Some(n) = trap.next(wait_limit(), Some(&stop)) {
        trap.go_on(n.id);
    }
    held
}

fn wait_limit() -> Duration {
    oskata_harness::scaled(Duration::from_secs(5))
}

// ---------------------------------------------------------------------------------------------
// The tests.

#[test]
fn the_caller_is_suspended_in_vfork_until_the_exec() {
    isolated(|| {
        let me = body_pid().expect("inside isolated()");
        // The program reads one line from its stdin, a pipe only the test writes to.
        let (stdin_r, stdin_w) = pipe2(OFlag::O_CLOEXEC).expect("pipe2");
        dup2_stdin(&stdin_r).expect("dup2 onto stdin");
        drop(stdin_r);
        let (stop_r, stop_w) = pipe2(OFlag::O_CLOEXEC).expect("pipe2");
        let trap = ExecTrap::install().unwrap_or_else(|e| {
            panic!("oskata test: cannot install a seccomp filter with a listener (SECCOMP_RET_USER_NOTIF): {e}")
        });
        let listener = thread::spawn(move || listen(trap, me, stdin_w, stop_r));
        let args = ["-c", "read -r line; exit 3"];
        let what = call("sh", &args, &[]);
        let got = panic::catch_unwind(AssertUnwindSafe(|| run_watched("sh", &args, &[])));
        drop(stop_w);
        let held = listener.join().expect("the listener thread panicked");
        let ran = got
            .unwrap_or_else(|p| panic::resume_unwind(p))
            .unwrap_or_else(|e| panic!("{what} failed: {e}"));
        let (Some(child), Some(at)) = (held.child, held.at_exec.clone()) else {
            panic!(
                "{what} returned {:?}, but the test never saw the child call execve: {}",
                ran.status,
                held.trouble.unwrap_or_default()
            );
        };
        assert_eq!(
            at.child_ppid,
            Some(me.as_raw()),
            "the process that called execve, pid {child}, is not a child of the caller {me}: {at:?}"
        );
        let caller_waits = at.caller_call.as_ref().is_some_and(is_vfork_wait)
            && matches!(at.caller_state, Some('D' | 'S'));
        assert!(
            caller_waits,
            "while pid {child} sat at its execve (held there by the test before the new program was loaded, {}), \
             the caller's thread {me} was {}: it was not suspended in vfork. After fork the parent runs on at once; \
             after vfork the kernel keeps the calling thread asleep inside vfork until the child has exec'd or \
             exited. Start the child with libc::vfork",
            doing(at.child_state, at.child_call),
            doing(at.caller_state, at.caller_call)
        );
        let shares = at.page_shows.or(at.same_vm);
        if shares == Some(false) || at.same_vm == Some(false) {
            panic!(
                "while pid {child} sat at its execve, it did not share the caller's memory: a page the caller \
                 mapped right then {} in /proc/{child}/maps, and kcmp(KCMP_VM) said {:?} (true: one address \
                 space). A vfork child runs in the caller's address space until its exec; a forked one has a copy",
                if at.page_shows == Some(false) {
                    "did not show"
                } else {
                    "showed"
                },
                at.same_vm
            );
        }
        let Some(after) = held.after_exec else {
            panic!(
                "{what} returned {:?}; after the exec the test could not see the program wait: {}",
                ran.status,
                held.trouble.unwrap_or_default()
            );
        };
        assert!(
            after
                .caller_call
                .is_some_and(|c| c.nr == libc::SYS_wait4 || c.nr == libc::SYS_waitid),
            "once pid {child} had exec'd the program (which then read its stdin), the caller's thread should have \
             left vfork and be waiting for the child in waitpid; it was {}",
            doing(after.caller_state, after.caller_call)
        );
        assert!(
            after.page_shows != Some(true) && after.same_vm != Some(true),
            "after its exec, pid {child} still shares the caller's address space ({after:?}): exec gives the \
             child a new one"
        );
        assert!(
            ran.status == WaitStatus::Exited(child, 3),
            "{what} should return Exited({child}, 3), the program's own status; got {:?}",
            ran.status
        );
    });
}

#[rstest]
#[case("sh", &["-c", "exit 7"], 7)]
#[case("false", &[], 1)]
#[case("true", &[], 0)]
#[case("sh", &["-c", "exit 255"], 255)]
fn exit_status_comes_back(#[case] program: &str, #[case] args: &[&str], #[case] code: i32) {
    isolated(|| {
        let what = call(program, args, &[]);
        let ran = run_ok(program, args, &[]);
        expect_started(&what, program, ran.status);
        assert!(
            matches!(ran.status, WaitStatus::Exited(_, c) if c == code),
            "{what} should return Exited(<child pid>, {code}), the program's own exit status; got {:?}",
            ran.status
        );
    });
}

#[test]
fn a_death_by_signal_comes_back() {
    isolated(|| {
        let args = ["-c", "kill -USR1 $$"];
        let what = call("sh", &args, &[]);
        let ran = run_ok("sh", &args, &[]);
        expect_started(&what, "sh", ran.status);
        assert!(
            matches!(ran.status, WaitStatus::Signaled(_, Signal::SIGUSR1, _)),
            "{what} should return Signaled(<child pid>, SIGUSR1, ..): the shell killed itself with SIGUSR1, and \
             waitpid reports that as it is; got {:?}",
            ran.status
        );
    });
}

#[rstest]
#[case::not_on_path("oskata-no-such-program")]
#[case::no_such_path("/nonexistent/oskata/program")]
#[case::not_executable("not-executable")]
fn a_program_that_cannot_start_gives_127(#[case] program: &str) {
    isolated(|| {
        let path;
        let program = if program == "not-executable" {
            let file = scratch_dir().join(program);
            fs::write(&file, "#!/bin/sh\nexit 0\n").expect("write the script");
            fs::set_permissions(&file, fs::Permissions::from_mode(0o644)).expect("chmod 644");
            path = file.to_str().expect("utf-8 scratch path").to_owned();
            path.as_str()
        } else {
            program
        };
        let what = call(program, &[], &[]);
        let ran = run_ok(program, &[], &[]);
        assert!(
            matches!(ran.status, WaitStatus::Exited(_, 127)),
            "{program:?} cannot be started, so exec fails in the child; the child should then end with \
             _exit(127), as a shell does for \"command not found\", and {what} should return Exited(<child pid>, \
             127); got {:?}",
            ran.status
        );
    });
}

/// The fd the test's atexit handler writes to.
static MARK_FD: AtomicI32 = AtomicI32::new(-1);

/// An atexit handler of the caller: notes the pid it runs in.
extern "C" fn note_exit() {
    let fd = MARK_FD.load(Ordering::SeqCst);
    // SAFETY: getpid has no preconditions.
    let pid = unsafe { libc::getpid() };
    let mut buf = [0u8; 16];
    let text = {
        let mut n = pid as u32;
        let mut i = buf.len();
        loop {
            i -= 1;
            buf[i] = b'0' + (n % 10) as u8;
            n /= 10;
            if n == 0 {
                break;
            }
        }
        &buf[i..]
    };
    // SAFETY: write(2) of a buffer we own to an fd the test opened.
    unsafe { libc::write(fd, text.as_ptr().cast(), text.len()) };
}

/// Everything in the pipe right now, without waiting for more.
fn pending(fd: &OwnedFd) -> Vec<u8> {
    let flags = fcntl(fd, FcntlArg::F_GETFL).expect("F_GETFL");
    fcntl(
        fd,
        FcntlArg::F_SETFL(OFlag::from_bits_truncate(flags) | OFlag::O_NONBLOCK),
    )
    .expect("F_SETFL O_NONBLOCK");
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        match read(fd.as_fd(), &mut buf) {
            Ok(0) | Err(Errno::EAGAIN) => return got,
            Ok(n) => got.extend_from_slice(&buf[..n]),
            Err(Errno::EINTR) => {}
            Err(e) => panic!("reading a pipe failed: {e}"),
        }
    }
}

#[rstest]
#[case::not_on_path("oskata-no-such-program")]
#[case::no_such_path("/nonexistent/oskata/program")]
fn a_failed_exec_runs_none_of_the_callers_exit_work(#[case] program: &str) {
    isolated(|| {
        // The caller has an atexit handler, and text waiting in a fully buffered C stream.
        let (marks, mark_w) = pipe2(OFlag::O_CLOEXEC).expect("pipe2");
        MARK_FD.store(mark_w.into_raw_fd(), Ordering::SeqCst);
        // SAFETY: registers a plain extern "C" function with no captured state.
        assert_eq!(unsafe { libc::atexit(note_exit) }, 0, "atexit failed");
        let (text, text_w) = pipe2(OFlag::O_CLOEXEC).expect("pipe2");
        let unflushed = b"the caller's unflushed text\n";
        // SAFETY: fdopen takes over the fd; setvbuf asks for full buffering before any output;
        // fwrite copies `unflushed` (valid for its length) into the stream's buffer.
        let stream = unsafe {
            let stream = libc::fdopen(text_w.into_raw_fd(), c"w".as_ptr());
            assert!(!stream.is_null(), "fdopen failed");
            libc::setvbuf(stream, std::ptr::null_mut(), libc::_IOFBF, 4096);
            libc::fwrite(unflushed.as_ptr().cast(), 1, unflushed.len(), stream);
            stream
        };

        let what = call(program, &[], &[]);
        let ran = run_ok(program, &[], &[]);
        let ran_in = pending(&marks);
        let written = pending(&text);
        if !ran_in.is_empty() || !written.is_empty() {
            panic!(
                "{what} returned {:?}, and the caller's exit work had been done: its atexit handler {}; its C \
                 stream's unflushed text {}. The child left by exit(3) instead of _exit(2). exit runs the atexit \
                 handlers and flushes every stdio stream, and a vfork child does it in the caller's memory: the \
                 caller's handlers run in the child and the caller's buffers are emptied. After a failed exec, end \
                 the child with libc::_exit(127)",
                ran.status,
                if ran_in.is_empty() {
                    "did not run".to_owned()
                } else {
                    format!("ran in pid {}", String::from_utf8_lossy(&ran_in))
                },
                if written.is_empty() {
                    "stayed in its buffer".to_owned()
                } else {
                    "had been written to its pipe".to_owned()
                }
            );
        }
        assert!(
            matches!(ran.status, WaitStatus::Exited(_, 127)),
            "{what} should return Exited(<child pid>, 127) when exec fails; got {:?}",
            ran.status
        );
        // SAFETY: flushes and closes the stream made above; nothing uses it afterwards.
        unsafe { libc::fclose(stream) };
        assert_eq!(
            pending(&text),
            unflushed,
            "the caller's own fclose should write its buffered text exactly once"
        );
    });
}

#[test]
fn arguments_arrive_intact() {
    isolated(|| {
        let args = [
            "-c",
            r#"printf '[%s]' "$0" "$@""#,
            "zero",
            "one",
            "two words",
            "",
            "*",
        ];
        let what = call("sh", &args, &[]);
        let ran = run_ok("sh", &args, &[]);
        expect_started(&what, "sh", ran.status);
        let out = String::from_utf8_lossy(&ran.out);
        assert_eq!(
            out, "[zero][one][two words][][*]",
            "{what} should print [zero][one][two words][][*] (sh -c gives the words after the script to it as \
             $0, $1, ...); it printed {out:?} and ended {:?}. The new program's argv must be exactly [program, \
             args...], argv[0] first, ending with a null pointer",
            ran.status
        );
    });
}

#[test]
fn the_program_gets_the_environment_and_the_caller_keeps_its_own() {
    isolated(|| {
        // SAFETY: the test process has a single thread here; nothing reads the environment meanwhile.
        unsafe {
            std::env::set_var("OSKATA_KEPT", "kept from the caller");
            std::env::set_var("OSKATA_REPLACED", "the caller's value");
            std::env::remove_var("OSKATA_NEW");
        }
        let env = [
            ("OSKATA_REPLACED", "the program's value"),
            ("OSKATA_NEW", "new = with spaces"),
        ];
        let args = [
            "-c",
            r#"printf '[%s][%s][%s]' "$OSKATA_KEPT" "$OSKATA_REPLACED" "$OSKATA_NEW""#,
        ];
        let what = call("sh", &args, &env);
        let ran = run_ok("sh", &args, &env);
        expect_started(&what, "sh", ran.status);
        let now = |name: &str| std::env::var(name).ok();
        let changed: Vec<String> = [
            ("OSKATA_KEPT", Some("kept from the caller")),
            ("OSKATA_REPLACED", Some("the caller's value")),
            ("OSKATA_NEW", None),
        ]
        .iter()
        .filter(|(name, before)| now(name).as_deref() != *before)
        .map(|(name, before)| format!("{name} was {before:?} and is now {:?}", now(name)))
        .collect();
        assert!(
            changed.is_empty(),
            "after {what} returned, the vfork child had changed the caller's environment: {}. The child runs in \
             the caller's memory, so setenv (std::env::set_var) in the child sets the variable in the caller. \
             Build the program's environment before vfork, as an envp array of \"NAME=value\" C strings (the \
             caller's variables with env's laid over them), and hand it to execvpe",
            changed.join("; ")
        );
        let out = String::from_utf8_lossy(&ran.out);
        assert_eq!(
            out, "[kept from the caller][the program's value][new = with spaces]",
            "{what} makes the program print three variables of its environment; it printed {out:?}. The program \
             gets the caller's environment (OSKATA_KEPT) with each of env's variables set in it, replacing the \
             caller's own (OSKATA_REPLACED) or added (OSKATA_NEW)"
        );
        assert!(
            matches!(ran.status, WaitStatus::Exited(_, 0)),
            "{what} should return Exited(<child pid>, 0); got {:?}",
            ran.status
        );
    });
}

#[test]
fn the_child_allocates_nothing_even_with_many_strings() {
    isolated(|| {
        let words: Vec<String> = (0..200).map(|i| format!("argument-{i}")).collect();
        let mut args: Vec<&str> = vec!["-c", "exit 0", "sh"];
        args.extend(words.iter().map(String::as_str));
        let names: Vec<(String, String)> = (0..50)
            .map(|i| (format!("OSKATA_V{i}"), format!("value {i}")))
            .collect();
        let env: Vec<(&str, &str)> = names
            .iter()
            .map(|(n, v)| (n.as_str(), v.as_str()))
            .collect();
        for program in ["sh", "oskata-no-such-program"] {
            let what = format!(
                "run({program:?}, <{} arguments>, <{} variables>)",
                args.len(),
                env.len()
            );
            let ran = run_ok(program, &args, &env);
            let code = if program == "sh" { 0 } else { 127 };
            assert!(
                matches!(ran.status, WaitStatus::Exited(_, c) if c == code),
                "{what} should return Exited(<child pid>, {code}); got {:?}",
                ran.status
            );
        }
    });
}

/// The arguments of one call of `run`.
type Call<'a> = (&'a str, &'a [&'a str], &'a [(&'a str, &'a str)]);

#[test]
fn bad_strings_are_einval_and_start_nothing() {
    isolated(|| {
        let me = body_pid().expect("inside isolated()");
        let cases: [Call<'_>; 5] = [
            ("sh", &["-c", "exit 0", "a\0b"], &[]),
            ("s\0h", &[], &[]),
            ("sh", &["-c", "exit 0"], &[("OSKATA_X", "a\0b")]),
            ("sh", &["-c", "exit 0"], &[("OSKATA=X", "v")]),
            ("sh", &["-c", "exit 0"], &[("", "v")]),
        ];
        for (program, args, env) in cases {
            let got = student(|| run(program, args, env));
            let what = call(program, args, env);
            assert_eq!(
                got,
                Err(Errno::EINVAL),
                "{what} should return Err(EINVAL): a string with a NUL byte cannot become a C string, and a \
                 variable's name is neither empty nor holds a '='"
            );
            assert!(
                procfs::children(me).is_empty(),
                "{what} returned an error but left a child behind: {:?}",
                procfs::children(me)
            );
        }
    });
}
