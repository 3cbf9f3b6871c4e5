//! `--batch` as units: the same pipeline cut into independent pieces with
//! stable ids and explicit dependencies, so that several processes, GPUs or
//! a Slurm cluster can run it and a crash costs one unit, not the run.
//!
//! The units are one training per (model, seed, fold), the fold ensemble
//! written once its folds are, one explanation shard per (model, range of
//! images) and the report, which merges the shards' maps and runs the
//! in-process pipeline over the finished work: every training and map is
//! then reused (checkpoints by their finished state, maps by their content
//! key), so the report is the one a single process writes.
//!
//! A unit's outputs are keyed by what it depends on: its config sections,
//! the data set's fingerprint and its dependencies' keys. A unit is done when
//! `units/<id>.done.json` holds the current key; a changed config makes it
//! (and everything downstream) due again.

mod execute;
mod merge;
mod progress_file;
pub mod slurm;
mod state;
pub mod watch;
mod worker;

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

use super::batch_config;
use super::models::spec_config;
use super::repetitions::repetition_plans;
use crate::config::Config;
use crate::data::scan::Scan;
use crate::error::{Error, Result};

pub use execute::{run_unit, UnitRun};
pub use progress_file::{read_progress, UnitProgress};
pub use state::{unit_states, UnitFiles, UnitState, UnitStatus};
pub use worker::{run_local, worker, LocalOptions, WorkerOptions, WorkerShard, EXIT_LOCKED};

/// What one unit does.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum UnitKind {
    /// A `[batch]` model on its own split (`repetition` and `fold` none),
    /// or fold `fold` of repetition `repetition` of the reference model's
    /// cross-validation.
    Train {
        model: String,
        #[serde(skip_serializing_if = "Option::is_none")]
        repetition: Option<usize>,
        #[serde(skip_serializing_if = "Option::is_none")]
        fold: Option<usize>,
    },
    /// A `[batch]` model evaluated and calibrated on its split: its
    /// temperature, which the scores of its maps read.
    Evaluate { model: String },
    /// The first repetition's fold ensemble (`<model>-cv.ensemble.toml`),
    /// written from its finished folds so that it can be explained.
    Ensemble { model: String },
    /// The maps of `model` (a `[batch]` name, or the fold ensemble
    /// `<name>-cv`) for share `shard` of `shards` of the explained images.
    Explain {
        model: String,
        shard: usize,
        shards: usize,
    },
    /// Merges the maps, then evaluation, calibration, agreement, figures and
    /// report.md over the finished units.
    Report,
}

/// One unit of a run's plan.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Unit {
    pub id: String,
    #[serde(flatten)]
    pub kind: UnitKind,
    pub deps: Vec<String>,
    /// Digest of what the unit's outputs depend on.
    pub key: String,
    /// Longest chain of dependencies before it (0: none): Slurm submits one
    /// job array per stage.
    pub stage: usize,
}

/// Every unit of one run, in an order where dependencies come first.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Plan {
    pub run: String,
    pub units: Vec<Unit>,
}

impl Plan {
    pub fn unit(&self, id: &str) -> Result<&Unit> {
        self.units.iter().find(|u| u.id == id).ok_or_else(|| {
            let ids: Vec<&str> = self.units.iter().map(|u| u.id.as_str()).collect();
            Error::Config(format!(
                "run '{}' has no unit '{id}'; its units: {}",
                self.run,
                ids.join(", ")
            ))
        })
    }

    /// The number of stages (Slurm job arrays).
    pub fn stages(&self) -> usize {
        self.units.iter().map(|u| u.stage + 1).max().unwrap_or(0)
    }
}

