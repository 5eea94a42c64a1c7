//! Mistake: a waiter spins on the word with compare-and-swap instead of sleeping in FUTEX_WAIT,
//! burning a CPU that the holder (with more threads than cores) may need.
use std::sync::atomic::{AtomicU32, Ordering};

/// The word's three states.
const UNLOCKED: u32 = 0;
const LOCKED: u32 = 1;
const CONTENDED: u32 = 2;

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
        // The mistake: a waiter spins on the word, burning its CPU (and, with more threads
        // than cores, the holder's), instead of sleeping in FUTEX_WAIT.
        while self
            .word
            .compare_exchange_weak(UNLOCKED, LOCKED, Ordering::Acquire, Ordering::Relaxed)
            .is_err()
        {
            std::hint::spin_loop();
        }
        FutexGuard { mutex: self }
    }

    /// Takes the lock if it is free, without waiting and without a system call.
    pub fn try_lock(&self) -> Option<FutexGuard<'_>> {
        self.word
            .compare_exchange(UNLOCKED, LOCKED, Ordering::Acquire, Ordering::Relaxed)
            .ok()
            .map(|_| FutexGuard { mutex: self })
    }

    /// Gives the lock back, waking one sleeping thread (FUTEX_WAKE) only when the word says
    /// some thread may be waiting.
    fn unlock(&self) {
        if self.word.swap(UNLOCKED, Ordering::Release) == CONTENDED {
            futex_wake(&self.word, 1);
        }
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
fn futex_wait(word: &AtomicU32, expected: u32) {
    // SAFETY: the address is that of a live AtomicU32, aligned to 4 bytes; FUTEX_WAIT reads it
    // and takes no other pointer but the timeout, null (no timeout). Its errors (EAGAIN when
    // the word changed, EINTR) only send the caller round its loop again.
    unsafe {
        libc::syscall(
            libc::SYS_futex,
            word.as_ptr(),
            libc::FUTEX_WAIT | libc::FUTEX_PRIVATE_FLAG,
            expected,
            std::ptr::null::<libc::timespec>(),
        );
    }
}

/// Wakes at most `n` threads sleeping on `word` (futex FUTEX_WAKE, private).
fn futex_wake(word: &AtomicU32, n: i32) {
    // SAFETY: the address is that of a live AtomicU32; FUTEX_WAKE only looks up sleepers on
    // it and dereferences nothing.
    unsafe {
        libc::syscall(
            libc::SYS_futex,
            word.as_ptr(),
            libc::FUTEX_WAKE | libc::FUTEX_PRIVATE_FLAG,
            n,
        );
    }
}
