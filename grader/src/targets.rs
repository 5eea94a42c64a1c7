//! The kit's test targets: one per exercise, named `<chapter>-<exercise>` after the exercise's
//! id, listed as `[[test]]` entries in the root Cargo.toml, each bringing in its exercise file.
//! The manifest is the list of exercises; this module derives each target's name from an id
//! and checks that Cargo.toml and the test files agree with the manifest.
use std::collections::BTreeMap;
use std::fs;
use std::path::Path;

use anyhow::{Context, Result, bail};

use crate::manifest::{FILE, Manifest};

/// The feature that points every test target at `solutions/`.
pub const SOLUTIONS_FEATURE: &str = "solutions";
/// The feature that points every test target at its copy of a mistake under [`MISTAKE_DIR`].
pub const MISTAKE_FEATURE: &str = "mistake";
/// Where the mistakes proof copies the mistake it builds, as `<dir>/<chapter>/<exercise>.rs`
/// (relative to the kit's root; the test files name it).
pub const MISTAKE_DIR: &str = "target/oskata-mistake";

/// The test target of exercise `id`: `processes/zombies` → `processes-zombies`.
pub fn name_of(id: &str) -> String {
    id.replacen('/', "-", 1)
}

/// The exercise id of test target `name`, the inverse of [`name_of`] (ids hold no `-`).
pub fn exercise_of(name: &str) -> Option<String> {
    let (chapter, exercise) = name.split_once('-')?;
    Some(format!("{chapter}/{exercise}"))
}

/// The test file of exercise `id`: `tests/<chapter>/<exercise>.rs`.
pub fn test_file(id: &str) -> String {
    format!("tests/{id}.rs")
}

/// The lines of `Cargo.toml` that declare exercise `id`'s test target.
fn stanza(id: &str) -> String {
    format!(
        "[[test]]\nname = \"{}\"\npath = \"{}\"",
        name_of(id),
        test_file(id)
    )
}

/// The module declarations a test file starts with: the exercise's file under each feature.
/// (`#[cfg]` on three items rather than `#[cfg_attr(.., path = ..)]` on one, which
/// rust-analyzer does not always follow.)
fn header(id: &str) -> String {
    let name = id.split_once('/').map_or(id, |(_, n)| n);
    let (s, m) = (SOLUTIONS_FEATURE, MISTAKE_FEATURE);
    format!(
        "#[cfg(not(any(feature = \"{s}\", feature = \"{m}\")))]\n\
         #[path = \"../../exercises/{id}.rs\"]\n\
         #[allow(dead_code)] // a stub does not use all of its API yet\n\
         mod {name};\n\
         #[cfg(all(feature = \"{s}\", not(feature = \"{m}\")))]\n\
         #[path = \"../../solutions/{id}.rs\"]\n\
         mod {name};\n\
         #[cfg(feature = \"{m}\")]\n\
         #[path = \"../../{MISTAKE_DIR}/{id}.rs\"]\n\
         #[rustfmt::skip] // the copy exists only while the proof runs\n\
         mod {name};\n\
         use {name}::*;"
    )
}

/// Checks that Cargo.toml declares exactly one test target per exercise, with the derived
/// name and path, and that each test file brings in its own exercise's three sources.
pub fn check(root: &Path, manifest: &Manifest) -> Result<()> {
    let path = root.join("Cargo.toml");
    let text =
        fs::read_to_string(&path).with_context(|| format!("cannot read {}", path.display()))?;
    let declared = declared(&text)?;
    for (name, file) in &declared {
        let Some(id) = exercise_of(name).filter(|id| manifest.exercise(id).is_some()) else {
            bail!(
                "Cargo.toml: test target `{name}` ({file}) belongs to no exercise in {FILE}; each test \
                 target is named `<chapter>-<exercise>` after an exercise's id"
            );
        };
        if *file != test_file(&id) {
            bail!(
                "Cargo.toml: test target `{name}` has path = \"{file}\"; it must be \"{}\"",
                test_file(&id)
            );
        }
    }
    for e in &manifest.exercises {
        if !declared.contains_key(&name_of(&e.id)) {
            bail!(
                "exercise `{}` in {FILE} has no test target; add to Cargo.toml:\n\n{}\n",
                e.id,
                stanza(&e.id)
            );
        }
        let file = test_file(&e.id);
        let source = fs::read_to_string(root.join(&file))
            .with_context(|| format!("exercise `{}`: cannot read {file}", e.id))?;
        let wanted = [
            format!("\"../../exercises/{}.rs\"", e.id),
            format!("\"../../solutions/{}.rs\"", e.id),
            format!("\"../../{MISTAKE_DIR}/{}.rs\"", e.id),
        ];
        if let Some(missing) = wanted.iter().find(|w| !source.contains(w.as_str())) {
            bail!(
                "{file} does not bring in its exercise ({missing} is missing); it must declare the \
                 exercise's module like this:\n\n{}\n",
                header(&e.id)
            );
        }
    }
    Ok(())
}

/// The `[[test]]` targets of a Cargo.toml: name → path.
fn declared(text: &str) -> Result<BTreeMap<String, String>> {
    let doc: toml::Table = toml::from_str(text).map_err(|e| anyhow::anyhow!("Cargo.toml: {e}"))?;
    let mut out = BTreeMap::new();
    let tests = match doc.get("test") {
        None => return Ok(out),
        Some(toml::Value::Array(tests)) => tests,
        Some(_) => bail!("Cargo.toml: `test` must be an array of [[test]] tables"),
    };
    for t in tests {
        let get = |key: &str| t.get(key).and_then(toml::Value::as_str);
        let Some(name) = get("name") else {
            bail!("Cargo.toml: a [[test]] entry has no name");
        };
        let Some(path) = get("path") else {
            bail!("Cargo.toml: test target `{name}` has no path");
        };
        if out.insert(name.to_owned(), path.to_owned()).is_some() {
            bail!("Cargo.toml: test target `{name}` is declared twice");
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_ids_map_both_ways() {
        assert_eq!(name_of("io_models/epoll_server"), "io_models-epoll_server");
        assert_eq!(
            exercise_of("io_models-epoll_server").as_deref(),
            Some("io_models/epoll_server")
        );
        assert_eq!(exercise_of("isolation"), None);
    }

    #[test]
    fn declared_targets_are_read() {
        let t = declared(
            "[package]\nname = \"k\"\n[[test]]\nname = \"a-b\"\npath = \"tests/a/b.rs\"\n",
        )
        .unwrap();
        assert_eq!(t["a-b"], "tests/a/b.rs");
        let e = declared(
            "[[test]]\nname = \"a-b\"\npath = \"x\"\n[[test]]\nname = \"a-b\"\npath = \"y\"\n",
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("declared twice"), "{e}");
    }

    #[test]
    fn the_header_names_all_three_sources() {
        let h = header("processes/zombies");
        assert!(h.contains("\"../../exercises/processes/zombies.rs\""));
        assert!(h.contains("\"../../solutions/processes/zombies.rs\""));
        assert!(h.contains("\"../../target/oskata-mistake/processes/zombies.rs\""));
        assert!(h.ends_with("mod zombies;\nuse zombies::*;"));
    }
}
