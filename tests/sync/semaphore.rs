//! sync/semaphore: a counting semaphore on Mutex + Condvar. Never more holders than permits,
//! all the permits usable at once, and no release lost: every release lets a waiter out.
//!
//! The contract, clause by clause, and the test that checks each:
//! - `new(n)` gives `n` permits, all of which can be held at once; the next `acquire` sleeps
//!   (seen asleep in futex(2) in `/proc/self/task/<tid>/syscall`) and the next `release` lets
//!   it out (`holds_exactly_its_permits`);
//! - one release lets exactly one of several waiters out, the others stay asleep
//!   (`one_release_lets_one_waiter_out`);
//! - a woken waiter looks again: when the releasing thread takes the permit back first, the
//!   woken one sleeps on (`a_woken_waiter_looks_again`, 200 rounds);
//! - `k` releases in a row, with `k` threads asleep in `acquire`, let all `k` out: no lost
//!   wake-up (`every_release_reaches_a_waiter`, 200 rounds);
//! - under load (more threads than cores, proptest over permits, thread counts and rounds),
//!   never more holders than permits, and nobody stuck
//!   (`never_more_holders_than_permits`).
//!
//! Every thread that runs student code is watched: a thread asleep for good is reported with
//! where it sleeps, never left to hang the test.

// The exercise under test: your stub (by default), the reference solution (`--features
// solutions`), or a shipped mistake that `cargo grade --mistakes` copies into target/.
#[cfg(not(any(feature = "solutions", feature = "mistake")))]
#[path = "../../exercises/sync/semaphore.rs"]
#[allow(dead_code)] // a stub does not use all of its API yet
mod semaphore;
#[cfg(all(feature = "solutions", not(feature = "mistake")))]
#[path = "../../solutions/sync/semaphore.rs"]
mod semaphore;
#[cfg(feature = "mistake")]
#[path = "../../target/oskata-mistake/sync/semaphore.rs"]
#[rustfmt::skip] // the copy exists only while the proof runs
mod semaphore;
use semaphore::*;

use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use oskata_harness::waiters::{self, Outcome, Worker};
use oskata_harness::{Isolation, cases, isolated, scaled, student};
use proptest::prelude::*;
use rstest::rstest;

/// How long a thread may take to fall asleep in `acquire`, or to come out after a release.
const PATIENCE: Duration = Duration::from_secs(5);

/// A thread that calls `acquire` once (or another sequence of calls), then says so: its tid,
/// a flag set on return, and its panic message if it panicked.
struct Waiter {
    tid: i32,
    out: Arc<AtomicBool>,
    panicked: Arc<Mutex<Option<String>>>,
    name: String,
}

fn start_waiter(sem: &Arc<Semaphore>, name: String) -> Waiter {
    start_calls(sem, name, |sem| sem.acquire())
}

fn start_calls(sem: &Arc<Semaphore>, name: String, calls: fn(&Semaphore)) -> Waiter {
    let (tx, rx) = mpsc::channel();
    let out = Arc::new(AtomicBool::new(false));
    let panicked: Arc<Mutex<Option<String>>> = Arc::default();
    let (sem, flag, slot) = (Arc::clone(sem), Arc::clone(&out), Arc::clone(&panicked));
    std::thread::Builder::new()
        .name(name.clone())
        .spawn(move || {
            tx.send(nix::unistd::gettid().as_raw()).unwrap();
            match std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| student(|| calls(&sem))))
            {
                Ok(()) => flag.store(true, Ordering::SeqCst),
                Err(p) => {
                    *slot.lock().unwrap() = Some(
                        p.downcast_ref::<&str>()
                            .map(|s| s.to_string())
                            .or_else(|| p.downcast_ref::<String>().cloned())
                            .unwrap_or_default(),
                    )
                }
            }
        })
        .unwrap();
    Waiter {
        tid: rx.recv().unwrap(),
        out,
        panicked,
        name,
    }
}

