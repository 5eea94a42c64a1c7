//! Classic mistake: the mode goes to mkfifo alone, which filters it through the umask.
//!
//! # A named pipe (有名管道, FIFO) between two unrelated processes
//!
//! Reference solution. See `exercises/ipc/fifo.rs` for the lesson.
use std::path::Path;

use nix::errno::Errno;
use nix::fcntl::{OFlag, open};
use nix::sys::stat::Mode;
use nix::unistd::{mkfifo, read, unlink, write};

/// Makes a FIFO at `path` whose permission bits are exactly `mode`, whatever the umask.
pub fn make_fifo(path: &Path, mode: Mode) -> nix::Result<()> {
    // A stale file of any kind goes first; nothing there is no error.
    match unlink(path) {
        Ok(()) | Err(Errno::ENOENT) => {}
        Err(e) => return Err(e),
    }
    // The mistake: mkfifo gives mode & !umask, and nothing sets the bits asked for.
    mkfifo(path, mode)
}

/// Opens the FIFO for writing (waiting for a reader), writes all of `data`, closes it.
pub fn send(path: &Path, data: &[u8]) -> nix::Result<()> {
    let fd = loop {
        match open(path, OFlag::O_WRONLY | OFlag::O_CLOEXEC, Mode::empty()) {
            Err(Errno::EINTR) => {}
            other => break other?,
        }
    };
    let mut done = 0;
    while done < data.len() {
        match write(&fd, &data[done..]) {
            Ok(n) => done += n,
            Err(Errno::EINTR) => {}
            Err(e) => return Err(e),
        }
    }
    // Dropping the fd closes the write end: the reader's next read returns 0.
    Ok(())
}

/// Opens the FIFO for reading (waiting for a writer), reads until end of file.
pub fn receive(path: &Path) -> nix::Result<Vec<u8>> {
    let fd = loop {
        match open(path, OFlag::O_RDONLY | OFlag::O_CLOEXEC, Mode::empty()) {
            Err(Errno::EINTR) => {}
            other => break other?,
        }
    };
    let mut got = Vec::new();
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        match read(&fd, &mut buf) {
            Ok(0) => return Ok(got),
            Ok(n) => got.extend_from_slice(&buf[..n]),
            Err(Errno::EINTR) => {}
            Err(e) => return Err(e),
        }
    }
}
