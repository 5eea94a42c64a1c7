//! Turns a set of processes into evidence a student can read: a process table (pid, ppid,
//! state, command), each process's open fds, who holds which end of every pipe, and, for a
//! process stuck reading a pipe, who keeps it from ever seeing end-of-file.
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::OnceLock;

use nix::unistd::Pid;

use crate::fdtable;
use crate::procfs::{self, Fd, Stat};

/// The variable that names the inodes of the harness's own pipes (captured output, results),
/// which the tables leave out: they are not the test's business.
pub(crate) const HARNESS_PIPES_ENV: &str = "OSKATA_HARNESS_PIPES";

/// The inodes of the supervisor's own pipes, which it names here before the body starts
/// (the body learns them from [`HARNESS_PIPES_ENV`] instead).
static OWN_PIPES: OnceLock<Vec<u64>> = OnceLock::new();

/// Leaves the pipes with these inodes out of every fd table this process prints.
pub(crate) fn hide_pipes(inodes: Vec<u64>) {
    let _ = OWN_PIPES.set(inodes);
}

fn harness_pipes() -> Vec<u64> {
    let mut inodes: Vec<u64> = std::env::var(HARNESS_PIPES_ENV)
        .unwrap_or_default()
        .split(',')
        .filter_map(|s| s.parse().ok())
        .collect();
    inodes.extend(OWN_PIPES.get().into_iter().flatten());
    inodes
}

/// Whether `f` is one of the harness's own fds, which it keeps at [`fdtable::HIGH_FD_MIN`] and
/// up: its reserve of `/dev/null`, the directory fds it holds. A pipe or socket there may be
/// the test's (moved high, or opened when the table was nearly full), so those stay in the
/// tables unless they are the harness's pipes.
fn harness_fd(f: &Fd, pipes: &[u64]) -> bool {
    match f.pipe_inode() {
        Some(inode) => pipes.contains(&inode),
        None => f.fd >= fdtable::HIGH_FD_MIN && !f.target.starts_with("socket:"),
    }
}

/// How many processes a table shows, and how many holders of a pipe end a line names: a fork
/// loop's hundreds of copies would bury the evidence.
const MAX_ROWS: usize = 40;
const MAX_HOLDERS: usize = 8;

/// A table of processes with pid, ppid, pgid, sid, state and command (the first
/// [`MAX_ROWS`], then a count of the rest).
pub fn process_table(procs: &[Stat]) -> String {
    let mut out = String::from("    PID   PPID   PGID    SID STATE COMMAND\n");
    if procs.len() > MAX_ROWS {
        let _ = writeln!(
            out,
            "  ({} processes; the first {MAX_ROWS} are shown)",
            procs.len()
        );
    }
    for p in procs.iter().take(MAX_ROWS) {
        let _ = writeln!(
            out,
            "{:>7} {:>6} {:>6} {:>6} {:<5} {}",
            p.pid,
            p.ppid,
            p.pgrp,
            p.session,
            state_word(p.state),
            procfs::cmdline(Pid::from_raw(p.pid))
        );
        let running = procfs::zombie_leader_threads(p);
        if !running.is_empty() {
            let _ = writeln!(
                out,
                "{:>7}   (its main thread has exited; threads {} run on)",
                "",
                tids(&running)
            );
        }
    }
    out
}

/// "pid N is a zombie leader whose other threads still run (tids ...)" for a process whose
/// main thread has exited while others run on (see [`procfs::zombie_leader_threads`]): the
/// kernel shows it as `Z`, yet it is alive and waitpid(2) cannot reap it. `None` otherwise.
pub fn zombie_leader(p: &Stat) -> Option<String> {
    let running = procfs::zombie_leader_threads(p);
    (!running.is_empty()).then(|| {
        format!(
            "pid {} ({}) is a zombie leader whose other threads still run (tids {}): its main thread \
             exited (pthread_exit or the exit system call) while another thread went on, so the process \
             lives on and no waitpid can reap it until its last thread ends",
            p.pid,
            p.comm,
            tids(&running)
        )
    })
}

fn tids(tids: &[i32]) -> String {
    tids.iter()
        .map(i32::to_string)
        .collect::<Vec<_>>()
        .join(", ")
}

