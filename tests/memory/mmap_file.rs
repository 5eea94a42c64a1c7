//! memory/mmap_file: a file changed through a shared mapping (内存映射文件), read back by another
//! process.
//!
//! What the tests observe, never what the code under test claims:
//! - the file's bytes as another program reads them: an exec'd `cat`, which opens the file anew
//!   and read(2)s it after `patch_file` has returned in a child process the test forked;
//! - the file's size from `fstat`;
//! - that child's own `/proc/self/maps` (any mapping of the file's inode) and `/proc/self/fd`
//!   (any descriptor it did not have before the call), read right after the call returned;
//! - how that child ended: returned a value, panicked, or was killed (SIGBUS for a page past the
//!   end of the file, SIGSEGV for a store outside the mapping);
//! - how far that child's resident size rose during the call (`VmRSS` before, `VmHWM`, the peak,
//!   after, in `/proc/self/status`): every page stored to through a mapping is resident in the
//!   process until munmap, while write(2) makes none resident.
//!
//! The contract, clause by clause, and the test that checks each:
//! - the change reaches the file, where another process reads it, and nothing else of the file
//!   changes, at any offset (page-aligned or not, across a page boundary, the last byte, pages
//!   past the first) (`the_change_is_read_back_by_another_process`, five cases;
//!   `random_patches_are_read_back`, proptest);
//! - the size is left as it was when the change fits, and returned
//!   (`the_change_is_read_back_by_another_process`);
//! - a change past the end grows the file to exactly `offset + data.len()`, zeros in any gap,
//!   in the last page or pages beyond it, or from an empty file (`a_change_past_the_end_grows_the_file`,
//!   three cases; `random_patches_are_read_back`);
//! - the change goes through a mapping, not write(2)/pwrite(2): during a change of 8 MiB the
//!   caller's peak resident size rises by at least 2 MiB (`a_change_of_many_pages_goes_through_the_mapping`,
//!   two cases; measured here: a mapping about 8-9 MiB, pwrite at most about 0.2 MiB). (Page fault
//!   counts would not do: the page cache's large folios let one fault map many pages, and how
//!   many varies from run to run.)
//! - no mapping of the file and no new descriptor is left in the process afterwards (every test
//!   that returns through `patch`);
//! - an empty change changes nothing and maps nothing, even at an offset past the end or on an
//!   empty file (`an_empty_change_changes_nothing`, two cases);
//! - errors are returned, never a panic, and create nothing: a missing file is ENOENT
//!   (`a_missing_file_is_enoent_and_is_not_created`), a directory EISDIR
//!   (`a_directory_is_eisdir`), a file without write permission EACCES and stays unchanged
//!   (`a_read_only_file_is_eacces_and_unchanged`).
//!
//! Not tested, on purpose: `msync`. On Linux a `MAP_SHARED` mapping is the page cache's own copy
//! of the file, so another process's read(2) sees a store at once, msync or not (visibility);
//! msync only makes the change durable on the disk (on a tmpfs there is none). No reading of the
//! file or of /proc tells a missing msync apart: the pages' dirty state is not shown per file,
//! and the kernel's flusher threads may write them back at any moment anyway (a filesystem-specific
//! probe such as FIEMAP's delayed-allocation flag would race with them). So no test claims to.

// The exercise under test: your stub (by default), the reference solution (`--features
// solutions`), or a shipped mistake that `cargo grade --mistakes` copies into target/.
#[cfg(not(any(feature = "solutions", feature = "mistake")))]
#[path = "../../exercises/memory/mmap_file.rs"]
#[allow(dead_code)] // a stub does not use all of its API yet
mod mmap_file;
#[cfg(all(feature = "solutions", not(feature = "mistake")))]
#[path = "../../solutions/memory/mmap_file.rs"]
mod mmap_file;
#[cfg(feature = "mistake")]
#[path = "../../target/oskata-mistake/memory/mmap_file.rs"]
#[rustfmt::skip] // the copy exists only while the proof runs
mod mmap_file;
use mmap_file::*;

use std::fs;
use std::os::fd::OwnedFd;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::{Path, PathBuf};
use std::process::Command;

use nix::errno::Errno;
use nix::sys::signal::Signal;
use nix::sys::wait::{WaitStatus, waitpid};
use nix::unistd::{ForkResult, Pid, fork, getpid, pipe, read, write};
use oskata_harness::{cases, isolated, procfs, scratch_dir, student};
use rstest::rstest;

