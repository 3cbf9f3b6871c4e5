//! `melxai --batch`: the configured pipeline, headless, into `reports/<run>/`.
//!
//! Steps: train (or load) every configured model, k-fold cross-validation of
//! the reference model (repeated `[batch] cv_repeats` times with new seeds,
//! then single models against their out-of-fold ensemble with the operating
//! point), evaluation, calibration, explanations of the test
//! split, within- and cross-model agreement, figures, pane screenshots and
//! `report.md`. A failed step is recorded with its cause and the steps that do
//! not need it still run. Finished work is reused on a re-run: checkpoints
//! whose training finished, and maps already written.

mod breakdown;
mod explained;
mod figures;
mod models;
mod repetitions;
pub mod units;

use std::path::PathBuf;
use std::time::Instant;

use serde::Serialize;
use serde_json::{json, Value};

use self::figures::{
    agreement_figures, agreement_report, confusion_figure, decision_curve_figure, grid_figures,
    reliability_figure, risk_coverage_figure, roc_figure, scores_report, training_figure,
    write_conformal_sets, write_decision_curve, write_predictions, write_risk_coverage,
};
use self::models::{cv_recipe, load_spec, train_spec};
use self::repetitions::repetition_plans;
use crate::compare::run::ComparisonReport;
use crate::config::Config;
pub use crate::config::{BatchConfig, ModelSpec};
use crate::data::scan::Scan;
use crate::ensemble::Model;
use crate::error::{Error, Result};
use crate::evaluate::metrics;
use crate::evaluate::repeated_cv::{RepeatedCvOptions, Repetition};
use crate::jobs::calibrate::{calibrate, CalibrateJob, CalibrationData};
use crate::jobs::compare::{compare, CompareJob};
use crate::jobs::{positive_class, scan_data, JobContext};
use crate::metrics::BootstrapOptions;
use crate::model::parse_device;
use crate::progress::{CancelToken, Event, EventSink};
use crate::report::run::{
    CrossValidationReport, DataSummary, EnsembleReport, Figure, ModelReport, RunMetrics, RunReport,
    RunResults, ScreenshotFn, StepRecord, WithoutTta,
};
use crate::train::{RunOutcome, TrainConfig};
use crate::verdict::EvalRow;

#[derive(Debug, Clone, Serialize)]
pub struct BatchSummary {
    pub run: String,
    /// Stopped early on request (Ctrl-C): the steps listed are those that ran.
    pub cancelled: bool,
    pub report_dir: PathBuf,
    pub steps: Vec<StepRecord>,
    pub headline: Value,
}

impl BatchSummary {
    pub fn succeeded(&self) -> bool {
        !self.cancelled && self.steps.iter().all(|s| s.ok)
    }
}

/// One batch run in progress: where it writes, what it has recorded.
struct Run<'a> {
    config: &'a Config,
    batch: BatchConfig,
    dir: PathBuf,
    sink: &'a mut dyn EventSink,
    steps: Vec<StepRecord>,
    metrics: RunMetrics,
    screens: Vec<Figure>,
    device: tch::Device,
    cancel: &'a CancelToken,
}

