//! The pipeline runner: what the engine's jobs do, through the library jobs
//! ([`crate::jobs`]). It owns every model and tensor (lent to one blocking
//! task at a time) and keeps the data set scan, image caches and loaded
//! models between jobs.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use super::requests::Request;
use super::JobRunner;
use crate::config::Config;
use crate::data::cache::ImageCache;
use crate::data::scan::Scan;
use crate::ensemble::read_meta;
use crate::ensemble::Model;
use crate::error::{Error, Result};
use crate::explain::{ExplainConfig, Method};
use crate::jobs::calibrate::{calibrate, CalibrateJob, CalibrationData};
use crate::jobs::evaluate::{evaluate, EvaluateJob};
use crate::jobs::explain::{explain_split, ExplainJob};
use crate::jobs::train::{train, TrainJob};
use crate::jobs::{positive_class, scan_data, JobContext};
use crate::model::checkpoint;
use crate::model::parse_device;
use crate::progress::{CancelToken, Event, EventSink, JobId};
use crate::verdict::conformal::ConformalPredictor;
use crate::verdict::EvalRow;

/// Runs [`Request`]s; keeps what is costly to rebuild between jobs.
pub struct PipelineRunner {
    config: Config,
    data: Option<Scan>,
    caches: HashMap<[i64; 2], ImageCache>,
    /// Keyed by the checkpoint's tensor file.
    models: HashMap<PathBuf, Model>,
    /// The files each cached model was loaded from, as they were then: a
    /// checkpoint rewritten meanwhile (trained or calibrated from another
    /// terminal) is loaded again instead of served stale.
    stamps: HashMap<PathBuf, Option<FileStamp>>,
    /// The last predictions of every sample, keyed like `models`, with the
    /// stamp of the files they came from. `r` in the TUI evaluates and then
    /// calibrates the same model; without this it predicted everything twice
    /// (about 75 s each for a TTA ensemble of five on 2 CPU cores).
    predictions: Option<(PathBuf, FileStamp, ModelPredictions)>,
}

/// Inode, size and modification time of a checkpoint's two files (an atomic
/// rewrite changes the inode).
type FileStamp = [(u64, u64, std::time::SystemTime); 2];

fn stamp(path: &Path) -> Option<FileStamp> {
    use std::os::unix::fs::MetadataExt;
    let one = |p: PathBuf| {
        let m = std::fs::metadata(p).ok()?;
        Some((m.ino(), m.len(), m.modified().ok()?))
    };
    // An ensemble is its manifest (which names its members' tensor hashes).
    if crate::ensemble::is_ensemble_path(path) {
        let m = one(path.to_path_buf())?;
        return Some([m, m]);
    }
    Some([
        one(checkpoint::tensors_path(path))?,
        one(checkpoint::meta_path(path))?,
    ])
}

/// Predictions of every sample with the model that made them.
#[derive(Clone)]
struct ModelPredictions {
    rows: Vec<EvalRow>,
    /// Sample id -> `train`, `val` or `test` as the checkpoint records it.
    split_of: HashMap<String, String>,
    temperature: f64,
    name: String,
    operating_point: Option<crate::verdict::OperatingPoint>,
    conformal: Option<ConformalPredictor>,
    /// Predicted with test-time augmentation (`[predict] tta`).
    tta: bool,
    /// For the fold ensemble of a cross-validation: each member's own
    /// predictions of the images it held out ([`Model::out_of_fold_rows`]).
    out_of_fold: Option<Vec<Vec<EvalRow>>>,
}

/// For a fold ensemble with conformal thresholds: each training image's
/// cross-conformal set, from its fold model's prediction and thresholds
/// recalibrated on the other folds' held-out predictions (the ensemble's own
/// output on an image its other members trained on would make the set
/// overconfident). Empty otherwise.
fn held_out_sets(p: &ModelPredictions) -> Result<HashMap<String, Vec<usize>>> {
    let (Some(c), Some(folds)) = (&p.conformal, &p.out_of_fold) else {
        return Ok(HashMap::new());
    };
    let rows: Vec<&EvalRow> = folds.iter().flatten().collect();
    let fold_of: Vec<usize> = folds
        .iter()
        .enumerate()
        .flat_map(|(f, rows)| std::iter::repeat_n(f, rows.len()))
        .collect();
    let probs: Vec<Vec<f64>> = rows
        .iter()
        .map(|r| r.probabilities(p.temperature))
        .collect();
    let labels: Vec<usize> = rows.iter().map(|r| r.label).collect();
    let sets = crate::evaluate::conformal::cross_conformal_sets(
        &probs,
        &labels,
        &fold_of,
        folds.len(),
        c.settings,
        c.seed,
    )?;
    Ok(rows.iter().map(|r| r.id.clone()).zip(sets).collect())
}

