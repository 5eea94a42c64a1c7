//! Readers for the kernel's own account of a process: `/proc/<pid>/stat`, `status`, `fd`,
//! `fdinfo`, `smaps`, `task` (and each thread's `stat` and `syscall`) and `mountinfo`. See
//! proc(5).
//!
//! Tests use these to observe instead of trusting what the student's code claims: a zombie
//! is the letter `Z` in `stat`, a daemon's session is a field of `stat`, a pipe end is an fd
//! link `pipe:[inode]` opened read-only or write-only.
use std::collections::BTreeMap;
use std::fs;
use std::io;
use std::os::fd::AsRawFd;

use nix::dir::Dir;
use nix::fcntl::OFlag;
use nix::sys::stat::{FileStat, Mode, fstat, stat as stat_path};
use nix::unistd::Pid;

/// The fields of `/proc/<pid>/stat` the kit needs, parsed the safe way.
///
/// The command name (field 2) is wrapped in parentheses but may itself hold spaces and `)`:
/// a process can call itself `a) Z (b` with `prctl(PR_SET_NAME)`. The only sound parse takes
/// the name up to the *last* `)` and splits the rest on spaces.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stat {
    pub pid: i32,
    /// The command name, at most 15 bytes, as `prctl(PR_SET_NAME)` or exec left it.
    pub comm: String,
    /// `R` running, `S` sleeping, `D` disk sleep, `Z` zombie, `T` stopped, `t` traced, `X` dead...
    pub state: char,
    pub ppid: i32,
    pub pgrp: i32,
    pub session: i32,
    /// The controlling terminal as a device number; 0 means none.
    pub tty_nr: i32,
    /// The kernel's flags for the task (field 9): `PF_EXITING` (0x4) once it has begun to exit.
    pub flags: u32,
    /// Minor page faults: satisfied without I/O (first touch, copy-on-write).
    pub minflt: u64,
    /// Major page faults: needed I/O.
    pub majflt: u64,
    pub num_threads: i64,
    /// When the process started, in clock ticks after boot (field 22): with the pid, it names
    /// one process for good, since a pid can be reused once its process is reaped.
    pub starttime: u64,
    /// The signal the parent gets when this process ends (field 38): SIGCHLD for a fork, what
    /// `clone` was given otherwise.
    pub exit_signal: i32,
}

impl Stat {
    /// Parses the text of a `stat` file.
    pub fn parse(text: &str) -> io::Result<Stat> {
        let bad = |what: &str| {
            io::Error::new(
                io::ErrorKind::InvalidData,
                format!("bad stat ({what}): {text:?}"),
            )
        };
        let open = text.find('(').ok_or_else(|| bad("no `(`"))?;
        let close = text.rfind(')').ok_or_else(|| bad("no `)`"))?;
        if close < open {
            return Err(bad("`)` before `(`"));
        }
        let pid = text[..open].trim().parse().map_err(|_| bad("pid"))?;
        let comm = text[open + 1..close].to_owned();
        // Fields after the name, numbered as in proc(5) starting at field 3 (state).
        let rest: Vec<&str> = text[close + 1..].split_whitespace().collect();
        let field =
            |n: usize| -> io::Result<&str> { rest.get(n - 3).copied().ok_or_else(|| bad("short")) };
        let num = |n: usize| -> io::Result<i64> { field(n)?.parse().map_err(|_| bad("number")) };
        Ok(Stat {
            pid,
            comm,
            state: field(3)?.chars().next().ok_or_else(|| bad("state"))?,
            ppid: num(4)? as i32,
            pgrp: num(5)? as i32,
            session: num(6)? as i32,
            tty_nr: num(7)? as i32,
            flags: num(9)? as u32,
            minflt: num(10)? as u64,
            majflt: num(12)? as u64,
            num_threads: num(20)?,
            starttime: num(22)? as u64,
            exit_signal: num(38)? as i32,
        })
    }
}

/// Reads `/proc/<pid>/stat`.
pub fn stat(pid: Pid) -> io::Result<Stat> {
    Stat::parse(&fs::read_to_string(format!("/proc/{pid}/stat"))?)
}

