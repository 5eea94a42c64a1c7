//! The test's limits, and the cgroups that enforce them and let the harness stop, count and
//! kill the test's processes as one.
//!
//! Where a cgroup hierarchy is writable (root, or a user with a delegated cgroup v2 subtree),
//! the supervisor makes `oskata-<its pid>` beside its own cgroup in each hierarchy that helps
//! (cgroups(7)), and the body process joins them before the test starts:
//!
//! - **pids** (v1 `pids.max`, or v2 `pids.max` where the parent enables it): a fork bomb stops
//!   at [`PIDS_MAX`] processes instead of taking the machine down;
//! - **memory** (v1 `memory.limit_in_bytes` and `memory.memsw.limit_in_bytes`, or v2
//!   `memory.max` and `memory.swap.max`): a runaway allocation meets the cgroup's own OOM killer
//!   at [`MEMORY_MAX`] instead of the machine's, which could choose any process;
//! - **freezing and killing** (a v2 cgroup's `cgroup.freeze` and `cgroup.kill`, or the v1
//!   `freezer` where there is no v2 hierarchy): at the deadline the whole tree stops at once,
//!   so the evidence holds still and nothing forks while it is killed; and `cgroup.procs` lists
//!   every member even after it was re-parented, so the test process can still find what a
//!   killed supervisor left.
//!
//! Otherwise the body lowers rlimits (setrlimit(2)): `RLIMIT_NPROC` (which counts every process
//! of the user, and which root ignores) and `RLIMIT_AS`, the address space of each process
//! alone, [`ADDRESS_SPACE_FACTOR`] times the memory limit since address space also counts
//! what is only reserved (thread stacks, malloc arenas).
use std::fs;
use std::io::{self, Read};
use std::os::fd::AsRawFd;
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use nix::errno::Errno;
use nix::sys::resource::{Resource, getrlimit, setrlimit};
use nix::sys::signal::{Signal, kill};
use nix::unistd::{Pid, Uid};

use crate::procfs;

/// How many processes one test may have at once under a pids cgroup, unless it asks otherwise.
pub const PIDS_MAX: u32 = 512;
/// How many more processes than the user already has, under `RLIMIT_NPROC`.
pub const NPROC_HEADROOM: u64 = 1024;
/// How much memory the test's processes may use together under a memory cgroup, unless the
/// test asks otherwise: 1 GiB.
pub const MEMORY_MAX: u64 = 1 << 30;
/// Without a memory cgroup, each process may map this many times the memory limit as address
/// space (`RLIMIT_AS`): 4 GiB by default.
pub const ADDRESS_SPACE_FACTOR: u64 = 4;
/// `PF_EXITING` in `/proc/<pid>/stat`'s flags: the task has begun to exit.
const PF_EXITING: u32 = 0x4;
/// How long the body waits for the supervisor to move it into the test's cgroups.
const PLACEMENT_LIMIT: Duration = Duration::from_secs(5);
/// How long to wait for a freeze to take hold, or for a cgroup to empty before removing it.
const SETTLE: Duration = Duration::from_secs(1);

/// What one test may use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// The cap on processes; `None` for the defaults ([`PIDS_MAX`], [`NPROC_HEADROOM`]).
    pub processes: Option<u32>,
    /// The memory of the test's processes together, in bytes (see [`MEMORY_MAX`]).
    pub memory: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            processes: None,
            memory: MEMORY_MAX,
        }
    }
}

impl Limits {
    /// The address space each process may map where no memory cgroup limits the whole test.
    pub fn address_space(&self) -> u64 {
        self.memory.saturating_mul(ADDRESS_SPACE_FACTOR)
    }
}

/// Whether a group is of the v2 hierarchy or of one v1 controller.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Unified,
    Pids,
    Memory,
    Freezer,
}

impl Kind {
    fn word(self) -> &'static str {
        match self {
            Kind::Unified => "cgroup v2",
            Kind::Pids => "pids",
            Kind::Memory => "memory",
            Kind::Freezer => "freezer",
        }
    }
}

