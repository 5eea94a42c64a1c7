//! ipc/posix_shm: POSIX shared memory (POSIX 共享内存): shm_open + ftruncate + mmap(MAP_SHARED)
//! between processes, and an anonymous shared mapping across fork.
//!
//! What the tests observe, never what the code under test claims:
//! - the object as the kernel keeps it: `fstat` of the descriptor (size, mode), the file
//!   `/dev/shm/<name>` (the harness gives each test a private tmpfs there) read by the test and
//!   by an exec'd `cat`, and `shm_open` without `O_CREAT` failing with `ENOENT` once it is gone;
//! - the mapping in `/proc/self/smaps`: its permissions (`s` shared or `p` private), its file,
//!   its extent, and whether it is still there;
//! - bytes stored by a forked child, read by the parent after `waitpid`, and the child's exit
//!   status (SIGBUS for a store into an object that is too short);
//! - the harness lists `/dev/shm` after every test and fails one that left an object behind.
//!
//! The contract, clause by clause, and the test that checks each:
//! - `create_shm` makes an object of exactly the asked size, zero-filled, mode 0600, open
//!   read-write (`create_shm_makes_an_object_of_the_asked_size`, three sizes), and refuses a
//!   taken name with EEXIST, leaving that object alone (`create_shm_refuses_an_existing_name`);
//! - `map_shared` maps the object shared and read-write, so stores reach the object and an
//!   exec'd reader (`map_shared_is_a_shared_mapping_of_the_object`), and refuses length 0 with
//!   EINVAL (`mappings_of_length_0_are_einval`);
//! - `map_anonymous_shared` makes zero-filled shared memory that a forked child writes and the
//!   parent reads (`anonymous_shared_mapping_crosses_fork`);
//! - `write_in_child`'s child stores the bytes at the offset and exits 0
//!   (`anonymous_shared_mapping_crosses_fork`, `a_created_object_crosses_fork_and_exec`), and it
//!   refuses a store past the region's end with EINVAL, forking nothing
//!   (`write_in_child_refuses_to_store_past_the_end`);
//! - the whole life of a named object, every function the student's: create, map, a child's
//!   store seen by the parent and by an exec'd `cat`, unmap, remove
//!   (`a_created_object_crosses_fork_and_exec`);
//! - `open_and_write` finds the object by name and its store reaches the creator's mapping,
//!   leaving no mapping and no descriptor of its own (`open_and_write_reaches_the_creators_mapping`),
//!   refuses a store past the object's end with EINVAL, in the same page or beyond
//!   (`open_and_write_refuses_to_store_past_the_end`), and returns ENOENT for a missing name,
//!   creating nothing (`open_and_write_fails_for_a_missing_name`);
//! - `unmap` removes the mapping (`unmap_removes_the_mapping`);
//! - `remove_shm` frees the name while mappings keep working (`remove_shm_frees_the_name`) and
//!   returns ENOENT for a missing one (`remove_shm_returns_enoent_for_no_such_object`).

// The exercise under test: your stub (by default), the reference solution (`--features
// solutions`), or a shipped mistake that `cargo grade --mistakes` copies into target/.
#[cfg(not(any(feature = "solutions", feature = "mistake")))]
#[path = "../../exercises/ipc/posix_shm.rs"]
#[allow(dead_code)] // a stub does not use all of its API yet
mod posix_shm;
#[cfg(all(feature = "solutions", not(feature = "mistake")))]
#[path = "../../solutions/ipc/posix_shm.rs"]
mod posix_shm;
#[cfg(feature = "mistake")]
#[path = "../../target/oskata-mistake/ipc/posix_shm.rs"]
#[rustfmt::skip] // the copy exists only while the proof runs
mod posix_shm;
use posix_shm::*;

use std::num::NonZeroUsize;
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::fs::PermissionsExt;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::PathBuf;
use std::process::Command;
use std::ptr::NonNull;
use std::thread;
use std::time::{Duration, Instant};

