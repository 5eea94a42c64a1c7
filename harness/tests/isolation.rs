//! The harness's promises, each shown on a body that breaks them on purpose: a verdict with
//! evidence, and nothing of the run left on the machine afterwards.
use std::path::Path;
use std::time::Duration;

use nix::sys::wait::waitpid;
use nix::unistd::{ForkResult, Pid, fork, getpid, pipe, setsid};
use oskata_harness::{
    Isolation, Report, VERDICT_TAG, Verdict, isolated, poll, procfs, scratch_dir, student,
};
use rstest::rstest;

/// Runs `body` isolated with a short deadline and returns the report.
fn report(body: impl FnOnce()) -> Report {
    Isolation::new()
        .deadline(Duration::from_secs(3))
        .report(body)
}

/// Finds `key=<number>` in what the body printed.
fn printed(report: &Report, key: &str) -> i64 {
    let at = report
        .output
        .find(&format!("{key}="))
        .unwrap_or_else(|| panic!("no {key}= in {report:?}"));
    report.output[at + key.len() + 1..]
        .split_whitespace()
        .next()
        .unwrap()
        .parse()
        .unwrap()
}

fn assert_gone(pid: i64) {
    if let Ok(stat) = procfs::stat(Pid::from_raw(pid as i32)) {
        panic!("pid {pid} outlived its test: {stat:?}");
    }
}

#[test]
fn a_passing_body_passes() {
    isolated(|| assert_eq!(procfs::stat(getpid()).unwrap().pid, getpid().as_raw()));
}

#[rstest]
#[case(1)]
#[case(2)]
fn rstest_cases_run_isolated(#[case] n: i32) {
    let r = report(move || println!("case={n}"));
    assert!(r.passed(), "{r:?}");
    assert_eq!(printed(&r, "case"), n as i64);
}

#[test]
fn a_panic_fails_with_its_message() {
    let r = report(|| panic!("boom {}", 42));
    assert_eq!(r.verdict, Verdict::Failed);
    assert!(r.message.contains("boom 42"), "{r:?}");
}

#[test]
fn a_failing_run_panics_with_the_verdict_line_first() {
    let panic = std::panic::catch_unwind(|| Isolation::new().run(|| panic!("boom")))
        .expect_err("a failing body must make run() panic");
    let text = panic.downcast_ref::<String>().cloned().unwrap_or_default();
    let mut lines = text.lines();
    assert_eq!(
        lines.next(),
        Some(format!("{VERDICT_TAG}failed@@ failed").as_str()),
        "{text}"
    );
    assert!(
        lines.next().is_some_and(|l| l.starts_with("boom")),
        "{text}"
    );
}

#[test]
fn todo_means_not_started() {
    let r = report(|| todo!());
    assert_eq!(r.verdict, Verdict::NotStarted, "{r:?}");
}

#[test]
fn an_endless_loop_times_out_and_is_killed() {
    let r = Isolation::new()
        .deadline(Duration::from_millis(500))
        .report(|| {
            println!("pid={}", getpid());
            let _ = std::io::Write::flush(&mut std::io::stdout());
            loop {
                std::hint::spin_loop()
            }
        });
    assert_eq!(r.verdict, Verdict::TimedOut, "{r:?}");
    assert!(
        r.message.contains("STATE") && r.message.contains("R (running)"),
        "{r:?}"
    );
    assert_gone(printed(&r, "pid"));
}

#[test]
fn a_reader_that_holds_its_own_write_end_is_explained_at_the_deadline() {
    let r = Isolation::new()
        .deadline(Duration::from_secs(1))
        .report(|| {
            let (rd, _wr) = pipe().unwrap();
            let mut buf = [0u8; 1];
            let _ = nix::unistd::read(&rd, &mut buf);
        });
    assert_eq!(r.verdict, Verdict::TimedOut, "{r:?}");
    assert!(
        r.message.contains("the reader never saw EOF because pid"),
        "{r:?}"
    );
}

#[test]
fn a_parent_waiting_for_a_child_that_runs_on_is_explained_at_the_deadline() {
    let r = Isolation::new()
        .deadline(Duration::from_secs(1))
        .report(|| {
            // SAFETY: single-threaded body; the child only sleeps in pause.
            match unsafe { fork() }.unwrap() {
                ForkResult::Child => loop {
                    nix::unistd::pause();
                },
                ForkResult::Parent { child } => {
                    println!("child={child}");
                    let _ = std::io::Write::flush(&mut std::io::stdout());
                    let _ = waitpid(child, None);
                }
            }
        });
    assert_eq!(r.verdict, Verdict::TimedOut, "{r:?}");
    let child = printed(&r, "child");
    assert!(
        r.message.contains(&format!(
            "is blocked in waitpid (wait4/waitid) on a child that has not exited: pid {child}"
        )),
        "{r:?}"
    );
    assert_gone(child);
}

