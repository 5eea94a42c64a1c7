//! # Lock ordering (加锁顺序) and deadlock (死锁)
//!
//! A transfer between two bank accounts must look atomic: at no moment may an observer see the
//! money gone from one account and not yet in the other. When each account has a mutex of its
//! own, that means holding **both** locks while the money moves.
//!
//! Taking two locks opens the door to a **deadlock**. Thread 1 runs `transfer(a, b)`: it locks
//! `a`, then waits for `b`. Meanwhile thread 2 runs `transfer(b, a)`: it locks `b`, then waits
//! for `a`. Each holds what the other waits for, and both wait for ever, asleep in the kernel.
//! Of the four conditions a deadlock needs (mutual exclusion, hold and wait, no preemption,
//! circular wait), the easiest to remove is the last: give the locks **one global order** and
//! always take them in that order, whatever the argument order. Here the order is the account
//! number: lock the lower-numbered account first. Then a thread holding account 3 can wait only
//! for a higher account, never for 1 or 2, so no cycle of waiting threads can form.
//!
//! Two more traps: a transfer from an account to itself would lock one mutex twice (a
//! `std::sync::Mutex` relocked by its holder deadlocks), so refuse it first; and check the
//! balance only once both locks are held, or two transfers can both see enough money.
//!
//! The tests watch the waiting threads in `/proc/<pid>/task/<tid>/syscall` (a contended mutex
//! sleeps in futex(2) on the mutex's address), so a deadlock is reported as such, with who
//! waits for which account.
//!
//! Syscalls: futex(2) (`FUTEX_WAIT` when a mutex is taken, `FUTEX_WAKE` to free it). In C:
//! `pthread_mutex_lock(3)`, `pthread_mutex_trylock(3)`, the `PTHREAD_MUTEX_ERRORCHECK` type
//! that reports `EDEADLK` on a relock. In Rust: `std::sync::{Mutex, MutexGuard}`.
//!
//! Read: `man 3 pthread_mutex_lock`, `man 2 futex`, and any textbook's chapter on deadlock
//! (the four Coffman conditions).
use std::sync::Mutex;

/// One bank account: its number (unique in the bank) and its balance, behind a mutex of its own.
#[derive(Debug)]
pub struct Account {
    /// The account's number; the lock order goes by it.
    pub number: u32,
    /// The balance, in cents.
    pub balance: Mutex<u64>,
}

/// Why a transfer moved nothing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TransferError {
    /// `from` and `to` are the same account.
    SameAccount,
    /// `from` holds less than `amount`.
    InsufficientFunds {
        /// What `from` held.
        balance: u64,
        /// What was asked for.
        amount: u64,
    },
}

impl Account {
    /// An account numbered `number` holding `balance`.
    pub fn new(_number: u32, _balance: u64) -> Account {
        todo!()
    }
}

/// Moves `amount` from `from` to `to`.
///
/// Holds both accounts' locks while it checks the balance and moves the money, and takes them
/// in one global order, the lower account number first, whichever direction the money goes.
/// Returns `Err(SameAccount)` (locking nothing) when both are the same account (same number),
/// and `Err(InsufficientFunds { balance, amount })`, changing nothing, when `from` holds less
/// than `amount`.
pub fn transfer(_from: &Account, _to: &Account, _amount: u64) -> Result<(), TransferError> {
    todo!()
}
