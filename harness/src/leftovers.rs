// depends on: mounts, posix_ipc, procfs, scratch (used by the body, stage B).
//! What the test left in directories other than its scratch directory: files in `/tmp` and
//! in `TMPDIR`, files in the directory the tests were started from (a `chdir` back there, or
//! a path built from it), POSIX shared memory objects and named semaphores in `/dev/shm`, and
//! POSIX message queues in the mqueue filesystem.
//!
//! Before the body runs, the body process notes the names in each of these directories
//! ([`Leftovers::watch`]); afterwards every new name is reported and removed
//! ([`Leftovers::check`]). A directory on a fresh filesystem of the test's own (its private
//! `/tmp`, `/dev/shm` or mqueue mount, see `mounts`) holds only what the test made. In a
//! directory shared with the machine (the starting directory always; `/tmp`, `/dev/shm` and
//! `/dev/mqueue` without a private mount namespace) a new entry counts only if the test's uid
//! owns it, its ctime is after the test started and no process outside the test holds it
//! open or has it as its working directory, and hidden names (and, in `/tmp`, the
//! temporary directories of rustc and gcc, which may be linking beside the tests) are not
//! looked at; a name that existed before is never touched. Removal never follows a symbolic
//! link nor enters another mount (see `scratch`).
use std::collections::HashSet;
use std::ffi::{OsStr, OsString};
use std::os::fd::{AsFd, BorrowedFd, OwnedFd, RawFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use nix::dir::Dir;
use nix::fcntl::{AtFlags, OFlag, open, openat};
use nix::sys::stat::{FileStat, Mode, SFlag, fstat, fstatat, stat};
use nix::sys::time::TimeSpec;
use nix::time::{ClockId, clock_gettime};
use nix::unistd::{Pid, UnlinkatFlags, geteuid, unlinkat};

use crate::mounts::{Mqueue, Views};
use crate::posix_ipc;
use crate::procfs;
use crate::scratch;

/// What a watched directory holds, which decides how its entries are named.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Place {
    /// `/tmp` or `TMPDIR`.
    Tmp,
    /// The directory the test binary was started in.
    StartDir,
    /// `/dev/shm`: POSIX shared memory and named semaphores.
    SharedMemory,
    /// The mqueue filesystem: POSIX message queues.
    MessageQueues,
}

/// One directory whose new entries are the test's leftovers.
struct Watch {
    place: Place,
    /// The directory's canonical path (for messages and to reopen it).
    path: PathBuf,
    /// Where there is no path to reopen: a raw fd held across the body (a detached mqueue).
    fd: Option<RawFd>,
    /// Device and inode of the directory, to know it is still the same one.
    id: (u64, u64),
    /// On a fresh filesystem of the test's own: every new entry is the test's.
    private: bool,
    /// The names it held before the body.
    before: HashSet<OsString>,
}

/// The watched directories of one test, and the notes on those that are shared.
pub(crate) struct Leftovers {
    watches: Vec<Watch>,
    uid: u32,
    since: TimeSpec,
    /// Sentences on what is checked less well here, for the report's notes.
    pub notes: Vec<String>,
}

impl Leftovers {
    /// Notes what each directory holds now. `views`: what the private mount namespace gave
    /// (`None` without one); `ipc_private`: whether the IPC namespace is the test's own;
    /// `start_dir`: the directory the test binary was started in, if known.
    pub(crate) fn watch(
        views: Option<&Views>,
        ipc_private: bool,
        start_dir: Option<&Path>,
    ) -> Leftovers {
        let since = clock_gettime(ClockId::CLOCK_REALTIME_COARSE).unwrap_or(TimeSpec::new(0, 0));
        let fresh = fresh_devices(views);
        let mut watches: Vec<Watch> = Vec::new();
        let mut add = |place, path: &Path, fd| {
            if let Some(w) = Watch::new(place, path, fd, &fresh)
                && !watches.iter().any(|o| o.id == w.id)
            {
                watches.push(w);
            }
        };
        add(Place::Tmp, Path::new("/tmp"), None);
        add(Place::Tmp, &std::env::temp_dir(), None);
        if let Some(dir) = start_dir {
            add(Place::StartDir, dir, None);
        }
        add(Place::SharedMemory, Path::new("/dev/shm"), None);
        let mut notes = Vec::new();
        match (views.and_then(|v| v.mqueue.as_ref()), ipc_private) {
            (Some(Mqueue::At(path)), _) => add(Place::MessageQueues, path, None),
            (Some(Mqueue::Detached(fd)), _) => {
                add(Place::MessageQueues, Path::new("/dev/mqueue"), Some(*fd))
            }
            (None, false) if hosts_mqueue_mount() => {
                add(Place::MessageQueues, Path::new("/dev/mqueue"), None)
            }
            (None, _) => notes.push(unchecked_queues(views.is_some(), ipc_private)),
        }
        notes.extend(shared_note(&watches, views));
        Leftovers {
            watches,
            uid: geteuid().as_raw(),
            since,
            notes,
        }
    }

