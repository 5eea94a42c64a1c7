// depends on: fdtable, procfs (used by the body, stage B).
//! The body's private mount namespace: a fresh `/dev/shm`, `/dev/mqueue` and `/tmp` of the
//! test's own, which vanish with it, and the mounts the test itself left behind.
//!
//! The body enters a mount namespace of its own together with its IPC namespace (as root with
//! `unshare(CLONE_NEWIPC | CLONE_NEWNS)`, unprivileged inside the user namespace that grants
//! it). Before mounting anything it makes every mount private (`MS_REC | MS_PRIVATE` on `/`),
//! so nothing mounted here propagates to the machine. Then:
//!
//! - `/dev/shm` gets a fresh tmpfs: `shm_open(3)` objects and `sem_open(3)` semaphores live
//!   there, so the test's are private to it.
//! - Its mqueue filesystem (mq_overview(7)): a mqueue mount belongs to the IPC namespace of
//!   the process that mounts it, so a fresh one shows exactly the test's POSIX message queues.
//!   It goes on `/dev/mqueue` where that directory exists; elsewhere it is mounted a moment on
//!   the scratch directory, opened and detached, so the leak check can still list it.
//! - `/tmp` gets a fresh tmpfs. Directories the test needs at their own path under `/tmp`
//!   (the scratch directory, which lives under `TMPDIR`; the directory the tests were started
//!   from; the test binary's own) are bind-mounted back at the same path, from fds opened
//!   before the tmpfs covered them, with the directories above them made anew; so the test's
//!   paths and its `TMPDIR` work as before, and whatever else it writes in `/tmp` is its own.
use std::os::fd::{AsRawFd, IntoRawFd, OwnedFd, RawFd};
use std::path::{Path, PathBuf};

use nix::fcntl::{OFlag, open};
use nix::mount::{MntFlags, MsFlags, mount, umount2};
use nix::sys::stat::Mode;
use nix::unistd::{Pid, mkdir};

use crate::fdtable;
use crate::procfs;

/// The options of the fresh tmpfs mounts: writable by all with the sticky bit, as `/tmp` and
/// `/dev/shm` are, and bounded, so a runaway test cannot fill the machine's memory.
const TMPFS_OPTIONS: &str = "mode=1777,size=25%";

/// What the private mount namespace gave the body.
#[derive(Debug)]
pub(crate) struct Views {
    /// `/dev/shm` is a fresh tmpfs.
    pub shm: bool,
    /// The test's own mqueue filesystem, if one was mounted.
    pub mqueue: Option<Mqueue>,
    /// `/tmp` is a fresh tmpfs (with the needed directories bound back), or why not.
    pub tmp: Result<(), String>,
}

/// Where the test's mqueue filesystem can be read.
#[derive(Debug)]
pub(crate) enum Mqueue {
    /// Mounted on this directory, where the test sees it too.
    At(PathBuf),
    /// Mounted nowhere: the raw fd of its root directory, held open for the leak check.
    Detached(RawFd),
}

/// Why [`set_up`] gave no views.
#[derive(Debug)]
pub(crate) enum Failure {
    /// Propagation could not be made private, so nothing was mounted: the test goes on with
    /// the machine's directories.
    Refused,
    /// A step half done would break a promise (the scratch directory hidden): fail the test
    /// with this step and error.
    Broken(String, nix::errno::Errno),
}

/// Makes the mount namespace's propagation private, then mounts the fresh views. `mqueue`:
/// whether to mount the test's mqueue filesystem (only worth it in a private IPC namespace).
/// `keep`: directories that must stay reachable at their path under `/tmp`.
pub(crate) fn set_up(mqueue: bool, scratch: &Path, keep: &[PathBuf]) -> Result<Views, Failure> {
    mount(
        None::<&str>,
        "/",
        None::<&str>,
        MsFlags::MS_REC | MsFlags::MS_PRIVATE,
        None::<&str>,
    )
    .map_err(|_| Failure::Refused)?;
    let shm = Path::new("/dev/shm").is_dir() && fresh_tmpfs(Path::new("/dev/shm")).is_ok();
    let mqueue = if mqueue { mqueue_view(scratch)? } else { None };
    Ok(Views {
        shm,
        mqueue,
        tmp: private_tmp(keep),
    })
}

/// Mounts a fresh tmpfs on `target`.
fn fresh_tmpfs(target: &Path) -> nix::Result<()> {
    mount(
        Some("tmpfs"),
        target,
        Some("tmpfs"),
        MsFlags::MS_NOSUID | MsFlags::MS_NODEV,
        Some(TMPFS_OPTIONS),
    )
}

/// Mounts the mqueue filesystem of this process's IPC namespace on `target`.
fn mount_mqueue(target: &Path) -> nix::Result<()> {
    mount(
        Some("mqueue"),
        target,
        Some("mqueue"),
        MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC,
        None::<&str>,
    )
}

