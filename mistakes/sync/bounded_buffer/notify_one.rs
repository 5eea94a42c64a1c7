//! Mistake: push and pop wake one waiter with `notify_one`, though producers and consumers
//! sleep on the same condvar. The one woken may be of the wrong kind: it looks, sleeps again,
//! and the thread that could go on is never woken, so everybody ends up asleep.
use std::collections::VecDeque;
use std::sync::{Condvar, Mutex};

/// A first-in, first-out queue holding at most `capacity` items, shared by producer and
/// consumer threads (by reference, or in an `Arc`).
pub struct BoundedBuffer<T> {
    /// The items, oldest first.
    items: Mutex<VecDeque<T>>,
    /// What producers and consumers wait on; notified whenever the buffer changes.
    changed: Condvar,
    /// The most items the buffer may hold.
    capacity: usize,
}

impl<T> BoundedBuffer<T> {
    /// An empty buffer that holds at most `capacity` items. Panics if `capacity` is 0.
    pub fn new(capacity: usize) -> BoundedBuffer<T> {
        assert!(
            capacity > 0,
            "a bounded buffer needs room for at least one item"
        );
        BoundedBuffer {
            items: Mutex::new(VecDeque::with_capacity(capacity)),
            changed: Condvar::new(),
            capacity,
        }
    }

    /// Adds `item` at the back, first sleeping as long as the buffer is full.
    pub fn push(&self, item: T) {
        let mut items = self.items.lock().unwrap();
        while items.len() >= self.capacity {
            items = self.changed.wait(items).unwrap();
        }
        items.push_back(item);
        // The mistake: one waiter woken, which may be a producer, when only a consumer can go
        // on now.
        self.changed.notify_one();
    }

    /// Takes the oldest item from the front, first sleeping as long as the buffer is empty.
    pub fn pop(&self) -> T {
        let mut items = self.items.lock().unwrap();
        while items.is_empty() {
            items = self.changed.wait(items).unwrap();
        }
        let item = items.pop_front().expect("the loop above saw an item");
        // The mistake: one waiter woken, which may be a consumer, when only a producer can go
        // on now.
        self.changed.notify_one();
        item
    }
}
