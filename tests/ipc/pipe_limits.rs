//! ipc/pipe_limits: a pipe's capacity measured by filling it in non-blocking mode, changed with
//! `F_SETPIPE_SZ`, and the `PIPE_BUF` atomicity of records from several writer processes
//! (管道的容量与原子写).
//!
//! What the tests observe, never what the code under test claims:
//! - the pipe's capacity from the kernel (`F_GETPIPE_SZ`), the bytes it holds (`FIONREAD`), and
//!   whether it takes more (a write of one page from the test, `EAGAIN` when full), on pipes the
//!   test made with sizes of its choosing (so no constant can pass);
//! - for `F_SETPIPE_SZ`, the kernel's own answer to the same request on a pipe of the test's,
//!   and the size the student's pipe has afterwards; the limit in `/proc/sys/fs/pipe-max-size`;
//! - a measurement that sleeps in `write(2)` (a blocking pipe): seen at once in
//!   `/proc/<pid>/syscall`, the pipe full, and reported (the test then closes the read end so
//!   that the write fails with `EPIPE` and the test can go on);
//! - write calls counted by the kernel: `syscw` and `wchar` in `/proc/<pid>/io`, of the test
//!   process around one `write_record`, and of each writer process once it is done (read
//!   before it is reaped);
//! - writers held at a barrier: the test fills the pipe first, so each writer's first write
//!   sleeps; only when `/proc` shows every writer asleep in `write(2)` on that pipe does the
//!   test start reading, and they all write at once;
//! - the writers' pids as children of the caller (`/proc/<pid>/stat`), the fds of the caller
//!   (`/proc/<pid>/fd`), `waitpid(-1, WNOHANG)` after the reaping (`ECHILD`: nothing left).
//!
//! The contract, clause by clause, and the test that checks each:
//! - `pipe_capacity` returns exactly the capacity (`F_GETPIPE_SZ`) of pipes of 1, 4, 16 (the
//!   default) and 64 pages (`capacity_matches_the_kernels`), counts what each write returned
//!   (the count equals `FIONREAD`), leaves the pipe full (a page more is refused), and never
//!   sleeps in write(2) (the same test, watching `/proc`);
//! - it leaves the fd's file status flags as it found them, `O_NONBLOCK` set or not
//!   (`capacity_matches_the_kernels`, the `already_nonblocking` case among them);
//! - `set_pipe_size` returns the capacity the kernel chose, rounded up to a power of two of
//!   pages, and the pipe really has it (`set_pipe_size_returns_what_the_kernel_chose`);
//! - it returns the kernel's `EPERM` above `pipe-max-size` and leaves the size alone
//!   (`set_pipe_size_above_the_limit_is_refused`), the kernel's `EBUSY` below what the pipe holds
//!   (`set_pipe_size_below_the_contents_is_refused`), and `EINVAL` for a size that does not fit
//!   in an int, never a truncated one (`set_pipe_size_refuses_sizes_beyond_an_int`);
//! - `write_record` makes one write(2) call per record of 1 to PIPE_BUF bytes and the bytes
//!   arrive (`write_record_is_one_write_call`); it refuses other lengths with `EINVAL` and
//!   writes nothing (`write_record_refuses_bad_lengths`); it retries a write interrupted by a
//!   signal while it waited for room (`write_record_retries_after_a_signal`);
//! - `spawn_writers` returns one pid per batch, each a child of the caller and not yet reaped,
//!   closes the caller's write end (the reader sees end of file), and each writer writes its
//!   batch in order, one write per record; every record arrives whole, none lost, none twice,
//!   whatever the record sizes (up to PIPE_BUF) and the number of writers, all writing at once
//!   (`records_from_several_writers_arrive_whole`, a property test);
//! - `reap_writers` waits for all of them and counts those that exited 0; nothing is left
//!   to reap (the same test); a writer whose record fails exits 1 at once and is counted out
//!   (`a_writer_whose_record_fails_exits_1`);
//! - when a fork fails, `spawn_writers` returns the error and leaves no writer behind
//!   (`spawn_writers_cleans_up_when_a_fork_fails`).

// The exercise under test: your stub (by default), the reference solution (`--features
// solutions`), or a shipped mistake that `cargo grade --mistakes` copies into target/.
#[cfg(not(any(feature = "solutions", feature = "mistake")))]
#[path = "../../exercises/ipc/pipe_limits.rs"]
#[allow(dead_code)] // a stub does not use all of its API yet
mod pipe_limits;
#[cfg(all(feature = "solutions", not(feature = "mistake")))]
#[path = "../../solutions/ipc/pipe_limits.rs"]
mod pipe_limits;
#[cfg(feature = "mistake")]
#[path = "../../target/oskata-mistake/ipc/pipe_limits.rs"]
#[rustfmt::skip] // the copy exists only while the proof runs
mod pipe_limits;
use pipe_limits::*;

use std::fs;
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use nix::errno::Errno;
use nix::fcntl::{FcntlArg, OFlag, fcntl};
use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
use nix::sys::pthread::{pthread_kill, pthread_self};
use nix::sys::signal::{SaFlags, SigAction, SigHandler, SigSet, Signal, kill, sigaction, signal};
use nix::sys::stat::fstat;
use nix::sys::wait::{Id, WaitPidFlag, WaitStatus, waitid, waitpid};
use nix::unistd::{Pid, SysconfVar, getpid, pipe, read, sysconf, write};
use oskata_harness::{Isolation, evidence, forks, procfs, scaled, student};
use proptest::collection::vec;
use proptest::prelude::*;
use proptest::test_runner::{Config, RngAlgorithm, TestCaseError, TestError, TestRng, TestRunner};
use rstest::rstest;

/// How long correct code may take for anything here (before `scaled`): milliseconds are
/// enough, every wrong solution is caught by evidence long before this.
const SETTLE: Duration = Duration::from_secs(5);

/// The page size, the unit of a pipe's slots.
fn page() -> usize {
    sysconf(SysconfVar::PAGE_SIZE)
        .ok()
        .flatten()
        .map_or(4096, |p| p as usize)
}

