//! Mistake: takes the stop signal as everything above the low byte (status >> 8) without masking
//! it to bits 8-15, so a traced child's ptrace event (bits 16-23) ends up in the signal number.
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
    // The one fixed value first: its low byte is 0xff, which no other row has.
    if status == 0xffff {
        return Decoded::Continued;
    }
    let high = (status >> 8) & 0xff;
    let low7 = status & 0x7f;
    if low7 == 0 {
        // WIFEXITED: nothing in the low 7 bits; the code is bits 8-15.
        Decoded::Exited { code: high as u8 }
    } else if status & 0xff == 0x7f {
        // WIFSTOPPED: the whole low byte is exactly 0x7f (no core flag); the signal is bits
        // 8-15. Asked before "signaled": 0x7f in the low 7 bits is not a signal number.
        // The mistake: status >> 8 without & 0xff.
        Decoded::Stopped {
            signal: status >> 8,
        }
    } else {
        // WIFSIGNALED: the low 7 bits are the signal, bit 7 the core-dump flag.
        Decoded::Signaled {
            signal: low7,
            core_dumped: status & 0x80 != 0,
        }
    }
}
