//! processes/sigchld_reaper: a SIGCHLD handler that reaps every exited child with a WNOHANG
//! loop and does only async-signal-safe work; SIG_IGN makes the kernel reap.
//!
//! The coalescing is made certain, not hoped for: the test blocks SIGCHLD, lets all its
//! children exit, waits until `/proc` shows every one of them as a zombie, and only then
//! unblocks. One SIGCHLD is pending however many children exited, so the handler runs exactly
//! once, inside the `sigprocmask` call that unblocks it. While it runs, the test watches:
//! - allocations, through a counting global allocator armed only around that call;
//! - output, with fds 1 and 2 pointed at a scratch file;
//! - errno, set to a marker before the call and read after it.
//!
//! A handler that takes a `Mutex` without allocating cannot be caught deterministically (the
//! signal would have to land while the interrupted code holds the lock); the usual form,
//! a `Mutex<Vec<_>>`, allocates and is caught.
//!
//! The contract, clause by clause, and the test that checks each:
//! - `install_reaper` installs a handler for SIGCHLD (`SigCgt`) and changes nothing else of the
//!   caller's signal state, its mask (`SigBlk`) included: every test, through `install`;
//! - with `SA_NOCLDSTOP`: a child that stops leaves no SIGCHLD pending
//!   (`a_child_that_stops_sends_no_sigchld`);
//! - with `SA_RESTART`: a read the signal interrupts carries on
//!   (`interrupted_read_is_restarted`);
//! - one run reaps every exited child, however many exits one signal stands for
//!   (`reaps_children_that_exit_together`), any child, also one in another process group, and
//!   only exited ones: a stopped child keeps its stop to report and is not counted
//!   (`the_handler_reaps_exited_children_only`);
//! - it never blocks, and leaves running children alone (`handler_never_blocks`);
//! - no printing, no allocation, errno kept (`handler_does_only_async_signal_safe_work`);
//! - `reaped_count` is the number reaped (every test that reaps);
//! - `auto_reap` leaves no zombie, no status to collect, and the rest of the caller's signal
//!   state as it was (`auto_reap_leaves_no_zombies`).

// The exercise under test: your stub (by default), the reference solution (`--features
// solutions`), or a shipped mistake that `cargo grade --mistakes` copies into target/.
#[cfg(not(any(feature = "solutions", feature = "mistake")))]
#[path = "../../exercises/processes/sigchld_reaper.rs"]
#[allow(dead_code)] // a stub does not use all of its API yet
mod sigchld_reaper;
#[cfg(all(feature = "solutions", not(feature = "mistake")))]
#[path = "../../solutions/processes/sigchld_reaper.rs"]
mod sigchld_reaper;
#[cfg(feature = "mistake")]
#[path = "../../target/oskata-mistake/processes/sigchld_reaper.rs"]
#[rustfmt::skip] // the copy exists only while the proof runs
mod sigchld_reaper;
use sigchld_reaper::*;

use std::alloc::{GlobalAlloc, Layout, System};
use std::fs::{self, File};
use std::io::{Read, Write};
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use nix::errno::Errno;
use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
use nix::sys::signal::{SigSet, SigmaskHow, Signal, kill, sigprocmask};
use nix::sys::wait::{Id, WaitPidFlag, WaitStatus, waitid, waitpid};
use nix::unistd::{
    ForkResult, Pid, dup, dup2_stderr, dup2_stdout, fork, getpid, pipe, read, write,
};
use oskata_harness::poll as wait_for;
use oskata_harness::{body_pid, isolated, procfs, scaled, scratch_dir, student};
use rstest::rstest;

/// The global allocator of this test binary: the system allocator, counting calls while armed.
struct Counting;

/// True only around the `sigprocmask` call during which the handler runs.
static ARMED: AtomicBool = AtomicBool::new(false);
/// Allocator calls made while armed.
static ALLOCS: AtomicUsize = AtomicUsize::new(0);

impl Counting {
    fn note(&self) {
        if ARMED.load(Ordering::SeqCst) {
            ALLOCS.fetch_add(1, Ordering::SeqCst);
        }
    }
}