/// The lesson of a change that never reached the file.
const PRIVATE: &str = "MAP_PRIVATE makes a copy-on-write view: the first store to a page copies that page for this \
                       process alone, so the change never reaches the file and no other process sees it. A change \
                       meant for the file needs MAP_SHARED, whose pages are the file's own (the page cache's)";

/// The lesson of a page past the end of the file.
const PAST_END: &str = "mmap never grows a file: a page of the mapping that lies wholly past the end of the file has \
                        no page of the file behind it, and the first access to it is a SIGBUS. Grow the file first \
                        with ftruncate to offset + data.len(), then map it";

/// How the test's child ended after calling `patch_file`.
#[derive(Debug)]
enum Ended {
    /// It returned; what the child saw of itself right afterwards.
    Returned {
        result: Result<u64, Errno>,
        /// How far the child's peak resident size rose above its size before the call, in kB
        /// (`VmHWM` and `VmRSS` of /proc/self/status).
        grown: u64,
        /// Lines of its `/proc/self/maps` that map the file's inode.
        maps: Vec<String>,
        /// Descriptors open after the call that were not before, as `fd -> target`.
        fds: Vec<String>,
    },
    /// It panicked, with this message.
    Panicked(String),
    /// It was killed by a signal.
    Killed(Signal),
    /// Anything else `waitpid` said.
    Other(String),
}

/// The lines of this process's `/proc/self/maps` whose inode field is `ino`.
fn mappings_of(ino: u64) -> Vec<String> {
    fs::read_to_string("/proc/self/maps")
        .unwrap_or_default()
        .lines()
        .filter(|l| l.split_whitespace().nth(4).and_then(|i| i.parse().ok()) == Some(ino))
        .map(str::to_owned)
        .collect()
}

/// Calls `patch_file(path, offset, data)` in a child process the test forks (a store outside
/// the mapping must kill a child, not the test), and says how the child ended and what it saw
/// of its own maps and fds right after the call.
fn patch(path: &Path, offset: u64, data: &[u8]) -> Ended {
    let ino = fs::metadata(path).map(|m| m.ino()).unwrap_or(0);
    let (rx, tx) = pipe().expect("the test's pipe");
    // SAFETY: the test body is single-threaded; the child calls the code under test, reads
    // /proc, writes to a pipe and leaves through _exit.
    match unsafe { fork() }.expect("the test's fork") {
        ForkResult::Child => {
            drop(rx);
            let me = getpid();
            let before: Vec<i32> = procfs::fds(me)
                .unwrap_or_default()
                .iter()
                .map(|f| f.fd)
                .collect();
            let kb = |key: &str| {
                procfs::status(me)
                    .ok()
                    .and_then(|s| s.get(key)?.split_whitespace().next()?.parse::<u64>().ok())
                    .unwrap_or(0)
            };
            let rss_before = kb("VmRSS");
            // Called directly, not through `student`: this child is the test's own, and it
            // leaves through _exit whatever happens.
            let got = catch_unwind(AssertUnwindSafe(|| patch_file(path, offset, data)));
            // The peak resident size since the call began: VmHWM (the kernel updates it when
            // a mapping is removed), or VmRSS if that is higher (a mapping still there).
            let grown = kb("VmHWM").max(kb("VmRSS")).saturating_sub(rss_before);
            let mut text = format!("grown {grown}\n");
            match got {
                Ok(result) => {
                    match result {
                        Ok(size) => text.push_str(&format!("ok {size}\n")),
                        Err(e) => text.push_str(&format!("err {}\n", e as i32)),
                    }
                    if ino != 0 {
                        for m in mappings_of(ino) {
                            text.push_str(&format!("map {m}\n"));
                        }
                    }
                    for f in procfs::fds(me).unwrap_or_default() {
                        if !before.contains(&f.fd) {
                            text.push_str(&format!("fd {} -> {}\n", f.fd, f.target));
                        }
                    }
                }
                Err(p) => {
                    let msg = p
                        .downcast_ref::<String>()
                        .cloned()
                        .or_else(|| p.downcast_ref::<&str>().map(|s| (*s).to_owned()))
                        .unwrap_or_default();
                    text.push_str(&format!("panic {}\n", msg.replace('\n', " ")));
                }
            }
            let mut bytes = text.as_bytes();
            while !bytes.is_empty() {
                match write(&tx, bytes) {
                    Ok(n) => bytes = &bytes[n..],
                    Err(Errno::EINTR) => {}
                    Err(_) => break,
                }
            }
            // SAFETY: ends this forked copy at once, running nothing of the test's.
            unsafe { libc::_exit(0) }
        }
        ForkResult::Parent { child } => {
            drop(tx);
            let text = read_all(&rx);
            let status = waitpid(child, None);
            parse_ended(child, status, &text)
        }
    }
}

