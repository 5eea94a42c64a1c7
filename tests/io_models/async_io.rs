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
//!
//! `read_all_uring`, the same contract with io_uring, runs the same tests (`uring_*`), and more:
//! - where the kernel refuses io_uring (the test's own `io_uring_setup(2)` fails: `ENOSYS`, or
//!   `EPERM` from io_uring_disabled = 2 or a seccomp filter), every `uring_*` test prints a note
//!   and checks only that `read_all_uring` fails with that same error as its outer error (so a
//!   stub still fails); otherwise an outer error is a failure;
//! - with the pipes unwritten, the ring's `/proc/self/fdinfo` shows every request submitted
//!   (`SqHead`: one request at a time is caught at once) and the file reads completed (`CqTail`)
//!   while the pipe reads wait: completion order is not submission order, and the pipe data then
//!   lands in the pipe requests' results, matched by `user_data`
//!   (`uring_completions_in_any_order_are_matched_by_user_data`);
//! - no thread of the process sleeps in `read(2)` on a test pipe (a synchronous fallback, in the
//!   caller or a thread of its own, is named from `/proc/self/task/*/syscall`);
//! - a CQE's negative `res` is that request's error (`uring_a_failing_request_fails_alone`:
//!   EBADF on a write-only fd, EINVAL for an offset `off_t` cannot hold);
//! - no `anon_inode:[io_uring]` fd is left open and the fd table is as before
//!   (`uring_the_ring_is_closed_after`, and after every proptest case);
//! - `uring_no_requests_no_results`.

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
    api: Api,
    requests: &[ReadRequest<'_>],
    names: &[String],
    expected: &[Result<Vec<u8>, Errno>],
    got: &[nix::Result<Vec<u8>>],
) -> Option<String> {
    if got.len() != expected.len() {
        return Some(format!(
            "{} returned {} results for {} requests: it must return one result per request, in the order \
             of the requests",
            api.name(),
            got.len(),
            expected.len()
        ));
    }
    // The counts of the results, a permutation of the right counts but not in their places:
    // each request got another's count (its buffer cut to another read's length).
    let lens = |v: Vec<Option<usize>>| {
        let mut v = v;
        v.sort_unstable();
        v
    };
    let want_lens: Vec<Option<usize>> = expected
        .iter()
        .map(|e| e.as_ref().ok().map(Vec::len))
        .collect();
    let got_lens: Vec<Option<usize>> = got.iter().map(|g| g.as_ref().ok().map(Vec::len)).collect();
    if want_lens != got_lens && lens(want_lens.clone()) == lens(got_lens.clone()) {
        let i = (0..want_lens.len())
            .find(|&i| want_lens[i] != got_lens[i])
            .expect("the counts differ somewhere");
        let j = (0..want_lens.len())
            .find(|&j| j != i && want_lens[j] == got_lens[i])
            .expect("a permutation");
        let count = |c: Option<usize>| c.map_or("an error".to_string(), |n| format!("{n} bytes"));
        return Some(format!(
            "{} got {} where its read brought {}, which is what {} brought: the results were not matched to their \
             requests (each one's count or error went to another). Completions come in any order; {}",
            show(i, &requests[i], &names[i]),
            count(got_lens[i]),
            count(want_lens[i]),
            show(j, &requests[j], &names[j]),
            api.match_hint()
        ));
    }
    // A result that is a strict prefix of its request's data, exactly as long as another
    // request's data: its buffer was cut to that other read's count.
    for (i, (want, have)) in expected.iter().zip(got).enumerate() {
        let (Ok(w), Ok(h)) = (want, have) else {
            continue;
        };
        if h.len() >= w.len() || !w.starts_with(h) {
            continue;
        }
        if let Some(j) = (0..expected.len()).find(|&j| j != i && want_lens[j] == Some(h.len())) {
            return Some(format!(
                "{} got only the first {} of its {} bytes, and {} is the count of {}: the results were not matched \
                 to their requests (a count went to the wrong request). Completions come in any order; {}",
                show(i, &requests[i], &names[i]),
                h.len(),
                w.len(),
                h.len(),
                show(j, &requests[j], &names[j]),
                api.match_hint()
            ));
        }
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
                         requests. Completions come in any order; {}",
                        h.len(),
                        show(j, &requests[j], &names[j]),
                        api.match_hint()
                    ));
                }
                if h.len() > w.len() && h.starts_with(w) {
                    return Some(format!(
                        "{who}: only {} bytes were there to read, and {} returned {} (the rest of its \
                         buffer). A read that reaches the end of the data is short: {} is how many bytes the read \
                         put in the buffer; cut the buffer to it",
                        w.len(),
                        api.name(),
                        h.len(),
                        api.count_name()
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
                     is that request's alone: {} tells each request's own outcome",
                    w.len(),
                    api.outcome_name()
                ));
            }
            (Err(w), Ok(h)) => {
                return Some(format!(
                    "{who} cannot succeed ({w}: {}), yet {} reported {} bytes read: {}",
                    w.desc(),
                    api.name(),
                    h.len(),
                    api.error_hint()
                ));
            }
            (Err(w), Err(e)) if w == e => {}
            (Err(w), Err(e)) => {
                return Some(format!(
                    "{who} failed with {e}, but the kernel's error for this read is {w} ({}): return the error \
                     {} gives for the request",
                    w.desc(),
                    api.outcome_name()
                ));
            }
        }
    }
    None
}

