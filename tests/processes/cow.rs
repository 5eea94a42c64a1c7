//! processes/cow: after fork the child's pages are the parent's, shared (smaps Shared_Dirty)
//! until the child writes; each written page costs the child one minor fault and becomes its
//! own (Private_Dirty); the parent's copy never changes.

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

use nix::sys::wait::WaitStatus;
use nix::unistd::{Pid, SysconfVar, getpid, sysconf};
use oskata_harness::{body_pid, isolated, procfs, student};
use rstest::rstest;

const FILL: u8 = 0xA5;
const WRITE: u8 = 0x5A;

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

fn look(child: Pid, buffer: &[u8]) -> Look {
    let me = getpid();
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
    }
}

/// Runs the student's function, looking at the child at both moments. The hooks only record:
/// they run inside the student's code, which must get to clean up.
fn run(pages: usize) -> Run {
    let mut before: Option<Look> = None;
    let mut after: Option<Look> = None;
    let report = student(|| {
        cow_after_fork(pages, FILL, WRITE, |moment, child, buffer| {
            let seen = look(child, buffer);
            match moment {
                Moment::BeforeWrite => before = Some(seen),
                Moment::AfterWrite => after = Some(seen),
            }
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
