//! threads/shared_and_private: the threads of one process share its memory (globals, heap),
//! its fd table, its signal dispositions and its working directory; each keeps its own
//! stack, thread-locals, errno and signal mask. Each row is observed: stacks in
//! `/proc/self/smaps` against each thread's stack pointer (`/proc/self/task/<tid>/syscall`),
//! masks in each thread's `/proc/self/task/<tid>/status`, the shared rows from the calling
//! thread's own `/proc/self/task/<tid>/{fd,cwd,status}`.
//!
//! The contract, clause by clause, and the test that checks each:
//! - `stack_spots`: each worker's local sits in the mapping its own stack pointer is in,
//!   a different mapping for each thread and not the caller's stack; tids are distinct live
//!   threads; the workers wait, blocked, while `while_running` runs, and are joined after
//!   (`each_thread_has_its_own_stack`);
//! - `add_to_local`: each thread's counter starts at 0 and moves only with its own calls,
//!   however many threads call at once (`thread_locals_stay_separate`);
//! - `errno_per_thread`: `fail_here` runs on the caller and `fail_there` on another thread;
//!   `before` and `after` are the caller's own error, `there` the other thread's
//!   (`errno_is_per_thread`, every ordered pair of four failing calls);
//! - `block_on_one_thread`: the worker's `SigBlk` has the signal while `while_blocked` runs,
//!   the caller's and a bystander thread's do not, before, during or after
//!   (`a_mask_set_on_one_thread_shows_only_there`);
//! - `change_on_a_thread`, `global`: `before` and `after` run on one thread that is not the
//!   caller, `before` seeing nothing changed yet; afterwards the caller and a fresh thread
//!   see the global's value, the caller sees its heap buffer filled, the returned fd open in
//!   its own fd table on the file, `SIG_IGN` in its own `status` and its own cwd moved
//!   (`changes_on_one_thread_are_seen_by_all`).

// The exercise under test: your stub (by default), the reference solution (`--features
// solutions`), or a shipped mistake that `cargo grade --mistakes` copies into target/.
#[cfg(not(any(feature = "solutions", feature = "mistake")))]
#[path = "../../exercises/threads/shared_and_private.rs"]
#[allow(dead_code)] // a stub does not use all of its API yet
mod shared_and_private;
#[cfg(all(feature = "solutions", not(feature = "mistake")))]
#[path = "../../solutions/threads/shared_and_private.rs"]
mod shared_and_private;
#[cfg(feature = "mistake")]
#[path = "../../target/oskata-mistake/threads/shared_and_private.rs"]
#[rustfmt::skip] // the copy exists only while the proof runs
mod shared_and_private;
use shared_and_private::*;

use std::collections::BTreeSet;
use std::ffi::CString;
use std::fs;
use std::os::fd::AsRawFd;
use std::os::unix::fs::FileExt;
use std::panic::{self, AssertUnwindSafe};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Barrier, Mutex, mpsc};
use std::time::Duration;

use nix::errno::Errno;
use nix::sys::signal::{SigSet, SigmaskHow, Signal, pthread_sigmask};
use nix::unistd::{Pid, gettid};
use oskata_harness::procfs::{self, Mapping};
use oskata_harness::{body_pid, isolated, poll, scratch_dir, stacks, student};
use rstest::rstest;

fn me() -> Pid {
    body_pid().expect("inside isolated()")
}

/// The mapping of `maps` that holds `addr`.
fn mapping_of(maps: &[Mapping], addr: u64) -> Option<&Mapping> {
    maps.iter().find(|m| m.contains(addr))
}

fn describe(m: Option<&Mapping>) -> String {
    m.map_or("no mapping at all".to_owned(), |m| {
        format!(
            "{:x}-{:x} {} {}",
            m.start,
            m.end,
            m.perms,
            if m.path.is_empty() {
                "(anonymous)"
            } else {
                &m.path
            }
        )
    })
}