use nix::errno::Errno;
use nix::fcntl::OFlag;
use nix::sys::mman::{MapFlags, ProtFlags, mmap, mmap_anonymous, munmap, shm_open, shm_unlink};
use nix::sys::signal::{Signal, kill};
use nix::sys::stat::{Mode, fstat};
use nix::sys::wait::{WaitPidFlag, WaitStatus, waitpid};
use nix::unistd::{ForkResult, Pid, fork, ftruncate, getpid};
use oskata_harness::{Isolation, ipc_name, procfs, scaled, student};
use rstest::rstest;

/// How long a correct child may take to exit (before `scaled`); it needs milliseconds.
const SETTLE: Duration = Duration::from_secs(5);

/// The lesson of an object with no size.
const NO_SIZE: &str = "a new shared memory object has 0 bytes until ftruncate gives it a size; a mapping of it is \
                       there, but a store or load into it finds no page of the object behind it and the kernel \
                       sends SIGBUS";

/// The lesson of a private mapping.
const PRIVATE: &str = "MAP_PRIVATE makes a copy-on-write view: the first store to a page copies it for this process \
                       alone, so the write never reaches the object, the parent or any other process. Sharing needs \
                       MAP_SHARED";

/// The file of object `name` in the test's private `/dev/shm`.
fn shm_path(name: &str) -> PathBuf {
    PathBuf::from(format!("/dev/shm{name}"))
}

/// The test's own object of `size` bytes.
fn own_object(name: &str, size: usize) -> OwnedFd {
    let fd = shm_open(
        name,
        OFlag::O_CREAT | OFlag::O_EXCL | OFlag::O_RDWR,
        Mode::from_bits_truncate(0o600),
    )
    .unwrap_or_else(|e| panic!("the test's own shm_open({name}): {e}"));
    ftruncate(&fd, size as i64).expect("the test's ftruncate");
    fd
}

/// The test's own shared mapping of `fd` (or anonymous when `None`).
fn own_map(fd: Option<&OwnedFd>, len: usize) -> NonNull<u8> {
    let length = NonZeroUsize::new(len).expect("a length");
    let prot = ProtFlags::PROT_READ | ProtFlags::PROT_WRITE;
    // SAFETY: a fresh mapping at an address of the kernel's choosing.
    let ptr = unsafe {
        match fd {
            Some(fd) => mmap(None, length, prot, MapFlags::MAP_SHARED, fd, 0),
            None => mmap_anonymous(None, length, prot, MapFlags::MAP_SHARED),
        }
    }
    .expect("the test's own mmap");
    ptr.cast()
}

/// Unmaps the test's own mapping.
fn own_unmap(ptr: NonNull<u8>, len: usize) {
    // SAFETY: a mapping of `len` bytes the test made and no longer uses.
    unsafe { munmap(ptr.cast(), len) }.expect("the test's munmap");
}

/// `len` bytes of a mapping at `offset`.
fn bytes_at(ptr: NonNull<u8>, offset: usize, len: usize) -> Vec<u8> {
    // SAFETY: the callers read inside mappings they checked to be at least offset + len long
    // and backed (the object's size is known to cover them).
    unsafe { std::slice::from_raw_parts(ptr.as_ptr().add(offset), len) }.to_vec()
}

/// Stores `data` at `offset` of a mapping.
fn store_at(ptr: NonNull<u8>, offset: usize, data: &[u8]) {
    // SAFETY: as in bytes_at.
    unsafe { std::ptr::copy_nonoverlapping(data.as_ptr(), ptr.as_ptr().add(offset), data.len()) };
}

/// A recognisable pattern of `n` bytes.
fn pattern(n: usize, seed: u8) -> Vec<u8> {
    (0..n)
        .map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed) | 1)
        .collect()
}

/// The mapping of this process containing `addr`, from `/proc/self/smaps`.
fn mapping_of(addr: NonNull<u8>) -> Option<procfs::Mapping> {
    let a = addr.as_ptr() as u64;
    procfs::smaps(getpid())
        .ok()?
        .into_iter()
        .find(|m| m.contains(a))
}

/// This process's mappings of the file `path`.
fn mappings_of_file(path: &str) -> Vec<procfs::Mapping> {
    procfs::smaps(getpid())
        .unwrap_or_default()
        .into_iter()
        .filter(|m| m.path == path)
        .collect()
}

