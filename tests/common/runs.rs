//! Tiny `--batch` projects and the comparison of two runs' reports: the
//! same metrics.json except timings, and bit-identical maps.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::Value;

/// The config of the tiny units projects: relative paths, so that two
/// projects' reports name the same files; `[batch] cpu_threads = 1`, so
/// that every process computes with one libtorch thread.
pub const TINY_CONFIG: &str = r#"device = "cpu"
[data]
root = "data"
[model]
weights_dir = "weights"
[train]
epochs = 5
batch_size = 8
input_size = 32
patience = 0
[explain]
integration = "gausslegendre"
steps = 8
internal_batch = 8
[batch]
run_name = "tiny"
folds = 2
cv_repeats = 2
bootstrap_samples = 200
screenshots = false
explain_shards = 2
cpu_threads = 1
methods = ["gradcam", "ig", "deeplift"]
models = [{ name = "a", arch = "lite0", seed = 1 }, { name = "b", arch = "lite0", seed = 2 }]
"#;

/// A fresh project in `dir`: 12 images per class, the Lite0 weights, the
/// tiny config.
pub fn tiny_project(dir: &Path) {
    super::dataset::make(&dir.join("data"), 12, 40);
    let weights = dir.join("weights");
    std::fs::create_dir_all(&weights).unwrap();
    let f = "efficientnet-lite0-imagenet.safetensors";
    std::os::unix::fs::symlink(super::weights_dir().join(f), weights.join(f)).unwrap();
    std::fs::write(dir.join("config.toml"), TINY_CONFIG).unwrap();
}

pub fn melxai(dir: &Path, args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut c = Command::new(env!("CARGO_BIN_EXE_melxai"));
    c.args(args).current_dir(dir);
    for (k, v) in env {
        c.env(k, v);
    }
    c.output().unwrap()
}

/// Panics with both streams unless `o` succeeded.
pub fn ok(o: &Output, what: &str) {
    assert!(
        o.status.success(),
        "{what} failed ({}):\n{}\n{}",
        o.status,
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
}

/// `v` without what differs between two runs of the same work: timings.
fn without_timings(v: &mut Value) {
    match v {
        Value::Object(m) => {
            m.retain(|k, _| !k.contains("seconds") && k != "images_per_second");
            m.values_mut().for_each(without_timings);
        }
        Value::Array(a) => a.iter_mut().for_each(without_timings),
        _ => {}
    }
}

fn json(path: &Path) -> Value {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let mut v: Value = serde_json::from_str(&text).unwrap();
    without_timings(&mut v);
    v
}

/// Every file under `dir`, relative, sorted.
fn files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else {
                out.push(p.strip_prefix(dir).unwrap().to_path_buf());
            }
        }
    }
    out.sort();
    out
}

/// Asserts that run `b`'s report equals run `a`'s: metrics.json and
/// agreement.json identical except timings, every map file bit-identical,
/// the map records identical except their seconds.
pub fn assert_same_report(a: &Path, b: &Path) {
    let (ma, mb) = (json(&a.join("metrics.json")), json(&b.join("metrics.json")));
    if ma != mb {
        let (sa, sb) = (
            serde_json::to_string_pretty(&ma).unwrap(),
            serde_json::to_string_pretty(&mb).unwrap(),
        );
        let first = sa
            .lines()
            .zip(sb.lines())
            .enumerate()
            .find(|(_, (x, y))| x != y);
        panic!(
            "metrics.json differ between {} and {}; first at line {first:?}",
            a.display(),
            b.display()
        );
    }
    let (maps_a, maps_b) = (a.join("maps"), b.join("maps"));
    let (fa, fb) = (files(&maps_a), files(&maps_b));
    assert_eq!(fa, fb, "the two runs wrote different map files");
    assert!(
        fa.iter().any(|f| f.to_string_lossy().ends_with("_map.npy")),
        "no maps in {}",
        maps_a.display()
    );
    for f in &fa {
        let name = f.to_string_lossy();
        if name.ends_with(".json") {
            assert_eq!(json(&maps_a.join(f)), json(&maps_b.join(f)), "{name}");
        } else {
            let (x, y) = (
                std::fs::read(maps_a.join(f)).unwrap(),
                std::fs::read(maps_b.join(f)).unwrap(),
            );
            assert!(x == y, "{name} differs between the runs");
        }
    }
}

/// Asserts that `batch status --json` says every unit is done.
pub fn assert_all_done(status: &Value) {
    let units = status["units"].as_array().expect("status lists units");
    assert!(
        !units.is_empty() && units.iter().all(|u| u["state"] == "done"),
        "{status}"
    );
}
