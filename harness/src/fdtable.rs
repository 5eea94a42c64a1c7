// depends on: nothing of the crate (used by the body, stage B).
//! The body's fd table: the harness's own fds of the body kept out of the test's way, at 900
//! and up, where a test that counts or closes its own low fds never meets them.
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};

/// The lowest number the harness's own fds of the body are moved to.
pub(crate) const HIGH_FD_MIN: RawFd = 900;

/// `fd` moved (close-on-exec) to the lowest free number at or above `at_least`; `fd` itself
/// where the table does not reach that far.
pub(crate) fn high(fd: OwnedFd, at_least: RawFd) -> OwnedFd {
    // SAFETY: F_DUPFD_CLOEXEC duplicates an fd we own; a non-negative result is a new fd that
    // nothing else owns.
    match unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_DUPFD_CLOEXEC, at_least) } {
        -1 => fd,
        // SAFETY: `new` is the fresh duplicate made just now; this is its only owner.
        new => unsafe { OwnedFd::from_raw_fd(new) },
    }
}
