//! The harness against hostile and broken test code: each body below does one thing that
//! once hung a run, fooled a verdict or outlived its test. Each test asserts the verdict and
//! the message, that the run ended within a bound, and that no process of it is left.
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, kill};
use nix::sys::wait::{WaitStatus, waitpid};
use nix::unistd::{ForkResult, Pid, fork, getpid, getppid, pause, setsid};
use oskata_harness::{Isolation, Report, Verdict, poll, procfs};

/// Runs `body` isolated with `opts`, and returns the report and how long the run took.
fn timed(opts: Isolation, body: impl FnOnce()) -> (Report, Duration) {
    let start = Instant::now();
    let report = opts.report(body);
    (report, start.elapsed())
}

/// Finds `key=<number>` in `text`.
fn number(text: &str, key: &str) -> i32 {
    let at = text
        .find(&format!("{key}="))
        .unwrap_or_else(|| panic!("no {key}= in {text:?}"));
    text[at + key.len() + 1..]
        .split_whitespace()
        .next()
        .unwrap()
        .parse()
        .unwrap()
}

/// A file that the test process and the body both name the same way: in /var/tmp, named after the test process's pid (which the supervisor knows from the
/// harness's variable), for a body whose output never reaches the report.
fn shared_file(tag: &str) -> PathBuf {
    let owner =
        std::env::var("OSKATA_ISOLATED_PARENT").unwrap_or_else(|_| std::process::id().to_string());
    // Not under /tmp or TMPDIR: the body has a private /tmp where it may, and checks the
    // machine's where it may not; /var/tmp is the same for the body and this process.
    Path::new("/var/tmp").join(format!("oskata-hostile-{owner}-{tag}"))
}

/// Writes `text` to `path` at once (a rename, so a reader never sees half of it).
fn publish(path: &std::path::Path, text: &str) {
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, text).unwrap();
    std::fs::rename(&tmp, path).unwrap();
}

/// Asserts that `pid` is gone: reaped, or a zombie some other reaper (init) has yet to reap.
fn assert_gone(pid: i32) {
    poll::until(Duration::from_secs(5), &format!("pid {pid} to go"), || {
        procfs::stat(Pid::from_raw(pid))
            .map_or(true, |s| {
                s.state == 'Z' && procfs::zombie_leader_threads(&s).is_empty()
            })
            .then_some(())
    });
}

