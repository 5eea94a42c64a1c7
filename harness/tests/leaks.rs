//! The leak check's promises on what a test leaves outside its scratch directory, each shown
//! on a body that makes the mistake: POSIX message queues, shared memory and named semaphores
//! never unlinked; files left in `/tmp`, `TMPDIR` and the directory the tests were started
//! from; a thread nobody joined; leaks made before the fd table was filled up; a bind mount
//! left under the scratch directory. Each is a leak with evidence, and nothing of it is left
//! on the machine afterwards (checked from outside, in the test process). A body that makes
//! the same object and removes it passes.
//!
//! Every test here takes [`SHARED`]: some bodies write to the machine's own `/tmp` and
//! `/dev/shm` and to the starting directory, where the leak check of a body running at the
//! same time would see their files.
use std::ffi::CString;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

use nix::unistd::{ForkResult, Uid, fork, getpid};
use oskata_harness::{Isolation, Report, Verdict, poll, procfs};

/// Held by every test of this file while its body runs (see the file's doc).
static SHARED: Mutex<()> = Mutex::new(());

fn shared() -> MutexGuard<'static, ()> {
    SHARED.lock().unwrap_or_else(|e| e.into_inner())
}

/// Runs `body` isolated (in the namespaces the kernel permits) and returns the report.
fn report(body: impl FnOnce()) -> Report {
    let _one_at_a_time = shared();
    Isolation::new()
        .deadline(Duration::from_secs(5))
        .report(body)
}

/// Runs `body` isolated as on a machine that permits no namespace: the machine's own `/tmp`,
/// `/dev/shm` and `/dev/mqueue`.
fn report_without_namespaces(body: impl FnOnce()) -> Report {
    let _one_at_a_time = shared();
    Isolation::new()
        .deadline(Duration::from_secs(5))
        .without_namespaces()
        .report(body)
}

fn assert_says(r: &Report, words: &str) {
    assert!(r.message.contains(words), "no {words:?} in {r:?}");
}

fn c(name: &str) -> CString {
    CString::new(name).unwrap()
}

/// Whether the machine's `/dev/mqueue` is an mqueue mount this process can list.
fn hosts_mqueue() -> bool {
    procfs::mounts(getpid())
        .unwrap()
        .iter()
        .any(|m| m.fstype == "mqueue" && m.point == Path::new("/dev/mqueue"))
}

/// Whether a POSIX message queue `name` exists in this process's IPC namespace.
fn queue_exists(name: &str) -> bool {
    // SAFETY: mq_open with a valid C string and no O_CREAT takes no further arguments.
    let q = unsafe { libc::mq_open(c(name).as_ptr(), libc::O_RDONLY) };
    if q >= 0 {
        // SAFETY: closes the descriptor just opened.
        unsafe { libc::mq_close(q) };
    }
    q >= 0
}

/// Makes the message queue `name` with one 5-byte message in it, and closes it.
fn make_queue(name: &str) {
    // SAFETY: mq_open with O_CREAT takes a mode and an attribute pointer (null: defaults).
    let q = unsafe {
        libc::mq_open(
            c(name).as_ptr(),
            libc::O_CREAT | libc::O_RDWR,
            0o600 as libc::mode_t,
            std::ptr::null::<libc::mq_attr>(),
        )
    };
    assert!(q >= 0, "mq_open: {}", std::io::Error::last_os_error());
    // SAFETY: sends 5 bytes from a live buffer on the queue just opened.
    assert_eq!(unsafe { libc::mq_send(q, c"hello".as_ptr(), 5, 0) }, 0);
    // SAFETY: closes the queue descriptor; the queue itself stays until mq_unlink.
    unsafe { libc::mq_close(q) };
}

/// Makes the shared memory object `name` of 4096 bytes, and closes it.
fn make_shm(name: &str) {
    // SAFETY: shm_open with a valid C string, flags and mode.
    let fd = unsafe { libc::shm_open(c(name).as_ptr(), libc::O_CREAT | libc::O_RDWR, 0o600) };
    assert!(fd >= 0, "shm_open: {}", std::io::Error::last_os_error());
    // SAFETY: sizes and closes the fd just opened.
    unsafe {
        assert_eq!(libc::ftruncate(fd, 4096), 0);
        libc::close(fd);
    }
}

