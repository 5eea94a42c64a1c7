//! # A mutex on futex(2) (基于 futex 的互斥锁)
//!
//! A mutex needs two things: an atomic word that says whether the lock is taken, and a way for
//! a thread that finds it taken to sleep until it is free. Spinning on the word (reading it
//! again and again) burns a CPU that the holder may need to finish its critical section; with
//! more threads than cores a spinner can keep the holder from running at all. So Linux offers
//! futex(2), a "fast user-space mutex": the lock lives in an ordinary 32-bit word of your
//! memory, taken and released with atomic instructions and no system call at all while nobody
//! competes, and only a thread that has to wait enters the kernel:
//!
//! - `futex(addr, FUTEX_WAIT, expected, NULL)` puts the calling thread to sleep on `addr`, but
//!   only if `*addr` still equals `expected` when the kernel looks (it checks and sleeps as one
//!   step, so a wake-up that comes between your check and your sleep is not lost: the call
//!   returns `EAGAIN` at once instead). It may also return early (a signal, `EINTR`), so always
//!   look at the word again afterwards.
//! - `futex(addr, FUTEX_WAKE, n)` wakes up to `n` threads sleeping on `addr`.
//!
//! Add `FUTEX_PRIVATE_FLAG` to both when the word is shared only by the threads of one
//! process. libc has no wrapper: call `libc::syscall(libc::SYS_futex, ...)`.
//!
//! The unlocker must know whether anyone sleeps, or it would have to call `FUTEX_WAKE` on
//! every unlock, a system call each time even when nobody waits. Hence the classic three-state
//! word (Ulrich Drepper, "Futexes Are Tricky"):
//!
//! - `0`: unlocked;
//! - `1`: locked, and nobody waits;
//! - `2`: locked, and some thread may be waiting (contended).
//!
//! `lock`: try to change 0 to 1 with one compare-and-swap; if that works you are done, with no
//! system call. Otherwise announce that you will wait by swapping in 2, and as long as the old
//! value was not 0, sleep with `FUTEX_WAIT` expecting 2, then swap in 2 again. A thread that
//! gets the lock this way leaves the word at 2, since others may still sleep: it must not set
//! it to 1, or the next unlock would wake nobody and a sleeper would sleep for ever (a lost
//! wake-up, 丢失唤醒).
//!
//! `unlock`: swap in 0; only if the old value was 2 call `FUTEX_WAKE` for one thread.
//!
//! Use `Acquire` ordering when taking the lock and `Release` when giving it back, so what the
//! critical section wrote is seen by the next holder. The guard ([`FutexGuard`]) unlocks when
//! it is dropped, so a panic inside the critical section still releases the lock.
//!
//! This is what glibc's `pthread_mutex_lock`/`pthread_mutex_unlock` and Rust's `std::sync::Mutex`
//! do underneath. Here write it yourself: no `std::sync::Mutex`, no crate.
//!
//! Syscalls: futex(2) (`FUTEX_WAIT`, `FUTEX_WAKE`, `FUTEX_PRIVATE_FLAG`). In Rust:
//! `std::sync::atomic::{AtomicU32, Ordering}` (`compare_exchange`, `swap`),
//! `AtomicU32::as_ptr`, `libc::syscall`, `libc::SYS_futex`.
//!
//! Read: `man 2 futex`, `man 7 futex`, `man 3 pthread_mutex_lock`, and Drepper's paper.
use std::sync::atomic::AtomicU32;

/// A mutual-exclusion lock whose state is one futex word: 0 unlocked, 1 locked with nobody
/// waiting, 2 locked and contended.
#[derive(Debug)]
pub struct FutexMutex {
    word: AtomicU32,
}

/// Proof that the lock is held; dropping it unlocks.
#[derive(Debug)]
pub struct FutexGuard<'a> {
    mutex: &'a FutexMutex,
}

impl FutexMutex {
    /// An unlocked mutex (given).
    pub const fn new() -> FutexMutex {
        FutexMutex {
            word: AtomicU32::new(0),
        }
    }

    /// The futex word (given): the tests look for its address in `/proc`.
    pub fn word(&self) -> &AtomicU32 {
        &self.word
    }

    /// Takes the lock, sleeping in the kernel (FUTEX_WAIT) while another thread holds it.
    /// Makes no system call when the lock is free.
    pub fn lock(&self) -> FutexGuard<'_> {
        todo!()
    }

    /// Takes the lock if it is free, without waiting and without a system call.
    pub fn try_lock(&self) -> Option<FutexGuard<'_>> {
        todo!()
    }

    /// Gives the lock back, waking one sleeping thread (FUTEX_WAKE) only when the word says
    /// some thread may be waiting.
    fn unlock(&self) {
        todo!()
    }
}

impl Default for FutexMutex {
    fn default() -> FutexMutex {
        FutexMutex::new()
    }
}

impl Drop for FutexGuard<'_> {
    fn drop(&mut self) {
        self.mutex.unlock();
    }
}

/// Sleeps on `word` while it holds `expected` (futex FUTEX_WAIT, private); returns on a
/// wake-up, at once when the word holds something else, or early on a signal.
fn futex_wait(_word: &AtomicU32, _expected: u32) {
    todo!()
}

/// Wakes at most `n` threads sleeping on `word` (futex FUTEX_WAKE, private).
fn futex_wake(_word: &AtomicU32, _n: i32) {
    todo!()
}