// SAFETY: every method forwards to the system allocator with the caller's arguments unchanged;
// counting touches only atomics.
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
        self.note();
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

/// The errno value the test leaves in place before the handler runs.
const ERRNO_MARK: i32 = libc::E2BIG;

fn sigchld() -> SigSet {
    let mut set = SigSet::empty();
    set.add(Signal::SIGCHLD);
    set
}

fn block_sigchld() {
    sigprocmask(SigmaskHow::SIG_BLOCK, Some(&sigchld()), None).expect("block SIGCHLD");
}

/// Unblocks SIGCHLD: a pending one is delivered, and the handler has run, before this returns.
fn unblock_sigchld() {
    sigprocmask(SigmaskHow::SIG_UNBLOCK, Some(&sigchld()), None).expect("unblock SIGCHLD");
}

/// The signal state of the test process that a call must leave alone, from
/// `/proc/<pid>/status`: the mask (`SigBlk`), and which signals are caught or ignored
/// (`SigCgt`, `SigIgn`) apart from SIGCHLD itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct SignalState {
    blocked: u64,
    caught: u64,
    ignored: u64,
}

/// SIGCHLD's bit in a `/proc/<pid>/status` signal set.
const SIGCHLD_BIT: u64 = 1 << (libc::SIGCHLD - 1);

fn signal_state() -> SignalState {
    let me = getpid();
    let status = procfs::status(me).expect("read /proc/self/status");
    let set = |key| status.signal_mask(key).unwrap_or(0);
    SignalState {
        blocked: set("SigBlk"),
        caught: set("SigCgt"),
        ignored: set("SigIgn"),
    }
}

/// Fails when `call` changed the test process's mask, or the disposition of any signal but
/// SIGCHLD, between `before` and `after`.
fn expect_signal_state_kept(call: &str, before: SignalState, after: SignalState) {
    let me = getpid();
    if after.blocked != before.blocked {
        let which = if (after.blocked ^ before.blocked) & SIGCHLD_BIT != 0 {
            "SIGCHLD itself"
        } else {
            "other signals"
        };
        panic!(
            "{call} changed the caller's signal mask: SigBlk in /proc/{me}/status was {:x} before and {:x} after \
             ({which}). It must only set SIGCHLD's action: a signal left blocked is never delivered, so the handler \
             would never run (sigaction(2) installs a handler without touching the mask; if you block SIGCHLD \
             around it, restore the old mask).",
            before.blocked, after.blocked
        );
    }
    let others = !SIGCHLD_BIT;
    if (after.caught ^ before.caught) & others != 0
        || (after.ignored ^ before.ignored) & others != 0
    {
        panic!(
            "{call} changed the action of signals other than SIGCHLD: in /proc/{me}/status SigCgt went from {:x} \
             to {:x} and SigIgn from {:x} to {:x}. Only SIGCHLD's action is yours to set.",
            before.caught, after.caught, before.ignored, after.ignored
        );
    }
}

/// Installs the student's handler and checks in `/proc` that SIGCHLD is now caught, and that
/// nothing else of the caller's signal state changed.
fn install() {
    let before = signal_state();
    student(install_reaper).unwrap_or_else(|e| panic!("install_reaper failed: {e}"));
    let me = getpid();
    let after = signal_state();
    assert!(
        after.caught & SIGCHLD_BIT != 0,
        "install_reaper did not install a handler for SIGCHLD: its bit is clear in SigCgt of /proc/{me}/status \
         (SigCgt {:x}, SigIgn {:x}). Install a handler function with sigaction.",
        after.caught,
        after.ignored
    );
    expect_signal_state_kept("install_reaper", before, after);
}