/// The access mode of our fd (`O_RDONLY` 0, `O_WRONLY` 1, `O_RDWR` 2), from fdinfo.
fn access_mode(fd: i32) -> Option<i32> {
    let text = std::fs::read_to_string(format!("/proc/self/fdinfo/{fd}")).ok()?;
    let flags = text.lines().find_map(|l| l.strip_prefix("flags:"))?;
    i32::from_str_radix(flags.trim(), 8)
        .ok()
        .map(|f| f & libc::O_ACCMODE)
}

/// Waits for `child` to end, at most `SETTLE`; on time out kills it and fails.
fn wait_exit(child: Pid, what: &str) -> WaitStatus {
    let limit = scaled(SETTLE);
    let start = Instant::now();
    loop {
        match waitpid(child, Some(WaitPidFlag::WNOHANG)) {
            Ok(WaitStatus::StillAlive) => {}
            Ok(status) => return status,
            Err(Errno::ECHILD) => panic!(
                "waitpid({child}) failed with ECHILD: {what} (pid {child}) is not a child of the test any more, \
                 someone reaped it already. The function that forks returns the pid and leaves the waiting to its \
                 caller"
            ),
            Err(e) => panic!("waitpid({child}) failed: {e}"),
        }
        if start.elapsed() > limit {
            let state = procfs::state(child);
            let _ = kill(child, Signal::SIGKILL);
            let _ = waitpid(child, None);
            panic!("after {limit:?} {what} (pid {child}) had not exited (state {state:?})");
        }
        thread::sleep(Duration::from_millis(1));
    }
}

/// What `cat /dev/shm/<name>`, another program, reads of the object.
fn cat(name: &str) -> Vec<u8> {
    let out = Command::new("cat")
        .arg(shm_path(name))
        .output()
        .expect("run cat");
    assert!(
        out.status.success(),
        "cat {} failed: {:?}",
        shm_path(name).display(),
        out
    );
    out.stdout
}

/// Fails on a child that did not exit 0, naming what its status means for shared memory.
fn expect_child_ok(child: Pid, status: WaitStatus, size: Option<i64>) {
    match status {
        WaitStatus::Exited(_, 0) => {}
        WaitStatus::Signaled(_, Signal::SIGBUS, _) => panic!(
            "the child (pid {child}) that stores into the mapping was killed by SIGBUS{}: {NO_SIZE}. Give the object \
             its size with ftruncate right after shm_open",
            size.map(|s| format!(" (the object's size, fstat: {s} bytes)"))
                .unwrap_or_default()
        ),
        WaitStatus::Signaled(_, sig, _) => panic!(
            "the child (pid {child}) that stores into the mapping was killed by {sig}: its store fell outside the \
             mapping"
        ),
        other => panic!(
            "the child (pid {child}) that stores into the mapping ended with {other:?}, not _exit(0)"
        ),
    }
}

/// Fails, before the test touches it, unless the mapping at `ptr` is readable and writable and
/// at least `len` bytes long (a store into a read-only mapping would crash the test with
/// SIGSEGV instead of saying why).
fn expect_read_write(ptr: NonNull<u8>, found: Option<&procfs::Mapping>, len: usize) {
    let Some(m) = found else {
        panic!(
            "no mapping of this process contains {ptr:?}, the address returned (/proc/self/smaps)"
        );
    };
    if !m.perms.starts_with("rw") || m.end.saturating_sub(ptr.as_ptr() as u64) < len as u64 {
        panic!(
            "the mapping at {ptr:?} is {:#x}-{:#x} {} in /proc/self/smaps: it must be readable and writable \
             (PROT_READ | PROT_WRITE) and cover the {len} bytes asked",
            m.start, m.end, m.perms
        );
    }
}

