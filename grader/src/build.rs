//! Builds the kit's test binaries with cargo, leaving out (`OSKATA_OMIT`) the exercises that
//! do not compile, so that one broken file does not stop the grading of the others.
use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read};
use std::path::{Component, Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use anyhow::{Context, Result, bail};
use indicatif::ProgressBar;
use serde::Deserialize;

use crate::manifest::Manifest;
use crate::signals;
use crate::ui::Ui;

/// How much compiler output is kept for one exercise.
const KEEP_MESSAGES: usize = 4096;
/// How often a running cargo is checked for exit and interruption.
const CARGO_TICK: Duration = Duration::from_millis(20);

/// One build of the kit.
#[derive(Debug, Clone)]
pub struct Build<'a> {
    /// The kit's root (absolute).
    pub root: &'a Path,
    /// The manifest, to map files to exercises.
    pub manifest: &'a Manifest,
    /// Build `solutions/` instead of `exercises/`.
    pub solutions: bool,
    /// Build this exercise from this file instead (`OSKATA_SWAP`); if that file does not
    /// compile, [`Build::run`] stops there, with no binaries.
    pub swap: Option<(&'a str, PathBuf)>,
    /// The target dir; `None`: cargo's default, shared with `cargo test`, until something
    /// must be left out, and then `<root>/target/grader-omit`.
    pub target_dir: Option<PathBuf>,
}

/// The result of a build that succeeded, perhaps without some exercises.
#[derive(Debug, Clone, Default)]
pub struct Built {
    /// The test binaries: (target name, executable).
    pub binaries: Vec<(String, PathBuf)>,
    /// The exercises left out, with their compiler errors.
    pub broken: BTreeMap<String, String>,
}

impl Build<'_> {
    /// Builds, leaving out each exercise whose files do not compile, until the build succeeds.
    pub fn run(&self, ui: &Ui) -> Result<Built> {
        let mut broken: BTreeMap<String, String> = BTreeMap::new();
        loop {
            let omit: Vec<&str> = broken.keys().map(String::as_str).collect();
            let attempt = self.cargo(&omit, ui)?;
            if attempt.success {
                return Ok(Built {
                    binaries: attempt.binaries,
                    broken,
                });
            }
            let mut found = BTreeMap::new();
            let mut unmapped = String::new();
            for (diagnostic, rendered) in &attempt.errors {
                match self.exercise_of(diagnostic) {
                    Some(id) if !broken.contains_key(&id) => {
                        append_bounded(found.entry(id).or_default(), rendered)
                    }
                    _ => append_bounded(&mut unmapped, rendered),
                }
            }
            if found.is_empty() {
                let omitted = if omit.is_empty() {
                    String::new()
                } else {
                    format!(" (leaving out {})", omit.join(", "))
                };
                let shown = if unmapped.is_empty() {
                    attempt.stderr
                } else {
                    unmapped
                };
                bail!(
                    "the kit does not build{omitted}, and the errors are in no exercise's files:\n{shown}"
                );
            }
            broken.extend(found);
            if let Some((id, _)) = &self.swap
                && broken.contains_key(*id)
            {
                // The swapped-in file itself does not compile: nothing of it to run.
                return Ok(Built {
                    binaries: Vec::new(),
                    broken,
                });
            }
        }
    }

    /// The exercise a compiler error belongs to: its primary span's file (or the macro call
    /// that led there), else any span's file.
    fn exercise_of(&self, d: &Diagnostic) -> Option<String> {
        let primary = d.spans.iter().filter(|s| s.is_primary);
        let mut files = Vec::new();
        for span in primary.chain(d.spans.iter().filter(|s| !s.is_primary)) {
            let mut at = Some(span);
            while let Some(s) = at {
                files.push(s.file_name.as_str());
                at = s.expansion.as_ref().map(|e| &e.span);
            }
        }
        files
            .into_iter()
            .find_map(|f| exercise_of_file(self.manifest, self.root, f, self.swap.as_ref()))
    }

    fn cargo(&self, omit: &[&str], ui: &Ui) -> Result<Attempt> {
        let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
        let mut cmd = Command::new(cargo);
        cmd.current_dir(self.root)
            .args(["test", "--manifest-path"])
            .arg(self.root.join("Cargo.toml"))
            .args([
                "-p",
                "oskata",
                "--tests",
                "--no-run",
                "--message-format=json",
            ])
            .env_remove("OSKATA_OMIT")
            .env_remove("OSKATA_SWAP")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        if self.solutions {
            cmd.args(["--features", "solutions"]);
        }
        if !omit.is_empty() {
            cmd.env("OSKATA_OMIT", omit.join(","));
        }
        if let Some((id, path)) = &self.swap {
            cmd.env("OSKATA_SWAP", format!("{id}={}", path.display()));
        }
        match (&self.target_dir, omit.is_empty()) {
            (Some(dir), _) => {
                cmd.env("CARGO_TARGET_DIR", dir);
            }
            (None, false) => {
                cmd.env("CARGO_TARGET_DIR", self.root.join("target/grader-omit"));
            }
            (None, true) => {}
        }
        let what = if omit.is_empty() {
            String::new()
        } else {
            format!(" without {}", omit.join(", "))
        };
        let spinner = ui.spinner(&format!("building the tests{what} ..."));
        let mut child = cmd.spawn().context("cannot run cargo")?;
        let mut stderr = child.stderr.take().expect("piped stderr");
        let err_reader = std::thread::spawn(move || {
            let mut s = String::new();
            let _ = stderr.read_to_string(&mut s);
            s
        });
        let stdout = child.stdout.take().expect("piped stdout");
        let out_reader = {
            let spinner = spinner.clone();
            std::thread::spawn(move || read_records(stdout, &spinner, &what))
        };
        // Wait here rather than in a read, so that Ctrl-C stops cargo even when the signal
        // was sent to the grader alone; what cargo started is then re-parented and swept.
        let status = loop {
            if let Some(status) = child.try_wait().context("cannot wait for cargo")? {
                break Some(status);
            }
            if signals::interrupted() {
                let _ = child.kill();
                let _ = child.wait();
                crate::reaper::sweep();
                break None;
            }
            std::thread::sleep(CARGO_TICK);
        };
        let mut attempt = out_reader
            .join()
            .unwrap_or_else(|_| Err(anyhow::anyhow!("cannot read cargo's output")))?;
        attempt.stderr = err_reader.join().unwrap_or_default();
        spinner.finish_and_clear();
        let Some(status) = status.filter(|_| !signals::interrupted()) else {
            bail!("interrupted");
        };
        attempt.success = status.success();
        Ok(attempt)
    }
}

