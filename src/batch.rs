//! `melxai --batch`: the configured pipeline, headless, into `reports/<run>/`.
//!
//! Steps: train (or load) every configured model, k-fold cross-validation of
//! the reference model, evaluation, calibration, explanations of the test
//! split, within- and cross-model agreement, figures, pane screenshots and
//! `report.md`. A failed step is recorded with its cause and the steps that do
//! not need it still run. Finished work is reused on a re-run: checkpoints
//! whose training finished, and maps already written.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicBool;
use std::time::Instant;

use serde::Serialize;
use serde_json::{json, Value};

use crate::calibrate::fit::{
    fit_cross_validated, fit_split, store_temperature, CalibrationOutcome,
};
use crate::compare::run::{compare, CompareJob, ComparisonReport};
use crate::compare::Metric;
use crate::config::Config;
pub use crate::config::{BatchConfig, ModelSpec};
use crate::data::cache::ImageCache;
use crate::data::scan::{scan, Scan};
use crate::data::split::stratified_split;
use crate::data::split::SplitName;
use crate::engine::events::{Event, EventSink, HeatmapData};
use crate::error::{Error, Result};
use crate::eval::{metrics, predict_rows, EvalRow};
use crate::explain::output::{map_path, MapFile};
use crate::metrics::roc_curve;
use crate::model::checkpoint::{meta_path, read_meta};
use crate::model::{parse_device, Arch, Classifier, EfficientNetConfig};
use crate::report::figures;
use crate::train::{train, RunOutcome, SplitOutcome, TrainConfig, TrainContext};

/// The outcome of one step.
#[derive(Debug, Clone, Serialize)]
pub struct StepRecord {
    pub step: String,
    pub ok: bool,
    pub seconds: f64,
    pub error: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct BatchSummary {
    pub run: String,
    pub report_dir: PathBuf,
    pub steps: Vec<StepRecord>,
    pub headline: Value,
}

impl BatchSummary {
    pub fn succeeded(&self) -> bool {
        self.steps.iter().all(|s| s.ok)
    }
}

struct Run<'a> {
    config: &'a Config,
    batch: BatchConfig,
    dir: PathBuf,
    sink: &'a mut dyn EventSink,
    steps: Vec<StepRecord>,
    metrics: BTreeMap<String, Value>,
    cancel: AtomicBool,
}

impl Run<'_> {
    fn step<T>(&mut self, name: &str, f: impl FnOnce(&mut Self) -> Result<T>) -> Option<T> {
        let t0 = Instant::now();
        self.sink.send(Event::Progress {
            job: 0,
            stage: name.to_string(),
            done: self.steps.len() as u64,
            total: 0,
            eta_seconds: None,
        });
        let r = f(self);
        let (ok, error) = match &r {
            Ok(_) => (true, None),
            Err(e) => (false, Some(e.to_string())),
        };
        if let Some(e) = &error {
            self.sink.send(Event::Warning {
                job: 0,
                message: format!("step '{name}' failed: {e}"),
            });
        }
        self.steps.push(StepRecord {
            step: name.into(),
            ok,
            seconds: t0.elapsed().as_secs_f64(),
            error,
        });
        r.ok()
    }
}

