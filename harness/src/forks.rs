//! Making fork(2) fail on purpose: a cap on how many more processes the test may start.
//!
//! A contract such as "if a fork fails, the children already started are still waited for"
//! needs a fork that fails at a known point. [`limit_new_processes`] lets the test's tree
//! create exactly `k` more tasks; the next fork(2) fails with `EAGAIN`. The kernel counts a
//! zombie until it is reaped, so "at most `k` at once" also means "`k` not yet reaped".
//!
//! Two mechanisms, because neither works everywhere:
//!
//! - **the test's pids cgroup** (root, or a delegated cgroup v2 subtree): `pids.max` of the
//!   cgroup the body is in is set to its `pids.current` plus `k`. Root is exempt from
//!   `RLIMIT_NPROC`, never from a pids cgroup.
//! - **`RLIMIT_NPROC` in the body's own user namespace** (a normal user): since Linux 5.14 the
//!   kernel counts a user's processes per user namespace, and the body (which made the
//!   namespace) and its descendants are the only processes there, so the count is exactly the
//!   test's own. In the machine's namespace the count would include every process of the user,
//!   which other tests start and end at will, so that case is refused.
//!
//! The limit is lifted again when the returned [`ForkLimit`] is dropped. See cgroups(7) (pids
//! controller), setrlimit(2) (`RLIMIT_NPROC`), user_namespaces(7).
use std::fs;
use std::path::PathBuf;

use nix::sys::resource::{Resource, getrlimit, setrlimit};
use nix::unistd::{Pid, getpid, getuid};

use crate::procfs;

/// A cap set by [`limit_new_processes`]; dropping it restores what was there before.
#[derive(Debug)]
pub struct ForkLimit {
    /// How the cap is enforced, for messages.
    pub how: String,
    restore: Restore,
}

#[derive(Debug)]
enum Restore {
    /// `pids.max` files and their old values.
    Cgroup(Vec<(PathBuf, String)>),
    /// The old soft and hard `RLIMIT_NPROC`.
    Rlimit(u64, u64),
}

impl Drop for ForkLimit {
    fn drop(&mut self) {
        match &self.restore {
            Restore::Cgroup(files) => {
                for (file, old) in files {
                    let _ = fs::write(file, old);
                }
            }
            Restore::Rlimit(soft, hard) => {
                let _ = setrlimit(Resource::RLIMIT_NPROC, *soft, *hard);
            }
        }
    }
}

/// Lets the calling process and its descendants start exactly `k` more tasks (processes or
/// threads) until the returned guard is dropped: fork number `k + 1` fails with `EAGAIN`.
/// `Err` says why no exact cap could be set here (the test should then skip its check and say
/// so). Call it with no thread of the test running, and no descendant about to fork or exit
/// on its own: the count is taken once.
pub fn limit_new_processes(k: u32) -> Result<ForkLimit, String> {
    let files = pids_max_files();
    if !files.is_empty() {
        let mut restore = Vec::new();
        let mut how = Vec::new();
        for file in files {
            let dir = file.parent().map(PathBuf::from).unwrap_or_default();
            let read = |name: &str| {
                fs::read_to_string(dir.join(name))
                    .map(|t| t.trim().to_owned())
                    .map_err(|e| format!("cannot read {}: {e}", dir.join(name).display()))
            };
            let old = read("pids.max")?;
            let current: u64 = read("pids.current")?
                .parse()
                .map_err(|e| format!("pids.current in {}: {e}", dir.display()))?;
            let max = current + u64::from(k);
            fs::write(&file, max.to_string())
                .map_err(|e| format!("cannot write {}: {e}", file.display()))?;
            how.push(format!("{} = {max} ({current} in use)", file.display()));
            restore.push((file, old));
        }
        return Ok(ForkLimit {
            how: format!("the test's pids cgroup: {}", how.join(", ")),
            restore: Restore::Cgroup(restore),
        });
    }
    if own_user_namespace() && kernel_uid() != Some(0) {
        let me = getpid();
        let tasks: i64 = std::iter::once(procfs::stat(me).map_err(|e| e.to_string())?)
            .chain(procfs::descendants(me))
            .map(|s| s.num_threads.max(1))
            .sum();
        let (soft, hard) = getrlimit(Resource::RLIMIT_NPROC).map_err(|e| e.to_string())?;
        let max = (tasks as u64 + u64::from(k)).min(hard);
        setrlimit(Resource::RLIMIT_NPROC, max, hard)
            .map_err(|e| format!("setrlimit(RLIMIT_NPROC, {max}): {e}"))?;
        return Ok(ForkLimit {
            how: format!("RLIMIT_NPROC = {max} in the test's user namespace ({tasks} in use)"),
            restore: Restore::Rlimit(soft, hard),
        });
    }
    Err(
        "no pids cgroup is writable here, and the test is not in a user namespace of its own \
         where RLIMIT_NPROC would count only its processes"
            .into(),
    )
}

/// The `pids.max` files of the cgroups (v1 pids, or v2 with the pids controller) this process
/// is in, when they are writable.
fn pids_max_files() -> Vec<PathBuf> {
    let Ok(lines) = procfs::cgroups(Pid::this()) else {
        return Vec::new();
    };
    let mountinfo = fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    let mut out = Vec::new();
    for line in lines {
        let v1 = line.controllers.iter().any(|c| c == "pids");
        if !v1 && line.hierarchy != 0 {
            continue;
        }
        // The hierarchy's mount: a cgroup2 mount for v2, a cgroup mount with `pids` among its
        // super options for v1 (mountinfo's last field).
        let point = mountinfo.lines().find_map(|text| {
            let m = procfs::Mount::parse(text)?;
            let opts = text.rsplit(' ').next().unwrap_or_default();
            let fits = if v1 {
                m.fstype == "cgroup" && opts.split(',').any(|o| o == "pids")
            } else {
                m.fstype == "cgroup2"
            };
            fits.then_some(m.point)
        });
        let Some(point) = point else { continue };
        let file = point
            .join(line.path.trim_start_matches('/'))
            .join("pids.max");
        let writable = fs::OpenOptions::new().write(true).open(&file).is_ok();
        if line.path != "/" && writable {
            out.push(file);
        }
    }
    out
}

/// Whether this process is in a user namespace other than the machine's.
fn own_user_namespace() -> bool {
    fs::read_to_string("/proc/self/uid_map").is_ok_and(|map| {
        let words: Vec<&str> = map.split_whitespace().collect();
        words != ["0", "0", "4294967295"]
    })
}

/// The real uid of this process as the machine's namespace sees it, from `uid_map`.
fn kernel_uid() -> Option<u32> {
    let uid = getuid().as_raw();
    let map = fs::read_to_string("/proc/self/uid_map").ok()?;
    map.lines().find_map(|line| {
        let n: Vec<u32> = line
            .split_whitespace()
            .filter_map(|w| w.parse().ok())
            .collect();
        let [inside, outside, count] = n[..] else {
            return None;
        };
        (uid >= inside && uid - inside < count).then(|| outside + (uid - inside))
    })
}
