//! What a test run concluded, and the small wire format that carries it between the three
//! processes of an isolated test (see ARCHITECTURE.md, "The test harness").
use std::fmt;

/// The verdict on one isolated test, in the words the grader shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// The body returned and nothing was left behind.
    Passed,
    /// An assertion failed, the body panicked, or a child returned into the test.
    Failed,
    /// The body hit `todo!()`: the exercise has not been started.
    NotStarted,
    /// The deadline fired; the evidence shows what was still running.
    TimedOut,
    /// The test process was killed by a signal (SIGSEGV, SIGABRT, ...).
    Crashed,
    /// The body passed but left a zombie, a live process, an IPC object or an fd behind.
    Leaked,
}

impl Verdict {
    /// The stable word used in the wire format and by the grader's JSON.
    pub fn word(self) -> &'static str {
        match self {
            Verdict::Passed => "passed",
            Verdict::Failed => "failed",
            Verdict::NotStarted => "not_started",
            Verdict::TimedOut => "timed_out",
            Verdict::Crashed => "crashed",
            Verdict::Leaked => "leaked",
        }
    }

    /// The inverse of [`Verdict::word`].
    pub fn from_word(word: &str) -> Option<Verdict> {
        [
            Verdict::Passed,
            Verdict::Failed,
            Verdict::NotStarted,
            Verdict::TimedOut,
            Verdict::Crashed,
            Verdict::Leaked,
        ]
        .into_iter()
        .find(|v| v.word() == word)
    }
}

impl fmt::Display for Verdict {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.word().replace('_', " "))
    }
}

/// The full account of one isolated test.
#[derive(Debug, Clone)]
pub struct Report {
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

/// The tag the parent panics with, so the grader can read the verdict back from any output.
pub const VERDICT_TAG: &str = "@@oskata-verdict:";

/// Frames a record as `<tag> <length>\n<bytes>`: safe for any payload, parsed by [`Records`].
pub fn frame(tag: &str, payload: &str) -> Vec<u8> {
    let mut out = format!("{tag} {}\n", payload.len()).into_bytes();
    out.extend_from_slice(payload.as_bytes());
    out
}

/// Splits a buffer of framed records back into `(tag, payload)` pairs; ignores a torn tail.
pub fn records(mut buf: &[u8]) -> Vec<(String, String)> {
    let mut out = Vec::new();
    while let Some(nl) = buf.iter().position(|&b| b == b'\n') {
        let head = String::from_utf8_lossy(&buf[..nl]).into_owned();
        let Some((tag, len)) = head.split_once(' ') else {
            break;
        };
        let Ok(len) = len.parse::<usize>() else { break };
        let body = &buf[nl + 1..];
        if body.len() < len {
            break;
        }
        out.push((
            tag.to_owned(),
            String::from_utf8_lossy(&body[..len]).into_owned(),
        ));
        buf = &body[len..];
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_round_trip() {
        let mut buf = frame("panic", "line one\nline two @@ 12\n");
        buf.extend(frame("stray", "4242"));
        buf.extend(b"pass 99\ntorn");
        let recs = records(&buf);
        assert_eq!(
            recs,
            vec![
                ("panic".into(), "line one\nline two @@ 12\n".into()),
                ("stray".into(), "4242".into())
            ]
        );
    }

    #[test]
    fn words_round_trip() {
        for v in [
            Verdict::Passed,
            Verdict::Failed,
            Verdict::NotStarted,
            Verdict::TimedOut,
            Verdict::Crashed,
            Verdict::Leaked,
        ] {
            assert_eq!(Verdict::from_word(v.word()), Some(v));
        }
        assert_eq!(Verdict::from_word("nope"), None);
    }
}
