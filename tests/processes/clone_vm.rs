//! processes/clone_vm: with CLONE_VM the child's store lands in the caller's own memory (and
//! kcmp says they share one address space); without it the caller's variable is untouched.
//! Either way the child is an ordinary child process with SIGCHLD as its exit signal.
//!
//! The contract, clause by clause, and the test that checks each:
//! - the exit signal is SIGCHLD (field 38 of the child's stat): every test, through `checked`;
//! - the child waits in read(2) for the go-ahead and has stored nothing yet when
//!   `while_child_waits` runs (the caller's variable, or the child's own copy read from
//!   `/proc/<child>/mem`): every test, through `checked`, which first waits for the kernel to
//!   show the child asleep in read(2), so a store made too early is seen every time;
//! - no sharing flag but CLONE_VM, and that one only when asked: the child's fd table, umask
//!   and signal handlers are its own (a change made in the caller does not show in the
//!   child's `/proc`), every test through `checked`; its thread group is its own (Tgid,
//!   `the_child_is_an_ordinary_child_process`);
//! - with CLONE_VM the store lands in the caller's variable, and kcmp agrees
//!   (`with_clone_vm_the_parent_sees_the_write`); without it the caller's variable is
//!   untouched (`without_clone_vm_the_parent_keeps_its_value`);
//! - the child exits 0 and is reaped; `parent_sees` is what the caller reads afterwards
//!   (`the_child_is_an_ordinary_child_process`, and the two above);
//! - the caller is left as it was: a child it had before (an unreaped zombie) not collected,
//!   its fd table unchanged (`the_caller_is_left_as_it_was`).

// The exercise under test: your stub (by default), the reference solution (`--features
// solutions`), or a shipped mistake that `cargo grade --mistakes` copies into target/.
#[cfg(not(any(feature = "solutions", feature = "mistake")))]
#[path = "../../exercises/processes/clone_vm.rs"]
#[allow(dead_code)] // a stub does not use all of its API yet
mod clone_vm;
#[cfg(all(feature = "solutions", not(feature = "mistake")))]
#[path = "../../solutions/processes/clone_vm.rs"]
mod clone_vm;
#[cfg(feature = "mistake")]
#[path = "../../target/oskata-mistake/processes/clone_vm.rs"]
#[rustfmt::skip] // the copy exists only while the proof runs
mod clone_vm;
use clone_vm::*;

use std::fs::{self, File};
use std::io;
use std::os::fd::AsRawFd;
use std::os::unix::fs::FileExt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use nix::sys::signal::{SaFlags, SigAction, SigHandler, SigSet, Signal, sigaction};
use nix::sys::stat::{Mode, umask};
use nix::sys::wait::{WaitPidFlag, WaitStatus, waitpid};
use nix::unistd::{ForkResult, Pid, fork, getpid};
use oskata_harness::{body_pid, isolated, poll, procfs, scaled, student};
use rstest::rstest;

/// What the caller's variable holds before the child writes.
const INITIAL: u64 = 0x1111_1111_1111_1111;
/// `KCMP_VM` from linux/kcmp.h: compare two processes' address spaces.
const KCMP_VM: libc::c_int = 1;

/// What the test saw of the child while it waited for its go-ahead.
#[derive(Debug)]
struct Look {
    caller: Pid,
    ppid: Option<i32>,
    tgid: Option<String>,
    /// Field 38 of `/proc/<child>/stat`.
    exit_signal: Option<i32>,
    /// `Ok(true)` when kcmp says the child shares the caller's address space.
    same_vm: Result<bool, io::Error>,
    /// The caller's variable at that moment.
    target_then: u64,
    /// Where the child was when the test looked: asleep in read(2) (waiting for the
    /// go-ahead), or what the test saw instead.
    child_where: Where,
    /// The child's own copy of the variable then, read from `/proc/<child>/mem`.
    child_copy: Option<u64>,
    /// What else of the caller's the child shares, as the kernel shows it (see [`shared_with`]).
    shared: Vec<&'static str>,
}

