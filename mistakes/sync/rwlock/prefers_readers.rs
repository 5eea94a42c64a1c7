//! Mistake: a reader waits only while a writer is inside, not while one waits. Readers who keep
//! coming in before the last has left keep the lock busy for ever, and a writer starves.
use std::sync::{Condvar, Mutex};

/// A writer-preferring reader-writer lock built on a `Mutex` and `Condvar`s.
///
/// Shared between threads by reference (`std::thread::scope`) or in an `Arc`.
pub struct RwLock {
    /// Who is inside and who waits.
    state: Mutex<State>,
    /// Where readers wait.
    readers_may_enter: Condvar,
    /// Where writers wait.
    writer_may_enter: Condvar,
}

/// The lock's state, guarded by its mutex.
#[derive(Debug, Default)]
struct State {
    /// Readers holding the lock.
    readers: usize,
    /// Whether a writer holds the lock.
    writing: bool,
    /// Writers waiting in `write_lock`.
    writers_waiting: usize,
}

impl RwLock {
    /// An unlocked lock.
    pub fn new() -> RwLock {
        RwLock {
            state: Mutex::new(State::default()),
            readers_may_enter: Condvar::new(),
            writer_may_enter: Condvar::new(),
        }
    }

    /// Takes the lock shared, once no writer holds it and none is waiting.
    pub fn read_lock(&self) {
        let mut s = self.state.lock().unwrap();
        // The mistake: a reader waits only while a writer is inside, not while one waits, so
        // readers who keep coming while others are inside keep a waiting writer out for ever.
        while s.writing {
            s = self.readers_may_enter.wait(s).unwrap();
        }
        s.readers += 1;
    }

    /// Gives back a shared hold; the last reader out wakes a waiting writer.
    pub fn read_unlock(&self) {
        let mut s = self.state.lock().unwrap();
        s.readers -= 1;
        if s.readers == 0 && s.writers_waiting > 0 {
            self.writer_may_enter.notify_one();
        }
    }

    /// Takes the lock exclusive, once nobody holds it; new readers wait from now on.
    pub fn write_lock(&self) {
        let mut s = self.state.lock().unwrap();
        s.writers_waiting += 1;
        while s.writing || s.readers > 0 {
            s = self.writer_may_enter.wait(s).unwrap();
        }
        s.writers_waiting -= 1;
        s.writing = true;
    }

    /// Gives back the exclusive hold: the next writer goes first, else every reader.
    pub fn write_unlock(&self) {
        let mut s = self.state.lock().unwrap();
        s.writing = false;
        if s.writers_waiting > 0 {
            self.writer_may_enter.notify_one();
        } else {
            self.readers_may_enter.notify_all();
        }
    }
}

impl Default for RwLock {
    fn default() -> Self {
        RwLock::new()
    }
}
