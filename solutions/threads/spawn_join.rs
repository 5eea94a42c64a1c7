//! # Splitting work over threads, and joining them (创建线程与等待线程结束) — reference solution
//!
//! Start every thread with its index and a shared `Arc` of the work, keep the handles, then
//! join them in order: each join hands back that thread's value.
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
    // All of them first, so they run together...
    let handles: Vec<thread::JoinHandle<T>> = (0..threads)
        .map(|i| {
            let work = Arc::clone(&work);
            thread::spawn(move || work(i))
        })
        .collect();
    // ...then each join waits for its thread and hands back what the thread returned. Every
    // handle is joined before a worker's panic goes on.
    let outcomes: Vec<thread::Result<T>> = handles.into_iter().map(|h| h.join()).collect();
    outcomes
        .into_iter()
        .map(|r| r.unwrap_or_else(|p| panic::resume_unwind(p)))
        .collect()
}
