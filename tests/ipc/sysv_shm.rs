//! ipc/sysv_shm: System V shared memory (System V 共享内存) between a parent and a forked
//! child: shmget, shmat, shmdt, shmctl(IPC_RMID).
//!
//! What the tests observe, never what the code under test claims:
//! - the segment as the kernel lists it in `/proc/sysvipc/shm` (key, mode, size, creator pid,
//!   number of attachments `nattch`) and `shmctl(IPC_STAT)`, including the `SHM_DEST` bit of a
//!   segment marked for removal while still attached;
//! - the test process's mappings in `/proc/<pid>/smaps`: a segment attached shows as a mapping
//!   named `/SYSV<key in hex>`;
//! - the bytes in the segment, read through the test's own attachment; a forked writer's exit
//!   status from `waitpid`; what the harness finds left after the test (a segment never
//!   removed is reported with its id, key, mode and creator pid).
//!
//! The contract, clause by clause, and the test that checks each:
//! - `create_segment` makes a new segment at the key with the size and mode asked
//!   (`create_segment_has_the_size_and_mode_asked`), and fails with EEXIST when the key has one
//!   (`create_segment_refuses_a_key_in_use`);
//! - `attach` maps the whole segment read-write and returns its id, address and size
//!   (`attach_maps_the_whole_segment`: nattch 1, the SYSV mapping at that address, writes
//!   through another attachment seen through it); it returns shmat's or shmctl's error
//!   (`attach_returns_the_error_for_a_removed_segment`);
//! - `detach` unmaps it: nattch back to 0, no SYSV mapping left (`detach_unmaps_it`);
//! - `remove_segment` removes an unattached segment at once and returns the error for one
//!   already gone (`remove_segment_removes_it`), and marks an attached one, which stays until
//!   its last detach (`remove_segment_while_attached_marks_it`);
//! - `spawn_writer` writes from a child process into the segment itself, not into a private
//!   copy, and the child exits 0 (`spawn_writer_writes_from_a_child`); it refuses data longer
//!   than the segment with EINVAL and forks nothing
//!   (`spawn_writer_refuses_data_longer_than_the_segment`);
//! - `share_with_child` returns what the child wrote, and leaves no attachment and no segment
//!   (`share_with_child_returns_what_the_child_wrote`: the SYSV mapping checked here, the
//!   segment by the harness's leak check), reading only after the child exited
//!   (`share_with_child_reads_only_after_the_child_exited`: the child held stopped at birth
//!   until the parent is seen in waitpid); it refuses a key in use with EEXIST and leaves that
//!   segment alone (`share_with_child_refuses_a_key_in_use_and_leaves_that_segment`).

// The exercise under test: your stub (by default), the reference solution (`--features
// solutions`), or a shipped mistake that `cargo grade --mistakes` copies into target/.
#[cfg(not(any(feature = "solutions", feature = "mistake")))]
#[path = "../../exercises/ipc/sysv_shm.rs"]
#[allow(dead_code)] // a stub does not use all of its API yet
mod sysv_shm;
#[cfg(all(feature = "solutions", not(feature = "mistake")))]
#[path = "../../solutions/ipc/sysv_shm.rs"]
mod sysv_shm;
#[cfg(feature = "mistake")]
#[path = "../../target/oskata-mistake/ipc/sysv_shm.rs"]
#[rustfmt::skip] // the copy exists only while the proof runs
mod sysv_shm;
use sysv_shm::*;

use std::fs;
use std::ptr::NonNull;
use std::time::Duration;

use nix::errno::Errno;
use nix::sys::wait::{WaitStatus, waitpid};
use nix::unistd::{Pid, getpid};
use oskata_harness::{Isolation, births, ipc_key, procfs, scratch_dir, student};
use rstest::rstest;

/// The page size of this machine (segments are mapped in whole pages).
fn page() -> usize {
    // SAFETY: sysconf takes an integer.
    unsafe { libc::sysconf(libc::_SC_PAGESIZE) as usize }
}

/// The bit `/proc/sysvipc/shm` and IPC_STAT show on a segment marked for removal.
const SHM_DEST: u32 = 0o1000;

/// What copy-on-write teaches, for a child's write that the parent does not see.
const PRIVATE: &str = "after fork a child's ordinary memory (stack, heap, a Vec, a mapping made MAP_PRIVATE) is a \
                       copy-on-write copy of the parent's, and its writes stay its own (as in processes/cow); \
                       only a shared segment, attached with shmat and inherited across fork, is the same memory in \
                       both processes";

