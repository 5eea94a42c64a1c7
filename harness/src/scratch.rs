// depends on: procfs (a leaf: any stage may call it).
//! Removing a directory tree without ever leaving it: never through a symbolic link, never
//! into another mount.
//!
//! `std::fs::remove_dir_all` does not follow symbolic links, but it walks into whatever is
//! mounted under the tree: a bind mount that a test made inside its scratch directory (as
//! root, or in a user namespace) leads it into a directory elsewhere, whose files it then
//! deletes. [`remove_tree`] first detaches the mounts at or under the tree (listed in
//! `/proc/self/mountinfo`), then walks it with `openat`/`unlinkat` relative to directory fds
//! opened with `O_NOFOLLOW`, and never descends into a directory on another device or another
//! mount (`st_dev`, and the mount id from statx(2) `STATX_MNT_ID`, or the mountinfo listing
//! where statx cannot tell).
use std::ffi::{OsStr, OsString};
use std::io;
use std::mem::MaybeUninit;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use nix::dir::Dir;
use nix::errno::Errno;
use nix::fcntl::{AT_FDCWD, AtFlags, OFlag, openat};
use nix::mount::{MntFlags, umount2};
use nix::sys::stat::{FileStat, Mode, SFlag, fstat, fstatat};
use nix::unistd::{Pid, UnlinkatFlags, unlinkat};

use crate::procfs;

/// Removes `path` and everything under it without leaving the tree: mounts at or under it are
/// detached first; a mount that cannot be detached is left in place with all that is under
/// it; symbolic links are removed, never followed. `Ok` when nothing of the tree is left (or
/// it did not exist), otherwise the first error, naming the entry that stayed.
pub(crate) fn remove_tree(path: &Path) -> io::Result<()> {
    let (parent, name) = split(path)?;
    // The parent may be reached through links (TMPDIR may be one); the last component never is.
    let parent = match std::fs::canonicalize(parent) {
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
        other => other?,
    };
    detach_mounts_under(&parent.join(name));
    let dir = open_dir(AT_FDCWD, &parent)?;
    remove_entry(dir.as_fd(), &parent, name)
}

/// Removes the entry `name` of the directory `dir` (whose path is `dir_path`, as this process
/// sees it) and everything under it, without unmounting anything: the walk stops at every
/// mount point and symbolic link, as in [`remove_tree`]. A missing entry is `Ok`.
pub(crate) fn remove_entry(dir: BorrowedFd<'_>, dir_path: &Path, name: &OsStr) -> io::Result<()> {
    let walk = Walk {
        mounted: mount_points_under(&dir_path.join(name)),
    };
    walk.remove(dir, dir_path, name)
}

/// `path` as its parent and its last component; `..`, `.` or `/` as the last one is refused.
fn split(path: &Path) -> io::Result<(&Path, &OsStr)> {
    let name = path.file_name().ok_or_else(|| {
        io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("{} names no entry to remove", path.display()),
        )
    })?;
    let parent = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    Ok((parent, name))
}

/// Detaches (umount2 `MNT_DETACH`) every mount at or under `path`, the deepest first. Those
/// refused stay, and the walk will not enter them.
fn detach_mounts_under(path: &Path) {
    let mut points = mount_points_under(path);
    points.sort_by_key(|p| std::cmp::Reverse(p.components().count()));
    for point in points {
        // A mount may sit on another at the same point: detach until none is left there.
        while umount2(&point, MntFlags::MNT_DETACH | MntFlags::UMOUNT_NOFOLLOW).is_ok() {}
    }
}

/// The mount points at or under `path`, from this process's mountinfo.
fn mount_points_under(path: &Path) -> Vec<PathBuf> {
    procfs::mounts(Pid::this())
        .unwrap_or_default()
        .into_iter()
        .map(|m| m.point)
        .filter(|p| p.starts_with(path))
        .collect()
}

