//! `melxai batch run-unit ID`: one unit, run by whoever holds its lock.
//! Dependencies must be done; a unit done under the same key is skipped; a
//! unit killed half way starts over cleanly (a training resumes from its
//! last finished epoch, a shard reuses the maps it already wrote).

use std::path::PathBuf;
use std::time::Instant;

use super::progress_file::ProgressFile;
use super::state::{host, now, write_json, Done, Failed, Started, UnitFiles};
use super::{plan, Plan, Unit, UnitKind};
use crate::batch::models::{cv_recipe, load_spec, spec_config, train_spec, train_spec_folds};
use crate::batch::repetitions::repetition_plans;
use crate::batch::{BatchSummary, Run};
use crate::config::Config;
use crate::data::cache::ImageCache;
use crate::data::scan::Scan;
use crate::ensemble::Model;
use crate::error::{Error, Result};
use crate::jobs::compare::{score_images, ScoreJob};
use crate::jobs::evaluate::evaluate_all;
use crate::jobs::explain::{explain_split, ExplainJob};
use crate::jobs::{positive_class, scan_data};
use crate::progress::{CancelToken, EventSink};
use crate::report::run::ScreenshotFn;
use crate::train::RunOutcome;

/// How a `run-unit` call ended.
#[derive(Debug)]
pub enum UnitRun {
    Ran {
        seconds: f64,
    },
    /// Done under the same key before: nothing ran.
    AlreadyDone,
    /// The report unit: the run's summary.
    Report(BatchSummary),
}

/// Runs unit `id` of run `name` (`None`: `[batch] run_name`). Refuses a
/// unit whose dependencies are not done, and one another process holds
/// (`Error::Locked`). Records started, done or failed in its files.
pub fn run_unit(
    config: &Config,
    name: Option<&str>,
    id: &str,
    sink: &mut dyn EventSink,
    cancel: &CancelToken,
    screens: Option<&mut ScreenshotFn>,
) -> Result<UnitRun> {
    // Listed, not decoded: the plan needs ids, labels and file sizes.
    let data = crate::data::load(&config.data, false)?;
    let plan = plan(config, name, &data)?;
    let unit = plan.unit(id)?.clone();
    let files = UnitFiles::new(&plan.run, id);
    for d in &unit.deps {
        let dep = plan.unit(d)?;
        if !UnitFiles::new(&plan.run, d).is_done(&dep.key) {
            return Err(Error::Config(format!(
                "unit '{id}' is not ready: its dependency '{d}' is not done (melxai batch status {})",
                plan.run
            )));
        }
    }
    let _lock = crate::files::RunLock::acquire(&files.lock_path(), &format!("unit '{id}'"))?;
    if files.is_done(&unit.key) {
        return Ok(UnitRun::AlreadyDone);
    }
    write_json(
        &files.started_path(),
        &Started {
            key: unit.key.clone(),
            host: host(),
            pid: std::process::id(),
            slurm_job: slurm_job(),
            started_at: now(),
        },
    )?;
    let t0 = Instant::now();
    let mut progress = ProgressFile::new(files.progress_path(), id, sink);
    let result = execute(config, &plan, &unit, &mut progress, cancel, screens);
    match &result {
        Ok(_) => {
            progress.finish("done");
            write_json(
                &files.done_path(),
                &Done {
                    key: unit.key.clone(),
                    seconds: t0.elapsed().as_secs_f64(),
                    host: host(),
                    finished_at: now(),
                },
            )?;
            files.remove(&files.failed_path())?;
        }
        Err(e) => {
            write_json(
                &files.failed_path(),
                &Failed {
                    key: unit.key.clone(),
                    error: e.to_string(),
                    at: now(),
                },
            )?;
        }
    }
    let summary = result?;
    Ok(match summary {
        Some(s) => UnitRun::Report(s),
        None => UnitRun::Ran {
            seconds: t0.elapsed().as_secs_f64(),
        },
    })
}

/// The Slurm job (array task) this process runs in, if any.
fn slurm_job() -> Option<String> {
    let var = |k: &str| std::env::var(k).ok().filter(|v| !v.is_empty());
    match (var("SLURM_ARRAY_JOB_ID"), var("SLURM_ARRAY_TASK_ID")) {
        (Some(job), Some(task)) => Some(format!("{job}_{task}")),
        _ => var("SLURM_JOB_ID"),
    }
}

