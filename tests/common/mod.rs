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
