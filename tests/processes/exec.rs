//! processes/exec: fork + exec (执行程序). What the tests observe, never what the code claims:
//! - the status `waitpid` gave back, against what the program itself did (`exit 7`, `false`,
//!   a signal, a name that cannot be started);
//! - the new program's own view of itself: `cat /proc/self/cmdline` prints the argv the kernel
//!   gave it, `ls /proc/self/fd` lists the fds it inherited, `echo $$` its pid;
//! - the caller's children in `/proc` once `run` returned, and that no copy of it came back
//!   into the test;
//! - where the child called the memory allocator: this binary's global allocator notes a call
//!   made in a process forked from the test process (before exec, since exec replaces the
//!   code), and an atexit handler of the test process notes a child that left by exit(3).
//!
//! The contract, clause by clause, and the tests that check it:
//! - argv is `[program, args...]`, the name first: `argv0_is_the_programs_name`,
//!   `arguments_arrive_intact` (spaces, an empty argument, `*`);
//! - a name without a `/` is searched for in PATH, and only there; a name with one is a path:
//!   `a_program_is_found_through_path`,
//!   `a_name_with_a_slash_is_a_path_and_one_without_is_looked_up_in_path_only` (a program of
//!   the same name on PATH, in the current directory and in a subdirectory), and every test
//!   that runs `sh`, `cat` or `ls` names a 127 as a missing PATH search;
//! - the child inherits the caller's fds, stdin and stdout included, except close-on-exec
//!   ones: `fds_cross_exec_unless_close_on_exec`, `stdin_and_stdout_are_the_callers`;
//! - the strings and the argv array are ready before the fork, the child only execs:
//!   `the_child_only_execs` (a program that starts, and one that cannot);
//! - a failed exec ends the child at once with `_exit(127)`, never a return and never exit(3):
//!   `a_program_that_cannot_start_gives_127`, `a_file_that_is_not_executable_gives_127`,
//!   `a_failed_exec_ends_the_child_with_underscore_exit`, and the stray-child guard of
//!   `student()`;
//! - the parent waits for exactly that child and returns what waitpid said:
//!   `exit_status_comes_back`, `a_death_by_signal_comes_back`, `it_waits_for_its_own_child_only`
//!   (an earlier child of the caller, exited and not collected, stays; the status names the pid
//!   the program printed), and every test checks that no child of `run` is left;
//! - a NUL byte in the program or an argument is `EINVAL` and starts nothing:
//!   `a_nul_byte_is_einval_and_starts_nothing`.

// The exercise under test: your stub (by default), the reference solution (`--features
// solutions`), or a shipped mistake that `cargo grade --mistakes` copies into target/.
#[cfg(not(any(feature = "solutions", feature = "mistake")))]
#[path = "../../exercises/processes/exec.rs"]
#[allow(dead_code)] // a stub does not use all of its API yet
mod exec;
#[cfg(all(feature = "solutions", not(feature = "mistake")))]
#[path = "../../solutions/processes/exec.rs"]
mod exec;
#[cfg(feature = "mistake")]
#[path = "../../target/oskata-mistake/processes/exec.rs"]
#[rustfmt::skip] // the copy exists only while the proof runs
mod exec;
use exec::*;

