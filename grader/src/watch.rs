//! `--watch`: grades once, then again each time a selected exercise's files or the manifest
//! change, re-running only the tests of the exercises whose files changed, until Ctrl-C.
use std::collections::{BTreeMap, BTreeSet};
use std::convert::Infallible;
use std::io::IsTerminal;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
use std::time::{Duration, SystemTime};

use anyhow::{Context, Result, bail};
use notify::RecursiveMode;
use notify_debouncer_mini::{DebounceEventResult, new_debouncer};

use crate::build::{Built, Sources};
use crate::cli::Cli;
use crate::grade::{ExerciseResult, Grade, TestResult};
use crate::manifest::{self, Manifest};
use crate::run::Runner;
use crate::ui::{Style, Ui};
use crate::{report, signals};

/// How long the files must be quiet before a change counts (editors write in bursts).
const DEBOUNCE: Duration = Duration::from_millis(300);
/// How often the idle watcher checks for Ctrl-C.
const TICK: Duration = Duration::from_millis(100);

/// What grading one exercise found, kept between rounds (owned: the manifest may be reloaded).
#[derive(Debug, Clone)]
pub struct Found {
    /// Why the grader refused it, when it did.
    pub refusal: Option<String>,
    /// The compiler's errors when it does not compile.
    pub compiler_message: Option<String>,
    /// Its tests' results (none when it was refused or does not compile).
    pub tests: Vec<TestResult>,
}

impl Found {
    /// True when the exercise was not built (refused, or it does not compile), so it has no results.
    pub fn unbuilt(&self) -> bool {
        self.refusal.is_some() || self.compiler_message.is_some()
    }
}

/// What a batch of changed paths touches among the selected exercises.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Changes {
    /// `manifest.toml` changed: reload it and grade everything again.
    pub manifest: bool,
    /// The exercises whose files changed.
    pub exercises: BTreeSet<String>,
    /// The changed files that matter, relative to the root.
    pub files: BTreeSet<PathBuf>,
}

impl Changes {
    /// True when nothing that matters changed.
    pub fn is_empty(&self) -> bool {
        !self.manifest && self.exercises.is_empty()
    }
}

/// Maps changed paths (absolute, under `root`) to what they touch: `manifest.toml`, and the
/// selected exercises whose source (`exercises/<id>.rs`, or `solutions/<id>.rs` when
/// `solutions`) or tests (`tests/<id>.rs`) changed. Anything else (editor temp files, other exercises, `target/`) is left out.
pub fn affected(root: &Path, solutions: bool, selected: &[String], paths: &[PathBuf]) -> Changes {
    let sources = if solutions { "solutions" } else { "exercises" };
    let mut changes = Changes::default();
    for path in paths {
        let Ok(rel) = path.strip_prefix(root) else {
            continue;
        };
        let Some(parts) = rel.iter().map(|p| p.to_str()).collect::<Option<Vec<_>>>() else {
            continue;
        };
        let ids: Vec<&String> = match parts[..] {
            [file] if file == manifest::FILE => {
                changes.manifest = true;
                changes.files.insert(rel.to_path_buf());
                continue;
            }
            [top, chapter, file] if top == sources || top == "tests" => {
                let id = file
                    .strip_suffix(".rs")
                    .map(|name| format!("{chapter}/{name}"));
                selected
                    .iter()
                    .filter(|s| Some(*s) == id.as_ref())
                    .collect()
            }
            _ => Vec::new(),
        };
        if !ids.is_empty() {
            changes.files.insert(rel.to_path_buf());
            changes.exercises.extend(ids.into_iter().cloned());
        }
    }
    changes
}

/// The files whose changes [`affected`] counts: `manifest.toml` and, for each selected
/// exercise, its source and its tests.
pub fn watched_files(root: &Path, solutions: bool, selected: &[String]) -> BTreeSet<PathBuf> {
    let sources = if solutions { "solutions" } else { "exercises" };
    let mut files = BTreeSet::from([root.join(manifest::FILE)]);
    for id in selected {
        files.insert(root.join(format!("{sources}/{id}.rs")));
        files.insert(root.join(format!("tests/{id}.rs")));
    }
    files
}

/// A file's inode, size and modification time (`None` when it is missing): inotify also
/// reports opens and reads, by the compiler and by the grader itself, and only a changed
/// stamp is a change.
pub type Stamp = Option<(u64, u64, SystemTime)>;

/// The stamp of the file at `path` now.
pub fn stamp(path: &Path) -> Stamp {
    let meta = std::fs::metadata(path).ok()?;
    Some((meta.ino(), meta.len(), meta.modified().ok()?))
}

/// The stamps of `files` now.
fn stamps(files: BTreeSet<PathBuf>) -> BTreeMap<PathBuf, Stamp> {
    files
        .into_iter()
        .map(|f| {
            let s = stamp(&f);
            (f, s)
        })
        .collect()
}

