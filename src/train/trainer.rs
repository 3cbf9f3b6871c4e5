//! The training loop. One split at a time; k-fold runs call it per fold.
//!
//! Repeatability: every epoch reseeds libtorch (dropout, drop-connect) and the
//! augmentation/shuffle stream from (seed, epoch), and the optimiser state is
//! saved with the per-epoch "last" checkpoint. A cancelled run therefore resumes
//! from its last finished epoch and ends with the same weights as a run that
//! was never interrupted.

use std::path::{Path, PathBuf};
use std::time::Instant;

use tch::Tensor;

use super::config::{Sampler, TrainConfig};
pub use super::epoch::TrainContext;
use super::epoch::{best_path, run_epoch, EpochClock, SplitPlan, SplitState, EPOCHS_AVERAGED};
use super::optimizer::AdamW;
use super::outcome::cross_validate;
pub use super::outcome::{checkpoint_epochs, CrossValidation, RunOutcome, SplitOutcome};
use super::resume_point::{
    check_resumable, history_path, last_path, optim_path, torn_last, BackgroundSave,
};
use super::weight_average::WeightAverage;
use crate::data::cache::ImageCache;
use crate::data::groups::{grouped_fold_split, grouped_split};
use crate::data::split::Split;
use crate::ensemble::tta::TtaSetting;
use crate::error::{Error, Result};
use crate::evaluate::{balanced_class_weights, metrics, predict_rows, weight_tensor};
use crate::model::checkpoint::{self, SplitRecord, TrainingProgress};
use crate::model::precision::LossScaler;
use crate::model::{Arch, Classifier, EfficientNet, EfficientNetConfig};
use crate::progress::Event;

/// The lock file that keeps two runs of one name from writing the same checkpoints.
fn lock_path(dir: &Path, name: &str) -> PathBuf {
    dir.join(format!(".{name}.lock"))
}

/// Whether a run of this configuration has a "last" checkpoint to resume from
/// (for k folds: the first fold's).
pub fn can_resume(cfg: &TrainConfig, weights_dir: &Path) -> bool {
    let name = if cfg.folds >= 2 {
        format!("{}-fold0", cfg.name)
    } else {
        cfg.name.clone()
    };
    checkpoint::exists(&last_path(weights_dir, &name))
}

/// Refuses a run that would overwrite a calibrated checkpoint (one with a
/// fitted temperature, which `train` would reset to 1.0): the calibration is
/// the user's work. Resuming a finished run writes no tensors and keeps the
/// temperature, so it passes. `replace` (`train --force`) allows it.
pub fn check_calibrated(
    cfg: &TrainConfig,
    weights_dir: &Path,
    resume: bool,
    replace: bool,
) -> Result<()> {
    if replace {
        return Ok(());
    }
    let names: Vec<String> = if cfg.folds >= 2 {
        (0..cfg.folds)
            .map(|k| format!("{}-fold{k}", cfg.name))
            .collect()
    } else {
        vec![cfg.name.clone()]
    };
    for name in names {
        let best = best_path(weights_dir, &name);
        if !checkpoint::exists(&best) {
            continue;
        }
        let Ok(meta) = checkpoint::read_meta(&best) else {
            continue;
        };
        if meta.temperature == 1.0 {
            continue;
        }
        let finished = checkpoint::read_meta(&last_path(weights_dir, &name))
            .ok()
            .and_then(|m| m.progress)
            .is_some_and(|p| p.finished);
        if resume && finished {
            continue;
        }
        return Err(Error::Checkpoint {
            path: checkpoint::meta_path(&best),
            message: format!(
                "is calibrated (temperature {:.4}); training '{}' again would replace it and its calibration. Use another --name, or --force to replace it",
                meta.temperature, cfg.name
            ),
        });
    }
    Ok(())
}

