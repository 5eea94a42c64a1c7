//! A seccomp filter (seccomp(2)) that refuses `kill(-1, sig)` in the test's processes.
//!
//! `kill(-1, sig)` sends `sig` to every process the caller may signal: for root the whole
//! machine, for a student their whole desktop session. A mix-up between `-pgid` and `-1` in a
//! process-group exercise must fail one test, not end the grader and everything else, so the
//! body process installs this filter before the test starts; its children and the programs
//! they exec inherit it. Every other x86_64 system call, and `kill` with any other pid, is
//! untouched; a system call through another architecture's entry (the i386 ABI by `int 0x80`,
//! the x32 ABI by numbers with bit 30 set) is refused with `EPERM`, since the filter could not
//! tell its `kill` from anything else.
//! `PR_SET_NO_NEW_PRIVS`, which an unprivileged filter requires, only stops set-uid programs
//! from gaining privileges, which no test needs.

use crate::raw;

/// Installs the filter; `Err` where the kernel or architecture does not allow it.
pub fn refuse_kill_all() -> std::io::Result<()> {
    if !cfg!(target_arch = "x86_64") {
        return Err(std::io::Error::new(
            std::io::ErrorKind::Unsupported,
            "filter written for x86_64",
        ));
    }
    const AUDIT_ARCH_X86_64: u32 = 0xc000_003e;
    // x32 system calls come through the x86_64 entry with this bit set in their number.
    const X32_SYSCALL_BIT: u32 = 0x4000_0000;
    // Offsets into struct seccomp_data: nr at 0, arch at 4, args[0] at 16 (low word first).
    let stmt = |code: u32, k: u32| libc::sock_filter {
        code: code as u16,
        jt: 0,
        jf: 0,
        k,
    };
    let jump = |code: u32, k: u32, jt: u8, jf: u8| libc::sock_filter {
        code: code as u16,
        jt,
        jf,
        k,
    };
    let load = libc::BPF_LD | libc::BPF_W | libc::BPF_ABS;
    let jeq = libc::BPF_JMP | libc::BPF_JEQ | libc::BPF_K;
    let jge = libc::BPF_JMP | libc::BPF_JGE | libc::BPF_K;
    let ret = libc::BPF_RET | libc::BPF_K;
    let refuse = libc::SECCOMP_RET_ERRNO | libc::EPERM as u32;
    // A system call made through another architecture's entry (`int 0x80`: the i386 numbers,
    // where `kill` is 37) or with an x32 number would pass a filter that only knows the x86_64
    // number of `kill`; no test needs either, so both are refused whole.
    let mut program = [
        stmt(load, 4),                          // 0: A = arch
        jump(jeq, AUDIT_ARCH_X86_64, 1, 0),     // 1: x86_64 goes on at 3
        stmt(ret, refuse),                      // 2: any other entry
        stmt(load, 0),                          // 3: A = nr
        jump(jge, X32_SYSCALL_BIT, 0, 1),       // 4: x32 (or stranger) numbers
        stmt(ret, refuse),                      // 5
        jump(jeq, libc::SYS_kill as u32, 0, 3), // 6: kill goes on at 7, the rest at 10
        stmt(load, 16),                         // 7: A = low word of the pid (a pid_t)
        jump(jeq, u32::MAX, 0, 1),              // 8: -1
        stmt(ret, refuse),                      // 9
        stmt(ret, libc::SECCOMP_RET_ALLOW),     // 10
    ];
    let prog = libc::sock_fprog {
        len: program.len() as u16,
        filter: program.as_mut_ptr(),
    };
    // Straight to the kernel, not through libc's prctl, which student code could replace.
    raw::prctl(libc::PR_SET_NO_NEW_PRIVS, 1).map_err(std::io::Error::from)?;
    // SAFETY: PR_SET_SECCOMP reads the filter through the pointer, which outlives the call.
    unsafe {
        raw::prctl3(
            libc::PR_SET_SECCOMP,
            libc::SECCOMP_MODE_FILTER as usize,
            &prog as *const libc::sock_fprog as usize,
        )
    }
    .map_err(std::io::Error::from)?;
    // And check the effect: the kernel reports a filter as mode 2.
    let status = std::fs::read_to_string("/proc/self/status")?;
    if !status
        .lines()
        .any(|l| l.split_whitespace().eq(["Seccomp:", "2"]))
    {
        return Err(std::io::Error::other(
            "the seccomp filter is not in force (/proc/self/status shows no Seccomp: 2)",
        ));
    }
    Ok(())
}
