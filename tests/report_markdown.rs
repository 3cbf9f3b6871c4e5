//! report.md and metrics.json rendered from a small synthetic run report:
//! the markdown is snapshot-tested, the JSON keeps the keys users script
//! against (`metrics["model:<name>"]`, `cross_validation`, `ensemble`,
//! `agreement`).

use std::collections::BTreeMap;
use std::path::PathBuf;

use melxai::calibrate::fit::{fit_cross_validated, fit_split};
use melxai::compare::agreement::summarise;
use melxai::data::scan::Skipped;
use melxai::evaluate::metrics;
use melxai::evaluate::repeated_cv::{evaluate, RepeatedCvOptions, Repetition};
use melxai::metrics::{summarize_folds, BootstrapOptions};
use melxai::report::markdown::render;
use melxai::report::run::{
    AgreementReport, CrossAgreement, CrossValidationReport, DataSummary, EnsembleReport, Figure,
    MembersReport, ModelReport, RunMetrics, RunReport, StepRecord,
};
use melxai::verdict::EvalRow;

/// 24 predictions: class 0 (positive) scored high, with a few mistakes, logits
/// a little over-confident so the fitted temperature is above 1.
fn rows(offset: usize) -> Vec<EvalRow> {
    (0..24)
        .map(|i| {
            let label = i % 2;
            let margin = if (i + offset).is_multiple_of(7) {
                -1.5
            } else {
                2.5
            };
            let z = if label == 0 { margin } else { -margin };
            EvalRow {
                id: format!("{}/{i:02}.jpg", ["melanoma", "naevus"][label]),
                label,
                logits: vec![z, -z],
                members: Vec::new(),
            }
        })
        .collect()
}

/// Four repetitions of 2-fold cross-validation of the same 24 images, three
/// wrong on the same images and one on others, evaluated as `--batch` does.
fn ensemble() -> EnsembleReport {
    let reps: Vec<Repetition> = (0..4)
        .map(|r| {
            let (mut a, mut b) = (Vec::new(), Vec::new());
            for (i, row) in rows([5, 12, 6, 19][r]).into_iter().enumerate() {
                if (i + r) % 4 < 2 {
                    a.push(row);
                } else {
                    b.push(row);
                }
            }
            Repetition {
                seed: 42 + r as u64,
                input_size: 224,
                folds: vec![a, b],
            }
        })
        .collect();
    let opts = RepeatedCvOptions {
        positive: 0,
        target_sensitivity: 0.95,
        bootstrap: BootstrapOptions::new(200, 42),
        conformal: Default::default(),
    };
    let out = evaluate(&reps, &opts).unwrap();
    EnsembleReport::new(
        "a",
        out.report,
        vec![Figure::new("risk_coverage_a_ensemble.png", "Risk–coverage")],
    )
}

fn report() -> RunReport {
    let val = rows(1);
    let test = rows(2);
    let calibration = fit_split(
        &val.iter().collect::<Vec<_>>(),
        &test.iter().collect::<Vec<_>>(),
        0,
    )
    .unwrap();
    let folds = vec![rows(3), rows(4)];
    let per_fold: Vec<_> = folds.iter().map(|f| metrics(f, 0, 1.0).unwrap()).collect();
    let pooled_rows: Vec<EvalRow> = folds.iter().flatten().cloned().collect();
    let summary = |values: &[f64]| summarise(values, 7);
    let mut pair = BTreeMap::new();
    pair.insert("ssim".to_string(), summary(&[0.40, 0.50, 0.60]));
    pair.insert("pearson".to_string(), summary(&[0.70, 0.72, 0.74]));
    pair.insert("cosine".to_string(), summary(&[0.80, 0.85, 0.90]));
    pair.insert("jaccard".to_string(), summary(&[0.20, 0.30, 0.25]));
    let within = BTreeMap::from([(
        "a".to_string(),
        BTreeMap::from([("gradcam~ig".to_string(), pair.clone())]),
    )]);
    let mut models = BTreeMap::new();
    models.insert(
        "a".to_string(),
        ModelReport {
            checkpoint: PathBuf::from("weights/a.safetensors"),
            given_checkpoint: false,
            best_epoch: 3,
            averaged_from: None,
            test: metrics(&test, 0, calibration.fit.temperature).unwrap(),
            calibration,
            history: Vec::new(),
            figures: vec![
                Figure::new("training_a.png", "Training curves"),
                Figure::new("roc_a.png", "ROC (test split)"),
            ],
            breakdown: Default::default(),
            split: None,
        },
    );
    RunReport {
        run: "synthetic".into(),
        melxai_version: "0.0.0-test".into(),
        libtorch: "2.13.0".into(),
        device: "cuda:0 (NVIDIA H100 80GB HBM3, 79.1 GiB)".into(),
        config: serde_json::json!({"device": "cpu"}),
        batch: serde_json::json!({"run_name": "synthetic"}),
        steps: vec![
            StepRecord {
                step: "scan data set".into(),
                ok: true,
                seconds: 0.25,
                error: None,
            },
            StepRecord {
                step: "train b".into(),
                ok: false,
                seconds: 1.0,
                error: Some("cancelled".into()),
            },
        ],
        metrics: RunMetrics {
            data: Some(DataSummary {
                root: PathBuf::from("data"),
                classes: vec!["melanoma".into(), "naevus".into()],
                counts: vec![12, 12],
                skipped: vec![Skipped {
                    path: PathBuf::from("data/naevus/broken.jpg"),
                    reason: "not an image".into(),
                }],
                groups: None,
            }),
            cross_validation: Some(CrossValidationReport {
                model: "a".into(),
                folds: 2,
                pooled: metrics(&pooled_rows, 0, 1.0).unwrap(),
                summary: summarize_folds(&per_fold),
                pooled_auroc_ci95: [0.75, 0.95],
                pooled_balanced_accuracy_ci95: [0.7, 0.9],
                calibration: fit_cross_validated(&folds, 0).unwrap(),
                figures: vec![Figure::new("training_a_cv.png", "Training curves per fold")],
            }),
            ensemble: Some(ensemble()),
            models,
            agreement: Some(AgreementReport {
                images: 3,
                of_images: 3,
                methods: vec!["gradcam".into(), "ig".into()],
                within,
                cross: vec![CrossAgreement {
                    models: ["a".into(), "b".into()],
                    prediction_agreement: 0.875,
                    mean_abs_probability_difference: 0.0625,
                    per_method: BTreeMap::from([("ig".to_string(), pair.clone())]),
                }],
                members: BTreeMap::from([(
                    "a-cv".to_string(),
                    MembersReport {
                        members: 5,
                        per_method: BTreeMap::from([("ig".to_string(), pair)]),
                    },
                )]),
                figures: vec![Figure::new("agreement_a_ssim.png", "a: mean ssim")],
            }),
            scores: vec![scores_report()],
        },
        screens: vec![Figure::new(
            "screens/images.svg",
            "Image & explanations pane",
        )],
    }
}

