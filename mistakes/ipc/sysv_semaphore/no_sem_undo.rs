//! # A System V semaphore (信号量) as a lock between processes: the reference solution
//!
//! A classic mistake: neither operation passes SEM_UNDO, so a holder that dies never gives the lock back. See `exercises/ipc/sysv_semaphore.rs` for the lesson.
//!
//! Each libc call sits in one small safe function that turns its -1 into `Errno::last()`;
//! the four public functions are built from those.
use nix::errno::Errno;

/// The argument of `semctl(2)` for the commands that take one (`SETVAL` reads `val`). Linux's
/// libc does not declare it: the caller must (see semctl(2), "union semun").
#[repr(C)]
#[derive(Clone, Copy)]
#[allow(dead_code)] // only `val` is used here
union Semun {
    val: libc::c_int,
    buf: *mut libc::semid_ds,
    array: *mut libc::c_ushort,
}

/// `semget(key, nsems, flags)`: the id of the set.
fn sem_get(key: libc::key_t, nsems: libc::c_int, flags: libc::c_int) -> nix::Result<i32> {
    // SAFETY: semget takes plain integers and touches no memory of ours.
    let id = unsafe { libc::semget(key, nsems, flags) };
    if id == -1 { Err(Errno::last()) } else { Ok(id) }
}

/// `semctl(semid, 0, SETVAL, value)`: sets semaphore 0 of the set to `value`.
fn sem_setval(semid: i32, value: libc::c_int) -> nix::Result<()> {
    let arg = Semun { val: value };
    // SAFETY: SETVAL reads the `val` member of the union passed by value; nothing else.
    let rc = unsafe { libc::semctl(semid, 0, libc::SETVAL, arg) };
    if rc == -1 { Err(Errno::last()) } else { Ok(()) }
}

/// `semctl(semid, 0, IPC_RMID)`: removes the whole set, waking every waiter with `EIDRM`.
fn sem_rmid(semid: i32) -> nix::Result<()> {
    // SAFETY: IPC_RMID takes no fourth argument and touches no memory of ours.
    let rc = unsafe { libc::semctl(semid, 0, libc::IPC_RMID) };
    if rc == -1 { Err(Errno::last()) } else { Ok(()) }
}

/// `semop(semid, [{0, delta, SEM_UNDO}], 1)`: one operation on semaphore 0.
fn sem_op(semid: i32, delta: libc::c_short) -> nix::Result<()> {
    let mut op = libc::sembuf {
        sem_num: 0,
        sem_op: delta,
        // The mistake: no SEM_UNDO, so the kernel keeps no account to undo at exit.
        sem_flg: 0,
    };
    // SAFETY: `op` is one valid sembuf that lives across the call, and nsops is 1.
    let rc = unsafe { libc::semop(semid, &mut op, 1) };
    if rc == -1 { Err(Errno::last()) } else { Ok(()) }
}

/// Makes a new set of one semaphore under `key`, mode 0600, fails with `EEXIST` when `key`
/// is taken, and gives the semaphore the value 1 (free). Returns the set's id.
pub fn create(key: libc::key_t) -> nix::Result<i32> {
    let semid = sem_get(key, 1, libc::IPC_CREAT | libc::IPC_EXCL | 0o600)?;
    if let Err(e) = sem_setval(semid, 1) {
        let _ = sem_rmid(semid);
        return Err(e);
    }
    Ok(semid)
}

/// P: takes the lock (subtracts 1, sleeping while the value is 0), with `SEM_UNDO`; retries
/// when a signal interrupts the sleep.
pub fn lock(semid: i32) -> nix::Result<()> {
    loop {
        match sem_op(semid, -1) {
            Err(Errno::EINTR) => continue,
            other => return other,
        }
    }
}

/// V: gives the lock back (adds 1), with `SEM_UNDO` so the undo count stays balanced.
pub fn unlock(semid: i32) -> nix::Result<()> {
    sem_op(semid, 1)
}

/// Removes the set with `IPC_RMID`.
pub fn remove(semid: i32) -> nix::Result<()> {
    sem_rmid(semid)
}
