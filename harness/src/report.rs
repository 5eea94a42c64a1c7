//! What a test run concluded: the [`Report`] the supervisor (C) sends the test process (P).
//! The words and the framing that carry it between the three processes of an isolated test
//! are the protocol crate's (`oskata-protocol`); see ARCHITECTURE.md, "The test harness".
use oskata_protocol::Verdict;

/// The full account of one isolated test.
#[derive(Debug, Clone)]
pub struct Report {
    /// The outcome, in the words the grader shows.
    pub verdict: Verdict,
    /// Why, in sentences that teach: the panic message, the leak, the evidence at the deadline.
    pub message: String,
    /// What the test's processes printed on stdout and stderr (bounded).
    pub output: String,
}

impl Report {
    /// True when the verdict is [`Verdict::Passed`].
    pub fn passed(&self) -> bool {
        self.verdict == Verdict::Passed
    }
}