#[rstest]
#[case(1)]
#[case(4)]
#[case(12)]
fn each_thread_has_its_own_stack(#[case] n: usize) {
    isolated(|| {
        let me = me();
        let caller_local = 0u64;
        let caller_addr = std::hint::black_box(&caller_local) as *const u64 as u64;
        let mut looked: Option<Result<(), String>> = None;
        let spots = student(|| {
            stack_spots(n, |spots| {
                looked = Some(look_at_stacks(me, spots, caller_addr));
            })
        });
        match looked {
            None => panic!("stack_spots never called while_running"),
            Some(Err(why)) => panic!("{why}"),
            Some(Ok(())) => {}
        }
        assert_eq!(
            spots.len(),
            n,
            "stack_spots({n}, ..) returned {} spots",
            spots.len()
        );
        poll::until_seen(
            Duration::from_secs(2),
            "the test process to be back to one thread: join every worker before returning",
            || procfs::threads(me).unwrap_or_default(),
            |tids| tids == &vec![me.as_raw()],
        );
    });
}

/// Checks the spots against the kernel while the workers wait; returns why not, never panics
/// (it runs inside the student's code, which still has threads to stop).
fn look_at_stacks(me: Pid, spots: &[StackSpot], caller_addr: u64) -> Result<(), String> {
    let tasks = procfs::threads(me).unwrap_or_default();
    let tids: BTreeSet<i32> = spots.iter().map(|s| s.tid.as_raw()).collect();
    if tids.len() != spots.len() {
        return Err(format!(
            "the {} spots name only {} distinct tids: each worker reports its own gettid()",
            spots.len(),
            tids.len()
        ));
    }
    let mut sps = Vec::new();
    for s in spots {
        let tid = s.tid.as_raw();
        if tid == me.as_raw() || !tasks.contains(&tid) {
            return Err(format!(
                "spot tid {tid} is not a worker thread of this process (/proc/{me}/task lists {tasks:?}): report \
                 gettid() asked on the worker"
            ));
        }
        // A worker that has just sent its report may not be asleep yet: wait until it is.
        let mut sp = None;
        for _ in 0..2500 {
            sp = stacks::blocked_stack_pointer(me, tid);
            if sp.is_some() {
                break;
            }
            std::thread::sleep(Duration::from_millis(2));
        }
        let Some(sp) = sp else {
            return Err(format!(
                "worker {tid} never slept in a system call while while_running ran (/proc/{me}/task/{tid}/syscall): \
                 the workers wait blocked (park, a channel) until let go, not spinning"
            ));
        };
        sps.push(sp);
    }
    let maps = procfs::smaps(me).map_err(|e| format!("cannot read /proc/{me}/smaps: {e}"))?;
    let caller_stack = mapping_of(&maps, caller_addr).map(|m| m.start);
    let mut seen_maps = BTreeSet::new();
    for (i, (s, sp)) in spots.iter().zip(&sps).enumerate() {
        let tid = s.tid.as_raw();
        let own = mapping_of(&maps, *sp);
        let holder = mapping_of(&maps, s.addr as u64);
        if holder.map(|m| m.start) != own.map(|m| m.start) {
            let what = if holder.map(|m| m.start) == caller_stack {
                "the calling thread's own stack: the variable belongs to the caller's frame, reached by reference, so \
                 every worker names the same one"
                    .to_owned()
            } else if holder.is_some_and(|m| m.path == "[heap]")
                || holder.is_some_and(|m| m.path.is_empty())
            {
                "memory that is not this thread's stack (the heap, a Box or a Vec, is shared by all threads)".to_owned()
            } else {
                "memory that is not this thread's stack (a static, say, which all threads share)"
                    .to_owned()
            };
            return Err(format!(
                "worker {i} (tid {tid}) reported its local at {:#x}, in the mapping {}, but its own stack pointer \
                 ({sp:#x}, from /proc/{me}/task/{tid}/syscall) is in {}: the address is in {what}. Report the address \
                 of a local variable of the worker's own function: each thread has a stack of its own",
                s.addr,
                describe(holder),
                describe(own)
            ));
        }
        let own = own.map(|m| m.start).unwrap_or_default();
        if Some(own) == caller_stack || !seen_maps.insert(own) {
            return Err(format!(
                "worker {i} (tid {tid}) runs on a stack mapping that another thread uses too ({}): every thread gets \
                 a stack mapping of its own",
                describe(mapping_of(&maps, own))
            ));
        }
    }
    Ok(())
}

