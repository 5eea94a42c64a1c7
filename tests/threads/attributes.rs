//! threads/attributes: the thread `run_with_stack` creates has at least the stack and guard it
//! was asked for, as the thread library reports them (`pthread_getattr_np` on that thread)
//! and as the kernel maps them (`/proc/self/maps`: the stack mapping, and the `---p` guard
//! mapping right below it).
//!
//! The contract, clause by clause, and the test that checks each:
//! - `work` runs on a new thread, not the caller's, and its value comes back
//!   (`the_thread_has_the_stack_and_guard_asked_for`);
//! - the thread library reports a stack of at least `stack_size` and a guard of at least
//!   `guard_size` (`the_thread_has_the_stack_and_guard_asked_for`, over sizes where the
//!   defaults fall short of the request in stack or guard);
//! - the kernel's mappings agree: the mapping holding the thread's stack is at least
//!   `stack_size` long and, for a guard, the mapping right below it is inaccessible and at
//!   least `guard_size` long (the same test);
//! - the thread was joined: no thread is left when the call returns (the same test, and the
//!   harness's check of leftover threads);
//! - a stack below `PTHREAD_STACK_MIN` is an error and `work` does not run
//!   (`a_stack_below_the_minimum_is_an_error`).

// The exercise under test: your stub (by default), the reference solution (`--features
// solutions`), or a shipped mistake that `cargo grade --mistakes` copies into target/.
#[cfg(not(any(feature = "solutions", feature = "mistake")))]
#[path = "../../exercises/threads/attributes.rs"]
#[allow(dead_code)] // a stub does not use all of its API yet
mod attributes;
#[cfg(all(feature = "solutions", not(feature = "mistake")))]
#[path = "../../solutions/threads/attributes.rs"]
mod attributes;
#[cfg(feature = "mistake")]
#[path = "../../target/oskata-mistake/threads/attributes.rs"]
#[rustfmt::skip] // the copy exists only while the proof runs
mod attributes;
use attributes::*;

use std::hint::black_box;
use std::time::Duration;

use nix::unistd::{getpid, gettid};
use oskata_harness::procfs::{self, Mapping};
use oskata_harness::{isolated, poll, student};
use rstest::rstest;

const KIB: usize = 1024;
const MIB: usize = 1024 * KIB;

/// What the work saw from inside the new thread.
#[derive(Debug)]
struct Seen {
    tid: i32,
    /// `pthread_getattr_np` on the thread itself: (stack address, stack size, guard size).
    attr: Result<(usize, usize, usize), i32>,
    /// The address of a local variable of the work, on the thread's stack.
    local: u64,
    /// The process's mappings, read while the thread runs.
    maps: Vec<Mapping>,
}

/// Runs on the new thread: asks the thread library and the kernel about it.
fn look() -> Seen {
    let local = black_box(0u8);
    let local = &raw const local as u64;
    // SAFETY: an all-zero pthread_attr_t is only storage; pthread_getattr_np fills it.
    let mut attr: libc::pthread_attr_t = unsafe { std::mem::zeroed() };
    // SAFETY: pthread_self names the running thread, `attr` is writable.
    let rc = unsafe { libc::pthread_getattr_np(libc::pthread_self(), &mut attr) };
    let attr = if rc != 0 {
        Err(rc)
    } else {
        let (mut addr, mut size, mut guard) = (std::ptr::null_mut(), 0, 0);
        // SAFETY: `attr` was initialised by pthread_getattr_np; the out pointers are valid.
        let rc = unsafe {
            libc::pthread_attr_getstack(&attr, &mut addr, &mut size)
                | libc::pthread_attr_getguardsize(&attr, &mut guard)
        };
        // SAFETY: initialised above, destroyed once.
        unsafe { libc::pthread_attr_destroy(&mut attr) };
        if rc != 0 {
            Err(rc)
        } else {
            Ok((addr as usize, size, guard))
        }
    };
    Seen {
        tid: gettid().as_raw(),
        attr,
        local,
        maps: procfs::smaps(getpid()).unwrap_or_default(),
    }
}

fn page() -> usize {
    nix::unistd::sysconf(nix::unistd::SysconfVar::PAGE_SIZE)
        .ok()
        .flatten()
        .map_or(4096, |p| p as usize)
}