/// One of the test's cgroups.
#[derive(Debug, Clone)]
struct Group {
    kind: Kind,
    dir: PathBuf,
    /// The hierarchy's id, as `/proc/<pid>/cgroup` numbers it.
    hierarchy: u32,
    /// The cgroup's path in its hierarchy, as `/proc/<pid>/cgroup` shows it.
    path: String,
}

impl Group {
    fn has(&self, file: &str) -> bool {
        self.dir.join(file).exists()
    }

    fn write(&self, file: &str, value: &str) -> io::Result<()> {
        fs::write(self.dir.join(file), value)
    }

    /// Whether this group caps processes / limits memory.
    fn caps_pids(&self) -> bool {
        self.kind == Kind::Pids || (self.kind == Kind::Unified && self.has("pids.max"))
    }
    fn limits_memory(&self) -> bool {
        self.kind == Kind::Memory || (self.kind == Kind::Unified && self.has("memory.max"))
    }

    /// Writes the limits this group enforces; a failure breaks a promise and is an error.
    fn apply(&self, limits: Limits) -> Result<(), String> {
        let set = |file: &str, value: String| {
            self.write(file, &value).map_err(|e| {
                format!(
                    "cannot set {file} = {value} in the test's cgroup {}: {e}",
                    self.dir.display()
                )
            })
        };
        let pids = limits.processes.unwrap_or(PIDS_MAX).to_string();
        let memory = limits.memory.to_string();
        match self.kind {
            Kind::Pids => set("pids.max", pids)?,
            Kind::Memory => {
                set("memory.limit_in_bytes", memory.clone())?;
                if self.has("memory.memsw.limit_in_bytes") {
                    set("memory.memsw.limit_in_bytes", memory)?;
                }
                // A child cgroup inherits oom_kill_disable: with it, a test at its limit would
                // sleep for ever instead of having a process killed.
                set("memory.oom_control", "0".into())?;
            }
            Kind::Freezer => {}
            Kind::Unified => {
                if self.has("pids.max") {
                    set("pids.max", pids)?;
                }
                if self.has("memory.max") {
                    set("memory.max", memory)?;
                    if self.has("memory.swap.max") {
                        set("memory.swap.max", "0".into())?;
                    }
                }
            }
        }
        Ok(())
    }

    /// This group and the groups below it (a process may make and enter a sub-cgroup).
    fn tree(&self) -> Vec<PathBuf> {
        let mut out = vec![self.dir.clone()];
        let mut at = 0;
        while at < out.len() {
            if let Ok(entries) = fs::read_dir(&out[at]) {
                out.extend(
                    entries
                        .flatten()
                        .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
                        .map(|e| e.path()),
                );
            }
            at += 1;
        }
        out
    }

    /// The pids in this group and below it.
    fn members(&self) -> Vec<i32> {
        self.tree()
            .iter()
            .filter_map(|d| fs::read_to_string(d.join("cgroup.procs")).ok())
            .flat_map(|t| {
                t.split_whitespace()
                    .filter_map(|p| p.parse().ok())
                    .collect::<Vec<i32>>()
            })
            .collect()
    }

    /// Removes the group and any the test made below it, deepest first, once they are empty.
    fn remove(&self) -> io::Result<()> {
        let start = Instant::now();
        loop {
            let mut result = Ok(());
            for dir in self.tree().iter().rev() {
                match fs::remove_dir(dir) {
                    Ok(()) => {}
                    Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                    Err(e) => result = Err(e),
                }
            }
            if result.is_ok() || start.elapsed() > SETTLE {
                return result;
            }
            std::thread::sleep(Duration::from_millis(5));
        }
    }
}

/// The test's limits and the cgroups that enforce them, made by the supervisor, joined by the
/// body ([`confine`]) and removed by the supervisor (or, if it was killed, by the test process).
#[derive(Debug)]
pub struct Confinement {
    limits: Limits,
    groups: Vec<Group>,
    /// `/dev/kmsg`, read from the end, where the OOM killer names its victims (root only).
    kmsg: Option<fs::File>,
}

