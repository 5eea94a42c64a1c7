//! # A file in memory (内存映射文件): open, fstat, mmap(MAP_SHARED), store, msync, munmap
//!
//! A classic mistake: a private mapping, whose stores are copied on write and never reach the file. See `exercises/memory/mmap_file.rs` for the lesson.
use std::fs::OpenOptions;
use std::num::NonZeroUsize;
use std::path::Path;

use nix::errno::Errno;
use nix::sys::mman::{MapFlags, MsFlags, ProtFlags, mmap, msync, munmap};
use nix::sys::stat::fstat;
use nix::unistd::ftruncate;

/// Writes `data` into the existing file at `path`, starting at byte `offset`, through a shared
/// mapping of the file, and returns the file's size afterwards.
pub fn patch_file(path: &Path, offset: u64, data: &[u8]) -> nix::Result<u64> {
    let io_errno = |e: std::io::Error| Errno::from_raw(e.raw_os_error().unwrap_or(libc::EIO));
    // Read-write, never created: a shared writable mapping needs both, and the file must exist.
    let file = OpenOptions::new()
        .read(true)
        .write(true)
        .open(path)
        .map_err(io_errno)?;
    let size = fstat(&file)?.st_size as u64;
    if data.is_empty() {
        return Ok(size);
    }
    let end = offset
        .checked_add(data.len() as u64)
        .ok_or(Errno::EOVERFLOW)?;
    // Grow first: a page of the mapping wholly past the end of the file is a SIGBUS.
    let size = if end > size {
        ftruncate(&file, i64::try_from(end).map_err(|_| Errno::EFBIG)?)?;
        end
    } else {
        size
    };
    let len = usize::try_from(size).map_err(|_| Errno::ENOMEM)?;
    let length = NonZeroUsize::new(len).ok_or(Errno::EINVAL)?;
    // From offset 0 (always a page boundary), over the whole file.
    // SAFETY: a fresh mapping at an address of the kernel's choosing; nothing else refers to it.
    let ptr = unsafe {
        mmap(
            None,
            length,
            ProtFlags::PROT_READ | ProtFlags::PROT_WRITE,
            // The mistake: MAP_PRIVATE, a copy-on-write view of the file for this process alone.
            MapFlags::MAP_PRIVATE,
            &file,
            0,
        )
    }?;
    // SAFETY: the mapping is `len` bytes long, readable and writable, and only this slice
    // refers to it until munmap below.
    let bytes = unsafe { std::slice::from_raw_parts_mut(ptr.as_ptr().cast::<u8>(), len) };
    let start = offset as usize;
    bytes[start..start + data.len()].copy_from_slice(data);
    // SAFETY: `ptr` and `len` are the mapping made above.
    let synced = unsafe { msync(ptr, len, MsFlags::MS_SYNC) };
    // SAFETY: the same mapping; the slice over it is not used after this.
    let unmapped = unsafe { munmap(ptr, len) };
    synced?;
    unmapped?;
    // `file` is dropped here, which closes it.
    Ok(size)
}
