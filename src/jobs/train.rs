//! The train job: decode the data set once at the model's input size and
//! fine-tune (one split, or k folds), writing checkpoints to `[model] weights_dir`.
//! A k-fold run also writes `<name>.ensemble.toml`: its fold models as one
//! ensemble, with the temperature fitted on their pooled out-of-fold logits.

use std::path::PathBuf;
use std::time::Instant;

use super::{positive_class, JobContext};
use crate::calibrate::fit_temperature;
use crate::data::cache::ImageCache;
use crate::data::scan::Scan;
use crate::error::Result;
use crate::progress::progress_bars_allowed as bars;
use crate::train::{RunOutcome, TrainConfig, TrainContext};

/// One training run.
pub struct TrainJob<'a> {
    pub data: &'a Scan,
    pub config: TrainConfig,
    /// Sample ids left out (triage exclusions).
    pub excluded: &'a [String],
    /// Continue an interrupted run from its `-last` checkpoint.
    pub resume: bool,
    /// Overwrite a calibrated checkpoint of the same name (`train --force`);
    /// without it such a run is refused before anything is written.
    pub replace_calibrated: bool,
    /// `--config` when not the default `config.toml` (for advice that
    /// reproduces the run).
    pub config_file: Option<PathBuf>,
    /// Fold k of a k-fold run alone (a batch unit); no ensemble manifest
    /// is written, since the other folds may not be trained yet.
    pub only_fold: Option<usize>,
}

/// The run's outcome and what went into it.
pub struct Trained {
    pub outcome: RunOutcome,
    /// Images decoded for training, and how many of them the decoder skipped.
    pub images: usize,
    pub excluded: usize,
    pub skipped: usize,
    /// Side of the square input, in pixels.
    pub input_size: i64,
    pub decode_seconds: f64,
    /// The ensemble manifest a k-fold run wrote.
    pub ensemble: Option<PathBuf>,
}

pub fn train(ctx: &mut JobContext, job: TrainJob) -> Result<Trained> {
    let TrainJob {
        data,
        config,
        excluded,
        resume,
        replace_calibrated,
        config_file,
        only_fold,
    } = job;
    let positive = positive_class(ctx.config, &data.classes)?;
    // Held until the ensemble manifest is written: every name the run writes.
    let _locks =
        crate::train::trainer::lock_run(&config, &ctx.config.model.weights_dir, only_fold)?;
    crate::train::trainer::check_calibrated(
        &config,
        &ctx.config.model.weights_dir,
        resume,
        replace_calibrated,
    )?;
    let size = config.resolved_input_size()?;
    let samples: Vec<_> = data
        .samples
        .iter()
        .filter(|s| !excluded.contains(&s.id))
        .cloned()
        .collect();
    // Exclusions may empty a class: a classifier trained without one of its
    // classes is a one-class model whose metrics look perfect.
    for (label, class) in data.classes.iter().enumerate() {
        if !samples.iter().any(|s| s.label == label) {
            return Err(crate::Error::Dataset(format!(
                "no '{class}' images left to train on after leaving out {} excluded sample(s); every class of {} needs images",
                data.samples.len() - samples.len(),
                data.root.display()
            )));
        }
    }
    ctx.cancel.check()?;
    let t0 = Instant::now();
    let cache = ImageCache::for_config(&samples, [size, size], &ctx.config.data, bars())?;
    let decode_seconds = t0.elapsed().as_secs_f64();
    let weights_dir = ctx.config.model.weights_dir.clone();
    let mut train_ctx = TrainContext {
        cache: &cache,
        class_names: data.classes.clone(),
        positive,
        weights_dir: weights_dir.clone(),
        imagenet_dir: weights_dir,
        device: ctx.device,
        sink: &mut *ctx.sink,
        cancel: ctx.cancel,
        job: ctx.job,
        resume,
        config_file,
    };
    let outcome = crate::train::trainer::train_folds(&config, &mut train_ctx, only_fold)?;
    let ensemble = match &outcome.cross_validation {
        Some(_) => Some(write_fold_ensemble(
            &ctx.config.model.weights_dir,
            &outcome,
            positive,
            config.target_sensitivity,
            config.combine,
            (ctx.config.predict.conformal, config.seed),
        )?),
        None => None,
    };
    Ok(Trained {
        ensemble,
        outcome,
        images: cache.len(),
        excluded: data.samples.len() - samples.len(),
        skipped: cache.skipped.len(),
        input_size: size,
        decode_seconds,
    })
}

/// Writes `<name>.ensemble.toml` for a k-fold run's fold checkpoints. The
/// temperature is the calibrate module's fit on all pooled out-of-fold logits
/// (each image predicted by the one member that did not train on it); the
/// cross-fitted before/after numbers are the calibrate job's to report.
///
/// It also carries the operating point: the threshold on that calibrated
/// probability reaching `target_sensitivity` on the same out-of-fold
/// predictions (`operating_point::from_out_of_fold`; each image's from the one
/// fold model that left it out, so an approximation for the averaged
/// ensemble). Too few positives to choose one leaves it out, with no error.
/// Likewise the conformal thresholds (`[predict.conformal]`): calibrated on
/// those out-of-fold probabilities, the cross-conformal recipe (no image
/// is spent on both a model and a threshold).
fn write_fold_ensemble(
    weights_dir: &std::path::Path,
    outcome: &crate::train::RunOutcome,
    positive: usize,
    target_sensitivity: f64,
    combine: crate::ensemble::manifest::CombineRule,
    (conformal, seed): (crate::verdict::conformal::ConformalSettings, u64),
) -> Result<PathBuf> {
    let oof: Vec<&crate::verdict::EvalRow> = outcome.splits.iter().flat_map(|s| &s.test).collect();
    let logits: Vec<Vec<f64>> = oof.iter().map(|r| r.logits.clone()).collect();
    let labels: Vec<usize> = oof.iter().map(|r| r.label).collect();
    let fit = fit_temperature(&logits, &labels)
        .map_err(|e| crate::Error::Other(format!("ensemble temperature: {e}")))?;
    let members: Vec<PathBuf> = outcome
        .splits
        .iter()
        .map(|s| s.checkpoint.clone())
        .collect();
    use crate::ensemble::manifest;
    let mut m = manifest::from_members(weights_dir, &outcome.name, &members, combine)?;
    m.temperature = fit.temperature;
    m.temperature_fitted_on = crate::calibrate::fit::out_of_fold_label(oof.len());
    let rows: Vec<crate::verdict::EvalRow> = oof.into_iter().cloned().collect();
    m.operating_point = crate::evaluate::operating_point::from_out_of_fold(
        &rows,
        fit.temperature,
        positive,
        target_sensitivity,
    )
    .ok();
    let probs: Vec<Vec<f64>> = rows
        .iter()
        .map(|r| r.probabilities(fit.temperature))
        .collect();
    m.conformal = crate::verdict::conformal::ConformalPredictor::calibrate_seeded(
        &probs, &labels, conformal, seed,
    )
    .ok();
    let path = manifest::ensemble_path(weights_dir, &outcome.name);
    manifest::write(&path, &m)?;
    Ok(path)
}