impl<'a> Run<'a> {
    /// A run of `config` into `reports/<run>/` (`name` overriding `[batch]
    /// run_name`), nothing recorded yet.
    fn new(
        config: &'a Config,
        name: Option<&str>,
        sink: &'a mut dyn EventSink,
        cancel: &'a CancelToken,
    ) -> Result<Run<'a>> {
        let batch = batch_config(config, name)?;
        let dir = run_dir(&batch.run_name);
        std::fs::create_dir_all(&dir).map_err(|e| Error::io(&dir, e))?;
        let device = parse_device(&config.device)?;
        if device == tch::Device::Cpu && batch.cpu_threads > 0 {
            tch::set_num_threads(batch.cpu_threads as i32);
        }
        Ok(Run {
            config,
            batch,
            dir,
            sink,
            steps: Vec::new(),
            metrics: RunMetrics::default(),
            screens: Vec::new(),
            device,
            cancel,
        })
    }

    /// The context the library jobs of a step run in.
    fn ctx(&mut self) -> JobContext<'_> {
        JobContext {
            config: self.config,
            device: self.device,
            sink: &mut *self.sink,
            cancel: self.cancel,
            job: 0,
        }
    }

    /// The ids `--batch` explains for the reference model's split `own`,
    /// and how many images that split holds before `[batch] explain_images`.
    fn explained(&self, own: &crate::train::SplitOutcome, data: &Scan) -> (Vec<String>, usize) {
        let all_ids = explained::explained_ids(self.batch.split, own, data);
        let held_out = all_ids.len();
        let seed = self.batch.models[0].seed;
        let ids = explained::sampled(all_ids, own, data, self.batch.explain_images, seed);
        (ids, held_out)
    }

    /// Runs one step unless the run was cancelled; a failed step is recorded
    /// with its cause (a cancelled one as "cancelled").
    fn step<T>(&mut self, name: &str, f: impl FnOnce(&mut Self) -> Result<T>) -> Option<T> {
        if self.cancel.is_cancelled() {
            return None;
        }
        let t0 = Instant::now();
        self.sink.send(Event::Progress {
            job: 0,
            stage: name.to_string(),
            done: self.steps.len() as u64,
            total: 0,
            eta_seconds: None,
        });
        let r = f(self);
        let error = r.as_ref().err().map(|e| e.to_string());
        if let Some(e) = &error {
            self.sink.send(Event::Warning {
                job: 0,
                message: format!("step '{name}' failed: {e}"),
            });
        }
        self.steps.push(StepRecord {
            step: name.into(),
            ok: error.is_none(),
            seconds: t0.elapsed().as_secs_f64(),
            error,
        });
        r.ok()
    }
}

/// Runs the pipeline `config` describes; `name` overrides `[batch] run_name`.
/// Cancelling `cancel` stops the run at the next step boundary (training at
/// its next batch); what finished is kept and written to the report.
/// `screens`, when given and `[batch] screenshots` is on, renders the pane
/// screenshots from the run's typed results (the TUI does; this module
/// never draws).
pub fn run(
    config: &Config,
    name: Option<&str>,
    sink: &mut dyn EventSink,
    cancel: &CancelToken,
    screens: Option<&mut ScreenshotFn>,
) -> Result<BatchSummary> {
    let mut run = Run::new(config, name, sink, cancel)?;
    let data = run.step("scan data set", |r| {
        let s = scan_data(&mut r.ctx())?;
        let positive = positive_class(r.config, &s.classes)?;
        r.metrics.data = Some(DataSummary {
            root: s.root.clone(),
            classes: s.classes.clone(),
            counts: s.class_counts(),
            skipped: s.skipped.clone(),
            groups: s.group_count(),
        });
        Ok((s, positive))
    });
    let Some((data, positive)) = data else {
        return finish(run);
    };
    let base_train = config.train.clone();
    let models = model_steps(&mut run, &data, &base_train);
    let cv = cross_validation_steps(&mut run, &data, positive, &base_train);
    if let Some(first) = &cv {
        repeated_cv_steps(&mut run, &data, positive, &base_train, first);
    }
    let mut loaded = evaluation_steps(&mut run, &data, positive, &models);
    if let Some(cv) = cv
        .as_ref()
        .filter(|_| run.batch.explain_ensemble && !loaded.is_empty())
    {
        loaded.extend(fold_ensemble_step(&mut run, cv));
    }
    let comparison = compare_step(&mut run, &data, positive, &models, &loaded);
    if let (true, Some(render)) = (run.batch.screenshots, screens) {
        let reference = models.first().map(|m| &m.1);
        run.step("pane screenshots", |r| {
            let results = RunResults {
                dir: &r.dir,
                data: &data,
                positive,
                reference,
                cross_validation: cv.as_ref(),
                metrics: &r.metrics,
                comparison: comparison.as_ref(),
            };
            r.screens = render(&results)?;
            Ok(())
        });
    }
    finish(run)
}

/// Where the run called `name` writes: `reports/<name>/`.
pub fn run_dir(name: &str) -> PathBuf {
    PathBuf::from("reports").join(name)
}

/// Step 1: every configured model: trained, or a given checkpoint loaded.
fn model_steps(run: &mut Run, data: &Scan, base: &TrainConfig) -> Vec<(PathBuf, RunOutcome)> {
    let mut models = Vec::new();
    for spec in run.batch.models.clone() {
        let got = match &spec.checkpoint {
            Some(ck) => run.step(&format!("load {}", spec.name), |r| {
                load_spec(r, data, &spec, ck, base)
            }),
            None => run.step(&format!("train {}", spec.name), |r| {
                train_spec(r, data, &spec, base, 0)
            }),
        };
        models.extend(got);
    }
    models
}

