//! `melxai --batch` end to end on a small generated data set with a tiny input
//! size: every report file exists and holds what it should.

mod common;

use std::process::Command;

use serde_json::Value;

#[test]
fn batch_writes_a_complete_report_and_reuses_finished_work() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    common::dataset::make(&root.join("data"), 10, 40);
    let weights = root.join("weights");
    std::fs::create_dir_all(&weights).unwrap();
    let f = "efficientnet-lite0-imagenet.safetensors";
    std::os::unix::fs::symlink(common::weights_dir().join(f), weights.join(f)).unwrap();
    std::fs::write(
        root.join("config.toml"),
        format!(
            r#"
device = "cpu"
[data]
root = "{data}"
[model]
weights_dir = "{weights}"
[train]
epochs = 2
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
methods = ["gradcam", "ig", "deeplift"]
models = [{{ name = "a", arch = "lite0", seed = 1 }}, {{ name = "b", arch = "lite0", seed = 2 }}]
"#,
            data = root.join("data").display(),
            weights = weights.display()
        ),
    )
    .unwrap();
    let run = || {
        Command::new(env!("CARGO_BIN_EXE_melxai"))
            .args(["--batch", "--json"])
            .current_dir(root)
            .output()
            .unwrap()
    };
    let out = run();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "batch failed: {stderr}\n{}",
        String::from_utf8_lossy(&out.stdout)
    );
    let summary: Value = serde_json::from_slice(&out.stdout).expect("--json summary on stdout");
    assert!(
        summary["steps"]
            .as_array()
            .unwrap()
            .iter()
            .all(|s| s["ok"] == true),
        "{summary}"
    );

    let rep = root.join("reports/tiny");
    let metrics: Value =
        serde_json::from_str(&std::fs::read_to_string(rep.join("metrics.json")).unwrap()).unwrap();
    // Cross-validation: every image predicted once, out of fold.
    let cv = &metrics["metrics"]["cross_validation"];
    assert_eq!(cv["folds"], 2);
    assert_eq!(cv["pooled"]["n"], 20);
    let auroc = cv["pooled"]["auroc"].as_f64().unwrap();
    assert!((0.0..=1.0).contains(&auroc));
    let t = cv["calibration"]["fit"]["temperature"].as_f64().unwrap();
    assert!(t > 0.0 && t.is_finite());
    // Both models evaluated and calibrated; test metrics present.
    for m in ["a", "b"] {
        let model = &metrics["metrics"][format!("model:{m}")];
        assert!(model["test"]["n"].as_u64().unwrap() >= 2, "{m}");
        assert!(model["calibration"]["fit"]["temperature"].as_f64().unwrap() > 0.0);
        for fig in [
            "training",
            "roc",
            "confusion",
            "reliability",
            "explanations",
        ] {
            let p = rep.join(format!("{fig}_{m}.png"));
            let img = image::open(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
            assert!(img.width() > 100 && img.height() > 100);
        }
    }
    // Agreement: matrices for three methods, cross-model numbers for each method.
    let ag = &metrics["metrics"]["agreement"];
    assert_eq!(ag["methods"].as_array().unwrap().len(), 3);
    let cross = &ag["cross"][0];
    assert_eq!(cross["models"], serde_json::json!(["a", "b"]));
    let j = cross["per_method"]["gradcam"]["jaccard"]["mean"]
        .as_f64()
        .unwrap();
    assert!((0.0..=1.0).contains(&j));
    let pair = &ag["within"]["a"]["gradcam~ig"]["ssim"];
    assert!(pair["mean"].as_f64().unwrap().abs() <= 1.0 && pair["n"].as_u64().unwrap() >= 2);
    // Maps: .npy per image and method, CSVs with one row per image x method.
    let test_ids = metrics["metrics"]["model:a"]["test"]["n"].as_u64().unwrap() as usize;
    let maps_a = std::fs::read_dir(rep.join("maps/a"))
        .unwrap()
        .filter(|e| {
            e.as_ref()
                .unwrap()
                .file_name()
                .to_string_lossy()
                .ends_with("_map.npy")
        })
        .count();
    assert_eq!(maps_a, test_ids * 3);
    let cross_csv = std::fs::read_to_string(rep.join("maps/cross_a_vs_b.csv")).unwrap();
    assert_eq!(cross_csv.lines().count(), 1 + test_ids * 3);
    assert!(cross_csv.starts_with("sample,method,ssim,pearson,spearman,cosine,jaccard,topk"));
    let preds = std::fs::read_to_string(rep.join("predictions_a.csv")).unwrap();
    assert_eq!(preds.lines().count(), 1 + test_ids);
    // Screenshots and report.md referencing figures that exist.
    for pane in ["samples", "images", "training", "calibration", "agreement"] {
        let svg = std::fs::read_to_string(rep.join(format!("screens/{pane}.svg"))).unwrap();
        assert!(svg.starts_with("<svg") || svg.contains("<svg"), "{pane}");
    }
    let md = std::fs::read_to_string(rep.join("report.md")).unwrap();
    assert!(md.contains("## Cross-validation (2 folds"));
    for line in md.lines().filter(|l| l.starts_with("![")) {
        let file = line.split("](").nth(1).unwrap().trim_end_matches(')');
        assert!(rep.join(file).exists(), "report.md embeds missing {file}");
    }

    // Re-run: finished training and maps are reused, numbers identical.
    let t0 = std::time::Instant::now();
    let again = run();
    assert!(
        again.status.success(),
        "{}",
        String::from_utf8_lossy(&again.stderr)
    );
    let metrics2: Value =
        serde_json::from_str(&std::fs::read_to_string(rep.join("metrics.json")).unwrap()).unwrap();
    assert_eq!(
        metrics["metrics"]["cross_validation"]["pooled"],
        metrics2["metrics"]["cross_validation"]["pooled"]
    );
    assert_eq!(
        metrics["metrics"]["agreement"],
        metrics2["metrics"]["agreement"]
    );
    let _ = t0;
}