/// The state letter of `pid`, or `None` once the process is gone (reaped).
pub fn state(pid: Pid) -> Option<char> {
    stat(pid).ok().map(|s| s.state)
}

/// `/proc/<pid>/status` as `key -> value` (`Umask`, `SigIgn`, `SigCgt`, `Threads`, ...).
#[derive(Debug, Clone, Default)]
pub struct Status(pub BTreeMap<String, String>);

impl Status {
    /// The value of one line, trimmed.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).map(String::as_str)
    }

    /// The file-creation mask (`Umask:` is octal).
    pub fn umask(&self) -> Option<u32> {
        u32::from_str_radix(self.get("Umask")?, 8).ok()
    }

    /// A signal mask line (`SigIgn`, `SigCgt`, `SigBlk`) as bits; signal N is bit N-1.
    pub fn signal_mask(&self, key: &str) -> Option<u64> {
        u64::from_str_radix(self.get(key)?, 16).ok()
    }
}

/// Reads `/proc/<pid>/status`.
pub fn status(pid: Pid) -> io::Result<Status> {
    let text = fs::read_to_string(format!("/proc/{pid}/status"))?;
    let map = text
        .lines()
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.to_owned(), v.trim().to_owned()))
        .collect();
    Ok(Status(map))
}

/// One open file descriptor of a process.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fd {
    pub fd: i32,
    /// What the `/proc/<pid>/fd/<n>` link points to: a path, `pipe:[inode]`, `socket:[inode]`...
    pub target: String,
    /// The access mode from `fdinfo`: `O_RDONLY` (0), `O_WRONLY` (1) or `O_RDWR` (2).
    pub access: u32,
}

impl Fd {
    /// The pipe's inode if this fd is a pipe end (anonymous pipe or FIFO opened as `pipe:`).
    pub fn pipe_inode(&self) -> Option<u64> {
        self.target
            .strip_prefix("pipe:[")?
            .strip_suffix(']')?
            .parse()
            .ok()
    }
    /// True for the end a process may write to.
    pub fn writable(&self) -> bool {
        self.access == 1 || self.access == 2
    }
    /// True for the end a process may read from.
    pub fn readable(&self) -> bool {
        self.access == 0 || self.access == 2
    }
}

/// Lists the open fds of `pid` with their targets and access modes, sorted by number.
///
/// The listing never includes the fd that reads it: when the table read is this process's
/// own (`pid` is this process, or shares its fd table), the directory stream on
/// `/proc/<pid>/fd` is itself one of the fds listed, and it is left out. Every name is read
/// before anything else is opened, so the stream is the only such fd.
pub fn fds(pid: Pid) -> io::Result<Vec<Fd>> {
    fds_at(&format!("/proc/{pid}"))
}

/// The open fds of thread `tid` of process `pid` (see [`fds`]): what a process whose main
/// thread has exited still holds, since its own `/proc/<pid>/fd` is then empty.
pub fn task_fds(pid: Pid, tid: i32) -> io::Result<Vec<Fd>> {
    fds_at(&format!("/proc/{pid}/task/{tid}"))
}

/// [`fds`] of the process or thread directory `base` (`/proc/<pid>` or its `task/<tid>`).
fn fds_at(base: &str) -> io::Result<Vec<Fd>> {
    let path = format!("{base}/fd");
    let mut dir = Dir::open(
        path.as_str(),
        OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
        Mode::empty(),
    )?;
    let mut numbers = Vec::new();
    for entry in dir.iter() {
        if let Some(fd) = entry?
            .file_name()
            .to_str()
            .ok()
            .and_then(|s| s.parse().ok())
        {
            numbers.push(fd);
        }
    }
    // The stream's own entry has its number and, followed, leads to the very directory it
    // has open; in another process's table that number is an fd of theirs and is kept.
    let reader = dir.as_raw_fd();
    let identity = |st: FileStat| (st.st_dev, st.st_ino);
    let own = fstat(&dir).ok().map(identity);
    let mut out = Vec::new();
    for fd in numbers {
        let link = format!("{path}/{fd}");
        if fd == reader && own.is_some() && stat_path(link.as_str()).ok().map(identity) == own {
            continue;
        }
        // An fd can close between readdir and readlink: skip it.
        let Ok(target) = fs::read_link(&link) else {
            continue;
        };
        let access = fs::read_to_string(format!("{base}/fdinfo/{fd}"))
            .ok()
            .and_then(|info| {
                info.lines()
                    .find_map(|l| l.strip_prefix("flags:"))
                    .and_then(|f| u32::from_str_radix(f.trim(), 8).ok())
            })
            .map_or(0, |flags| flags & 0o3);
        out.push(Fd {
            fd,
            target: target.to_string_lossy().into_owned(),
            access,
        });
    }
    // Open until here, so that no other fd takes the stream's number during the comparison.
    drop(dir);
    out.sort_by_key(|f| f.fd);
    Ok(out)
}

