//! Builds the exercises' test targets with one `cargo build --tests --keep-going`: each
//! exercise is its own target, so a file that does not compile fails only its own target, and
//! the others are built and graded as usual.
use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use indicatif::ProgressBar;
use nix::sys::signal::{Signal, killpg};
use nix::unistd::Pid;
use serde::Deserialize;

use crate::binary::Binary;
use crate::signals;
use crate::targets::{self, MISTAKE_FEATURE, SOLUTIONS_FEATURE};
use crate::ui::Ui;

/// How much compiler output is kept for one exercise.
const KEEP_MESSAGES: usize = 4096;
/// How long one build may take before cargo and its compilers are stopped: a cold build of the
/// kit takes minutes; an exercise that makes the compiler loop (a `const` evaluated for ever)
/// must not hang the grader.
const BUILD_LIMIT: Duration = Duration::from_secs(30 * 60);
/// How often a running cargo is checked for exit and interruption.
const CARGO_TICK: Duration = Duration::from_millis(20);

/// Which source each test target brings in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sources {
    /// `exercises/`: the student's files.
    Exercises,
    /// `solutions/`: the reference (`--features solutions`).
    Solutions,
    /// The mistakes proof's copies under `target/oskata-mistake/` (`--features mistake`).
    Mistakes,
}

/// One build of some exercises' test targets.
#[derive(Debug, Clone)]
pub struct Build<'a> {
    /// The kit's root (absolute).
    pub root: &'a Path,
    /// What the targets are built from.
    pub sources: Sources,
    /// The exercises whose targets to build, by id.
    pub exercises: Vec<&'a str>,
}

/// The result of a build: a test executable for each exercise that compiled, the compiler's
/// errors for each that did not, and why the grader refused the others.
#[derive(Debug, Clone, Default)]
pub struct Built {
    /// Exercise id → its test executable, as the build left it.
    pub binaries: BTreeMap<String, Binary>,
    /// Exercise id → its compiler errors.
    pub broken: BTreeMap<String, String>,
    /// Exercise id → why the grader would not build or run it (one line per reason).
    pub refused: BTreeMap<String, String>,
}

