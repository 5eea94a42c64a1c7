//! The options of one isolated test ([`Isolation`]) and the settings every stage reads: the
//! environment variables that pass the test between the processes, and the deadlines.
//!
//! A leaf: the three stages (isolate, supervisor, body) all read these, so they live here
//! rather than in any one stage, and this module imports none of them.
use std::time::Duration;

use crate::cgroup::Limits;

/// The variable that tells a re-executed test binary which test to supervise.
pub(crate) const CHILD_ENV: &str = "OSKATA_ISOLATED_TEST";
/// The variable that tells the supervisor which process to watch: when the test process that
/// started it dies, the supervisor cleans up and leaves.
pub(crate) const PARENT_ENV: &str = "OSKATA_ISOLATED_PARENT";
/// The variable that, set to anything, keeps every test out of a private IPC namespace (see
/// [`Isolation::without_namespaces`]).
pub(crate) const NO_NAMESPACES_ENV: &str = "OSKATA_NO_NAMESPACES";
/// The variable that marks every process of one isolated test with a token of the test
/// process's making: the environment is inherited through fork(2) and, unless a program clears
/// it, exec(2), so the test process can find what a killed supervisor left behind (see
/// `isolate.rs`).
pub(crate) const TREE_ENV: &str = "OSKATA_TREE";
/// The variable that stretches (or shrinks) every deadline by a factor.
pub const SCALE_ENV: &str = "OSKATA_DEADLINE_SCALE";
/// The default deadline of a test body.
pub const DEFAULT_DEADLINE: Duration = Duration::from_secs(10);

/// Options for one isolated test; [`isolated`](crate::isolated) uses the defaults.
#[derive(Debug, Clone)]
pub struct Isolation {
    pub(crate) deadline: Duration,
    pub(crate) check_fds: bool,
    pub(crate) namespaces: bool,
    pub(crate) terminal: bool,
    pub(crate) limits: Limits,
}

impl Default for Isolation {
    fn default() -> Self {
        Isolation {
            deadline: DEFAULT_DEADLINE,
            check_fds: false,
            namespaces: true,
            terminal: false,
            limits: Limits::default(),
        }
    }
}

impl Isolation {
    /// The defaults: a 10 s deadline, no fd check.
    pub fn new() -> Self {
        Self::default()
    }

    /// How long the body may run before it is stopped and reported as timed out.
    pub fn deadline(mut self, deadline: Duration) -> Self {
        self.deadline = deadline;
        self
    }

    /// Also fail when the body returns with fds open that it did not have at the start.
    pub fn check_fds(mut self) -> Self {
        self.check_fds = true;
        self
    }

    /// Give the body process a controlling terminal (a new pseudo-terminal) before the body
    /// runs. CI has no terminal at all, so without this a test could not tell a daemon that
    /// detached from its terminal from one that never had one.
    pub fn controlling_terminal(mut self) -> Self {
        self.terminal = true;
        self
    }

    /// The most processes the test may have at once (512 by default, under a pids cgroup; or
    /// this many more than the user already has, under `RLIMIT_NPROC`, 1024 by default). A fork
    /// loop then fails to fork instead of filling the machine.
    pub fn max_processes(mut self, n: u32) -> Self {
        self.limits.processes = Some(n);
        self
    }

    /// The most memory the test's processes may use together (1 GiB by default), enforced by a
    /// memory cgroup where one is writable: at the limit the cgroup's OOM killer kills one of
    /// the test's processes, and the test fails saying so. Elsewhere each process may map 4
    /// times as much address space (`RLIMIT_AS`, which also counts reservations such as
    /// thread stacks), and an allocation beyond it fails.
    pub fn memory_limit(mut self, bytes: u64) -> Self {
        self.limits.memory = bytes;
        self
    }

    /// The deadline actually applied: the test's own, times `OSKATA_DEADLINE_SCALE` when that
    /// variable is set (for a slow machine, or a run under valgrind). A value that is not a
    /// positive number fails the test with a message saying so.
    pub fn limit(&self) -> Duration {
        scaled(self.deadline)
    }

    /// Do not enter a private IPC namespace: behave as on a machine that forbids them, where
    /// System V objects are tracked by the pids the kernel records on them. For testing that
    /// fallback; the environment variable `OSKATA_NO_NAMESPACES=1` does the same for every test.
    pub fn without_namespaces(mut self) -> Self {
        self.namespaces = false;
        self
    }

    /// Whether the body should enter a private IPC namespace: asked for, and not refused for
    /// every test by [`NO_NAMESPACES_ENV`].
    pub(crate) fn wants_namespaces(&self) -> bool {
        self.namespaces && std::env::var_os(NO_NAMESPACES_ENV).is_none()
    }
}

/// `d` times the factor `OSKATA_DEADLINE_SCALE` asks for (1 when unset). Every time limit
/// inside a test (how long to wait for a child to fall asleep, to die, to report) goes through
/// this, so that stretching the deadlines on a slow machine stretches them all alike. A value
/// that is not a positive number fails the test with a message saying so.
pub fn scaled(d: Duration) -> Duration {
    match deadline_scale(std::env::var(SCALE_ENV).ok().as_deref()) {
        Ok(scale) => d.mul_f64(scale),
        Err(e) => panic!("{e}"),
    }
}

/// The factor [`SCALE_ENV`] asks for: 1 when unset.
fn deadline_scale(text: Option<&str>) -> Result<f64, String> {
    let Some(text) = text else { return Ok(1.0) };
    match text.trim().parse::<f64>() {
        Ok(scale) if scale.is_finite() && scale > 0.0 => Ok(scale),
        _ => Err(format!(
            "{SCALE_ENV} must be a positive number such as 2 or 0.5, not {text:?}"
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_deadline_scale_is_read_strictly() {
        assert_eq!(deadline_scale(None), Ok(1.0));
        assert_eq!(deadline_scale(Some(" 2.5 ")), Ok(2.5));
        for bad in ["0", "-1", "NaN", "inf", "two", ""] {
            let e = deadline_scale(Some(bad)).unwrap_err();
            assert!(
                e.contains("OSKATA_DEADLINE_SCALE must be a positive number"),
                "{e}"
            );
        }
    }
}