/// Step 2: k-fold cross-validation of the reference model, and its calibration
/// on the out-of-fold predictions.
fn cross_validation_steps(
    run: &mut Run,
    data: &Scan,
    positive: usize,
    base: &TrainConfig,
) -> Option<RunOutcome> {
    let folds = run.batch.folds;
    if folds < 2 {
        return None;
    }
    let spec = run.batch.models[0].clone();
    let outcome = run.step(
        &format!("{folds}-fold cross-validation of {}", spec.name),
        |r| {
            let (spec, recipe) = cv_recipe(&spec, base)?;
            let (_, o) = train_spec(r, data, &spec, &recipe, folds)?;
            Ok(o)
        },
    )?;
    run.step("calibrate out-of-fold predictions", |r| {
        calibrate_out_of_fold(r, data, positive, &spec.name, &outcome)
    });
    Some(outcome)
}

/// The out-of-fold rows of a k-fold run, one list per fold.
fn repetition_of(o: &RunOutcome) -> Result<Repetition> {
    Ok(Repetition {
        seed: o.config.seed,
        input_size: o.config.resolved_input_size()?,
        folds: o.splits.iter().map(|s| s.test.clone()).collect(),
    })
}

/// The same repetition's plain out-of-fold rows when its held-out
/// predictions were TTA ones (`[train] tta`).
fn plain_repetition_of(o: &RunOutcome, rep: &Repetition) -> Option<Repetition> {
    Some(Repetition {
        folds: o
            .splits
            .iter()
            .map(|s| s.test_without_tta.clone())
            .collect::<Option<_>>()?,
        ..*rep
    })
}

/// Step 2b: `[batch] cv_repeats - 1` more k-fold runs of the reference
/// model's recipe, seeds `seed + i`, each also at every
/// `[batch] cv_extra_input_sizes` (names from [`RepetitionPlan::name`]; the
/// first repetition is `first`, the step-2 run, reused), then the single
/// models against their out-of-fold ensemble with the operating point
/// ([`crate::repeated_cv`]). A failed repetition skips the evaluation.
fn repeated_cv_steps(
    run: &mut Run,
    data: &Scan,
    positive: usize,
    base: &TrainConfig,
    first: &RunOutcome,
) {
    let folds = run.batch.folds;
    let seeds = run.batch.cv_repeats.resolve(run.device);
    let spec0 = run.batch.models[0].clone();
    let plans = repetition_plans(seeds, spec0.seed, &run.batch.cv_extra_input_sizes);
    let repeats = plans.len();
    let mut outcomes = Vec::with_capacity(repeats - 1);
    for (n, plan) in plans.iter().enumerate().skip(1) {
        let size = plan
            .extra_size
            .map_or_else(String::new, |s| format!(", {s} px"));
        let got = run.step(
            &format!(
                "{folds}-fold cross-validation of {} (repetition {}/{repeats}, seed {}{size})",
                spec0.name,
                n + 1,
                plan.seed
            ),
            |r| {
                let (spec, recipe) = plan.recipe(&spec0, base)?;
                Ok(train_spec(r, data, &spec, &recipe, folds)?.1)
            },
        );
        match got {
            Some(o) => outcomes.push(o),
            None => return,
        }
    }
    run.step(
        &format!("evaluate {repeats} x {folds}-fold: single models vs ensemble, operating point"),
        |r| {
            let opts = RepeatedCvOptions {
                positive,
                target_sensitivity: r.config.train.target_sensitivity,
                bootstrap: BootstrapOptions::new(r.batch.bootstrap_samples, spec0.seed),
                conformal: r.config.predict.conformal,
            };
            let all: Vec<&RunOutcome> = std::iter::once(first).chain(&outcomes).collect();
            let reps = all
                .iter()
                .map(|o| repetition_of(o))
                .collect::<Result<Vec<_>>>()?;
            // Grouped data sets: the headline intervals resample groups.
            let group_of = breakdown::group_of(data);
            let out = crate::evaluate::repeated_cv::evaluate_grouped(&reps, &opts, group_of.as_ref())?;
            let plain: Option<Vec<Repetition>> = all
                .iter()
                .zip(&reps)
                .map(|(o, rep)| plain_repetition_of(o, rep))
                .collect();
            let without_tta = match plain {
                Some(p) => Some(WithoutTta::of(
                    &crate::evaluate::repeated_cv::evaluate(&p, &opts)?.report,
                )),
                None => None,
            };
            let name = &spec0.name;
            let file = format!("risk_coverage_{name}_ensemble.csv");
            write_risk_coverage(&r.dir.join(&file), &out.report.ensemble.risk_coverage)?;
            let png = format!("risk_coverage_{name}_ensemble.png");
            risk_coverage_figure(
                &r.dir.join(&png),
                &out.report.ensemble.risk_coverage,
                &format!("{name} ensemble of {repeats}, out-of-fold"),
            )?;
            let decisions = &out.report.ensemble.decisions;
            if let Some(c) = &decisions.conformal {
                let ids: Vec<&str> = out.provenance.iter().map(|p| p.id.as_str()).collect();
                write_conformal_sets(
                    &r.dir.join(format!("conformal_sets_{name}_ensemble.csv")),
                    &ids,
                    &reps,
                    c,
                    &data.classes,
                    positive,
                )?;
            }
            write_decision_curve(&r.dir.join(format!("decision_curve_{name}_ensemble.csv")), decisions)?;
            let dca = format!("decision_curve_{name}_ensemble.png");
            decision_curve_figure(
                &r.dir.join(&dca),
                decisions,
                &format!("{name} ensemble of {repeats}, out-of-fold"),
            )?;
            let figures = vec![Figure::new(
                png,
                "Risk–coverage (least certain referred first), ensemble out-of-fold",
            )];
            let extra = breakdown::ensemble_breakdown(r, data, positive, name, repeats, &out, &opts)?;
            let mut report = EnsembleReport::new(name, out.report, figures);
            report.breakdown = extra;
            report.without_tta = without_tta;
            report.decision_figure = Some(Figure::new(
                dca,
                "Decision curve: net benefit of referring by the calibrated probability, ensemble out-of-fold",
            ));
            r.metrics.ensemble = Some(report);
            Ok(())
        },
    );
}

