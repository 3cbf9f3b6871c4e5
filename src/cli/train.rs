//! `melxai train` and `melxai eval`.

use std::path::PathBuf;

use anyhow::Result;
use melxai::config::Config;
use melxai::data::cache::ImageCache;
use melxai::data::scan::{Sample, Scan};
use melxai::ensemble::tta::TtaSetting;
use melxai::ensemble::Model;
use melxai::evaluate::metrics;
use melxai::evaluate::multiclass::{multiclass_metrics, MulticlassMetrics};
use melxai::jobs::{self, JobContext};
use melxai::metrics::{bootstrap_ci, BinaryMetrics, BootstrapOptions, Interval, DEFAULT_THRESHOLD};
use melxai::model::checkpoint::SplitRecord;
use melxai::model::Arch;
use melxai::train::TrainConfig;
use melxai::verdict::{EvalRow, SamplePrediction};
use serde_json::json;

use super::progress::{cancel_on_ctrl_c, CliProgress};

#[derive(Debug, Default, clap::Args)]
pub struct TrainArgs {
    /// Architecture: lite0..lite4, b0..b7.
    #[arg(long)]
    pub arch: Option<String>,
    #[arg(long)]
    pub epochs: Option<usize>,
    #[arg(long)]
    pub batch_size: Option<usize>,
    #[arg(long)]
    pub lr: Option<f64>,
    #[arg(long)]
    pub seed: Option<u64>,
    /// Stratified k-fold cross-validation with K folds.
    #[arg(long)]
    pub folds: Option<usize>,
    /// Run and checkpoint name.
    #[arg(long)]
    pub name: Option<String>,
    /// Square input size in pixels (default: the architecture's).
    #[arg(long)]
    pub input_size: Option<i64>,
    /// Checkpoint = mean of the weights after each of the last N epochs
    /// (stochastic weight averaging; [train] swa_epochs). Turns early
    /// stopping off; 0 = the best epoch, with early stopping as configured
    /// (and folds that hold validation images again when
    /// fold_val_fraction is 0).
    #[arg(long, value_name = "N")]
    pub swa_epochs: Option<usize>,
    /// Validation fraction inside each fold of --folds ([train]
    /// fold_val_fraction); 0 trains each fold on all its non-test images
    /// (needs weight averaging).
    #[arg(long, value_name = "F")]
    pub fold_val_fraction: Option<f64>,
    /// Mixed precision of the forward passes: fp32, bf16 or fp16 (overrides [train] precision).
    #[arg(long)]
    pub precision: Option<melxai::model::precision::Precision>,
    /// Held-out predictions at the end of training (validation, test,
    /// out-of-fold) averaged over the 8 dihedral transforms ([train] tta).
    #[arg(long)]
    pub tta: bool,
    /// Continue an interrupted run from its last checkpoint.
    #[arg(long)]
    pub resume: bool,
    /// Replace a calibrated checkpoint of the same name (its temperature is lost).
    #[arg(long)]
    pub force: bool,
    /// Sample ids (`class/file.jpg`) to leave out.
    #[arg(long)]
    pub exclude: Vec<String>,
    #[arg(long)]
    pub json: bool,
}

/// `[train]` keys and the flags that override them.
const TRAIN_FLAGS: &[(&str, &str)] = &[
    ("epochs", "--epochs"),
    ("batch_size", "--batch-size"),
    ("learning_rate", "--lr"),
    ("folds", "--folds"),
    ("name", "--name"),
    ("input_size", "--input-size"),
    ("swa_epochs", "--swa-epochs"),
    ("fold_val_fraction", "--fold-val-fraction"),
];

pub fn train_config(config: &Config, args: &TrainArgs) -> Result<TrainConfig> {
    let mut cfg = config.train.clone();
    if let Some(v) = &args.arch {
        cfg.arch = v.clone();
    }
    if let Some(v) = args.epochs {
        cfg.epochs = v;
    }
    if let Some(v) = args.batch_size {
        cfg.batch_size = v;
    }
    if let Some(v) = args.lr {
        cfg.learning_rate = v;
    }
    if let Some(v) = args.seed {
        cfg.seed = v;
    }
    if let Some(v) = args.folds {
        cfg.folds = v;
    }
    if let Some(v) = &args.name {
        cfg.name = v.clone();
    }
    if let Some(v) = args.input_size {
        cfg.input_size = Some(v);
    }
    if let Some(v) = args.swa_epochs {
        cfg.swa_epochs = v;
        if v > 0 {
            cfg.patience = 0;
        } else if cfg.fold_val_fraction == Some(0.0) {
            cfg.fold_val_fraction = None;
        }
    }
    if let Some(v) = args.fold_val_fraction {
        cfg.fold_val_fraction = Some(v);
    }
    if let Some(v) = args.precision {
        cfg.precision = v;
    }
    if args.tta {
        cfg.tta = TtaSetting::On;
    }
    // Flags are held to the ranges of the keys they override.
    Arch::check("--arch", &cfg.arch)?;
    cfg.validate()
        .map_err(|e| e.for_flags(TRAIN_FLAGS, "[train]"))?;
    Ok(cfg)
}

