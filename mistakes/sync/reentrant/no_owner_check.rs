//! Mistake: the lock never looks at who holds it, like a plain mutex: the owner's relock waits
//! for itself to free the lock, which it never will.
use std::marker::PhantomData;
use std::ops::Deref;
use std::sync::{Condvar, Mutex, MutexGuard};
use std::thread::{self, ThreadId};

/// Who holds a [`ReentrantMutex`], and how many of their guards are alive.
#[derive(Debug, Default)]
struct Owner {
    /// The thread that holds the lock, `None` while it is free.
    thread: Option<ThreadId>,
    /// How many guards the owner holds (0 exactly when `thread` is `None`).
    count: usize,
}

/// A mutex the thread holding it may lock again: each `lock` by the owner returns at once and
/// counts one more level; the lock is free once every guard is dropped.
pub struct ReentrantMutex<T> {
    state: Mutex<Owner>,
    released: Condvar,
    value: T,
}

// SAFETY: `value` is only reached through a guard, and guards exist on one thread at a time
// (the owner's; `ReentrantGuard` is not `Send`), so sharing the mutex moves the value from
// thread to thread, which `T: Send` allows.
unsafe impl<T: Send> Sync for ReentrantMutex<T> {}

/// One level of a thread's hold on a [`ReentrantMutex`]; gives shared access to the value
/// (several guards of one thread may be alive at once) and counts down when dropped.
pub struct ReentrantGuard<'a, T> {
    lock: &'a ReentrantMutex<T>,
    /// A guard must be dropped on the thread that holds the lock.
    _not_send: PhantomData<*const ()>,
}

impl<T> ReentrantMutex<T> {
    /// A free lock around `value`.
    pub fn new(value: T) -> ReentrantMutex<T> {
        ReentrantMutex {
            state: Mutex::new(Owner::default()),
            released: Condvar::new(),
            value,
        }
    }

    fn state(&self) -> MutexGuard<'_, Owner> {
        // Poisoning cannot leave `Owner` half-changed (each change is one assignment pair made
        // without calling out), so a poisoned state is still good.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Takes one more level if the calling thread already holds the lock, or takes the lock
    /// when it is free; `false` when another thread holds it.
    fn enter(me: ThreadId, owner: &mut Owner) -> bool {
        let _ = me;
        // The mistake: no owner check. Any holder, the caller included, makes lock() wait.
        match owner.thread {
            Some(_) => false,
            None => {
                owner.thread = Some(me);
                owner.count = 1;
                true
            }
        }
    }

    /// Locks: at once when the calling thread already holds the lock (one level more),
    /// otherwise sleeps until no other thread holds it.
    pub fn lock(&self) -> ReentrantGuard<'_, T> {
        let me = thread::current().id();
        let mut owner = self.state();
        // `while`, not `if`: a wake-up is only a hint (spurious, or another waiter got there
        // first), so look again each time.
        while !Self::enter(me, &mut owner) {
            owner = self.released.wait(owner).unwrap_or_else(|e| e.into_inner());
        }
        self.guard()
    }

    /// Locks like [`lock`](Self::lock) when that needs no waiting; `None` when another
    /// thread holds the lock.
    pub fn try_lock(&self) -> Option<ReentrantGuard<'_, T>> {
        let me = thread::current().id();
        Self::enter(me, &mut self.state()).then(|| self.guard())
    }

    fn guard(&self) -> ReentrantGuard<'_, T> {
        ReentrantGuard {
            lock: self,
            _not_send: PhantomData,
        }
    }
}

impl<T> Deref for ReentrantGuard<'_, T> {
    type Target = T;

    fn deref(&self) -> &T {
        &self.lock.value
    }
}

impl<T> Drop for ReentrantGuard<'_, T> {
    fn drop(&mut self) {
        let mut owner = self.lock.state();
        owner.count -= 1;
        if owner.count == 0 {
            owner.thread = None;
            drop(owner);
            // Only now is the lock free: wake one waiter to take it.
            self.lock.released.notify_one();
        }
    }
}
