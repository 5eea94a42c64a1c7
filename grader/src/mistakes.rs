//! `--mistakes`: proves that the tests catch each shipped classic mistake, for the reason the
//! manifest gives.
use std::fmt::Write as _;
use std::fs;
use std::path::Path;

use anyhow::{Context, Result, bail};
use nix::fcntl::{Flock, FlockArg};
use serde::Serialize;

use crate::build::{Build, Sources};
use crate::classify::TestStatus;
use crate::grade::TestResult;
use crate::list;
use crate::manifest::{Exercise, Mistake};
use crate::run::{Job, Runner};
use crate::targets::MISTAKE_DIR;
use crate::ui::{Style, Ui};
use crate::{report, signals};

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
/// and judges; `each` sees every result as it comes. The mistakes go in rounds: round `k`
/// builds the `k`-th mistake of every exercise that has one, in one cargo build that rebuilds
/// only those exercises' targets, and runs all their tests together.
pub fn prove<'m>(
    root: &Path,
    exercises: &[&'m Exercise],
    runner: &Runner,
    ui: &Ui,
    each: impl Fn(&MistakeResult<'m>),
) -> Result<Vec<MistakeResult<'m>>> {
    let _lock = lock(root)?;
    let rounds = exercises
        .iter()
        .map(|e| e.mistakes.len())
        .max()
        .unwrap_or(0);
    let mut results = Vec::new();
    for k in 0..rounds {
        let round: Vec<(&'m Exercise, &'m Mistake)> = exercises
            .iter()
            .filter_map(|e| e.mistakes.get(k).map(|m| (*e, m)))
            .collect();
        for result in prove_round(root, &round, k, runner, ui)? {
            each(&result);
            results.push(result);
        }
    }
    // Manifest order: by exercise, then by mistake.
    let position = |r: &MistakeResult<'_>| {
        exercises.iter().position(|e| e.id == r.exercise).map(|i| {
            let m = exercises[i].mistakes.iter().position(|m| m.file == r.file);
            (i, m)
        })
    };
    results.sort_by_key(|r| position(r));
    Ok(results)
}

/// Holds the mistakes proof's directory for this run: two proofs in one kit at once would
/// overwrite each other's copies.
fn lock(root: &Path) -> Result<Flock<fs::File>> {
    let dir = root.join(MISTAKE_DIR);
    fs::create_dir_all(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let path = dir.join(".lock");
    let file =
        fs::File::create(&path).with_context(|| format!("cannot create {}", path.display()))?;
    Flock::lock(file, FlockArg::LockExclusiveNonblock).map_err(|(_, e)| {
        anyhow::anyhow!(
            "another `cargo grade --mistakes` is running in this kit ({} is locked: {e})",
            path.display()
        )
    })
}

/// Copies each mistake of `round` where its exercise's test target looks for it, builds
/// those targets, runs their tests and judges each mistake.
fn prove_round<'m>(
    root: &Path,
    round: &[(&'m Exercise, &'m Mistake)],
    k: usize,
    runner: &Runner,
    ui: &Ui,
) -> Result<Vec<MistakeResult<'m>>> {
    for (e, m) in round {
        let copy = root.join(MISTAKE_DIR).join(format!("{}.rs", e.id));
        let text = fs::read(root.join(&m.file))
            .with_context(|| format!("cannot read mistake {}", m.file))?;
        if let Some(dir) = copy.parent() {
            fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
        }
        // A fresh write, so the copy's mtime is new and cargo rebuilds the target.
        fs::write(&copy, text).with_context(|| format!("cannot write {}", copy.display()))?;
    }
    let build = Build {
        root,
        sources: Sources::Mistakes,
        exercises: round.iter().map(|(e, _)| e.id.as_str()).collect(),
    };
    let mut built = build.run(ui)?;
    let plan = list::plan(root, &mut built)?;
    if !built.refused.is_empty() {
        let why: Vec<&str> = built.refused.values().map(String::as_str).collect();
        bail!("{}", why.join("\n"));
    }
    let mut jobs = Vec::new();
    for (e, _) in round {
        if let Some((exe, names)) = plan.tests.get(&e.id) {
            jobs.extend(names.iter().map(|name| Job {
                exe: exe.clone(),
                name: name.clone(),
            }));
        }
    }
    let bar = ui.bar(
        jobs.len(),
        &format!(
            "round {}: running {} tests against {} mistakes",
            k + 1,
            jobs.len(),
            round.len()
        ),
    );
    let mut outcomes = runner.run_all(&jobs, |_, _| bar.inc(1)).into_iter();
    bar.finish_and_clear();
    if signals::interrupted() {
        bail!("interrupted");
    }
    let mut jobs = jobs.into_iter();
    let mut results = Vec::new();
    for (e, m) in round {
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
        if let Some((_, names)) = plan.tests.get(&e.id) {
            result.tests = jobs
                .by_ref()
                .take(names.len())
                .zip(outcomes.by_ref())
                .map(|(j, o)| TestResult {
                    name: j.name,
                    status: o.status,
                    message: o.message,
                })
                .collect();
            result.proof = judge(&m.reason, &result.tests);
            result.caught = matches!(result.proof, Proof::Caught { .. });
        }
        results.push(result);
    }
    Ok(results)
}

/// One result as terminal lines.
pub fn render(r: &MistakeResult<'_>, ui: &Ui) -> String {
    let mut out = String::new();
    match &r.proof {
        Proof::Caught { test, line } => {
            let _ = writeln!(
                out,
                "{}  {}  {}  ({test}: {})",
                ui.paint(Style::Green, "caught"),
                r.exercise,
                r.name,
                report::shown(line)
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

/// The first `max` lines of `text`, indented, as the terminal report shows them.
fn indent(out: &mut String, text: &str, max: usize) {
    for line in text.trim_end().lines().take(max) {
        let _ = writeln!(out, "      {}", report::shown(line));
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
