//! Helpers shared by integration tests.
#![allow(dead_code, unused_imports)]

pub mod cli;
pub mod dataset;
mod pattern;
pub mod runs;

pub use pattern::pattern;

use std::path::PathBuf;

/// Repository root (tests run with the package root as working directory).
pub fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The shipped weights directory; `make setup` creates its files.
pub fn weights_dir() -> PathBuf {
    let dir = root().join("weights");
    assert!(
        dir.join("efficientnet-lite0-imagenet.safetensors").exists(),
        "ImageNet weights missing: run `make setup` (make test does it) before cargo test"
    );
    dir
}

/// A skipped test says so where a person sees it: straight to stderr (the
/// harness captures only `eprintln!`, and shows it only for failures), and
/// in a list that `make test` counts at the end of the run. `tag` names
/// the test.
pub fn report_skip(tag: &str, why: &str) {
    use std::io::Write;
    let line = format!("SKIPPED: {why} [{tag}]\n");
    let _ = std::io::stderr().write_all(line.as_bytes());
    let list = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("real-terminals-skipped.txt");
    if let Ok(mut f) = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(list)
    {
        let _ = f.write_all(line.as_bytes());
    }
}