impl Confinement {
    /// Makes `oskata-<owner>` in every hierarchy where one can be made (beside this process's
    /// own cgroup) and sets the limits in it. A hierarchy that is not there or not writable is
    /// skipped; a cgroup that was made but cannot be set up is an error, since the test would
    /// run without a limit it was promised.
    pub fn create(owner: Pid, limits: Limits) -> Result<Confinement, String> {
        let mut made = Confinement {
            limits,
            groups: Vec::new(),
            kmsg: None,
        };
        for (kind, parent, hierarchy, path) in spots() {
            if kind == Kind::Freezer && made.groups.iter().any(|g| g.kind == Kind::Unified) {
                continue; // v2 freezes (and kills) better than the v1 freezer
            }
            remove_stale(&parent);
            let name = format!("oskata-{owner}");
            let dir = parent.join(&name);
            match make_dir(&dir) {
                Ok(()) => {}
                Err(e) if unavailable(&e) => continue,
                Err(e) => return Err(format!("cannot create the cgroup {}: {e}", dir.display())),
            }
            let path = format!("{}/{name}", path.trim_end_matches('/'));
            made.groups.push(Group {
                kind,
                dir,
                hierarchy,
                path,
            });
            made.groups.last().map_or(Ok(()), |g| g.apply(limits))?;
        }
        if made.memory_limited() {
            made.kmsg = open_kmsg();
        }
        Ok(made)
    }

    /// The cgroups the supervisor with pid `supervisor` made, found from this process's own
    /// (the supervisor's parent's, which the supervisor shared): for cleaning up after a
    /// supervisor that was killed.
    pub fn of_supervisor(supervisor: Pid) -> Confinement {
        let name = format!("oskata-{supervisor}");
        let groups = spots()
            .into_iter()
            .map(|(kind, parent, hierarchy, path)| Group {
                kind,
                dir: parent.join(&name),
                hierarchy,
                path: format!("{}/{name}", path.trim_end_matches('/')),
            })
            .filter(|g| g.dir.is_dir())
            .collect();
        Confinement {
            limits: Limits::default(),
            groups,
            kmsg: None,
        }
    }

    /// Whether there is any cgroup at all.
    pub fn is_empty(&self) -> bool {
        self.groups.is_empty()
    }

    /// The limits the test was given.
    pub fn limits(&self) -> Limits {
        self.limits
    }

    /// Whether a memory cgroup limits the test's processes together.
    pub fn memory_limited(&self) -> bool {
        self.groups.iter().any(Group::limits_memory)
    }

    /// Moves the body process `pid` into every one of the test's cgroups, from the supervisor,
    /// right after the fork: so the supervisor knows it is in them from then on, and a body
    /// that leaves them can be told from one that has not joined yet. (The body waits for this
    /// move in its setup, so it is done before the test runs and cannot undo a move the test
    /// makes; then the body joins them itself too, which changes nothing.)
    pub fn enter(&self, pid: Pid) -> Result<(), String> {
        self.move_in(pid)
            .map_err(|(step, e)| format!("cannot {step}: {e}"))
    }

    /// In the body process: waits, at most `limit`, until the supervisor has moved it into the
    /// test's cgroups ([`Self::enter`]), so that that move cannot come after the test has
    /// started and undo one the test made out of them.
    fn await_placement(&self, limit: Duration) {
        let start = Instant::now();
        let mut pause = Duration::from_micros(50);
        while self.left(Pid::this().as_raw()).is_some() && start.elapsed() < limit {
            std::thread::sleep(pause);
            pause = (pause * 2).min(Duration::from_millis(5));
        }
    }

    /// Moves the calling process into every one of the test's cgroups; its children follow.
    fn join(&self) -> Result<(), (String, io::Error)> {
        self.move_in(Pid::this())
    }

