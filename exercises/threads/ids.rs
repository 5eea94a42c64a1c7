//! # Thread ids: getpid versus gettid (线程 ID)
//!
//! A thread is a task of its own in the kernel: it has its own id, the **tid** (thread id),
//! which `gettid(2)` returns. All the threads of one process belong to one **thread group**,
//! and the group's id is what `getpid(2)` returns to every one of them: the kernel calls it
//! the TGID, and it is the tid of the group's first thread, the main thread. So:
//!
//! - `getpid()` is the same on every thread of a process (线程共享进程 ID);
//! - `gettid()` differs on every thread, and on the main thread it equals `getpid()`;
//! - each thread is a directory `/proc/self/task/<tid>` while it runs, whose `status` reads
//!   `Pid: <tid>` and `Tgid: <pid>` (the kernel's own names, which can confuse: in `status`,
//!   `Pid` is the thread's id).
//!
//! The thread library has a third kind of id, `pthread_t` (`pthread_self(3)`,
//! `std::thread::ThreadId` in Rust): a handle that means something only to the library and
//! only inside the process. In glibc it is an address in memory, not a number the kernel
//! knows; `/proc` and system calls such as `tgkill(2)` want the tid. (Some notes say that
//! the value `pthread_create` writes back "is the tid": it is not.)
//!
//! A thread can learn its own tid only by asking on that thread: `gettid()` answers for the
//! thread that calls it. Read on the spawning thread before the spawn, it is the spawner's.
//!
//! Syscalls and calls: getpid(2), gettid(2), clone(2) with `CLONE_THREAD` (what
//! `pthread_create` uses), `/proc/self/task` (proc(5)). In Rust: `nix::unistd::{getpid,
//! gettid}`, `std::thread::scope`, `std::sync::mpsc`, `std::thread::park`.
//!
//! Read: `man 2 gettid`, `man 2 getpid`, `man 3 pthread_self` (its NOTES: "thread IDs are
//! not the same as kernel thread IDs"), `man 7 pthreads`, `man 5 proc` (`/proc/pid/task`).
use nix::unistd::Pid;

/// One thread's ids, as the kernel gave them to that thread.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ids {
    /// What `getpid()` returned on the thread: the process (thread group) id.
    pub pid: Pid,
    /// What `gettid()` returned on the thread: its own kernel task id.
    pub tid: Pid,
}

/// The ids of the calling thread and of every worker of [`thread_ids`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AllIds {
    /// The calling thread's own ids, asked on the calling thread.
    pub caller: Ids,
    /// Worker `i`'s ids at index `i`, asked on worker `i` itself.
    pub workers: Vec<Ids>,
}

/// Starts `n` threads and collects the ids each one gets from the kernel.
///
/// Worker `i` (for `i` in `0..n`) first calls `on_thread(i)`, then asks `getpid()` and
/// `gettid()` on itself and sends them to the calling thread; then it waits, still running,
/// until the caller lets it go. The caller asks its own ids too.
///
/// Once every worker has reported, and while all of them still run, the caller calls
/// `while_running(&ids)` once (the tests look at `/proc/self/task` from there). Then it lets
/// the workers go, joins every one of them, and returns the same [`AllIds`]. When it returns
/// no worker is left.
pub fn thread_ids(
    _n: usize,
    _on_thread: impl Fn(usize) + Sync,
    _while_running: impl FnOnce(&AllIds),
) -> AllIds {
    todo!()
}