impl Build<'_> {
    /// Builds every selected target; fails only when something other than an exercise's own
    /// target does not build (the harness, Cargo.toml) or cargo cannot be run.
    pub fn run(&self, ui: &Ui) -> Result<Built> {
        if self.exercises.is_empty() {
            return Ok(Built::default());
        }
        let attempt = self.cargo(ui)?;
        let mut built = Built::default();
        let mut unmapped = String::new();
        for (target, rendered) in &attempt.errors {
            match targets::exercise_of(target).filter(|id| self.exercises.contains(&id.as_str())) {
                Some(id) => append_bounded(built.broken.entry(id).or_default(), &tidy(rendered)),
                None => append_bounded(&mut unmapped, rendered),
            }
        }
        if !unmapped.is_empty() {
            bail!("the kit does not build, and the errors are in no exercise's files:\n{unmapped}");
        }
        for (target, exe) in attempt.binaries {
            let Some(id) = targets::exercise_of(&target) else {
                continue;
            };
            // What the binary is now, so that a binary changed before it runs is never run.
            match Binary::record(exe.clone()) {
                Ok(binary) => {
                    built.binaries.insert(id, binary);
                }
                Err(e) => {
                    let why = format!("cannot read the test binary {}: {e}", exe.display());
                    built.refused.insert(id, why);
                }
            }
        }
        for id in &self.exercises {
            if built.binaries.contains_key(*id)
                || built.broken.contains_key(*id)
                || built.refused.contains_key(*id)
            {
                continue;
            }
            if attempt.success {
                bail!(
                    "cargo built no test target `{}` for exercise `{id}`",
                    targets::name_of(id)
                );
            }
            if attempt.timed_out {
                built.broken.insert(
                    (*id).to_owned(),
                    format!(
                        "the compiler did not finish this exercise within {} minutes and was stopped: \
                         does it make the compiler loop (a `const` evaluated for ever, a macro that \
                         expands without end)?",
                        BUILD_LIMIT.as_secs() / 60
                    ),
                );
                continue;
            }
            // cargo stopped before this target: say why, in cargo's own words.
            built.broken.insert(
                (*id).to_owned(),
                format!(
                    "cargo did not build this exercise's test target:\n{}",
                    tail(&attempt.stderr, KEEP_MESSAGES)
                ),
            );
        }
        Ok(built)
    }

    fn cargo(&self, ui: &Ui) -> Result<Attempt> {
        let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
        let mut cmd = Command::new(cargo);
        cmd.current_dir(self.root)
            .args(["build", "--manifest-path"])
            .arg(self.root.join("Cargo.toml"))
            .args(["-p", "oskata", "--keep-going", "--message-format=json"])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            // A group of its own, so a stop takes the compilers it started too.
            .process_group(0);
        for id in &self.exercises {
            cmd.args(["--test", &targets::name_of(id)]);
        }
        match self.sources {
            Sources::Exercises => {}
            Sources::Solutions => {
                cmd.args(["--features", SOLUTIONS_FEATURE]);
            }
            Sources::Mistakes => {
                cmd.args(["--features", MISTAKE_FEATURE]);
            }
        }
        let what = match self.exercises.as_slice() {
            [one] => format!(" of {one}"),
            many => format!(" of {} exercises", many.len()),
        };
        let grader = nix::unistd::getpid();
        // SAFETY: prctl(2) and getppid(2) are async-signal-safe, and the closure allocates
        // nothing, so it is sound between fork and exec.
        unsafe {
            cmd.pre_exec(move || crate::reaper::pdeath_guard(grader));
        }
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
        // Wait here rather than in a read, so that Ctrl-C (or the deadline) stops cargo even
        // when the signal was sent to the grader alone; what cargo started is then killed with
        // its group, and whatever left the group is re-parented here and swept.
        let start = Instant::now();
        let mut timed_out = false;
        let status = loop {
            if let Some(status) = child.try_wait().context("cannot wait for cargo")? {
                break Some(status);
            }
            timed_out = start.elapsed() > BUILD_LIMIT;
            if signals::interrupted() || timed_out {
                let _ = killpg(Pid::from_raw(child.id() as i32), Signal::SIGKILL);
                let status = child.wait().ok();
                crate::reaper::sweep();
                break status.filter(|_| timed_out);
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
        attempt.timed_out = timed_out;
        if !attempt.success && attempt.errors.is_empty() && attempt.binaries.is_empty() {
            // Cargo failed before compiling anything: a broken Cargo.toml, say.
            bail!(
                "cargo could not build the kit:\n{}",
                attempt.stderr.trim_end()
            );
        }
        Ok(attempt)
    }
}

/// Reads cargo's JSON messages: the test executables and the compiler's errors, by target.
fn read_records(stdout: impl Read, spinner: &ProgressBar, what: &str) -> Result<Attempt> {
    let mut attempt = Attempt::default();
    for line in BufReader::new(stdout).lines() {
        let line = line.context("cannot read cargo's output")?;
        let Ok(record) = serde_json::from_str::<Record>(&line) else {
            continue;
        };
        let Some(target) = &record.target else {
            continue;
        };
        match record.reason.as_str() {
            "compiler-artifact" => {
                spinner.set_message(format!("building the tests{what} ... {}", target.name));
                if let (true, Some(exe)) =
                    (target.kind.iter().any(|k| k == "test"), record.executable)
                {
                    attempt.binaries.push((target.name.clone(), exe));
                }
            }
            "compiler-message" => {
                if let Some(m) = record.message
                    && m.level.starts_with("error")
                {
                    let rendered = m.rendered.unwrap_or(m.message);
                    attempt.errors.push((target.name.clone(), rendered));
                }
            }
            _ => {}
        }
    }
    Ok(attempt)
}

/// What one `cargo build` produced.
#[derive(Debug, Default)]
struct Attempt {
    success: bool,
    /// Cargo was stopped at [`BUILD_LIMIT`].
    timed_out: bool,
    /// (target name, executable)
    binaries: Vec<(String, PathBuf)>,
    /// (target name, rendered error)
    errors: Vec<(String, String)>,
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
struct Diagnostic {
    level: String,
    #[serde(default)]
    message: String,
    #[serde(default)]
    rendered: Option<String>,
}

/// A compiler message with the test file's way to the exercise, `tests/<chapter>/../../`,
/// left out of its paths: `exercises/ipc/pipe_direction.rs:3:1` is what the student edits.
fn tidy(rendered: &str) -> String {
    let mut out = String::with_capacity(rendered.len());
    let mut rest = rendered;
    while let Some(at) = rest.find("tests/") {
        let after = &rest[at + "tests/".len()..];
        let folder = after
            .find(|c: char| !(c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_'))
            .unwrap_or(after.len());
        match after[folder..].strip_prefix("/../../") {
            Some(tail) if folder > 0 => {
                out.push_str(&rest[..at]);
                rest = tail;
            }
            _ => {
                out.push_str(&rest[..at + "tests/".len()]);
                rest = after;
            }
        }
    }
    out.push_str(rest);
    out
}

/// The last `max` bytes of `text` (cut at a line start where it can be).
fn tail(text: &str, max: usize) -> &str {
    if text.len() <= max {
        return text;
    }
    let mut cut = text.len() - max;
    while !text.is_char_boundary(cut) {
        cut += 1;
    }
    let rest = &text[cut..];
    rest.find('\n').map_or(rest, |nl| &rest[nl + 1..])
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

    #[test]
    fn records_are_read_by_target() {
        let lines = r#"{"reason":"compiler-artifact","target":{"name":"processes-zombies","kind":["test"]},"executable":"/t/processes_zombies-1"}
{"reason":"compiler-artifact","target":{"name":"oskata_harness","kind":["lib"]},"executable":null}
{"reason":"compiler-message","target":{"name":"ipc-pipe_direction","kind":["test"]},"message":{"level":"error","message":"expected one of","rendered":"error: expected one of\n --> exercises/ipc/pipe_direction.rs:3:1\n"}}
{"reason":"compiler-message","target":{"name":"ipc-pipe_direction","kind":["test"]},"message":{"level":"warning","message":"unused","rendered":"warning: unused\n"}}
{"reason":"build-finished","success":false}
not json
"#;
        let a = read_records(lines.as_bytes(), &ProgressBar::hidden(), "").unwrap();
        assert_eq!(
            a.binaries,
            [(
                "processes-zombies".to_owned(),
                PathBuf::from("/t/processes_zombies-1")
            )]
        );
        assert_eq!(a.errors.len(), 1);
        assert_eq!(a.errors[0].0, "ipc-pipe_direction");
        assert!(a.errors[0].1.contains("pipe_direction.rs:3:1"));
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

    #[test]
    fn messages_name_the_students_file() {
        assert_eq!(
            tidy("error: x\n --> tests/ipc/../../exercises/ipc/pipe_direction.rs:3:1\n"),
            "error: x\n --> exercises/ipc/pipe_direction.rs:3:1\n"
        );
        assert_eq!(
            tidy("--> tests/ipc/pipe_direction.rs:9:2 and tests/ mentioned"),
            "--> tests/ipc/pipe_direction.rs:9:2 and tests/ mentioned"
        );
    }

    #[test]
    fn tails_start_at_a_line() {
        assert_eq!(tail("short", 10), "short");
        assert_eq!(tail("one\ntwo\nthree\n", 8), "three\n");
    }
}
