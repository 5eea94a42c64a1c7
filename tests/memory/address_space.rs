//! memory/address_space: where an address lives (地址空间), read from `/proc/self/maps`.
//!
//! What the tests observe, never what the code under test claims: every address is one the
//! test picks itself (a function, statics, memory it gets from brk or mmap, the auxiliary
//! vector's pointers into the initial stack and the vDSO), and its region is known
//! independently of the code under test: from the executable's ELF program headers
//! (`dl_iterate_phdr(3)`: which segment holds it, code, read-only, initialised or zero-filled
//! data), from what the test did (`sbrk`, `mmap`, `munmap`), and from the kernel's own label
//! on the line of `/proc/self/maps` that holds it, found by a lookup of the test's own.
//!
//! The contract, clause by clause, and the test that checks each:
//! - `parse_line`/`parse_maps` read the six fields of proc(5), the pathname being the rest of
//!   the line however many spaces it holds, ` (deleted)` included, and empty when there is none
//!   (`parse_reads_every_field`, `parse_keeps_the_whole_pathname`,
//!   `parse_an_anonymous_line`, `parse_round_trips_what_the_kernel_prints`), and read this
//!   process's real maps line for line (`parse_reads_the_real_maps`);
//! - they return an `InvalidData` error for a malformed line, never panic
//!   (`parse_rejects_malformed_lines`);
//! - `classify` finds the mapping with `start <= addr < end` (the end excluded) and `None`
//!   outside every mapping (`classify_excludes_the_end_address`,
//!   `unmapped_addresses_have_no_region`);
//! - the executable's mappings are Text (x), Data (w) and Rodata (neither), told by pathname,
//!   wherever the executable was loaded (`classify_a_synthetic_layout`, `a_function_is_text`,
//!   `an_initialised_static_is_data`, `a_read_only_static_is_rodata`);
//! - Bss is the anonymous writable mapping that starts where the executable's last writable
//!   file mapping ends, and no other anonymous mapping (`classify_a_synthetic_layout`,
//!   `a_zeroed_static_is_bss`, `your_own_mmap_is_mmap`);
//! - `[heap]` is Heap (`sbrk_memory_is_heap`, `a_small_box_is_where_malloc_put_it`), a big
//!   allocation and any other anonymous or non-executable file mapping is Mmap, a library's
//!   writable data included (`a_big_allocation_is_mmap`, `your_own_mmap_is_mmap`,
//!   `a_library_data_is_mmap`);
//! - `[stack]` is Stack, and a thread's stack, an anonymous mapping, is Mmap
//!   (`the_initial_stack_is_stack`, `a_local_of_the_test_thread`);
//! - the vDSO and its data pages are Kernel (`the_vdso_is_kernel`).

// The exercise under test: your stub (by default), the reference solution (`--features
// solutions`), or a shipped mistake that `cargo grade --mistakes` copies into target/.
#[cfg(not(any(feature = "solutions", feature = "mistake")))]
#[path = "../../exercises/memory/address_space.rs"]
#[allow(dead_code)] // a stub does not use all of its API yet
mod address_space;
#[cfg(all(feature = "solutions", not(feature = "mistake")))]
#[path = "../../solutions/memory/address_space.rs"]
mod address_space;
#[cfg(feature = "mistake")]
#[path = "../../target/oskata-mistake/memory/address_space.rs"]
#[rustfmt::skip] // the copy exists only while the proof runs
mod address_space;
use address_space::*;

use std::ffi::{CStr, c_int, c_void};
use std::fs;
use std::hint::black_box;
use std::io;
use std::num::NonZeroUsize;
use std::panic::{AssertUnwindSafe, catch_unwind, resume_unwind};
use std::sync::atomic::{AtomicU64, Ordering};

use nix::sys::mman::{MapFlags, ProtFlags, mmap, mmap_anonymous, munmap};
use oskata_harness::{isolated, scratch_dir, student};
use proptest::prelude::*;
use proptest::test_runner::{Config, TestError, TestRunner};

const PAGE: u64 = 4096;

/// An initialised static: the linker puts it in `.data`, loaded from the file.
static INITIALISED: AtomicU64 = AtomicU64::new(0x5eed_5eed_5eed_5eed);
/// A zeroed static of 256 KiB: `.bss`, which takes no room in the file.
static ZEROED: [AtomicU64; 32768] = [const { AtomicU64::new(0) }; 32768];
/// An immutable static with no pointers in it: `.rodata`.
static READ_ONLY: [u8; 32] = *b"constant bytes, never written to";