/// At the deadline the evidence tells a process spinning in user space, one asleep in a
/// system call, one stopped by a signal and one exited but unreaped apart, in words. (The
/// deadline is long enough for every child to reach its state: each is seen there first.)
#[test]
fn the_deadline_evidence_tells_spinning_sleeping_stopped_and_exited_apart() {
    let r = Isolation::new()
        .deadline(Duration::from_secs(2))
        .report(|| {
            let child = |work: fn()| {
                // SAFETY: single-threaded body; each child only runs `work`.
                match unsafe { fork() }.unwrap() {
                    ForkResult::Child => {
                        work();
                        // SAFETY: leaves the child without unwinding into the test.
                        unsafe { libc::_exit(0) }
                    }
                    ForkResult::Parent { child } => child,
                }
            };
            let spinner = child(|| {
                loop {
                    std::hint::spin_loop();
                }
            });
            let sleeper = child(|| {
                loop {
                    nix::unistd::pause();
                }
            });
            let stopped = child(|| {
                loop {
                    nix::unistd::pause();
                }
            });
            let exited = child(|| {});
            nix::sys::signal::kill(stopped, nix::sys::signal::Signal::SIGSTOP).unwrap();
            poll::until(
                Duration::from_secs(2),
                "the four children in their states",
                || {
                    let state = |pid| procfs::state(pid);
                    (state(spinner) == Some('R')
                        && procfs::syscall(sleeper).is_some()
                        && state(stopped) == Some('T')
                        && state(exited) == Some('Z'))
                    .then_some(())
                },
            );
            println!("spinner={spinner} sleeper={sleeper} stopped={stopped} exited={exited}");
            let _ = std::io::Write::flush(&mut std::io::stdout());
            loop {
                nix::unistd::pause();
            }
        });
    assert_eq!(r.verdict, Verdict::TimedOut, "{r:?}");
    let pid = |key: &str| printed(&r, key);
    // Each on the line that names its process.
    let says = |key: &str, text: &str| {
        let who = format!("pid {} (", pid(key));
        assert!(
            r.message
                .lines()
                .any(|l| l.contains(&who) && l.contains(text)),
            "no line says {who}... {text:?} in {r:?}"
        );
    };
    says(
        "spinner",
        "was running in user space, not in a system call, when it was stopped",
    );
    says("sleeper", "was asleep in the system call pause");
    says(
        "stopped",
        "was stopped by a signal (state T): it does nothing until it gets SIGCONT",
    );
    says(
        "exited",
        "had exited and was a zombie (state Z): nobody had reaped it with waitpid",
    );
    for key in ["spinner", "sleeper", "stopped"] {
        assert_gone(pid(key));
    }
}

/// Two threads that each hold one mutex and wait for the other's: at the deadline the
/// evidence names each thread and the futex address it waits on, two different ones. (The
/// deadlock is certain: each thread takes its second lock only after both hold their first.)
#[test]
fn a_deadlock_between_threads_names_each_thread_and_its_futex() {
    use std::sync::{Arc, Barrier, Mutex};
    let r = Isolation::new()
        .deadline(Duration::from_secs(1))
        .report(|| {
            let locks = Arc::new((Mutex::new(()), Mutex::new(())));
            let both = Arc::new(Barrier::new(2));
            let take = |first: bool| {
                let (locks, both) = (locks.clone(), both.clone());
                std::thread::spawn(move || {
                    let (a, b) = if first {
                        (&locks.0, &locks.1)
                    } else {
                        (&locks.1, &locks.0)
                    };
                    let _held = a.lock().unwrap();
                    both.wait();
                    let _never = b.lock().unwrap();
                })
            };
            let (one, two) = (take(true), take(false));
            let _ = one.join();
            let _ = two.join();
        });
    assert_eq!(r.verdict, Verdict::TimedOut, "{r:?}");
    let waits: Vec<&str> = r
        .message
        .lines()
        .filter(|l| l.contains(" thread ") && l.contains("a futex wait on address 0x"))
        .collect();
    let address = |l: &str| {
        let at = l.find("on address 0x").unwrap() + "on address ".len();
        l[at..].split(':').next().unwrap().to_owned()
    };
    let mut addresses: Vec<String> = waits.iter().map(|l| address(l)).collect();
    addresses.sort();
    addresses.dedup();
    // The two lockers wait on the two mutexes; the main thread waits in join on a third.
    assert!(
        waits.len() >= 3 && addresses.len() >= 3,
        "expected three threads in futex waits on three addresses: {r:?}"
    );
}

