//! sync/spinlock: a spinlock on one atomic flag, with a guard. Real threads (more than the
//! machine's cores) check exact counts and exclusion; the loom model checker runs the same
//! file on its model of the atomics and explores every interleaving of two threads and every
//! value the memory model lets a load return, which is how a Relaxed ordering (hidden by x86)
//! and a test-then-set race are caught every time, not by luck.
//!
//! The contract, clause by clause, and the test that checks each:
//! - one thread at a time holds the lock, and every increment made under it counts, with more
//!   threads than cores, through `lock`, `try_lock` and `with_lock` mixed
//!   (`counts_are_exact_under_contention`, `random_mixes_of_threads_and_calls_count_exactly`);
//!   in every interleaving of two threads no two are inside at once
//!   (`no_interleaving_lets_two_threads_in`, loom);
//! - taking the lock is an Acquire and freeing it a Release, so the next holder sees the last
//!   one's writes, in every interleaving and every memory-model outcome
//!   (`the_lock_orders_the_value_it_protects`, `try_lock_orders_the_value_it_protects`,
//!   `with_lock_orders_the_value_it_protects`, loom);
//! - `try_lock` fails at once while a guard is held, and succeeds once it is dropped; the guard
//!   reads and writes the value (`try_lock_fails_while_held_and_works_once_dropped`);
//! - a panic with the guard held, or inside `with_lock`, frees the lock and leaves the value as
//!   written (`a_panic_while_holding_the_guard_frees_the_lock`,
//!   `a_panic_inside_with_lock_frees_the_lock`);
//! - `into_inner` gives the value back (`into_inner_gives_the_value_back`);
//! - the file takes its atomics and spin hint from `super` (every loom test, which says so).

/// What the exercise file finds as `super::atomic` and `super::hint`: std's, for the threads.
mod atomic {
    pub use std::sync::atomic::*;
}
mod hint {
    pub use std::hint::spin_loop;
}

// The exercise under test: your stub (by default), the reference solution (`--features
// solutions`), or a shipped mistake that `cargo grade --mistakes` copies into target/.
#[cfg(not(any(feature = "solutions", feature = "mistake")))]
#[path = "../../exercises/sync/spinlock.rs"]
#[allow(dead_code)] // a stub does not use all of its API yet
mod spinlock;
#[cfg(all(feature = "solutions", not(feature = "mistake")))]
#[path = "../../solutions/sync/spinlock.rs"]
mod spinlock;
#[cfg(feature = "mistake")]
#[path = "../../target/oskata-mistake/sync/spinlock.rs"]
#[rustfmt::skip] // the copy exists only while the proof runs
mod spinlock;
use spinlock::*;

/// The same exercise file a second time, now finding loom's model of the atomics as
/// `super::atomic` and loom's yield as `super::hint::spin_loop`. (An inline module counts as a
/// directory for the `#[path]`s inside it; `#[path = "."]` keeps them relative to this one.)
#[allow(dead_code)] // the models use part of the API
#[allow(clippy::duplicate_mod)] // on purpose: the same file, on other atomics
#[path = "."]
mod modelled {
    mod atomic {
        pub use loom::sync::atomic::*;
    }
    mod hint {
        pub use loom::hint::spin_loop;
    }
    #[cfg(not(any(feature = "solutions", feature = "mistake")))]
    #[path = "../../exercises/sync/spinlock.rs"]
    pub mod spinlock;
    #[cfg(all(feature = "solutions", not(feature = "mistake")))]
    #[path = "../../solutions/sync/spinlock.rs"]
    pub mod spinlock;
    #[cfg(feature = "mistake")]
    #[path = "../../target/oskata-mistake/sync/spinlock.rs"]
    #[rustfmt::skip] // the copy exists only while the proof runs
    pub mod spinlock;
}

use std::any::Any;
use std::panic::{self, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool as StdBool, AtomicUsize as StdUsize, Ordering as StdOrdering};
use std::sync::{Barrier, mpsc};
use std::thread;

use loom::cell::UnsafeCell;
use loom::sync::Arc as LoomArc;
use loom::sync::atomic::{AtomicUsize as LoomUsize, Ordering as LoomOrdering};
use oskata_harness::{cases, isolated, student};
use proptest::prelude::*;
use proptest::test_runner::TestCaseError;
use rstest::rstest;

/// The phrase every ordering failure carries (and the mistakes' `reason`).
const ORDERING: &str = "take the lock with Acquire ordering and free it with Release";
/// The phrase every exclusion failure carries.
const EXCLUSION: &str = "two threads held the lock at once";

