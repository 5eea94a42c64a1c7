//! # System V shared memory (System V 共享内存): shmget, shmat, shmdt, shmctl(IPC_RMID)
//!
//! After `fork(2)` parent and child have the same memory contents but not the same memory: each
//! page is shared only until one of them writes it, then the writer gets its own copy
//! (copy-on-write, 写时复制, the lesson of `processes/cow`). So a child that writes into a
//! buffer, a `Vec`, a static, or any private mapping changes its own copy, and the parent never
//! sees it. To hand data across, the two processes must map **the same physical pages**. A
//! **shared memory segment** is such a set of pages, kept by the kernel; every process that
//! attaches it sees every write to it at once, with no copying and no system call per access.
//!
//! System V segments follow the System V IPC style (svipc(7)), like message queues:
//!
//! - `shmget(key, size, flags)` finds or makes a segment of `size` bytes and returns its
//!   **id**. `IPC_CREAT | IPC_EXCL` makes a new one or fails with `EEXIST`; the low nine bits
//!   of the flags are its permissions. The kernel records the size asked (`shm_segsz`) and maps
//!   it in whole pages. The new memory reads as zeros.
//! - `shmat(id, NULL, 0)` **attaches** it: maps it into the caller's address space read-write,
//!   at an address the kernel chooses, and returns that address (or `(void *) -1` on error). In
//!   `/proc/<pid>/maps` it shows as a shared mapping named `/SYSV<key in hex>`. An attachment is
//!   **inherited across fork**: the child has the segment mapped at the same address, and it
//!   is the same memory, not a copy.
//! - `shmdt(addr)` **detaches** it. The kernel counts attachments in `shm_nattch` (`nattch` in
//!   `/proc/sysvipc/shm`); exit and exec detach too.
//! - `shmctl(id, IPC_RMID, NULL)` **removes** it. A segment is not a file: without this it
//!   outlives every process, a leak that `ipcs -m` shows to everyone. Removal of a segment still
//!   attached only **marks** it: it loses its key (it reads 0, so no one can find it any more),
//!   its mode shows the `SHM_DEST` bit (01000), and it goes away when the last attachment is
//!   detached. So the tidy order is: detach, then remove (or remove, then detach), and never
//!   forget either.
//!
//! `shmctl(id, IPC_STAT, &ds)` fills a `shmid_ds`: size, mode, creator pid, nattch, times.
//! nix has no wrappers for System V IPC: call `libc::shmget`, `libc::shmat`, `libc::shmdt`
//! and `libc::shmctl`, each behind one small safe function that turns the error return into
//! `Errno::last()` (`Errno::result` does it for -1), with a `// SAFETY:` comment saying why
//! the pointer is valid.
//!
//! Shared memory brings no synchronization. Here the parent reads only after `waitpid` has
//! told it the child exited, which orders the child's writes before the parent's reads. For
//! anything more, processes need a semaphore (`ipc/sysv_semaphore`).
//!
//! ## What you write
//!
//! - [`create_segment`], [`attach`], [`detach`], [`remove_segment`]: the four calls, made safe.
//! - [`spawn_writer`]: a forked child that writes into the segment through the attachment it
//!   inherited.
//! - [`share_with_child`]: the whole life of a segment, leaving nothing behind.
//!
//! Man pages: svipc(7), shmget(2), shmop(2) (shmat, shmdt), shmctl(2), proc(5)
//! (`/proc/sysvipc/shm`, `/proc/<pid>/maps`), ipcs(1), fork(2) (copy-on-write).
use std::ptr::NonNull;

use nix::unistd::Pid;

/// A segment attached to this process: where it starts and how many bytes it has.
#[derive(Debug)]
pub struct Segment {
    /// The segment's id (from `shmget`).
    pub id: i32,
    /// The address `shmat` returned.
    pub addr: NonNull<u8>,
    /// The segment's size in bytes, as `IPC_STAT` reports it (`shm_segsz`).
    pub len: usize,
}

/// Creates a **new** segment of `size` bytes at `key` with permission bits `mode` (`shmget`
/// with `IPC_CREAT | IPC_EXCL | mode`) and returns its id. Fails with `EEXIST` if the key
/// already has a segment. The size is passed as asked, not rounded.
pub fn create_segment(_key: libc::key_t, _size: usize, _mode: u32) -> nix::Result<i32> {
    todo!()
}

/// Attaches segment `id` read-write at an address the kernel chooses (`shmat(id, NULL, 0)`)
/// and returns it with the segment's size from `IPC_STAT`. Returns the error of either call
/// (`EINVAL` for an id that names no segment).
pub fn attach(_id: i32) -> nix::Result<Segment> {
    todo!()
}

/// Detaches `segment` from this process (`shmdt`), after which its address must not be used.
pub fn detach(_segment: Segment) -> nix::Result<()> {
    todo!()
}

/// Removes segment `id` (`shmctl(id, IPC_RMID, NULL)`): at once if it is attached nowhere,
/// else at its last detach. Returns shmctl's error (`EINVAL` for an id that names no segment).
pub fn remove_segment(_id: i32) -> nix::Result<()> {
    todo!()
}

/// Forks a child that copies `data` to the start of `segment`, through the attachment it
/// inherits, and leaves with `_exit(0)`. Returns the child's pid; the caller reaps it.
/// Fails with `EINVAL`, forking nothing, if `data` is longer than the segment.
pub fn spawn_writer(_segment: &Segment, _data: &[u8]) -> nix::Result<Pid> {
    todo!()
}

/// The whole life of a segment: creates one of `size` bytes at `key` with `mode`
/// ([`create_segment`]: fails with `EEXIST`, touching nothing, if the key is in use), attaches
/// it, lets a child write `data` into it ([`spawn_writer`]), reaps the child, reads
/// `data.len()` bytes from the start of the segment, detaches, removes the segment, and returns
/// the bytes read.
///
/// Once the segment exists it is detached and removed whatever happens. Fails with `EIO` if the
/// child did not exit with status 0.
pub fn share_with_child(
    _key: libc::key_t,
    _size: usize,
    _mode: u32,
    _data: &[u8],
) -> nix::Result<Vec<u8>> {
    todo!()
}
