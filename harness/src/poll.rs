//! Waiting on an event with a deadline, instead of sleeping and hoping.
//!
//! Some kernel states have no file descriptor to wait on: a process turning into a zombie, a
//! reparented orphan, a thread leaving `/proc/self/task`. [`until`] polls such a state with
//! short pauses and gives up at a deadline with a message that says what it waited for and
//! what it saw last, so a wrong implementation fails with evidence rather than hanging. Every
//! limit given here is stretched by `OSKATA_DEADLINE_SCALE` (see [`crate::scaled`]).
use std::fmt::Debug;
use std::path::Path;
use std::time::{Duration, Instant};

use nix::unistd::{Pid, getpid, getppid};

use crate::procfs;

/// A short pause between two looks at `/proc` in a test's own polling loop: 0.2 ms at the
/// first round, doubling up to about 13 ms, so a quick event is seen at once and a slow one
/// costs little CPU. `round` counts the looks; start it at 0.
pub fn pause(round: &mut u32) {
    *round += 1;
    std::thread::sleep(Duration::from_micros(100 << (*round).min(7)));
}

/// Polls `check` until it returns `Some`, at most for `limit`; panics naming `what` when time
/// runs out.
pub fn until<T>(limit: Duration, what: &str, mut check: impl FnMut() -> Option<T>) -> T {
    let limit = crate::scaled(limit);
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
    let limit = crate::scaled(limit);
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

/// How [`hold`] ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Held {
    /// The test released the process.
    Released,
    /// This pid, the process's parent, sat blocked in `wait4`/`waitid` waiting for it.
    WaitedOnBy(Pid),
}

/// How many looks in a row, [`LOOK_EVERY`] apart, a parent must be seen waiting for the
/// caller of [`hold`]. One look could catch a parent in the instant between a correct wait
/// for another child and its return.
const WAITING_LOOKS: u32 = 10;
const LOOK_EVERY: Duration = Duration::from_millis(5);

/// Keeps the calling process alive, for a task that must outlive the code under test, until
/// `released()` says the test is done with it, or until its parent is seen blocked waiting
/// for it (a caller that waits for a process meant to run on, such as a daemon's starter or
/// a blocking SIGCHLD handler). The second ending lets a test name that mistake from the
/// kernel's evidence, instead of inferring it from a timer that a slow machine could trip.
///
/// A test that releases the task and then waits for it itself must release it first: the
/// release is checked once more before a waiting parent is believed.
pub fn hold(mut released: impl FnMut() -> bool) -> Held {
    let me = getpid();
    let mut seen: Option<(Pid, u32)> = None;
    loop {
        if released() {
            return Held::Released;
        }
        let parent = getppid();
        let waiting = procfs::stat(me).is_ok_and(|s| procfs::waits_for(parent, &s));
        seen = match (waiting, seen) {
            (false, _) => None,
            (true, Some((p, n))) if p == parent => Some((p, n + 1)),
            (true, _) => Some((parent, 1)),
        };
        if let Some((p, n)) = seen
            && n >= WAITING_LOOKS
        {
            return if released() {
                Held::Released
            } else {
                Held::WaitedOnBy(p)
            };
        }
        std::thread::sleep(LOOK_EVERY);
    }
}

/// [`hold`], and when it ends because the parent was seen waiting, a note of that in the file
/// `record` ("waited-on by pid N"), for the test to read back with [`recorded_waiter`]: the
/// held process is usually not the test's child, so a file is how it tells the test why it
/// ended.
pub fn hold_or_record(record: &Path, released: impl FnMut() -> bool) -> Held {
    let held = hold(released);
    if let Held::WaitedOnBy(waiter) = held {
        let _ = std::fs::write(record, format!("waited-on by pid {waiter}"));
    }
    held
}

/// The waiter [`hold_or_record`] noted in `record`, if it noted one.
pub fn recorded_waiter(record: &Path) -> Option<Pid> {
    let text = std::fs::read_to_string(record).ok()?;
    let pid = text
        .trim()
        .strip_prefix("waited-on by pid ")?
        .parse()
        .ok()?;
    Some(Pid::from_raw(pid))
}