impl Waiter {
    /// Whether it has returned; fails with its panic, named as the likely cause, if it
    /// panicked.
    fn is_out(&self) -> bool {
        if let Some(msg) = self.panicked.lock().unwrap().clone() {
            panic!(
                "{} panicked in the semaphore: {msg}\n(A thread woken in acquire may find no permit: another thread \
                 came in first and took it, or the wake-up was spurious. Check the count again in a `while` loop \
                 around wait, and take a permit only when it is above zero.)",
                self.name
            );
        }
        self.out.load(Ordering::SeqCst)
    }
}

fn describe(ws: &[&Waiter]) -> String {
    waiters::describe(
        &ws.iter()
            .map(|w| (w.name.clone(), w.tid))
            .collect::<Vec<_>>(),
    )
}

/// Waits until every waiter sleeps in a futex inside `acquire`; fails naming the cause when
/// one comes out instead (there was no permit for it) or keeps running.
fn all_asleep(ws: &[Waiter], free: usize) {
    let start = Instant::now();
    loop {
        if let Some(w) = ws.iter().find(|w| w.is_out()) {
            panic!(
                "{} came out of acquire although {free} permits were free and all were taken: never more holders than \
                 permits, so acquire must wait while the count is zero",
                w.name
            );
        }
        if ws.iter().all(|w| waiters::asleep_in_futex(w.tid)) {
            return;
        }
        if start.elapsed() > scaled(PATIENCE) {
            panic!(
                "the threads in acquire with no permit free did not fall asleep within {:?}: acquire must sleep on \
                 the condvar (Condvar::wait, a futex wait), not spin:\n{}",
                scaled(PATIENCE),
                describe(&ws.iter().collect::<Vec<_>>())
            );
        }
        std::thread::sleep(Duration::from_millis(1));
    }
}

/// Waits until `n` of the waiters have come out of `acquire`; fails as a lost wake-up.
fn come_out(ws: &[Waiter], n: usize, releases: usize) {
    let start = Instant::now();
    loop {
        let out = ws.iter().filter(|w| w.is_out()).count();
        if out >= n {
            return;
        }
        if start.elapsed() > scaled(PATIENCE) {
            let asleep: Vec<&Waiter> = ws.iter().filter(|w| !w.is_out()).collect();
            panic!(
                "lost wake-up: {releases} release(s) with {} thread(s) waiting in acquire, yet after {:?} only {out} \
                 came out; the others still sleep although a permit is free for them:\n{}\nEvery release must be able to \
                 wake a waiter: change the count under the mutex and notify on every release, not only when the count \
                 leaves zero.",
                ws.len(),
                scaled(PATIENCE),
                describe(&asleep)
            );
        }
        std::thread::sleep(Duration::from_millis(1));
    }
}

/// Calls `acquire` on a thread of its own and fails if it does not return in time: taking a
/// free permit never waits.
fn acquire_free(sem: &Arc<Semaphore>, which: usize, permits: usize) {
    let w = start_waiter(sem, format!("taker {which}"));
    let start = Instant::now();
    while !w.is_out() {
        if start.elapsed() > scaled(PATIENCE) {
            panic!(
                "acquire number {} on a semaphore made with {permits} permits did not return: \
                 new({permits}) gives {permits} permits, all of which can be held at once\n{}",
                which + 1,
                describe(&[&w])
            );
        }
        std::thread::sleep(Duration::from_millis(1));
    }
}

#[rstest]
#[case::one(1)]
#[case::three(3)]
#[case::eight(8)]
fn holds_exactly_its_permits(#[case] permits: usize) {
    isolated(|| {
        let sem = Arc::new(student(|| Semaphore::new(permits)));
        for i in 0..permits {
            acquire_free(&sem, i, permits);
        }
        let extra = [start_waiter(&sem, "waiter".to_owned())];
        all_asleep(&extra, permits);
        student(|| sem.release());
        come_out(&extra, 1, 1);
    });
}

