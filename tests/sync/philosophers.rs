//! sync/philosophers: dining philosophers that cannot deadlock. The test supplies the forks,
//! so it sees every pick-up and put-down: who holds which fork and who waits for which. It
//! holds each philosopher right after its first fork until every philosopher that can has
//! taken one, which makes the bad timing certain: with a circular wait every philosopher then
//! holds one fork and waits for its neighbour's, and the test sees the cycle close (the
//! others asleep in futex in `/proc`), breaks it so `dine` can return, and fails naming the
//! circular wait, instead of hanging.
//!
//! The contract, clause by clause, and the test that checks each:
//! - `dine` never deadlocks, even when every philosopher holds its first fork at once
//!   (`no_deadlock_when_every_philosopher_holds_one_fork`);
//! - every philosopher eats exactly `meals` times, each on a thread of its own, in bounded time
//!   (`every_philosopher_eats_every_meal`, and the test above);
//! - `eat(i)` is called while philosopher i holds both forks i and (i + 1) % n, picked up with
//!   `pick_up`; only the holder puts a fork down, and every fork is down when `dine` returns
//!   (both tests).

// The exercise under test: your stub (by default), the reference solution (`--features
// solutions`), or a shipped mistake that `cargo grade --mistakes` copies into target/.
#[cfg(not(any(feature = "solutions", feature = "mistake")))]
#[path = "../../exercises/sync/philosophers.rs"]
#[allow(dead_code)] // a stub does not use all of its API yet
mod philosophers;
#[cfg(all(feature = "solutions", not(feature = "mistake")))]
#[path = "../../solutions/sync/philosophers.rs"]
mod philosophers;
#[cfg(feature = "mistake")]
#[path = "../../target/oskata-mistake/sync/philosophers.rs"]
#[rustfmt::skip] // the copy exists only while the proof runs
mod philosophers;
use philosophers::*;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread;
use std::time::{Duration, Instant};

use nix::unistd::gettid;
use oskata_harness::{cases, isolated, scaled, stuck, student};
use proptest::prelude::*;
use rstest::rstest;

/// How long, with no change at the table, the hold after the first fork lasts at most (before
/// `scaled`): a waiter solution keeps one philosopher away from the forks, so not all can ever
/// hold one. Only how sure the circular-wait check is depends on it, never the verdict on a
/// deadlock-free solution.
const HOLD_QUIET: Duration = Duration::from_secs(1);

/// One link of a circular wait: a thread, the fork it holds, the fork it waits for.
type Link = (i32, usize, usize);

/// Who holds and who waits, as the test's forks saw it.
#[derive(Default)]
struct Seen {
    /// The tid holding each fork.
    holder: Vec<Option<i32>>,
    /// Threads inside `pick_up`, waiting for a fork held by another.
    waiting: BTreeMap<i32, usize>,
    /// Every thread that has called `pick_up`.
    callers: BTreeSet<i32>,
    /// Threads that have been held after their first fork.
    held_once: BTreeSet<i32>,
    /// Threads being held right now.
    in_hold: usize,
    /// The hold is over (everyone who could took a fork, or the table was quiet).
    released: bool,
    last_change: Option<Instant>,
    /// The circular wait, once seen: (thread, fork it holds, fork it waits for), and what
    /// `/proc` showed of the others.
    cycle: Option<(Vec<Link>, String)>,
    /// Per philosopher: meals eaten and the threads that ate them.
    meals: Vec<usize>,
    eaters: Vec<BTreeSet<i32>>,
    /// Broken rules, in words.
    violations: Vec<String>,
}

/// The table the test lays: its forks record everything in one [`Seen`].
struct Table {
    n: usize,
    hold: bool,
    seen: Mutex<Seen>,
    changed: Condvar,
    /// Every event at the table: the stuck check's progress.
    events: AtomicU64,
    /// Set once a circular wait has been seen: the forks then stop being locks, so every
    /// philosopher can finish and `dine` return.
    broken: AtomicBool,
    /// Set by the one thread that saw the cycle close first and reports it.
    detected: AtomicBool,
}