/// The decision curve (1–60 %) of the predictions the calibration reports
/// on: a fold ensemble's out-of-fold rows, else the test split, at
/// `temperature`; `None` without both classes.
fn held_out_decision_curve(
    p: &ModelPredictions,
    positive: usize,
    temperature: f64,
) -> Option<crate::evaluate::decision_curve::DecisionCurve> {
    use crate::evaluate::decision_curve::{decision_curve, default_thresholds};
    let rows: Vec<&EvalRow> = match &p.out_of_fold {
        Some(folds) => folds.iter().flatten().collect(),
        None => p
            .rows
            .iter()
            .filter(|r| p.split_of.get(&r.id).map(String::as_str) == Some("test"))
            .collect(),
    };
    let probs: Vec<f64> = rows
        .iter()
        .map(|r| r.probabilities(temperature).get(positive).copied())
        .collect::<Option<_>>()?;
    let y: Vec<usize> = rows
        .iter()
        .map(|r| usize::from(r.label == positive))
        .collect();
    if !y.contains(&0) || !y.contains(&1) {
        return None;
    }
    decision_curve(&probs, &y, &default_thresholds(), None).ok()
}

impl JobRunner for PipelineRunner {
    type Job = Request;

    fn run(
        &mut self,
        job: JobId,
        req: Request,
        sink: &mut dyn EventSink,
        cancel: &CancelToken,
    ) -> Result<String> {
        let config = self.config.clone();
        let mut ctx = JobContext {
            config: &config,
            device: parse_device(&config.device)?,
            sink,
            cancel,
            job,
        };
        let ctx = &mut ctx;
        match req {
            Request::Train {
                name,
                epochs,
                excluded,
            } => self.train(ctx, name, epochs, &excluded),
            Request::Evaluate { checkpoint } => self.evaluate(ctx, &checkpoint),
            Request::Calibrate { checkpoint } => self.calibrate(ctx, &checkpoint),
            Request::Explain {
                checkpoint,
                sample_ids,
                methods,
            } => self.explain(ctx, &checkpoint, &sample_ids, &methods),
            Request::Cancel | Request::Shutdown => Ok(String::new()),
        }
    }

    fn recover(&mut self) {
        self.data = None;
        self.caches.clear();
        self.models.clear();
        self.predictions = None;
    }
}

impl PipelineRunner {
    pub fn new(config: Config) -> Self {
        PipelineRunner {
            config,
            data: None,
            caches: HashMap::new(),
            models: HashMap::new(),
            stamps: HashMap::new(),
            predictions: None,
        }
    }

    /// Scans the data set once, caches images at `size` and loads the model
    /// at `path` once; returns them together.
    fn load(
        &mut self,
        ctx: &mut JobContext,
        size: [i64; 2],
        path: &Path,
    ) -> Result<(&Scan, &ImageCache, &Model)> {
        if self.data.is_none() {
            self.data = Some(scan_data(ctx)?);
        }
        let data = self
            .data
            .as_ref()
            .ok_or_else(|| Error::Other("data set not scanned".into()))?;
        if let std::collections::hash_map::Entry::Vacant(slot) = self.caches.entry(size) {
            ctx.cancel.check()?;
            slot.insert(ImageCache::for_config(
                &data.samples,
                size,
                &ctx.config.data,
                false,
            )?);
        }
        let key = checkpoint::tensors_path(path);
        let now = stamp(path);
        if self.stamps.get(&key) != Some(&now) {
            self.models.remove(&key);
        }
        if !self.models.contains_key(&key) {
            ctx.cancel.check()?;
            let mut model = Model::load(path, ctx.device)?;
            crate::jobs::check_classes(path, &model.meta.class_names, data)?;
            model.set_tta(ctx.config.predict.tta);
            self.models.insert(key.clone(), model);
            self.stamps.insert(key.clone(), now);
        }
        match (self.caches.get(&size), self.models.get(&key)) {
            (Some(cache), Some(model)) => Ok((data, cache, model)),
            _ => Err(Error::Other("engine caches lost their entries".into())),
        }
    }

