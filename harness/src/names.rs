//! Names and keys for the IPC objects a test makes, unique among the tests that run at once.
//!
//! In its private IPC namespace, with its own `/dev/shm` and mqueue mounts, a test could use
//! any name. Where the machine refuses namespaces (or `OSKATA_NO_NAMESPACES` is set) the tests
//! running at the same time share the machine's System V objects, POSIX queues and shared
//! memory, so two tests that both chose `/queue` or key 1234 would meet. Each name and key
//! made here carries the pid of the test's body process, which no other running test has, and
//! a tag of the caller's choosing, so one test can make several.
use nix::unistd::getpid;

use crate::body::body_pid;

/// The pid that makes this test's names unique: its body's, or the caller's outside a body.
fn test_pid() -> u32 {
    body_pid().unwrap_or_else(getpid).as_raw() as u32
}

/// A POSIX IPC name for `mq_open(3)`, `shm_open(3)` or `sem_open(3)`: a slash, then no other
/// slash, `/oskata-<tag>-<pid>`. `tag` must hold no slash and be short (a name is at most
/// NAME_MAX = 255 bytes).
pub fn ipc_name(tag: &str) -> String {
    assert!(
        !tag.contains('/') && tag.len() <= 200,
        "an IPC name's tag holds no slash and is short: {tag:?}"
    );
    format!("/oskata-{tag}-{}", test_pid())
}

/// A System V IPC key for `msgget(2)`, `shmget(2)` or `semget(2)`, one per `tag` in a test:
/// bit 30 set, the body's pid (22 bits, the kernel's largest pid_max) in bits 8-29, `tag` in
/// bits 0-7. Never `IPC_PRIVATE` (0), never negative.
pub fn ipc_key(tag: u8) -> libc::key_t {
    let pid = test_pid() & 0x3f_ffff;
    (0x4000_0000 | (pid << 8) | u32::from(tag)) as libc::key_t
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_carry_the_pid_and_keys_differ_by_tag() {
        let pid = getpid().as_raw();
        assert_eq!(ipc_name("queue"), format!("/oskata-queue-{pid}"));
        assert_ne!(ipc_key(1), ipc_key(2));
        assert!(ipc_key(0) > 0);
        assert_eq!((ipc_key(7) >> 8) & 0x3f_ffff, pid & 0x3f_ffff);
    }
}
