//! # Where an address lives (地址空间): reading `/proc/self/maps`
//!
//! Reference solution. See `exercises/memory/address_space.rs` for the lesson.
use std::fs;
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

fn bad(line: &str, what: &str) -> io::Error {
    io::Error::new(
        io::ErrorKind::InvalidData,
        format!("bad maps line ({what}): {line:?}"),
    )
}

/// Splits off the next field: the text up to the next space, and the rest after it.
fn field<'a>(rest: &mut &'a str, line: &str, what: &str) -> io::Result<&'a str> {
    let text = rest.trim_start_matches(' ');
    if text.is_empty() {
        return Err(bad(line, what));
    }
    let (word, after) = text.split_once(' ').unwrap_or((text, ""));
    *rest = after;
    Ok(word)
}

/// Parses one line of `/proc/<pid>/maps`.
pub fn parse_line(line: &str) -> io::Result<Mapping> {
    let mut rest = line;
    let range = field(&mut rest, line, "address range")?;
    let (start, end) = range
        .split_once('-')
        .ok_or_else(|| bad(line, "address range"))?;
    let hex = |s: &str, what| u64::from_str_radix(s, 16).map_err(|_| bad(line, what));
    let start = hex(start, "start address")?;
    let end = hex(end, "end address")?;
    if end < start {
        return Err(bad(line, "end before start"));
    }
    let perms = field(&mut rest, line, "permissions")?;
    if perms.len() != 4 {
        return Err(bad(line, "permissions"));
    }
    let offset = hex(field(&mut rest, line, "offset")?, "offset")?;
    let dev = field(&mut rest, line, "device")?;
    if !dev.contains(':') {
        return Err(bad(line, "device"));
    }
    let inode = field(&mut rest, line, "inode")?
        .parse()
        .map_err(|_| bad(line, "inode"))?;
    // Everything after the padding is the pathname, spaces and all.
    let pathname = rest.trim_start_matches(' ').to_owned();
    Ok(Mapping {
        start,
        end,
        perms: perms.to_owned(),
        offset,
        dev: dev.to_owned(),
        inode,
        pathname,
    })
}

/// Parses the text of a `/proc/<pid>/maps` file, one mapping per non-empty line.
pub fn parse_maps(text: &str) -> io::Result<Vec<Mapping>> {
    text.lines()
        .filter(|l| !l.trim().is_empty())
        .map(parse_line)
        .collect()
}

/// Whether permission letter `i` of `m` is `letter`.
fn perm(m: &Mapping, i: usize, letter: u8) -> bool {
    m.perms.as_bytes().get(i) == Some(&letter)
}

/// Classifies `addr` among `maps` (in the kernel's order, ascending), where `exe` is the
/// pathname the executable's mappings carry. `None` when no mapping holds `addr`.
pub fn classify(maps: &[Mapping], exe: &str, addr: u64) -> Option<Region> {
    let i = maps.iter().position(|m| m.start <= addr && addr < m.end)?;
    let m = &maps[i];
    let region = match m.pathname.as_str() {
        "[heap]" => Region::Heap,
        "[stack]" => Region::Stack,
        "[vdso]" | "[vvar]" | "[vvar_vclock]" | "[vsyscall]" => Region::Kernel,
        p if p == exe => {
            if perm(m, 2, b'x') {
                Region::Text
            } else if perm(m, 1, b'w') {
                Region::Data
            } else {
                Region::Rodata
            }
        }
        // The mistake: any anonymous rw mapping taken for bss, wherever it is.
        "" if m.inode == 0 && m.perms.starts_with("rw") => Region::Bss,
        _ => Region::Mmap,
    };
    Some(region)
}

/// Classifies `addr` in this process: reads `/proc/self/maps` and the executable's path
/// (`/proc/self/exe`), then calls [`classify`].
pub fn region_of(addr: u64) -> io::Result<Option<Region>> {
    let exe = fs::read_link("/proc/self/exe")?;
    let exe = exe
        .to_str()
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidData, "executable path not UTF-8"))?;
    let maps = parse_maps(&fs::read_to_string("/proc/self/maps")?)?;
    Ok(classify(&maps, exe, addr))
}
