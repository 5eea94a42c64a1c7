//! # Detached threads (分离线程)
//!
//! A new thread is *joinable* (可连接) by default: when it ends, the thread library keeps its
//! stack and its return value until some other thread collects them with `pthread_join(3)`,
//! much as a finished child process stays a zombie until its parent calls `waitpid`. A
//! thread nobody will ever wait for should be *detached* (分离) instead, with
//! `pthread_detach(3)` from any thread (the creator with the thread's id, or the thread
//! itself with `pthread_self()`), or created detached (`pthread_attr_setdetachstate(3)` with
//! `PTHREAD_CREATE_DETACHED`). A detached thread frees its own resources as soon as it ends,
//! and nobody can join it any more: `pthread_join` on a detached thread that is still running
//! fails at once with `EINVAL`. (On one that has already ended it is undefined behaviour:
//! its `pthread_t` may already name another thread.)
//!
//! Here you start a thread that runs some work, detach it, and hand its `pthread_t` back
//! while the work goes on, without waiting for it. The tests ask the thread library, not
//! you, what the thread is: `pthread_getattr_np(3)` reports its detach state
//! (`pthread_attr_getdetachstate`), and `pthread_join` must refuse it. `/proc/self/task` could
//! not tell (a finished joinable thread leaves it too: the kernel's thread is gone, only the
//! library's bookkeeping waits for the join).
//!
//! In Rust, `std::thread::spawn` creates a joinable pthread and dropping its `JoinHandle`
//! detaches it; `std::os::unix::thread::JoinHandleExt` gives the `pthread_t`
//! (`as_pthread_t`), or takes it over from the handle (`into_pthread_t`), after which
//! detaching or joining is yours to do with `libc::pthread_detach`. Or call
//! `libc::pthread_create` yourself with a detached attribute.
//!
//! Read: `man 3 pthread_detach`, `man 3 pthread_join` (EINVAL), `man 3 pthread_create`
//! ("either joinable or detached"), `man 3 pthread_attr_setdetachstate`,
//! `man 3 pthread_getattr_np`.
use std::io;

/// Starts a thread that runs `work`, detaches it, and returns its `pthread_t` at once.
///
/// The thread is detached before `work` starts on it (the thread library then reports it
/// detached and `pthread_join` on it fails with `EINVAL`): detach it right after creating it,
/// or create it detached. The call does not wait for `work` to finish, and nobody joins the
/// thread afterwards: it ends and frees itself when `work` returns. The `pthread_t` returned is the one the new thread
/// sees as its own `pthread_self()`. An error from creating or detaching the thread is
/// returned as an `io::Error`.
pub fn spawn_detached<F>(_work: F) -> io::Result<libc::pthread_t>
where
    F: FnOnce() + Send + 'static,
{
    todo!()
}