fn calibrate_out_of_fold(
    r: &mut Run,
    data: &Scan,
    positive: usize,
    name: &str,
    o: &RunOutcome,
) -> Result<()> {
    let folds: Vec<Vec<EvalRow>> = o.splits.iter().map(|s| s.test.clone()).collect();
    let c = calibrate(
        &mut r.ctx(),
        CalibrateJob {
            data: CalibrationData::CrossValidated { folds: &folds },
            positive,
            store_in: o.splits.iter().map(|s| s.checkpoint.clone()).collect(),
        },
    )?;
    let mut figures = Vec::new();
    let mut add = |file: String, caption: &str| {
        let path = r.dir.join(&file);
        figures.push(Figure::new(file, caption));
        path
    };
    let reliability = add(
        format!("reliability_{name}_cv.png"),
        "Reliability before/after temperature scaling",
    );
    reliability_figure(&reliability, &c)?;
    let Some(cv) = &o.cross_validation else {
        return Ok(());
    };
    let roc = add(format!("roc_{name}_cv.png"), "ROC, pooled out-of-fold");
    roc_figure(
        &roc,
        &cv.out_of_fold,
        positive,
        &format!("{name} out-of-fold"),
    )?;
    let confusion = add(
        format!("confusion_{name}_cv.png"),
        "Confusion matrix, pooled out-of-fold",
    );
    confusion_figure(
        &confusion,
        &cv.pooled,
        &data.classes,
        positive,
        "pooled out-of-fold",
    )?;
    let history: Vec<_> = o.splits.iter().flat_map(|s| s.history.clone()).collect();
    if !history.is_empty() {
        let curves = add(
            format!("training_{name}_cv.png"),
            "Training curves per fold",
        );
        training_figure(&curves, &history)?;
    }
    let predictions = r.dir.join(format!("predictions_{name}_cv.csv"));
    write_predictions(
        &predictions,
        &cv.out_of_fold,
        &data.classes,
        positive,
        c.fit.temperature,
    )?;
    r.metrics.cross_validation = Some(CrossValidationReport {
        model: name.to_string(),
        folds: cv.folds,
        pooled: cv.pooled,
        summary: cv.summary,
        pooled_auroc_ci95: [cv.pooled_auroc_ci.low, cv.pooled_auroc_ci.high],
        pooled_balanced_accuracy_ci95: [
            cv.pooled_balanced_accuracy_ci.low,
            cv.pooled_balanced_accuracy_ci.high,
        ],
        calibration: c,
        figures,
    });
    Ok(())
}