/// The locks on every name a run writes: its own (its checkpoint, or a fold
/// run's ensemble manifest) and, for k folds, each fold member's. Taken
/// before anything is written and held until the run's last file is: a
/// second run that would write any of these names is refused, naming the
/// process that holds it.
/// With `only = Some(k)` (one fold trained alone), that fold's lock only:
/// the run's other folds may train at the same time in other processes.
pub fn lock_run(
    cfg: &TrainConfig,
    weights_dir: &Path,
    only: Option<usize>,
) -> Result<Vec<crate::files::RunLock>> {
    let dir = weights_dir.display();
    if let (true, Some(k)) = (cfg.folds >= 2, only) {
        let member = format!("{}-fold{k}", cfg.name);
        return Ok(vec![crate::files::RunLock::acquire(
            &lock_path(weights_dir, &member),
            &format!(
                "'{member}' (fold {k} of training run '{}', {dir})",
                cfg.name
            ),
        )?]);
    }
    let mut locks = vec![crate::files::RunLock::acquire(
        &lock_path(weights_dir, &cfg.name),
        &format!("training run '{}' ({dir})", cfg.name),
    )?];
    if cfg.folds >= 2 {
        for k in 0..cfg.folds {
            let member = format!("{}-fold{k}", cfg.name);
            locks.push(crate::files::RunLock::acquire(
                &lock_path(weights_dir, &member),
                &format!(
                    "'{member}' (fold {k} of training run '{}', {dir})",
                    cfg.name
                ),
            )?);
        }
    }
    Ok(locks)
}

/// What to run to start a run over without `--resume`, in the run's shape:
/// its config file (when not the default), name and number of folds.
pub fn restart_command(cfg: &TrainConfig, config_file: Option<&Path>) -> String {
    let config = config_file
        .map(|p| format!(" --config {}", p.display()))
        .unwrap_or_default();
    let folds = if cfg.folds >= 2 {
        format!(" --folds {}", cfg.folds)
    } else {
        String::new()
    };
    format!("melxai{config} train --name {}{folds}", cfg.name)
}

/// Trains as configured: one stratified split, or k folds with pooled
/// out-of-fold metrics. Emits events through `ctx.sink`. The caller holds the
/// run's locks ([`lock_run`]).
pub fn train(cfg: &TrainConfig, ctx: &mut TrainContext) -> Result<RunOutcome> {
    train_folds(cfg, ctx, None)
}

/// [`train`], or with `only = Some(k)` fold k of a k-fold run alone (a
/// batch unit: each fold is one unit, run by whichever worker takes it);
/// that outcome holds the one fold and no pooled figures.
pub fn train_folds(
    cfg: &TrainConfig,
    ctx: &mut TrainContext,
    only: Option<usize>,
) -> Result<RunOutcome> {
    // "auto" is settled here, so recorded recipes and outcomes say what ran.
    let cfg = &TrainConfig {
        tta: cfg.tta.for_training(ctx.device).into(),
        ..cfg.clone()
    };
    // Temp files of runs killed mid-write (a resume that is refused below
    // would otherwise leave them for good).
    crate::files::clean_stale_temps(&ctx.weights_dir);
    let range = checkpoint::INPUT_SIDE_RANGE;
    if !ctx.cache.size.iter().all(|s| range.contains(s)) {
        return Err(Error::Config(format!(
            "input_size {:?} is outside {}..={} pixels per side (smaller inputs are shorter than the network's kernels)",
            ctx.cache.size,
            range.start(),
            range.end()
        )));
    }
    let (labels, groups) = (&ctx.cache.labels, &ctx.cache.groups);
    let mut splits = Vec::new();
    let mut notes = Vec::new();
    let cross_validation = if cfg.folds >= 2 {
        for fold in (0..cfg.folds).filter(|&f| only.is_none_or(|k| k == f)) {
            let split = grouped_fold_split(
                labels,
                groups,
                cfg.folds,
                fold,
                cfg.fold_val_fraction(),
                cfg.seed,
            )?;
            no_group_on_two_sides(&split, groups)?;
            let name = format!("{}-fold{}", cfg.name, fold);
            notes.extend(missing_parts(
                ctx,
                cfg,
                &name,
                &split,
                cfg.fold_val_fraction(),
            ));
            splits.push(train_split(
                cfg,
                ctx,
                &name,
                split,
                Some((fold, cfg.folds)),
            )?);
        }
        match only {
            Some(_) => None,
            None => Some(cross_validate(&splits, ctx.positive, cfg.seed)?),
        }
    } else {
        let split = grouped_split(
            labels,
            groups,
            cfg.test_fraction,
            cfg.val_fraction,
            cfg.seed,
        )?;
        no_group_on_two_sides(&split, groups)?;
        notes.extend(missing_parts(ctx, cfg, &cfg.name, &split, cfg.val_fraction));
        splits.push(train_split(cfg, ctx, &cfg.name, split, None)?);
        None
    };
    Ok(RunOutcome {
        name: cfg.name.clone(),
        config: cfg.clone(),
        splits,
        cross_validation,
        notes,
    })
}

