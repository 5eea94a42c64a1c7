//! Mistake: reads WEXITSTATUS without asking WIFEXITED first: whatever is not stopped or
//! continued is taken for an exit, so a child killed by SIGKILL "exited with code 0".

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
    if status & 0xff == 0x7f {
        return Decoded::Stopped { signal: high };
    }
    // The mistake: the exit code, without checking that the child exited at all.
    Decoded::Exited { code: high as u8 }
}
