//! Tests for the inter-process communication chapter (进程间通信): pipes, FIFOs, System V and
//! POSIX message queues, shared memory and semaphores, socket pairs.
//!
//! One module per exercise; `cfg(oskata_omit = "<id>")` (set by the grader through
//! `OSKATA_OMIT`) leaves out the tests of an exercise whose module is left out of the build.
#[cfg(not(oskata_omit = "ipc/pipe_direction"))]
mod pipe_direction;
