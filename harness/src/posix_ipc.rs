// depends on: nothing of the crate (used by leftovers, in the body, stage B).
//! POSIX IPC objects as the test left them, in the words that name the call it forgot.
//!
//! Unlike System V objects, POSIX ones are files of special filesystems: `shm_open(3)` makes
//! `/dev/shm/<name>` (a tmpfs), `sem_open(3)` makes `/dev/shm/sem.<name>`, and `mq_open(3)`
//! makes a file of the mqueue filesystem (mq_overview(7)), whose content reads
//! `QSIZE:<bytes queued> NOTIFY:... SIGNO:... NOTIFY_PID:...`. Each stays until it is
//! unlinked (`shm_unlink`, `sem_unlink`, `mq_unlink`) or the machine reboots, even after every
//! process that used it is gone. The leak check lists these directories (see `leftovers`).
use std::ffi::OsStr;
use std::io::Read;
use std::os::fd::BorrowedFd;

use nix::fcntl::{OFlag, openat};
use nix::sys::stat::{FileStat, Mode};

/// The sentence for the entry `name` of `/dev/shm`, a regular file there: a named semaphore
/// (`sem.` prefix) or a shared memory object.
pub(crate) fn shm_sentence(name: &str, st: &FileStat) -> String {
    let owner = format!("mode {:o}, owner uid {}", st.st_mode & 0o7777, st.st_uid);
    match name.strip_prefix("sem.") {
        Some(sem) => format!(
            "POSIX named semaphore /{sem} was left behind: nobody called sem_unlink (/dev/shm/{name}, {owner})"
        ),
        None => format!(
            "POSIX shared memory object /{name} was left behind: nobody called shm_unlink ({}, {owner})",
            bytes(st.st_size)
        ),
    }
}

/// The sentence for the queue `name` of the mqueue filesystem whose root is `dir`.
pub(crate) fn mq_sentence(dir: BorrowedFd<'_>, name: &str, st: &FileStat) -> String {
    let queued = queued_bytes(dir, name.as_ref())
        .map(|q| format!(", {} queued", bytes(q as i64)))
        .unwrap_or_default();
    format!(
        "POSIX message queue /{name} was left behind: nobody called mq_unlink (mode {:o}, owner uid {}{queued})",
        st.st_mode & 0o7777,
        st.st_uid
    )
}

/// `n` bytes in words: "1 byte", "4096 bytes".
pub(crate) fn bytes(n: i64) -> String {
    if n == 1 {
        "1 byte".into()
    } else {
        format!("{n} bytes")
    }
}

/// `QSIZE` of the queue `name` in the mqueue root `dir`: the bytes of its unread messages.
fn queued_bytes(dir: BorrowedFd<'_>, name: &OsStr) -> Option<u64> {
    let flags = OFlag::O_RDONLY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC | OFlag::O_NONBLOCK;
    let fd = openat(dir, name, flags, Mode::empty()).ok()?;
    let mut text = String::new();
    std::fs::File::from(fd).read_to_string(&mut text).ok()?;
    qsize(&text)
}

/// The number after `QSIZE:` in a queue file's text.
fn qsize(text: &str) -> Option<u64> {
    text.split_whitespace()
        .find_map(|w| w.strip_prefix("QSIZE:"))?
        .parse()
        .ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_queued_bytes() {
        assert_eq!(
            qsize("QSIZE:12         NOTIFY:0     SIGNO:0     NOTIFY_PID:0     \n"),
            Some(12)
        );
        assert_eq!(qsize("nothing"), None);
    }
}