/// A split that put one lesion's or patient's images on two sides would
/// inflate every held-out figure: refuse it rather than report it.
fn no_group_on_two_sides(split: &Split, groups: &[usize]) -> Result<()> {
    let leaked = crate::data::groups::groups_on_two_sides(split, groups);
    if leaked.is_empty() {
        return Ok(());
    }
    Err(Error::Other(format!(
        "internal error: {} groups landed on two sides of a split",
        leaked.len()
    )))
}

/// Says (on the event sink, and returned for the report) when a split holds
/// no test image, so no test figure exists, or no validation image although
/// `val_fraction` asked for some (too few images), so no epoch is scored.
/// Folds trained without validation by design (`fold_val_fraction = 0`)
/// are not news.
fn missing_parts(
    ctx: &mut TrainContext,
    cfg: &TrainConfig,
    name: &str,
    split: &Split,
    val_fraction: f64,
) -> Vec<String> {
    let images = split.train.len() + split.val.len() + split.test.len();
    let mut notes = Vec::new();
    if split.test.is_empty() {
        notes.push(format!(
            "'{name}': the split holds no test image ({images} images, test_fraction {}): \
             no test figures exist for this run (on a small data set, --folds K gives \
             out-of-fold figures for every image)",
            cfg.test_fraction
        ));
    }
    if split.val.is_empty() && val_fraction > 0.0 {
        notes.push(format!(
            "'{name}': the split holds no validation image ({images} images, val_fraction \
             {val_fraction}): no epoch is scored"
        ));
    }
    for message in &notes {
        ctx.sink.send(Event::Warning {
            job: ctx.job,
            message: message.clone(),
        });
    }
    notes
}

fn split_record(
    cache: &ImageCache,
    split: &Split,
    seed: u64,
    fold: Option<(usize, usize)>,
) -> SplitRecord {
    let ids = |v: &[usize]| v.iter().map(|&i| cache.ids[i].clone()).collect();
    SplitRecord {
        seed,
        fold,
        train: ids(&split.train),
        val: ids(&split.val),
        test: ids(&split.test),
    }
}

fn build_model(cfg: &TrainConfig, ctx: &mut TrainContext, name: &str) -> Result<Classifier> {
    let arch: Arch = cfg.arch.parse()?;
    let mut model = if cfg.pretrained {
        let (model, report) = Classifier::for_finetuning(
            name,
            arch,
            ctx.class_names.clone(),
            &ctx.imagenet_dir,
            ctx.device,
        )?;
        ctx.sink.send(Event::Warning {
            job: ctx.job,
            message: format!(
                "{name}: {} ImageNet tensors loaded; new classifier head ({} tensors re-initialised)",
                report.loaded,
                report.missing.len() + report.mismatched.len()
            ),
        });
        model
    } else {
        Classifier::new(
            name,
            EfficientNetConfig::new(arch, ctx.class_names.len() as i64),
            ctx.class_names.clone(),
            ctx.device,
        )
    };
    model.meta.input_size = ctx.cache.size;
    model.net.frozen_batch_norm = cfg.freeze_batch_norm;
    model.meta.training = toml::Value::try_from(cfg)
        .ok()
        .and_then(|v| v.as_table().cloned())
        .unwrap_or_default();
    Ok(model)
}

fn trainable(model: &Classifier, freeze_backbone: bool) -> Vec<(String, Tensor)> {
    let mut vars: Vec<(String, Tensor)> = model
        .vs
        .variables()
        .into_iter()
        .filter(|(_, t)| t.requires_grad())
        .collect();
    if freeze_backbone {
        for (n, t) in &vars {
            if !EfficientNet::is_head_variable(n) {
                let _ = t.set_requires_grad(false);
            }
        }
        vars.retain(|(n, _)| EfficientNet::is_head_variable(n));
    }
    vars
}

