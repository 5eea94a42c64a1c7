//! io_models/async_io: many reads in flight at once (异步 I/O) with POSIX aio: `aio_read`,
//! `aio_suspend`, `aio_error`, `aio_return`.
//!
//! What the tests observe, never what the code under test claims:
//! - the bytes each request got, against the bytes the test itself wrote at that place of a
//!   file (or into that pipe), request by request: a result that holds another request's bytes
//!   is named as such;
//! - which requests can complete when: some requests read pipes that the test writes to one at
//!   a time, in an order that is neither the order of the requests nor its reverse, and the
//!   test writes the next pipe only once the kernel shows the last one drained (`FIONREAD` 0),
//!   so a read made there had to be in flight at the time;
//! - while it feeds the pipes, the calling thread's `/proc/self/task/<tid>/syscall`: a caller
//!   asleep in `read(2)` on a pipe the test has not written yet reads synchronously, and is
//!   named at once;
//! - whether `read_all` returned before the test had written every pipe (requests still in
//!   flight then: nothing it returned for them can be their data).
//!
//! The contract, clause by clause, and the test that checks each:
//! - one result per request, in the order of the requests, each holding exactly the bytes of
//!   the file at its offset (`many_reads_each_get_the_bytes_at_their_offset`: proptest, 64 reads
//!   of random offsets and sizes per case; `no_requests_no_results`);
//! - a read that reaches the end of the file returns what was there, fewer bytes or none, not
//!   its whole buffer (`reads_at_the_end_of_the_file_are_short`);
//! - every request is submitted before any is waited for, completions are taken in whatever
//!   order they come, and each is matched to its own request
//!   (`completions_in_any_order_are_matched_to_their_requests`: the pipe requests);
//! - `read_all` returns only once every request has completed
//!   (`completions_in_any_order_are_matched_to_their_requests`);
//! - a failing request fails alone, with the error `aio_error` gives for it (EBADF for an fd
//!   open only for writing, EINVAL for an offset `off_t` cannot hold), and the others still
//!   get their bytes (`a_failing_request_fails_alone`).

// The exercise under test: your stub (by default), the reference solution (`--features
// solutions`), or a shipped mistake that `cargo grade --mistakes` copies into target/.
#[cfg(not(any(feature = "solutions", feature = "mistake")))]
#[path = "../../exercises/io_models/async_io.rs"]
#[allow(dead_code)] // a stub does not use all of its API yet
mod async_io;
#[cfg(all(feature = "solutions", not(feature = "mistake")))]
#[path = "../../solutions/io_models/async_io.rs"]
mod async_io;
#[cfg(feature = "mistake")]
#[path = "../../target/oskata-mistake/io_models/async_io.rs"]
#[rustfmt::skip] // the copy exists only while the proof runs
mod async_io;
use async_io::*;

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::panic::{self, AssertUnwindSafe};
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, mpsc};
use std::thread;
use std::time::{Duration, Instant};

use nix::errno::Errno;
use nix::unistd::{getpid, gettid, pipe, write};
use oskata_harness::{isolated, procfs, scaled, scratch_dir, student};
use proptest::collection::vec;
use proptest::prelude::*;
use proptest::test_runner::{Config, TestError, TestRunner};

/// How long a correct solution may take for anything the tests wait on (before `scaled`): it
/// needs milliseconds; a wrong one is caught by evidence long before this.
const SETTLE: Duration = Duration::from_secs(5);

/// `len` bytes of a pseudo-random stream chosen by `seed` (splitmix64).
fn random_bytes(len: usize, seed: u64) -> Vec<u8> {
    let mut state = seed;
    let mut out = Vec::with_capacity(len + 8);
    while out.len() < len {
        state = state.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = state;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        out.extend_from_slice(&(z ^ (z >> 31)).to_le_bytes());
    }
    out.truncate(len);
    out
}

/// glibc's `struct aioinit` (aio_init(3)); the libc crate has neither it nor the function.
#[repr(C)]
struct AioInit {
    aio_threads: libc::c_int,
    aio_num: libc::c_int,
    aio_locks: libc::c_int,
    aio_usedba: libc::c_int,
    aio_debug: libc::c_int,
    aio_numusers: libc::c_int,
    aio_idle_time: libc::c_int,
    aio_reserved: libc::c_int,
}

