//! # A spinlock (自旋锁)
//!
//! A lock lets one thread at a time into a *critical section* (临界区), the code that touches
//! shared data. A mutex puts a waiting thread to sleep in the kernel; a **spinlock** keeps it
//! on its CPU, trying again and again until the holder lets go. That costs no system call and
//! no context switch, so it pays off when the lock is held for a few instructions, and it
//! wastes a whole time slice when the holder is descheduled (the kernel uses spinlocks where
//! sleeping is impossible; user space mostly uses mutexes).
//!
//! The lock is one atomic flag, `locked`:
//!
//! - **taking it** must be one indivisible step that both tests and sets the flag: `swap(true)`
//!   or `compare_exchange(false, true)`. A `load` that sees `false` followed by a `store` of
//!   `true` lets two threads see `false` at once and both walk in.
//! - **memory ordering** (内存序). Atomics alone say nothing about the *other* memory: the
//!   protected value is plain data, and both the compiler and the CPU may move plain reads and
//!   writes across a `Relaxed` atomic operation. The lock must carry them along: take it with
//!   `Ordering::Acquire` (nothing after it moves before it) and free it with a `Release` store
//!   (nothing before it moves after it). A `Release` store read by an `Acquire` load makes
//!   everything the last holder wrote visible to the next one: that *happens-before* edge is
//!   the whole point of a lock. With `Relaxed` on either side there is no edge, and the next
//!   holder may see stale data. On x86 every store already acts as a release and every load as
//!   an acquire, so the mistake hides there (until the compiler reorders); on ARM it shows.
//! - **the guard** (RAII, 守卫): `lock` returns a [`SpinGuard`] that gives access to the value
//!   and frees the lock in its `Drop`. Drops also run while a panic unwinds the stack, so a
//!   panicking critical section still frees the lock; code that frees it "by hand" after the
//!   work skips that on a panic, and every later `lock` spins forever.
//! - **waiting well**: spin on a plain `load` until the flag looks free, then try the
//!   `compare_exchange` again, and call `spin_loop()` in the loop (the CPU's `pause`, and in
//!   the model checker below, the point where another thread gets to run).
//!
//! **How this file is tested.** Stress on real threads checks exact counts, but cannot see a
//! wrong ordering on x86. So the tests also run this file under *loom*, a model checker that
//! replaces the atomics with a model of them and explores every interleaving of a few threads
//! and every value a load may return under the memory model. For that, this file takes its
//! atomics and its spin hint from its parent module, not from `std`:
//! `use super::atomic::{AtomicBool, Ordering};` (what `std::sync::atomic` has) and
//! `use super::hint::spin_loop;` (`std::hint::spin_loop`). The tests give this file std's
//! versions once and loom's once. Keep `new` a plain `fn`, not a `const fn` (loom's atomics
//! cannot be made in a constant).
//!
//! Syscalls: none; that is the point of a spinlock. (A waiter that gives up its CPU would call
//! sched_yield(2), a mutex futex(2).) In C: `pthread_spin_lock(3)`, `pthread_spin_unlock(3)`,
//! `pthread_spin_trylock(3)`; C11's `atomic_flag_test_and_set_explicit` with
//! `memory_order_acquire`. In Rust: `std::sync::atomic` (read "Ordering" in its docs, and the
//! Nomicon's "Atomics" chapter), `std::cell::UnsafeCell`, `std::ops::{Deref, DerefMut}`.
//!
//! Read: `man 3 pthread_spin_lock`, `man 7 pthreads`.
use std::cell::UnsafeCell;
use std::marker::PhantomData;

#[allow(unused_imports)] // you will need them all
use super::atomic::{AtomicBool, Ordering};
#[allow(unused_imports)]
use super::hint::spin_loop;

/// A lock that waits by spinning: a thread that finds it held keeps trying on its CPU rather
/// than sleeping in the kernel.
pub struct SpinLock<T> {
    /// True while some thread holds the lock.
    locked: AtomicBool,
    /// The value the lock protects, reached only through a [`SpinGuard`].
    value: UnsafeCell<T>,
}

// SAFETY: sharing a `SpinLock` between threads is sound only once `lock` really lets one
// thread at a time reach the value, with Acquire and Release ordering: then the value only
// ever moves from thread to thread, which `T: Send` allows. That is what you write below.
unsafe impl<T: Send> Sync for SpinLock<T> {}

/// Proof that the calling thread holds a [`SpinLock`]: gives access to the value (`Deref` and
/// `DerefMut`), and frees the lock when dropped, also when a panic unwinds through it.
pub struct SpinGuard<'a, T> {
    /// The lock this guard holds (change the fields as you like).
    _lock: PhantomData<&'a SpinLock<T>>,
}

impl<T> SpinLock<T> {
    /// A free lock protecting `value`.
    pub fn new(_value: T) -> SpinLock<T> {
        todo!()
    }

    /// Waits, spinning (never sleeping), until the lock is free, takes it with Acquire
    /// ordering, and returns the guard.
    pub fn lock(&self) -> SpinGuard<'_, T> {
        todo!()
    }

    /// Takes the lock (with Acquire ordering) if it is free right now; `None`, at once, when
    /// another guard holds it.
    pub fn try_lock(&self) -> Option<SpinGuard<'_, T>> {
        todo!()
    }

    /// Runs `f` on the value with the lock held, and frees the lock afterwards, also when `f`
    /// panics (the panic then goes on to the caller).
    pub fn with_lock<R>(&self, _f: impl FnOnce(&mut T) -> R) -> R {
        todo!()
    }

    /// The value, taking the lock apart.
    pub fn into_inner(self) -> T {
        todo!()
    }
}

impl<T> std::ops::Deref for SpinGuard<'_, T> {
    type Target = T;

    /// The value, for reading.
    fn deref(&self) -> &T {
        todo!()
    }
}

impl<T> std::ops::DerefMut for SpinGuard<'_, T> {
    /// The value, for writing.
    fn deref_mut(&mut self) -> &mut T {
        todo!()
    }
}

impl<T> Drop for SpinGuard<'_, T> {
    /// Frees the lock with a Release store.
    fn drop(&mut self) {
        todo!()
    }
}