/// Where the child was when the test looked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Where {
    /// Asleep in read(2): waiting on a pipe, as it should.
    Waiting,
    /// Gone, or a zombie: it had already exited.
    Exited,
    /// Neither within the patience: its state then.
    Elsewhere(Option<char>),
}

/// How long the child may take to reach its read of the go-ahead (before `scaled`).
const PATIENCE: Duration = Duration::from_secs(5);

/// Waits (at most `patience`) until `child` sleeps in read(2), or has exited. Never panics:
/// it runs inside the student's code, which must let the child go and wait for it.
fn where_is(child: Pid, patience: Duration) -> Where {
    let start = Instant::now();
    loop {
        let state = procfs::state(child);
        if matches!(state, None | Some('Z' | 'X')) {
            return Where::Exited;
        }
        if procfs::blocked_read_fd(child).is_some() {
            return Where::Waiting;
        }
        if start.elapsed() > patience {
            return Where::Elsewhere(state);
        }
        std::thread::sleep(Duration::from_micros(500));
    }
}

/// The child's copy of `target`, read through `/proc/<child>/mem`.
fn child_copy(child: Pid, target: &AtomicU64) -> Option<u64> {
    let mut bytes = [0u8; 8];
    let file = File::open(format!("/proc/{child}/mem")).ok()?;
    file.read_exact_at(&mut bytes, target.as_ptr() as u64)
        .ok()?;
    Some(u64::from_ne_bytes(bytes))
}

/// A SIGUSR2 handler that does nothing: installed for a moment, to see whether the child
/// shares the caller's table of signal handlers.
extern "C" fn ignore_signal(_: libc::c_int) {}

/// What the kernel shows the child sharing with the caller besides memory, found by changing
/// each thing in the caller for a moment and looking at the child in `/proc`: an fd opened now
/// (in `/proc/<child>/fd`: `CLONE_FILES`), the umask (`Umask` in its status: `CLONE_FS`), a
/// handler installed now (`SigCgt` in its status: `CLONE_SIGHAND`). Puts each thing back.
/// Never panics.
fn shared_with(child: Pid) -> Vec<&'static str> {
    let mut shared = Vec::new();
    if let Ok(file) = File::open("/dev/null") {
        let fd = file.as_raw_fd();
        if fs::read_link(format!("/proc/{child}/fd/{fd}"))
            .is_ok_and(|t| t == std::path::Path::new("/dev/null"))
        {
            shared.push("its fd table (CLONE_FILES: an fd the caller opened after clone is open in the child too)");
        }
    }
    let old = umask(Mode::from_bits_truncate(0o037));
    let odd = if old.bits() == 0o037 { 0o026 } else { 0o037 };
    umask(Mode::from_bits_truncate(odd));
    if procfs::status(child)
        .ok()
        .and_then(|s| s.umask())
        .is_some_and(|m| m == odd)
    {
        shared.push("its umask, cwd and root (CLONE_FS: the caller's new umask shows in the child's status)");
    }
    umask(old);
    let bit = 1u64 << (libc::SIGUSR2 - 1);
    let action = SigAction::new(
        SigHandler::Handler(ignore_signal),
        SaFlags::empty(),
        SigSet::empty(),
    );
    // SAFETY: the handler does nothing; the old action is put back right after the look.
    if let Ok(old) = unsafe { sigaction(Signal::SIGUSR2, &action) } {
        if procfs::status(child)
            .ok()
            .and_then(|s| s.signal_mask("SigCgt"))
            .is_some_and(|m| m & bit != 0)
        {
            shared.push(
                "its signal handlers (CLONE_SIGHAND: a handler the caller installed after clone shows in the \
                 child's SigCgt)",
            );
        }
        // SAFETY: puts back the action that was there before.
        let _ = unsafe { sigaction(Signal::SIGUSR2, &old) };
    }
    shared
}

