//! # A file in memory (内存映射文件): open, fstat, mmap(MAP_SHARED), store, msync, munmap
//!
//! A classic mistake: writing the bytes with pwrite(2), never mapping the file. See
//! `exercises/memory/mmap_file.rs` for the lesson.
use std::fs::OpenOptions;
use std::path::Path;

use nix::errno::Errno;
use nix::sys::stat::fstat;
use nix::sys::uio::pwrite;
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
    // The mistake: pwrite(2) puts the bytes in the file, but nothing is mapped at all.
    let mut done = 0;
    while done < data.len() {
        match pwrite(&file, &data[done..], (offset + done as u64) as i64) {
            Ok(n) => done += n,
            Err(Errno::EINTR) => {}
            Err(e) => return Err(e),
        }
    }
    // `file` is dropped here, which closes it.
    Ok(size)
}