/// `create_shm(name, size)`: `fstat` of the descriptor and `/dev/shm/<name>` both say `size`
/// bytes, all zero; mode 0600; the descriptor is open read-write.
#[rstest]
#[case::one_byte(1)]
#[case::one_page(4096)]
#[case::pages_and_a_bit(10_000)]
fn create_shm_makes_an_object_of_the_asked_size(#[case] size: usize) {
    Isolation::new().check_fds().run(move || {
        let name = ipc_name("size");
        let fd = student(|| create_shm(&name, size)).unwrap_or_else(|e| panic!("create_shm({name}, {size}): {e}"));
        let st = fstat(&fd).expect("fstat of the object's descriptor");
        let access = access_mode(fd.as_raw_fd());
        let file = std::fs::metadata(shm_path(&name));
        let content = std::fs::read(shm_path(&name)).unwrap_or_default();
        drop(fd);
        let _ = shm_unlink(name.as_str());
        assert_eq!(
            st.st_size, size as i64,
            "the object {name} made by create_shm(.., {size}) has {} bytes (fstat): {NO_SIZE}. ftruncate(fd, size) \
             right after shm_open",
            st.st_size
        );
        let file = file.unwrap_or_else(|e| panic!("{} (the object's file): {e}", shm_path(&name).display()));
        assert_eq!(file.len(), size as u64, "the size of {}", shm_path(&name).display());
        assert!(content.iter().all(|b| *b == 0), "a new object's bytes are zeros");
        assert_eq!(
            file.permissions().mode() & 0o7777,
            0o600,
            "{} has mode {:o}: create_shm must give the object mode 0600 (owner only); its mode, like a file's, \
             says who else may open it by name and read or change your memory",
            shm_path(&name).display(),
            file.permissions().mode() & 0o7777
        );
        assert_eq!(
            access,
            Some(libc::O_RDWR),
            "the descriptor create_shm returned is open with access mode {access:?} (0 O_RDONLY, 2 O_RDWR): a \
             read-write shared mapping needs O_RDWR (mmap with PROT_WRITE and MAP_SHARED on a read-only descriptor \
             fails with EACCES)"
        );
    });
}

/// The name is taken by the test's object of 100 bytes with data in it: `create_shm` fails
/// with EEXIST and the object keeps its size and bytes.
#[test]
fn create_shm_refuses_an_existing_name() {
    Isolation::new().check_fds().run(|| {
        let name = ipc_name("taken");
        let fd = own_object(&name, 100);
        let ptr = own_map(Some(&fd), 100);
        store_at(ptr, 0, b"precious");
        let got = student(|| create_shm(&name, 4096)).map(drop);
        let size = fstat(&fd).map(|s| s.st_size);
        let kept = bytes_at(ptr, 0, 8);
        own_unmap(ptr, 100);
        drop(fd);
        let _ = shm_unlink(name.as_str());
        assert_eq!(
            got,
            Err(Errno::EEXIST),
            "create_shm({name}) while an object of that name exists: shm_open with O_CREAT | O_EXCL fails with \
             EEXIST, the only way to know the object is new (O_CREAT alone opens the existing one)"
        );
        assert_eq!(
            (size, kept),
            (Ok(100), b"precious".to_vec()),
            "the existing object was changed by create_shm's failed attempt (size, first bytes)"
        );
    });
}

/// `map_shared` of the test's object: `/proc/self/smaps` shows the mapping read-write and
/// shared (`rw-s`) on `/dev/shm/<name>`, covering the length asked; bytes the test stores
/// through it are in the object, as an exec'd `cat` of the file reads.
#[test]
fn map_shared_is_a_shared_mapping_of_the_object() {
    Isolation::new().check_fds().run(|| {
        let name = ipc_name("map");
        let len = 3 * 4096;
        let fd = own_object(&name, len);
        let region = student(|| map_shared(&fd, len)).unwrap_or_else(|e| panic!("map_shared: {e}"));
        drop(fd);
        let (ptr, rlen) = (region.ptr, region.len);
        let found = mapping_of(ptr);
        expect_read_write(ptr, found.as_ref(), len);
        let data = pattern(len, 7);
        store_at(ptr, 0, &data);
        let seen = cat(&name);
        own_unmap(ptr, len);
        let _ = shm_unlink(name.as_str());
        let m = found.unwrap_or_else(|| panic!("no mapping of this process contains {ptr:?}, the address map_shared returned"));
        assert_eq!(rlen, len, "the Region's len");
        assert_eq!(
            m.path,
            shm_path(&name).display().to_string(),
            "the mapping at {ptr:?} is of {:?}, not of the object's file",
            m.path
        );
        let shared = m.perms.ends_with('s');
        if !shared || seen != data {
            panic!(
                "the mapping map_shared made is {} in /proc/self/smaps ({}), and of the {len} bytes the test stored \
                 through it, `cat {}` read {} back: {PRIVATE}",
                m.perms,
                if shared { "shared" } else { "p: private" },
                shm_path(&name).display(),
                if seen == data { "all" } else { "not all" }
            );
        }
        assert!(m.perms.starts_with("rw"), "the mapping is {}, not readable and writable", m.perms);
        assert!(m.end - m.start >= len as u64, "the mapping is {} bytes, less than the {len} asked", m.end - m.start);
    });
}