/// Increments `value` under the lock the slow way (read, pause, write back), counting how many
/// threads are inside: a lock that lets two in loses updates here, and `inside` sees it.
fn bump(value: &mut u64, inside: &StdUsize, clash: &StdBool) {
    if inside.fetch_add(1, StdOrdering::SeqCst) != 0 {
        clash.store(true, StdOrdering::SeqCst);
    }
    let read = *value;
    for _ in 0..8 {
        std::hint::spin_loop();
    }
    *value = read + 1;
    inside.fetch_sub(1, StdOrdering::SeqCst);
}

/// How a thread of [`hammer`] takes the lock for one increment.
#[derive(Debug, Clone, Copy)]
enum Call {
    Lock,
    TryLock,
    WithLock,
}

/// `threads` threads (started together) each make `rounds` increments, through the calls of
/// `plan` in turn; checks the count and that no two were ever inside at once.
fn hammer(threads: usize, rounds: usize, plan: &[Call]) -> Result<(), String> {
    let lock = student(|| SpinLock::new(0u64));
    let inside = StdUsize::new(0);
    let clash = StdBool::new(false);
    let start = Barrier::new(threads);
    thread::scope(|s| {
        for t in 0..threads {
            let (lock, inside, clash, start) = (&lock, &inside, &clash, &start);
            s.spawn(move || {
                start.wait();
                for r in 0..rounds {
                    match plan[(t + r) % plan.len()] {
                        Call::Lock => bump(&mut student(|| lock.lock()), inside, clash),
                        Call::WithLock => {
                            student(|| lock.with_lock(|v| bump(v, inside, clash)));
                        }
                        Call::TryLock => loop {
                            if let Some(mut g) = student(|| lock.try_lock()) {
                                bump(&mut g, inside, clash);
                                break;
                            }
                            thread::yield_now();
                        },
                    }
                }
            });
        }
    });
    let want = (threads * rounds) as u64;
    let got = student(|| lock.into_inner());
    if clash.load(StdOrdering::SeqCst) {
        return Err(format!(
            "{EXCLUSION}: a thread found another inside the critical section ({threads} threads, {got} of {want} \
             increments kept). Taking the lock must test and set the flag in one atomic step (swap or \
             compare_exchange), never a load that sees it free followed by a store"
        ));
    }
    if got != want {
        return Err(format!(
            "{threads} threads made {rounds} increments each under the lock, {want} in all, but the value is {got}: \
             updates were lost, so the lock did not keep the threads apart"
        ));
    }
    Ok(())
}

#[rstest]
#[case(2)]
#[case(8)]
#[case(16)]
fn counts_are_exact_under_contention(#[case] threads: usize) {
    isolated(|| {
        hammer(threads, 3000, &[Call::Lock, Call::WithLock, Call::TryLock])
            .unwrap_or_else(|e| panic!("{e}"));
    });
}

#[test]
fn random_mixes_of_threads_and_calls_count_exactly() {
    isolated(|| {
        let call = prop_oneof![Just(Call::Lock), Just(Call::TryLock), Just(Call::WithLock)];
        let strategy = (
            1usize..12,
            1usize..1500,
            proptest::collection::vec(call, 1..4),
        );
        cases::check(16, strategy, |(threads, rounds, plan)| {
            hammer(threads, rounds, &plan).map_err(TestCaseError::fail)
        });
    });
}

#[test]
fn try_lock_fails_while_held_and_works_once_dropped() {
    isolated(|| {
        let lock = student(|| SpinLock::new(vec![1, 2]));
        let mut guard = student(|| lock.lock());
        guard.push(3);
        assert_eq!(
            *guard,
            vec![1, 2, 3],
            "the guard should read back what was written through it"
        );
        let other = thread::scope(|s| s.spawn(|| student(|| lock.try_lock()).is_some()).join());
        assert_eq!(
            other.ok(),
            Some(false),
            "try_lock on another thread succeeded while a guard was held: one thread at a time holds the lock"
        );
        assert!(
            student(|| lock.try_lock()).is_none(),
            "try_lock succeeded while a guard was held (on the same thread: a spinlock is not reentrant)"
        );
        drop(guard);
        let again = student(|| lock.try_lock());
        let Some(again) = again else {
            panic!(
                "try_lock failed after the only guard was dropped: the guard's Drop must free the lock"
            )
        };
        assert_eq!(
            *again,
            vec![1, 2, 3],
            "the value changed between two guards"
        );
    });
}