/// Makes the named semaphore `name`, and closes it.
fn make_sem(name: &str) {
    // SAFETY: sem_open with O_CREAT takes a mode and an initial value.
    let sem = unsafe {
        libc::sem_open(
            c(name).as_ptr(),
            libc::O_CREAT,
            0o600 as libc::mode_t,
            1 as libc::c_uint,
        )
    };
    assert_ne!(sem, libc::SEM_FAILED, "{}", std::io::Error::last_os_error());
    // SAFETY: closes the semaphore just opened; it stays until sem_unlink.
    unsafe { libc::sem_close(sem) };
}

const QUEUE: &str = "/leaks-selftest-queue";

#[test]
fn a_message_queue_nobody_unlinked_is_reported_and_removed() {
    let r = report(|| make_queue(QUEUE));
    if r.message
        .contains("POSIX message queues left by the test are not reported")
    {
        println!(
            "note: POSIX message queues cannot be listed here: {}",
            r.message
        );
        // SAFETY: removes the queue, should it be in this namespace.
        unsafe { libc::mq_unlink(c(QUEUE).as_ptr()) };
        return;
    }
    assert_eq!(r.verdict, Verdict::Leaked, "{r:?}");
    assert_says(
        &r,
        "POSIX message queue /leaks-selftest-queue was left behind: nobody called mq_unlink (mode 600",
    );
    assert_says(&r, "5 bytes queued");
    assert!(!queue_exists(QUEUE), "{QUEUE} is still on the machine");
}

#[test]
fn a_message_queue_unlinked_passes() {
    let r = report(|| {
        make_queue("/leaks-selftest-queue-unlinked");
        // SAFETY: mq_unlink with a valid C string.
        assert_eq!(
            unsafe { libc::mq_unlink(c("/leaks-selftest-queue-unlinked").as_ptr()) },
            0
        );
    });
    assert!(r.passed(), "{r:?}");
}

const SHM: &str = "/leaks-selftest-shm";
const SEM: &str = "/leaks-selftest-sem";

#[test]
fn shared_memory_and_a_named_semaphore_nobody_unlinked_are_reported_and_removed() {
    let r = report(|| {
        make_shm(SHM);
        make_sem(SEM);
    });
    assert_eq!(r.verdict, Verdict::Leaked, "{r:?}");
    assert_says(
        &r,
        "POSIX shared memory object /leaks-selftest-shm was left behind: nobody called shm_unlink (4096 bytes, \
         mode 600",
    );
    assert_says(
        &r,
        "POSIX named semaphore /leaks-selftest-sem was left behind: nobody called sem_unlink",
    );
    for left in [
        "/dev/shm/leaks-selftest-shm",
        "/dev/shm/sem.leaks-selftest-sem",
    ] {
        assert!(!Path::new(left).exists(), "{left} is still on the machine");
    }
}

#[test]
fn shared_memory_and_a_named_semaphore_unlinked_pass() {
    let r = report(|| {
        make_shm("/leaks-selftest-shm-unlinked");
        make_sem("/leaks-selftest-sem-unlinked");
        // SAFETY: shm_unlink and sem_unlink with valid C strings.
        unsafe {
            assert_eq!(
                libc::shm_unlink(c("/leaks-selftest-shm-unlinked").as_ptr()),
                0
            );
            assert_eq!(
                libc::sem_unlink(c("/leaks-selftest-sem-unlinked").as_ptr()),
                0
            );
        }
    });
    assert!(r.passed(), "{r:?}");
}