/// The supervisor leads a session of its own, apart from the test process's: so the test
/// process's death never makes the supervisor's process group an orphaned group of that
/// session, which the kernel would send SIGHUP (killing the supervisor before its cleanup)
/// and SIGCONT (waking a supervisor a test had stopped) if it held a stopped process.
#[test]
fn the_supervisor_leads_a_session_of_its_own() {
    isolated(|| {
        let supervisor = nix::unistd::getppid();
        let sid = nix::unistd::getsid(Some(supervisor)).unwrap();
        assert_eq!(
            sid, supervisor,
            "the supervisor (pid {supervisor}) is in session {sid}, not one of its own"
        );
    });
}

#[test]
fn a_stray_child_is_stopped_and_named() {
    let r = report(|| {
        let _ = student(|| unsafe { fork() }.unwrap());
        let _ = nix::sys::wait::wait();
    });
    assert_eq!(r.verdict, Verdict::Failed, "{r:?}");
    assert!(
        r.message
            .contains("a child process returned into the test instead of exiting"),
        "{r:?}"
    );
}

#[test]
fn a_zombie_is_a_leak_with_evidence() {
    let r = report(|| {
        if let ForkResult::Child = unsafe { fork() }.unwrap() {
            unsafe { libc::_exit(0) }
        }
        poll::until(Duration::from_secs(2), "a zombie child", || {
            procfs::children(getpid())
                .iter()
                .any(|c| c.state == 'Z')
                .then_some(())
        });
    });
    assert_eq!(r.verdict, Verdict::Leaked, "{r:?}");
    assert!(
        r.message
            .contains("is a zombie (state Z): it exited but nobody called waitpid on it"),
        "{r:?}"
    );
}

#[test]
fn a_setsid_daemon_is_reported_and_killed() {
    let r = report(|| {
        let (rd, wr) = pipe().unwrap();
        match unsafe { fork() }.unwrap() {
            ForkResult::Child => {
                setsid().unwrap();
                if let ForkResult::Child = unsafe { fork() }.unwrap() {
                    let _ = nix::unistd::write(&wr, format!("{}\n", getpid()).as_bytes());
                    loop {
                        nix::unistd::pause();
                    }
                }
                unsafe { libc::_exit(0) }
            }
            ForkResult::Parent { child } => {
                waitpid(child, None).unwrap();
                drop(wr);
                let mut buf = [0u8; 16];
                let n = nix::unistd::read(&rd, &mut buf).unwrap();
                println!("daemon={}", String::from_utf8_lossy(&buf[..n]).trim());
            }
        }
    });
    assert_eq!(r.verdict, Verdict::Leaked, "{r:?}");
    assert!(
        r.message.contains("still alive after the test ended"),
        "{r:?}"
    );
    assert_gone(printed(&r, "daemon"));
}

const SEM_KEY: i32 = 0x05ca_7a01;

#[test]
fn a_leaked_semaphore_is_reported_and_removed() {
    let r = report(|| {
        let id = unsafe { libc::semget(SEM_KEY, 1, libc::IPC_CREAT | 0o600) };
        assert!(id >= 0);
    });
    assert_eq!(r.verdict, Verdict::Leaked, "{r:?}");
    assert!(
        r.message.contains("semaphore set") && r.message.contains("IPC_RMID"),
        "{r:?}"
    );
    assert!(
        !oskata_harness::sysvipc::list()
            .iter()
            .any(|o| o.key == SEM_KEY)
    );
}

#[test]
fn an_open_fd_is_a_leak_when_asked() {
    let r = Isolation::new().check_fds().report(|| {
        std::mem::forget(std::fs::File::open("/dev/null").unwrap());
    });
    assert_eq!(r.verdict, Verdict::Leaked, "{r:?}");
    assert!(r.message.contains("/dev/null"), "{r:?}");
}

#[test]
fn the_fd_check_passes_a_body_that_opens_and_closes_nothing() {
    let r = Isolation::new().check_fds().report(|| {});
    assert!(r.passed(), "{r:?}");
}

