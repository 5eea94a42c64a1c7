//! `cargo grade`: builds the oskata tests, runs each one with a deadline in its own process
//! group, and reports each exercise's status, the score and what to do next.
//!
//! With `--watch` it then grades again each time a selected exercise's files change, until
//! Ctrl-C.
//!
//! Exit status: 0 when every selected exercise is done (with `--mistakes`: every mistake is
//! caught), 1 when not, 2 on bad input or when the kit cannot be built, 130 when interrupted
//! (the only way `--watch` ends).
mod binary;
mod build;
mod classify;
mod cli;
mod grade;
mod json;
mod list;
mod manifest;
mod mistakes;
mod reaper;
mod report;
mod run;
mod scan;
mod signals;
mod targets;
mod ui;
mod watch;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use clap::Parser;

use crate::build::{Build, Built, Sources};
use crate::cli::Cli;
use crate::grade::{ExerciseResult, Grade, TestResult};
use crate::list::Plan;
use crate::manifest::{Exercise, Manifest};
use crate::run::{Job, Runner};
use crate::ui::Ui;

fn main() -> ExitCode {
    let cli = Cli::parse();
    signals::install();
    let result = grade(&cli);
    // Whatever a test left behind dies with the grader.
    reaper::sweep();
    match result {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::from(1),
        Err(_) if signals::interrupted() => {
            eprintln!("interrupted");
            ExitCode::from(130)
        }
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(2)
        }
    }
}

/// Runs what the flags ask for; true when everything selected is done (or caught).
fn grade(cli: &Cli) -> Result<bool> {
    reaper::become_subreaper().context("cannot become a child subreaper (prctl)")?;
    run::remove_stale_tmps(&std::env::temp_dir());
    let root = find_root(cli.root.as_deref())?;
    let ui = Ui::detect();
    let jobs = match cli.jobs {
        Some(n) => usize::from(n),
        None => std::thread::available_parallelism().map_or(1, usize::from),
    };
    let runner = Runner {
        root: root.clone(),
        timeout: Duration::from_secs(cli.timeout),
        jobs,
    };
    if cli.watch {
        // Loads the manifest itself, each time it changes.
        return watch::run(cli, &root, &runner, &ui).map(|never| match never {});
    }
    let manifest = load_kit(&root)?;
    let selected = select(&manifest, &cli.exercises, &cli.chapters)?;
    if cli.mistakes {
        return prove_mistakes(cli, &root, &selected, &runner, &ui);
    }

    let ids: Vec<&str> = selected.iter().map(|e| e.id.as_str()).collect();
    let sources = if cli.solutions {
        Sources::Solutions
    } else {
        Sources::Exercises
    };
    let (built, plan) = build(&root, &ids, sources, &ui)?;
    let mut tests = run_tests(&plan, &ids, &runner, &ui)?;
    let results = selected
        .into_iter()
        .map(|e| {
            let refusal = built.refused.get(&e.id).cloned();
            let broken = built.broken.get(&e.id).cloned();
            ExerciseResult::new(e, refusal, broken, tests.remove(&e.id).unwrap_or_default())
        })
        .collect();
    let grade = Grade { exercises: results };
    if cli.json {
        json::print(&json::GradeDoc::new(&grade, cli.solutions));
    } else {
        print!("{}", report::render(&manifest, &grade, &ui));
    }
    Ok(grade.all_done())
}

/// Reads manifest.toml and checks it against the files and Cargo.toml's test targets.
fn load_kit(root: &Path) -> Result<Manifest> {
    let manifest = Manifest::load(root)?;
    targets::check(root, &manifest)?;
    Ok(manifest)
}

/// Builds the test targets of the exercises `ids` and lists the tests of those that compiled.
/// The student's files are scanned first: an exercise that uses a refused construct (see
/// `scan.rs`) is not built, and its refusal is in `Built::refused`. Solutions are trusted.
fn build(root: &Path, ids: &[&str], sources: Sources, ui: &Ui) -> Result<(Built, Plan)> {
    let refused = match sources {
        Sources::Exercises => scan::refusals(root, ids)?,
        Sources::Solutions | Sources::Mistakes => BTreeMap::new(),
    };
    let build = Build {
        root,
        sources,
        exercises: ids
            .iter()
            .copied()
            .filter(|id| !refused.contains_key(*id))
            .collect(),
    };
    let mut built = build.run(ui)?;
    built.refused.extend(refused);
    let plan = list::plan(root, &mut built)?;
    Ok((built, plan))
}

