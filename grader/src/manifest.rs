//! `manifest.toml`: the chapters and exercises in teaching order, checked against the files.
use std::collections::BTreeSet;
use std::fs;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use serde::Deserialize;

/// The manifest's file name at the kit's root.
pub const FILE: &str = "manifest.toml";

/// The whole manifest, in file order.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Manifest {
    /// The chapters, in teaching order.
    #[serde(default)]
    pub chapters: Vec<Chapter>,
    /// The exercises, in teaching order.
    #[serde(default)]
    pub exercises: Vec<Exercise>,
}

/// One chapter: a folder under `exercises/`, `solutions/` and `tests/`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Chapter {
    /// The folder name, e.g. `processes`.
    pub id: String,
    /// The English title.
    pub title: String,
    /// The Chinese term.
    pub term: String,
}

/// One exercise: a file the student fills in.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Exercise {
    /// `<chapter>/<name>`.
    pub id: String,
    /// The English title.
    pub title: String,
    /// The Chinese term.
    pub term: String,
    /// The student's file, `exercises/<id>.rs`.
    pub file: String,
    /// What the exercise is worth when every test passes.
    pub points: u32,
    /// Shown when this is the next exercise to do.
    #[serde(default)]
    pub hint: String,
    /// Classic wrong implementations the tests must catch.
    #[serde(default)]
    pub mistakes: Vec<Mistake>,
}

/// A shipped wrong implementation and the phrase its failure must mention.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Mistake {
    /// The file, relative to the root, e.g. `mistakes/processes/fork_basics/child_returns.rs`.
    pub file: String,
    /// A phrase a failing test's message must contain.
    pub reason: String,
}

impl Exercise {
    /// The chapter part of the id.
    pub fn chapter(&self) -> &str {
        self.id.split_once('/').map_or("", |(c, _)| c)
    }
}

impl Mistake {
    /// The mistake's short name: its file stem.
    pub fn name(&self) -> &str {
        Path::new(&self.file)
            .file_stem()
            .and_then(|s| s.to_str())
            .unwrap_or(&self.file)
    }
}

impl Manifest {
    /// Reads and checks `<root>/manifest.toml` against the files under `root`.
    pub fn load(root: &Path) -> Result<Manifest> {
        let path = root.join(FILE);
        let text =
            fs::read_to_string(&path).with_context(|| format!("cannot read {}", path.display()))?;
        let manifest = Manifest::parse(&text)?;
        manifest.check_files(root)?;
        Ok(manifest)
    }

    /// Parses the manifest's text and checks what needs no files: ids, chapters, duplicates.
    pub fn parse(text: &str) -> Result<Manifest> {
        let manifest: Manifest =
            toml::from_str(text).map_err(|e| anyhow::anyhow!("{FILE}: {e}"))?;
        let mut chapters = BTreeSet::new();
        for c in &manifest.chapters {
            if !is_ident(&c.id) {
                bail!(
                    "{FILE}: chapter id `{}` is not a lowercase Rust identifier",
                    c.id
                );
            }
            if !chapters.insert(c.id.as_str()) {
                bail!("{FILE}: chapter `{}` is listed twice", c.id);
            }
        }
        let mut ids = BTreeSet::new();
        for e in &manifest.exercises {
            let Some((chapter, name)) = e.id.split_once('/') else {
                bail!("{FILE}: exercise id `{}` is not `<chapter>/<name>`", e.id);
            };
            if !is_ident(chapter) || !is_ident(name) {
                bail!(
                    "{FILE}: exercise id `{}` is not `<chapter>/<name>` with lowercase identifiers",
                    e.id
                );
            }
            if !chapters.contains(chapter) {
                bail!(
                    "{FILE}: exercise `{}` names chapter `{chapter}`, which no [[chapters]] entry defines",
                    e.id
                );
            }
            if !ids.insert(e.id.as_str()) {
                bail!("{FILE}: exercise `{}` is listed twice", e.id);
            }
            let expected = format!("exercises/{}.rs", e.id);
            if e.file != expected {
                bail!(
                    "{FILE}: exercise `{}` has file = \"{}\"; it must be \"{expected}\"",
                    e.id,
                    e.file
                );
            }
            for m in &e.mistakes {
                if m.reason.trim().is_empty() {
                    bail!(
                        "{FILE}: a mistake of `{}` ({}) has an empty reason",
                        e.id,
                        m.file
                    );
                }
            }
        }
        Ok(manifest)
    }

