//! The report on the terminal: chapter by chapter, the progress line, and what to do next.
use std::fmt::Write as _;

use crate::grade::{ExerciseResult, ExerciseStatus, Grade};
use crate::manifest::Manifest;
use crate::targets;
use crate::ui::{self, Style, Ui};

/// How many lines of a failure message are shown.
const SHOWN_LINES: usize = 15;
/// How many characters of one line of a failure message are shown.
const SHOWN_WIDTH: usize = 240;
/// The width of the progress bar, in characters.
const BAR_WIDTH: usize = 20;

/// Renders the whole report.
pub fn render(manifest: &Manifest, grade: &Grade<'_>, ui: &Ui) -> String {
    let mut out = String::new();
    let id_width = grade
        .exercises
        .iter()
        .map(|e| e.exercise.id.chars().count())
        .max()
        .unwrap_or(0);
    for chapter in &manifest.chapters {
        let results: Vec<&ExerciseResult<'_>> = grade
            .exercises
            .iter()
            .filter(|e| e.exercise.chapter() == chapter.id)
            .collect();
        if results.is_empty() {
            continue;
        }
        let _ = writeln!(
            out,
            "{}",
            ui.paint(
                Style::Bold,
                &format!("{} · {}", chapter.title, chapter.term)
            )
        );
        for r in results {
            let (mark, style) = mark(r.status);
            let _ = writeln!(
                out,
                "  {} {:id_width$}  {}  {}",
                ui.paint(style, mark),
                r.exercise.id,
                ui.paint(style, &format!("{:16}", r.status.words())),
                r.exercise.title,
            );
            details(&mut out, r, ui);
        }
        out.push('\n');
    }
    let _ = writeln!(out, "{}", progress_line(grade));
    match grade.next() {
        Some(next) => {
            let e = next.exercise;
            let _ = writeln!(
                out,
                "\n{} {} ({})",
                ui.paint(Style::Bold, "Next:"),
                e.title,
                e.term
            );
            let _ = writeln!(out, "  file: {}", e.file);
            for line in e.hint.trim().lines() {
                let _ = writeln!(out, "  {line}");
            }
        }
        None => {
            let _ = writeln!(
                out,
                "\n{}",
                ui.paint(Style::Green, "All done: every exercise passes its tests.")
            );
        }
    }
    out
}

/// `Progress [#####---------------] 1/3 exercises done · score 10/30`.
pub fn progress_line(grade: &Grade<'_>) -> String {
    let (done, total) = (grade.done(), grade.exercises.len());
    let filled = (done * BAR_WIDTH).checked_div(total).unwrap_or(0);
    format!(
        "Progress [{}{}] {done}/{total} exercises done · score {}/{}",
        "#".repeat(filled),
        "-".repeat(BAR_WIDTH - filled),
        grade.points(),
        grade.max_points()
    )
}

fn mark(status: ExerciseStatus) -> (&'static str, Style) {
    match status {
        ExerciseStatus::Done => ("✔", Style::Green),
        ExerciseStatus::NotStarted => ("·", Style::Dim),
        ExerciseStatus::Failing | ExerciseStatus::DoesNotCompile | ExerciseStatus::Refused => {
            ("✘", Style::Red)
        }
        ExerciseStatus::TimedOut | ExerciseStatus::Crashed => ("!", Style::Yellow),
    }
}

