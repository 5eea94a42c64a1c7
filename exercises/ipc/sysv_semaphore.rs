//! # A System V semaphore (信号量) as a lock between processes
//!
//! A semaphore is a counter kept by the kernel with two operations that never race: **P**
//! (wait, "proberen") subtracts one, and sleeps first while the counter is 0; **V** (signal,
//! "verhogen") adds one and wakes a sleeper. A semaphore whose value is 1 when free is a
//! lock (a binary semaphore, 二元信号量): P takes it, V gives it back, and while one process
//! holds it every other P sleeps. Threads of one process have `Mutex`; processes that share
//! only memory need a lock that lives outside all of them, in the kernel.
//!
//! ## The System V calls
//!
//! System V IPC (svipc(7)) names its objects by a numeric **key** and hands back an **id**.
//! Its semaphores come in sets:
//!
//! - `semget(key, nsems, IPC_CREAT | IPC_EXCL | mode)` makes a set of `nsems` semaphores and
//!   returns its id; with `IPC_EXCL` it fails with `EEXIST` when a set with that key already
//!   exists, instead of quietly handing back someone else's. A new semaphore's value is 0
//!   (Linux zeroes it; POSIX leaves it unspecified): a lock made by `semget` alone is already
//!   taken, and nobody will ever give it back.
//! - `semctl(semid, semnum, SETVAL, arg)` sets one semaphore's value; `GETVAL`, `GETNCNT`
//!   (how many sleep waiting for it to grow) and `GETPID` (who operated on it last) read its
//!   state; `IPC_RMID` removes the whole set. The fourth argument is a `union semun` that the
//!   caller declares itself (Linux's C library does not; see semctl(2)): a `#[repr(C)] union`
//!   with `val: c_int` first, passed by value.
//! - `semop(semid, ops, nops)` applies an array of `struct sembuf { sem_num, sem_op, sem_flg }`
//!   all at once: `sem_op` -1 is P, +1 is V. A P that cannot proceed sleeps inside `semop`.
//!
//! ## SEM_UNDO: what if the holder dies?
//!
//! A process killed by `SIGKILL` inside its critical section never runs its V. Without help
//! the value stays 0 and every other process sleeps in `semop` forever. With `SEM_UNDO` in
//! `sem_flg` the kernel keeps, per process, the sum of what it did to each semaphore (its
//! *semadj*), and when the process exits it takes that back: the dead holder's -1 is undone
//! and the lock is free again. Use it on both P and V, so a process that took and gave back
//! owes nothing.
//!
//! ## Signals
//!
//! A signal that arrives while `semop` sleeps ends the call with `EINTR`, even with
//! `SA_RESTART` (signal(7) lists the System V IPC calls among those never restarted). Nothing
//! happened to the semaphore: call it again.
//!
//! ## Objects outlive processes
//!
//! A set stays in the kernel until someone removes it with `IPC_RMID`, long after its makers
//! are gone; `ipcs -s` and `/proc/sysvipc/sem` list what is left. Every set made must be
//! removed.
//!
//! ## What you write
//!
//! Four small functions over one set of one semaphore. libc has the calls (`libc::semget`,
//! `libc::semctl`, `libc::semop`, `libc::sembuf`, `libc::SEM_UNDO`, `libc::SETVAL`,
//! `libc::IPC_RMID`, ...); nix has none. A good shape: each libc call in one small safe
//! function of your own that turns its -1 into `Err(Errno::last())`, with a `// SAFETY:`
//! comment on its `unsafe` block, and the four below built from those. The tests fork
//! processes that increment a counter in shared memory under your lock, and judge from the
//! kernel: `semctl` `GETVAL`/`GETNCNT`/`GETPID`, `/proc/sysvipc/sem`, and what the processes
//! are asleep in (`/proc/<pid>/syscall`).
//!
//! Man pages: svipc(7), semget(2), semctl(2), semop(2), signal(7) (interrupted system calls),
//! proc(5) (`/proc/sysvipc`), ipcs(1), ipcrm(1).

/// Makes a new set of one semaphore under `key` with mode 0600 (owner read and write), and
/// sets the semaphore's value to 1, so the lock starts free. Returns the set's id.
///
/// Fails with `EEXIST` when a set with `key` already exists (use `IPC_EXCL`), leaving that set
/// untouched; returns any other error of `semget(2)` or `semctl(2)`, removing the new set if
/// setting its value failed.
pub fn create(_key: libc::key_t) -> nix::Result<i32> {
    todo!()
}

/// P: takes the lock. Subtracts 1 from semaphore 0 of set `semid` with `SEM_UNDO`, sleeping
/// in `semop(2)` while the value is 0. Retries when a signal interrupts the sleep (`EINTR`);
/// returns any other error (`EINVAL` for a set that does not exist, `EIDRM` when it was
/// removed during the sleep).
pub fn lock(_semid: i32) -> nix::Result<()> {
    todo!()
}

/// V: gives the lock back. Adds 1 to semaphore 0 of set `semid` with `SEM_UNDO` (so the
/// kernel's undo count of this process is back to 0); returns any error of `semop(2)`.
pub fn unlock(_semid: i32) -> nix::Result<()> {
    todo!()
}

/// Removes set `semid` with `semctl(2)` `IPC_RMID`; returns its error for an id that names no
/// set (`EINVAL`).
pub fn remove(_semid: i32) -> nix::Result<()> {
    todo!()
}