/// `F_GETPIPE_SZ`: the kernel's capacity of the pipe behind `fd`.
fn capacity_of(fd: impl AsFd) -> usize {
    fcntl(fd, FcntlArg::F_GETPIPE_SZ).expect("F_GETPIPE_SZ") as usize
}

/// `FIONREAD`: the bytes queued in the pipe behind `fd`.
fn queued(fd: impl AsFd) -> usize {
    let mut n: libc::c_int = 0;
    // SAFETY: FIONREAD writes one int into `n`.
    let r = unsafe { libc::ioctl(fd.as_fd().as_raw_fd(), libc::FIONREAD, &raw mut n) };
    assert!(r == 0, "FIONREAD failed: {}", Errno::last());
    n as usize
}

/// The inode of the pipe behind `fd` (what `/proc/<pid>/fd` shows as `pipe:[inode]`).
fn inode_of(fd: impl AsFd) -> u64 {
    fstat(fd).expect("fstat on a pipe end").st_ino
}

/// The file status flags of `fd`.
fn flags_of(fd: impl AsFd) -> OFlag {
    OFlag::from_bits_retain(fcntl(fd, FcntlArg::F_GETFL).expect("F_GETFL"))
}

/// A write to a pipe with no reader fails with EPIPE instead of killing the test.
fn ignore_sigpipe() {
    // SAFETY: sets a disposition in the isolated test process; no handler code is involved.
    unsafe { signal(Signal::SIGPIPE, SigHandler::SigIgn) }.expect("ignore SIGPIPE");
}

/// The fd `pid`'s main thread is asleep writing to, if it sleeps in write(2), writev(2) or
/// pwrite(2) right now (state S: waiting for room in a pipe, not for a lock).
fn asleep_writing(pid: Pid) -> Option<i32> {
    let call = procfs::syscall(pid)?;
    let writes = [libc::SYS_write, libc::SYS_writev, libc::SYS_pwrite64];
    (writes.contains(&call.nr) && procfs::state(pid) == Some('S')).then_some(call.args[0] as i32)
}

/// Whether fd `fd` of `pid` is an end of pipe `inode`.
fn is_end_of(pid: Pid, fd: i32, inode: u64) -> bool {
    procfs::fds(pid)
        .unwrap_or_default()
        .iter()
        .any(|f| f.fd == fd && f.pipe_inode() == Some(inode))
}

/// The kernel's write accounting of `pid` from `/proc/<pid>/io`: (`syscw`, `wchar`), the
/// write calls it made and the bytes they wrote.
fn write_counts(pid: Pid) -> Option<(u64, u64)> {
    let text = fs::read_to_string(format!("/proc/{pid}/io")).ok()?;
    let field = |name: &str| {
        text.lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.trim().parse::<u64>().ok())
    };
    Some((field("syscw:")?, field("wchar:")?))
}

/// The test process and its descendants, in the kernel's words.
fn evidence_now() -> String {
    let me = getpid();
    let mut procs: Vec<procfs::Stat> = procfs::stat(me).into_iter().collect();
    procs.extend(procfs::descendants(me));
    format!(
        "What the kernel shows (the test process is pid {me}):\n{}",
        evidence::describe(&procs)
    )
}

/// Kills and reaps every child of the test process, then fails with `msg`.
fn fail(msg: String) -> ! {
    for child in procfs::children(getpid()) {
        let _ = kill(Pid::from_raw(child.pid), Signal::SIGKILL);
    }
    while matches!(waitpid(None, None), Ok(_) | Err(Errno::EINTR)) {}
    panic!("{msg}");
}

/// Fills the pipe through the test's own non-blocking writes of whole pages; returns the
/// bytes it took. The fd's flags are restored.
fn fill_up(write_end: &OwnedFd) -> usize {
    let flags = flags_of(write_end);
    fcntl(write_end, FcntlArg::F_SETFL(flags | OFlag::O_NONBLOCK)).expect("F_SETFL");
    let chunk = vec![0x5au8; page()];
    let mut total = 0;
    loop {
        match write(write_end, &chunk) {
            Ok(n) => total += n,
            Err(Errno::EAGAIN) => break,
            Err(e) => panic!("filling the test's pipe failed: {e}"),
        }
    }
    fcntl(write_end, FcntlArg::F_SETFL(flags)).expect("F_SETFL");
    total
}

/// Short pauses between looks at `/proc`, growing to 5 ms.
fn pause(round: &mut u32) {
    *round += 1;
    thread::sleep(Duration::from_micros(50 << (*round).min(7)));
}

// ---------------------------------------------------------------------------------------------
// pipe_capacity

/// Watches the test process's main thread while `pipe_capacity` runs. A measurement that
/// sleeps in write(2) on the pipe, twice in a row with the pipe's contents unchanged, is
/// waiting for a reader that never comes (the pipe is in blocking mode): the watcher notes what
/// it saw and closes the read end, so that the write fails with EPIPE and the test can report.
fn watch_for_a_blocked_fill(
    read_end: OwnedFd,
    write_fd: i32,
    done: Arc<AtomicBool>,
) -> thread::JoinHandle<(Option<OwnedFd>, Option<String>)> {
    let me = getpid();
    let inode = inode_of(&read_end);
    thread::spawn(move || {
        let mut seen: Option<(Instant, usize)> = None;
        let mut round = 0;
        while !done.load(Ordering::SeqCst) {
            match asleep_writing(me) {
                Some(fd) if fd == write_fd => {
                    let now = queued(&read_end);
                    match seen {
                        Some((since, before))
                            if before == now && since.elapsed() > Duration::from_millis(20) =>
                        {
                            let capacity = capacity_of(&read_end);
                            let why = format!(
                                "pipe_capacity (pid {me}) was asleep in write(2) on fd {write_fd}, the write end of \
                                 pipe:[{inode}], which held {now} bytes of its {capacity} and stayed so: the pipe was \
                                 in blocking mode, and a blocking write into a full pipe waits until a reader makes \
                                 room, here forever. Set O_NONBLOCK on the write end first (fcntl F_GETFL, then \
                                 F_SETFL with O_NONBLOCK added): a full pipe then fails the write with EAGAIN, which \
                                 is where the count ends. (The test closed the read end to end the wait, so the write \
                                 failed with EPIPE.)\n{}",
                                evidence_now()
                            );
                            drop(read_end);
                            return (None, Some(why));
                        }
                        Some((_, before)) if before == now => {}
                        _ => seen = Some((Instant::now(), now)),
                    }
                }
                _ => seen = None,
            }
            pause(&mut round);
        }
        (Some(read_end), None)
    })
}

