//! Holding the test's new children at birth, so that a race between parent and child is
//! decided by the test instead of by the scheduler.
//!
//! After fork(2) either process may run first. A mistake that relies on the child having run
//! (a `setpgid` made by the child alone, a child taken for a zombie without checking) is then
//! caught only when the scheduler happens to run the parent first, which depends on the load
//! of the machine. [`hold_new_children`] removes the luck: a helper process traces the test
//! process with ptrace(2) (`PTRACE_SEIZE` with `PTRACE_O_TRACEFORK`), so every child the test
//! process forks from then on starts stopped (`t` in `/proc`, before it runs a single
//! instruction of its own) and stays stopped until the test releases it. The parent itself
//! runs on as usual: the helper resumes it at once after each fork.
//!
//! The helper ends the hold by exiting: the kernel then detaches every tracee and the held
//! children run on. It exits when [`Births::release`] (or drop) kills it, or when the `release`
//! condition given at the start, which the helper checks every 200 µs, comes true.
//!
//! Under Yama's `ptrace_scope` 1 a process may trace only its descendants unless its tracee
//! names it with `prctl(PR_SET_PTRACER)`, which the test process does for the helper. Where
//! ptrace is not allowed at all, [`hold_new_children`] says so and the test goes on without.
use std::os::fd::{AsFd, OwnedFd};
use std::time::Duration;

use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
use nix::sys::signal::{Signal, kill};
use nix::sys::wait::waitpid;
use nix::unistd::{ForkResult, Pid, fork, getpid, getppid, pipe, read, write};

/// The hold set up by [`hold_new_children`]; dropping it releases the held children.
#[derive(Debug)]
pub struct Births {
    tracer: Pid,
}

impl Births {
    /// The helper process that traces the test process.
    pub fn tracer(&self) -> Pid {
        self.tracer
    }

    /// Ends the hold: the children held so far run on, and later ones are born free.
    pub fn release(self) {
        drop(self)
    }
}

impl Drop for Births {
    fn drop(&mut self) {
        let _ = kill(self.tracer, Signal::SIGKILL);
        let _ = waitpid(self.tracer, None);
        // SAFETY: prctl with integer arguments only; 0 takes back the permission to trace.
        unsafe { libc::prctl(libc::PR_SET_PTRACER, 0, 0, 0, 0) };
    }
}

/// Makes every child the calling process forks from now on start stopped, until the returned
/// hold is dropped or `release()` (run in the helper process, every 200 µs) returns true. Call
/// it from a single-threaded test process; `Err` says why the hold cannot be set up here.
pub fn hold_new_children(mut release: impl FnMut() -> bool) -> Result<Births, String> {
    let parent = getpid();
    let (go_r, go_w): (OwnedFd, OwnedFd) = pipe().map_err(|e| e.to_string())?;
    let (ready_r, ready_w): (OwnedFd, OwnedFd) = pipe().map_err(|e| e.to_string())?;
    // SAFETY: the caller is single-threaded; the child runs only the loop below and _exits.
    let tracer = match unsafe { fork() }.map_err(|e| format!("fork: {e}"))? {
        ForkResult::Child => {
            drop(go_w);
            drop(ready_r);
            let _ = read(&go_r, &mut [0u8; 1]);
            // SAFETY: ptrace with integer arguments; PTRACE_SEIZE does not stop the tracee.
            let seized = unsafe {
                libc::ptrace(
                    libc::PTRACE_SEIZE,
                    parent.as_raw(),
                    0usize,
                    libc::PTRACE_O_TRACEFORK as usize,
                )
            };
            let errno = if seized == 0 {
                0
            } else {
                std::io::Error::last_os_error().raw_os_error().unwrap_or(1)
            };
            let _ = write(&ready_w, &errno.to_ne_bytes());
            if seized != 0 {
                // SAFETY: _exit ends this helper at once.
                unsafe { libc::_exit(1) }
            }
            drop(ready_w);
            trace(parent, &mut release)
        }
        ForkResult::Parent { child } => child,
    };
    drop(go_r);
    drop(ready_w);
    // SAFETY: prctl with integer arguments: lets the helper trace this process under Yama.
    unsafe {
        libc::prctl(
            libc::PR_SET_PTRACER,
            tracer.as_raw() as libc::c_ulong,
            0,
            0,
            0,
        )
    };
    let hold = Births { tracer };
    write(&go_w, b"g").map_err(|e| format!("start the tracer: {e}"))?;
    let mut fds = [PollFd::new(ready_r.as_fd(), PollFlags::POLLIN)];
    let limit = crate::scaled(Duration::from_secs(5));
    let ready = poll(
        &mut fds,
        PollTimeout::try_from(limit).unwrap_or(PollTimeout::MAX),
    )
    .unwrap_or(0);
    let mut errno = [0u8; 4];
    if ready == 0 || read(&ready_r, &mut errno).ok() != Some(4) {
        return Err("the tracing helper did not start".into());
    }
    match i32::from_ne_bytes(errno) {
        0 => Ok(hold),
        e => Err(format!(
            "ptrace(PTRACE_SEIZE) is not allowed here: {}",
            nix::errno::Errno::from_raw(e)
        )),
    }
}

/// The helper's loop: resumes the parent after each of its stops, leaves every other tracee
/// (a new child) stopped, and exits once `release()` says so or the parent is gone.
fn trace(parent: Pid, release: &mut impl FnMut() -> bool) -> ! {
    loop {
        loop {
            let mut status = 0;
            // SAFETY: waitpid writes the status into a local integer.
            let pid = unsafe { libc::waitpid(-1, &mut status, libc::WNOHANG | libc::__WALL) };
            if pid <= 0 {
                break;
            }
            if pid != parent.as_raw() || !libc::WIFSTOPPED(status) {
                continue;
            }
            // A fork event (status >> 16 is the event) resumes with no signal; a
            // signal-delivery stop passes its signal on.
            let signal = if status >> 16 == 0 {
                libc::WSTOPSIG(status)
            } else {
                0
            };
            // SAFETY: ptrace with integer arguments on our own stopped tracee.
            unsafe { libc::ptrace(libc::PTRACE_CONT, pid, 0usize, signal as usize) };
        }
        if getppid() != parent || release() {
            // SAFETY: _exit ends the helper; the kernel detaches every tracee, which run on.
            unsafe { libc::_exit(0) }
        }
        std::thread::sleep(Duration::from_micros(200));
    }
}
