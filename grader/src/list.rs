//! Lists the tests in each test binary and checks them against the manifest.
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use anyhow::{Context, Result, bail};

use crate::build::Built;
use crate::manifest::{FILE, Manifest};

/// The tests of each exercise, by exercise id (exercises that were left out have none).
#[derive(Debug, Clone, Default)]
pub struct Plan {
    /// Exercise id → (its chapter's test binary, its test names in listing order).
    pub tests: BTreeMap<String, (PathBuf, Vec<String>)>,
}

/// Lists every test binary's tests and checks that each belongs to an exercise and that
/// every exercise that compiled has tests.
pub fn plan(manifest: &Manifest, root: &Path, built: &Built) -> Result<Plan> {
    let mut listed = Vec::new();
    for (binary, exe) in &built.binaries {
        listed.push((binary.clone(), exe.clone(), list(root, exe)?));
    }
    check(manifest, &built.broken, listed)
}

/// Checks listed tests `(binary, exe, names)` against the manifest and groups them.
pub fn check(
    manifest: &Manifest,
    broken: &BTreeMap<String, String>,
    listed: Vec<(String, PathBuf, Vec<String>)>,
) -> Result<Plan> {
    let mut plan = Plan::default();
    for (binary, exe, names) in listed {
        if manifest.chapter(&binary).is_none() {
            bail!(
                "tests/{binary}: test target `{binary}` is not a chapter in {FILE} (each test binary must be \
                 tests/<chapter>/main.rs)"
            );
        }
        for name in names {
            let segment = name.split("::").next().unwrap_or(&name);
            let id = format!("{binary}/{segment}");
            if manifest.exercise(&id).is_none() {
                bail!(
                    "tests/{binary}/{segment}.rs: test `{name}` belongs to no exercise: {FILE} has no exercise `{id}`"
                );
            }
            plan.tests
                .entry(id)
                .or_insert_with(|| (exe.clone(), Vec::new()))
                .1
                .push(name);
        }
    }
    for e in &manifest.exercises {
        if !broken.contains_key(&e.id) && !plan.tests.contains_key(&e.id) {
            bail!(
                "exercise `{}` in {FILE} has no tests (expected them in tests/{}.rs)",
                e.id,
                e.id
            );
        }
    }
    Ok(plan)
}

/// The test names `<exe> --list --format terse` prints.
fn list(root: &Path, exe: &Path) -> Result<Vec<String>> {
    let out = Command::new(exe)
        .args(["--list", "--format", "terse"])
        .current_dir(root)
        .env("CARGO_MANIFEST_DIR", root)
        .stdin(Stdio::null())
        .stderr(Stdio::inherit())
        .output()
        .with_context(|| format!("cannot run {}", exe.display()))?;
    if !out.status.success() {
        bail!("`{} --list` failed ({})", exe.display(), out.status);
    }
    Ok(parse_list(&String::from_utf8_lossy(&out.stdout)))
}

/// The names from libtest's terse listing (`<name>: test` lines).
pub fn parse_list(text: &str) -> Vec<String> {
    text.lines()
        .filter_map(|l| l.strip_suffix(": test"))
        .map(str::to_owned)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn manifest() -> Manifest {
        Manifest::parse(
            r#"
[[chapters]]
id = "processes"
title = "Processes"
term = "进程"

[[exercises]]
id = "processes/fork_basics"
title = "Fork"
term = "派生"
file = "exercises/processes/fork_basics.rs"
points = 10

[[exercises]]
id = "processes/reap_all"
title = "Reap"
term = "回收"
file = "exercises/processes/reap_all.rs"
points = 10
"#,
        )
        .unwrap()
    }

    fn listed(binary: &str, names: &[&str]) -> Vec<(String, PathBuf, Vec<String>)> {
        vec![(
            binary.into(),
            PathBuf::from("/x"),
            names.iter().map(|s| s.to_string()).collect(),
        )]
    }

    #[test]
    fn parses_terse_listings() {
        let text = "fork_basics::a: test\nreap_all::b::case_1: test\nbench_x: benchmark\n";
        assert_eq!(parse_list(text), ["fork_basics::a", "reap_all::b::case_1"]);
    }

    #[test]
    fn groups_tests_by_exercise() {
        let plan = check(
            &manifest(),
            &BTreeMap::new(),
            listed("processes", &["fork_basics::a", "reap_all::b::case_1"]),
        )
        .unwrap();
        assert_eq!(plan.tests["processes/reap_all"].1, ["reap_all::b::case_1"]);
    }

    #[test]
    fn a_test_of_no_exercise_names_its_file() {
        let e = check(
            &manifest(),
            &BTreeMap::new(),
            listed("processes", &["fork_basics::a", "zombies::x"]),
        )
        .unwrap_err()
        .to_string();
        assert!(e.starts_with("tests/processes/zombies.rs:"), "{e}");
    }

    #[test]
    fn a_binary_of_no_chapter_is_named() {
        let e = check(&manifest(), &BTreeMap::new(), listed("signals", &["x::y"]))
            .unwrap_err()
            .to_string();
        assert!(e.starts_with("tests/signals:"), "{e}");
    }

    #[test]
    fn an_exercise_without_tests_is_an_error_unless_it_did_not_compile() {
        let e = check(
            &manifest(),
            &BTreeMap::new(),
            listed("processes", &["fork_basics::a"]),
        )
        .unwrap_err()
        .to_string();
        assert!(
            e.contains("`processes/reap_all`") && e.contains("has no tests"),
            "{e}"
        );
        let broken = BTreeMap::from([("processes/reap_all".to_owned(), "error".to_owned())]);
        assert!(
            check(
                &manifest(),
                &broken,
                listed("processes", &["fork_basics::a"])
            )
            .is_ok()
        );
    }
}
