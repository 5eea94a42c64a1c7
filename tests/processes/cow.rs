//! processes/cow: after fork the child's pages are the parent's, shared (smaps Shared_Dirty)
//! until the child writes; each written page costs the child one minor fault and becomes its
//! own (Private_Dirty); the parent's copy never changes.
//!
//! The contract, clause by clause, and the test that checks each:
//! - a private anonymous buffer of `pages` pages, page-aligned, advised `MADV_NOHUGEPAGE`
//!   (`the_buffer_is_private_page_aligned_and_not_huge`), filled with `fill`
//!   (`the_parent_keeps_its_copy`);
//! - stdout flushed before the fork (`stdout_is_flushed_before_fork`: fd 1 has the test's
//!   unflushed text at the first look);
//! - at `BeforeWrite` the child waits in read(2) for the go-ahead and its copy (read from
//!   `/proc/<child>/mem`) is untouched, and its pages are the parent's (`Shared_Dirty`): every
//!   test through `run`, and `pages_are_shared_until_the_child_writes`;
//! - the child writes `write` into every byte of its copy (its memory at `AfterWrite`), faults
//!   once per page and reports the count (`the_child_faults_once_per_page_it_writes`) and the
//!   first byte of each page (`the_parent_keeps_its_copy`);
//! - at `AfterWrite` the child still waits in read(2) for the parent to let it go (every test
//!   through `run`);
//! - the parent's copy never changes, `parent_sees` is its first bytes, the child is a child
//!   process that exits 0 and is reaped (`the_parent_keeps_its_copy`);
//! - the caller is left as it was: the buffer unmapped, its fd table unchanged, and a child it
//!   had before (an unreaped zombie) not collected (`the_caller_is_left_as_it_was`).
//!
//! The looks wait on the kernel's evidence (the child asleep in read(2), or gone) rather than
//! on luck, so a child that writes before the go-ahead, or leaves before the parent lets it go,
//! is caught every time.

// The exercise under test: your stub (by default), the reference solution (`--features
// solutions`), or a shipped mistake that `cargo grade --mistakes` copies into target/.
#[cfg(not(any(feature = "solutions", feature = "mistake")))]
#[path = "../../exercises/processes/cow.rs"]
#[allow(dead_code)] // a stub does not use all of its API yet
mod cow;
#[cfg(all(feature = "solutions", not(feature = "mistake")))]
#[path = "../../solutions/processes/cow.rs"]
mod cow;
#[cfg(feature = "mistake")]
#[path = "../../target/oskata-mistake/processes/cow.rs"]
#[rustfmt::skip] // the copy exists only while the proof runs
mod cow;
use cow::*;

use std::fs::{self, File};
use std::io::Write;
use std::os::fd::AsFd;
use std::os::unix::fs::FileExt;
use std::time::{Duration, Instant};

use nix::sys::wait::{WaitPidFlag, WaitStatus, waitpid};
use nix::unistd::{ForkResult, Pid, SysconfVar, dup, dup2_stdout, fork, getpid, sysconf};
use oskata_harness::{body_pid, isolated, procfs, scaled, scratch_dir, student};
use rstest::rstest;

const FILL: u8 = 0xA5;
const WRITE: u8 = 0x5A;
/// How long the child may take to reach its wait on a pipe (before `scaled`).
const PATIENCE: Duration = Duration::from_secs(5);

/// What the test saw of the child (and of the parent's buffer) at one moment.
#[derive(Debug, Default)]
struct Look {
    /// The process that called `observe`.
    caller: i32,
    /// `/proc/<child>/stat`, if it could be read.
    child_stat: Option<procfs::Stat>,
    /// Whether the pid given is a thread of the test process rather than a process of its own.
    is_our_thread: bool,
    /// Shared_Dirty and Private_Dirty of the buffer's range in the child's smaps, in kB.
    child_shared_dirty: u64,
    child_private_dirty: u64,
    /// The buffer's address and length as the parent handed them to `observe`.
    addr: usize,
    len: usize,
    /// The first byte of the parent's buffer that is not FILL, if any: (index, value).
    parent_changed: Option<(usize, u8)>,
    /// The perms and VmFlags of the parent's mapping that holds the buffer.
    parent_perms: String,
    parent_vmflags: String,
    /// Where the child was when the test looked: asleep in read(2), as it must be at both
    /// moments, or what the test saw instead.
    child_where: Where,
    /// The first byte of the child's copy of the buffer (read from `/proc/<child>/mem` while it
    /// waits) that is not what it should hold at this moment, if any: (index, value).
    child_differs: Option<(usize, u8)>,
}