/// Everything until end of file.
fn read_all(fd: &OwnedFd) -> String {
    let mut out = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        match read(fd, &mut buf) {
            Ok(0) => break,
            Ok(n) => out.extend_from_slice(&buf[..n]),
            Err(Errno::EINTR) => {}
            Err(e) => panic!("the test's read of its child's report: {e}"),
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Reads the child's report and status.
fn parse_ended(child: Pid, status: nix::Result<WaitStatus>, text: &str) -> Ended {
    match status {
        Ok(WaitStatus::Signaled(_, sig, _)) => return Ended::Killed(sig),
        Ok(WaitStatus::Exited(_, 0)) => {}
        other => return Ended::Other(format!("pid {child}: {other:?}, report {text:?}")),
    }
    let mut result = None;
    let mut grown = 0;
    let (mut maps, mut fds) = (Vec::new(), Vec::new());
    for line in text.lines() {
        let (tag, rest) = line.split_once(' ').unwrap_or((line, ""));
        match tag {
            "ok" => result = rest.parse().ok().map(Ok),
            "err" => result = rest.parse().ok().map(|e| Err(Errno::from_raw(e))),
            "grown" => grown = rest.parse().unwrap_or(0),
            "map" => maps.push(rest.to_owned()),
            "fd" => fds.push(rest.to_owned()),
            "panic" => return Ended::Panicked(rest.to_owned()),
            _ => {}
        }
    }
    match result {
        Some(result) => Ended::Returned {
            result,
            grown,
            maps,
            fds,
        },
        None => Ended::Other(format!("pid {child} exited 0 but reported {text:?}")),
    }
}

/// The result of a call that must have returned and left nothing behind, and how far the
/// caller's resident size rose during it (kB); fails with the kernel's evidence otherwise.
fn returned_and_growth(what: &str, ended: Ended) -> (Result<u64, Errno>, u64) {
    match ended {
        Ended::Returned {
            result,
            grown,
            maps,
            fds,
        } => {
            assert!(
                maps.is_empty(),
                "{what}: the file is still mapped after patch_file returned; /proc/self/maps of the calling \
                 process shows:\n  {}\nA mapping stays until munmap(2) removes it (or the process ends): unmap \
                 it once the change is stored and synced",
                maps.join("\n  ")
            );
            assert!(
                fds.is_empty(),
                "{what}: a descriptor is still open after patch_file returned; /proc/self/fd of the calling \
                 process shows new:\n  {}\nThe mapping does not need the descriptor once it is made: close it \
                 (drop the File or OwnedFd) before returning",
                fds.join("\n  ")
            );
            (result, grown)
        }
        Ended::Killed(Signal::SIGBUS) => {
            panic!("{what}: the process calling patch_file was killed by SIGBUS. {PAST_END}")
        }
        Ended::Killed(Signal::SIGSEGV) => panic!(
            "{what}: the process calling patch_file was killed by SIGSEGV: a store fell outside the mapping. \
             The mapping must cover every byte written: map the whole file (its length after any growing) \
             from offset 0, and store at data's place inside it"
        ),
        Ended::Killed(sig) => panic!("{what}: the process calling patch_file was killed by {sig}"),
        // A stub's todo!() keeps its own words, so the grader sees "not started".
        Ended::Panicked(msg) if msg.starts_with("not yet implemented") => panic!("{msg}"),
        Ended::Panicked(msg) => panic!(
            "{what}: patch_file panicked: {msg}. It must return an error (nix::Result) rather than panic{}",
            if msg.contains("out of range") {
                "; an index out of range of the mapped slice means the mapping is shorter than the bytes to \
                 store: map the whole file, its length after any growing, from offset 0"
            } else {
                ""
            }
        ),
        Ended::Other(text) => {
            panic!("{what}: the child calling patch_file ended unexpectedly: {text}")
        }
    }
}

/// The result of a call that must have returned and left nothing behind (see
/// [`returned_and_growth`]).
fn returned(what: &str, ended: Ended) -> Result<u64, Errno> {
    returned_and_growth(what, ended).0
}

/// What another program, an exec'd `cat`, reads of the file.
fn cat(path: &Path) -> Vec<u8> {
    let out = Command::new("cat").arg(path).output().expect("run cat");
    assert!(
        out.status.success(),
        "cat {} failed: {out:?}",
        path.display()
    );
    out.stdout
}

/// A file in the scratch directory holding `content`, mode 0600.
fn file_with(name: &str, content: &[u8]) -> PathBuf {
    let path = scratch_dir().join(name);
    fs::write(&path, content).expect("the test's write of its file");
    fs::set_permissions(&path, fs::Permissions::from_mode(0o600)).expect("chmod");
    path
}

/// Bytes that differ at every position from their neighbours' (so a shifted copy shows).
fn pattern(len: usize, seed: u8) -> Vec<u8> {
    (0..len)
        .map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed) ^ ((i >> 8) as u8))
        .collect()
}