/// Under a started exercise that is not done: the first failing test and its message, or why
/// it was refused or does not compile. What a test printed is the student's, so each line has
/// its control characters made visible and is cut to [`SHOWN_WIDTH`] characters.
fn details(out: &mut String, r: &ExerciseResult<'_>, ui: &Ui) {
    let target = targets::name_of(&r.exercise.id);
    let (heading, message, all) = match (r.status, &r.compiler_message) {
        (ExerciseStatus::Done | ExerciseStatus::NotStarted, _) => return,
        (ExerciseStatus::Refused, _) => match &r.refusal {
            Some(m) => (
                "the grader did not build or run it:".to_owned(),
                m.as_str(),
                "cargo grade --json".to_owned(),
            ),
            None => return,
        },
        (ExerciseStatus::DoesNotCompile, Some(m)) => (
            "the compiler says:".to_owned(),
            m.as_str(),
            format!("cargo test --no-run --test {target}"),
        ),
        _ => match r.first_failure() {
            Some(t) => (
                format!("{} ({})", t.name, t.status.word().replace('_', " ")),
                t.message.as_str(),
                format!("cargo test --test {target} -- {} --exact", t.name),
            ),
            None => return,
        },
    };
    let _ = writeln!(out, "      {}", ui::visible(&heading));
    let lines: Vec<&str> = message.trim_end().lines().collect();
    for line in lines.iter().take(SHOWN_LINES) {
        let _ = writeln!(out, "        {}", ui.paint(Style::Dim, &shown(line)));
    }
    if lines.len() > SHOWN_LINES {
        let more = lines.len() - SHOWN_LINES;
        let note = format!("[... {more} more lines; see all with `{all}`]");
        let _ = writeln!(out, "        {}", ui.paint(Style::Dim, &note));
    }
}

/// One line of a message as the terminal shows it: control characters made visible, and cut
/// to [`SHOWN_WIDTH`] characters.
pub fn shown(line: &str) -> String {
    let line = ui::visible(line);
    match line.char_indices().nth(SHOWN_WIDTH) {
        Some((cut, _)) => {
            let more = line[cut..].chars().count();
            format!("{} [... {more} more characters]", &line[..cut])
        }
        None => line.into_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::classify::TestStatus;
    use crate::grade::TestResult;

    const MANIFEST: &str = "[[chapters]]\nid = \"processes\"\ntitle = \"P\"\nterm = \"P\"\n\
        [[exercises]]\nid = \"processes/zombies\"\ntitle = \"Z\"\nterm = \"Z\"\n\
        file = \"exercises/processes/zombies.rs\"\npoints = 10\n";

    fn plain() -> Ui {
        Ui {
            interactive: false,
            color: false,
        }
    }

    /// The details shown for one failing test with `message`.
    fn details_of(message: &str) -> String {
        let m = Manifest::parse(MANIFEST).unwrap();
        let test = TestResult {
            name: "zombies::reaps".into(),
            status: TestStatus::Failed,
            message: message.into(),
        };
        let r = ExerciseResult::new(&m.exercises[0], None, None, vec![test]);
        let mut out = String::new();
        details(&mut out, &r, &plain());
        out
    }

    #[test]
    fn what_a_test_printed_cannot_drive_the_terminal() {
        let out = details_of(
            "pid 42 is a zombie\n--- what the test's processes printed ---\n\
             \x1b[2J\x1b]0;owned\x07gone\r\x08\x08ok\u{9b}31m \u{202e}txt.exe\u{2066}\ttab\n",
        );
        assert!(
            out.contains(
                "        \\x1b[2J\\x1b]0;owned\\x07gone\\r\\x08\\x08ok\\u{9b}31m \\u{202e}txt.exe\\u{2066}\ttab\n"
            ),
            "{out}"
        );
        let controls = |c: char| {
            (c.is_control() && c != '\n' && c != '\t') || ('\u{202a}'..='\u{202e}').contains(&c)
        };
        assert!(!out.contains(controls), "{out:?}");
    }

    #[test]
    fn long_evidence_is_bounded() {
        let lines: Vec<String> = (0..40).map(|i| format!("line {i}")).collect();
        let out = details_of(&lines.join("\n"));
        assert!(
            out.contains("line 14\n") && !out.contains("line 15\n"),
            "{out}"
        );
        assert!(
            out.contains(
                "[... 25 more lines; see all with `cargo test --test processes-zombies -- zombies::reaps --exact`]"
            ),
            "{out}"
        );
        let out = details_of(&"é".repeat(SHOWN_WIDTH + 50));
        assert!(out.contains(&format!(
            "{} [... 50 more characters]",
            "é".repeat(SHOWN_WIDTH)
        )));
    }
}
