//! `melxai --batch` end to end on a small generated data set with a tiny input
//! size: every report file exists and holds what it should.

mod common;

use std::process::Command;

use serde_json::Value;

/// The `*_map.npy` files in `dir`.
fn count_maps(dir: &std::path::Path) -> usize {
    std::fs::read_dir(dir)
        .unwrap()
        .filter(|e| {
            e.as_ref()
                .unwrap()
                .file_name()
                .to_string_lossy()
                .ends_with("_map.npy")
        })
        .count()
}

/// `root/data` (10 images per class, 40 px) and `root/weights` with the Lite0
/// ImageNet weights; returns the weights folder.
fn tiny_project(root: &std::path::Path) -> std::path::PathBuf {
    common::dataset::make(&root.join("data"), 10, 40);
    let weights = root.join("weights");
    std::fs::create_dir_all(&weights).unwrap();
    let f = "efficientnet-lite0-imagenet.safetensors";
    std::os::unix::fs::symlink(common::weights_dir().join(f), weights.join(f)).unwrap();
    weights
}

/// A tiny project in a fresh temporary folder whose `config.toml` is CPU,
/// its data and weights, then `sections` (`[train]`, `[batch]`, ...).
/// Returns the folder (kept alive by the caller) and the weights folder.
fn tiny_project_with_config(sections: &str) -> (tempfile::TempDir, std::path::PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    let weights = tiny_project(root);
    let head = format!(
        "device = \"cpu\"\n[data]\nroot = \"{}\"\n[model]\nweights_dir = \"{}\"\n",
        root.join("data").display(),
        weights.display()
    );
    std::fs::write(root.join("config.toml"), head + sections).unwrap();
    (dir, weights)
}

