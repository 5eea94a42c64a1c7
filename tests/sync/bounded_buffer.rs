//! sync/bounded_buffer: a producer-consumer queue on Mutex + Condvar. Every item delivered
//! once, each producer's items in its order, never more items held than the capacity, and
//! nobody left asleep while they could go on.
//!
//! The contract, clause by clause, and the test that checks each:
//! - first in, first out (`items_come_out_in_order`);
//! - `pop` on an empty buffer sleeps (seen asleep in futex(2) in
//!   `/proc/self/task/<tid>/syscall`) until an item comes (`pop_waits_for_an_item`);
//! - `push` on a full buffer sleeps until there is room: the capacity is never exceeded
//!   (`push_waits_for_room`, capacities 1, 2 and 5);
//! - a woken thread looks again: two consumers asleep on an empty buffer and one item pushed,
//!   one gets it and the other sleeps on (`woken_consumers_look_again`); two producers asleep
//!   on a full buffer and one item popped, one pushes and the other sleeps on
//!   (`woken_producers_look_again`);
//! - every thread that can go on is woken: two consumers asleep, then two items pushed back
//!   to back, which fills a one-item buffer while a consumer is still waking
//!   (`a_wake_up_reaches_who_can_go_on`, 100 rounds);
//! - under load (proptest over producers, consumers, capacities and item counts, more
//!   threads than cores): every item delivered exactly once, per-producer order kept,
//!   capacity never exceeded, nobody stuck (`every_item_once_in_order_within_capacity`).
//!
//! Every thread that runs student code is watched: one asleep for good is reported with where
//! it sleeps, never left to hang the test.

// The exercise under test: your stub (by default), the reference solution (`--features
// solutions`), or a shipped mistake that `cargo grade --mistakes` copies into target/.
#[cfg(not(any(feature = "solutions", feature = "mistake")))]
#[path = "../../exercises/sync/bounded_buffer.rs"]
#[allow(dead_code)] // a stub does not use all of its API yet
mod bounded_buffer;
#[cfg(all(feature = "solutions", not(feature = "mistake")))]
#[path = "../../solutions/sync/bounded_buffer.rs"]
mod bounded_buffer;
#[cfg(feature = "mistake")]
#[path = "../../target/oskata-mistake/sync/bounded_buffer.rs"]
#[rustfmt::skip] // the copy exists only while the proof runs
mod bounded_buffer;
use bounded_buffer::*;

use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, mpsc};
use std::time::{Duration, Instant};

use oskata_harness::waiters::{self, Outcome, Worker};
use oskata_harness::{Isolation, cases, isolated, scaled, student};
use proptest::prelude::*;
use rstest::rstest;

/// How long a thread may take to fall asleep, or to come out once it can.
const PATIENCE: Duration = Duration::from_secs(5);

type Buffer = Arc<BoundedBuffer<u64>>;

/// An item of the load test: (producer, sequence number).
type Item = (usize, usize);

/// What a `Call` thread ended with.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Ended {
    Running,
    Returned(Option<u64>),
    Panicked(String),
}

/// A thread making one call on the buffer (a push, or a pop whose item it keeps).
struct Call {
    name: String,
    tid: i32,
    ended: Arc<Mutex<Ended>>,
}

fn push_on_thread(buf: &Buffer, item: u64, name: String) -> Call {
    let buf = Arc::clone(buf);
    call(name, move || {
        buf.push(item);
        None
    })
}

fn pop_on_thread(buf: &Buffer, name: String) -> Call {
    let buf = Arc::clone(buf);
    call(name, move || Some(buf.pop()))
}

fn call(name: String, op: impl FnOnce() -> Option<u64> + Send + 'static) -> Call {
    let (tx, rx) = mpsc::channel();
    let ended = Arc::new(Mutex::new(Ended::Running));
    let e = Arc::clone(&ended);
    std::thread::Builder::new()
        .name(name.clone())
        .spawn(move || {
            tx.send(nix::unistd::gettid().as_raw()).unwrap();
            let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| student(op)));
            *e.lock().unwrap() = match result {
                Ok(v) => Ended::Returned(v),
                Err(p) => Ended::Panicked(
                    p.downcast_ref::<&str>()
                        .map(|s| s.to_string())
                        .or_else(|| p.downcast_ref::<String>().cloned())
                        .unwrap_or_default(),
                ),
            };
        })
        .unwrap();
    Call {
        name,
        tid: rx.recv().unwrap(),
        ended,
    }
}

