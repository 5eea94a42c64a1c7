//! Mistake: tests for a stop with the low 7 bits only and before testing for 0xffff, so a
//! child resumed by SIGCONT reads as "stopped by signal 255".

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
pub fn decode(status: i32) -> Decoded {
    // The mistake: no test for 0xffff (continued) first.
    let high = (status >> 8) & 0xff;
    match status & 0x7f {
        0 => Decoded::Exited { code: high as u8 },
        // The mistake: a stop told by the low 7 bits only; 0xffff has 0x7f there too.
        0x7f => Decoded::Stopped { signal: high },
        signal => Decoded::Signaled {
            signal,
            core_dumped: status & 0x80 != 0,
        },
    }
}