#[test]
fn batch_writes_a_complete_report_and_reuses_finished_work() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    let weights = tiny_project(root);
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
tta = true
[explain]
integration = "gausslegendre"
steps = 8
internal_batch = 8
[batch]
run_name = "tiny"
folds = 2
cv_repeats = 2
cv_extra_input_sizes = [40]
bootstrap_samples = 200
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
    // The device the run used (doctor's words) and the libtorch linked.
    let device = metrics["device"].as_str().unwrap();
    assert!(device.starts_with("cpu ("), "{device}");
    assert_eq!(
        metrics["libtorch"].as_str().unwrap(),
        melxai::device::libtorch_build().0
    );
    let md = std::fs::read_to_string(rep.join("report.md")).unwrap();
    assert!(md.contains(&format!("device {device}")), "{md}");
    // Cross-validation: every image predicted once, out of fold.
    let cv = &metrics["metrics"]["cross_validation"];
    assert_eq!(cv["folds"], 2);
    assert_eq!(cv["pooled"]["n"], 20);
    let auroc = cv["pooled"]["auroc"].as_f64().unwrap();
    assert!((0.0..=1.0).contains(&auroc));
    let t = cv["calibration"]["fit"]["temperature"].as_f64().unwrap();
    assert!(t > 0.0 && t.is_finite());
    // Repeated cross-validation: a second 2-fold run (seed 2), each seed also
    // at 40 px (`cv_extra_input_sizes`), the ensemble of the four
    // out-of-fold predictions per image, its operating point.
    let e = &metrics["metrics"]["ensemble"];
    assert_eq!(e["members"], 4);
    assert_eq!(e["repeated_cv"]["seeds"], serde_json::json!([1, 1, 2, 2]));
    assert_eq!(
        e["repeated_cv"]["input_sizes"],
        serde_json::json!([32, 40, 32, 40])
    );
    assert_eq!(e["repeated_cv"]["images"], 20);
    for key in ["auroc", "ece", "brier", "nll", "aurc"] {
        let v = e[key]
            .as_f64()
            .unwrap_or_else(|| panic!("ensemble.{key}: {e}"));
        assert!(v.is_finite() && v >= 0.0, "ensemble.{key} = {v}");
    }
    let ci = e["auroc_ci"].as_array().unwrap();
    assert!(ci[0].as_f64().unwrap() <= ci[1].as_f64().unwrap());
    // The ECE perfectly calibrated outcomes reach on the same confidences.
    let floor = &e["ece_if_calibrated"];
    assert_eq!(floor["observed"], e["ece"]);
    let expected = floor["expected"].as_f64().unwrap();
    assert!(expected > 0.0 && expected < 0.5, "{floor}");
    assert!(floor["low"].as_f64().unwrap() <= floor["high"].as_f64().unwrap());
    let p = floor["p_value"].as_f64().unwrap();
    assert!(p > 0.0 && p <= 1.0, "{floor}");
    assert!(md.contains("a perfectly calibrated ensemble with the same confidences would score"));
    let after = &metrics["metrics"]["model:a"]["calibration"]["results"][0]["after_ci"];
    assert!(after["ece_if_calibrated"]["expected"].as_f64().unwrap() > 0.0);
    assert!(md.contains("(perfectly calibrated: "), "{md}");
    // Seed 1 at both sizes against seed 2 at both sizes.
    let halves = e["seed_abs_diff"].as_f64().expect("two halves of two");
    assert!((0.0..1.0).contains(&halves), "{halves}");
    assert!(
        md.contains("1 @ 32 px, 1 @ 40 px, 2 @ 32 px, 2 @ 40 px"),
        "{md}"
    );
    assert!(e["seed_abs_diff_single"].as_f64().unwrap() >= 0.0);
    // `[train] tta = true`: the figures are TTA ones, and the same models'
    // plain predictions are evaluated beside them.
    let plain = &e["without_tta"];
    for part in ["single", "ensemble"] {
        let v = plain[part]["auroc"]
            .as_f64()
            .unwrap_or_else(|| panic!("{plain}"));
        assert!((0.0..=1.0).contains(&v), "without_tta.{part}.auroc = {v}");
    }
    assert_ne!(plain["ensemble"]["nll"], e["nll"], "TTA changed nothing");
    assert!(md.contains("| without TTA: ensemble of 4 |"), "{md}");
    let op = &e["operating_point"];
    assert!(op["sensitivity"].as_f64().unwrap() >= 0.95);
    assert!((0.0..=1.0).contains(&op["threshold"].as_f64().unwrap()));
    assert!((0.0..=1.0).contains(&op["specificity"].as_f64().unwrap()));
    // Names carry the extra size, so no run reuses another size's models.
    for stem in ["a-r1-cv-fold1", "a-40px-cv-fold1", "a-r1-40px-cv-fold0"] {
        let ck = weights.join(format!("{stem}.safetensors"));
        assert!(ck.exists(), "{}", ck.display());
    }
    let meta = melxai::model::checkpoint::read_meta(&weights.join("a-r1-40px-cv-fold0")).unwrap();
    assert_eq!(meta.input_size, [40, 40]);
    let rc = std::fs::read_to_string(rep.join("risk_coverage_a_ensemble.csv")).unwrap();
    assert!(rc.starts_with("coverage,risk,confidence_threshold\n"));
    assert!(rc.trim_end().ends_with(|c: char| c.is_ascii_digit()));
    // Decisions: the calibration statement with its evidence and the
    // decision curve (1-60 %), in metrics.json, a CSV, a figure and report.md.
    let d = &e["repeated_cv"]["ensemble"]["decisions"];
    let statement = d["calibration"]["statement"].as_str().unwrap();
    assert!(
        statement.contains("with perfect calibration"),
        "{statement}"
    );
    let p_value = d["calibration"]["spiegelhalter"]["p_value"]
        .as_f64()
        .unwrap();
    assert!((0.0..=1.0).contains(&p_value));
    assert_eq!(d["decision_curve"]["points"].as_array().unwrap().len(), 60);
    assert_eq!(d["operating_threshold"], op["threshold"]);
    let dca = std::fs::read_to_string(rep.join("decision_curve_a_ensemble.csv")).unwrap();
    assert_eq!(dca.lines().count(), 61, "{dca}");
    assert!(rep.join("decision_curve_a_ensemble.png").exists());
    assert!(
        md.contains("## Decisions") && md.contains(statement),
        "{md}"
    );
    // Conformal sets out of fold: coverage against 1 − α, the repeated-split
    // check at α 0.1 and 0.2, a row per image in the CSV, and report.md.
    let c = &d["conformal"];
    assert_eq!(c["target"], 0.9);
    let coverage = c["ensemble"]["coverage"].as_f64().unwrap();
    assert!((0.0..=1.0).contains(&coverage), "{c}");
    assert_eq!(c["experiment"].as_array().unwrap().len(), 2);
    let sets = std::fs::read_to_string(rep.join("conformal_sets_a_ensemble.csv")).unwrap();
    assert!(
        sets.starts_with("sample,label,set,set_size,covered,refer\n"),
        "{sets}"
    );
    assert_eq!(
        sets.lines().count() as u64,
        c["ensemble"]["n"].as_u64().unwrap() + 1
    );
    assert!(md.contains("**Conformal prediction sets**"), "{md}");
    // Which explanation to trust: the reference model's maps scored.
    let scores = &metrics["metrics"]["scores"][0];
    assert_eq!(scores["model"], "a");
    assert!(
        scores["summary"]["gradcam"]["road_gap"]["mean"].is_f64(),
        "{scores}"
    );
    assert!(rep.join("scores_a.csv").exists() && rep.join("scorecard_a.png").exists());
    assert!(md.contains("## Which explanation to trust (a, "), "{md}");
    // The fold models are saved as one ensemble whose temperature is the
    // same fit on the pooled out-of-fold logits.
    let ens = weights.join("a-cv.ensemble.toml");
    let manifest = melxai::ensemble::manifest::read(&ens).unwrap();
    // ... and the conformal thresholds calibrated on those predictions.
    let conformal = manifest.conformal.as_ref().expect("conformal thresholds");
    assert_eq!(conformal.quantiles.len(), 2);
    assert_eq!(conformal.settings.alpha, 0.1);
    let names: Vec<&str> = manifest.members.iter().map(|m| m.name.as_str()).collect();
    assert_eq!(names, ["a-cv-fold0", "a-cv-fold1"]);
    // Its temperature was fitted on TTA predictions, so "auto" predicts with TTA.
    let mut fold_ensemble = melxai::ensemble::Model::load(&ens, tch::Device::Cpu).unwrap();
    assert!(fold_ensemble.fitted_with_tta());
    fold_ensemble.set_tta(melxai::ensemble::tta::TtaSetting::Auto);
    assert!(fold_ensemble.tta);
    assert!(
        (manifest.temperature - t).abs() < 1e-9,
        "{} vs {t}",
        manifest.temperature
    );
    // It carries the operating point chosen on those out-of-fold predictions:
    // the target sensitivity (the default 0.95) reached, rates in [0, 1].
    let op = manifest
        .operating_point
        .expect("operating point in the fold ensemble");
    assert_eq!(op.target_sensitivity, 0.95);
    assert!(op.sensitivity >= 0.95, "{op:?}");
    assert!((0.0..=1.0).contains(&op.specificity) && (0.0..=1.0).contains(&op.threshold));
    let model = melxai::ensemble::Model::load(&ens, tch::Device::Cpu).unwrap();
    assert_eq!(model.members().len(), 2);
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
    let maps_a = count_maps(&rep.join("maps/a"));
    assert_eq!(maps_a, test_ids * 3);
    let cross_csv = std::fs::read_to_string(rep.join("maps/cross_a_vs_b.csv")).unwrap();
    assert_eq!(cross_csv.lines().count(), 1 + test_ids * 3);
    assert!(cross_csv.starts_with("sample,method,ssim,pearson,spearman,cosine,jaccard,topk"));
    // The fold ensemble explained on the same images through its combined
    // output, its two members' agreement per image and method.
    assert_eq!(count_maps(&rep.join("maps/a-cv")), test_ids * 3);
    let cross_ens = &ag["cross"][1];
    assert_eq!(cross_ens["models"], serde_json::json!(["a", "a-cv"]));
    let members = &ag["members"]["a-cv"];
    assert_eq!(members["members"], 2, "{ag}");
    for method in ["gradcam", "ig", "deeplift"] {
        let ssim = &members["per_method"][method]["ssim"];
        assert_eq!(ssim["n"].as_u64().unwrap() as usize, test_ids, "{method}");
        let mean = ssim["mean"].as_f64().unwrap();
        assert!((-1.0..=1.0).contains(&mean), "{method}: {mean}");
    }
    assert!(
        ag["members"].get("a").is_none(),
        "one checkpoint has no members"
    );
    let members_csv = std::fs::read_to_string(rep.join("maps/members_a-cv.csv")).unwrap();
    assert!(members_csv
        .starts_with("sample,method,members,pairs,ssim,pearson,spearman,cosine,jaccard,topk\n"));
    assert_eq!(members_csv.lines().count(), 1 + test_ids * 3);
    assert!(members_csv
        .lines()
        .skip(1)
        .all(|l| l.split(',').nth(2) == Some("2")));
    let preds = std::fs::read_to_string(rep.join("predictions_a.csv")).unwrap();
    assert_eq!(preds.lines().count(), 1 + test_ids);
    // Screenshots and report.md referencing figures that exist.
    for pane in ["samples", "images", "training", "calibration", "agreement"] {
        let svg = std::fs::read_to_string(rep.join(format!("screens/{pane}.svg"))).unwrap();
        assert!(svg.starts_with("<svg") || svg.contains("<svg"), "{pane}");
    }
    let md = std::fs::read_to_string(rep.join("report.md")).unwrap();
    assert!(md.contains("## Cross-validation (2 folds"));
    assert!(md.contains("## Single models vs ensemble (4 × 2-fold cross-validation, model a)"));
    assert!(md.contains("### Operating point (target sensitivity 0.950)"));
    assert!(md.contains("### Members of a-cv (2 models)"), "{md}");
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
    assert_eq!(
        metrics["metrics"]["ensemble"],
        metrics2["metrics"]["ensemble"]
    );
    let _ = t0;
}