/// The paths that really changed: those whose stamp differs from the one `seen` before the
/// last round (a path never seen counts as changed).
pub fn really_changed(
    paths: Vec<PathBuf>,
    seen: &BTreeMap<PathBuf, Stamp>,
    now: impl Fn(&Path) -> Stamp,
) -> Vec<PathBuf> {
    paths
        .into_iter()
        .filter(|p| seen.get(p).is_none_or(|s| *s != now(p)))
        .collect()
}

/// The selected exercises whose tests must run after a build: those that were built and
/// whose files `changed`, or that have no results yet, or whose last result is that they did
/// not compile or were refused (something else changed since). The others keep their cached
/// results.
pub fn to_run(
    selected: &[String],
    changed: &BTreeSet<String>,
    built: &Built,
    cache: &BTreeMap<String, Found>,
) -> Vec<String> {
    selected
        .iter()
        .filter(|id| !built.broken.contains_key(*id) && !built.refused.contains_key(*id))
        .filter(|id| changed.contains(*id) || cache.get(*id).is_none_or(Found::unbuilt))
        .cloned()
        .collect()
}

/// Merges a round into the cache: the build's verdict for every selected exercise that was
/// refused or does not compile, the `fresh` test results of those that ran, the cached
/// results of the rest.
pub fn merge(
    cache: &mut BTreeMap<String, Found>,
    selected: &[String],
    built: &Built,
    mut fresh: BTreeMap<String, Vec<TestResult>>,
) {
    for id in selected {
        let refusal = built.refused.get(id).cloned();
        let compiler_message = built.broken.get(id).cloned();
        if refusal.is_some() || compiler_message.is_some() {
            let found = Found {
                refusal,
                compiler_message,
                tests: Vec::new(),
            };
            cache.insert(id.clone(), found);
        } else if let Some(tests) = fresh.remove(id) {
            let found = Found {
                refusal: None,
                compiler_message: None,
                tests,
            };
            cache.insert(id.clone(), found);
        }
    }
}

/// Grades, then grades again on every change, until interrupted (the error it then returns).
/// Bad input (a broken manifest, an unknown id, a kit that does not build) is shown and the
/// watcher waits for the next change.
pub fn run(cli: &Cli, root: &Path, runner: &Runner, ui: &Ui) -> Result<Infallible> {
    let sources = if cli.solutions {
        "solutions"
    } else {
        "exercises"
    };
    let (tx, rx) = mpsc::channel();
    let mut debouncer = new_debouncer(DEBOUNCE, tx).context("cannot watch the files")?;
    // Directories, not files: editors replace a file by renaming a temporary one over it.
    debouncer
        .watcher()
        .watch(root, RecursiveMode::NonRecursive)
        .with_context(|| format!("cannot watch {}", root.display()))?;
    for dir in [sources, "tests"].map(|d| root.join(d)) {
        if dir.is_dir() {
            debouncer
                .watcher()
                .watch(&dir, RecursiveMode::Recursive)
                .with_context(|| format!("cannot watch {}", dir.display()))?;
        }
    }
    let terminal = std::io::stdout().is_terminal();
    let mut session = Session {
        cli,
        root,
        runner,
        ui,
        manifest: None,
        selected: Vec::new(),
        cache: BTreeMap::new(),
        pending: BTreeSet::new(),
    };
    let mut reload = true;
    loop {
        // Before the round reads them, so that a change while it runs makes another round.
        let mut seen = stamps(watched_files(root, cli.solutions, &session.selected));
        let round = if reload {
            session.reload().and_then(|()| {
                for file in watched_files(root, cli.solutions, &session.selected) {
                    seen.entry(file).or_insert_with_key(|f| stamp(f));
                }
                session.grade()
            })
        } else {
            session.grade()
        };
        if let Err(e) = round {
            if signals::interrupted() {
                return Err(e);
            }
            eprintln!("error: {e:#}");
        }
        let line = format!("watching {sources}/ for changes · Ctrl-C to quit");
        println!("\n{}", ui.paint(Style::Dim, &line));

        let changes = loop {
            let paths = really_changed(wait(&rx)?, &seen, stamp);
            let changes = affected(root, cli.solutions, &session.selected, &paths);
            if !changes.is_empty() {
                break changes;
            }
        };
        reload = changes.manifest;
        session.pending.extend(changes.exercises);
        if terminal {
            print!("\x1b[2J\x1b[H");
        } else {
            println!("\n{}\n", "─".repeat(72));
        }
        let files: Vec<String> = changes
            .files
            .iter()
            .map(|f| f.display().to_string())
            .collect();
        println!("changed: {}\n", files.join(", "));
    }
}

