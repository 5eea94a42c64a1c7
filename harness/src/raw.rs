//! System calls made with the `syscall` instruction itself, for the harness's security-relevant
//! steps (prctl(2), capset(2), getrandom(2)).
//!
//! Student code is linked into the test binary, so a `#[no_mangle] extern "C" fn prctl` in an
//! exercise would replace libc's `prctl` for the whole program, and every call through libc or
//! nix, the harness's included, would reach the student's function instead of the kernel. A
//! system call made here goes straight to the kernel; each caller also checks the effect where
//! the kernel lets it read it back.
use nix::errno::Errno;

/// `syscall(nr, a, b, c, d, e)` without libc: the raw return value, `-errno` on failure.
///
/// # Safety
/// The arguments must be valid for system call `nr`, as for libc's `syscall(2)`.
#[cfg(target_arch = "x86_64")]
unsafe fn syscall5(nr: libc::c_long, a: usize, b: usize, c: usize, d: usize, e: usize) -> isize {
    let ret: isize;
    // SAFETY: the x86_64 system call convention: number in rax, arguments in rdi, rsi, rdx,
    // r10, r8; the kernel clobbers rcx and r11 and returns in rax. The caller vouches for
    // the arguments.
    unsafe {
        core::arch::asm!(
            "syscall",
            inlateout("rax") nr as isize => ret,
            in("rdi") a,
            in("rsi") b,
            in("rdx") c,
            in("r10") d,
            in("r8") e,
            lateout("rcx") _,
            lateout("r11") _,
            options(nostack),
        );
    }
    ret
}

/// `syscall(nr, a, b, c, d, e)` without libc: the raw return value, `-errno` on failure.
///
/// # Safety
/// The arguments must be valid for system call `nr`, as for libc's `syscall(2)`.
#[cfg(target_arch = "aarch64")]
unsafe fn syscall5(nr: libc::c_long, a: usize, b: usize, c: usize, d: usize, e: usize) -> isize {
    let ret: isize;
    // SAFETY: the aarch64 system call convention: number in x8, arguments in x0 to x4, the
    // result in x0. The caller vouches for the arguments.
    unsafe {
        core::arch::asm!(
            "svc 0",
            in("x8") nr,
            inlateout("x0") a as isize => ret,
            in("x1") b,
            in("x2") c,
            in("x3") d,
            in("x4") e,
            options(nostack),
        );
    }
    ret
}

/// Elsewhere there is no raw entry here: libc's `syscall`, which an exported symbol could
/// replace (a documented limit of the kit on such machines).
///
/// # Safety
/// The arguments must be valid for system call `nr`, as for libc's `syscall(2)`.
#[cfg(not(any(target_arch = "x86_64", target_arch = "aarch64")))]
unsafe fn syscall5(nr: libc::c_long, a: usize, b: usize, c: usize, d: usize, e: usize) -> isize {
    // SAFETY: forwarded as given; the caller vouches for the arguments.
    let r = unsafe { libc::syscall(nr, a, b, c, d, e) };
    if r == -1 {
        -(Errno::last_raw() as isize)
    } else {
        r as isize
    }
}

/// A raw return value as a result: `-4095..=-1` is an errno, the rest a value.
fn result(ret: isize) -> Result<isize, Errno> {
    if (-4095..0).contains(&ret) {
        Err(Errno::from_raw(-ret as i32))
    } else {
        Ok(ret)
    }
}

/// prctl(2) with integer arguments, straight to the kernel.
pub(crate) fn prctl(option: i32, arg2: usize) -> Result<isize, Errno> {
    // SAFETY: every prctl option the harness uses takes integer arguments, or (seccomp) a
    // pointer its caller keeps valid, passed as `arg3` through [`prctl3`].
    result(unsafe { syscall5(libc::SYS_prctl, option as usize, arg2, 0, 0, 0) })
}

/// prctl(2) with a third argument (`PR_SET_SECCOMP` takes a pointer to the filter there).
///
/// # Safety
/// `arg3` must be what `option` expects: for `PR_SET_SECCOMP`, a pointer to a `sock_fprog`
/// that lives until the call returns.
pub(crate) unsafe fn prctl3(option: i32, arg2: usize, arg3: usize) -> Result<isize, Errno> {
    // SAFETY: the caller vouches for `arg3`.
    result(unsafe { syscall5(libc::SYS_prctl, option as usize, arg2, arg3, 0, 0) })
}

/// Makes this process a child subreaper (`PR_SET_CHILD_SUBREAPER`) and checks that it is one.
pub(crate) fn become_subreaper() -> Result<(), Errno> {
    prctl(libc::PR_SET_CHILD_SUBREAPER, 1)?;
    let mut flag: libc::c_int = 0;
    // SAFETY: PR_GET_CHILD_SUBREAPER writes one int through the pointer, which lives here.
    unsafe {
        prctl3(
            libc::PR_GET_CHILD_SUBREAPER,
            &mut flag as *mut libc::c_int as usize,
            0,
        )?
    };
    if flag == 1 { Ok(()) } else { Err(Errno::EPERM) }
}