/// `config_file` is `--config` when it is not the default `config.toml`.
pub fn run_train(
    config: &Config,
    args: &TrainArgs,
    config_file: Option<&std::path::Path>,
) -> Result<i32> {
    let cfg = train_config(config, args)?;
    let name = cfg.name.clone();
    if args.resume && !melxai::train::trainer::can_resume(&cfg, &config.model.weights_dir) {
        anyhow::bail!(
            "nothing to resume: no interrupted run '{}' in {} (start it without --resume)",
            cfg.name,
            config.model.weights_dir.display()
        );
    }
    let mut sink = CliProgress::new();
    let cancel = cancel_on_ctrl_c("the next batch boundary");
    let mut ctx = JobContext::for_config(config, &mut sink, &cancel)?;
    let data = jobs::scan_data(&mut ctx)?;
    melxai::data::ids::check_known("--exclude", &args.exclude, &data)?;
    let job = jobs::train::TrainJob {
        data: &data,
        config: cfg.clone(),
        excluded: &args.exclude,
        resume: args.resume,
        replace_calibrated: args.force,
        only_fold: None,
        config_file: config_file.map(PathBuf::from),
    };
    let trained = match jobs::train::train(&mut ctx, job) {
        Err(melxai::Error::Cancelled) => {
            eprintln!(
                "cancelled; the last finished epoch is saved. Continue with: melxai train --resume --name {name}"
            );
            return Ok(130);
        }
        r => r?,
    };
    eprintln!(
        "{} images ({} excluded, {} skipped) decoded and resized to {s}x{s} in {:.1}s",
        trained.images,
        trained.excluded,
        data.skipped.len() + trained.skipped,
        trained.decode_seconds,
        s = trained.input_size
    );
    let outcome = trained.outcome;
    let report_dir = PathBuf::from("reports").join(&cfg.name);
    melxai::files::write_bytes(
        &report_dir.join("training.json"),
        serde_json::to_string_pretty(&outcome)?.as_bytes(),
    )?;
    let headline = match &outcome.cross_validation {
        Some(cv) => json!({
            "name": cfg.name,
            "folds": cv.folds,
            "pooled_out_of_fold": cv.pooled,
            "pooled_auroc_ci95": [cv.pooled_auroc_ci.low, cv.pooled_auroc_ci.high],
            "pooled_balanced_accuracy_ci95": [cv.pooled_balanced_accuracy_ci.low, cv.pooled_balanced_accuracy_ci.high],
            "fold_summary": cv.summary,
            "checkpoints": outcome.splits.iter().map(|s| s.checkpoint.clone()).collect::<Vec<_>>(),
        }),
        None => {
            let s = &outcome.splits[0];
            json!({
                "name": cfg.name,
                "checkpoint": s.checkpoint,
                "best_epoch": s.best_epoch,
                "averaged_from": s.averaged_from,
                "test": s.test_metrics,
            })
        }
    };
    if args.json {
        println!("{}", serde_json::to_string_pretty(&headline)?);
    } else {
        print_headline(&outcome);
        eprintln!("details: {}", report_dir.join("training.json").display());
    }
    Ok(0)
}

fn print_headline(outcome: &melxai::train::RunOutcome) {
    if let Some(cv) = &outcome.cross_validation {
        let m = &cv.pooled;
        println!(
            "{}-fold cross-validation, pooled out-of-fold ({} images):",
            cv.folds, m.n
        );
        println!(
            "  AUROC {:.3} [{:.3}, {:.3}]  balanced accuracy {:.3} [{:.3}, {:.3}]",
            m.auroc,
            cv.pooled_auroc_ci.low,
            cv.pooled_auroc_ci.high,
            m.balanced_accuracy,
            cv.pooled_balanced_accuracy_ci.low,
            cv.pooled_balanced_accuracy_ci.high
        );
        println!(
            "  sensitivity {:.3}  specificity {:.3}  precision {:.3}  F1 {:.3}",
            m.recall, m.specificity, m.precision, m.f1
        );
        println!(
            "  per fold: AUROC {:.3} ± {:.3}, balanced accuracy {:.3} ± {:.3}",
            cv.summary.auroc.mean,
            cv.summary.auroc.std,
            cv.summary.balanced_accuracy.mean,
            cv.summary.balanced_accuracy.std
        );
    } else if let Some(s) = outcome.splits.first() {
        println!("{} -> {}", s.checkpoint_epochs(), s.checkpoint.display());
        if let Some(m) = &s.test_metrics {
            println!(
                "test ({} images): AUROC {:.3}  balanced accuracy {:.3}  sensitivity {:.3}  specificity {:.3}",
                m.n, m.auroc, m.balanced_accuracy, m.recall, m.specificity
            );
        }
    }
}