/// Asserts that no live process is left in session `sid`.
fn assert_session_gone(sid: i32) {
    poll::until(
        Duration::from_secs(5),
        &format!("session {sid} to empty"),
        || {
            procfs::all()
                .iter()
                .all(|p| p.session != sid || !procfs::alive(p))
                .then_some(())
        },
    );
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

/// Starts a daemon the classic way (fork, setsid, fork, the middle one exits) that runs
/// `daemon`, and returns once the middle child is reaped.
fn daemonize(daemon: impl FnOnce()) {
    let middle = spawn(|| {
        setsid().unwrap();
        spawn(|| {
            daemon();
            loop {
                pause();
            }
        });
    });
    waitpid(middle, None).unwrap();
}

#[test]
fn a_zombie_leader_whose_thread_runs_on_is_killed() {
    let (r, took) = timed(Isolation::new().deadline(Duration::from_secs(5)), || {
        let leader = spawn(|| {
            std::thread::spawn(|| {
                loop {
                    pause();
                }
            });
            // SAFETY: the raw exit system call ends this thread only; the other runs on.
            unsafe { libc::syscall(libc::SYS_exit, 0) };
        });
        poll::until(
            Duration::from_secs(5),
            "a zombie leader with a thread that runs on",
            || {
                procfs::stat(leader)
                    .ok()
                    .filter(|s| !procfs::zombie_leader_threads(s).is_empty())
            },
        );
        println!("leader={leader}");
    });
    let leader = number(&r.output, "leader");
    assert_eq!(r.verdict, Verdict::Leaked, "{r:?}");
    assert!(
        r.message.contains(&format!("pid {leader} ("))
            && r.message
                .contains("is a zombie leader whose other threads still run (tids "),
        "{r:?}"
    );
    assert!(took < Duration::from_secs(4), "took {took:?}");
    assert_gone(leader);
}

#[test]
fn a_process_started_beside_the_body_is_a_leak_and_killed() {
    let (r, took) = timed(Isolation::new(), || {
        // SAFETY: a raw clone without a new stack behaves as fork(2) (the body is
        // single-threaded); with CLONE_PARENT the child's parent is the body's parent.
        let rc = unsafe {
            libc::syscall(
                libc::SYS_clone,
                libc::CLONE_PARENT | libc::SIGCHLD,
                0,
                0,
                0,
                0,
            )
        };
        if rc == 0 {
            loop {
                pause();
            }
        }
        assert!(rc > 0, "clone: {}", std::io::Error::last_os_error());
        println!("beside={rc}");
    });
    let beside = number(&r.output, "beside");
    assert_eq!(r.verdict, Verdict::Leaked, "{r:?}");
    assert!(
        r.message.contains(&format!("pid {beside} ("))
            && r.message.contains(
                "was started beside the test process, not under it (clone with CLONE_PARENT?)"
            ),
        "{r:?}"
    );
    assert!(took < Duration::from_secs(4), "took {took:?}");
    assert_gone(beside);
}

/// A process beside the body that starts a daemon (double fork, setsid) and exits: the daemon
/// is still the supervisor's descendant (it is their subreaper), so it is found and killed.
#[test]
fn a_daemon_started_beside_the_body_is_still_found() {
    let pidfile = shared_file("beside-daemon");
    let (r, took) = timed(Isolation::new(), || {
        let supervisor = getppid();
        // SAFETY: as above, a raw clone that behaves as fork(2) with CLONE_PARENT.
        let rc = unsafe {
            libc::syscall(
                libc::SYS_clone,
                libc::CLONE_PARENT | libc::SIGCHLD,
                0,
                0,
                0,
                0,
            )
        };
        if rc == 0 {
            let file = pidfile.clone();
            daemonize(move || {
                // Published once the middle process has exited and this one was re-parented
                // to the supervisor (the nearest subreaper), so the body cannot pass before.
                poll::until(
                    Duration::from_secs(5),
                    "re-parenting to the supervisor",
                    || (getppid() == supervisor).then_some(()),
                );
                publish(&file, &format!("daemon={}", getpid()));
            });
            // SAFETY: leaves the process beside the body without unwinding into the test.
            unsafe { libc::_exit(0) }
        }
        assert!(rc > 0, "clone: {}", std::io::Error::last_os_error());
        poll::until(Duration::from_secs(5), "the daemon's pid file", || {
            std::fs::read_to_string(&pidfile).ok()
        });
    });
    let daemon = number(&std::fs::read_to_string(&pidfile).unwrap(), "daemon");
    std::fs::remove_file(&pidfile).unwrap();
    assert_eq!(r.verdict, Verdict::Leaked, "{r:?}");
    assert!(
        r.message.contains(&format!(
            "pid {daemon} (a_daemon_starte) was started beside the test process"
        )),
        "{r:?}"
    );
    assert!(took < Duration::from_secs(4), "took {took:?}");
    assert_gone(daemon);
}

#[test]
fn a_killed_supervisor_is_named_and_its_daemon_killed() {
    let pidfile = shared_file("daemon");
    let (r, took) = timed(Isolation::new(), || {
        let file = pidfile.clone();
        daemonize(move || publish(&file, &format!("daemon={}", getpid())));
        poll::until(Duration::from_secs(5), "the daemon's pid file", || {
            std::fs::read_to_string(&pidfile).ok()
        });
        kill(getppid(), Signal::SIGKILL).unwrap();
        loop {
            pause();
        }
    });
    let daemon = number(&std::fs::read_to_string(&pidfile).unwrap(), "daemon");
    std::fs::remove_file(&pidfile).unwrap();
    assert_eq!(r.verdict, Verdict::Crashed, "{r:?}");
    assert!(
        r.message
            .contains("was killed by SIGKILL before it could report")
            && r.message
                .contains("outlived its supervisor and were killed")
            && r.message.contains(&format!("pid {daemon} ")),
        "{r:?}"
    );
    assert!(took < Duration::from_secs(5), "took {took:?}");
    assert_gone(daemon);
}

#[test]
fn a_survivor_holding_the_supervisors_stdout_does_not_hang_the_test_process() {
    let pidfile = shared_file("holder");
    let (r, took) = timed(Isolation::new(), || {
        let supervisor = getppid();
        let file = pidfile.clone();
        daemonize(move || {
            // The supervisor's own stdout, where the test process reads its report. (From a
            // user namespace, as an unprivileged body is in, the kernel refuses: then the
            // daemon holds nothing of the supervisor's, and the run must end as soon.)
            let held = std::fs::OpenOptions::new()
                .write(true)
                .open(format!("/proc/{supervisor}/fd/1"));
            std::mem::forget(held);
            publish(&file, &format!("holder={}", getpid()));
        });
        poll::until(Duration::from_secs(5), "the holder's pid file", || {
            std::fs::read_to_string(&pidfile).ok()
        });
        kill(supervisor, Signal::SIGKILL).unwrap();
    });
    let holder = number(&std::fs::read_to_string(&pidfile).unwrap(), "holder");
    std::fs::remove_file(&pidfile).unwrap();
    assert_eq!(r.verdict, Verdict::Crashed, "{r:?}");
    assert!(r.message.contains(&format!("pid {holder} ")), "{r:?}");
    assert!(took < Duration::from_secs(5), "took {took:?}");
    assert_gone(holder);
}

#[test]
fn a_stopped_supervisor_is_named_and_its_tree_killed() {
    let pidfile = shared_file("stopped");
    let deadline = Duration::from_secs(1);
    let (r, took) = timed(Isolation::new().deadline(deadline), || {
        let child = spawn(|| {
            loop {
                pause();
            }
        });
        publish(&pidfile, &format!("body={} child={child}", getpid()));
        kill(getppid(), Signal::SIGSTOP).unwrap();
    });
    let pids = std::fs::read_to_string(&pidfile).unwrap();
    std::fs::remove_file(&pidfile).unwrap();
    assert_eq!(r.verdict, Verdict::TimedOut, "{r:?}");
    assert!(
        r.message.contains("was stopped by a signal (state T")
            && !r.message.contains("bug in the harness"),
        "{r:?}"
    );
    assert!(took < Duration::from_secs(8), "took {took:?}");
    assert_gone(number(&pids, "child"));
    assert_gone(number(&pids, "body"));
}

#[test]
fn a_fork_loop_at_the_process_cap_times_out_with_the_supervisors_evidence() {
    let (r, took) = timed(
        Isolation::new()
            .deadline(Duration::from_secs(1))
            .max_processes(64),
        || {
            println!("session={}", getpid());
            let _ = std::io::Write::flush(&mut std::io::stdout());
            loop {
                // SAFETY: every copy runs only this loop of raw forks.
                unsafe { libc::fork() };
            }
        },
    );
    assert_eq!(r.verdict, Verdict::TimedOut, "{r:?}");
    assert!(
        r.message.contains("did not finish within its deadline of")
            && r.message.contains("PID   PPID"),
        "{r:?}"
    );
    assert!(took < Duration::from_secs(10), "took {took:?}");
    assert_session_gone(number(&r.output, "session"));
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

/// As root the body can write its pid into its parent cgroup's `cgroup.procs`: that fails the
/// test. Without a writable cgroup there is nothing to leave, and the write is refused.
#[test]
fn a_body_that_moves_out_of_its_cgroup_fails() {
    let (r, took) = timed(Isolation::new(), || {
        let me = getpid();
        let lines = procfs::cgroups(me).unwrap();
        let target = lines.iter().find_map(|l| {
            let (parent, leaf) = l.path.rsplit_once('/')?;
            leaf.starts_with("oskata-").then_some(())?;
            let root = if l.hierarchy == 0 {
                "unified".to_owned()
            } else {
                l.controllers.first()?.clone()
            };
            let procs = PathBuf::from(format!("/sys/fs/cgroup/{root}{parent}/cgroup.procs"));
            procs.exists().then_some(procs)
        });
        match target {
            Some(procs) => {
                println!("moved={me}");
                let _ = std::io::Write::flush(&mut std::io::stdout());
                std::fs::write(&procs, me.to_string()).unwrap();
                // With the cap lifted, a fork loop could start here; the supervisor stops it.
                loop {
                    pause();
                }
            }
            None => {
                let refused = std::fs::write("/sys/fs/cgroup/pids/cgroup.procs", me.to_string());
                assert!(refused.is_err(), "an unconfined body could move itself");
                println!("unconfined={me}");
            }
        }
    });
    if r.output.contains("unconfined=") {
        assert!(r.passed(), "{r:?}");
        return;
    }
    let body = number(&r.output, "moved");
    assert_eq!(r.verdict, Verdict::Failed, "{r:?}");
    assert!(
        r.message.contains(&format!("pid {body} ("))
            && r.message.contains("moved itself out of the test's cgroup"),
        "{r:?}"
    );
    assert!(took < Duration::from_secs(4), "took {took:?}");
}

/// The same escape, and then the test returns at once: it may end between two of the
/// supervisor's looks, so the body itself tells where it is before it reports.
#[test]
fn a_body_that_moves_out_of_its_cgroup_and_returns_at_once_fails() {
    let (r, _) = timed(Isolation::new(), || {
        let me = getpid();
        let lines = procfs::cgroups(me).unwrap();
        let targets: Vec<PathBuf> = lines
            .iter()
            .filter_map(|l| {
                let (parent, leaf) = l.path.rsplit_once('/')?;
                leaf.starts_with("oskata-").then_some(())?;
                let root = if l.hierarchy == 0 {
                    "unified".to_owned()
                } else {
                    l.controllers.first()?.clone()
                };
                let procs = PathBuf::from(format!("/sys/fs/cgroup/{root}{parent}/cgroup.procs"));
                procs.exists().then_some(procs)
            })
            .collect();
        let moved = targets
            .iter()
            .any(|procs| std::fs::write(procs, me.to_string()).is_ok());
        println!("{}={me}", if moved { "moved" } else { "unconfined" });
    });
    if r.output.contains("unconfined=") {
        assert!(r.passed(), "{r:?}");
        return;
    }
    let body = number(&r.output, "moved");
    assert!(!r.passed(), "{r:?}");
    assert!(
        r.message.contains(&format!("pid {body} ("))
            && r.message.contains("moved itself out of the test's cgroup"),
        "{r:?}"
    );
}

/// A runaway allocation meets the test's own memory limit, never the machine's OOM killer.
#[test]
fn a_runaway_allocation_fails_at_the_tests_memory_limit() {
    let (r, took) = timed(
        Isolation::new()
            .memory_limit(128 << 20)
            .deadline(Duration::from_secs(30)),
        || {
            println!("body={}", getpid());
            let mut kept: Vec<Vec<u8>> = Vec::new();
            loop {
                let mut chunk = Vec::<u8>::with_capacity(16 << 20);
                chunk.resize(16 << 20, 1);
                kept.push(chunk);
            }
        },
    );
    assert_eq!(r.verdict, Verdict::Crashed, "{r:?}");
    assert!(
        r.message.contains("the test's processes ran out of"),
        "{r:?}"
    );
    assert!(took < Duration::from_secs(15), "took {took:?}");
    assert_gone(number(&r.output, "body"));
}
