//! Repeated cross-validation (`melxai::repeated_cv`): input checks and the
//! ensemble's bookkeeping on synthetic predictions, and the nesting on real
//! (tiny) trainings of a generated data set: no image's evaluated prediction
//! comes from a model or a temperature fitted on it.

mod common;

use std::collections::HashSet;
use std::path::Path;

use melxai::calibrate::fit_temperature;
use melxai::data::cache::ImageCache;
use melxai::data::scan::scan;
use melxai::evaluate::repeated_cv::{evaluate, metric_set, RepeatedCvOptions, Repetition};
use melxai::metrics::BootstrapOptions;
use melxai::model::checkpoint::read_meta;
use melxai::progress::{CancelToken, Event};
use melxai::train::{train, RunOutcome, TrainConfig, TrainContext};
use melxai::verdict::EvalRow;
use tch::Device;

fn opts() -> RepeatedCvOptions {
    RepeatedCvOptions {
        positive: 0,
        target_sensitivity: 0.9,
        bootstrap: BootstrapOptions::new(200, 1),
        conformal: Default::default(),
    }
}

/// SplitMix64: a well-mixed hash of `x` to [0, 1).
fn uniform(x: u64) -> f64 {
    let mut z = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    ((z ^ (z >> 31)) >> 11) as f64 / (1u64 << 53) as f64
}

/// 40 images, class 0 scored higher, with noise independent per `seed`.
fn rows(seed: u64) -> Vec<EvalRow> {
    (0..40u64)
        .map(|i| {
            let label = (i % 2) as usize;
            let noise = (uniform(seed * 1000 + i) - 0.5) * 4.0;
            let z = if label == 0 { 1.0 } else { -1.0 } + noise;
            EvalRow {
                id: format!("img{i:02}"),
                label,
                logits: vec![z, -z],
                members: Vec::new(),
            }
        })
        .collect()
}

/// Rows of `seed` in `k` folds (`i % k`, shifted by the seed).
fn repetition(seed: u64, k: usize) -> Repetition {
    let mut folds = vec![Vec::new(); k];
    for (i, r) in rows(seed).into_iter().enumerate() {
        folds[(i / 2 + seed as usize) % k].push(r);
    }
    Repetition {
        seed,
        input_size: 224,
        folds,
    }
}

#[test]
fn one_repetition_is_its_own_ensemble() {
    let out = evaluate(&[repetition(3, 4)], &opts()).unwrap().report;
    assert_eq!(out.ensemble.members, 1);
    let single = out.single.per_repetition[0];
    let e = out.ensemble.calibrated;
    assert!((single.auroc - e.auroc).abs() < 1e-12);
    assert!((single.nll - e.nll).abs() < 1e-9);
    assert!((single.ece - e.ece).abs() < 1e-9);
    assert_eq!(out.seed_abs_diff_single, None);
    assert_eq!(out.seed_abs_diff_ensemble, None);
    assert!(out.ensemble.operating_point.chosen.sensitivity >= 0.9);
}

#[test]
fn averaging_noisy_repetitions_helps_and_halves_are_compared_from_four() {
    let reps: Vec<Repetition> = (0..4).map(|s| repetition(s * 11 + 1, 4)).collect();
    let out = evaluate(&reps, &opts()).unwrap().report;
    assert_eq!(out.repetitions, 4);
    assert_eq!(out.images, 40);
    let single = out.single.spread;
    let e = out.ensemble.calibrated;
    // Independent noise per repetition: the mean of 4 ranks better and is
    // closer to the truth than a single member on average.
    assert!(
        e.auroc > single.auroc.mean,
        "{} vs {}",
        e.auroc,
        single.auroc.mean
    );
    assert!(e.brier < single.brier.mean);
    let (s, h) = (
        out.seed_abs_diff_single.unwrap(),
        out.seed_abs_diff_ensemble.unwrap(),
    );
    assert!(h < s, "halves {h} vs singles {s}");
    let iv = out.ensemble.intervals.auroc;
    assert!(iv.low <= e.auroc && e.auroc <= iv.high);
    assert_eq!(out.single.temperatures.len(), 4);
    assert_eq!(out.ensemble.temperatures.len(), 4);
    // Cross-conformal sets of every image, per repetition and for the
    // ensemble, and the repeated-split check at α = 0.1 and 0.2.
    let c = out.ensemble.decisions.conformal.as_ref().unwrap();
    assert_eq!(c.sets.len(), 40);
    assert_eq!(c.ensemble.n, 40);
    assert_eq!(c.single_coverage.len(), 4);
    assert!(c.coverage_ci.low <= c.ensemble.coverage && c.ensemble.coverage <= c.coverage_ci.high);
    let alphas: Vec<f64> = c.experiment.iter().map(|x| x.alpha).collect();
    assert_eq!(alphas, [0.1, 0.2]);
    let covered = (0..40)
        .filter(|&i| c.sets[i].contains(&out_labels(&reps)[i]))
        .count();
    assert!((covered as f64 / 40.0 - c.ensemble.coverage).abs() < 1e-12);
}