/// A segment the test owns: removed when dropped, whatever the student did.
struct TestSegment {
    id: i32,
    key: libc::key_t,
}

impl Drop for TestSegment {
    fn drop(&mut self) {
        // SAFETY: IPC_RMID reads no buffer; the id may be gone already (EINVAL is fine).
        unsafe { libc::shmctl(self.id, libc::IPC_RMID, std::ptr::null_mut()) };
    }
}

/// A new segment of `size` bytes made by the test at `ipc_key(tag)`, mode 600.
fn test_segment(tag: u8, size: usize) -> TestSegment {
    let key = ipc_key(tag);
    // SAFETY: shmget takes integers.
    let id = unsafe { libc::shmget(key, size, libc::IPC_CREAT | libc::IPC_EXCL | 0o600) };
    assert!(id >= 0, "the test's shmget failed: {}", Errno::last());
    TestSegment { id, key }
}

/// The test's own attachment of `id`.
fn raw_attach(id: i32) -> NonNull<u8> {
    // SAFETY: a null address lets the kernel choose; nothing of ours is touched.
    let p = unsafe { libc::shmat(id, std::ptr::null(), 0) };
    assert!(
        p as isize != -1,
        "the test's shmat failed: {}",
        Errno::last()
    );
    NonNull::new(p.cast()).expect("shmat returned null")
}

/// The test's own detach of an attachment at `addr`.
fn raw_detach(addr: NonNull<u8>) -> Result<(), Errno> {
    // SAFETY: nothing reads through `addr` after this; a wrong address fails with EINVAL.
    if unsafe { libc::shmdt(addr.as_ptr().cast()) } == 0 {
        Ok(())
    } else {
        Err(Errno::last())
    }
}

/// `len` bytes at `addr`, copied out.
fn read_at(addr: NonNull<u8>, len: usize) -> Vec<u8> {
    let mut out = vec![0u8; len];
    // SAFETY: callers pass an attachment at least `len` bytes long.
    unsafe { std::ptr::copy_nonoverlapping(addr.as_ptr(), out.as_mut_ptr(), len) };
    out
}

/// One line of /proc/sysvipc/shm.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Listed {
    key: i32,
    id: i32,
    perms: u32,
    size: u64,
    cpid: i32,
    lpid: i32,
    nattch: u64,
}

/// Every segment the kernel lists in this IPC namespace.
fn listed() -> Vec<Listed> {
    let text = fs::read_to_string("/proc/sysvipc/shm").expect("read /proc/sysvipc/shm");
    let mut lines = text.lines();
    let header: Vec<&str> = lines.next().unwrap_or("").split_whitespace().collect();
    let col = |name: &str| {
        header
            .iter()
            .position(|h| *h == name)
            .unwrap_or_else(|| panic!("/proc/sysvipc/shm has no {name} column"))
    };
    let cols = [
        col("key"),
        col("shmid"),
        col("perms"),
        col("size"),
        col("cpid"),
        col("lpid"),
        col("nattch"),
    ];
    lines
        .filter_map(|l| {
            let w: Vec<&str> = l.split_whitespace().collect();
            Some(Listed {
                key: w.get(cols[0])?.parse().ok()?,
                id: w.get(cols[1])?.parse().ok()?,
                perms: u32::from_str_radix(w.get(cols[2])?, 8).ok()?,
                size: w.get(cols[3])?.parse().ok()?,
                cpid: w.get(cols[4])?.parse().ok()?,
                lpid: w.get(cols[5])?.parse().ok()?,
                nattch: w.get(cols[6])?.parse().ok()?,
            })
        })
        .collect()
}

/// The kernel's line for segment `id`, if it lists one.
fn listed_id(id: i32) -> Option<Listed> {
    listed().into_iter().find(|s| s.id == id)
}

/// shmctl(IPC_STAT) of `id`.
fn ipc_stat(id: i32) -> Result<libc::shmid_ds, Errno> {
    // SAFETY: an all-zero shmid_ds is a valid value of that plain C struct.
    let mut ds: libc::shmid_ds = unsafe { std::mem::zeroed() };
    // SAFETY: IPC_STAT writes one shmid_ds into `ds`.
    let rc = unsafe { libc::shmctl(id, libc::IPC_STAT, &raw mut ds) };
    if rc < 0 { Err(Errno::last()) } else { Ok(ds) }
}

