//! Mistake: the attributes object is prepared with both sizes, but pthread_create is given a
//! null pointer instead of it, so the thread gets the defaults.
use std::any::Any;
use std::ffi::c_void;
use std::io;
use std::mem::MaybeUninit;
use std::panic::{self, AssertUnwindSafe};
use std::ptr;

/// What the new thread reads (the closure) and writes (its outcome), on the caller's stack.
struct Job<F, T> {
    work: Option<F>,
    outcome: Option<Result<T, Box<dyn Any + Send>>>,
}

/// The start routine: runs the job's closure and stores its outcome.
extern "C" fn trampoline<F, T>(arg: *mut c_void) -> *mut c_void
where
    F: FnOnce() -> T,
{
    // SAFETY: `arg` is the `Job<F, T>` that run_with_stack keeps alive until the join.
    let job = unsafe { &mut *arg.cast::<Job<F, T>>() };
    if let Some(work) = job.work.take() {
        job.outcome = Some(panic::catch_unwind(AssertUnwindSafe(work)));
    }
    ptr::null_mut()
}

/// Turns a pthread function's return value into a Result.
fn check(rc: libc::c_int) -> io::Result<()> {
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::from_raw_os_error(rc))
    }
}

/// Runs `work` on a new thread with the given stack and guard sizes, joins it and returns its
/// value; see the exercise for the contract.
pub fn run_with_stack<T, F>(stack_size: usize, guard_size: usize, work: F) -> io::Result<T>
where
    F: FnOnce() -> T + Send,
    T: Send,
{
    let mut attr = MaybeUninit::<libc::pthread_attr_t>::uninit();
    // SAFETY: pthread_attr_init initialises the storage it is given.
    check(unsafe { libc::pthread_attr_init(attr.as_mut_ptr()) })?;
    let attr = attr.as_mut_ptr();
    let mut job = Job::<F, T> {
        work: Some(work),
        outcome: None,
    };
    let created = (|| -> io::Result<libc::pthread_t> {
        // SAFETY: `attr` was initialised above.
        check(unsafe { libc::pthread_attr_setstacksize(attr, stack_size) })?;
        // SAFETY: as above.
        check(unsafe { libc::pthread_attr_setguardsize(attr, guard_size) })?;
        let mut thread: libc::pthread_t = 0;
        // SAFETY: `job` outlives the thread, which is joined below.
        check(unsafe {
            libc::pthread_create(
                &mut thread,
                // The mistake: null (the defaults) instead of the attributes just set.
                ptr::null(),
                trampoline::<F, T>,
                (&raw mut job).cast::<c_void>(),
            )
        })?;
        Ok(thread)
    })();
    // SAFETY: `attr` was initialised by pthread_attr_init and is destroyed once.
    unsafe { libc::pthread_attr_destroy(attr) };
    let thread = created?;
    // SAFETY: `thread` is joinable and joined once.
    check(unsafe { libc::pthread_join(thread, ptr::null_mut()) })?;
    match job.outcome {
        Some(Ok(value)) => Ok(value),
        Some(Err(p)) => panic::resume_unwind(p),
        None => Err(io::Error::other("the thread did not run the work")),
    }
}