/// One mapping of `/proc/<pid>/smaps` with its counters in kB (`Rss`, `Shared_Dirty`, ...).
#[derive(Debug, Clone, Default)]
pub struct Mapping {
    pub start: u64,
    pub end: u64,
    pub perms: String,
    pub path: String,
    pub kb: BTreeMap<String, u64>,
    /// The `VmFlags:` line's two-letter flags (`rd`, `wr`, `sh`, `nh` for no huge pages...).
    pub vm_flags: Vec<String>,
}

impl Mapping {
    /// A counter in kB, 0 when absent.
    pub fn kb(&self, key: &str) -> u64 {
        self.kb.get(key).copied().unwrap_or(0)
    }
    /// True when `addr` lies inside the mapping.
    pub fn contains(&self, addr: u64) -> bool {
        (self.start..self.end).contains(&addr)
    }
}

/// Reads `/proc/<pid>/smaps`.
pub fn smaps(pid: Pid) -> io::Result<Vec<Mapping>> {
    let text = fs::read_to_string(format!("/proc/{pid}/smaps"))?;
    let mut maps: Vec<Mapping> = Vec::new();
    for line in text.lines() {
        let mut words = line.split_whitespace();
        let first = words.next().unwrap_or_default();
        if let Some((start, end)) = first.split_once('-')
            && let (Ok(start), Ok(end)) =
                (u64::from_str_radix(start, 16), u64::from_str_radix(end, 16))
        {
            let perms = words.next().unwrap_or_default().to_owned();
            let path = words.nth(3).unwrap_or_default().to_owned();
            maps.push(Mapping {
                start,
                end,
                perms,
                path,
                kb: BTreeMap::new(),
                vm_flags: Vec::new(),
            });
        } else if first == "VmFlags:"
            && let Some(last) = maps.last_mut()
        {
            last.vm_flags = words.map(str::to_owned).collect();
        } else if let (Some(key), Some(last)) = (first.strip_suffix(':'), maps.last_mut())
            && let Some(Ok(value)) = words.next().map(str::parse)
        {
            last.kb.insert(key.to_owned(), value);
        }
    }
    Ok(maps)
}

/// The thread ids of `pid`, from `/proc/<pid>/task`.
pub fn threads(pid: Pid) -> io::Result<Vec<i32>> {
    let mut tids: Vec<i32> = fs::read_dir(format!("/proc/{pid}/task"))?
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok())
        .collect();
    tids.sort_unstable();
    Ok(tids)
}

/// Whether the process `s` describes still lives: it is not a zombie, or it is a zombie leader
/// whose other threads run on (see [`zombie_leader_threads`]). A process that is only a zombie
/// waits for its parent's waitpid(2); one that lives must be signalled.
pub fn alive(s: &Stat) -> bool {
    !matches!(s.state, 'Z' | 'X') || !zombie_leader_threads(s).is_empty()
}

/// The threads still running in a process whose main thread has exited, by tid; empty for a
/// live process and for a real zombie.
///
/// When the main thread of a process calls pthread_exit(3) (or the raw `exit` system call)
/// while another thread runs on, the kernel shows the leader as state `Z` and `Threads:` above
/// 1 in `status`, yet the process is alive: waitpid(2) cannot reap it until its last thread
/// ends, and a signal to its pid still reaches the whole thread group.
pub fn zombie_leader_threads(s: &Stat) -> Vec<i32> {
    if s.state != 'Z' {
        return Vec::new();
    }
    let pid = Pid::from_raw(s.pid);
    threads(pid)
        .unwrap_or_default()
        .into_iter()
        .filter(|&tid| tid != s.pid)
        .filter(|&tid| task_stat(pid, tid).is_ok_and(|t| !matches!(t.state, 'Z' | 'X')))
        .collect()
}