/// The name a segment with `key` has in /proc/<pid>/maps.
fn sysv_name(key: libc::key_t) -> String {
    format!("/SYSV{:08x}", key as u32)
}

/// The test process's mappings of the segment with `key`, as (start, end, perms).
fn sysv_mappings(key: libc::key_t) -> Vec<(u64, u64, String)> {
    let name = sysv_name(key);
    procfs::smaps(getpid())
        .expect("read the test's smaps")
        .into_iter()
        .filter(|m| m.path.starts_with(&name))
        .map(|m| (m.start, m.end, m.perms))
        .collect()
}

#[rstest]
#[case(4096, 0o600)]
#[case(10_000, 0o640)]
#[case(1, 0o604)]
fn create_segment_has_the_size_and_mode_asked(#[case] size: usize, #[case] mode: u32) {
    Isolation::new().deadline(Duration::from_secs(15)).run(|| {
        let key = ipc_key(1);
        let id = student(|| create_segment(key, size, mode)).unwrap_or_else(|e| {
            panic!("create_segment({key:#x}, {size}, {mode:o}) failed: {e} (no segment had that key)")
        });
        let _guard = TestSegment { id, key };
        let Some(line) = listed_id(id) else {
            panic!(
                "create_segment returned id {id}, but /proc/sysvipc/shm lists no segment with that id: {:?}",
                listed()
            );
        };
        assert_eq!(
            line.key, key,
            "the segment create_segment made (id {id}) has key {:#x} in /proc/sysvipc/shm, not the key asked, \
             {key:#x}: shmget(2) takes the key as its first argument",
            line.key
        );
        if line.size != size as u64 {
            panic!(
                "the segment create_segment({key:#x}, {size}, {mode:o}) made (id {id}) is {} bytes in \
                 /proc/sysvipc/shm, not the {size} asked: pass the size asked to shmget(2) as it is; the kernel keeps \
                 that size (shm_segsz) and maps it in whole pages by itself",
                line.size
            );
        }
        assert_eq!(
            line.perms, mode,
            "the segment create_segment made (id {id}) has mode {:o} in /proc/sysvipc/shm, not the mode asked, \
             {mode:o}: the low 9 bits of shmget's flags are the permission bits, or-ed with IPC_CREAT | IPC_EXCL",
            line.perms
        );
        assert_eq!(
            line.cpid,
            getpid().as_raw(),
            "the segment's creator pid (cpid) should be the test process"
        );
        assert_eq!(
            line.nattch, 0,
            "a segment just created is attached nowhere (nattch 0)"
        );
        let ds = ipc_stat(id).expect("IPC_STAT of the new segment");
        assert_eq!(
            (
                ds.shm_perm.__key,
                u32::from(ds.shm_perm.mode) & 0o777,
                ds.shm_segsz
            ),
            (key, mode, size),
            "IPC_STAT shows key, mode and size differing from what was asked"
        );
    });
}

#[test]
fn create_segment_refuses_a_key_in_use() {
    Isolation::new().deadline(Duration::from_secs(15)).run(|| {
        let seg = test_segment(2, 8192);
        let got = student(|| create_segment(seg.key, 4096, 0o600));
        if let Ok(other) = got
            && other != seg.id
        {
            let _ = TestSegment {
                id: other,
                key: seg.key,
            };
        }
        assert_eq!(
            got,
            Err(Errno::EEXIST),
            "create_segment at a key where a segment already exists (id {}) must fail with EEXIST: create a NEW \
             segment with IPC_CREAT | IPC_EXCL; without IPC_EXCL shmget hands back the old segment, old contents \
             and all",
            seg.id
        );
        assert_eq!(
            ipc_stat(seg.id).map(|ds| ds.shm_segsz),
            Ok(8192),
            "the segment already there must be left as it was"
        );
    });
}