/// The units of the run `config` describes (`name` overriding `[batch]
/// run_name`) over the data set `data`.
pub fn plan(config: &Config, name: Option<&str>, data: &Scan) -> Result<Plan> {
    let batch = batch_config(config, name)?;
    let device = crate::model::parse_device(&config.device)?;
    let fingerprint = data_fingerprint(data);
    let base = &config.train;
    let mut units: Vec<Unit> = Vec::new();
    let train_sections = |recipe: &crate::train::TrainConfig| {
        json!({
            "data": config.data, "model": config.model, "recipe": recipe,
            "data_set": fingerprint,
        })
    };
    // The [batch] models trained on their own split.
    let mut own_unit: BTreeMap<String, String> = BTreeMap::new();
    for spec in batch.models.iter().filter(|s| s.checkpoint.is_none()) {
        let id = unit_id(&["train", &spec.name])?;
        let (_, recipe) = spec_config(spec, base, 0);
        let kind = UnitKind::Train {
            model: spec.name.clone(),
            repetition: None,
            fold: None,
        };
        push_unit(
            &mut units,
            id.clone(),
            kind,
            Vec::new(),
            train_sections(&recipe),
        );
        own_unit.insert(spec.name.clone(), id);
    }
    // Their evaluation and calibration (the temperature their scores read).
    let sections = json!({
        "data": config.data, "model": config.model, "train": config.train,
        "predict": config.predict, "bootstrap_samples": batch.bootstrap_samples,
    });
    for spec in &batch.models {
        let id = unit_id(&["evaluate", &spec.name])?;
        let deps: Vec<String> = own_unit.get(&spec.name).into_iter().cloned().collect();
        let kind = UnitKind::Evaluate {
            model: spec.name.clone(),
        };
        push_unit(&mut units, id.clone(), kind, deps, sections.clone());
        own_unit.insert(spec.name.clone(), id);
    }
    // The reference model's cross-validation: every repetition's folds.
    let spec0 = &batch.models[0];
    let folds = batch.folds;
    let mut first_folds = Vec::new();
    if folds >= 2 {
        let reps = repetition_plans(
            batch.cv_repeats.resolve(device),
            spec0.seed,
            &batch.cv_extra_input_sizes,
        );
        for (r, rep) in reps.iter().enumerate() {
            let (spec, recipe) = rep.recipe(spec0, base)?;
            let (_, cfg) = spec_config(&spec, &recipe, folds);
            for k in 0..folds {
                let id = unit_id(&["train", &cfg.name, &format!("fold{k}")])?;
                let kind = UnitKind::Train {
                    model: spec0.name.clone(),
                    repetition: Some(r),
                    fold: Some(k),
                };
                let mut sections = train_sections(&cfg);
                sections["fold"] = json!(k);
                push_unit(&mut units, id.clone(), kind, Vec::new(), sections);
                if r == 0 {
                    first_folds.push(id);
                }
            }
        }
    }
    let ensemble_name = format!("{}-cv", spec0.name);
    let explain_ensemble = folds >= 2 && batch.explain_ensemble;
    if explain_ensemble {
        let id = unit_id(&["ensemble", &ensemble_name])?;
        let kind = UnitKind::Ensemble {
            model: spec0.name.clone(),
        };
        let sections = json!({ "predict": config.predict, "target_sensitivity": base.target_sensitivity, "combine": base.combine });
        push_unit(&mut units, id.clone(), kind, first_folds.clone(), sections);
        own_unit.insert(ensemble_name.clone(), id);
    }
    // Explanation shards of every explained model.
    let mut explained: Vec<String> = batch.models.iter().map(|m| m.name.clone()).collect();
    if explain_ensemble {
        explained.push(ensemble_name);
    }
    explain_units(&mut units, config, &batch, &own_unit, &explained)?;
    let all: Vec<String> = units.iter().map(|u| u.id.clone()).collect();
    let whole = serde_json::to_value(config).map_err(|e| Error::Other(e.to_string()))?;
    push_unit(
        &mut units,
        "report".into(),
        UnitKind::Report,
        all,
        json!({ "config": whole, "run": batch.run_name }),
    );
    Ok(Plan {
        run: batch.run_name,
        units,
    })
}

