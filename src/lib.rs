//! # oskata
//!
//! Exercises in Linux systems programming. Every module below is one exercise: its source is
//! `exercises/<chapter>/<exercise>.rs` (yours to fill in) or, with `--features solutions`,
//! `solutions/<chapter>/<exercise>.rs` (the reference). `build.rs` writes the module tree;
//! see ARCHITECTURE.md for why it is generated rather than written out by hand.
include!(concat!(env!("OUT_DIR"), "/kit.rs"));
