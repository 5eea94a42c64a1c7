//! The report on the terminal: chapter by chapter, the progress line, and what to do next.
use std::fmt::Write as _;

use crate::grade::{ExerciseResult, ExerciseStatus, Grade};
use crate::manifest::Manifest;
use crate::ui::{Style, Ui};

/// How many lines of a failure message are shown.
const SHOWN_LINES: usize = 15;
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

/// Under a started exercise that is not done: the first failing test and its message.
fn details(out: &mut String, r: &ExerciseResult<'_>, ui: &Ui) {
    let (heading, message, rerun) = match (r.status, &r.compiler_message) {
        (ExerciseStatus::Done | ExerciseStatus::NotStarted, _) => return,
        (ExerciseStatus::Refused, _) => match &r.refusal {
            Some(m) => ("the grader refused to run it:".to_owned(), m.as_str(), None),
            None => return,
        },
        (ExerciseStatus::DoesNotCompile, Some(m)) => {
            ("the compiler says:".to_owned(), m.as_str(), None)
        }
        _ => match r.first_failure() {
            Some(t) => (
                format!("{} ({})", t.name, t.status.word().replace('_', " ")),
                t.message.as_str(),
                Some(&t.name),
            ),
            None => return,
        },
    };
    let _ = writeln!(out, "      {heading}");
    let lines: Vec<&str> = message.trim_end().lines().collect();
    for line in lines.iter().take(SHOWN_LINES) {
        let _ = writeln!(out, "        {}", ui.paint(Style::Dim, line));
    }
    if lines.len() > SHOWN_LINES {
        let more = lines.len() - SHOWN_LINES;
        let how = match rerun {
            Some(name) => format!(
                "; see all with `cargo test --test {} -- {name} --exact`",
                r.exercise.chapter()
            ),
            None => "; see all with `cargo test --no-run`".to_owned(),
        };
        let _ = writeln!(
            out,
            "        {}",
            ui.paint(Style::Dim, &format!("[... {more} more lines{how}]"))
        );
    }
}
