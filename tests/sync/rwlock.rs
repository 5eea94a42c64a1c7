//! sync/rwlock: a writer-preferring reader-writer lock on Mutex + Condvar. Readers share it,
//! a writer holds it alone, and a writer waiting behind a stream of readers gets in.
//!
//! The contract, clause by clause, and the test that checks each:
//! - readers overlap: several readers hold the lock at the same moment, each kept inside
//!   until all have entered (`readers_hold_it_together`);
//! - a writer is alone: a writer waits (seen asleep in futex(2)) while a reader or a writer
//!   holds the lock, a reader waits while a writer holds it, and the one waiting gets in when
//!   the holder leaves (`a_writer_waits_for_a_reader`, `a_reader_waits_for_a_writer`,
//!   `a_writer_waits_for_a_writer`);
//! - a writer leaving lets every waiting reader in, together
//!   (`a_leaving_writer_lets_every_reader_in`);
//! - under load (proptest over readers, writers and rounds, more threads than cores) readers
//!   and writers never overlap and nobody is left asleep (`readers_and_writers_never_overlap`);
//! - writer preference: with readers streaming in, each entering before the last has left, a
//!   waiting writer gets in before a bounded number of readers have entered after it
//!   (`a_waiting_writer_is_not_starved`, counted, not timed).
//!
//! Every thread that runs student code is watched: one asleep for good is reported with where
//! it sleeps, never left to hang the test.

// The exercise under test: your stub (by default), the reference solution (`--features
// solutions`), or a shipped mistake that `cargo grade --mistakes` copies into target/.
#[cfg(not(any(feature = "solutions", feature = "mistake")))]
#[path = "../../exercises/sync/rwlock.rs"]
#[allow(dead_code)] // a stub does not use all of its API yet
mod rwlock;
#[cfg(all(feature = "solutions", not(feature = "mistake")))]
#[path = "../../solutions/sync/rwlock.rs"]
mod rwlock;
#[cfg(feature = "mistake")]
#[path = "../../target/oskata-mistake/sync/rwlock.rs"]
#[rustfmt::skip] // the copy exists only while the proof runs
mod rwlock;
use rwlock::*;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use oskata_harness::waiters::{self, Outcome, Worker};
use oskata_harness::{Isolation, cases, isolated, scaled, student};
use proptest::prelude::*;

/// How long a thread may take to get in, or to fall asleep waiting.
const PATIENCE: Duration = Duration::from_secs(5);

/// How many readers may enter after a writer has begun to wait, before the writer counts as
/// starved. A writer-preferring lock lets none in once the writer is registered (a few may
/// slip in while it is still on its way into `write_lock`); a reader-preferring one lets in
/// as many as keep coming.
const STARVED_AFTER: u64 = 1000;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Mode {
    Read,
    Write,
}

impl Mode {
    fn name(self) -> &'static str {
        match self {
            Mode::Read => "reader",
            Mode::Write => "writer",
        }
    }
}

/// A thread that takes the lock in one mode, says it is in, holds it until told to leave,
/// then gives it back.
struct Holder {
    name: String,
    tid: i32,
    inside: Arc<AtomicBool>,
    left: Arc<AtomicBool>,
    leave: mpsc::Sender<()>,
}

fn start(lock: &Arc<RwLock>, mode: Mode, name: String) -> Holder {
    let (tid_tx, tid_rx) = mpsc::channel();
    let (leave, told) = mpsc::channel::<()>();
    let inside = Arc::new(AtomicBool::new(false));
    let left = Arc::new(AtomicBool::new(false));
    let (lock, i, l) = (Arc::clone(lock), Arc::clone(&inside), Arc::clone(&left));
    std::thread::Builder::new()
        .name(name.clone())
        .spawn(move || {
            tid_tx.send(nix::unistd::gettid().as_raw()).unwrap();
            match mode {
                Mode::Read => student(|| lock.read_lock()),
                Mode::Write => student(|| lock.write_lock()),
            }
            i.store(true, Ordering::SeqCst);
            let _ = told.recv();
            match mode {
                Mode::Read => student(|| lock.read_unlock()),
                Mode::Write => student(|| lock.write_unlock()),
            }
            l.store(true, Ordering::SeqCst);
        })
        .unwrap();
    Holder {
        name,
        tid: tid_rx.recv().unwrap(),
        inside,
        left,
        leave,
    }
}

