//! Mistake: release notifies only when the count goes from zero to one. Two releases in a row,
//! before the first woken waiter has run, wake one waiter for two permits: a lost wake-up.
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
        // The mistake: only the release that takes the count from zero notifies. Two
        // releases before the first woken waiter runs wake one thread for two permits.
        if *permits == 1 {
            self.freed.notify_one();
        }
    }
}