fn execute(
    config: &Config,
    plan: &Plan,
    unit: &Unit,
    sink: &mut dyn EventSink,
    cancel: &CancelToken,
    screens: Option<&mut ScreenshotFn>,
) -> Result<Option<BatchSummary>> {
    let run_name = plan.run.as_str();
    if unit.kind == UnitKind::Report {
        let shards: Vec<&str> = plan
            .units
            .iter()
            .filter(|u| matches!(u.kind, UnitKind::Explain { .. }))
            .map(|u| u.id.as_str())
            .collect();
        super::merge::merge_shards(run_name, &shards)?;
        let summary = crate::batch::run(config, Some(run_name), sink, cancel, screens)?;
        if !summary.succeeded() {
            let failed: Vec<String> = summary
                .steps
                .iter()
                .filter(|s| !s.ok)
                .map(|s| format!("{}: {}", s.step, s.error.as_deref().unwrap_or("?")))
                .collect();
            return Err(Error::Other(format!(
                "the report's steps failed: {}",
                failed.join("; ")
            )));
        }
        return Ok(Some(summary));
    }
    let mut run = Run::new(config, Some(run_name), sink, cancel)?;
    let data = scan_data(&mut run.ctx())?;
    let base = config.train.clone();
    let spec0 = run.batch.models[0].clone();
    let folds = run.batch.folds;
    match &unit.kind {
        UnitKind::Train {
            model,
            repetition: None,
            ..
        } => {
            let spec = spec_named(&run, model)?;
            train_spec(&mut run, &data, &spec, &base, 0)?;
        }
        UnitKind::Train {
            repetition: Some(r),
            fold,
            ..
        } => {
            let reps = repetition_plans(
                run.batch.cv_repeats.resolve(run.device),
                spec0.seed,
                &run.batch.cv_extra_input_sizes,
            );
            let (spec, recipe) = reps[*r].recipe(&spec0, &base)?;
            train_spec_folds(&mut run, &data, &spec, &recipe, folds, *fold)?;
        }
        UnitKind::Ensemble { .. } => {
            let (spec, recipe) = cv_recipe(&spec0, &base)?;
            train_spec(&mut run, &data, &spec, &recipe, folds)?;
        }
        UnitKind::Evaluate { model } => evaluate_unit(&mut run, &data, model)?,
        UnitKind::Explain {
            model,
            shard,
            shards,
        } => explain_shard(&mut run, &data, unit, model, (*shard, *shards))?,
        UnitKind::Report => unreachable!("handled above"),
    }
    Ok(None)
}

fn spec_named(run: &Run, model: &str) -> Result<crate::batch::ModelSpec> {
    run.batch
        .models
        .iter()
        .find(|s| s.name == model)
        .cloned()
        .ok_or_else(|| Error::Config(format!("[batch] models has no model '{model}'")))
}

/// A `[batch]` model's checkpoint and outcome on its split, as the
/// in-process run sees them: the outcome its training unit recorded
/// (`training_<name>.json`; read, so that no training lock is taken), or
/// its given checkpoint evaluated on its recorded split.
fn model_outcome(run: &mut Run, data: &Scan, model: &str) -> Result<(PathBuf, RunOutcome)> {
    let spec = spec_named(run, model)?;
    let base = run.config.train.clone();
    if let Some(ck) = &spec.checkpoint {
        return load_spec(run, data, &spec, ck, &base);
    }
    let (_, cfg) = spec_config(&spec, &base, 0);
    let path = run.dir.join(format!("training_{}.json", cfg.name));
    let text = std::fs::read_to_string(&path).map_err(|e| Error::io(&path, e))?;
    let outcome: RunOutcome = serde_json::from_str(&text)
        .map_err(|e| Error::Other(format!("{}: {e}", path.display())))?;
    let checkpoint = outcome
        .splits
        .first()
        .map(|s| s.checkpoint.clone())
        .ok_or_else(|| Error::Other(format!("{}: no split", path.display())))?;
    Ok((checkpoint, outcome))
}

/// What an evaluation unit records for the shards: the checkpoint it
/// evaluated, the temperature it fitted (the scores read calibrated
/// probabilities) and the outcome on the model's split (the reference
/// model's picks the explained images), so that no shard evaluates again.
#[derive(serde::Serialize, serde::Deserialize)]
struct Evaluation {
    checkpoint: PathBuf,
    temperature: f64,
    outcome: RunOutcome,
}

impl Evaluation {
    fn path(run: &str, model: &str) -> Result<PathBuf> {
        let id = super::unit_id(&["evaluate", model])?;
        Ok(UnitFiles::new(run, &id).out_dir().join("evaluation.json"))
    }

