//! # POSIX shared memory (POSIX 共享内存): shm_open, ftruncate, mmap(MAP_SHARED)
//!
//! Reference solution. See `exercises/ipc/posix_shm.rs` for the lesson.
use std::num::NonZeroUsize;
use std::os::fd::{AsFd, OwnedFd};
use std::ptr::NonNull;

use nix::errno::Errno;
use nix::fcntl::OFlag;
use nix::sys::mman::{MapFlags, ProtFlags, mmap, mmap_anonymous, munmap, shm_open, shm_unlink};
use nix::sys::stat::{Mode, fstat};
use nix::unistd::{ForkResult, Pid, fork, ftruncate};

/// A mapping made by [`map_shared`] or [`map_anonymous_shared`]: `len` bytes from `ptr`.
#[derive(Debug)]
pub struct Region {
    /// The first byte of the mapping (what `mmap` returned).
    pub ptr: NonNull<u8>,
    /// Its length in bytes, as asked of `mmap`.
    pub len: usize,
}

/// Creates a new object of `size` bytes: shm_open, then ftruncate (a new object is empty).
pub fn create_shm(name: &str, size: usize) -> nix::Result<OwnedFd> {
    let flags = OFlag::O_CREAT | OFlag::O_EXCL | OFlag::O_RDWR;
    let fd = shm_open(name, flags, Mode::from_bits_truncate(0o600))?;
    let size = i64::try_from(size).map_err(|_| Errno::EINVAL)?;
    if let Err(e) = ftruncate(&fd, size) {
        // Do not leave a half-made object behind.
        let _ = shm_unlink(name);
        return Err(e);
    }
    Ok(fd)
}

/// Maps `len` bytes of `fd`, read-write, MAP_SHARED.
pub fn map_shared(fd: impl AsFd, len: usize) -> nix::Result<Region> {
    let length = NonZeroUsize::new(len).ok_or(Errno::EINVAL)?;
    let prot = ProtFlags::PROT_READ | ProtFlags::PROT_WRITE;
    // SAFETY: a new mapping chosen by the kernel (no address given), so no existing memory is
    // replaced; the caller reaches it only through the returned Region.
    let ptr = unsafe { mmap(None, length, prot, MapFlags::MAP_SHARED, fd, 0) }?;
    Ok(Region {
        ptr: ptr.cast(),
        len,
    })
}

/// Maps `len` bytes of anonymous memory, read-write, MAP_SHARED (inherited shared by fork).
pub fn map_anonymous_shared(len: usize) -> nix::Result<Region> {
    let length = NonZeroUsize::new(len).ok_or(Errno::EINVAL)?;
    let prot = ProtFlags::PROT_READ | ProtFlags::PROT_WRITE;
    // SAFETY: as in map_shared: a fresh mapping at an address of the kernel's choosing.
    let ptr = unsafe { mmap_anonymous(None, length, prot, MapFlags::MAP_SHARED) }?;
    Ok(Region {
        ptr: ptr.cast(),
        len,
    })
}

/// Whether `len` bytes at `offset` fit in `size`.
fn fits(offset: usize, len: usize, size: usize) -> bool {
    offset.checked_add(len).is_some_and(|end| end <= size)
}

/// Forks a child that stores `data` at `offset` of `region`, then `_exit(0)`.
pub fn write_in_child(region: &Region, offset: usize, data: &[u8]) -> nix::Result<Pid> {
    if !fits(offset, data.len(), region.len) {
        return Err(Errno::EINVAL);
    }
    let dst = region.ptr.as_ptr();
    // SAFETY: the child only copies bytes into the mapping (no lock, no allocation) and leaves
    // through _exit.
    match unsafe { fork() }? {
        ForkResult::Child => {
            // SAFETY: offset + data.len() <= region.len, checked above, and the region is a
            // live mapping of region.len bytes that data (the caller's memory) cannot overlap.
            unsafe { std::ptr::copy_nonoverlapping(data.as_ptr(), dst.add(offset), data.len()) };
            // SAFETY: ends the forked copy without returning into the caller.
            unsafe { libc::_exit(0) }
        }
        ForkResult::Parent { child } => Ok(child),
    }
}

/// Opens `name`, maps it shared, stores `data` at `offset`, unmaps and closes.
pub fn open_and_write(name: &str, offset: usize, data: &[u8]) -> nix::Result<()> {
    let fd = shm_open(name, OFlag::O_RDWR, Mode::empty())?;
    let size = usize::try_from(fstat(&fd)?.st_size).map_err(|_| Errno::EINVAL)?;
    if !fits(offset, data.len(), size) {
        return Err(Errno::EINVAL);
    }
    if data.is_empty() {
        return Ok(());
    }
    let region = map_shared(&fd, size)?;
    // The mapping keeps the object; the descriptor is no longer needed.
    drop(fd);
    // SAFETY: offset + data.len() <= size = region.len, so the copy stays inside the mapping.
    unsafe {
        std::ptr::copy_nonoverlapping(data.as_ptr(), region.ptr.as_ptr().add(offset), data.len())
    };
    unmap(region)
}

/// munmap of the whole region.
pub fn unmap(region: Region) -> nix::Result<()> {
    // SAFETY: the region is a mapping this module made, of region.len bytes, and the Region
    // (its only handle) is consumed here.
    unsafe { munmap(region.ptr.cast(), region.len) }
}

/// shm_unlink.
pub fn remove_shm(name: &str) -> nix::Result<()> {
    // The mistake: "unmapping and closing are enough": the object stays until shm_unlink.
    let _ = name;
    Ok(())
}