/// The lesson for the end address.
const END_EXCLUDED: &str = "the end address is excluded: a line `start-end` of /proc/self/maps covers start..end, so \
                            `end` itself is the first byte past the mapping";

// ---------------------------------------------------------------------------------------
// What the test knows on its own: the ELF program headers and the kernel's maps lines.
// ---------------------------------------------------------------------------------------

/// One loaded segment of an object: its absolute range in memory and its flags.
#[derive(Debug, Clone)]
struct Segment {
    start: u64,
    file_end: u64,
    mem_end: u64,
    flags: u32,
}

/// The loaded objects (name, PT_LOAD segments), the executable first with an empty name.
fn loaded_objects() -> Vec<(String, Vec<Segment>)> {
    unsafe extern "C" fn each(
        info: *mut libc::dl_phdr_info,
        _size: usize,
        data: *mut c_void,
    ) -> c_int {
        // SAFETY: dl_iterate_phdr passes a valid info for the duration of the call, and `data`
        // is the Vec the caller handed in.
        unsafe {
            let out = &mut *(data as *mut Vec<(String, Vec<Segment>)>);
            let info = &*info;
            let name = if info.dlpi_name.is_null() {
                String::new()
            } else {
                CStr::from_ptr(info.dlpi_name)
                    .to_string_lossy()
                    .into_owned()
            };
            let phdrs = std::slice::from_raw_parts(info.dlpi_phdr, info.dlpi_phnum as usize);
            let segs = phdrs
                .iter()
                .filter(|p| p.p_type == libc::PT_LOAD)
                .map(|p| {
                    let start = info.dlpi_addr + p.p_vaddr;
                    Segment {
                        start,
                        file_end: start + p.p_filesz,
                        mem_end: start + p.p_memsz,
                        flags: p.p_flags,
                    }
                })
                .collect();
            out.push((name, segs));
        }
        0
    }
    let mut out: Vec<(String, Vec<Segment>)> = Vec::new();
    // SAFETY: the callback only reads what it is given and pushes into `out`.
    unsafe { libc::dl_iterate_phdr(Some(each), (&raw mut out).cast()) };
    out
}

/// The executable's PT_LOAD segment that holds `addr`.
fn exe_segment(addr: u64) -> Segment {
    let objects = loaded_objects();
    let (_, segs) = objects
        .first()
        .expect("dl_iterate_phdr reported no executable");
    segs.iter()
        .find(|s| s.start <= addr && addr < s.mem_end)
        .cloned()
        .unwrap_or_else(|| {
            panic!("test premise: {addr:#x} is in no PT_LOAD segment of the executable: {segs:x?}")
        })
}

/// The line of this process's `/proc/self/maps` holding `addr`, found by the test's own
/// lookup (the range only), or `None`.
fn kernel_line(addr: u64) -> Option<String> {
    let text = fs::read_to_string("/proc/self/maps").expect("read /proc/self/maps");
    text.lines()
        .find(|l| {
            let range = l.split(' ').next().unwrap_or_default();
            let (s, e) = range.split_once('-').unwrap_or_default();
            let s = u64::from_str_radix(s, 16).unwrap_or(u64::MAX);
            let e = u64::from_str_radix(e, 16).unwrap_or(0);
            s <= addr && addr < e
        })
        .map(str::to_owned)
}

/// The kernel's line for `addr`, which must exist.
fn line_of(addr: u64) -> String {
    kernel_line(addr)
        .unwrap_or_else(|| panic!("test premise: no line of /proc/self/maps holds {addr:#x}"))
}

/// The whole of `/proc/self/maps`, for messages.
fn maps_text() -> String {
    fs::read_to_string("/proc/self/maps")
        .unwrap_or_else(|e| format!("(cannot read /proc/self/maps: {e})"))
}

/// Calls `region_of` for `addr` and checks it gave `want`; `what` and `why` explain.
fn expect_region(addr: u64, want: Option<Region>, what: &str, why: &str) {
    let got = student(|| region_of(addr));
    let got = got.unwrap_or_else(|e| panic!("region_of({addr:#x}) ({what}) failed: {e}"));
    if got != want {
        let line = kernel_line(addr).unwrap_or_else(|| "(no line holds it)".into());
        panic!(
            "region_of({addr:#x}), {what}, returned {got:?}, but it is {want:?}: {why}\nThe kernel's line for it: \
             {line}\n/proc/self/maps:\n{}",
            maps_text()
        );
    }
}

// ---------------------------------------------------------------------------------------
// Parsing, from text.
// ---------------------------------------------------------------------------------------