#[test]
fn files_left_in_tmp_and_tmpdir_are_reported_and_removed() {
    let in_tmpdir = std::env::temp_dir().join("leaks-selftest-in-tmpdir");
    let inside = in_tmpdir.clone();
    let r = report(move || {
        std::fs::write("/tmp/leaks-selftest-file", "abc").unwrap();
        std::fs::create_dir_all("/tmp/leaks-selftest-dir/sub").unwrap();
        std::fs::write("/tmp/leaks-selftest-dir/sub/file", "x").unwrap();
        std::fs::write(&inside, "x").unwrap();
    });
    assert_eq!(r.verdict, Verdict::Leaked, "{r:?}");
    assert_says(
        &r,
        "file /tmp/leaks-selftest-file was left behind by the test (regular file, 3 bytes, mode 644",
    );
    assert_says(
        &r,
        "file /tmp/leaks-selftest-dir was left behind by the test (directory",
    );
    assert_says(&r, "leaks-selftest-in-tmpdir was left behind by the test");
    for left in [
        Path::new("/tmp/leaks-selftest-file"),
        Path::new("/tmp/leaks-selftest-dir"),
        &in_tmpdir,
    ] {
        assert!(!left.exists(), "{} is still on the machine", left.display());
    }
}

#[test]
fn a_file_in_tmp_that_the_test_removes_passes() {
    let r = report(|| {
        std::fs::write("/tmp/leaks-selftest-removed", "x").unwrap();
        std::fs::remove_file("/tmp/leaks-selftest-removed").unwrap();
    });
    assert!(r.passed(), "{r:?}");
}

/// Runs `body` in the directory the test binary was started from, or prints `skip=` and
/// returns when that directory is not writable (as for `nobody` in CI).
fn in_start_dir(start: &Path, body: impl FnOnce()) {
    std::env::set_current_dir(start).unwrap();
    match std::fs::write("leaks-selftest-probe", "") {
        Ok(()) => std::fs::remove_file("leaks-selftest-probe").unwrap(),
        Err(e) => return println!("skip=the starting directory is not writable here ({e})"),
    }
    body();
}

#[test]
fn a_file_left_in_the_starting_directory_after_a_chdir_is_reported_and_removed() {
    let start: PathBuf = std::fs::canonicalize(std::env::current_dir().unwrap()).unwrap();
    let dir = start.clone();
    let r = report(move || {
        in_start_dir(&dir, || {
            std::fs::write("leaks-selftest-relative", "x").unwrap();
            std::fs::write(dir.join("leaks-selftest-absolute"), "x").unwrap();
        })
    });
    if r.output.contains("skip=") {
        return println!("note: {}", r.output.trim());
    }
    assert_eq!(r.verdict, Verdict::Leaked, "{r:?}");
    for name in ["leaks-selftest-relative", "leaks-selftest-absolute"] {
        let path = start.join(name);
        assert_says(
            &r,
            &format!(
                "file {} was left behind by the test in the directory the tests were started from",
                path.display()
            ),
        );
        assert!(!path.exists(), "{} is still on the machine", path.display());
    }
}

#[test]
fn a_file_in_the_starting_directory_that_the_test_removes_passes() {
    let start = std::env::current_dir().unwrap();
    let r = report(move || {
        in_start_dir(&start, || {
            std::fs::write("leaks-selftest-removed", "x").unwrap();
            std::fs::remove_file("leaks-selftest-removed").unwrap();
        })
    });
    assert!(r.passed(), "{r:?}");
}

/// A directory outside every watched one, made by the test process before the body runs (and
/// by the supervisor, which runs the test function again: the same path, so the same
/// directory), with a file `keep` in it.
fn outside_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("oskata-{name}"));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("keep"), "must survive").unwrap();
    dir
}