/// Where the child was at one of the two moments.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
enum Where {
    /// Asleep in read(2): waiting on a pipe, as it should.
    #[default]
    Waiting,
    /// Gone, or a zombie: it had already exited.
    Exited,
    /// Neither within the patience: its state then.
    Elsewhere(Option<char>),
}

struct Run {
    report: CowReport,
    before: Look,
    after: Look,
}

fn page_size() -> usize {
    sysconf(SysconfVar::PAGE_SIZE)
        .ok()
        .flatten()
        .map_or(4096, |p| p as usize)
}

/// Sums a counter over the mappings of `pid` that overlap `[addr, addr + len)`.
fn range_kb(maps: &[procfs::Mapping], addr: usize, len: usize, key: &str) -> u64 {
    let (start, end) = (addr as u64, (addr + len) as u64);
    maps.iter()
        .filter(|m| m.start < end && start < m.end)
        .map(|m| m.kb(key))
        .sum()
}

/// The perms and `VmFlags` of the mapping of `pid` that contains `addr`, from smaps.
fn perms_and_vmflags(pid: Pid, addr: usize) -> (String, String) {
    procfs::smaps(pid)
        .unwrap_or_default()
        .into_iter()
        .find(|m| m.contains(addr as u64))
        .map(|m| (m.perms, m.vm_flags.join(" ")))
        .unwrap_or_default()
}

/// Waits (at most `patience`) until `child` sleeps in read(2), or has exited. Never panics:
/// it runs inside the student's code, which must get to clean up.
fn where_is(child: Pid, patience: Duration) -> Where {
    let start = Instant::now();
    loop {
        let state = procfs::state(child);
        if matches!(state, None | Some('Z' | 'X')) {
            return Where::Exited;
        }
        if procfs::blocked_read_fd(child).is_some() {
            return Where::Waiting;
        }
        if start.elapsed() > patience {
            return Where::Elsewhere(state);
        }
        std::thread::sleep(Duration::from_micros(500));
    }
}

/// The first byte of the child's copy of `buffer` that is not `expected`, read through
/// `/proc/<child>/mem` (reading does not copy a shared page: the child's counters stay as they
/// were). `None` also when the memory cannot be read (the other checks then speak).
fn child_differs(child: Pid, buffer: &[u8], expected: u8) -> Option<(usize, u8)> {
    let mut copy = vec![0u8; buffer.len()];
    let file = File::open(format!("/proc/{child}/mem")).ok()?;
    file.read_exact_at(&mut copy, buffer.as_ptr() as u64).ok()?;
    copy.iter()
        .position(|&b| b != expected)
        .map(|i| (i, copy[i]))
}

fn look(child: Pid, buffer: &[u8], expected: u8, patience: Duration) -> Look {
    let me = getpid();
    let child_where = where_is(child, patience);
    let child_differs = if child_where == Where::Waiting {
        child_differs(child, buffer, expected)
    } else {
        None
    };
    let maps = procfs::smaps(child).unwrap_or_default();
    let addr = buffer.as_ptr() as usize;
    let (parent_perms, parent_vmflags) = perms_and_vmflags(me, addr);
    Look {
        caller: me.as_raw(),
        child_stat: procfs::stat(child).ok(),
        is_our_thread: child != me
            && procfs::threads(me)
                .unwrap_or_default()
                .contains(&child.as_raw()),
        child_shared_dirty: range_kb(&maps, addr, buffer.len(), "Shared_Dirty"),
        child_private_dirty: range_kb(&maps, addr, buffer.len(), "Private_Dirty"),
        addr,
        len: buffer.len(),
        parent_changed: buffer
            .iter()
            .position(|&b| b != FILL)
            .map(|i| (i, buffer[i])),
        parent_perms,
        parent_vmflags,
        child_where,
        child_differs,
    }
}