/// Whether the lock is free once the panic is over, and the value then.
fn free_after(lock: &SpinLock<u32>) -> Option<u32> {
    student(|| lock.try_lock()).map(|g| *g)
}

#[test]
fn a_panic_while_holding_the_guard_frees_the_lock() {
    isolated(|| {
        let lock = student(|| SpinLock::new(0u32));
        let (held_tx, held_rx) = mpsc::channel();
        let joined = thread::scope(|s| {
            s.spawn(|| {
                let mut guard = student(|| lock.lock());
                *guard = 5;
                let _ = held_tx.send(());
                panic!("a panic in the critical section, on purpose");
            })
            .join()
        });
        assert!(held_rx.recv().is_ok() && joined.is_err());
        match free_after(&lock) {
            Some(5) => {}
            Some(v) => panic!("after the panic the value is {v}, not the 5 written before it"),
            None => panic!(
                "the lock is still held after a thread panicked while holding its guard: free the lock in the \
                 guard's Drop, which runs while a panic unwinds, so a panicking critical section cannot keep it"
            ),
        }
    });
}

#[test]
fn a_panic_inside_with_lock_frees_the_lock() {
    isolated(|| {
        let lock = student(|| SpinLock::new(0u32));
        let caught = panic::catch_unwind(AssertUnwindSafe(|| {
            student(|| {
                lock.with_lock(|v| {
                    *v = 7;
                    panic!("a panic inside with_lock, on purpose")
                })
            })
        }));
        let payload = caught.expect_err("with_lock returned although f panicked");
        if payload_text(&*payload).starts_with("not yet implemented") {
            panic::resume_unwind(payload);
        }
        match free_after(&lock) {
            Some(7) => {}
            Some(v) => panic!("after the panic the value is {v}, not the 7 written before it"),
            None => panic!(
                "the lock is still held after f panicked inside with_lock: the unlock after f never ran. Hold the \
                 lock with a guard inside with_lock, so that its Drop frees the lock also while a panic unwinds"
            ),
        }
    });
}

#[test]
fn into_inner_gives_the_value_back() {
    isolated(|| {
        let lock = student(|| SpinLock::new(String::from("kept")));
        student(|| lock.with_lock(|s| s.push('!')));
        assert_eq!(student(|| lock.into_inner()), "kept!");
    });
}

// --- loom ---------------------------------------------------------------------------------

/// The text of a panic payload.
fn payload_text(payload: &(dyn Any + Send)) -> String {
    payload
        .downcast_ref::<String>()
        .cloned()
        .or_else(|| payload.downcast_ref::<&str>().map(|s| (*s).to_owned()))
        .unwrap_or_default()
}

/// Fails unless the file makes its atomics from `super::atomic`: loom's atomics refuse to be
/// made outside a model, std's do not.
fn uses_the_atomics_from_super() {
    let hook = panic::take_hook();
    panic::set_hook(Box::new(|_| {}));
    let made = panic::catch_unwind(|| {
        let _made = student(|| modelled::spinlock::SpinLock::new(0u8));
    });
    panic::set_hook(hook);
    match made {
        Ok(()) => panic!(
            "SpinLock::new made no atomic of super::atomic: take the atomics from the parent module \
             (`use super::atomic::{{AtomicBool, Ordering}};`), not from std::sync::atomic, so that the tests can run \
             your lock on loom's model of them"
        ),
        Err(p) if payload_text(&*p).contains("Loom") => {}
        Err(p) => panic::resume_unwind(p),
    }
}

/// Runs `model` under loom in every interleaving (a few seconds at most here), and turns what
/// loom found into a message about locks.
fn explore(what: &str, model: impl Fn() + Send + Sync + 'static) {
    uses_the_atomics_from_super();
    let mut builder = loom::model::Builder::new();
    builder.max_branches = 10_000;
    let hook = panic::take_hook();
    panic::set_hook(Box::new(|_| {}));
    let checked = panic::catch_unwind(AssertUnwindSafe(|| builder.check(model)));
    panic::set_hook(hook);
    let Err(payload) = checked else { return };
    let text = payload_text(&*payload);
    if text.starts_with("not yet implemented") {
        panic::resume_unwind(payload);
    }
    if text.contains("Causality violation") {
        panic!(
            "{what}: loom found an interleaving in which one thread touched the protected value while another \
             thread's access to it was not ordered before it (no happens-before edge between the two holders). \
             The lock must carry the value from holder to holder: {ORDERING} (a Release store read by an Acquire \
             load orders everything the last holder wrote before everything the next one does); with Relaxed on \
             either side the next holder may read stale data. x86 hides this, ARM does not. (A lock that lets two \
             threads in at once leaves their accesses unordered too: if no_interleaving_lets_two_threads_in fails, \
             fix that first.)\n\
             (loom said: {text})"
        );
    }
    if text.contains("maximum number of branches") {
        panic!(
            "{what}: loom saw a thread spin for ever without letting the others run: call spin_loop() from \
             super::hint (`use super::hint::spin_loop;`) in every waiting loop, not std::hint's, since in the model \
             it is the point where another thread gets to run.\n(loom said: {text})"
        );
    }
    if text.contains(EXCLUSION) {
        panic::resume_unwind(payload);
    }
    panic!("{what}: loom found a failing interleaving: {text}");
}

