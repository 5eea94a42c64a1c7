//! Lists the tests in each exercise's test binary.
use std::collections::BTreeMap;
use std::path::Path;
use std::process::{Command, Stdio};

use anyhow::{Context, Result, bail};

use crate::binary::Binary;
use crate::build::Built;
use crate::targets;

/// The tests of each exercise, by exercise id (exercises that did not compile have none).
#[derive(Debug, Clone, Default)]
pub struct Plan {
    /// Exercise id → (its test binary, its test names in listing order).
    pub tests: BTreeMap<String, (Binary, Vec<String>)>,
}

/// Lists the tests of every binary that was built; each exercise's target must hold tests. A
/// binary that changed since the build is not run: its exercise moves to `built.refused`.
pub fn plan(root: &Path, built: &mut Built) -> Result<Plan> {
    let mut listed = Vec::new();
    let binaries = std::mem::take(&mut built.binaries);
    for (id, exe) in binaries {
        if let Err(why) = exe.verify() {
            built.refused.insert(id, why);
            continue;
        }
        let names = list(root, &exe.path)?;
        listed.push((id.clone(), exe.clone(), names));
        built.binaries.insert(id, exe);
    }
    check(listed)
}

/// Groups listed tests `(exercise id, exe, names)`; a target with no test is an error.
pub fn check(listed: Vec<(String, Binary, Vec<String>)>) -> Result<Plan> {
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

    /// A binary that stands in for a test binary: this test's own executable.
    fn some_binary() -> Binary {
        Binary::record(std::env::current_exe().unwrap()).unwrap()
    }

    #[test]
    fn groups_tests_by_exercise() {
        let plan = check(vec![(
            "processes/reap_all".into(),
            some_binary(),
            vec!["a".into(), "b::case_1".into()],
        )])
        .unwrap();
        assert_eq!(plan.tests["processes/reap_all"].1, ["a", "b::case_1"]);
    }

    #[test]
    fn a_binary_changed_before_listing_is_not_run() {
        use std::os::unix::fs::PermissionsExt;
        let path = std::env::temp_dir().join(format!("oskata-list-{}.sh", std::process::id()));
        let ran = path.with_extension("ran");
        std::fs::write(&path, "#!/bin/sh\necho 'a: test'\n").unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
        let mut built = Built::default();
        let exe = Binary::record(path.clone()).unwrap();
        built.binaries.insert("c/a".into(), exe);
        let fake = format!("#!/bin/sh\ntouch '{}'\necho 'a: test'\n", ran.display());
        std::fs::write(&path, fake).unwrap();

        let plan = plan(Path::new("/"), &mut built).unwrap();
        assert!(plan.tests.is_empty() && built.binaries.is_empty());
        assert!(built.refused["c/a"].contains("changed after it was built"));
        assert!(!ran.exists(), "the changed binary ran");
        std::fs::remove_file(&path).unwrap();
    }

    #[test]
    fn a_target_without_tests_names_its_file() {
        let e = check(vec![(
            "processes/zombies".into(),
            some_binary(),
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