/// Runs the student's function, looking at the child at both moments. The hooks only record:
/// they run inside the student's code, which must get to clean up.
fn run(pages: usize) -> Run {
    let mut before: Option<Look> = None;
    let mut after: Option<Look> = None;
    // Scaled here, not in `look`, which must not panic (on a bad OSKATA_DEADLINE_SCALE).
    let patience = scaled(PATIENCE);
    let report = student(|| {
        cow_after_fork(pages, FILL, WRITE, |moment, child, buffer| match moment {
            Moment::BeforeWrite => before = Some(look(child, buffer, FILL, patience)),
            Moment::AfterWrite => after = Some(look(child, buffer, WRITE, patience)),
        })
    })
    .unwrap_or_else(|e| panic!("cow_after_fork({pages}, ..) failed: {e}"));
    let me = body_pid().expect("inside isolated()");
    let before = before
        .unwrap_or_else(|| panic!("cow_after_fork never called observe(Moment::BeforeWrite, ..)"));
    let after = after
        .unwrap_or_else(|| panic!("cow_after_fork never called observe(Moment::AfterWrite, ..)"));
    for l in [&before, &after] {
        assert_eq!(
            l.caller,
            me.as_raw(),
            "observe ran in pid {}, not in the parent {me}: only the parent calls it",
            l.caller
        );
    }
    let child = report.child;
    match &before.child_where {
        Where::Waiting => {}
        Where::Exited => panic!(
            "the child (pid {child}) had already exited when the parent called observe(Moment::BeforeWrite, ..): \
             right after fork it should wait, asleep in read(2) on a pipe, for the parent's go-ahead, and write \
             nothing before it"
        ),
        Where::Elsewhere(state) => panic!(
            "the child (pid {child}) was not waiting in read(2) for the go-ahead when the parent called \
             observe(Moment::BeforeWrite, ..) (state {state:?} for {patience:?}): right after fork it should wait \
             for a byte on a pipe, and write nothing before it"
        ),
    }
    if let Some((i, value)) = before.child_differs {
        panic!(
            "the child (pid {child}) wrote before the go-ahead: at observe(Moment::BeforeWrite, ..) byte {i} of its \
             copy (read from /proc/{child}/mem) was already {value:#04x}, not the fill {FILL:#04x}. The child must \
             first wait for the parent's go-ahead, and only then write, so that the parent can look at the pages \
             while they are still shared"
        );
    }
    match &after.child_where {
        Where::Waiting => {}
        Where::Exited => panic!(
            "the child (pid {child}) had already exited when the parent called observe(Moment::AfterWrite, ..): \
             after sending its report it must wait until the parent lets it go (end of file on the go-ahead pipe), \
             so that the parent can still look at it; only then _exit(0)"
        ),
        Where::Elsewhere(state) => panic!(
            "the child (pid {child}) was not waiting in read(2) when the parent called \
             observe(Moment::AfterWrite, ..) (state {state:?} for {patience:?}): after sending its report it must \
             wait until the parent lets it go (end of file on the go-ahead pipe)"
        ),
    }
    if let Some((i, value)) = after.child_differs {
        panic!(
            "after its write, byte {i} of the child's copy (read from /proc/{child}/mem) is {value:#04x}, not \
             {WRITE:#04x}: the child must write the value into every byte of its copy, not only into some of \
             them (such as the first byte of each page)"
        );
    }
    Run {
        report,
        before,
        after,
    }
}

/// Why the parent saw the child's write, from the evidence.
fn why_shared(run: &Run) -> String {
    let me = body_pid().expect("inside isolated()");
    let child = run.report.child;
    if run.before.is_our_thread {
        format!(
            "pid {child} is a thread of the test process (it is listed in /proc/{me}/task), not a child process: \
             threads share one address space, so its write is the parent's write. fork() gives the child a \
             copy-on-write copy of the memory instead."
        )
    } else if run.before.parent_perms.ends_with('s') {
        format!(
            "the buffer is a shared mapping (perms {} in /proc/{me}/smaps: MAP_SHARED), so parent and child write \
             the very same pages. Map it MAP_PRIVATE: then fork gives the child copy-on-write pages.",
            run.before.parent_perms
        )
    } else {
        "parent and child should have separate pages after the child's first write to each (copy-on-write)".into()
    }
}

