//! # Lost updates — classic mistake: the "correct" counter is still a load and then a store
//!
//! (The reference solution's notes follow.)
//!
//!
//! The racy counter is a load and a store, two atomic operations with a gap between them;
//! the correct one is a single `fetch_add`. `count_with` starts every thread in one scope
//! before joining any.
use std::sync::atomic::{AtomicU64, Ordering};
use std::thread;

/// Adds one to `counter` the racy way: an atomic load, then an atomic store of the loaded
/// value plus one; see the exercise.
pub fn increment_racy(counter: &AtomicU64) {
    let seen = counter.load(Ordering::Relaxed);
    // Another thread's increment that lands here is overwritten by this store.
    counter.store(seen + 1, Ordering::Relaxed);
}

/// Adds exactly one to `counter`: one atomic read-modify-write.
pub fn increment(counter: &AtomicU64) {
    // The mistake: two atomic operations are not one; an increment stored between them is lost.
    let seen = counter.load(Ordering::SeqCst);
    counter.store(seen + 1, Ordering::SeqCst);
}

/// Runs `add(counter)` `per_thread` times on each of `threads` threads side by side; see the
/// exercise.
pub fn count_with(
    threads: usize,
    per_thread: u64,
    counter: &AtomicU64,
    add: impl Fn(&AtomicU64) + Sync,
) -> u64 {
    let add = &add;
    thread::scope(|s| {
        let handles: Vec<_> = (0..threads)
            .map(|_| {
                s.spawn(move || {
                    for _ in 0..per_thread {
                        add(counter);
                    }
                })
            })
            .collect();
        // Joined only now, once all of them run: joining each at once would run them in turn.
        for h in handles {
            if let Err(p) = h.join() {
                std::panic::resume_unwind(p);
            }
        }
    });
    // The joins ordered every thread's last store before this load.
    counter.load(Ordering::Relaxed)
}