/// Runs the pipeline `config` describes; `name` overrides `[batch] run_name`.
pub fn run(config: &Config, name: Option<&str>, sink: &mut dyn EventSink) -> Result<BatchSummary> {
    let mut batch: BatchConfig = config.batch.clone();
    if let Some(n) = name {
        crate::config::check::file_name("--name", n)?;
        batch.run_name = n.to_string();
    }
    if batch.models.is_empty() {
        return Err(Error::Config("[batch] models is empty".into()));
    }
    for (i, m) in batch.models.iter().enumerate() {
        if batch.models[..i].iter().any(|o| o.name == m.name) {
            return Err(Error::Config(format!(
                "[batch] models: the name '{}' is used twice (names key the report files)",
                m.name
            )));
        }
    }
    let dir = PathBuf::from("reports").join(&batch.run_name);
    std::fs::create_dir_all(&dir).map_err(|e| Error::io(&dir, e))?;
    let mut run = Run {
        config,
        batch,
        dir: dir.clone(),
        sink,
        steps: Vec::new(),
        metrics: BTreeMap::new(),
        cancel: AtomicBool::new(false),
    };
    let device = parse_device(&config.device)?;
    let data = run.step("scan data set", |r| {
        let s = scan(&r.config.data.root, true)?;
        r.metrics.insert(
            "data".into(),
            json!({
                "root": s.root, "classes": s.classes, "counts": s.class_counts(),
                "skipped": s.skipped.iter().map(|k| json!({"path": k.path, "reason": k.reason})).collect::<Vec<_>>(),
            }),
        );
        Ok(s)
    });
    let Some(data) = data else {
        return finish(run);
    };
    let positive = data.class_index(&config.data.positive_class).unwrap_or(0);
    let base_train = config.train.clone();

    // 1. Models: train, or load a given checkpoint.
    let mut models: Vec<(PathBuf, RunOutcome)> = Vec::new();
    let specs = run.batch.models.clone();
    for spec in &specs {
        let got = match &spec.checkpoint {
            Some(ck) => run.step(&format!("load {}", spec.name), |r| {
                load_spec(r, &data, spec, ck, &base_train, device)
            }),
            None => run.step(&format!("train {}", spec.name), |r| {
                train_spec(r, &data, spec, &base_train, positive, device, 0)
            }),
        };
        if let Some(t) = got {
            models.push(t);
        }
    }

    // 2. k-fold cross-validation of the reference model.
    let folds = run.batch.folds;
    let mut cv_outcome = None;
    if folds >= 2 {
        let spec = specs[0].clone();
        cv_outcome = run.step(
            &format!("{folds}-fold cross-validation of {}", spec.name),
            |r| {
                let (spec, recipe) = cv_recipe(&spec, &base_train)?;
                let (_, o) = train_spec(r, &data, &spec, &recipe, positive, device, folds)?;
                Ok(o)
            },
        );
        if let Some(o) = &cv_outcome {
            run.step("calibrate out-of-fold predictions", |r| {
                let folds: Vec<Vec<EvalRow>> = o.splits.iter().map(|s| s.test.clone()).collect();
                let c = fit_cross_validated(&folds, positive)?;
                for s in &o.splits {
                    store_temperature(&s.checkpoint, c.fit.temperature)?;
                }
                reliability_figure(&r.dir.join(format!("reliability_{}_cv.png", spec.name)), &c)?;
                if let Some(cv) = &o.cross_validation {
                    let pooled = &cv.pooled;
                    r.metrics.insert(
                        "cross_validation".into(),
                        json!({
                            "model": spec.name, "folds": cv.folds, "pooled": pooled, "summary": cv.summary,
                            "pooled_auroc_ci95": [cv.pooled_auroc_ci.low, cv.pooled_auroc_ci.high],
                            "pooled_balanced_accuracy_ci95": [cv.pooled_balanced_accuracy_ci.low, cv.pooled_balanced_accuracy_ci.high],
                            "calibration": c,
                        }),
                    );
                    roc_figure(&r.dir.join(format!("roc_{}_cv.png", spec.name)), &cv.out_of_fold, positive, &format!("{} out-of-fold", spec.name))?;
                    confusion_figure(&r.dir.join(format!("confusion_{}_cv.png", spec.name)), pooled, &data.classes, positive, "pooled out-of-fold")?;
                    write_predictions(&r.dir.join(format!("predictions_{}_cv.csv", spec.name)), &cv.out_of_fold, &data.classes, positive, c.fit.temperature)?;
                }
                Ok(())
            });
        }
    }

    // 3. Evaluation and calibration of each model on its own split.
    let mut loaded: Vec<(PathBuf, Classifier)> = Vec::new();
    for (path, outcome) in &models {
        let name = outcome.name.clone();
        // A given checkpoint is the user's file: its temperature is applied in
        // this run only, never written back.
        let given = specs
            .iter()
            .any(|s| s.name == name && s.checkpoint.is_some());
        let model = run.step(&format!("evaluate and calibrate {name}"), |r| {
            let split = &outcome.splits[0];
            let val: Vec<&EvalRow> = split.val.iter().collect();
            let test: Vec<&EvalRow> = split.test.iter().collect();
            let cal = fit_split(&val, &test, positive)?;
            if !given {
                store_temperature(path, cal.fit.temperature)?;
            }
            reliability_figure(&r.dir.join(format!("reliability_{name}.png")), &cal)?;
            let m = metrics(&split.test, positive, cal.fit.temperature)?;
            roc_figure(&r.dir.join(format!("roc_{name}.png")), &split.test, positive, &format!("{name} test"))?;
            confusion_figure(&r.dir.join(format!("confusion_{name}.png")), &m, &data.classes, positive, &format!("{name} test"))?;
            write_predictions(&r.dir.join(format!("predictions_{name}.csv")), &split.test, &data.classes, positive, cal.fit.temperature)?;
            let history: Vec<_> = outcome.splits.iter().flat_map(|s| s.history.clone()).collect();
            if !history.is_empty() {
                training_figure(&r.dir.join(format!("training_{name}.png")), &history)?;
            }
            r.metrics.insert(format!("model:{name}"), json!({ "checkpoint": path, "given_checkpoint": given, "best_epoch": split.best_epoch, "test": m, "calibration": cal, "history": split.history }));
            let mut model = Classifier::from_checkpoint(path, device)?;
            model.meta.name = name.clone();
            model.meta.temperature = cal.fit.temperature;
            Ok(model)
        });
        if let Some(m) = model {
            loaded.push((path.clone(), m));
        }
    }

    // 4. Explanations and agreement on the reference model's split.
    let mut comparison: Option<ComparisonReport> = None;
    if !loaded.is_empty() {
        comparison = run.step("explain and compare", |r| {
            // The reference model's own split (recorded, or drawn for a given
            // checkpoint that records none).
            let reference = models
                .iter()
                .find(|(_, o)| o.name == loaded[0].1.meta.name)
                .map(|(_, o)| &o.splits[0])
                .ok_or_else(|| {
                    Error::Other("the reference model's evaluation is missing".into())
                })?;
            let ids_of = |rows: &[EvalRow]| rows.iter().map(|e| e.id.clone()).collect();
            let ids = match r.batch.split {
                SplitName::Test => ids_of(&reference.test),
                SplitName::Val => ids_of(&reference.val),
                // Training images: every sample in neither held-out part.
                SplitName::Train => {
                    let held: std::collections::HashSet<&str> = reference
                        .val
                        .iter()
                        .chain(&reference.test)
                        .map(|e| e.id.as_str())
                        .collect();
                    data.samples
                        .iter()
                        .filter(|s| !held.contains(s.id.as_str()))
                        .map(|s| s.id.clone())
                        .collect()
                }
                SplitName::All => data.samples.iter().map(|s| s.id.clone()).collect(),
            };
            let methods = r.batch.methods.clone();
            let explain = r.config.explain.clone();
            let out_dir = r.dir.join("maps");
            let report = compare(
                &loaded,
                CompareJob {
                    data: &data,
                    sample_ids: ids,
                    split: r.batch.split.to_string(),
                    methods,
                    explain,
                    positive,
                    out_dir: out_dir.clone(),
                    sink: &mut *r.sink,
                    cancel: &r.cancel,
                    job: 0,
                },
            )?;
            agreement_figures(&r.dir, &report)?;
            grid_figures(&r.dir, &report, &data, &loaded)?;
            r.metrics
                .insert("agreement".into(), agreement_headline(&report));
            Ok(report)
        });
    }

    // 5. Headless screenshots of the TUI panes.
    if run.batch.screenshots {
        let cv = cv_outcome.clone();
        let first = models.first().cloned();
        let cmp = comparison.clone();
        run.step("pane screenshots", |r| {
            screenshots(
                &r.dir,
                &data,
                positive,
                first.as_ref().map(|m| &m.1),
                cv.as_ref(),
                cmp.as_ref(),
                &r.metrics,
            )
        });
    }
    finish(run)
}

