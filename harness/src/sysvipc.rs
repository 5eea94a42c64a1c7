//! System V IPC objects as the kernel lists them in `/proc/sysvipc/{shm,sem,msg}` (proc(5),
//! sysvipc(7)), and their removal with `IPC_RMID`.
//!
//! System V objects outlive the processes that made them: a segment, semaphore set or queue
//! stays until someone removes it (or the machine reboots). That is why the harness runs each
//! test in a private IPC namespace where it can, and checks what is left afterwards.
use std::fmt;
use std::fs;

/// Which of the three System V object kinds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Kind {
    SharedMemory,
    Semaphores,
    MessageQueue,
}

impl Kind {
    /// All three, in the order `ipcs` shows them.
    pub const ALL: [Kind; 3] = [Kind::SharedMemory, Kind::MessageQueue, Kind::Semaphores];

    fn file(self) -> &'static str {
        match self {
            Kind::SharedMemory => "/proc/sysvipc/shm",
            Kind::Semaphores => "/proc/sysvipc/sem",
            Kind::MessageQueue => "/proc/sysvipc/msg",
        }
    }

    fn id_column(self) -> &'static str {
        match self {
            Kind::SharedMemory => "shmid",
            Kind::Semaphores => "semid",
            Kind::MessageQueue => "msqid",
        }
    }
}

impl fmt::Display for Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Kind::SharedMemory => "shared memory segment",
            Kind::Semaphores => "semaphore set",
            Kind::MessageQueue => "message queue",
        })
    }
}

/// One System V object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IpcObject {
    pub kind: Kind,
    pub key: i32,
    pub id: i32,
    /// Permission bits, as given to `*get` (octal in the file).
    pub perms: u32,
    /// The creator's uid.
    pub cuid: u32,
    /// For shared memory, the pid that created it (`cpid`); other kinds do not record it.
    pub cpid: Option<i32>,
    /// Every pid the kernel recorded for the object: creator and last attach/detach (shm),
    /// last sender and receiver (msg), last operation on each semaphore (sem, by GETPID).
    pub pids: Vec<i32>,
    /// When it was made or last changed by `*ctl` (`ctime`, seconds since the epoch).
    pub ctime: Option<i64>,
    /// The owner's uid (`uid`; `IPC_SET` may make it differ from the creator's).
    pub uid: Option<u32>,
    /// A queue's last sender and last receiver (`lspid`, `lrpid`; 0 when none yet).
    pub last_send_receive: Option<(i32, i32)>,
    /// What the object holds: a segment's bytes (`size`), a set's semaphores (`nsems`), a
    /// queue's messages (`qnum`).
    pub size: Option<u64>,
}

impl IpcObject {
    /// A segment that `IPC_RMID` has already removed but a process still has attached: the
    /// kernel shows it with key 0 and `SHM_DEST` (01000) in its mode, and frees it at the last
    /// detach (shmctl(2)). It is no leak: nobody can attach it any more, and whoever still has
    /// it attached is a process of its own, which the leak check reports if it outlives the test.
    pub fn marked_for_removal(&self) -> bool {
        self.kind == Kind::SharedMemory && self.perms & SHM_DEST != 0
    }
}

/// `SHM_DEST` in a segment's mode: removed, and freed at its last detach.
const SHM_DEST: u32 = 0o1000;

