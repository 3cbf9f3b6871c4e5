//! Mixed precision through the real binary on a tiny generated data set: bf16
//! and fp16 (with loss scaling) train to finite metrics on the CPU, and a bad
//! value is refused with the allowed ones named.

mod common;

use std::process::Command;

fn setup(dir: &std::path::Path) -> std::path::PathBuf {
    common::dataset::make(&dir.join("data"), 8, 40);
    let weights = dir.join("weights");
    std::fs::create_dir_all(&weights).unwrap();
    let lite0 = "efficientnet-lite0-imagenet.safetensors";
    std::os::unix::fs::symlink(common::weights_dir().join(lite0), weights.join(lite0)).unwrap();
    let config = dir.join("config.toml");
    std::fs::write(
        &config,
        format!(
            "device = \"cpu\"\n[data]\nroot = \"{}\"\n[model]\nweights_dir = \"{}\"\n[train]\nepochs = 1\nbatch_size = 8\ninput_size = 32\npatience = 0\n",
            dir.join("data").display(),
            weights.display()
        ),
    )
    .unwrap();
    config
}

fn train(config: &std::path::Path, precision: &str) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_melxai"))
        .args(["--config", config.to_str().unwrap(), "train"])
        .args([
            "--name",
            &format!("p-{precision}"),
            "--precision",
            precision,
            "--json",
        ])
        .output()
        .unwrap()
}

#[test]
fn bf16_and_fp16_training_give_finite_metrics() {
    let dir = tempfile::tempdir().unwrap();
    let config = setup(dir.path());
    for precision in ["bf16", "fp16"] {
        let out = train(&config, precision);
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(0), "{precision}: {err}");
        let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        let auroc = report["test"]["auroc"].as_f64().unwrap();
        assert!(
            auroc.is_finite() && (0.0..=1.0).contains(&auroc),
            "{precision}: {report}"
        );
        assert!(dir
            .path()
            .join(format!("weights/p-{precision}.safetensors"))
            .exists());
    }
}

#[test]
fn unknown_precision_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let config = setup(dir.path());
    let out = train(&config, "fp8");
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("expected fp32, bf16 or fp16"), "{err}");
}
