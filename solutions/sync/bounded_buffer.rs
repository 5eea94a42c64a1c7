//! # A bounded buffer: producers and consumers (生产者-消费者): the reference solution
//!
//! One mutex guards the queue; producers and consumers wait on one condvar, each in a `while`
//! loop on its own condition, and every change wakes all waiters (`notify_all`), since with
//! one condvar a single wake-up might reach a thread of the wrong kind.
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
        self.changed.notify_all();
    }

    /// Takes the oldest item from the front, first sleeping as long as the buffer is empty.
    pub fn pop(&self) -> T {
        let mut items = self.items.lock().unwrap();
        while items.is_empty() {
            items = self.changed.wait(items).unwrap();
        }
        let item = items.pop_front().expect("the loop above saw an item");
        self.changed.notify_all();
        item
    }
}