#[test]
fn one_release_lets_one_waiter_out() {
    isolated(|| {
        let sem = Arc::new(student(|| Semaphore::new(0)));
        let ws: Vec<Waiter> = (0..3)
            .map(|i| start_waiter(&sem, format!("waiter {i}")))
            .collect();
        all_asleep(&ws, 0);
        student(|| sem.release());
        come_out(&ws, 1, 1);
        // The two left must go back to sleep (or never have woken): wait until they are both
        // seen asleep in 20 looks in a row, failing at once if a second one comes out.
        let mut calm = 0;
        let start = Instant::now();
        while calm < 20 {
            let out: Vec<&Waiter> = ws.iter().filter(|w| w.is_out()).collect();
            assert!(
                out.len() == 1,
                "one release with 3 threads waiting let {} of them out of acquire: one permit, one holder. A woken \
                 thread must check the count again (wait in a `while` loop) before it takes a permit",
                out.len()
            );
            let left: Vec<&Waiter> = ws.iter().filter(|w| !w.is_out()).collect();
            if left.iter().all(|w| waiters::asleep_in_futex(w.tid)) {
                calm += 1;
            } else {
                calm = 0;
            }
            assert!(
                start.elapsed() < scaled(PATIENCE),
                "the two threads left in acquire with no permit free did not go back to sleep:\n{}",
                describe(&left)
            );
            std::thread::sleep(Duration::from_millis(2));
        }
        student(|| sem.release());
        student(|| sem.release());
        come_out(&ws, 3, 3);
    });
}

/// 200 rounds: one thread asleep in `acquire`, then another thread calls `release` and at
/// once `acquire`. The release wakes the sleeper, but the releasing thread, already running,
/// usually takes the mutex first and with it the permit: the woken thread must then find the
/// count at zero and sleep again. An `if` around the wait lets it go on without a permit
/// (two holders of one permit, or a count gone below zero). The shipped mistake was caught
/// in 100 of 100 runs, and in 30 of 30 beside a CPU hog on every core.
#[test]
fn a_woken_waiter_looks_again() {
    Isolation::new()
        .deadline(Duration::from_secs(60))
        .run(|| {
            for round in 0..200 {
                let sem = Arc::new(student(|| Semaphore::new(0)));
                let sleeper = start_waiter(&sem, format!("round {round} sleeper"));
                all_asleep(std::slice::from_ref(&sleeper), 0);
                let barger = start_calls(&sem, format!("round {round} releaser"), |sem| {
                    sem.release();
                    sem.acquire();
                });
                let both = [sleeper, barger];
                come_out(&both, 1, 1);
                let start = Instant::now();
                let mut calm = 0;
                while calm < 10 {
                    let out = both.iter().filter(|w| w.is_out()).count();
                    assert!(
                        out == 1,
                        "one permit, and two threads came out of acquire holding it: a thread woken in acquire must \
                         check the count again (a `while` loop around wait), since the thread that released may have \
                         taken the permit back first"
                    );
                    let left = both.iter().find(|w| !w.is_out()).unwrap();
                    calm = if waiters::asleep_in_futex(left.tid) { calm + 1 } else { 0 };
                    assert!(
                        start.elapsed() < scaled(PATIENCE),
                        "the thread left in acquire with no permit free did not go back to sleep:\n{}",
                        describe(&[left])
                    );
                    std::thread::sleep(Duration::from_micros(200));
                }
                student(|| sem.release());
                come_out(&both, 2, 2);
            }
        });
}