/// The name of a system call a waiting thread is commonly found in, or its number.
pub(crate) fn syscall_name(nr: i64) -> String {
    let common = [
        (libc::SYS_read, "read"),
        (libc::SYS_write, "write"),
        (
            libc::SYS_futex,
            "futex (a lock, condition variable, channel or join)",
        ),
        (libc::SYS_nanosleep, "nanosleep (sleeping)"),
        (libc::SYS_clock_nanosleep, "clock_nanosleep (sleeping)"),
        (libc::SYS_ppoll, "ppoll"),
        (libc::SYS_pselect6, "pselect6"),
        (libc::SYS_epoll_pwait, "epoll_pwait"),
        (libc::SYS_wait4, "wait4 (waitpid)"),
        (libc::SYS_waitid, "waitid"),
        (libc::SYS_accept, "accept"),
        (libc::SYS_accept4, "accept4"),
        (libc::SYS_recvfrom, "recvfrom"),
        (libc::SYS_recvmsg, "recvmsg"),
        (libc::SYS_rt_sigsuspend, "rt_sigsuspend"),
        (libc::SYS_rt_sigtimedwait, "rt_sigtimedwait (sigwait)"),
        (libc::SYS_mq_timedreceive, "mq_timedreceive"),
        (libc::SYS_msgrcv, "msgrcv"),
        (libc::SYS_semtimedop, "semtimedop"),
        #[cfg(target_arch = "x86_64")]
        (libc::SYS_pause, "pause"),
        #[cfg(target_arch = "x86_64")]
        (libc::SYS_poll, "poll"),
        #[cfg(target_arch = "x86_64")]
        (libc::SYS_select, "select"),
        #[cfg(target_arch = "x86_64")]
        (libc::SYS_epoll_wait, "epoll_wait"),
    ];
    match common.iter().find(|(n, _)| *n == nr) {
        Some((_, name)) => format!("{name} ({nr})"),
        None => format!("number {nr}"),
    }
}

/// What process `p` was doing when the tree was stopped, in words, from the state it had just
/// before (`p.state`, see `states_before`) and the system call its main thread is in
/// (`/proc/<pid>/syscall`, read with the tree stopped): spinning in user space, asleep in a
/// system call, stopped by a signal, or exited and unreaped. `None` for a zombie leader
/// (named on its own) and where nothing can be read.
pub(crate) fn activity(p: &Stat) -> Option<String> {
    let who = format!("pid {} ({})", p.pid, p.comm);
    let pid = Pid::from_raw(p.pid);
    match p.state {
        'R' if procfs::in_user_space(pid) => Some(format!(
            "{who} was running in user space, not in a system call, when it was stopped: a loop that never \
             ends, or one that waits by spinning (a busy loop?)"
        )),
        'R' => procfs::syscall(pid).map(|call| {
            format!(
                "{who} was running in the kernel, in the system call {}",
                syscall_name(call.nr)
            )
        }),
        'S' | 'D' => procfs::syscall(pid).map(|call| {
            format!(
                "{who} was asleep in the system call {}: blocked, waiting for something that had not happened",
                syscall_name(call.nr)
            )
        }),
        'T' => Some(format!(
            "{who} was stopped by a signal (state T): it does nothing until it gets SIGCONT"
        )),
        't' => Some(format!("{who} was stopped by a tracer (state t)")),
        'Z' if procfs::zombie_leader_threads(p).is_empty() => Some(format!(
            "{who} had exited and was a zombie (state Z): nobody had reaped it with waitpid"
        )),
        _ => None,
    }
}

/// How many threads of one process [`thread_lines`] names.
const MAX_THREADS: usize = 16;

/// One line for each thread of a multi-threaded process `p` (read with the tree stopped):
/// where it was, in user space or in which system call, and for a futex wait the address it
/// waits on, so that a deadlock shows which threads wait on which lock. Empty for a process
/// with one thread (its [`activity`] says it all).
pub(crate) fn thread_lines(p: &Stat) -> Vec<String> {
    let pid = Pid::from_raw(p.pid);
    let Ok(tids) = procfs::threads(pid) else {
        return Vec::new();
    };
    if tids.len() < 2 {
        return Vec::new();
    }
    let mut lines: Vec<String> = tids
        .iter()
        .take(MAX_THREADS)
        .filter_map(|&tid| {
            let comm = procfs::task_stat(pid, tid).ok()?.comm;
            let who = format!("pid {} thread {tid} ({comm})", p.pid);
            if procfs::thread_in_user_space(pid, tid) {
                return Some(format!(
                    "{who}: in user space, not in a system call (running, or spinning in a loop)"
                ));
            }
            let call = procfs::thread_syscall(pid, tid)?;
            Some(format!("{who}: in the system call {}", call_detail(&call)))
        })
        .collect();
    if tids.len() > MAX_THREADS {
        lines.push(format!(
            "pid {}: and {} more threads",
            p.pid,
            tids.len() - MAX_THREADS
        ));
    }
    lines
}