impl Call {
    fn ended(&self) -> Ended {
        self.ended.lock().unwrap().clone()
    }
    fn running(&self) -> bool {
        self.ended() == Ended::Running
    }
}

fn describe(cs: &[&Call]) -> String {
    waiters::describe(
        &cs.iter()
            .map(|c| (c.name.clone(), c.tid))
            .collect::<Vec<_>>(),
    )
}

/// Fails with the thread's own panic, named as the cause it most likely has.
fn no_panic(c: &Call) {
    if let Ended::Panicked(msg) = c.ended() {
        panic!(
            "{} panicked in the buffer: {msg}\n(A thread woken in pop may find the buffer empty: another consumer \
             took the item first, or the wake-up was spurious. Look at the buffer again in a `while` loop around \
             wait, and take an item only when there is one.)",
            c.name
        );
    }
}

/// Waits until `c` has returned; `why` says what it means if it does not.
fn returns(c: &Call, why: &str) -> Option<u64> {
    let start = Instant::now();
    loop {
        no_panic(c);
        if let Ended::Returned(v) = c.ended() {
            return v;
        }
        if start.elapsed() > scaled(PATIENCE) {
            panic!("{why} (waited {:?}):\n{}", scaled(PATIENCE), describe(&[c]));
        }
        std::thread::sleep(Duration::from_millis(1));
    }
}

/// Waits until each of `cs` sleeps in a futex without having returned, 20 looks in a row;
/// `why` is the failure when one returns.
fn stay_asleep(cs: &[&Call], why: &str) {
    let start = Instant::now();
    let mut calm = 0;
    while calm < 20 {
        for c in cs {
            no_panic(c);
            assert!(c.running(), "{why}");
        }
        if cs.iter().all(|c| waiters::asleep_in_futex(c.tid)) {
            calm += 1;
        } else {
            calm = 0;
        }
        assert!(
            start.elapsed() < scaled(PATIENCE),
            "a thread that must wait neither returned nor fell asleep within {:?}: it should sleep on the condvar \
             (Condvar::wait, a futex wait), not spin:\n{}",
            scaled(PATIENCE),
            describe(cs)
        );
        std::thread::sleep(Duration::from_millis(1));
    }
}

#[test]
fn items_come_out_in_order() {
    isolated(|| {
        let buf: Buffer = Arc::new(student(|| BoundedBuffer::new(4)));
        for item in [7, 3, 9, 1] {
            let c = push_on_thread(&buf, item, format!("push {item}"));
            returns(
                &c,
                "a push on a buffer with room did not return: push waits only while the buffer is full",
            );
        }
        let got: Vec<u64> = (0..4)
            .map(|_| {
                let c = pop_on_thread(&buf, "pop".to_owned());
                returns(&c, "a pop on a buffer holding items did not return").unwrap()
            })
            .collect();
        assert_eq!(
            got,
            vec![7, 3, 9, 1],
            "pushed 7, 3, 9, 1 and popped {got:?}: a bounded buffer is a queue, first in, first out (push at the \
             back, pop from the front)"
        );
    });
}

#[test]
fn pop_waits_for_an_item() {
    isolated(|| {
        let buf: Buffer = Arc::new(student(|| BoundedBuffer::new(2)));
        let c = pop_on_thread(&buf, "consumer".to_owned());
        stay_asleep(
            &[&c],
            "pop on an empty buffer returned: it must wait until an item is pushed",
        );
        student(|| buf.push(42));
        let got = returns(
            &c,
            "lost wake-up: an item was pushed while a consumer waited in pop, yet it was never woken: push must \
             notify the condvar",
        );
        assert_eq!(
            got,
            Some(42),
            "the consumer waiting in pop got {got:?}, not the item pushed (42)"
        );
    });
}