/// 200 rounds: `k` (2 to 4) threads asleep in `acquire`, then `k` releases back to back from
/// this thread. A release that only notifies when the count leaves zero wakes one thread for
/// two permits whenever the second release comes before the woken thread has taken its
/// permit, which back-to-back releases make nearly certain each round: the shipped mistake
/// was caught in 100 of 100 runs, and in 30 of 30 beside a CPU hog on every core.
#[test]
fn every_release_reaches_a_waiter() {
    Isolation::new().deadline(Duration::from_secs(60)).run(|| {
        for round in 0..200 {
            let k = 2 + round % 3;
            let sem = Arc::new(student(|| Semaphore::new(0)));
            let ws: Vec<Waiter> = (0..k)
                .map(|i| start_waiter(&sem, format!("round {round} waiter {i}")))
                .collect();
            all_asleep(&ws, 0);
            for _ in 0..k {
                student(|| sem.release());
            }
            come_out(&ws, k, k);
        }
    });
}

/// One case: `threads` threads each take and give back a permit `rounds` times, counting the
/// holders inside; more threads than permits and than cores.
fn load(permits: usize, threads: usize, rounds: usize) -> Result<(), TestCaseError> {
    let sem = Arc::new(student(|| Semaphore::new(permits)));
    let inside = Arc::new(AtomicUsize::new(0));
    let most = Arc::new(AtomicUsize::new(0));
    let progress = Arc::new(AtomicU64::new(0));
    let workers: Vec<Worker> = (0..threads)
        .map(|i| {
            let (sem, inside, most, progress) = (
                Arc::clone(&sem),
                Arc::clone(&inside),
                Arc::clone(&most),
                Arc::clone(&progress),
            );
            let work = move || {
                for _ in 0..rounds {
                    sem.acquire();
                    let now = inside.fetch_add(1, Ordering::SeqCst) + 1;
                    most.fetch_max(now, Ordering::SeqCst);
                    std::hint::spin_loop();
                    if now % 2 == 0 {
                        std::thread::yield_now();
                    }
                    inside.fetch_sub(1, Ordering::SeqCst);
                    sem.release();
                    progress.fetch_add(1, Ordering::SeqCst);
                }
            };
            (
                format!("worker {i}"),
                Box::new(move || student(work)) as Box<dyn FnOnce() + Send>,
            )
        })
        .collect();
    match waiters::supervise(workers, &progress, Duration::from_secs(1)) {
        Outcome::Done => {}
        Outcome::Panicked { name, message } => {
            return Err(TestCaseError::fail(format!(
                "{name} panicked in the semaphore: {message}\n(A thread woken in acquire may find no permit: \
                 another thread came in first and took it, or the wake-up was spurious. Check the count again in a \
                 `while` loop around wait, and take a permit only when it is above zero.)"
            )));
        }
        Outcome::Stuck { threads: report } => {
            return Err(TestCaseError::fail(format!(
                "lost wake-up: with {permits} permits and {threads} threads, every thread still in the semaphore \
                 sleeps in a futex and nothing moves, though no thread holds a permit:\n{report}"
            )));
        }
    }
    let most = most.load(Ordering::SeqCst);
    prop_assert!(
        most <= permits,
        "{most} threads held a permit at once, with only {permits} permits: never more holders than permits. A \
         thread woken in acquire must check the count again (a `while` loop around wait): another thread may have \
         taken the permit first"
    );
    Ok(())
}

/// proptest over permits (1-3), threads (permits + 1 to 12) and rounds (50-300), 24 cases.
/// An `if` instead of `while` in `acquire` lets a woken waiter go on after a faster thread
/// took its permit; this load alone catches the shipped mistake in 72 of 100 runs, which is
/// why `a_woken_waiter_looks_again` forces that schedule (100 of 100).
#[test]
fn never_more_holders_than_permits() {
    Isolation::new().deadline(Duration::from_secs(90)).run(|| {
        let strategy = (1usize..=3, 1usize..=10, 50usize..=300)
            .prop_map(|(p, extra, r)| (p, (p + extra).min(12), r));
        cases::check(24, strategy, |(permits, threads, rounds)| {
            load(permits, threads, rounds)
        });
    });
}