impl Holder {
    fn is_in(&self) -> bool {
        self.inside.load(Ordering::SeqCst)
    }
    /// Tells it to leave and waits until it has given the lock back.
    fn leave(&self) {
        self.leave.send(()).unwrap();
        let start = Instant::now();
        while !self.left.load(Ordering::SeqCst) {
            assert!(
                start.elapsed() < scaled(PATIENCE),
                "{} did not come back from its unlock within {:?}:\n{}",
                self.name,
                scaled(PATIENCE),
                describe(&[self])
            );
            std::thread::sleep(Duration::from_millis(1));
        }
    }
}

fn describe(hs: &[&Holder]) -> String {
    waiters::describe(
        &hs.iter()
            .map(|h| (h.name.clone(), h.tid))
            .collect::<Vec<_>>(),
    )
}

/// Waits until every one of `hs` is inside; `why` says what it means if they are not.
fn all_in(hs: &[&Holder], why: &str) {
    let start = Instant::now();
    while !hs.iter().all(|h| h.is_in()) {
        if start.elapsed() > scaled(PATIENCE) {
            let out: Vec<&Holder> = hs.iter().copied().filter(|h| !h.is_in()).collect();
            panic!("{why} (waited {:?}):\n{}", scaled(PATIENCE), describe(&out));
        }
        std::thread::sleep(Duration::from_millis(1));
    }
}

/// Waits until `h` sleeps (in a futex) without having got in; `why` is the failure if it got
/// in. Looks 20 times in a row, so a thread that is only slow to get in is caught too.
fn stays_out(h: &Holder, why: &str) {
    let start = Instant::now();
    let mut calm = 0;
    while calm < 20 {
        assert!(!h.is_in(), "{why}");
        if waiters::asleep_in_futex(h.tid) {
            calm += 1;
        } else {
            calm = 0;
        }
        assert!(
            start.elapsed() < scaled(PATIENCE),
            "{} neither got in nor fell asleep waiting within {:?}: a thread that must wait sleeps on a condvar \
             (Condvar::wait, a futex wait), it does not spin:\n{}",
            h.name,
            scaled(PATIENCE),
            describe(&[h])
        );
        std::thread::sleep(Duration::from_millis(1));
    }
    assert!(!h.is_in(), "{why}");
}

#[test]
fn readers_hold_it_together() {
    isolated(|| {
        let lock = Arc::new(student(RwLock::new));
        let first = start(&lock, Mode::Read, "reader 0".to_owned());
        all_in(
            &[&first],
            "a reader could not take the lock while nobody held it",
        );
        let others: Vec<Holder> = (1..4)
            .map(|i| start(&lock, Mode::Read, format!("reader {i}")))
            .collect();
        all_in(
            &others.iter().collect::<Vec<_>>(),
            "readers overlap: while one reader held the lock, other readers could not take it too. A reader \
             waits only for a writer (inside, or waiting), never for other readers",
        );
        first.leave();
        for h in &others {
            h.leave();
        }
    });
}

fn waits_behind(first: Mode, then: Mode) {
    isolated(move || {
        let lock = Arc::new(student(RwLock::new));
        let holder = start(&lock, first, format!("{} holding", first.name()));
        all_in(
            &[&holder],
            "a thread could not take the lock while nobody held it",
        );
        let waiter = start(&lock, then, format!("{} waiting", then.name()));
        let why = match (first, then) {
            (Mode::Read, Mode::Write) => {
                "readers and writer overlapping: a writer got in while a reader held the lock. A writer must wait \
                 until no reader is inside (count the readers in, and wait while the count is above zero)"
            }
            (Mode::Write, Mode::Read) => {
                "readers and writer overlapping: a reader got in while a writer held the lock. A reader must wait \
                 while a writer is inside"
            }
            _ => {
                "two writers held the lock at once: a writer must wait while another writer is inside"
            }
        };
        stays_out(&waiter, why);
        holder.leave();
        all_in(
            &[&waiter],
            &format!(
                "lost wake-up: the {} held the lock and left, yet the {} waiting for it was never let in. Whoever \
                 leaves must wake those who can now enter (the last reader out wakes a writer; a writer wakes the next \
                 writer or the readers)",
                first.name(),
                then.name()
            ),
        );
        waiter.leave();
    });
}