#[rstest]
#[case::one(1)]
#[case::two(2)]
#[case::five(5)]
fn push_waits_for_room(#[case] capacity: usize) {
    isolated(move || {
        let buf: Buffer = Arc::new(student(|| BoundedBuffer::new(capacity)));
        for item in 0..capacity as u64 {
            let c = push_on_thread(&buf, item, format!("push {item}"));
            returns(
                &c,
                &format!(
                    "push number {} on a buffer of capacity {capacity} did not return: push waits only while the \
                     buffer is full",
                    item + 1
                ),
            );
        }
        let extra = push_on_thread(&buf, 99, "producer".to_owned());
        stay_asleep(
            &[&extra],
            &format!(
                "capacity exceeded: push returned with the buffer already holding {capacity} items, its capacity: \
                 push must wait while the buffer is full"
            ),
        );
        let first = student(|| buf.pop());
        assert_eq!(
            first, 0,
            "the first pop gave {first}, not the oldest item (0)"
        );
        returns(
            &extra,
            "lost wake-up: an item was popped from the full buffer while a producer waited in push, yet it was \
             never woken: pop must notify the condvar",
        );
        let rest: Vec<u64> = (0..capacity).map(|_| student(|| buf.pop())).collect();
        let want: Vec<u64> = (1..capacity as u64).chain([99]).collect();
        assert_eq!(rest, want, "items came out of order: first in, first out");
    });
}

#[test]
fn woken_consumers_look_again() {
    isolated(|| {
        let buf: Buffer = Arc::new(student(|| BoundedBuffer::new(2)));
        let a = pop_on_thread(&buf, "consumer A".to_owned());
        let b = pop_on_thread(&buf, "consumer B".to_owned());
        stay_asleep(
            &[&a, &b],
            "pop on an empty buffer returned: it must wait until an item is pushed",
        );
        student(|| buf.push(1));
        let start = Instant::now();
        let (got, other) = loop {
            no_panic(&a);
            no_panic(&b);
            match (a.ended(), b.ended()) {
                (Ended::Returned(_), Ended::Returned(_)) => panic!(
                    "one item was pushed with two consumers waiting, and both came out of pop: a consumer woken must \
                     look at the buffer again (a `while` loop around wait), since another may have taken the item"
                ),
                (Ended::Returned(v), _) => break (v, &b),
                (_, Ended::Returned(v)) => break (v, &a),
                _ => {}
            }
            assert!(
                start.elapsed() < scaled(PATIENCE),
                "lost wake-up: an item was pushed with two consumers waiting in pop, and neither came out:\n{}",
                describe(&[&a, &b])
            );
            std::thread::sleep(Duration::from_millis(1));
        };
        assert_eq!(
            got,
            Some(1),
            "the consumer got {got:?}, not the item pushed (1)"
        );
        stay_asleep(
            &[other],
            "one item was pushed with two consumers waiting, and both came out of pop: a consumer woken must look \
             at the buffer again (a `while` loop around wait), since another may have taken the item",
        );
        student(|| buf.push(2));
        let got = returns(
            other,
            "lost wake-up: a second item was pushed, and the consumer still waiting was not woken",
        );
        assert_eq!(
            got,
            Some(2),
            "the second consumer got {got:?}, not the item pushed (2)"
        );
    });
}

#[test]
fn woken_producers_look_again() {
    isolated(|| {
        let buf: Buffer = Arc::new(student(|| BoundedBuffer::new(1)));
        student(|| buf.push(0));
        let a = push_on_thread(&buf, 1, "producer A".to_owned());
        let b = push_on_thread(&buf, 2, "producer B".to_owned());
        let full = "capacity exceeded: push returned with the buffer holding its capacity (1 item): push must wait \
                    while the buffer is full, and a producer woken must look again (a `while` loop around wait), \
                    since another producer may have filled the room first";
        stay_asleep(&[&a, &b], full);
        let first = student(|| buf.pop());
        assert_eq!(first, 0, "pop gave {first}, not the item in the buffer (0)");
        let start = Instant::now();
        let other = loop {
            no_panic(&a);
            no_panic(&b);
            match (a.running(), b.running()) {
                (false, false) => panic!(
                    "capacity exceeded: one item was popped from a full buffer of capacity 1 with two producers \
                     waiting, and both pushed: a producer woken must look again (a `while` loop around wait), since \
                     another producer may have filled the room first"
                ),
                (false, true) => break &b,
                (true, false) => break &a,
                _ => {}
            }
            assert!(
                start.elapsed() < scaled(PATIENCE),
                "lost wake-up: an item was popped from the full buffer with two producers waiting, and neither \
                 came out of push:\n{}",
                describe(&[&a, &b])
            );
            std::thread::sleep(Duration::from_millis(1));
        };
        stay_asleep(&[other], full);
        let second = student(|| buf.pop());
        returns(
            other,
            "lost wake-up: room was made again, and the producer still waiting was not woken",
        );
        let third = student(|| buf.pop());
        let mut got = [second, third];
        got.sort();
        assert_eq!(got, [1, 2], "the two producers' items came out as {got:?}");
    });
}

