//! memory/page_faults: what first touching fresh memory costs (缺页), counted by the kernel.
//!
//! What the tests observe, never what the code under test claims: the process's minor fault
//! count in `/proc/self/stat` (field 10, `minflt`), read by the test around each call; the
//! mapping's own line in `/proc/self/smaps` (its size, permissions, `Rss`, and the `nh` flag
//! that `MADV_NOHUGEPAGE` sets in `VmFlags`); and `/proc/self/maps` after `unmap`.
//!
//! Every count the code under test returns must lie within what the kernel counted around
//! the call: at least the faults the contract requires, at most what `/proc/self/stat` saw.
//! "No new faults" allows `SLACK` faults for things the test does not control (a new stack
//! page, the allocator); a fresh page costs one fault each, so the tests use many pages.
//!
//! The contract, clause by clause, and the test that checks each:
//! - `page_size` is the kernel's page size (`page_size_is_the_kernels`);
//! - `minor_faults` is this process's own count, not its children's
//!   (`minor_faults_is_this_process_count`);
//! - `map_fresh` gives exactly the pages asked for, private, anonymous, read-write, untouched
//!   (Rss 0) and marked no-huge-page, and refuses 0 pages with an error
//!   (`map_fresh_gives_untouched_pages`);
//! - `touch(Write)` writes every page: each costs at least one fault and ends resident
//!   (`writing_faults_in_every_page`);
//! - `faults_to_touch` returns the faults of the touch itself, measured before and after it
//!   (`faults_to_touch_counts_the_touch`), about 0 for pages already touched
//!   (`a_second_touch_costs_nothing`);
//! - reading fresh pages faults too but maps the shared zero page, so nothing becomes
//!   resident; writing afterwards faults again (`reading_maps_the_zero_page`);
//! - `map_populated` pages are resident at once and cost no faults to touch
//!   (`populated_pages_cost_no_faults`);
//! - `unmap` removes the mapping (`unmap_removes_the_mapping`).

// The exercise under test: your stub (by default), the reference solution (`--features
// solutions`), or a shipped mistake that `cargo grade --mistakes` copies into target/.
#[cfg(not(any(feature = "solutions", feature = "mistake")))]
#[path = "../../exercises/memory/page_faults.rs"]
#[allow(dead_code)] // a stub does not use all of its API yet
mod page_faults;
#[cfg(all(feature = "solutions", not(feature = "mistake")))]
#[path = "../../solutions/memory/page_faults.rs"]
mod page_faults;
#[cfg(feature = "mistake")]
#[path = "../../target/oskata-mistake/memory/page_faults.rs"]
#[rustfmt::skip] // the copy exists only while the proof runs
mod page_faults;
use page_faults::*;

use std::fs;
use std::io;
use std::num::NonZeroUsize;

use nix::sys::mman::{MapFlags, ProtFlags, mmap_anonymous, munmap};
use oskata_harness::{isolated, procfs, student};

/// How many pages the tests touch: 4 MiB, enough for a 2 MiB-aligned huge page to fit inside
/// and far above any unrelated faults.
const N: usize = 1024;
/// Faults allowed for things the test does not control where the contract says "none".
const SLACK: u64 = 16;
const KB_PER_PAGE: u64 = 4;

/// This process's minor faults, from `/proc/self/stat`.
fn kernel_faults() -> u64 {
    procfs::stat(nix::unistd::getpid())
        .expect("read /proc/self/stat")
        .minflt
}

/// The smaps entry starting at `addr`, or `None`.
fn smaps_at(addr: usize) -> Option<procfs::Mapping> {
    procfs::smaps(nix::unistd::getpid())
        .expect("read /proc/self/smaps")
        .into_iter()
        .find(|m| m.start == addr as u64)
}

/// The smaps entry of `p`, which must exist.
fn entry(p: &Pages, what: &str) -> procfs::Mapping {
    smaps_at(p.addr()).unwrap_or_else(|| {
        panic!(
            "{what}: /proc/self/smaps has no mapping starting at {:#x}, the address of the pages.\n/proc/self/maps:\n{}",
            p.addr(),
            fs::read_to_string("/proc/self/maps").unwrap_or_default()
        )
    })
}

/// Maps `N` fresh pages, failing with the error.
fn fresh() -> Pages {
    let p = student(|| map_fresh(N)).unwrap_or_else(|e| panic!("map_fresh({N}) failed: {e}"));
    assert_eq!(p.pages(), N, "map_fresh({N}) gave {} pages", p.pages());
    p
}