/// Sets this process's "dumpable" flag (`PR_SET_DUMPABLE`) and checks it. A process that is
/// not dumpable cannot have its `/proc/<pid>/fd`, `mem` or `environ` opened by other
/// processes of its user unless they hold `CAP_SYS_PTRACE` (ptrace(2), "Ptrace access mode
/// checking").
pub(crate) fn set_dumpable(dumpable: bool) -> Result<(), Errno> {
    prctl(libc::PR_SET_DUMPABLE, usize::from(dumpable))?;
    match prctl(libc::PR_GET_DUMPABLE, 0)? {
        n if (n == 1) == dumpable => Ok(()),
        _ => Err(Errno::EPERM),
    }
}

/// Fills `buf` from the kernel's random source (getrandom(2)).
pub(crate) fn random(buf: &mut [u8]) -> Result<(), Errno> {
    let mut filled = 0;
    while filled < buf.len() {
        let rest = &mut buf[filled..];
        // SAFETY: getrandom writes at most `rest.len()` bytes into `rest`, which lives here.
        let got = unsafe {
            syscall5(
                libc::SYS_getrandom,
                rest.as_mut_ptr() as usize,
                rest.len(),
                0,
                0,
                0,
            )
        };
        match result(got) {
            Ok(n) => filled += n as usize,
            Err(Errno::EINTR) => continue,
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// The highest capability number this kernel knows (`/proc/sys/kernel/cap_last_cap`).
fn cap_last_cap() -> u32 {
    std::fs::read_to_string("/proc/sys/kernel/cap_last_cap")
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(63)
}

/// Gives up every capability for good (capabilities(7)): removes each one from the bounding
/// set (`PR_CAPBSET_DROP`, so that no program exec'd later, as root or set-uid, gets any
/// back), clears the ambient set, and empties the effective, permitted and inheritable sets
/// (capset(2)). Where the bounding set may not be changed (no `CAP_SETPCAP`, as for a normal
/// user outside a user namespace) it is left alone: such a user gains nothing by exec.
pub(crate) fn drop_capabilities() -> Result<(), Errno> {
    let mut bounding = Ok(());
    for cap in 0..=cap_last_cap() {
        // One already out of the set needs no drop (which needs CAP_SETPCAP even then: a test
        // process started from a body that gave everything up has nothing left to drop).
        if prctl(libc::PR_CAPBSET_READ, cap as usize) == Ok(0) {
            continue;
        }
        match prctl(libc::PR_CAPBSET_DROP, cap as usize) {
            Ok(_) | Err(Errno::EINVAL) => {}
            Err(e) => bounding = Err(e),
        }
    }
    prctl(
        libc::PR_CAP_AMBIENT,
        libc::PR_CAP_AMBIENT_CLEAR_ALL as usize,
    )
    .ok();
    #[repr(C)]
    struct Header {
        version: u32,
        pid: i32,
    }
    #[repr(C)]
    #[derive(Clone, Copy)]
    struct Data {
        effective: u32,
        permitted: u32,
        inheritable: u32,
    }
    const LINUX_CAPABILITY_VERSION_3: u32 = 0x2008_0522;
    let header = Header {
        version: LINUX_CAPABILITY_VERSION_3,
        pid: 0,
    };
    let data = [Data {
        effective: 0,
        permitted: 0,
        inheritable: 0,
    }; 2];
    // SAFETY: capset(2) reads a version-3 header and two data structs, both alive here.
    result(unsafe {
        syscall5(
            libc::SYS_capset,
            &header as *const Header as usize,
            data.as_ptr() as usize,
            0,
            0,
            0,
        )
    })?;
    // A root process whose bounding set is full would get every capability back from exec.
    if nix::unistd::geteuid().is_root() {
        bounding?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn raw_calls_reach_the_kernel() {
        assert_eq!(result(-(libc::ENOENT as isize)), Err(Errno::ENOENT));
        assert_eq!(result(7), Ok(7));
        // getpid through the raw entry agrees with libc's.
        // SAFETY: getpid takes no arguments.
        let pid = unsafe { syscall5(libc::SYS_getpid, 0, 0, 0, 0, 0) };
        assert_eq!(pid as i32, std::process::id() as i32);
        assert_eq!(prctl(-1, 0), Err(Errno::EINVAL));
        let mut a = [0u8; 32];
        let mut b = [0u8; 32];
        random(&mut a).unwrap();
        random(&mut b).unwrap();
        assert_ne!(a, b);
    }
}