struct Run {
    result: io::Result<CloneReport>,
    look: Option<Look>,
    /// The caller's variable after the call.
    target_now: u64,
}

/// The exit signal of `pid`: field 38 of its stat.
fn exit_signal(pid: Pid) -> Option<i32> {
    procfs::stat(pid).ok().map(|s| s.exit_signal)
}

/// Asks the kernel whether `a` and `b` share one address space (kcmp(2), KCMP_VM).
fn same_vm(a: Pid, b: Pid) -> Result<bool, io::Error> {
    // SAFETY: kcmp only compares kernel objects of two processes; no memory is passed.
    let r = unsafe { libc::syscall(libc::SYS_kcmp, a.as_raw(), b.as_raw(), KCMP_VM, 0, 0) };
    if r < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(r == 0)
    }
}

fn run(share: bool, value: u64) -> Run {
    let target = AtomicU64::new(INITIAL);
    let mut look = None;
    // Scaled here, not in `where_is`, which must not panic (on a bad OSKATA_DEADLINE_SCALE).
    let patience = scaled(PATIENCE);
    let result = student(|| {
        clone_and_write(share, &target, value, |child| {
            let me = getpid();
            let child_where = where_is(child, patience);
            look = Some(Look {
                child_where,
                child_copy: child_copy(child, &target),
                shared: shared_with(child),
                caller: me,
                ppid: procfs::stat(child).ok().map(|s| s.ppid),
                tgid: procfs::status(child)
                    .ok()
                    .and_then(|s| s.get("Tgid").map(str::to_owned)),
                exit_signal: exit_signal(child),
                same_vm: same_vm(me, child),
                target_then: target.load(Ordering::SeqCst),
            });
        })
    });
    Run {
        result,
        look,
        target_now: target.load(Ordering::SeqCst),
    }
}

/// The report and the look, after the checks every test needs (the call worked, the hook
/// ran in the caller, the child's exit signal is SIGCHLD).
fn checked(share: bool, run: &Run) -> (CloneReport, &Look) {
    let me = body_pid().expect("inside isolated()");
    let signal_problem = run.look.as_ref().and_then(|l| match l.exit_signal {
        Some(libc::SIGCHLD) | None => None,
        Some(sig) => Some(format!(
            "the child's exit signal (field 38 of its /proc stat) is {sig}, not SIGCHLD ({}): put SIGCHLD in the \
             low byte of clone's flags. A child with any other exit signal is a \"clone child\" that plain waitpid \
             does not see (ECHILD); only __WCLONE or __WALL find it",
            libc::SIGCHLD
        )),
    });
    let report = match &run.result {
        Ok(r) => *r,
        Err(e) => match signal_problem {
            Some(why) => panic!("clone_and_write(share_memory: {share}, ..) failed ({e}): {why}"),
            None => panic!("clone_and_write(share_memory: {share}, ..) failed: {e}"),
        },
    };
    if let Some(why) = signal_problem {
        panic!("{why}");
    }
    let look = run
        .look
        .as_ref()
        .unwrap_or_else(|| panic!("clone_and_write never called while_child_waits(child)"));
    assert_eq!(
        look.caller, me,
        "while_child_waits ran in pid {}, not in the parent {me}: only the parent calls it",
        look.caller
    );
    let child = report.child;
    match look.child_where {
        Where::Waiting => {}
        Where::Exited => panic!(
            "the child (pid {child}) had already exited when the parent called while_child_waits: it should wait, \
             asleep in read(2) on a pipe, until the parent sends the go-ahead, and store only then"
        ),
        Where::Elsewhere(state) => panic!(
            "the child (pid {child}) was not waiting in read(2) for the go-ahead when the parent called \
             while_child_waits (state {state:?}): it should wait for a byte on a pipe before it stores"
        ),
    }
    let stored_early = if share {
        (look.target_then != INITIAL).then_some(look.target_then)
    } else {
        look.child_copy.filter(|&v| v != INITIAL)
    };
    if let Some(v) = stored_early {
        panic!(
            "the child (pid {child}) stored before the go-ahead: while it waited in read(2), {} already held {v:#x}, \
             not {INITIAL:#x}. The child must first wait for the go-ahead byte, and store the value only after it",
            if share {
                "the caller's variable"
            } else {
                "its copy of the variable (read from /proc/<child>/mem)"
            }
        );
    }
    if !look.shared.is_empty() {
        panic!(
            "besides {}, the child (pid {child}) shares with the caller {}. clone must get no other sharing flag: \
             SIGCHLD in the low byte, plus CLONE_VM when share_memory is true, and nothing else (pass no other \
             sharing flag: CLONE_FILES, CLONE_FS, CLONE_SIGHAND and CLONE_THREAD make the child more of a thread)",
            if share {
                "memory (CLONE_VM)"
            } else {
                "nothing"
            },
            look.shared.join("; and ")
        );
    }
    (report, look)
}

