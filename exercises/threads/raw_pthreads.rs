//! # POSIX threads through the C API (POSIX 线程：创建与等待)
//!
//! Underneath `std::thread` lies the C library's thread API, pthreads (POSIX 线程):
//!
//! ```c
//! int pthread_create(pthread_t *thread, const pthread_attr_t *attr,
//!                    void *(*start_routine)(void *), void *arg);
//! int pthread_join(pthread_t thread, void **retval);
//! void pthread_exit(void *retval);
//! pthread_t pthread_self(void);
//! ```
//!
//! `pthread_create` starts a new thread (创建线程) running `start_routine(arg)` and stores its
//! id in `*thread`. The one argument is an untyped pointer, `void *`: to give a thread more
//! than one value, put them in a struct and pass the struct's address; the routine casts it
//! back. The thread's result travels the same way back: the routine returns a `void *`
//! (returning from the start routine is the same as calling `pthread_exit` with that value),
//! and `pthread_join` (等待线程结束), which waits for that thread to end, much as `waitpid`
//! waits for a child, stores it in `*retval`. `pthread_self` (获得线程 ID) gives the calling
//! thread's own id. Each function returns 0 or an error number (it does not set errno).
//!
//! The classic trap: the argument is an address, and the new thread reads what is there
//! *whenever it gets to run*, maybe long after `pthread_create` returned. Pass the address of
//! a variable that the creating loop changes on its next round (or that goes out of scope),
//! and the thread reads the wrong value. Each thread needs its own argument, alive until that
//! thread has read it: a heap allocation per thread (`Box::into_raw`, taken back in the
//! thread with `Box::from_raw`), or one element each of a vector that outlives the joins.
//!
//! In Rust the start routine is an `extern "C" fn(*mut c_void) -> *mut c_void`. It must not
//! let a panic unwind out of it, and it should return its result rather than call
//! `libc::pthread_exit`: glibc's `pthread_exit` unwinds the thread's stack, and unwinding out
//! of an `extern "C"` function aborts the process.
//!
//! Read: `man 3 pthread_create` (the example at the end), `man 3 pthread_join`,
//! `man 3 pthread_exit`, `man 3 pthread_self`, `man 7 pthreads`.
use std::io;

/// What one thread hands back through `pthread_join`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Answer {
    /// The input the thread read through its argument.
    pub input: u64,
    /// `input * input` (wrapping on overflow).
    pub square: u64,
    /// The thread's own id, from `pthread_self()` in the thread.
    pub thread: libc::pthread_t,
}

/// Squares each of `inputs` on a thread of its own, made with `libc::pthread_create`, and
/// returns the threads' answers, collected with `libc::pthread_join`, in the order of
/// `inputs`.
///
/// Creates one thread per input, all of them before joining any. Each thread's start routine
/// is an `extern "C"` function given, as its `void *` argument, the address of that thread's
/// own job: its input and `arrive`. The thread first calls `arrive()` (the tests hold it there
/// until every thread exists and the caller waits in `pthread_join`), and only then reads its
/// input; it returns a pointer to its [`Answer`] on the heap as its result (the start
/// routine's return value). The caller joins every thread, takes each answer back through
/// `pthread_join`'s result and frees it. When the call returns, every thread has been joined.
/// An error from `pthread_create` or `pthread_join` is returned as an `io::Error`, after the
/// threads already made have been joined.
pub fn square_in_pthreads(_inputs: &[u64], _arrive: extern "C" fn()) -> io::Result<Vec<Answer>> {
    todo!()
}
