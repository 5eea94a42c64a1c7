//! # Detached threads (分离线程) — reference solution
//!
//! std creates the joinable pthread; `into_pthread_t` takes its id over from the handle, and
//! `pthread_detach` turns it detached before the id goes back to the caller.
use std::io;
use std::os::unix::thread::JoinHandleExt;
use std::thread;

/// Starts a thread that runs `work`, detaches it, and returns its `pthread_t` at once; see
/// the exercise for the contract.
pub fn spawn_detached<F>(work: F) -> io::Result<libc::pthread_t>
where
    F: FnOnce() + Send + 'static,
{
    // The handle gives up its pthread_t: from here on joining or detaching is ours to do.
    let thread = thread::Builder::new().spawn(work)?.into_pthread_t();
    // SAFETY: `thread` names a thread that has been neither joined nor detached yet, and the
    // handle that could have done either was consumed above.
    let rc = unsafe { libc::pthread_detach(thread) };
    if rc != 0 {
        return Err(io::Error::from_raw_os_error(rc));
    }
    Ok(thread)
}
