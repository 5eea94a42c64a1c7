//! # A shell pipeline (管道线): `a | b | c` with pipe, fork, dup2 and exec
//!
//! Reference solution. See `exercises/ipc/pipeline.rs` for the lesson.
use std::ffi::{CString, c_char};
use std::os::fd::{AsFd, AsRawFd, OwnedFd};

use nix::errno::Errno;
use nix::fcntl::OFlag;
use nix::sys::wait::{WaitStatus, waitpid};
use nix::unistd::{ForkResult, Pid, fork, pipe2, read};

/// One stage ready for exec: its C strings and the null-terminated pointer array execvp reads.
struct Prepared {
    argv: Vec<CString>,
    ptrs: Vec<*const c_char>,
}

/// Builds every stage's argv before the first fork, so that a child allocates nothing.
fn prepare(stages: &[&[&str]]) -> nix::Result<Vec<Prepared>> {
    if stages.is_empty() {
        return Err(Errno::EINVAL);
    }
    let mut out = Vec::with_capacity(stages.len());
    for stage in stages {
        if stage.is_empty() {
            return Err(Errno::EINVAL);
        }
        let argv = stage
            .iter()
            .map(|a| CString::new(*a).map_err(|_| Errno::EINVAL))
            .collect::<nix::Result<Vec<_>>>()?;
        let ptrs = argv
            .iter()
            .map(|a| a.as_ptr())
            .chain(std::iter::once(std::ptr::null()))
            .collect();
        out.push(Prepared { argv, ptrs });
    }
    Ok(out)
}

/// In a forked child: makes `input` fd 0 and `output` fd 1, then execs the stage; leaves with
/// status 127 if exec fails. Never returns.
fn exec_stage(stage: &Prepared, input: i32, output: i32) -> ! {
    // SAFETY: dup2 and execvp on fds and memory this process owns; _exit never returns. The
    // pipe ends themselves are close-on-exec, so after dup2 the child keeps only 0, 1 and 2
    // of them (dup2's copy is not close-on-exec).
    unsafe {
        if libc::dup2(input, 0) < 0 || libc::dup2(output, 1) < 0 {
            libc::_exit(127);
        }
        // dup2(fd, fd) leaves the close-on-exec flag as it was: clear it on 0 and 1.
        libc::fcntl(0, libc::F_SETFD, 0);
        libc::fcntl(1, libc::F_SETFD, 0);
        libc::execvp(stage.argv[0].as_ptr(), stage.ptrs.as_ptr());
        libc::_exit(127)
    }
}

/// Starts `stages` as a pipeline reading `stdin` and writing `stdout`; returns their pids in
/// stage order. See the exercise.
pub fn spawn_pipeline(
    stages: &[&[&str]],
    stdin: impl AsFd,
    stdout: impl AsFd,
) -> nix::Result<Vec<Pid>> {
    let prepared = prepare(stages)?;
    let mut pids = Vec::with_capacity(stages.len());
    // The pipe into the stage about to start (None for the first: the caller's stdin).
    let mut prev: Option<(OwnedFd, OwnedFd)> = None;
    for (i, stage) in prepared.iter().enumerate() {
        let last = i + 1 == prepared.len();
        // Close-on-exec: whatever pipe end a child inherits is gone once it execs, except the
        // two that dup2 copies onto its stdin and stdout.
        let next = if last {
            None
        } else {
            match pipe2(OFlag::O_CLOEXEC) {
                Ok(p) => Some(p),
                Err(e) => return Err(abandon(&pids, e)),
            }
        };
        let input = prev
            .as_ref()
            .map_or(stdin.as_fd().as_raw_fd(), |(r, _)| r.as_raw_fd());
        let output = next
            .as_ref()
            .map_or(stdout.as_fd().as_raw_fd(), |(_, w)| w.as_raw_fd());
        // SAFETY: the child only calls dup2, fcntl, execvp and _exit on memory prepared
        // before the fork; it allocates nothing and takes no lock.
        match unsafe { fork() } {
            Ok(ForkResult::Child) => exec_stage(stage, input, output),
            Ok(ForkResult::Parent { child }) => pids.push(child),
            Err(e) => return Err(abandon(&pids, e)),
        }
        // The pipe into this stage now has both its users, the stage before and this one:
        // the parent, which neither reads nor writes, closes both of its ends.
        let used = std::mem::replace(&mut prev, next);
        drop(used);
    }
    Ok(pids)
}

/// After a failed pipe or fork: kills and reaps the stages already started, returns `e`.
fn abandon(pids: &[Pid], e: Errno) -> Errno {
    for &pid in pids {
        let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGKILL);
        let _ = waitpid(pid, None);
    }
    e
}

/// Waits for every pid in `pids` and returns the status of the last one. See the exercise.
pub fn wait_pipeline(pids: &[Pid]) -> nix::Result<WaitStatus> {
    let Some(&last) = pids.last() else {
        return Err(Errno::EINVAL);
    };
    let mut status = None;
    // The mistake: only the last stage is waited for; the others are left zombies.
    for &pid in &pids[pids.len() - 1..] {
        let s = loop {
            match waitpid(pid, None) {
                Err(Errno::EINTR) => continue,
                other => break other?,
            }
        };
        if pid == last {
            status = Some(s);
        }
    }
    status.ok_or(Errno::ECHILD)
}

/// Runs the pipeline on `stdin` with its output captured: returns the last stage's status and
/// everything the last stage wrote. See the exercise.
pub fn capture_pipeline(
    stages: &[&[&str]],
    stdin: impl AsFd,
) -> nix::Result<(WaitStatus, Vec<u8>)> {
    let (out_r, out_w) = pipe2(OFlag::O_CLOEXEC)?;
    let pids = spawn_pipeline(stages, stdin, &out_w)?;
    // The last stage has its copy: with ours closed, its exit is the output's end of file.
    drop(out_w);
    // Read everything first: a stage that writes more than the pipe holds waits for this read.
    let mut output = Vec::new();
    let mut buf = [0u8; 8192];
    let read_result = loop {
        match read(&out_r, &mut buf) {
            Ok(0) => break Ok(()),
            Ok(n) => output.extend_from_slice(&buf[..n]),
            Err(Errno::EINTR) => {}
            Err(e) => break Err(e),
        }
    };
    drop(out_r);
    // Then reap every stage, even if the read failed.
    let status = wait_pipeline(&pids)?;
    read_result?;
    Ok((status, output))
}
