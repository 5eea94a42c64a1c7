//! A cap on the number of processes a test may create, so a fork bomb in student code stops
//! at a few hundred processes instead of taking the machine down.
//!
//! Where the cgroup v1 `pids` controller is writable (root on this kind of machine), each test
//! gets its own cgroup with `pids.max`; see the kernel's `cgroup-v1/pids.rst`. Otherwise the
//! harness lowers `RLIMIT_NPROC` (setrlimit(2)), which counts every process of the user and
//! which root ignores; that is the best an unprivileged process can do.
use std::fs;
use std::io;
use std::os::unix::fs::MetadataExt;
use std::path::PathBuf;

use nix::sys::resource::{Resource, getrlimit, setrlimit};
use nix::unistd::{Pid, Uid};

/// How many processes one test may have at once under a cgroup.
pub const PIDS_MAX: u32 = 512;
/// How many more processes than the user already has, under `RLIMIT_NPROC`.
pub const NPROC_HEADROOM: u64 = 1024;

/// A per-test pids cgroup, removed on drop once empty.
pub struct PidsCgroup {
    dir: PathBuf,
}

impl PidsCgroup {
    /// Creates `oskata-<pid>` beside this process's own pids cgroup, with `pids.max` set.
    pub fn create() -> io::Result<PidsCgroup> {
        let own = fs::read_to_string("/proc/self/cgroup")?
            .lines()
            .find_map(|l| {
                let mut parts = l.splitn(3, ':');
                let (_, controllers, path) = (parts.next()?, parts.next()?, parts.next()?);
                controllers
                    .split(',')
                    .any(|c| c == "pids")
                    .then(|| path.to_owned())
            })
            .ok_or_else(|| {
                io::Error::new(io::ErrorKind::NotFound, "no cgroup v1 pids controller")
            })?;
        let parent = PathBuf::from("/sys/fs/cgroup/pids").join(own.trim_start_matches('/'));
        remove_stale(&parent);
        let dir = parent.join(format!("oskata-{}", Pid::this()));
        fs::create_dir(&dir)?;
        let cgroup = PidsCgroup { dir };
        fs::write(cgroup.dir.join("pids.max"), PIDS_MAX.to_string())?;
        Ok(cgroup)
    }

    /// Moves the calling process into the cgroup; its future children follow it.
    pub fn join(&self) -> io::Result<()> {
        fs::write(self.dir.join("cgroup.procs"), Pid::this().to_string())
    }
}

impl Drop for PidsCgroup {
    fn drop(&mut self) {
        let _ = fs::remove_dir(&self.dir);
    }
}

/// Removes `oskata-<pid>` cgroups left by a supervisor that was killed before it cleaned up.
fn remove_stale(parent: &std::path::Path) {
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

/// Lowers the soft `RLIMIT_NPROC` of the calling process to what the user has now plus
/// [`NPROC_HEADROOM`]. Does nothing useful for root, which the kernel exempts.
pub fn limit_nproc() -> io::Result<()> {
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
    setrlimit(
        Resource::RLIMIT_NPROC,
        (mine + NPROC_HEADROOM).min(hard),
        hard,
    )?;
    Ok(())
}
