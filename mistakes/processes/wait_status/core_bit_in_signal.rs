//! Mistake: takes the whole low byte as the signal number, so the core-dump flag (0x80) ends
//! up in it: SIGABRT with a core reads as signal 134.

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
    if status == 0xffff {
        return Decoded::Continued;
    }
    let high = (status >> 8) & 0xff;
    match status & 0x7f {
        0 => Decoded::Exited { code: high as u8 },
        0x7f => Decoded::Stopped { signal: high },
        // The mistake: the low byte, not the low 7 bits: bit 7 leaks into the signal number.
        _ => Decoded::Signaled {
            signal: status & 0xff,
            core_dumped: status & 0x80 != 0,
        },
    }
}