/// `pipe_capacity` on a pipe the test made, resized to `pages` pages (or left at the
/// default), its write end made non-blocking first or not: the result must be the kernel's
/// `F_GETPIPE_SZ`, the pipe must hold exactly that many bytes and take no more, the fd's flags
/// must be as before, and the measurement must never sleep in write(2).
#[rstest]
#[case::one_page(Some(1), false)]
#[case::four_pages(Some(4), false)]
#[case::the_default(None, false)]
#[case::sixty_four_pages(Some(64), false)]
#[case::already_nonblocking(Some(2), true)]
fn capacity_matches_the_kernels(#[case] pages: Option<usize>, #[case] nonblocking: bool) {
    Isolation::new()
        .deadline(Duration::from_secs(15))
        .check_fds()
        .run(|| measure(pages, nonblocking));
}

/// The body of [`capacity_matches_the_kernels`].
fn measure(pages: Option<usize>, nonblocking: bool) {
    ignore_sigpipe();
    let (read_end, write_end) = pipe().expect("pipe");
    if let Some(pages) = pages {
        let want = pages * page();
        let got = fcntl(&write_end, FcntlArg::F_SETPIPE_SZ(want as libc::c_int))
            .unwrap_or_else(|e| panic!("the test could not resize its pipe to {want} bytes: {e}"));
        assert_eq!(
            got as usize, want,
            "the kernel set the test's pipe to {got} bytes, not {want}"
        );
    }
    if nonblocking {
        let flags = flags_of(&write_end);
        fcntl(&write_end, FcntlArg::F_SETFL(flags | OFlag::O_NONBLOCK)).expect("F_SETFL");
    }
    let capacity = capacity_of(&write_end);
    let flags_before = flags_of(&write_end);
    let done = Arc::new(AtomicBool::new(false));
    let watcher = watch_for_a_blocked_fill(read_end, write_end.as_raw_fd(), done.clone());
    let measured = student(|| pipe_capacity(&write_end));
    done.store(true, Ordering::SeqCst);
    let (read_end, blocked) = watcher.join().expect("the watcher thread");
    if let Some(why) = blocked {
        panic!("{why}");
    }
    let read_end = read_end.expect("the watcher keeps the read end unless it reports");
    let measured = measured.unwrap_or_else(|e| {
        panic!("pipe_capacity failed with {e} on an empty pipe of {capacity} bytes with a read end open")
    });
    let held = queued(&read_end);
    let default_note = if measured == 65536 && capacity != 65536 {
        " (65536 is only the default capacity; this pipe was resized with F_SETPIPE_SZ: measure it, do not \
         assume it)"
    } else {
        ""
    };
    if measured != held {
        panic!(
            "pipe_capacity returned {measured}, but the pipe holds {held} bytes (FIONREAD), of a capacity of \
             {capacity} (F_GETPIPE_SZ){default_note}. The measurement is the sum of what the writes took: count what \
             each write(2) returns, not the length you asked for. A non-blocking write bigger than the room left \
             takes what fits and returns that number (a short write); only the next one fails with EAGAIN."
        );
    }
    if measured != capacity {
        // Does the pipe take a page more? Then it was not full; if not, the slots are full of
        // partly used pages.
        let flags = flags_of(&write_end);
        fcntl(&write_end, FcntlArg::F_SETFL(flags | OFlag::O_NONBLOCK)).expect("F_SETFL");
        let more = write(&write_end, &vec![0u8; page()]);
        if matches!(more, Err(Errno::EAGAIN)) {
            panic!(
                "pipe_capacity returned {measured} for a pipe of {capacity} bytes (F_GETPIPE_SZ){default_note}, and \
                 the pipe indeed refuses more (a write of one page fails with EAGAIN) while holding only {held} \
                 bytes: the kernel keeps pipe data in page-sized slots ({} of them here) and appends a write to the \
                 last page only if it fits in what is left there, otherwise it takes a new slot. Writes whose size is \
                 not a multiple of the page size ({}) leave part of every page unused. Fill the pipe with writes of a \
                 page, or of a multiple of a page.",
                capacity / page(),
                page()
            );
        }
        panic!(
            "pipe_capacity returned {measured} for a pipe of {capacity} bytes (F_GETPIPE_SZ){default_note}, and the \
             pipe was not full: it took a further page from the test ({more:?}). Keep writing until write(2) fails \
             with EAGAIN: that, not a short write, is the sign that the pipe is full."
        );
    }
    let flags_after = flags_of(&write_end);
    if flags_after != flags_before {
        panic!(
            "pipe_capacity left the write end's file status flags as {flags_after:?}, but they were \
             {flags_before:?}: O_NONBLOCK belongs to the open file, shared by every fd and process that uses it, so \
             a function that sets it for its own measurement restores the flags it found (F_GETFL before, F_SETFL \
             with the old value after)."
        );
    }
    drop(read_end);
}

// ---------------------------------------------------------------------------------------------
// set_pipe_size

/// What the kernel does with a request for `size` bytes, asked on a fresh pipe of the test's
/// holding `contents` bytes (with the same nix call a solution would make).
fn kernels_answer(size: usize, contents: usize) -> Result<usize, Errno> {
    let (_r, w) = pipe().expect("pipe");
    if contents > 0 {
        assert_eq!(
            write(&w, &vec![1u8; contents]),
            Ok(contents),
            "fill the probe pipe"
        );
    }
    fcntl(&w, FcntlArg::F_SETPIPE_SZ(size as libc::c_int)).map(|n| n as usize)
}