    /// What the test left in the watched directories, one sentence each; removes it as it goes.
    pub(crate) fn check(&self) -> Vec<String> {
        self.watches
            .iter()
            .flat_map(|w| w.check(self.uid, self.since))
            .collect()
    }
}

/// The devices of the fresh filesystems the private mount namespace gave.
fn fresh_devices(views: Option<&Views>) -> Vec<u64> {
    let Some(views) = views else {
        return Vec::new();
    };
    let mut devs = Vec::new();
    let mut add = |path: &str| devs.extend(stat(path).ok().map(|st| st.st_dev));
    if views.shm {
        add("/dev/shm");
    }
    if views.tmp.is_ok() {
        add("/tmp");
    }
    match &views.mqueue {
        Some(Mqueue::At(path)) => devs.extend(stat(path.as_path()).ok().map(|st| st.st_dev)),
        Some(Mqueue::Detached(fd)) => devs.extend(identity(*fd).map(|(dev, _)| dev)),
        None => {}
    }
    devs
}

/// Whether `/dev/mqueue` is an mqueue mount (of the machine's IPC namespace).
fn hosts_mqueue_mount() -> bool {
    procfs::mounts(Pid::this())
        .unwrap_or_default()
        .iter()
        .any(|m| m.fstype == "mqueue" && m.point == Path::new("/dev/mqueue"))
}

/// The note when POSIX message queues cannot be listed.
fn unchecked_queues(mount_namespace: bool, ipc_private: bool) -> String {
    let why = if ipc_private && !mount_namespace {
        "its IPC namespace is private but there is no private mount namespace to mount its mqueue filesystem in \
         (its queues vanish with the namespace all the same)"
    } else {
        "there is no mqueue filesystem on /dev/mqueue to list them, and none could be mounted"
    };
    format!("POSIX message queues left by the test are not reported: {why}")
}

/// The note naming `/tmp`, `/dev/shm` and the mqueue directory where they are the machine's.
fn shared_note(watches: &[Watch], views: Option<&Views>) -> Option<String> {
    let shared: Vec<String> = watches
        .iter()
        .filter(|w| !w.private && w.place != Place::StartDir)
        .filter(|w| w.place != Place::Tmp || w.path == Path::new("/tmp"))
        .map(|w| w.path.display().to_string())
        .collect();
    if shared.is_empty() {
        return None;
    }
    let why = match views.map(|v| &v.tmp) {
        None => {
            "there is no private mount namespace (unshare refused, also with a user namespace, or \
                 OSKATA_NO_NAMESPACES set)"
                .to_owned()
        }
        Some(Err(e)) => format!("there is no private /tmp: {e}"),
        Some(Ok(())) => "no fresh filesystem could be mounted there".to_owned(),
    };
    Some(format!(
        "{} are the machine's own in this test, since {why}. What the test left there is told from what other \
         programs made meanwhile only by its owner, its time of creation and whether another process holds it \
         open, and hidden names are not looked at, so a leak can go unnoticed, or another program's file that \
         it closed be taken for the test's (and removed)",
        words_list(&shared)
    ))
}

/// `["a", "b", "c"]` as "a, b and c".
fn words_list(items: &[String]) -> String {
    match items.split_last() {
        Some((last, [])) => last.clone(),
        Some((last, rest)) => format!("{} and {last}", rest.join(", ")),
        None => String::new(),
    }
}

/// Device and inode of the open file `fd`.
fn identity(fd: RawFd) -> Option<(u64, u64)> {
    // SAFETY: only asks the kernel about the number; the borrow ends with the call.
    let borrowed = unsafe { BorrowedFd::borrow_raw(fd) };
    fstat(borrowed).ok().map(|st| (st.st_dev, st.st_ino))
}

