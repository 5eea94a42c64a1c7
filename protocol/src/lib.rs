//! # oskata-protocol
//!
//! The one definition of what oskata's processes say to each other, shared by the harness
//! (linked into every test binary) and the grader, so the two cannot drift apart:
//!
//! ```text
//! body (B) --records on the result pipe--> supervisor (C) --framed report on stdout--> test process (P)
//! test process (P) --panic message starting with the verdict line--> grader (`cargo grade`)
//! ```
//!
//! - [`Verdict`]: the six outcomes of one test and their stable words.
//! - [`frame`] and [`records`]: `<tag> <length>\n<bytes>` records, safe for any payload.
//! - [`seal`], [`unseal`] and [`sealed_records`]: tags bound to one test's secret token, so
//!   that only records the harness wrote count (the token itself is the harness's business).
//! - [`body`] and [`report`]: the record tags on each of the two channels.
//! - [`verdict_line`] and [`parse_verdict_line`]: the first line of a failing isolated test's
//!   panic, which the grader reads back from any output.
//! - [`is_not_started`]: how a `todo!()` panic is recognised.
use std::fmt;

/// The outcome of one test, in the words the grader shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Verdict {
    /// The body returned and nothing was left behind.
    Passed,
    /// An assertion failed, the body panicked, or a child returned into the test.
    Failed,
    /// The body hit `todo!()`: the exercise has not been started.
    NotStarted,
    /// A deadline fired; the evidence shows what was still running.
    TimedOut,
    /// The test process was killed by a signal (SIGSEGV, SIGABRT, ...).
    Crashed,
    /// The body passed but left a zombie, a live process, an IPC object or an fd behind.
    Leaked,
}

impl Verdict {
    /// Every verdict, in declaration order.
    pub const ALL: [Verdict; 6] = [
        Verdict::Passed,
        Verdict::Failed,
        Verdict::NotStarted,
        Verdict::TimedOut,
        Verdict::Crashed,
        Verdict::Leaked,
    ];

    /// The stable word used on the wire and in the grader's JSON (`not_started`, ...).
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
        Verdict::ALL.into_iter().find(|v| v.word() == word)
    }
}

impl fmt::Display for Verdict {
    /// The word with spaces, as a person reads it: `not started`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.word().replace('_', " "))
    }
}

/// The tag that starts the verdict line of a failing isolated test's panic.
pub const VERDICT_TAG: &str = "@@oskata-verdict:";

/// The first line of a failing isolated test's panic: `@@oskata-verdict:<word>@@ <words>`.
pub fn verdict_line(verdict: Verdict) -> String {
    format!("{VERDICT_TAG}{}@@ {verdict}", verdict.word())
}

/// Reads a line made by [`verdict_line`]: the verdict, and whatever follows the `@@` other
/// than the verdict's own words (normally nothing).
pub fn parse_verdict_line(line: &str) -> Option<(Verdict, &str)> {
    let rest = line.strip_prefix(VERDICT_TAG)?;
    let (word, tail) = rest.split_once("@@")?;
    let verdict = Verdict::from_word(word)?;
    let tail = tail.trim();
    let own = verdict.to_string();
    Some((
        verdict,
        tail.strip_prefix(own.as_str()).unwrap_or(tail).trim(),
    ))
}

/// How a `todo!()` (and `unimplemented!()`'s cousin, `todo!("...")`) panic message starts.
pub const NOT_STARTED: &str = "not yet implemented";

/// Whether a panic message is a `todo!()`: the exercise has not been started.
pub fn is_not_started(panic_message: &str) -> bool {
    panic_message.starts_with(NOT_STARTED)
}

/// The tags of the records the body (B) writes on its result pipe to the supervisor (C).
pub mod body {
    /// The body returned and left nothing behind (empty payload).
    pub const PASS: &str = "pass";
    /// The body panicked: the message, with where.
    pub const PANIC: &str = "panic";
    /// The body hit `todo!()`: the message.
    pub const NOT_STARTED: &str = "notstarted";
    /// The body returned but left things behind: one sentence per line.
    pub const LEAK: &str = "leak";
    /// A forked child came back from student code into the test: what happened.
    pub const STRAY: &str = "stray";
    /// Something the harness could not set up, for a failing report's reader.
    pub const NOTE: &str = "note";
}