/// Runs student code `f`, catching a panic (`Err`, the message printed by the panic hook)
/// so that the test can say what should have happened; the panic of a `todo!()` goes through
/// unchanged, so that an unstarted exercise reads as such.
fn guarded<T>(f: impl FnOnce() -> T) -> Result<T, String> {
    catch_unwind(AssertUnwindSafe(f)).map_err(|payload| {
        let msg = payload
            .downcast_ref::<&str>()
            .map(|s| s.to_string())
            .or_else(|| payload.downcast_ref::<String>().cloned())
            .unwrap_or_default();
        if msg.starts_with("not yet implemented") {
            resume_unwind(payload);
        }
        msg
    })
}

/// Parses one line, failing with the error.
fn parsed(line: &str) -> Mapping {
    match guarded(|| parse_line(line)) {
        Ok(Ok(m)) => m,
        Ok(Err(e)) => panic!("parse_line({line:?}) failed: {e}"),
        Err(msg) => panic!("parse_line({line:?}) panicked: {msg}"),
    }
}

#[test]
fn parse_reads_every_field() {
    let line =
        "55d0c8a1e000-55d0c8a3f000 r-xp 0001c000 fd:01 1183944                    /usr/bin/cat";
    let m = parsed(line);
    let want = Mapping {
        start: 0x55d0_c8a1_e000,
        end: 0x55d0_c8a3_f000,
        perms: "r-xp".into(),
        offset: 0x1c000,
        dev: "fd:01".into(),
        inode: 1_183_944,
        pathname: "/usr/bin/cat".into(),
    };
    assert_eq!(
        m, want,
        "parse_line({line:?}): the fields are the range (two hex numbers), perms, offset (hex), dev (major:minor), \
         inode (decimal) and the pathname"
    );
}

#[test]
fn parse_keeps_the_whole_pathname() {
    for path in [
        "/tmp/my file (deleted)",
        "/home/a b/lib two.so",
        "/x  y",
        "/opt/v1.2/b (deleted)",
    ] {
        let line = format!(
            "7f3a12000000-7f3a12001000 rw-s 00000000 00:2a 77                         {path}"
        );
        let m = parsed(&line);
        assert_eq!(
            m.pathname, path,
            "parse_line({line:?}): the pathname is the whole rest of the line after the inode and its padding, \
             spaces and ` (deleted)` included; splitting on whitespace and taking the 6th field cuts it at the first \
             space"
        );
    }
}

#[test]
fn parse_an_anonymous_line() {
    for line in [
        "7ffd6a1f0000-7ffd6a212000 rw-p 00000000 00:00 0",
        "7ffd6a1f0000-7ffd6a212000 rw-p 00000000 00:00 0 ",
        "7ffd6a1f0000-7ffd6a212000 rw-p 00000000 00:00 0                          ",
    ] {
        let m = parsed(line);
        assert_eq!(
            (m.start, m.end, m.inode, m.pathname.as_str()),
            (0x7ffd_6a1f_0000, 0x7ffd_6a21_2000, 0, ""),
            "parse_line({line:?}): an anonymous mapping has inode 0 and no pathname (an empty string)"
        );
    }
    let m =
        parsed("7ffd6a1f0000-7ffd6a212000 rw-p 00000000 00:00 0                          [stack]");
    assert_eq!(
        m.pathname, "[stack]",
        "a pseudo-name like [stack] is the pathname"
    );
}

#[test]
fn parse_rejects_malformed_lines() {
    for line in [
        "garbage",
        "7f00-zz00 rw-p 00000000 00:00 0",
        "7f00 rw-p 00000000 00:00 0",
        "7f00-7f10 rw-p",
        "7f00-7f10 rw-p 00000000 00:00",
        "7f00-7f10 rw-p xyz 00:00 0",
        "7f00-7f10 rw-p 00000000 00:00 nine",
        "",
    ] {
        match guarded(|| parse_line(line)) {
            Ok(Err(e)) if e.kind() == io::ErrorKind::InvalidData => {}
            Ok(Err(e)) => panic!(
                "parse_line({line:?}) failed with {:?} ({e}); a malformed line is InvalidData",
                e.kind()
            ),
            Ok(Ok(m)) => panic!(
                "parse_line({line:?}) accepted a malformed line as {m:?}; it should fail with InvalidData"
            ),
            Err(_) => panic!(
                "parse_line({line:?}) panicked: bad input gets an error (InvalidData), never a panic"
            ),
        }
    }
    match guarded(|| parse_maps("7f00-7f10 rw-p 00000000 00:00 0\nnot a mapping\n")) {
        Ok(Err(e)) if e.kind() == io::ErrorKind::InvalidData => {}
        other => panic!(
            "parse_maps with one malformed line must fail with InvalidData, got {:?}",
            other.map(|r| r.map(|v| v.len()))
        ),
    }
}