#[test]
fn a_writer_waits_for_a_reader() {
    waits_behind(Mode::Read, Mode::Write);
}

#[test]
fn a_reader_waits_for_a_writer() {
    waits_behind(Mode::Write, Mode::Read);
}

#[test]
fn a_writer_waits_for_a_writer() {
    waits_behind(Mode::Write, Mode::Write);
}

#[test]
fn a_leaving_writer_lets_every_reader_in() {
    isolated(|| {
        let lock = Arc::new(student(RwLock::new));
        let writer = start(&lock, Mode::Write, "writer".to_owned());
        all_in(
            &[&writer],
            "a writer could not take the lock while nobody held it",
        );
        let readers: Vec<Holder> = (0..4)
            .map(|i| start(&lock, Mode::Read, format!("reader {i}")))
            .collect();
        for r in &readers {
            stays_out(
                r,
                "readers and writer overlapping: a reader got in while a writer held the lock",
            );
        }
        writer.leave();
        all_in(
            &readers.iter().collect::<Vec<_>>(),
            "the writer left, but not every reader waiting for it got in: with no writer waiting, a writer leaving \
             must wake all the waiting readers (notify_all), since they may all enter together; notify_one lets one \
             in and the rest sleep on",
        );
        for r in &readers {
            r.leave();
        }
    });
}

/// One case: `readers` and `writers` threads, each taking the lock `rounds` times, checking
/// who else is inside.
fn load(readers: usize, writers: usize, rounds: usize) -> Result<(), TestCaseError> {
    let lock = Arc::new(student(RwLock::new));
    let readers_in = Arc::new(AtomicUsize::new(0));
    let writers_in = Arc::new(AtomicUsize::new(0));
    let overlap: Arc<std::sync::Mutex<Option<String>>> = Arc::default();
    let progress = Arc::new(AtomicU64::new(0));
    let mut workers: Vec<Worker> = Vec::new();
    for i in 0..readers + writers {
        let mode = if i < readers { Mode::Read } else { Mode::Write };
        let (lock, r_in, w_in, overlap, progress) = (
            Arc::clone(&lock),
            Arc::clone(&readers_in),
            Arc::clone(&writers_in),
            Arc::clone(&overlap),
            Arc::clone(&progress),
        );
        let work = move || {
            for n in 0..rounds {
                match mode {
                    Mode::Read => {
                        lock.read_lock();
                        r_in.fetch_add(1, Ordering::SeqCst);
                        let w = w_in.load(Ordering::SeqCst);
                        if w > 0 {
                            overlap.lock().unwrap().get_or_insert(format!(
                                "readers and writer overlapping: a reader got in while {w} writer(s) held the lock"
                            ));
                        }
                        if n % 4 == 0 {
                            std::thread::yield_now();
                        }
                        r_in.fetch_sub(1, Ordering::SeqCst);
                        lock.read_unlock();
                    }
                    Mode::Write => {
                        lock.write_lock();
                        let w = w_in.fetch_add(1, Ordering::SeqCst) + 1;
                        let r = r_in.load(Ordering::SeqCst);
                        if w > 1 || r > 0 {
                            overlap.lock().unwrap().get_or_insert(format!(
                                "readers and writer overlapping: a writer got in while {r} reader(s) and {} other \
                                 writer(s) held the lock; a writer must be alone",
                                w - 1
                            ));
                        }
                        std::thread::yield_now();
                        w_in.fetch_sub(1, Ordering::SeqCst);
                        lock.write_unlock();
                    }
                }
                progress.fetch_add(1, Ordering::SeqCst);
            }
        };
        workers.push((
            format!("{} {i}", mode.name()),
            Box::new(move || student(work)),
        ));
    }
    match waiters::supervise(workers, &progress, Duration::from_secs(1)) {
        Outcome::Done => {}
        Outcome::Panicked { name, message } => {
            return Err(TestCaseError::fail(format!(
                "{name} panicked in the lock: {message}"
            )));
        }
        Outcome::Stuck { threads } => {
            return Err(TestCaseError::fail(format!(
                "lost wake-up: with {readers} readers and {writers} writers taking turns, every thread still at the \
                 lock sleeps in a futex and nothing moves. Whoever leaves must wake those who can now enter (the \
                 last reader out wakes a writer; a writer wakes the next writer, or all the readers):\n{threads}"
            )));
        }
    }
    if let Some(why) = overlap.lock().unwrap().take() {
        return Err(TestCaseError::fail(why));
    }
    Ok(())
}