#[derive(Debug, clap::Args)]
pub struct EvalArgs {
    /// A checkpoint, or an ensemble manifest (<name>.ensemble.toml): its
    /// split holds the images no member trained on.
    #[arg(long)]
    pub checkpoint: PathBuf,
    /// Test-time augmentation: average over the 8 flips x 90° rotations
    /// (also on with [predict] tta).
    #[arg(long)]
    pub tta: bool,
    /// Which part of the checkpoint's recorded split: test, val, train or all.
    #[arg(long, default_value = "test")]
    pub split: String,
    /// Probabilities without the calibrated temperature.
    #[arg(long)]
    pub uncalibrated: bool,
    #[arg(long)]
    pub json: bool,
}

pub fn run_eval(config: &Config, args: &EvalArgs) -> Result<i32> {
    let mut sink = CliProgress::new();
    let cancel = cancel_on_ctrl_c("the next batch");
    let mut ctx = JobContext::for_config(config, &mut sink, &cancel)?;
    let mut model = Model::load(&args.checkpoint, ctx.device)?;
    model.set_tta(if args.tta {
        TtaSetting::On
    } else {
        config.predict.tta
    });
    let meta = model.meta.clone();
    let data = jobs::scan_data(&mut ctx)?;
    jobs::check_classes(&args.checkpoint, &meta.class_names, &data)?;
    let ids = split_ids(args, &meta.split, &model)?;
    let samples = split_samples(&data, ids.as_deref());
    let cache = ImageCache::for_config(
        &samples,
        meta.input_size,
        &config.data,
        melxai::progress::progress_bars_allowed(),
    )?;
    let rows: Vec<usize> = (0..cache.len()).collect();
    let job = jobs::evaluate::EvaluateJob {
        model: &model,
        cache: &cache,
        rows: &rows,
    };
    let preds = match jobs::evaluate::evaluate(&mut ctx, job) {
        Err(melxai::Error::Cancelled) => return Ok(130),
        r => r?,
    };
    let positive = jobs::positive_class(config, &data.classes)?;
    let temperature = if args.uncalibrated {
        1.0
    } else {
        meta.temperature
    };
    let m = metrics(&preds, positive, temperature)?;
    let (auroc_ci, bacc_ci) = score_intervals(&preds, positive, temperature);
    // The operating point's threshold is on calibrated probabilities.
    let operating_point = model
        .operating_point()
        .copied()
        .filter(|_| !args.uncalibrated);
    // Conformal thresholds too: they were calibrated on calibrated probabilities.
    let conformal = model.conformal().filter(|_| !args.uncalibrated);
    let per_sample: Vec<_> = preds
        .iter()
        .map(|r| {
            let mut p = r.to_prediction(positive, temperature, &args.split);
            p.decision = operating_point.map(|op| op.decide(p.probability));
            p.conformal_set = conformal.map(|c| c.set(&r.probabilities(meta.temperature)));
            p
        })
        .collect();
    let result = EvalResult {
        metrics: &m,
        temperature,
        auroc_ci,
        bacc_ci,
        per_sample: &per_sample,
        multiclass: every_class(&preds, &cache, &data.classes, temperature)?,
    };
    print_eval_result(args, &model, result)?;
    Ok(0)
}