/// The watcher's state between rounds.
struct Session<'a> {
    cli: &'a Cli,
    root: &'a Path,
    runner: &'a Runner,
    ui: &'a Ui,
    /// `None` while the manifest or the selection is bad.
    manifest: Option<Manifest>,
    /// The selected exercises' ids, in manifest order.
    selected: Vec<String>,
    /// The last results of each selected exercise.
    cache: BTreeMap<String, Found>,
    /// Exercises whose files changed since they were last graded.
    pending: BTreeSet<String>,
}

impl Session<'_> {
    /// Loads the manifest and the selection again, forgetting every result.
    fn reload(&mut self) -> Result<()> {
        self.manifest = None;
        self.selected.clear();
        self.cache.clear();
        self.pending.clear();
        let manifest = crate::load_kit(self.root)?;
        let selected = crate::select(&manifest, &self.cli.exercises, &self.cli.chapters)?;
        self.selected = selected.iter().map(|e| e.id.clone()).collect();
        self.manifest = Some(manifest);
        Ok(())
    }

    /// Builds, runs the tests that must run, and prints the whole report.
    fn grade(&mut self) -> Result<()> {
        let Some(manifest) = &self.manifest else {
            return Ok(());
        };
        let ids: Vec<&str> = self.selected.iter().map(String::as_str).collect();
        let sources = if self.cli.solutions {
            Sources::Solutions
        } else {
            Sources::Exercises
        };
        let (built, plan) = crate::build(self.root, &ids, sources, self.ui)?;
        let run = to_run(&self.selected, &self.pending, &built, &self.cache);
        let ids: Vec<&str> = run.iter().map(String::as_str).collect();
        let fresh = crate::run_tests(&plan, &ids, self.runner, self.ui)?;
        merge(&mut self.cache, &self.selected, &built, fresh);
        self.pending.clear();
        let exercises = self
            .selected
            .iter()
            .filter_map(|id| {
                let found = self.cache.get(id)?;
                let e = manifest.exercise(id)?;
                let (refusal, broken) = (found.refusal.clone(), found.compiler_message.clone());
                Some(ExerciseResult::new(e, refusal, broken, found.tests.clone()))
            })
            .collect();
        print!(
            "{}",
            report::render(manifest, &Grade { exercises }, self.ui)
        );
        Ok(())
    }
}

