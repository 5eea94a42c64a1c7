//! # A counting semaphore (信号量): the reference solution
//!
//! The count lives under the mutex; `acquire` waits on the condvar in a loop while it is zero;
//! `release` adds one under the mutex and notifies one waiter every time. One waiter per
//! release is enough: each release makes exactly one permit, which one waiter can use; a
//! waiter that finds it taken by a faster thread goes back to sleep, and the faster thread's
//! own release will wake it again.
use std::sync::{Condvar, Mutex};

/// A counting semaphore built on a `Mutex` and a `Condvar`.
///
/// Shared between threads by reference (`std::thread::scope`) or in an `Arc`.
pub struct Semaphore {
    /// The number of free permits.
    permits: Mutex<usize>,
    /// Where threads wait for a permit.
    freed: Condvar,
}

impl Semaphore {
    /// A semaphore with `permits` free permits (0 is allowed: every `acquire` then waits for a
    /// `release`).
    pub fn new(permits: usize) -> Semaphore {
        Semaphore {
            permits: Mutex::new(permits),
            freed: Condvar::new(),
        }
    }

    /// Takes one permit, sleeping (on the condvar, not spinning) as long as none is free.
    pub fn acquire(&self) {
        let mut permits = self.permits.lock().unwrap();
        while *permits == 0 {
            permits = self.freed.wait(permits).unwrap();
        }
        *permits -= 1;
    }

    /// Gives one permit back and wakes a thread waiting in `acquire`, if any.
    pub fn release(&self) {
        let mut permits = self.permits.lock().unwrap();
        *permits += 1;
        self.freed.notify_one();
    }
}