use std::fs::{self, File};
use std::io::{Read, Write};
use std::os::fd::{AsFd, AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::fs::PermissionsExt;
use std::sync::atomic::{AtomicBool, AtomicI32, Ordering};
use std::time::Duration;

use nix::errno::Errno;
use nix::fcntl::{FcntlArg, OFlag, fcntl};
use nix::sys::signal::Signal;
use nix::sys::wait::{WaitStatus, waitpid};
use nix::unistd::{ForkResult, Pid, dup2_stdin, dup2_stdout, fork, pipe2, read};
use oskata_harness::allocator::Noting;
use oskata_harness::evidence::state_word;
use oskata_harness::{body_pid, isolated, poll, procfs, scratch_dir, student};
use rstest::rstest;

/// The pid of the process that armed the child watch; 0 while it is not armed.
static ARMED_IN: AtomicI32 = AtomicI32::new(0);
/// The write end of the child watch's report pipe (non-blocking, close-on-exec).
static REPORT_FD: AtomicI32 = AtomicI32::new(-1);
/// Set in a forked child (in its own copy of memory) once it has reported: one report each.
static REPORTED: AtomicBool = AtomicBool::new(false);

/// The child watch, called by this binary's allocator on every call: in a process forked from
/// the one that armed it (the child, before exec), it writes that process's pid to the report
/// pipe, once.
fn note() {
    let armed = ARMED_IN.load(Ordering::SeqCst);
    if armed == 0 {
        return;
    }
    // SAFETY: getpid(2) has no preconditions.
    let me = unsafe { libc::getpid() };
    if me != armed && !REPORTED.swap(true, Ordering::SeqCst) {
        let pid = me.to_ne_bytes();
        // SAFETY: write(2) of a 4-byte buffer on the stack to the report pipe, which is
        // non-blocking: async-signal-safe, allocates nothing, never waits.
        unsafe { libc::write(REPORT_FD.load(Ordering::SeqCst), pid.as_ptr().cast(), 4) };
    }
}

#[global_allocator]
static ALLOCATOR: Noting = Noting(note);

/// Runs `f` with the watch armed; returns what it returned and the pids of the processes
/// forked meanwhile that called the allocator (before exec, since exec replaces this code).
fn watching_child_allocations<T>(f: impl FnOnce() -> T) -> (T, Vec<Pid>) {
    let (read_end, write_end) = pipe2(OFlag::O_CLOEXEC | OFlag::O_NONBLOCK).expect("pipe2");
    REPORT_FD.store(write_end.as_raw_fd(), Ordering::SeqCst);
    ARMED_IN.store(nix::unistd::getpid().as_raw(), Ordering::SeqCst);
    let got = f();
    ARMED_IN.store(0, Ordering::SeqCst);
    REPORT_FD.store(-1, Ordering::SeqCst);
    drop(write_end);
    (got, pids_in(&read_end))
}

/// The write end of the pipe the test process's atexit handler reports on; -1 when none.
static ATEXIT_FD: AtomicI32 = AtomicI32::new(-1);

/// An atexit handler of the caller's: it runs in any copy of the test process that leaves by
/// exit(3), and writes that process's pid to the pipe.
extern "C" fn callers_atexit_handler() {
    let fd = ATEXIT_FD.load(Ordering::SeqCst);
    if fd >= 0 {
        // SAFETY: getpid(2) has no preconditions.
        let pid = unsafe { libc::getpid() }.to_ne_bytes();
        // SAFETY: write(2) of a 4-byte stack buffer to a non-blocking pipe.
        unsafe { libc::write(fd, pid.as_ptr().cast(), 4) };
    }
}

/// Every pid of 4 native-endian bytes waiting in the non-blocking pipe `fd`.
fn pids_in(fd: &OwnedFd) -> Vec<Pid> {
    let mut pids = Vec::new();
    let mut word = [0u8; 4];
    while let Ok(4) = read(fd, &mut word) {
        pids.push(Pid::from_raw(i32::from_ne_bytes(word)));
    }
    pids
}

/// What `run` returned and what the new program wrote to its stdout.
struct Ran {
    status: WaitStatus,
    out: Vec<u8>,
}

/// A copy of `fd` at the lowest free number >= `at`, with or without close-on-exec.
fn dup_at(fd: impl AsFd, at: i32, cloexec: bool) -> OwnedFd {
    let arg = if cloexec {
        FcntlArg::F_DUPFD_CLOEXEC(at)
    } else {
        FcntlArg::F_DUPFD(at)
    };
    let raw = fcntl(fd, arg).expect("fcntl(F_DUPFD)");
    // SAFETY: fcntl just returned this new fd, and nothing else owns it.
    unsafe { OwnedFd::from_raw_fd(raw) }
}

/// How the call looks in a message: `run("sh", ["-c", "exit 7"])`.
fn call(program: &str, args: &[&str]) -> String {
    format!("run({program:?}, {args:?})")
}

/// Calls the student's `run` with the test's stdout redirected into a pipe (the child
/// inherits it as its fd 1) and stdin on /dev/null; checks that the child was reaped.
fn run_captured(program: &str, args: &[&str]) -> Ran {
    run_beside(program, args, &[])
}

/// [`run_captured`], while the test process has the children `beside` of its own, which `run`
/// must leave as they are.
fn run_beside(program: &str, args: &[&str], beside: &[Pid]) -> Ran {
    run_with(program, args, beside, None)
}

/// [`run_beside`], with the test's stdin a pipe holding `input` (then end of file) when given.
fn run_with(program: &str, args: &[&str], beside: &[Pid], input: Option<&[u8]>) -> Ran {
    let (read_end, write_end) = pipe2(OFlag::O_CLOEXEC).expect("pipe2");
    let saved = dup_at(std::io::stdout(), 10, true);
    dup2_stdout(&write_end).expect("dup2 onto stdout");
    drop(write_end);
    match input {
        Some(bytes) => {
            let (stdin_r, stdin_w) = pipe2(OFlag::O_CLOEXEC).expect("pipe2");
            File::from(stdin_w)
                .write_all(bytes)
                .expect("fill the stdin pipe");
            dup2_stdin(&stdin_r).expect("dup2 onto stdin");
        }
        None => {
            let null = File::open("/dev/null").expect("open /dev/null");
            dup2_stdin(&null).expect("dup2 onto stdin");
        }
    }

    let got = student(|| run(program, args));
    dup2_stdout(&saved).expect("restore stdout");
    drop(saved);
    let status = got.unwrap_or_else(|e| panic!("{} failed: {e}", call(program, args)));
    check_reaped(program, args, status, beside);
    // Every write end is closed now (ours, and the child's, which is gone): read to EOF.
    let mut out = Vec::new();
    File::from(read_end)
        .read_to_end(&mut out)
        .expect("read the program's output");
    Ran { status, out }
}

/// After `run` returned, the test process has no child left but `beside`, untouched: the one
/// `run` started is reaped.
fn check_reaped(program: &str, args: &[&str], status: WaitStatus, beside: &[Pid]) {
    let me = body_pid().expect("inside isolated()");
    assert_ne!(
        status,
        WaitStatus::StillAlive,
        "{} returned StillAlive: that is waitpid's answer with WNOHANG when the child has not ended yet. run \
         waits until the program has ended: call waitpid on the child without WNOHANG",
        call(program, args)
    );
    if let Some(pid) = status.pid() {
        assert!(
            pid.as_raw() > 0,
            "{} returned {status:?}, a status for pid {pid}, which no process has: return what waitpid said \
             about the child run forked",
            call(program, args)
        );
        assert_ne!(
            pid,
            me,
            "{} returned a status for the test process itself ({status:?}): return what waitpid said about the \
             child",
            call(program, args)
        );
        assert!(
            !beside.contains(&pid),
            "{} returned {status:?}, the status of pid {pid}: a child the caller had made earlier and not yet \
             collected, not the one run started. waitpid(-1) (or wait()) takes any child of the caller; wait for \
             the pid fork returned",
            call(program, args)
        );
    }
    let kids = procfs::children(me);
    for &pid in beside {
        assert!(
            kids.iter().any(|k| k.pid == pid.as_raw()),
            "{} returned {status:?}, but pid {pid}, a child the caller had made earlier (exited, waiting to be \
             collected by the caller), is gone: run collected it. run must wait for its own child only, with \
             waitpid on the pid fork returned",
            call(program, args)
        );
    }
    if let Some(kid) = kids
        .iter()
        .find(|k| !beside.contains(&Pid::from_raw(k.pid)))
    {
        panic!(
            "{} returned {status:?}, but pid {} ({}) is still a child of the test process {me} in /proc: run \
             must wait for the child it started (waitpid on its pid) before it returns",
            call(program, args),
            kid.pid,
            state_word(kid.state)
        );
    }
}

/// Fails if the child could not start `program` although it is on PATH (status 127).
fn expect_started(program: &str, args: &[&str], status: WaitStatus) {
    if matches!(status, WaitStatus::Exited(_, 127)) && !program.contains('/') {
        panic!(
            "{} returned {status:?}: 127 means the child could not start {program:?}, which is there to be \
             found. A name without a slash must be searched for in the directories of PATH: execvp does that, \
             execv and execve do not (they take the name as a path in the current directory)",
            call(program, args)
        );
    }
}

/// Fails unless the program exited with `code`, explaining the likely cause.
fn expect_exit(program: &str, args: &[&str], status: WaitStatus, code: i32) {
    expect_started(program, args, status);
    match status {
        WaitStatus::Exited(_, got) if got == code => {}
        other => panic!(
            "{} should return Exited(<child pid>, {code}), the program's own exit status; got {other:?}",
            call(program, args)
        ),
    }
}

#[rstest]
#[case("sh", &["-c", "exit 7"], 7)]
#[case("false", &[], 1)]
#[case("true", &[], 0)]
#[case("sh", &["-c", "exit 255"], 255)]
fn exit_status_comes_back(#[case] program: &str, #[case] args: &[&str], #[case] code: i32) {
    isolated(|| {
        let ran = run_captured(program, args);
        expect_exit(program, args, ran.status, code);
    });
}

#[test]
fn a_death_by_signal_comes_back() {
    isolated(|| {
        let args = ["-c", "kill -USR1 $$"];
        let ran = run_captured("sh", &args);
        expect_started("sh", &args, ran.status);
        assert!(
            matches!(ran.status, WaitStatus::Signaled(_, Signal::SIGUSR1, _)),
            "{} should return Signaled(<child pid>, SIGUSR1, ..): the shell killed itself with SIGUSR1, and \
             waitpid reports that as it is; got {:?}",
            call("sh", &args),
            ran.status
        );
    });
}

#[rstest]
#[case("oskata-no-such-program")]
#[case("/nonexistent/oskata/program")]
fn a_program_that_cannot_start_gives_127(#[case] program: &str) {
    isolated(|| {
        let ran = run_captured(program, &[]);
        assert!(
            matches!(ran.status, WaitStatus::Exited(_, 127)),
            "{program:?} does not exist, so exec fails in the child; the child should then end with _exit(127), \
             as a shell does for \"command not found\", and run should return Exited(<child pid>, 127); got {:?}",
            ran.status
        );
    });
}

#[test]
fn a_file_that_is_not_executable_gives_127() {
    isolated(|| {
        let path = scratch_dir().join("not-executable");
        fs::write(&path, "#!/bin/sh\nexit 0\n").expect("write the script");
        fs::set_permissions(&path, fs::Permissions::from_mode(0o644)).expect("chmod 644");
        let program = path.to_str().expect("utf-8 scratch path");
        let ran = run_captured(program, &[]);
        assert!(
            matches!(ran.status, WaitStatus::Exited(_, 127)),
            "{program:?} has no execute permission, so exec fails (EACCES) in the child; the child should then \
             end with _exit(127) and run should return Exited(<child pid>, 127); got {:?}",
            ran.status
        );
    });
}

#[test]
fn argv0_is_the_programs_name() {
    isolated(|| {
        let ran = run_captured("cat", &["/proc/self/cmdline"]);
        expect_started("cat", &["/proc/self/cmdline"], ran.status);
        let argv: Vec<String> = ran
            .out
            .split(|b| *b == 0)
            .filter(|w| !w.is_empty())
            .map(|w| String::from_utf8_lossy(w).into_owned())
            .collect();
        assert_eq!(
            argv,
            ["cat", "/proc/self/cmdline"],
            "run(\"cat\", [\"/proc/self/cmdline\"]) makes cat print its own argv as the kernel gave it; it \
             printed {argv:?} (status {:?}). argv[0] is the program's own name and the arguments come after it: \
             pass execvp the whole vector [program, args...]. Without argv[0] every argument moves one place \
             left and the first one is taken for the name",
            ran.status
        );
        expect_exit("cat", &["/proc/self/cmdline"], ran.status, 0);
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
        let ran = run_captured("sh", &args);
        expect_started("sh", &args, ran.status);
        let out = String::from_utf8_lossy(&ran.out);
        assert_eq!(
            out,
            "[zero][one][two words][][*]",
            "{} should print [zero][one][two words][][*] (sh -c gives the words after the script to it as $0, \
             $1, ...: each argument arrives as one word, spaces and empty ones included); it printed {out:?} and \
             ended {:?}. The new program's argv must be exactly [program, args...], argv[0] first",
            call("sh", &args),
            ran.status
        );
        expect_exit("sh", &args, ran.status, 0);
    });
}

#[test]
fn a_program_is_found_through_path() {
    isolated(|| {
        let bin = scratch_dir().join("bin");
        fs::create_dir(&bin).expect("mkdir bin");
        let script = bin.join("oskata-hello");
        fs::write(&script, "#!/bin/sh\necho \"hello $1\"\nexit 42\n").expect("write the script");
        fs::set_permissions(&script, fs::Permissions::from_mode(0o755)).expect("chmod 755");
        let path = format!(
            "{}:{}",
            bin.display(),
            std::env::var("PATH").unwrap_or_else(|_| "/usr/bin:/bin".into())
        );
        // SAFETY: the test process has a single thread; nothing reads the environment meanwhile.
        unsafe { std::env::set_var("PATH", &path) };
        let ran = run_captured("oskata-hello", &["world"]);
        expect_exit("oskata-hello", &["world"], ran.status, 42);
        assert_eq!(
            String::from_utf8_lossy(&ran.out),
            "hello world\n",
            "the script {} should have printed its first argument",
            script.display()
        );
    });
}

#[test]
fn a_failed_exec_ends_the_child_with_underscore_exit() {
    isolated(|| {
        let (read_end, write_end) = pipe2(OFlag::O_CLOEXEC | OFlag::O_NONBLOCK).expect("pipe2");
        ATEXIT_FD.store(write_end.as_raw_fd(), Ordering::SeqCst);
        // SAFETY: registers a plain extern "C" function that touches only an atomic and write(2).
        assert_eq!(unsafe { libc::atexit(callers_atexit_handler) }, 0, "atexit");
        let ran = run_captured("oskata-no-such-program", &[]);
        ATEXIT_FD.store(-1, Ordering::SeqCst);
        drop(write_end);
        let ran_in = pids_in(&read_end);
        assert!(
            ran_in.is_empty(),
            "the child of run(\"oskata-no-such-program\", []) could not exec, and then ran the caller's atexit \
             handlers (pid {:?}; it ended {:?}): it left by exit(3), which std::process::exit calls too. exit runs \
             the handlers and flushes the stdio buffers the child copied from its parent, doing the parent's work \
             a second time. After a failed exec, end the child with _exit(127), which does neither",
            ran_in,
            ran.status
        );
        assert!(
            matches!(ran.status, WaitStatus::Exited(_, 127)),
            "the program does not exist, so run should return Exited(<child pid>, 127); got {:?}",
            ran.status
        );
    });
}

#[test]
fn stdin_and_stdout_are_the_callers() {
    isolated(|| {
        let input = b"a line from the caller's stdin\n";
        let ran = run_with("cat", &[], &[], Some(input));
        expect_exit("cat", &[], ran.status, 0);
        assert_eq!(
            String::from_utf8_lossy(&ran.out),
            String::from_utf8_lossy(input),
            "run(\"cat\", []) copies the caller's stdin to the caller's stdout: the child inherits fds 0 and 1 and \
             keeps them across exec. Do not close, reopen or redirect them in the child"
        );
    });
}

#[test]
fn a_name_with_a_slash_is_a_path_and_one_without_is_looked_up_in_path_only() {
    isolated(|| {
        // Three programs with one name: on PATH, in the current directory (the scratch
        // directory), and in its subdirectory `sub`. Each says where it is.
        let dir = scratch_dir();
        let script = |at: &std::path::Path, says: &str| {
            fs::create_dir_all(at).expect("mkdir");
            let file = at.join("oskata-which");
            fs::write(&file, format!("#!/bin/sh\necho {says}\n")).expect("write the script");
            fs::set_permissions(&file, fs::Permissions::from_mode(0o755)).expect("chmod 755");
        };
        script(&dir.join("bin"), "on-PATH");
        script(&dir, "in-the-current-directory");
        script(&dir.join("sub"), "in-sub");
        std::env::set_current_dir(&dir).expect("chdir to the scratch directory");
        let path = format!("{}:/usr/local/bin:/usr/bin:/bin", dir.join("bin").display());
        // SAFETY: the test process has a single thread; nothing reads the environment meanwhile.
        unsafe { std::env::set_var("PATH", &path) };
        for (program, expected, why) in [
            (
                "oskata-which",
                "on-PATH",
                "a name without a slash is searched for in the directories of PATH, and only there: not in the \
                 current directory first (PATH does not name it here)",
            ),
            (
                "sub/oskata-which",
                "in-sub",
                "a name with a slash is a path, relative to the current directory here, and PATH plays no part: \
                 execvp runs it as it is",
            ),
            (
                "./oskata-which",
                "in-the-current-directory",
                "a name with a slash is a path, and ./ is the current directory",
            ),
        ] {
            let ran = run_captured(program, &[]);
            let said = String::from_utf8_lossy(&ran.out);
            assert_eq!(
                said.trim(),
                expected,
                "{} ran the wrong program, or none (it printed {said:?} and ended {:?}; PATH is {path}, the current \
                 directory {}): {why}",
                call(program, &[]),
                ran.status,
                dir.display()
            );
            expect_exit(program, &[], ran.status, 0);
        }
    });
}

#[test]
fn fds_cross_exec_unless_close_on_exec() {
    isolated(|| {
        let null = File::open("/dev/null").expect("open /dev/null");
        let kept = dup_at(&null, 40, false);
        let closed = dup_at(&null, 41, true);
        drop(null);
        let ran = run_captured("ls", &["/proc/self/fd"]);
        let fds: Vec<i32> = String::from_utf8_lossy(&ran.out)
            .split_whitespace()
            .filter_map(|w| w.parse().ok())
            .collect();
        expect_exit("ls", &["/proc/self/fd"], ran.status, 0);
        assert!(
            fds.contains(&40),
            "fd 40 is open in the caller without FD_CLOEXEC, so the new program should have it too, but ls \
             /proc/self/fd run by run() lists {fds:?}: fds are inherited across fork and kept across exec; do not \
             close them in the child"
        );
        assert!(
            !fds.contains(&41),
            "fd 41 is open in the caller with FD_CLOEXEC, so exec should have closed it, yet ls /proc/self/fd \
             run by run() lists {fds:?}"
        );
        assert!(
            fds.starts_with(&[0, 1, 2]),
            "the new program should have fds 0, 1 and 2 from the caller; it lists {fds:?}"
        );
        drop((kept, closed));
    });
}

#[rstest]
#[case::in_an_argument("sh", &["-c", "exit 0", "a\0b"])]
#[case::in_the_program("s\0h", &["-c", "exit 0"])]
fn a_nul_byte_is_einval_and_starts_nothing(#[case] program: &str, #[case] args: &[&str]) {
    isolated(|| {
        let me = body_pid().expect("inside isolated()");
        let got = student(|| run(program, args));
        assert_eq!(
            got,
            Err(Errno::EINVAL),
            "{}: a string with a NUL byte cannot become a C string, so run should return Err(EINVAL)",
            call(program, args)
        );
        assert!(
            procfs::children(me).is_empty(),
            "run returned an error but left a child behind: {:?}",
            procfs::children(me)
        );
    });
}

#[test]
fn it_waits_for_its_own_child_only() {
    isolated(|| {
        // A child of the caller's own, exited and not yet collected: the oldest zombie, so the
        // first one a wait for any child would take.
        // SAFETY: the test process is single-threaded; the child only calls _exit.
        let bystander = match unsafe { fork() }.expect("fork") {
            // SAFETY: _exit ends the child at once.
            ForkResult::Child => unsafe { libc::_exit(3) },
            ForkResult::Parent { child } => child,
        };
        poll::until(Duration::from_secs(5), "the earlier child to exit", || {
            (procfs::state(bystander) == Some('Z')).then_some(())
        });
        let args = ["-c", "echo $$; exit 7"];
        let ran = run_beside("sh", &args, &[bystander]);
        expect_exit("sh", &args, ran.status, 7);
        let printed = String::from_utf8_lossy(&ran.out);
        let pid: i32 = printed
            .trim()
            .parse()
            .unwrap_or_else(|_| panic!("sh should have printed its pid, it printed {printed:?}"));
        assert_eq!(
            ran.status,
            WaitStatus::Exited(Pid::from_raw(pid), 7),
            "{} should return Exited(<the child's pid>, 7), and the child, which became sh, printed its pid {pid}: \
             the status names the child waitpid collected",
            call("sh", &args)
        );
        assert_eq!(
            waitpid(bystander, None),
            Ok(WaitStatus::Exited(bystander, 3)),
            "the earlier child {bystander} should still be there to collect"
        );
    });
}

#[rstest]
#[case::that_starts("sh", &["-c", "exit 5"], 5)]
#[case::that_cannot_start("oskata-no-such-program", &[], 127)]
fn the_child_only_execs(#[case] program: &str, #[case] args: &[&str], #[case] code: i32) {
    isolated(|| {
        let (ran, allocated) = watching_child_allocations(|| run_captured(program, args));
        assert!(
            allocated.is_empty(),
            "pid {} (forked by {}) allocated memory between fork and exec (this test binary's allocator was \
             called in it), and ended {:?}. In a program with other threads, one may hold the allocator's lock at \
             the instant of fork, and then the child's copy stays locked for good. Build the CStrings and the \
             null-terminated argv pointer array in the parent, before fork; the child calls only libc::execvp and \
             libc::_exit (nix's execvp builds that array in the child, allocating)",
            allocated[0],
            call(program, args),
            ran.status
        );
        assert!(
            matches!(ran.status, WaitStatus::Exited(_, c) if c == code),
            "{} should return Exited(<child pid>, {code}); got {:?}",
            call(program, args),
            ran.status
        );
    });
}
