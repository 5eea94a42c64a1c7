//! Mistake: acquire waits under an `if`, not a `while`. A woken thread takes a permit without
//! looking again, though the thread that released may have taken it back first: two holders
//! of one permit, or a count below zero.
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
        // The mistake: `if`, not `while`: a woken thread takes a permit without looking again,
        // though a faster thread may have taken it between the notify and this wake-up.
        if *permits == 0 {
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
