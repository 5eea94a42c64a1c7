//! Mistake: the thread's id is taken from std's handle and returned, but nobody ever calls
//! pthread_detach: the thread stays joinable, and its stack and result wait for a join that
//! never comes.
use std::io;
use std::os::unix::thread::JoinHandleExt;
use std::thread;

/// Starts a thread that runs `work`, detaches it, and returns its `pthread_t` at once; see
/// the exercise for the contract.
pub fn spawn_detached<F>(work: F) -> io::Result<libc::pthread_t>
where
    F: FnOnce() + Send + 'static,
{
    // The mistake: into_pthread_t takes the id over from the handle (which would have
    // detached it when dropped), and then neither pthread_detach nor pthread_join is called.
    let thread = thread::Builder::new().spawn(work)?.into_pthread_t();
    Ok(thread)
}
