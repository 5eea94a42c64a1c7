//! Mistake: push and pop wait under an `if`, not a `while`. A woken thread goes on without
//! looking at the buffer again, though another thread of its kind may have got there first:
//! a consumer pops from an empty queue, a producer overfills a full one.
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
        // The mistake: `if`, not `while`: a producer woken goes on without looking again,
        // though another producer may have filled the room first.
        if items.len() >= self.capacity {
            items = self.changed.wait(items).unwrap();
        }
        items.push_back(item);
        self.changed.notify_all();
    }

    /// Takes the oldest item from the front, first sleeping as long as the buffer is empty.
    pub fn pop(&self) -> T {
        let mut items = self.items.lock().unwrap();
        // The mistake: `if`, not `while`: a consumer woken goes on without looking again,
        // though another consumer may have taken the item first.
        if items.is_empty() {
            items = self.changed.wait(items).unwrap();
        }
        let item = items.pop_front().expect("an item, since we were woken");
        self.changed.notify_all();
        item
    }
}