/// Calls `set_pipe_size(size)` on a fresh pipe holding `contents` bytes and checks it against
/// the kernel's answer to the same request on a pipe of the test's.
fn check_resize(size: usize, contents: usize) {
    let expected = kernels_answer(size, contents);
    let (read_end, write_end) = pipe().expect("pipe");
    if contents > 0 {
        assert_eq!(
            write(&write_end, &vec![1u8; contents]),
            Ok(contents),
            "fill the pipe"
        );
    }
    let before = capacity_of(&write_end);
    let got = student(|| set_pipe_size(&write_end, size));
    let now = capacity_of(&write_end);
    match (expected, got) {
        (Ok(want), Ok(n)) if n == want && now == want => {}
        (Ok(want), Ok(n)) if now == want => panic!(
            "set_pipe_size(fd, {size}) returned {n}, but the pipe's capacity is now {want} (F_GETPIPE_SZ): the kernel \
             rounds the size up, to a power of two of pages ({} bytes at least), so what you ask for is not what \
             you get. Return the size the kernel set: F_SETPIPE_SZ returns it, and F_GETPIPE_SZ reads it back.",
            page()
        ),
        (Ok(want), got) => panic!(
            "set_pipe_size(fd, {size}) returned {got:?} and left the pipe at {now} bytes (it was {before}); the \
             kernel, asked the same on another pipe, set {want} bytes."
        ),
        (Err(e), Err(g)) if e == g && now == before => {}
        (Err(e), got) => panic!(
            "set_pipe_size(fd, {size}) on a pipe holding {contents} bytes returned {got:?} (the pipe is now {now} \
             bytes, was {before}); the kernel refuses that request with {e} ({}), and set_pipe_size must return \
             the kernel's error as it is, leaving the pipe as it was.",
            match e {
                Errno::EPERM => "above /proc/sys/fs/pipe-max-size without CAP_SYS_RESOURCE",
                Errno::EBUSY => "the new size is smaller than what the pipe holds",
                _ => "see fcntl(2)",
            }
        ),
    }
    drop(read_end);
}

/// Sizes below, at and between powers of two of pages: each result must be the size the
/// kernel chose (the test asks the kernel the same on a pipe of its own), which is
/// `max(page, next power of two)`, and the pipe must have it.
#[test]
fn set_pipe_size_returns_what_the_kernel_chose() {
    Isolation::new().deadline(Duration::from_secs(15)).check_fds().run(|| {
        let page = page();
        for size in [1, page, page + 1, 5000, 3 * page, 65536, 100_000, 1_000_000] {
            let rule = if size <= page { page } else { size.next_power_of_two() };
            assert_eq!(
                kernels_answer(size, 0),
                Ok(rule),
                "this kernel does not round a request for {size} bytes as pipe(7) says; the test's assumption fails here"
            );
            check_resize(size, 0);
        }
    });
}

/// Requests above `/proc/sys/fs/pipe-max-size`: the test process has no CAP_SYS_RESOURCE
/// (the harness gives up every capability), so the kernel refuses them with EPERM, and
/// `set_pipe_size` must return that and leave the pipe alone.
#[test]
fn set_pipe_size_above_the_limit_is_refused() {
    Isolation::new().deadline(Duration::from_secs(15)).check_fds().run(|| {
        let max: usize = fs::read_to_string("/proc/sys/fs/pipe-max-size")
            .expect("read /proc/sys/fs/pipe-max-size")
            .trim()
            .parse()
            .expect("pipe-max-size is a number");
        let caps = procfs::status(getpid())
            .ok()
            .and_then(|s| s.get("CapEff").map(str::to_owned))
            .unwrap_or_default();
        for size in [max + 1, 2 * max] {
            let answer = kernels_answer(size, 0);
            println!(
                "pipe-max-size {max}, CapEff {caps}: the kernel answers a request for {size} bytes with {answer:?}"
            );
            check_resize(size, 0);
        }
        // At the limit itself the request is allowed.
        check_resize(max, 0);
    });
}

/// A pipe holding 20000 bytes (5 slots) cannot shrink to 1 or 4 slots: the kernel says EBUSY
/// and `set_pipe_size` must return it, the pipe keeping its data and size. Growing it, or
/// shrinking to 8 slots, works.
#[test]
fn set_pipe_size_below_the_contents_is_refused() {
    Isolation::new()
        .deadline(Duration::from_secs(15))
        .check_fds()
        .run(|| {
            let page = page();
            for size in [page, 4 * page, 8 * page, 32 * page] {
                check_resize(size, 20_000);
            }
        });
}

/// Sizes that do not fit in a C int (the type F_SETPIPE_SZ takes) must be refused with EINVAL
/// before any call: cast with `as`, 4 GiB + 8 KiB would become 8 KiB and shrink the pipe.
#[test]
fn set_pipe_size_refuses_sizes_beyond_an_int() {
    Isolation::new().deadline(Duration::from_secs(15)).check_fds().run(|| {
        let (_read_end, write_end) = pipe().expect("pipe");
        let before = capacity_of(&write_end);
        for size in [(1usize << 32) + 8192, 1usize << 40, usize::MAX] {
            let got = student(|| set_pipe_size(&write_end, size));
            let now = capacity_of(&write_end);
            if got != Err(Errno::EINVAL) || now != before {
                panic!(
                    "set_pipe_size(fd, {size}) returned {got:?} and the pipe is now {now} bytes (it was {before}): a \
                     size that does not fit in the C int that F_SETPIPE_SZ takes must be refused with EINVAL \
                     (c_int::try_from), not cast with `as`, which keeps only the low bits ({size} as i32 is {})",
                    size as i32
                );
            }
        }
    });
}

// ---------------------------------------------------------------------------------------------
// write_record

/// The test process's own write accounting (`/proc/self/io`): (`syscw`, `wchar`).
fn my_write_counts() -> (u64, u64) {
    write_counts(getpid()).expect("read /proc/<pid>/io of the test process")
}

