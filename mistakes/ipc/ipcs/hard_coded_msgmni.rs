//! # ipcs: the System V objects, limits and usage the kernel shows (System V 进程间通信对象)
//!
//! Reference solution. See `exercises/ipc/ipcs.rs` for the lesson.
use std::fs;
use std::io;
use std::str::FromStr;

use nix::unistd::{SysconfVar, geteuid, sysconf};

/// A shared memory segment, one row of `/proc/sysvipc/shm`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Segment {
    /// The key it was made with (`key`); 0 for `IPC_PRIVATE` and after `IPC_RMID`.
    pub key: i32,
    /// Its id (`shmid`), the number `shmat`/`shmctl` take.
    pub id: i32,
    /// The nine permission bits of `perms` (`perms & 0o777`).
    pub mode: u32,
    /// Whether `perms` carries `SHM_DEST` (`0o1000`): removed, gone at the last detach.
    pub dest: bool,
    /// Its size in bytes (`size`).
    pub size: u64,
    /// How many attachments it has (`nattch`).
    pub nattch: u64,
    /// The owner's uid (`uid`).
    pub uid: u32,
    /// The pid that created it (`cpid`).
    pub cpid: i32,
    /// The pid that last attached or detached it (`lpid`; 0 if none has).
    pub lpid: i32,
    /// The bytes of it resident in memory (`rss`).
    pub rss: u64,
}

/// A message queue, one row of `/proc/sysvipc/msg`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Queue {
    /// The key it was made with (`key`); 0 for `IPC_PRIVATE`.
    pub key: i32,
    /// Its id (`msqid`).
    pub id: i32,
    /// The nine permission bits of `perms`.
    pub mode: u32,
    /// The owner's uid (`uid`).
    pub uid: u32,
    /// The bytes of all the messages in it (`cbytes`).
    pub bytes: u64,
    /// How many messages it holds (`qnum`).
    pub messages: u64,
    /// The pid of the last `msgsnd` (`lspid`; 0 if none).
    pub lspid: i32,
    /// The pid of the last `msgrcv` (`lrpid`; 0 if none).
    pub lrpid: i32,
}

/// A semaphore set, one row of `/proc/sysvipc/sem`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SemSet {
    /// The key it was made with (`key`); 0 for `IPC_PRIVATE`.
    pub key: i32,
    /// Its id (`semid`).
    pub id: i32,
    /// The nine permission bits of `perms`.
    pub mode: u32,
    /// The owner's uid (`uid`).
    pub uid: u32,
    /// How many semaphores it has (`nsems`).
    pub nsems: u64,
}

/// The caller's objects of each kind, in the order the kernel lists them.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Objects {
    /// Shared memory segments.
    pub segments: Vec<Segment>,
    /// Message queues.
    pub queues: Vec<Queue>,
    /// Semaphore sets.
    pub sem_sets: Vec<SemSet>,
}

/// The limits that `ipcs -l` shows, as the kernel holds them in `/proc/sys/kernel/*`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// `shmmax`: the largest segment, in bytes.
    pub shmmax: u64,
    /// `shmall`: all segments together, in pages.
    pub shmall: u64,
    /// `shmall` in bytes (pages times the page size; `u64::MAX` if that does not fit).
    pub shm_total_bytes: u64,
    /// `shmmni`: the most segments.
    pub shmmni: u64,
    /// `msgmax`: the largest message, in bytes.
    pub msgmax: u64,
    /// `msgmnb`: a new queue's capacity, in bytes.
    pub msgmnb: u64,
    /// `msgmni`: the most queues.
    pub msgmni: u64,
    /// `semmsl`, the first field of `sem`: the most semaphores in one set.
    pub semmsl: u64,
    /// `semmns`, the second field: the most semaphores in all sets.
    pub semmns: u64,
    /// `semopm`, the third field: the most operations in one `semop` call.
    pub semopm: u64,
    /// `semmni`, the fourth field: the most semaphore sets.
    pub semmni: u64,
}

/// The usage that `ipcs -u` shows: sums over every object of the IPC namespace, whoever owns
/// it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Usage {
    /// "segments allocated": how many segments.
    pub shm_segments: u64,
    /// "pages allocated": the sum of each segment's size rounded up to whole pages.
    pub shm_pages_allocated: u64,
    /// "pages resident": the sum of the segments' `rss`, in pages.
    pub shm_pages_resident: u64,
    /// "allocated queues": how many message queues.
    pub msg_queues: u64,
    /// "used headers": how many messages are queued, in all queues.
    pub msg_messages: u64,
    /// "used space": the bytes of those messages.
    pub msg_bytes: u64,
    /// "used arrays": how many semaphore sets.
    pub sem_sets: u64,
    /// "allocated semaphores": the semaphores in all sets.
    pub sem_semaphores: u64,
}