#[test]
fn attach_maps_the_whole_segment() {
    Isolation::new().deadline(Duration::from_secs(15)).run(|| {
        let size = 10_000;
        let seg = test_segment(3, size);
        let attached = student(|| attach(seg.id)).expect("attach of the test's segment");
        let addr = attached.addr;
        let other = raw_attach(seg.id);
        let nattch = listed_id(seg.id).map(|l| l.nattch);
        let maps = sysv_mappings(seg.key);
        let mut trouble = Vec::new();
        if attached.id != seg.id || attached.len != size {
            trouble.push(format!(
                "attach returned id {} and len {}, not the segment's id {} and size {size} (shm_segsz from \
                 IPC_STAT)",
                attached.id, attached.len, seg.id
            ));
        }
        if nattch != Some(2) {
            trouble.push(format!(
                "with attach's attachment and the test's own, /proc/sysvipc/shm shows nattch {nattch:?}, not 2"
            ));
        }
        let start = addr.as_ptr() as u64;
        let rounded = size.div_ceil(page()) * page();
        match maps.iter().find(|m| m.0 == start) {
            Some((s, e, perms)) if e - s == rounded as u64 && perms.starts_with("rw") => {}
            found => trouble.push(format!(
                "/proc/{}/smaps shows no read-write mapping {} of {rounded} bytes (the segment in whole pages) at \
                 the address attach returned, {start:#x}; the segment's mappings: {maps:x?} (found {found:x?})",
                getpid(),
                sysv_name(seg.key)
            )),
        }
        if trouble.is_empty() {
            let text = b"written through the test's own attachment";
            // SAFETY: the test's attachment is `size` >= text.len() bytes long.
            unsafe { std::ptr::copy_nonoverlapping(text.as_ptr(), other.as_ptr(), text.len()) };
            if read_at(addr, text.len()) != text {
                trouble.push(format!(
                    "bytes written through another attachment of segment {} are not seen at the address attach \
                     returned: attach must map the segment itself (shmat), not a copy",
                    seg.id
                ));
            }
        }
        let _ = raw_detach(other);
        let _ = raw_detach(addr);
        assert!(trouble.is_empty(), "{}", trouble.join("\n"));
    });
}

#[test]
fn attach_returns_the_error_for_a_removed_segment() {
    Isolation::new().deadline(Duration::from_secs(15)).run(|| {
        let seg = test_segment(4, 4096);
        let id = seg.id;
        drop(seg);
        let got = student(|| attach(id));
        if let Ok(s) = &got {
            let _ = raw_detach(s.addr);
        }
        assert_eq!(
            got.err(),
            Some(Errno::EINVAL),
            "attach of a segment id that no longer exists must fail with EINVAL (shmat's or IPC_STAT's error)"
        );
    });
}

#[test]
fn detach_unmaps_it() {
    Isolation::new().deadline(Duration::from_secs(15)).run(|| {
        let seg = test_segment(5, 4096);
        let attached = student(|| attach(seg.id)).expect("attach of the test's segment");
        let addr = attached.addr;
        let got = student(|| detach(attached));
        let nattch = listed_id(seg.id).map(|l| l.nattch);
        let maps = sysv_mappings(seg.key);
        // Whatever detach did, the test's process ends up with nothing attached.
        let still = raw_detach(addr).is_ok();
        assert_eq!(got, Ok(()), "detach of an attached segment");
        if still || nattch != Some(0) || !maps.is_empty() {
            panic!(
                "after detach, segment {} is still attached: /proc/sysvipc/shm shows nattch {nattch:?} (0 expected) \
                 and /proc/{}/smaps still maps it ({} at {maps:x?}). Call shmdt(2) with the address shmat returned: \
                 only a detach (or the process's exit) lowers nattch, and a segment marked for removal stays until \
                 nattch is 0.",
                seg.id,
                getpid(),
                sysv_name(seg.key)
            );
        }
        let ds = ipc_stat(seg.id).expect("IPC_STAT");
        assert_eq!(ds.shm_nattch, 0, "IPC_STAT's shm_nattch after detach");
        assert_eq!(
            ds.shm_lpid,
            getpid().as_raw(),
            "the last attach or detach was the test process's"
        );
    });
}

#[test]
fn remove_segment_removes_it() {
    Isolation::new().deadline(Duration::from_secs(15)).run(|| {
        let seg = test_segment(6, 4096);
        let got = student(|| remove_segment(seg.id));
        assert_eq!(got, Ok(()), "remove_segment of an unattached segment");
        match ipc_stat(seg.id) {
            Err(Errno::EINVAL) => {}
            other => panic!(
                "after remove_segment({}) of a segment attached nowhere, shmctl(IPC_STAT) gave {:?} instead of \
                 failing with EINVAL: the segment still exists. shmctl(id, IPC_RMID, NULL) removes a segment with \
                 nattch 0 at once.",
                seg.id,
                other.map(|ds| ds.shm_perm.mode)
            ),
        }
        assert_eq!(
            listed_id(seg.id),
            None,
            "/proc/sysvipc/shm still lists the removed segment"
        );
        let again = student(|| remove_segment(seg.id));
        assert_eq!(
            again,
            Err(Errno::EINVAL),
            "remove_segment of a segment already removed must return shmctl's error, EINVAL"
        );
    });
}