/// Opens a directory for reading, read-only and close-on-exec.
fn open_dir_at(at: Option<BorrowedFd<'_>>, path: &Path) -> Option<OwnedFd> {
    let flags = OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC;
    match at {
        Some(dir) => openat(dir, ".", flags, Mode::empty()).ok(),
        None => open(path, flags, Mode::empty()).ok(),
    }
}

/// The names in the directory `fd` (without `.` and `..`), and the directory again.
fn names(fd: OwnedFd) -> Option<(Vec<OsString>, Dir)> {
    let mut dir = Dir::from_fd(fd).ok()?;
    let mut out = Vec::new();
    for entry in dir.iter().flatten() {
        let name = entry.file_name().to_bytes();
        if name != b"." && name != b".." {
            out.push(OsStr::from_bytes(name).to_owned());
        }
    }
    Some((out, dir))
}

/// Whether a name in a shared `/tmp` is a tool's temporary directory or file that may appear
/// beside the tests: rustc's `rustcXXXXXX` (while it links) and gcc's `ccXXXXXX.<ext>`.
fn other_tools_temp(name: &[u8]) -> bool {
    let random = |s: &[u8]| s.len() == 6 && s.iter().all(u8::is_ascii_alphanumeric);
    let stem = name.split(|&b| b == b'.').next().unwrap_or(name);
    name.strip_prefix(b"rustc").is_some_and(random) || stem.strip_prefix(b"cc").is_some_and(random)
}

impl Watch {
    /// Notes what `path` (or the directory `fd`) holds now; `None` where it cannot be read.
    fn new(place: Place, path: &Path, fd: Option<RawFd>, fresh: &[u64]) -> Option<Watch> {
        let path = if fd.is_some() {
            path.to_owned()
        } else {
            std::fs::canonicalize(path).ok()?
        };
        // SAFETY: `fd` is the harness's own fd, open for the life of the body.
        let at = fd.map(|fd| unsafe { BorrowedFd::borrow_raw(fd) });
        let dir = open_dir_at(at, &path)?;
        let st = fstat(&dir).ok()?;
        let (before, _) = names(dir)?;
        Some(Watch {
            place,
            path,
            fd,
            id: (st.st_dev, st.st_ino),
            private: fresh.contains(&st.st_dev),
            before: before.into_iter().collect(),
        })
    }

    /// The directory again, if it is still the one watched.
    fn reopen(&self) -> Option<OwnedFd> {
        let at = match self.fd {
            Some(fd) if identity(fd) != Some(self.id) => return None,
            // SAFETY: `fd` is still the harness's own directory fd (checked just now).
            Some(fd) => Some(unsafe { BorrowedFd::borrow_raw(fd) }),
            None => None,
        };
        let dir = open_dir_at(at, &self.path)?;
        let st = fstat(&dir).ok()?;
        ((st.st_dev, st.st_ino) == self.id).then_some(dir)
    }

    /// The new entries the test left here, one sentence each, removed as they are named.
    fn check(&self, uid: u32, since: TimeSpec) -> Vec<String> {
        let Some((names, dir)) = self.reopen().and_then(names) else {
            return Vec::new();
        };
        let mut leaks = Vec::new();
        // Files other processes have open now, read once and only when needed (see below).
        let mut elsewhere: Option<HashSet<(u64, u64)>> = None;
        for name in names {
            let Ok(st) = fstatat(&dir, name.as_os_str(), AtFlags::AT_SYMLINK_NOFOLLOW) else {
                continue;
            };
            if !self.is_the_tests(&name, &st, uid, since) {
                continue;
            }
            // In a directory shared with the machine, a new file that a process outside the
            // test holds open (another program's log, say) is that program's: left alone.
            if !self.private
                && elsewhere
                    .get_or_insert_with(held_outside_the_test)
                    .contains(&(st.st_dev, st.st_ino))
            {
                continue;
            }
            let mut sentence = self.describe(dir.as_fd(), &name, &st);
            if let Err(e) = self.remove(dir.as_fd(), &name) {
                sentence.push_str(&format!(" (it could not be removed: {e})"));
            }
            leaks.push(sentence);
        }
        leaks
    }

    /// Whether the entry `name` (with `st`) is new and made by the test.
    fn is_the_tests(&self, name: &OsStr, st: &FileStat, uid: u32, since: TimeSpec) -> bool {
        let bytes = name.as_bytes();
        if self.before.contains(name) || (self.place == Place::Tmp && bytes.starts_with(b"oskata-"))
        {
            return false;
        }
        if self.private {
            return true;
        }
        let hidden =
            bytes.starts_with(b".") || (self.place == Place::Tmp && other_tools_temp(bytes));
        // In whole seconds: some filesystems (mqueue) keep no finer times. The names noted
        // before the body already leave out everything older.
        let made_since = st.st_ctime >= since.tv_sec();
        !hidden && st.st_uid == uid && made_since
    }