    fn move_in(&self, pid: Pid) -> Result<(), (String, io::Error)> {
        let pid = pid.to_string();
        for g in &self.groups {
            g.write("cgroup.procs", &pid).map_err(|e| {
                (
                    format!(
                        "join the test's {} cgroup {} (cgroup.procs)",
                        g.kind.word(),
                        g.dir.display()
                    ),
                    e,
                )
            })?;
        }
        Ok(())
    }

    /// Every process in the test's cgroups (and below them), however it was re-parented.
    pub fn members(&self) -> Vec<i32> {
        let mut pids: Vec<i32> = self.groups.iter().flat_map(Group::members).collect();
        pids.sort_unstable();
        pids.dedup();
        pids
    }

    /// The group that freezes, if any.
    fn freezer(&self) -> Option<&Group> {
        self.groups
            .iter()
            .find(|g| g.kind == Kind::Unified && g.has("cgroup.freeze"))
            .or_else(|| self.groups.iter().find(|g| g.kind == Kind::Freezer))
    }

    /// Freezes every process in the test's cgroups at once and waits, at most `limit`, until
    /// the kernel says they all are; false where there is no freezer or it did not settle.
    pub fn freeze(&self, limit: Duration) -> bool {
        let Some(g) = self.freezer() else {
            return false;
        };
        let (file, on, done): (&str, &str, fn(&str) -> bool) = match g.kind {
            Kind::Unified => ("cgroup.freeze", "1", |events| {
                events.lines().any(|l| l.trim() == "frozen 1")
            }),
            _ => ("freezer.state", "FROZEN", |state| state.trim() == "FROZEN"),
        };
        let report = if g.kind == Kind::Unified {
            "cgroup.events"
        } else {
            "freezer.state"
        };
        if g.write(file, on).is_err() {
            return false;
        }
        let start = Instant::now();
        loop {
            if fs::read_to_string(g.dir.join(report)).is_ok_and(|t| done(&t)) {
                return true;
            }
            if start.elapsed() > limit {
                return false;
            }
            std::thread::sleep(Duration::from_millis(1));
        }
    }

    /// Whether `pid` is in (or below) the group that freezes: frozen after [`Self::freeze`].
    pub fn in_freezer(&self, pid: i32) -> bool {
        self.freezer()
            .is_some_and(|g| left_group(g, pid).is_none_or(|left| !left))
    }

    /// Lets frozen processes run again (a v1 freezer keeps even killed ones until then).
    pub fn thaw(&self) {
        if let Some(g) = self.freezer() {
            let _ = match g.kind {
                Kind::Unified => g.write("cgroup.freeze", "0"),
                _ => g.write("freezer.state", "THAWED"),
            };
        }
    }

    /// Kills every process in the test's cgroups: `cgroup.kill` where the kernel has it (one
    /// write, which no fork can race), and SIGKILL to each member listed; then thaws.
    pub fn kill_all(&self) {
        for g in &self.groups {
            if g.kind == Kind::Unified && g.has("cgroup.kill") {
                let _ = g.write("cgroup.kill", "1");
            }
        }
        for pid in self.members() {
            let _ = kill(Pid::from_raw(pid), Signal::SIGKILL);
        }
        self.thaw();
    }

    /// If `pid` has left one of the test's cgroups (it is neither in it nor below it): which
    /// one, and where it is now. `None` while it stays, and once it is gone.
    pub fn left(&self, pid: i32) -> Option<String> {
        if self.groups.is_empty() {
            return None;
        }
        let lines = live_cgroups(pid)?;
        self.groups.iter().find_map(|g| {
            let now = lines.iter().find(|l| l.hierarchy == g.hierarchy)?;
            (!within(&now.path, &g.path)).then(|| {
                format!(
                    "the {} hierarchy: it is now in {} instead of {}",
                    g.kind.word(),
                    now.path,
                    g.path
                )
            })
        })
    }

