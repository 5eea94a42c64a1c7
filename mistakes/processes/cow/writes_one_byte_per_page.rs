//! Mistake: the child writes only the first byte of each page, which is enough to make every
//! page fault and be copied, and is all that it reports, but is not the write asked for.
use std::ffi::c_void;
use std::fs::File;
use std::io::{self, Read, Write};
use std::num::NonZeroUsize;
use std::os::fd::OwnedFd;
use std::ptr::NonNull;

use nix::errno::Errno;
use nix::sys::mman::{MapFlags, MmapAdvise, ProtFlags, madvise, mmap_anonymous, munmap};
use nix::sys::resource::{UsageWho, getrusage};
use nix::sys::wait::{WaitStatus, waitpid};
use nix::unistd::{ForkResult, Pid, SysconfVar, fork, pipe, sysconf};

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

/// A private anonymous mapping, unmapped on drop (in the parent; the child leaves by `_exit`).
struct Buffer {
    ptr: NonNull<c_void>,
    len: usize,
}

impl Buffer {
    fn new(len: NonZeroUsize) -> io::Result<Buffer> {
        // SAFETY: a fresh anonymous mapping at an address the kernel picks: nothing aliases it.
        let ptr = unsafe {
            mmap_anonymous(
                None,
                len,
                ProtFlags::PROT_READ | ProtFlags::PROT_WRITE,
                MapFlags::MAP_PRIVATE,
            )
        }?;
        Ok(Buffer {
            ptr,
            len: len.get(),
        })
    }

    fn bytes(&self) -> &[u8] {
        // SAFETY: the mapping is `len` readable bytes and lives as long as `self`.
        unsafe { std::slice::from_raw_parts(self.ptr.as_ptr().cast(), self.len) }
    }

    fn bytes_mut(&mut self) -> &mut [u8] {
        // SAFETY: as above, and `&mut self` makes this the only reference.
        unsafe { std::slice::from_raw_parts_mut(self.ptr.as_ptr().cast(), self.len) }
    }
}

impl Drop for Buffer {
    fn drop(&mut self) {
        // SAFETY: the mapping came from mmap with this length and no slice of it outlives self.
        let _ = unsafe { munmap(self.ptr, self.len) };
    }
}

fn page_size() -> io::Result<usize> {
    Ok(sysconf(SysconfVar::PAGE_SIZE)?.map_or(4096, |p| p as usize))
}

/// The first byte of every page.
fn first_bytes(buf: &[u8], page: usize) -> Vec<u8> {
    buf.chunks(page).map(|p| p[0]).collect()
}

fn minor_faults() -> u64 {
    getrusage(UsageWho::RUSAGE_SELF).map_or(0, |u| u.minor_page_faults() as u64)
}

/// Forks after filling a buffer, lets the child write it, and reports both views; see the
/// exercise for the contract.
pub fn cow_after_fork(
    pages: usize,
    fill: u8,
    write: u8,
    mut observe: impl FnMut(Moment, Pid, &[u8]),
) -> io::Result<CowReport> {
    let page = page_size()?;
    let len = pages
        .checked_mul(page)
        .and_then(NonZeroUsize::new)
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "pages must be at least 1"))?;
    let mut buf = Buffer::new(len)?;
    // SAFETY: advice on our own mapping; it only changes how the kernel backs the range.
    match unsafe { madvise(buf.ptr, buf.len, MmapAdvise::MADV_NOHUGEPAGE) } {
        // EINVAL: a kernel without transparent huge pages, which has none to keep us out of.
        Ok(()) | Err(Errno::EINVAL) => {}
        Err(e) => return Err(e.into()),
    }
    buf.bytes_mut().fill(fill);

    let (go_read, go_write) = pipe()?;
    let (report_read, report_write) = pipe()?;
    // Anything still buffered would be copied into the child and could be printed twice.
    io::stdout().flush()?;
    // SAFETY: the caller is single-threaded; the child touches only its copy of the buffer
    // and the pipes, then leaves with _exit.
    match unsafe { fork() }? {
        ForkResult::Child => {
            drop((go_write, report_read));
            let code = child_side(buf.bytes_mut(), page, write, go_read, report_write);
            // SAFETY: _exit ends the child without running the parent's copied destructors.
            unsafe { libc::_exit(code) }
        }
        ForkResult::Parent { child } => {
            drop((go_read, report_write));
            observe(Moment::BeforeWrite, child, buf.bytes());
            let mut go = File::from(go_write);
            let mut report = vec![0u8; 8 + pages];
            let got = go
                .write_all(b"w")
                .and_then(|()| File::from(report_read).read_exact(&mut report));
            if got.is_ok() {
                observe(Moment::AfterWrite, child, buf.bytes());
            }
            let parent_sees = first_bytes(buf.bytes(), page);
            // End of file on the go pipe lets the child exit; then collect it.
            drop(go);
            let status = waitpid(child, None)?;
            got?;
            let (faults, child_sees) = report.split_at(8);
            Ok(CowReport {
                child,
                child_sees: child_sees.to_vec(),
                parent_sees,
                child_minor_faults: u64::from_ne_bytes(faults.try_into().expect("8 bytes")),
                status,
            })
        }
    }
}

/// The child: wait for the go, write every byte, report, wait for end of file. Returns the
/// exit code.
fn child_side(buf: &mut [u8], page: usize, write: u8, go: OwnedFd, report: OwnedFd) -> i32 {
    let mut go = File::from(go);
    let mut byte = [0u8; 1];
    if go.read_exact(&mut byte).is_err() {
        return 1;
    }
    let before = minor_faults();
    // Each first write to a shared page faults, and the kernel copies that page for us.
    // The mistake: one byte per page instead of every byte.
    for p in buf.chunks_mut(page) {
        p[0] = write;
    }
    let after = minor_faults();
    let mut message = (after - before).to_ne_bytes().to_vec();
    message.extend(first_bytes(buf, page));
    if File::from(report).write_all(&message).is_err() {
        return 1;
    }
    // Stay alive until the parent has looked (it closes the go pipe).
    let _ = go.read(&mut byte);
    0
}
