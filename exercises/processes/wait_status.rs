//! # Decode a wait status (解读等待状态)
//!
//! `waitpid(2)` tells the parent what happened to a child through one `int`, the *wait
//! status*. The kernel packs four different stories into its low 16 bits:
//!
//! | what happened                          | bits 8-15        | bit 7     | bits 0-6 |
//! |----------------------------------------|------------------|-----------|----------|
//! | exited, `exit(code)` / `_exit(code)`   | the code (0-255) | 0         | 0        |
//! | killed by a signal (terminated)        | 0                | core dump | signal   |
//! | stopped by a signal (`WUNTRACED`)      | the signal       | 0         | `0x7f`   |
//! | continued by SIGCONT (`WCONTINUED`)    | `0xff`           | 1         | `0x7f`   |
//!
//! So the status of a child that exited with code 3 is `0x0300`, of one killed by SIGKILL
//! (9) `0x0009`, of one stopped by SIGSTOP (19) `0x137f`, and of one continued exactly `0xffff`.
//! The low 7 bits decide which row you are in: 0 means exited, `0x7f` means stopped or
//! continued (signal numbers never reach 127), anything else is the number of the signal that
//! killed it. Bit 7 (`0x80`) says whether the kernel wrote a core dump (核心转储) of the
//! killed process; it is *not* part of the signal number.
//!
//! One more case reaches above bit 15: a child traced with `ptrace(2)` can stop at a *ptrace
//! event* (a fork, an exec, its exit...), and then the event's number sits in bits 16-23
//! above an ordinary stop, e.g. `0x6057f` for a stop by SIGTRAP (5) at `PTRACE_EVENT_EXIT`
//! (6). The stop signal is still bits 8-15 alone (`WSTOPSIG`), so mask it.
//!
//! C gives you macros for this: `WIFEXITED` / `WEXITSTATUS`, `WIFSIGNALED` / `WTERMSIG` /
//! `WCOREDUMP`, `WIFSTOPPED` / `WSTOPSIG`, `WIFCONTINUED`. The classic bugs are reading
//! `WEXITSTATUS` without checking `WIFEXITED` first (a child killed by SIGKILL then "exited
//! with 0"), taking the signal from the wrong byte, and deciding "killed by a signal" from
//! nonzero low 7 bits before ruling out `0x7f` (a stopped child then reads as killed by a
//! "signal 127", which does not exist). Ask the "which row?" question first, then read only
//! the fields that row has.
//!
//! Write [`decode`] with bit operations on the raw value (or with libc's `WIFEXITED` and
//! friends, which the `libc` crate offers as functions). Do not call nix's
//! `WaitStatus::from_raw`: that is the decoding this exercise asks you to write, and it cannot
//! represent real-time signals anyway.
//!
//! Read: `man 2 waitpid` (the "wstatus" macros), `man 7 signal`, `man 5 core`.

/// What a raw wait status says happened to the child.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decoded {
    /// The child ended by itself with `exit(code)` or `_exit(code)` (`WIFEXITED`).
    Exited {
        /// The low 8 bits of the value it passed to exit (`WEXITSTATUS`).
        code: u8,
    },
    /// A signal ended the child (`WIFSIGNALED`).
    Signaled {
        /// The number of that signal, 1 to 64 (`WTERMSIG`).
        signal: i32,
        /// Whether the kernel wrote a core dump of the child (`WCOREDUMP`).
        core_dumped: bool,
    },
    /// A signal stopped the child; it can be continued later (`WIFSTOPPED`).
    Stopped {
        /// The number of the signal that stopped it (`WSTOPSIG`).
        signal: i32,
    },
    /// A stopped child was resumed by SIGCONT (`WIFCONTINUED`).
    Continued,
}

/// Decodes `status`, an `int` exactly as `waitpid(2)` stored it, into what happened.
///
/// Every status the kernel produces is one of the four [`Decoded`] cases, a traced child's
/// stop at a ptrace event included.
pub fn decode(_status: i32) -> Decoded {
    todo!()
}