/// Reads `/proc/<pid>/task/<tid>/stat`: one thread's own state.
pub fn task_stat(pid: Pid, tid: i32) -> io::Result<Stat> {
    Stat::parse(&fs::read_to_string(format!("/proc/{pid}/task/{tid}/stat"))?)
}

/// The pids of the children of `pid`, sorted, from each of its threads' own list
/// (`/proc/<pid>/task/<tid>/children`, which needs `CONFIG_PROC_CHILDREN`); reads every process
/// on the machine, as [`children`] does, where those lists are missing.
pub fn child_pids(pid: Pid) -> Vec<i32> {
    let lists: Option<Vec<String>> = threads(pid).ok().and_then(|tids| {
        tids.iter()
            .map(|tid| fs::read_to_string(format!("/proc/{pid}/task/{tid}/children")).ok())
            .collect()
    });
    let mut kids: Vec<i32> = match lists {
        Some(lists) => lists
            .iter()
            .flat_map(|l| l.split_whitespace().filter_map(|p| p.parse().ok()))
            .collect(),
        None => children(pid).iter().map(|s| s.pid).collect(),
    };
    kids.sort_unstable();
    kids.dedup();
    kids
}

/// One line of `/proc/<pid>/cgroup`: which cgroup the process is in, in one hierarchy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CgroupLine {
    /// The hierarchy's id; 0 is the cgroup v2 (unified) hierarchy.
    pub hierarchy: u32,
    /// The v1 controllers bound to the hierarchy (`pids`, `memory`, `name=systemd`...);
    /// empty for v2.
    pub controllers: Vec<String>,
    /// The cgroup's path from the hierarchy's root, such as `/oskata-42`.
    pub path: String,
}

/// Reads `/proc/<pid>/cgroup` (see cgroups(7)). A zombie's reads `/` in every hierarchy.
pub fn cgroups(pid: Pid) -> io::Result<Vec<CgroupLine>> {
    parse_cgroups(&fs::read_to_string(format!("/proc/{pid}/cgroup"))?)
}

/// Reads `/proc/<pid>/task/<tid>/cgroup`: one thread's cgroups.
pub fn task_cgroups(pid: Pid, tid: i32) -> io::Result<Vec<CgroupLine>> {
    parse_cgroups(&fs::read_to_string(format!(
        "/proc/{pid}/task/{tid}/cgroup"
    ))?)
}

fn parse_cgroups(text: &str) -> io::Result<Vec<CgroupLine>> {
    Ok(text
        .lines()
        .filter_map(|l| {
            let mut parts = l.splitn(3, ':');
            let hierarchy = parts.next()?.parse().ok()?;
            let controllers = parts.next()?;
            Some(CgroupLine {
                hierarchy,
                controllers: controllers
                    .split(',')
                    .filter(|c| !c.is_empty())
                    .map(str::to_owned)
                    .collect(),
                path: parts.next()?.to_owned(),
            })
        })
        .collect())
}

/// Whether the environment `pid` was started with (`/proc/<pid>/environ`) holds `entry`
/// (`NAME=value`) exactly. False when it is not ours to read, or the process is gone.
pub fn environ_has(pid: Pid, entry: &str) -> bool {
    fs::read(format!("/proc/{pid}/environ"))
        .is_ok_and(|env| env.split(|&b| b == 0).any(|e| e == entry.as_bytes()))
}

/// The system call a thread is blocked in, from `/proc/<pid>/syscall` (or
/// `/proc/<pid>/task/<tid>/syscall`): its number and its six arguments.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Syscall {
    pub nr: i64,
    pub args: [u64; 6],
}

impl Syscall {
    fn parse(text: &str) -> Option<Syscall> {
        let mut words = text.split_whitespace();
        let nr = words.next()?.parse().ok()?;
        let mut args = [0u64; 6];
        for arg in &mut args {
            *arg = u64::from_str_radix(words.next()?.trim_start_matches("0x"), 16).ok()?;
        }
        Some(Syscall { nr, args })
    }
}