/// Forks `n` children that exit at once, with SIGCHLD blocked; returns once `/proc` shows every
/// one of them as a zombie. SIGCHLD stays blocked, so exactly one is pending.
fn exit_together(n: usize) -> Vec<Pid> {
    block_sigchld();
    let pids: Vec<Pid> = (0..n)
        // SAFETY: the test process is single-threaded; each child only calls _exit.
        .map(|i| match unsafe { fork() }.expect("fork") {
            // SAFETY: _exit ends the child at once.
            ForkResult::Child => unsafe { libc::_exit((i % 256) as i32) },
            ForkResult::Parent { child } => child,
        })
        .collect();
    for &pid in &pids {
        let state = wait_for::until(
            Duration::from_secs(5),
            &format!("child {pid} to exit"),
            || match procfs::state(pid) {
                Some('Z') => Some(Some('Z')),
                None => Some(None),
                Some(_) => None,
            },
        );
        assert!(
            state.is_some(),
            "pid {pid} vanished while SIGCHLD was blocked, before any handler could run: something other than a \
             handler reaped it (SIGCHLD set to SIG_IGN makes the kernel reap)."
        );
    }
    pids
}

/// Pids as plain numbers, at most ten of them.
fn pid_list(pids: &[Pid]) -> String {
    let shown: Vec<String> = pids.iter().take(10).map(Pid::to_string).collect();
    match pids.len() {
        0..=10 => shown.join(", "),
        n => format!("{} and {} more", shown.join(", "), n - 10),
    }
}

/// Checks that every child in `pids` is gone and that the handler counted `total`.
fn assert_all_reaped(pids: &[Pid], total: usize) {
    let left: Vec<Pid> = pids
        .iter()
        .copied()
        .filter(|&p| procfs::state(p).is_some())
        .collect();
    if !left.is_empty() {
        panic!(
            "{} of the {} children are still zombies (state Z) after the SIGCHLD handler ran: pids {}. They \
             all exited while SIGCHLD was blocked, and standard signals do not queue: a pending signal is one bit, \
             so {} exits left one SIGCHLD and the handler ran once. One signal means \"at least one child \
             exited\": reap in a loop, waitpid(-1, WNOHANG) until it returns 0 or ECHILD, not one waitpid per \
             signal.",
            left.len(),
            pids.len(),
            pid_list(&left),
            pids.len()
        );
    }
    let counted = student(reaped_count);
    assert_eq!(
        counted, total,
        "the handler reaped {total} children (they are gone from /proc), but reaped_count() says {counted}"
    );
}

#[rstest]
#[case(1)]
#[case(8)]
#[case(50)]
fn reaps_children_that_exit_together(#[case] n: usize) {
    isolated(|| {
        install();
        let pids = exit_together(n);
        unblock_sigchld();
        assert_all_reaped(&pids, n);
    });
}

/// Forks a child that sleeps in pause(2) until a signal ends it, and stops it with SIGSTOP.
/// Returns once the kernel has finished stopping it: `/proc` shows it stopped (state T), and
/// a read of its `/proc/<pid>/syscall` has returned, which the kernel makes wait until the
/// task is off the CPU (`wait_task_inactive`), so whatever its stop sends its parent
/// (SIGCHLD, unless the parent's action has SA_NOCLDSTOP) has been sent.
fn stopped_child() -> Pid {
    // SAFETY: the test process is single-threaded; the child only sleeps in pause(2) until a
    // signal stops or kills it.
    let child = match unsafe { fork() }.expect("fork") {
        ForkResult::Child => loop {
            // SAFETY: pause only sleeps until a signal arrives.
            unsafe { libc::pause() };
        },
        ForkResult::Parent { child } => child,
    };
    kill(child, Signal::SIGSTOP).expect("SIGSTOP to the child");
    wait_for::until(
        Duration::from_secs(5),
        &format!("pid {child} to stop (state T) after SIGSTOP"),
        || (procfs::state(child) == Some('T')).then_some(()),
    );
    let _ = procfs::syscall(child);
    child
}

