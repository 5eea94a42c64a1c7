//! # Counting page faults (缺页): what first touching fresh memory costs
//!
//! `mmap(2)` of anonymous memory returns at once however big the mapping is, because it only
//! reserves addresses: no page of memory backs them yet. The first time the program touches a
//! page, the CPU finds no page-table entry, traps into the kernel (a **page fault**, 缺页异常),
//! and the kernel allocates a zeroed page, maps it, and lets the instruction run again. A fault
//! the kernel serves without reading a disk is a **minor** fault; one that needs I/O (a file
//! page not in the page cache, swap) is a **major** fault. The kernel counts both per process:
//! `getrusage(2)` with `RUSAGE_SELF` gives `ru_minflt` and `ru_majflt`, and
//! `/proc/<pid>/stat` has them as fields 10 and 12 (proc(5)). `RUSAGE_CHILDREN` is something
//! else: the children this process has already waited for.
//!
//! What a touch costs depends on how it touches:
//!
//! - the first **write** of a fresh page: one minor fault, and the page becomes resident
//!   (counted in `Rss` of the mapping's entry in `/proc/self/smaps`);
//! - the first **read** of a fresh page: also a fault, but the kernel maps the one shared
//!   **zero page** read-only instead of allocating; `Rss` stays 0. A later write faults again,
//!   to give the page its own copy (copy on write, 写时复制);
//! - touching a page already mapped: no fault;
//! - one byte per page is enough: touching one byte of a 4 MiB region maps one page only.
//!
//! Two ways to change the count: `MAP_POPULATE` asks `mmap` to fault every page in before it
//! returns (the cost is paid inside `mmap`, so touching later costs nothing), and
//! **transparent huge pages** (透明大页, THP, see `/sys/kernel/mm/transparent_hugepage/enabled`)
//! may let one fault map a 2 MiB huge page, 512 small pages at once. `madvise(2)` with
//! `MADV_NOHUGEPAGE` turns that off for one mapping (smaps then shows `nh` in `VmFlags`).
//!
//! ## What you write
//!
//! [`map_fresh`] and [`map_populated`] make a [`Pages`], [`touch`] reads or writes one byte of
//! every page, [`minor_faults`] reads the kernel's count, [`faults_to_touch`] measures a touch
//! (count before, touch, count after: in that order), and [`unmap`] gives the pages back with
//! `munmap(2)`: a mapping that is never unmapped stays in `/proc/self/maps` until the process
//! ends. The tests check your counts against `/proc/self/stat` and the mapping against
//! `/proc/self/smaps`.
//!
//! Man pages: mmap(2) (`MAP_ANONYMOUS`, `MAP_PRIVATE`, `MAP_POPULATE`), munmap(2), madvise(2),
//! getrusage(2), proc(5) (`/proc/<pid>/stat`, `/proc/<pid>/smaps`), sysconf(3).
use std::ffi::c_void;
use std::io;
use std::ptr::NonNull;

/// A private anonymous read-write mapping of whole pages, made by [`map_fresh`] or
/// [`map_populated`] and given back with [`unmap`].
#[derive(Debug)]
pub struct Pages {
    ptr: NonNull<c_void>,
    bytes: usize,
    page: usize,
}

impl Pages {
    /// The address of the first byte.
    pub fn addr(&self) -> usize {
        self.ptr.as_ptr() as usize
    }
    /// The length in bytes.
    pub fn bytes(&self) -> usize {
        self.bytes
    }
    /// The length in pages.
    pub fn pages(&self) -> usize {
        self.bytes / self.page
    }
}

/// How [`touch`] accesses each page.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Touch {
    /// Read one byte of each page.
    Read,
    /// Write one byte of each page.
    Write,
}

/// The size of a page in bytes, from `sysconf(_SC_PAGESIZE)` (nix: `SysconfVar::PAGE_SIZE`).
pub fn page_size() -> io::Result<usize> {
    todo!()
}

/// This process's minor page faults so far: `getrusage(RUSAGE_SELF)`'s `ru_minflt` (nix:
/// `getrusage(UsageWho::RUSAGE_SELF)?.minor_page_faults()`).
pub fn minor_faults() -> io::Result<u64> {
    todo!()
}

/// Maps `pages` fresh pages: private, anonymous, read-write, and marked `MADV_NOHUGEPAGE`
/// so that each page is faulted in on its own. Nothing is touched. `pages == 0` (or a size
/// that overflows) is an `InvalidInput` error; a failing syscall's error is returned.
pub fn map_fresh(_pages: usize) -> io::Result<Pages> {
    todo!()
}

/// Maps `pages` pages like [`map_fresh`] but with `MAP_POPULATE`: the kernel faults every page
/// in before `mmap` returns. `pages == 0` is an `InvalidInput` error.
pub fn map_populated(_pages: usize) -> io::Result<Pages> {
    todo!()
}

/// Accesses one byte of every page of `pages` (at `addr + i * page size`), reading or writing
/// as `how` says. Use volatile accesses (`std::ptr::read_volatile`/`write_volatile`), or the
/// compiler may drop a read whose value is unused.
pub fn touch(_pages: &Pages, _how: Touch) {
    todo!()
}

/// Touches every page of `pages` as `how` says and returns the minor faults that cost: the
/// count read after the touch minus the count read before it.
pub fn faults_to_touch(_pages: &Pages, _how: Touch) -> io::Result<u64> {
    todo!()
}

/// Unmaps `pages` with `munmap(2)`; its error is returned.
pub fn unmap(_pages: Pages) -> io::Result<()> {
    todo!()
}
