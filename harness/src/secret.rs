//! The secret that seals one test's records (see `oskata_protocol::seal`).
//!
//! The test process (P) draws a fresh random token for each test and hands it to the
//! supervisor (C) through a pipe that C reads and closes before it forks the body (B): never
//! in the environment or on the command line, which any process of the user can read. B gets
//! the token with C's memory when it is forked. The body's records to C and C's report to P
//! are sealed with it, so bytes that student code writes into a pipe it finds (in
//! `/proc/self/fd`, or on a stdout it inherited) count for nothing. Code that reads the
//! harness's memory could still learn it; that is a deliberate cheat, outside what the kit
//! can rule out (README, "What the kit defends against").
use std::io::Read;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

use nix::errno::Errno;
use nix::fcntl::OFlag;
use nix::unistd::{pipe2, write};

use crate::raw;

/// The fd on which the supervisor finds the token pipe when it starts.
pub(crate) const TOKEN_FD: i32 = 987;

/// A fresh token: 16 random bytes from the kernel, in hex.
pub(crate) fn fresh() -> Result<String, Errno> {
    let mut bytes = [0u8; 16];
    raw::random(&mut bytes)?;
    Ok(bytes.iter().map(|b| format!("{b:02x}")).collect())
}

/// A pipe whose read end holds `token` and then end-of-file: the read end, for the
/// supervisor to inherit (see [`pass_on`]).
pub(crate) fn pipe_holding(token: &str) -> Result<OwnedFd, Errno> {
    let (read_end, write_end) = pipe2(OFlag::O_CLOEXEC)?;
    // 32 bytes fit in any pipe's buffer, so this write never blocks.
    write(&write_end, token.as_bytes())?;
    Ok(read_end)
}

/// In the child between fork and exec: puts `read_end` on [`TOKEN_FD`], open across exec.
/// Only async-signal-safe calls (dup2, fcntl).
pub(crate) fn pass_on(read_end: i32) -> std::io::Result<()> {
    // SAFETY: dup2 and fcntl on fds this process holds; both are async-signal-safe.
    let rc = unsafe {
        if read_end == TOKEN_FD {
            libc::fcntl(TOKEN_FD, libc::F_SETFD, 0)
        } else {
            libc::dup2(read_end, TOKEN_FD)
        }
    };
    if rc == -1 {
        Err(std::io::Error::last_os_error())
    } else {
        Ok(())
    }
}

/// In the supervisor: reads the token from [`TOKEN_FD`] and closes it.
pub(crate) fn receive() -> Result<String, String> {
    // SAFETY: fstat only asks whether the fd is open; nothing else owns fd TOKEN_FD in a
    // freshly exec'd supervisor.
    let open = unsafe {
        let mut st = std::mem::zeroed::<libc::stat>();
        libc::fstat(TOKEN_FD, &mut st) == 0
    };
    if !open {
        return Err(format!(
            "no token on fd {TOKEN_FD}: this binary was started as a supervisor by something other \
             than an isolated test"
        ));
    }
    // SAFETY: the fd is open and ours alone (see above); the File owns and closes it.
    let mut pipe = std::fs::File::from(unsafe { OwnedFd::from_raw_fd(TOKEN_FD) });
    let mut token = String::new();
    pipe.read_to_string(&mut token)
        .map_err(|e| format!("cannot read the token on fd {}: {e}", pipe.as_raw_fd()))?;
    if token.len() != 32 || !token.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(format!("fd {TOKEN_FD} held no token"));
    }
    Ok(token)
}