/// One `write_record` of each size from 1 to PIPE_BUF: the kernel counts one write(2) call of
/// exactly the record's bytes, and the pipe holds the record.
#[test]
fn write_record_is_one_write_call() {
    Isolation::new().deadline(Duration::from_secs(15)).check_fds().run(|| {
        let (read_end, write_end) = pipe().expect("pipe");
        for len in [1, 2, 100, 1000, PIPE_BUF - 1, PIPE_BUF] {
            let record = record_bytes(0, 0, len.max(HEADER), len);
            let (calls_before, bytes_before) = my_write_counts();
            let got = student(|| write_record(&write_end, &record));
            let (calls_after, bytes_after) = my_write_counts();
            got.unwrap_or_else(|e| panic!("write_record of {len} bytes into an empty pipe failed: {e}"));
            let (calls, bytes) = (calls_after - calls_before, bytes_after - bytes_before);
            if calls != 1 {
                panic!(
                    "write_record of a {len}-byte record made {calls} write(2) calls ({bytes} bytes), as \
                     /proc/<pid>/io (syscw) counts them: one write(2) call per record. Only a single write of at most \
                     PIPE_BUF ({PIPE_BUF}) bytes is atomic; between two calls another writer's bytes can land in \
                     the pipe, and the reader gets the record in two pieces with a stranger's data between."
                );
            }
            let mut buf = vec![0u8; PIPE_BUF + 1];
            let n = read(&read_end, &mut buf).expect("read the record back");
            assert_eq!(
                &buf[..n],
                &record[..],
                "the pipe should hold the {len}-byte record write_record was given, nothing else"
            );
        }
    });
}

/// Records of 0 bytes and of more than PIPE_BUF bytes are refused with EINVAL, and nothing is
/// written (no write(2) call, nothing in the pipe).
#[test]
fn write_record_refuses_bad_lengths() {
    Isolation::new().deadline(Duration::from_secs(15)).check_fds().run(|| {
        let (read_end, write_end) = pipe().expect("pipe");
        for len in [0, PIPE_BUF + 1, 3 * PIPE_BUF] {
            let record = vec![7u8; len];
            let (calls_before, _) = my_write_counts();
            let got = student(|| write_record(&write_end, &record));
            let (calls_after, _) = my_write_counts();
            let held = queued(&read_end);
            if got != Err(Errno::EINVAL) || held != 0 || calls_after != calls_before {
                panic!(
                    "write_record of a {len}-byte record returned {got:?}, made {} write(2) calls and left {held} bytes \
                     in the pipe: a record must have 1 to PIPE_BUF ({PIPE_BUF}) bytes, since only a write of at most \
                     PIPE_BUF bytes is atomic; refuse any other length with EINVAL, writing nothing.",
                    calls_after - calls_before
                );
            }
        }
    });
}

/// How many times the test's SIGUSR1 handler ran.
static SIGNALS: AtomicU32 = AtomicU32::new(0);

extern "C" fn count_signal(_: libc::c_int) {
    SIGNALS.fetch_add(1, Ordering::SeqCst);
}

/// `write_record` into a full pipe sleeps; a signal whose handler has no SA_RESTART, sent
/// once `/proc` shows it asleep in write(2) on that pipe, makes the write fail with EINTR
/// before it took anything. `write_record` must call it again (it is seen asleep in write a
/// second time), and once the test drains the pipe the record arrives whole.
#[test]
fn write_record_retries_after_a_signal() {
    Isolation::new().deadline(Duration::from_secs(15)).check_fds().run(|| {
        let action = SigAction::new(SigHandler::Handler(count_signal), SaFlags::empty(), SigSet::empty());
        // SAFETY: the handler only adds to an atomic counter, which is async-signal-safe.
        unsafe { sigaction(Signal::SIGUSR1, &action) }.expect("sigaction(SIGUSR1)");
        let (read_end, write_end) = pipe().expect("pipe");
        let prefill = fill_up(&write_end);
        let me = getpid();
        let write_fd = write_end.as_raw_fd();
        let main = pthread_self();
        let returned = Arc::new(AtomicBool::new(false));
        let flag = returned.clone();
        let limit = scaled(SETTLE);
        let helper = thread::spawn(move || -> Result<(OwnedFd, u32), String> {
            let start = Instant::now();
            let mut round = 0;
            let mut sent = 0;
            loop {
                if flag.load(Ordering::SeqCst) {
                    return Ok((read_end, sent));
                }
                if asleep_writing(me) == Some(write_fd) {
                    if sent == 0 {
                        pthread_kill(main, Signal::SIGUSR1).map_err(|e| format!("pthread_kill: {e}"))?;
                        sent = 1;
                        while SIGNALS.load(Ordering::SeqCst) < 1 {
                            if start.elapsed() > limit {
                                return Err("the SIGUSR1 handler never ran".into());
                            }
                            thread::sleep(Duration::from_millis(1));
                        }
                    } else {
                        // Asleep in write again after the handler ran: a retry. Make room.
                        let mut buf = vec![0u8; prefill];
                        let mut got = 0;
                        while got < prefill {
                            got += read(&read_end, &mut buf[got..]).map_err(|e| format!("drain: {e}"))?;
                        }
                        while !flag.load(Ordering::SeqCst) {
                            if start.elapsed() > limit {
                                return Err("write_record did not return after the pipe was drained".into());
                            }
                            thread::sleep(Duration::from_millis(1));
                        }
                        return Ok((read_end, sent));
                    }
                }
                if start.elapsed() > limit {
                    return Err(format!(
                        "after {limit:?} write_record (pid {me}) was not asleep in write(2) on fd {write_fd}, the full \
                         pipe (its state {:?}, system call {:?})",
                        procfs::state(me),
                        procfs::syscall(me).map(|c| c.nr)
                    ));
                }
                pause(&mut round);
            }
        });
        let record = record_bytes(1, 2, 300, 300);
        let got = student(|| write_record(&write_end, &record));
        returned.store(true, Ordering::SeqCst);
        let (read_end, sent) = match helper.join().expect("the helper thread") {
            Ok(v) => v,
            Err(why) => panic!("{why}"),
        };
        match got {
            Ok(()) => {}
            Err(Errno::EINTR) => panic!(
                "write_record returned Err(EINTR): its write(2) into the full pipe was interrupted by a signal \
                 (SIGUSR1, whose handler was installed without SA_RESTART) while it waited for room. A write of at \
                 most PIPE_BUF bytes that fails with EINTR wrote nothing: nothing is lost, call it again."
            ),
            Err(e) => panic!("write_record failed with {e} after a signal interrupted its write(2)"),
        }
        assert_eq!(sent, 1, "the test sent its signal once write_record slept in write(2)");
        let mut buf = vec![0u8; PIPE_BUF];
        let n = read(&read_end, &mut buf).expect("read the record");
        assert_eq!(&buf[..n], &record[..], "after the retry the pipe must hold the record, whole and once");
    });
}