/// What kcmp said, for messages.
fn kcmp_says(look: &Look, child: Pid) -> String {
    match &look.same_vm {
        Ok(true) => format!("kcmp(KCMP_VM) says pid {child} shares the caller's address space"),
        Ok(false) => format!("kcmp(KCMP_VM) says pid {child} has an address space of its own"),
        Err(e) => format!("kcmp could not tell ({e})"),
    }
}

/// What kcmp says, or None when it cannot be asked: then the write decides alone. kcmp is
/// missing (ENOSYS) from kernels built without CONFIG_KCMP, and refused (EPERM, or EACCES)
/// where a seccomp profile forbids it, as container runtimes' default profiles do, or where
/// the ptrace access check it makes is denied.
fn kcmp_answer(look: &Look) -> Option<bool> {
    match &look.same_vm {
        Ok(same) => Some(*same),
        Err(e)
            if matches!(
                e.raw_os_error(),
                Some(libc::ENOSYS | libc::EPERM | libc::EACCES)
            ) =>
        {
            None
        }
        Err(e) => panic!("kcmp(KCMP_VM) on the test's own child failed: {e}"),
    }
}

#[rstest]
#[case(1)]
#[case(0xdead_beef_cafe_f00d)]
#[case(u64::MAX)]
fn with_clone_vm_the_parent_sees_the_write(#[case] value: u64) {
    isolated(|| {
        let run = run(true, value);
        let (report, look) = checked(true, &run);
        let child = report.child;
        assert_eq!(
            run.target_now,
            value,
            "with CLONE_VM the child runs in the caller's memory, so its store should be in the caller's own \
             variable: it should hold {value:#x} after the child exited, but holds {:#x}. {}",
            run.target_now,
            kcmp_says(look, child)
        );
        assert!(
            kcmp_answer(look).unwrap_or(true),
            "{}: with CLONE_VM it should share it",
            kcmp_says(look, child)
        );
        assert_eq!(
            look.target_then, INITIAL,
            "the caller's variable held {:#x} before the go-ahead was sent: the child should wait for it before \
             it writes",
            look.target_then
        );
        assert_eq!(
            report.parent_sees, value,
            "parent_sees should be what the caller reads from target after the child exited ({value:#x}), got {:#x}",
            report.parent_sees
        );
    });
}

#[rstest]
#[case(1)]
#[case(0xdead_beef_cafe_f00d)]
#[case(u64::MAX)]
fn without_clone_vm_the_parent_keeps_its_value(#[case] value: u64) {
    isolated(|| {
        let run = run(false, value);
        let (report, look) = checked(false, &run);
        let child = report.child;
        let passed_vm = if kcmp_answer(look) == Some(true) {
            "CLONE_VM was passed although share_memory was false"
        } else {
            "the child's memory is not its own"
        };
        assert_eq!(
            run.target_now,
            INITIAL,
            "without CLONE_VM the child should have its own (copy-on-write) copy of memory, so the caller's \
             variable should still hold {INITIAL:#x}; it holds the child's {:#x}. {}: {passed_vm}",
            run.target_now,
            kcmp_says(look, child)
        );
        assert!(
            !kcmp_answer(look).unwrap_or(false),
            "{}: {passed_vm}",
            kcmp_says(look, child)
        );
        assert_eq!(
            report.parent_sees, INITIAL,
            "parent_sees should be what the caller reads from target after the child exited ({INITIAL:#x}), got \
             {:#x}",
            report.parent_sees
        );
    });
}