/// Step 3: each model evaluated and calibrated on its own split; returns the
/// models loaded for explaining (calibrated, named as in `[batch]`).
fn evaluation_steps(
    run: &mut Run,
    data: &Scan,
    positive: usize,
    models: &[(PathBuf, RunOutcome)],
) -> Vec<(PathBuf, Model)> {
    let mut loaded = Vec::new();
    for (path, outcome) in models {
        let name = outcome.name.clone();
        // A given checkpoint is the user's file: its temperature is applied in
        // this run only, never written back.
        let given = run
            .batch
            .models
            .iter()
            .any(|s| s.name == name && s.checkpoint.is_some());
        let model = run.step(&format!("evaluate and calibrate {name}"), |r| {
            evaluate_model(r, data, positive, path, outcome, given)
        });
        if let Some(m) = model {
            loaded.push((path.clone(), m));
        }
    }
    loaded
}

/// Evaluates and calibrates one model on its split (also a unit's work:
/// `units::execute`).
fn evaluate_model(
    r: &mut Run,
    data: &Scan,
    positive: usize,
    path: &std::path::Path,
    outcome: &RunOutcome,
    given: bool,
) -> Result<Model> {
    let name = &outcome.name;
    let split = &outcome.splits[0];
    let val: Vec<&EvalRow> = split.val.iter().collect();
    let test: Vec<&EvalRow> = split.test.iter().collect();
    let cal = calibrate(
        &mut r.ctx(),
        CalibrateJob {
            data: CalibrationData::Split { val, test },
            positive,
            store_in: if given {
                Vec::new()
            } else {
                vec![path.to_path_buf()]
            },
        },
    )?;
    let m = metrics(&split.test, positive, cal.fit.temperature)?;
    let mut figures = Vec::new();
    let history: Vec<_> = outcome
        .splits
        .iter()
        .flat_map(|s| s.history.clone())
        .collect();
    if !history.is_empty() {
        let file = format!("training_{name}.png");
        training_figure(&r.dir.join(&file), &history)?;
        figures.push(Figure::new(file, "Training curves"));
    }
    let file = format!("roc_{name}.png");
    roc_figure(
        &r.dir.join(&file),
        &split.test,
        positive,
        &format!("{name} test"),
    )?;
    figures.push(Figure::new(file, "ROC (test split)"));
    let file = format!("confusion_{name}.png");
    confusion_figure(
        &r.dir.join(&file),
        &m,
        &data.classes,
        positive,
        &format!("{name} test"),
    )?;
    figures.push(Figure::new(file, "Confusion matrix (test split)"));
    let file = format!("reliability_{name}.png");
    reliability_figure(&r.dir.join(&file), &cal)?;
    figures.push(Figure::new(file, "Reliability diagram"));
    let predictions = r.dir.join(format!("predictions_{name}.csv"));
    write_predictions(
        &predictions,
        &split.test,
        &data.classes,
        positive,
        cal.fit.temperature,
    )?;
    let test_breakdown = breakdown::model_breakdown(r, data, positive, name, &split.test, &cal)?;
    let mut model = Model::load(path, r.device)?;
    model.set_tta(r.config.predict.tta);
    model.meta.name = name.clone();
    model.meta.temperature = cal.fit.temperature;
    r.metrics.models.insert(
        name.clone(),
        ModelReport {
            checkpoint: path.to_path_buf(),
            given_checkpoint: given,
            best_epoch: split.best_epoch,
            averaged_from: split.averaged_from,
            test: m,
            calibration: cal,
            history: split.history.clone(),
            figures,
            breakdown: test_breakdown,
            split: breakdown::split_summary(data, split),
        },
    );
    Ok(model)
}

/// Step 3b: the cross-validation's fold ensemble (`<name>-cv.ensemble.toml`,
/// its temperature cross-fitted out of fold), explained in step 4 beside the
/// single models through its combined output, with its members' agreement.
fn fold_ensemble_step(run: &mut Run, cv: &RunOutcome) -> Option<(PathBuf, Model)> {
    // The manifest is named for the trained files, the model as in `[batch]`.
    let path = crate::ensemble::ensemble_path(&run.config.model.weights_dir, &cv.config.name);
    run.step(&format!("load the fold ensemble {}", cv.name), |r| {
        let mut model = Model::load(&path, r.device)?;
        model.set_tta(r.config.predict.tta);
        model.meta.name = cv.name.clone();
        Ok((path.clone(), model))
    })
}

