//! Waiting on an event with a deadline, instead of sleeping and hoping.
//!
//! Some kernel states have no file descriptor to wait on: a process turning into a zombie, a
//! reparented orphan, a thread leaving `/proc/self/task`. [`until`] polls such a state with
//! short pauses and gives up at a deadline with a message that says what it waited for and
//! what it saw last, so a wrong implementation fails with evidence rather than hanging.
use std::fmt::Debug;
use std::time::{Duration, Instant};

/// Polls `check` until it returns `Some`, at most for `limit`; panics naming `what` when time
/// runs out.
pub fn until<T>(limit: Duration, what: &str, mut check: impl FnMut() -> Option<T>) -> T {
    let start = Instant::now();
    let mut pause = Duration::from_micros(200);
    loop {
        if let Some(v) = check() {
            return v;
        }
        if start.elapsed() > limit {
            panic!("gave up after {limit:?} waiting for {what}");
        }
        std::thread::sleep(pause);
        pause = (pause * 2).min(Duration::from_millis(20));
    }
}

/// Like [`until`], but on timeout shows the last value `observe` returned.
pub fn until_seen<T: Debug>(
    limit: Duration,
    what: &str,
    mut observe: impl FnMut() -> T,
    mut done: impl FnMut(&T) -> bool,
) -> T {
    let start = Instant::now();
    let mut pause = Duration::from_micros(200);
    loop {
        let seen = observe();
        if done(&seen) {
            return seen;
        }
        if start.elapsed() > limit {
            panic!("gave up after {limit:?} waiting for {what}; last saw {seen:?}");
        }
        std::thread::sleep(pause);
        pause = (pause * 2).min(Duration::from_millis(20));
    }
}
