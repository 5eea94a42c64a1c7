//! Mistake: one job variable for every thread. The loop sets its input and passes its address
//! to pthread_create, then changes it for the next thread; a thread that reads its argument
//! after that sees another thread's input.
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

/// One thread's argument.
struct Job {
    input: u64,
    arrive: extern "C" fn(),
}

/// The start routine: arrive, read the job, return the answer as a heap pointer.
extern "C" fn square(arg: *mut c_void) -> *mut c_void {
    let job = arg.cast::<Job>();
    // SAFETY: `job` points at the caller's variable, alive until every thread is joined.
    (unsafe { (*job).arrive })();
    // SAFETY: as above; the value there may have changed since pthread_create.
    let input = unsafe { (*job).input };
    let answer = Answer {
        input,
        square: input.wrapping_mul(input),
        // SAFETY: pthread_self has no preconditions.
        thread: unsafe { libc::pthread_self() },
    };
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
    // SAFETY: every thread made here returns a Box<Answer> pointer.
    Ok(*unsafe { Box::from_raw(result.cast::<Answer>()) })
}

/// Squares each input on a pthread of its own and collects the answers through
/// `pthread_join`; see the exercise for the contract.
pub fn square_in_pthreads(inputs: &[u64], arrive: extern "C" fn()) -> io::Result<Vec<Answer>> {
    let mut threads = Vec::with_capacity(inputs.len());
    let mut failed = None;
    // The mistake: one variable, its address given to every thread, changed on every round.
    let mut job = Job { input: 0, arrive };
    for &input in inputs {
        job.input = input;
        let mut thread: libc::pthread_t = 0;
        // SAFETY: `job` lives until every thread is joined below.
        let rc = unsafe {
            libc::pthread_create(&mut thread, ptr::null(), square, (&raw mut job).cast())
        };
        if rc != 0 {
            failed = Some(io::Error::from_raw_os_error(rc));
            break;
        }
        threads.push(thread);
    }
    let answers: Vec<io::Result<Answer>> = threads.into_iter().map(join).collect();
    if let Some(e) = failed {
        return Err(e);
    }
    answers.into_iter().collect()
}