    fn train(
        &mut self,
        ctx: &mut JobContext,
        name: Option<String>,
        epochs: Option<usize>,
        excluded: &[String],
    ) -> Result<String> {
        let mut config = ctx.config.train.clone();
        if let Some(n) = name {
            config.name = n;
        }
        if let Some(e) = epochs {
            config.epochs = e;
        }
        if self.data.is_none() {
            self.data = Some(scan_data(ctx)?);
        }
        let data = self
            .data
            .as_ref()
            .ok_or_else(|| Error::Other("data set not scanned".into()))?;
        let trained = train(
            ctx,
            TrainJob {
                data,
                config,
                excluded,
                resume: true,
                replace_calibrated: false,
                only_fold: None,
                config_file: None,
            },
        )?;
        // A retrained checkpoint replaces any cached copy.
        for s in &trained.outcome.splits {
            self.models.remove(&checkpoint::tensors_path(&s.checkpoint));
        }
        if let Some(e) = &trained.ensemble {
            self.models.remove(&checkpoint::tensors_path(e));
        }
        let written = trained
            .ensemble
            .clone()
            .unwrap_or_else(|| trained.outcome.splits[0].checkpoint.clone());
        ctx.sink.send(Event::ModelWritten {
            job: ctx.job,
            path: written,
        });
        let s = &trained.outcome.splits[0];
        let test = s
            .test_metrics
            .as_ref()
            .map(|m| {
                format!(
                    " test AUROC {:.3}, balanced accuracy {:.3}",
                    m.auroc, m.balanced_accuracy
                )
            })
            .unwrap_or_default();
        Ok(format!(
            "trained {} ({}){test}",
            s.checkpoint.display(),
            s.checkpoint_epochs()
        ))
    }

    /// Every sample of the data set predicted by the checkpoint at `path`.
    /// Every sample's raw logits, reused while the model's files are
    /// unchanged (a calibration rewrites them, so it is never served stale).
    fn predict_all(&mut self, ctx: &mut JobContext, path: &Path) -> Result<ModelPredictions> {
        let key = checkpoint::tensors_path(path);
        let now = stamp(path);
        if let (Some((k, then, p)), Some(now)) = (&self.predictions, now) {
            if *k == key && *then == now {
                return Ok(p.clone());
            }
        }
        let p = self.predict_all_uncached(ctx, path)?;
        self.predictions = now.map(|now| (key, now, p.clone()));
        Ok(p)
    }

    fn predict_all_uncached(
        &mut self,
        ctx: &mut JobContext,
        path: &Path,
    ) -> Result<ModelPredictions> {
        let meta = read_meta(path)?;
        let (_, cache, model) = self.load(ctx, meta.input_size, path)?;
        let operating_point = model.operating_point().copied();
        let conformal = model.conformal().cloned();
        let rows: Vec<usize> = (0..cache.len()).collect();
        let preds = evaluate(
            ctx,
            EvaluateJob {
                model,
                cache,
                rows: &rows,
            },
        )?;
        let mut split_of = HashMap::new();
        if let Some(rec) = &meta.split {
            for (part, ids) in [
                ("train", &rec.train),
                ("val", &rec.val),
                ("test", &rec.test),
            ] {
                for id in ids {
                    split_of.insert(id.clone(), part.to_string());
                }
            }
        }
        Ok(ModelPredictions {
            tta: model.tta,
            out_of_fold: model.out_of_fold_rows(&preds),
            rows: preds,
            split_of,
            temperature: model.meta.temperature,
            name: meta.name,
            operating_point,
            conformal,
        })
    }

    fn positive(&self, ctx: &JobContext) -> Result<usize> {
        let classes = self.data.as_ref().map(|d| d.classes.as_slice());
        positive_class(ctx.config, classes.unwrap_or_default())
    }

    fn evaluate(&mut self, ctx: &mut JobContext, path: &Path) -> Result<String> {
        let p = self.predict_all(ctx, path)?;
        let positive = self.positive(ctx)?;
        let held_out_sets = held_out_sets(&p)?;
        let rows: Vec<_> = p
            .rows
            .iter()
            .map(|r| {
                let split = p.split_of.get(&r.id).map(String::as_str);
                let mut row = r.to_prediction(positive, p.temperature, split.unwrap_or("unseen"));
                row.decision = p.operating_point.map(|op| op.decide(row.probability));
                row.conformal_set = held_out_sets.get(&r.id).cloned().or_else(|| {
                    let c = p.conformal.as_ref()?;
                    Some(c.set(&r.probabilities(p.temperature)))
                });
                row
            })
            .collect();
        let n = rows.len();
        ctx.sink.send(Event::Predictions {
            job: ctx.job,
            model: p.name,
            rows,
        });
        let tta = if p.tta {
            " (TTA: 8 flips/rotations)"
        } else {
            ""
        };
        Ok(format!(
            "predicted {n} samples with {}{tta}",
            path.display()
        ))
    }

