//! `--mistakes`: proves that the tests catch each shipped classic mistake, for the reason the
//! manifest gives.
use std::fmt::Write as _;
use std::path::Path;

use anyhow::Result;
use serde::Serialize;

use crate::build::Build;
use crate::classify::TestStatus;
use crate::grade::TestResult;
use crate::list;
use crate::manifest::{Exercise, Manifest, Mistake};
use crate::run::{Job, Runner};
use crate::ui::{Style, Ui};

/// What became of one mistake.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case", tag = "verdict")]
pub enum Proof {
    /// A test failed and its message gives the reason.
    Caught {
        /// The test.
        test: String,
        /// The line of its message that contains the reason.
        line: String,
    },
    /// The mistake file does not compile.
    DoesNotCompile,
    /// Every test passed: the tests do not catch the mistake.
    AllPassed,
    /// Tests failed, but none of their messages contains the reason.
    WrongReason,
}

/// One mistake and the evidence about it.
#[derive(Debug, Clone, Serialize)]
pub struct MistakeResult<'m> {
    /// The exercise's id.
    pub exercise: &'m str,
    /// The mistake's file.
    pub file: &'m str,
    /// The mistake's name (its file stem).
    pub name: &'m str,
    /// The phrase a failure must contain.
    pub reason: &'m str,
    /// True when caught.
    pub caught: bool,
    /// What happened.
    #[serde(flatten)]
    pub proof: Proof,
    /// The compiler's errors when it does not compile.
    pub compiler_message: Option<String>,
    /// The exercise's tests, run against the mistake.
    pub tests: Vec<TestResult>,
}

/// Whether the tests caught a mistake whose failure must mention `reason`.
pub fn judge(reason: &str, tests: &[TestResult]) -> Proof {
    let failed: Vec<&TestResult> = tests
        .iter()
        .filter(|t| t.status != TestStatus::Passed)
        .collect();
    if failed.is_empty() {
        return Proof::AllPassed;
    }
    for t in failed {
        if let Some(line) = t.message.lines().find(|l| l.contains(reason)) {
            return Proof::Caught {
                test: t.name.clone(),
                line: shorten(line.trim(), 160),
            };
        }
    }
    Proof::WrongReason
}

/// Builds each mistake of `exercises` in place of its solution, runs that exercise's tests,
/// and judges; `each` sees every result as it comes.
pub fn prove<'m>(
    root: &Path,
    manifest: &'m Manifest,
    exercises: &[&'m Exercise],
    runner: &Runner,
    ui: &Ui,
    each: impl Fn(&MistakeResult<'m>),
) -> Result<Vec<MistakeResult<'m>>> {
    let mut results = Vec::new();
    for &e in exercises {
        for m in &e.mistakes {
            let result = prove_one(root, manifest, e, m, runner, ui)?;
            each(&result);
            results.push(result);
        }
    }
    Ok(results)
}

fn prove_one<'m>(
    root: &Path,
    manifest: &'m Manifest,
    e: &'m Exercise,
    m: &'m Mistake,
    runner: &Runner,
    ui: &Ui,
) -> Result<MistakeResult<'m>> {
    let build = Build {
        root,
        manifest,
        solutions: true,
        swap: Some((&e.id, root.join(&m.file))),
        target_dir: Some(root.join("target/mistakes")),
    };
    let built = build.run(ui)?;
    let mut result = MistakeResult {
        exercise: &e.id,
        file: &m.file,
        name: m.name(),
        reason: &m.reason,
        caught: false,
        proof: Proof::DoesNotCompile,
        compiler_message: built.broken.get(&e.id).cloned(),
        tests: Vec::new(),
    };
    if result.compiler_message.is_some() {
        return Ok(result);
    }
    let plan = list::plan(manifest, root, &built)?;
    let (exe, names) = &plan.tests[&e.id];
    let jobs: Vec<Job> = names
        .iter()
        .map(|name| Job {
            exe: exe.clone(),
            name: name.clone(),
        })
        .collect();
    let bar = ui.bar(jobs.len(), &format!("running {} against {}", e.id, m.file));
    let outcomes = runner.run_all(&jobs, |_, _| bar.inc(1));
    bar.finish_and_clear();
    result.tests = jobs
        .into_iter()
        .zip(outcomes)
        .map(|(j, o)| TestResult {
            name: j.name,
            status: o.status,
            message: o.message,
        })
        .collect();
    result.proof = judge(&m.reason, &result.tests);
    result.caught = matches!(result.proof, Proof::Caught { .. });
    Ok(result)
}

/// One result as terminal lines.
pub fn render(r: &MistakeResult<'_>, ui: &Ui) -> String {
    let mut out = String::new();
    match &r.proof {
        Proof::Caught { test, line } => {
            let _ = writeln!(
                out,
                "{}  {}  {}  ({test}: {line})",
                ui.paint(Style::Green, "caught"),
                r.exercise,
                r.name
            );
        }
        other => {
            let why = match other {
                Proof::DoesNotCompile => "the mistake does not compile".to_owned(),
                Proof::AllPassed => "every test passed".to_owned(),
                _ => format!("no failing test's message contains \"{}\"", r.reason),
            };
            let _ = writeln!(
                out,
                "{}  {}  {}  ({}): {why}",
                ui.paint(Style::Red, "MISSED"),
                r.exercise,
                r.name,
                r.file
            );
            if let Some(m) = &r.compiler_message {
                indent(&mut out, m, 40);
            }
            for t in r.tests.iter().filter(|t| t.status != TestStatus::Passed) {
                let _ = writeln!(out, "    {} ({})", t.name, t.status.word());
                indent(&mut out, &t.message, 10);
            }
        }
    }
    out
}

/// `text` cut to at most `max` characters, with `...` when cut.
fn shorten(text: &str, max: usize) -> String {
    match text.char_indices().nth(max) {
        Some((at, _)) => format!("{}...", &text[..at]),
        None => text.to_owned(),
    }
}

fn indent(out: &mut String, text: &str, max: usize) {
    for line in text.trim_end().lines().take(max) {
        let _ = writeln!(out, "      {line}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(status: TestStatus, message: &str) -> TestResult {
        TestResult {
            name: "x::y".into(),
            status,
            message: message.into(),
        }
    }

    #[test]
    fn judges_mistakes() {
        let reason = "returned into the test";
        assert_eq!(
            judge(reason, &[t(TestStatus::Passed, "")]),
            Proof::AllPassed
        );
        assert_eq!(
            judge(reason, &[t(TestStatus::Failed, "wrong pid")]),
            Proof::WrongReason
        );
        assert_eq!(
            judge(
                reason,
                &[
                    t(TestStatus::Passed, ""),
                    t(
                        TestStatus::Failed,
                        "first\na child returned into the test, pid 4\n"
                    )
                ]
            ),
            Proof::Caught {
                test: "x::y".into(),
                line: "a child returned into the test, pid 4".into()
            }
        );
    }
}
