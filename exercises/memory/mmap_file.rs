//! # A file in memory (内存映射文件): open, fstat, mmap(MAP_SHARED), store, msync, munmap
//!
//! `mmap(2)` can put a file into a process's address space (地址空间): after it, the bytes of
//! the file are memory, and a store into that memory is a change to the file, with no `write(2)`
//! at all. The kernel does it with the **page cache** (页缓存): the file's pages that it keeps in
//! memory anyway for `read(2)` and `write(2)` are the very pages the mapping points to. The
//! first access to each page is a page fault (缺页) that finds (or reads in) the cached page.
//!
//! ## The steps
//!
//! 1. `open(2)` the file **read-write** (`O_RDWR`): a shared writable mapping needs a descriptor
//!    open for writing as well as reading (else `EACCES`).
//! 2. `fstat(2)` for its size: a mapping covers a length you give, and the file has to have
//!    that many bytes.
//! 3. If the change reaches past the end of the file, **grow the file first** with
//!    `ftruncate(2)` (the new bytes read as zeros). `mmap` itself never grows a file, and it
//!    happily maps a length beyond the end: then the first access to a page that lies wholly
//!    past the end of the file has no page of the file behind it, and the kernel sends
//!    **SIGBUS** (not SIGSEGV: the address is mapped, the file is too short). Bytes stored into
//!    the tail of the last page, past the end but in the same page, raise nothing and are
//!    simply never part of the file.
//! 4. `mmap(2)` with `PROT_READ | PROT_WRITE` and **`MAP_SHARED`**, from offset 0, over the whole
//!    file. `MAP_SHARED` makes the pages the file's own. `MAP_PRIVATE` is the classic mistake:
//!    it makes a **copy-on-write** (写时复制) view, where the first store to a page copies it for
//!    this process alone, so the change never reaches the file and no other process sees it.
//!    The `offset` argument of `mmap` must be a multiple of the page size
//!    (`sysconf(_SC_PAGESIZE)`, 4096 here), else `EINVAL`; so map from 0 (or from the offset
//!    rounded down to a page) and store at the byte's place inside the mapping. The length need
//!    not be a multiple of a page: the kernel rounds it up.
//! 5. Store the bytes through the mapping.
//! 6. `msync(2)` with `MS_SYNC`: write the changed pages back to the file's storage and wait
//!    until that is done.
//! 7. `munmap(2)`, and close the descriptor (the mapping does not need it once made; an
//!    `OwnedFd` closes when dropped). A mapping left behind stays in `/proc/<pid>/maps` for the
//!    life of the process, and keeps the file's pages pinned in its address space.
//!
//! ## Visibility and durability: what msync is for
//!
//! On Linux there is one copy of a file's page in memory, the page cache's, and a `MAP_SHARED`
//! mapping *is* that copy. So the moment a store lands, every other process that `read(2)`s
//! the file, or maps it, sees it: **visibility needs no msync**. What `msync(MS_SYNC)` adds is
//! **durability** (持久性): the page cache is written to the disk before the call returns, so
//! the change survives a power cut or a crash of the machine. Without it the kernel writes the
//! dirty pages back some time later (seconds), and `munmap` does not wait for that either.
//!
//! That is why the tests cannot tell a missing `msync` from a present one: another process
//! reading the file sees the change either way, nothing in `/proc` shows whether one file's pages
//! are still dirty, and the kernel's flusher threads may write them back at any moment. (On a
//! tmpfs there is no disk to wait for at all.) Call it anyway: it is the step that makes the
//! change last, and on a real disk nothing else in this function does that.
//!
//! ## In Rust, with nix
//!
//! `std::fs::OpenOptions` (or `nix::fcntl::open`) opens; `nix::sys::stat::fstat` (or
//! `File::metadata`) sizes; `nix::unistd::ftruncate` (or `File::set_len`) grows;
//! `nix::sys::mman::{mmap, msync, munmap}` map, sync and unmap (`mmap` and `munmap` are
//! `unsafe`: the kernel hands out or takes away memory the compiler knows nothing about). A
//! length is a `NonZeroUsize`: a mapping of 0 bytes is `EINVAL`, so decide what an empty
//! change does before you map. `std::slice::from_raw_parts_mut` makes the mapping a `&mut
//! [u8]` of exactly the length you mapped.
//!
//! ## What you write
//!
//! - [`patch_file`]: the whole sequence above, as one call.
//!
//! The tests run it in a child process, then look at what the kernel shows: another process
//! (an exec'd `cat`) reads the file and must see the change; `fstat` gives its size; the
//! child's `/proc/self/maps` must hold no mapping of the file's inode and its `/proc/self/fd` no
//! new descriptor; how the child ended (SIGBUS, SIGSEGV) when it did not return; and how far its
//! resident size rose during the call (`VmHWM` in `/proc/self/status`): every page stored to
//! through a mapping is resident in the process until `munmap`, so a big change made with
//! `write(2)` instead shows.
//!
//! Man pages: mmap(2), msync(2), munmap(2), open(2), fstat(2), ftruncate(2), sysconf(3)
//! (`_SC_PAGESIZE`), proc(5) (`/proc/<pid>/maps`, `/proc/<pid>/fd`).
use std::path::Path;

/// Writes `data` into the existing file at `path`, starting at byte `offset`, through a shared
/// mapping of the file, and returns the file's size afterwards.
///
/// - Opens `path` read-write; never creates a file (a missing one is `ENOENT`, returned).
/// - When `offset + data.len()` is past the end of the file, first grows the file to exactly
///   that size with `ftruncate` (the gap, if any, reads as zeros); otherwise leaves the size
///   as it is.
/// - Maps the file `MAP_SHARED` with `PROT_READ | PROT_WRITE` (any `offset` is allowed, so map
///   from a page boundary), copies `data` to its place, `msync(MS_SYNC)`, `munmap`, and closes
///   the file. Nothing of it is left in the process afterwards.
/// - An empty `data` changes nothing (not even the size) and maps nothing.
/// - Every failing system call's error is returned (`ENOENT`, `EACCES`, `EISDIR`, ...); it
///   never panics.
pub fn patch_file(_path: &Path, _offset: u64, _data: &[u8]) -> nix::Result<u64> {
    todo!()
}