/// One `/proc/sysvipc/*` file split into words: the header's column names, then the rows.
struct Table<'a> {
    header: Vec<&'a str>,
    rows: Vec<(usize, Vec<&'a str>)>,
}

/// An `InvalidData` error saying `what`.
fn invalid(what: String) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, what)
}

impl<'a> Table<'a> {
    /// Splits `text` on whitespace, line by line; the first non-empty line is the header.
    fn new(text: &'a str) -> io::Result<Self> {
        let mut lines = text
            .lines()
            .enumerate()
            .map(|(n, l)| (n + 1, l.split_whitespace().collect::<Vec<_>>()))
            .filter(|(_, words)| !words.is_empty());
        let (_, header) = lines
            .next()
            .ok_or_else(|| invalid("no header line naming the columns".into()))?;
        Ok(Table {
            header,
            rows: lines.collect(),
        })
    }

    /// The position of the column called `name` in the header.
    fn column(&self, name: &str) -> io::Result<usize> {
        self.header.iter().position(|h| *h == name).ok_or_else(|| {
            invalid(format!(
                "the header has no column `{name}`: {:?}",
                self.header
            ))
        })
    }
}

/// Where a column stands, found by name, to read it from each row.
struct Column {
    name: &'static str,
    at: usize,
}

impl Column {
    fn find(table: &Table<'_>, name: &'static str) -> io::Result<Column> {
        Ok(Column {
            name,
            at: table.column(name)?,
        })
    }

    /// This column's word of `row` (line `line`).
    fn word<'a>(&self, line: usize, row: &[&'a str]) -> io::Result<&'a str> {
        row.get(self.at).copied().ok_or_else(|| {
            invalid(format!(
                "line {line} has {} words, too few for column `{}`",
                row.len(),
                self.name
            ))
        })
    }

    /// This column's word of `row`, as a decimal number.
    fn number<T: FromStr>(&self, line: usize, row: &[&str]) -> io::Result<T> {
        let word = self.word(line, row)?;
        word.parse().map_err(|_| {
            invalid(format!(
                "line {line}: `{word}` in column `{}` is not a number",
                self.name
            ))
        })
    }

    /// This column's word of `row`, as an octal number (`perms`).
    fn octal(&self, line: usize, row: &[&str]) -> io::Result<u32> {
        let word = self.word(line, row)?;
        u32::from_str_radix(word, 8).map_err(|_| {
            invalid(format!(
                "line {line}: `{word}` in column `{}` is not an octal number",
                self.name
            ))
        })
    }
}

/// `SHM_DEST` in a segment's `perms`: removed while attached.
const SHM_DEST: u32 = 0o1000;

/// Parses the text of `/proc/sysvipc/shm`, columns found by name.
pub fn parse_shm(text: &str) -> io::Result<Vec<Segment>> {
    let t = Table::new(text)?;
    let c = |name| Column::find(&t, name);
    let (key, id, perms, size) = (c("key")?, c("shmid")?, c("perms")?, c("size")?);
    let (nattch, uid, cpid, lpid, rss) =
        (c("nattch")?, c("uid")?, c("cpid")?, c("lpid")?, c("rss")?);
    t.rows
        .iter()
        .map(|(n, row)| {
            let perms = perms.octal(*n, row)?;
            Ok(Segment {
                key: key.number(*n, row)?,
                id: id.number(*n, row)?,
                mode: perms & 0o777,
                dest: perms & SHM_DEST != 0,
                size: size.number(*n, row)?,
                nattch: nattch.number(*n, row)?,
                uid: uid.number(*n, row)?,
                cpid: cpid.number(*n, row)?,
                lpid: lpid.number(*n, row)?,
                rss: rss.number(*n, row)?,
            })
        })
        .collect()
}

/// Parses the text of `/proc/sysvipc/msg`, columns found by name.
pub fn parse_msg(text: &str) -> io::Result<Vec<Queue>> {
    let t = Table::new(text)?;
    let c = |name| Column::find(&t, name);
    let (key, id, perms, uid) = (c("key")?, c("msqid")?, c("perms")?, c("uid")?);
    let (cbytes, qnum, lspid, lrpid) = (c("cbytes")?, c("qnum")?, c("lspid")?, c("lrpid")?);
    t.rows
        .iter()
        .map(|(n, row)| {
            Ok(Queue {
                key: key.number(*n, row)?,
                id: id.number(*n, row)?,
                mode: perms.octal(*n, row)? & 0o777,
                uid: uid.number(*n, row)?,
                bytes: cbytes.number(*n, row)?,
                messages: qnum.number(*n, row)?,
                lspid: lspid.number(*n, row)?,
                lrpid: lrpid.number(*n, row)?,
            })
        })
        .collect()
}

