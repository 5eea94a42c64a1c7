//! # Many reads in flight at once (异步 I/O): POSIX aio, `aio_suspend`, `aio_error`, `aio_return`
//!
//! Reference solution. See `exercises/io_models/async_io.rs` for the lesson.
use std::os::fd::{AsRawFd, BorrowedFd};

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

/// Reads every request with io_uring: one `IORING_OP_READ` submission per request, tagged with
/// the request's index as its `user_data`, all submitted with one `io_uring_enter`; completions
/// are matched back to their requests by that tag, in whatever order the kernel posts them.
pub fn read_all_uring(requests: &[ReadRequest<'_>]) -> std::io::Result<Vec<nix::Result<Vec<u8>>>> {
    if requests.is_empty() {
        return Ok(Vec::new());
    }
    // The ring: the kernel rounds the size up to a power of two (and refuses more than 32768);
    // the completion queue is twice as large. Dropping it unmaps the rings and closes its fd.
    let entries = u32::try_from(requests.len().next_power_of_two())
        .unwrap_or(4096)
        .min(4096);
    let mut ring = io_uring::IoUring::new(entries)?;
    let mut bufs: Vec<Vec<u8>> = requests.iter().map(|r| vec![0u8; r.len]).collect();
    let mut results: Vec<Option<nix::Result<usize>>> = requests.iter().map(|_| None).collect();
    let mut next = 0;
    let mut in_flight = 0usize;
    let capacity = ring.params().sq_entries() as usize;
    while next < requests.len() || in_flight > 0 {
        // Queue as many as the submission ring holds (all of them, unless there are more than
        // it has room for).
        {
            let mut sq = ring.submission();
            while next < requests.len() && in_flight < capacity {
                let req = &requests[next];
                let (Ok(_), Ok(len)) = (libc::off_t::try_from(req.offset), u32::try_from(req.len))
                else {
                    results[next] = Some(Err(Errno::EINVAL));
                    next += 1;
                    continue;
                };
                let sqe = io_uring::opcode::Read::new(
                    io_uring::types::Fd(req.fd.as_raw_fd()),
                    bufs[next].as_mut_ptr(),
                    len,
                )
                .offset(req.offset)
                .build()
                .user_data(next as u64);
                // SAFETY: the buffer stays allocated and untouched, and the fd open (it is
                // borrowed for 'fd), until this request's completion is reaped below: the loop
                // does not end while one is in flight.
                if unsafe { sq.push(&sqe) }.is_err() {
                    break;
                }
                next += 1;
                in_flight += 1;
            }
        }
        if in_flight == 0 {
            continue;
        }
        // One system call submits everything queued and sleeps until at least one completes.
        match ring.submit_and_wait(1) {
            Ok(_) => {}
            Err(e) if e.raw_os_error() == Some(libc::EINTR) => {}
            Err(e) => {
                // Nothing more can be waited for safely: wait for what is in flight the only way
                // left, by leaking the buffers rather than freeing memory the kernel may write.
                std::mem::forget(bufs);
                return Err(e);
            }
        }
        for cqe in ring.completion() {
            let i = cqe.user_data() as usize;
            let res = cqe.result();
            results[i] = Some(if res < 0 {
                Err(Errno::from_raw(-res))
            } else {
                Ok(res as usize)
            });
            in_flight -= 1;
        }
    }
    drop(ring);
    Ok(results
        .into_iter()
        .zip(bufs)
        .map(|(r, mut buf)| {
            let n = r.expect("every request was collected")?;
            buf.truncate(n);
            Ok(buf)
        })
        .collect())
}
