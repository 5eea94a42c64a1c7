//! # Where an address lives (地址空间): reading `/proc/self/maps`
//!
//! Every process has its own virtual address space (虚拟地址空间), and the kernel keeps it as a
//! list of **mappings** (VMAs, virtual memory areas): ranges of pages with one set of
//! permissions, each backed by a file or by nothing (anonymous, 匿名映射). The kernel shows the
//! list in `/proc/<pid>/maps`, one line per mapping, in ascending order (proc(5)):
//!
//! ```text
//! 5619e8a05000-5619e8a20000 r-xp 00005000 fd:01 4242        /usr/bin/prog
//! ^start       ^end         ^perms ^offset ^dev ^inode      ^pathname
//! ```
//!
//! - the range is `start..end` in hexadecimal, **end excluded**: `end` is the first byte after;
//! - `perms` is `r`/`w`/`x` or `-`, then `p` (private, copy-on-write) or `s` (shared);
//! - `offset` (hex) is where in the file the mapping starts; `dev` (`major:minor`) and
//!   `inode` (decimal) name the file; both are 0 for an anonymous mapping;
//! - the **pathname** is everything else on the line after some padding spaces. It may hold
//!   spaces (`/tmp/my file`), end in ` (deleted)` when the file was removed, be a pseudo-name
//!   such as `[heap]`, `[stack]`, `[vdso]`, `[vvar]`, or be missing (anonymous). So it is *not*
//!   the 6th whitespace-separated word.
//!
//! ## The classic regions, and how they show up
//!
//! `execve(2)` maps the executable's ELF segments (see its program headers, `readelf -l`):
//!
//! - **text** (代码段): the code, mapped `r-x` from the executable's file;
//! - **rodata**: constants and string literals, plus the ELF headers and RELRO (data made
//!   read-only after the dynamic linker relocated it), mapped `r--`;
//! - **data** (数据段): initialised writable statics, mapped `rw-p` from the file;
//! - **bss**: zero-initialised statics. They take no room in the file, so beyond the last file
//!   page the kernel adds an *anonymous* `rw-p` mapping that starts exactly where the data
//!   mapping ends. (The start of bss may share the last file page with data: that part is in
//!   the file mapping and shows as data.)
//! - **heap** (堆): the memory `brk(2)`/`sbrk` grows, labelled `[heap]`. glibc's `malloc`, which
//!   Rust's allocator calls, serves small requests of the main thread from it. Requests above
//!   its mmap threshold (128 KiB at first) get an anonymous `mmap(2)` each, and other threads
//!   allocate from their own arenas, also anonymous mappings.
//! - **mmap** (内存映射区): everything else that `mmap` made: shared libraries (their code and
//!   data alike), mapped files, anonymous memory, and the stacks of threads other than the main
//!   one, which `pthread_create` maps and the kernel does not label;
//! - **stack** (栈): the main thread's stack, labelled `[stack]`, where `execve` also put the
//!   arguments, environment and auxiliary vector;
//! - `[vdso]`, `[vvar]`, `[vsyscall]`: pages the kernel provides (fast `clock_gettime`, ...).
//!
//! Where all this is is not fixed: a PIE executable loads at a random address (ASLR,
//! `/proc/sys/kernel/randomize_va_space`), and so do the heap, libraries and stack. The old
//! "text at 0x400000" is only true of non-PIE programs. Find the executable by its pathname:
//! `readlink /proc/self/exe` gives the same text as its lines in maps (` (deleted)` included).
//!
//! ## What you write
//!
//! - [`parse_line`] and [`parse_maps`]: text to [`Mapping`]s. Bad input is an error of kind
//!   `InvalidData`, never a panic.
//! - [`classify`]: the [`Region`] of an address among parsed mappings, given the executable's
//!   pathname, by these rules: the mapping with `start <= addr < end` (none: `None`); labelled
//!   `[heap]`: Heap; `[stack]`: Stack; `[vdso]`, `[vvar]`, `[vvar_vclock]`, `[vsyscall]`: Kernel;
//!   the executable's pathname: Text if executable, else Data if writable, else Rodata; an
//!   anonymous (inode 0, no pathname) `rw` mapping that starts exactly at the end of the
//!   executable's writable mapping just before it: Bss; anything else: Mmap.
//! - [`region_of`]: the same for this process, reading `/proc/self/maps` and `/proc/self/exe`.
//!
//! The tests pick the addresses (a function, statics, brk memory, their own mmaps, pointers
//! into the initial stack and the vDSO) and know their regions from the ELF program headers
//! and from what they did, not from your code.
//!
//! Man pages: proc(5) (`/proc/<pid>/maps`), mmap(2), brk(2), execve(2), elf(5),
//! getauxval(3), dl_iterate_phdr(3), malloc(3) and mallopt(3) (`M_MMAP_THRESHOLD`).
use std::io;