/// Opens a directory for the walk: never through a symbolic link as its last component.
fn open_dir<P: ?Sized + nix::NixPath>(at: BorrowedFd<'_>, name: &P) -> io::Result<OwnedFd> {
    let flags = OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC;
    Ok(openat(at, name, flags, Mode::empty())?)
}

/// The id of the mount `fd` is on (statx(2) with `STATX_MNT_ID`, Linux 5.8), if the kernel
/// tells.
fn mount_id(fd: BorrowedFd<'_>) -> Option<u64> {
    let mut buf = MaybeUninit::<libc::statx>::zeroed();
    // SAFETY: statx with AT_EMPTY_PATH on a valid fd, an empty C string and a buffer of the
    // right type and size, which the kernel fills.
    let rc = unsafe {
        libc::statx(
            fd.as_raw_fd(),
            c"".as_ptr(),
            libc::AT_EMPTY_PATH,
            libc::STATX_MNT_ID,
            buf.as_mut_ptr(),
        )
    };
    // SAFETY: zeroed is a valid statx, and the kernel filled it on success.
    let st = unsafe { buf.assume_init() };
    (rc == 0 && st.stx_mask & libc::STATX_MNT_ID != 0).then_some(st.stx_mnt_id)
}

fn is_dir(st: &FileStat) -> bool {
    SFlag::from_bits_truncate(st.st_mode & SFlag::S_IFMT.bits()) == SFlag::S_IFDIR
}

fn error(path: &Path, what: &str) -> io::Error {
    io::Error::other(format!("{} {what}; left in place", path.display()))
}

/// One removal: the mount points it must not enter.
struct Walk {
    mounted: Vec<PathBuf>,
}

impl Walk {
    /// Removes `name` in `dir` (at `dir_path`) and what is under it, staying on `dir`'s mount.
    fn remove(&self, dir: BorrowedFd<'_>, dir_path: &Path, name: &OsStr) -> io::Result<()> {
        let path = dir_path.join(name);
        let st = match fstatat(dir, name, AtFlags::AT_SYMLINK_NOFOLLOW) {
            Err(Errno::ENOENT) => return Ok(()),
            other => other?,
        };
        if !is_dir(&st) {
            return match unlinkat(dir, name, UnlinkatFlags::NoRemoveDir) {
                Ok(()) | Err(Errno::ENOENT) => Ok(()),
                Err(e) => Err(e.into()),
            };
        }
        let child = self.enter(dir, &path, name, &st)?;
        let emptied = self.empty(child, &path);
        match unlinkat(dir, name, UnlinkatFlags::RemoveDir) {
            Ok(()) | Err(Errno::ENOENT) => emptied,
            Err(e) => emptied.and(Err(io::Error::from(e))),
        }
    }

    /// Opens the directory `name` in `dir` if it is the one `st` describes and on `dir`'s
    /// mount; an error naming it otherwise.
    fn enter(
        &self,
        dir: BorrowedFd<'_>,
        path: &Path,
        name: &OsStr,
        st: &FileStat,
    ) -> io::Result<OwnedFd> {
        let parent = fstat(dir)?;
        if st.st_dev != parent.st_dev || self.mounted.iter().any(|m| m == path) {
            return Err(error(path, "is a mount point"));
        }
        let child = open_dir(dir, name)?;
        let opened = fstat(&child)?;
        if (opened.st_dev, opened.st_ino) != (st.st_dev, st.st_ino) {
            return Err(error(path, "was replaced while it was being removed"));
        }
        match (mount_id(dir), mount_id(child.as_fd())) {
            (Some(a), Some(b)) if a != b => Err(error(path, "is a mount point")),
            _ => Ok(child),
        }
    }