/// Reads cargo's JSON messages: the test executables and the compiler's errors.
fn read_records(stdout: impl Read, spinner: &ProgressBar, what: &str) -> Result<Attempt> {
    let mut attempt = Attempt::default();
    for line in BufReader::new(stdout).lines() {
        let line = line.context("cannot read cargo's output")?;
        let Ok(record) = serde_json::from_str::<Record>(&line) else {
            continue;
        };
        match record.reason.as_str() {
            "compiler-artifact" => {
                if let Some(target) = &record.target {
                    spinner.set_message(format!("building the tests{what} ... {}", target.name));
                    if let (true, Some(exe)) =
                        (target.kind.iter().any(|k| k == "test"), record.executable)
                    {
                        attempt.binaries.push((target.name.clone(), exe));
                    }
                }
            }
            "compiler-message" => {
                if let Some(m) = record.message
                    && m.level.starts_with("error")
                    && !m.spans.is_empty()
                {
                    // The library is built twice (as a dependency and as a test): say it once.
                    let rendered = m.rendered.clone().unwrap_or_default();
                    if !attempt.errors.iter().any(|(_, r)| *r == rendered) {
                        attempt.errors.push((m, rendered));
                    }
                }
            }
            _ => {}
        }
    }
    Ok(attempt)
}

/// What one `cargo test --no-run` produced.
#[derive(Debug, Default)]
struct Attempt {
    success: bool,
    binaries: Vec<(String, PathBuf)>,
    errors: Vec<(Diagnostic, String)>,
    stderr: String,
}

/// One line of cargo's `--message-format=json` output (only the fields the grader reads).
#[derive(Debug, Deserialize)]
struct Record {
    reason: String,
    #[serde(default)]
    target: Option<Target>,
    #[serde(default)]
    executable: Option<PathBuf>,
    #[serde(default)]
    message: Option<Diagnostic>,
}

#[derive(Debug, Deserialize)]
struct Target {
    name: String,
    kind: Vec<String>,
}

/// A rustc diagnostic.
#[derive(Debug, Deserialize)]
pub struct Diagnostic {
    level: String,
    #[serde(default)]
    rendered: Option<String>,
    #[serde(default)]
    spans: Vec<Span>,
}

#[derive(Debug, Deserialize)]
struct Span {
    file_name: String,
    is_primary: bool,
    #[serde(default)]
    expansion: Option<Box<Expansion>>,
}

#[derive(Debug, Deserialize)]
struct Expansion {
    span: Span,
}