    /// Checks that the files the manifest names exist, and that it names every exercise file.
    pub fn check_files(&self, root: &Path) -> Result<()> {
        for e in &self.exercises {
            let solution = format!("solutions/{}.rs", e.id);
            for file in [&e.file, &solution] {
                if !root.join(file).is_file() {
                    bail!("{FILE}: exercise `{}`: {file} does not exist", e.id);
                }
            }
            for m in &e.mistakes {
                if !root.join(&m.file).is_file() {
                    bail!(
                        "{FILE}: exercise `{}`: mistake file {} does not exist",
                        e.id,
                        m.file
                    );
                }
            }
        }
        let listed: BTreeSet<&str> = self.exercises.iter().map(|e| e.file.as_str()).collect();
        for dir in sorted_entries(&root.join("exercises"))? {
            let Some(chapter) = dir.file_name().and_then(|n| n.to_str()) else {
                continue;
            };
            if !dir.is_dir() {
                continue;
            }
            if self.chapter(chapter).is_none() {
                bail!(
                    "exercises/{chapter}/ is not a chapter in {FILE}; add a [[chapters]] entry for it"
                );
            }
            for file in sorted_entries(&dir)? {
                let Some(name) = file.file_name().and_then(|n| n.to_str()) else {
                    continue;
                };
                let rel = format!("exercises/{chapter}/{name}");
                if name.ends_with(".rs") && !listed.contains(rel.as_str()) {
                    bail!("{rel} is not in {FILE}; add an [[exercises]] entry for it");
                }
            }
        }
        Ok(())
    }

    /// The chapter with this id.
    pub fn chapter(&self, id: &str) -> Option<&Chapter> {
        self.chapters.iter().find(|c| c.id == id)
    }

    /// The exercise with this id.
    pub fn exercise(&self, id: &str) -> Option<&Exercise> {
        self.exercises.iter().find(|e| e.id == id)
    }
}

/// A lowercase Rust identifier: what a module and a folder name can both be.
fn is_ident(s: &str) -> bool {
    let mut chars = s.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_lowercase() || c == '_')
        && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
}

fn sorted_entries(dir: &Path) -> Result<Vec<PathBuf>> {
    if !dir.exists() {
        return Ok(Vec::new());
    }
    let mut entries = Vec::new();
    for entry in fs::read_dir(dir).with_context(|| format!("cannot read {}", dir.display()))? {
        entries.push(
            entry
                .with_context(|| format!("cannot read {}", dir.display()))?
                .path(),
        );
    }
    entries.sort();
    Ok(entries)
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = r#"
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
hint = "call fork"

[[exercises.mistakes]]
file = "mistakes/processes/fork_basics/child_returns.rs"
reason = "returned into the test"
"#;

    fn err(text: &str) -> String {
        format!("{:#}", Manifest::parse(text).unwrap_err())
    }

    #[test]
    fn parses_a_good_manifest() {
        let m = Manifest::parse(GOOD).unwrap();
        assert_eq!(m.exercises[0].chapter(), "processes");
        assert_eq!(m.exercises[0].mistakes[0].name(), "child_returns");
    }

    #[test]
    fn syntax_errors_name_the_file_and_line() {
        let e = err("[[chapters]]\nid = \"processes\"\ntitle = \n");
        assert!(e.contains("manifest.toml") && e.contains("line 3"), "{e}");
    }

    #[test]
    fn unknown_fields_are_rejected() {
        let e = err(&GOOD.replace("points = 10", "points = 10\npoints_extra = 1"));
        assert!(e.contains("points_extra"), "{e}");
    }

    #[test]
    fn bad_ids_are_rejected() {
        assert!(
            err(&GOOD.replace("id = \"processes/fork_basics\"", "id = \"fork_basics\""))
                .contains("<chapter>/<name>")
        );
        let e = err(&GOOD.replace("\"processes/fork_basics\"", "\"signals/fork_basics\""));
        assert!(e.contains("chapter `signals`"), "{e}");
    }

    #[test]
    fn duplicates_are_rejected() {
        let twice = format!("{GOOD}\n{}", &GOOD[GOOD.find("[[exercises]]").unwrap()..]);
        assert!(err(&twice).contains("listed twice"));
    }

    #[test]
    fn file_must_match_the_id() {
        let e = err(&GOOD.replace(
            "file = \"exercises/processes/fork_basics.rs\"",
            "file = \"exercises/fork.rs\"",
        ));
        assert!(
            e.contains("must be \"exercises/processes/fork_basics.rs\""),
            "{e}"
        );
    }
}