    /// How many processes the memory cgroup's OOM killer has killed.
    pub fn oom_kills(&self) -> u64 {
        let counter = |text: String| {
            text.lines()
                .find_map(|l| l.strip_prefix("oom_kill "))
                .and_then(|n| n.trim().parse::<u64>().ok())
                .unwrap_or(0)
        };
        self.groups
            .iter()
            .filter(|g| g.limits_memory())
            .filter_map(|g| {
                let file = if g.kind == Kind::Memory {
                    "memory.oom_control"
                } else {
                    "memory.events"
                };
                fs::read_to_string(g.dir.join(file)).ok()
            })
            .map(counter)
            .sum()
    }

    /// The processes the OOM killer killed in the test's memory cgroup, as "pid N (comm)", from
    /// the kernel's log where it is readable (root); empty otherwise.
    pub fn oom_victims(&self) -> Vec<String> {
        let Some(kmsg) = &self.kmsg else {
            return Vec::new();
        };
        let paths: Vec<String> = self
            .groups
            .iter()
            .filter(|g| g.limits_memory())
            .map(|g| format!("oom_memcg={},", g.path))
            .collect();
        let mut out = Vec::new();
        let mut buf = vec![0u8; 8192];
        for _ in 0..100_000 {
            match (&*kmsg).read(&mut buf) {
                Ok(0) => break,
                Ok(n) => {
                    let record = String::from_utf8_lossy(&buf[..n]);
                    if record.contains("oom-kill:") && paths.iter().any(|p| record.contains(p)) {
                        out.extend(oom_victim(&record));
                    }
                }
                // EPIPE: records were overwritten before we read them; read on.
                Err(e) if e.raw_os_error() == Some(libc::EPIPE) => {}
                Err(_) => break, // EAGAIN: nothing more
            }
        }
        out
    }

    /// Removes the test's cgroups once their processes are gone; the error names the first one
    /// that would not go.
    pub fn remove(&mut self) -> Result<(), String> {
        let mut result = Ok(());
        for g in std::mem::take(&mut self.groups).iter().rev() {
            if let Err(e) = g.remove()
                && result.is_ok()
            {
                result = Err(format!(
                    "cannot remove the test's cgroup {}: {e}",
                    g.dir.display()
                ));
            }
        }
        result
    }
}

impl Drop for Confinement {
    fn drop(&mut self) {
        let _ = self.remove();
    }
}

/// Whether cgroup path `path` is `group` or below it.
fn within(path: &str, group: &str) -> bool {
    path == group
        || path
            .strip_prefix(group)
            .is_some_and(|rest| rest.starts_with('/'))
}

/// Whether `pid` has left `g`: `None` when that cannot be read (the process is gone).
fn left_group(g: &Group, pid: i32) -> Option<bool> {
    let lines = live_cgroups(pid)?;
    let now = lines.iter().find(|l| l.hierarchy == g.hierarchy)?;
    Some(!within(&now.path, &g.path))
}

/// The cgroups of a live process. An exiting task leaves its cgroups (for `/`) before it
/// turns into a zombie, so none for a task that has begun to exit (`PF_EXITING`) or is a
/// zombie; a zombie leader's are those of a thread that runs on.
fn live_cgroups(pid: i32) -> Option<Vec<procfs::CgroupLine>> {
    let pid = Pid::from_raw(pid);
    let stat = procfs::stat(pid).ok()?;
    let lines = match stat.state {
        'Z' => {
            let tid = *procfs::zombie_leader_threads(&stat).first()?;
            let task = procfs::task_stat(pid, tid).ok()?;
            (task.flags & PF_EXITING == 0).then_some(())?;
            procfs::task_cgroups(pid, tid).ok()?
        }
        'X' => return None,
        _ => procfs::cgroups(pid).ok()?,
    };
    // Read again after the lines: a task that began to exit meanwhile may have left already.
    let again = procfs::stat(pid).ok()?;
    (again.flags & PF_EXITING == 0 && again.state != 'X').then_some(lines)
}