/// Whether SIGCHLD is pending for the test process (`SigPnd` or `ShdPnd` in its status).
fn sigchld_pending() -> (bool, String) {
    let me = getpid();
    let status = procfs::status(me).expect("read /proc/self/status");
    let own = status.signal_mask("SigPnd").unwrap_or(0);
    let shared = status.signal_mask("ShdPnd").unwrap_or(0);
    (
        (own | shared) & SIGCHLD_BIT != 0,
        format!("SigPnd {own:x}, ShdPnd {shared:x} in /proc/{me}/status"),
    )
}

/// With SA_NOCLDSTOP a child that stops sends no SIGCHLD at all: seen in the kernel's list of
/// pending signals of the test process, which keeps SIGCHLD blocked while the child stops.
#[test]
fn a_child_that_stops_sends_no_sigchld() {
    isolated(|| {
        install();
        block_sigchld();
        let child = stopped_child();
        let (pending, seen) = sigchld_pending();
        // The test reaps this child itself, before any handler runs.
        kill(child, Signal::SIGKILL).expect("SIGKILL to the stopped child");
        waitpid(child, None).expect("waitpid on the killed child");
        unblock_sigchld();
        if pending {
            panic!(
                "pid {child}, a child of the test process, only stopped (SIGSTOP, state T), and yet SIGCHLD became \
                 pending for its parent ({seen}): the handler was installed without SA_NOCLDSTOP. Without that flag \
                 the kernel signals the parent each time a child stops or continues too, and the handler runs for \
                 children that have not exited. Pass SA_RESTART | SA_NOCLDSTOP to sigaction."
            );
        }
    });
}

/// The handler's loop reaps children that exited, whatever their process group, and leaves
/// alone a child that only stopped (it is not reaped, and its stop is still there to be
/// reported): bystanders that a wait on the wrong set of children, or for the wrong events,
/// would take.
#[test]
fn the_handler_reaps_exited_children_only() {
    isolated(|| {
        install();
        block_sigchld();
        let stopped = stopped_child();
        // SAFETY: the test process is single-threaded; the child only calls setpgid and _exit.
        let loner = match unsafe { fork() }.expect("fork") {
            ForkResult::Child => {
                // SAFETY: setpgid and _exit are plain system calls.
                unsafe {
                    libc::setpgid(0, 0);
                    libc::_exit(3)
                }
            }
            ForkResult::Parent { child } => child,
        };
        wait_for::until(
            Duration::from_secs(5),
            &format!("pid {loner} to exit"),
            || (procfs::state(loner) == Some('Z')).then_some(()),
        );
        let loner_group = procfs::stat(loner).map_or(0, |s| s.pgrp);
        let mut exited = exit_together(3);
        unblock_sigchld();
        let me = getpid();
        let stop = waitid(
            Id::Pid(stopped),
            WaitPidFlag::WSTOPPED | WaitPidFlag::WNOHANG | WaitPidFlag::WNOWAIT,
        );
        let still_stopped = procfs::state(stopped) == Some('T');
        if !still_stopped || !matches!(stop, Ok(WaitStatus::Stopped(..))) {
            let _ = kill(stopped, Signal::SIGKILL);
            panic!(
                "pid {stopped}, a child that was stopped (SIGSTOP), not exited, when the handler ran, {}: the \
                 handler must reap only children that have exited. A stopped child is still alive; waitpid \
                 with WUNTRACED (or waitid with WSTOPPED) reports its stop as a state change, but it is not a \
                 child reaped, and counting it makes reaped_count wrong. Call waitpid(-1, WNOHANG) with no other \
                 flag.",
                if still_stopped {
                    format!(
                        "no longer has its stop to report (waitid(WSTOPPED | WNOWAIT) on it gives {stop:?}): the \
                         handler collected it"
                    )
                } else {
                    format!("is now in state {:?}", procfs::state(stopped))
                }
            );
        }
        if procfs::state(loner).is_some() {
            let _ = kill(stopped, Signal::SIGKILL);
            panic!(
                "pid {loner} exited while SIGCHLD was blocked and is still a zombie (state Z) after the handler ran, \
                 while children in the caller's own process group were reaped: before it exited it moved to a \
                 process group of its own (pgid {loner_group}, the test process's is {}). waitpid(0, ..) waits only \
                 for children in the caller's process group; the handler must reap any child, waitpid(-1, WNOHANG).",
                procfs::stat(me).map_or(0, |s| s.pgrp)
            );
        }
        exited.push(loner);
        assert_all_reaped(&exited, 4);
        // The stopped child ends now, and the handler reaps it like any other.
        kill(stopped, Signal::SIGKILL).expect("SIGKILL to the stopped child");
        wait_for::until(
            Duration::from_secs(5),
            &format!("the handler to reap pid {stopped} after SIGKILL"),
            || procfs::state(stopped).is_none().then_some(()),
        );
        assert_eq!(
            student(reaped_count),
            5,
            "reaped_count() after five children exited"
        );
    });
}

