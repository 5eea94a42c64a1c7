//! The grader binary on small fixture kits: bad input must exit 2 with an `error:` naming the
//! problem, before it builds anything; a student file that uses a refused construct is
//! reported as refused and never built, while the other exercises are graded.
use std::fs;
use std::path::{Path, PathBuf};

use assert_cmd::Command;

/// A throwaway kit under the temp dir, removed on drop.
struct Kit(PathBuf);

const CHAPTER: &str = "[[chapters]]\nid = \"processes\"\ntitle = \"Processes\"\nterm = \"进程\"\n";
const EXERCISE: &str = "[[exercises]]\nid = \"processes/fork_basics\"\ntitle = \"Fork\"\nterm = \"派生\"\n\
    file = \"exercises/processes/fork_basics.rs\"\npoints = 10\n";

impl Kit {
    fn new(name: &str, manifest: &str, files: &[&str]) -> Kit {
        let dir = std::env::temp_dir().join(format!("oskata-grader-{}-{name}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).unwrap();
        fs::write(dir.join("Cargo.toml"), CARGO_TOML).unwrap();
        fs::write(dir.join("manifest.toml"), manifest).unwrap();
        for file in files {
            let path = dir.join(file);
            fs::create_dir_all(path.parent().unwrap()).unwrap();
            let text = if file.starts_with("tests/") {
                TEST_HEADER
            } else {
                ""
            };
            fs::write(path, text).unwrap();
        }
        Kit(dir)
    }

    fn path(&self) -> &Path {
        &self.0
    }

    /// Writes `text` to the kit's `file`.
    fn write(&self, file: &str, text: &str) {
        let path = self.path().join(file);
        fs::create_dir_all(path.parent().unwrap()).unwrap();
        fs::write(path, text).unwrap();
    }

    /// Runs the grader with `args`: its exit code, stdout and stderr.
    fn grade(&self, args: &[&str]) -> (Option<i32>, String, String) {
        let out = Command::cargo_bin("oskata-grade")
            .unwrap()
            .arg("--root")
            .arg(self.path())
            .args(args)
            .output()
            .unwrap();
        let text = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
        (out.status.code(), text(&out.stdout), text(&out.stderr))
    }

    /// Runs the grader with `args` and returns its stderr, checking that it exited 2.
    fn fails(&self, args: &[&str]) -> String {
        let out = Command::cargo_bin("oskata-grade")
            .unwrap()
            .arg("--root")
            .arg(self.path())
            .args(args)
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
        assert_eq!(out.status.code(), Some(2), "stderr: {stderr}");
        assert!(
            out.stdout.is_empty(),
            "stdout: {}",
            String::from_utf8_lossy(&out.stdout)
        );
        assert!(stderr.starts_with("error: "), "{stderr}");
        stderr
    }
}

impl Drop for Kit {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

const FILES: &[&str] = &[
    "exercises/processes/fork_basics.rs",
    "solutions/processes/fork_basics.rs",
    "tests/processes/fork_basics.rs",
];

/// The fixture's Cargo.toml: one test target, for its one exercise.
const CARGO_TOML: &str = "[package]\nname = \"kit\"\nautotests = false\n\n\
    [[test]]\nname = \"processes-fork_basics\"\npath = \"tests/processes/fork_basics.rs\"\n";

/// How the fixture's test file brings in its exercise.
const TEST_HEADER: &str = "\
#[cfg(not(any(feature = \"solutions\", feature = \"mistake\")))]
#[path = \"../../exercises/processes/fork_basics.rs\"]
mod fork_basics;
#[cfg(all(feature = \"solutions\", not(feature = \"mistake\")))]
#[path = \"../../solutions/processes/fork_basics.rs\"]
mod fork_basics;
#[cfg(feature = \"mistake\")]
#[path = \"../../target/oskata-mistake/processes/fork_basics.rs\"]
mod fork_basics;
";

#[test]
fn a_broken_manifest_is_named_with_its_line() {
    let kit = Kit::new(
        "syntax",
        &format!("{CHAPTER}\n[[exercises]]\nid = \n"),
        FILES,
    );
    let err = kit.fails(&[]);
    assert!(
        err.contains("manifest.toml") && err.contains("line 7"),
        "{err}"
    );
}

#[test]
fn an_unknown_field_is_named() {
    let kit = Kit::new(
        "field",
        &format!("{CHAPTER}\n{EXERCISE}pionts = 3\n"),
        FILES,
    );
    let err = kit.fails(&[]);
    assert!(
        err.contains("manifest.toml") && err.contains("pionts"),
        "{err}"
    );
}

#[test]
fn a_missing_solution_is_named() {
    let kit = Kit::new("solution", &format!("{CHAPTER}\n{EXERCISE}"), &FILES[..1]);
    let err = kit.fails(&[]);
    assert!(
        err.contains("solutions/processes/fork_basics.rs does not exist"),
        "{err}"
    );
}

#[test]
fn a_missing_mistake_file_is_named() {
    let mistake = "[[exercises.mistakes]]\nfile = \"mistakes/processes/fork_basics/x.rs\"\nreason = \"why\"\n";
    let kit = Kit::new("mistake", &format!("{CHAPTER}\n{EXERCISE}{mistake}"), FILES);
    let err = kit.fails(&[]);
    assert!(
        err.contains("mistakes/processes/fork_basics/x.rs does not exist"),
        "{err}"
    );
}

#[test]
fn an_exercise_file_missing_from_the_manifest_is_named() {
    let files = [FILES, &["exercises/processes/zombies.rs"]].concat();
    let kit = Kit::new("stray", &format!("{CHAPTER}\n{EXERCISE}"), &files);
    let err = kit.fails(&[]);
    assert!(
        err.contains("exercises/processes/zombies.rs is not in manifest.toml"),
        "{err}"
    );
}

#[test]
fn unknown_ids_list_the_valid_ones() {
    let kit = Kit::new("ids", &format!("{CHAPTER}\n{EXERCISE}"), FILES);
    let err = kit.fails(&["--exercise", "processes/nope"]);
    assert!(
        err.contains("processes/nope") && err.contains("processes/fork_basics"),
        "{err}"
    );
    let err = kit.fails(&["--chapter", "signals"]);
    assert!(
        err.contains("signals") && err.contains("processes"),
        "{err}"
    );
}

#[test]
fn a_root_without_a_manifest_is_refused() {
    let kit = Kit::new("noroot", "", FILES);
    fs::remove_file(kit.path().join("manifest.toml")).unwrap();
    let err = kit.fails(&[]);
    assert!(err.contains("manifest.toml"), "{err}");
}

#[test]
fn watch_refuses_json_and_mistakes() {
    let kit = Kit::new("watch", &format!("{CHAPTER}\n{EXERCISE}"), FILES);
    for other in ["--json", "--mistakes"] {
        let err = kit.fails(&["--watch", other]);
        assert!(err.contains("--watch") && err.contains(other), "{err}");
    }
}

#[test]
fn an_exercise_without_a_test_target_gets_the_lines_to_add() {
    let kit = Kit::new("notarget", &format!("{CHAPTER}\n{EXERCISE}"), FILES);
    fs::write(kit.path().join("Cargo.toml"), "[package]\nname = \"kit\"\n").unwrap();
    let err = kit.fails(&[]);
    assert!(
        err.contains("exercise `processes/fork_basics`")
            && err.contains("has no test target")
            && err.contains("name = \"processes-fork_basics\"")
            && err.contains("path = \"tests/processes/fork_basics.rs\""),
        "{err}"
    );
}

#[test]
fn a_test_target_of_no_exercise_is_named() {
    let kit = Kit::new("orphantarget", &format!("{CHAPTER}\n{EXERCISE}"), FILES);
    let extra = format!(
        "{CARGO_TOML}\n[[test]]\nname = \"processes-zombies\"\npath = \"tests/processes/zombies.rs\"\n"
    );
    fs::write(kit.path().join("Cargo.toml"), extra).unwrap();
    let err = kit.fails(&[]);
    assert!(
        err.contains("test target `processes-zombies`") && err.contains("belongs to no exercise"),
        "{err}"
    );
}

#[test]
fn a_test_file_that_brings_in_another_exercise_is_named() {
    let kit = Kit::new("wrongheader", &format!("{CHAPTER}\n{EXERCISE}"), FILES);
    fs::write(
        kit.path().join("tests/processes/fork_basics.rs"),
        TEST_HEADER.replace("fork_basics.rs", "zombies.rs"),
    )
    .unwrap();
    let err = kit.fails(&[]);
    assert!(
        err.contains("tests/processes/fork_basics.rs does not bring in its exercise")
            && err.contains("\"../../exercises/processes/fork_basics.rs\""),
        "{err}"
    );
}

/// A student file that takes over `prctl`, with the attribute also in a comment and a string.
const TAKES_OVER_PRCTL: &str = "\
//! Mentioning #[no_mangle] in a comment is fine.
pub const NOTE: &str = \"#[no_mangle] in a string is fine too\";

#[unsafe(no_mangle)]
pub extern \"C\" fn prctl() -> i32 {
    0
}
";

#[test]
fn a_refused_exercise_is_reported_and_never_built() {
    let kit = Kit::new("refused", &format!("{CHAPTER}\n{EXERCISE}"), FILES);
    kit.write("exercises/processes/fork_basics.rs", TAKES_OVER_PRCTL);
    let want = "exercises/processes/fork_basics.rs:4: #[unsafe(no_mangle)] is not allowed in an \
                exercise: it exports your function under its plain name, which lets it replace \
                functions the test harness relies on (prctl, fork, waitpid, ...). Remove it.";

    let (code, stdout, stderr) = kit.grade(&["--json"]);
    assert_eq!(code, Some(1), "stderr: {stderr}");
    let doc: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    let e = &doc["exercises"][0];
    assert_eq!(e["status"], "refused", "{e}");
    assert_eq!(e["refusal"], want, "{e}");
    assert!(
        e["compiler_message"].is_null() && e["tests"] == serde_json::json!([]),
        "{e}"
    );
    assert_eq!(doc["next"]["id"], "processes/fork_basics");
    // Nothing was built: the fixture's Cargo.toml could not even be built.
    assert!(!kit.path().join("target").exists());

    let (code, stdout, _) = kit.grade(&[]);
    assert_eq!(code, Some(1));
    assert!(
        stdout.contains("processes/fork_basics  refused"),
        "{stdout}"
    );
    assert!(stdout.contains(want), "{stdout}");

    // The solutions are trusted: they are not scanned.
    kit.write("solutions/processes/fork_basics.rs", TAKES_OVER_PRCTL);
    let (_, _, stderr) = kit.grade(&["--solutions"]);
    assert!(
        stderr.contains("cargo"),
        "the solutions were built: {stderr}"
    );
}

/// A kit that cargo can build: two exercises whose tests are plain libtest tests.
fn buildable_kit(name: &str) -> Kit {
    let zombies = EXERCISE.replace("fork_basics", "zombies");
    let kit = Kit::new(name, &format!("{CHAPTER}\n{EXERCISE}\n{zombies}"), FILES);
    let mut cargo = String::from(
        "[package]\nname = \"oskata\"\nversion = \"0.1.0\"\nedition = \"2024\"\nautotests = false\n\n\
         [features]\nsolutions = []\nmistake = []\n\n[workspace]\n",
    );
    for id in ["fork_basics", "zombies"] {
        cargo.push_str(&format!(
            "\n[[test]]\nname = \"processes-{id}\"\npath = \"tests/processes/{id}.rs\"\n"
        ));
        let test = format!(
            "{}\n#[test]\nfn answers() {{\n    assert_eq!({id}::answer(), 42);\n}}\n",
            TEST_HEADER.replace("fork_basics", id)
        );
        kit.write(&format!("tests/processes/{id}.rs"), &test);
        let solution = "pub fn answer() -> u32 {\n    42\n}\n";
        kit.write(&format!("solutions/processes/{id}.rs"), solution);
        kit.write(&format!("exercises/processes/{id}.rs"), solution);
    }
    kit.write("Cargo.toml", &cargo);
    kit
}

#[test]
fn the_other_exercises_are_still_graded() {
    let kit = buildable_kit("refused-one");
    let evil = format!(
        "{}\n#[used]\n#[unsafe(link_section = \".init_array\")]\nstatic RUN: extern \"C\" fn() = early;\nextern \"C\" fn early() {{}}\n",
        "pub fn answer() -> u32 {\n    42\n}\n"
    );
    kit.write("exercises/processes/fork_basics.rs", &evil);
    let (code, stdout, stderr) = kit.grade(&["--json"]);
    assert_eq!(code, Some(1), "stderr: {stderr}");
    let doc: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    let (refused, graded) = (&doc["exercises"][0], &doc["exercises"][1]);
    assert_eq!(refused["status"], "refused", "{refused}");
    let refusal = refused["refusal"].as_str().unwrap();
    assert!(
        refusal.starts_with("exercises/processes/fork_basics.rs:5: #[used] is not allowed")
            && refusal.contains("\nexercises/processes/fork_basics.rs:6: #[unsafe(link_section = ...)] is not allowed"),
        "{refusal}"
    );
    assert_eq!(graded["status"], "done", "{graded}");
    assert_eq!(graded["tests"][0]["status"], "passed", "{graded}");
}
