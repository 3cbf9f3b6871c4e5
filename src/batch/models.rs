//! Batch steps on models: train one (or k folds), or load a given checkpoint
//! and evaluate it on its recorded split.

use std::path::{Path, PathBuf};

use super::{ModelSpec, Run};
use crate::data::cache::ImageCache;
use crate::data::groups::grouped_split;
use crate::data::scan::Scan;
use crate::ensemble::read_meta;
use crate::ensemble::Model;
use crate::error::{Error, Result};
use crate::jobs::evaluate::{evaluate, EvaluateJob};
use crate::jobs::train::{train, TrainJob};
use crate::model::checkpoint::meta_path;
use crate::progress::Event;
use crate::train::{RunOutcome, SplitOutcome, TrainConfig};

/// Trains `spec` with `base` (k folds when `folds >= 2`, named `<name>-cv`;
/// its files `<name>-swa<N>[-val0][-cv]` under weight averaging, so that a
/// finished run of another recipe is never reused, nor refused, by name) and
/// writes `training_<file name>.json`. The outcome keeps the `[batch]` name
/// (`outcome.config.name` is the file name).
pub(super) fn train_spec(
    r: &mut Run,
    data: &Scan,
    spec: &ModelSpec,
    base: &TrainConfig,
    folds: usize,
) -> Result<(PathBuf, RunOutcome)> {
    train_spec_folds(r, data, spec, base, folds, None)
}

/// The training run `spec` names under `base` (k folds when `folds >= 2`):
/// `[batch]` name, file name and recipe.
pub(super) fn spec_config(
    spec: &ModelSpec,
    base: &TrainConfig,
    folds: usize,
) -> (String, TrainConfig) {
    let run_name = |stem: &str| match folds {
        0 | 1 => stem.to_string(),
        _ => format!("{stem}-cv"),
    };
    let mut cfg = base.clone();
    cfg.name = run_name(&base.batch_stem(&spec.name, folds >= 2));
    cfg.arch = spec.arch.clone();
    cfg.seed = spec.seed;
    cfg.folds = folds;
    (run_name(&spec.name), cfg)
}

/// [`train_spec`], or with `only = Some(k)` fold k alone (a batch unit):
/// that writes its checkpoint and no `training_*.json`.
pub(super) fn train_spec_folds(
    r: &mut Run,
    data: &Scan,
    spec: &ModelSpec,
    base: &TrainConfig,
    folds: usize,
    only: Option<usize>,
) -> Result<(PathBuf, RunOutcome)> {
    let (name, cfg) = spec_config(spec, base, folds);
    let file = r.dir.join(format!("training_{}.json", cfg.name));
    let mut outcome = train(
        &mut r.ctx(),
        TrainJob {
            data,
            config: cfg,
            excluded: &[],
            resume: true,
            replace_calibrated: false,
            config_file: None,
            only_fold: only,
        },
    )?
    .outcome;
    outcome.name = name;
    let path = outcome.splits[0].checkpoint.clone();
    if only.is_some() {
        return Ok((path, outcome));
    }
    crate::files::write_bytes(
        &file,
        serde_json::to_string_pretty(&outcome)
            .map_err(|e| Error::Other(e.to_string()))?
            .as_bytes(),
    )?;
    Ok((path, outcome))
}