#[rstest]
#[case(1)]
#[case(8)]
#[case(16384)]
fn the_parent_keeps_its_copy(#[case] pages: usize) {
    isolated(|| {
        let run = run(pages);
        let me = body_pid().expect("inside isolated()");
        let child = run.report.child;
        if let Some((i, value)) = run.after.parent_changed {
            panic!(
                "the parent's copy changed when the child wrote: byte {i} of the parent's buffer is {value:#04x}, \
                 not the fill {FILL:#04x}. {}",
                why_shared(&run)
            );
        }
        assert!(
            run.report.parent_sees.iter().all(|&b| b == FILL)
                && run.report.parent_sees.len() == pages,
            "parent_sees should be {pages} bytes of the fill {FILL:#04x} (the parent's buffer is unchanged), got \
             {:02x?}",
            &run.report.parent_sees[..run.report.parent_sees.len().min(16)]
        );
        assert!(
            run.report.child_sees.iter().all(|&b| b == WRITE)
                && run.report.child_sees.len() == pages,
            "child_sees should be {pages} bytes of {WRITE:#04x}, what the child wrote into its copy, got {:02x?}",
            &run.report.child_sees[..run.report.child_sees.len().min(16)]
        );
        let ppid = run.before.child_stat.as_ref().map(|s| s.ppid);
        assert_eq!(
            ppid,
            Some(me.as_raw()),
            "pid {child} should be a child process of the caller {me}; /proc/{child}/stat shows ppid {ppid:?}"
        );
        assert_eq!(
            run.report.status,
            WaitStatus::Exited(child, 0),
            "waitpid should report that pid {child} exited with code 0"
        );
        assert!(
            procfs::state(child).is_none(),
            "pid {child} is still in /proc after cow_after_fork returned: nobody called waitpid on it"
        );
    });
}

#[test]
fn pages_are_shared_until_the_child_writes() {
    isolated(|| {
        // 64 MiB, as in the notes: big enough that nothing else in the range matters.
        let pages = 16384;
        let run = run(pages);
        let child = run.report.child;
        let kb = (pages * page_size() / 1024) as u64;
        assert!(
            run.before.child_shared_dirty >= kb,
            "before the child wrote, /proc/{child}/smaps counts {} kB of the {kb} kB buffer as Shared_Dirty \
             (and {} kB Private_Dirty): right after fork the child's pages should be the parent's pages, mapped by \
             both and shared until one of them writes (copy-on-write)",
            run.before.child_shared_dirty,
            run.before.child_private_dirty
        );
        assert!(
            run.after.child_private_dirty >= kb,
            "after the child wrote every page, /proc/{child}/smaps should count the whole {kb} kB buffer as \
             Private_Dirty (each written page copied for the child); it counts {} kB (Shared_Dirty {} kB)",
            run.after.child_private_dirty,
            run.after.child_shared_dirty
        );
    });
}

#[rstest]
#[case(1)]
#[case(64)]
#[case(16384)]
fn the_child_faults_once_per_page_it_writes(#[case] pages: usize) {
    isolated(|| {
        let run = run(pages);
        let child = run.report.child;
        let minflt = |l: &Look| l.child_stat.as_ref().map_or(0, |s| s.minflt);
        let seen = minflt(&run.after).saturating_sub(minflt(&run.before));
        assert!(
            seen >= pages as u64,
            "from before to after the write, /proc/{child}/stat counts {seen} minor faults in the child, fewer than \
             the {pages} pages it wrote: each first write to a shared page traps, and the kernel copies the page"
        );
        let told = run.report.child_minor_faults;
        assert!(
            told >= pages as u64,
            "the child reported {told} minor faults for writing {pages} pages: read getrusage(RUSAGE_SELF) in the \
             child right before and right after the write; each page written costs one fault"
        );
        assert!(
            told <= seen,
            "the child reported {told} minor faults, but /proc/{child}/stat counted only {seen} over the whole \
             write: measure in the child with getrusage(RUSAGE_SELF), just before and just after writing"
        );
    });
}

#[test]
fn the_buffer_is_private_page_aligned_and_not_huge() {
    isolated(|| {
        let pages = 64;
        let run = run(pages);
        let me = body_pid().expect("inside isolated()");
        let (addr, len, page) = (run.before.addr, run.before.len, page_size());
        assert!(
            addr % page == 0 && len == pages * page,
            "observe should get the parent's whole buffer, {pages} pages from a page boundary; it got {len} bytes \
             at {addr:#x}: map the buffer with mmap"
        );
        assert_eq!(
            run.before.parent_perms, "rw-p",
            "the buffer's mapping in /proc/{me}/smaps has perms {:?}: it should be a private writable mapping \
             (MAP_PRIVATE | MAP_ANONYMOUS), the kind fork shares copy-on-write",
            run.before.parent_perms
        );
        // A kernel built without transparent huge pages has no /sys/kernel/mm/transparent_hugepage
        // and rejects MADV_NOHUGEPAGE with EINVAL, so no mapping there can show `nh`: nothing
        // to check (and nothing to avoid).
        let thp = std::path::Path::new("/sys/kernel/mm/transparent_hugepage").exists();
        assert!(
            !thp || run
                .before
                .parent_vmflags
                .split_whitespace()
                .any(|f| f == "nh"),
            "the buffer's mapping has VmFlags [{}] in /proc/{me}/smaps, without `nh`: call madvise(MADV_NOHUGEPAGE) \
             on it before filling it, or the kernel may back it with 2 MiB transparent huge pages: the parent's \
             fill then faults once per 2 MiB, and kernels before 5.8 copy a whole 2 MiB page on the child's first \
             write to it. Ordinary pages keep the experiment page-sized on every kernel",
            run.before.parent_vmflags
        );
    });
}

