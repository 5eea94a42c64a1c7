//! # A bounded buffer: producers and consumers (生产者-消费者)
//!
//! Producers make items and consumers use them, at their own speeds. Between them sits a
//! queue of fixed capacity: a producer that finds it full waits for room, a consumer that finds
//! it empty waits for an item. Pipes in the kernel work like this (a full pipe blocks
//! `write`, an empty one blocks `read`), and so do a thread pool's job queue and a logger's
//! buffer.
//!
//! The classic build is a *monitor*: one `Mutex` guarding the queue, and a condition variable
//! (条件变量) that waiting threads sleep on. Here producers and consumers wait on **the same**
//! `Condvar` (`changed`: "the buffer changed, look again"). Three rules:
//!
//! - **Wait in a `while` loop, not an `if`.** Waking up says only that something changed,
//!   not that what you need is there: with several consumers, another one may have taken the
//!   item between the notify and your wake-up (and POSIX allows spurious wake-ups as well).
//!   Look at the queue again every time you wake.
//! - **Wake everyone who might now go on.** With one condvar for two conditions, the waiters
//!   are of two kinds. `notify_one` may wake a consumer when only a producer could go on; it
//!   looks, goes back to sleep, and the producer sleeps for ever: a lost wake-up (丢失唤醒)
//!   that ends in deadlock. `notify_all` wakes them all and each looks for itself. (With two
//!   condvars, one per condition, `notify_one` on the right one is enough; that is a fine
//!   design too.)
//! - **Keep the order.** A queue is first in, first out: items leave in the order they came,
//!   so each producer's items reach the consumers in the order it pushed them.
//!
//! Under `Mutex` and `Condvar`, on Linux, is futex(2): a thread asleep in `pop` on an empty
//! buffer is a thread in `futex(FUTEX_WAIT)`, which is what the tests look for in
//! `/proc/self/task/<tid>/syscall`.
//!
//! In C: `pthread_mutex_lock`, `pthread_cond_wait`, `pthread_cond_signal` and
//! `pthread_cond_broadcast` (`man 3 pthread_cond_wait`: "spurious wakeups ... may occur").
//! In Rust: `std::sync::{Mutex, Condvar}`, `std::collections::VecDeque`. (std's `mpsc`
//! channels are what you are building, so they are not to be used here.)
use std::collections::VecDeque;
use std::sync::{Condvar, Mutex};

/// A first-in, first-out queue holding at most `capacity` items, shared by producer and
/// consumer threads (by reference, or in an `Arc`).
pub struct BoundedBuffer<T> {
    /// The items, oldest first. (You may change the private fields.)
    #[allow(dead_code)] // the stub does not use it yet
    items: Mutex<VecDeque<T>>,
    /// What producers and consumers wait on; notified whenever the buffer changes.
    #[allow(dead_code)] // the stub does not use it yet
    changed: Condvar,
    /// The most items the buffer may hold.
    #[allow(dead_code)] // the stub does not use it yet
    capacity: usize,
}

impl<T> BoundedBuffer<T> {
    /// An empty buffer that holds at most `capacity` items. Panics if `capacity` is 0.
    pub fn new(_capacity: usize) -> BoundedBuffer<T> {
        todo!()
    }

    /// Adds `item` at the back, first sleeping (on the condvar) as long as the buffer is full.
    /// Never lets the buffer hold more than its capacity.
    pub fn push(&self, _item: T) {
        todo!()
    }

    /// Takes the oldest item from the front, first sleeping (on the condvar) as long as the
    /// buffer is empty.
    pub fn pop(&self) -> T {
        todo!()
    }
}