    /// The sentence for one leftover entry.
    fn describe(&self, dir: BorrowedFd<'_>, name: &OsStr, st: &FileStat) -> String {
        let text = name.to_string_lossy();
        let kind = SFlag::from_bits_truncate(st.st_mode & SFlag::S_IFMT.bits());
        match self.place {
            Place::MessageQueues => posix_ipc::mq_sentence(dir, &text, st),
            Place::SharedMemory if kind == SFlag::S_IFREG => posix_ipc::shm_sentence(&text, st),
            place => {
                let size = if kind == SFlag::S_IFREG {
                    format!(", {}", posix_ipc::bytes(st.st_size))
                } else {
                    String::new()
                };
                let whence = if place == Place::StartDir {
                    " in the directory the tests were started from"
                } else {
                    ""
                };
                format!(
                    "file {} was left behind by the test{whence} ({}{size}, mode {:o}, owner uid {}): nobody \
                     removed it (unlink(2) for a file, rmdir(2) for a directory)",
                    self.path.join(name).display(),
                    kind_word(kind),
                    st.st_mode & 0o7777,
                    st.st_uid
                )
            }
        }
    }

    /// Removes the entry `name`: a queue is unlinked; anything else goes as a tree that never
    /// follows a link or leaves its mount.
    fn remove(&self, dir: BorrowedFd<'_>, name: &OsStr) -> std::io::Result<()> {
        match self.place {
            Place::MessageQueues => Ok(unlinkat(dir, name, UnlinkatFlags::NoRemoveDir)?),
            _ => scratch::remove_entry(dir, &self.path, name),
        }
    }
}

/// A file type in words.
fn kind_word(kind: SFlag) -> &'static str {
    match kind {
        SFlag::S_IFREG => "regular file",
        SFlag::S_IFDIR => "directory",
        SFlag::S_IFLNK => "symbolic link",
        SFlag::S_IFIFO => "FIFO",
        SFlag::S_IFSOCK => "socket",
        SFlag::S_IFCHR => "character device",
        SFlag::S_IFBLK => "block device",
        _ => "file",
    }
}

/// The files (device, inode) that processes other than this one and its descendants hold
/// open, or have as their working directory, now: what a test without a private `/tmp` must
/// not take for its own. (Processes whose fds this one may not read are passed over.)
fn held_outside_the_test() -> HashSet<(u64, u64)> {
    let me = Pid::this();
    let mut ours: HashSet<i32> = procfs::descendants(me).iter().map(|p| p.pid).collect();
    ours.insert(me.as_raw());
    let mut held = HashSet::new();
    for p in procfs::all().iter().filter(|p| !ours.contains(&p.pid)) {
        let base = PathBuf::from(format!("/proc/{}", p.pid));
        let fds = std::fs::read_dir(base.join("fd"))
            .into_iter()
            .flatten()
            .flatten();
        for target in fds.map(|e| e.path()).chain([base.join("cwd")]) {
            if let Ok(st) = stat(&target) {
                held.insert((st.st_dev, st.st_ino));
            }
        }
    }
    held
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_temporary_names_of_rustc_and_gcc_are_recognised() {
        for name in ["rustcAb12Cd", "ccXy12Zq.o", "ccXy12Zq.res", "ccXy12Zq"] {
            assert!(other_tools_temp(name.as_bytes()), "{name}");
        }
        for name in ["rustc", "rustcfile.txt", "cc.txt", "notes.txt", "ccabc"] {
            assert!(!other_tools_temp(name.as_bytes()), "{name}");
        }
    }

    #[test]
    fn lists_read_as_words() {
        let list =
            |items: &[&str]| words_list(&items.iter().map(|s| s.to_string()).collect::<Vec<_>>());
        assert_eq!(list(&["/tmp"]), "/tmp");
        assert_eq!(
            list(&["/tmp", "/dev/shm", "/dev/mqueue"]),
            "/tmp, /dev/shm and /dev/mqueue"
        );
    }

    #[test]
    fn file_types_are_named_in_words() {
        assert_eq!(kind_word(SFlag::S_IFDIR), "directory");
        assert_eq!(kind_word(SFlag::S_IFSOCK), "socket");
    }
}
