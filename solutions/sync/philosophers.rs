//! # Dining philosophers (哲学家就餐问题) — reference solution
//!
//! Lock ordering: each philosopher picks up the lower-numbered of its two forks first, so the
//! last philosopher reaches for fork 0 before fork n - 1 and no cycle of waits can close.
use std::thread;

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
pub fn dine<F: Fork>(forks: &[F], meals: usize, eat: impl Fn(usize) + Sync) {
    let n = forks.len();
    assert!(n >= 2, "the table needs at least 2 philosophers, not {n}");
    let eat = &eat;
    thread::scope(|s| {
        for i in 0..n {
            s.spawn(move || {
                let (left, right) = (i, (i + 1) % n);
                let (first, second) = (left.min(right), left.max(right));
                for _ in 0..meals {
                    forks[first].pick_up();
                    forks[second].pick_up();
                    eat(i);
                    forks[second].put_down();
                    forks[first].put_down();
                }
            });
        }
    });
}