/// One line of `/proc/<pid>/maps`: a mapping (a VMA, virtual memory area) of the process.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mapping {
    /// The first address of the mapping.
    pub start: u64,
    /// The first address past the mapping: the range is `start..end`, `end` excluded.
    pub end: u64,
    /// The four permission letters, for example `r-xp` or `rw-s`.
    pub perms: String,
    /// The offset in the mapped file, in bytes (0 for an anonymous mapping).
    pub offset: u64,
    /// The device of the mapped file, `major:minor` in hexadecimal (`00:00` when anonymous).
    pub dev: String,
    /// The inode of the mapped file (0 when anonymous).
    pub inode: u64,
    /// The rest of the line: a file's path (which may hold spaces and end in ` (deleted)`), a
    /// pseudo-name such as `[heap]`, `[stack]`, `[vdso]`, or empty for an anonymous mapping.
    pub pathname: String,
}

/// What part of the address space an address belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Region {
    /// The executable's code: its file mapping with `x` permission.
    Text,
    /// The executable's read-only data: its file mappings that are neither writable nor
    /// executable (constants, string literals, ELF headers, RELRO).
    Rodata,
    /// The executable's initialised data: its writable file mapping.
    Data,
    /// The executable's zeroed data beyond the file: the anonymous writable mapping that
    /// starts exactly where the executable's last writable file mapping ends.
    Bss,
    /// The break heap, grown with brk(2): the mapping the kernel labels `[heap]`.
    Heap,
    /// Any other mapping: anonymous ones (big allocations, threads' stacks and malloc arenas,
    /// your own mmap) and files that are not the executable (shared libraries, mapped files).
    Mmap,
    /// The main thread's stack: the mapping the kernel labels `[stack]`.
    Stack,
    /// Pages the kernel provides: `[vdso]`, `[vvar]`, `[vvar_vclock]`, `[vsyscall]`.
    Kernel,
}

/// Parses one line of `/proc/<pid>/maps`: the range (two hex numbers joined by `-`), perms
/// (4 letters), offset (hex), dev (`major:minor`), inode (decimal), and the pathname, which is
/// the rest of the line after the spaces that follow the inode (empty if nothing follows).
///
/// A line missing a field, or with a field that does not parse, is an `InvalidData` error.
pub fn parse_line(_line: &str) -> io::Result<Mapping> {
    todo!()
}

/// Parses the text of a `/proc/<pid>/maps` file: one [`Mapping`] per non-empty line, in order.
/// Any malformed line makes the whole parse fail with `InvalidData`.
pub fn parse_maps(_text: &str) -> io::Result<Vec<Mapping>> {
    todo!()
}

/// Classifies `addr` among `maps` (in the kernel's order, ascending), where `exe` is the
/// pathname the executable's mappings carry, by the rules in the module's documentation.
/// Returns `None` when no mapping holds `addr`.
pub fn classify(_maps: &[Mapping], _exe: &str, _addr: u64) -> Option<Region> {
    todo!()
}

/// Classifies `addr` in this process: reads `/proc/self/maps` and the executable's path
/// (`readlink /proc/self/exe`), then calls [`classify`]. Errors reading either are returned.
pub fn region_of(_addr: u64) -> io::Result<Option<Region>> {
    todo!()
}
