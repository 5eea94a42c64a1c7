//! sync/reentrant: a reentrant mutex (owner + count) on `Mutex` + `Condvar`. The owner relocks
//! without waiting (a thread that waits for its own lock is seen asleep in futex(2) and named,
//! never left to hang), other threads sleep until every level is given back, and the last drop
//! wakes them.
//!
//! The contract, clause by clause, and the test that checks each:
//! - the owner relocks at once, through `lock` and `try_lock`, many levels deep
//!   (`the_owner_relocks_without_waiting`);
//! - while a thread holds the lock, another's `try_lock` fails and its `lock` sleeps (seen in
//!   futex(2)) without getting in (`other_threads_wait_until_the_lock_is_free`);
//! - the lock is free only once every level is given back, not at the first drop
//!   (`the_lock_is_free_only_after_the_last_guard`);
//! - the last drop wakes a sleeping thread, which then gets in
//!   (`other_threads_wait_until_the_lock_is_free`);
//! - with more threads than cores, each nesting a few levels, no two threads are ever inside
//!   and every increment counts (`nested_locking_under_contention_counts_exactly`, proptest);
//! - a panic unwinding through the guards frees the lock
//!   (`a_panic_with_levels_held_frees_the_lock`).

// The exercise under test: your stub (by default), the reference solution (`--features
// solutions`), or a shipped mistake that `cargo grade --mistakes` copies into target/.
#[cfg(not(any(feature = "solutions", feature = "mistake")))]
#[path = "../../exercises/sync/reentrant.rs"]
#[allow(dead_code)] // a stub does not use all of its API yet
mod reentrant;
#[cfg(all(feature = "solutions", not(feature = "mistake")))]
#[path = "../../solutions/sync/reentrant.rs"]
mod reentrant;
#[cfg(feature = "mistake")]
#[path = "../../target/oskata-mistake/sync/reentrant.rs"]
#[rustfmt::skip] // the copy exists only while the proof runs
mod reentrant;
use reentrant::*;

use std::cell::Cell;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Barrier, mpsc};
use std::thread;
use std::time::{Duration, Instant};

use nix::unistd::{getpid, gettid};
use oskata_harness::{cases, isolated, poll, procfs, scaled, student};
use proptest::test_runner::TestCaseError;

/// How long a thread may take to get somewhere (before `scaled`).
const PATIENCE: Duration = Duration::from_secs(5);

type Shared = Arc<ReentrantMutex<Cell<u64>>>;

fn shared() -> Shared {
    Arc::new(student(|| ReentrantMutex::new(Cell::new(0))))
}

/// Whether thread `tid` of this process is asleep in futex(2) right now (waiting on a mutex or
/// a condvar).
fn asleep_in_futex(tid: i32) -> bool {
    let me = getpid();
    procfs::task_stat(me, tid).is_ok_and(|s| s.state == 'S')
        && procfs::thread_syscall(me, tid).is_some_and(|c| c.nr == libc::SYS_futex)
}

/// A thread of the test's, started with [`watched`]: its tid, and flags it sets.
struct Watched {
    tid: i32,
    /// Set once the thread's work is over.
    done: Arc<AtomicBool>,
}

impl Watched {
    /// Whether the thread is done, or `false` once it has been seen asleep in futex(2) in three
    /// looks in a row while not done (asleep where it can only wait for ever); fails after
    /// [`PATIENCE`] of neither.
    fn finishes_unless_asleep(&self) -> bool {
        let limit = scaled(PATIENCE);
        let start = Instant::now();
        let mut asleep = 0;
        while !self.done.load(Ordering::SeqCst) {
            asleep = if asleep_in_futex(self.tid) {
                asleep + 1
            } else {
                0
            };
            if asleep >= 3 {
                return false;
            }
            assert!(
                start.elapsed() < limit,
                "thread {} neither finished nor slept within {limit:?}",
                self.tid
            );
            thread::sleep(Duration::from_millis(2));
        }
        true
    }

    /// Waits until the thread is asleep in futex(2) (true), or done (false).
    fn sleeps_or_finishes(&self, what: &str) -> bool {
        poll::until(PATIENCE, what, || {
            if self.done.load(Ordering::SeqCst) {
                Some(false)
            } else {
                asleep_in_futex(self.tid).then_some(true)
            }
        })
    }
}

/// Starts `work` on a thread of its own (not scoped: a thread stuck for good must not keep the
/// test from reporting it), and returns once it runs.
fn watched(work: impl FnOnce() + Send + 'static) -> Watched {
    let done = Arc::new(AtomicBool::new(false));
    let (tid_tx, tid_rx) = mpsc::channel();
    let flag = done.clone();
    thread::spawn(move || {
        let _ = tid_tx.send(gettid().as_raw());
        work();
        flag.store(true, Ordering::SeqCst);
    });
    let tid = tid_rx.recv().expect("the thread sends its tid");
    Watched { tid, done }
}