/// A mapping of 0 bytes is EINVAL, from both mapping functions, never a panic.
#[test]
fn mappings_of_length_0_are_einval() {
    Isolation::new().check_fds().run(|| {
        let name = ipc_name("zero");
        let fd = own_object(&name, 4096);
        let named = catch_unwind(AssertUnwindSafe(|| student(|| map_shared(&fd, 0).map(|r| r.len))));
        let anon = catch_unwind(AssertUnwindSafe(|| student(|| map_anonymous_shared(0).map(|r| r.len))));
        drop(fd);
        let _ = shm_unlink(name.as_str());
        let named = named.unwrap_or_else(|p| teach_panic(p, "map_shared(fd, 0)"));
        let anon = anon.unwrap_or_else(|p| teach_panic(p, "map_anonymous_shared(0)"));
        assert_eq!(
            (named, anon),
            (Err(Errno::EINVAL), Err(Errno::EINVAL)),
            "map_shared(fd, 0) and map_anonymous_shared(0): a mapping of 0 bytes is EINVAL (mmap(2)); nix takes a \
             NonZeroUsize, so turn a 0 into Err(EINVAL) rather than unwrapping"
        );
    });
}

/// A panic of `what`: a stub's `todo!()` goes on as it is; any other panic becomes the lesson.
fn teach_panic(payload: Box<dyn std::any::Any + Send>, what: &str) -> ! {
    let text = payload
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_default();
    if text.starts_with("not yet implemented") {
        std::panic::resume_unwind(payload);
    }
    panic!(
        "{what} panicked ({text}) instead of returning Err(EINVAL): a length of 0 is bad input, and bad input gets \
         an error, never a panic (NonZeroUsize::new(len).ok_or(Errno::EINVAL)?)"
    );
}

/// `map_anonymous_shared`: zero-filled, shared (`s` in `/proc/self/smaps`); a child forked by
/// `write_in_child` stores bytes that the parent reads after `waitpid`.
#[test]
fn anonymous_shared_mapping_crosses_fork() {
    Isolation::new().check_fds().run(|| {
        let len = 2 * 4096;
        let region = student(|| map_anonymous_shared(len)).unwrap_or_else(|e| panic!("map_anonymous_shared: {e}"));
        let (ptr, rlen) = (region.ptr, region.len);
        assert_eq!(rlen, len, "the Region's len");
        let found = mapping_of(ptr);
        expect_read_write(ptr, found.as_ref(), len);
        let zeros = bytes_at(ptr, 0, len).iter().all(|b| *b == 0);
        let data = pattern(300, 3);
        let child = student(|| write_in_child(&region, 4000, &data)).unwrap_or_else(|e| panic!("write_in_child: {e}"));
        let status = wait_exit(child, "write_in_child's child");
        expect_child_ok(child, status, None);
        let got = bytes_at(ptr, 4000, data.len());
        own_unmap(ptr, len);
        let m = found.unwrap_or_else(|| panic!("no mapping contains {ptr:?}, the address map_anonymous_shared returned"));
        assert!(zeros, "a fresh anonymous mapping is zero-filled");
        if got != data || !m.perms.ends_with('s') {
            panic!(
                "the child (pid {child}) stored {} bytes at offset 4000 of the anonymous mapping and exited 0, and the \
                 parent then found {} of them there; /proc/self/smaps shows the mapping as {}. The child's write \
                 stayed in the child: fork gives the child a copy-on-write copy of private memory. {PRIVATE} (with \
                 MAP_ANONYMOUS for memory without a file)",
                data.len(),
                if got == data { "all" } else { "not all" },
                m.perms
            );
        }
        assert!(m.perms.starts_with("rw"), "the mapping is {}, not readable and writable", m.perms);
    });
}