/// The test's mqueue filesystem: on `/dev/mqueue` where it exists, else detached (mounted on
/// `scratch` just long enough to open its root); `None` where it cannot be mounted.
fn mqueue_view(scratch: &Path) -> Result<Option<Mqueue>, Failure> {
    let dev = Path::new("/dev/mqueue");
    if dev.is_dir() {
        return Ok(mount_mqueue(dev).ok().map(|()| Mqueue::At(dev.to_owned())));
    }
    if mount_mqueue(scratch).is_err() {
        return Ok(None);
    }
    let root = open(
        scratch,
        OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
        Mode::empty(),
    );
    // A mount of our own, in our own namespace, with nothing under it: detaching it is not
    // refused. Were it ever, the scratch directory would stay hidden: fail the test then.
    if let Err(e) = umount2(scratch, MntFlags::MNT_DETACH) {
        let step = format!(
            "detach the mqueue mount from the scratch directory {} (umount2)",
            scratch.display()
        );
        return Err(Failure::Broken(step, e));
    }
    Ok(root
        .ok()
        .map(|fd| Mqueue::Detached(fdtable::high(fd, fdtable::HIGH_FD_MIN).into_raw_fd())))
}

/// Covers `/tmp` with a fresh tmpfs and binds each of `keep` that lies under it back at its
/// path. `Err` saying why (with `/tmp` left as it was) where that cannot be done.
fn private_tmp(keep: &[PathBuf]) -> Result<(), String> {
    let tmp = std::fs::canonicalize("/tmp").map_err(|e| format!("no /tmp ({e})"))?;
    let kept = outermost_under(&tmp, keep);
    if kept.contains(&tmp) {
        return Err("the tests were started in /tmp itself, or the test binary lies there".into());
    }
    let mut fds: Vec<(PathBuf, OwnedFd)> = Vec::new();
    for path in kept {
        let flags = OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC;
        let fd = open(&path, flags, Mode::empty())
            .map_err(|e| format!("cannot open {} ({e})", path.display()))?;
        fds.push((path, fd));
    }
    fresh_tmpfs(&tmp).map_err(|e| format!("cannot mount a tmpfs on /tmp ({e})"))?;
    for (path, fd) in &fds {
        if let Err(e) = bind_back(&tmp, path, fd.as_raw_fd()) {
            let _ = umount2(&tmp, MntFlags::MNT_DETACH);
            return Err(format!(
                "cannot bind {} back into the private /tmp ({e})",
                path.display()
            ));
        }
    }
    Ok(())
}

/// Those of `paths` (made canonical) at or under `tmp`, leaving out any that lies under another
/// of them.
fn outermost_under(tmp: &Path, paths: &[PathBuf]) -> Vec<PathBuf> {
    let mut under: Vec<PathBuf> = paths
        .iter()
        .filter_map(|p| std::fs::canonicalize(p).ok())
        .filter(|p| p.starts_with(tmp))
        .collect();
    under.sort();
    under.dedup();
    let all = under.clone();
    under.retain(|p| !all.iter().any(|q| q != p && p.starts_with(q)));
    under
}

/// Makes the directories from `tmp` down to `path` in the fresh tmpfs and bind-mounts the
/// directory `fd` (opened before the tmpfs covered it) on `path`.
fn bind_back(tmp: &Path, path: &Path, fd: RawFd) -> nix::Result<()> {
    let mut at = tmp.to_path_buf();
    for part in path.strip_prefix(tmp).unwrap_or(path).components() {
        at.push(part);
        match mkdir(&at, Mode::from_bits_truncate(0o755)) {
            Ok(()) | Err(nix::errno::Errno::EEXIST) => {}
            Err(e) => return Err(e),
        }
    }
    let source = format!("/proc/self/fd/{fd}");
    mount(
        Some(source.as_str()),
        path,
        None::<&str>,
        MsFlags::MS_BIND | MsFlags::MS_REC,
        None::<&str>,
    )
}

/// The ids of the mounts in this process's mount namespace now.
pub(crate) fn ids() -> Vec<u64> {
    procfs::mounts(Pid::this())
        .unwrap_or_default()
        .iter()
        .map(|m| m.id)
        .collect()
}

/// The mounts made since `before` (ids from [`ids`]), one sentence each, detached as they are
/// named. In the machine's own namespace (`private` false) only those under `scratch` count:
/// others may be anyone's.
pub(crate) fn left_behind(before: &[u64], private: bool, scratch: &Path) -> Vec<String> {
    let mut new: Vec<procfs::Mount> = procfs::mounts(Pid::this())
        .unwrap_or_default()
        .into_iter()
        .filter(|m| !before.contains(&m.id) && (private || m.point.starts_with(scratch)))
        .collect();
    new.sort_by_key(|m| std::cmp::Reverse(m.point.components().count()));
    new.iter()
        .map(|m| {
            let detached = match umount2(&m.point, MntFlags::MNT_DETACH | MntFlags::UMOUNT_NOFOLLOW)
            {
                Ok(()) => String::new(),
                Err(e) => format!(" (it could not be detached: {e})"),
            };
            format!(
                "mount {} ({} from {}) was left behind: nobody unmounted it (umount2){detached}",
                m.point.display(),
                m.fstype,
                m.source
            )
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_outermost_paths_under_tmp_are_bound_back() {
        let tmp = std::fs::canonicalize("/tmp").unwrap();
        let base = tmp.join(format!("oskata-mounts-test-{}", std::process::id()));
        let inner = base.join("a/b");
        std::fs::create_dir_all(&inner).unwrap();
        let got = outermost_under(
            &tmp,
            &[inner.clone(), base.join("a"), PathBuf::from("/proc"), inner],
        );
        std::fs::remove_dir_all(&base).unwrap();
        assert_eq!(got, vec![base.join("a")]);
    }
}