/// Labels in id order (the order the evaluation reports images in).
fn out_labels(reps: &[Repetition]) -> Vec<usize> {
    let mut rows: Vec<&EvalRow> = reps[0].folds.iter().flatten().collect();
    rows.sort_by(|a, b| a.id.cmp(&b.id));
    rows.iter().map(|r| r.label).collect()
}

#[test]
fn repetitions_must_cover_the_same_images_once() {
    let a = repetition(1, 2);
    let mut missing = repetition(2, 2);
    missing.folds[1].pop();
    let msg = evaluate(&[a.clone(), missing], &opts())
        .unwrap_err()
        .to_string();
    assert!(
        msg.contains("repetition 1") && msg.contains("misses"),
        "{msg}"
    );
    let mut twice = repetition(2, 2);
    let dup = twice.folds[0][0].clone();
    twice.folds[1].push(dup);
    let msg = evaluate(&[a.clone(), twice], &opts())
        .unwrap_err()
        .to_string();
    assert!(msg.contains("twice"), "{msg}");
    let mut relabelled = repetition(2, 2);
    relabelled.folds[0][0].label = 1 - relabelled.folds[0][0].label;
    let msg = evaluate(&[a.clone(), relabelled], &opts())
        .unwrap_err()
        .to_string();
    assert!(msg.contains("another label"), "{msg}");
    let mut three_classes = repetition(2, 2);
    three_classes.folds[1][0].logits.push(0.0);
    let msg = evaluate(&[a.clone(), three_classes], &opts())
        .unwrap_err()
        .to_string();
    assert!(msg.contains("number of classes"), "{msg}");
    let one_fold = Repetition {
        seed: 9,
        input_size: 224,
        folds: vec![rows(9)],
    };
    let msg = evaluate(&[one_fold], &opts()).unwrap_err().to_string();
    assert!(msg.contains("at least 2"), "{msg}");
    assert!(evaluate(&[], &opts()).is_err());
    let no_such_class = RepeatedCvOptions {
        positive: 5,
        ..opts()
    };
    assert!(evaluate(&[a], &no_such_class).is_err());
}

const SIZE: i64 = 32;
const FOLDS: usize = 3;

/// One k-fold training run of `seed` on the cached data set.
fn train_folds(cache: &ImageCache, weights: &Path, seed: u64) -> RunOutcome {
    let cfg = TrainConfig {
        name: format!("nest-s{seed}"),
        epochs: 1,
        batch_size: 8,
        input_size: Some(SIZE),
        patience: 0,
        seed,
        folds: FOLDS,
        ..TrainConfig::default()
    };
    let cancel = CancelToken::new();
    let mut sink = |_: Event| {};
    let mut ctx = TrainContext {
        cache,
        class_names: vec!["melanoma".into(), "naevus".into()],
        positive: 0,
        weights_dir: weights.to_path_buf(),
        imagenet_dir: common::weights_dir(),
        device: Device::Cpu,
        sink: &mut sink,
        cancel: &cancel,
        job: 1,
        resume: false,
        config_file: None,
    };
    train(&cfg, &mut ctx).unwrap()
}

