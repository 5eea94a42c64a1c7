//! The command line: `cargo grade [FLAGS]`.
use std::path::PathBuf;

use clap::Parser;

/// Builds the oskata tests, runs each one isolated with a deadline, and reports progress.
#[derive(Debug, Parser)]
#[command(name = "oskata-grade", version, about)]
pub struct Cli {
    /// Print one JSON document on stdout instead of the report (schema in grader/JSON.md).
    #[arg(long)]
    pub json: bool,
    /// Grade the reference solutions instead of your exercises.
    #[arg(long, conflicts_with = "mistakes")]
    pub solutions: bool,
    /// Prove that each shipped classic mistake is caught by the tests.
    #[arg(long)]
    pub mistakes: bool,
    /// Only this exercise, e.g. `processes/fork_basics` (repeatable).
    #[arg(long = "exercise", value_name = "ID")]
    pub exercises: Vec<String>,
    /// Only the exercises of this chapter, e.g. `processes` (repeatable).
    #[arg(long = "chapter", value_name = "ID")]
    pub chapters: Vec<String>,
    /// How many tests run at once (default: the number of CPUs).
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u16).range(1..))]
    pub jobs: Option<u16>,
    /// The grader's own deadline for one test, in seconds (a backstop for endless loops).
    #[arg(long, value_name = "SECS", default_value_t = 60, value_parser = clap::value_parser!(u64).range(1..))]
    pub timeout: u64,
    /// Keep running: grade again each time a selected exercise's files or manifest.toml change.
    #[arg(long, conflicts_with_all = ["json", "mistakes"])]
    pub watch: bool,
    /// The kit's root (the folder with Cargo.toml and manifest.toml); default: found from here.
    #[arg(long, value_name = "DIR")]
    pub root: Option<PathBuf>,
}
