//! # A reentrant mutex (可重入锁, also called a recursive mutex, 递归锁)
//!
//! An ordinary mutex does not know who holds it. If the thread holding it calls `lock` again
//! (a function that takes the lock calls another one that takes it too, or calls itself), it
//! waits for the lock to be freed, and the only thread that could free it is itself: a
//! deadlock (死锁) with a single thread. (Rust's `std::sync::Mutex` says that relocking "might
//! panic or deadlock"; on Linux it deadlocks.)
//!
//! A **reentrant** mutex remembers its **owner** (the thread id of the holder) and a **count**:
//!
//! - `lock` by the owner does not wait: it counts one more level and returns a guard;
//! - `lock` by any other thread sleeps until the lock is free, then takes it (owner = that
//!   thread, count = 1);
//! - dropping a guard counts one level down; at zero the lock is free (no owner) and one
//!   sleeping thread is woken to take it. Freeing it at the first drop would let another
//!   thread in while the owner is still inside its outer level.
//!
//! Build it on `Mutex<Owner>` (the owner's `ThreadId` and the count) and a `Condvar`: wait on
//! the condvar in a `while` loop that looks at the owner again after every wake-up (wake-ups
//! can be spurious, or another thread may have taken the lock first), and notify it when the
//! count reaches zero: a thread left asleep with nobody to wake it is a *lost wake-up*. Since
//! one thread may hold several guards at once, a guard gives only shared access (`&T`): put a
//! `Cell` or `RefCell` inside for a value to change. A guard is not `Send`: the thread that
//! took a level is the one that gives it back.
//!
//! System calls: a contended `Mutex` and a `Condvar` wait sleep in futex(2) (`FUTEX_WAIT`), and
//! wake with `FUTEX_WAKE`; the tests watch waiting threads there, in
//! `/proc/<pid>/task/<tid>/syscall`. In C: `pthread_mutexattr_settype(3)` with
//! `PTHREAD_MUTEX_RECURSIVE`, `pthread_mutex_lock(3)`, `pthread_cond_wait(3)`,
//! `pthread_cond_signal(3)`. In Rust: `std::thread::current().id()`, `std::sync::{Mutex,
//! Condvar}`, `std::ops::Deref`, `std::marker::PhantomData` (a `*const ()` in it makes a type
//! neither `Send` nor `Sync`).
//!
//! Read: `man 3 pthread_mutexattr_settype`, `man 3 pthread_mutex_lock` (the table of what
//! relocking does for each mutex type), `man 3 pthread_cond_wait`.
use std::marker::PhantomData;
use std::ops::Deref;
use std::sync::{Condvar, Mutex};
use std::thread::ThreadId;

/// Who holds a [`ReentrantMutex`], and how many of their guards are alive.
#[derive(Debug, Default)]
struct Owner {
    /// The thread that holds the lock, `None` while it is free.
    thread: Option<ThreadId>,
    /// How many guards the owner holds (0 exactly when `thread` is `None`).
    count: usize,
}

/// A mutex the thread holding it may lock again: each `lock` by the owner returns at once and
/// counts one more level; the lock is free once every guard is dropped.
pub struct ReentrantMutex<T> {
    /// Who holds the lock, and how many times.
    state: Mutex<Owner>,
    /// Where the other threads sleep until the lock is free.
    released: Condvar,
    /// The value the lock protects.
    value: T,
}

// SAFETY: `value` is only reached through a guard, and guards exist on one thread at a time
// (the owner's; `ReentrantGuard` is not `Send`), once `lock` really keeps other threads out:
// then sharing the mutex moves the value from thread to thread, which `T: Send` allows.
unsafe impl<T: Send> Sync for ReentrantMutex<T> {}

/// One level of a thread's hold on a [`ReentrantMutex`]; gives shared access to the value
/// (several guards of one thread may be alive at once) and counts down when dropped.
pub struct ReentrantGuard<'a, T> {
    /// The lock this guard is a level of.
    lock: &'a ReentrantMutex<T>,
    /// A guard must be dropped on the thread that holds the lock.
    _not_send: PhantomData<*const ()>,
}

impl<T> ReentrantMutex<T> {
    /// A free lock around `value`.
    pub fn new(_value: T) -> ReentrantMutex<T> {
        todo!()
    }

    /// Locks: at once when the calling thread already holds the lock (one level more),
    /// otherwise sleeps (on the condvar) until no other thread holds it, then takes it.
    pub fn lock(&self) -> ReentrantGuard<'_, T> {
        todo!()
    }

    /// Locks like [`lock`](Self::lock) when that needs no waiting: the owner gets one level
    /// more, anyone gets a free lock; `None`, at once, when another thread holds it.
    pub fn try_lock(&self) -> Option<ReentrantGuard<'_, T>> {
        todo!()
    }
}

impl<T> Deref for ReentrantGuard<'_, T> {
    type Target = T;

    /// The value (shared: other guards of the same thread may be alive).
    fn deref(&self) -> &T {
        todo!()
    }
}

impl<T> Drop for ReentrantGuard<'_, T> {
    /// One level less; at zero the lock is free and one waiting thread is woken.
    fn drop(&mut self) {
        todo!()
    }
}
