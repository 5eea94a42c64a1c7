//! Tests of the processes chapter (进程): each exercise's tests run isolated, in a fresh
//! process tree, and check the kernel's own evidence (`/proc`, `waitpid` statuses).
#[cfg(not(oskata_omit = "processes/clone_vm"))]
mod clone_vm;
#[cfg(not(oskata_omit = "processes/cow"))]
mod cow;
#[cfg(not(oskata_omit = "processes/daemonize"))]
mod daemonize;
#[cfg(not(oskata_omit = "processes/double_fork"))]
mod double_fork;
#[cfg(not(oskata_omit = "processes/exec"))]
mod exec;
#[cfg(not(oskata_omit = "processes/exit_flush"))]
mod exit_flush;
#[cfg(not(oskata_omit = "processes/fork_basics"))]
mod fork_basics;
#[cfg(not(oskata_omit = "processes/fork_in_threads"))]
mod fork_in_threads;
#[cfg(not(oskata_omit = "processes/orphans"))]
mod orphans;
#[cfg(not(oskata_omit = "processes/process_groups"))]
mod process_groups;
#[cfg(not(oskata_omit = "processes/reap_all"))]
mod reap_all;
#[cfg(not(oskata_omit = "processes/sigchld_reaper"))]
mod sigchld_reaper;
#[cfg(not(oskata_omit = "processes/wait_status"))]
mod wait_status;
#[cfg(not(oskata_omit = "processes/waitpid_selectors"))]
mod waitpid_selectors;
#[cfg(not(oskata_omit = "processes/zombies"))]
mod zombies;