fn train_spec(
    r: &mut Run,
    data: &Scan,
    spec: &ModelSpec,
    base: &TrainConfig,
    positive: usize,
    device: tch::Device,
    folds: usize,
) -> Result<(PathBuf, RunOutcome)> {
    let mut cfg = base.clone();
    cfg.name = if folds >= 2 {
        format!("{}-cv", spec.name)
    } else {
        spec.name.clone()
    };
    cfg.arch = spec.arch.clone();
    cfg.seed = spec.seed;
    cfg.folds = folds;
    let arch: Arch = cfg.arch.parse()?;
    let size = cfg
        .input_size
        .unwrap_or(EfficientNetConfig::new(arch, 2).resolution);
    let cache = ImageCache::build(&data.samples, [size, size])?;
    let mut ctx = TrainContext {
        cache: &cache,
        class_names: data.classes.clone(),
        positive,
        weights_dir: r.config.model.weights_dir.clone(),
        imagenet_dir: r.config.model.weights_dir.clone(),
        device,
        sink: &mut *r.sink,
        cancel: &r.cancel,
        job: 0,
        resume: true,
    };
    let outcome = train(&cfg, &mut ctx)?;
    let path = outcome.splits[0].checkpoint.clone();
    let file = r.dir.join(format!("training_{}.json", cfg.name));
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
fn load_spec(
    r: &mut Run,
    data: &Scan,
    spec: &ModelSpec,
    checkpoint: &Path,
    base: &TrainConfig,
    device: tch::Device,
) -> Result<(PathBuf, RunOutcome)> {
    let meta = read_meta(checkpoint)?;
    if meta.class_names != data.classes {
        return Err(Error::Checkpoint {
            path: meta_path(checkpoint),
            message: format!(
                "its classes {:?} do not match the data set's {:?} ({})",
                meta.class_names,
                data.classes,
                data.root.display()
            ),
        });
    }
    let index_of = |ids: &[String], part: &str| -> Result<Vec<usize>> {
        let mut rows = Vec::with_capacity(ids.len());
        let mut missing = Vec::new();
        for id in ids {
            match data.samples.iter().position(|s| &s.id == id) {
                Some(i) => rows.push(i),
                None => missing.push(id.as_str()),
            }
        }
        if !missing.is_empty() {
            return Err(Error::Checkpoint {
                path: meta_path(checkpoint),
                message: format!(
                    "{} of its recorded {part} images are not in {} (first: {}); is this the data set it was trained on?",
                    missing.len(),
                    data.root.display(),
                    missing[0]
                ),
            });
        }
        Ok(rows)
    };
    let (val, test) = match &meta.split {
        Some(rec) => (index_of(&rec.val, "val")?, index_of(&rec.test, "test")?),
        None => {
            let labels: Vec<usize> = data.samples.iter().map(|s| s.label).collect();
            let s = stratified_split(&labels, base.test_fraction, base.val_fraction, spec.seed)?;
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
        return Err(Error::Config(format!(
            "model '{}': the split of {} has {} validation and {} test images; calibration needs both",
            spec.name,
            checkpoint.display(),
            val.len(),
            test.len()
        )));
    }
    let model = Classifier::from_checkpoint(checkpoint, device)?;
    let samples: Vec<_> = val
        .iter()
        .chain(&test)
        .map(|&i| data.samples[i].clone())
        .collect();
    let cache = ImageCache::build(&samples, meta.input_size)?;
    let val_rows: Vec<usize> = (0..val.len()).collect();
    let test_rows: Vec<usize> = (val.len()..samples.len()).collect();
    let outcome = RunOutcome {
        name: spec.name.clone(),
        config: TrainConfig::from_table(&meta.training).unwrap_or_else(|_| base.clone()),
        splits: vec![SplitOutcome {
            checkpoint: checkpoint.to_path_buf(),
            fold: None,
            best_epoch: meta.progress.as_ref().map_or(0, |p| p.best_epoch),
            history: Vec::new(),
            val: predict_rows(&model, &cache, &val_rows, 32)?,
            test: predict_rows(&model, &cache, &test_rows, 32)?,
            test_metrics: None,
        }],
        cross_validation: None,
    };
    Ok((checkpoint.to_path_buf(), outcome))
}

/// The recipe cross-validation trains for the reference model: `[train]`,
/// or for a given checkpoint its recorded training configuration (falling
/// back to `[train]`) on its architecture.
fn cv_recipe(spec: &ModelSpec, base: &TrainConfig) -> Result<(ModelSpec, TrainConfig)> {
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

fn fig(e: figures::FigureError) -> Error {
    Error::Other(format!("figure: {e}"))
}

fn training_figure(path: &Path, history: &[crate::engine::events::EpochSummary]) -> Result<()> {
    let points: Vec<figures::EpochPoint> = history
        .iter()
        .map(|h| figures::EpochPoint {
            epoch: h.epoch,
            train_loss: h.train_loss,
            val_loss: h.val_loss,
            val_auroc: h.val_auroc,
            val_balanced_accuracy: h.val_balanced_accuracy,
            fold: h.fold.map(|f| f.0),
        })
        .collect();
    figures::training_curves(path, &points).map_err(fig)
}

fn roc_figure(path: &Path, rows: &[EvalRow], positive: usize, label: &str) -> Result<()> {
    let labels: Vec<usize> = rows.iter().map(|r| r.label).collect();
    let scores: Vec<f64> = rows
        .iter()
        .map(|r| r.probabilities(1.0)[positive])
        .collect();
    let curve = roc_curve(&labels, &scores, positive).map_err(|e| Error::Other(e.to_string()))?;
    let auc = crate::metrics::auroc(&labels, &scores, positive).unwrap_or(f64::NAN);
    let series = figures::RocSeries {
        label: label.into(),
        points: curve.iter().map(|p| (p.0, p.1)).collect(),
        auc,
    };
    figures::roc_curve(path, &[series]).map_err(fig)
}

fn confusion_figure(
    path: &Path,
    m: &crate::metrics::BinaryMetrics,
    classes: &[String],
    positive: usize,
    title: &str,
) -> Result<()> {
    let c = &m.confusion;
    let pos = classes
        .get(positive)
        .map(String::as_str)
        .unwrap_or("positive");
    let neg = classes
        .iter()
        .enumerate()
        .find(|(i, _)| *i != positive)
        .map(|(_, n)| n.as_str())
        .unwrap_or("negative");
    // Rows: actual [negative, positive]; columns: predicted [negative, positive].
    figures::confusion_matrix(
        path,
        [neg, pos],
        [[c.tn as u64, c.fp as u64], [c.fn_ as u64, c.tp as u64]],
        title,
    )
    .map_err(fig)
}

fn bins(report: &crate::calibrate::CalibrationReport) -> Vec<figures::Bin> {
    report
        .bins
        .iter()
        .map(|b| figures::Bin {
            lower: b.lower,
            upper: b.upper,
            mean_confidence: b.mean_confidence,
            accuracy: b.accuracy,
            count: b.count,
        })
        .collect()
}

fn reliability_figure(path: &Path, c: &CalibrationOutcome) -> Result<()> {
    let r = &c.results[0];
    figures::reliability_diagram(
        path,
        &bins(&r.before),
        Some(&bins(&r.after)),
        r.before.ece,
        Some(r.after.ece),
    )
    .map_err(fig)
}

fn write_predictions(
    path: &Path,
    rows: &[EvalRow],
    classes: &[String],
    positive: usize,
    temperature: f64,
) -> Result<()> {
    let mut out = String::from(
        "sample,label,predicted,probability_calibrated,probability_uncalibrated,correct\n",
    );
    for r in rows {
        let p = r.to_prediction(positive, temperature, "");
        out.push_str(&format!(
            "{},{},{},{:.6},{:.6},{}\n",
            r.id,
            classes.get(r.label).cloned().unwrap_or_default(),
            classes.get(p.predicted).cloned().unwrap_or_default(),
            p.probability,
            p.probability_uncalibrated,
            p.correct()
        ));
    }
    crate::files::write_bytes(path, out.as_bytes())
}

fn agreement_figures(dir: &Path, report: &ComparisonReport) -> Result<()> {
    for m in &report.models {
        for metric in Metric::SHOWN.map(Metric::name) {
            let means: Vec<Vec<f64>> = m.within.overall[metric]
                .iter()
                .map(|row| row.iter().map(|s| s.mean).collect())
                .collect();
            let range = if metric == Metric::Jaccard.name() {
                (0.0, 1.0)
            } else {
                (-1.0, 1.0)
            };
            figures::similarity_heatmap(
                &dir.join(format!("agreement_{}_{metric}.png", m.model)),
                &report
                    .methods
                    .iter()
                    .map(|m| m.key().to_string())
                    .collect::<Vec<_>>(),
                &means,
                &format!(
                    "{} — mean {metric} over {} images",
                    m.model,
                    m.within.per_sample.len()
                ),
                range,
            )
            .map_err(fig)?;
        }
    }
    Ok(())
}

fn grid_figures(
    dir: &Path,
    report: &ComparisonReport,
    data: &Scan,
    models: &[(PathBuf, Classifier)],
) -> Result<()> {
    for (_, model) in models {
        let name = &model.meta.name;
        let map_dir = dir.join("maps").join(name);
        let mut rows = Vec::new();
        for id in report.sample_ids.iter().take(8) {
            let Some(sample) = data.samples.iter().find(|s| &s.id == id) else {
                continue;
            };
            let img = crate::data::image::decode_rgb(&sample.path)?;
            let size = model.meta.input_size;
            let img = crate::data::image::resize(&img, size[0] as u32, size[1] as u32);
            let stem = crate::explain::split::stem(id);
            let mut maps = Vec::new();
            for method in &report.methods {
                let path = map_path(&map_dir, &stem, method.key(), MapFile::Heatmap);
                let (values, height, width) = crate::data::npy::read_map(&path)?;
                maps.push(figures::GridMap {
                    method: method.key().to_string(),
                    values,
                    width,
                    height,
                });
            }
            rows.push(figures::GridRow {
                title: id.clone(),
                image: img,
                maps,
            });
        }
        if !rows.is_empty() {
            figures::explanation_grid(&dir.join(format!("explanations_{name}.png")), &rows)
                .map_err(fig)?;
        }
    }
    Ok(())
}

fn agreement_headline(report: &ComparisonReport) -> Value {
    let mut within = serde_json::Map::new();
    for m in &report.models {
        let mut pairs = serde_json::Map::new();
        for i in 0..report.methods.len() {
            for j in (i + 1)..report.methods.len() {
                let mut metrics = serde_json::Map::new();
                for metric in Metric::SHOWN.map(Metric::name) {
                    metrics.insert(
                        metric.into(),
                        serde_json::to_value(&m.within.overall[metric][i][j])
                            .unwrap_or(Value::Null),
                    );
                }
                pairs.insert(
                    format!("{}~{}", report.methods[i], report.methods[j]),
                    Value::Object(metrics),
                );
            }
        }
        within.insert(m.model.clone(), Value::Object(pairs));
    }
    let cross: Vec<Value> = report
        .cross
        .iter()
        .map(|c| {
            json!({
                "models": [c.model_a, c.model_b],
                "prediction_agreement": c.prediction_agreement,
                "mean_abs_probability_difference": c.mean_abs_probability_difference,
                "per_method": c.per_method,
            })
        })
        .collect();
    json!({ "images": report.sample_ids.len(), "methods": report.methods, "within": within, "cross": cross })
}

fn screenshots(
    dir: &Path,
    data: &Scan,
    positive: usize,
    reference: Option<&RunOutcome>,
    cv: Option<&RunOutcome>,
    comparison: Option<&ComparisonReport>,
    metrics: &BTreeMap<String, Value>,
) -> Result<()> {
    use crate::tui::screenshot::export_pane;
    use crate::tui::{AppState, Pane};
    let mut state = AppState::new(
        data.samples
            .iter()
            .map(|s| (s.id.clone(), s.label))
            .collect(),
        data.classes.clone(),
    );
    if let Some(o) = reference.or(cv) {
        for h in o.splits.iter().flat_map(|s| s.history.clone()) {
            state.apply_event(Event::Epoch { job: 0, summary: h });
        }
        let rows = o.splits[0]
            .test
            .iter()
            .map(|r| r.to_prediction(positive, 1.0, "test"))
            .collect();
        state.apply_event(Event::Predictions {
            job: 0,
            model: o.name.clone(),
            rows,
        });
        if let Some(cal) = metrics
            .get(&format!("model:{}", o.name))
            .and_then(|m| m.get("calibration"))
        {
            let r = &cal["results"][0];
            state.apply_event(Event::Calibration {
                job: 0,
                model: o.name.clone(),
                temperature: cal["fit"]["temperature"].as_f64().unwrap_or(1.0),
                before: r["before"].clone(),
                after: r["after"].clone(),
            });
        }
    }
    if let Some(c) = comparison {
        if let Some(m) = c.models.first() {
            for metric in Metric::SHOWN.map(Metric::name) {
                let means: Vec<Vec<f64>> = m.within.overall[metric]
                    .iter()
                    .map(|row| row.iter().map(|s| s.mean).collect())
                    .collect();
                let methods = c.methods.iter().map(|m| m.key().to_string()).collect();
                state.set_split_matrix(metric, methods, means);
            }
            if let Some(first) = c.sample_ids.first() {
                let stem = crate::explain::split::stem(first);
                for method in &c.methods {
                    let model_dir = dir.join("maps").join(&m.model);
                    let p = map_path(&model_dir, &stem, method.key(), MapFile::Heatmap);
                    if let Ok((values, height, width)) = crate::data::npy::read_map(&p) {
                        state.apply_event(Event::Heatmap {
                            job: 0,
                            model: m.model.clone(),
                            map: HeatmapData {
                                sample_id: first.clone(),
                                method: method.key().to_string(),
                                height,
                                width,
                                values,
                                target: 0,
                                delta: None,
                            },
                        });
                    }
                }
            }
        }
    }
    let screens = dir.join("screens");
    for pane in Pane::ALL {
        let name = format!("{pane:?}").to_lowercase();
        export_pane(&state, pane, 120, 36, &screens.join(format!("{name}.svg")))
            .map_err(|e| Error::Other(format!("screenshot {name}: {e}")))?;
    }
    Ok(())
}

fn finish(run: Run) -> Result<BatchSummary> {
    let headline = json!({
        "cross_validation": run.metrics.get("cross_validation").map(|c| json!({
            "auroc": c["pooled"]["auroc"], "auroc_ci95": c["pooled_auroc_ci95"],
            "balanced_accuracy": c["pooled"]["balanced_accuracy"],
            "ece_before": c["calibration"]["results"][0]["before"]["ece"],
            "ece_after": c["calibration"]["results"][0]["after"]["ece"],
        })),
        "agreement": run.metrics.get("agreement"),
    });
    let summary = BatchSummary {
        run: run.batch.run_name.clone(),
        report_dir: run.dir.clone(),
        steps: run.steps.clone(),
        headline,
    };
    let all = json!({
        "run": run.batch.run_name,
        "melxai_version": env!("CARGO_PKG_VERSION"),
        "libtorch": "2.13.0",
        "config": run.config,
        "batch": run.batch,
        "steps": run.steps,
        "metrics": run.metrics,
    });
    let path = run.dir.join("metrics.json");
    crate::files::write_bytes(
        &path,
        serde_json::to_string_pretty(&all)
            .map_err(|e| Error::Other(e.to_string()))?
            .as_bytes(),
    )?;
    crate::report::markdown::write(&run.dir, &all)?;
    Ok(summary)
}