/// What the main thread of `pid` is blocked in, or `None` when it is running, not in a
/// syscall, gone, or not ours to read.
pub fn syscall(pid: Pid) -> Option<Syscall> {
    Syscall::parse(&fs::read_to_string(format!("/proc/{pid}/syscall")).ok()?)
}

/// Whether the main thread of `pid` is in user space, in no system call: `/proc/<pid>/syscall`
/// reads `-1 <sp> <pc>` then (and `running` while it is on a CPU, which tells nothing; read it
/// stopped). False when it cannot be read.
pub fn in_user_space(pid: Pid) -> bool {
    fs::read_to_string(format!("/proc/{pid}/syscall")).is_ok_and(|t| t.starts_with("-1 "))
}

/// Whether thread `tid` of process `pid` is in user space (see [`in_user_space`]).
pub fn thread_in_user_space(pid: Pid, tid: i32) -> bool {
    fs::read_to_string(format!("/proc/{pid}/task/{tid}/syscall"))
        .is_ok_and(|t| t.starts_with("-1 "))
}

/// What thread `tid` of process `pid` is blocked in (see [`syscall`]).
pub fn thread_syscall(pid: Pid, tid: i32) -> Option<Syscall> {
    Syscall::parse(&fs::read_to_string(format!("/proc/{pid}/task/{tid}/syscall")).ok()?)
}

/// The fd `pid` is blocked reading from, if it is asleep in a read-like call right now:
/// read(2), readv(2), pread(2) or splice(2) (what `std::io::copy` uses from a pipe).
///
/// Lets a test wait until a child has reached its `read` (and so has done everything before
/// it, such as closing the pipe end it does not use).
pub fn blocked_read_fd(pid: Pid) -> Option<i32> {
    let call = syscall(pid)?;
    let reads = [
        libc::SYS_read,
        libc::SYS_readv,
        libc::SYS_pread64,
        libc::SYS_preadv,
        libc::SYS_splice,
    ];
    reads.contains(&call.nr).then_some(call.args[0] as i32)
}

/// Whether `waiter` is asleep right now in a wait that `child` (one of its children) would
/// end: `wait4(2)` on the child's pid, on any child (-1), on its own process group (0) or on
/// the child's group (-pgid), or `waitid(2)` with `P_ALL`, `P_PID` or `P_PGID` that match
/// (or `P_PIDFD`, which cannot be resolved and counts). Reads `/proc/<waiter>/syscall`.
pub fn waits_for(waiter: Pid, child: &Stat) -> bool {
    if child.ppid != waiter.as_raw() {
        return false;
    }
    let Some(call) = syscall(waiter) else {
        return false;
    };
    let own_group = || stat(waiter).is_ok_and(|w| w.pgrp == child.pgrp);
    if call.nr == libc::SYS_wait4 {
        match call.args[0] as i64 as i32 {
            -1 => true,
            0 => own_group(),
            p if p > 0 => p == child.pid,
            p => -p == child.pgrp,
        }
    } else if call.nr == libc::SYS_waitid {
        let id = call.args[1] as i64 as i32;
        match call.args[0] as u32 {
            libc::P_ALL => true,
            libc::P_PID => id == child.pid,
            libc::P_PGID if id == 0 => own_group(),
            libc::P_PGID => id == child.pgrp,
            _ => true,
        }
    } else {
        false
    }
}

/// The current working directory of `pid` (`/proc/<pid>/cwd`).
pub fn cwd(pid: Pid) -> io::Result<std::path::PathBuf> {
    fs::read_link(format!("/proc/{pid}/cwd"))
}

/// One line of `/proc/<pid>/mountinfo` (proc(5)): a mount in the process's mount namespace.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mount {
    /// The mount's id, unique in its namespace while it is mounted.
    pub id: u64,
    /// The id of the mount it sits on.
    pub parent: u64,
    /// Where it is mounted, as the process sees its root, escapes (`\040` for a space) undone.
    pub point: std::path::PathBuf,
    /// The filesystem type (`tmpfs`, `mqueue`, `ext4`, ...).
    pub fstype: String,
    /// The source (device or name) the filesystem was mounted from.
    pub source: String,
}