impl Table {
    fn new(n: usize, hold: bool) -> Table {
        Table {
            n,
            hold,
            seen: Mutex::new(Seen {
                holder: vec![None; n],
                meals: vec![0; n],
                eaters: vec![BTreeSet::new(); n],
                ..Seen::default()
            }),
            changed: Condvar::new(),
            events: AtomicU64::new(0),
            broken: AtomicBool::new(false),
            detected: AtomicBool::new(false),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Seen> {
        self.events.fetch_add(1, Ordering::SeqCst);
        self.seen.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The cycle of waits through `me`, if there is one: each thread waits for a fork that the
    /// next one holds.
    fn cycle_through(seen: &Seen, me: i32) -> Option<Vec<Link>> {
        let mut out = Vec::new();
        let mut who = me;
        loop {
            let wants = *seen.waiting.get(&who)?;
            let holder = seen.holder[wants]?;
            let holds = seen.holder.iter().position(|h| *h == Some(who))?;
            out.push((who, holds, wants));
            if holder == me {
                return Some(out);
            }
            if out.len() > seen.holder.len() {
                return None;
            }
            who = holder;
        }
    }

    /// What `/proc` shows of the cycle's other threads once they have gone back to sleep
    /// (within a second; a waiter woken by the last notify may still be on its way).
    fn asleep(cycle: &[Link], me: i32) -> String {
        let others: Vec<i32> = cycle.iter().map(|c| c.0).filter(|&t| t != me).collect();
        let limit = scaled(Duration::from_secs(1));
        let start = Instant::now();
        let mut seen = stuck::look(&others);
        while !seen.iter().all(|t| t.asleep_in_futex()) && start.elapsed() < limit {
            thread::sleep(Duration::from_millis(2));
            seen = stuck::look(&others);
        }
        seen.iter()
            .map(|t| format!("  {t}"))
            .collect::<Vec<_>>()
            .join("\n")
    }

    fn pick_up(&self, fork: usize) {
        let me = gettid().as_raw();
        let mut seen = self.lock();
        seen.callers.insert(me);
        if self.broken.load(Ordering::SeqCst) {
            return;
        }
        if seen.holder[fork] == Some(me) {
            seen.violations.push(format!(
                "thread {me} picked up fork {fork}, which it already held"
            ));
            return;
        }
        while seen.holder[fork].is_some() && !self.broken.load(Ordering::SeqCst) {
            if seen.waiting.insert(me, fork).is_none() {
                seen.last_change = Some(Instant::now());
                self.changed.notify_all();
            }
            if let Some(cycle) = Self::cycle_through(&seen, me)
                && !self.detected.swap(true, Ordering::SeqCst)
            {
                // Nothing can undo the cycle: read the others' sleep from /proc first, then
                // break it.
                drop(seen);
                let procs = Self::asleep(&cycle, me);
                seen = self.lock();
                seen.cycle = Some((cycle, procs));
                self.broken.store(true, Ordering::SeqCst);
                self.changed.notify_all();
                break;
            }
            seen = self.changed.wait(seen).unwrap_or_else(|e| e.into_inner());
            self.events.fetch_add(1, Ordering::SeqCst);
        }
        seen.waiting.remove(&me);
        if self.broken.load(Ordering::SeqCst) {
            return;
        }
        seen.holder[fork] = Some(me);
        let holds = seen.holder.iter().filter(|h| **h == Some(me)).count();
        if self.hold && holds == 1 && !seen.released && seen.held_once.insert(me) {
            self.hold_after_first_fork(seen);
        }
    }

    /// Keeps the caller, who has just taken its first fork, until every philosopher either
    /// holds a fork here or waits for one, or nothing has changed for [`HOLD_QUIET`].
    fn hold_after_first_fork(&self, mut seen: MutexGuard<'_, Seen>) {
        let quiet = scaled(HOLD_QUIET);
        seen.in_hold += 1;
        seen.last_change = Some(Instant::now());
        self.changed.notify_all();
        while !seen.released && !self.broken.load(Ordering::SeqCst) {
            let quiet_for = seen.last_change.map_or(Duration::ZERO, |t| t.elapsed());
            if seen.in_hold + seen.waiting.len() >= self.n || quiet_for > quiet {
                seen.released = true;
                self.changed.notify_all();
                break;
            }
            seen = self
                .changed
                .wait_timeout(seen, Duration::from_millis(10))
                .unwrap_or_else(|e| e.into_inner())
                .0;
            self.events.fetch_add(1, Ordering::SeqCst);
        }
        seen.in_hold -= 1;
    }

    fn put_down(&self, fork: usize) {
        let me = gettid().as_raw();
        let mut seen = self.lock();
        if self.broken.load(Ordering::SeqCst) {
            return;
        }
        if seen.holder[fork] == Some(me) {
            seen.holder[fork] = None;
            seen.last_change = Some(Instant::now());
            self.changed.notify_all();
        } else {
            let holder = seen.holder[fork];
            seen.violations.push(format!(
                "thread {me} put down fork {fork}, which it did not hold (its holder: {holder:?})"
            ));
        }
    }

    fn eat(&self, philosopher: usize) {
        let me = gettid().as_raw();
        let n = self.n;
        {
            let mut seen = self.lock();
            if philosopher >= n {
                seen.violations
                    .push(format!("eat({philosopher}) was called at a table of {n}"));
                return;
            }
            seen.meals[philosopher] += 1;
            seen.eaters[philosopher].insert(me);
            let (left, right) = (philosopher, (philosopher + 1) % n);
            if !self.broken.load(Ordering::SeqCst)
                && (seen.holder[left] != Some(me) || seen.holder[right] != Some(me))
            {
                let (l, r) = (seen.holder[left], seen.holder[right]);
                seen.violations.push(format!(
                    "philosopher {philosopher} (thread {me}) ate without holding both its forks: fork {left} was \
                     held by {l:?}, fork {right} by {r:?}. Pick up forks {left} and {right} with pick_up before \
                     calling eat({philosopher})"
                ));
            }
        }
        // A moment at the table, so that neighbours really compete for forks.
        for _ in 0..200 {
            std::hint::spin_loop();
        }
    }
}

/// A fork of the test's table.
struct TestFork {
    table: Arc<Table>,
    index: usize,
}

impl Fork for TestFork {
    fn pick_up(&self) {
        self.table.pick_up(self.index);
    }
    fn put_down(&self) {
        self.table.put_down(self.index);
    }
}

/// Runs `dine` with `n` of the test's forks and `meals` meals on a thread of its own, watches
/// for threads stuck for good meanwhile, and checks every clause.
fn run(n: usize, meals: usize, hold: bool) -> Result<(), String> {
    let table = Arc::new(Table::new(n, hold));
    let host = {
        let table = Arc::clone(&table);
        thread::spawn(move || {
            let forks: Vec<TestFork> = (0..n)
                .map(|index| TestFork {
                    table: Arc::clone(&table),
                    index,
                })
                .collect();
            let eat_table = Arc::clone(&table);
            student(|| dine(&forks, meals, move |i| eat_table.eat(i)));
        })
    };
    // The philosophers' threads, once all n have come to the table.
    let tids = || {
        let seen = table.seen.lock().unwrap_or_else(|e| e.into_inner());
        if seen.callers.len() >= n {
            seen.callers.iter().copied().collect()
        } else {
            Vec::new()
        }
    };
    let outcome = stuck::wait_unless_stuck(
        Duration::from_secs(30),
        tids,
        || table.events.load(Ordering::SeqCst),
        || host.is_finished(),
    );
    if let Err(s) = outcome {
        let seen = table.seen.lock().unwrap_or_else(|e| e.into_inner());
        let holders: Vec<String> = seen
            .holder
            .iter()
            .enumerate()
            .map(|(f, h)| format!("fork {f}: {h:?}"))
            .collect();
        return Err(format!(
            "the philosophers are stuck{}: forks held by [{}], threads waiting in pick_up: {:?}\n{}",
            if s.timed_out {
                " (no progress in time)"
            } else {
                ", every one of them asleep in futex with none left running to wake them"
            },
            holders.join(", "),
            seen.waiting,
            s.describe()
        ));
    }
    if let Err(p) = host.join() {
        std::panic::resume_unwind(p);
    }
    let seen = table.seen.lock().unwrap_or_else(|e| e.into_inner());
    if let Some((cycle, procs)) = &seen.cycle {
        let links: Vec<String> = cycle
            .iter()
            .map(|(t, holds, wants)| {
                format!("thread {t} holds fork {holds} and waits for fork {wants}")
            })
            .collect();
        return Err(format!(
            "circular wait: with every philosopher holding one fork, each waited for a fork its neighbour held: {}. \
             Nobody could ever eat again: a deadlock (the test then let them all through). Break the cycle: pick \
             up the lower-numbered fork first (philosopher {} then reaches for fork 0 before fork {}), or let at \
             most {} philosophers reach for forks at once.\nThe other threads of the cycle, from /proc:\n{procs}",
            links.join("; "),
            n - 1,
            n - 1,
            n - 1
        ));
    }
    if let Some(v) = seen.violations.first() {
        return Err(format!(
            "{v} ({} broken rule(s) in all)",
            seen.violations.len()
        ));
    }
    for (i, &m) in seen.meals.iter().enumerate() {
        if m != meals {
            return Err(format!(
                "philosopher {i} ate {m} times, not {meals}: each philosopher eats exactly `meals` times"
            ));
        }
    }
    let threads: BTreeSet<i32> = seen.eaters.iter().flatten().copied().collect();
    if meals > 0 && (threads.len() != n || seen.eaters.iter().any(|e| e.len() != 1)) {
        return Err(format!(
            "the {n} philosophers ate on {} thread(s) ({:?} per philosopher): each philosopher must be a thread \
             of its own, the same one for all its meals, all of them at the table at once",
            threads.len(),
            seen.eaters
        ));
    }
    if let Some(f) = seen.holder.iter().position(Option::is_some) {
        return Err(format!(
            "fork {f} was still held (by thread {:?}) after dine returned: put both forks down after each meal",
            seen.holder[f]
        ));
    }
    Ok(())
}

/// Every philosopher is held right after its first fork until each one either holds a fork
/// or waits for one: a take-left-first solution then has every philosopher holding its left
/// fork, and the cycle closes for certain. Measured: the shipped `circular_wait` was caught in
/// 100 of 100 runs of the 5-philosopher case, here beside other builds on 2 cores.
#[rstest]
#[case(2)]
#[case(3)]
#[case(5)]
#[case(8)]
fn no_deadlock_when_every_philosopher_holds_one_fork(#[case] n: usize) {
    isolated(|| {
        if let Err(why) = run(n, 30, true) {
            panic!("{why}");
        }
    });
}

/// proptest over table sizes (2 to 10) and meals (1 to 40), scheduled freely: all eat, each
/// holding both forks, and every fork is down at the end.
#[test]
fn every_philosopher_eats_every_meal() {
    isolated(|| {
        cases::check(16, (2usize..=10, 1usize..=40), |(n, meals)| {
            run(n, meals, false).map_err(TestCaseError::fail)
        });
    });
}
