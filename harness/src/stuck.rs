//! Telling threads that wait for each other for ever from threads that are merely slow.
//!
//! A deadlock or a lost wake-up in a synchronization primitive leaves its threads asleep in
//! futex(2) (every lock, condition variable and join of the C library and of Rust's std sleeps
//! there), and a futex wait without a timeout ends only when another thread wakes it. So when
//! every thread of a group that has not finished is seen asleep in futex, several times in a
//! row with no progress in between, nobody is left to wake any of them: they are stuck for
//! good. [`wait_unless_stuck`] waits for a group of threads to finish and says so as soon as
//! that is seen, naming each thread's state and the futex address it sleeps on, instead of
//! running into the test's deadline. It reads the kernel's own account of each thread,
//! `/proc/self/task/<tid>/stat` and `.../syscall`, never what the code under test says.
use std::fmt;
use std::time::{Duration, Instant};

use nix::unistd::Pid;

use crate::evidence::state_word;
use crate::procfs::{self, Syscall};

/// What one thread of this process was doing when it was looked at.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ThreadLook {
    /// The thread's id (gettid).
    pub tid: i32,
    /// Its name (`comm`).
    pub comm: String,
    /// Its state letter: `R` running, `S` asleep, ...
    pub state: char,
    /// The system call it was in, `None` when running or in user space.
    pub syscall: Option<Syscall>,
}

impl ThreadLook {
    /// Whether the thread was asleep in futex(2).
    pub fn asleep_in_futex(&self) -> bool {
        self.state == 'S' && self.syscall.is_some_and(|c| c.nr == libc::SYS_futex)
    }

    /// The futex word's address when the thread sleeps in futex(2).
    pub fn futex_addr(&self) -> Option<u64> {
        self.asleep_in_futex()
            .then(|| self.syscall.map(|c| c.args[0]))
            .flatten()
    }
}

impl fmt::Display for ThreadLook {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "thread {} ({}) is {}",
            self.tid,
            self.comm,
            state_word(self.state)
        )?;
        match self.syscall {
            Some(c) if c.nr == libc::SYS_futex => write!(
                f,
                ", in futex({:#x}, op {}, value {}) (/proc/self/task/{}/syscall)",
                c.args[0], c.args[1], c.args[2], self.tid
            ),
            Some(c) => write!(f, ", in system call number {}", c.nr),
            None => write!(f, ", not in a system call"),
        }
    }
}

/// Looks at each thread of this process in `tids` that still exists (a thread that has
/// exited is left out).
pub fn look(tids: &[i32]) -> Vec<ThreadLook> {
    let me = Pid::this();
    tids.iter()
        .filter_map(|&tid| {
            let stat = procfs::task_stat(me, tid).ok()?;
            if matches!(stat.state, 'Z' | 'X') {
                return None;
            }
            Some(ThreadLook {
                tid,
                comm: stat.comm,
                state: stat.state,
                syscall: procfs::thread_syscall(me, tid),
            })
        })
        .collect()
}

/// Why [`wait_unless_stuck`] gave up.
#[derive(Debug, Clone)]
pub struct Stuck {
    /// The threads not finished, as last seen.
    pub threads: Vec<ThreadLook>,
    /// True when the limit ran out (some thread was not asleep in futex: running, spinning,
    /// or in another system call); false when every one was asleep in futex for good.
    pub timed_out: bool,
}

impl Stuck {
    /// One line per thread.
    pub fn describe(&self) -> String {
        self.threads
            .iter()
            .map(|t| format!("  {t}"))
            .collect::<Vec<_>>()
            .join("\n")
    }
}

/// How many looks in a row, [`LOOK_EVERY`] apart, must see every unfinished thread asleep in
/// futex with no progress: one look reads the threads one after another, and a thread woken
/// just after its own read could be running when the next is read asleep.
const STUCK_LOOKS: u32 = 5;
const LOOK_EVERY: Duration = Duration::from_millis(10);

/// Waits until `done()`; gives up with [`Stuck`] when every thread of `tids()` still alive is
/// seen asleep in futex(2) in [`STUCK_LOOKS`] looks in a row while `progress()` stays the same
/// (nobody is left to wake them), or when `limit` (scaled) runs out.
///
/// `tids()` is asked on every look, so a group still starting its threads can be watched.
pub fn wait_unless_stuck(
    limit: Duration,
    mut tids: impl FnMut() -> Vec<i32>,
    mut progress: impl FnMut() -> u64,
    mut done: impl FnMut() -> bool,
) -> Result<(), Stuck> {
    let limit = crate::scaled(limit);
    let start = Instant::now();
    let mut asleep_looks = 0;
    let mut last_progress = progress();
    loop {
        if done() {
            return Ok(());
        }
        let now = progress();
        let seen = look(&tids());
        if !seen.is_empty() && now == last_progress && seen.iter().all(ThreadLook::asleep_in_futex)
        {
            asleep_looks += 1;
            if asleep_looks >= STUCK_LOOKS && !done() {
                return Err(Stuck {
                    threads: seen,
                    timed_out: false,
                });
            }
        } else {
            asleep_looks = 0;
        }
        last_progress = now;
        if start.elapsed() > limit {
            if done() {
                return Ok(());
            }
            return Err(Stuck {
                threads: seen,
                timed_out: true,
            });
        }
        std::thread::sleep(LOOK_EVERY);
    }
}
