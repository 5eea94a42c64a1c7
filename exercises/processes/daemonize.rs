//! # Daemonize: a process detached from everything it started with (守护进程)
//!
//! A daemon is a background service: it must outlive the shell that started it, never be hit
//! by that terminal's Ctrl-C or hang-up, never write into a terminal someone else now uses,
//! and never keep a file system busy or a pipe open by accident. Everything a process
//! inherits ties it to its starter, so a daemon undoes those ties one by one:
//!
//! 1. **`fork`, and the parent's side goes on**: the child is certainly not a process group
//!    leader (its pid is new), which the next step requires.
//! 2. **`setsid`** in that child: a new session (会话) and a new process group, both led by
//!    the child, and **no controlling terminal** (控制终端). Signals from the old terminal
//!    (SIGINT, SIGHUP...) can no longer reach it.
//! 3. **`fork` again**, and the first child exits at once: the grandchild is in the new
//!    session but is *not its leader* (its sid is the first child's pid). Only a session
//!    leader acquires a controlling terminal when it opens one, so the daemon can never get a
//!    terminal back by accident. With one fork only, it could.
//!
//! Then, in the grandchild, which is the daemon:
//!
//! 4. **`umask(0)`**: the inherited file-creation mask would silently strip permission bits
//!    from every file the daemon creates; with 0 it gets exactly the modes it asks for.
//! 5. **`chdir("/")`**: the inherited working directory would keep its file system busy
//!    (it could not be unmounted).
//! 6. **Close every fd**: the daemon inherited all of its starter's fds (files, pipes, a
//!    terminal, sockets), whatever their numbers. A pipe end kept open means a reader
//!    somewhere never sees end of file. Close all of them, not just those you know about:
//!    `close_range(2)` closes a whole range in one call.
//! 7. **fds 0, 1, 2 on `/dev/null`**: with nothing open, the next `open` would get fd 0, and a
//!    stray `println!` would write into whatever file became fd 1. Open `/dev/null` for reading
//!    and writing (`O_RDWR`: 0 is read, 1 and 2 are written; it lands on fd 0, the lowest free
//!    number) and `dup2` it onto 1 and 2.
//!
//! The first child's exit re-parents the daemon: to init, or to the nearest "child
//! subreaper" (the test process is one, so it can stop the daemon afterwards).
//!
//! Here the caller keeps running, unlike in a classic daemon(3) where the original process
//! exits. So the caller's own state must not change (do umask, chdir and the closing in the
//! daemon, after the forks), and it must learn the daemon's pid: the first child knows it (its
//! second fork returned it), so it can write it into a pipe made before the first fork, before
//! it exits.
//! The caller reads the pid and then waits for the first child, which is its own child; it
//! never waits for the daemon, which lives on.
//!
//! Syscalls: umask(2), fork(2), setsid(2), chdir(2), close_range(2) (or close(2) for each fd
//! in `/proc/self/fd`), open(2), dup2(2), pipe(2), waitpid(2), _exit(2). In nix:
//! `nix::sys::stat::umask`, `nix::unistd::{fork, setsid, chdir, pipe, dup2_stdout,
//! dup2_stderr}`, `nix::fcntl::open`; `close_range` and `_exit` through `libc`. Drop (or
//! forget) every `OwnedFd` you still hold before closing fds by number, or its later drop
//! closes a number that has been reused.
//!
//! Read: `man 7 daemon` (the SysV steps), `man 2 setsid`, `man 7 credentials` (sessions and
//! process groups), `man 2 ioctl_tty` (TIOCSCTTY: how a session leader gets a terminal),
//! `man 2 close_range`, `man 5 proc` (`stat` fields 6 session and 7 tty_nr).
use std::io;

use nix::unistd::Pid;

/// Starts a daemon that runs `task`, and returns the daemon's pid.
///
/// In the daemon (the grandchild): umask 0, a session of its own that it does not lead (fork,
/// setsid, fork again), working directory `/`, every inherited fd closed and fds 0, 1 and 2
/// open on `/dev/null`, 0 for reading and 1 and 2 for writing (one `O_RDWR` open serves all
/// three); then it calls `task()` and, when that returns, ends with `_exit(0)`.
/// Neither the daemon nor the first child ever returns from this function.
///
/// In the caller: returns as soon as the daemon is started, with the daemon's pid, once the
/// first child has exited and been waited for (no zombie is left). It never waits for the
/// daemon. The caller's own umask, working directory, fds and session are unchanged: every fd
/// it opens for the daemon (the pipe the first child reports through) is closed again, and
/// no child of the caller but the first child is waited for.
pub fn daemonize(_task: impl FnOnce()) -> io::Result<Pid> {
    todo!()
}