#[test]
fn the_fd_check_names_only_the_fd_the_body_leaked() {
    let r = Isolation::new().check_fds().report(|| {
        std::mem::forget(std::fs::File::open("/dev/null").unwrap());
    });
    assert_eq!(r.verdict, Verdict::Leaked, "{r:?}");
    let leaked: Vec<&str> = r
        .message
        .lines()
        .filter(|l| l.contains("is still open in the test process"))
        .collect();
    assert!(
        leaked.len() == 1 && leaked[0].contains("(/dev/null)"),
        "{r:?}"
    );
}

#[test]
fn the_fd_listing_leaves_out_its_own_descriptor() {
    isolated(|| {
        let me = getpid();
        let first = procfs::fds(me).unwrap();
        let second = procfs::fds(me).unwrap();
        assert_eq!(first, second);
        let own = format!("/proc/{me}/fd");
        assert!(
            !first.iter().any(|f| f.target == own),
            "the listing shows the fd that read it: {first:?}"
        );
    });
}

#[test]
fn the_fd_listing_of_another_process_keeps_the_number_the_reader_uses() {
    isolated(|| {
        let (rd, wr) = pipe().unwrap();
        let null = std::fs::File::open("/dev/null").unwrap();
        let n = std::os::fd::AsRawFd::as_raw_fd(&null);
        // SAFETY: single-threaded body; the child waits for EOF on the pipe and exits.
        let child = match unsafe { fork() }.unwrap() {
            ForkResult::Child => {
                drop(wr);
                let _ = nix::unistd::read(&rd, &mut [0u8; 1]);
                // SAFETY: leaves the child without unwinding into the test.
                unsafe { libc::_exit(0) }
            }
            ForkResult::Parent { child } => child,
        };
        // Now `n` is the lowest free number here, so the reader's own directory stream
        // takes it; in the child it is /dev/null, which must be listed all the same.
        drop(null);
        let theirs = procfs::fds(child).unwrap();
        let probe = std::fs::File::open("/dev/null").unwrap();
        assert_eq!(std::os::fd::AsRawFd::as_raw_fd(&probe), n);
        assert!(
            theirs.iter().any(|f| f.fd == n && f.target == "/dev/null"),
            "fd {n} of the child is missing: {theirs:?}"
        );
        drop(wr);
        waitpid(child, None).unwrap();
    });
}

#[test]
fn a_crash_is_a_crash_and_dumps_no_core() {
    let r = report(|| {
        assert_eq!(
            nix::sys::resource::getrlimit(nix::sys::resource::Resource::RLIMIT_CORE)
                .unwrap()
                .0,
            0
        );
        unsafe { libc::raise(libc::SIGSEGV) };
    });
    assert_eq!(r.verdict, Verdict::Crashed, "{r:?}");
    assert!(r.message.contains("SIGSEGV"), "{r:?}");
}

#[test]
fn exit_in_the_test_process_is_named() {
    let r = report(|| std::process::exit(3));
    assert_eq!(r.verdict, Verdict::Failed, "{r:?}");
    assert!(r.message.contains("exited with status 3"), "{r:?}");
}

#[test]
fn signals_start_at_their_defaults() {
    isolated(|| {
        let status = procfs::status(getpid()).unwrap();
        assert_eq!(
            status.signal_mask("SigIgn"),
            Some(0),
            "SIGPIPE and friends must not be ignored"
        );
        assert_eq!(status.signal_mask("SigBlk"), Some(0));
    });
}

#[test]
fn a_flood_of_output_is_bounded_and_does_not_stall() {
    let r = report(|| {
        let line = [b'x'; 1023];
        for _ in 0..(32 << 10) {
            std::io::Write::write_all(&mut std::io::stdout(), &line).unwrap();
            println!();
        }
    });
    assert!(r.passed(), "{r:?}");
    assert!(
        r.output.len() < 64 << 10 && r.output.contains("bytes of output left out"),
        "{}",
        r.output.len()
    );
}

#[test]
fn the_scratch_dir_is_removed() {
    let r = report(|| {
        let dir = scratch_dir();
        std::fs::write(dir.join("file"), "x").unwrap();
        println!("scratch={}", dir.display());
    });
    assert!(r.passed(), "{r:?}");
    let at = r.output.find("scratch=").unwrap();
    let dir = r.output[at + 8..].lines().next().unwrap();
    assert!(!Path::new(dir).exists(), "{dir} was left behind");
}