/// Every thread, the caller included, adds its own step to its counter round after round;
/// all threads make each round's call together, between two barriers, so a counter shared by
/// threads shows the others' steps at once (a static is caught in the first round).
#[test]
fn thread_locals_stay_separate() {
    isolated(|| {
        const THREADS: usize = 12;
        const ROUNDS: u64 = 40;
        let barrier = Barrier::new(THREADS);
        let wrong: Mutex<Option<String>> = Mutex::new(None);
        let panicked: Mutex<Option<Box<dyn std::any::Any + Send>>> = Mutex::new(None);
        let first = student(|| add_to_local(0));
        assert_eq!(
            first, 0,
            "the calling thread's counter read {first} before any call: it starts at 0"
        );
        std::thread::scope(|s| {
            for t in 0..THREADS {
                let (barrier, wrong, panicked) = (&barrier, &wrong, &panicked);
                s.spawn(move || {
                    let step = t as u64 + 1;
                    let mut alive = true;
                    for round in 1..=ROUNDS {
                        barrier.wait();
                        if alive {
                            match panic::catch_unwind(|| student(|| add_to_local(step))) {
                                Ok(got) if got != step * round => {
                                    let mut w = wrong.lock().unwrap_or_else(|e| e.into_inner());
                                    w.get_or_insert(format!(
                                        "thread {t} added {step} to its counter {round} times and got {got}, not {}: \
                                         the counter is not the thread's own. {} threads call add_to_local at once, \
                                         and each one's counter moves only with its own calls: keep it in a \
                                         thread_local!, not in a static, which every thread shares",
                                        step * round,
                                        THREADS
                                    ));
                                }
                                Ok(_) => {}
                                Err(p) => {
                                    alive = false;
                                    panicked.lock().unwrap_or_else(|e| e.into_inner()).get_or_insert(p);
                                }
                            }
                        }
                        barrier.wait();
                    }
                });
            }
        });
        if let Some(p) = panicked.into_inner().unwrap_or_else(|e| e.into_inner()) {
            panic::resume_unwind(p);
        }
        if let Some(why) = wrong.into_inner().unwrap_or_else(|e| e.into_inner()) {
            panic!("{why}");
        }
        let mine = student(|| add_to_local(5));
        assert_eq!(
            mine, 5,
            "the calling thread's counter read {mine} after adding 5 to it once, while {THREADS} other threads had \
             been adding to theirs: its counter is its own (a thread_local!), starting at 0"
        );
    });
}

/// A failing call and the errno it leaves.
struct Failing {
    name: &'static str,
    errno: Errno,
    call: fn(),
}

fn failing_calls() -> Vec<Failing> {
    vec![
        Failing {
            name: "close(-1)",
            errno: Errno::EBADF,
            // SAFETY: closing an fd that cannot be open does nothing but fail.
            call: || unsafe {
                libc::close(-1);
            },
        },
        Failing {
            name: "access(\"/oskata-no-such-file\")",
            errno: Errno::ENOENT,
            call: || {
                let path = CString::new("/oskata-no-such-file").expect("no NUL");
                // SAFETY: a valid C string; access only looks the path up.
                unsafe { libc::access(path.as_ptr(), libc::F_OK) };
            },
        },
        Failing {
            name: "access(\"/proc/self/status/x\")",
            errno: Errno::ENOTDIR,
            call: || {
                let path = CString::new("/proc/self/status/x").expect("no NUL");
                // SAFETY: a valid C string; access only looks the path up.
                unsafe { libc::access(path.as_ptr(), libc::F_OK) };
            },
        },
        Failing {
            name: "lseek(0, 0, 12345)",
            errno: Errno::EINVAL,
            // SAFETY: an invalid whence makes lseek fail without moving anything.
            call: || unsafe {
                libc::lseek(0, 0, 12345);
            },
        },
    ]
}