#[test]
fn without_a_mount_namespace_posix_objects_and_files_in_tmp_are_still_caught() {
    let keep = outside_dir("leaks-selftest-keep");
    let target = keep.clone();
    let hosted = hosts_mqueue();
    // What a failed run of this test may have left on the machine, which the body's leak
    // check would take for the machine's own.
    // SAFETY: mq_unlink with a valid C string; a missing queue is no harm.
    unsafe { libc::mq_unlink(c("/leaks-selftest-shared-queue").as_ptr()) };
    for left in [
        "/dev/shm/leaks-selftest-shared-shm",
        "/tmp/leaks-selftest-shared-file",
        "/tmp/leaks-selftest-shared-link",
    ] {
        let _ = std::fs::remove_file(left);
    }
    let _ = std::fs::remove_dir_all("/tmp/leaks-selftest-shared-dir");
    let r = report_without_namespaces(move || {
        make_shm("/leaks-selftest-shared-shm");
        make_queue("/leaks-selftest-shared-queue");
        std::fs::write("/tmp/leaks-selftest-shared-file", "x").unwrap();
        std::fs::create_dir_all("/tmp/leaks-selftest-shared-dir").unwrap();
        // Links to a directory outside: removed as links, never followed.
        std::os::unix::fs::symlink(&target, "/tmp/leaks-selftest-shared-dir/link").unwrap();
        std::os::unix::fs::symlink(&target, "/tmp/leaks-selftest-shared-link").unwrap();
    });
    assert_eq!(r.verdict, Verdict::Leaked, "{r:?}");
    assert_says(&r, "/tmp and /dev/shm");
    assert_says(&r, "are the machine's own in this test");
    assert_says(
        &r,
        "POSIX shared memory object /leaks-selftest-shared-shm was left behind: nobody called shm_unlink",
    );
    assert_says(
        &r,
        "file /tmp/leaks-selftest-shared-file was left behind by the test",
    );
    assert_says(
        &r,
        "file /tmp/leaks-selftest-shared-dir was left behind by the test (directory",
    );
    assert_says(
        &r,
        "file /tmp/leaks-selftest-shared-link was left behind by the test (symbolic link",
    );
    if hosted {
        assert_says(
            &r,
            "POSIX message queue /leaks-selftest-shared-queue was left behind: nobody called mq_unlink",
        );
    } else {
        assert_says(
            &r,
            "POSIX message queues left by the test are not reported: there is no mqueue filesystem on /dev/mqueue",
        );
        // SAFETY: mq_unlink with a valid C string: the queue the body left where none lists it.
        assert_eq!(
            unsafe { libc::mq_unlink(c("/leaks-selftest-shared-queue").as_ptr()) },
            0,
            "the queue should be in the machine's IPC namespace"
        );
    }
    assert!(!queue_exists("/leaks-selftest-shared-queue"));
    for left in [
        "/dev/shm/leaks-selftest-shared-shm",
        "/tmp/leaks-selftest-shared-file",
        "/tmp/leaks-selftest-shared-dir",
        "/tmp/leaks-selftest-shared-link",
    ] {
        assert!(
            std::fs::symlink_metadata(left).is_err(),
            "{left} is still on the machine"
        );
    }
    assert_eq!(
        std::fs::read_to_string(keep.join("keep")).unwrap(),
        "must survive"
    );
    std::fs::remove_dir_all(&keep).unwrap();
}