#[test]
fn remove_segment_while_attached_marks_it() {
    Isolation::new().deadline(Duration::from_secs(15)).run(|| {
        let seg = test_segment(7, 4096);
        let addr = raw_attach(seg.id);
        let got = student(|| remove_segment(seg.id));
        let line = listed_id(seg.id);
        let _ = raw_detach(addr);
        assert_eq!(got, Ok(()), "remove_segment of an attached segment");
        match line {
            Some(l) if l.perms & SHM_DEST != 0 && l.key == 0 && l.nattch == 1 => {}
            other => panic!(
                "after remove_segment({}) while the test had it attached, /proc/sysvipc/shm shows {other:?}: a \
                 segment marked for removal by IPC_RMID stays while attached, with key 0 (no longer findable by \
                 key) and the SHM_DEST bit ({SHM_DEST:o}) in its mode; it goes at the last detach",
                seg.id
            ),
        }
        assert_eq!(
            ipc_stat(seg.id).err(),
            Some(Errno::EINVAL),
            "the marked segment is gone once its last attachment was detached"
        );
    });
}

#[test]
fn spawn_writer_writes_from_a_child() {
    Isolation::new().deadline(Duration::from_secs(15)).run(|| {
        let size = 3 * page() + 100;
        let seg = test_segment(8, size);
        let addr = raw_attach(seg.id);
        let watch = raw_attach(seg.id);
        let segment = Segment {
            id: seg.id,
            addr,
            len: size,
        };
        let data: Vec<u8> = (0..size - 50).map(|i| (i * 7 + 3) as u8).collect();
        let child = student(|| spawn_writer(&segment, &data));
        let child = match child {
            Ok(c) => c,
            Err(e) => panic!("spawn_writer failed: {e}"),
        };
        assert_ne!(child, getpid(), "spawn_writer must return the child's pid");
        let status = waitpid(child, None).expect("waitpid on the writer");
        let seen = read_at(watch, size);
        let _ = raw_detach(addr);
        let _ = raw_detach(watch);
        assert_eq!(
            status,
            WaitStatus::Exited(child, 0),
            "the writer child should exit 0"
        );
        if seen[..data.len()] != data[..] {
            let zeros = seen[..data.len()].iter().all(|b| *b == 0);
            panic!(
                "after the writer child (pid {child}) exited 0, the segment holds {} of the data it was to write: \
                 the child wrote elsewhere. {PRIVATE}. Write through the segment's address, which the child \
                 inherited attached.",
                if zeros {
                    "only zeros instead".to_string()
                } else {
                    let first = seen.iter().zip(&data).position(|(a, b)| a != b).unwrap_or(0);
                    format!("different bytes from byte {first} on instead")
                }
            );
        }
        assert!(
            seen[data.len()..].iter().all(|b| *b == 0),
            "the writer wrote past the data it was given"
        );
    });
}

#[test]
fn spawn_writer_refuses_data_longer_than_the_segment() {
    Isolation::new().deadline(Duration::from_secs(15)).run(|| {
        let size = 100;
        let seg = test_segment(9, size);
        let addr = raw_attach(seg.id);
        let segment = Segment {
            id: seg.id,
            addr,
            len: size,
        };
        let data = vec![1u8; size + 1];
        let got = student(|| spawn_writer(&segment, &data));
        let children = procfs::children(getpid());
        for c in &children {
            let _ = waitpid(Pid::from_raw(c.pid), None);
        }
        let _ = raw_detach(addr);
        assert_eq!(
            got,
            Err(Errno::EINVAL),
            "spawn_writer of {} bytes into a segment of {size} must fail with EINVAL, before forking",
            size + 1
        );
        assert!(
            children.is_empty(),
            "spawn_writer refused the data but forked anyway: {children:?}"
        );
    });
}

