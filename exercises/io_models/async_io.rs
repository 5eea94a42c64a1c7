//! # Many reads in flight at once (异步 I/O): POSIX aio (`aio_suspend`, `aio_error`, `aio_return`) and io_uring
//!
//! A `read(2)` is synchronous: the caller sleeps until the bytes are in its buffer (阻塞), and
//! one read at a time is all one thread can have going. Non-blocking I/O and multiplexing
//! (`select`, `poll`, `epoll`) only tell you *when* a read would not block; the copy itself is
//! still done by your `read`. **Asynchronous I/O** (异步 I/O) splits a read in two: you
//! *submit* a request ("read `len` bytes of this fd at this offset into this buffer") and go
//! on at once; later you are told the request has *completed*, with the bytes already in your
//! buffer. Many requests can be in flight together, and they complete in whatever order the
//! devices (or pipes, or sockets) allow, not in the order you submitted them.
//!
//! ## POSIX aio, the calls
//!
//! - `aio_read(3)` takes a control block, a `struct aiocb` (fd, offset, buffer, length, how to
//!   notify), and queues the read. From then until the request completes, the aiocb and the
//!   buffer are in use by someone else: they must stay where they are, untouched.
//! - `aio_error(3)` tells a request's state: `EINPROGRESS` while it is not done, 0 once it
//!   succeeded, or the error it failed with (`EBADF`, `EINVAL`, ...). It is the only way to ask.
//! - `aio_return(3)`, called once, after `aio_error` says done, gives what `read(2)` would have
//!   returned: the count of bytes read, which may be **fewer than asked** (end of the file; a
//!   pipe holding less), or 0 at or past the end. Only that many bytes of the buffer are data.
//! - `aio_suspend(3)` sleeps until **at least one** of a list of requests has completed (or a
//!   signal arrives: `EINTR`, or a timeout passes: `EAGAIN`). It does not wait for all of them:
//!   after it returns, look at each request with `aio_error` again, collect the finished ones,
//!   and suspend again on those still in progress.
//!
//! Instead of `aio_suspend`, completion can also be announced by a signal (`SIGEV_SIGNAL`) or
//! by a function run in a new thread (`SIGEV_THREAD`), chosen in the aiocb's `sigevent`; see
//! sigevent(7). This exercise uses no notification (`SigevNotify::SigevNone`) and waits with
//! `aio_suspend`, which is the simplest to get right.
//!
//! ## What glibc really does
//!
//! POSIX aio on Linux is **not** kernel asynchronous I/O. glibc implements it in user space
//! with a pool of helper threads (up to 20 by default, see aio_init(3)): `aio_read` hands the
//! request to a thread, which makes an ordinary blocking `pread(2)` (or `read(2)` on a pipe or
//! socket), stores the result in the aiocb and wakes whoever sleeps in `aio_suspend`.
//! Requests on one fd are served in order by one thread; requests on different fds run side
//! by side. So the model is right (submit, go on, collect), but each request in flight costs a
//! thread. The kernel's own interfaces are the old Linux AIO (`io_submit(2)`, truly
//! asynchronous only for `O_DIRECT` files) and io_uring, the second part of this exercise.
//!
//! ## io_uring: the kernel's own asynchronous I/O
//!
//! `io_uring_setup(2)` makes a ring instance, returned as a file descriptor (it shows in
//! `/proc/self/fd` as `anon_inode:[io_uring]`), and two queues that the process `mmap`s, so
//! that kernel and process share their memory and write to them without copying:
//!
//! - the **submission queue** (SQ, 提交队列): the process fills submission entries (SQEs), each
//!   one operation: `IORING_OP_READ` with an fd, a buffer, a length and an offset, and a 64-bit
//!   `user_data` of its choosing, and moves the queue's tail on;
//! - the **completion queue** (CQ, 完成队列): the kernel posts one completion entry (CQE) per
//!   finished operation: the SQE's `user_data`, copied, and `res`, what the syscall would have
//!   returned: a count of bytes (possibly short, or 0 at the end), or **minus** an errno
//!   (`-EBADF`); the process reads them and moves the queue's head on.
//!
//! `io_uring_enter(2)` hands the kernel every SQE queued since the last call and, if asked,
//! sleeps until a number of completions have arrived: **one system call for many operations**.
//! Completions arrive in the order operations finish, not the order they were submitted: a read
//! of a file already in the page cache completes at once, one of an empty pipe when someone
//! writes to it. `user_data` is how you know which request a CQE answers; put the request's
//! index there. Unlike glibc's POSIX aio there is no thread of yours per request: the kernel
//! itself keeps the reads pending (a pipe read waits on the pipe, like poll does) and completes
//! them. The ring fd must be closed when you are done (that unmaps the rings too).
//!
//! io_uring can be turned off by an administrator (`/proc/sys/kernel/io_uring_disabled`: 2
//! refuses everyone, `EPERM`) or by a seccomp filter (containers often do: `ENOSYS` or `EPERM`);
//! `io_uring_setup` then fails, and so must your function, with that error. The tests then
//! print a note and check only that.
//!
//! In Rust, the `io-uring` crate (tokio-rs) wraps the plumbing: `io_uring::IoUring::new(n)`
//! sets up and maps a ring of `n` entries (its `Drop` unmaps and closes it);
//! `io_uring::opcode::Read::new(io_uring::types::Fd(raw), ptr, len).offset(off).build()
//! .user_data(i)` builds an SQE; `unsafe { ring.submission().push(&sqe) }` queues it (unsafe:
//! the buffer must stay valid until its completion is reaped); `ring.submit_and_wait(k)` is one
//! `io_uring_enter`; `ring.completion()` iterates the posted CQEs (`.user_data()`,
//! `.result()`).
//!
//! ## In Rust: nix's `AioRead`, and why it is pinned
//!
//! `nix::sys::aio::AioRead::new(fd, offset, buf, 0, SigevNotify::SigevNone)` wraps an aiocb
//! that borrows `buf`. Submitting it (`.submit()`) hands the aiocb's *address* to glibc, whose
//! thread later writes the result into it, and the bytes into `buf`. If the aiocb moved (a
//! `Vec` growing, a value returned by copy) or was freed before completion, that thread would
//! write into memory that is no longer it. Rust's answer is [`Pin`](std::pin::Pin): keep each
//! `AioRead` in a `Box::pin(..)`, and its methods (`submit`, `error`, `aio_return`) take
//! `Pin<&mut Self>` (`cb.as_mut().error()`). nix also panics if an `AioRead` that is still in
//! flight is dropped. The buffers are borrowed by the `AioRead`s until those are dropped, and
//! you may look at the bytes only after `aio_return`.
//!
//! `nix::sys::aio::aio_suspend(&[&dyn AsRef<libc::aiocb>], None)` takes the list to wait on;
//! `pinned.as_ref().get_ref()` gives the `&AioRead` it wants.
//!
//! ## What you write
//!
//! [`read_all`]: submit every request, wait until every one has completed, and return each
//! one's bytes (cut to its count) or its error, in the order of the requests. The tests read a
//! file at 64 random places at once, read across and past its end, mix in requests that fail,
//! and put some requests on pipes that the test writes to one at a time, in an order of its own,
//! only once the previous one was read: a `read_all` that reads one request after another
//! (even with `pread`) sleeps in a read the test has not fed yet, and is caught there.
//!
//! [`read_all_uring`]: the same, with io_uring. The same tests run on it, and also look at the
//! ring from outside (its fdinfo: how many SQEs the kernel took, how many CQEs it posted) and at
//! the process's fd table after it returned.
//!
//! Man pages: aio(7), aio_read(3), aio_error(3), aio_return(3), aio_suspend(3), aio_init(3),
//! sigevent(7), pread(2), io_submit(2), io_uring(7), io_uring_setup(2), io_uring_enter(2).
use std::os::fd::BorrowedFd;

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