/// A line as the kernel prints it (show_map_vma: the pathname padded to column 73).
fn kernel_format(m: &Mapping) -> String {
    let head = format!(
        "{:08x}-{:08x} {} {:08x} {} {} ",
        m.start, m.end, m.perms, m.offset, m.dev, m.inode
    );
    if m.pathname.is_empty() {
        head
    } else {
        format!(
            "{head}{:pad$}{}",
            "",
            m.pathname,
            pad = 73usize.saturating_sub(head.len())
        )
    }
}

#[test]
fn parse_round_trips_what_the_kernel_prints() {
    let mapping = (
        0u64..1 << 46,
        1u64..1 << 20,
        "[r-][w-][x-][ps]",
        0u64..1 << 40,
        "[0-9a-f]{2}:[0-9a-f]{2}",
        0u64..1 << 40,
        prop_oneof![
            Just(String::new()),
            "/[a-z ().]{1,30}",
            Just("[heap]".to_owned())
        ],
    )
        .prop_map(
            |(start, len, perms, offset, dev, inode, pathname)| Mapping {
                start: start * PAGE,
                end: (start + len) * PAGE,
                perms,
                offset,
                dev,
                inode,
                pathname: pathname.trim_end().to_owned(),
            },
        );
    let config = Config {
        cases: 64,
        failure_persistence: None,
        ..Config::default()
    };
    let result = TestRunner::new(config).run(&proptest::collection::vec(mapping, 1..8), |maps| {
        let text: String = maps.iter().map(|m| kernel_format(m) + "\n").collect();
        let got = guarded(|| parse_maps(&text))
            .map_err(|_| TestCaseError::fail(format!("parse_maps panicked on:\n{text}")))?
            .map_err(|e| TestCaseError::fail(format!("parse_maps failed ({e}) on:\n{text}")))?;
        prop_assert_eq!(&got, &maps, "parse_maps on:\n{}", text);
        Ok(())
    });
    match result {
        Ok(()) => {}
        Err(TestError::Fail(why, _)) => panic!("{why}"),
        Err(e) => panic!("{e}"),
    }
}

// ---------------------------------------------------------------------------------------
// Classifying, from text: a layout with the executable where no fixed range expects it.
// ---------------------------------------------------------------------------------------

const EXE: &str = "/work/my kata/target/debug/deps/prog (deleted)";

fn synthetic() -> Vec<Mapping> {
    let text = format!(
        "00400000-00401000 rw-p 00000000 00:00 0 \n\
         00600000-00602000 rw-p 00000000 00:00 0 \n\
         5619e8a00000-5619e8a05000 r--p 00000000 fd:01 4242                       {EXE}\n\
         5619e8a05000-5619e8a20000 r-xp 00005000 fd:01 4242                       {EXE}\n\
         5619e8a20000-5619e8a28000 r--p 00020000 fd:01 4242                       {EXE}\n\
         5619e8a28000-5619e8a29000 r--p 00027000 fd:01 4242                       {EXE}\n\
         5619e8a29000-5619e8a2a000 rw-p 00028000 fd:01 4242                       {EXE}\n\
         5619e8a2a000-5619e8a40000 rw-p 00000000 00:00 0 \n\
         5619ea000000-5619ea021000 rw-p 00000000 00:00 0                          [heap]\n\
         7f51c0000000-7f51c0021000 rw-p 00000000 00:00 0 \n\
         7f51c4000000-7f51c4028000 r--p 00000000 fd:01 99                         /usr/lib/libc.so.6\n\
         7f51c4028000-7f51c41b0000 r-xp 00028000 fd:01 99                         /usr/lib/libc.so.6\n\
         7f51c41b0000-7f51c41b2000 rw-p 001b0000 fd:01 99                         /usr/lib/libc.so.6\n\
         7f51c41b2000-7f51c41c0000 rw-p 00000000 00:00 0 \n\
         7f51c41c0000-7f51c41c1000 ---p 00000000 00:00 0 \n\
         7f51c41c1000-7f51c43c1000 rw-p 00000000 00:00 0 \n\
         7ffc5d100000-7ffc5d121000 rw-p 00000000 00:00 0                          [stack]\n\
         7ffc5d1f0000-7ffc5d1f4000 r--p 00000000 00:00 0                          [vvar]\n\
         7ffc5d1f4000-7ffc5d1f6000 r-xp 00000000 00:00 0                          [vdso]\n\
         ffffffffff600000-ffffffffff601000 --xp 00000000 00:00 0                  [vsyscall]\n"
    );
    match guarded(|| parse_maps(&text)) {
        Ok(Ok(maps)) => maps,
        Ok(Err(e)) => panic!("parse_maps failed on a well-formed maps text ({e}):\n{text}"),
        Err(msg) => panic!("parse_maps panicked ({msg}) on a well-formed maps text:\n{text}"),
    }
}