#[test]
fn errno_is_per_thread() {
    isolated(|| {
        let calls = failing_calls();
        let caller = gettid().as_raw();
        for here in &calls {
            for there in calls.iter().filter(|c| c.errno != here.errno) {
                let ran_here = Mutex::new(None);
                let ran_there = Mutex::new(None);
                let seen = student(|| {
                    errno_per_thread(
                        || {
                            (here.call)();
                            *ran_here.lock().unwrap_or_else(|e| e.into_inner()) =
                                Some(gettid().as_raw());
                        },
                        || {
                            (there.call)();
                            let e = Errno::last();
                            *ran_there.lock().unwrap_or_else(|e| e.into_inner()) =
                                Some((gettid().as_raw(), e));
                        },
                    )
                });
                let ran_here = ran_here.into_inner().unwrap_or_else(|e| e.into_inner());
                let ran_there = ran_there.into_inner().unwrap_or_else(|e| e.into_inner());
                assert_eq!(
                    ran_here,
                    Some(caller),
                    "fail_here ran on {ran_here:?}, not on the calling thread (tid {caller}): call it there, once"
                );
                let Some((there_tid, there_errno)) = ran_there else {
                    panic!("errno_per_thread never called fail_there");
                };
                assert_ne!(
                    there_tid, caller,
                    "fail_there ran on the calling thread: run it on a new thread"
                );
                assert_eq!(
                    there_errno, there.errno,
                    "{} left errno {there_errno} on its thread, not {} (a test bug?)",
                    there.name, there.errno
                );
                let pair = format!("fail_here = {}, fail_there = {}", here.name, there.name);
                assert_eq!(
                    seen.before, here.errno,
                    "{pair}: before read {}, but {} sets {} on the calling thread: read errno (Errno::last()) right \
                     after fail_here, on the calling thread",
                    seen.before, here.name, here.errno
                );
                assert_eq!(
                    seen.there, there.errno,
                    "{pair}: there read {}, but {} set {} on the other thread: read that thread's errno on that \
                     thread, right after its call; errno is per thread, so the caller cannot read it for it",
                    seen.there, there.name, there.errno
                );
                if seen.after == there.errno {
                    panic!(
                        "{pair}: after read {}, the other thread's error, where the calling thread's own errno was \
                         still {}: errno is per thread (thread-local in glibc), and a call failing on another thread \
                         cannot change this thread's. Read it live on the calling thread (Errno::last()), not from a \
                         value kept in a global or read on the other thread",
                        seen.after, here.errno
                    );
                }
                assert_eq!(
                    seen.after, here.errno,
                    "{pair}: after read {}, but the calling thread's errno was {} and nothing on it failed since: \
                     read errno live on the calling thread once the other thread is joined",
                    seen.after, here.errno
                );
            }
        }
    });
}

/// The `SigBlk` bits of thread `tid` of `pid`, from its own `/proc/<pid>/task/<tid>/status`.
fn blocked_of(pid: Pid, tid: i32) -> Option<u64> {
    let text = fs::read_to_string(format!("/proc/{pid}/task/{tid}/status")).ok()?;
    let hex = text
        .lines()
        .find_map(|l| l.strip_prefix("SigBlk:"))?
        .trim()
        .to_owned();
    u64::from_str_radix(&hex, 16).ok()
}

#[rstest]
#[case(Signal::SIGUSR1)]
#[case(Signal::SIGUSR2)]
#[case(Signal::SIGTERM)]
fn a_mask_set_on_one_thread_shows_only_there(#[case] sig: Signal) {
    isolated(|| {
        let me = me();
        let caller = gettid().as_raw();
        let bit = 1u64 << (sig as i32 - 1);
        let stop = AtomicBool::new(false);
        let (outcome, bystander) = std::thread::scope(|s| {
            let (tx, rx) = mpsc::channel();
            let stop = &stop;
            let by = s.spawn(move || {
                let _ = tx.send(gettid().as_raw());
                while !stop.load(Ordering::SeqCst) {
                    std::thread::park();
                }
            });
            let bystander = rx.recv().expect("the bystander thread reports");
            let mut seen: Option<Result<(), String>> = None;
            let outcome = panic::catch_unwind(AssertUnwindSafe(|| {
                student(|| {
                    block_on_one_thread(sig, |tid| {
                        seen = Some(look_at_masks(me, tid.as_raw(), caller, bystander, sig, bit));
                    })
                });
                seen
            }));
            stop.store(true, Ordering::SeqCst);
            by.thread().unpark();
            let _ = by.join();
            (outcome, bystander)
        });
        match outcome {
            Err(p) => panic::resume_unwind(p),
            Ok(None) => panic!("block_on_one_thread never called while_blocked"),
            Ok(Some(Err(why))) => panic!("{why}"),
            Ok(Some(Ok(()))) => {}
        }
        let mut now = SigSet::empty();
        pthread_sigmask(SigmaskHow::SIG_BLOCK, None, Some(&mut now)).expect("read the own mask");
        assert!(
            !now.contains(sig),
            "after block_on_one_thread returned, {sig:?} is blocked on the calling thread: only the worker's mask \
             changes (pthread_sigmask on the worker)"
        );
        let _ = bystander;
        poll::until_seen(
            Duration::from_secs(2),
            "the test process to be back to one thread: join the worker before returning",
            || procfs::threads(me).unwrap_or_default(),
            |tids| tids == &vec![me.as_raw()],
        );
    });
}