/// `old` with `data` written at `offset`, grown with zeros as the contract says.
fn expected(old: &[u8], offset: usize, data: &[u8]) -> Vec<u8> {
    let mut want = old.to_vec();
    if data.is_empty() {
        return want;
    }
    if offset + data.len() > want.len() {
        want.resize(offset + data.len(), 0);
    }
    want[offset..offset + data.len()].copy_from_slice(data);
    want
}

/// Patches a file holding `old` and checks everything another process and the kernel show.
fn patch_and_check(old: &[u8], offset: usize, data: &[u8]) {
    let path = file_with("data.bin", old);
    let what = format!(
        "patch_file(<file of {} bytes>, offset {offset}, {} bytes)",
        old.len(),
        data.len()
    );
    let ended = student(|| patch(&path, offset as u64, data));
    let (result, grown) = returned_and_growth(&what, ended);
    // Only for big changes: the resident size of a process moves by some pages anyway (its
    // heap, the kernel's per-CPU counters), far less than a quarter of 8 MiB.
    let change_kb = (data.len() / 1024) as u64;
    if change_kb >= 4096 && result.is_ok() {
        assert!(
            grown >= change_kb / 4,
            "{what}: the change reached the file, but the resident size of the process calling patch_file \
             never rose during the call: its peak (VmHWM in /proc/self/status) is only {grown} kB above its size \
             before (VmRSS), for a change of {change_kb} kB. Every page of a file that a process stores to \
             through a mapping is resident in that process (counted in VmRSS) until munmap, so the bytes went \
             in without mapping the file (write(2) or pwrite(2)), which is not this exercise: map the file \
             MAP_SHARED and store through the mapping"
        );
    }
    let want = expected(old, offset, data);
    let size = fs::metadata(&path).expect("stat").len();
    match result {
        Ok(n) => assert_eq!(
            n,
            want.len() as u64,
            "{what} returned {n}, but the file's size afterwards must be {} (and fstat shows {size})",
            want.len()
        ),
        Err(Errno::EINVAL) if !offset.is_multiple_of(4096) => panic!(
            "{what} returned EINVAL. The offset given to mmap(2) must be a multiple of the page size \
             (sysconf(_SC_PAGESIZE), 4096 here); {offset} is not. Map from offset 0 (or from the offset \
             rounded down to a page) and store at data's place inside the mapping"
        ),
        Err(e) => panic!("{what} failed with {e}; the change is valid and must succeed"),
    }
    assert_eq!(
        size,
        want.len() as u64,
        "{what}: fstat shows the file's size as {size} bytes afterwards; it must be {} ({})",
        want.len(),
        if want.len() == old.len() {
            "a change that fits must leave the size alone"
        } else {
            "a change past the end grows the file to exactly offset + data.len(), with ftruncate, before mapping"
        }
    );
    let seen = cat(&path);
    if seen == want {
        return;
    }
    let range = offset..offset + data.len();
    if !data.is_empty() && seen.get(range.clone()) != Some(data) {
        let first = range
            .clone()
            .find(|&i| seen.get(i) != Some(&data[i - offset]))
            .unwrap_or(offset);
        panic!(
            "{what}: another process (cat, reading the file with read(2)) does not see the change: at byte \
             {first} it reads {:?}, but patch_file wrote {:?} there. {PRIVATE}",
            seen.get(first),
            data[first - offset]
        );
    }
    let bad = (0..want.len().max(seen.len()))
        .find(|&i| seen.get(i) != want.get(i))
        .unwrap_or(0);
    panic!(
        "{what}: cat reads the change, but byte {bad} outside it changed too ({:?} where the file must hold {:?}; \
         cat read {} bytes). Only data's bytes, at offset {offset}, may change",
        seen.get(bad),
        want.get(bad),
        seen.len()
    );
}