/// The sample ids of `--split` as recorded in the checkpoint (`None`: every
/// image), refusing a split the checkpoint does not record or that is empty.
fn split_ids(
    args: &EvalArgs,
    split: &Option<SplitRecord>,
    model: &Model,
) -> Result<Option<Vec<String>>> {
    let ids: Option<Vec<String>> = match (args.split.as_str(), split) {
        ("all", _) => None,
        (part @ ("test" | "val" | "train"), Some(rec)) => Some(match part {
            "test" => rec.test.clone(),
            "val" => rec.val.clone(),
            _ => rec.train.clone(),
        }),
        ("test" | "val" | "train", None) => {
            anyhow::bail!(
                "{} records no data split; use --split all",
                args.checkpoint.display()
            )
        }
        (other, _) => anyhow::bail!("unknown split '{other}' (test, val, train, all)"),
    };
    if ids.as_ref().is_some_and(Vec::is_empty) {
        anyhow::bail!(
            "{}: its {} split is empty{}; use --split all (every image was seen in training by some member) or evaluate the members",
            args.checkpoint.display(),
            args.split,
            if model.is_ensemble() {
                " (no image is held out from every member, as with the k models of one cross-validation)"
            } else {
                ""
            }
        );
    }
    Ok(ids)
}

/// The scanned samples whose ids are in `ids` (all when `None`), noting on
/// stderr recorded ids that are no longer in the data folder.
fn split_samples(data: &Scan, ids: Option<&[String]>) -> Vec<Sample> {
    match ids {
        None => data.samples.clone(),
        Some(ids) => {
            let missing: Vec<&String> = ids
                .iter()
                .filter(|id| !data.samples.iter().any(|s| &s.id == *id))
                .collect();
            if !missing.is_empty() {
                eprintln!(
                    "note: {} recorded samples are not in {} (e.g. {})",
                    missing.len(),
                    data.root.display(),
                    missing[0]
                );
            }
            data.samples
                .iter()
                .filter(|s| ids.contains(&s.id))
                .cloned()
                .collect()
        }
    }
}

/// Bootstrap 95 % intervals of AUROC and balanced accuracy (`None` where the
/// bootstrap cannot run), with the fixed seed so reruns print the same.
fn score_intervals(
    preds: &[EvalRow],
    positive: usize,
    temperature: f64,
) -> (Option<Interval>, Option<Interval>) {
    let labels: Vec<usize> = preds.iter().map(|r| r.label).collect();
    let scores: Vec<f64> = preds
        .iter()
        .map(|r| r.probabilities(temperature)[positive])
        .collect();
    let opts = BootstrapOptions::new(2000, 42);
    let auroc_ci = bootstrap_ci(
        &labels,
        &scores,
        positive,
        DEFAULT_THRESHOLD,
        |m| m.auroc,
        &opts,
    )
    .ok();
    let bacc_ci = bootstrap_ci(
        &labels,
        &scores,
        positive,
        DEFAULT_THRESHOLD,
        |m| m.balanced_accuracy,
        &opts,
    )
    .ok();
    (auroc_ci, bacc_ci)
}

/// What `melxai eval` computed, bundled so the output step takes few arguments.
struct EvalResult<'a> {
    metrics: &'a BinaryMetrics,
    temperature: f64,
    auroc_ci: Option<Interval>,
    bacc_ci: Option<Interval>,
    per_sample: &'a [SamplePrediction],
    /// Every class's figures, for a model of more than two classes.
    multiclass: Option<MulticlassMetrics>,
}

/// Per-class AUROC, balanced accuracy, the KxK confusion and class-wise
/// calibration of `preds` (K > 2 only), intervals resampling the data set's
/// patient/lesion groups when it has them.
fn every_class(
    preds: &[melxai::verdict::EvalRow],
    cache: &ImageCache,
    classes: &[String],
    temperature: f64,
) -> Result<Option<MulticlassMetrics>> {
    if classes.len() <= 2 {
        return Ok(None);
    }
    let probs: Vec<Vec<f64>> = preds.iter().map(|r| r.probabilities(temperature)).collect();
    let labels: Vec<usize> = preds.iter().map(|r| r.label).collect();
    let row_of: std::collections::HashMap<&str, usize> = cache
        .ids
        .iter()
        .enumerate()
        .map(|(i, id)| (id.as_str(), i))
        .collect();
    let groups: Vec<usize> = preds
        .iter()
        .map(|r| cache.groups[row_of[r.id.as_str()]])
        .collect();
    let grouped = !melxai::data::groups::is_ungrouped(&groups);
    let m = multiclass_metrics(
        &probs,
        &labels,
        classes,
        melxai::calibrate::DEFAULT_N_BINS,
        &melxai::metrics::BootstrapOptions::new(1000, 0),
        grouped.then_some(groups.as_slice()),
    )?;
    Ok(Some(m))
}

