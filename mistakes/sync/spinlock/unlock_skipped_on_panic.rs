//! Mistake: with_lock frees the lock by hand after calling f, so a panic in f skips the unlock
//! and every later lock() spins for ever.
use std::cell::UnsafeCell;
use std::ops::{Deref, DerefMut};

use super::atomic::{AtomicBool, Ordering};
use super::hint::spin_loop;

/// A lock that waits by spinning: a thread that finds it held keeps trying on its CPU rather
/// than sleeping in the kernel.
pub struct SpinLock<T> {
    /// True while some thread holds the lock.
    locked: AtomicBool,
    /// The value the lock protects, reached only through a [`SpinGuard`].
    value: UnsafeCell<T>,
}

// SAFETY: the lock hands out the value to one thread at a time (lock takes `locked` with
// Acquire, the guard frees it with Release), so sharing a `SpinLock` between threads only ever
// moves the value from thread to thread, which `T: Send` allows.
unsafe impl<T: Send> Sync for SpinLock<T> {}

/// Proof that the calling thread holds a [`SpinLock`]: gives access to the value, and frees
/// the lock when dropped (also when a panic unwinds through it).
pub struct SpinGuard<'a, T> {
    lock: &'a SpinLock<T>,
}

impl<T> SpinLock<T> {
    /// A free lock protecting `value`.
    pub fn new(value: T) -> SpinLock<T> {
        SpinLock {
            locked: AtomicBool::new(false),
            value: UnsafeCell::new(value),
        }
    }

    /// Waits, spinning, until the lock is free, takes it, and returns the guard.
    pub fn lock(&self) -> SpinGuard<'_, T> {
        loop {
            if let Some(guard) = self.try_lock() {
                return guard;
            }
            // Wait with plain loads: a failed compare_exchange still asks for the cache line
            // for writing, and the cores would pass it back and forth while they wait.
            while self.locked.load(Ordering::Relaxed) {
                spin_loop();
            }
        }
    }

    /// Takes the lock if it is free right now; `None` when another guard holds it.
    pub fn try_lock(&self) -> Option<SpinGuard<'_, T>> {
        // Acquire on success: whatever the last holder wrote before its Release store is
        // visible from here on. A failure reads nothing we use, so Relaxed is enough there.
        self.locked
            .compare_exchange(false, true, Ordering::Acquire, Ordering::Relaxed)
            .ok()
            .map(|_| SpinGuard { lock: self })
    }

    /// Runs `f` on the value with the lock held, and frees the lock afterwards, also when `f`
    /// panics.
    pub fn with_lock<R>(&self, f: impl FnOnce(&mut T) -> R) -> R {
        let guard = self.lock();
        // The mistake: the guard is put aside and the lock freed by hand after f; when f
        // panics, the line after it never runs and the lock stays held for good.
        std::mem::forget(guard);
        // SAFETY: this thread holds the lock (taken above, not yet freed).
        let result = f(unsafe { &mut *self.value.get() });
        self.locked.store(false, Ordering::Release);
        result
    }

    /// The value, taking the lock apart (no other thread can hold it: `self` is owned).
    pub fn into_inner(self) -> T {
        self.value.into_inner()
    }
}

impl<T> Deref for SpinGuard<'_, T> {
    type Target = T;

    fn deref(&self) -> &T {
        // SAFETY: the guard exists only while this thread holds the lock, so no other thread
        // touches the value, and the borrow ends with the guard.
        unsafe { &*self.lock.value.get() }
    }
}

impl<T> DerefMut for SpinGuard<'_, T> {
    fn deref_mut(&mut self) -> &mut T {
        // SAFETY: as in `deref`; `&mut self` makes this the only borrow through the guard.
        unsafe { &mut *self.lock.value.get() }
    }
}

impl<T> Drop for SpinGuard<'_, T> {
    fn drop(&mut self) {
        // Release: every write made while holding the lock happens before the next holder's
        // Acquire that reads this store.
        self.lock.locked.store(false, Ordering::Release);
    }
}
