//! The `--json` documents (schema in grader/JSON.md).
use serde::Serialize;

use crate::grade::{ExerciseStatus, Grade, TestResult};
use crate::mistakes::MistakeResult;

/// The version of the JSON documents' shape.
pub const SCHEMA: u32 = 1;

/// The document for a grading run.
#[derive(Debug, Serialize)]
pub struct GradeDoc<'a> {
    schema: u32,
    mode: &'static str,
    summary: Summary,
    exercises: Vec<ExerciseDoc<'a>>,
    next: Option<NextDoc<'a>>,
}

#[derive(Debug, Serialize)]
struct Summary {
    exercises: usize,
    done: usize,
    points: u32,
    max_points: u32,
}

#[derive(Debug, Serialize)]
struct ExerciseDoc<'a> {
    id: &'a str,
    chapter: &'a str,
    title: &'a str,
    file: &'a str,
    status: ExerciseStatus,
    points: u32,
    earned: u32,
    refusal: Option<&'a str>,
    compiler_message: Option<&'a str>,
    tests: &'a [TestResult],
}

#[derive(Debug, Serialize)]
struct NextDoc<'a> {
    id: &'a str,
    title: &'a str,
    file: &'a str,
    hint: &'a str,
}

impl<'a> GradeDoc<'a> {
    /// The document for `grade`; `solutions` says which files were graded.
    pub fn new(grade: &'a Grade<'a>, solutions: bool) -> Self {
        GradeDoc {
            schema: SCHEMA,
            mode: if solutions { "solutions" } else { "exercises" },
            summary: Summary {
                exercises: grade.exercises.len(),
                done: grade.done(),
                points: grade.points(),
                max_points: grade.max_points(),
            },
            exercises: grade
                .exercises
                .iter()
                .map(|r| ExerciseDoc {
                    id: &r.exercise.id,
                    chapter: r.exercise.chapter(),
                    title: &r.exercise.title,
                    file: &r.exercise.file,
                    status: r.status,
                    points: r.exercise.points,
                    earned: r.earned(),
                    refusal: r.refusal.as_deref(),
                    compiler_message: r.compiler_message.as_deref(),
                    tests: &r.tests,
                })
                .collect(),
            next: grade.next().map(|r| NextDoc {
                id: &r.exercise.id,
                title: &r.exercise.title,
                file: &r.exercise.file,
                hint: &r.exercise.hint,
            }),
        }
    }
}

/// The document for a `--mistakes` run.
#[derive(Debug, Serialize)]
pub struct MistakesDoc<'a> {
    schema: u32,
    mode: &'static str,
    summary: MistakesSummary,
    mistakes: &'a [MistakeResult<'a>],
}

#[derive(Debug, Serialize)]
struct MistakesSummary {
    mistakes: usize,
    caught: usize,
}

impl<'a> MistakesDoc<'a> {
    /// The document for these results.
    pub fn new(mistakes: &'a [MistakeResult<'a>]) -> Self {
        MistakesDoc {
            schema: SCHEMA,
            mode: "mistakes",
            summary: MistakesSummary {
                mistakes: mistakes.len(),
                caught: mistakes.iter().filter(|m| m.caught).count(),
            },
            mistakes,
        }
    }
}

/// Prints a document on stdout, on one line.
pub fn print(doc: &impl Serialize) {
    println!(
        "{}",
        serde_json::to_string(doc).expect("the documents always serialize")
    );
}