unsafe extern "C" {
    fn aio_init(init: *const AioInit);
}

/// Tells glibc's aio helper threads to leave as soon as they have no request, instead of
/// idling for a second: the harness fails a test that returns with threads still running, and
/// the threads are glibc's, not the student's. (The defaults otherwise: 20 threads, 64
/// requests' worth of table.)
fn helper_threads_leave_when_idle() {
    let init = AioInit {
        aio_threads: 20,
        aio_num: 64,
        aio_locks: 0,
        aio_usedba: 0,
        aio_debug: 0,
        aio_numusers: 0,
        aio_idle_time: -1,
        aio_reserved: 0,
    };
    // SAFETY: aio_init only reads the struct, which matches glibc's layout and lives across the
    // call.
    unsafe { aio_init(&init) };
}

/// A file in the test's scratch directory holding `content`, opened for reading.
fn data_file(name: &str, content: &[u8]) -> (PathBuf, File) {
    let path = scratch_dir().join(name);
    let mut f = File::create(&path).expect("create the data file");
    f.write_all(content).expect("write the data file");
    drop(f);
    let f = File::open(&path).expect("open the data file");
    (path, f)
}

/// What a read of `len` bytes at `offset` of `content` must give.
fn slice_at(content: &[u8], offset: u64, len: usize) -> Vec<u8> {
    let start = (offset.min(content.len() as u64)) as usize;
    let end = start.saturating_add(len).min(content.len());
    content[start..end].to_vec()
}

/// A request in words, for messages.
fn show(i: usize, r: &ReadRequest<'_>, what: &str) -> String {
    format!(
        "request {i} ({what}, fd {}, offset {}, {} bytes)",
        r.fd.as_raw_fd(),
        r.offset,
        r.len
    )
}