fn check_synthetic(cases: &[(u64, Option<Region>, &str)]) {
    let maps = synthetic();
    for &(addr, want, why) in cases {
        let got = match guarded(|| classify(&maps, EXE, addr)) {
            Ok(got) => got,
            Err(msg) => panic!("classify(.., {addr:#x}) panicked: {msg}"),
        };
        assert_eq!(
            got,
            want,
            "classify(maps, {EXE:?}, {addr:#x}) returned {got:?}, not {want:?}: {why}\nThe maps:\n{}",
            synthetic()
                .iter()
                .map(kernel_format)
                .collect::<Vec<_>>()
                .join("\n")
        );
    }
}

#[test]
fn classify_a_synthetic_layout() {
    use Region::*;
    let exe = "the executable is found by its pathname wherever it was loaded (here at 0x5619e8a00000: PIE and ASLR), \
               not by fixed address ranges";
    check_synthetic(&[
        (0x5619_e8a0_6123, Some(Text), exe),
        (
            0x5619_e8a0_0010,
            Some(Rodata),
            "the executable's read-only mapping (headers, constants) is Rodata",
        ),
        (
            0x5619_e8a2_8800,
            Some(Rodata),
            "RELRO, made read-only after relocation, is Rodata",
        ),
        (
            0x5619_e8a2_9008,
            Some(Data),
            "the executable's writable file mapping is Data",
        ),
        (
            0x5619_e8a3_f000,
            Some(Bss),
            "the anonymous rw mapping right after the executable's data is Bss",
        ),
        (
            0x5619_ea00_0100,
            Some(Heap),
            "the mapping labelled [heap] is Heap",
        ),
        (
            0x0040_0800,
            Some(Mmap),
            "an anonymous mapping at a low address is Mmap: no fixed range is text or data",
        ),
        (
            0x0060_1000,
            Some(Mmap),
            "an anonymous mapping at a low address is Mmap: no fixed range is text or data",
        ),
        (
            0x7f51_c000_0040,
            Some(Mmap),
            "an anonymous mapping (a malloc arena) is Mmap, not Data: not every rw- mapping is data",
        ),
        (
            0x7f51_c402_9000,
            Some(Mmap),
            "a shared library's code is Mmap: only the executable's own is Text",
        ),
        (
            0x7f51_c41b_0010,
            Some(Mmap),
            "a shared library's rw- data is Mmap: not every rw- mapping is Data",
        ),
        (
            0x7f51_c41b_5000,
            Some(Mmap),
            "the anonymous mapping after libc's data is Mmap: Bss follows the executable's data only",
        ),
        (
            0x7f51_c42c_0000,
            Some(Mmap),
            "a thread's stack is an anonymous mapping: Mmap, not Stack (only [stack] is)",
        ),
        (
            0x7ffc_5d12_0ff8,
            Some(Stack),
            "the mapping labelled [stack] is Stack",
        ),
        (0x7ffc_5d1f_1000, Some(Kernel), "[vvar] is Kernel"),
        (0x7ffc_5d1f_4000, Some(Kernel), "[vdso] is Kernel"),
        (0xffff_ffff_ff60_0400, Some(Kernel), "[vsyscall] is Kernel"),
        (0x5619_e8a4_0000, None, END_EXCLUDED),
        (
            0x5619_e9a0_0000,
            None,
            "an address in no mapping has no region",
        ),
        (0, None, "an address in no mapping has no region"),
        (u64::MAX, None, "an address in no mapping has no region"),
    ]);
}

#[test]
fn classify_excludes_the_end_address() {
    check_synthetic(&[
        (0x0040_1000, None, END_EXCLUDED),
        (0x7ffc_5d12_1000, None, END_EXCLUDED),
        (0x5619_ea02_1000, None, END_EXCLUDED),
        (0x5619_e8a2_a000, Some(Region::Bss), END_EXCLUDED),
        (
            0x5619_e8a2_9fff,
            Some(Region::Data),
            "the last byte before the end is still inside",
        ),
    ]);
}

// ---------------------------------------------------------------------------------------
// This process: addresses the test picks.
// ---------------------------------------------------------------------------------------

