//! Mistake: std's thread Builder is asked for the stack size, and the guard size is dropped
//! on the floor: std has no setting for it, so the thread gets glibc's default guard of one
//! page.
use std::io;
use std::thread;

/// Runs `work` on a new thread with the given stack and guard sizes, joins it and returns its
/// value; see the exercise for the contract.
pub fn run_with_stack<T, F>(stack_size: usize, _guard_size: usize, work: F) -> io::Result<T>
where
    F: FnOnce() -> T + Send,
    T: Send,
{
    if stack_size < libc::PTHREAD_STACK_MIN {
        return Err(io::Error::from_raw_os_error(libc::EINVAL));
    }
    thread::scope(|s| {
        // The mistake: only the stack size is passed on; the guard size is ignored.
        let handle = thread::Builder::new()
            .stack_size(stack_size)
            .spawn_scoped(s, work)?;
        handle
            .join()
            .map_err(|_| io::Error::other("the work panicked"))
    })
}