    /// The record of `model`'s evaluation unit (a dependency of the caller).
    fn read(run: &str, model: &str) -> Result<Evaluation> {
        let path = Self::path(run, model)?;
        let text = std::fs::read_to_string(&path).map_err(|e| Error::io(&path, e))?;
        serde_json::from_str(&text).map_err(|e| Error::Other(format!("{}: {e}", path.display())))
    }
}

/// Evaluates and calibrates a `[batch]` model as the report will (a
/// trained checkpoint keeps its temperature) and records the
/// [`Evaluation`] for the shards.
fn evaluate_unit(run: &mut Run, data: &Scan, model: &str) -> Result<()> {
    let given = spec_named(run, model)?.checkpoint.is_some();
    let positive = positive_class(run.config, &data.classes)?;
    let (checkpoint, outcome) = model_outcome(run, data, model)?;
    let m = crate::batch::evaluate_model(run, data, positive, &checkpoint, &outcome, given)?;
    let record = Evaluation {
        checkpoint,
        temperature: m.meta.temperature,
        outcome,
    };
    write_json(&Evaluation::path(&run.batch.run_name, model)?, &record)
}

/// The checkpoint (or ensemble manifest) the run explains as `model`, and
/// the temperature its evaluation fitted (`None`: the fold ensemble's own).
fn explained_model(run: &Run, model: &str) -> Result<(PathBuf, Option<f64>)> {
    let spec0 = &run.batch.models[0];
    if model == format!("{}-cv", spec0.name) {
        let (spec, recipe) = cv_recipe(spec0, &run.config.train)?;
        let (_, cfg) = spec_config(&spec, &recipe, run.batch.folds);
        let weights = &run.config.model.weights_dir;
        return Ok((crate::ensemble::ensemble_path(weights, &cfg.name), None));
    }
    let e = Evaluation::read(&run.batch.run_name, model)?;
    Ok((e.checkpoint, Some(e.temperature)))
}

/// The maps of one share of the explained images under one model, written
/// to the unit's own folder (`out/<id>/<model>/`) for the report to merge:
/// shards never write one `maps.json` together.
fn explain_shard(
    run: &mut Run,
    data: &Scan,
    unit: &Unit,
    model_name: &str,
    (shard, shards): (usize, usize),
) -> Result<()> {
    let own = Evaluation::read(&run.batch.run_name, &run.batch.models[0].name)?
        .outcome
        .splits
        .into_iter()
        .next()
        .ok_or_else(|| Error::Other("the reference model has no split".into()))?;
    let (ids, _) = run.explained(&own, data);
    let wanted: std::collections::HashSet<&str> = ids.iter().map(String::as_str).collect();
    let samples: Vec<_> = data
        .samples
        .iter()
        .filter(|s| wanted.contains(s.id.as_str()))
        .cloned()
        .collect();
    let per = samples.len().div_ceil(shards.max(1));
    let share: Vec<_> = samples.into_iter().skip(shard * per).take(per).collect();
    if share.is_empty() {
        return Ok(());
    }
    let positive = positive_class(run.config, &data.classes)?;
    let (path, temperature) = explained_model(run, model_name)?;
    let mut model = Model::load(&path, run.device)?;
    model.set_tta(run.config.predict.tta);
    model.meta.name = model_name.to_string();
    if let Some(t) = temperature {
        model.meta.temperature = t;
    }
    let cache = ImageCache::for_config(
        &share,
        model.meta.input_size,
        &run.config.data,
        crate::progress::progress_bars_allowed(),
    )?;
    let pairs = evaluate_all(&mut run.ctx(), &model, &cache)?;
    let dir = UnitFiles::new(&run.batch.run_name, &unit.id)
        .out_dir()
        .join(model_name);
    std::fs::create_dir_all(&dir).map_err(|e| Error::io(&dir, e))?;
    let methods = run.batch.methods.clone();
    let explain = run.config.explain.clone();
    let maps = explain_split(
        &mut run.ctx(),
        ExplainJob {
            model: &model,
            cache: &cache,
            rows: &pairs,
            methods: &methods,
            explain: &explain,
            positive,
            out_dir: Some(&dir),
        },
    )?;
    // The scores the report's explanation step will want, kept beside the
    // maps for it to reuse.
    let settings = run.config.scores.clone();
    let reference = run.batch.models[0].name == model_name;
    if settings.enabled && (reference || settings.all_models) {
        let masks = run.config.data.masks.clone();
        let job = ScoreJob {
            model: &model,
            path: &path,
            label: model_name,
            cache: &cache,
            samples: &maps.samples,
            data,
            explain: &explain,
            settings: &settings,
            masks: masks.as_deref(),
            store: Some(&dir),
        };
        score_images(&mut run.ctx(), &job)?;
    }
    Ok(())
}
