//! threads/detach: while the thread runs (held by the test), the thread library reports it
//! detached (`pthread_getattr_np`) and `pthread_join` on it fails with EINVAL; once let go it
//! finishes and leaves `/proc/self/task` with nobody joining it.
//!
//! The contract, clause by clause, and the test that checks each:
//! - the `pthread_t` returned names the thread that runs `work` (its own `pthread_self()`),
//!   not the caller (`detached_while_it_runs`);
//! - the thread is detached before `work` starts: `pthread_getattr_np` says
//!   `PTHREAD_CREATE_DETACHED` and `pthread_join` returns EINVAL, both asked once `spawn_detached`
//!   has returned and while the work is held running, so the id still names that thread
//!   (`detached_while_it_runs`);
//! - the call does not wait for the work (`detached_while_it_runs`: the work is held until
//!   after the call returned; a call that waits is seen returning only after the hold gave up);
//! - the work completes with nobody joining, and the thread then leaves `/proc/self/task`
//!   (`the_work_completes_with_nobody_joining`, more threads than cores).

// The exercise under test: your stub (by default), the reference solution (`--features
// solutions`), or a shipped mistake that `cargo grade --mistakes` copies into target/.
#[cfg(not(any(feature = "solutions", feature = "mistake")))]
#[path = "../../exercises/threads/detach.rs"]
#[allow(dead_code)] // a stub does not use all of its API yet
mod detach;
#[cfg(all(feature = "solutions", not(feature = "mistake")))]
#[path = "../../solutions/threads/detach.rs"]
mod detach;
#[cfg(feature = "mistake")]
#[path = "../../target/oskata-mistake/threads/detach.rs"]
#[rustfmt::skip] // the copy exists only while the proof runs
mod detach;
use detach::*;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, Receiver, Sender};
use std::time::Duration;

use nix::unistd::{getpid, gettid};
use oskata_harness::{isolated, poll, procfs, scaled, student};
use rstest::rstest;

/// How long a held work waits to be let go before it gives up (before `scaled`): only a call
/// that waits for its own thread makes it give up.
const HOLD: Duration = Duration::from_secs(4);
/// How long the test waits to hear from a thread (before `scaled`).
const PATIENCE: Duration = Duration::from_secs(5);

/// What a held work tells the test when it starts.
struct Started {
    tid: i32,
    me: libc::pthread_t,
}

/// One thread the test started through `spawn_detached`, its work held.
struct Held {
    thread: libc::pthread_t,
    started: Started,
    /// Set by the work when its hold ended, let go or given up.
    over: Arc<AtomicBool>,
    release: Sender<()>,
    done: Receiver<()>,
}

/// Calls `spawn_detached` with a work that says it started, waits to be let go, and says it
/// is done; returns once the work has started.
fn start_held() -> Held {
    let (started_tx, started_rx) = mpsc::channel();
    let (release_tx, release_rx) = mpsc::channel::<()>();
    let (done_tx, done_rx) = mpsc::channel();
    let over = Arc::new(AtomicBool::new(false));
    let hold = scaled(HOLD);
    let work_over = over.clone();
    let work = move || {
        // SAFETY: pthread_self has no preconditions.
        let me = unsafe { libc::pthread_self() };
        let _ = started_tx.send(Started {
            tid: gettid().as_raw(),
            me,
        });
        // Let go by the test (a message, or its sender dropped when the test panics), or
        // given up on after HOLD.
        let _ = release_rx.recv_timeout(hold);
        work_over.store(true, Ordering::SeqCst);
        let _ = done_tx.send(());
    };
    let thread =
        student(|| spawn_detached(work)).unwrap_or_else(|e| panic!("spawn_detached failed: {e}"));
    let started = started_rx
        .recv_timeout(scaled(PATIENCE))
        .unwrap_or_else(|_| {
            panic!("the work given to spawn_detached never started: run it on the new thread")
        });
    if started.tid == gettid().as_raw() {
        panic!(
            "the work ran on the caller's own thread (tid {}), inside spawn_detached: start a new thread for it",
            started.tid
        );
    }
    if over.load(Ordering::SeqCst) {
        panic!(
            "spawn_detached returned only after the work had waited {hold:?} to be let go and given up: it waited \
             for the thread (joined it?) instead of returning at once. A detached thread runs on by itself; \
             return its id right after detaching it"
        );
    }
    Held {
        thread,
        started,
        over,
        release: release_tx,
        done: done_rx,
    }
}

// libc 0.2 binds the setter but not this getter (glibc has both).
unsafe extern "C" {
    fn pthread_attr_getdetachstate(
        attr: *const libc::pthread_attr_t,
        state: *mut libc::c_int,
    ) -> libc::c_int;
}