/// Each case asks for more than glibc's defaults (a stack of `RLIMIT_STACK`, 8 MiB here, and a
/// guard of one page) in the stack, the guard, or both, so that a thread made with the
/// defaults falls short somewhere.
#[rstest]
#[case(64 * KIB, 16 * KIB)]
#[case(256 * KIB, 64 * KIB)]
#[case(MIB, MIB)]
#[case(12 * MIB, 0)]
#[case(16 * MIB, 4 * KIB)]
#[case(10 * MIB, 256 * KIB)]
fn the_thread_has_the_stack_and_guard_asked_for(#[case] stack: usize, #[case] guard: usize) {
    isolated(|| {
        let caller = gettid().as_raw();
        let seen = student(|| run_with_stack(stack, guard, look))
            .unwrap_or_else(|e| panic!("run_with_stack({stack}, {guard}, ..) failed: {e}"));
        assert_ne!(
            seen.tid, caller,
            "the work ran on the caller's own thread (tid {caller}): create a new thread with pthread_create"
        );
        let (addr, got_stack, got_guard) = seen.attr.unwrap_or_else(|rc| {
            panic!("pthread_getattr_np on the new thread failed with error {rc}")
        });
        assert!(
            got_stack >= stack,
            "asked for a stack of {stack} bytes, the thread library reports {got_stack} for the new thread \
             (pthread_getattr_np): the stack size did not reach pthread_create. Set it with \
             pthread_attr_setstacksize on the attributes object, and pass that object to pthread_create"
        );
        assert!(
            got_guard >= guard,
            "asked for a guard of {guard} bytes, the thread library reports {got_guard} for the new thread \
             (pthread_getattr_np): the guard size did not reach pthread_create. Set it with \
             pthread_attr_setguardsize on the attributes object you pass to pthread_create (std's Builder \
             cannot set it)"
        );
        let local = seen.local;
        assert!(
            (addr as u64..(addr + got_stack) as u64).contains(&local),
            "the work's local variable at {local:#x} is not inside the stack the thread library reports \
             ({addr:#x}, {got_stack} bytes): the work did not run on the thread that was created"
        );
        let at = seen
            .maps
            .iter()
            .position(|m| m.contains(local))
            .unwrap_or_else(|| {
                panic!("no mapping in /proc/self/maps holds the thread's stack at {local:#x}")
            });
        let mapping = &seen.maps[at];
        let mapped = (mapping.end - mapping.start) as usize;
        assert!(
            mapped >= stack,
            "the kernel maps the thread's stack as {:#x}-{:#x}, {mapped} bytes, less than the {stack} asked for \
             (/proc/self/maps): the stack size did not reach pthread_create",
            mapping.start,
            mapping.end
        );
        if guard > 0 {
            let below = at
                .checked_sub(1)
                .map(|i| &seen.maps[i])
                .filter(|m| m.end == mapping.start && m.perms.starts_with("---"));
            let guarded = below.map_or(0, |m| (m.end - m.start) as usize);
            assert!(
                guarded >= guard.next_multiple_of(page()),
                "asked for a guard of {guard} bytes, the kernel shows {guarded} inaccessible bytes right below the \
                 thread's stack at {:#x} (/proc/self/maps: {below:?}): the guard size did not reach pthread_create",
                mapping.start
            );
        }
        let me = getpid();
        poll::until_seen(
            Duration::from_secs(2),
            &format!(
                "thread {} to be gone: join the thread before returning",
                seen.tid
            ),
            || procfs::threads(me).unwrap_or_default(),
            |tids| !tids.contains(&seen.tid),
        );
    });
}

#[test]
fn a_stack_below_the_minimum_is_an_error() {
    isolated(|| {
        let ran = std::sync::atomic::AtomicBool::new(false);
        let result = student(|| {
            run_with_stack(4 * KIB, 4 * KIB, || {
                ran.store(true, std::sync::atomic::Ordering::SeqCst)
            })
        });
        assert!(
            result.is_err(),
            "a stack of 4096 bytes is below PTHREAD_STACK_MIN ({}), yet run_with_stack returned Ok: return the \
             error pthread_attr_setstacksize gives (EINVAL)",
            libc::PTHREAD_STACK_MIN
        );
        assert!(
            !ran.load(std::sync::atomic::Ordering::SeqCst),
            "the work ran although the thread could not be made as asked"
        );
    });
}
