//! Training on a small generated data set: seeded repeatability, resume after
//! cancel equal to an uninterrupted run, k-fold out-of-fold coverage.

mod common;

use std::collections::HashMap;
use std::path::Path;

use melxai::data::cache::ImageCache;
use melxai::data::scan::scan;
use melxai::ensemble::tta::TtaSetting;
use melxai::ensemble::Model;
use melxai::model::Classifier;
use melxai::progress::{CancelToken, Event};
use melxai::train::{train, RunOutcome, TrainConfig, TrainContext};
use tch::{Device, Tensor};

const SIZE: i64 = 32;

/// libtorch's random generator is process-global: runs in parallel test
/// threads would draw from it in interleaved order, so these tests take turns.
static TORCH_RNG: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn config(name: &str, epochs: usize) -> TrainConfig {
    TrainConfig {
        name: name.into(),
        epochs,
        batch_size: 8,
        input_size: Some(SIZE),
        patience: 0,
        ..TrainConfig::default()
    }
}

fn data(dir: &Path) -> ImageCache {
    common::dataset::make(&dir.join("data"), 12, 40);
    let s = scan(&dir.join("data"), true).unwrap();
    ImageCache::build(&s.samples, [SIZE, SIZE]).unwrap()
}

fn run(
    cfg: &TrainConfig,
    cache: &ImageCache,
    weights: &Path,
    resume: bool,
    cancel_at: Option<(usize, usize)>,
) -> melxai::Result<RunOutcome> {
    let cancel = CancelToken::new();
    let mut events = Vec::new();
    let mut sink = |e: Event| {
        if let (Some((ep, b)), Event::Batch { epoch, batch, .. }) = (cancel_at, &e) {
            if *epoch == ep && *batch == b {
                cancel.cancel();
            }
        }
        events.push(e);
    };
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
        resume,
        config_file: None,
    };
    train(cfg, &mut ctx)
}

fn weights_of(path: &Path) -> HashMap<String, Tensor> {
    Classifier::from_checkpoint(path, Device::Cpu)
        .unwrap()
        .vs
        .variables()
}

fn assert_same_weights(a: &Path, b: &Path) {
    let (wa, wb) = (weights_of(a), weights_of(b));
    assert_eq!(wa.len(), wb.len());
    for (name, ta) in &wa {
        let tb = &wb[name];
        assert!(
            ta.equal(tb),
            "{name} differs between {} and {}",
            a.display(),
            b.display()
        );
    }
}

#[test]
fn seeded_training_repeats_and_resume_matches_uninterrupted() {
    let _turn = TORCH_RNG.lock().unwrap_or_else(|e| e.into_inner());
    let dir = tempfile::tempdir().unwrap();
    let cache = data(dir.path());
    let cfg = config("tiny", 3);
    let (a, b, c) = (
        dir.path().join("a"),
        dir.path().join("b"),
        dir.path().join("c"),
    );

    let out_a = run(&cfg, &cache, &a, false, None).unwrap();
    assert_eq!(out_a.splits[0].history.len(), 3);
    assert_eq!(out_a.splits[0].averaged_from, None);
    assert!(out_a.splits[0]
        .checkpoint_epochs()
        .starts_with("best epoch "));
    assert!(a.join("tiny.safetensors").exists() && a.join("tiny.toml").exists());
    assert!(a.join("tiny-last.safetensors").exists());

    // Same seed, fresh run: identical weights.
    run(&cfg, &cache, &b, false, None).unwrap();
    assert_same_weights(&a.join("tiny-last"), &b.join("tiny-last"));
    assert_same_weights(&a.join("tiny"), &b.join("tiny"));

    // Cancel in the middle of epoch 2, then resume: same final weights as run a.
    let err = run(&cfg, &cache, &c, false, Some((2, 1))).unwrap_err();
    assert!(matches!(err, melxai::Error::Cancelled), "{err}");
    let meta = melxai::model::checkpoint::read_meta(&c.join("tiny-last")).unwrap();
    assert_eq!(
        meta.progress.as_ref().map(|p| p.epochs_done),
        Some(1),
        "checkpoint left at the last finished epoch"
    );
    let out_c = run(&cfg, &cache, &c, true, None).unwrap();
    assert_eq!(
        out_c.splits[0].history.len(),
        3,
        "history carried across the resume"
    );
    assert_same_weights(&a.join("tiny-last"), &c.join("tiny-last"));
    assert_eq!(
        out_a.splits[0].test, out_c.splits[0].test,
        "identical test predictions"
    );

    // The checkpoint records the split by sample id and the class names.
    let meta = melxai::model::checkpoint::read_meta(&a.join("tiny")).unwrap();
    let split = meta.split.unwrap();
    assert_eq!(split.train.len() + split.val.len() + split.test.len(), 24);
    assert_eq!(meta.class_names, vec!["melanoma", "naevus"]);
    assert_eq!(meta.input_size, [SIZE, SIZE]);
}

