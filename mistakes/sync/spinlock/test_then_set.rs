//! Mistake: taking the lock is a load that sees it free followed by a store: two threads can
//! both see it free and both walk in.
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
        // The mistake: test, then set, in two steps. Two threads can both load `false`
        // before either stores `true`, and both walk in.
        if self.locked.load(Ordering::Acquire) {
            return None;
        }
        self.locked.store(true, Ordering::Relaxed);
        Some(SpinGuard { lock: self })
    }

    /// Runs `f` on the value with the lock held, and frees the lock afterwards, also when `f`
    /// panics.
    pub fn with_lock<R>(&self, f: impl FnOnce(&mut T) -> R) -> R {
        let mut guard = self.lock();
        f(&mut guard)
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
