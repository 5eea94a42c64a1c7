//! # Decode a wait status (解读等待状态) — reference solution
//!
//! Ask which row of the table the status is in first (continued, exited, stopped, else
//! signaled), then read only that row's fields.

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
        Decoded::Stopped { signal: high }
    } else {
        // WIFSIGNALED: the low 7 bits are the signal, bit 7 the core-dump flag.
        Decoded::Signaled {
            signal: low7,
            core_dumped: status & 0x80 != 0,
        }
    }
}
