//! The training loop. One split at a time; k-fold runs call it per fold.
//!
//! Repeatability: every epoch reseeds libtorch (dropout, drop-connect) and the
//! augmentation/shuffle stream from (seed, epoch), and the optimiser state is
//! saved with the per-epoch "last" checkpoint. A cancelled run therefore resumes
//! from its last finished epoch and ends with the same weights as a run that
//! was never interrupted.

use std::path::{Path, PathBuf};
use std::time::Instant;

use rand::seq::SliceRandom;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use tch::{Device, Kind, Reduction, Tensor};

use super::config::{Monitor, TrainConfig};
use super::optimizer::AdamW;
use super::outcome::cross_validate;
pub use super::outcome::{checkpoint_epochs, CrossValidation, RunOutcome, SplitOutcome};
use super::resume_point::{
    check_resumable, history_path, last_path, optim_path, save_last, torn_last, BackgroundSave,
};
use super::schedule::learning_rate;
use super::weight_average::WeightAverage;
use crate::data::augment::augment;
use crate::data::cache::ImageCache;
use crate::data::image::normalise;
use crate::data::split::{fold_split, stratified_split, Split};
use crate::ensemble::tta::TtaSetting;
use crate::error::{Error, Result};
use crate::eval::{
    balanced_class_weights, metrics, predict_rows, weight_tensor, weighted_cross_entropy,
};
use crate::model::checkpoint::{self, SplitRecord, TrainingProgress};
use crate::model::precision::LossScaler;
use crate::model::{Arch, Classifier, EfficientNet, EfficientNetConfig};
use crate::progress::{CancelToken, EpochSummary, Event, EventSink, JobId};

/// Everything a training run needs from its caller.
pub struct TrainContext<'a> {
    pub cache: &'a ImageCache,
    pub class_names: Vec<String>,
    pub positive: usize,
    /// Where checkpoints are written.
    pub weights_dir: PathBuf,
    /// Where the shipped ImageNet weights are read from.
    pub imagenet_dir: PathBuf,
    pub device: Device,
    pub sink: &'a mut dyn EventSink,
    pub cancel: &'a CancelToken,
    pub job: JobId,
    /// Continue an interrupted run from its `-last` checkpoint.
    pub resume: bool,
}

/// Checkpoint path stems for a run name.
fn best_path(dir: &Path, name: &str) -> PathBuf {
    dir.join(name)
}

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