/// What the test process prints just before the call, without a newline: it sits in the
/// buffer of Rust's stdout until somebody flushes it.
const MARK: &str = "cow-mark-before-fork";

#[test]
fn stdout_is_flushed_before_fork() {
    isolated(|| {
        let path = scratch_dir().join("stdout");
        let file = File::create(&path).expect("create the stdout file");
        std::io::stdout().flush().expect("flush stdout");
        let saved = dup(std::io::stdout().as_fd()).expect("dup stdout");
        dup2_stdout(&file).expect("point stdout at the file");
        print!("{MARK}");
        let mut on_file = None;
        let result = student(|| {
            cow_after_fork(1, FILL, WRITE, |moment, _, _| {
                if moment == Moment::BeforeWrite {
                    on_file = Some(fs::read_to_string(&path).unwrap_or_default());
                }
            })
        });
        let _ = std::io::stdout().flush();
        dup2_stdout(&saved).expect("restore stdout");
        result.unwrap_or_else(|e| panic!("cow_after_fork(1, ..) failed: {e}"));
        let on_file = on_file.unwrap_or_else(|| {
            panic!("cow_after_fork never called observe(Moment::BeforeWrite, ..)")
        });
        assert!(
            on_file.contains(MARK),
            "the test printed {MARK:?} (no newline, so it waited in stdout's buffer) and called cow_after_fork; \
             at observe(Moment::BeforeWrite, ..), after the fork, fd 1 had received {on_file:?}: the buffer was \
             not flushed before fork. Flush stdout before you fork: the child gets a copy of every user-space \
             buffer, and what sits in one would be written twice, once by each process"
        );
    });
}

/// What the caller's kernel state shows: the buffer's range unmapped, its fd table as it was,
/// and a child it had before the call (a zombie, its status not collected) still there.
#[test]
fn the_caller_is_left_as_it_was() {
    isolated(|| {
        let me = body_pid().expect("inside isolated()");
        // SAFETY: the test process is single-threaded; the child only calls _exit.
        let bystander = match unsafe { fork() }.expect("fork") {
            // SAFETY: _exit ends the child at once.
            ForkResult::Child => unsafe { libc::_exit(42) },
            ForkResult::Parent { child } => child,
        };
        oskata_harness::poll::until(
            Duration::from_secs(5),
            &format!("pid {bystander} to exit"),
            || (procfs::state(bystander) == Some('Z')).then_some(()),
        );
        let fds_before = procfs::fds(me).expect("read the test's fd table");
        let run = run(8);
        if procfs::state(bystander) != Some('Z') {
            panic!(
                "pid {bystander}, a child the caller had started before it called cow_after_fork (it had exited, its \
                 status not yet collected), was reaped by cow_after_fork: the caller's own children are not yours \
                 to collect. Wait for the child you forked, waitpid(child, ..), not for any child (wait(), \
                 waitpid(-1, ..)); cow_after_fork's waitpid returned {:?}",
                run.report.status
            );
        }
        assert_eq!(
            waitpid(bystander, Some(WaitPidFlag::WNOHANG)),
            Ok(WaitStatus::Exited(bystander, 42)),
            "the caller's own child {bystander} should still have its status for the caller to collect"
        );
        let (addr, len) = (run.before.addr as u64, run.before.len as u64);
        let still: Vec<String> = procfs::smaps(me)
            .unwrap_or_default()
            .iter()
            .filter(|m| m.start < addr + len && addr < m.end)
            .map(|m| format!("{:#x}-{:#x} {}", m.start, m.end, m.perms))
            .collect();
        assert!(
            still.is_empty(),
            "after cow_after_fork returned, the buffer's range {addr:#x}-{:#x} is still mapped in the caller \
             (/proc/{me}/smaps: {}): unmap the buffer with munmap before returning, or every call leaves its pages \
             behind",
            addr + len,
            still.join(", ")
        );
        let fds_after = procfs::fds(me).expect("read the test's fd table");
        assert_eq!(
            fds_after, fds_before,
            "the caller's fd table (/proc/{me}/fd) changed across cow_after_fork: close both ends of every pipe \
             the parent made before returning"
        );
    });
}