/// Checks that every page of `p` is resident (Rss), after `what`.
fn expect_resident(p: &Pages, pages: usize, what: &str, why: &str) {
    let m = entry(p, what);
    let rss = m.kb("Rss");
    assert!(
        rss == pages as u64 * KB_PER_PAGE,
        "{what}: /proc/self/smaps shows Rss {rss} kB for the mapping at {:#x}, not {} kB ({pages} pages of 4 kB): {why}",
        p.addr(),
        pages as u64 * KB_PER_PAGE
    );
}

/// `faults_to_touch`, checked against the kernel's count around it: returns (reported, seen).
fn measured(p: &Pages, how: Touch) -> (u64, u64) {
    let before = kernel_faults();
    let got = student(|| faults_to_touch(p, how))
        .unwrap_or_else(|e| panic!("faults_to_touch failed: {e}"));
    let seen = kernel_faults() - before;
    assert!(
        got <= seen,
        "faults_to_touch({how:?}) returned {got}, but /proc/self/stat counted only {seen} minor faults in this process \
         during the whole call: the count is the faults of this process (getrusage RUSAGE_SELF), after the touch minus \
         before it"
    );
    (got, seen)
}

#[test]
fn page_size_is_the_kernels() {
    // SAFETY: sysconf only reads a value.
    let kernel = unsafe { libc::sysconf(libc::_SC_PAGESIZE) } as usize;
    assert_eq!(
        page_size().expect("page_size"),
        kernel,
        "page_size should be sysconf(_SC_PAGESIZE)"
    );
}

#[test]
fn minor_faults_is_this_process_count() {
    isolated(|| {
        let a = kernel_faults();
        let m = student(minor_faults).unwrap_or_else(|e| panic!("minor_faults failed: {e}"));
        let b = kernel_faults();
        assert!(
            a <= m && m <= b,
            "minor_faults() returned {m}, but /proc/self/stat said {a} just before and {b} just after: it should be \
             this process's own count, getrusage(RUSAGE_SELF).ru_minflt (RUSAGE_CHILDREN counts only children \
             that were waited for)"
        );
        // The count moves with this process's own faults: 64 pages the test writes itself.
        let len = NonZeroUsize::new(64 * 4096).unwrap();
        // SAFETY: a fresh private anonymous mapping the test writes and unmaps.
        let map = unsafe {
            mmap_anonymous(
                None,
                len,
                ProtFlags::PROT_READ | ProtFlags::PROT_WRITE,
                MapFlags::MAP_PRIVATE,
            )
        }
        .expect("mmap");
        let m1 = student(minor_faults).expect("minor_faults");
        for i in 0..64 {
            // SAFETY: inside the mapping made above.
            unsafe { map.cast::<u8>().add(i * 4096).write_volatile(1) };
        }
        let m2 = student(minor_faults).expect("minor_faults");
        // SAFETY: the mapping made above, no longer used.
        unsafe { munmap(map, len.get()) }.expect("munmap");
        assert!(
            m2 >= m1 + 64,
            "the test wrote 64 fresh pages between two calls of minor_faults(), which went from {m1} to {m2}: each \
             first write of a fresh page is a minor fault of this process, and it should count them"
        );
    });
}

#[test]
fn map_fresh_gives_untouched_pages() {
    isolated(|| {
        let p = fresh();
        let m = entry(&p, "after map_fresh");
        assert_eq!(
            (m.end - m.start) as usize,
            N * 4096,
            "map_fresh({N}) made a mapping of {} bytes, not {N} pages of 4096",
            m.end - m.start
        );
        assert!(
            m.perms == "rw-p" && m.path.is_empty(),
            "map_fresh made `{} {}`: it should be private, anonymous and read-write (rw-p, no file)",
            m.perms,
            m.path
        );
        assert_eq!(
            m.kb("Rss"),
            0,
            "a fresh mapping has nothing resident (Rss 0) before it is touched"
        );
        assert!(
            m.vm_flags.iter().any(|f| f == "nh"),
            "the mapping's VmFlags ({}) lack `nh`: map_fresh must madvise(MADV_NOHUGEPAGE). Without it, where \
             transparent huge pages are on (/sys/kernel/mm/transparent_hugepage/enabled), one fault can map a 2 MiB \
             huge page, 512 pages at once, and the count says nothing about pages",
            m.vm_flags.join(" ")
        );
        student(|| unmap(p)).expect("unmap");
        match std::panic::catch_unwind(|| map_fresh(0)) {
            Ok(Err(_)) => {}
            Ok(Ok(p)) => panic!(
                "map_fresh(0) returned a mapping of {} bytes; 0 pages is an error",
                p.bytes()
            ),
            Err(_) => panic!("map_fresh(0) panicked: 0 pages is an error to return, not a panic"),
        }
    });
}