/// 100 rounds on a one-item buffer: two consumers asleep in `pop`, then one producer pushes
/// two items back to back. The first push wakes a consumer; the second finds the buffer still
/// full (the woken consumer has not run yet) and the producer sleeps beside the other
/// consumer on the one condvar. The first consumer's pop must now wake the producer, and a
/// `notify_one` wakes the consumer that waited longest instead: it finds nothing, sleeps
/// again, and everybody sleeps. The shipped `notify_one` mistake was caught in 100 of 100
/// runs, and in 30 of 30 beside a CPU hog on every core.
#[test]
fn a_wake_up_reaches_who_can_go_on() {
    Isolation::new()
        .deadline(Duration::from_secs(60))
        .run(|| {
            for round in 0..100 {
                let buf: Buffer = Arc::new(student(|| BoundedBuffer::new(1)));
                let a = pop_on_thread(&buf, format!("round {round} consumer A"));
                let b = pop_on_thread(&buf, format!("round {round} consumer B"));
                stay_asleep(&[&a, &b], "pop on an empty buffer returned: it must wait until an item is pushed");
                let producer = {
                    let buf = Arc::clone(&buf);
                    call(format!("round {round} producer"), move || {
                        buf.push(1);
                        buf.push(2);
                        None
                    })
                };
                let all = [&a, &b, &producer];
                let start = Instant::now();
                let mut still = Instant::now();
                while all.iter().any(|c| c.running()) {
                    all.iter().for_each(|c| no_panic(c));
                    let left: Vec<&Call> = all.iter().copied().filter(|c| c.running()).collect();
                    if !left.iter().all(|c| waiters::asleep_in_futex(c.tid)) {
                        still = Instant::now();
                    }
                    if still.elapsed() > scaled(Duration::from_secs(1)) || start.elapsed() > scaled(PATIENCE) {
                        panic!(
                            "lost wake-up: a producer pushing 2 items into a one-item buffer and 2 consumers each \
                             popping one; the threads left all sleep in a futex and nothing moves:\n{}\nEvery thread \
                             that can go on must be woken. When producers and consumers wait on one condvar, notify_one \
                             may wake a thread of the wrong kind (a consumer, when only the producer can go on), which \
                             looks, sleeps again, and the wake-up is lost: use notify_all, or one condvar per \
                             condition",
                            describe(&left)
                        );
                    }
                    std::thread::sleep(Duration::from_millis(1));
                }
                let mut got = [a.ended(), b.ended()];
                got.sort_by_key(|e| format!("{e:?}"));
                assert_eq!(
                    got,
                    [Ended::Returned(Some(1)), Ended::Returned(Some(2))],
                    "two items pushed, two consumers popped one each, and they got these"
                );
            }
        });
}

