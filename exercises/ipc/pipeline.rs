//! # A shell pipeline (管道线): `a | b | c` with pipe, fork, dup2 and exec
//!
//! When a shell runs `echo one two | tr ' ' '\n' | wc -l`, it starts three programs at once
//! and joins them with two pipes (管道): the standard output of each stage is the write end of
//! a pipe whose read end is the standard input of the next. The first stage reads what the
//! shell's own stdin is (or a file), the last writes where the shell's stdout goes. Then the
//! shell waits for every stage, and `$?` is the status of the **last** one.
//!
//! ## The pieces
//!
//! - `pipe(2)` (nix: `pipe()` or `pipe2(OFlag::O_CLOEXEC)`) makes one pipe, a read end and a
//!   write end. A pipeline of N stages needs N - 1 of them.
//! - `fork(2)` makes each stage. The child gets a copy of **every** fd of the parent, all pipe
//!   ends made so far included.
//! - `dup2(2)` puts a pipe end where a program expects it: `dup2(read_end, 0)` makes it the
//!   stage's stdin, `dup2(write_end, 1)` its stdout. Programs know nothing of pipes; they read
//!   fd 0 and write fd 1.
//! - `execvp(3)` replaces the child with the program, searching `PATH` for a name without a
//!   slash; `argv[0]` is the program's name. It returns only when it failed, and then the child
//!   must leave with `_exit(127)`, which is what a shell reports for "command not found". It
//!   must never return into the caller's code: that would run the caller a second time.
//!   Build every `CString` and the null-terminated pointer array *before* forking (see
//!   processes/exec); `libc::execvp` takes them as they are.
//! - `waitpid(2)` reaps each stage. A stage nobody waits for stays a zombie (僵尸进程).
//!
//! ## Every unused end closed, everywhere
//!
//! A reader sees end of file only when **every** write end of its pipe is closed in **every**
//! process (pipe(7)); a writer gets `SIGPIPE` (and dies of it, by default) only when every read
//! end is closed. After the forks, each pipe end exists in the parent and in every child forked
//! after the pipe was made. So:
//!
//! - the **parent** closes both ends of each pipe once the stages that use them are started: it
//!   neither reads nor writes. A write end it keeps means the next stage never sees end of
//!   file, so it never exits; a read end it keeps means that in `yes | head -n 1` the `yes`
//!   never gets `SIGPIPE` once `head` has exited, and writes into a full pipe forever.
//! - each **child** keeps only its stdin and stdout: every other pipe end it inherited is
//!   closed before exec, whether by hand or because the pipe was made close-on-exec
//!   (`O_CLOEXEC`, which exec honours; the copy `dup2` makes is not close-on-exec). A program
//!   never closes fds it did not open.
//!
//! The tests look in `/proc/<pid>/fd` of the caller and of every stage, and when a stage hangs
//! they say which one and why, in the kernel's own words: "stage K never saw EOF because pid N
//! holds the write end of pipe:[inode]".
//!
//! ## Start all, then wait
//!
//! A pipe holds 64 KiB. A stage that writes more sleeps until the next stage reads, so the
//! stages must run at the same time: start them all, and only then wait. Waiting for one
//! stage before starting the next works for small outputs and deadlocks on big ones: the
//! stage sleeps in `write` on its full pipe while the parent sleeps in `waitpid` on it.
//!
//! ## What you write
//!
//! - [`spawn_pipeline`] starts the stages and returns their pids, without waiting.
//! - [`wait_pipeline`] reaps them all and returns the last one's status.
//! - [`capture_pipeline`] runs a pipeline with its output going into a pipe of its own, and
//!   returns what came out with the status, like a shell's `$(a | b | c)`. The order matters
//!   here too: read the output until end of file, then wait. A caller that waits first, while a
//!   stage has more to write than the pipe holds, waits forever for a stage that waits for it.
//!   And end of file comes only once the caller has closed its own copy of the write end.
//!
//! Man pages: pipe(2), pipe(7) (end of file, `SIGPIPE`, capacity), fork(2), dup2(2),
//! execvp(3), _exit(2), waitpid(2), fcntl(2) (`FD_CLOEXEC`), proc(5) (`/proc/<pid>/fd`).
use std::os::fd::AsFd;

use nix::sys::wait::WaitStatus;
use nix::unistd::Pid;

/// Starts the pipeline `stages[0] | stages[1] | ... | stages[n-1]` and returns the pids of its
/// stages, in stage order, as soon as all are started (it does not wait for any).
///
/// Each stage is an argument vector: `stages[k][0]` is the program, looked up in `PATH` when it
/// has no slash (execvp), and the whole slice is its `argv`. The first stage's stdin is
/// `stdin`, the last stage's stdout is `stdout`; every stage keeps the caller's stderr (fd 2).
/// Between two stages there is a pipe. A stage whose program cannot be executed leaves with
/// status 127.
///
/// The caller's fds are as they were when this returns: `stdin` and `stdout` are only
/// borrowed (the caller closes its own copies), and no pipe end is left open in the caller.
/// Each stage holds only its stdin, stdout and stderr of all this.
///
/// Errors: `EINVAL` for no stages, a stage with no program, or an argument holding a NUL byte
/// (before anything is started); the error of a failed `pipe` or `fork`, after killing and
/// reaping the stages already started.
pub fn spawn_pipeline(
    _stages: &[&[&str]],
    _stdin: impl AsFd,
    _stdout: impl AsFd,
) -> nix::Result<Vec<Pid>> {
    todo!()
}

/// Waits for every stage in `pids` (as [`spawn_pipeline`] returned them) and returns the
/// status of the **last** one, like a shell's `$?`, as `waitpid` gave it (exit code or
/// signal). Every stage is reaped, whatever the others did; none is left a zombie.
///
/// Errors: `EINVAL` for an empty list; the error of a failed `waitpid`.
pub fn wait_pipeline(_pids: &[Pid]) -> nix::Result<WaitStatus> {
    todo!()
}

/// Runs the pipeline `stages` with `stdin` as the first stage's stdin and captures its output:
/// makes a pipe, gives its write end to [`spawn_pipeline`] as the last stage's stdout, closes
/// its own copy of that write end, reads until end of file (retrying `EINTR`), then waits for
/// every stage with [`wait_pipeline`]. Returns the last stage's status and every byte it wrote.
///
/// Like [`spawn_pipeline`], it leaves the caller's fds as they were: both ends of its pipe are
/// closed when it returns. Errors: those of [`spawn_pipeline`] and [`wait_pipeline`], and a
/// failed `read` (returned after every stage has been reaped).
pub fn capture_pipeline(
    _stages: &[&[&str]],
    _stdin: impl AsFd,
) -> nix::Result<(WaitStatus, Vec<u8>)> {
    todo!()
}
