//! processes/exec: fork + exec (执行程序). What the tests observe, never what the code claims:
//! - the status `waitpid` gave back, against what the program itself did (`exit 7`, `false`,
//!   a signal, a name that cannot be started);
//! - the new program's own view of itself: `cat /proc/self/cmdline` prints the argv the kernel
//!   gave it, `ls /proc/self/fd` lists the fds it inherited;
//! - that the child is gone once `run` returned, and that no copy of it came back into the test.

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
use std::io::Read;
use std::os::fd::{AsFd, FromRawFd, OwnedFd};
use std::os::unix::fs::PermissionsExt;

use nix::errno::Errno;
use nix::fcntl::{FcntlArg, OFlag, fcntl};
use nix::sys::signal::Signal;
use nix::sys::wait::WaitStatus;
use nix::unistd::{dup2_stdin, dup2_stdout, pipe2};
use oskata_harness::evidence::state_word;
use oskata_harness::{body_pid, isolated, procfs, scratch_dir, student};
use rstest::rstest;

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
    let (read_end, write_end) = pipe2(OFlag::O_CLOEXEC).expect("pipe2");
    let saved = dup_at(std::io::stdout(), 10, true);
    dup2_stdout(&write_end).expect("dup2 onto stdout");
    drop(write_end);
    let null = File::open("/dev/null").expect("open /dev/null");
    dup2_stdin(&null).expect("dup2 onto stdin");
    drop(null);

    let got = student(|| run(program, args));
    dup2_stdout(&saved).expect("restore stdout");
    drop(saved);
    let status = got.unwrap_or_else(|e| panic!("{} failed: {e}", call(program, args)));
    check_reaped(program, args, status);
    // Every write end is closed now (ours, and the child's, which is gone): read to EOF.
    let mut out = Vec::new();
    File::from(read_end)
        .read_to_end(&mut out)
        .expect("read the program's output");
    Ran { status, out }
}

/// After `run` returned, the test process has no child left: the one `run` started is reaped.
fn check_reaped(program: &str, args: &[&str], status: WaitStatus) {
    let me = body_pid().expect("inside isolated()");
    if let Some(kid) = procfs::children(me).first() {
        panic!(
            "{} returned {status:?}, but pid {} ({}) is still a child of the test process {me} in /proc: run \
             must wait for the child it started (waitpid on its pid) before it returns",
            call(program, args),
            kid.pid,
            state_word(kid.state)
        );
    }
    if let Some(pid) = status.pid() {
        assert_ne!(
            pid,
            me,
            "{} returned a status for the test process itself ({status:?}): return what waitpid said about the \
             child",
            call(program, args)
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

#[test]
fn a_nul_byte_is_einval_and_starts_nothing() {
    isolated(|| {
        let me = body_pid().expect("inside isolated()");
        let got = student(|| run("sh", &["-c", "exit 0", "a\0b"]));
        assert_eq!(
            got,
            Err(Errno::EINVAL),
            "an argument with a NUL byte cannot become a C string: run should return Err(EINVAL)"
        );
        assert!(
            procfs::children(me).is_empty(),
            "run returned an error but left a child behind: {:?}",
            procfs::children(me)
        );
    });
}