/// A spinlock over a value loom tracks, shared by the model's threads.
type Tracked = LoomArc<modelled::spinlock::SpinLock<UnsafeCell<usize>>>;

fn tracked() -> Tracked {
    LoomArc::new(modelled::spinlock::SpinLock::new(UnsafeCell::new(0)))
}

/// Two threads each add one to the tracked value under the lock, taking it with `take`; then
/// the main thread, after joining both, reads 2.
fn two_holders(take: fn(&Tracked)) {
    let lock = tracked();
    let threads: Vec<_> = (0..2)
        .map(|_| {
            let lock = lock.clone();
            loom::thread::spawn(move || take(&lock))
        })
        .collect();
    for t in threads {
        t.join().expect("a model thread panicked");
    }
    let total = lock.lock().with(|p| {
        // SAFETY: the model's threads have been joined; loom checks the access.
        unsafe { *p }
    });
    assert_eq!(total, 2, "two increments under the lock left {total}");
}

/// Adds one to the tracked value through `cell` (loom records the access).
fn add_one(cell: &UnsafeCell<usize>) {
    cell.with_mut(|p| {
        // SAFETY: called with the lock held; loom checks that claim.
        unsafe { *p += 1 }
    });
}

/// Model: `lock`, add, drop the guard; in every interleaving the second holder's access is
/// ordered after the first's. Catches Relaxed on the lock's compare_exchange/swap, Relaxed on
/// the guard's store, and a lock freed before the work, every time (loom is exhaustive):
/// measured 100 of 100 runs for each shipped ordering mistake.
#[test]
fn the_lock_orders_the_value_it_protects() {
    isolated(|| {
        explore("lock() and the guard's drop", || {
            two_holders(|lock| add_one(&lock.lock()));
        });
    });
}

#[test]
fn try_lock_orders_the_value_it_protects() {
    isolated(|| {
        explore("try_lock() and the guard's drop", || {
            two_holders(|lock| {
                loop {
                    if let Some(g) = lock.try_lock() {
                        add_one(&g);
                        break;
                    }
                    loom::thread::yield_now();
                }
            });
        });
    });
}

#[test]
fn with_lock_orders_the_value_it_protects() {
    isolated(|| {
        explore("with_lock()", || {
            two_holders(|lock| lock.with_lock(|cell| add_one(cell)));
        });
    });
}

/// Model: two threads take the lock and count themselves in and out on a SeqCst counter (which
/// also orders everything, so only exclusion is checked here): in no interleaving may the
/// second find the first inside. Catches a load-then-store "test and set" every time (loom is
/// exhaustive; measured 100 of 100 runs).
#[test]
fn no_interleaving_lets_two_threads_in() {
    isolated(|| {
        explore("exclusion", || {
            let lock = LoomArc::new(modelled::spinlock::SpinLock::new(()));
            let inside = LoomArc::new(LoomUsize::new(0));
            let threads: Vec<_> = (0..2)
                .map(|_| {
                    let (lock, inside) = (lock.clone(), inside.clone());
                    loom::thread::spawn(move || {
                        let _guard = lock.lock();
                        if inside.fetch_add(1, LoomOrdering::SeqCst) != 0 {
                            panic!(
                                "{EXCLUSION}: loom found an interleaving in which both threads were inside. Taking \
                                 the lock must test and set the flag in one atomic step (swap(true) or \
                                 compare_exchange(false, true)); a load that sees it free followed by a store lets \
                                 both threads see it free"
                            );
                        }
                        inside.fetch_sub(1, LoomOrdering::SeqCst);
                    })
                })
                .collect();
            for t in threads {
                if let Err(p) = t.join() {
                    panic::resume_unwind(p);
                }
            }
        });
    });
}