#[test]
fn k_fold_predicts_every_image_once_out_of_fold() {
    let _turn = TORCH_RNG.lock().unwrap_or_else(|e| e.into_inner());
    let dir = tempfile::tempdir().unwrap();
    let cache = data(dir.path());
    let mut cfg = config("cv", 1);
    cfg.folds = 3;
    let out = run(&cfg, &cache, &dir.path().join("w"), false, None).unwrap();
    let cv = out.cross_validation.expect("k-fold summary");
    assert_eq!(cv.folds, 3);
    assert_eq!(cv.per_fold.len(), 3);
    let mut ids: Vec<&str> = cv.out_of_fold.iter().map(|r| r.id.as_str()).collect();
    ids.dedup();
    assert_eq!(ids.len(), 24, "each image exactly once");
    assert_eq!(cv.pooled.n, 24);
    assert!(
        cv.pooled_auroc_ci.low <= cv.pooled.auroc && cv.pooled.auroc <= cv.pooled_auroc_ci.high
    );
    for (f, s) in out.splits.iter().enumerate() {
        assert_eq!(s.fold, Some((f, 3)));
        assert!(s.checkpoint.ends_with(format!("cv-fold{f}.safetensors")));
    }
}

/// `[train] tta`: the held-out predictions are the mean over the 8 dihedral
/// transforms of the best checkpoint's logits, and the plain predictions of
/// the same images are kept beside them.
#[test]
fn tta_held_out_predictions_average_the_dihedral_transforms() {
    let _turn = TORCH_RNG.lock().unwrap_or_else(|e| e.into_inner());
    let dir = tempfile::tempdir().unwrap();
    let cache = data(dir.path());
    let mut cfg = config("tta", 1);
    cfg.tta = TtaSetting::On;
    let out = run(&cfg, &cache, &dir.path().join("w"), false, None).unwrap();
    let split = &out.splits[0];
    let plain = split
        .test_without_tta
        .as_ref()
        .expect("plain test rows kept");
    assert_eq!(plain.len(), split.test.len());
    assert!(!split.test.is_empty());

    let model = Classifier::from_checkpoint(&split.checkpoint, Device::Cpu).unwrap();
    let index: HashMap<&str, usize> = cache
        .ids
        .iter()
        .enumerate()
        .map(|(i, id)| (id.as_str(), i))
        .collect();
    let rows: Vec<usize> = split.test.iter().map(|r| index[r.id.as_str()]).collect();
    let want_plain = melxai::evaluate::predict_rows(&model, &cache, &rows, 32, false).unwrap();
    let want_tta = melxai::evaluate::predict_rows(&model, &cache, &rows, 32, true).unwrap();
    let mut differs = false;
    for ((t, p), (wt, wp)) in split
        .test
        .iter()
        .zip(plain)
        .zip(want_tta.iter().zip(&want_plain))
    {
        assert_eq!((&t.id, &p.id), (&wt.id, &wp.id));
        for c in 0..2 {
            assert!(
                (t.logits[c] - wt.logits[c]).abs() < 1e-5,
                "{}: TTA logits",
                t.id
            );
            assert!(
                (p.logits[c] - wp.logits[c]).abs() < 1e-5,
                "{}: plain logits",
                p.id
            );
            differs |= (t.logits[c] - p.logits[c]).abs() > 1e-4;
        }
    }
    assert!(differs, "TTA changed no logit: it was not applied");

    // The checkpoint records it, and `[predict] tta = "auto"` follows.
    let mut loaded = Model::load(&split.checkpoint, Device::Cpu).unwrap();
    assert_eq!(
        loaded.meta.training.get("tta"),
        Some(&toml::Value::Boolean(true))
    );
    assert!(loaded.fitted_with_tta());
    loaded.set_tta(TtaSetting::Auto);
    assert!(loaded.tta);
    loaded.set_tta(TtaSetting::Off);
    assert!(!loaded.tta);

    // "auto" on the CPU is off: no second set of rows, nothing recorded, and
    // "auto" at prediction leaves TTA off for this model.
    let mut auto = config("plain", 1);
    auto.tta = TtaSetting::Auto;
    let plain_run = run(&auto, &cache, &dir.path().join("w"), false, None).unwrap();
    assert!(plain_run.splits[0].test_without_tta.is_none());
    assert_eq!(
        plain_run.config.tta,
        TtaSetting::Off,
        "auto settled for the CPU"
    );
    let mut plain = Model::load(&plain_run.splits[0].checkpoint, Device::Cpu).unwrap();
    assert!(!plain.meta.training.contains_key("tta"));
    plain.set_tta(TtaSetting::Auto);
    assert!(!plain.tta);

    // The finished TTA run reused with TTA off re-predicts its held-out
    // images plainly and drops the flag from its recipe.
    let reused = run(&config("tta", 1), &cache, &dir.path().join("w"), true, None).unwrap();
    let kept = split.test_without_tta.as_deref().unwrap_or_default();
    assert_eq!(reused.splits[0].test.len(), kept.len());
    for (a, b) in reused.splits[0].test.iter().zip(kept) {
        assert_eq!((&a.id, &a.logits), (&b.id, &b.logits));
    }
    let reloaded = Model::load(&split.checkpoint, Device::Cpu).unwrap();
    assert!(!reloaded.fitted_with_tta());
}

