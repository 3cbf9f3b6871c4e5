//! Fault injection for `calibrate --cv` (issue: nothing lost, part two):
//! a file of the wrong kind is named with what was expected, and storing the
//! temperature in a cross-validation's fold checkpoints is all-or-nothing.

mod common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use common::cli::{assert_refused, run, text};

/// Every file of the weights folder with its bytes (run locks left out).
fn weights(dir: &Path) -> BTreeMap<PathBuf, Vec<u8>> {
    std::fs::read_dir(dir.join("weights"))
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.is_file() && !p.to_string_lossy().ends_with(".lock"))
        .map(|p| (p.clone(), std::fs::read(&p).unwrap()))
        .collect()
}

/// A 2-fold run `cv` and a single-split run `single` on 16 small images.
fn project() -> tempfile::TempDir {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    common::dataset::make(&dir.join("data"), 8, 32);
    std::fs::write(
        dir.join("config.toml"),
        "device = \"cpu\"\n[data]\nroot = \"data\"\npositive_class = \"melanoma\"\n\
         [model]\narch = \"lite0\"\nweights_dir = \"weights\"\n\
         [train]\nname = \"single\"\nepochs = 1\nbatch_size = 8\npretrained = false\n\
         input_size = 32\npatience = 0\ntest_fraction = 0.25\nval_fraction = 0.25\n",
    )
    .unwrap();
    for args in [
        &["train", "--folds", "2", "--name", "cv"][..],
        &["train", "--name", "single"][..],
    ] {
        let o = run(dir, args);
        assert_eq!(o.status.code(), Some(0), "{args:?}:\n{}", text(&o));
    }
    tmp
}

#[test]
fn calibrate_cv_names_the_file_and_stores_in_every_fold_or_none() {
    let tmp = project();
    let dir = tmp.path();

    // A file that is not JSON: the message names it and says what --cv takes.
    std::fs::write(dir.join("broken.json"), "[\n").unwrap();
    let o = run(dir, &["calibrate", "--cv", "broken.json"]);
    assert_refused(&o, &["broken.json", "not a training report", "--folds K"]);

    // A single-split run's report: not a cross-validation, and what to use.
    let o = run(dir, &["calibrate", "--cv", "reports/single/training.json"]);
    assert_refused(
        &o,
        &[
            "reports/single/training.json",
            "not a cross-validation",
            "--checkpoint weights/single",
        ],
    );

    // One fold's metadata missing: refused naming it, and no fold changed.
    std::fs::remove_file(dir.join("weights/cv-fold1.toml")).unwrap();
    let before = weights(dir);
    let o = run(dir, &["calibrate", "--cv", "reports/cv/training.json"]);
    assert_refused(&o, &["cv-fold1.toml"]);
    let after = weights(dir);
    for (path, bytes) in &before {
        assert!(
            after.get(path) == Some(bytes),
            "{} changed although the calibration was refused",
            path.display()
        );
    }
    assert_eq!(before.len(), after.len(), "files appeared or vanished");
}