// ---------------------------------------------------------------------------------------------
// spawn_writers and reap_writers

/// A record's header: magic, writer, sequence number, length (two bytes).
const HEADER: usize = 5;
/// The first byte of every record.
const MAGIC: u8 = 0xa5;

/// The body byte `i` of record `seq` of writer `w`: differs between writers and records, so a
/// stranger's bytes inside a record show.
fn body_byte(w: usize, seq: usize, i: usize) -> u8 {
    ((w as u32 * 97 + seq as u32 * 31 + i as u32 * 7 + 13) % 251) as u8
}

/// Record `seq` of writer `w`, `len` bytes (`len >= HEADER`; `stated` is the length written
/// in the header, `len` unless the test wants a bad record).
fn record_bytes(w: usize, seq: usize, stated: usize, len: usize) -> Vec<u8> {
    let mut r = vec![MAGIC, w as u8, seq as u8, (stated >> 8) as u8, stated as u8];
    r.extend((HEADER..len).map(|i| body_byte(w, seq, i)));
    r.truncate(len);
    r
}

/// Batches of records, writer `w` getting `counts_and_sizes[w]`.
fn make_batches(sizes: &[Vec<usize>]) -> Vec<Vec<Vec<u8>>> {
    sizes
        .iter()
        .enumerate()
        .map(|(w, batch)| {
            batch
                .iter()
                .enumerate()
                .map(|(seq, &len)| record_bytes(w, seq, len, len))
                .collect()
        })
        .collect()
}

/// Splits the stream into records and checks each: whole, from a known writer, each writer's
/// in order. Returns how many records of each writer arrived.
fn parse_records(stream: &[u8], writers: usize) -> Result<Vec<usize>, String> {
    let mut next = vec![0usize; writers];
    let mut at = 0;
    let cut = "each record must go out in one write(2) call per record, of at most PIPE_BUF bytes: only such a \
               write is atomic, and between two calls another writer's bytes can land in the pipe";
    while at < stream.len() {
        let rest = &stream[at..];
        if rest.len() < HEADER || rest[0] != MAGIC || rest[1] as usize >= writers {
            return Err(format!(
                "at byte {at} of the {} bytes the writers sent, where a record should begin, the pipe holds \
                 {:02x?}: not the start of a record (magic {MAGIC:#04x}, writer < {writers}), so the record before \
                 it was cut or another writer's bytes landed inside it: {cut}",
                stream.len(),
                &rest[..rest.len().min(12)]
            ));
        }
        let (w, seq) = (rest[1] as usize, rest[2] as usize);
        let len = ((rest[3] as usize) << 8) | rest[4] as usize;
        if seq != next[w] % 256 {
            return Err(format!(
                "at byte {at} record {seq} of writer {w} arrived where its record {} was due: a writer's records \
                 must arrive in the order of its batch, each once",
                next[w]
            ));
        }
        if len < HEADER || len > rest.len() {
            return Err(format!(
                "at byte {at} record {seq} of writer {w} says it has {len} bytes, but only {} follow: it was cut",
                rest.len()
            ));
        }
        if let Some(i) = (HEADER..len).find(|&i| rest[i] != body_byte(w, seq, i)) {
            return Err(format!(
                "record {seq} of writer {w} ({len} bytes, starting at byte {at}) differs from what it sent from its \
                 byte {i} on ({:02x?}...): other bytes landed inside it: {cut}",
                &rest[i..len.min(i + 8)]
            ));
        }
        next[w] += 1;
        at += len;
    }
    Ok(next)
}

/// What one run of the writers showed: their pids and the bytes that came through the pipe
/// after the prefill.
struct Run {
    pids: Vec<Pid>,
    stream: Vec<u8>,
}

/// Reads the pipe in a thread. With `barrier`, the pipe was filled up before the writers
/// started: the reader waits until `/proc` shows `writers` children of the test process
/// asleep in write(2) on this pipe (so every writer is parked at its first record), then
/// drains the prefill and everything after it until end of file. Stops when `stop` is set.
fn reader(
    read_end: OwnedFd,
    prefill: usize,
    writers: usize,
    stop: Arc<AtomicBool>,
) -> thread::JoinHandle<Result<Vec<u8>, String>> {
    let me = getpid();
    thread::spawn(move || {
        let inode = inode_of(&read_end);
        let limit = scaled(SETTLE);
        if prefill > 0 {
            let start = Instant::now();
            let mut round = 0;
            loop {
                let parked = procfs::children(me)
                    .iter()
                    .map(|c| Pid::from_raw(c.pid))
                    .filter(|&c| asleep_writing(c).is_some_and(|fd| is_end_of(c, fd, inode)))
                    .count();
                // The caller itself asleep writing into the full pipe: no writer process does it.
                let caller = asleep_writing(me).is_some_and(|fd| is_end_of(me, fd, inode));
                // Not all of them, in time: read anyway, the checks after say what went wrong.
                if parked >= writers
                    || caller
                    || start.elapsed() > limit
                    || stop.load(Ordering::SeqCst)
                {
                    break;
                }
                pause(&mut round);
            }
        }
        let mut stream = Vec::new();
        let mut buf = vec![0u8; 65536];
        let mut skip = prefill;
        let start = Instant::now();
        loop {
            if stop.load(Ordering::SeqCst) {
                return Err("stopped".into());
            }
            let mut fds = [PollFd::new(read_end.as_fd(), PollFlags::POLLIN)];
            match poll(&mut fds, PollTimeout::from(50u8)) {
                Ok(0) | Err(Errno::EINTR) => {
                    if start.elapsed() > 2 * limit {
                        return Err(format!(
                            "after {:?} the pipe gave no end of file: some process still holds its write end.\n{}",
                            2 * limit,
                            evidence_now()
                        ));
                    }
                    continue;
                }
                Ok(_) => {}
                Err(e) => return Err(format!("poll on the read end: {e}")),
            }
            match read(&read_end, &mut buf) {
                Ok(0) => return Ok(stream),
                Ok(n) => {
                    let drop_now = skip.min(n);
                    skip -= drop_now;
                    stream.extend_from_slice(&buf[drop_now..n]);
                }
                Err(Errno::EINTR) => {}
                Err(e) => return Err(format!("read from the pipe: {e}")),
            }
        }
    })
}

