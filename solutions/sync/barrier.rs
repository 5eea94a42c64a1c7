//! # A reusable barrier (屏障) — reference solution
//!
//! A count and a generation behind one mutex: the last arriver resets the count, advances the
//! generation, wakes everyone and is the leader; the others sleep on the condition variable
//! until the generation they arrived in is over.
use std::sync::{Condvar, Mutex, PoisonError};

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
    pub fn new(n: usize) -> Barrier {
        assert!(n > 0, "a barrier needs at least one thread per round");
        Barrier {
            n,
            state: Mutex::new(Round {
                arrived: 0,
                generation: 0,
            }),
            all_here: Condvar::new(),
        }
    }

    /// Waits until `n` threads (this one included) have called `wait` in this round, then
    /// returns; the barrier is then ready for the next round. Returns true in exactly one
    /// thread of each round (its leader; the last to arrive is the natural choice), false in
    /// the others.
    pub fn wait(&self) -> bool {
        // A thread that panicked while holding the lock left the count consistent (nothing
        // here panics between changes), so a poisoned lock is taken as it is.
        let mut round = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        let mine = round.generation;
        round.arrived += 1;
        if round.arrived == self.n {
            round.arrived = 0;
            round.generation = round.generation.wrapping_add(1);
            self.all_here.notify_all();
            return true;
        }
        while round.generation == mine {
            round = self
                .all_here
                .wait(round)
                .unwrap_or_else(PoisonError::into_inner);
        }
        false
    }
}