#[test]
fn writing_faults_in_every_page() {
    isolated(|| {
        let p = fresh();
        let before = kernel_faults();
        student(|| touch(&p, Touch::Write));
        let seen = kernel_faults() - before;
        let rss = entry(&p, "after touch(Write)").kb("Rss");
        let why = if rss == 0 {
            "nothing became resident, as after reads: touch(Write) must write, since the kernel backs each page with \
             memory only when it is first written (a read maps the shared zero page)"
        } else {
            "touch must write one byte in *every* page (addr + i * page size), not one byte of the whole region: the \
             kernel backs each page with memory only when that page is first written"
        };
        expect_resident(&p, N, "after touch(Write) of fresh pages", why);
        assert!(
            seen >= N as u64,
            "writing {N} fresh pages cost only {seen} minor faults in /proc/self/stat: each first write of a fresh page \
             faults once"
        );
        student(|| unmap(p)).expect("unmap");
    });
}

#[test]
fn faults_to_touch_counts_the_touch() {
    isolated(|| {
        let p = fresh();
        let (got, seen) = measured(&p, Touch::Write);
        assert!(
            got >= N as u64,
            "faults_to_touch(Write) on {N} fresh pages returned {got} (the kernel counted {seen} during the call): \
             each first write of a fresh page faults once. Read the count before the touch and after it, in that order"
        );
        expect_resident(
            &p,
            N,
            "after faults_to_touch(Write)",
            "every page written is resident",
        );
        student(|| unmap(p)).expect("unmap");
    });
}

#[test]
fn a_second_touch_costs_nothing() {
    isolated(|| {
        let p = fresh();
        let (first, _) = measured(&p, Touch::Write);
        let (again, seen) = measured(&p, Touch::Write);
        assert!(
            again <= SLACK,
            "writing the same {N} pages a second time cost {again} faults (the first time {first}; the kernel counted \
             {seen}): pages already mapped cost no faults (up to {SLACK} allowed for unrelated ones)"
        );
        expect_resident(&p, N, "after two touches", "every page written is resident");
        student(|| unmap(p)).expect("unmap");
    });
}

#[test]
fn reading_maps_the_zero_page() {
    isolated(|| {
        let p = fresh();
        let (read, _) = measured(&p, Touch::Read);
        assert!(
            read >= N as u64,
            "reading {N} fresh pages cost {read} faults: a first read faults too, and the kernel maps the shared zero \
             page for it"
        );
        expect_resident(
            &p,
            0,
            "after touch(Read) of fresh pages",
            "reading fresh anonymous pages maps the shared zero page, which is not counted as this mapping's memory",
        );
        let (write, _) = measured(&p, Touch::Write);
        assert!(
            write >= N as u64,
            "writing {N} pages that had only been read cost {write} faults: each write breaks away from the zero page \
             (copy on write), one more fault per page"
        );
        expect_resident(
            &p,
            N,
            "after touch(Write) of pages read before",
            "every page written is resident",
        );
        student(|| unmap(p)).expect("unmap");
    });
}

#[test]
fn populated_pages_cost_no_faults() {
    isolated(|| {
        let p = student(|| map_populated(N))
            .unwrap_or_else(|e| panic!("map_populated({N}) failed: {e}"));
        assert_eq!(p.pages(), N, "map_populated({N}) gave {} pages", p.pages());
        expect_resident(
            &p,
            N,
            "right after map_populated",
            "MAP_POPULATE makes mmap fault every page in before it returns",
        );
        let (got, seen) = measured(&p, Touch::Write);
        assert!(
            got <= SLACK,
            "writing {N} pages mapped with MAP_POPULATE cost {got} faults (the kernel counted {seen}): populated pages \
             are already mapped (up to {SLACK} allowed for unrelated faults)"
        );
        student(|| unmap(p)).expect("unmap");
    });
}

#[test]
fn unmap_removes_the_mapping() {
    isolated(|| {
        let p = fresh();
        let (addr, bytes) = (p.addr(), p.bytes());
        student(|| touch(&p, Touch::Write));
        student(|| unmap(p)).unwrap_or_else(|e: io::Error| panic!("unmap failed: {e}"));
        let maps = fs::read_to_string("/proc/self/maps").expect("read /proc/self/maps");
        let left: Vec<&str> = maps
            .lines()
            .filter(|l| {
                let (s, e) = l
                    .split(' ')
                    .next()
                    .unwrap_or_default()
                    .split_once('-')
                    .unwrap_or_default();
                let s = usize::from_str_radix(s, 16).unwrap_or(usize::MAX);
                let e = usize::from_str_radix(e, 16).unwrap_or(0);
                s < addr + bytes && addr < e
            })
            .collect();
        assert!(
            left.is_empty(),
            "after unmap, /proc/self/maps still maps the pages at {addr:#x}: {left:?}. unmap must munmap(2) them; \
             a mapping left behind stays in the address space (and its memory stays resident) until the process ends"
        );
    });
}