/// "pid N (comm)" from a kernel log record `oom-kill:...,task=comm,pid=N,uid=...`.
fn oom_victim(record: &str) -> Option<String> {
    let field = |key: &str| {
        record
            .split(',')
            .find_map(|f| f.trim().strip_prefix(key))
            .map(str::to_owned)
    };
    Some(format!("pid {} ({})", field("pid=")?, field("task=")?))
}

/// `/dev/kmsg`, positioned after the last record, non-blocking; `None` where it is not readable.
fn open_kmsg() -> Option<fs::File> {
    let file = fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK)
        .open("/dev/kmsg")
        .ok()?;
    // SAFETY: lseek on an fd we own; SEEK_END on /dev/kmsg skips the records logged so far.
    let at = unsafe { libc::lseek(file.as_raw_fd(), 0, libc::SEEK_END) };
    (at >= 0).then_some(file)
}

/// Whether a failed mkdir means "no such cgroup here for us" rather than a broken one.
fn unavailable(e: &io::Error) -> bool {
    matches!(
        e.raw_os_error().map(Errno::from_raw),
        Some(Errno::EACCES | Errno::EPERM | Errno::EROFS | Errno::ENOENT | Errno::ENOTDIR)
    )
}

/// mkdir, replacing a leftover of an earlier process with the same pid.
fn make_dir(dir: &Path) -> io::Result<()> {
    match fs::create_dir(dir) {
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
            fs::remove_dir(dir)?;
            fs::create_dir(dir)
        }
        other => other,
    }
}

/// Where this process's cgroups are, in the hierarchies the harness uses: the kind, the
/// directory of this process's own cgroup, the hierarchy id and the cgroup's path. v2 first.
fn spots() -> Vec<(Kind, PathBuf, u32, String)> {
    let Ok(own) = procfs::cgroups(Pid::this()) else {
        return Vec::new();
    };
    let mounts = cgroup_mounts();
    let mut out = Vec::new();
    for line in &own {
        let kinds: Vec<Kind> = if line.hierarchy == 0 && line.controllers.is_empty() {
            vec![Kind::Unified]
        } else {
            line.controllers
                .iter()
                .filter_map(|c| match c.as_str() {
                    "pids" => Some(Kind::Pids),
                    "memory" => Some(Kind::Memory),
                    "freezer" => Some(Kind::Freezer),
                    _ => None,
                })
                .collect()
        };
        for kind in kinds {
            let mount = mounts.iter().find(|m| match kind {
                Kind::Unified => m.controllers.is_none(),
                _ => m
                    .controllers
                    .as_ref()
                    .is_some_and(|cs| cs.iter().any(|c| line.controllers.contains(c))),
            });
            let Some(mount) = mount else { continue };
            let Some(rel) = line.path.strip_prefix(mount.root.as_str()) else {
                continue;
            };
            let dir = mount.point.join(rel.trim_start_matches('/'));
            out.push((kind, dir, line.hierarchy, line.path.clone()));
        }
    }
    out.sort_by_key(|(kind, ..)| *kind != Kind::Unified);
    out
}

/// A mounted cgroup hierarchy: v1 with its controllers, or v2 (`controllers` is `None`).
struct Mount {
    controllers: Option<Vec<String>>,
    root: String,
    point: PathBuf,
}

/// The cgroup hierarchies mounted here, from `/proc/self/mountinfo` (proc(5)).
fn cgroup_mounts() -> Vec<Mount> {
    let Ok(text) = fs::read_to_string("/proc/self/mountinfo") else {
        return Vec::new();
    };
    text.lines()
        .filter_map(|line| {
            let (left, right) = line.split_once(" - ")?;
            let left: Vec<&str> = left.split(' ').collect();
            let right: Vec<&str> = right.split(' ').collect();
            let (root, point) = (*left.get(3)?, *left.get(4)?);
            let controllers = match *right.first()? {
                "cgroup2" => None,
                "cgroup" => Some(
                    right
                        .get(2)?
                        .split(',')
                        .map(str::to_owned)
                        .collect::<Vec<_>>(),
                ),
                _ => return None,
            };
            Some(Mount {
                controllers,
                root: root.to_owned(),
                point: PathBuf::from(point),
            })
        })
        .collect()
}