/// Evaluation rows of a given checkpoint on its recorded split (or, when it
/// records none, on a stratified split drawn with the spec's seed and the
/// `[train]` fractions), in the shape a training run returns.
pub(super) fn load_spec(
    r: &mut Run,
    data: &Scan,
    spec: &ModelSpec,
    checkpoint: &Path,
    base: &TrainConfig,
) -> Result<(PathBuf, RunOutcome)> {
    let meta = read_meta(checkpoint)?;
    crate::jobs::check_classes(checkpoint, &meta.class_names, data)?;
    let index_of = |ids: &[String], part: &str| rows_of_ids(data, checkpoint, ids, part);
    let (val, test) = match &meta.split {
        Some(rec) => (index_of(&rec.val, "val")?, index_of(&rec.test, "test")?),
        None => {
            let labels: Vec<usize> = data.samples.iter().map(|s| s.label).collect();
            let s = grouped_split(
                &labels,
                &data.groups(),
                base.test_fraction,
                base.val_fraction,
                spec.seed,
            )?;
            r.sink.send(Event::Warning {
                job: 0,
                message: format!(
                    "{} records no data split: evaluating on a stratified split drawn with seed {}",
                    checkpoint.display(),
                    spec.seed
                ),
            });
            (s.val, s.test)
        }
    };
    if val.is_empty() || test.is_empty() {
        let why = if crate::ensemble::is_ensemble_path(checkpoint) {
            " (an ensemble's split holds only the images every member held out; the k models of one cross-validation hold out none in common)"
        } else {
            ""
        };
        return Err(Error::Config(format!(
            "model '{}': the split of {} has {} validation and {} test images; calibration needs both{why}",
            spec.name,
            checkpoint.display(),
            val.len(),
            test.len()
        )));
    }
    let mut model = Model::load(checkpoint, r.device)?;
    model.set_tta(r.config.predict.tta);
    let samples: Vec<_> = val
        .iter()
        .chain(&test)
        .map(|&i| data.samples[i].clone())
        .collect();
    let cache = ImageCache::for_config(
        &samples,
        meta.input_size,
        &r.config.data,
        crate::progress::progress_bars_allowed(),
    )?;
    let val_rows: Vec<usize> = (0..val.len()).collect();
    let test_rows: Vec<usize> = (val.len()..samples.len()).collect();
    let outcome = RunOutcome {
        notes: Vec::new(),
        name: spec.name.clone(),
        config: TrainConfig::from_table(&meta.training).unwrap_or_else(|_| base.clone()),
        splits: vec![SplitOutcome {
            checkpoint: checkpoint.to_path_buf(),
            fold: None,
            best_epoch: meta.progress.as_ref().map_or(0, |p| p.best_epoch),
            averaged_from: crate::train::trainer::averaged_from(&meta),
            history: Vec::new(),
            val: evaluate(
                &mut r.ctx(),
                EvaluateJob {
                    model: &model,
                    cache: &cache,
                    rows: &val_rows,
                },
            )?,
            test: evaluate(
                &mut r.ctx(),
                EvaluateJob {
                    model: &model,
                    cache: &cache,
                    rows: &test_rows,
                },
            )?,
            test_without_tta: None,
            test_metrics: None,
        }],
        cross_validation: None,
    };
    Ok((checkpoint.to_path_buf(), outcome))
}

/// The recipe cross-validation trains for the reference model: `[train]`,
/// or for a given checkpoint its recorded training configuration (falling
/// back to `[train]`) on its architecture.
pub(super) fn cv_recipe(spec: &ModelSpec, base: &TrainConfig) -> Result<(ModelSpec, TrainConfig)> {
    let Some(ck) = &spec.checkpoint else {
        return Ok((spec.clone(), base.clone()));
    };
    let meta = read_meta(ck)?;
    let mut recipe = TrainConfig::from_table(&meta.training).unwrap_or_else(|_| base.clone());
    recipe.input_size = Some(meta.input_size[0]);
    let spec = ModelSpec {
        arch: meta.model.arch.name().to_string(),
        checkpoint: None,
        ..spec.clone()
    };
    Ok((spec, recipe))
}

/// Data set rows of the sample ids a checkpoint recorded for `part`; an id
/// missing from the data set is an error naming the checkpoint (it was
/// trained on another data set).
fn rows_of_ids(data: &Scan, checkpoint: &Path, ids: &[String], part: &str) -> Result<Vec<usize>> {
    let mut rows = Vec::with_capacity(ids.len());
    let mut missing = Vec::new();
    for id in ids {
        match data.samples.iter().position(|s| &s.id == id) {
            Some(i) => rows.push(i),
            None => missing.push(id.as_str()),
        }
    }
    if let Some(first) = missing.first() {
        return Err(Error::Checkpoint {
            path: meta_path(checkpoint),
            message: format!(
                "{} of its recorded {part} images are not in {} (first: {first}); is this the data set it was trained on?",
                missing.len(),
                data.root.display(),
            ),
        });
    }
    Ok(rows)
}