/// What the test saw while the handler ran.
struct Watched {
    output: String,
    allocs: usize,
    errno: i32,
}

/// Unblocks SIGCHLD (so the handler runs once, inside this call) with stdout and stderr
/// pointed at a scratch file, allocations counted and errno set to [`ERRNO_MARK`].
fn deliver_watched() -> Watched {
    let _ = std::io::stdout().flush();
    let _ = std::io::stderr().flush();
    let path = scratch_dir().join("handler-output");
    let sink = File::create(&path).expect("create the output file");
    let saved_out = dup(std::io::stdout().as_fd()).expect("dup stdout");
    let saved_err = dup(std::io::stderr().as_fd()).expect("dup stderr");
    dup2_stdout(&sink).expect("point stdout at the file");
    dup2_stderr(&sink).expect("point stderr at the file");
    let set = sigchld();

    ALLOCS.store(0, Ordering::SeqCst);
    Errno::set_raw(ERRNO_MARK);
    ARMED.store(true, Ordering::SeqCst);
    let unblocked = sigprocmask(SigmaskHow::SIG_UNBLOCK, Some(&set), None);
    ARMED.store(false, Ordering::SeqCst);
    let errno = Errno::last_raw();
    let allocs = ALLOCS.load(Ordering::SeqCst);

    // Whatever the handler left in a stream's buffer goes to the file too.
    let _ = std::io::stdout().flush();
    let _ = std::io::stderr().flush();
    dup2_stdout(&saved_out).expect("restore stdout");
    dup2_stderr(&saved_err).expect("restore stderr");
    unblocked.expect("unblock SIGCHLD");
    Watched {
        output: fs::read_to_string(&path).unwrap_or_default(),
        allocs,
        errno,
    }
}

#[test]
fn handler_does_only_async_signal_safe_work() {
    isolated(|| {
        install();
        let pids = exit_together(50);
        let seen = deliver_watched();
        if !seen.output.is_empty() {
            let shown: String = seen.output.chars().take(200).collect();
            panic!(
                "the SIGCHLD handler printed while it ran: {} bytes went to stdout or stderr ({shown:?}). println! \
                 and eprintln! are not async-signal-safe: they take the stream's lock, and the handler may have \
                 interrupted code that holds that very lock. Count in an atomic (or write(2) one byte to a pipe) \
                 and print from the main program.",
                seen.output.len()
            );
        }
        if seen.allocs > 0 {
            panic!(
                "the SIGCHLD handler allocated or freed memory while it ran ({} calls to the allocator: Vec::push, \
                 format!, Box, String...). malloc is not async-signal-safe: the handler may interrupt the program \
                 inside malloc, holding the allocator's lock, and then deadlock or corrupt the heap. A Mutex is no \
                 better: if the interrupted code holds it, the handler waits forever for a lock its own thread \
                 holds. Keep the handler to waitpid and atomics.",
                seen.allocs
            );
        }
        if seen.errno != ERRNO_MARK {
            panic!(
                "errno was {} before SIGCHLD was delivered and {} after: the handler changed errno (waitpid sets it \
                 to ECHILD once no child is left). Code interrupted right after a failed call would then read the \
                 handler's errno instead of its own: save errno when the handler starts and restore it before it \
                 returns.",
                Errno::from_raw(ERRNO_MARK),
                Errno::from_raw(seen.errno)
            );
        }
        assert_all_reaped(&pids, 50);
    });
}

