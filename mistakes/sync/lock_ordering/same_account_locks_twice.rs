//! Mistake: no check for a transfer to the same account, which then locks one mutex twice and
//! waits for itself for ever.
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
    // The mistake: no same-account check; from == to locks one mutex twice below.
    // One global order for every transfer: a thread holding the lower account only ever waits
    // for a higher one, so no cycle of waiting threads can form.
    let (mut source, mut target) = if from.number < to.number {
        let source = locked(from);
        (source, locked(to))
    } else {
        let target = locked(to);
        (locked(from), target)
    };
    if *source < amount {
        return Err(TransferError::InsufficientFunds {
            balance: *source,
            amount,
        });
    }
    *source -= amount;
    *target += amount;
    Ok(())
}