/// Parses the text of `/proc/sysvipc/sem`, columns found by name.
pub fn parse_sem(text: &str) -> io::Result<Vec<SemSet>> {
    let t = Table::new(text)?;
    let c = |name| Column::find(&t, name);
    let (key, id, perms, uid, nsems) =
        (c("key")?, c("semid")?, c("perms")?, c("uid")?, c("nsems")?);
    t.rows
        .iter()
        .map(|(n, row)| {
            Ok(SemSet {
                key: key.number(*n, row)?,
                id: id.number(*n, row)?,
                mode: perms.octal(*n, row)? & 0o777,
                uid: uid.number(*n, row)?,
                nsems: nsems.number(*n, row)?,
            })
        })
        .collect()
}

/// Every object of the namespace, as the three files list them.
fn all_objects() -> io::Result<Objects> {
    Ok(Objects {
        segments: parse_shm(&fs::read_to_string("/proc/sysvipc/shm")?)?,
        queues: parse_msg(&fs::read_to_string("/proc/sysvipc/msg")?)?,
        sem_sets: parse_sem(&fs::read_to_string("/proc/sysvipc/sem")?)?,
    })
}

/// The caller's own objects: those whose owner `uid` is the caller's effective uid.
pub fn own_objects() -> io::Result<Objects> {
    let me = geteuid().as_raw();
    let mut all = all_objects()?;
    all.segments.retain(|s| s.uid == me);
    all.queues.retain(|q| q.uid == me);
    all.sem_sets.retain(|s| s.uid == me);
    Ok(all)
}

/// The numbers in `/proc/sys/kernel/<name>`, whitespace-separated.
fn sysctl(name: &str) -> io::Result<Vec<u64>> {
    let path = format!("/proc/sys/kernel/{name}");
    let text = fs::read_to_string(&path)?;
    text.split_whitespace()
        .map(|w| {
            w.parse()
                .map_err(|_| invalid(format!("{path}: `{w}` is not a number")))
        })
        .collect()
}

/// The one number in `/proc/sys/kernel/<name>`.
fn sysctl_one(name: &str) -> io::Result<u64> {
    match sysctl(name)?[..] {
        [n] => Ok(n),
        ref other => Err(invalid(format!(
            "/proc/sys/kernel/{name} holds {} numbers, not one",
            other.len()
        ))),
    }
}

/// The page size, `sysconf(_SC_PAGESIZE)`.
fn page_size() -> io::Result<u64> {
    match sysconf(SysconfVar::PAGE_SIZE) {
        Ok(Some(n)) if n > 0 => Ok(n as u64),
        Ok(_) => Err(invalid("sysconf(_SC_PAGESIZE) gave no page size".into())),
        Err(e) => Err(e.into()),
    }
}

/// Reads the limits from `/proc/sys/kernel/*`.
pub fn limits() -> io::Result<Limits> {
    let [semmsl, semmns, semopm, semmni] = sysctl("sem")?[..] else {
        return Err(invalid(
            "/proc/sys/kernel/sem should hold four numbers: semmsl semmns semopm semmni".into(),
        ));
    };
    let shmall = sysctl_one("shmall")?;
    Ok(Limits {
        shmmax: sysctl_one("shmmax")?,
        shmall,
        shm_total_bytes: shmall.saturating_mul(page_size()?),
        shmmni: sysctl_one("shmmni")?,
        msgmax: sysctl_one("msgmax")?,
        msgmnb: sysctl_one("msgmnb")?,
        // The mistake: the kernel's default, not what this namespace holds.
        msgmni: 32000,
        semmsl,
        semmns,
        semopm,
        semmni,
    })
}

/// Sums up every object of the namespace.
pub fn usage() -> io::Result<Usage> {
    let page = page_size()?;
    let all = all_objects()?;
    Ok(Usage {
        shm_segments: all.segments.len() as u64,
        shm_pages_allocated: all.segments.iter().map(|s| s.size.div_ceil(page)).sum(),
        shm_pages_resident: all.segments.iter().map(|s| s.rss / page).sum(),
        msg_queues: all.queues.len() as u64,
        msg_messages: all.queues.iter().map(|q| q.messages).sum(),
        msg_bytes: all.queues.iter().map(|q| q.bytes).sum(),
        sem_sets: all.sem_sets.len() as u64,
        sem_semaphores: all.sem_sets.iter().map(|s| s.nsems).sum(),
    })
}