/// Adds a unit, its key and stage from its sections and dependencies
/// (which come before it).
fn push_unit(
    units: &mut Vec<Unit>,
    id: String,
    kind: UnitKind,
    deps: Vec<String>,
    sections: Value,
) {
    let mut h = Sha256::new();
    h.update(json!({ "kind": kind, "sections": sections }).to_string());
    let mut stage = 0;
    for d in &deps {
        let dep = units
            .iter()
            .find(|u| &u.id == d)
            .expect("dependencies come first");
        h.update(dep.key.as_bytes());
        stage = stage.max(dep.stage + 1);
    }
    let key = h.finalize().iter().map(|b| format!("{b:02x}")).collect();
    units.push(Unit {
        id,
        kind,
        deps,
        key,
        stage,
    });
}

/// The explanation shards of every model in `explained`, each after the
/// reference model's evaluation (its split picks the images) and the
/// model's own (`own_unit`: its evaluation, or the fold ensemble's unit).
fn explain_units(
    units: &mut Vec<Unit>,
    config: &Config,
    batch: &crate::config::BatchConfig,
    own_unit: &BTreeMap<String, String>,
    explained: &[String],
) -> Result<()> {
    let sections = json!({
        "explain": config.explain, "methods": batch.methods, "split": batch.split,
        "explain_images": batch.explain_images, "predict": config.predict,
    });
    let reference = &batch.models[0].name;
    for model in explained {
        for shard in 0..batch.explain_shards {
            let part = format!("{}of{}", shard + 1, batch.explain_shards);
            let id = unit_id(&["explain", model, &part])?;
            let mut deps: Vec<String> = own_unit.get(reference).into_iter().cloned().collect();
            if let Some(own) = own_unit.get(model).filter(|o| !deps.contains(o)) {
                deps.push(own.clone());
            }
            let kind = UnitKind::Explain {
                model: model.clone(),
                shard,
                shards: batch.explain_shards,
            };
            push_unit(units, id, kind, deps, sections.clone());
        }
    }
    Ok(())
}

/// `parts` joined by `-`, refused unless a plain file name (ids name the
/// unit's files).
fn unit_id(parts: &[&str]) -> Result<String> {
    let id = parts.join("-");
    crate::validation::check::file_name("unit id", &id)
        .map_err(|e| Error::Config(format!("{e} (made from the [batch] model names)")))?;
    Ok(id)
}

/// Digest of the data set as the units see it: every sample's id, label,
/// group and file size. A changed, added or removed image changes it.
fn data_fingerprint(data: &Scan) -> String {
    let mut h = Sha256::new();
    h.update(json!(data.classes).to_string());
    for s in &data.samples {
        let size = std::fs::metadata(&s.path).map(|m| m.len()).unwrap_or(0);
        h.update(format!("{}\t{}\t{:?}\t{size}\n", s.id, s.label, s.group));
    }
    h.finalize().iter().map(|b| format!("{b:02x}")).collect()
}

/// The plan of a run as written at its start (`units/plan.json`), with how
/// it was started, so that `status`, `resume` and workers agree on it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PlanFile {
    /// The config file, absolute.
    pub config: std::path::PathBuf,
    /// `--device` when given.
    pub device: Option<String>,
    /// `local` or `slurm`.
    pub executor: String,
    /// Local workers, and the device of each (`--devices`).
    pub workers: usize,
    pub devices: Vec<String>,
    pub plan: Plan,
}

impl PlanFile {
    pub fn path(run: &str) -> std::path::PathBuf {
        state::units_dir(run).join("plan.json")
    }

    pub fn write(&self) -> Result<()> {
        let text = serde_json::to_string_pretty(self).map_err(|e| Error::Other(e.to_string()))?;
        crate::files::write_bytes(&Self::path(&self.plan.run), text.as_bytes())
    }

    pub fn read(run: &str) -> Result<PlanFile> {
        let path = Self::path(run);
        let text = std::fs::read_to_string(&path).map_err(|e| {
            Error::Config(format!(
                "run '{run}' has no unit plan ({}: {e}); was it started with --workers or --executor slurm?",
                path.display()
            ))
        })?;
        serde_json::from_str(&text).map_err(|e| Error::Other(format!("{}: {e}", path.display())))
    }
}
