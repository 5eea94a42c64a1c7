//! # Lost updates: a counter shared by many threads (丢失更新)
//!
//! `count += 1` looks like one step, but the machine does three: load the value from memory,
//! add one in a register, store the result back. When two threads do it at once, both can
//! load the same old value, both add one, and both store the same new value: two increments,
//! and the counter moved by one. The other update is **lost** (丢失更新). The threads of a
//! process share its memory (全局变量被所有线程共享), and the scheduler may switch or run
//! them in parallel at any instruction, so with enough threads and enough increments some
//! are nearly always lost, and how many changes from run to run: a **race condition** (竞态
//!条件). On a machine with fewer cores than threads it still happens: a thread can be
//! preempted between its load and its store, and every increment made meanwhile by the
//! others is overwritten when it resumes.
//!
//! Making each of the two steps atomic does not help: an atomic load and then an atomic
//! store are still two operations with a gap between them. The cure is one indivisible
//! read-modify-write: `fetch_add` (the CPU's `lock xadd`), which no other thread can get
//! between. (A mutex around the three steps works too, the next chapter's subject.) For a
//! counter that only counts, `Ordering::Relaxed` is enough: atomicity, not ordering, is what
//! keeps every increment.
//!
//! You write both counters, and the code that runs one on many threads at once. The tests
//! run the racy one to show what it loses, and never require it to lose: a race is a chance,
//! not a promise.
//!
//! Calls: `std::sync::atomic::AtomicU64::{load, store, fetch_add}`, `std::thread::scope`
//! (pthread_create(3) and pthread_join(3) underneath). Read: `man 7 pthreads`, the Rust
//! Reference's and the Rustonomicon's chapters on atomics, and the C11 memory model's
//! description of read-modify-write operations.
use std::sync::atomic::AtomicU64;

/// Adds one to `counter` the racy way: an atomic load, then an atomic store of the loaded
/// value plus one. On one thread it counts exactly; when several threads use it at once,
/// updates may be lost, and the counter never ends above the number of calls made.
pub fn increment_racy(_counter: &AtomicU64) {
    todo!()
}

/// Adds exactly one to `counter`, however many threads call it at once: one atomic
/// read-modify-write.
pub fn increment(_counter: &AtomicU64) {
    todo!()
}

/// Runs `add(counter)` `per_thread` times on each of `threads` threads (at least 1), running
/// side by side: every thread is started before any is joined. Joins them all and returns
/// the counter's value afterwards.
pub fn count_with(
    _threads: usize,
    _per_thread: u64,
    _counter: &AtomicU64,
    _add: impl Fn(&AtomicU64) + Sync,
) -> u64 {
    todo!()
}
