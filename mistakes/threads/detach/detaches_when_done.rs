//! Mistake: the thread detaches itself only after its work is done, so all the while the work
//! runs it is still joinable.
use std::io;
use std::os::unix::thread::JoinHandleExt;
use std::thread;

/// Starts a thread that runs `work`, detaches it, and returns its `pthread_t` at once; see
/// the exercise for the contract.
pub fn spawn_detached<F>(work: F) -> io::Result<libc::pthread_t>
where
    F: FnOnce() + Send + 'static,
{
    let thread = thread::Builder::new()
        .spawn(move || {
            work();
            // The mistake: detach at the end, as a last act, instead of before the work.
            // SAFETY: pthread_self() names this thread, which nobody else joins or detaches.
            unsafe { libc::pthread_detach(libc::pthread_self()) };
        })?
        .into_pthread_t();
    Ok(thread)
}
