//! Mistake: decides "killed by a signal" from nonzero low 7 bits before testing for a stop, so
//! a stopped child (low byte 0x7f) reads as killed by signal 127, which does not exist.

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

/// Home-made versions of the C macros.
fn if_continued(status: i32) -> bool {
    status == 0xffff
}
fn if_exited(status: i32) -> bool {
    status & 0x7f == 0
}
/// "A signal is in the low 7 bits": true for a stop (0x7f) too.
fn if_signaled(status: i32) -> bool {
    status & 0x7f != 0
}
fn if_stopped(status: i32) -> bool {
    status & 0xff == 0x7f
}

/// Decodes `status`, an `int` exactly as `waitpid(2)` stored it, into what happened.
pub fn decode(status: i32) -> Decoded {
    let high = (status >> 8) & 0xff;
    // The mistake: "signaled" (nonzero low 7 bits) is asked before "stopped".
    if if_continued(status) {
        Decoded::Continued
    } else if if_exited(status) {
        Decoded::Exited { code: high as u8 }
    } else if if_signaled(status) {
        Decoded::Signaled {
            signal: status & 0x7f,
            core_dumped: status & 0x80 != 0,
        }
    } else if if_stopped(status) {
        // Never reached: every stop was already taken for a kill.
        Decoded::Stopped { signal: high }
    } else {
        unreachable!("status {status:#x} is none of the four kinds")
    }
}