impl fmt::Display for IpcObject {
    /// The object as a leak report names it: id, key, mode, owner, what it holds, and the
    /// pids the kernel keeps: the creator's for a segment; for a queue or a semaphore set the
    /// kernel records no creator pid (svipc(7)), so the last sender and receiver, or the last
    /// `semop` on each semaphore, stand in for it.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "System V {} id {} (key {:#x}, mode {:o}",
            self.kind, self.id, self.key, self.perms
        )?;
        if let Some(uid) = self.uid {
            write!(f, ", owner uid {uid}")?;
        }
        match (self.kind, self.size) {
            (Kind::SharedMemory, Some(n)) => write!(f, ", {n} bytes")?,
            (Kind::Semaphores, Some(n)) => write!(f, ", {n} semaphores")?,
            (Kind::MessageQueue, Some(n)) => write!(f, ", {n} messages queued")?,
            _ => {}
        }
        f.write_str(")")?;
        match self.kind {
            Kind::SharedMemory => {
                if let Some(cpid) = self.cpid {
                    write!(f, ", created by pid {cpid}")?;
                }
            }
            Kind::MessageQueue => match self.last_send_receive {
                Some((0, 0)) | None => {}
                Some((s, r)) => {
                    f.write_str(" (no creator pid is kept for a queue;")?;
                    if s != 0 {
                        write!(f, " last sent to by pid {s}")?;
                    }
                    if r != 0 {
                        write!(f, "{} last read by pid {r}", if s != 0 { "," } else { "" })?;
                    }
                    f.write_str(")")?;
                }
            },
            Kind::Semaphores => {
                if !self.pids.is_empty() {
                    let pids: Vec<String> = self.pids.iter().map(i32::to_string).collect();
                    write!(
                        f,
                        " (no creator pid is kept for a set; last semop by pid {})",
                        pids.join(", ")
                    )?;
                }
            }
        }
        Ok(())
    }
}

/// Parses one `/proc/sysvipc/*` file's text.
pub fn parse(kind: Kind, text: &str) -> Vec<IpcObject> {
    let mut lines = text.lines();
    let header: Vec<&str> = lines
        .next()
        .unwrap_or_default()
        .split_whitespace()
        .collect();
    let col = |name: &str| header.iter().position(|h| *h == name);
    let (Some(key), Some(id), Some(perms), Some(cuid)) =
        (col("key"), col(kind.id_column()), col("perms"), col("cuid"))
    else {
        return Vec::new();
    };
    let cpid = col("cpid");
    let ctime = col("ctime");
    let uid = col("uid");
    let (lspid, lrpid) = (col("lspid"), col("lrpid"));
    let size = col(match kind {
        Kind::SharedMemory => "size",
        Kind::Semaphores => "nsems",
        Kind::MessageQueue => "qnum",
    });
    let pid_cols: Vec<usize> = ["cpid", "lpid", "lspid", "lrpid"]
        .iter()
        .filter_map(|c| col(c))
        .collect();
    lines
        .filter_map(|line| {
            let w: Vec<&str> = line.split_whitespace().collect();
            Some(IpcObject {
                kind,
                key: w.get(key)?.parse().ok()?,
                id: w.get(id)?.parse().ok()?,
                perms: u32::from_str_radix(w.get(perms)?, 8).ok()?,
                cuid: w.get(cuid)?.parse().ok()?,
                cpid: cpid.and_then(|c| w.get(c)?.parse().ok()),
                pids: pid_cols
                    .iter()
                    .filter_map(|&c| w.get(c)?.parse().ok())
                    .filter(|&p| p != 0)
                    .collect(),
                ctime: ctime.and_then(|c| w.get(c)?.parse().ok()),
                uid: uid.and_then(|c| w.get(c)?.parse().ok()),
                last_send_receive: lspid
                    .zip(lrpid)
                    .and_then(|(s, r)| Some((w.get(s)?.parse().ok()?, w.get(r)?.parse().ok()?))),
                size: size.and_then(|c| w.get(c)?.parse().ok()),
            })
        })
        .collect()
}

/// Every System V object visible in this process's IPC namespace.
pub fn list() -> Vec<IpcObject> {
    let mut objects: Vec<IpcObject> = Kind::ALL
        .iter()
        .flat_map(|&kind| parse(kind, &fs::read_to_string(kind.file()).unwrap_or_default()))
        .collect();
    for sem in objects.iter_mut().filter(|o| o.kind == Kind::Semaphores) {
        sem.pids = semaphore_pids(sem.id);
    }
    objects
}

/// The pid of the last `semop` on each semaphore of a set (semctl(2) `GETPID`).
fn semaphore_pids(id: i32) -> Vec<i32> {
    (0..)
        // SAFETY: GETPID takes no argument; an index past the set's size fails with EINVAL.
        .map(|n| unsafe { libc::semctl(id, n, libc::GETPID) })
        .take_while(|&pid| pid >= 0)
        .filter(|&pid| pid > 0)
        .collect()
}

