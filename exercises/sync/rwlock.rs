//! # A writer-preferring reader-writer lock (读写锁)
//!
//! Many data are read far more often than written. A mutex lets one thread in at a time, even
//! when all of them only read. A reader-writer lock has two modes:
//!
//! - **shared** (`read_lock`): any number of readers may hold it together, since reading does
//!   not disturb reading;
//! - **exclusive** (`write_lock`): one writer, with no reader and no other writer.
//!
//! The hard part is fairness. If readers may enter whenever no writer *holds* the lock, a
//! steady stream of readers, each coming in before the last has left, keeps the lock busy for
//! ever and a writer waits for good: **writer starvation** (写者饥饿). A *writer-preferring*
//! lock closes the door: as soon as a writer is waiting, new readers wait too; the readers
//! inside finish, the last one out wakes the writer, and only when no writer waits are the
//! readers let in again. (glibc's `pthread_rwlock_t` prefers readers by default;
//! `PTHREAD_RWLOCK_PREFER_WRITER_NONRECURSIVE_NP` asks for what you build here.)
//!
//! Build it on one `Mutex` guarding a small state (how many readers are inside, whether a
//! writer is, how many writers wait) and condition variables (条件变量) to sleep on: readers
//! wait while a writer is inside or waiting; writers wait while anyone is inside. Wait in
//! `while` loops, and think about who must be woken at each unlock: the last reader out wakes
//! a writer; a writer leaving wakes the next writer if one waits, or else *every* waiting
//! reader (one `notify_one` would let a single reader in and leave the rest asleep).
//!
//! The lock guards no data of its own here: like `pthread_rwlock_t`, callers pair each
//! `read_lock` with `read_unlock` and each `write_lock` with `write_unlock`, on the same
//! thread.
//!
//! In C: `pthread_rwlock_rdlock`, `pthread_rwlock_wrlock`, `pthread_rwlock_unlock`,
//! `pthread_rwlockattr_setkind_np` (`man 3 pthread_rwlockattr_setkind_np`), and the condition
//! variables `pthread_cond_wait`, `pthread_cond_signal`, `pthread_cond_broadcast`. Under them
//! all: futex(2). In Rust: `std::sync::{Mutex, Condvar}` (std's own `RwLock` is what you are
//! building, so it is not to be used here).
use std::sync::{Condvar, Mutex};

/// A writer-preferring reader-writer lock built on a `Mutex` and `Condvar`s.
///
/// Shared between threads by reference (`std::thread::scope`) or in an `Arc`.
pub struct RwLock {
    /// Who is inside and who waits. (You may change the private fields.)
    #[allow(dead_code)] // the stub does not use it yet
    state: Mutex<State>,
    /// Where readers wait.
    #[allow(dead_code)] // the stub does not use it yet
    readers_may_enter: Condvar,
    /// Where writers wait.
    #[allow(dead_code)] // the stub does not use it yet
    writer_may_enter: Condvar,
}

/// The lock's state, guarded by its mutex.
#[derive(Debug, Default)]
struct State {
    /// Readers holding the lock.
    #[allow(dead_code)] // the stub does not use it yet
    readers: usize,
    /// Whether a writer holds the lock.
    #[allow(dead_code)] // the stub does not use it yet
    writing: bool,
    /// Writers waiting in `write_lock`.
    #[allow(dead_code)] // the stub does not use it yet
    writers_waiting: usize,
}

impl RwLock {
    /// An unlocked lock.
    pub fn new() -> RwLock {
        todo!()
    }

    /// Takes the lock shared: returns once no writer holds the lock *and none is waiting*;
    /// other readers may hold it at the same time. Sleeps (on a condvar) while it waits.
    pub fn read_lock(&self) {
        todo!()
    }

    /// Gives back a shared hold taken by [`read_lock`]. The last reader out wakes a waiting
    /// writer.
    ///
    /// [`read_lock`]: RwLock::read_lock
    pub fn read_unlock(&self) {
        todo!()
    }

    /// Takes the lock exclusive: returns once no reader and no writer holds it. From the
    /// moment a writer waits here, new readers wait too (writer preference), so a stream of
    /// readers cannot keep it out.
    pub fn write_lock(&self) {
        todo!()
    }

    /// Gives back the exclusive hold taken by [`write_lock`], waking the next waiting writer
    /// if there is one, or else every waiting reader.
    ///
    /// [`write_lock`]: RwLock::write_lock
    pub fn write_unlock(&self) {
        todo!()
    }
}

impl Default for RwLock {
    fn default() -> Self {
        RwLock::new()
    }
}