/// A store that does not fit (4090 + 10 bytes into a region of 4096): `write_in_child` returns
/// EINVAL and has forked no child.
#[test]
fn write_in_child_refuses_to_store_past_the_end() {
    Isolation::new().check_fds().run(|| {
        let len = 4096;
        let region = Region {
            ptr: own_map(None, len),
            len,
        };
        let got = student(|| write_in_child(&region, 4090, &[9; 10]));
        let children = procfs::child_pids(getpid());
        let strays: Vec<i32> = children.clone();
        for c in &strays {
            let _ = waitpid(Pid::from_raw(*c), None);
        }
        own_unmap(region.ptr, len);
        assert_eq!(
            got,
            Err(Errno::EINVAL),
            "write_in_child of 10 bytes at offset 4090 of a 4096-byte region: they do not fit, so it must return \
             EINVAL before forking (a store past a mapping's end is a SIGSEGV or SIGBUS, or lands in another mapping)"
        );
        assert!(children.is_empty(), "write_in_child refused the store but forked children {children:?}");
    });
}

/// The whole life of a named object, all by the student's functions: `create_shm` of 8192,
/// `map_shared`, `write_in_child` storing at offset 5000; after `waitpid` the parent reads the
/// bytes through its mapping and an exec'd `cat /dev/shm/<name>` reads them from the object;
/// `unmap` and `remove_shm` leave no mapping and no name.
#[test]
fn a_created_object_crosses_fork_and_exec() {
    Isolation::new().check_fds().run(|| {
        let name = ipc_name("life");
        let size = 8192;
        let fd = student(|| create_shm(&name, size)).unwrap_or_else(|e| panic!("create_shm: {e}"));
        let region = student(|| map_shared(&fd, size)).unwrap_or_else(|e| panic!("map_shared: {e}"));
        let real = fstat(&fd).map(|s| s.st_size).unwrap_or(-1);
        drop(fd);
        let ptr = region.ptr;
        let data = pattern(1000, 11);
        let child = student(|| write_in_child(&region, 5000, &data)).unwrap_or_else(|e| panic!("write_in_child: {e}"));
        let status = wait_exit(child, "write_in_child's child");
        if status != WaitStatus::Exited(child, 0) {
            let _ = shm_unlink(name.as_str());
            expect_child_ok(child, status, Some(real));
        }
        assert!(real >= 6000, "the object is {real} bytes: {NO_SIZE}");
        let got = bytes_at(ptr, 5000, data.len());
        let seen = cat(&name);
        let unmapped = student(|| unmap(region));
        let still_mapped = mapping_of(ptr).is_some_and(|m| m.path == shm_path(&name).display().to_string());
        let removed = student(|| remove_shm(&name));
        let left = shm_path(&name).exists();
        if left {
            let _ = shm_unlink(name.as_str());
        }
        if got != data {
            panic!("the child (pid {child}) stored 1000 bytes at offset 5000 and exited 0, but the parent did not find them. {PRIVATE}");
        }
        assert_eq!(
            seen.get(5000..6000),
            Some(&data[..]),
            "`cat {}` (another program, reading the object) did not find the child's bytes at offset 5000. {PRIVATE}",
            shm_path(&name).display()
        );
        assert_eq!(seen.len(), size, "`cat` read {} bytes of the object, not its size {size}", seen.len());
        assert_eq!(unmapped, Ok(()), "unmap");
        assert!(!still_mapped, "after unmap the object is still mapped at {ptr:?} (/proc/self/smaps)");
        assert_eq!(removed, Ok(()), "remove_shm({name})");
        assert!(
            !left,
            "after remove_shm({name}) returned Ok, {} still exists: POSIX shared memory object {name} was left \
             behind: nobody called shm_unlink",
            shm_path(&name).display()
        );
    });
}

