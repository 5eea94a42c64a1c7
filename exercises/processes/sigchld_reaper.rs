//! # Reap children from a SIGCHLD handler (SIGCHLD 信号回收子进程)
//!
//! A server that starts children cannot sit in `waitpid` all day: it has work to do. The
//! kernel tells a parent that a child ended by sending it `SIGCHLD`, so the parent can install
//! a signal handler (信号处理函数) that reaps (回收) children as they die.
//!
//! Three facts shape that handler:
//!
//! - **Standard signals do not queue.** While a signal is pending (sent but not yet delivered,
//!   for example because it is blocked), more of the same signal change nothing: pending is
//!   one bit, not a counter. Fifty children that exit close together may give you a single
//!   `SIGCHLD`. So one signal means "at least one child changed state", and the handler reaps
//!   in a loop, `waitpid(-1, WNOHANG)`, until no exited child is left. `WNOHANG` makes it
//!   return 0 instead of waiting when the children that remain are still running: a handler
//!   must never block.
//! - **A handler interrupts whatever the program was doing**, in the middle of any function,
//!   possibly while that function holds a lock or is inside `malloc`. So a handler may only
//!   do async-signal-safe (异步信号安全) work: the functions listed in signal-safety(7)
//!   (`waitpid` and `write` are; `malloc` and `printf` are not) and plain loads and stores of
//!   atomics. In Rust that rules out `println!` (it takes stdout's lock), anything that
//!   allocates (`Vec::push`, `format!`, `String`), and `Mutex`. Count into an atomic, or write
//!   a byte to a pipe (the "self-pipe trick") and do the real work in the main loop. The
//!   handler must also leave `errno` as it found it: the interrupted code may be just about
//!   to read it, and `waitpid` sets it (to `ECHILD` when no child is left). Save it on entry
//!   and restore it on the way out (`nix::errno::Errno::last_raw` and `set_raw`).
//! - **A signal interrupts blocking system calls.** Unless the handler is installed with
//!   `SA_RESTART`, a `read(2)` that was waiting when `SIGCHLD` arrived fails with `EINTR`, and
//!   every blocking call in the program would need a retry loop.
//!
//! Install the handler with `sigaction(2)` (`SA_NOCLDSTOP` too: no signal when a child merely
//! stops). A process that never wants exit statuses at all can ask the kernel to reap its
//! children for it: set `SIGCHLD` to `SIG_IGN`, or install it with `SA_NOCLDWAIT`. Careful:
//! the *default* action of `SIGCHLD` (`SIG_DFL`) is also "ignore the signal", yet with it
//! children still become zombies; only an explicit `SIG_IGN` (or `SA_NOCLDWAIT`) changes that.
//!
//! In nix: `nix::sys::signal::{sigaction, signal, SigAction, SigHandler, SaFlags, SigSet,
//! Signal}` (both setters are `unsafe`: you promise the handler is async-signal-safe), a
//! handler is an `extern "C" fn(libc::c_int)`, `nix::sys::wait::{waitpid, WaitPidFlag,
//! WaitStatus}` (`waitpid(None, Some(WaitPidFlag::WNOHANG))` is `waitpid(-1, WNOHANG)`; it
//! gives `WaitStatus::StillAlive` for 0), `std::sync::atomic` for the count.
//!
//! Read: `man 7 signal` (standard signals, "Interruption of system calls"), `man 7
//! signal-safety`, `man 2 sigaction` (`SA_RESTART`, `SA_NOCLDSTOP`, `SA_NOCLDWAIT`), `man 2
//! wait` (NOTES: `SIGCHLD` set to `SIG_IGN`).

/// Installs the reaper: a `SIGCHLD` handler, set with `sigaction` and the flags
/// `SA_RESTART | SA_NOCLDSTOP`.
///
/// Each time it runs, the handler reaps every child that has exited, calling
/// `waitpid(-1, WNOHANG)` until it reports that no exited child is left (0, or the error
/// `ECHILD`), and adds the number it reaped to the count [`reaped_count`] returns. It does
/// only async-signal-safe work: no printing, no allocation, no lock. It leaves `errno` as it
/// found it.
pub fn install_reaper() -> nix::Result<()> {
    todo!()
}

/// How many children the handler installed by [`install_reaper`] has reaped so far in this
/// process.
pub fn reaped_count() -> usize {
    todo!()
}

/// Asks the kernel to reap this process's children itself: from now on a child that exits
/// disappears at once, without ever being a zombie, and nobody gets its status.
///
/// Set `SIGCHLD` to `SIG_IGN`, or install it with `SA_NOCLDWAIT`.
pub fn auto_reap() -> nix::Result<()> {
    todo!()
}