#[test]
fn parse_reads_the_real_maps() {
    isolated(|| {
        let text = maps_text();
        let maps = student(|| parse_maps(&text))
            .unwrap_or_else(|e| panic!("parse_maps of /proc/self/maps failed: {e}"));
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(
            maps.len(),
            lines.len(),
            "parse_maps should give one mapping per line of /proc/self/maps"
        );
        for (m, line) in maps.iter().zip(&lines) {
            let range = format!("{:x}-{:x}", m.start, m.end);
            assert!(
                line.starts_with(&format!("{range} {}", m.perms)),
                "parse_maps read {range} {} from the line {line:?}",
                m.perms
            );
            assert!(
                line.trim_end().ends_with(&m.pathname),
                "the pathname {:?} is not the end of {line:?}",
                m.pathname
            );
        }
        let exe = fs::read_link("/proc/self/exe").expect("readlink /proc/self/exe");
        let text_addr = a_function as *const () as usize as u64;
        let m = maps
            .iter()
            .find(|m| m.start <= text_addr && text_addr < m.end)
            .expect("a mapping holds a function");
        assert_eq!(
            m.pathname,
            exe.to_string_lossy(),
            "the mapping of the test's own code should carry the executable's path (readlink /proc/self/exe)"
        );
    });
}

#[inline(never)]
fn a_function() -> u64 {
    black_box(42)
}

#[test]
fn a_function_is_text() {
    isolated(|| {
        let addr = a_function as *const () as usize as u64;
        let seg = exe_segment(addr);
        assert!(
            seg.flags & libc::PF_X != 0,
            "test premise: the function is in an executable segment"
        );
        expect_region(
            addr,
            Some(Region::Text),
            "a function of the executable",
            "the ELF program headers put it in the executable's PF_X segment, which the kernel maps r-x from the \
             executable's file. Find the executable by its pathname (readlink /proc/self/exe), not by a fixed address: \
             a PIE executable loads wherever ASLR puts it",
        );
    });
}

#[test]
fn an_initialised_static_is_data() {
    isolated(|| {
        let addr = INITIALISED.as_ptr() as u64;
        assert_eq!(INITIALISED.load(Ordering::Relaxed), 0x5eed_5eed_5eed_5eed);
        let seg = exe_segment(addr);
        assert!(
            seg.flags & libc::PF_W != 0 && addr < seg.file_end,
            "test premise: the initialised static is in the file part of a writable segment: {seg:x?}"
        );
        expect_region(
            addr,
            Some(Region::Data),
            "an initialised static",
            "its bytes come from the executable's file (inside p_filesz of a PF_W segment), so it lies in the \
             executable's writable file mapping",
        );
    });
}

#[test]
fn a_zeroed_static_is_bss() {
    isolated(|| {
        let addr = ZEROED[ZEROED.len() - 1].as_ptr() as u64;
        let seg = exe_segment(addr);
        let anon_start = seg.file_end.div_ceil(PAGE) * PAGE;
        assert!(
            seg.flags & libc::PF_W != 0 && addr >= anon_start && addr < seg.mem_end,
            "test premise: the end of the 256 KiB zeroed static lies past the file's pages of its segment: {seg:x?}"
        );
        // The premise, from the kernel: an anonymous mapping (inode 0) holds it. In the rare
        // layout where brk starts right after bss, the kernel merges the two and labels it [heap].
        let line = line_of(addr);
        let want = if line.ends_with("[heap]") {
            Region::Heap
        } else {
            Region::Bss
        };
        expect_region(
            addr,
            Some(want),
            "the end of a 256 KiB zeroed static",
            "a zeroed static takes no room in the file (it is past p_filesz of the PF_W segment): the kernel maps it \
             as the anonymous rw mapping that starts where the executable's writable file mapping ends. Only that \
             mapping is Bss; other anonymous mappings are Mmap",
        );
    });
}

#[test]
fn a_read_only_static_is_rodata() {
    isolated(|| {
        let addr = READ_ONLY.as_ptr() as u64 + 7;
        assert_eq!(black_box(&READ_ONLY)[0], b'c');
        let seg = exe_segment(addr);
        assert!(
            seg.flags & (libc::PF_W | libc::PF_X) == 0,
            "test premise: the read-only static is in a segment neither writable nor executable: {seg:x?}"
        );
        expect_region(
            addr,
            Some(Region::Rodata),
            "an immutable static",
            "it is in the executable's read-only segment (no PF_W, no PF_X), mapped r-- from the executable's file",
        );
    });
}