/// The test creates and maps an object of 4096 bytes; `open_and_write` (an opener that knows
/// only the name) stores at offset 10, and the test's mapping shows it. Afterwards the process
/// holds no mapping of the object but the test's (and, with `check_fds`, no extra descriptor).
#[test]
fn open_and_write_reaches_the_creators_mapping() {
    Isolation::new().check_fds().run(|| {
        let name = ipc_name("open");
        let fd = own_object(&name, 4096);
        let ptr = own_map(Some(&fd), 4096);
        drop(fd);
        let got = student(|| open_and_write(&name, 10, b"hello, creator"));
        let seen = bytes_at(ptr, 10, 14);
        let maps = mappings_of_file(&shm_path(&name).display().to_string());
        own_unmap(ptr, 4096);
        let _ = shm_unlink(name.as_str());
        assert_eq!(got, Ok(()), "open_and_write({name}, 10, ..) of an object of 4096 bytes");
        if seen != b"hello, creator" {
            panic!(
                "open_and_write returned Ok, but the creator's shared mapping shows {:?} at offset 10, not \"hello, \
                 creator\". {PRIVATE}",
                String::from_utf8_lossy(&seen)
            );
        }
        if maps.len() > 1 {
            let other: Vec<String> = maps
                .iter()
                .filter(|m| m.start != ptr.as_ptr() as u64)
                .map(|m| format!("{:#x}-{:#x} {}", m.start, m.end, m.perms))
                .collect();
            panic!(
                "open_and_write left its mapping of {} in place ({}, /proc/self/smaps): every call would leak address \
                 space and keep the object alive. munmap it when the store is done (the descriptor can be closed as \
                 soon as the mapping exists)",
                shm_path(&name).display(),
                other.join(", ")
            );
        }
    });
}

/// An object of 100 bytes: `open_and_write` at offset 96 of 8 bytes (inside the first page,
/// past the object's end) and at offset 8192 must return EINVAL and store nothing. Each runs in
/// a child of the test, so a SIGBUS or SIGSEGV is reported with what it means; a store that fits
/// runs first in the test process itself.
#[test]
fn open_and_write_refuses_to_store_past_the_end() {
    Isolation::new().check_fds().run(|| {
        let name = ipc_name("end");
        let fd = own_object(&name, 100);
        let fits = student(|| open_and_write(&name, 92, b"tail"));
        let mut outcomes = Vec::new();
        for offset in [96usize, 8192] {
            // SAFETY: the child calls open_and_write (system calls, a copy) and leaves by _exit.
            let child = match unsafe { fork() }.expect("fork") {
                ForkResult::Child => {
                    // Not through `student`, which stops any forked copy of the test: this child
                    // is the test's own and leaves below, whatever happens.
                    let r = catch_unwind(AssertUnwindSafe(|| open_and_write(&name, offset, &[7; 8])));
                    let code = match r {
                        Ok(Err(Errno::EINVAL)) => 0,
                        Ok(Ok(())) => 1,
                        Ok(Err(_)) => 2,
                        Err(_) => 3,
                    };
                    // SAFETY: ends the forked copy at once.
                    unsafe { libc::_exit(code) }
                }
                ForkResult::Parent { child } => child,
            };
            outcomes.push((offset, wait_exit(child, "the test's child calling open_and_write")));
        }
        let size = fstat(&fd).map(|s| s.st_size);
        let content = std::fs::read(shm_path(&name)).unwrap_or_default();
        drop(fd);
        let _ = shm_unlink(name.as_str());
        assert_eq!(fits, Ok(()), "open_and_write of 4 bytes at offset 92 of a 100-byte object");
        assert_eq!(content.get(92..96), Some(&b"tail"[..]), "the 4 bytes stored at offset 92");
        for (offset, status) in outcomes {
            let what = format!(
                "open_and_write({name}, {offset}, 8 bytes) on an object of 100 bytes, a store past the end of the \
                 object"
            );
            match status {
                WaitStatus::Exited(_, 0) => {}
                WaitStatus::Exited(_, 1) => panic!(
                    "{what}, returned Ok: check offset + len against the object's size (fstat's st_size) and return \
                     EINVAL. Bytes stored past the end but inside its last page are silently lost; beyond that page \
                     the store is a SIGBUS"
                ),
                WaitStatus::Exited(_, 2) => panic!("{what}, returned an error other than EINVAL"),
                WaitStatus::Exited(_, 3) => panic!("{what}, panicked instead of returning EINVAL"),
                WaitStatus::Signaled(_, sig, _) => panic!(
                    "{what}, killed the process with {sig}: a mapping reaches only as far as the object (SIGBUS \
                     beyond its last page) and its own length (SIGSEGV). Check offset + len against fstat's \
                     st_size first, and return EINVAL"
                ),
                other => panic!("{what}: the child ended with {other:?}"),
            }
        }
        assert_eq!(size, Ok(100), "the object's size after open_and_write's refusals");
    });
}