/// The file the keeper writes when it saw its parent wait for it: "waited-on by pid N".
const WAITED_ON: &str = "keeper-waited-on";

/// The pid the keeper recorded as waiting for it, if it saw one.
fn waiter() -> Option<Pid> {
    wait_for::recorded_waiter(&scratch_dir().join(WAITED_ON))
}

#[test]
fn handler_never_blocks() {
    isolated(|| {
        install();
        // A child of the test that keeps running until the test closes its pipe, or until it
        // sees its parent (the test process, in the handler) blocked waiting for it. It records
        // the latter, and exits so that a blocking handler returns and can be named.
        let (read_end, write_end): (OwnedFd, OwnedFd) = pipe().expect("pipe");
        // SAFETY: the test process is single-threaded; the child only polls a pipe and /proc,
        // writes a file and exits.
        let keeper = match unsafe { fork() }.expect("fork") {
            ForkResult::Child => {
                drop(write_end);
                let released = || {
                    let mut fds = [PollFd::new(read_end.as_fd(), PollFlags::POLLIN)];
                    poll(&mut fds, PollTimeout::ZERO).is_ok_and(|n| n > 0)
                };
                wait_for::hold_or_record(&scratch_dir().join(WAITED_ON), released);
                // SAFETY: _exit ends the child at once.
                unsafe { libc::_exit(0) }
            }
            ForkResult::Parent { child } => child,
        };
        drop(read_end);
        let pids = exit_together(5);
        let start = Instant::now();
        unblock_sigchld();
        let took = start.elapsed();
        if let Some(waiter) = waiter() {
            panic!(
                "the SIGCHLD handler blocked: pid {keeper}, a child that was still running when the signal came, \
                 saw its parent, the test process {waiter}, asleep in waitpid for it (/proc/{waiter}/syscall) while \
                 the handler ran, and exited so that the test could go on; unblocking SIGCHLD returned after \
                 {took:.1?}. A handler must never block (the program it interrupted stands still meanwhile): use \
                 waitpid(-1, WNOHANG), which returns 0 at once when every child left is still running."
            );
        }
        if procfs::state(keeper).is_none() {
            panic!(
                "pid {keeper}, a child that was still running when SIGCHLD came, is gone after the handler ran \
                 (unblocking SIGCHLD took {took:.1?}), though it runs until the test lets it go: the handler must \
                 reap only children that have exited, with waitpid(-1, WNOHANG), and never block or end the others."
            );
        }
        assert_all_reaped(&pids, 5);
        // Let the last child go (before anything could wait for it): the handler reaps it when
        // it exits.
        drop(write_end);
        wait_for::until(
            Duration::from_secs(5),
            &format!("the handler to reap pid {keeper} after it exited"),
            || procfs::state(keeper).is_none().then_some(()),
        );
        assert_eq!(
            student(reaped_count),
            6,
            "reaped_count() after six children"
        );
    });
}