#[test]
fn the_body_is_its_own_group_and_a_subreaper() {
    isolated(|| {
        let me = procfs::stat(getpid()).unwrap();
        assert_eq!(me.pgrp, me.pid);
        let mut flag: libc::c_int = 0;
        assert_eq!(
            unsafe { libc::prctl(libc::PR_GET_CHILD_SUBREAPER, &mut flag) },
            0
        );
        assert_eq!(flag, 1);
    });
}

#[test]
fn without_a_namespace_a_used_semaphore_is_still_caught() {
    let r = Isolation::new().without_namespaces().report(|| {
        let id = unsafe { libc::semget(libc::IPC_PRIVATE, 1, libc::IPC_CREAT | 0o600) };
        assert!(id >= 0);
        let mut op = libc::sembuf {
            sem_num: 0,
            sem_op: 1,
            sem_flg: 0,
        };
        assert_eq!(unsafe { libc::semop(id, &mut op, 1) }, 0);
        println!("semid={id}");
    });
    assert_eq!(r.verdict, Verdict::Leaked, "{r:?}");
    assert!(r.message.contains("no private IPC namespace"), "{r:?}");
    let id = printed(&r, "semid") as i32;
    assert!(
        !oskata_harness::sysvipc::list().iter().any(|o| o.id == id),
        "semaphore set {id} was left"
    );
}

#[test]
#[should_panic(expected = "calls isolated() twice")]
fn a_second_isolated_body_in_one_test_is_refused() {
    isolated(|| {});
    isolated(|| {});
}

#[test]
fn the_body_starts_with_only_the_standard_fds() {
    isolated(|| {
        let extra: Vec<procfs::Fd> = procfs::fds(getpid())
            .unwrap()
            .into_iter()
            .filter(|f| f.fd > 2 && f.fd < 900 && !f.target.starts_with("/proc/"))
            .collect();
        assert!(extra.is_empty(), "inherited fds: {extra:?}");
    });
}

#[test]
fn a_controlling_terminal_is_given_when_asked() {
    Isolation::new().controlling_terminal().run(|| {
        let me = procfs::stat(getpid()).unwrap();
        assert_eq!(me.session, me.pid, "the body leads its own session");
        assert_ne!(me.tty_nr, 0, "the body has a controlling terminal");
    });
}

#[test]
fn without_asking_there_is_no_terminal() {
    isolated(|| {
        let me = procfs::stat(getpid()).unwrap();
        assert_eq!((me.session, me.tty_nr), (me.pid, 0));
    });
}

#[test]
fn kill_minus_one_is_refused_and_other_kills_work() {
    isolated(|| {
        assert_eq!(
            nix::sys::signal::kill(Pid::from_raw(-1), None),
            Err(nix::errno::Errno::EPERM)
        );
        assert_eq!(nix::sys::signal::kill(getpid(), None), Ok(()));
        let me = procfs::stat(getpid()).unwrap();
        assert_eq!(
            nix::sys::signal::kill(Pid::from_raw(-me.pgrp), None),
            Ok(())
        );
    });
}

#[test]
fn the_body_works_in_its_scratch_dir() {
    isolated(|| assert_eq!(std::env::current_dir().unwrap(), scratch_dir()));
}

/// Where the helper below writes what the outer test needs to know.
const PIDFILE_ENV: &str = "OSKATA_TEST_PIDFILE";

/// Not a test on its own: the body that `killing_the_test_process_cleans_up_after_it` runs
/// in a test process of its own and then kills. It leaves a sleeping child and says who is who.
#[test]
#[ignore = "run by killing_the_test_process_cleans_up_after_it"]
fn helper_a_body_that_waits_to_be_abandoned() {
    let Ok(pidfile) = std::env::var(PIDFILE_ENV) else {
        return;
    };
    Isolation::new().deadline(Duration::from_secs(60)).run(|| {
        // SAFETY: the body process is single-threaded.
        let child = match unsafe { fork() }.unwrap() {
            ForkResult::Child => loop {
                nix::unistd::pause();
            },
            ForkResult::Parent { child } => child,
        };
        let line = format!(
            "supervisor={} child={child} scratch={}\n",
            nix::unistd::getppid(),
            scratch_dir().display()
        );
        std::fs::write(format!("{pidfile}.tmp"), line).unwrap();
        std::fs::rename(format!("{pidfile}.tmp"), &pidfile).unwrap();
        loop {
            nix::unistd::pause();
        }
    });
}