/// No object of that name: `open_and_write` returns ENOENT and creates none.
#[test]
fn open_and_write_fails_for_a_missing_name() {
    Isolation::new().check_fds().run(|| {
        let name = ipc_name("missing");
        let got = student(|| open_and_write(&name, 0, b"x"));
        let made = shm_path(&name).exists();
        let _ = shm_unlink(name.as_str());
        assert!(
            !made,
            "open_and_write({name}) created {}: an opener that knows only the name opens it without O_CREAT, so a \
             missing creator is an error (ENOENT), not a new empty object",
            shm_path(&name).display()
        );
        assert_eq!(got, Err(Errno::ENOENT), "open_and_write of a name that does not exist");
    });
}

/// `unmap` of an anonymous region: `/proc/self/smaps` has no mapping at its address after.
#[test]
fn unmap_removes_the_mapping() {
    Isolation::new().check_fds().run(|| {
        let len = 4 * 4096;
        let region = student(|| map_anonymous_shared(len)).unwrap_or_else(|e| panic!("map_anonymous_shared: {e}"));
        let ptr = region.ptr;
        let before = mapping_of(ptr).map(|m| (m.start, m.end));
        let got = student(|| unmap(region));
        let after = mapping_of(ptr).map(|m| (m.start, m.end, m.perms));
        assert!(before.is_some(), "no mapping at {ptr:?} before unmap");
        assert_eq!(got, Ok(()), "unmap");
        if let Some((start, end, perms)) = after {
            // SAFETY: clean up what the code under test left mapped (one of its own mappings).
            let _ = unsafe { munmap(ptr.cast(), len) };
            panic!("after unmap, /proc/self/smaps still shows {start:#x}-{end:#x} {perms} at {ptr:?}: munmap the region's len bytes");
        }
    });
}

/// With the test's mapping of it in place, `remove_shm` returns Ok, `/dev/shm/<name>` is gone and
/// `shm_open` without `O_CREAT` fails with ENOENT, while the mapping still reads its bytes.
#[test]
fn remove_shm_frees_the_name() {
    Isolation::new().check_fds().run(|| {
        let name = ipc_name("unlink");
        let fd = own_object(&name, 4096);
        let ptr = own_map(Some(&fd), 4096);
        drop(fd);
        store_at(ptr, 0, b"kept");
        let removed = student(|| remove_shm(&name));
        let reopened = shm_open(name.as_str(), OFlag::O_RDONLY, Mode::empty()).map(drop);
        let file = shm_path(&name).exists();
        let still = bytes_at(ptr, 0, 4);
        own_unmap(ptr, 4096);
        if file || reopened.is_ok() {
            let _ = shm_unlink(name.as_str());
            panic!(
                "after remove_shm({name}) returned {removed:?}, {} is still there: POSIX shared memory object {name} \
                 was left behind: nobody called shm_unlink. The object outlives every process that used it until its \
                 name is unlinked; close and munmap only let go of this process's hold",
                shm_path(&name).display()
            );
        }
        assert_eq!(removed, Ok(()), "remove_shm({name})");
        assert_eq!(reopened, Err(Errno::ENOENT), "shm_open of the removed name");
        assert_eq!(still, b"kept", "a mapping made before shm_unlink should keep working");
    });
}

/// A name that was never made: `remove_shm` returns ENOENT, not Ok.
#[test]
fn remove_shm_returns_enoent_for_no_such_object() {
    Isolation::new().check_fds().run(|| {
        let name = ipc_name("never");
        let got = student(|| remove_shm(&name));
        assert_eq!(
            got,
            Err(Errno::ENOENT),
            "remove_shm({name}) of an object that does not exist: shm_unlink fails with ENOENT, and remove_shm \
             must return it"
        );
    });
}
