//! Lists the tests in each exercise's test binary.
use std::collections::BTreeMap;
use std::io::Read;
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Result, bail};
use nix::sys::signal::{Signal, killpg};
use nix::unistd::Pid;

use crate::binary::Binary;
use crate::build::Built;
use crate::reaper;
use crate::targets;

/// The tests of each exercise, by exercise id (exercises that did not compile have none).
#[derive(Debug, Clone, Default)]
pub struct Plan {
    /// Exercise id → (its test binary, its test names in listing order).
    pub tests: BTreeMap<String, (Binary, Vec<String>)>,
}

/// How long a test binary may take to list its tests (it runs no test code to do so).
const LIST_LIMIT: Duration = Duration::from_secs(30);
/// How much of a listing is read.
const LIST_KEEP: u64 = 1 << 20;

/// Lists the tests of every binary that was built; each exercise's target must hold tests. A
/// binary that changed since the build, or that cannot list its tests within [`LIST_LIMIT`],
/// is not run: its exercise moves to `built.refused`.
pub fn plan(root: &Path, built: &mut Built) -> Result<Plan> {
    let mut listed = Vec::new();
    let binaries = std::mem::take(&mut built.binaries);
    for (id, exe) in binaries {
        if let Err(why) = exe.verify() {
            built.refused.insert(id, why);
            continue;
        }
        let names = match list(root, &exe.path, LIST_LIMIT) {
            Ok(names) => names,
            Err(why) => {
                built.refused.insert(id, why);
                continue;
            }
        };
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

/// The test names `<exe> --list --format terse` prints, run in a process group of its own
/// and killed with it after `limit`; the message that refuses the exercise otherwise.
fn list(root: &Path, exe: &Path, limit: Duration) -> Result<Vec<String>, String> {
    let shown = exe.display();
    let mut cmd = Command::new(exe);
    cmd.args(["--list", "--format", "terse"])
        .current_dir(root)
        .env("CARGO_MANIFEST_DIR", root)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .process_group(0);
    // Registered with the reaper, whose sweep of strays must leave this child alone.
    let mut child =
        reaper::spawn(&mut cmd).map_err(|e| format!("the grader cannot run {shown}: {e}"))?;
    let pid = Pid::from_raw(child.id() as i32);
    let mut stdout = child.stdout.take().expect("piped stdout");
    let reader = std::thread::spawn(move || {
        let mut text = String::new();
        let _ = (&mut stdout).take(LIST_KEEP).read_to_string(&mut text);
        text
    });
    let start = Instant::now();
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break Ok(status),
            Ok(None) if start.elapsed() < limit => {
                std::thread::sleep(Duration::from_millis(5));
            }
            Ok(None) => break Err(format!("did not list its tests within {limit:?}")),
            Err(e) => break Err(format!("cannot be waited for: {e}")),
        }
    };
    // Whatever it started goes with it (and whatever left its group, with the grader's sweep of
    // its orphans), so the reader sees end-of-file.
    let _ = killpg(pid, Signal::SIGKILL);
    let _ = child.wait();
    reaper::finished(child.id());
    reaper::sweep();
    let text = reader.join().unwrap_or_default();
    match status {
        Ok(status) if status.success() => Ok(parse_list(&text)),
        Ok(status) => Err(format!(
            "the test binary {shown} could not list its tests (`--list` ended with {status})"
        )),
        Err(why) => Err(format!("the test binary {shown} {why}")),
    }
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

    /// An executable shell script standing in for a test binary.
    fn script(name: &str, body: &str) -> std::path::PathBuf {
        use std::os::unix::fs::PermissionsExt;
        let path = std::env::temp_dir().join(format!(
            "oskata-grader-list-{}-{name}.sh",
            std::process::id()
        ));
        std::fs::write(&path, format!("#!/bin/sh\n{body}\n")).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
        path
    }

    #[test]
    fn a_listing_that_hangs_or_fails_is_refused_not_waited_for() {
        let root = std::env::temp_dir();
        let ok = script("ok", "echo 'a: test'; echo 'b::case_1: test'");
        assert_eq!(
            list(&root, &ok, Duration::from_secs(30)).unwrap(),
            ["a", "b::case_1"]
        );
        let hangs = script("hangs", "sleep 1000 & sleep 1000");
        let start = Instant::now();
        let e = list(&root, &hangs, Duration::from_millis(200)).unwrap_err();
        assert!(e.contains("did not list its tests within 200ms"), "{e}");
        assert!(start.elapsed() < Duration::from_secs(10));
        let fails = script("fails", "exit 3");
        let e = list(&root, &fails, Duration::from_secs(30)).unwrap_err();
        assert!(e.contains("could not list its tests"), "{e}");
        for p in [ok, hangs, fails] {
            std::fs::remove_file(p).unwrap();
        }
    }

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
