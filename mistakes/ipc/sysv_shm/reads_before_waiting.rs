//! # System V shared memory (System V 共享内存): shmget, shmat, shmdt, shmctl(IPC_RMID)
//!
//! A shipped mistake: `share_with_child` reads the segment before it waits for the child.
use std::ptr::NonNull;

use nix::errno::Errno;
use nix::sys::wait::{WaitStatus, waitpid};
use nix::unistd::{ForkResult, Pid, fork};

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

/// shmget(2), -1 made an error.
fn shmget(key: libc::key_t, size: usize, flags: libc::c_int) -> nix::Result<i32> {
    // SAFETY: shmget takes integers and touches no memory of ours.
    Errno::result(unsafe { libc::shmget(key, size, flags) })
}

/// shmat(2) at an address of the kernel's choosing, read-write; `(void *) -1` made an error.
fn shmat(id: i32) -> nix::Result<NonNull<u8>> {
    // SAFETY: with a null address the kernel picks a free range; nothing of ours is touched.
    let p = unsafe { libc::shmat(id, std::ptr::null(), 0) };
    if p as isize == -1 {
        return Err(Errno::last());
    }
    NonNull::new(p.cast()).ok_or(Errno::EFAULT)
}

/// shmdt(2), -1 made an error.
fn shmdt(addr: NonNull<u8>) -> nix::Result<()> {
    // SAFETY: `addr` is where shmat attached the segment; after this nothing reads through it.
    Errno::result(unsafe { libc::shmdt(addr.as_ptr().cast()) }).map(drop)
}

/// shmctl(2) with IPC_STAT, -1 made an error.
fn shmctl_stat(id: i32) -> nix::Result<libc::shmid_ds> {
    // SAFETY: an all-zero shmid_ds is a valid value of that plain C struct.
    let mut ds: libc::shmid_ds = unsafe { std::mem::zeroed() };
    // SAFETY: IPC_STAT writes one shmid_ds into `ds`.
    Errno::result(unsafe { libc::shmctl(id, libc::IPC_STAT, &raw mut ds) })?;
    Ok(ds)
}

/// shmctl(2) with IPC_RMID, -1 made an error.
fn shmctl_rmid(id: i32) -> nix::Result<()> {
    // SAFETY: IPC_RMID reads no buffer; a null pointer is allowed.
    Errno::result(unsafe { libc::shmctl(id, libc::IPC_RMID, std::ptr::null_mut()) }).map(drop)
}

/// Creates a new segment of `size` bytes at `key` with permission bits `mode`; fails with
/// `EEXIST` if the key has one. Returns its id.
pub fn create_segment(key: libc::key_t, size: usize, mode: u32) -> nix::Result<i32> {
    shmget(
        key,
        size,
        libc::IPC_CREAT | libc::IPC_EXCL | (mode & 0o777) as libc::c_int,
    )
}

/// Attaches segment `id` read-write and returns where, with the segment's size.
pub fn attach(id: i32) -> nix::Result<Segment> {
    let len = shmctl_stat(id)?.shm_segsz;
    let addr = shmat(id)?;
    Ok(Segment { id, addr, len })
}

/// Detaches the segment from this process.
pub fn detach(segment: Segment) -> nix::Result<()> {
    shmdt(segment.addr)
}

/// Marks segment `id` for removal (`IPC_RMID`).
pub fn remove_segment(id: i32) -> nix::Result<()> {
    shmctl_rmid(id)
}

/// Forks a child that copies `data` to the start of `segment` and leaves with `_exit(0)`.
/// Fails with `EINVAL`, forking nothing, if `data` is longer than the segment.
pub fn spawn_writer(segment: &Segment, data: &[u8]) -> nix::Result<Pid> {
    if data.len() > segment.len {
        return Err(Errno::EINVAL);
    }
    // SAFETY: the child copies bytes it already has into memory it has attached and leaves
    // through _exit; it takes no lock another thread might hold.
    match unsafe { fork() }? {
        ForkResult::Child => {
            // SAFETY: the attachment is inherited across fork, so `addr` is mapped here too,
            // for `len` >= data.len() bytes; `data` is ordinary memory, not inside it.
            unsafe {
                std::ptr::copy_nonoverlapping(data.as_ptr(), segment.addr.as_ptr(), data.len())
            };
            // SAFETY: _exit ends this forked copy without running the parent's destructors
            // or returning into the caller; exiting detaches its attachment.
            unsafe { libc::_exit(0) }
        }
        ForkResult::Parent { child } => Ok(child),
    }
}

/// The whole life of a segment: create, attach, let a child write `data`, reap it, read
/// what it wrote, detach, remove. Fails with `EIO` if the child did not exit with 0.
pub fn share_with_child(
    key: libc::key_t,
    size: usize,
    mode: u32,
    data: &[u8],
) -> nix::Result<Vec<u8>> {
    let id = create_segment(key, size, mode)?;
    let result = attach(id).and_then(|segment| {
        let got = write_and_read(&segment, data);
        let detached = detach(segment);
        let got = got?;
        detached?;
        Ok(got)
    });
    // Removed on every path; the segment goes once the last attachment is gone.
    let removed = remove_segment(id);
    let got = result?;
    removed?;
    Ok(got)
}

/// The child writes, the parent waits for it and reads.
fn write_and_read(segment: &Segment, data: &[u8]) -> nix::Result<Vec<u8>> {
    let child = spawn_writer(segment, data)?;
    // The mistake: the parent reads before waitpid, while the child may not have written yet.
    let mut early = vec![0u8; data.len()];
    // SAFETY: the segment is attached at `addr` for `len` >= data.len() bytes.
    unsafe {
        std::ptr::copy_nonoverlapping(segment.addr.as_ptr(), early.as_mut_ptr(), early.len())
    };
    let status = loop {
        match waitpid(child, None) {
            Err(Errno::EINTR) => continue,
            other => break other?,
        }
    };
    if status != WaitStatus::Exited(child, 0) {
        return Err(Errno::EIO);
    }
    // The mistake: what was read before the wait is returned.
    Ok(early)
}