#[rstest]
#[case::at_the_start(0, 16)]
#[case::not_page_aligned(5, 10)]
#[case::across_a_page_boundary(2 * 4096 - 3, 8)]
#[case::the_last_byte(3 * 4096 + 99, 1)]
#[case::pages_past_the_first(9000, 2000)]
fn the_change_is_read_back_by_another_process(#[case] offset: usize, #[case] len: usize) {
    isolated(|| patch_and_check(&pattern(3 * 4096 + 100, 7), offset, &pattern(len, 200)));
}

#[rstest]
#[case::inside(9 << 20, 1000, 8 << 20)]
#[case::growing(4096, 3000, 8 << 20)]
fn a_change_of_many_pages_goes_through_the_mapping(
    #[case] size: usize,
    #[case] offset: usize,
    #[case] len: usize,
) {
    isolated(|| patch_and_check(&pattern(size, 11), offset, &pattern(len, 42)));
}

#[rstest]
#[case::in_the_last_page(100, 90, 20)]
#[case::pages_past_the_end(100, 5000, 10)]
#[case::from_an_empty_file(0, 0, 6000)]
fn a_change_past_the_end_grows_the_file(
    #[case] size: usize,
    #[case] offset: usize,
    #[case] len: usize,
) {
    isolated(|| patch_and_check(&pattern(size, 3), offset, &pattern(len, 99)));
}

#[rstest]
#[case::on_an_empty_file(0, 0)]
#[case::past_the_end(100, 500)]
fn an_empty_change_changes_nothing(#[case] size: usize, #[case] offset: usize) {
    isolated(|| patch_and_check(&pattern(size, 1), offset, &[]));
}

#[test]
fn random_patches_are_read_back() {
    isolated(|| {
        let strategy = (0usize..10_000, 0usize..12_000, 0usize..5000);
        cases::check(24, strategy, |(size, offset, len)| {
            patch_and_check(
                &pattern(size, size as u8),
                offset,
                &pattern(len, offset as u8),
            );
            Ok(())
        });
    });
}

#[test]
fn a_missing_file_is_enoent_and_is_not_created() {
    isolated(|| {
        let path = scratch_dir().join("no-such-file");
        let what = "patch_file(<a path with no file>, 0, 4 bytes)";
        let got = returned(what, student(|| patch(&path, 0, b"abcd")));
        assert_eq!(
            got,
            Err(Errno::ENOENT),
            "{what} must fail with ENOENT: it opens an existing file and never creates one"
        );
        assert!(
            fs::symlink_metadata(&path).is_err(),
            "{what} failed, yet {} exists now: open it without O_CREAT",
            path.display()
        );
    });
}

#[test]
fn a_directory_is_eisdir() {
    isolated(|| {
        let path = scratch_dir().join("a-directory");
        fs::create_dir(&path).expect("mkdir");
        let what = "patch_file(<a directory>, 0, 4 bytes)";
        let got = returned(what, student(|| patch(&path, 0, b"abcd")));
        assert_eq!(
            got,
            Err(Errno::EISDIR),
            "{what} must fail with EISDIR, the error of open(2) for writing a directory"
        );
    });
}

#[test]
fn a_read_only_file_is_eacces_and_unchanged() {
    isolated(|| {
        let old = pattern(5000, 5);
        let path = file_with("read-only.bin", &old);
        fs::set_permissions(&path, fs::Permissions::from_mode(0o400)).expect("chmod");
        let what = "patch_file(<a file of mode 0400>, 10, 4 bytes)";
        let got = returned(what, student(|| patch(&path, 10, b"abcd")));
        assert_eq!(
            got,
            Err(Errno::EACCES),
            "{what} must fail with EACCES: a shared writable mapping needs the file open for writing, and \
             open(2) refuses that on a file without write permission (the test runs without capabilities)"
        );
        assert_eq!(cat(&path), old, "{what} failed, yet the file changed");
    });
}
