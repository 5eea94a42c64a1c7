//! # Counting page faults (缺页): what first touching fresh memory costs
//!
//! Reference solution. See `exercises/memory/page_faults.rs` for the lesson.
use std::ffi::c_void;
use std::io;
use std::num::NonZeroUsize;
use std::ptr::NonNull;

use nix::sys::mman::{MapFlags, MmapAdvise, ProtFlags, madvise, mmap_anonymous, munmap};
use nix::sys::resource::{UsageWho, getrusage};
use nix::unistd::{SysconfVar, sysconf};

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

/// The size of a page in bytes, from `sysconf(_SC_PAGESIZE)`.
pub fn page_size() -> io::Result<usize> {
    match sysconf(SysconfVar::PAGE_SIZE)? {
        Some(n) if n > 0 => Ok(n as usize),
        _ => Err(io::Error::other("sysconf(_SC_PAGESIZE) gave no page size")),
    }
}

/// This process's minor page faults so far, from `getrusage(RUSAGE_SELF)`.
pub fn minor_faults() -> io::Result<u64> {
    let usage = getrusage(UsageWho::RUSAGE_SELF)?;
    Ok(usage.minor_page_faults() as u64)
}

fn map(pages: usize, extra: MapFlags) -> io::Result<Pages> {
    let page = page_size()?;
    let bytes = pages
        .checked_mul(page)
        .and_then(NonZeroUsize::new)
        .ok_or_else(|| io::Error::from(io::ErrorKind::InvalidInput))?;
    // SAFETY: a new private anonymous mapping: it cannot alias any memory Rust knows about.
    let ptr = unsafe {
        mmap_anonymous(
            None,
            bytes,
            ProtFlags::PROT_READ | ProtFlags::PROT_WRITE,
            MapFlags::MAP_PRIVATE | extra,
        )
    }?;
    Ok(Pages {
        ptr,
        bytes: bytes.get(),
        page,
    })
}

/// Maps `pages` fresh pages: private, anonymous, read-write, and marked `MADV_NOHUGEPAGE`
/// so that each page is faulted in on its own. `pages == 0` is an `InvalidInput` error.
pub fn map_fresh(pages: usize) -> io::Result<Pages> {
    // The mistake: no MADV_NOHUGEPAGE, so a huge page may serve 512 pages with one fault.
    map(pages, MapFlags::empty())
}

/// Maps `pages` pages like [`map_fresh`] but with `MAP_POPULATE`: the kernel faults every page
/// in before `mmap` returns. `pages == 0` is an `InvalidInput` error.
pub fn map_populated(pages: usize) -> io::Result<Pages> {
    map(pages, MapFlags::MAP_POPULATE)
}

/// Accesses one byte of every page of `pages`, reading or writing as `how` says.
pub fn touch(pages: &Pages, how: Touch) {
    let base = pages.ptr.as_ptr().cast::<u8>();
    for i in 0..pages.pages() {
        // SAFETY: `i * page` is inside the mapping, which is readable and writable while
        // `pages` exists; volatile so that the compiler keeps every access.
        unsafe {
            let byte = base.add(i * pages.page);
            match how {
                Touch::Read => {
                    std::ptr::read_volatile(byte);
                }
                Touch::Write => std::ptr::write_volatile(byte, 1),
            }
        }
    }
}

/// Touches every page of `pages` as `how` says and returns the minor faults that cost: the
/// count after the touch minus the count before it.
pub fn faults_to_touch(pages: &Pages, how: Touch) -> io::Result<u64> {
    let before = minor_faults()?;
    touch(pages, how);
    let after = minor_faults()?;
    Ok(after.saturating_sub(before))
}

/// Unmaps `pages` with `munmap(2)`.
pub fn unmap(pages: Pages) -> io::Result<()> {
    // SAFETY: `pages` owned the mapping and is consumed, so nothing can use it afterwards.
    unsafe { munmap(pages.ptr, pages.bytes) }?;
    Ok(())
}
