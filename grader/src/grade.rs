//! From test outcomes to exercise statuses, points and the next exercise to do.
use serde::Serialize;

use crate::classify::TestStatus;
use crate::manifest::Exercise;

/// The status of one exercise.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ExerciseStatus {
    /// Every test passed.
    Done,
    /// Some test failed or leaked, or some are started and others not.
    Failing,
    /// Every test hit `todo!()`.
    NotStarted,
    /// The exercise's files do not compile.
    DoesNotCompile,
    /// A test ran past its deadline.
    TimedOut,
    /// A test process was killed by a signal.
    Crashed,
    /// The grader would not build or run it: its file uses a construct no exercise needs
    /// (`#[no_mangle]`, ...), or its test binary changed after it was built.
    Refused,
}

impl ExerciseStatus {
    /// The status in words, for the terminal.
    pub fn words(self) -> &'static str {
        match self {
            ExerciseStatus::Done => "done",
            ExerciseStatus::Failing => "failing",
            ExerciseStatus::NotStarted => "not started",
            ExerciseStatus::DoesNotCompile => "does not compile",
            ExerciseStatus::TimedOut => "timed out",
            ExerciseStatus::Crashed => "crashed",
            ExerciseStatus::Refused => "refused",
        }
    }
}

/// The result of one test.
#[derive(Debug, Clone, Serialize)]
pub struct TestResult {
    /// The test's full name.
    pub name: String,
    /// Its status.
    #[serde(serialize_with = "crate::classify::serialize_status")]
    pub status: TestStatus,
    /// Why it did not pass (empty when it passed).
    pub message: String,
}

/// The result of one exercise.
#[derive(Debug, Clone)]
pub struct ExerciseResult<'m> {
    /// The exercise, from the manifest.
    pub exercise: &'m Exercise,
    /// Its status.
    pub status: ExerciseStatus,
    /// Why the grader refused it, when it did (one line per reason).
    pub refusal: Option<String>,
    /// The compiler's errors when it does not compile.
    pub compiler_message: Option<String>,
    /// Its tests, in listing order.
    pub tests: Vec<TestResult>,
}

impl<'m> ExerciseResult<'m> {
    /// Grades one exercise from the grader's refusal (if it refused it), its compiler errors
    /// (if it did not compile) and its tests.
    pub fn new(
        exercise: &'m Exercise,
        refusal: Option<String>,
        compiler_message: Option<String>,
        tests: Vec<TestResult>,
    ) -> Self {
        let status = status(refusal.is_some(), compiler_message.is_some(), &tests);
        ExerciseResult {
            exercise,
            status,
            refusal,
            compiler_message,
            tests,
        }
    }

    /// The points earned: all of them when done, else none.
    pub fn earned(&self) -> u32 {
        if self.status == ExerciseStatus::Done {
            self.exercise.points
        } else {
            0
        }
    }

    /// The test to show for a started exercise that is not done: the first that failed in a
    /// way other than not being started, else the first that did not pass.
    pub fn first_failure(&self) -> Option<&TestResult> {
        let failed = |t: &&TestResult| t.status != TestStatus::Passed;
        self.tests
            .iter()
            .filter(failed)
            .find(|t| t.status != TestStatus::NotStarted)
            .or_else(|| self.tests.iter().find(failed))
    }
}

/// An exercise's status from whether it was refused, whether it compiled and its tests' statuses.
pub fn status(refused: bool, does_not_compile: bool, tests: &[TestResult]) -> ExerciseStatus {
    let all = |s: TestStatus| tests.iter().all(|t| t.status == s);
    let any = |s: TestStatus| tests.iter().any(|t| t.status == s);
    if refused {
        ExerciseStatus::Refused
    } else if does_not_compile {
        ExerciseStatus::DoesNotCompile
    } else if tests.is_empty() {
        // The grader refuses exercises without tests; never call them done.
        ExerciseStatus::NotStarted
    } else if all(TestStatus::Passed) {
        ExerciseStatus::Done
    } else if all(TestStatus::NotStarted) {
        ExerciseStatus::NotStarted
    } else if any(TestStatus::TimedOut) {
        ExerciseStatus::TimedOut
    } else if any(TestStatus::Crashed) {
        ExerciseStatus::Crashed
    } else {
        ExerciseStatus::Failing
    }
}