#[rstest]
#[case(true)]
#[case(false)]
fn the_child_is_an_ordinary_child_process(#[case] share: bool) {
    isolated(|| {
        let run = run(share, 42);
        let (report, look) = checked(share, &run);
        let me = body_pid().expect("inside isolated()");
        let child = report.child;
        assert_eq!(
            look.ppid,
            Some(me.as_raw()),
            "/proc/{child}/stat should show the caller {me} as the parent of the clone child; it shows {:?}",
            look.ppid
        );
        assert_eq!(
            look.tgid.as_deref(),
            Some(child.to_string().as_str()),
            "/proc/{child}/status shows Tgid {:?}: the clone child should be a process of its own (its own thread \
             group), not a thread: pass no CLONE_THREAD",
            look.tgid
        );
        assert_eq!(
            report.status,
            WaitStatus::Exited(child, 0),
            "waitpid should report that pid {child} exited with code 0 (its entry function returned 0)"
        );
        assert!(
            procfs::state(child).is_none(),
            "pid {child} is still in /proc after clone_and_write returned: nobody called waitpid on it"
        );
    });
}

/// The caller as it was: a child it had before the call (an unreaped zombie) is not collected,
/// and its fd table is the same after the call. Run without CLONE_VM, so that a wrong wait,
/// which returns before the child is done, cannot leave a child storing into memory the caller
/// has reused.
#[test]
fn the_caller_is_left_as_it_was() {
    isolated(|| {
        let me = body_pid().expect("inside isolated()");
        // SAFETY: the test process is single-threaded; the child only calls _exit.
        let bystander = match unsafe { fork() }.expect("fork") {
            // SAFETY: _exit ends the child at once.
            ForkResult::Child => unsafe { libc::_exit(42) },
            ForkResult::Parent { child } => child,
        };
        poll::until(
            Duration::from_secs(5),
            &format!("pid {bystander} to exit"),
            || (procfs::state(bystander) == Some('Z')).then_some(()),
        );
        let fds_before = procfs::fds(me).expect("read the test's fd table");
        let run = run(false, 42);
        if procfs::state(bystander) != Some('Z') {
            panic!(
                "pid {bystander}, a child the caller had started before it called clone_and_write (it had exited, \
                 its status not yet collected), was reaped by clone_and_write: the caller's own children are not \
                 yours to collect. Wait for the child you cloned, waitpid(child, ..), not for any child (wait(), \
                 waitpid(-1, ..)); clone_and_write's wait returned {:?}",
                run.result.as_ref().map(|r| r.status)
            );
        }
        let (report, _) = checked(false, &run);
        assert_eq!(
            waitpid(bystander, Some(WaitPidFlag::WNOHANG)),
            Ok(WaitStatus::Exited(bystander, 42)),
            "the caller's own child {bystander} should still have its status for the caller to collect"
        );
        assert!(
            procfs::state(report.child).is_none(),
            "pid {} is still in /proc after clone_and_write returned: nobody called waitpid on it",
            report.child
        );
        let fds_after = procfs::fds(me).expect("read the test's fd table");
        let opened: Vec<String> = fds_after
            .iter()
            .filter(|f| !fds_before.contains(f))
            .map(|f| format!("fd {} -> {}", f.fd, f.target))
            .collect();
        assert!(
            opened.is_empty() && fds_after.len() == fds_before.len(),
            "clone_and_write left the caller's fd table changed (/proc/{me}/fd): {} still open. Close both ends of \
             the go-ahead pipe once the child has been waited for",
            opened.join(", ")
        );
    });
}