/// Compares `got` with `expected`, request by request; the first difference explained, or
/// `None` when all match. `names` says what each request reads (a file, which pipe).
fn difference(
    requests: &[ReadRequest<'_>],
    names: &[String],
    expected: &[Result<Vec<u8>, Errno>],
    got: &[nix::Result<Vec<u8>>],
) -> Option<String> {
    if got.len() != expected.len() {
        return Some(format!(
            "read_all returned {} results for {} requests: it must return one result per request, in the order \
             of the requests",
            got.len(),
            expected.len()
        ));
    }
    for (i, (want, have)) in expected.iter().zip(got).enumerate() {
        let who = show(i, &requests[i], &names[i]);
        match (want, have) {
            (Ok(w), Ok(h)) if w == h => {}
            (Ok(w), Ok(h)) => {
                let other = expected
                    .iter()
                    .enumerate()
                    .find(|(j, e)| *j != i && !h.is_empty() && e.as_ref().is_ok_and(|e| e == h))
                    .map(|(j, _)| j);
                if let Some(j) = other {
                    return Some(format!(
                        "{who} got the {} bytes that belong to {}: the results were not matched to their \
                         requests. Completions come in any order; keep each aiocb beside the index of its request \
                         and put its result there",
                        h.len(),
                        show(j, &requests[j], &names[j])
                    ));
                }
                if h.len() > w.len() && h.starts_with(w) {
                    return Some(format!(
                        "{who}: only {} bytes were there to read, and read_all returned {} (the rest of its \
                         buffer). A read that reaches the end of the data is short: the count aio_return gave is \
                         how many bytes the read put in the buffer; cut the buffer to it",
                        w.len(),
                        h.len()
                    ));
                }
                let at = w
                    .iter()
                    .zip(h)
                    .position(|(a, b)| a != b)
                    .unwrap_or(w.len().min(h.len()));
                return Some(format!(
                    "{who} got {} bytes where the test wrote {} there; the first difference is at byte {at} (got \
                     {:?}, the data has {:?}). Each result must be exactly the bytes the read of that request \
                     brought in, once it has completed",
                    h.len(),
                    w.len(),
                    h.get(at),
                    w.get(at)
                ));
            }
            (Ok(w), Err(e)) => {
                return Some(format!(
                    "{who} failed with {e}, but it reads {} bytes that are there to read. An error of one request \
                     is that request's alone: aio_error tells each request's own outcome",
                    w.len()
                ));
            }
            (Err(w), Ok(h)) => {
                return Some(format!(
                    "{who} cannot succeed ({w}: {}), yet read_all reported {} bytes read: a request's error comes \
                     from aio_error (or aio_return's -1) and must be returned as that request's error",
                    w.desc(),
                    h.len()
                ));
            }
            (Err(w), Err(e)) if w == e => {}
            (Err(w), Err(e)) => {
                return Some(format!(
                    "{who} failed with {e}, but the kernel's error for this read is {w} ({}): return the error \
                     aio_error gives for the request",
                    w.desc()
                ));
            }
        }
    }
    None
}

/// Runs `read_all` on `requests` and fails, with the first difference explained, unless every
/// result is as `expected`.
fn expect_results(
    requests: &[ReadRequest<'_>],
    names: &[String],
    expected: &[Result<Vec<u8>, Errno>],
) {
    let got = student(|| read_all(requests));
    if let Some(why) = difference(requests, names, expected, &got) {
        panic!("{why}");
    }
}

#[test]
fn no_requests_no_results() {
    let got = student(|| read_all(&[]));
    assert!(
        got.is_empty(),
        "read_all(&[]) returned {} results: there is one result per request, so none for no request",
        got.len()
    );
}

#[test]
fn many_reads_each_get_the_bytes_at_their_offset() {
    isolated(|| {
        helper_threads_leave_when_idle();
        let mut runner = TestRunner::new(Config {
            cases: 16,
            failure_persistence: None,
            ..Config::default()
        });
        let strategy = (
            1usize..200_000,
            any::<u64>(),
            vec((0.0f64..1.05, 0usize..=8192), 64),
        );
        let case = AtomicUsize::new(0);
        let result = runner.run(&strategy, |(size, seed, picks)| {
            let case = case.fetch_add(1, Ordering::SeqCst);
            let content = random_bytes(size, seed);
            let (_path, file) = data_file(&format!("data-{case}"), &content);
            let requests: Vec<ReadRequest<'_>> = picks
                .iter()
                .map(|&(at, len)| ReadRequest {
                    fd: file.as_fd(),
                    offset: (at * size as f64) as u64,
                    len,
                })
                .collect();
            let names = vec![format!("a file of {size} bytes"); requests.len()];
            let expected: Vec<Result<Vec<u8>, Errno>> = requests
                .iter()
                .map(|r| Ok(slice_at(&content, r.offset, r.len)))
                .collect();
            let got = student(|| read_all(&requests));
            match difference(&requests, &names, &expected, &got) {
                None => Ok(()),
                Some(why) => Err(TestCaseError::fail(why)),
            }
        });
        match result {
            Ok(()) => {}
            Err(TestError::Fail(why, _)) => panic!("{why}"),
            Err(e) => panic!("{e}"),
        }
    });
}

#[test]
fn reads_at_the_end_of_the_file_are_short() {
    isolated(|| {
        helper_threads_leave_when_idle();
        let content = random_bytes(10_000, 7);
        let (_path, file) = data_file("short", &content);
        let at = |offset: u64, len: usize| ReadRequest {
            fd: file.as_fd(),
            offset,
            len,
        };
        // Whole reads, reads across the end, at the end, past it, and of nothing.
        let requests = [
            at(0, 4096),
            at(9_000, 4096),
            at(9_999, 2),
            at(10_000, 100),
            at(50_000, 10),
            at(4096, 0),
            at(2_000, 8_000),
            at(5_000, 8_000),
        ];
        let names = vec!["a file of 10000 bytes".to_string(); requests.len()];
        let expected: Vec<Result<Vec<u8>, Errno>> = requests
            .iter()
            .map(|r| Ok(slice_at(&content, r.offset, r.len)))
            .collect();
        expect_results(&requests, &names, &expected);
    });
}

#[test]
fn a_failing_request_fails_alone() {
    isolated(|| {
        helper_threads_leave_when_idle();
        let content = random_bytes(20_000, 11);
        let (path, file) = data_file("errors", &content);
        // Open for writing only: a read of it fails with EBADF.
        let write_only = OpenOptions::new()
            .write(true)
            .open(&path)
            .expect("open the file for writing");
        let at = |offset: u64, len: usize| ReadRequest {
            fd: file.as_fd(),
            offset,
            len,
        };
        let requests = [
            at(0, 1000),
            ReadRequest {
                fd: write_only.as_fd(),
                offset: 0,
                len: 100,
            },
            at(15_000, 3000),
            ReadRequest {
                fd: file.as_fd(),
                offset: u64::MAX,
                len: 10,
            },
            at(1000, 1000),
            at(19_500, 1000),
        ];
        let names: Vec<String> = (0..requests.len())
            .map(|i| match i {
                1 => "a file open only for writing".to_string(),
                3 => "an offset past what off_t can hold".to_string(),
                _ => "a file of 20000 bytes".to_string(),
            })
            .collect();
        let expected: Vec<Result<Vec<u8>, Errno>> = requests
            .iter()
            .enumerate()
            .map(|(i, r)| match i {
                1 => Err(Errno::EBADF),
                3 => Err(Errno::EINVAL),
                _ => Ok(slice_at(&content, r.offset, r.len)),
            })
            .collect();
        expect_results(&requests, &names, &expected);
    });
}

/// Bytes waiting in a pipe (`FIONREAD`).
fn queued(fd: &OwnedFd) -> usize {
    let mut n: libc::c_int = 0;
    // SAFETY: FIONREAD writes one int through the pointer, which points at a live local.
    let r = unsafe { libc::ioctl(fd.as_raw_fd(), libc::FIONREAD, &mut n) };
    assert!(
        r == 0,
        "ioctl(FIONREAD) on a test pipe failed: {}",
        Errno::last()
    );
    n as usize
}

/// What each thread of the test process is doing, for messages.
fn threads_now() -> String {
    let me = getpid();
    let mut out = String::new();
    for tid in procfs::threads(me).unwrap_or_default() {
        let call = procfs::thread_syscall(me, tid)
            .map(|c| format!("syscall {} ({}, ...)", c.nr, c.args[0] as i64))
            .unwrap_or_else(|| "running".into());
        out.push_str(&format!("\n  thread {tid}: {call}"));
    }
    out
}

#[test]
fn completions_in_any_order_are_matched_to_their_requests() {
    isolated(|| {
        helper_threads_leave_when_idle();
        const FILE_READS: usize = 24;
        const PIPES: usize = 6;
        // Where each pipe's request sits among the requests, and the order the test writes the
        // pipes in: neither the order of the requests nor its reverse.
        const PIPE_AT: [usize; PIPES] = [0, 5, 9, 14, 20, 29];
        const FEED: [usize; PIPES] = [3, 0, 5, 1, 4, 2];
        let content = random_bytes(100_000, 3);
        let (_path, file) = data_file("order", &content);
        let mut read_ends = Vec::new();
        let mut watch = Vec::new();
        let mut write_ends = Vec::new();
        for _ in 0..PIPES {
            let (r, w) = pipe().expect("pipe");
            // The test's own copy of the read end, to see the pipe drained (FIONREAD).
            watch.push(r.try_clone().expect("dup a read end"));
            read_ends.push(r);
            write_ends.push(w);
        }
        let pipe_fds: Vec<i32> = read_ends.iter().map(|r| r.as_raw_fd()).collect();
        // Pipe k's request asks for 200 + 40 k bytes; the test writes that many to the even
        // pipes and 50 fewer to the odd ones (a short read).
        let pipe_len = |k: usize| 200 + 40 * k;
        let pipe_data: Vec<Vec<u8>> = (0..PIPES)
            .map(|k| random_bytes(pipe_len(k) - 50 * (k % 2), 100 + k as u64))
            .collect();
        let name_of = |fd: i32| match pipe_fds.iter().position(|&p| p == fd) {
            Some(k) => format!("pipe {k} (request {})", PIPE_AT[k]),
            None => format!("fd {fd}"),
        };
        // How many pipes the test has started to write (counted before each write): a read of a
        // pipe not counted here cannot have completed yet.
        let fed = Arc::new(AtomicUsize::new(0));

        let (tid_tx, tid_rx) = mpsc::channel();
        let (done_tx, done_rx) = mpsc::channel::<Option<String>>();
        let caller = {
            let fed = Arc::clone(&fed);
            let pipe_data = pipe_data.clone();
            thread::spawn(move || {
                let mut names = Vec::new();
                let mut expected = Vec::new();
                let mut requests = Vec::new();
                for i in 0..FILE_READS + PIPES {
                    if let Some(k) = PIPE_AT.iter().position(|&p| p == i) {
                        names.push(format!(
                            "pipe {k}, the {} the test writes",
                            ordinal(FEED, k)
                        ));
                        expected.push(Ok(pipe_data[k].clone()));
                        requests.push(ReadRequest {
                            fd: read_ends[k].as_fd(),
                            offset: 0,
                            len: pipe_len(k),
                        });
                    } else {
                        let (offset, len) = ((i as u64 * 3_989) % 90_000, 100 + (i * 373) % 5_000);
                        names.push("a file of 100000 bytes".to_string());
                        expected.push(Ok(slice_at(&content, offset, len)));
                        requests.push(ReadRequest {
                            fd: file.as_fd(),
                            offset,
                            len,
                        });
                    }
                }
                let _ = tid_tx.send(gettid());
                // A panic in read_all (a todo!() too) is the test's failure, with its own message.
                let got =
                    match panic::catch_unwind(AssertUnwindSafe(|| student(|| read_all(&requests))))
                    {
                        Ok(got) => got,
                        Err(payload) => {
                            let text = payload
                                .downcast_ref::<&str>()
                                .map(|s| s.to_string())
                                .or_else(|| payload.downcast_ref::<String>().cloned())
                                .unwrap_or_else(|| "read_all panicked".to_string());
                            let _ = done_tx.send(Some(text));
                            return;
                        }
                    };
                let fed_then = fed.load(Ordering::SeqCst);
                let verdict = if fed_then < PIPES {
                    let unfed: Vec<String> = FEED[fed_then..]
                        .iter()
                        .map(|&k| format!("pipe {k} (request {})", PIPE_AT[k]))
                        .collect();
                    Some(format!(
                        "read_all returned while requests were still in flight: the test had not yet written {}, \
                         so those reads could not have completed. aio_error says EINPROGRESS for a request that is \
                         not done, and aio_suspend returns once at least one of its list has completed, not all of \
                         them: look at each again, and wait until none is in progress",
                        unfed.join(", ")
                    ))
                } else {
                    difference(&requests, &names, &expected, &got)
                };
                let _ = done_tx.send(verdict);
                // Keep the fds open until the test has seen the verdict.
                thread::park();
            })
        };
        let tid = tid_rx
            .recv_timeout(scaled(SETTLE))
            .expect("the calling thread started");
        let me = getpid();
        // A failure while requests may still be in flight: leave the pipes open and unwritten,
        // so that no read can complete into memory that read_all may already have freed.
        let fail_in_flight = |write_ends: Vec<OwnedFd>, msg: String| -> ! {
            std::mem::forget(write_ends);
            panic!("{msg}");
        };
        // The caller asleep in read(2) on a pipe, if it is.
        let reading = || {
            let call = procfs::thread_syscall(me, tid.as_raw())?;
            let reads = [
                libc::SYS_read,
                libc::SYS_pread64,
                libc::SYS_readv,
                libc::SYS_preadv,
            ];
            let fd = call.args[0] as i32;
            (reads.contains(&call.nr) && pipe_fds.contains(&fd)).then_some(fd)
        };
        let synchronous = |fd: i32, waited_for: &str| {
            format!(
                "the thread that called read_all (tid {tid}) is asleep in read(2) on {} itself, while {waited_for}: \
                 that is a synchronous read, one request at a time, and a request that cannot complete yet holds up \
                 all the others. Submit every request with aio_read first, then wait for their completions \
                 (aio_suspend) in whatever order they come. Threads now:{}",
                name_of(fd),
                threads_now()
            )
        };
        // Before the first write: wait until read_all has settled, asleep (in aio_suspend, for a
        // correct one) for 50 ms on end, or has returned.
        let start = Instant::now();
        let mut asleep_since: Option<Instant> = None;
        let mut early: Option<Option<String>> = None;
        loop {
            if let Ok(v) = done_rx.try_recv() {
                early = Some(v);
                break;
            }
            if let Some(fd) = reading() {
                fail_in_flight(
                    write_ends,
                    synchronous(fd, "the test has written none of the pipes yet"),
                );
            }
            let sleeping = procfs::task_stat(me, tid.as_raw()).is_ok_and(|s| s.state == 'S');
            match (sleeping, asleep_since) {
                (true, None) => asleep_since = Some(Instant::now()),
                (true, Some(t)) if t.elapsed() > Duration::from_millis(50) => break,
                (true, Some(_)) => {}
                (false, _) => asleep_since = None,
            }
            if start.elapsed() > scaled(SETTLE) {
                fail_in_flight(
                    write_ends,
                    format!(
                        "read_all neither returned nor slept for 50 ms on end within {:?} of being called, while none of \
                         its pipe requests could complete: it should sleep in aio_suspend while its requests are in \
                         flight, not spin on aio_error. Threads now:{}",
                        scaled(SETTLE),
                        threads_now()
                    ),
                );
            }
            thread::sleep(Duration::from_millis(1));
        }
        if let Some(verdict) = early {
            fail_in_flight(
                write_ends,
                verdict
                    .unwrap_or_else(|| "read_all returned before the test wrote any pipe".into()),
            );
        }
        for &k in FEED.iter() {
            fed.fetch_add(1, Ordering::SeqCst);
            write(&write_ends[k], &pipe_data[k]).expect("write a test pipe");
            let start = Instant::now();
            while queued(&watch[k]) != 0 {
                if let Ok(verdict) = done_rx.try_recv() {
                    fail_in_flight(
                        write_ends,
                        verdict.unwrap_or_else(|| "read_all returned too early".into()),
                    );
                }
                if let Some(fd) = reading()
                    && fd != pipe_fds[k]
                {
                    let waited = format!(
                        "the test waits for {} to be read, which it has written",
                        name_of(pipe_fds[k])
                    );
                    fail_in_flight(write_ends, synchronous(fd, &waited));
                }
                if start.elapsed() > scaled(SETTLE) {
                    fail_in_flight(
                        write_ends,
                        format!(
                            "the test wrote {} bytes to {} and nothing read them in {:?}: its read was not in \
                             flight. Every request must be submitted (aio_read) before read_all waits for any. \
                             Threads now:{}",
                            pipe_data[k].len(),
                            name_of(pipe_fds[k]),
                            scaled(SETTLE),
                            threads_now()
                        ),
                    );
                }
                thread::sleep(Duration::from_micros(500));
            }
        }
        let verdict = match done_rx.recv_timeout(scaled(SETTLE)) {
            Ok(v) => v,
            Err(_) => fail_in_flight(
                write_ends,
                format!(
                    "every pipe was written and read, yet read_all did not return within {:?}. Threads now:{}",
                    scaled(SETTLE),
                    threads_now()
                ),
            ),
        };
        caller.thread().unpark();
        caller.join().expect("the calling thread");
        if let Some(why) = verdict {
            panic!("{why}");
        }
    });
}

/// "1st", "2nd", ... place of pipe `k` in the feeding order.
fn ordinal(feed: [usize; 6], k: usize) -> String {
    let n = feed.iter().position(|&j| j == k).map_or(0, |p| p + 1);
    match n {
        1 => "1st".into(),
        2 => "2nd".into(),
        3 => "3rd".into(),
        n => format!("{n}th"),
    }
}