/// Runs the tests of the exercises `ids` with a progress bar; their results by exercise id
/// (an exercise with no tests in `plan`, because it did not compile, has none).
fn run_tests(
    plan: &Plan,
    ids: &[&str],
    runner: &Runner,
    ui: &Ui,
) -> Result<BTreeMap<String, Vec<TestResult>>> {
    let mut jobs = Vec::new();
    for id in ids {
        if let Some((exe, names)) = plan.tests.get(*id) {
            jobs.extend(names.iter().map(|name| Job {
                exe: exe.clone(),
                name: name.clone(),
            }));
        }
    }
    let bar = if jobs.is_empty() {
        indicatif::ProgressBar::hidden()
    } else {
        let what = format!(
            "running {} tests, {} at a time",
            jobs.len(),
            runner.jobs.min(jobs.len())
        );
        ui.bar(jobs.len(), &what)
    };
    let mut outcomes = runner.run_all(&jobs, |_, _| bar.inc(1)).into_iter();
    bar.finish_and_clear();
    if signals::interrupted() {
        bail!("interrupted");
    }
    let mut results = BTreeMap::new();
    for id in ids {
        let names = plan
            .tests
            .get(*id)
            .map(|(_, names)| names.as_slice())
            .unwrap_or_default();
        let tests = names
            .iter()
            .zip(outcomes.by_ref())
            .map(|(name, o)| TestResult {
                name: name.clone(),
                status: o.status,
                message: o.message,
            })
            .collect();
        results.insert((*id).to_owned(), tests);
    }
    Ok(results)
}

fn prove_mistakes(
    cli: &Cli,
    root: &Path,
    selected: &[&Exercise],
    runner: &Runner,
    ui: &Ui,
) -> Result<bool> {
    let results = mistakes::prove(root, selected, runner, ui, |r| {
        if !cli.json {
            print!("{}", mistakes::render(r, ui));
        }
    })?;
    let caught = results.iter().filter(|r| r.caught).count();
    if cli.json {
        json::print(&json::MistakesDoc::new(&results));
    } else {
        println!("\n{caught}/{} mistakes caught", results.len());
    }
    Ok(caught == results.len())
}

/// `--root`, or the nearest folder at or above the current one with Cargo.toml and manifest.toml.
fn find_root(given: Option<&Path>) -> Result<PathBuf> {
    let is_root =
        |dir: &Path| dir.join("Cargo.toml").is_file() && dir.join(manifest::FILE).is_file();
    if let Some(dir) = given {
        let dir = dir
            .canonicalize()
            .with_context(|| format!("--root {}", dir.display()))?;
        if !is_root(&dir) {
            bail!(
                "--root {}: no Cargo.toml and {} there",
                dir.display(),
                manifest::FILE
            );
        }
        return Ok(dir);
    }
    let cwd = std::env::current_dir().context("cannot read the current directory")?;
    match cwd.ancestors().find(|d| is_root(d)) {
        Some(dir) => Ok(dir.canonicalize().unwrap_or_else(|_| dir.to_path_buf())),
        None => bail!(
            "no folder at or above {} holds both Cargo.toml and {}",
            cwd.display(),
            manifest::FILE
        ),
    }
}

/// The exercises `--exercise` and `--chapter` select (all when neither is given), in manifest order.
fn select<'m>(
    manifest: &'m Manifest,
    exercises: &[String],
    chapters: &[String],
) -> Result<Vec<&'m Exercise>> {
    for id in exercises {
        if manifest.exercise(id).is_none() {
            let valid: Vec<&str> = manifest.exercises.iter().map(|e| e.id.as_str()).collect();
            bail!(
                "no exercise `{id}` in {}; the exercises are: {}",
                manifest::FILE,
                valid.join(", ")
            );
        }
    }
    for id in chapters {
        if manifest.chapter(id).is_none() {
            let valid: Vec<&str> = manifest.chapters.iter().map(|c| c.id.as_str()).collect();
            bail!(
                "no chapter `{id}` in {}; the chapters are: {}",
                manifest::FILE,
                valid.join(", ")
            );
        }
    }
    let all = exercises.is_empty() && chapters.is_empty();
    Ok(manifest
        .exercises
        .iter()
        .filter(|e| all || exercises.contains(&e.id) || chapters.iter().any(|c| c == e.chapter()))
        .collect())
}
