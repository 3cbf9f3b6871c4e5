//! Fault injection for training runs (issue: nothing lost, part two): every
//! name a fold run writes is locked, refusals give advice in the run's own
//! shape, a fold ensemble as `compare`'s reference says why it has no test
//! split, and a split without test images says so.

mod common;

use std::path::Path;

use common::cli::{assert_refused, run, text};

const CONFIG: &str = "device = \"cpu\"\n[data]\nroot = \"data\"\npositive_class = \"melanoma\"\n\
     [model]\narch = \"lite0\"\nweights_dir = \"weights\"\n\
     [train]\nname = \"base\"\nepochs = 1\nbatch_size = 8\npretrained = false\n\
     input_size = 32\npatience = 0\ntest_fraction = 0.25\nval_fraction = 0.25\n";

/// 16 small images and a one-epoch config without ImageNet weights.
fn project() -> tempfile::TempDir {
    let tmp = tempfile::tempdir().unwrap();
    common::dataset::make(&tmp.path().join("data"), 8, 32);
    std::fs::write(tmp.path().join("config.toml"), CONFIG).unwrap();
    tmp
}

fn weights_files(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir.join("weights"))
        .map(|rd| {
            rd.flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .filter(|n| !n.ends_with(".lock"))
                .collect()
        })
        .unwrap_or_default();
    names.sort();
    names
}

#[test]
fn a_fold_run_locks_its_members_names_before_writing_anything() {
    let tmp = project();
    let dir = tmp.path();
    // Another run writing `x-fold1` (say `train --name x-fold1`) holds its lock.
    let held = melxai::files::RunLock::acquire(&dir.join("weights/.x-fold1.lock"), "test")
        .expect("lock taken");
    let o = run(dir, &["train", "--folds", "2", "--name", "x"]);
    assert_refused(
        &o,
        &[
            "x-fold1",
            "already in use",
            &format!("process {}", std::process::id()),
        ],
    );
    assert_eq!(weights_files(dir), Vec::<String>::new(), "nothing written");
    drop(held);
    let o = run(dir, &["train", "--folds", "2", "--name", "x"]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
}

#[test]
fn refusals_and_advice_follow_the_runs_shape() {
    let tmp = project();
    let dir = tmp.path();
    std::fs::write(dir.join("other.toml"), CONFIG).unwrap();
    // The fold run, started with a config file of its own.
    let fold_run = [
        "--config",
        "other.toml",
        "train",
        "--folds",
        "2",
        "--name",
        "cv",
    ];
    let o = run(dir, &fold_run);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));

    // A torn resume point of a fold: the advice restarts the fold run,
    // with its config file and number of folds, not a single split.
    let last = dir.join("weights/cv-fold0-last.safetensors");
    let mut bytes = std::fs::read(&last).unwrap();
    *bytes.last_mut().unwrap() ^= 0xff;
    std::fs::write(&last, bytes).unwrap();
    let o = run(dir, &[&fold_run[..], &["--resume"]].concat());
    assert_refused(
        &o,
        &[
            "nothing was resumed",
            "`melxai --config other.toml train --name cv --folds 2` without --resume",
        ],
    );

    // A fold ensemble as compare's reference: why there is no test split,
    // and what to use instead.
    let o = run(
        dir,
        &[
            "--config",
            "other.toml",
            "compare",
            "--checkpoint",
            "weights/cv.ensemble.toml",
        ],
    );
    assert_refused(
        &o,
        &[
            "weights/cv.ensemble.toml",
            "fold ensemble",
            "--split all",
            "single checkpoint",
        ],
    );
}

#[test]
fn a_split_without_test_images_says_so_on_stderr_and_in_the_report() {
    // One image per class: nothing can be held out. Weight averaging needs
    // no validation image, so the run trains and must say what is missing.
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    common::dataset::make(&dir.join("data"), 1, 32);
    let config = CONFIG.replace("patience = 0", "patience = 0\nswa_epochs = 1");
    std::fs::write(dir.join("config.toml"), config).unwrap();
    let o = run(dir, &["train", "--name", "nt"]);
    let t = text(&o);
    assert_eq!(o.status.code(), Some(0), "{t}");
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert!(stderr.contains("no test image"), "{stderr}");
    assert!(stderr.contains("no test figures exist"), "{stderr}");
    assert!(stderr.contains("no validation image"), "{stderr}");
    let report = std::fs::read_to_string(dir.join("reports/nt/training.json")).unwrap();
    let json: serde_json::Value = serde_json::from_str(&report).unwrap();
    let notes = json["notes"].as_array().expect("notes in training.json");
    assert!(
        notes
            .iter()
            .any(|n| n.as_str().is_some_and(|s| s.contains("no test image"))),
        "{report}"
    );
}