/// Waits for the next batch of changed paths; an error once interrupted.
fn wait(rx: &Receiver<DebounceEventResult>) -> Result<Vec<PathBuf>> {
    loop {
        if signals::interrupted() {
            bail!("interrupted");
        }
        let first = match rx.recv_timeout(TICK) {
            Ok(first) => first,
            Err(RecvTimeoutError::Timeout) => continue,
            Err(RecvTimeoutError::Disconnected) => bail!("the file watcher stopped"),
        };
        let mut paths = Vec::new();
        for batch in std::iter::once(first).chain(rx.try_iter()) {
            match batch {
                Ok(events) => paths.extend(events.into_iter().map(|e| e.path)),
                Err(e) => eprintln!("warning: watching the files: {e}"),
            }
        }
        return Ok(paths);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::classify::TestStatus;

    fn ids(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| s.to_string()).collect()
    }

    fn set(list: &[&str]) -> BTreeSet<String> {
        ids(list).into_iter().collect()
    }

    fn passed(name: &str) -> Vec<TestResult> {
        vec![TestResult {
            name: name.into(),
            status: TestStatus::Passed,
            message: String::new(),
        }]
    }

    #[test]
    fn paths_map_to_selected_exercises() {
        let root = Path::new("/kit");
        let selected = ids(&["processes/fork_basics", "processes/zombies", "ipc/pipes"]);
        let of = |solutions: bool, paths: &[&str]| {
            let paths: Vec<PathBuf> = paths.iter().map(PathBuf::from).collect();
            affected(root, solutions, &selected, &paths)
        };

        let c = of(
            false,
            &[
                "/kit/exercises/processes/fork_basics.rs",
                "/kit/exercises/processes/.fork_basics.rs.swp",
                "/kit/exercises/processes/fork_basics.rs~",
                "/kit/exercises/processes/4913",
                "/kit/exercises/processes/reap_all.rs",
                "/kit/solutions/processes/zombies.rs",
                "/kit/target/debug/x.rs",
                "/kit/Cargo.lock",
                "/elsewhere/exercises/ipc/pipes.rs",
            ],
        );
        assert_eq!(c.exercises, set(&["processes/fork_basics"]));
        assert_eq!(
            c.files,
            BTreeSet::from([PathBuf::from("exercises/processes/fork_basics.rs")])
        );
        assert!(!c.manifest);

        let c = of(true, &["/kit/solutions/processes/zombies.rs"]);
        assert_eq!(c.exercises, set(&["processes/zombies"]));
        assert!(of(true, &["/kit/exercises/processes/zombies.rs"]).is_empty());

        let c = of(false, &["/kit/tests/ipc/pipes.rs"]);
        assert_eq!(c.exercises, set(&["ipc/pipes"]));
        // A file that is no exercise's (an old chapter-wide test root, say) touches none.
        assert!(of(false, &["/kit/tests/processes/main.rs"]).is_empty());

        let c = of(false, &["/kit/manifest.toml"]);
        assert!(c.manifest && c.exercises.is_empty() && !c.is_empty());
        assert!(of(false, &["/kit/manifest.toml.tmp", "/kit/exercises"]).is_empty());
    }

    #[test]
    fn opens_and_reads_are_not_changes() {
        let root = Path::new("/kit");
        let files = watched_files(root, true, &ids(&["processes/fork_basics"]));
        let want = [
            "/kit/manifest.toml",
            "/kit/solutions/processes/fork_basics.rs",
            "/kit/tests/processes/fork_basics.rs",
        ];
        assert_eq!(files, want.iter().map(PathBuf::from).collect());

        let t = SystemTime::UNIX_EPOCH;
        let seen = BTreeMap::from([
            (PathBuf::from("/kit/a.rs"), Some((1, 10, t))),
            (PathBuf::from("/kit/b.rs"), Some((2, 10, t))),
            (PathBuf::from("/kit/c.rs"), None),
        ]);
        let now = |p: &Path| match p.to_str() {
            Some("/kit/a.rs") => Some((1, 10, t)),
            Some("/kit/b.rs") => Some((3, 10, t)),
            _ => None,
        };
        let paths = ["/kit/a.rs", "/kit/b.rs", "/kit/c.rs", "/kit/d.rs"].map(PathBuf::from);
        assert_eq!(
            really_changed(paths.to_vec(), &seen, now),
            [PathBuf::from("/kit/b.rs"), PathBuf::from("/kit/d.rs")]
        );
        let here = std::env::current_exe().unwrap();
        assert!(stamp(&here).is_some() && stamp(&root.join("nothing")).is_none());
    }

    fn found(
        refusal: Option<&str>,
        compiler_message: Option<&str>,
        tests: Vec<TestResult>,
    ) -> Found {
        Found {
            refusal: refusal.map(str::to_owned),
            compiler_message: compiler_message.map(str::to_owned),
            tests,
        }
    }

    #[test]
    fn only_changed_or_unknown_exercises_run() {
        let selected = ids(&["c/a", "c/b", "c/c", "c/d", "c/e", "c/f"]);
        let built = Built {
            broken: BTreeMap::from([("c/d".to_owned(), "error".to_owned())]),
            refused: BTreeMap::from([("c/f".to_owned(), "c/f.rs:1: #[used] ...".to_owned())]),
            ..Built::default()
        };
        let mut cache = BTreeMap::from([
            ("c/a".to_owned(), found(None, None, passed("a::t"))),
            ("c/b".to_owned(), found(None, None, passed("b::t"))),
            ("c/c".to_owned(), found(None, Some("old error"), Vec::new())),
            (
                "c/e".to_owned(),
                found(Some("old refusal"), None, Vec::new()),
            ),
        ]);
        // b changed; c compiled again; e is no longer refused; d does not compile and f is
        // refused, so they run nothing; a keeps its result.
        let changed = set(&["c/b", "c/d", "c/f"]);
        assert_eq!(
            to_run(&selected, &changed, &built, &cache),
            ids(&["c/b", "c/c", "c/e"])
        );
        // The first round runs every exercise that was built.
        assert_eq!(
            to_run(&selected, &set(&[]), &built, &BTreeMap::new()),
            ids(&["c/a", "c/b", "c/c", "c/e"])
        );

        let fresh = BTreeMap::from([
            ("c/b".to_owned(), Vec::new()),
            ("c/c".to_owned(), passed("c::t")),
            ("c/e".to_owned(), passed("e::t")),
            ("c/f".to_owned(), Vec::new()),
        ]);
        merge(&mut cache, &selected, &built, fresh);
        assert_eq!(cache["c/a"].tests[0].name, "a::t");
        assert!(cache["c/b"].tests.is_empty() && !cache["c/b"].unbuilt());
        assert_eq!(
            (
                cache["c/c"].compiler_message.as_deref(),
                cache["c/c"].tests.len()
            ),
            (None, 1)
        );
        assert_eq!(cache["c/d"].compiler_message.as_deref(), Some("error"));
        assert!(cache["c/d"].tests.is_empty());
        assert!(cache["c/e"].refusal.is_none() && cache["c/e"].tests.len() == 1);
        assert!(
            cache["c/f"]
                .refusal
                .as_deref()
                .is_some_and(|r| r.contains("#[used]"))
        );
        assert!(cache["c/f"].tests.is_empty());
    }
}