/// Without a private `/tmp`, a file another program makes there while the test runs, and
/// keeps open, is that program's: neither reported nor removed. (The other program is a shell
/// started by this test process, outside the body's tree; it makes its file only once the
/// body has asked, and the body returns only once the file is there.)
#[test]
fn without_a_mount_namespace_a_file_another_program_holds_open_is_left_alone() {
    use std::io::{BufRead, Write};
    let theirs = Path::new("/tmp/leaks-selftest-another-programs-log");
    let asked = outside_dir("leaks-selftest-ask").join("asked");
    let _ = std::fs::remove_file(theirs);
    let _ = std::fs::remove_file(&asked);
    // Only in this test process: the supervisor runs this function again up to the report,
    // and a holder started there would be its child, beside the body.
    let holding = std::env::var_os("OSKATA_ISOLATED_TEST").is_none().then(|| {
        let mut cmd = std::process::Command::new("sh");
        cmd.args(["-c", "read go; exec 3>\"$0\"; echo made; exec cat"])
            .arg(theirs)
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped());
        // As a program of the same user, with no capabilities (as the body has none): a
        // process with more capabilities than the reader hides its fds from it.
        // SAFETY: prctl takes integers and is async-signal-safe; errors (EPERM for a normal
        // user, who has nothing to drop) are ignored.
        unsafe {
            std::os::unix::process::CommandExt::pre_exec(&mut cmd, || {
                for cap in 0..64 {
                    libc::prctl(libc::PR_CAPBSET_DROP, cap, 0, 0, 0);
                }
                Ok(())
            });
        }
        let mut holder = cmd.spawn().unwrap();
        let mut to_holder = holder.stdin.take().unwrap();
        let mut from_holder = std::io::BufReader::new(holder.stdout.take().unwrap());
        let ask = asked.clone();
        let other = std::thread::spawn(move || {
            poll::until(Duration::from_secs(10), "the body's request", || {
                ask.exists().then_some(())
            });
            writeln!(to_holder, "go").unwrap();
            let mut line = String::new();
            from_holder.read_line(&mut line).unwrap();
            assert_eq!(line.trim(), "made");
            to_holder
        });
        (holder, other)
    });
    let ask = asked.clone();
    let r = report_without_namespaces(move || {
        std::fs::write(&ask, "go").unwrap();
        poll::until(Duration::from_secs(4), "the other program's file", || {
            theirs.exists().then_some(())
        });
        std::fs::write("/tmp/leaks-selftest-the-tests-own", "x").unwrap();
    });
    let (mut holder, other) = holding.unwrap();
    let to_holder = other.join().unwrap();
    assert_says(
        &r,
        "file /tmp/leaks-selftest-the-tests-own was left behind by the test",
    );
    assert!(
        !r.message.contains("leaks-selftest-another-programs-log"),
        "another program's open file was taken for the test's: {r:?}"
    );
    assert!(theirs.exists(), "another program's open file was removed");
    drop(to_holder);
    holder.wait().unwrap();
    std::fs::remove_file(theirs).unwrap();
    std::fs::remove_dir_all(asked.parent().unwrap()).unwrap();
}

/// A test that fails has what it left removed all the same (here on the machine's own `/tmp`).
#[test]
fn a_failing_test_has_its_leftovers_removed_too() {
    let r = report_without_namespaces(|| {
        std::fs::write("/tmp/leaks-selftest-failing", "x").unwrap();
        panic!("the test failed");
    });
    assert_eq!(r.verdict, Verdict::Failed, "{r:?}");
    assert!(r.message.starts_with("the test failed"), "{r:?}");
    assert!(!Path::new("/tmp/leaks-selftest-failing").exists());
}

#[test]
fn a_thread_nobody_joined_is_reported() {
    let r = report(|| {
        std::thread::Builder::new()
            .name("leaky-worker".into())
            .spawn(|| {
                loop {
                    std::thread::park();
                }
            })
            .unwrap();
    });
    assert_eq!(r.verdict, Verdict::Leaked, "{r:?}");
    assert_says(
        &r,
        "(leaky-worker) is still running after the test returned: a thread that nobody joined",
    );
    assert_says(&r, "in the system call futex");
}

/// A thread left holding the lock of stdout must not keep the body from reporting.
#[test]
fn a_thread_left_holding_stdout_is_still_reported() {
    let r = report(|| {
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let _stdout = std::io::stdout().lock();
            tx.send(()).unwrap();
            loop {
                std::thread::park();
            }
        });
        rx.recv().unwrap();
    });
    assert_eq!(r.verdict, Verdict::Leaked, "{r:?}");
    assert_says(&r, "is still running after the test returned");
}

#[test]
fn a_joined_thread_passes() {
    let r = report(|| std::thread::spawn(|| 1 + 1).join().map(drop).unwrap());
    assert!(r.passed(), "{r:?}");
}

/// A thread that has sent its result and is on its way out when the test returns is not
/// one left running: the check gives it a moment to finish.
#[test]
fn a_thread_that_finished_its_work_passes_unjoined() {
    let r = report(|| {
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || tx.send(42).unwrap());
        assert_eq!(rx.recv().unwrap(), 42);
    });
    assert!(r.passed(), "{r:?}");
}