/// Trains one split (the stratified split, or one fold) to its kept
/// checkpoint, resuming when asked, then predicts its held-out rows.
fn train_split(
    cfg: &TrainConfig,
    ctx: &mut TrainContext,
    name: &str,
    split: Split,
    fold: Option<(usize, usize)>,
) -> Result<SplitOutcome> {
    // Weight averaging needs no validation images (they only score the mean).
    if split.train.is_empty() || (split.val.is_empty() && cfg.swa_epochs == 0) {
        return Err(Error::Dataset(format!(
            "split too small: {} training and {} validation images",
            split.train.len(),
            split.val.len()
        )));
    }
    let dir = ctx.weights_dir.clone();
    // The new head is initialised from libtorch's global generator.
    tch::manual_seed(cfg.seed as i64);
    let mut model = build_model(cfg, ctx, name)?;
    model.meta.split = Some(split_record(ctx.cache, &split, cfg.seed, fold));
    let params = trainable(&model, cfg.freeze_backbone);
    let opt = AdamW::new(params, cfg.learning_rate, cfg.weight_decay);
    // Validation (and the test predictions) at the training precision.
    model.precision = cfg.precision;
    let scaler = cfg.precision.needs_loss_scaling().then(LossScaler::default);
    let average = WeightAverage::new(cfg.epochs, cfg.swa_epochs);

    let train_labels: Vec<usize> = split.train.iter().map(|&i| ctx.cache.labels[i]).collect();
    let class_weights = match cfg.sampler {
        Sampler::Shuffle => balanced_class_weights(&train_labels, ctx.class_names.len()),
        Sampler::ClassBalanced => vec![1.0; ctx.class_names.len()],
    };
    let weights_t = weight_tensor(&class_weights, ctx.device);
    let batches_per_epoch = split.train.len().div_ceil(cfg.batch_size.max(1));
    let mut state = SplitState {
        last_commit: BackgroundSave::default(),
        history: Vec::new(),
        progress: TrainingProgress {
            epochs_total: cfg.epochs,
            best_score: f64::NEG_INFINITY,
            ..Default::default()
        },
        average,
        scaler,
        opt,
        model,
    };
    let plan = SplitPlan {
        cfg,
        name,
        dir,
        split,
        fold,
        class_weights,
        weights_t,
        batches_per_epoch,
        total_steps: batches_per_epoch * cfg.epochs,
        warmup_steps: batches_per_epoch * cfg.warmup_epochs,
    };
    start_or_resume(&plan, ctx, &mut state)?;

    // Decoded images and labels live on the training device for the whole
    // run: batches are gathered and augmented there, no per-step copy. A
    // streamed cache (over `[data] memory_budget_mb`) sends each batch.
    let images = ctx.cache.images.to_device(ctx.device);
    let labels = Tensor::from_slice(
        &ctx.cache
            .labels
            .iter()
            .map(|&l| l as i64)
            .collect::<Vec<_>>(),
    )
    .to_device(ctx.device);
    let mut clock = EpochClock {
        started: Instant::now(),
        epochs_run: 0,
        since_best: state
            .progress
            .epochs_done
            .saturating_sub(state.progress.best_epoch),
    };
    while !state.progress.finished && state.progress.epochs_done < cfg.epochs {
        run_epoch(&plan, ctx, &mut state, &mut clock, &images, &labels)?;
    }

    state.last_commit.wait()?;
    final_evaluation(&plan, ctx, &mut state)
}

/// Resumes from the last finished epoch when asked and possible; otherwise
/// commits the fresh start as the resume point (replacing an earlier run's).
fn start_or_resume(plan: &SplitPlan, ctx: &mut TrainContext, state: &mut SplitState) -> Result<()> {
    let last = last_path(&plan.dir, plan.name);
    if ctx.resume && checkpoint::exists(&last) {
        resume(plan, ctx, state, &last)
    } else {
        state.save_last(plan)
    }
}

/// Restores weights, optimiser state, weight average, progress and history
/// from the `-last` checkpoint, refusing one that is torn or from another recipe.
fn resume(
    plan: &SplitPlan,
    ctx: &mut TrainContext,
    state: &mut SplitState,
    last: &Path,
) -> Result<()> {
    let (dir, name) = (&plan.dir, plan.name);
    // Optimiser state and history must be the ones saved with these tensors.
    let saved = Classifier::from_checkpoint(last, ctx.device)
        .and_then(|saved| checkpoint::verify_all(&saved.meta, last).map(|()| saved))
        .map_err(|e| {
            torn_last(
                e,
                last,
                &plan.cfg.name,
                &restart_command(plan.cfg, ctx.config_file.as_deref()),
            )
        })?;
    check_resumable(&saved.meta, &state.model.meta, last)?;
    tch::no_grad(|| -> Result<()> {
        let src = saved.vs.variables();
        for (n, mut v) in state.model.vs.variables() {
            if let Some(t) = src.get(&n) {
                v.f_copy_(t)?;
            }
        }
        Ok(())
    })?;
    if let Some(p) = saved.meta.progress.clone() {
        state.progress = p;
    }
    let optim = optim_path(dir, name);
    let tensors = if optim.exists() {
        Tensor::read_safetensors(&optim)?
    } else {
        Vec::new()
    };
    state.opt.load_state(&tensors)?;
    if let Some(avg) = state.average.as_mut() {
        avg.restore(&state.model, &tensors, state.progress.epochs_done)
            .map_err(|e| Error::Checkpoint {
                path: optim.clone(),
                message: format!(
                    "cannot resume '{name}': {e}. To start it over, run `{}` without --resume",
                    restart_command(plan.cfg, ctx.config_file.as_deref())
                ),
            })?;
    }
    if let Ok(text) = std::fs::read_to_string(history_path(dir, name)) {
        state.history = serde_json::from_str(&text).unwrap_or_default();
    }
    forget_unusable_best(plan, ctx, &mut state.progress);
    if state.progress.finished {
        ctx.sink.send(Event::Warning {
            job: ctx.job,
            message: format!("{name}: already finished; evaluating the best checkpoint"),
        });
    } else {
        ctx.sink.send(Event::Warning {
            job: ctx.job,
            message: format!(
                "{name}: resuming after epoch {}",
                state.progress.epochs_done
            ),
        });
    }
    Ok(())
}

