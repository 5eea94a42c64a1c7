//! The harness against hostile and broken test code: each body below does one thing that
//! once hung a run, fooled a verdict or outlived its test. Each test asserts the verdict and
//! the message, that the run ended within a bound, and that no process of it is left.
use std::time::{Duration, Instant};

use nix::sys::signal::Signal;
use nix::sys::wait::{WaitStatus, waitpid};
use nix::unistd::{ForkResult, Pid, fork};
use oskata_harness::{Isolation, Report};

/// Runs `body` isolated with `opts`, and returns the report and how long the run took.
fn timed(opts: Isolation, body: impl FnOnce()) -> (Report, Duration) {
    let start = Instant::now();
    let report = opts.report(body);
    (report, start.elapsed())
}

/// Forks; the child runs `child` and exits with 0. Returns the child's pid.
fn spawn(child: impl FnOnce()) -> Pid {
    // SAFETY: the body process is single-threaded; the child runs `child` and _exits.
    match unsafe { fork() }.unwrap() {
        ForkResult::Child => {
            child();
            // SAFETY: leaves the child without unwinding into the test.
            unsafe { libc::_exit(0) }
        }
        ForkResult::Parent { child } => child,
    }
}

/// `kill(-1, 0)` through the i386 entry (`int 0x80`, where kill is 37) and with an x32
/// number: refused, so it cannot reach every process on the machine.
#[test]
fn kill_minus_one_through_another_abi_is_refused() {
    let (r, _) = timed(Isolation::new(), || {
        let child = spawn(|| {
            let i386: i32;
            // SAFETY: the i386 kill(-1, 0) system call; rbx, which LLVM reserves, is swapped
            // in and back out around it, and the registers the entry may clobber are named.
            unsafe {
                std::arch::asm!(
                    "xchg {pid:r}, rbx",
                    "int 0x80",
                    "xchg {pid:r}, rbx",
                    pid = inout(reg) -1i64 => _,
                    inlateout("eax") 37i32 => i386,
                    in("ecx") 0i32,
                    lateout("r8") _, lateout("r9") _, lateout("r10") _, lateout("r11") _,
                )
            };
            let x32: i64;
            // SAFETY: the x86_64 entry with the x32 number of kill (bit 30 set), (-1, 0).
            unsafe {
                std::arch::asm!(
                    "syscall",
                    inlateout("rax") 0x4000_0000i64 | 62 => x32,
                    in("rdi") -1i64,
                    in("rsi") 0i64,
                    lateout("rcx") _, lateout("r11") _,
                )
            };
            let refused = |rc: i64| rc == -(libc::EPERM as i64) || rc == -(libc::ENOSYS as i64);
            println!("i386={i386} x32={x32}");
            let _ = std::io::Write::flush(&mut std::io::stdout());
            let code = if refused(i386.into()) && refused(x32) {
                0
            } else {
                1
            };
            // SAFETY: leaves the child at once, its status the verdict.
            unsafe { libc::_exit(code) }
        });
        // A kernel without the i386 entry answers int 0x80 with SIGSEGV: nothing got through.
        match waitpid(child, None).unwrap() {
            WaitStatus::Exited(_, 0) | WaitStatus::Signaled(_, Signal::SIGSEGV, _) => {}
            other => panic!("the other ABIs' kill(-1, 0) was not refused ({other:?})"),
        }
    });
    assert!(r.passed(), "{r:?}");
}