/// The K-class figures as text: macro numbers, then one line per class.
fn print_every_class(m: &MulticlassMetrics) {
    let macro_auroc = m.macro_auroc.map_or(f64::NAN, |i| i.point);
    println!(
        "  every class: macro AUROC {macro_auroc:.3}, balanced accuracy {:.3}, top-label ECE {:.3}, class-wise ECE {:.3}, Brier {:.3}, NLL {:.3}",
        m.balanced_accuracy.point, m.top_label_ece, m.classwise_ece, m.brier, m.nll
    );
    for (c, row) in m.per_class.iter().zip(&m.confusion) {
        let auroc = c.auroc.map_or(f64::NAN, |i| i.point);
        println!(
            "    {:<12} n {:>5}  AUROC {auroc:.3}  recall {:.3}  precision {:.3}  predicted as {row:?}",
            c.name, c.n, c.recall, c.precision
        );
    }
}

/// Prints the result as JSON (`--json`) or as text, keeping the two forms
/// side by side.
fn print_eval_result(args: &EvalArgs, model: &Model, r: EvalResult) -> Result<()> {
    if args.json {
        println!(
            "{}",
            serde_json::to_string_pretty(&json!({
                "checkpoint": args.checkpoint,
                "split": args.split,
                "temperature": r.temperature,
                "tta": model.tta,
                "members": model.members().len(),
                "metrics": r.metrics,
                "auroc_ci95": r.auroc_ci.map(|c| [c.low, c.high]),
                "balanced_accuracy_ci95": r.bacc_ci.map(|c| [c.low, c.high]),
                "predictions": r.per_sample,
                "conformal": set_summary(model, r.per_sample),
                "multiclass": r.multiclass,
            }))?
        );
    } else {
        if model.is_ensemble() || model.tta {
            println!(
                "{} network(s){}, logits combined by their mean",
                model.members().len(),
                if model.tta {
                    ", each averaged over the 8 flips x 90° rotations (TTA)"
                } else {
                    ""
                }
            );
        }
        print_eval(args, r.metrics, r.temperature, r.auroc_ci, r.bacc_ci);
        if let Some(m) = &r.multiclass {
            print_every_class(m);
        }
        if let Some(s) = set_summary(model, r.per_sample) {
            println!(
                "  conformal sets ({}): coverage {:.3} (promised ≥ {:.2}), mean size {:.2}, {:.0}% of two classes or more",
                s.method,
                s.summary.coverage,
                s.promised,
                s.summary.mean_size,
                s.summary.two_or_more * 100.0
            );
        }
    }
    Ok(())
}

/// Coverage and size of the per-sample conformal sets on the evaluated split.
#[derive(serde::Serialize)]
struct EvalSets {
    method: String,
    promised: f64,
    #[serde(flatten)]
    summary: melxai::evaluate::conformal::SetSummary,
}

fn set_summary(model: &Model, rows: &[SamplePrediction]) -> Option<EvalSets> {
    let c = model.conformal()?;
    let sets: Vec<Vec<usize>> = rows
        .iter()
        .map(|r| r.conformal_set.clone())
        .collect::<Option<_>>()?;
    let labels: Vec<usize> = rows.iter().map(|r| r.label).collect();
    Some(EvalSets {
        method: c.settings.describe(),
        promised: 1.0 - c.settings.alpha,
        summary: melxai::evaluate::conformal::summarise(
            &sets,
            &labels,
            model.meta.class_names.len(),
        ),
    })
}

/// The text form of `melxai eval`.
fn print_eval(
    args: &EvalArgs,
    m: &melxai::metrics::BinaryMetrics,
    temperature: f64,
    auroc_ci: Option<melxai::metrics::Interval>,
    bacc_ci: Option<melxai::metrics::Interval>,
) {
    println!(
        "{} on {} ({} images, temperature {:.3})",
        args.checkpoint.display(),
        args.split,
        m.n,
        temperature
    );
    let ci = |c: Option<melxai::metrics::Interval>| {
        c.map(|c| format!(" [{:.3}, {:.3}]", c.low, c.high))
            .unwrap_or_default()
    };
    println!("  AUROC             {:.3}{}", m.auroc, ci(auroc_ci));
    println!(
        "  balanced accuracy {:.3}{}",
        m.balanced_accuracy,
        ci(bacc_ci)
    );
    println!("  sensitivity       {:.3}", m.recall);
    println!("  specificity       {:.3}", m.specificity);
    println!("  precision         {:.3}", m.precision);
    println!("  F1                {:.3}", m.f1);
    println!("  AUPRC             {:.3}", m.auprc);
    let c = &m.confusion;
    println!(
        "  confusion (melanoma positive): TP {} FN {} FP {} TN {}",
        c.tp, c.fn_, c.fp, c.tn
    );
    if m.n < 100 {
        println!(
            "  note: {} images: confidence intervals are wide; prefer pooled k-fold figures",
            m.n
        );
    }
}