#[test]
fn no_prediction_comes_from_a_model_or_temperature_fitted_on_its_image() {
    let dir = tempfile::tempdir().unwrap();
    common::dataset::make(&dir.path().join("data"), 9, 40);
    let s = scan(&dir.path().join("data"), true).unwrap();
    let cache = ImageCache::build(&s.samples, [SIZE, SIZE]).unwrap();
    let weights = dir.path().join("weights");
    let runs: Vec<RunOutcome> = [5u64, 6]
        .iter()
        .map(|&seed| train_folds(&cache, &weights, seed))
        .collect();
    let reps: Vec<Repetition> = runs
        .iter()
        .map(|o| Repetition {
            seed: o.config.seed,
            input_size: SIZE,
            folds: o.splits.iter().map(|s| s.test.clone()).collect(),
        })
        .collect();
    let out = evaluate(&reps, &opts()).unwrap();
    assert_eq!(out.provenance.len(), 18);
    assert_ne!(
        out.provenance[0].model_folds, out.provenance[1].model_folds,
        "the seeds should draw different folds for this check to mean much"
    );
    for p in &out.provenance {
        for (r, run) in runs.iter().enumerate() {
            let fold = p.model_folds[r];
            let meta = read_meta(&run.splits[fold].checkpoint).unwrap();
            let split = meta.split.unwrap();
            assert!(
                !split.train.contains(&p.id) && !split.val.contains(&p.id),
                "{} was predicted by a model that trained on it",
                p.id
            );
            assert!(split.test.contains(&p.id));
            assert!(!p.temperature_fitted_on[r].contains(&p.id));
        }
        assert!(!p.ensemble_temperature_fitted_on.contains(&p.id));
        assert!(!p.ensemble_temperature_fitted_on.is_empty());
    }
    // The provenance is what the numbers used: rebuilding repetition 0's
    // calibrated predictions from it alone gives the reported metrics.
    let all: Vec<&EvalRow> = reps[0].folds.iter().flatten().collect();
    let mut log_probs = Vec::new();
    let mut labels = Vec::new();
    for p in &out.provenance {
        let fitted: HashSet<&str> = p.temperature_fitted_on[0]
            .iter()
            .map(String::as_str)
            .collect();
        let fit_rows: Vec<&&EvalRow> = all
            .iter()
            .filter(|r| fitted.contains(r.id.as_str()))
            .collect();
        let logits: Vec<Vec<f64>> = fit_rows.iter().map(|r| r.logits.clone()).collect();
        let y: Vec<usize> = fit_rows.iter().map(|r| r.label).collect();
        let t = fit_temperature(&logits, &y).unwrap().temperature;
        let row = all.iter().find(|r| r.id == p.id).unwrap();
        log_probs.push(
            row.probabilities(t)
                .iter()
                .map(|v| v.ln())
                .collect::<Vec<f64>>(),
        );
        labels.push(row.label);
    }
    let rebuilt = metric_set(&log_probs, &labels, 0).unwrap();
    let reported = out.report.single.per_repetition[0];
    assert!((rebuilt.nll - reported.nll).abs() < 1e-9);
    assert!((rebuilt.brier - reported.brier).abs() < 1e-9);
    assert!((rebuilt.ece - reported.ece).abs() < 1e-9);
}

#[test]
fn seed_halves_keep_each_seed_whole_across_input_sizes() {
    let rep = |seed: u64, input_size: i64| Repetition {
        seed,
        input_size,
        folds: Vec::new(),
    };
    // Three seeds at two sizes: one seed per half (the third left out), so
    // the two ensembles share no seed.
    let mixed: Vec<Repetition> = [(1, 224), (1, 320), (2, 224), (2, 320), (3, 224), (3, 320)]
        .iter()
        .map(|&(s, z)| rep(s, z))
        .collect();
    assert_eq!(
        melxai::evaluate::repeated_cv::seed_halves(&mixed),
        Some((vec![0, 1], vec![2, 3]))
    );
    let four: Vec<Repetition> = (0..4).map(|s| rep(s, 224)).collect();
    assert_eq!(
        melxai::evaluate::repeated_cv::seed_halves(&four),
        Some((vec![0, 1], vec![2, 3]))
    );
    // Halves of one member each are no ensembles.
    let three: Vec<Repetition> = (0..3).map(|s| rep(s, 224)).collect();
    assert_eq!(melxai::evaluate::repeated_cv::seed_halves(&three), None);
}