#[test]
fn interrupted_read_is_restarted() {
    isolated(|| {
        install();
        let me = getpid();
        let (data_r, data_w): (OwnedFd, OwnedFd) = pipe().expect("pipe");
        let (pid_r, pid_w): (OwnedFd, OwnedFd) = pipe().expect("pipe");
        let data_fd = data_r.as_raw_fd();
        // How long a child waits for its event before it acts anyway (the test then fails on
        // what it sees, instead of hanging).
        let limit = scaled(Duration::from_secs(5));
        // The writer: learns the other child's pid, waits until that child is gone (reaped by
        // the handler, which ran during the test's read), then sends one byte.
        // SAFETY: the test process is single-threaded; the children only read /proc and pipes,
        // write a pipe and exit.
        let writer = match unsafe { fork() }.expect("fork") {
            ForkResult::Child => {
                drop(pid_w);
                let mut raw = [0u8; 4];
                let _ = File::from(pid_r).read_exact(&mut raw);
                let other = Pid::from_raw(i32::from_ne_bytes(raw));
                let start = Instant::now();
                while procfs::state(other).is_some() && start.elapsed() < limit {
                    std::thread::sleep(Duration::from_millis(1));
                }
                let _ = write(&data_w, b"!");
                // SAFETY: _exit ends the child at once.
                unsafe { libc::_exit(0) }
            }
            ForkResult::Parent { child } => child,
        };
        // The other child: exits once the test is asleep in read(2) on the data pipe, so that
        // SIGCHLD lands there.
        // SAFETY: as above.
        let exiter = match unsafe { fork() }.expect("fork") {
            ForkResult::Child => {
                let start = Instant::now();
                while procfs::blocked_read_fd(me) != Some(data_fd) && start.elapsed() < limit {
                    std::thread::sleep(Duration::from_micros(200));
                }
                // SAFETY: _exit ends the child at once.
                unsafe { libc::_exit(0) }
            }
            ForkResult::Parent { child } => child,
        };
        write(&pid_w, &exiter.as_raw().to_ne_bytes()).expect("send the pid");
        drop((pid_r, pid_w, data_w));
        let mut byte = [0u8; 1];
        let got = read(&data_r, &mut byte);
        if got == Err(Errno::EINTR) {
            panic!(
                "the test process was asleep in read(2) when SIGCHLD arrived (pid {exiter} exited), and after the \
                 handler ran the read failed with EINTR instead of carrying on. Install the handler with \
                 SA_RESTART, so that system calls it interrupts are restarted (signal(7), \"Interruption of system \
                 calls\"); otherwise every blocking call in the program needs a retry loop."
            );
        }
        assert_eq!(got, Ok(1), "read(2) of the writer's byte");
        for child in [exiter, writer] {
            wait_for::until(
                Duration::from_secs(5),
                &format!("the handler to reap pid {child}"),
                || procfs::state(child).is_none().then_some(()),
            );
        }
        assert_eq!(
            student(reaped_count),
            2,
            "reaped_count() after two children"
        );
    });
}

#[test]
fn auto_reap_leaves_no_zombies() {
    isolated(|| {
        let before = signal_state();
        student(auto_reap).unwrap_or_else(|e| panic!("auto_reap failed: {e}"));
        expect_signal_state_kept("auto_reap", before, signal_state());
        let pids: Vec<Pid> = (0..50)
            // SAFETY: the test process is single-threaded; each child only calls _exit.
            .map(|i| match unsafe { fork() }.expect("fork") {
                // SAFETY: _exit ends the child at once.
                ForkResult::Child => unsafe { libc::_exit(i) },
                ForkResult::Parent { child } => child,
            })
            .collect();
        // Each child ends either gone (reaped by the kernel) or a zombie (reaped by nobody).
        let zombies: Vec<Pid> =
            wait_for::until(Duration::from_secs(5), "the 50 children to exit", || {
                let states: Vec<Option<char>> = pids.iter().map(|&p| procfs::state(p)).collect();
                states
                    .iter()
                    .all(|s| matches!(s, None | Some('Z')))
                    .then(|| {
                        pids.iter()
                            .zip(&states)
                            .filter(|(_, s)| s.is_some())
                            .map(|(p, _)| *p)
                            .collect()
                    })
            });
        if !zombies.is_empty() {
            panic!(
                "{} of 50 children became zombies (state Z) after auto_reap(): pids {}. The kernel reaps \
                 children by itself only when SIGCHLD is explicitly set to SIG_IGN, or its action has the \
                 SA_NOCLDWAIT flag. SIGCHLD's default action, SIG_DFL, is also to ignore the signal, but with it \
                 children still become zombies.",
                zombies.len(),
                pid_list(&zombies)
            );
        }
        let me = body_pid().expect("inside isolated()");
        assert_eq!(
            waitpid(None, Some(WaitPidFlag::WNOHANG)),
            Err(Errno::ECHILD),
            "after auto_reap() the kernel reaped every child of {me} itself: waitpid(-1) should find none"
        );
    });
}