/// Makes a pipe (filled up first with `barrier`), calls `spawn_writers`, checks what it
/// returned and the caller's fds, and reads everything the writers sent.
fn run_writers(batches: &[Vec<Vec<u8>>], barrier: bool) -> Run {
    let me = getpid();
    let (read_end, write_end) = pipe().expect("pipe");
    let inode = inode_of(&read_end);
    let prefill = if barrier { fill_up(&write_end) } else { 0 };
    let stop = Arc::new(AtomicBool::new(false));
    let reading = reader(read_end, prefill, batches.len(), stop.clone());
    let spawned = student(|| spawn_writers(write_end, batches));
    let check = || -> Result<Vec<Pid>, String> {
        let pids = spawned.map_err(|e| format!("spawn_writers failed: {e}"))?;
        if pids.len() != batches.len() {
            return Err(format!(
                "spawn_writers returned {} pids for {} batches: one writer process per batch",
                pids.len(),
                batches.len()
            ));
        }
        for (i, &pid) in pids.iter().enumerate() {
            let stat = procfs::stat(pid).ok();
            if stat.as_ref().is_none_or(|s| s.ppid != me.as_raw()) || pids[..i].contains(&pid) {
                return Err(format!(
                    "spawn_writers returned pid {pid} for batch {i}, but /proc shows no such child of the caller (pid \
                     {me}) waiting to be reaped ({}): each batch gets a writer process of its own, forked by \
                     spawn_writers, and spawn_writers returns without waiting for it (reap_writers does that).\n{}",
                    match stat {
                        Some(s) => format!("its parent is {}", s.ppid),
                        None if pid == me => "it is the caller itself".to_owned(),
                        None => "it does not exist: already reaped?".to_owned(),
                    },
                    evidence_now()
                ));
            }
        }
        let kept: Vec<i32> = procfs::fds(me)
            .unwrap_or_default()
            .iter()
            .filter(|f| f.pipe_inode() == Some(inode) && f.writable())
            .map(|f| f.fd)
            .collect();
        if !kept.is_empty() {
            return Err(format!(
                "after spawn_writers returned, the caller (pid {me}) still holds a write end of pipe:[{inode}] (fd \
                 {kept:?}): the reader never sees end of file while any write end is open, the caller's included. \
                 The parent writes nothing: it drops its write end once the writers are forked.\n{}",
                evidence_now()
            ));
        }
        Ok(pids)
    };
    let pids = match check() {
        Ok(pids) => pids,
        Err(why) => {
            stop.store(true, Ordering::SeqCst);
            let _ = reading.join();
            fail(why);
        }
    };
    let stream = match reading.join().expect("the reader thread") {
        Ok(stream) => stream,
        Err(why) => fail(why),
    };
    Run { pids, stream }
}

/// Writer `w`'s write accounting must be one write(2) call per record and the records' bytes.
fn check_write_calls(pids: &[Pid], batches: &[Vec<Vec<u8>>], written: &[usize]) {
    for (w, &pid) in pids.iter().enumerate() {
        let Some((calls, bytes)) = write_counts(pid) else {
            // A zombie's /proc/<pid>/io needs CAP_SYS_PTRACE (its memory is gone, so the
            // kernel cannot check it is dumpable): as a normal user it is refused.
            if nix::unistd::geteuid().is_root() {
                fail(format!(
                    "cannot read /proc/{pid}/io of writer {w} before it is reaped"
                ));
            }
            eprintln!(
                "note: /proc/{pid}/io of the exited writer {w} is not readable without root, so the count of its \
                 write(2) calls is not checked here (the records' arrival whole still is)"
            );
            continue;
        };
        let records = written[w] as u64;
        let sent: u64 = batches[w][..written[w]]
            .iter()
            .map(|r| r.len() as u64)
            .sum();
        if calls != records {
            fail(format!(
                "writer {w} (pid {pid}) made {calls} write(2) calls ({bytes} bytes) for the {records} records ({sent} \
                 bytes) that arrived from it, as /proc/{pid}/io (syscw, wchar) counts them: one write(2) call per \
                 record. Only a single write of at most PIPE_BUF ({PIPE_BUF}) bytes is atomic; a record written in \
                 pieces can be cut by another writer's record."
            ));
        }
    }
}

/// Reaps through the student's `reap_writers`; it must count `ok` successes and leave no
/// child behind.
fn reap_and_check(pids: &[Pid], ok: usize) {
    let reaped = student(|| reap_writers(pids));
    let left: Vec<i32> = procfs::children(getpid()).iter().map(|c| c.pid).collect();
    if !left.is_empty()
        || !matches!(
            waitpid(None, Some(WaitPidFlag::WNOHANG)),
            Err(Errno::ECHILD)
        )
    {
        fail(format!(
            "after reap_writers({pids:?}) returned {reaped:?}, the caller still has children {left:?}: every writer \
             must be waited for (waitpid on each pid), or it stays a zombie.\n{}",
            evidence_now()
        ));
    }
    match reaped {
        Ok(n) if n == ok => {}
        other => panic!(
            "reap_writers returned {other:?}, but {ok} of the {} writers exited with status 0 (the others 1): it \
             returns how many writers exited with status 0 (WaitStatus::Exited(_, 0))",
            pids.len()
        ),
    }
}