/// Removes `oskata-<pid>` cgroups left by a supervisor that was killed before it cleaned up.
fn remove_stale(parent: &Path) {
    let Ok(entries) = fs::read_dir(parent) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(pid) = name
            .to_str()
            .and_then(|n| n.strip_prefix("oskata-"))
            .and_then(|p| p.parse::<i32>().ok())
        else {
            continue;
        };
        if !PathBuf::from(format!("/proc/{pid}")).exists() {
            let _ = fs::remove_dir(entry.path());
        }
    }
}

/// In the body process, before the test: joins the test's cgroups, and lowers the rlimits
/// that stand in for a limit no cgroup enforces. Returns notes on what could not be limited;
/// `Err((step, error))` when a cgroup the supervisor made cannot be joined.
pub fn confine(c: Option<&Confinement>) -> Result<Vec<String>, (String, io::Error)> {
    let mut notes = Vec::new();
    let limits = c.map_or_else(Limits::default, Confinement::limits);
    if let Some(c) = c {
        c.await_placement(PLACEMENT_LIMIT);
        c.join()?;
    }
    let groups = c.map_or(&[][..], |c| &c.groups[..]);
    if !groups.iter().any(Group::caps_pids) {
        let headroom = limits.processes.map_or(NPROC_HEADROOM, u64::from);
        if limit_nproc(headroom).is_err() {
            notes.push(
                "could not cap the number of processes (no writable pids cgroup, RLIMIT_NPROC refused)"
                    .into(),
            );
        }
    }
    if !groups.iter().any(Group::limits_memory)
        && let Err(e) = limit_address_space(limits.address_space())
    {
        notes.push(format!(
            "the test's memory is not limited (no writable memory cgroup, and setrlimit(RLIMIT_AS) refused: {e})"
        ));
    }
    Ok(notes)
}

/// Lowers the soft `RLIMIT_NPROC` of the calling process to what the user has now plus
/// `headroom`. Does nothing useful for root, which the kernel exempts.
fn limit_nproc(headroom: u64) -> io::Result<()> {
    let uid = Uid::current().as_raw();
    let mine = fs::read_dir("/proc")?
        .flatten()
        .filter(|e| {
            e.file_name()
                .to_str()
                .is_some_and(|n| n.bytes().all(|b| b.is_ascii_digit()))
        })
        .filter(|e| e.metadata().is_ok_and(|m| m.uid() == uid))
        .count() as u64;
    let (_, hard) = getrlimit(Resource::RLIMIT_NPROC)?;
    setrlimit(Resource::RLIMIT_NPROC, (mine + headroom).min(hard), hard)?;
    Ok(())
}

/// Lowers both `RLIMIT_AS` limits to `bytes` (or leaves a lower one), so a runaway allocation
/// fails in the process that makes it ("memory allocation of N bytes failed").
fn limit_address_space(bytes: u64) -> io::Result<()> {
    let (soft, hard) = getrlimit(Resource::RLIMIT_AS)?;
    setrlimit(Resource::RLIMIT_AS, soft.min(bytes), hard.min(bytes))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_path_is_within_its_group_and_below_it_only() {
        assert!(within("/a/oskata-1", "/a/oskata-1"));
        assert!(within("/a/oskata-1/sub", "/a/oskata-1"));
        assert!(!within("/a/oskata-12", "/a/oskata-1"));
        assert!(!within("/a", "/a/oskata-1"));
    }

    #[test]
    fn an_oom_record_names_its_victim() {
        let record = "6,423,2037331762,-;oom-kill:constraint=CONSTRAINT_MEMCG,nodemask=(null),\
                      cpuset=/,mems_allowed=0,oom_memcg=/x/oskata-7,task_memcg=/x/oskata-7,task=hog,pid=29455,uid=0";
        assert_eq!(oom_victim(record).as_deref(), Some("pid 29455 (hog)"));
    }
}