/// Reads every request asynchronously with POSIX aio and returns, for each request, in the
/// order of `requests`, the bytes it read or the error it failed with.
///
/// - Submit one `aio_read` per request, each into its own buffer of `len` bytes, **all** of
///   them before waiting for any. A request that `aio_read` refuses, or whose offset does not
///   fit in `off_t` (`EINVAL`), gets that error as its result; the others go on.
/// - Then wait with `aio_suspend` until none is in progress. Completions come in any order:
///   after each wake-up, ask every unfinished request `aio_error`; `EINPROGRESS` means not yet.
/// - For each finished request call `aio_return` once: its count is how many bytes of the
///   buffer are data (fewer than `len` at the end of a file, or from a pipe holding less; 0 past
///   the end); its error, or `aio_error`'s, is that request's error alone.
/// - Return only once every request has completed: before that, the buffers and control blocks
///   still belong to the reads.
pub fn read_all(_requests: &[ReadRequest<'_>]) -> Vec<nix::Result<Vec<u8>>> {
    todo!()
}

/// Reads every request with io_uring and returns, for each request, in the order of
/// `requests`, the bytes it read or the error it failed with; the outer error is
/// `io_uring_setup`'s, when the kernel refuses to make a ring (`ENOSYS`, `EPERM`).
///
/// - Set up one ring; for each request, one `IORING_OP_READ` SQE into its own buffer of `len`
///   bytes at its offset, with the request's index as `user_data`. A request whose offset does
///   not fit in `off_t` or whose length does not fit in `u32` gets `EINVAL` and is not submitted.
/// - Submit them all with one `io_uring_enter` (`submit_and_wait`) before waiting for any, then
///   reap CQEs as they come until every submitted request has completed; match each CQE to its
///   request by `user_data`, never by its place among the completions.
/// - A CQE's `res` is a byte count (cut the buffer to it) or minus an errno: that request's
///   error alone.
/// - Close the ring before returning (no `anon_inode:[io_uring]` fd left behind), and return
///   only once nothing is in flight: the kernel writes into the buffers until then.
pub fn read_all_uring(_requests: &[ReadRequest<'_>]) -> std::io::Result<Vec<nix::Result<Vec<u8>>>> {
    todo!()
}
