//! `melxai doctor` is healthy on the set-up install and names each problem:
//! a truncated weights file, a missing one, an empty class folder.

mod common;

use std::process::Command;

fn doctor(config: &std::path::Path) -> (i32, serde_json::Value) {
    let out = Command::new(env!("CARGO_BIN_EXE_melxai"))
        .args(["--config", config.to_str().unwrap(), "doctor", "--json"])
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        serde_json::from_slice(&out.stdout).expect("json report"),
    )
}

fn check<'a>(report: &'a serde_json::Value, name: &str) -> &'a serde_json::Value {
    report["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == name)
        .unwrap_or_else(|| panic!("no check {name}"))
}

#[test]
fn doctor_names_broken_weights_and_empty_data() {
    let dir = tempfile::tempdir().unwrap();
    let w = dir.path().join("w");
    let data = dir.path().join("data");
    std::fs::create_dir_all(&w).unwrap();
    std::fs::create_dir_all(data.join("melanoma")).unwrap();
    std::fs::create_dir_all(data.join("naevus")).unwrap();
    let good = common::weights_dir();
    let lite0 = std::fs::read(good.join("efficientnet-lite0-imagenet.safetensors")).unwrap();
    std::fs::write(
        w.join("efficientnet-lite0-imagenet.safetensors"),
        &lite0[..100_000],
    )
    .unwrap();
    std::fs::copy(
        good.join("efficientnet-lite1-imagenet.safetensors"),
        w.join("efficientnet-lite1-imagenet.safetensors"),
    )
    .unwrap();
    let config = dir.path().join("c.toml");
    std::fs::write(
        &config,
        format!(
            "[data]\nroot = {:?}\n[model]\nweights_dir = {:?}\n",
            data, w
        ),
    )
    .unwrap();

    let (code, report) = doctor(&config);
    assert_eq!(code, 1);
    assert_eq!(report["healthy"], false);
    let lite0 = check(&report, "weights lite0");
    assert_eq!(lite0["ok"], false);
    assert!(
        lite0["detail"]
            .as_str()
            .unwrap()
            .contains("cannot read tensors"),
        "{lite0}"
    );
    assert_eq!(check(&report, "weights lite1")["ok"], true);
    let lite2 = check(&report, "weights lite2")["detail"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(
        lite2.contains("not found") && lite2.matches("make setup").count() == 1,
        "{lite2}"
    );
    let data_check = check(&report, "data set")["detail"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(
        data_check.contains("melanoma") && data_check.contains("no images"),
        "{data_check}"
    );
}

#[test]
fn doctor_is_healthy_on_the_set_up_install() {
    let (code, report) = doctor(&common::root().join("config.toml"));
    assert_eq!(code, 0, "{report}");
    assert!(check(&report, "data set")["detail"]
        .as_str()
        .unwrap()
        .contains("170 images"));
}