/// Weights of a checkpoint, copied (the store is dropped).
fn weights_copy(path: &Path) -> Vec<(String, Tensor)> {
    let mut w: Vec<(String, Tensor)> = weights_of(path).into_iter().collect();
    w.sort_by(|a, b| a.0.cmp(&b.0));
    w
}

#[test]
fn weight_averaging_is_the_mean_of_the_last_epochs_and_resumes_exactly() {
    let _turn = TORCH_RNG.lock().unwrap_or_else(|e| e.into_inner());
    let dir = tempfile::tempdir().unwrap();
    let cache = data(dir.path());
    let cfg = TrainConfig {
        swa_epochs: 2,
        ..config("avg", 3)
    };
    let (a, b) = (dir.path().join("a"), dir.path().join("b"));

    // Uninterrupted: the checkpoint averages epochs 2 and 3.
    let out_a = run(&cfg, &cache, &a, false, None).unwrap();
    assert_eq!(out_a.splits[0].best_epoch, 3);
    assert_eq!(out_a.splits[0].averaged_from, Some(2));
    assert_eq!(out_a.splits[0].checkpoint_epochs(), "mean of epochs 2-3");
    let meta = melxai::model::checkpoint::read_meta(&a.join("avg")).unwrap();
    assert_eq!(meta.metrics.get("swa_epochs_averaged"), Some(&2.0));
    assert_eq!(
        meta.training.get("swa_epochs").and_then(|v| v.as_integer()),
        Some(2),
        "the window is part of the recorded recipe"
    );

    // Interrupted in epoch 3: -last holds epoch 2's weights and the mean of
    // one epoch; the resumed run must end exactly where run a did.
    let err = run(&cfg, &cache, &b, false, Some((3, 1))).unwrap_err();
    assert!(matches!(err, melxai::Error::Cancelled), "{err}");
    let after_epoch_2 = weights_copy(&b.join("avg-last"));
    run(&cfg, &cache, &b, true, None).unwrap();
    assert_same_weights(&a.join("avg"), &b.join("avg"));
    let after_epoch_3 = weights_copy(&b.join("avg-last"));

    // The checkpoint is (w2 + w3) / 2, not the last (or any one) epoch.
    let averaged = weights_copy(&a.join("avg"));
    let mut moved = 0;
    for (((name, m), (_, w2)), (_, w3)) in averaged.iter().zip(&after_epoch_2).zip(&after_epoch_3) {
        let expected = (w2 + w3) / 2.0;
        let err = (m - &expected).abs().max().double_value(&[]);
        assert!(err < 1e-6, "{name}: mean off by {err}");
        if !w2.equal(w3) {
            moved += 1;
        }
    }
    assert!(moved > 10, "training changed the weights ({moved} tensors)");
    assert!(
        !averaged
            .iter()
            .zip(&after_epoch_3)
            .all(|((_, m), (_, w3))| m.equal(w3)),
        "the average differs from the last epoch"
    );

    // A finished averaged run is not reused for another window.
    let other = TrainConfig {
        swa_epochs: 1,
        ..cfg.clone()
    };
    let err = run(&other, &cache, &a, true, None).unwrap_err();
    let text = err.to_string();
    assert!(
        text.contains("swa_epochs = 2") && text.contains("swa_epochs = 1"),
        "{text}"
    );
}