/// Trains as configured: one stratified split, or k folds with pooled
/// out-of-fold metrics. Emits events through `ctx.sink`. A second run of the
/// same name while this one holds its lock is refused.
pub fn train(cfg: &TrainConfig, ctx: &mut TrainContext) -> Result<RunOutcome> {
    // "auto" is settled here, so recorded recipes and outcomes say what ran.
    let cfg = &TrainConfig {
        tta: cfg.tta.for_training(ctx.device).into(),
        ..cfg.clone()
    };
    let _lock = crate::files::RunLock::acquire(
        &lock_path(&ctx.weights_dir, &cfg.name),
        &format!(
            "training run '{}' ({})",
            cfg.name,
            ctx.weights_dir.display()
        ),
    )?;
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
    let labels = &ctx.cache.labels;
    let mut splits = Vec::new();
    let cross_validation = if cfg.folds >= 2 {
        for fold in 0..cfg.folds {
            let split = fold_split(labels, cfg.folds, fold, cfg.fold_val_fraction(), cfg.seed)?;
            let name = format!("{}-fold{}", cfg.name, fold);
            splits.push(train_split(
                cfg,
                ctx,
                &name,
                split,
                Some((fold, cfg.folds)),
            )?);
        }
        Some(cross_validate(&splits, ctx.positive, cfg.seed)?)
    } else {
        let split = stratified_split(labels, cfg.test_fraction, cfg.val_fraction, cfg.seed)?;
        splits.push(train_split(cfg, ctx, &cfg.name, split, None)?);
        None
    };
    Ok(RunOutcome {
        name: cfg.name.clone(),
        config: cfg.clone(),
        splits,
        cross_validation,
    })
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

fn score(monitor: Monitor, s: &EpochSummary) -> f64 {
    // Higher is better for every monitored quantity.
    match monitor {
        Monitor::ValLoss => -s.val_loss,
        Monitor::ValAuroc => s.val_auroc,
        Monitor::ValBalancedAccuracy => s.val_balanced_accuracy,
    }
}

/// A finished batch whose loss has not been read back yet.
struct BatchLoss {
    batch: usize,
    loss: Tensor,
    size: usize,
    learning_rate: f64,
}

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
    let mut opt = AdamW::new(params, cfg.learning_rate, cfg.weight_decay);
    // Validation (and the test predictions) at the training precision.
    model.precision = cfg.precision;
    let mut scaler = cfg.precision.needs_loss_scaling().then(LossScaler::default);
    let mut average = WeightAverage::new(cfg.epochs, cfg.swa_epochs);

    let train_labels: Vec<usize> = split.train.iter().map(|&i| ctx.cache.labels[i]).collect();
    let class_weights = balanced_class_weights(&train_labels, ctx.class_names.len());
    let weights_t = weight_tensor(&class_weights, ctx.device);
    let batches_per_epoch = split.train.len().div_ceil(cfg.batch_size.max(1));
    let total_steps = batches_per_epoch * cfg.epochs;
    let warmup_steps = batches_per_epoch * cfg.warmup_epochs;

    let mut progress = TrainingProgress {
        epochs_total: cfg.epochs,
        best_score: f64::NEG_INFINITY,
        ..Default::default()
    };
    let mut history: Vec<EpochSummary> = Vec::new();
    let mut last_commit = BackgroundSave::default();

    // Resume from the last finished epoch when asked and possible.
    let last = last_path(&dir, name);
    if ctx.resume && checkpoint::exists(&last) {
        // Optimiser state and history must be the ones saved with these tensors.
        let saved = Classifier::from_checkpoint(&last, ctx.device)
            .and_then(|saved| checkpoint::verify_all(&saved.meta, &last).map(|()| saved))
            .map_err(|e| torn_last(e, &last, &cfg.name))?;
        check_resumable(&saved.meta, &model.meta, &last)?;
        tch::no_grad(|| -> Result<()> {
            let src = saved.vs.variables();
            for (n, mut v) in model.vs.variables() {
                if let Some(t) = src.get(&n) {
                    v.f_copy_(t)?;
                }
            }
            Ok(())
        })?;
        if let Some(p) = saved.meta.progress.clone() {
            progress = p;
        }
        let optim = optim_path(&dir, name);
        let state = if optim.exists() {
            Tensor::read_safetensors(&optim)?
        } else {
            Vec::new()
        };
        opt.load_state(&state)?;
        if let Some(avg) = average.as_mut() {
            avg.restore(&model, &state, progress.epochs_done)
                .map_err(|e| Error::Checkpoint {
                    path: optim.clone(),
                    message: format!(
                        "cannot resume '{name}': {e}. Train without --resume to start it over"
                    ),
                })?;
        }
        if let Ok(text) = std::fs::read_to_string(history_path(&dir, name)) {
            history = serde_json::from_str(&text).unwrap_or_default();
        }
        // A kill between the best checkpoint's tensors and its metadata leaves
        // a best checkpoint that no longer loads (its old tensors are gone):
        // the next epoch writes a new one instead of the run failing at its end.
        let best = best_path(&dir, name);
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
        if progress.finished {
            ctx.sink.send(Event::Warning {
                job: ctx.job,
                message: format!("{name}: already finished; evaluating the best checkpoint"),
            });
        } else {
            ctx.sink.send(Event::Warning {
                job: ctx.job,
                message: format!("{name}: resuming after epoch {}", progress.epochs_done),
            });
        }
    } else {
        save_last(
            &model,
            resume_state(&opt, &average),
            &progress,
            &history,
            &dir,
            name,
            &mut last_commit,
        )?;
    }

    // Decoded images and labels live on the training device for the whole
    // run: batches are gathered and augmented there, no per-step copy.
    let images = ctx.cache.images.to_device(ctx.device);
    let labels = Tensor::from_slice(
        &ctx.cache
            .labels
            .iter()
            .map(|&l| l as i64)
            .collect::<Vec<_>>(),
    )
    .to_device(ctx.device);
    let started = Instant::now();
    let mut epochs_run = 0usize;
    let mut since_best = progress.epochs_done.saturating_sub(progress.best_epoch);
    while !progress.finished && progress.epochs_done < cfg.epochs {
        let epoch = progress.epochs_done + 1;
        let t0 = Instant::now();
        tch::manual_seed(
            (cfg.seed as i64)
                .wrapping_mul(1000)
                .wrapping_add(epoch as i64),
        );
        let mut rng =
            ChaCha8Rng::seed_from_u64(cfg.seed.wrapping_mul(7919).wrapping_add(epoch as u64));
        let mut order = split.train.clone();
        order.shuffle(&mut rng);
        ctx.sink.send(Event::Progress {
            job: ctx.job,
            stage: format!("{name} epoch {epoch}/{}", cfg.epochs),
            done: (epoch - 1) as u64,
            total: cfg.epochs as u64,
            eta_seconds: (epochs_run > 0).then(|| {
                started.elapsed().as_secs_f64() / epochs_run as f64
                    * (cfg.epochs - epoch + 1) as f64
            }),
        });
        let (mut loss_sum, mut seen) = (0.0, 0usize);
        let mut lr = cfg.learning_rate;
        // The epoch's order goes to the device once; each batch is a slice of it.
        let order_t = Tensor::from_slice(&order.iter().map(|&r| r as i64).collect::<Vec<_>>())
            .to_device(ctx.device);
        // On a GPU a batch's loss is read one step late, once the next step
        // is queued, so the host never waits on the device mid-epoch; on the
        // CPU the value is there already and the event goes out at once.
        let read_late = ctx.device != Device::Cpu;
        let mut pending: Option<BatchLoss> = None;
        let mut report = |p: BatchLoss| {
            let l = p.loss.double_value(&[]);
            loss_sum += l * p.size as f64;
            seen += p.size;
            ctx.sink.send(Event::Batch {
                job: ctx.job,
                epoch,
                batch: p.batch,
                batches: batches_per_epoch,
                loss: l,
                learning_rate: p.learning_rate,
            });
        };
        for (b, rows) in order.chunks(cfg.batch_size.max(1)).enumerate() {
            ctx.cancel.check()?;
            let step = (epoch - 1) * batches_per_epoch + b;
            lr = learning_rate(
                cfg.schedule,
                cfg.learning_rate,
                step,
                total_steps,
                warmup_steps,
            );
            opt.lr = lr;
            let idx = order_t.narrow(0, (b * cfg.batch_size.max(1)) as i64, rows.len() as i64);
            let x = augment(&ImageCache::gather(&images, &idx), &cfg.augment, &mut rng);
            let x = normalise(&x, &model.meta.normalisation);
            let y = labels.index_select(0, &idx);
            let loss = cfg.precision.run(ctx.device, || {
                model
                    .net
                    .forward_t(&x, !cfg.freeze_backbone)
                    .to_kind(Kind::Float)
                    .cross_entropy_loss::<Tensor>(
                        &y,
                        Some(weights_t.shallow_clone()),
                        Reduction::Mean,
                        -100,
                        0.0,
                    )
            });
            let finite = match scaler.as_mut() {
                None => {
                    opt.backward(&loss);
                    true
                }
                Some(s) => {
                    opt.backward(&(&loss * s.scale));
                    let finite = opt.unscale_grads(s.scale);
                    s.update(finite);
                    finite
                }
            };
            if finite {
                if cfg.grad_clip > 0.0 {
                    let _ = opt.clip_grad_norm(cfg.grad_clip);
                }
                opt.step();
            }
            let done = BatchLoss {
                batch: b + 1,
                loss: loss.detach(),
                size: rows.len(),
                learning_rate: lr,
            };
            if !read_late {
                report(done);
            } else if let Some(p) = pending.replace(done) {
                report(p);
            }
        }
        if let Some(p) = pending.take() {
            report(p);
        }
        let train_seconds = t0.elapsed().as_secs_f64();
        let summary = validated(
            &model,
            ctx,
            &split.val,
            &class_weights,
            EpochSummary {
                fold,
                epoch,
                epochs: cfg.epochs,
                train_loss: loss_sum / seen.max(1) as f64,
                val_loss: f64::NAN,
                val_balanced_accuracy: f64::NAN,
                val_auroc: f64::NAN,
                learning_rate: lr,
                seconds: t0.elapsed().as_secs_f64(),
                images_per_second: seen as f64 / train_seconds.max(1e-9),
            },
        )?;
        progress.epochs_done = epoch;
        epochs_run += 1;
        let s = score(cfg.monitor, &summary);
        if let Some(avg) = average.as_mut() {
            if avg.covers(epoch) {
                avg.add(&model)?;
            }
            // After the last epoch the mean is the run's checkpoint, scored
            // on the validation split like a best epoch. Until then the
            // `-last` resume point carries it: no checkpoint write per epoch
            // (on a GPU an epoch takes about as long as one).
            if epoch == cfg.epochs {
                let averaged = (EPOCHS_AVERAGED, avg.count() as f64);
                avg.with_mean(&mut model, |m| {
                    let mean = validated(m, ctx, &split.val, &class_weights, summary.clone())?;
                    progress.best_score = score(cfg.monitor, &mean);
                    progress.best_epoch = epoch;
                    save_best(m, &mean, &progress, Some(averaged), &best_path(&dir, name))
                })?;
            }
        } else if s > progress.best_score || progress.best_epoch == 0 {
            progress.best_score = s;
            progress.best_epoch = epoch;
            since_best = 0;
            save_best(
                &mut model,
                &summary,
                &progress,
                None,
                &best_path(&dir, name),
            )?;
        } else {
            since_best += 1;
        }
        history.push(summary.clone());
        let eta = started.elapsed().as_secs_f64() / epochs_run as f64 * (cfg.epochs - epoch) as f64;
        ctx.sink.send(Event::Epoch {
            job: ctx.job,
            summary,
        });
        ctx.sink.send(Event::Progress {
            job: ctx.job,
            stage: format!("{name} epoch {epoch}/{}", cfg.epochs),
            done: epoch as u64,
            total: cfg.epochs as u64,
            eta_seconds: Some(eta),
        });
        if cfg.patience > 0 && since_best >= cfg.patience {
            ctx.sink.send(Event::Warning {
                job: ctx.job,
                message: format!(
                    "{name}: early stop after epoch {epoch} (best epoch {})",
                    progress.best_epoch
                ),
            });
            progress.finished = true;
        }
        if epoch == cfg.epochs {
            progress.finished = true;
        }
        save_last(
            &model,
            resume_state(&opt, &average),
            &progress,
            &history,
            &dir,
            name,
            &mut last_commit,
        )?;
    }

    last_commit.wait()?;

    // Final evaluation with the best weights.
    let mut best = Classifier::from_checkpoint(&best_path(&dir, name), ctx.device)?;
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
        meta.progress = Some(progress.clone());
    }
    if meta != best.meta {
        checkpoint::write_meta(&best_path(&dir, name), &meta)?;
    }
    Ok(SplitOutcome {
        checkpoint: checkpoint::tensors_path(&best_path(&dir, name)),
        fold,
        best_epoch: progress.best_epoch,
        averaged_from: average.as_ref().map(WeightAverage::first_epoch),
        history,
        val,
        test,
        test_without_tta,
        test_metrics,
    })
}