/// The detach state the thread library reports for `thread`.
fn detach_state(thread: libc::pthread_t) -> Result<i32, i32> {
    // SAFETY: an all-zero pthread_attr_t is only storage; pthread_getattr_np fills it.
    let mut attr: libc::pthread_attr_t = unsafe { std::mem::zeroed() };
    // SAFETY: `thread` names a live thread (its work is held) and `attr` is writable.
    let rc = unsafe { libc::pthread_getattr_np(thread, &mut attr) };
    if rc != 0 {
        return Err(rc);
    }
    let mut state = -1;
    // SAFETY: `attr` was initialised by pthread_getattr_np.
    let rc = unsafe { pthread_attr_getdetachstate(&attr, &mut state) };
    // SAFETY: `attr` was initialised and is destroyed once.
    unsafe { libc::pthread_attr_destroy(&mut attr) };
    if rc != 0 { Err(rc) } else { Ok(state) }
}

/// Asks the thread library about `held`'s thread while its work is held running.
fn check_detached(held: &Held) {
    let caller = gettid().as_raw();
    let Started { tid, me } = held.started;
    assert_ne!(
        tid, caller,
        "the work ran on the caller's own thread (tid {caller}): start a new thread for it"
    );
    assert_eq!(
        held.thread, me,
        "spawn_detached returned the pthread_t {:#x}, but the thread running the work (tid {tid}) calls itself \
         {me:#x} (pthread_self): return the id of the thread you created",
        held.thread
    );
    // The work waits for the test, so the thread is known to be running: its id still names it.
    assert!(
        !held.over.load(Ordering::SeqCst),
        "the work's hold ended before the test let it go"
    );
    match detach_state(me) {
        Ok(libc::PTHREAD_CREATE_DETACHED) => {}
        Ok(libc::PTHREAD_CREATE_JOINABLE) => panic!(
            "pthread_getattr_np reports thread {me:#x} (tid {tid}) still joinable (PTHREAD_CREATE_JOINABLE) after \
             spawn_detached returned, while its work runs: it was never detached, so the thread library keeps \
             it for a pthread_join nobody will call. Detach it (pthread_detach) before returning its id"
        ),
        Ok(other) => {
            panic!("pthread_getattr_np reports an unknown detach state {other} for {me:#x}")
        }
        Err(rc) => panic!("pthread_getattr_np({me:#x}) failed with error {rc}"),
    }
    // pthread_join on a detached thread that is still running returns EINVAL at once (glibc
    // checks the detach state first). Asked only now that the thread library has said the thread
    // is detached and the held work says it is running: on a joinable thread this call would
    // wait for the work, and on an ended detached one it would be undefined behaviour.
    // SAFETY: `me` names a running detached thread; a null result pointer is allowed.
    let rc = unsafe { libc::pthread_join(me, std::ptr::null_mut()) };
    assert_eq!(
        rc,
        libc::EINVAL,
        "pthread_join on the running thread {me:#x} returned {rc}, not EINVAL: a detached thread cannot be joined"
    );
}

/// Lets the work go, waits for it to say it is done and for its thread to leave the process.
fn let_go(held: Held) {
    let tid = held.started.tid;
    let _ = held.release.send(());
    held.done
        .recv_timeout(scaled(PATIENCE))
        .unwrap_or_else(|_| {
            panic!("the work on thread {tid} never finished after the test let it go")
        });
    let me = getpid();
    poll::until_seen(
        Duration::from_secs(5),
        &format!("thread {tid} to leave /proc/{me}/task once its work returned (nobody joins it)"),
        || procfs::threads(me).unwrap_or_default(),
        |tids| !tids.contains(&tid),
    );
}

/// The work is held running while the thread library is asked, so the answer does not depend
/// on timing. Measured on this kit's 2-core machine: `never_detaches` and
/// `detaches_when_done` were each caught in 100 of 100 runs.
#[test]
fn detached_while_it_runs() {
    isolated(|| {
        let held = start_held();
        check_detached(&held);
        let_go(held);
    });
}

/// More threads than cores, all held at once, each checked, then all let go together.
#[rstest]
#[case(4)]
#[case(32)]
fn the_work_completes_with_nobody_joining(#[case] threads: usize) {
    isolated(|| {
        let all: Vec<Held> = (0..threads).map(|_| start_held()).collect();
        for held in &all {
            check_detached(held);
        }
        let mut ids: Vec<libc::pthread_t> = all.iter().map(|h| h.thread).collect();
        ids.sort_unstable();
        ids.dedup();
        assert_eq!(
            ids.len(),
            threads,
            "{threads} threads held running at once should have {threads} distinct ids"
        );
        for held in &all {
            let _ = held.release.send(());
        }
        for held in all {
            let_go(held);
        }
    });
}
