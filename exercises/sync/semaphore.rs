//! # A counting semaphore (信号量)
//!
//! A semaphore is a counter of permits with two operations, which Dijkstra called P and V:
//!
//! - `acquire` (P, `sem_wait`): wait until the count is above zero, then take one permit
//!   (count - 1);
//! - `release` (V, `sem_post`): give one permit back (count + 1) and wake a thread waiting for
//!   one, if any.
//!
//! With N permits at most N threads are between `acquire` and `release` at any time: a pool
//! of N connections, N buffers, N slots. With one permit it is a lock that any thread may
//! release. Its invariant is simple: *holders never exceed permits*, and a permit that is free
//! never stays unused while a thread waits for it.
//!
//! Build it from a `Mutex` guarding the count and a `Condvar` (条件变量) that waiters sleep on.
//! Two rules make a condition variable work, and each broken rule is a classic bug:
//!
//! - **Wait in a `while` loop, not an `if`.** `wait` returns when *someone* notified, or for
//!   no reason at all (a spurious wake-up, which POSIX allows). Between the notify and the
//!   moment the woken thread holds the mutex again, another thread may have come in and taken
//!   the permit. So after every wake-up, look at the count again.
//! - **Never lose a wake-up (丢失唤醒).** Change the count and notify so that every permit
//!   given back can reach a waiter: change it under the mutex, and notify on every release,
//!   not only when the count leaves zero (two releases in a row before the first woken thread
//!   runs would otherwise wake one waiter for two permits, and the other sleeps for good).
//!
//! Under both, std's `Mutex` and `Condvar` on Linux are built on futex(2): a sleeping waiter
//! is a thread in `futex(FUTEX_WAIT)` on the condvar's address, which is exactly what the tests
//! look for in `/proc/self/task/<tid>/syscall`.
//!
//! In C: `sem_init`, `sem_wait`, `sem_post` (`man 7 sem_overview`), built the same way from
//! `pthread_mutex_lock` and `pthread_cond_wait` / `pthread_cond_signal`
//! (`man 3 pthread_cond_wait`). Syscall: futex(2). In Rust: `std::sync::{Mutex, Condvar}`
//! (`Condvar::wait` takes the guard and gives it back; `Condvar::wait_while` is the loop
//! written for you).
use std::sync::{Condvar, Mutex};

/// A counting semaphore built on a `Mutex` and a `Condvar`.
///
/// Shared between threads by reference (`std::thread::scope`) or in an `Arc`.
pub struct Semaphore {
    /// The number of free permits. (You may change the private fields.)
    #[allow(dead_code)] // the stub does not use it yet
    permits: Mutex<usize>,
    /// Where threads wait for a permit.
    #[allow(dead_code)] // the stub does not use it yet
    freed: Condvar,
}

impl Semaphore {
    /// A semaphore with `permits` free permits (0 is allowed: every `acquire` then waits for a
    /// `release`).
    pub fn new(_permits: usize) -> Semaphore {
        todo!()
    }

    /// Takes one permit, sleeping (on the condvar, not spinning) as long as none is free.
    ///
    /// When it returns the caller holds a permit, which it gives back with [`release`].
    ///
    /// [`release`]: Semaphore::release
    pub fn acquire(&self) {
        todo!()
    }

    /// Gives one permit back and wakes a thread waiting in [`acquire`], if any.
    ///
    /// Every release must be able to let one waiter through: after `k` releases, `k` threads
    /// waiting in `acquire` (with no other taker) all come out.
    ///
    /// [`acquire`]: Semaphore::acquire
    pub fn release(&self) {
        todo!()
    }
}
