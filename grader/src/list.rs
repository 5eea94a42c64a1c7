//! Lists the tests in each exercise's test binary.
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use anyhow::{Context, Result, bail};

use crate::build::Built;
use crate::targets;

/// The tests of each exercise, by exercise id (exercises that did not compile have none).
#[derive(Debug, Clone, Default)]
pub struct Plan {
    /// Exercise id → (its test binary, its test names in listing order).
    pub tests: BTreeMap<String, (PathBuf, Vec<String>)>,
}

/// Lists the tests of every binary that was built; each exercise's target must hold tests.
pub fn plan(root: &Path, built: &Built) -> Result<Plan> {
    let mut listed = Vec::new();
    for (id, exe) in &built.binaries {
        listed.push((id.clone(), exe.clone(), list(root, exe)?));
    }
    check(listed)
}

/// Groups listed tests `(exercise id, exe, names)`; a target with no test is an error.
pub fn check(listed: Vec<(String, PathBuf, Vec<String>)>) -> Result<Plan> {
    let mut plan = Plan::default();
    for (id, exe, names) in listed {
        if names.is_empty() {
            bail!(
                "{}: the test target `{}` of exercise `{id}` has no tests",
                targets::test_file(&id),
                targets::name_of(&id)
            );
        }
        plan.tests.insert(id, (exe, names));
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

    #[test]
    fn parses_terse_listings() {
        let text = "child_reports_its_parent: test\nreaps::case_1: test\nbench_x: benchmark\n";
        assert_eq!(
            parse_list(text),
            ["child_reports_its_parent", "reaps::case_1"]
        );
    }

    #[test]
    fn groups_tests_by_exercise() {
        let plan = check(vec![(
            "processes/reap_all".into(),
            PathBuf::from("/x"),
            vec!["a".into(), "b::case_1".into()],
        )])
        .unwrap();
        assert_eq!(plan.tests["processes/reap_all"].1, ["a", "b::case_1"]);
    }

    #[test]
    fn a_target_without_tests_names_its_file() {
        let e = check(vec![(
            "processes/zombies".into(),
            PathBuf::from("/x"),
            Vec::new(),
        )])
        .unwrap_err()
        .to_string();
        assert!(
            e.starts_with("tests/processes/zombies.rs:") && e.contains("has no tests"),
            "{e}"
        );
    }
}