/// One case: `producers` threads push `per` items each, tagged (producer, sequence);
/// `consumers` threads pop them all between them; the occupancy is bounded from below at
/// every step by the pushes that have returned minus the pops that have begun.
fn load(
    producers: usize,
    consumers: usize,
    capacity: usize,
    per: usize,
) -> Result<(), TestCaseError> {
    let buf: Arc<BoundedBuffer<(usize, usize)>> =
        Arc::new(student(|| BoundedBuffer::new(capacity)));
    let total = producers * per;
    let pushed = Arc::new(AtomicUsize::new(0));
    let claimed = Arc::new(AtomicUsize::new(0));
    let over: Arc<Mutex<Option<usize>>> = Arc::default();
    let got: Arc<Mutex<Vec<Vec<Item>>>> = Arc::new(Mutex::new(vec![Vec::new(); consumers]));
    let progress = Arc::new(AtomicU64::new(0));
    let mut workers: Vec<Worker> = Vec::new();
    for p in 0..producers {
        let (buf, pushed, claimed, over, progress) = (
            Arc::clone(&buf),
            Arc::clone(&pushed),
            Arc::clone(&claimed),
            Arc::clone(&over),
            Arc::clone(&progress),
        );
        let work = move || {
            for seq in 0..per {
                buf.push((p, seq));
                let returned = pushed.fetch_add(1, Ordering::SeqCst) + 1;
                let begun = claimed.load(Ordering::SeqCst);
                if returned > begun + capacity {
                    over.lock().unwrap().get_or_insert(returned - begun);
                }
                progress.fetch_add(1, Ordering::SeqCst);
            }
        };
        workers.push((format!("producer {p}"), Box::new(move || student(work))));
    }
    for c in 0..consumers {
        let (buf, claimed, got, progress) = (
            Arc::clone(&buf),
            Arc::clone(&claimed),
            Arc::clone(&got),
            Arc::clone(&progress),
        );
        let work = move || {
            let mut mine = Vec::new();
            while claimed.fetch_add(1, Ordering::SeqCst) < total {
                mine.push(buf.pop());
                progress.fetch_add(1, Ordering::SeqCst);
            }
            got.lock().unwrap()[c] = mine;
        };
        workers.push((format!("consumer {c}"), Box::new(move || student(work))));
    }
    let done = AtomicBool::new(false);
    match waiters::supervise(workers, &progress, Duration::from_secs(1)) {
        Outcome::Done => done.store(true, Ordering::SeqCst),
        Outcome::Panicked { name, message } => {
            return Err(TestCaseError::fail(format!(
                "{name} panicked in the buffer: {message}\n(A thread woken in pop may find the buffer empty: another \
                 consumer took the item first, or the wake-up was spurious. Look at the buffer again in a `while` \
                 loop around wait, and take an item only when there is one.)"
            )));
        }
        Outcome::Stuck { threads } => {
            return Err(TestCaseError::fail(format!(
                "lost wake-up: {producers} producers and {consumers} consumers on a buffer of capacity {capacity}; \
                 every thread left sleeps in a futex and nothing moves, with items still to deliver:\n{threads}\n\
                 Every thread that can go on must be woken. When producers and consumers wait on one condvar, \
                 notify_one may wake a thread of the wrong kind, which looks, sleeps again, and the wake-up is lost: \
                 use notify_all, or one condvar per condition"
            )));
        }
    }
    if let Some(held) = *over.lock().unwrap() {
        return Err(TestCaseError::fail(format!(
            "capacity exceeded: the buffer of capacity {capacity} held at least {held} items at once (pushes \
             returned minus pops begun). push must wait while the buffer is full, and a producer woken must look \
             again (a `while` loop around wait)"
        )));
    }
    let got = got.lock().unwrap();
    for (c, items) in got.iter().enumerate() {
        for p in 0..producers {
            let seqs: Vec<usize> = items.iter().filter(|i| i.0 == p).map(|i| i.1).collect();
            prop_assert!(
                seqs.windows(2).all(|w| w[0] < w[1]),
                "per-producer order broken: consumer {c} got producer {p}'s items in the order {seqs:?}; a bounded \
                 buffer is first in, first out"
            );
        }
    }
    let mut all: Vec<(usize, usize)> = got.iter().flatten().copied().collect();
    all.sort_unstable();
    let want: Vec<(usize, usize)> = (0..producers)
        .flat_map(|p| (0..per).map(move |s| (p, s)))
        .collect();
    if all != want {
        let mut dup = all.clone();
        dup.dedup();
        let lost = want
            .iter()
            .filter(|w| all.binary_search(w).is_err())
            .count();
        return Err(TestCaseError::fail(format!(
            "{} items pushed, {} popped: {lost} never delivered, {} delivered more than once. Every item pushed \
             comes out exactly once",
            want.len(),
            all.len(),
            all.len() - dup.len()
        )));
    }
    Ok(())
}

/// proptest over producers (1-4), consumers (1-4), capacity (1-4) and items per producer
/// (1-300), 32 cases.
#[test]
fn every_item_once_in_order_within_capacity() {
    Isolation::new().deadline(Duration::from_secs(90)).run(|| {
        cases::check(
            32,
            (1usize..=4, 1usize..=4, 1usize..=4, 1usize..=300),
            |(p, c, cap, per)| load(p, c, cap, per),
        );
    });
}