/// Step 4: explanations and agreement on the reference model's split.
fn compare_step(
    run: &mut Run,
    data: &Scan,
    positive: usize,
    models: &[(PathBuf, RunOutcome)],
    loaded: &[(PathBuf, Model)],
) -> Option<ComparisonReport> {
    let reference = loaded.first()?;
    run.step("explain and compare", |r| {
        // The reference model's own split (recorded, or drawn for a given
        // checkpoint that records none).
        let own = models
            .iter()
            .find(|(_, o)| o.name == reference.1.meta.name)
            .map(|(_, o)| &o.splits[0])
            .ok_or_else(|| Error::Other("the reference model's evaluation is missing".into()))?;
        let (sample_ids, held_out) = r.explained(own, data);
        let job = CompareJob {
            data,
            models: loaded,
            sample_ids,
            split: r.batch.split.to_string(),
            methods: r.batch.methods.clone(),
            explain: r.config.explain.clone(),
            positive,
            out_dir: r.dir.join("maps"),
            scores: r.config.scores.enabled.then(|| r.config.scores.clone()),
            masks: r.config.data.masks.clone(),
        };
        let report = compare(&mut r.ctx(), job)?;
        let shown = agreement_figures(&r.dir, &report)?;
        for (model, figure) in grid_figures(&r.dir, &report, data, loaded)? {
            if let Some(m) = r.metrics.models.get_mut(&model) {
                m.figures.push(figure);
            }
        }
        let mut agreement = agreement_report(&report, shown);
        agreement.of_images = held_out;
        r.metrics.agreement = Some(agreement);
        for card in &report.scores {
            let scored = scores_report(&r.dir, card)?;
            r.metrics.scores.push(scored);
        }
        Ok(report)
    })
}

/// `[batch]` of `config`, `name` overriding `run_name`; refuses an empty
/// model list and a model name used twice (names key the report files).
fn batch_config(config: &Config, name: Option<&str>) -> Result<BatchConfig> {
    let mut batch = config.batch.clone();
    if let Some(n) = name {
        crate::validation::check::file_name("--name", n)?;
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
    Ok(batch)
}

/// Writes `metrics.json` and `report.md` with what the run recorded.
fn finish(run: Run) -> Result<BatchSummary> {
    let headline = json!({
        "cross_validation": run.metrics.cross_validation.as_ref().map(|c| json!({
            "auroc": c.pooled.auroc, "auroc_ci95": c.pooled_auroc_ci95,
            "balanced_accuracy": c.pooled.balanced_accuracy,
            "ece_before": c.calibration.results.first().map(|r| r.before.ece),
            "ece_after": c.calibration.results.first().map(|r| r.after.ece),
        })),
        "ensemble": run.metrics.ensemble.as_ref().map(|e| json!({
            "members": e.members, "auroc": e.auroc, "auroc_ci": e.auroc_ci,
            "ece": e.ece, "aurc": e.aurc, "seed_abs_diff": e.seed_abs_diff,
            "operating_point": {
                "threshold": e.operating_point.threshold,
                "sensitivity": e.operating_point.sensitivity,
                "specificity": e.operating_point.specificity,
                "cross_fitted_specificity": e.operating_point.cross_fitted_specificity,
            },
        })),
        "agreement": run.metrics.agreement,
    });
    let report = RunReport {
        run: run.batch.run_name.clone(),
        melxai_version: env!("CARGO_PKG_VERSION").into(),
        libtorch: crate::device::libtorch_build().0.into(),
        device: crate::device::describe(run.device),
        config: serde_json::to_value(run.config).map_err(|e| Error::Other(e.to_string()))?,
        batch: serde_json::to_value(&run.batch).map_err(|e| Error::Other(e.to_string()))?,
        steps: run.steps.clone(),
        metrics: run.metrics,
        screens: run.screens,
    };
    let path = run.dir.join("metrics.json");
    let text = serde_json::to_string_pretty(&report).map_err(|e| Error::Other(e.to_string()))?;
    crate::files::write_bytes(&path, text.as_bytes())?;
    crate::report::markdown::write(&run.dir, &report)?;
    Ok(BatchSummary {
        run: report.run,
        cancelled: run.cancel.is_cancelled(),
        report_dir: run.dir,
        steps: report.steps,
        headline,
    })
}
