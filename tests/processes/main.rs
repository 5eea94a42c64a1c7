//! Tests of the processes chapter (进程): each exercise's tests run isolated, in a fresh
//! process tree, and check the kernel's own evidence (`/proc`, `waitpid` statuses).
#[cfg(not(oskata_omit = "processes/fork_basics"))]
mod fork_basics;
#[cfg(not(oskata_omit = "processes/reap_all"))]
mod reap_all;