/// Removes one object with `IPC_RMID` (shmctl(2), semctl(2), msgctl(2)).
pub fn remove(object: &IpcObject) -> std::io::Result<()> {
    // SAFETY: IPC_RMID takes no buffer (a null pointer or an ignored argument is allowed).
    let rc = unsafe {
        match object.kind {
            Kind::SharedMemory => libc::shmctl(object.id, libc::IPC_RMID, std::ptr::null_mut()),
            Kind::Semaphores => libc::semctl(object.id, 0, libc::IPC_RMID),
            Kind::MessageQueue => libc::msgctl(object.id, libc::IPC_RMID, std::ptr::null_mut()),
        }
    };
    if rc == -1 {
        Err(std::io::Error::last_os_error())
    } else {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_each_kind() {
        let shm = "       key      shmid perms                  size  cpid  lpid nattch   uid   gid  cuid  cgid      atime      dtime      ctime                   rss                  swap\n         0         12   600                  4096   77    0      0     0     0     0     0          0          0 1700000000                     0                     0\n";
        let objs = parse(Kind::SharedMemory, shm);
        assert_eq!(objs.len(), 1);
        assert_eq!(
            (objs[0].id, objs[0].perms, objs[0].cpid),
            (12, 0o600, Some(77))
        );
        let sem = "       key      semid perms      nsems   uid   gid  cuid  cgid      otime      ctime\n      1234          5   666          1  1000  1000  1000  1000          0 1700000000\n";
        let objs = parse(Kind::Semaphores, sem);
        assert_eq!(
            (
                objs[0].key,
                objs[0].id,
                objs[0].perms,
                objs[0].cuid,
                objs[0].cpid
            ),
            (1234, 5, 0o666, 1000, None)
        );
        let msg = "       key      msqid perms      cbytes       qnum lspid lrpid   uid   gid  cuid  cgid      stime      rtime      ctime\n        -1          3   644           0          0     0     0     0     0     0     0          0          0 1700000000\n";
        assert_eq!(parse(Kind::MessageQueue, msg)[0].key, -1);
        assert!(parse(Kind::MessageQueue, "").is_empty());
    }

    #[test]
    fn a_removed_segment_still_attached_is_marked() {
        let shm = "key shmid perms size cpid lpid nattch uid gid cuid cgid\n 0 12 1600 24 7 7 1 0 0 0 0\n 5 13 600 24 7 7 1 0 0 0 0\n";
        let objs = parse(Kind::SharedMemory, shm);
        assert!(objs[0].marked_for_removal());
        assert!(!objs[1].marked_for_removal());
    }

    #[test]
    fn a_leak_names_what_the_kernel_keeps_of_each_kind() {
        let shm = "key shmid perms size cpid lpid nattch uid gid cuid cgid\n 10 12 600 4096 77 0 0 5 0 5 0\n";
        assert_eq!(
            parse(Kind::SharedMemory, shm)[0].to_string(),
            "System V shared memory segment id 12 (key 0xa, mode 600, owner uid 5, 4096 bytes), created by pid 77"
        );
        let msg = "key msqid perms cbytes qnum lspid lrpid uid gid cuid cgid\n 1 3 644 10 2 41 0 0 0 0 0\n";
        assert_eq!(
            parse(Kind::MessageQueue, msg)[0].to_string(),
            "System V message queue id 3 (key 0x1, mode 644, owner uid 0, 2 messages queued) (no creator pid is kept \
             for a queue; last sent to by pid 41)"
        );
        let mut sem = parse(
            Kind::Semaphores,
            "key semid perms nsems uid gid cuid cgid\n 1 5 600 2 0 0 0 0\n",
        );
        sem[0].pids = vec![8, 9];
        assert_eq!(
            sem[0].to_string(),
            "System V semaphore set id 5 (key 0x1, mode 600, owner uid 0, 2 semaphores) (no creator pid is kept for \
             a set; last semop by pid 8, 9)"
        );
    }
}
