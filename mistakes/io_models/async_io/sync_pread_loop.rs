//! # Many reads in flight at once (异步 I/O): POSIX aio, `aio_suspend`, `aio_error`, `aio_return`
//!
//! Reference solution. See `exercises/io_models/async_io.rs` for the lesson.
use std::os::fd::BorrowedFd;

use nix::errno::Errno;
use nix::sys::uio::pread;
use nix::unistd::read;

/// One read to make: `len` bytes of `fd` from byte `offset` (the offset is ignored where the
/// fd cannot seek, as on a pipe).
#[derive(Debug, Clone, Copy)]
pub struct ReadRequest<'fd> {
    /// The file to read from.
    pub fd: BorrowedFd<'fd>,
    /// Where in the file the read starts.
    pub offset: u64,
    /// How many bytes to ask for.
    pub len: usize,
}

/// Submits one `aio_read` per request, all of them before waiting for any, then sleeps in
/// `aio_suspend` until every one has completed, and returns each request's outcome in the
/// order of `requests`.
pub fn read_all(requests: &[ReadRequest<'_>]) -> Vec<nix::Result<Vec<u8>>> {
    // The mistake: no aio at all; one blocking pread after another, in the order of the
    // requests (read where the fd cannot seek), as glibc's helper thread would do.
    requests
        .iter()
        .map(|req| {
            let offset = libc::off_t::try_from(req.offset).map_err(|_| Errno::EINVAL)?;
            let mut buf = vec![0u8; req.len];
            let n = match pread(req.fd, &mut buf, offset) {
                Err(Errno::ESPIPE) => read(req.fd, &mut buf)?,
                other => other?,
            };
            buf.truncate(n);
            Ok(buf)
        })
        .collect()
}
