//! # POSIX threads through the C API (POSIX 线程：创建与等待) — reference solution
//!
//! Each thread gets a job of its own on the heap (`Box::into_raw`), takes it back in its start
//! routine, and returns its answer as another heap pointer, which the caller gets from
//! `pthread_join` and frees.
use std::ffi::c_void;
use std::io;
use std::ptr;

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

/// One thread's argument: its own, on the heap, so nothing the creator does later changes it.
struct Job {
    input: u64,
    arrive: extern "C" fn(),
}

/// The start routine: arrive, read the job, return the answer as a heap pointer.
extern "C" fn square(arg: *mut c_void) -> *mut c_void {
    // SAFETY: `arg` is the Box<Job> made for this thread alone; this thread owns it now.
    let job = unsafe { Box::from_raw(arg.cast::<Job>()) };
    (job.arrive)();
    let answer = Answer {
        input: job.input,
        square: job.input.wrapping_mul(job.input),
        // SAFETY: pthread_self has no preconditions.
        thread: unsafe { libc::pthread_self() },
    };
    // Returning is pthread_exit(value): the pointer is what pthread_join hands the caller.
    Box::into_raw(Box::new(answer)).cast()
}

/// Joins `thread` and takes back its answer.
fn join(thread: libc::pthread_t) -> io::Result<Answer> {
    let mut result: *mut c_void = ptr::null_mut();
    // SAFETY: `thread` is joinable and is joined once; `result` is writable.
    let rc = unsafe { libc::pthread_join(thread, &mut result) };
    if rc != 0 {
        return Err(io::Error::from_raw_os_error(rc));
    }
    // SAFETY: every thread made by square_in_pthreads returns a Box<Answer> pointer.
    Ok(*unsafe { Box::from_raw(result.cast::<Answer>()) })
}

/// Squares each input on a pthread of its own and collects the answers through
/// `pthread_join`; see the exercise for the contract.
pub fn square_in_pthreads(inputs: &[u64], arrive: extern "C" fn()) -> io::Result<Vec<Answer>> {
    let mut threads = Vec::with_capacity(inputs.len());
    let mut failed = None;
    for &input in inputs {
        let job = Box::into_raw(Box::new(Job { input, arrive }));
        let mut thread: libc::pthread_t = 0;
        // SAFETY: `square` has the start routine's signature, and `job` is a valid heap
        // pointer that the new thread takes over.
        let rc = unsafe { libc::pthread_create(&mut thread, ptr::null(), square, job.cast()) };
        if rc != 0 {
            // No thread took the job: it is still ours to free.
            // SAFETY: `job` came from Box::into_raw and nobody else has it.
            drop(unsafe { Box::from_raw(job) });
            failed = Some(io::Error::from_raw_os_error(rc));
            break;
        }
        threads.push(thread);
    }
    // Join every thread that was made, even after a failure.
    let answers: Vec<io::Result<Answer>> = threads.into_iter().map(join).collect();
    if let Some(e) = failed {
        return Err(e);
    }
    answers.into_iter().collect()
}
