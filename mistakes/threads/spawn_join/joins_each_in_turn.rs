//! Mistake: each thread is joined right after it is started, so the threads run one at a
//! time and never together.
use std::panic;
use std::sync::Arc;
use std::thread;

/// Runs `work(i)` on a thread of its own for each `i` in `0..threads` and returns the values
/// in index order; see the exercise for the contract.
pub fn spawn_join<T, F>(threads: usize, work: F) -> Vec<T>
where
    F: Fn(usize) -> T + Send + Sync + 'static,
    T: Send + 'static,
{
    let work = Arc::new(work);
    (0..threads)
        .map(|i| {
            let work = Arc::clone(&work);
            // The mistake: join at once, before the next thread is even started.
            thread::spawn(move || work(i))
                .join()
                .unwrap_or_else(|p| panic::resume_unwind(p))
        })
        .collect()
}
