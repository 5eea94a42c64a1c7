//! # Thread attributes: stack size and guard size (线程属性：栈大小与警戒区)
//!
//! `pthread_create(3)` takes a *thread attributes object* (线程属性对象), a `pthread_attr_t`,
//! that says how the new thread is to be made; a null pointer means the defaults. You prepare
//! one with `pthread_attr_init(3)`, set what you want on it, pass its address to
//! `pthread_create`, and free it with `pthread_attr_destroy(3)` (the thread keeps no link to
//! it). Among its fields:
//!
//! - the **stack size** (栈大小), `pthread_attr_setstacksize(3)`: how much memory the thread
//!   library maps for the thread's stack. glibc's default is the `RLIMIT_STACK` soft limit
//!   (often 8 MiB); the least it accepts is `PTHREAD_STACK_MIN` (EINVAL below it);
//! - the **guard size** (警戒区大小), `pthread_attr_setguardsize(3)`: an inaccessible region
//!   (`PROT_NONE`) just below the stack, so that a thread overflowing its stack faults
//!   (SIGSEGV) instead of silently writing over whatever lies below. Rounded up to whole pages;
//!   glibc's default is one page, and 0 means no guard at all.
//!
//! The tests check what the thread library and the kernel say about the thread you create:
//! `pthread_getattr_np(3)`, called on the running thread, reports the attributes it really
//! has (`pthread_attr_getstack`, `pthread_attr_getguardsize`), and `/proc/self/maps`
//! (proc(5)) shows the stack mapping and the `---p` guard mapping right below it, made with
//! mmap(2) and mprotect(2).
//!
//! std's `thread::Builder::stack_size` sets only the stack size, so here you call
//! `libc::pthread_create` yourself, with an `extern "C"` start routine: pass it a pointer to a
//! struct on your own stack holding the closure and a slot for its result (the thread is
//! joined before that struct goes away), run the closure there, and join the thread with
//! `pthread_join`. Every libc call returns its error number instead of setting errno:
//! `io::Error::from_raw_os_error` makes it an error.
//!
//! Read: `man 3 pthread_attr_init`, `man 3 pthread_attr_setstacksize`,
//! `man 3 pthread_attr_setguardsize` (NOTES: how the guard is placed and rounded),
//! `man 3 pthread_getattr_np`, `man 3 pthread_create`.
use std::io;

/// Runs `work` on a new thread created with a stack of `stack_size` bytes and a guard region
/// of `guard_size` bytes, joins it, and returns what `work` returned.
///
/// Both sizes are set on an attributes object passed to `pthread_create`, so that the thread
/// library reports at least the stack and guard asked for (`pthread_getattr_np` on the new
/// thread) and the kernel shows them in the thread's mappings. `stack_size` is a multiple of
/// the page size and at least `PTHREAD_STACK_MIN`; `guard_size` may be 0 (no guard). The
/// attributes object is destroyed before returning, and the thread has been joined: when
/// `run_with_stack` returns, no thread it started is left. An error from any of the pthread
/// calls (such as EINVAL for a stack below the minimum) is returned as an `io::Error`, and
/// then `work` does not run.
pub fn run_with_stack<T, F>(_stack_size: usize, _guard_size: usize, _work: F) -> io::Result<T>
where
    F: FnOnce() -> T + Send,
    T: Send,
{
    todo!()
}