/// `oskata_harness::cases::check` with fewer shrinking steps: each step forks writers and
/// may wait at the barrier, so a failure is reported after a few steps rather than dozens.
fn few_shrinks<S>(cases: u32, strategy: S, test: impl Fn(S::Value) -> Result<(), TestCaseError>)
where
    S: Strategy,
    S::Value: std::fmt::Debug,
{
    let config = Config {
        cases,
        max_shrink_iters: 6,
        failure_persistence: None,
        ..Config::default()
    };
    let mut runner =
        TestRunner::new_with_rng(config, TestRng::deterministic_rng(RngAlgorithm::ChaCha));
    match runner.run(&strategy, test) {
        Ok(()) => {}
        Err(TestError::Fail(why, value)) => {
            panic!("{}\n(smallest failing input: {value:?})", why.message())
        }
        Err(TestError::Abort(why)) => panic!("the property test gave up: {}", why.message()),
    }
}

/// Several writers, all parked at a barrier (the pipe full, each asleep in its first write),
/// then let go at once: every record arrives whole and once, each writer's in order, one
/// write(2) call per record; all writers exit 0 and are reaped. A property test over the
/// number of writers (2 to 6) and the sizes of the records (5 bytes to PIPE_BUF).
#[test]
fn records_from_several_writers_arrive_whole() {
    Isolation::new().deadline(Duration::from_secs(60)).check_fds().run(|| {
        ignore_sigpipe();
        let size = prop_oneof![HEADER..=64usize, 1000..=PIPE_BUF, Just(PIPE_BUF)];
        let writers = vec(vec(size, 1..=6), 2..=6);
        few_shrinks(24, writers, |sizes| {
            // A case that failed left nothing behind (fail() reaps); this one starts clean.
            let batches = make_batches(&sizes);
            let run = run_writers(&batches, true);
            let got = match parse_records(&run.stream, batches.len()) {
                Ok(got) => got,
                Err(why) => fail(why),
            };
            let want: Vec<usize> = batches.iter().map(Vec::len).collect();
            if got != want {
                fail(format!(
                    "records arrived per writer: {got:?}, but the writers had {want:?} records: each writer writes \
                     every record of its batch, in order, then exits"
                ));
            }
            check_write_calls(&run.pids, &batches, &got);
            reap_and_check(&run.pids, batches.len());
            Ok(())
        });
    });
}

/// A writer whose second record is too big (PIPE_BUF + 1 bytes, refused by `write_record`)
/// stops there and exits 1: its first record arrives, its third does not; the other writers
/// deliver everything; `reap_writers` counts 2 of 3.
#[test]
fn a_writer_whose_record_fails_exits_1() {
    Isolation::new().deadline(Duration::from_secs(15)).check_fds().run(|| {
        ignore_sigpipe();
        let mut batches = make_batches(&[vec![100, 200], vec![300, 0, 400], vec![500]]);
        batches[1][1] = vec![MAGIC; PIPE_BUF + 1];
        let run = run_writers(&batches, false);
        let got = match parse_records(&run.stream, batches.len()) {
            Ok(got) => got,
            Err(why) => fail(why),
        };
        if got != [2, 1, 1] {
            fail(format!(
                "records arrived per writer: {got:?}, expected [2, 1, 1]: writer 1's second record has PIPE_BUF + 1 \
                 bytes, which write_record refuses (EINVAL), and the writer must then exit with status 1 at once, \
                 without writing its third record"
            ));
        }
        check_write_calls(&run.pids, &batches, &got);
        for (w, &pid) in run.pids.iter().enumerate() {
            let want = if w == 1 { 1 } else { 0 };
            // WNOWAIT: look at the status, leave the zombie for reap_writers.
            match waitid(Id::Pid(pid), WaitPidFlag::WNOWAIT | WaitPidFlag::WEXITED) {
                Ok(WaitStatus::Exited(_, code)) if code == want => {}
                other => fail(format!(
                    "writer {w} (pid {pid}) ended with {other:?}; it should exit with status {want} (1 when one of \
                     its records fails, at once; 0 after writing them all)"
                )),
            }
        }
        reap_and_check(&run.pids, 2);
    });
}

/// With room for 2 more processes, `spawn_writers` of 4 batches meets a failing fork
/// (EAGAIN): it returns that error, and the 2 writers it started are gone (killed and reaped),
/// no child left behind.
#[test]
fn spawn_writers_cleans_up_when_a_fork_fails() {
    Isolation::new().deadline(Duration::from_secs(15)).check_fds().run(|| {
        ignore_sigpipe();
        let batches = make_batches(&[vec![10], vec![10], vec![10], vec![10]]);
        let (read_end, write_end) = pipe().expect("pipe");
        let limit = match forks::limit_new_processes(2) {
            Ok(limit) => limit,
            Err(why) => {
                println!("not checked here: {why}");
                return;
            }
        };
        let got = student(|| spawn_writers(write_end, &batches));
        drop(limit);
        let left: Vec<String> = procfs::children(getpid())
            .iter()
            .map(|c| format!("pid {} ({})", c.pid, evidence::state_word(c.state)))
            .collect();
        if !left.is_empty() {
            fail(format!(
                "spawn_writers returned {got:?} when its third fork failed, but left children behind: {}. When a fork \
                 fails, kill and reap the writers already started, then return the error: the caller gets no pids, \
                 so nobody else can reap them.",
                left.join(", ")
            ));
        }
        match got {
            Err(Errno::EAGAIN) => {}
            other => panic!(
                "spawn_writers returned {other:?} with room for only 2 more processes: its third fork fails with \
                 EAGAIN, and that error must be returned"
            ),
        }
        drop(read_end);
    });
}
