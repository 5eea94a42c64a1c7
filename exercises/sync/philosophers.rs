//! # Dining philosophers (哲学家就餐问题)
//!
//! `n` philosophers sit at a round table with one fork between each pair of neighbours: fork
//! `i` lies between philosopher `i` and philosopher `i + 1` (and fork `n - 1` between the last
//! philosopher and the first). To eat, a philosopher needs both the fork on the left (fork `i`)
//! and the fork on the right (fork `(i + 1) % n`). Each fork is a lock: only one philosopher can
//! hold it at a time.
//!
//! The obvious plan, "take the left fork, then the right one", can deadlock (死锁): if every
//! philosopher takes the left fork at the same moment, each one then waits for the right fork,
//! which the neighbour holds and will not put down before eating. Nobody eats, for ever. This
//! is a *circular wait* (循环等待): a cycle of threads, each holding a lock the next one wants.
//! It is one of the four conditions (Coffman's) that a deadlock needs, together with mutual
//! exclusion, hold-and-wait and no preemption; break any one and deadlock is impossible.
//!
//! The usual ways to break the circle:
//!
//! - **lock ordering** (资源有序分配): number the locks and always take the lower-numbered one
//!   first. Philosopher `n - 1` then reaches for fork 0 before fork `n - 1`, and the cycle cannot
//!   close;
//! - **a waiter** who lets at most `n - 1` philosophers reach for forks at once (a counting
//!   semaphore): with one seat empty, someone always gets both forks;
//! - **asymmetry**: odd philosophers take left first, even ones right first.
//!
//! Waiting and hoping the timing works out is not a way: a solution that deadlocks only "rarely"
//! still deadlocks. The tests here make the bad timing certain: they hold every philosopher
//! right after its first fork until all who can have taken one.
//!
//! The forks are given to you by the caller (any type with [`Fork`]'s two methods), so the
//! tests can watch who holds which fork; do not make locks of your own in their place.
//!
//! Syscalls: none directly; threads are clone(2), waiting for a fork sleeps in futex(2). In
//! Rust: `std::thread::scope` (threads that borrow the forks), and for a waiter
//! `std::sync::{Mutex, Condvar}`.
//!
//! Read: `man 3 pthread_mutex_lock` (the "deadlock" paragraphs), `man 7 pthreads`; Dijkstra's
//! original problem, and Coffman, Elphick and Shoshani, "System Deadlocks" (1971).

/// A fork on the table. The caller makes them; the tests make their own, to watch who holds
/// which.
pub trait Fork: Sync {
    /// Picks the fork up, waiting (asleep) while another philosopher holds it.
    fn pick_up(&self);
    /// Puts the fork down; only the philosopher that holds it calls this.
    fn put_down(&self);
}

/// Seats `forks.len()` philosophers (at least 2) at the table and lets them eat.
///
/// Philosopher `i` runs on a thread of its own; its forks are `forks[i]` (left) and
/// `forks[(i + 1) % n]` (right). It eats `meals` times: each time it picks up both of its forks
/// (one after the other, each with [`Fork::pick_up`]), calls `eat(i)` while holding both, then
/// puts both down. `dine` returns once every philosopher has eaten all its meals and put its
/// forks down. It must never deadlock, whatever order the threads run in.
pub fn dine<F: Fork>(_forks: &[F], _meals: usize, _eat: impl Fn(usize) + Sync) {
    todo!()
}