/// Ctrl-C in `cargo test`, or a test runner's own timeout, kills the test process while its
/// supervisor runs. The supervisor must notice, kill the body's whole tree and remove its
/// scratch directory, not die at once and orphan them.
#[test]
fn killing_the_test_process_cleans_up_after_it() {
    isolated(|| {
        let pidfile = scratch_dir().join("pids");
        let mut test_process = std::process::Command::new(std::env::current_exe().unwrap())
            .args([
                "helper_a_body_that_waits_to_be_abandoned",
                "--exact",
                "--ignored",
                "--nocapture",
            ])
            .env(PIDFILE_ENV, &pidfile)
            .stdout(std::process::Stdio::null())
            .spawn()
            .unwrap();
        let line = poll::until(Duration::from_secs(20), "the helper's pid file", || {
            std::fs::read_to_string(&pidfile).ok()
        });
        let field = |key: &str| -> String {
            let at = line.find(&format!("{key}=")).unwrap() + key.len() + 1;
            line[at..].split_whitespace().next().unwrap().to_owned()
        };
        let supervisor = Pid::from_raw(field("supervisor").parse().unwrap());
        let child: i64 = field("child").parse().unwrap();
        let scratch = field("scratch");
        assert!(Path::new(&scratch).exists());

        test_process.kill().unwrap();
        test_process.wait().unwrap();
        // The supervisor is re-parented to this body (a subreaper) when its parent dies.
        poll::until(
            Duration::from_secs(10),
            "the abandoned supervisor to exit",
            || {
                procfs::stat(supervisor)
                    .map_or(true, |s| s.state == 'Z')
                    .then_some(())
            },
        );
        let _ = waitpid(supervisor, None);
        assert_gone(child);
        assert!(!Path::new(&scratch).exists(), "{scratch} was left behind");
    });
}

/// Forks a child that holds itself alive with `poll::hold`, releasable through a pipe, and
/// exits with 1 when released or 2 when its parent was seen waiting for it. `parent` runs in
/// the test process with the child's pid and the pipe's write end.
fn held_child(parent: impl FnOnce(Pid, std::os::fd::OwnedFd)) {
    let (r, w) = pipe().unwrap();
    // SAFETY: the body is single-threaded; the child only polls and calls _exit.
    match unsafe { fork() }.unwrap() {
        ForkResult::Child => {
            drop(w);
            let released = || {
                let mut fds = [nix::poll::PollFd::new(
                    std::os::fd::AsFd::as_fd(&r),
                    nix::poll::PollFlags::POLLIN,
                )];
                nix::poll::poll(&mut fds, 0u16).unwrap_or(0) > 0
            };
            let code = match poll::hold(released) {
                poll::Held::Released => 1,
                poll::Held::WaitedOnBy(p) if p == nix::unistd::getppid() => 2,
                poll::Held::WaitedOnBy(_) => 3,
            };
            // SAFETY: leaves the child without unwinding into the test.
            unsafe { libc::_exit(code) }
        }
        ForkResult::Parent { child } => {
            drop(r);
            parent(child, w);
        }
    }
}

#[test]
fn hold_names_a_parent_that_waits_for_the_held_process() {
    isolated(|| {
        held_child(|child, _w| {
            let status = waitpid(child, None).unwrap();
            assert_eq!(status, nix::sys::wait::WaitStatus::Exited(child, 2));
        });
    });
}

#[test]
fn hold_returns_on_release_even_when_the_releaser_then_waits() {
    isolated(|| {
        held_child(|child, w| {
            nix::unistd::write(&w, b"go").unwrap();
            let status = waitpid(child, None).unwrap();
            assert_eq!(status, nix::sys::wait::WaitStatus::Exited(child, 1));
        });
    });
}

#[test]
fn a_wait_for_another_child_is_not_waiting_for_the_held_one() {
    isolated(|| {
        held_child(|child, w| {
            // SAFETY: single-threaded body; the other child sleeps a little and exits.
            let other = match unsafe { fork() }.unwrap() {
                ForkResult::Child => {
                    std::thread::sleep(Duration::from_millis(300));
                    // SAFETY: leaves the child at once.
                    unsafe { libc::_exit(0) }
                }
                ForkResult::Parent { child } => child,
            };
            waitpid(other, None).unwrap();
            assert!(
                procfs::stat(child).is_ok_and(|s| s.state != 'Z'),
                "released itself"
            );
            nix::unistd::write(&w, b"go").unwrap();
            let status = waitpid(child, None).unwrap();
            assert_eq!(status, nix::sys::wait::WaitStatus::Exited(child, 1));
        });
    });
}
