// depends on: procfs (used by the body, stage B).
//! The body's fd table: the harness's own fds kept out of the test's way (at 900 and up), and
//! a reserve that lets the leak check run after the test filled the table.
//!
//! Code that opens files until open(2) fails with `EMFILE` leaves no fd for anything else; the
//! leak check needs a few of its own to read `/proc` and list directories, and without them it
//! found nothing, so the leaks made before the table filled up went unreported. So the body
//! keeps [`RESERVE`] duplicates of `/dev/null` at high numbers while the test runs and closes
//! them, and raises the soft `RLIMIT_NOFILE` to the hard one, when the check starts.
//!
//! The reserve is held as raw numbers, not `OwnedFd`s: the code under test may close them
//! (`close_range(3, ~0)` in the wrong process), and one is only closed here if it is still the
//! `/dev/null` duplicate it was.
use std::fs::File;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};

use nix::sys::resource::{Resource, getrlimit, setrlimit};
use nix::sys::stat::fstat;
use nix::unistd::getpid;

use crate::procfs;

/// The lowest number the harness's own fds of the body are moved to.
pub(crate) const HIGH_FD_MIN: RawFd = 900;
/// The lowest number of the reserve.
const RESERVE_MIN: RawFd = 940;
/// How many fds the reserve holds: more than the leak check has open at once (two, and one
/// more for each level of a directory tree it removes), and few, since every fd table in a
/// deadline's evidence lists them.
const RESERVE: usize = 8;

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

/// The identity of an open file: device, inode and device number it stands for.
fn identity(fd: RawFd) -> Option<(u64, u64, u64)> {
    // SAFETY: only asks the kernel about the number; the borrow ends with the call.
    let borrowed = unsafe { std::os::fd::BorrowedFd::borrow_raw(fd) };
    fstat(borrowed)
        .ok()
        .map(|st| (st.st_dev, st.st_ino, st.st_rdev))
}

/// Fds of `/dev/null` held for the leak check, at [`RESERVE_MIN`] and up.
pub(crate) struct Reserve {
    fds: Vec<RawFd>,
    null: Option<(u64, u64, u64)>,
}

/// Takes the reserve; fewer fds (or none) where the table is smaller than its numbers.
pub(crate) fn reserve() -> Reserve {
    let Ok(null) = File::open("/dev/null") else {
        return Reserve {
            fds: Vec::new(),
            null: None,
        };
    };
    let mut fds = Vec::new();
    for _ in 0..RESERVE {
        // SAFETY: duplicates an fd we own; the copy is ours, released in `Reserve::release`.
        match unsafe { libc::fcntl(null.as_raw_fd(), libc::F_DUPFD_CLOEXEC, RESERVE_MIN) } {
            -1 => break,
            fd => fds.push(fd),
        }
    }
    Reserve {
        fds,
        null: identity(null.as_raw_fd()),
    }
}

impl Reserve {
    /// Makes room for the leak check: frees the reserve and raises the soft `RLIMIT_NOFILE` to
    /// the hard limit. Returns the sentence saying that the table was full, if it was.
    pub(crate) fn release(self) -> Option<String> {
        let soft = getrlimit(Resource::RLIMIT_NOFILE).map_or(0, |(soft, _)| soft);
        let full =
            matches!(File::open("/dev/null"), Err(e) if e.raw_os_error() == Some(libc::EMFILE));
        for fd in self.fds {
            if self.null.is_some() && identity(fd) == self.null {
                // SAFETY: `fd` is still the reserve's own duplicate of /dev/null (same device
                // and inode), which nothing else refers to.
                unsafe { libc::close(fd) };
            }
        }
        if let Ok((_, hard)) = getrlimit(Resource::RLIMIT_NOFILE) {
            let _ = setrlimit(Resource::RLIMIT_NOFILE, hard, hard);
        }
        full.then(|| {
            let open = procfs::fds(getpid()).map_or(0, |fds| fds.len());
            format!(
                "the fd table was full when the test returned ({open} fds open, RLIMIT_NOFILE {soft}): the code \
                 under test opened files until open() failed with EMFILE (too many open files) and did not close them"
            )
        })
    }
}