#[test]
fn sbrk_memory_is_heap() {
    isolated(|| {
        // SAFETY: sbrk moves the break up by one page; malloc copes with a foreign sbrk, and
        // the memory is never freed back (the body process ends soon).
        let old = unsafe { libc::sbrk(PAGE as libc::intptr_t) };
        assert!(
            old as isize != -1,
            "test premise: sbrk failed: {}",
            io::Error::last_os_error()
        );
        let addr = old as u64 + 100;
        let line = line_of(addr);
        assert!(
            line.ends_with("[heap]"),
            "test premise: the kernel labels the brk memory [heap]: {line}"
        );
        expect_region(
            addr,
            Some(Region::Heap),
            "memory from sbrk(2)",
            "brk(2) memory is the mapping the kernel labels [heap]",
        );
    });
}

#[test]
fn a_small_box_is_where_malloc_put_it() {
    isolated(|| {
        let small = Box::new([7u8; 48]);
        let addr = small.as_ptr() as u64;
        let line = line_of(addr);
        let inode = line.split_whitespace().nth(4).unwrap_or("?");
        assert_eq!(
            inode, "0",
            "test premise: a Box is in an anonymous mapping or the heap: {line}"
        );
        let want = if line.ends_with("[heap]") {
            Region::Heap
        } else {
            Region::Mmap
        };
        expect_region(
            addr,
            Some(want),
            "a 48-byte Box",
            "malloc serves a small allocation of the main thread from the brk heap ([heap], Heap), and one of another \
             thread from that thread's arena, an anonymous mapping (Mmap). This body runs on a copy of a test thread, \
             so the kernel's line decides",
        );
        drop(black_box(small));
    });
}

#[test]
fn a_big_allocation_is_mmap() {
    isolated(|| {
        let big = vec![0u8; 40 << 20];
        let addr = big.as_ptr() as u64 + (20 << 20);
        let line = line_of(addr);
        assert!(
            line.split_whitespace().nth(4) == Some("0") && !line.ends_with("[heap]"),
            "test premise: malloc mapped 40 MiB on its own (anonymous, not [heap]): {line}"
        );
        expect_region(
            addr,
            Some(Region::Mmap),
            "the middle of a 40 MiB Vec",
            "malloc serves an allocation above its mmap threshold (128 KiB at first, never more than 32 MiB) with an \
             anonymous mmap of its own: an anonymous mapping that is neither [heap] nor right after the executable's \
             data is Mmap, not Bss, Heap or Data",
        );
        drop(black_box(big));
    });
}

#[test]
fn your_own_mmap_is_mmap() {
    isolated(|| {
        let len = NonZeroUsize::new(3 * PAGE as usize).unwrap();
        // SAFETY: a fresh private anonymous mapping, unmapped below; nothing else refers to it.
        let anon = unsafe {
            mmap_anonymous(
                None,
                len,
                ProtFlags::PROT_READ | ProtFlags::PROT_WRITE,
                MapFlags::MAP_PRIVATE,
            )
        }
        .expect("mmap");
        let addr = anon.as_ptr() as u64;
        expect_region(
            addr + PAGE,
            Some(Region::Mmap),
            "an anonymous rw- mapping the test made with mmap(2)",
            "an anonymous mapping of your own is Mmap: it is not Data (not every rw- mapping is data) nor Bss (Bss is \
             only the anonymous mapping right after the executable's data)",
        );
        let path = scratch_dir().join("a mapped file");
        fs::write(&path, vec![1u8; PAGE as usize]).expect("write the scratch file");
        let file = fs::File::open(&path).expect("open the scratch file");
        // SAFETY: a private read-only mapping of a file the test owns; unmapped below.
        let mapped = unsafe {
            mmap(
                None,
                NonZeroUsize::new(PAGE as usize).unwrap(),
                ProtFlags::PROT_READ,
                MapFlags::MAP_PRIVATE,
                &file,
                0,
            )
        }
        .expect("mmap the file");
        expect_region(
            mapped.as_ptr() as u64 + 10,
            Some(Region::Mmap),
            "a file (not the executable) the test mapped",
            "a file mapping that is not the executable is Mmap",
        );
        // SAFETY: both mappings were made above and nothing refers to them any more.
        unsafe {
            munmap(anon, len.get()).expect("munmap");
            munmap(mapped, PAGE as usize).expect("munmap");
        }
    });
}