/// The results of a whole run, in manifest order.
#[derive(Debug, Clone)]
pub struct Grade<'m> {
    /// The selected exercises.
    pub exercises: Vec<ExerciseResult<'m>>,
}

impl Grade<'_> {
    /// How many exercises are done.
    pub fn done(&self) -> usize {
        self.exercises
            .iter()
            .filter(|e| e.status == ExerciseStatus::Done)
            .count()
    }

    /// Points earned.
    pub fn points(&self) -> u32 {
        self.exercises.iter().map(ExerciseResult::earned).sum()
    }

    /// Points available.
    pub fn max_points(&self) -> u32 {
        self.exercises.iter().map(|e| e.exercise.points).sum()
    }

    /// The first exercise, in manifest order, that is not done.
    pub fn next(&self) -> Option<&ExerciseResult<'_>> {
        self.exercises
            .iter()
            .find(|e| e.status != ExerciseStatus::Done)
    }

    /// True when every selected exercise is done.
    pub fn all_done(&self) -> bool {
        self.next().is_none()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use TestStatus::*;

    fn tests(statuses: &[TestStatus]) -> Vec<TestResult> {
        statuses
            .iter()
            .enumerate()
            .map(|(i, &status)| TestResult {
                name: format!("t{i}"),
                status,
                message: String::new(),
            })
            .collect()
    }

    #[test]
    fn statuses_aggregate() {
        let cases = [
            (false, vec![Passed, Passed], ExerciseStatus::Done),
            (true, vec![], ExerciseStatus::DoesNotCompile),
            (
                false,
                vec![NotStarted, NotStarted],
                ExerciseStatus::NotStarted,
            ),
            (false, vec![Passed, NotStarted], ExerciseStatus::Failing),
            (false, vec![Passed, Leaked], ExerciseStatus::Failing),
            (
                false,
                vec![Failed, Crashed, TimedOut],
                ExerciseStatus::TimedOut,
            ),
            (false, vec![Failed, Crashed], ExerciseStatus::Crashed),
            (false, vec![Failed, Passed], ExerciseStatus::Failing),
            (false, vec![], ExerciseStatus::NotStarted),
        ];
        for (broken, statuses, want) in cases {
            assert_eq!(
                status(false, broken, &tests(&statuses)),
                want,
                "{statuses:?}"
            );
        }
        // A refusal wins over everything: its tests never ran.
        assert_eq!(status(true, true, &[]), ExerciseStatus::Refused);
        assert_eq!(
            status(true, false, &tests(&[Passed])),
            ExerciseStatus::Refused
        );
    }

    #[test]
    fn points_and_next() {
        let m = crate::manifest::Manifest::parse(
            r#"
[[chapters]]
id = "c"
title = "C"
term = "C"
[[exercises]]
id = "c/a"
title = "A"
term = "A"
file = "exercises/c/a.rs"
points = 10
[[exercises]]
id = "c/b"
title = "B"
term = "B"
file = "exercises/c/b.rs"
points = 20
"#,
        )
        .unwrap();
        let grade = Grade {
            exercises: vec![
                ExerciseResult::new(&m.exercises[0], None, None, tests(&[Passed])),
                ExerciseResult::new(&m.exercises[1], None, None, tests(&[NotStarted, Failed])),
            ],
        };
        assert_eq!(
            (grade.done(), grade.points(), grade.max_points()),
            (1, 10, 30)
        );
        assert_eq!(grade.next().unwrap().exercise.id, "c/b");
        assert_eq!(grade.next().unwrap().first_failure().unwrap().name, "t1");
        assert!(!grade.all_done());
    }
}