/// `fold_val_fraction = 0` under weight averaging: every fold trains on all
/// its non-test images, the epochs carry no validation figures (NaN, `null`
/// in the saved history, which a resume reads back), and the checkpoint
/// records an empty validation split.
#[test]
fn folds_without_validation_train_on_every_non_test_image_and_resume() {
    let _turn = TORCH_RNG.lock().unwrap_or_else(|e| e.into_inner());
    let dir = tempfile::tempdir().unwrap();
    let cache = data(dir.path());
    let cfg = TrainConfig {
        swa_epochs: 2,
        folds: 3,
        fold_val_fraction: Some(0.0),
        ..config("nv", 2)
    };
    let w = dir.path().join("w");
    // Cancelled in fold 0's second epoch: the history saved after epoch 1
    // has no validation figures and must survive the resume.
    let err = run(&cfg, &cache, &w, false, Some((2, 1))).unwrap_err();
    assert!(matches!(err, melxai::Error::Cancelled), "{err}");
    let saved = std::fs::read_to_string(w.join("nv-fold0-last-history.json")).unwrap();
    assert!(saved.contains("\"val_loss\":null"), "{saved}");
    let out = run(&cfg, &cache, &w, true, None).unwrap();
    assert_eq!(out.splits.len(), 3);
    for (f, s) in out.splits.iter().enumerate() {
        assert!(s.val.is_empty(), "fold {f} predicted validation images");
        assert_eq!(
            s.history.len(),
            2,
            "fold {f}: history kept across the resume"
        );
        assert!(s
            .history
            .iter()
            .all(|e| e.val_loss.is_nan() && e.train_loss.is_finite()));
        assert_eq!(s.averaged_from, Some(1));
        let meta = melxai::model::checkpoint::read_meta(&s.checkpoint).unwrap();
        let split = meta.split.unwrap();
        assert!(split.val.is_empty());
        assert_eq!(split.train.len() + split.test.len(), 24);
        assert_eq!(split.test.len(), s.test.len());
        assert!(!meta.metrics.contains_key("val_loss"), "{:?}", meta.metrics);
        assert_eq!(
            meta.training
                .get("fold_val_fraction")
                .and_then(|v| v.as_float()),
            Some(0.0)
        );
    }
    let cv = out.cross_validation.expect("k-fold summary");
    assert_eq!(cv.pooled.n, 24);

    // Without weight averaging nothing could pick the best epoch.
    let err = TrainConfig {
        swa_epochs: 0,
        ..cfg.clone()
    }
    .validate()
    .unwrap_err();
    assert_eq!(err.key, "fold_val_fraction");
}