impl Mount {
    /// Parses one mountinfo line; `None` for a line of another shape.
    pub fn parse(line: &str) -> Option<Mount> {
        let (left, right) = line.split_once(" - ")?;
        let mut l = left.split(' ');
        let id = l.next()?.parse().ok()?;
        let parent = l.next()?.parse().ok()?;
        let point = unescape(l.nth(2)?);
        let mut r = right.split(' ');
        Some(Mount {
            id,
            parent,
            point: std::path::PathBuf::from(
                <std::ffi::OsString as std::os::unix::ffi::OsStringExt>::from_vec(point),
            ),
            fstype: r.next()?.to_owned(),
            source: String::from_utf8_lossy(&unescape(r.next()?)).into_owned(),
        })
    }
}

/// Undoes mountinfo's octal escapes (`\040` space, `\011` tab, `\012` newline, `\134` `\`).
fn unescape(field: &str) -> Vec<u8> {
    let bytes = field.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let octal = bytes
            .get(i + 1..i + 4)
            .filter(|d| d.iter().all(|b| (b'0'..=b'7').contains(b)));
        match (bytes[i], octal) {
            (b'\\', Some(d)) => {
                out.push(d.iter().fold(0u8, |n, b| n.wrapping_mul(8) + (b - b'0')));
                i += 4;
            }
            (b, _) => {
                out.push(b);
                i += 1;
            }
        }
    }
    out
}

/// The mounts of `pid`'s mount namespace, from `/proc/<pid>/mountinfo`, in the kernel's order
/// (a mount after the one it sits on).
pub fn mounts(pid: Pid) -> io::Result<Vec<Mount>> {
    let text = fs::read_to_string(format!("/proc/{pid}/mountinfo"))?;
    Ok(text.lines().filter_map(Mount::parse).collect())
}

/// Every process on the machine that we may read, as `stat` records.
pub fn all() -> Vec<Stat> {
    let Ok(dir) = fs::read_dir("/proc") else {
        return Vec::new();
    };
    dir.filter_map(|e| e.ok()?.file_name().to_str()?.parse::<i32>().ok())
        .filter_map(|pid| stat(Pid::from_raw(pid)).ok())
        .collect()
}

/// The children of `pid` (processes whose parent is `pid`), sorted by pid.
pub fn children(pid: Pid) -> Vec<Stat> {
    let mut kids: Vec<Stat> = all()
        .into_iter()
        .filter(|s| s.ppid == pid.as_raw())
        .collect();
    kids.sort_by_key(|s| s.pid);
    kids
}

/// The calling process and all its descendants, parents before children: the test's tree
/// as the evidence shows it.
pub fn tree() -> Vec<Stat> {
    let me = nix::unistd::getpid();
    let mut procs: Vec<Stat> = stat(me).into_iter().collect();
    procs.extend(descendants(me));
    procs
}

/// Every descendant of `root` (not `root` itself), parents before children.
pub fn descendants(root: Pid) -> Vec<Stat> {
    let everyone = all();
    let mut out: Vec<Stat> = Vec::new();
    let mut frontier = vec![root.as_raw()];
    while let Some(parent) = frontier.pop() {
        let mut kids: Vec<&Stat> = everyone
            .iter()
            .filter(|s| s.ppid == parent && s.pid != parent)
            .collect();
        kids.sort_by_key(|s| s.pid);
        for kid in kids {
            frontier.push(kid.pid);
            out.push(kid.clone());
        }
    }
    out
}

