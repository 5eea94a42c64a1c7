use oskata_harness::{Isolation, Verdict, isolated, procfs, student};
use nix::unistd::{ForkResult, fork, getpid};
use std::time::Duration;

#[test]
fn passing_body_passes() {
    isolated(|| assert_eq!(1 + 1, 2));
}

#[test]
fn endless_loop_times_out() {
    let r = Isolation::new().deadline(Duration::from_millis(500)).report(|| loop { std::hint::spin_loop() });
    assert_eq!(r.verdict, Verdict::TimedOut, "{r:?}");
}

#[test]
fn stray_child_is_caught() {
    let r = Isolation::new().report(|| {
        let _ = student(|| unsafe { fork() }.unwrap());
        nix::sys::wait::wait().ok();
    });
    assert_eq!(r.verdict, Verdict::Failed, "{r:?}");
    assert!(r.message.contains("returned into the test instead of exiting"), "{r:?}");
}

#[test]
fn zombie_is_a_leak() {
    let r = Isolation::new().report(|| {
        if let ForkResult::Child = unsafe { fork() }.unwrap() { unsafe { libc::_exit(0) } }
        oskata_harness::poll::until(Duration::from_secs(5), "zombie", || {
            procfs::children(getpid()).iter().any(|c| c.state == 'Z').then_some(())
        });
    });
    assert_eq!(r.verdict, Verdict::Leaked, "{r:?}");
    assert!(r.message.contains("zombie"), "{r:?}");
}