/// The tags of the report the supervisor (C) prints, after [`REPORT_MARK`], for the test process (P).
pub mod report {
    /// The verdict's word ([`crate::Verdict::word`]).
    pub const VERDICT: &str = "verdict";
    /// Why, in sentences that teach.
    pub const MESSAGE: &str = "message";
    /// What the test's processes printed (bounded).
    pub const OUTPUT: &str = "output";
}

/// The marker before the supervisor's framed report on its stdout.
pub const REPORT_MARK: &str = "\n@@oskata-report@@\n";

/// Frames a record as `<tag> <length>\n<bytes>`: safe for any payload, read by [`records`].
pub fn frame(tag: &str, payload: &str) -> Vec<u8> {
    let mut out = format!("{tag} {}\n", payload.len()).into_bytes();
    out.extend_from_slice(payload.as_bytes());
    out
}

/// A record tag sealed with one test's secret token, `<token>:<tag>`: the supervisor and the
/// test process count only records sealed with the token they hold, so bytes that student code
/// writes into a pipe it finds (in `/proc/self/fd`, say) cannot pass for the harness's.
pub fn seal(token: &str, tag: &str) -> String {
    format!("{token}:{tag}")
}

/// The tag of a record sealed with `token`, or `None` for any other record.
pub fn unseal<'a>(token: &str, sealed: &'a str) -> Option<&'a str> {
    sealed.strip_prefix(token)?.strip_prefix(':')
}

/// The records of `buf` that were sealed with `token`, unsealed, and how many records were
/// not (forged, or from another test).
pub fn sealed_records(token: &str, buf: &[u8]) -> (Vec<(String, String)>, usize) {
    let mut others = 0;
    let mut ours = Vec::new();
    for (tag, payload) in records(buf) {
        match unseal(token, &tag) {
            Some(tag) => ours.push((tag.to_owned(), payload)),
            None => others += 1,
        }
    }
    (ours, others)
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
        assert_eq!(
            records(&buf),
            vec![
                ("panic".into(), "line one\nline two @@ 12\n".into()),
                ("stray".into(), "4242".into())
            ]
        );
    }

    #[test]
    fn only_sealed_records_count() {
        let token = "5eed";
        let mut buf = frame(&seal(token, body::PASS), "");
        buf.extend(frame(body::PASS, ""));
        buf.extend(frame(&seal("other", body::PASS), ""));
        buf.extend(frame(&seal(token, body::PANIC), "boom"));
        let (ours, others) = sealed_records(token, &buf);
        assert_eq!(
            ours,
            vec![
                (body::PASS.to_owned(), String::new()),
                (body::PANIC.to_owned(), "boom".to_owned())
            ]
        );
        assert_eq!(others, 2);
        assert_eq!(unseal(token, "5eedpass"), None);
    }

    #[test]
    fn words_round_trip() {
        for v in Verdict::ALL {
            assert_eq!(Verdict::from_word(v.word()), Some(v));
        }
        assert_eq!(Verdict::from_word("nope"), None);
    }

    #[test]
    fn verdict_lines_round_trip() {
        for v in Verdict::ALL {
            assert_eq!(parse_verdict_line(&verdict_line(v)), Some((v, "")));
        }
        assert_eq!(
            parse_verdict_line("@@oskata-verdict:failed@@ failed and more"),
            Some((Verdict::Failed, "and more"))
        );
        assert_eq!(parse_verdict_line("@@oskata-verdict:maybe@@ x"), None);
        assert_eq!(parse_verdict_line("verdict: failed"), None);
    }

    #[test]
    fn todo_is_recognised() {
        assert!(is_not_started("not yet implemented"));
        assert!(is_not_started("not yet implemented: fork here"));
        assert!(!is_not_started("assertion failed: not yet implemented"));
    }
}