#[test]
fn leaks_made_before_the_fd_table_filled_up_are_still_reported() {
    let r = report(|| {
        // SAFETY: the body is single-threaded; the child only exits.
        if let ForkResult::Child = unsafe { fork() }.unwrap() {
            // SAFETY: leaves the child at once.
            unsafe { libc::_exit(0) }
        }
        poll::until(Duration::from_secs(2), "a zombie child", || {
            procfs::children(getpid())
                .iter()
                .any(|c| c.state == 'Z')
                .then_some(())
        });
        std::fs::write("/tmp/leaks-selftest-before-full", "x").unwrap();
        // Small and for good (the hard limit too), so only the harness's reserve is left.
        let nofile = nix::sys::resource::Resource::RLIMIT_NOFILE;
        nix::sys::resource::setrlimit(nofile, 2048, 2048).unwrap();
        let mut opened = 0;
        while let Ok(f) = std::fs::File::open("/dev/null") {
            std::mem::forget(f);
            opened += 1;
        }
        println!("opened={opened}");
    });
    assert_eq!(r.verdict, Verdict::Leaked, "{r:?}");
    assert_says(&r, "the fd table was full when the test returned");
    assert_says(&r, "RLIMIT_NOFILE 2048");
    assert_says(&r, "is a zombie (state Z)");
    assert_says(
        &r,
        "file /tmp/leaks-selftest-before-full was left behind by the test",
    );
    assert!(!Path::new("/tmp/leaks-selftest-before-full").exists());
}

/// Bind-mounts `from` on `to` in the body; prints `skip=` where mount is refused.
fn bind(from: &Path, to: &Path) {
    use nix::mount::{MsFlags, mount};
    if let Err(e) = mount(Some(from), to, None::<&str>, MsFlags::MS_BIND, None::<&str>) {
        println!("skip=bind mount refused ({e})");
    }
}

/// A bind mount of a directory outside, left under the scratch directory, must not lead the
/// removal of the scratch directory into that directory: it is a leak, detached, and the file
/// outside survives. `isolation`: with or without namespaces; `outside`: the directory.
fn a_bind_mount_under_the_scratch_dir(
    isolation: fn(Box<dyn FnOnce()>) -> Report,
    outside: PathBuf,
) {
    std::fs::create_dir_all(&outside).unwrap();
    std::fs::write(outside.join("keep"), "must survive").unwrap();
    let from = outside.clone();
    let r = isolation(Box::new(move || {
        if !from.exists() {
            return println!(
                "skip={} is not visible in the body's private /tmp",
                from.display()
            );
        }
        let m = oskata_harness::scratch_dir().join("m");
        std::fs::create_dir(&m).unwrap();
        bind(&from, &m);
    }));
    if r.output.contains("skip=") {
        std::fs::remove_dir_all(&outside).unwrap();
        return println!("note: {}", r.output.trim());
    }
    assert_eq!(r.verdict, Verdict::Leaked, "{r:?}");
    assert_says(&r, "/m (");
    assert_says(&r, "was left behind: nobody unmounted it (umount2)");
    assert_eq!(
        std::fs::read_to_string(outside.join("keep")).unwrap(),
        "must survive",
        "the removal of the scratch directory went through the bind mount"
    );
    let scratch_mounts: Vec<_> = procfs::mounts(getpid())
        .unwrap()
        .into_iter()
        .filter(|m| m.point.to_string_lossy().contains("/oskata-"))
        .collect();
    assert!(
        scratch_mounts.is_empty(),
        "left mounted: {scratch_mounts:?}"
    );
    std::fs::remove_dir_all(&outside).unwrap();
}

/// In the body's own mount namespace (as root, or in a user namespace) the mount never
/// reaches the machine.
#[test]
fn a_bind_mount_left_under_the_scratch_dir_costs_no_file_outside() {
    let outside = if Uid::effective().is_root() {
        PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("leaks-bind-private")
    } else {
        std::env::temp_dir().join("oskata-leaks-bind-private")
    };
    a_bind_mount_under_the_scratch_dir(report, outside);
}

/// In the machine's own mount namespace (root only), the leak check detaches the mount before
/// the supervisor removes the scratch directory.
#[test]
fn without_namespaces_a_bind_mount_left_under_the_scratch_dir_costs_no_file_outside() {
    if !Uid::effective().is_root() {
        return println!("note: skipped, not root (a bind mount on the machine needs root)");
    }
    let outside = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("leaks-bind-shared");
    a_bind_mount_under_the_scratch_dir(report_without_namespaces, outside);
}
