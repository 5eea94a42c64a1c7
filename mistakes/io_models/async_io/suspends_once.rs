//! # Many reads in flight at once (异步 I/O): POSIX aio, `aio_suspend`, `aio_error`, `aio_return`
//!
//! Reference solution. See `exercises/io_models/async_io.rs` for the lesson.
use std::os::fd::BorrowedFd;
use std::pin::Pin;

use nix::errno::Errno;
use nix::sys::aio::{Aio, AioRead, aio_suspend};
use nix::sys::signal::SigevNotify;

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
    let mut bufs: Vec<Vec<u8>> = requests.iter().map(|r| vec![0u8; r.len]).collect();
    // Each request's count from aio_return, or its error; None while it is in flight.
    let mut results: Vec<Option<nix::Result<usize>>> = requests.iter().map(|_| None).collect();
    // Each control block is pinned on the heap: the aio thread holds its address (and the
    // buffer's) until the request completes, so it must not move or be freed before that.
    let mut cbs: Vec<Option<Pin<Box<AioRead<'_>>>>> = Vec::with_capacity(requests.len());
    for ((i, req), buf) in requests.iter().enumerate().zip(bufs.iter_mut()) {
        let Ok(offset) = libc::off_t::try_from(req.offset) else {
            results[i] = Some(Err(Errno::EINVAL));
            cbs.push(None);
            continue;
        };
        let mut cb = Box::pin(AioRead::new(
            req.fd,
            offset,
            buf.as_mut_slice(),
            0,
            SigevNotify::SigevNone,
        ));
        match cb.as_mut().submit() {
            Ok(()) => cbs.push(Some(cb)),
            Err(e) => {
                results[i] = Some(Err(e));
                cbs.push(None);
            }
        }
    }
    // Wait until none is in progress. aio_suspend returns once at least one of the list has
    // completed (or a signal came): look at each again, and collect the finished ones.
    loop {
        let mut pending: Vec<&dyn AsRef<libc::aiocb>> = Vec::new();
        for (i, slot) in cbs.iter_mut().enumerate() {
            let Some(cb) = slot else { continue };
            match cb.as_mut().error() {
                Err(Errno::EINPROGRESS) => {}
                Ok(()) => {
                    results[i] = Some(cb.as_mut().aio_return());
                    *slot = None;
                }
                Err(e) => {
                    // aio_return must still be called once, to release the request.
                    let _ = cb.as_mut().aio_return();
                    results[i] = Some(Err(e));
                    *slot = None;
                }
            }
        }
        for cb in cbs.iter().flatten() {
            pending.push(cb.as_ref().get_ref());
        }
        if pending.is_empty() {
            break;
        }
        // With no timeout it fails only with EINTR (a signal came): either way, look again.
        // Whatever it says, never return while a request is in flight.
        let _ = aio_suspend(&pending, None);
        // The mistake: one wake-up taken for all of them; whatever is still in progress is
        // collected as if done.
        for (i, slot) in cbs.iter_mut().enumerate() {
            if let Some(cb) = slot {
                results[i] = Some(cb.as_mut().aio_return());
                *slot = None;
            }
        }
    }
    drop(cbs);
    // Every request is done: the buffers are ours again. Cut each to the count aio_return gave.
    results
        .into_iter()
        .zip(bufs)
        .map(|(r, mut buf)| {
            // A short count (end of file, a pipe holding less) leaves the rest unread.
            let n = r.expect("every request was collected")?;
            buf.truncate(n);
            Ok(buf)
        })
        .collect()
}