/// The exercise a source file belongs to: `exercises/`, `solutions/` or `tests/<ch>/<ex>.rs`,
/// a mistake file of the manifest, or the file swapped in for an exercise.
pub fn exercise_of_file(
    manifest: &Manifest,
    root: &Path,
    file: &str,
    swap: Option<&(&str, PathBuf)>,
) -> Option<String> {
    let rel = relative(root, Path::new(file));
    if let Some((id, path)) = swap
        && relative(root, path) == rel
    {
        return Some((*id).to_owned());
    }
    for e in &manifest.exercises {
        if e.mistakes
            .iter()
            .any(|m| relative(root, Path::new(&m.file)) == rel)
        {
            return Some(e.id.clone());
        }
    }
    let parts: Vec<&str> = rel.iter().filter_map(|p| p.to_str()).collect();
    let [top, chapter, file] = parts[..] else {
        return None;
    };
    let name = file.strip_suffix(".rs")?;
    let id = format!("{chapter}/{name}");
    (["exercises", "solutions", "tests"].contains(&top) && manifest.exercise(&id).is_some())
        .then_some(id)
}

/// `path` relative to `root` when under it, with `.` and `..` resolved.
fn relative(root: &Path, path: &Path) -> PathBuf {
    let path = if path.is_absolute() {
        path.to_path_buf()
    } else {
        root.join(path)
    };
    let mut clean = PathBuf::new();
    for c in path.components() {
        match c {
            Component::CurDir => {}
            Component::ParentDir => {
                clean.pop();
            }
            other => clean.push(other),
        }
    }
    clean
        .strip_prefix(root)
        .map(Path::to_path_buf)
        .unwrap_or(clean)
}

/// Appends a compiler message to `into`, keeping it under [`KEEP_MESSAGES`] bytes.
fn append_bounded(into: &mut String, message: &str) {
    const MORE: &str = "[... more compiler errors left out ...]\n";
    if into.ends_with(MORE) {
        return;
    }
    if into.len() + message.len() <= KEEP_MESSAGES {
        into.push_str(message);
        return;
    }
    let mut cut = KEEP_MESSAGES.saturating_sub(into.len());
    while !message.is_char_boundary(cut) {
        cut -= 1;
    }
    into.push_str(&message[..cut]);
    if !into.ends_with('\n') {
        into.push('\n');
    }
    into.push_str(MORE);
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

[[exercises.mistakes]]
file = "mistakes/processes/fork_basics/child_returns.rs"
reason = "returned into the test"
"#,
        )
        .unwrap()
    }

    #[test]
    fn files_map_to_exercises() {
        let m = manifest();
        let root = Path::new("/kit");
        let of = |f: &str| exercise_of_file(&m, root, f, None);
        let id = Some("processes/fork_basics".to_owned());
        assert_eq!(of("exercises/processes/fork_basics.rs"), id);
        assert_eq!(of("/kit/exercises/processes/fork_basics.rs"), id);
        assert_eq!(of("./solutions/processes/fork_basics.rs"), id);
        assert_eq!(of("tests/processes/fork_basics.rs"), id);
        assert_eq!(
            of("/kit/mistakes/processes/fork_basics/child_returns.rs"),
            id
        );
        assert_eq!(
            of("mistakes/processes/../processes/fork_basics/child_returns.rs"),
            id
        );
        assert_eq!(of("tests/processes/main.rs"), None);
        assert_eq!(of("exercises/processes/unknown.rs"), None);
        assert_eq!(of("harness/src/lib.rs"), None);
        assert_eq!(of("/elsewhere/exercises/processes/fork_basics.rs"), None);
        let swap = ("processes/fork_basics", PathBuf::from("/tmp/x.rs"));
        assert_eq!(exercise_of_file(&m, root, "/tmp/x.rs", Some(&swap)), id);
    }

    #[test]
    fn diagnostics_map_through_their_spans() {
        let m = manifest();
        let b = Build {
            root: Path::new("/kit"),
            manifest: &m,
            solutions: false,
            swap: None,
            target_dir: None,
        };
        let d: Diagnostic = serde_json::from_str(
            r#"{"level":"error","rendered":"error[E0308]","spans":[
                {"file_name":"/rustc/lib/macros.rs","is_primary":true,"expansion":{"span":
                    {"file_name":"/kit/exercises/processes/fork_basics.rs","is_primary":false}}}]}"#,
        )
        .unwrap();
        assert_eq!(b.exercise_of(&d).as_deref(), Some("processes/fork_basics"));
        let d: Diagnostic = serde_json::from_str(
            r#"{"level":"error","spans":[{"file_name":"src/lib.rs","is_primary":true}]}"#,
        )
        .unwrap();
        assert_eq!(b.exercise_of(&d), None);
    }

    #[test]
    fn messages_stay_bounded() {
        let mut s = String::new();
        for _ in 0..300 {
            append_bounded(&mut s, "error: ü is wrong here\n");
        }
        assert!(s.len() <= KEEP_MESSAGES + 64, "{}", s.len());
        assert!(s.ends_with("[... more compiler errors left out ...]\n"));
    }
}