    /// Removes every entry of the directory `dir` (at `path`); the first error, after trying
    /// them all.
    fn empty(&self, dir: OwnedFd, path: &Path) -> io::Result<()> {
        let mut stream = Dir::from_fd(dir)?;
        let mut names: Vec<OsString> = Vec::new();
        for entry in stream.iter() {
            let entry = entry?;
            let name = entry.file_name().to_bytes();
            if name != b"." && name != b".." {
                names.push(OsStr::from_bytes(name).to_owned());
            }
        }
        let mut result = Ok(());
        for name in names {
            let removed = self.remove(stream.as_fd(), path, &name);
            if result.is_ok() {
                result = removed;
            }
        }
        result
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use nix::mount::{MsFlags, mount};
    use std::fs;

    /// Makes `base/outside/keep` and a tree `base/tree` holding a file, a symbolic link to
    /// `outside` and an empty directory `m` for a mount; returns (tree, mount point, keep).
    fn tree_beside_a_file(base: &Path) -> (PathBuf, PathBuf, PathBuf) {
        let outside = base.join("outside");
        fs::create_dir_all(&outside).unwrap();
        let keep = outside.join("keep");
        fs::write(&keep, "must survive").unwrap();
        let tree = base.join("tree");
        let m = tree.join("sub/m");
        fs::create_dir_all(&m).unwrap();
        fs::write(tree.join("sub/file"), "x").unwrap();
        std::os::unix::fs::symlink(&outside, tree.join("link")).unwrap();
        (tree, m, keep)
    }

    /// Bind-mounts `from` on `to`; prints a note and returns false where mount is refused.
    fn bind(from: &Path, to: &Path) -> bool {
        match mount(Some(from), to, None::<&str>, MsFlags::MS_BIND, None::<&str>) {
            Ok(()) => true,
            Err(e) => {
                println!("note: skipped, bind mount refused here ({e})");
                false
            }
        }
    }

    /// A bind mount of a directory outside the tree is detached, not followed: the tree goes,
    /// the file outside stays. (The body runs in its own mount namespace where the kernel
    /// permits one, so the mount never reaches the host.)
    #[test]
    fn a_bind_mount_under_the_tree_is_detached_and_not_followed() {
        crate::isolated(|| {
            let (tree, m, keep) = tree_beside_a_file(&crate::scratch_dir());
            if !bind(keep.parent().unwrap(), &m) {
                return;
            }
            remove_tree(&tree).unwrap();
            assert!(!tree.exists(), "the tree is still there");
            assert_eq!(fs::read_to_string(&keep).unwrap(), "must survive");
            assert!(mount_points_under(&tree).is_empty());
        });
    }

    /// A mount that stays (as one whose unmount is refused) is skipped with what is under
    /// it, and named in the error; everything else of the tree is removed.
    #[test]
    fn a_mount_that_stays_is_skipped_and_named() {
        crate::isolated(|| {
            let (tree, m, keep) = tree_beside_a_file(&crate::scratch_dir());
            if !bind(keep.parent().unwrap(), &m) {
                return;
            }
            let parent = fs::canonicalize(tree.parent().unwrap()).unwrap();
            let dir = open_dir(AT_FDCWD, &parent).unwrap();
            let e = remove_entry(dir.as_fd(), &parent, tree.file_name().unwrap()).unwrap_err();
            assert!(e.to_string().contains("sub/m is a mount point"), "{e}");
            assert_eq!(fs::read_to_string(&keep).unwrap(), "must survive");
            assert!(!tree.join("sub/file").exists() && !tree.join("link").exists());
            umount2(&m, MntFlags::MNT_DETACH).unwrap();
            remove_tree(&tree).unwrap();
            assert!(!tree.exists());
        });
    }

    /// Without any mount, a symbolic link to a directory outside is removed as a link.
    #[test]
    fn a_symbolic_link_is_removed_not_followed() {
        crate::isolated(|| {
            let (tree, _, keep) = tree_beside_a_file(&crate::scratch_dir());
            remove_tree(&tree).unwrap();
            assert!(!tree.exists());
            assert!(keep.exists());
            assert!(remove_tree(&tree).is_ok(), "a missing tree is no error");
        });
    }
}