#[test]
fn report_md_renders_every_section_from_the_typed_report() {
    insta::assert_snapshot!(render(&report()));
}

#[test]
fn metrics_json_keeps_the_scripted_keys() {
    let json = serde_json::to_value(report()).unwrap();
    for key in [
        "run",
        "melxai_version",
        "libtorch",
        "config",
        "batch",
        "steps",
        "metrics",
    ] {
        assert!(json.get(key).is_some(), "top-level {key}");
    }
    let m = &json["metrics"];
    assert_eq!(m["model:a"]["best_epoch"], 3);
    assert_eq!(m["model:a"]["test"]["n"], 24);
    assert!(m["model:a"]["calibration"]["fit"]["temperature"].is_f64());
    assert_eq!(m["cross_validation"]["folds"], 2);
    assert_eq!(m["cross_validation"]["pooled_auroc_ci95"][1], 0.95);
    let e = &m["ensemble"];
    for key in [
        "auroc",
        "auroc_ci",
        "ece",
        "brier",
        "nll",
        "aurc",
        "seed_abs_diff",
    ] {
        assert!(e.get(key).is_some_and(|v| !v.is_null()), "ensemble.{key}");
    }
    for key in ["threshold", "sensitivity", "specificity"] {
        assert!(e["operating_point"][key].is_f64(), "operating_point.{key}");
    }
    assert!(e["operating_point"]["sensitivity"].as_f64().unwrap() >= 0.95);
    assert_eq!(e["members"], 4);
    assert_eq!(
        e["repeated_cv"]["single"]["per_repetition"]
            .as_array()
            .unwrap()
            .len(),
        4
    );
    let conformal = &e["repeated_cv"]["ensemble"]["decisions"]["conformal"];
    for key in [
        "settings",
        "target",
        "ensemble",
        "coverage_ci",
        "mean_size_ci",
        "experiment",
    ] {
        assert!(conformal.get(key).is_some(), "conformal.{key}");
    }
    assert_eq!(conformal["settings"]["score"], "lac");
    assert!(conformal["ensemble"]["coverage"].is_f64());
    assert_eq!(conformal["experiment"].as_array().unwrap().len(), 2);
    assert!(
        conformal.get("sets").is_none(),
        "per-image sets go to the CSV"
    );
    assert_eq!(m["agreement"]["within"]["a"]["gradcam~ig"]["ssim"]["n"], 3);
    let scores = &m["scores"][0];
    assert_eq!(scores["model"], "a");
    assert!(scores["summary"]["gradcam"]["road_gap"]["mean"].is_f64());
    assert_eq!(scores["paired"][0]["better"], "gradcam");
    assert!(scores["per_image"]["img0"]["ig"]["random_logit"].is_f64());
    assert_eq!(m["agreement"]["cross"][0]["models"][1], "b");
    assert_eq!(m["data"]["counts"][0], 12);
    assert!(
        m.get("models").is_none(),
        "models are flattened as model:<name>"
    );
}

/// Two methods' scores on three images.
fn scores_report() -> melxai::report::run::ScoresReport {
    use melxai::compare::scores::scorecard::{scorecard, MapScores};
    let scores = |gap: f64, corr: f64| MapScores {
        road_morf: 0.5 - gap / 2.0,
        road_lerf: 0.5 + gap / 2.0,
        road_gap: gap,
        faithfulness_correlation: corr,
        pixel_flipping_auc: 0.6 - gap,
        sparseness: 0.3,
        complexity: 10.5,
        random_logit: Some(0.2 + corr / 10.0),
        completeness_gap: None,
        parameter_randomisation: None,
        max_sensitivity: None,
        avg_sensitivity: None,
        local_lipschitz: None,
        localisation: None,
    };
    let per_image = (0..3)
        .map(|i| {
            let d = i as f64 / 100.0;
            let methods = [
                ("gradcam".to_string(), scores(0.30 + d, 0.4)),
                ("ig".to_string(), scores(0.01 - d, 0.1 + d)),
            ]
            .into_iter()
            .collect();
            (format!("img{i}"), methods)
        })
        .collect();
    let mut card = scorecard("a", per_image, &BootstrapOptions::new(200, 1)).unwrap();
    card.localisation_note =
        Some("no lesion masks given ([data] masks): no localisation scores".into());
    melxai::report::run::ScoresReport {
        card,
        figures: vec![Figure::new("scorecard_a.png", "Which explanation to trust")],
    }
}
