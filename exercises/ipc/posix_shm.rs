//! # POSIX shared memory (POSIX 共享内存): shm_open, ftruncate, mmap(MAP_SHARED)
//!
//! Shared memory is the fastest way for processes to exchange data: the same physical pages
//! appear in the address space of each, so a byte one process stores is there for the others to
//! load, with no system call in between. (Nothing orders or protects those accesses: a real
//! program adds a semaphore or a futex; here the reader waits for the writer to exit.)
//!
//! ## A named object: shm_open, ftruncate, mmap
//!
//! `shm_open(3)` opens a **shared memory object** by name (`/frames`: a slash, then no other
//! slash) and returns an ordinary file descriptor. On Linux the object is a file of the tmpfs
//! mounted on `/dev/shm`: `/dev/shm/frames`. With `O_CREAT | O_EXCL` it makes a new one (and
//! fails with `EEXIST` if the name is taken), with the permission bits you pass.
//!
//! A new object is **empty: 0 bytes**. `ftruncate(2)` gives it its size; its bytes start as
//! zeros. Forgetting it is the classic trap: `mmap` of an empty object still succeeds, but the
//! first access to the mapping has no page of the object behind it and the kernel kills the
//! process with **SIGBUS** (not SIGSEGV: the address is mapped, the object is too short).
//! `fstat(2)` tells an object's size.
//!
//! `mmap(2)` maps it into memory. Its flags decide everything here:
//!
//! - `MAP_SHARED`: stores go to the object itself, so every process mapping it sees them (and
//!   `read(2)` of the file, and `cat /dev/shm/frames`). `/proc/<pid>/maps` shows an `s` in the
//!   permissions (`rw-s`).
//! - `MAP_PRIVATE`: the process gets a **copy-on-write** view: it reads the object's pages, but
//!   its first store to a page copies that page for it alone. Its writes never reach the object
//!   or any other process (`rw-p` in `/proc/<pid>/maps`). Right for loading a program, wrong
//!   for sharing.
//!
//! The descriptor may be closed as soon as the mapping exists: the mapping keeps the object
//! alive. `munmap(2)` removes the mapping. Like a message queue, the object outlives every
//! process until `shm_unlink(3)` removes its name (mappings and descriptors already open keep
//! working); a program that never unlinks leaves its file in `/dev/shm` until the next reboot.
//!
//! ## Without a name: MAP_SHARED | MAP_ANONYMOUS and fork
//!
//! Related processes need no name at all. `mmap` with `MAP_SHARED | MAP_ANONYMOUS` (no file,
//! fd -1) makes zero-filled shared memory; `fork(2)` gives the child the same mapping, backed
//! by the same pages, so the child's stores are seen by the parent. Plain memory (a `Vec`, the
//! stack, a `MAP_PRIVATE` mapping) is copied-on-write by fork instead: the child's writes stay in
//! the child.
//!
//! In nix: `nix::sys::mman::{shm_open, shm_unlink, mmap, mmap_anonymous, munmap}` (`mmap` and
//! `munmap` are `unsafe`: the kernel may hand out or take away memory the compiler knows
//! nothing about), `nix::unistd::ftruncate`, `nix::sys::stat::fstat`. Lengths are
//! `NonZeroUsize`: a mapping of 0 bytes is `EINVAL`.
//!
//! ## What you write
//!
//! - [`create_shm`]: a new object of the asked size.
//! - [`map_shared`] and [`map_anonymous_shared`]: shared mappings, as a [`Region`].
//! - [`write_in_child`]: a forked child stores bytes into a region and exits.
//! - [`open_and_write`]: another opener: find the object by name, map it, store, clean up.
//! - [`unmap`], [`remove_shm`]: undo a mapping, remove a name.
//!
//! Man pages: shm_overview(7), shm_open(3), shm_unlink(3), ftruncate(2), mmap(2), munmap(2),
//! fstat(2), fork(2), proc(5) (`/proc/<pid>/maps`).
use std::os::fd::{AsFd, OwnedFd};
use std::ptr::NonNull;

use nix::unistd::Pid;

/// A mapping made by [`map_shared`] or [`map_anonymous_shared`]: `len` bytes from `ptr`. It is
/// not unmapped when dropped; pass it to [`unmap`].
#[derive(Debug)]
pub struct Region {
    /// The first byte of the mapping (what `mmap` returned).
    pub ptr: NonNull<u8>,
    /// Its length in bytes, as asked of `mmap`.
    pub len: usize,
}

/// Creates a **new** shared memory object `name` (`O_CREAT | O_EXCL | O_RDWR`, mode 0600) of
/// `size` bytes and returns its descriptor. Fails with `EEXIST` when the name is taken, and
/// returns every other error.
pub fn create_shm(_name: &str, _size: usize) -> nix::Result<OwnedFd> {
    todo!()
}

/// Maps the first `len` bytes of the object open on `fd`, readable, writable and **shared**.
/// `len` 0 is `EINVAL`.
pub fn map_shared(_fd: impl AsFd, _len: usize) -> nix::Result<Region> {
    todo!()
}

/// Maps `len` bytes of fresh, zero-filled memory, readable, writable and **shared** with the
/// children this process forks afterwards. `len` 0 is `EINVAL`.
pub fn map_anonymous_shared(_len: usize) -> nix::Result<Region> {
    todo!()
}

/// Forks a child that copies `data` into `region` at `offset` and leaves with `_exit(0)`.
/// Returns the child's pid; the caller reaps it with `waitpid` and then finds the bytes in its
/// own view of the region (when the region is shared).
///
/// Fails with `EINVAL`, forking nothing, when `offset + data.len()` goes past `region.len`.
pub fn write_in_child(_region: &Region, _offset: usize, _data: &[u8]) -> nix::Result<Pid> {
    todo!()
}

/// Opens the existing object `name` (read-write, without creating it), maps it shared, copies
/// `data` into it at `offset`, then unmaps it and closes the descriptor.
///
/// Fails with `ENOENT` when there is no such object, and with `EINVAL`, writing nothing, when
/// `offset + data.len()` goes past the object's size (`fstat`): a store past the end of an
/// object would be a SIGBUS.
pub fn open_and_write(_name: &str, _offset: usize, _data: &[u8]) -> nix::Result<()> {
    todo!()
}

/// Removes the mapping (`munmap`).
pub fn unmap(_region: Region) -> nix::Result<()> {
    todo!()
}

/// Removes the object's name (`shm_unlink`): the object disappears once the last mapping and
/// descriptor are gone, and the name is free at once. Returns the error of `shm_unlink`
/// (`ENOENT` when there is no such object).
pub fn remove_shm(_name: &str) -> nix::Result<()> {
    todo!()
}