/// A system call's name, and for a futex its operation and address.
fn call_detail(call: &procfs::Syscall) -> String {
    if call.nr != libc::SYS_futex {
        return syscall_name(call.nr);
    }
    // The operation without FUTEX_PRIVATE_FLAG and FUTEX_CLOCK_REALTIME.
    let op = match (call.args[1] & 0x7f) as i32 {
        libc::FUTEX_WAIT | libc::FUTEX_WAIT_BITSET => "a futex wait",
        libc::FUTEX_LOCK_PI | libc::FUTEX_LOCK_PI2 => "a futex priority-inheritance lock",
        _ => "a futex operation",
    };
    format!(
        "futex ({op} on address {:#x}: a lock, condition variable, channel or join it waits for)",
        call.args[0]
    )
}

/// `Z` -> `Z (zombie)` and so on, so the letters teach as they go.
pub fn state_word(state: char) -> String {
    let word = match state {
        'R' => "running",
        'S' => "sleeping",
        'D' => "disk sleep",
        'Z' => "zombie",
        'T' => "stopped",
        't' => "traced",
        'X' => "dead",
        'I' => "idle",
        _ => "?",
    };
    format!("{state} ({word})")
}

/// The open fds of each process, and every pipe with the holders of each end. The harness's
/// own pipes (stdout and stderr are captured through one) are left out.
pub fn fd_tables(procs: &[Stat]) -> String {
    let tables = read_fds(procs);
    let mut out = String::new();
    // Processes with the same fds (a fork loop's copies) share one line.
    let mut alike: Vec<(String, Vec<i32>)> = Vec::new();
    for (pid, fds) in &tables {
        let list: Vec<String> = fds
            .iter()
            .map(|f| format!("{}={}{}", f.fd, f.target, end_mark(f)))
            .collect();
        let list = list.join("  ");
        match alike.iter_mut().find(|(l, _)| *l == list) {
            Some((_, pids)) => pids.push(*pid),
            None => alike.push((list, vec![*pid])),
        }
    }
    for (list, pids) in &alike {
        let who = match pids[..] {
            [pid] => format!("pid {pid}"),
            _ => format!("pids {}", some(pids.iter().map(i32::to_string))),
        };
        let _ = writeln!(out, "  {who} fds: {list}");
    }
    let pipes = pipe_ends(&tables);
    for (inode, ends) in &pipes {
        let _ = writeln!(
            out,
            "  pipe:[{inode}] read end: {}; write end: {}",
            holders(&ends.0),
            holders(&ends.1)
        );
    }
    for line in stuck_readers(procs, &tables, &pipes) {
        let _ = writeln!(out, "  {line}");
    }
    out
}

type Holders = Vec<(i32, i32)>;

/// Each live process's fds, less the harness's own pipes and the directory the reading
/// process has open on `/proc/<pid>/fd` itself. A zombie leader's are read through one of the
/// threads that run on, since its own listing is empty.
fn read_fds(procs: &[Stat]) -> BTreeMap<i32, Vec<Fd>> {
    let hidden = harness_pipes();
    let listing = format!("/proc/{}/fd", std::process::id());
    procs
        .iter()
        .filter_map(|p| {
            let pid = Pid::from_raw(p.pid);
            let fds = if p.state == 'Z' {
                let tid = *procfs::zombie_leader_threads(p).first()?;
                procfs::task_fds(pid, tid).ok()?
            } else {
                procfs::fds(pid).ok()?
            };
            let shown = fds
                .into_iter()
                .filter(|f| !harness_fd(f, &hidden) && f.target != listing)
                .collect();
            Some((p.pid, shown))
        })
        .collect()
}

fn end_mark(fd: &Fd) -> &'static str {
    match (fd.pipe_inode().is_some(), fd.access) {
        (false, _) => "",
        (true, 0) => "(r)",
        (true, 1) => "(w)",
        (true, _) => "(rw)",
    }
}

fn pipe_ends(tables: &BTreeMap<i32, Vec<Fd>>) -> BTreeMap<u64, (Holders, Holders)> {
    let mut pipes: BTreeMap<u64, (Holders, Holders)> = BTreeMap::new();
    for (pid, fds) in tables {
        for fd in fds {
            if let Some(inode) = fd.pipe_inode() {
                let ends = pipes.entry(inode).or_default();
                if fd.readable() {
                    ends.0.push((*pid, fd.fd));
                }
                if fd.writable() {
                    ends.1.push((*pid, fd.fd));
                }
            }
        }
    }
    pipes
}

