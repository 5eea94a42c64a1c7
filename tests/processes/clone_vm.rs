//! processes/clone_vm: with CLONE_VM the child's store lands in the caller's own memory (and
//! kcmp says they share one address space); without it the caller's variable is untouched.
//! Either way the child is an ordinary child process with SIGCHLD as its exit signal.

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

use std::io;
use std::sync::atomic::{AtomicU64, Ordering};

use nix::sys::wait::WaitStatus;
use nix::unistd::{Pid, getpid};
use oskata_harness::{body_pid, isolated, procfs, student};
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
    let result = student(|| {
        clone_and_write(share, &target, value, |child| {
            let me = getpid();
            look = Some(Look {
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
