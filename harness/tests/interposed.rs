//! A test binary that defines its own `prctl`, as student code linked into it could
//! (`#[no_mangle] extern "C" fn prctl`): every call through libc or nix then reaches this
//! function, which claims success and does nothing. The harness's own security steps go
//! straight to the kernel, so the body must still be a subreaper, under the seccomp filter,
//! non-root-capable, and the supervisor still not dumpable.
use std::time::Duration;

use nix::unistd::getppid;
use oskata_harness::{Isolation, procfs};

/// The impostor: says yes to everything, does nothing.
#[unsafe(no_mangle)]
pub extern "C" fn prctl(_option: i32, _a2: u64, _a3: u64, _a4: u64, _a5: u64) -> i32 {
    0
}

/// `prctl(PR_GET_CHILD_SUBREAPER)` through libc's `syscall`, which the impostor does not replace.
fn is_subreaper() -> bool {
    let mut flag: libc::c_int = 0;
    // SAFETY: PR_GET_CHILD_SUBREAPER writes one int through the pointer, which lives here.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_prctl,
            libc::PR_GET_CHILD_SUBREAPER,
            &mut flag as *mut libc::c_int,
        )
    };
    rc == 0 && flag == 1
}

#[test]
fn an_interposed_prctl_does_not_disarm_the_harness() {
    let r = Isolation::new()
        .deadline(Duration::from_secs(5))
        .report(|| {
            assert!(is_subreaper(), "the body is not a child subreaper");
            let status = procfs::status(nix::unistd::getpid()).unwrap();
            assert_eq!(status.get("Seccomp"), Some("2"), "no seccomp filter");
            assert_eq!(status.get("NoNewPrivs"), Some("1"));
            assert_eq!(status.get("CapEff"), Some("0000000000000000"));
            // SAFETY: kill with pid -1 and signal 0 only asks; the filter must refuse it.
            let rc = unsafe { libc::kill(-1, 0) };
            assert_eq!(
                (rc, nix::errno::Errno::last()),
                (-1, nix::errno::Errno::EPERM)
            );
            let supervisor = format!("/proc/{}/fd/1", getppid());
            assert!(
                std::fs::OpenOptions::new()
                    .write(true)
                    .open(&supervisor)
                    .is_err(),
                "the supervisor's stdout could be opened: it is dumpable"
            );
        });
    assert!(r.passed(), "{r:?}");
}
