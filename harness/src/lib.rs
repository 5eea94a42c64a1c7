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
//!   waits for the report          deadline, output,         subreaper, own session,
//!                                 kill + reap the tree      IPC namespace, pids cap, leak check
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
mod body;
pub mod cases;
mod cgroup;
pub mod evidence;
mod guard;
mod isolate;
pub mod poll;
pub mod procfs;
mod report;
mod supervisor;
pub mod sysvipc;

pub use body::{body_pid, scratch_dir, student};
pub use isolate::{Isolation, isolated, scaled};
pub use oskata_protocol::{VERDICT_TAG, Verdict};
pub use report::Report;