    /// Fits the temperature: for the fold ensemble of a cross-validation,
    /// cross-fitted on its members' out-of-fold predictions as at training
    /// (its recorded split holds no image every member left out); otherwise
    /// on the checkpoint's validation split, reported on its test split.
    fn calibrate(&mut self, ctx: &mut JobContext, path: &Path) -> Result<String> {
        let p = self.predict_all(ctx, path)?;
        let positive = self.positive(ctx)?;
        let pick = |part: &str| -> Vec<&EvalRow> {
            p.rows
                .iter()
                .filter(|r| p.split_of.get(&r.id).map(String::as_str) == Some(part))
                .collect()
        };
        let data = match &p.out_of_fold {
            Some(folds) => CalibrationData::CrossValidated { folds },
            None => CalibrationData::Split {
                val: pick("val"),
                test: pick("test"),
            },
        };
        let outcome = calibrate(
            ctx,
            CalibrateJob {
                data,
                positive,
                store_in: vec![path.to_path_buf()],
            },
        )?;
        if let Some(m) = self.models.get_mut(&checkpoint::tensors_path(path)) {
            m.meta.temperature = outcome.fit.temperature;
        }
        let shown = &outcome.results[0];
        let mut after = shown.side_json(true)?;
        if let Some(o) = after.as_object_mut() {
            let curve = held_out_decision_curve(&p, positive, outcome.fit.temperature);
            if let Some(curve) = curve.and_then(|c| serde_json::to_value(c).ok()) {
                o.insert("decision_curve".into(), curve);
            }
            if let Some(op) = p.operating_point {
                o.insert("operating_threshold".into(), op.threshold.into());
            }
        }
        ctx.sink.send(Event::Calibration {
            job: ctx.job,
            model: p.name,
            temperature: outcome.fit.temperature,
            before: shown.side_json(false)?,
            after,
        });
        Ok(format!(
            "temperature {:.3} fitted on {} {} predictions; {}: ECE {:.3} -> {:.3}",
            outcome.fit.temperature,
            outcome.fitted_n,
            match outcome.fitted_on.as_str() {
                "val" => "validation",
                "out_of_fold" => "out-of-fold",
                other => other,
            },
            shown.evaluated_on.replace('_', "-"),
            shown.before.ece,
            shown.after.ece
        ))
    }

    fn explain(
        &mut self,
        ctx: &mut JobContext,
        path: &Path,
        ids: &[String],
        methods: &[String],
    ) -> Result<String> {
        let methods: Vec<Method> = methods.iter().map(|m| m.parse()).collect::<Result<_>>()?;
        let explain_config: ExplainConfig = ctx.config.explain.clone();
        let meta = read_meta(path)?;
        let positive = {
            self.load(ctx, meta.input_size, path)?;
            self.positive(ctx)?
        };
        let (_, cache, model) = self.load(ctx, meta.input_size, path)?;
        let rows = ids
            .iter()
            .map(|id| {
                cache
                    .index_of(id)
                    .ok_or_else(|| Error::Dataset(format!("sample '{id}' not in the data set")))
            })
            .collect::<Result<Vec<usize>>>()?;
        let preds = evaluate(
            ctx,
            EvaluateJob {
                model,
                cache,
                rows: &rows,
            },
        )?;
        let pairs: Vec<(usize, EvalRow)> = rows.into_iter().zip(preds).collect();
        let explained = explain_split(
            ctx,
            ExplainJob {
                model,
                cache,
                rows: &pairs,
                methods: &methods,
                explain: &explain_config,
                positive,
                out_dir: None,
            },
        )?;
        let maps: usize = explained.samples.iter().map(|s| s.maps.len()).sum();
        // One image (the TUI's `e`): its maps scored, for the scorecard.
        if let ([sample], true) = (explained.samples.as_slice(), ctx.config.scores.enabled) {
            let scores = crate::jobs::scores::score_sample(
                model,
                path,
                cache,
                sample,
                &explain_config,
                &ctx.config.scores,
                None,
            )?;
            ctx.sink.send(Event::Scores {
                job: ctx.job,
                sample_id: sample.id.clone(),
                methods: scores.into_iter().map(|(m, s)| (m, s.pairs())).collect(),
            });
        }
        Ok(format!("{maps} maps for {} samples", ids.len()))
    }
}