/// Whether another thread's `try_lock` gets the lock right now (it gives it back at once).
fn free_for_others(lock: &Shared) -> bool {
    let lock = lock.clone();
    thread::spawn(move || student(|| lock.try_lock()).is_some())
        .join()
        .unwrap_or_else(|p| std::panic::resume_unwind(p))
}

/// The owner locks five levels deep and tries once more, on a thread the test watches: a
/// correct lock never sleeps here, so a thread seen asleep in futex(2) in three looks in a row
/// waits for itself. Deterministic: `no_owner_check` was caught in 100 of 100 runs.
#[test]
fn the_owner_relocks_without_waiting() {
    isolated(|| {
        let lock = shared();
        let (report_tx, report_rx) = mpsc::channel();
        let worker = {
            let lock = lock.clone();
            watched(move || {
                let outer = student(|| lock.lock());
                outer.set(1);
                let mut levels = vec![];
                for _ in 2..=5 {
                    let guard = student(|| lock.lock());
                    guard.set(guard.get() + 1);
                    levels.push(guard);
                }
                let tried = student(|| lock.try_lock()).map(|g| g.get());
                drop(levels);
                let seen = outer.get();
                drop(outer);
                let _ = report_tx.send((tried, seen));
            })
        };
        if !worker.finishes_unless_asleep() {
            panic!(
                "the thread that holds the lock called lock() again and fell asleep (thread {} sits in futex(2)): \
                 it waited for a lock it already holds, which only it could free, a deadlock. A reentrant mutex \
                 remembers its owner (thread::current().id()) and, when the owner locks again, counts one more \
                 level and returns at once",
                worker.tid
            );
        }
        let (tried, seen) = report_rx.recv().expect("the worker reports");
        assert_eq!(
            tried,
            Some(5),
            "try_lock by the thread that holds the lock (5 levels deep) returned None: the owner gets one more \
             level from try_lock too"
        );
        assert_eq!(seen, 5, "the outer guard sees what the inner ones wrote");
        assert!(
            free_for_others(&lock),
            "after the owner dropped all of its guards, another thread's try_lock failed: each drop gives back one \
             level, and at zero the lock is free"
        );
    });
}

/// Another thread's `try_lock` after each drop, with nobody waiting, so nothing races:
/// `first_drop_frees` was caught in 100 of 100 runs.
#[test]
fn the_lock_is_free_only_after_the_last_guard() {
    isolated(|| {
        let lock = shared();
        let outer = student(|| lock.lock());
        let inner = student(|| lock.lock());
        let inner2 = student(|| lock.lock());
        assert!(
            !free_for_others(&lock),
            "another thread's try_lock got the lock while this thread held it 3 levels deep"
        );
        drop(inner2);
        assert!(
            !free_for_others(&lock),
            "the lock was freed when the first of three guards was dropped: another thread got it while the owner \
             still held two levels. Count the levels and free the lock only when the count drops to 0"
        );
        drop(inner);
        assert!(
            !free_for_others(&lock),
            "the lock was freed when the second of three guards was dropped: another thread got it while the owner \
             still held a level. Count the levels and free the lock only when the count drops to 0"
        );
        drop(outer);
        assert!(
            free_for_others(&lock),
            "after the last guard was dropped, another thread's try_lock failed: at a count of 0 the lock is free"
        );
    });
}

/// The waiter is seen asleep in futex(2) before the owner lets go; once the drops have
/// returned, a woken waiter is runnable, so one still asleep in three looks in a row was never
/// woken. `any_holder_relocks` and `never_notifies` were caught in 100 of 100 runs each.
#[test]
fn other_threads_wait_until_the_lock_is_free() {
    isolated(|| {
        let lock = shared();
        let outer = student(|| lock.lock());
        let inner = student(|| lock.lock());
        outer.set(10);
        let entered = Arc::new(AtomicBool::new(false));
        let (seen_tx, seen_rx) = mpsc::channel();
        let waiter = {
            let (lock, entered) = (lock.clone(), entered.clone());
            watched(move || {
                let guard = student(|| lock.lock());
                entered.store(true, Ordering::SeqCst);
                let _ = seen_tx.send(guard.get());
                guard.set(11);
            })
        };
        let slept = waiter.sleeps_or_finishes(
            "the second thread to sleep in futex(2) waiting for the lock the first one holds",
        );
        if !slept || entered.load(Ordering::SeqCst) {
            panic!(
                "a second thread's lock() got in while another thread held the lock (2 levels deep): only the owner \
                 may relock. Compare the owner with thread::current().id(), and let any other thread wait on the \
                 condvar while the lock has an owner"
            );
        }
        drop(inner);
        drop(outer);
        // The drops have returned, so a waiter that was woken is runnable now: seen asleep in
        // three looks in a row, it was not woken.
        let woke = waiter.finishes_unless_asleep();
        if !woke {
            panic!(
                "the lock was freed (every guard dropped) while another thread slept waiting for it, and nobody woke \
                 that thread: it sleeps on in futex(2) (thread {}), a lost wake-up. When the count drops to 0, \
                 notify the condvar the waiters sleep on",
                waiter.tid
            );
        }
        assert_eq!(
            seen_rx.recv().ok(),
            Some(10),
            "the waiter should see the value the first owner left"
        );
    });
}