fn holders(list: &Holders) -> String {
    if list.is_empty() {
        return "nobody".into();
    }
    some(list.iter().map(|(pid, fd)| format!("pid {pid} fd {fd}")))
}

/// The first [`MAX_HOLDERS`] items joined with commas, then how many more there are.
fn some(items: impl ExactSizeIterator<Item = String>) -> String {
    let n = items.len();
    let mut shown: Vec<String> = items.take(MAX_HOLDERS).collect();
    if n > MAX_HOLDERS {
        shown.push(format!("and {} more", n - MAX_HOLDERS));
    }
    shown.join(", ")
}

fn stuck_readers(
    procs: &[Stat],
    tables: &BTreeMap<i32, Vec<Fd>>,
    pipes: &BTreeMap<u64, (Holders, Holders)>,
) -> Vec<String> {
    let mut out = Vec::new();
    for p in procs.iter().filter(|p| p.state == 'S') {
        let Some(fd) = procfs::blocked_read_fd(Pid::from_raw(p.pid)) else {
            continue;
        };
        let Some(inode) = tables
            .get(&p.pid)
            .and_then(|fds| fds.iter().find(|f| f.fd == fd)?.pipe_inode())
        else {
            continue;
        };
        let writers = pipes.get(&inode).map(|e| e.1.clone()).unwrap_or_default();
        if writers.is_empty() {
            continue;
        }
        for (pid, wfd) in writers {
            let itself = if pid == p.pid {
                ", the reader itself"
            } else {
                ""
            };
            out.push(format!(
                "pid {} is blocked reading pipe:[{inode}] on fd {fd}: the reader never saw EOF because pid {pid} \
                 still holds the write end (fd {wfd}{itself})",
                p.pid
            ));
        }
    }
    out
}

/// One sentence for each process asleep in `wait4`/`waitid` on a child that is still alive
/// (read from `/proc/<pid>/syscall`, see [`procfs::waits_for`]): at a deadline, the usual
/// reason a parent stands still is that it waits for a process that was meant to run on.
pub fn stuck_waiters(procs: &[Stat]) -> Vec<String> {
    let mut out = Vec::new();
    for w in procs.iter().filter(|p| p.state == 'S') {
        let waiter = Pid::from_raw(w.pid);
        let awaited: Vec<String> = procs
            .iter()
            .filter(|c| c.state != 'Z' && procfs::waits_for(waiter, c))
            .map(|c| format!("pid {} ({})", c.pid, state_word(c.state)))
            .collect();
        if !awaited.is_empty() {
            out.push(format!(
                "pid {} is blocked in waitpid (wait4/waitid) on a child that has not exited: {}",
                w.pid,
                awaited.join(", ")
            ));
        }
    }
    out
}

/// Everything about a set of processes: the table, then fds and pipes, then who is blocked
/// waiting for whom.
pub fn describe(procs: &[Stat]) -> String {
    if procs.is_empty() {
        return "  (no processes)\n".into();
    }
    let mut out = format!("{}{}", process_table(procs), fd_tables(procs));
    for p in procs.iter().take(MAX_ROWS) {
        for line in activity(p).into_iter().chain(thread_lines(p)) {
            let _ = writeln!(out, "  {line}");
        }
    }
    for line in stuck_waiters(procs) {
        let _ = writeln!(out, "  {line}");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_lists_are_cut_with_a_count() {
        let items = |n: usize| {
            (0..n)
                .map(|i| i.to_string())
                .collect::<Vec<_>>()
                .into_iter()
        };
        assert_eq!(some(items(3)), "0, 1, 2");
        assert_eq!(some(items(10)), "0, 1, 2, 3, 4, 5, 6, 7, and 2 more");
    }

    #[test]
    fn a_fork_loops_table_shows_its_first_rows_and_a_count() {
        let text = format!(
            "{} (x) R 1 1 1 0 -1 0 0 0 0 0 0 0 0 0 20 0 1 0 5 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 17 0",
            i32::MAX
        );
        let procs = vec![Stat::parse(&text).unwrap(); 100];
        let table = process_table(&procs);
        assert!(
            table.contains("(100 processes; the first 40 are shown)"),
            "{table}"
        );
        assert_eq!(table.lines().count(), 2 + MAX_ROWS);
    }
}
