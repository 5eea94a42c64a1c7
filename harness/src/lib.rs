//! # oskata-harness
//!
//! Runs a test body in a fresh, supervised process tree and reads the kernel's evidence.
//!
//! A test that forks, waits, handles signals or changes process-wide state cannot run inside
//! the multi-threaded `cargo test` process: a fork there copies one thread of many (with
//! whatever locks the others held), a `waitpid(-1)` steals another test's children, and a
//! signal disposition changes for everyone. So [`isolated`] re-executes the test binary for
//! that one test and runs the body there, under a supervisor:
//!
//! ```text
//! cargo test (P) ── re-exec ──> supervisor (C) ── fork ──> body (B) ── student's children...
//!   waits for the report,         cgroups, deadline,        subreaper, own session,
//!   kills what a killed C left    output, stop + kill +     IPC and mount namespaces, pids
//!                                 reap the tree             and memory caps, leak check
//! ```
//!
//! ```no_run
//! use oskata_harness::{isolated, procfs, student};
//! # fn make_zombie() -> nix::unistd::Pid { todo!() }
//! #[test]
//! fn child_becomes_a_zombie() {
//!     isolated(|| {
//!         let pid = student(make_zombie);
//!         assert_eq!(procfs::state(pid), Some('Z'));
//!         nix::sys::wait::waitpid(pid, None).unwrap();
//!     });
//! }
//! ```
//!
//! Call student code through [`student`]: a forked child that returns from it into test code
//! is stopped at once and the test fails with "a child process returned into the test
//! instead of exiting".
//!
//! See ARCHITECTURE.md for the whole design and the reasons behind it.
pub mod allocator;
pub mod births;
mod body;
pub mod cases;
mod cgroup;
pub mod demo;
pub mod evidence;
mod fdtable;
pub mod forks;
mod guard;
mod isolate;
mod leftovers;
mod mounts;
mod names;
mod options;
pub mod poll;
mod posix_ipc;
pub mod procfs;
mod raw;
mod report;
mod scratch;
mod secret;
pub mod stacks;
pub mod stuck;
mod supervisor;
pub mod sysvipc;
mod threads;
pub mod waiters;

pub use body::{body_pid, scratch_dir, student};
pub use isolate::isolated;
pub use names::{ipc_key, ipc_name};
pub use options::{Isolation, scaled};
pub use oskata_protocol::{VERDICT_TAG, Verdict};
pub use report::Report;

#[cfg(test)]
mod tests {
    /// The three stages depend in a line, isolate (P) -> supervisor (C) -> body (B), all of
    /// them on options: no module imports one above it (a tripwire on the sources, their unit
    /// tests left out, which may run a whole isolated test).
    #[test]
    fn the_stages_depend_in_a_line() {
        let files = [
            (
                "options.rs",
                include_str!("options.rs"),
                &["isolate", "supervisor", "body"][..],
            ),
            (
                "body.rs",
                include_str!("body.rs"),
                &["isolate", "supervisor"][..],
            ),
            (
                "supervisor.rs",
                include_str!("supervisor.rs"),
                &["isolate"][..],
            ),
        ];
        let names = |line: &str, path: &str| {
            line.match_indices(path).any(|(at, _)| {
                !line[at + path.len()..].starts_with(|c: char| c.is_alphanumeric() || c == '_')
            })
        };
        for (file, source, above) in files {
            let code = source.split("\n#[cfg(test)]").next().unwrap_or_default();
            for line in code.lines().filter(|l| !l.trim_start().starts_with("//")) {
                for stage in above {
                    assert!(
                        !names(line, &format!("crate::{stage}"))
                            && !names(line, &format!("super::{stage}")),
                        "{file} imports {stage}, a stage above it: {line}"
                    );
                }
            }
        }
    }
}