/// proptest over readers (1-6), writers (1-3) and rounds (20-200), 24 cases.
#[test]
fn readers_and_writers_never_overlap() {
    Isolation::new().deadline(Duration::from_secs(90)).run(|| {
        cases::check(24, (1usize..=6, 1usize..=3, 20usize..=200), |(r, w, n)| {
            load(r, w, n)
        });
    });
}

/// Four readers relay: each stays inside until another reader has entered after it, so a
/// lock that lets readers in while readers are inside is never free. A writer then calls
/// `write_lock`; from the moment it is seen asleep there, the test counts the readers who
/// enter. A writer-preferring lock lets (almost) none in: the stream stops, the test sees
/// every reader asleep or waiting inside, lets those inside leave, and the writer enters. A
/// reader-preferring lock lets them in for ever: after STARVED_AFTER entries the writer
/// counts as starved. The shipped reader-preferring mistake was caught in 100 of 100 runs,
/// and in 30 of 30 beside a CPU hog on every core.
#[test]
fn a_waiting_writer_is_not_starved() {
    Isolation::new()
        .deadline(Duration::from_secs(60))
        .run(|| {
            const READERS: usize = 4;
            let lock = Arc::new(student(RwLock::new));
            let entries = Arc::new(AtomicU64::new(0));
            // Per reader: 0 outside or on its way in, 1 inside.
            let inside: Arc<Vec<AtomicUsize>> =
                Arc::new((0..READERS).map(|_| AtomicUsize::new(0)).collect());
            let let_go = Arc::new(AtomicBool::new(false));
            let stop = Arc::new(AtomicBool::new(false));
            let (tid_tx, tid_rx) = mpsc::channel();
            for i in 0..READERS {
                let (lock, entries, inside, let_go, stop, tid_tx) = (
                    Arc::clone(&lock),
                    Arc::clone(&entries),
                    Arc::clone(&inside),
                    Arc::clone(&let_go),
                    Arc::clone(&stop),
                    tid_tx.clone(),
                );
                std::thread::Builder::new()
                    .name(format!("reader {i}"))
                    .spawn(move || {
                        tid_tx.send((format!("reader {i}"), nix::unistd::gettid().as_raw())).unwrap();
                        while !stop.load(Ordering::SeqCst) {
                            student(|| lock.read_lock());
                            let me = entries.fetch_add(1, Ordering::SeqCst) + 1;
                            inside[i].store(1, Ordering::SeqCst);
                            while entries.load(Ordering::SeqCst) == me && !let_go.load(Ordering::SeqCst) {
                                std::thread::yield_now();
                            }
                            inside[i].store(0, Ordering::SeqCst);
                            student(|| lock.read_unlock());
                        }
                    })
                    .unwrap();
            }
            drop(tid_tx);
            // In the readers' own order, which `inside` follows.
            let mut readers: Vec<(String, i32)> = tid_rx.iter().take(READERS).collect();
            readers.sort();
            poll_until(|| entries.load(Ordering::SeqCst) >= 50, || {
                format!(
                    "readers overlap: four readers, each waiting inside until another enters, made only {} entries: \
                     a reader must get in while other readers hold the lock:\n{}",
                    entries.load(Ordering::SeqCst),
                    waiters::describe(&readers)
                )
            });
            let writer_in = Arc::new(AtomicBool::new(false));
            // The reader entries counted when the writer got in.
            let entries_then = Arc::new(AtomicU64::new(0));
            let (wtid_tx, wtid_rx) = mpsc::channel();
            {
                let (lock, writer_in, entries, entries_then) = (
                    Arc::clone(&lock),
                    Arc::clone(&writer_in),
                    Arc::clone(&entries),
                    Arc::clone(&entries_then),
                );
                std::thread::Builder::new()
                    .name("writer".to_owned())
                    .spawn(move || {
                        wtid_tx.send(nix::unistd::gettid().as_raw()).unwrap();
                        student(|| lock.write_lock());
                        entries_then.store(entries.load(Ordering::SeqCst), Ordering::SeqCst);
                        writer_in.store(true, Ordering::SeqCst);
                        student(|| lock.write_unlock());
                    })
                    .unwrap();
            }
            let writer = ("writer".to_owned(), wtid_rx.recv().unwrap());
            poll_until(
                || writer_in.load(Ordering::SeqCst) || waiters::asleep_in_futex(writer.1),
                || {
                    format!(
                        "the writer neither got in nor fell asleep in write_lock while readers held the lock: a \
                         writer that must wait sleeps on a condvar:\n{}",
                        waiters::describe(std::slice::from_ref(&writer))
                    )
                },
            );
            let from = entries.load(Ordering::SeqCst);
            // Until the writer is in: count entries; once the stream has stood still for a
            // while with every reader asleep or waiting inside, let those inside go.
            let mut still = (from, Instant::now());
            let mut let_go_at = None;
            while !writer_in.load(Ordering::SeqCst) {
                let now = entries.load(Ordering::SeqCst);
                let after = now - from;
                if after > STARVED_AFTER {
                    stop.store(true, Ordering::SeqCst);
                    let_go.store(true, Ordering::SeqCst);
                    panic!(
                        "writer starvation: a writer waited in write_lock while {after} readers entered after it, \
                         and it still had not got in. Once a writer waits, new readers must wait too (count the \
                         waiting writers, and let a reader in only when there are none), or a stream of readers \
                         keeps the writer out for ever:\n{}",
                        waiters::describe(std::slice::from_ref(&writer))
                    );
                }
                let quiet = readers.iter().enumerate().all(|(i, (_, tid))| {
                    inside[i].load(Ordering::SeqCst) == 1 || waiters::asleep_in_futex(*tid)
                });
                if now != still.0 || !quiet {
                    still = (now, Instant::now());
                } else if let_go_at.is_none() && still.1.elapsed() > scaled(Duration::from_millis(300)) {
                    let_go.store(true, Ordering::SeqCst);
                    let_go_at = Some(Instant::now());
                }
                if let_go_at.is_some_and(|at| at.elapsed() > scaled(PATIENCE)) {
                    let mut all = readers.clone();
                    all.push(writer.clone());
                    panic!(
                        "lost wake-up: the readers stopped coming and left, yet the writer waiting in write_lock was \
                         never let in. The last reader out must wake a waiting writer:\n{}",
                        waiters::describe(&all)
                    );
                }
                std::thread::sleep(Duration::from_micros(500));
            }
            stop.store(true, Ordering::SeqCst);
            let_go.store(true, Ordering::SeqCst);
            let after = entries_then.load(Ordering::SeqCst) - from;
            assert!(
                after <= STARVED_AFTER,
                "writer starvation: {after} readers entered after the writer had begun to wait"
            );
        });
}

/// Polls `done` with a deadline; panics with `why()` when it does not come.
fn poll_until(mut done: impl FnMut() -> bool, why: impl FnOnce() -> String) {
    let start = Instant::now();
    while !done() {
        if start.elapsed() > scaled(PATIENCE) {
            panic!("{} (waited {:?})", why(), scaled(PATIENCE));
        }
        std::thread::sleep(Duration::from_millis(1));
    }
}