/// What the `-last` resume point keeps beside the weights: the optimiser's
/// state and the running weight average (none when averaging is off or has
/// not started).
fn resume_state(opt: &AdamW, average: &Option<WeightAverage>) -> Vec<(String, Tensor)> {
    let mut state = opt.state();
    state.extend(
        average
            .as_ref()
            .map(WeightAverage::state)
            .unwrap_or_default(),
    );
    state
}

/// `summary` with the validation loss, balanced accuracy and AUROC of
/// `model` on the `rows` of the validation split (left NaN when there are
/// none: a fold trained without validation under weight averaging).
fn validated(
    model: &Classifier,
    ctx: &TrainContext,
    rows: &[usize],
    class_weights: &[f64],
    summary: EpochSummary,
) -> Result<EpochSummary> {
    if rows.is_empty() {
        return Ok(summary);
    }
    let val = predict_rows(model, ctx.cache, rows, 32, false)?;
    let m = metrics(&val, ctx.positive, 1.0)?;
    Ok(EpochSummary {
        val_loss: weighted_cross_entropy(&val, class_weights),
        val_balanced_accuracy: m.balanced_accuracy,
        val_auroc: m.auroc,
        ..summary
    })
}

/// Writes `model` as the run's checkpoint, with the validation figures of
/// `summary` (and `extra`, e.g. how many epochs a mean holds) and `progress`
/// in its metadata.
fn save_best(
    model: &mut Classifier,
    summary: &EpochSummary,
    progress: &TrainingProgress,
    extra: Option<(&str, f64)>,
    path: &Path,
) -> Result<()> {
    model.meta.metrics = epoch_metrics(summary);
    if let Some((key, value)) = extra {
        model.meta.metrics.insert(key.into(), value);
    }
    model.meta.progress = Some(progress.clone());
    model.save(path).map(|_| ())
}

/// Checkpoint metric: how many epochs a weight-averaged checkpoint's mean holds.
const EPOCHS_AVERAGED: &str = "swa_epochs_averaged";

/// The first epoch in a weight-averaged checkpoint's mean, from the count
/// its metadata records (`None` for a best-epoch checkpoint).
pub fn averaged_from(meta: &checkpoint::CheckpointMeta) -> Option<usize> {
    let last = meta.progress.as_ref().map_or(0, |p| p.best_epoch);
    meta.metrics
        .get(EPOCHS_AVERAGED)
        .map(|&n| (last + 1).saturating_sub(n as usize))
}

fn epoch_metrics(s: &EpochSummary) -> std::collections::BTreeMap<String, f64> {
    [
        ("epoch", s.epoch as f64),
        ("val_loss", s.val_loss),
        ("val_auroc", s.val_auroc),
        ("val_balanced_accuracy", s.val_balanced_accuracy),
    ]
    .into_iter()
    .filter(|(_, v)| v.is_finite())
    .map(|(k, v)| (k.to_string(), v))
    .collect()
}
