//! Where a thread's stack is, from the kernel: the stack pointer in
//! `/proc/<pid>/task/<tid>/syscall`.
//!
//! That file reads `<nr> <six args> <sp> <pc>` while the thread sleeps in a system call,
//! `-1 <sp> <pc>` when it is in user space (meaningful only while it is stopped), and
//! `running` while it is on a CPU. The harness's `procfs::Syscall` keeps the number and the
//! arguments; a test that asks which mapping a thread runs on needs the stack pointer too.
use std::fs;

use nix::unistd::Pid;

/// The stack pointer of thread `tid` of `pid` while it sleeps in a system call; `None` when
/// it is running, in user space, gone, or not ours to read.
pub fn blocked_stack_pointer(pid: Pid, tid: i32) -> Option<u64> {
    let text = fs::read_to_string(format!("/proc/{pid}/task/{tid}/syscall")).ok()?;
    let words: Vec<&str> = text.split_whitespace().collect();
    // A sleeping thread's line has 9 words: number, six arguments, sp, pc.
    if words.len() != 9 || words[0].starts_with('-') {
        return None;
    }
    u64::from_str_radix(words[7].trim_start_matches("0x"), 16).ok()
}