/// Runs `read_all` on `requests` and fails, with the first difference explained, unless every
/// result is as `expected`.
fn expect_results(
    api: Api,
    requests: &[ReadRequest<'_>],
    names: &[String],
    expected: &[Result<Vec<u8>, Errno>],
) {
    let got = api.call(requests).unwrap_or_else(|why| panic!("{why}"));
    if let Some(why) = difference(api, requests, names, expected, &got) {
        panic!("{why}");
    }
}

#[test]
fn no_requests_no_results() {
    let got = student(|| read_all(&[]));
    // (read_all_uring: see uring_no_requests_no_results.)
    assert!(
        got.is_empty(),
        "read_all(&[]) returned {} results: there is one result per request, so none for no request",
        got.len()
    );
}

#[test]
fn many_reads_each_get_the_bytes_at_their_offset() {
    many_reads(Api::Aio);
}

fn many_reads(api: Api) {
    isolated(|| {
        if !api.ready() {
            return;
        }
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
            let before = ring_fds();
            let got = api.call(&requests).map_err(TestCaseError::fail)?;
            if let Some(why) = ring_left_open(api, &before) {
                return Err(TestCaseError::fail(why));
            }
            match difference(api, &requests, &names, &expected, &got) {
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
    short_reads(Api::Aio);
}

fn short_reads(api: Api) {
    isolated(|| {
        if !api.ready() {
            return;
        }
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
        expect_results(api, &requests, &names, &expected);
    });
}

#[test]
fn a_failing_request_fails_alone() {
    failing_request(Api::Aio);
}

fn failing_request(api: Api) {
    isolated(|| {
        if !api.ready() {
            return;
        }
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
        expect_results(api, &requests, &names, &expected);
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
    any_order(Api::Aio);
}

fn any_order(api: Api) {
    isolated(|| {
        if !api.ready() {
            return;
        }
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
                let got = match panic::catch_unwind(AssertUnwindSafe(|| api.call(&requests))) {
                    Ok(Ok(got)) => got,
                    Ok(Err(why)) => {
                        let _ = done_tx.send(Some(why));
                        return;
                    }
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
                        "{} returned while requests were still in flight: the test had not yet written {}, \
                         so those reads could not have completed. {}",
                        api.name(),
                        unfed.join(", "),
                        api.wait_hint()
                    ))
                } else {
                    difference(api, &requests, &names, &expected, &got)
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
        // A thread asleep in read(2) on a pipe, if one is: the caller, for POSIX aio (whose
        // glibc helper threads do read that way); any thread of the process, for io_uring.
        let reading = || -> Option<(i32, i32)> {
            let reads = [
                libc::SYS_read,
                libc::SYS_pread64,
                libc::SYS_readv,
                libc::SYS_preadv,
            ];
            let tids = match api {
                Api::Aio => vec![tid.as_raw()],
                Api::Uring => procfs::threads(me).unwrap_or_default(),
            };
            tids.into_iter().find_map(|t| {
                let call = procfs::thread_syscall(me, t)?;
                let fd = call.args[0] as i32;
                (reads.contains(&call.nr) && pipe_fds.contains(&fd)).then_some((t, fd))
            })
        };
        let synchronous = |(t, fd): (i32, i32), waited_for: &str| {
            let who = if t == tid.as_raw() {
                format!("the thread that called {} (tid {tid})", api.name())
            } else {
                format!("thread {t} of the process, not the caller (tid {tid}),")
            };
            format!(
                "{who} is asleep in read(2) on {} itself, while {waited_for}: that is a synchronous read, one \
                 request at a time, and a request that cannot complete yet holds up all the others. {} \
                 Threads now:{}",
                name_of(fd),
                api.submit_hint(),
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
            if let Some(sleeper) = reading() {
                fail_in_flight(
                    write_ends,
                    synchronous(sleeper, "the test has written none of the pipes yet"),
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
                        "{} neither returned nor slept for 50 ms on end within {:?} of being called, while none of \
                         its pipe requests could complete: {}. Threads now:{}",
                        api.name(),
                        scaled(SETTLE),
                        api.sleep_hint(),
                        threads_now()
                    ),
                );
            }
            thread::sleep(Duration::from_millis(1));
        }
        if let Some(verdict) = early {
            fail_in_flight(
                write_ends,
                verdict.unwrap_or_else(|| {
                    format!("{} returned before the test wrote any pipe", api.name())
                }),
            );
        }
        if api == Api::Uring {
            // The ring, seen from outside: every request submitted, and the file reads completed
            // (posted) while the pipe reads are pending.
            if let Some(why) = ring_progress(FILE_READS, PIPES) {
                fail_in_flight(write_ends, why);
            }
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
                if let Some((t, fd)) = reading()
                    && fd != pipe_fds[k]
                {
                    let waited = format!(
                        "the test waits for {} to be read, which it has written",
                        name_of(pipe_fds[k])
                    );
                    fail_in_flight(write_ends, synchronous((t, fd), &waited));
                }
                if start.elapsed() > scaled(SETTLE) {
                    fail_in_flight(
                        write_ends,
                        format!(
                            "the test wrote {} bytes to {} and nothing read them in {:?}: its read was not in \
                             flight. {} Threads now:{}",
                            pipe_data[k].len(),
                            name_of(pipe_fds[k]),
                            scaled(SETTLE),
                            api.submit_hint(),
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
                    "every pipe was written and read, yet {} did not return within {:?}. Threads now:{}",
                    api.name(),
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

/// Which of the exercise's two functions a test runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Api {
    /// `read_all`: POSIX aio.
    Aio,
    /// `read_all_uring`: io_uring.
    Uring,
}

impl Api {
    fn name(self) -> &'static str {
        match self {
            Api::Aio => "read_all",
            Api::Uring => "read_all_uring",
        }
    }

    /// Runs the function under test; for io_uring, an outer error (the kernel here makes
    /// rings: the test checked) is the test's failure, explained.
    fn call(self, requests: &[ReadRequest<'_>]) -> Result<Vec<nix::Result<Vec<u8>>>, String> {
        match self {
            Api::Aio => Ok(student(|| read_all(requests))),
            Api::Uring => student(|| read_all_uring(requests)).map_err(|e| {
                format!(
                    "read_all_uring failed as a whole with {e}, though this kernel makes io_uring rings (the test \
                     made one with io_uring_setup just before): the outer error is for a ring that cannot be set \
                     up; a request that fails is that request's error, from its CQE"
                )
            }),
        }
    }

    /// Gets the process ready for this function; false when the test is to stop here (io_uring
    /// refused by the kernel, and the function said so).
    fn ready(self) -> bool {
        match self {
            Api::Aio => {
                helper_threads_leave_when_idle();
                true
            }
            Api::Uring => match uring_refusal() {
                None => true,
                Some(e) => {
                    skip_when_refused(e);
                    false
                }
            },
        }
    }

    fn match_hint(self) -> &'static str {
        match self {
            Api::Aio => "keep each aiocb beside the index of its request and put its result there",
            Api::Uring => {
                "a CQE says which request it answers only by its user_data: put the request's index in each \
                 SQE's user_data and each CQE's result at the index it carries, not at its place among the \
                 completions"
            }
        }
    }

    fn count_name(self) -> &'static str {
        match self {
            Api::Aio => "the count aio_return gave",
            Api::Uring => "the CQE's res, when it is not negative,",
        }
    }

    fn outcome_name(self) -> &'static str {
        match self {
            Api::Aio => "aio_error",
            Api::Uring => "its CQE's res",
        }
    }

    fn error_hint(self) -> &'static str {
        match self {
            Api::Aio => {
                "a request's error comes from aio_error (or aio_return's -1) and must be returned as that \
                 request's error"
            }
            Api::Uring => {
                "a CQE's res is a byte count only when it is 0 or more; a negative res is minus an errno (-EBADF), \
                 that request's error, and never a length"
            }
        }
    }

    fn wait_hint(self) -> &'static str {
        match self {
            Api::Aio => {
                "aio_error says EINPROGRESS for a request that is not done, and aio_suspend returns once at least \
                 one of its list has completed, not all of them: look at each again, and wait until none is in \
                 progress"
            }
            Api::Uring => {
                "submit_and_wait(1) returns once at least one CQE has been posted, not all: count the CQEs reaped \
                 and wait again until every submitted request has its CQE"
            }
        }
    }

    fn submit_hint(self) -> &'static str {
        match self {
            Api::Aio => {
                "Submit every request with aio_read first, then wait for their completions (aio_suspend) in \
                 whatever order they come."
            }
            Api::Uring => {
                "Queue one IORING_OP_READ SQE per request and submit them all with one io_uring_enter \
                 (submit_and_wait) before waiting for any; the kernel itself keeps them pending, with no read(2) \
                 of yours."
            }
        }
    }

    fn sleep_hint(self) -> &'static str {
        match self {
            Api::Aio => {
                "it should sleep in aio_suspend while its requests are in flight, not spin on aio_error"
            }
            Api::Uring => {
                "it should sleep in io_uring_enter (submit_and_wait) while its requests are in flight, not spin \
                 on the completion queue"
            }
        }
    }
}

/// How `io_uring_setup(2)` answers here: `None` when it makes a ring (closed at once), or its
/// error (`ENOSYS`: no io_uring or a seccomp filter; `EPERM`: io_uring_disabled, or seccomp).
fn uring_refusal() -> Option<Errno> {
    // struct io_uring_params is 120 bytes; all zero asks for defaults.
    let mut params = [0u8; 120];
    // SAFETY: io_uring_setup reads and writes the 120-byte struct, which lives across the call.
    let fd = unsafe { libc::syscall(libc::SYS_io_uring_setup, 1u32, params.as_mut_ptr()) };
    if fd < 0 {
        return Some(Errno::last());
    }
    // SAFETY: fd is the ring this call just made, owned by no one else.
    unsafe { libc::close(fd as libc::c_int) };
    None
}

/// The io_uring tests on a kernel that refuses io_uring: a note, and one check, that
/// read_all_uring says so with the same error, as its outer error.
fn skip_when_refused(e: Errno) {
    let disabled = std::fs::read_to_string("/proc/sys/kernel/io_uring_disabled")
        .map(|s| s.trim().to_string())
        .unwrap_or_else(|_| "absent".into());
    eprintln!(
        "NOTE: this kernel refuses io_uring (io_uring_setup(2) fails with {e}; \
         /proc/sys/kernel/io_uring_disabled is {disabled}, and a seccomp filter can refuse it too). The io_uring \
         tests check only that read_all_uring fails with that same error as its outer error.",
    );
    let (_path, file) = data_file("refused", b"some bytes");
    let requests = [ReadRequest {
        fd: file.as_fd(),
        offset: 0,
        len: 4,
    }];
    match student(|| read_all_uring(&requests)) {
        Err(got) if got.raw_os_error() == Some(e as i32) => {}
        Err(got) => panic!(
            "io_uring_setup fails here with {e}, and read_all_uring failed with {got}: return io_uring_setup's \
             own error as the outer error"
        ),
        Ok(_) => panic!(
            "io_uring_setup fails here with {e}, yet read_all_uring returned results: with no ring there are no \
             io_uring reads; return io_uring_setup's error as the outer error (a fallback to other reads is not \
             io_uring)"
        ),
    }
}

/// The process's open io_uring fds (`anon_inode:[io_uring]` in /proc/self/fd).
fn ring_fds() -> Vec<procfs::Fd> {
    procfs::fds(getpid())
        .expect("read /proc/self/fd")
        .into_iter()
        .filter(|f| f.target.contains("io_uring"))
        .collect()
}

/// A new io_uring fd left open since `before`, explained; `None` for the aio functions.
fn ring_left_open(api: Api, before: &[procfs::Fd]) -> Option<String> {
    if api != Api::Uring {
        return None;
    }
    let left: Vec<String> = ring_fds()
        .into_iter()
        .filter(|f| !before.contains(f))
        .map(|f| format!("fd {} ({})", f.fd, f.target))
        .collect();
    (!left.is_empty()).then(|| {
        format!(
            "after read_all_uring returned, the process still holds {}: the ring was not closed. Each call leaks \
             a ring (its fd and its mapped queues) until the process runs out of fds or of locked memory; drop \
             the IoUring (or close its fd) before returning",
            left.join(", ")
        )
    })
}

/// A field of `/proc/self/fdinfo/<fd>` of an io_uring fd.
fn ring_info(fd: i32, key: &str) -> Option<u64> {
    let text = std::fs::read_to_string(format!("/proc/self/fdinfo/{fd}")).ok()?;
    text.lines()
        .find_map(|l| l.strip_prefix(key)?.strip_prefix(':'))
        .and_then(|v| v.trim().parse().ok())
}

/// With every pipe still unwritten: waits until the ring shows every request submitted
/// (`SqHead`: SQEs the kernel took) and the file reads completed (`CqTail`: CQEs posted),
/// while the pipe reads cannot have; the failure explained.
fn ring_progress(file_reads: usize, pipes: usize) -> Option<String> {
    let total = (file_reads + pipes) as u64;
    let start = Instant::now();
    loop {
        let rings = ring_fds();
        let Some(ring) = rings.first() else {
            return Some(format!(
                "read_all_uring is still running, with none of its pipe reads able to complete, and the process has \
                 no io_uring fd (anon_inode:[io_uring]) open: it is not reading with io_uring. Threads now:{}",
                threads_now()
            ));
        };
        let taken = ring_info(ring.fd, "SqHead").unwrap_or(0);
        let posted = ring_info(ring.fd, "CqTail").unwrap_or(0);
        if taken >= total && posted >= file_reads as u64 {
            return None;
        }
        if start.elapsed() > scaled(SETTLE)
            || (taken < total && start.elapsed() > scaled(SETTLE) / 10)
        {
            return Some(if taken < total {
                format!(
                    "read_all_uring sleeps with only {taken} of its {total} requests submitted to the kernel (the \
                     ring's fdinfo, SqHead): the others wait behind a pipe read the test has not fed: submitting and \
                     waiting for one request at a time makes the reads synchronous again; queue every SQE and \
                     submit them all with one io_uring_enter before waiting"
                )
            } else {
                format!(
                    "all {total} requests were submitted, but in {:?} the kernel posted only {posted} CQEs (the ring's \
                     fdinfo, CqTail), though the {file_reads} file reads could all complete while the pipe reads \
                     wait",
                    scaled(SETTLE)
                )
            });
        }
        thread::sleep(Duration::from_millis(1));
    }
}

#[test]
fn uring_no_requests_no_results() {
    isolated(|| {
        if !Api::Uring.ready() {
            return;
        }
        let before = ring_fds();
        let got = Api::Uring.call(&[]).unwrap_or_else(|why| panic!("{why}"));
        assert!(
            got.is_empty(),
            "read_all_uring(&[]) returned {} results: there is one result per request, so none for no request",
            got.len()
        );
        if let Some(why) = ring_left_open(Api::Uring, &before) {
            panic!("{why}");
        }
    });
}

#[test]
fn uring_many_reads_each_get_the_bytes_at_their_offset() {
    many_reads(Api::Uring);
}

#[test]
fn uring_reads_at_the_end_of_the_file_are_short() {
    short_reads(Api::Uring);
}

#[test]
fn uring_a_failing_request_fails_alone() {
    failing_request(Api::Uring);
}

#[test]
fn uring_completions_in_any_order_are_matched_by_user_data() {
    any_order(Api::Uring);
}

#[test]
fn uring_the_ring_is_closed_after() {
    isolated(|| {
        if !Api::Uring.ready() {
            return;
        }
        let content = random_bytes(5_000, 5);
        let (_path, file) = data_file("closed", &content);
        let requests: Vec<ReadRequest<'_>> = (0..8)
            .map(|i| ReadRequest {
                fd: file.as_fd(),
                offset: i * 500,
                len: 700,
            })
            .collect();
        let table = || -> Vec<(i32, String)> {
            procfs::fds(getpid())
                .expect("read /proc/self/fd")
                .into_iter()
                .map(|f| (f.fd, f.target))
                .collect()
        };
        let before_rings = ring_fds();
        let before = table();
        for _ in 0..3 {
            Api::Uring
                .call(&requests)
                .unwrap_or_else(|why| panic!("{why}"));
        }
        if let Some(why) = ring_left_open(Api::Uring, &before_rings) {
            panic!("{why}");
        }
        let after = table();
        assert!(
            after == before,
            "the process's fd table changed across three calls of read_all_uring: before {before:?}, after \
             {after:?}. It must leave no fd behind"
        );
    });
}