#[rstest]
#[case(4096, 100)]
#[case(10_000, 10_000)]
#[case(65_536, 40_000)]
fn share_with_child_returns_what_the_child_wrote(#[case] size: usize, #[case] len: usize) {
    Isolation::new().deadline(Duration::from_secs(15)).run(|| {
        let key = ipc_key(10);
        let data: Vec<u8> = (0..len).map(|i| (i * 13 + len) as u8 | 1).collect();
        let got = student(|| share_with_child(key, size, 0o600, &data));
        let maps = sysv_mappings(key);
        if !maps.is_empty() {
            let segs = listed();
            // The test's process detaches, so that the leak check finds only what was not removed.
            for (start, _, _) in &maps {
                let _ = raw_detach(NonNull::new(*start as *mut u8).expect("mapping address"));
            }
            panic!(
                "share_with_child returned but the test process still has the segment attached: /proc/{}/smaps maps \
                 {} at {maps:x?}, and /proc/sysvipc/shm shows {segs:?}. Detach with shmdt(2) before removing: a \
                 segment marked for removal with IPC_RMID stays (key 0, SHM_DEST in its mode) while nattch > 0.",
                getpid(),
                sysv_name(key)
            );
        }
        match got {
            Ok(got) if got == data => {}
            Ok(got) if got.len() == data.len() && got.iter().all(|b| *b == 0) => panic!(
                "share_with_child returned {} zero bytes instead of what the child wrote: the parent did not see the \
                 child's write. {PRIVATE}.",
                got.len()
            ),
            Ok(got) => panic!(
                "share_with_child returned {} bytes differing from the {} the child was to write",
                got.len(),
                data.len()
            ),
            Err(e) => panic!("share_with_child({key:#x}, {size}, 600, {len} bytes) failed: {e}"),
        }
        // A segment left (not removed) the harness reports with its id, key, mode and creator.
    });
}

#[test]
fn share_with_child_refuses_a_key_in_use_and_leaves_that_segment() {
    Isolation::new().deadline(Duration::from_secs(15)).run(|| {
        let seg = test_segment(11, 4096);
        let got = student(|| share_with_child(seg.key, 4096, 0o600, b"mine"));
        assert_eq!(
            got,
            Err(Errno::EEXIST),
            "share_with_child at a key where another segment exists must fail with EEXIST (create_segment uses \
             IPC_EXCL)"
        );
        assert!(
            ipc_stat(seg.id).is_ok_and(|ds| ds.shm_perm.mode as u32 & SHM_DEST == 0),
            "share_with_child removed the segment that was already at its key (id {}): remove only the segment \
             you created",
            seg.id
        );
    });
}

/// Whether `pid`'s main thread sleeps in wait4(2) or waitid(2) right now.
fn asleep_in_wait(pid: Pid) -> bool {
    procfs::syscall(pid).is_some_and(|c| c.nr == libc::SYS_wait4 || c.nr == libc::SYS_waitid)
        && procfs::state(pid) == Some('S')
}

#[test]
fn share_with_child_reads_only_after_the_child_exited() {
    Isolation::new().deadline(Duration::from_secs(20)).run(|| {
        let me = getpid();
        let returned = scratch_dir().join("returned");
        let flag = returned.clone();
        // Every child starts stopped, and stays so until the parent is seen waiting for it (or
        // share_with_child has returned): a parent that reads before it waits reads first.
        let hold = births::hold_new_children(move || flag.exists() || asleep_in_wait(me));
        let hold = match hold {
            Ok(hold) => Some(hold),
            Err(why) => {
                eprintln!("note: the test cannot hold new children here ({why}); they run freely");
                None
            }
        };
        let data: Vec<u8> = (0..5000).map(|i| (i % 251) as u8 | 0x80).collect();
        let got = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            student(|| share_with_child(ipc_key(12), 8192, 0o600, &data))
        }));
        fs::write(&returned, b"").expect("write the test's flag file");
        drop(hold);
        let got = got.unwrap_or_else(|p| std::panic::resume_unwind(p));
        for (start, _, _) in sysv_mappings(ipc_key(12)) {
            let _ = raw_detach(NonNull::new(start as *mut u8).expect("mapping address"));
        }
        match got {
            Ok(got) if got == data => {}
            Ok(got) if got.iter().all(|b| *b == 0) => panic!(
                "share_with_child returned {} zero bytes. The test held the child stopped at birth until the parent \
                 was seen asleep in waitpid: so the parent read the segment before the child had written anything. \
                 Shared memory has no ordering of its own; read only after waitpid says the child exited (if \
                 spawn_writer_writes_from_a_child fails too, the child wrote into a private copy instead).",
                got.len()
            ),
            Ok(got) => panic!(
                "share_with_child returned {} bytes differing from the {} the child was to write",
                got.len(),
                data.len()
            ),
            Err(e) => panic!("share_with_child failed: {e}"),
        }
    });
}