/// Reads the three threads' `SigBlk` while the worker holds `sig` blocked; never panics.
fn look_at_masks(
    me: Pid,
    tid: i32,
    caller: i32,
    bystander: i32,
    sig: Signal,
    bit: u64,
) -> Result<(), String> {
    let tasks = procfs::threads(me).unwrap_or_default();
    if tid == caller || tid == bystander || !tasks.contains(&tid) {
        return Err(format!(
            "while_blocked was given tid {tid}, which is not a new worker thread (/proc/{me}/task lists {tasks:?}, \
             the caller is {caller}): report gettid() asked on the worker"
        ));
    }
    let worker = blocked_of(me, tid);
    let mine = blocked_of(me, caller);
    let by = blocked_of(me, bystander);
    if mine.is_some_and(|m| m & bit != 0) {
        return Err(format!(
            "{sig:?} is blocked on the calling thread (SigBlk {:016x} in /proc/{me}/task/{caller}/status): the mask \
             was changed on the caller, perhaps meaning to block it for the whole process (sigprocmask), but there is \
             no process-wide mask: each thread has its own, a new thread starts with a copy of its creator's, and \
             pthread_sigmask changes the calling thread's alone. Block it on the worker itself, after it starts",
            mine.unwrap_or_default()
        ));
    }
    if worker.is_none_or(|w| w & bit == 0) {
        return Err(format!(
            "{sig:?} is not blocked on the worker (SigBlk {worker:x?} in /proc/{me}/task/{tid}/status) while \
             while_blocked runs: block it with pthread_sigmask on the worker, before it reports its tid, and keep it \
             blocked until let go"
        ));
    }
    if by.is_some_and(|b| b & bit != 0) {
        return Err(format!(
            "{sig:?} is blocked on a bystander thread {bystander} that was already running: change the worker's mask \
             only, never another thread's"
        ));
    }
    Ok(())
}

/// What `before` or `after` saw on the worker.
#[derive(Debug)]
struct Look {
    tid: i32,
    global: u64,
    cwd: Option<PathBuf>,
    ignored: bool,
    /// The first and last bytes of the heap buffer, read from `/proc/self/mem` (the
    /// student's thread holds the buffer's `&mut` meanwhile, so the test does not read it
    /// through Rust).
    heap_ends: Option<(u8, u8)>,
    file_open: bool,
}

impl Look {
    /// What of the changes has been made, by name.
    fn changed(&self, value: u64, dir: &std::path::Path, fill: u8) -> Vec<(&'static str, bool)> {
        vec![
            ("the global", self.global == value),
            ("the heap buffer", self.heap_ends == Some((fill, fill))),
            ("the fd table", self.file_open),
            ("the disposition", self.ignored),
            ("the working directory", self.cwd.as_deref() == Some(dir)),
        ]
    }
}

/// Looks, from the thread it runs on, at everything `change_on_a_thread` changes.
fn look(me: Pid, sig: Signal, heap: (usize, usize), file: &std::path::Path) -> Look {
    let tid = gettid().as_raw();
    let byte = |at: usize| {
        let mut b = [0u8; 1];
        fs::File::open(format!("/proc/{me}/mem"))
            .and_then(|f| f.read_exact_at(&mut b, at as u64))
            .ok()
            .map(|()| b[0])
    };
    Look {
        tid,
        global: global(),
        cwd: std::env::current_dir().ok(),
        ignored: ignored_in(me, tid, sig),
        heap_ends: byte(heap.0).zip(byte(heap.0 + heap.1 - 1)),
        file_open: procfs::fds(me)
            .unwrap_or_default()
            .iter()
            .any(|f| std::path::Path::new(&f.target) == file),
    }
}

fn ignored_in(pid: Pid, tid: i32, sig: Signal) -> bool {
    fs::read_to_string(format!("/proc/{pid}/task/{tid}/status"))
        .ok()
        .and_then(|t| {
            t.lines()
                .find_map(|l| l.strip_prefix("SigIgn:"))
                .map(|h| h.trim().to_owned())
        })
        .and_then(|h| u64::from_str_radix(&h, 16).ok())
        .is_some_and(|m| m & (1u64 << (sig as i32 - 1)) != 0)
}

