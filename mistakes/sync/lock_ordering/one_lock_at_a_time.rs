//! Mistake: never two locks at once (so no deadlock), but the money leaves one account before
//! the other is locked: for a moment it is in neither, and an auditor sees the total short.
use std::sync::{Mutex, MutexGuard};

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
    pub fn new(number: u32, balance: u64) -> Account {
        Account {
            number,
            balance: Mutex::new(balance),
        }
    }
}

fn locked(account: &Account) -> MutexGuard<'_, u64> {
    // A panic elsewhere cannot leave a balance half-written (each change is one assignment),
    // so a poisoned lock still holds a good number.
    account.balance.lock().unwrap_or_else(|e| e.into_inner())
}

/// Moves `amount` from `from` to `to`, holding both accounts' locks, taken lower number first.
pub fn transfer(from: &Account, to: &Account, amount: u64) -> Result<(), TransferError> {
    if from.number == to.number {
        // Locking it twice would wait for ourselves.
        return Err(TransferError::SameAccount);
    }
    // The mistake: one lock at a time. The money is taken out, the lock freed, and only then
    // is the other account locked.
    let mut source = locked(from);
    if *source < amount {
        return Err(TransferError::InsufficientFunds {
            balance: *source,
            amount,
        });
    }
    *source -= amount;
    drop(source);
    *locked(to) += amount;
    Ok(())
}
