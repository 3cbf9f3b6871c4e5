//! Helpers shared by integration tests.
#![allow(dead_code)]

pub mod dataset;

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

/// The deterministic input pattern of scripts/fixtures/gen_logits.py, `(3,size,size)` row-major.
pub fn pattern(size: usize) -> Vec<f32> {
    let mut v = Vec::with_capacity(3 * size * size);
    for c in 0..3 {
        for i in 0..size {
            for j in 0..size {
                let x = 1.5
                    * (0.031 * (i + 1) as f64 * (c + 1) as f64).sin()
                    * (0.017 * (j + 1) as f64 + 0.5 * c as f64).cos();
                v.push(x as f32);
            }
        }
    }
    v
}