#[test]
fn changes_on_one_thread_are_seen_by_all() {
    isolated(|| {
        let me = me();
        let caller = gettid().as_raw();
        let dir = scratch_dir().join("elsewhere");
        fs::create_dir(&dir).expect("make a directory");
        let dir = dir.canonicalize().expect("canonical path");
        let file = dir.join("data");
        fs::write(&file, b"shared").expect("write a file");
        let value = 0x5eed_cafe_u64;
        let fill = 0xa5;
        let sig = Signal::SIGUSR2;
        let mut heap = vec![0u8; 64 * 1024].into_boxed_slice();
        let heap_at = (heap.as_ptr() as usize, heap.len());
        let before = Mutex::new(None);
        let after = Mutex::new(None);
        let fd = student(|| {
            change_on_a_thread(
                Changes {
                    value,
                    heap: &mut heap,
                    fill,
                    open: &file,
                    ignore: sig,
                    dir: &dir,
                },
                || {
                    *before.lock().unwrap_or_else(|e| e.into_inner()) =
                        Some(look(me, sig, heap_at, &file))
                },
                || {
                    *after.lock().unwrap_or_else(|e| e.into_inner()) =
                        Some(look(me, sig, heap_at, &file))
                },
            )
        })
        .unwrap_or_else(|e| panic!("change_on_a_thread failed: {e}"));
        let before = before
            .into_inner()
            .unwrap_or_else(|e| e.into_inner())
            .unwrap_or_else(|| panic!("change_on_a_thread never called before()"));
        let after = after
            .into_inner()
            .unwrap_or_else(|e| e.into_inner())
            .unwrap_or_else(|| panic!("change_on_a_thread never called after()"));
        assert!(
            before.tid != caller && after.tid == before.tid,
            "before() ran on tid {}, after() on tid {}, the caller is {caller}: both run on the one new thread",
            before.tid,
            after.tid
        );
        let early: Vec<&str> = before
            .changed(value, &dir, fill)
            .into_iter()
            .filter_map(|(what, changed)| changed.then_some(what))
            .collect();
        assert!(
            early.is_empty(),
            "when before() ran on the new thread, {} had already changed: the calling thread made those changes \
             before starting the thread. Make every change on the new thread, after before()",
            early.join(", ")
        );
        let late: Vec<&str> = after
            .changed(value, &dir, fill)
            .into_iter()
            .filter_map(|(what, changed)| (!changed).then_some(what))
            .collect();
        assert!(
            late.is_empty(),
            "when after() ran on the new thread, {} had not changed yet: the change was made elsewhere (on the \
             calling thread, after the new thread ended?) or not at all. Make every change on the new thread, \
             before after()",
            late.join(", ")
        );
        let g = global();
        assert_eq!(
            g, value,
            "the calling thread reads {g:#x} from global() after the other thread stored {value:#x}: the global is not \
             one variable for the process (a thread_local! gives each thread a copy of its own); globals are shared \
             by every thread: use a static"
        );
        let fresh = std::thread::scope(|s| s.spawn(global).join())
            .unwrap_or_else(|p| panic::resume_unwind(p));
        assert_eq!(
            fresh, value,
            "a thread started afterwards reads {fresh:#x} from global(): the global is shared"
        );
        let off = heap.iter().filter(|&&b| b != 0xa5).count();
        assert_eq!(
            off, 0,
            "{off} bytes of the caller's heap buffer were not set by the other thread: the heap is shared, so write \
             into the buffer the caller passed, not into a copy of it"
        );
        let link = fs::read_link(format!("/proc/{me}/task/{caller}/fd/{}", fd.as_raw_fd()));
        assert_eq!(
            link.as_ref().ok(),
            Some(&file),
            "fd {} is not open on {} in the calling thread's fd table (/proc/{me}/task/{caller}/fd): the fd table is \
             shared, so the fd the other thread opened is the caller's too",
            fd.as_raw_fd(),
            file.display()
        );
        assert!(
            ignored_in(me, caller, sig),
            "{sig:?} is not ignored in the calling thread's /proc/{me}/task/{caller}/status (SigIgn): dispositions \
             are shared by all threads, so set SIG_IGN with sigaction on the other thread"
        );
        let cwd = fs::read_link(format!("/proc/{me}/task/{caller}/cwd"));
        assert_eq!(
            cwd.as_ref().ok(),
            Some(&dir),
            "the calling thread's working directory (/proc/{me}/task/{caller}/cwd) is {cwd:?}, not {}: the working \
             directory is shared by the threads of a process, so chdir on the other thread moves the caller too",
            dir.display()
        );
        drop(fd);
    });
}
