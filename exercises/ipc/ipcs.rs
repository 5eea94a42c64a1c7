//! # ipcs: the System V objects, limits and usage the kernel shows (System V 进程间通信对象)
//!
//! System V IPC has three kinds of objects: shared memory segments (共享内存, `shmget(2)`),
//! message queues (消息队列, `msgget(2)`) and semaphore sets (信号量集, `semget(2)`). Unlike a
//! pipe they have no file descriptor and no name in a directory: each has a numeric **id**
//! that the kernel hands out, and usually a **key** (`key_t`, a plain 32-bit number the
//! programs agree on; `IPC_PRIVATE`, 0, means "no key"). They live in the kernel until someone
//! removes them with `IPC_RMID` (or the IPC namespace they belong to goes away), whether or not
//! any process still uses them. That is why a tool to list them exists: `ipcs(1)`.
//!
//! The kernel shows every object of the caller's IPC namespace in three text files, one line
//! per object under a header line that names the columns (proc(5)):
//!
//! ```text
//! /proc/sysvipc/shm   key shmid perms size cpid lpid nattch uid gid cuid cgid atime dtime ctime rss swap
//! /proc/sysvipc/msg   key msqid perms cbytes qnum lspid lrpid uid gid cuid cgid stime rtime ctime
//! /proc/sysvipc/sem   key semid perms nsems uid gid cuid cgid otime ctime
//! ```
//!
//! A few things to know about these columns:
//!
//! - **Find each column by its name in the header, never by its position.** Kernels have added
//!   columns over the years (`rss` and `swap` came late) and the widths differ between files,
//!   so a program that counts on "size is the 4th word" or "starts at character 31" breaks on
//!   the next kernel. Split every line on whitespace, look up the index of each name you need
//!   in the header's words, and take that word of every row.
//! - `key` is signed decimal (a key with the top bit set is negative), `perms` is **octal**
//!   (`600` means `rw-------`). For shared memory `perms` may also carry the kernel's flags
//!   above the nine permission bits: `SHM_DEST` (`0o1000`), set when the segment was removed
//!   while still attached (it disappears at the last detach and its key is already
//!   `IPC_PRIVATE`), and `SHM_LOCKED` (`0o2000`).
//! - `uid`/`gid` are the **owner**, which `IPC_SET` can change; `cuid`/`cgid` the creator,
//!   which never changes. "The caller's objects" here means those whose owner `uid` is the
//!   caller's effective uid.
//! - `size` and `cbytes` are bytes; `rss` and `swap` are bytes too (whole pages). `cpid` is the
//!   pid that created a segment, `lpid` the last one that attached or detached it, `nattch` how
//!   many attachments it has; `lspid`/`lrpid` the last sender and receiver of a queue, `qnum`
//!   the messages in it; `nsems` the size of a semaphore set.
//!
//! ## Limits (`ipcs -l`) and usage (`ipcs -u`)
//!
//! The limits are sysctls, one decimal number per file under `/proc/sys/kernel/` (sysctl(8),
//! proc(5)); each IPC namespace has its own copy, and its root may change them:
//!
//! - `shmmax`: the largest segment, in **bytes**; `shmmni`: how many segments; `shmall`: how
//!   much shared memory all segments together may hold, in **pages**, not bytes (multiply by
//!   the page size, `sysconf(_SC_PAGESIZE)`, to get what `ipcs -l` shows as kbytes);
//! - `msgmax`: the largest message, in bytes; `msgmnb`: the default capacity of a queue, in
//!   bytes; `msgmni`: how many queues;
//! - `sem`: four numbers on one line, in this order: `semmsl` (semaphores per set), `semmns`
//!   (semaphores in all sets), `semopm` (operations per `semop` call), `semmni` (sets).
//!
//! The usage that `ipcs -u` shows is a sum over every object of the namespace, whoever owns it:
//! segments, the pages they take (a segment of one byte still takes a whole page: round each
//! size **up** to whole pages), the pages resident in memory (`rss`); queues, the messages in
//! them (`ipcs` calls them "used headers") and their bytes ("used space"); semaphore sets
//! ("used arrays") and the semaphores in them.
//!
//! The kernel also reports the same numbers through `shmctl(IPC_INFO/SHM_INFO)`,
//! `msgctl(IPC_INFO/MSG_INFO)` and `semctl(IPC_INFO/SEM_INFO)`; the tests compare your answers
//! with those, with the objects they made themselves, and with the limits they wrote. Here you
//! read the files only.
//!
//! ## What you write
//!
//! - [`parse_shm`], [`parse_msg`], [`parse_sem`]: one file's text to structs, columns found by
//!   name. The tests also feed them text whose columns are reordered and padded, with a column
//!   no kernel has yet.
//! - [`own_objects`]: the three files read and parsed, only the caller's objects kept.
//! - [`limits`]: the sysctls above.
//! - [`usage`]: the sums above, over every object of the namespace.
//!
//! Bad input is an error (`std::io::ErrorKind::InvalidData`, saying what is wrong), never a
//! panic. Man pages: svipc(7), sysvipc(7) on some systems, proc(5) (`/proc/sysvipc`,
//! `/proc/sys/kernel`), shmget(2), shmctl(2), msgget(2), msgctl(2), semget(2), semctl(2),
//! ipcs(1), sysconf(3).
use std::io;

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

/// Parses the text of `/proc/sysvipc/shm`: a header line naming the columns, then one line per
/// segment. Every segment in the text is returned (no filtering by owner), in its order.
///
/// Columns are found by their names in the header (`key`, `shmid`, `perms`, `size`, `nattch`,
/// `uid`, `cpid`, `lpid`, `rss`), wherever they stand; other columns are ignored. A missing
/// header or column, a row with too few words, or a word that is not a number is an error of
/// kind `InvalidData`.
pub fn parse_shm(_text: &str) -> io::Result<Vec<Segment>> {
    todo!()
}

/// Parses the text of `/proc/sysvipc/msg` like [`parse_shm`] (columns `key`, `msqid`,
/// `perms`, `uid`, `cbytes`, `qnum`, `lspid`, `lrpid`).
pub fn parse_msg(_text: &str) -> io::Result<Vec<Queue>> {
    todo!()
}

/// Parses the text of `/proc/sysvipc/sem` like [`parse_shm`] (columns `key`, `semid`,
/// `perms`, `uid`, `nsems`).
pub fn parse_sem(_text: &str) -> io::Result<Vec<SemSet>> {
    todo!()
}

/// The caller's own objects: reads `/proc/sysvipc/{shm,msg,sem}`, parses them and keeps the
/// objects whose owner `uid` is the caller's effective uid (`geteuid(2)`).
pub fn own_objects() -> io::Result<Objects> {
    todo!()
}

/// Reads the limits from `/proc/sys/kernel/{shmmax,shmall,shmmni,msgmax,msgmnb,msgmni,sem}`.
pub fn limits() -> io::Result<Limits> {
    todo!()
}

/// Sums up every object of the namespace, from `/proc/sysvipc/{shm,msg,sem}`.
pub fn usage() -> io::Result<Usage> {
    todo!()
}