/// A kill between the best checkpoint's tensors and its metadata leaves a
/// best checkpoint that no longer loads (its old tensors are gone): the next
/// epoch writes a new one instead of the run failing at its end.
fn forget_unusable_best(plan: &SplitPlan, ctx: &mut TrainContext, progress: &mut TrainingProgress) {
    let name = plan.name;
    let best = best_path(&plan.dir, name);
    if !progress.finished && progress.best_epoch > 0 {
        let intact = checkpoint::read_meta(&best)
            .and_then(|m| checkpoint::verify_part(&m, &best, &checkpoint::tensors_path(&best)));
        if let Err(e) = intact {
            ctx.sink.send(Event::Warning {
                job: ctx.job,
                message: format!(
                    "{name}: the best checkpoint (epoch {}) is unusable, so the best of the remaining epochs replaces it: {e}",
                    progress.best_epoch
                ),
            });
            progress.best_epoch = 0;
            progress.best_score = f64::NEG_INFINITY;
        }
    }
}

/// Predicts the validation and test rows with the kept checkpoint, records
/// the test figures in its metadata, and assembles the split's outcome.
fn final_evaluation(
    plan: &SplitPlan,
    ctx: &TrainContext,
    state: &mut SplitState,
) -> Result<SplitOutcome> {
    let (cfg, dir, name) = (plan.cfg, &plan.dir, plan.name);
    let split = &plan.split;
    // Final evaluation with the best weights.
    let mut best = Classifier::from_checkpoint(&best_path(dir, name), ctx.device)?;
    best.precision = cfg.precision;
    let tta = cfg.tta == TtaSetting::On;
    let val = predict_rows(&best, ctx.cache, &split.val, 32, tta)?;
    let test = predict_rows(&best, ctx.cache, &split.test, 32, tta)?;
    let test_without_tta = if tta {
        Some(predict_rows(&best, ctx.cache, &split.test, 32, false)?)
    } else {
        None
    };
    let test_metrics = if test.is_empty() {
        None
    } else {
        Some(metrics(&test, ctx.positive, 1.0)?)
    };
    // A finished run reused under another `tta` re-predicts its held-out
    // images; its recipe then says which predictions its temperature sees.
    let mut meta = best.meta.clone();
    if tta {
        meta.training
            .insert("tta".into(), toml::Value::Boolean(true));
    } else {
        meta.training.remove("tta");
    }
    if let Some(m) = &test_metrics {
        meta.metrics.insert("test_auroc".into(), m.auroc);
        meta.metrics
            .insert("test_balanced_accuracy".into(), m.balanced_accuracy);
        meta.metrics.insert("test_sensitivity".into(), m.recall);
        meta.metrics
            .insert("test_specificity".into(), m.specificity);
        meta.progress = Some(state.progress.clone());
    }
    if meta != best.meta {
        checkpoint::write_meta(&best_path(dir, name), &meta)?;
    }
    Ok(SplitOutcome {
        checkpoint: checkpoint::tensors_path(&best_path(dir, name)),
        fold: plan.fold,
        best_epoch: state.progress.best_epoch,
        averaged_from: state.average.as_ref().map(WeightAverage::first_epoch),
        history: std::mem::take(&mut state.history),
        val,
        test,
        test_without_tta,
        test_metrics,
    })
}

/// The first epoch in a weight-averaged checkpoint's mean, from the count
/// its metadata records (`None` for a best-epoch checkpoint).
pub fn averaged_from(meta: &checkpoint::CheckpointMeta) -> Option<usize> {
    let last = meta.progress.as_ref().map_or(0, |p| p.best_epoch);
    meta.metrics
        .get(EPOCHS_AVERAGED)
        .map(|&n| (last + 1).saturating_sub(n as usize))
}