/// `[batch] models` entries naming a checkpoint are evaluated, calibrated and
/// explained without training and without rewriting the file; a checkpoint
/// with the wrong classes fails its own step with the reason while the rest
/// of the run still completes.
#[test]
fn batch_evaluates_given_checkpoints() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    let weights = tiny_project(root);
    let config = |models: &str| {
        format!(
            r#"
device = "cpu"
[data]
root = "data"
[model]
weights_dir = "weights"
[train]
epochs = 1
batch_size = 8
input_size = 32
[explain]
steps = 4
internal_batch = 8
[batch]
run_name = "given"
folds = 0
methods = ["gradcam", "ig"]
screenshots = false
models = {models}
"#
        )
    };
    let melxai = |args: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_melxai"))
            .args(args)
            .current_dir(root)
            .output()
            .unwrap()
    };
    std::fs::write(root.join("config.toml"), config("[]")).unwrap();
    // --swa-epochs turns the configured early stopping (patience 8) off.
    let out = melxai(&["train", "--name", "mine", "--swa-epochs", "1"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let original = std::fs::read_to_string(weights.join("mine.toml")).unwrap();
    let meta: toml::Table = toml::from_str(&original).unwrap();
    let recorded_test = meta["split"]["test"].as_array().unwrap().len();

    // The same weights without a recorded split, and with the classes renamed.
    for (name, edit) in [("nosplit", "split"), ("wrongclasses", "classes")] {
        let mut m = meta.clone();
        if edit == "split" {
            m.remove("split");
        } else {
            m.insert(
                "class_names".into(),
                toml::Value::Array(vec!["cat".into(), "dog".into()]),
            );
        }
        std::fs::write(
            weights.join(format!("{name}.toml")),
            toml::to_string(&m).unwrap(),
        )
        .unwrap();
        std::fs::copy(
            weights.join("mine.safetensors"),
            weights.join(format!("{name}.safetensors")),
        )
        .unwrap();
    }
    std::fs::write(
        root.join("config.toml"),
        config(
            r#"[
  { name = "mine", checkpoint = "weights/mine" },
  { name = "drawn", checkpoint = "weights/nosplit.safetensors", seed = 7 },
  { name = "bad", checkpoint = "weights/wrongclasses" },
]"#,
        ),
    )
    .unwrap();
    let out = melxai(&["--batch", "--json"]);
    let summary: Value = serde_json::from_slice(&out.stdout).expect("--json summary");
    assert!(!out.status.success(), "a failed step must fail the run");
    let steps = summary["steps"].as_array().unwrap();
    let step = |name: &str| {
        steps
            .iter()
            .find(|s| s["step"] == name)
            .unwrap_or_else(|| panic!("no step '{name}' in {summary}"))
    };
    assert_eq!(step("load mine")["ok"], true);
    assert_eq!(step("load drawn")["ok"], true);
    let bad = step("load bad");
    assert_eq!(bad["ok"], false);
    let why = bad["error"].as_str().unwrap();
    assert!(
        why.contains("wrongclasses.toml") && why.contains("\"cat\""),
        "{why}"
    );
    assert!(
        !steps
            .iter()
            .any(|s| s["step"].as_str().unwrap().starts_with("train")),
        "given checkpoints must not be trained: {summary}"
    );
    assert_eq!(step("explain and compare")["ok"], true);

    let rep = root.join("reports/given");
    let metrics: Value =
        serde_json::from_str(&std::fs::read_to_string(rep.join("metrics.json")).unwrap()).unwrap();
    let mine = &metrics["metrics"]["model:mine"];
    assert_eq!(mine["given_checkpoint"], true);
    assert_eq!(mine["best_epoch"], 1);
    assert_eq!(mine["averaged_from"], 1, "a weight-averaged checkpoint");
    assert_eq!(mine["test"]["n"].as_u64().unwrap() as usize, recorded_test);
    let drawn = &metrics["metrics"]["model:drawn"];
    assert!(drawn["test"]["n"].as_u64().unwrap() >= 2);
    // The user's files are left as they were (temperature not written back).
    assert_eq!(
        std::fs::read_to_string(weights.join("mine.toml")).unwrap(),
        original
    );
    // Explained under the spec names, on the recorded test split; compared.
    let maps = count_maps(&rep.join("maps/mine"));
    assert_eq!(maps, recorded_test * 2);
    let cross = &metrics["metrics"]["agreement"]["cross"][0];
    assert_eq!(cross["models"], serde_json::json!(["mine", "drawn"]));
    // Identical weights: the two models agree on every prediction.
    assert_eq!(cross["prediction_agreement"].as_f64().unwrap(), 1.0);
}