#[test]
fn a_library_data_is_mmap() {
    isolated(|| {
        let objects = loaded_objects();
        let (name, seg) = objects
            .iter()
            .filter(|(name, _)| name.contains("libc.so"))
            .find_map(|(name, segs)| {
                segs.iter()
                    .find(|s| s.flags & libc::PF_W != 0)
                    .map(|s| (name.clone(), s.clone()))
            })
            .expect("test premise: libc has a writable segment");
        // The last page of its file part is never RELRO (RELRO ends before the data proper).
        let addr = (seg.file_end - 1) / PAGE * PAGE;
        let line = line_of(addr);
        assert!(
            line.contains(" rw-p ") && line.contains("libc.so"),
            "test premise: libc's data is rw-p: {line}"
        );
        expect_region(
            addr,
            Some(Region::Mmap),
            &format!("{name}'s writable data"),
            "a shared library's rw- data is a file mapping that is not the executable: Mmap. Not every rw- mapping \
             is Data; Data is the executable's own",
        );
    });
}

#[test]
fn the_initial_stack_is_stack() {
    isolated(|| {
        // SAFETY: getauxval only reads the auxiliary vector.
        let random = unsafe { libc::getauxval(libc::AT_RANDOM) };
        assert!(
            random != 0,
            "test premise: the auxiliary vector has AT_RANDOM"
        );
        let line = line_of(random);
        assert!(
            line.ends_with("[stack]"),
            "test premise: AT_RANDOM points into [stack]: {line}"
        );
        expect_region(
            random,
            Some(Region::Stack),
            "AT_RANDOM's 16 bytes, which execve(2) put on the initial stack",
            "the main thread's stack is the mapping the kernel labels [stack]",
        );
    });
}

#[test]
fn a_local_of_the_test_thread() {
    isolated(|| {
        let local = black_box(0x1234u64);
        let addr = &raw const local as u64;
        // Which stack this is, from the thread library: the test body runs on a fork of
        // libtest's thread, whose stack glibc mmapped.
        let line = line_of(addr);
        let (want, why) = if line.ends_with("[stack]") {
            (
                Region::Stack,
                "this thread runs on the main stack, which the kernel labels [stack]",
            )
        } else {
            (
                Region::Mmap,
                "this local lives on a thread's stack, which pthread_create mmapped: an anonymous mapping the kernel \
                 does not label. Only the main thread's stack is [stack]; a thread's stack is Mmap. Do not find the \
                 stack from where your own locals are",
            )
        };
        expect_region(
            addr,
            Some(want),
            "a local variable of the thread running the test",
            why,
        );
        black_box(&local);
    });
}

#[test]
fn the_vdso_is_kernel() {
    isolated(|| {
        // SAFETY: getauxval only reads the auxiliary vector.
        let vdso = unsafe { libc::getauxval(libc::AT_SYSINFO_EHDR) };
        assert!(
            vdso != 0,
            "test premise: the auxiliary vector has AT_SYSINFO_EHDR"
        );
        let line = line_of(vdso);
        assert!(
            line.ends_with("[vdso]"),
            "test premise: AT_SYSINFO_EHDR points into [vdso]: {line}"
        );
        expect_region(
            vdso + 16,
            Some(Region::Kernel),
            "the vDSO's ELF header",
            "[vdso] is a page the kernel provides: Kernel",
        );
    });
}

#[test]
fn unmapped_addresses_have_no_region() {
    isolated(|| {
        let len = NonZeroUsize::new(3 * PAGE as usize).unwrap();
        // SAFETY: a fresh private anonymous mapping; the test unmaps its middle page, then the rest.
        let map = unsafe {
            mmap_anonymous(
                None,
                len,
                ProtFlags::PROT_READ | ProtFlags::PROT_WRITE,
                MapFlags::MAP_PRIVATE,
            )
        }
        .expect("mmap");
        let start = map.as_ptr() as u64;
        // SAFETY: the middle page of the mapping made above.
        unsafe { munmap(map.byte_add(PAGE as usize), PAGE as usize) }
            .expect("munmap the middle page");
        assert!(
            kernel_line(start + PAGE).is_none(),
            "test premise: the middle page is unmapped"
        );
        expect_region(
            start + PAGE,
            None,
            "the first byte of a page the test unmapped",
            END_EXCLUDED,
        );
        expect_region(
            start + PAGE + 100,
            None,
            "an address inside a page the test unmapped",
            "no mapping holds it",
        );
        expect_region(
            start + PAGE - 1,
            Some(Region::Mmap),
            "the last byte before the hole",
            "it is inside the first page",
        );
        expect_region(
            0,
            None,
            "address 0",
            "nothing is mapped at 0 (vm.mmap_min_addr)",
        );
        // SAFETY: the two pages left of the mapping made above.
        unsafe {
            munmap(map, PAGE as usize).expect("munmap");
            munmap(map.byte_add(2 * PAGE as usize), PAGE as usize).expect("munmap");
        }
    });
}
