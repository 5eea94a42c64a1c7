//! # A reusable barrier (屏障)
//!
//! A barrier makes a group of `n` threads meet: each thread that calls [`Barrier::wait`]
//! stops there until all `n` have called it, and then all of them go on together. Parallel
//! programs that work in steps (each thread computes its part of step k, and step k+1 needs
//! everybody's step k) call it once per step, so the same barrier is used round after round.
//!
//! Counting arrivals is the easy half: a `Mutex` guards a counter, the `n`-th arriver sees the
//! count reach `n` and wakes the others with `Condvar::notify_all`. The hard half is being
//! *reusable*. Set the count back to 0 for the next round, and a woken thread can no longer
//! tell from the count whether its own round is over: a fast thread may already have come back
//! and arrived at the next round. Never set it back, and the second round lets everyone
//! through at once. The cure is a *generation* number (代): each thread remembers the
//! generation it arrived in and waits until the generation has moved on, whatever the count
//! says meanwhile. The last arriver resets the count, advances the generation and wakes the
//! sleepers; it is the round's *leader*, the one thread of the round whose `wait` returns
//! true (so that exactly one thread can do per-round work, such as swapping buffers).
//!
//! Condition variables can wake a thread for no reason (a spurious wake-up), so always wait in
//! a loop that tests the generation again.
//!
//! POSIX has this as `pthread_barrier_wait` (which returns `PTHREAD_BARRIER_SERIAL_THREAD` to
//! one thread per round) and Rust as `std::sync::Barrier` (`BarrierWaitResult::is_leader`).
//! Here build it yourself from `std::sync::Mutex` and `std::sync::Condvar`: no
//! `std::sync::Barrier`, no crate.
//!
//! Syscalls: none directly; `Mutex` and `Condvar` sleep in futex(2). In Rust:
//! `std::sync::{Mutex, Condvar}` (`Condvar::wait` in a `while` loop, `notify_all`).
//!
//! Read: `man 3 pthread_barrier_wait`, `man 3 pthread_cond_wait`, `man 3 pthread_cond_broadcast`.
use std::sync::{Condvar, Mutex};

/// A barrier for `n` threads that can be used for any number of rounds.
#[derive(Debug)]
pub struct Barrier {
    /// How many threads each round waits for.
    n: usize,
    /// The round's count and generation.
    state: Mutex<Round>,
    /// Where threads wait for the round's last arriver.
    all_here: Condvar,
}

/// What the barrier's mutex guards.
#[derive(Debug)]
struct Round {
    /// Threads arrived in the current round.
    arrived: usize,
    /// How many rounds have been completed; a waiter waits until this moves on.
    generation: u64,
}

impl Barrier {
    /// A barrier for `n` threads per round. Panics when `n` is 0.
    pub fn new(_n: usize) -> Barrier {
        todo!()
    }

    /// Waits until `n` threads (this one included) have called `wait` in this round, then
    /// returns; the barrier is then ready for the next round. Returns true in exactly one
    /// thread of each round (its leader; the last to arrive is the natural choice), false in
    /// the others.
    pub fn wait(&self) -> bool {
        todo!()
    }
}
