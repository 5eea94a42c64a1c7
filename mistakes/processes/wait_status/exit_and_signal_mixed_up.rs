//! Mistake: mixes up WIFEXITED and WIFSIGNALED: believes the exit code is the low byte and
//! the killing signal bits 8-14, so exit(3) reads as "killed by signal 3" and SIGKILL as exit 9.

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
    if status & 0xff == 0x7f {
        return Decoded::Stopped {
            signal: (status >> 8) & 0xff,
        };
    }
    // The mistake: backwards, the signal taken from the high byte, the code from the low one.
    let signal = (status >> 8) & 0x7f;
    if signal != 0 {
        Decoded::Signaled {
            signal,
            core_dumped: status & 0x8000 != 0,
        }
    } else {
        Decoded::Exited {
            code: (status & 0xff) as u8,
        }
    }
}
