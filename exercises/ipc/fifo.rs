//! # A named pipe (有名管道, FIFO) between two unrelated processes
//!
//! An ordinary pipe has no name: only processes that inherit its fds through `fork(2)` can
//! use it. A **FIFO** (a named pipe, 有名管道) is a pipe with a name in the file system:
//! `mkfifo(3)` makes a special file of type FIFO (`S_IFIFO`, `p` in `ls -l`), and any process
//! allowed by its permission bits can `open(2)` it, for reading or for writing, by path. The
//! kernel then connects the two openers through one pipe buffer: bytes written by one come out
//! of the other, as with `pipe(2)`. Nothing is ever stored in the file itself; the name only
//! lets strangers find each other.
//!
//! ## Opening waits for the other side
//!
//! `open(path, O_RDONLY)` on a FIFO **blocks until some process opens it for writing**, and
//! `open(path, O_WRONLY)` blocks until some process opens it for reading. So the two sides
//! meet at the open: neither can start before the other exists. (With `O_NONBLOCK` a reader's
//! open returns at once and its reads see end of file while no writer is there; a writer's
//! open fails with `ENXIO` while no reader is there. `O_RDWR` on a FIFO is left undefined by
//! POSIX: on Linux it never waits, which defeats the point.) After that it is a pipe: the reader
//! reads until `read(2)` returns 0, which happens once every writer has closed its end.
//!
//! ## Making it: the mode, the umask, and a stale file
//!
//! `mkfifo(path, mode)` fails with `EEXIST` if anything already has that name: a file left by
//! an earlier run that crashed, say (a stale file). A program that owns the path removes what
//! is there first (`unlink(2)`, where `ENOENT` just means there was nothing) and then makes
//! the FIFO.
//!
//! The `mode` given to `mkfifo` is filtered through the process's **umask** (`mode & !umask`),
//! like every file creation: with the common umask 022, asking for 0666 gives 0644. The
//! contract here is that the FIFO gets **exactly** the mode asked for, whatever the umask: set
//! the permission bits afterwards with `chmod(2)` (nix: `fchmodat` or `std::fs::set_permissions`),
//! which the umask does not touch. (Changing the umask itself would change it for every thread
//! of the process; leave it as it is.)
//!
//! ## What you write
//!
//! - [`make_fifo`]: remove a stale file, make the FIFO, give it its exact mode.
//! - [`send`]: open the FIFO for writing (waiting for a reader), write everything, close.
//! - [`receive`]: open the FIFO for reading (waiting for a writer), read until end of file.
//!
//! The tests run [`send`] and [`receive`] in two different processes that are not each
//! other's parent, look at each one asleep in `open(2)` in `/proc/<pid>/syscall` before the
//! other side exists, and check the file's type and mode with `stat(2)`. They also hand
//! [`send`] a plain `cat` as the reader.
//!
//! Man pages: fifo(7), mkfifo(3), open(2) (`O_NONBLOCK` on a FIFO, `ENXIO`), unlink(2),
//! chmod(2), umask(2), pipe(7), stat(2) (`S_ISFIFO`).
use std::path::Path;

use nix::sys::stat::Mode;

/// Makes a FIFO at `path` whose permission bits are exactly `mode`, whatever the umask.
///
/// Whatever is at `path` (a stale regular file, an old FIFO, a symbolic link) is removed first;
/// nothing there is fine. Errors are returned: removing something that cannot be removed (a
/// directory, say), or making the FIFO where that is not possible (a missing parent directory:
/// `ENOENT`). The process's umask is left as it was.
pub fn make_fifo(_path: &Path, _mode: Mode) -> nix::Result<()> {
    todo!()
}

/// Opens the FIFO at `path` for writing, which waits until a reader has opened it, writes all
/// of `data` (looping over short writes, retrying on `EINTR`), and closes it, so that the
/// reader sees end of file.
pub fn send(_path: &Path, _data: &[u8]) -> nix::Result<()> {
    todo!()
}

/// Opens the FIFO at `path` for reading, which waits until a writer has opened it, and reads
/// until end of file (`read(2)` returning 0, not a short read; retrying on `EINTR`). Returns
/// the bytes read.
pub fn receive(_path: &Path) -> nix::Result<Vec<u8>> {
    todo!()
}