/// The command line of `pid` with NULs turned into spaces, or its `comm` if it has none.
pub fn cmdline(pid: Pid) -> String {
    match fs::read(format!("/proc/{pid}/cmdline")) {
        Ok(bytes) if !bytes.is_empty() => {
            let text = String::from_utf8_lossy(&bytes).replace('\0', " ");
            let text = text.trim_end();
            if text.chars().count() > 120 {
                format!("{}...", text.chars().take(117).collect::<String>())
            } else {
                text.to_owned()
            }
        }
        _ => stat(pid)
            .map(|s| format!("[{}]", s.comm))
            .unwrap_or_default(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TAIL: &str = "S 1 2 3 34816 5 4194560 100 0 7 0 0 0 0 0 20 0 1 0 123 0 0 \
                        0 0 0 0 0 0 0 0 0 0 0 0 0 0 17 0";

    #[test]
    fn parses_a_plain_name() {
        let s = Stat::parse(&format!("42 (sleep) {TAIL}")).unwrap();
        assert_eq!(
            (s.pid, s.comm.as_str(), s.state, s.ppid, s.pgrp, s.session),
            (42, "sleep", 'S', 1, 2, 3)
        );
        assert_eq!(
            (s.tty_nr, s.minflt, s.majflt, s.num_threads),
            (34816, 100, 7, 1)
        );
        assert_eq!((s.flags, s.starttime), (4194560, 123));
    }

    #[test]
    fn parses_cgroup_lines_of_both_versions() {
        let lines =
            parse_cgroups("8:pids:/oskata-7\n4:memory:/a/b\n9:name=systemd:/\n0::/x\n").unwrap();
        assert_eq!(lines.len(), 4);
        assert_eq!(
            (
                lines[0].hierarchy,
                &lines[0].controllers[..],
                lines[0].path.as_str()
            ),
            (8, &["pids".to_owned()][..], "/oskata-7")
        );
        assert_eq!(lines[2].controllers, ["name=systemd"]);
        assert!(lines[3].hierarchy == 0 && lines[3].controllers.is_empty());
    }

    #[test]
    fn parses_a_name_built_to_fool_naive_parsers() {
        let s = Stat::parse(&format!("42 (a) Z (b) {TAIL}")).unwrap();
        assert_eq!(s.comm, "a) Z (b");
        assert_eq!(s.state, 'S');
        assert_eq!(s.ppid, 1);
    }

    #[test]
    fn rejects_garbage() {
        assert!(Stat::parse("42 sleep S 1").is_err());
        assert!(Stat::parse("42 (x) S").is_err());
    }

    #[test]
    fn reads_this_process() {
        let me = Pid::this();
        let s = stat(me).unwrap();
        assert_eq!(s.pid, me.as_raw());
        assert!(matches!(s.state, 'R' | 'S'));
        assert!(status(me).unwrap().umask().is_some());
        assert!(
            fds(me)
                .unwrap()
                .iter()
                .any(|f| f.fd == 0 || f.fd == 1 || f.fd == 2)
        );
        assert!(!smaps(me).unwrap().is_empty());
        assert!(threads(me).unwrap().contains(&me.as_raw()));
        assert_eq!(cwd(me).unwrap(), std::env::current_dir().unwrap());
        let heap = Box::new(7u8);
        let addr = &*heap as *const u8 as u64;
        let map = smaps(me)
            .unwrap()
            .into_iter()
            .find(|m| m.contains(addr))
            .unwrap();
        assert!(map.vm_flags.iter().any(|f| f == "rd"), "{map:?}");
    }

    #[test]
    fn parses_mountinfo_lines_with_escapes() {
        let m = Mount::parse(
            "36 35 98:0 /mnt1 /mnt/a\\040b rw,noatime master:1 - ext3 /dev/root rw,errors=continue",
        )
        .unwrap();
        assert_eq!((m.id, m.parent), (36, 35));
        assert_eq!(m.point, std::path::Path::new("/mnt/a b"));
        assert_eq!(
            (m.fstype.as_str(), m.source.as_str()),
            ("ext3", "/dev/root")
        );
        assert!(Mount::parse("garbage").is_none());
        assert!(
            mounts(Pid::this())
                .unwrap()
                .iter()
                .any(|m| m.point == std::path::Path::new("/"))
        );
    }

    #[test]
    fn parses_syscall_lines() {
        let s = Syscall::parse("0 0x3 0x7ffd1000 0x1000 0x0 0x0 0x0 0x7ffd0ff8 0x7f0000001234")
            .unwrap();
        assert_eq!((s.nr, s.args[0], s.args[2]), (0, 3, 0x1000));
        assert_eq!(Syscall::parse("running"), None);
    }
}