/// Ctrl-C (SIGINT) during `--batch`: the run stops at the next step boundary,
/// keeps the steps that finished (their files and a metrics.json listing
/// them) and exits 130.
#[test]
fn batch_stops_on_ctrl_c_keeps_finished_work_and_exits_130() {
    let (dir, weights) = tiny_project_with_config(
        r#"[train]
epochs = 2
batch_size = 8
input_size = 32
patience = 0
swa_epochs = 2
[batch]
run_name = "stopped"
folds = 0
methods = ["gradcam"]
screenshots = false
models = [{ name = "a", arch = "lite0", seed = 1 }, { name = "b", arch = "lite0", seed = 2 }]
"#,
    );
    let root = dir.path();
    let mut child = Command::new(env!("CARGO_BIN_EXE_melxai"))
        .args(["--batch", "--json"])
        .current_dir(root)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // Interrupt as soon as the first model's training has finished. Under
    // weight averaging the run is named for its window, so a best-epoch
    // checkpoint `a` would be neither reused nor refused.
    let first = root.join("reports/stopped/training_a-swa2.json");
    let t0 = std::time::Instant::now();
    while !first.exists() {
        assert!(
            t0.elapsed() < std::time::Duration::from_secs(300),
            "model a never finished"
        );
        if let Some(status) = child.try_wait().unwrap() {
            panic!("batch ended before the interrupt: {status}");
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    // SAFETY: plain kill(2) on our own child's pid.
    assert_eq!(unsafe { libc::kill(child.id() as i32, libc::SIGINT) }, 0);
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(130), "{stderr}");
    assert!(stderr.contains("cancelled"), "{stderr}");

    let rep = root.join("reports/stopped");
    let metrics: Value =
        serde_json::from_str(&std::fs::read_to_string(rep.join("metrics.json")).unwrap()).unwrap();
    let steps = metrics["steps"].as_array().unwrap();
    assert_eq!(steps[0]["step"], "scan data set");
    assert_eq!(steps[1]["step"], "train a");
    assert_eq!(steps[1]["ok"], true, "{steps:?}");
    assert!(
        !steps.iter().any(|s| s["step"] == "explain and compare"),
        "no step starts after the interrupt: {steps:?}"
    );
    assert!(weights.join("a-swa2.safetensors").exists());
    assert!(!weights.join("a.safetensors").exists());
    let meta = melxai::model::checkpoint::read_meta(&weights.join("a-swa2")).unwrap();
    assert_eq!(meta.metrics.get("swa_epochs_averaged"), Some(&2.0));
    assert!(rep.join("report.md").exists());
}

/// `[train] fold_val_fraction = 0`: `--batch` trains the cross-validation's
/// folds on all their non-test images under their own name
/// (`<name>-swa<N>-val0-cv`, so an earlier run whose folds held validation
/// images is neither reused nor refused), writes their ensemble, and keeps
/// the single model's validation split (it calibrates on it).
#[test]
fn batch_trains_folds_without_validation_under_their_own_name() {
    let (dir, weights) = tiny_project_with_config(
        r#"[train]
epochs = 1
batch_size = 8
input_size = 32
patience = 0
swa_epochs = 1
fold_val_fraction = 0.0
[batch]
run_name = "nv"
folds = 2
methods = ["gradcam"]
screenshots = false
explain_ensemble = false
bootstrap_samples = 200
models = [{ name = "a", arch = "lite0", seed = 1 }]
"#,
    );
    let root = dir.path();
    let out = Command::new(env!("CARGO_BIN_EXE_melxai"))
        .args(["--batch", "--json"])
        .current_dir(root)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "batch failed: {stderr}");
    assert!(stderr.contains("no validation images"), "{stderr}");
    for f in 0..2 {
        let meta =
            melxai::model::checkpoint::read_meta(&weights.join(format!("a-swa1-val0-cv-fold{f}")))
                .unwrap();
        let split = meta.split.unwrap();
        assert!(split.val.is_empty(), "fold {f}");
        assert_eq!(split.train.len() + split.test.len(), 20, "fold {f}");
    }
    assert!(weights.join("a-swa1-val0-cv.ensemble.toml").exists());
    assert!(!weights.join("a-swa1-cv-fold0.safetensors").exists());
    let single = melxai::model::checkpoint::read_meta(&weights.join("a-swa1")).unwrap();
    assert!(
        !single.split.unwrap().val.is_empty(),
        "the single model keeps validation"
    );

    let rep = root.join("reports/nv");
    let metrics: Value =
        serde_json::from_str(&std::fs::read_to_string(rep.join("metrics.json")).unwrap()).unwrap();
    assert_eq!(metrics["metrics"]["cross_validation"]["pooled"]["n"], 20);
    let md = std::fs::read_to_string(rep.join("report.md")).unwrap();
    assert!(!md.to_lowercase().contains("nan"), "{md}");
    // The training record keeps the `[batch]` name and null validation figures.
    let training: Value = serde_json::from_str(
        &std::fs::read_to_string(rep.join("training_a-swa1-val0-cv.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(training["name"], "a-cv");
    let epoch = &training["splits"][0]["history"][0];
    assert!(
        epoch["val_loss"].is_null() && epoch["train_loss"].is_number(),
        "{epoch}"
    );
}
