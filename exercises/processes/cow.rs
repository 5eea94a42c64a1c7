//! # Copy-on-write after fork (写时复制)
//!
//! `fork()` promises the child a copy of the parent's memory, but copying gigabytes on every
//! fork would be slow, and wasted when the child soon calls exec. So the kernel cheats: it
//! copies only the page tables, and marks every private writable page read-only in *both*
//! processes. Parent and child now map the very same physical pages. Nothing is copied until
//! one of them writes to a page: that write traps (a minor page fault, 缺页异常, resolved
//! without any disk I/O), the kernel copies that one page for the writer, maps the copy
//! writable, and lets the write go on. Pages nobody writes stay shared forever.
//!
//! You can watch this happen in `/proc/<pid>/smaps`, which lists each mapping with counters:
//! right after fork the buffer's pages count as `Shared_Dirty` in the child (dirty, and mapped
//! by two processes); after the child writes them they are `Private_Dirty` (its own copies).
//! The child's minor fault counter (`ru_minflt` from getrusage(2), `minflt` in
//! `/proc/<pid>/stat`) grows by one for each page it writes first.
//!
//! Three things would spoil the experiment:
//!
//! - A **thread** instead of a child: threads share one address space, so the "child's" write
//!   is the parent's write.
//! - A **shared mapping** (`MAP_SHARED`): shared is shared, across fork too; the parent would
//!   see the child's write. Map the buffer `MAP_PRIVATE | MAP_ANONYMOUS`.
//! - **Transparent huge pages** (THP): the kernel may back a big anonymous buffer with 2 MiB
//!   pages. Then the parent's own fill faults once per 2 MiB rather than once per page, and
//!   what a write after fork costs depends on the kernel: before Linux 5.8 the write fault
//!   copied the whole 2 MiB page at once (one fault for 512 pages); since 5.8 the kernel splits
//!   the huge mapping and copies 4 KiB pages one fault at a time. `madvise(MADV_NOHUGEPAGE)` on
//!   the buffer (page-aligned, which an mmap'd buffer is) keeps it in ordinary pages, so the
//!   experiment is page-sized and predictable on every kernel. It shows as `nh` in the
//!   mapping's `VmFlags` in smaps. A kernel built without THP has nothing to avoid and rejects
//!   the advice with `EINVAL`: treat that error as success.
//!
//! Also flush stdout before forking: whatever sits in a user-space buffer is copied into the
//! child too, and could be printed twice.
//!
//! Syscalls: mmap(2), madvise(2), fork(2), getrusage(2), pipe(2), read(2)/write(2), _exit(2),
//! waitpid(2), munmap(2), sysconf(3) for the page size. In nix:
//! `nix::sys::mman::{mmap_anonymous, madvise, munmap, ProtFlags, MapFlags, MmapAdvise}`,
//! `nix::sys::resource::{getrusage, UsageWho}`, `nix::unistd::{fork, pipe, sysconf,
//! SysconfVar}`, `nix::sys::wait::waitpid`; `_exit` through `libc::_exit`. Turn the mapping's
//! pointer into a `&mut [u8]` with `std::slice::from_raw_parts_mut` (unsafe: say why it holds).
//!
//! Read: `man 2 fork` (NOTES), `man 2 madvise` (MADV_NOHUGEPAGE), `man 5 proc` (smaps, stat
//! field 10), `man 2 getrusage`.
use std::io;

use nix::sys::wait::WaitStatus;
use nix::unistd::Pid;

/// The two moments at which [`cow_after_fork`] lets the caller look at the child.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Moment {
    /// After fork, before the child has written anything: it waits for the parent's go.
    BeforeWrite,
    /// After the child has written every page and sent its report, while it waits to be let go.
    AfterWrite,
}

/// What [`cow_after_fork`] saw, from both sides of the fork.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CowReport {
    /// The pid fork returned to the parent.
    pub child: Pid,
    /// The first byte of every page of the buffer, as the child read it after its write.
    pub child_sees: Vec<u8>,
    /// The first byte of every page of the buffer, as the parent read it after the child's write.
    pub parent_sees: Vec<u8>,
    /// The minor page faults the child counted (getrusage) from just before to just after its write.
    pub child_minor_faults: u64,
    /// What `waitpid` on the child returned.
    pub status: WaitStatus,
}

/// Shows copy-on-write: fills a buffer, forks, lets the child overwrite its copy.
///
/// The parent maps a buffer of `pages` pages (private, anonymous, advised `MADV_NOHUGEPAGE`),
/// fills every byte with `fill`, flushes stdout and forks. Then, in this order:
///
/// 1. The parent calls `observe(Moment::BeforeWrite, child, buffer)`, where `buffer` is the
///    parent's whole buffer; meanwhile the child waits for a go-ahead (a byte on a pipe) and
///    has written nothing.
/// 2. The parent sends the go-ahead. The child reads its minor fault count (getrusage),
///    writes `write` into every byte of its copy, reads the count again, and sends the parent
///    the difference and the first byte of each page as it now sees them. Then it waits until
///    the parent lets it go (end of file on the go-ahead pipe) and leaves with `_exit(0)`;
///    it never returns from this function.
/// 3. The parent reads that report, calls `observe(Moment::AfterWrite, child, buffer)` while
///    the child still exists, reads the first byte of each page of its own buffer, lets the
///    child go, waits for it, unmaps the buffer and returns a [`CowReport`].
///
/// `pages` is at least 1. The tests read `/proc/<child>/smaps` and `/proc/<child>/stat` from
/// `observe`, and check the parent's buffer there too.
pub fn cow_after_fork(
    _pages: usize,
    _fill: u8,
    _write: u8,
    _observe: impl FnMut(Moment, Pid, &[u8]),
) -> io::Result<CowReport> {
    todo!()
}