/// One increment under the lock, the slow way (read, pause, write back), counting how many
/// threads are inside: a lock that lets two in loses updates, and `inside` sees it.
fn bump(value: &Cell<u64>, inside: &AtomicUsize, clash: &AtomicBool) {
    if inside.fetch_add(1, Ordering::SeqCst) != 0 {
        clash.store(true, Ordering::SeqCst);
    }
    let read = value.get();
    for _ in 0..16 {
        std::hint::spin_loop();
    }
    value.set(read + 1);
    inside.fetch_sub(1, Ordering::SeqCst);
}

/// `threads` threads (started together) each take the lock `rounds` times, `depth` levels deep,
/// and make one increment at each level.
fn hammer(threads: usize, depth: usize, rounds: usize) -> Result<(), String> {
    let lock = shared();
    let inside = Arc::new(AtomicUsize::new(0));
    let clash = Arc::new(AtomicBool::new(false));
    let start = Arc::new(Barrier::new(threads));
    let workers: Vec<Watched> = (0..threads)
        .map(|_| {
            let (lock, inside, clash, start) =
                (lock.clone(), inside.clone(), clash.clone(), start.clone());
            watched(move || {
                start.wait();
                for _ in 0..rounds {
                    let mut levels = vec![];
                    for _ in 0..depth {
                        let guard = student(|| lock.lock());
                        bump(&guard, &inside, &clash);
                        levels.push(guard);
                    }
                }
            })
        })
        .collect();
    let want = (threads * depth * rounds) as u64;
    let all_asleep = || {
        workers
            .iter()
            .all(|w| w.done.load(Ordering::SeqCst) || asleep_in_futex(w.tid))
    };
    let limit = scaled(Duration::from_secs(20));
    let started = Instant::now();
    let mut asleep = 0;
    while !workers.iter().all(|w| w.done.load(Ordering::SeqCst)) {
        asleep = if all_asleep() { asleep + 1 } else { 0 };
        if asleep >= 3 {
            return Err(format!(
                "{threads} threads nesting {depth} levels deep: every unfinished thread sleeps in futex(2) and none \
                 runs, so they wait for a lock nobody will free (a lost wake-up: nobody woke them; or a thread \
                 waiting for a lock it already holds). The owner's relock never waits, and the last drop wakes a \
                 waiter"
            ));
        }
        assert!(
            started.elapsed() < limit,
            "{threads} threads nesting {depth} levels did not finish within {limit:?}"
        );
        thread::sleep(Duration::from_millis(2));
    }
    let got = lock.lock().get();
    if clash.load(Ordering::SeqCst) {
        return Err(format!(
            "two threads were inside at once ({threads} threads, {depth} levels each; {got} of {want} increments \
             kept): a thread got in while another held the lock. Only the owner may relock"
        ));
    }
    if got != want {
        return Err(format!(
            "{threads} threads nesting {depth} levels made {want} increments under the lock, but the value is {got}"
        ));
    }
    Ok(())
}

#[test]
fn nested_locking_under_contention_counts_exactly() {
    isolated(|| {
        hammer(8, 3, 300).unwrap_or_else(|e| panic!("{e}"));
        let strategy = (1usize..10, 1usize..5, 1usize..200);
        cases::check(12, strategy, |(threads, depth, rounds)| {
            hammer(threads, depth, rounds).map_err(TestCaseError::fail)
        });
    });
}

#[test]
fn a_panic_with_levels_held_frees_the_lock() {
    isolated(|| {
        let lock = shared();
        let holder = lock.clone();
        let joined = thread::spawn(move || {
            let _outer = student(|| holder.lock());
            let inner = student(|| holder.lock());
            inner.set(3);
            panic!("a panic with two levels held, on purpose");
        })
        .join();
        let payload = joined.expect_err("the thread panicked");
        let text = payload
            .downcast_ref::<String>()
            .map(String::as_str)
            .or(payload.downcast_ref::<&str>().copied())
            .unwrap_or_default();
        if text.starts_with("not yet implemented") {
            std::panic::resume_unwind(payload);
        }
        assert!(
            free_for_others(&lock),
            "a thread panicked holding two levels, and afterwards the lock is still held: the guards' drops run while \
             the panic unwinds, each giving back its level"
        );
        assert_eq!(lock.lock().get(), 3);
    });
}
