//! `melxai train` and `melxai eval`.

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use anyhow::{Context, Result};
use melxai::config::{check, Config};
use melxai::data::cache::ImageCache;
use melxai::data::scan::scan;
use melxai::engine::{Event, EventSink};
use melxai::eval::{metrics, predict_rows};
use melxai::metrics::{bootstrap_ci, BootstrapOptions, DEFAULT_THRESHOLD};
use melxai::model::checkpoint::read_meta;
use melxai::model::{parse_device, Arch, Classifier, EfficientNetConfig};
use melxai::train::{train, TrainConfig, TrainContext};
use serde_json::json;

use super::progress::CliProgress;

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
    /// Mixed precision of the forward passes: fp32, bf16 or fp16 (overrides [train] precision).
    #[arg(long)]
    pub precision: Option<melxai::model::precision::Precision>,
    /// Continue an interrupted run from its last checkpoint.
    #[arg(long)]
    pub resume: bool,
    /// Sample ids (`class/file.jpg`) to leave out.
    #[arg(long)]
    pub exclude: Vec<String>,
    #[arg(long)]
    pub json: bool,
}

/// Sets the returned flag on Ctrl-C so training stops at a batch boundary.
fn cancel_on_ctrl_c() -> Arc<AtomicBool> {
    let flag = Arc::new(AtomicBool::new(false));
    let f = flag.clone();
    let _ = ctrlc::set_handler(move || {
        if f.swap(true, Ordering::SeqCst) {
            std::process::exit(130);
        }
        eprintln!("\ncancelling at the next batch boundary (Ctrl-C again to abort)");
    });
    flag
}

/// `[train]` keys and the flags that override them.
const TRAIN_FLAGS: &[(&str, &str)] = &[
    ("epochs", "--epochs"),
    ("batch_size", "--batch-size"),
    ("learning_rate", "--lr"),
    ("folds", "--folds"),
    ("name", "--name"),
    ("input_size", "--input-size"),
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
    if let Some(v) = args.precision {
        cfg.precision = v;
    }
    // Flags are held to the ranges of the keys they override.
    check::arch("--arch", &cfg.arch)?;
    cfg.validate()
        .map_err(|e| e.for_flags(TRAIN_FLAGS, "[train]"))?;
    Ok(cfg)
}

pub fn run_train(config: &Config, args: &TrainArgs) -> Result<i32> {
    let cfg = train_config(config, args)?;
    let device = parse_device(&config.device)?;
    if args.resume && !melxai::train::trainer::can_resume(&cfg, &config.model.weights_dir) {
        anyhow::bail!(
            "nothing to resume: no interrupted run '{}' in {} (start it without --resume)",
            cfg.name,
            config.model.weights_dir.display()
        );
    }
    let mut sink = CliProgress::new();
    let data = scan(&config.data.root, true)?;
    for s in &data.skipped {
        sink.send(Event::Warning {
            job: 0,
            message: format!("skipped {}: {}", s.path.display(), s.reason),
        });
    }
    let samples: Vec<_> = data
        .samples
        .iter()
        .filter(|s| !args.exclude.contains(&s.id))
        .cloned()
        .collect();
    let arch: Arch = cfg.arch.parse()?;
    let size = cfg
        .input_size
        .unwrap_or(EfficientNetConfig::new(arch, 2).resolution);
    let t0 = std::time::Instant::now();
    let cache = ImageCache::build(&samples, [size, size])?;
    eprintln!(
        "{} images ({} excluded, {} skipped) decoded and resized to {size}x{size} in {:.1}s",
        cache.len(),
        data.samples.len() - samples.len(),
        data.skipped.len() + cache.skipped.len(),
        t0.elapsed().as_secs_f64()
    );
    let positive = data
        .class_index(&config.data.positive_class)
        .with_context(|| {
            format!(
                "positive class '{}' not in {:?}",
                config.data.positive_class, data.classes
            )
        })?;
    let cancel = cancel_on_ctrl_c();
    let mut ctx = TrainContext {
        cache: &cache,
        class_names: data.classes.clone(),
        positive,
        weights_dir: config.model.weights_dir.clone(),
        imagenet_dir: config.model.weights_dir.clone(),
        device,
        sink: &mut sink,
        cancel: &cancel,
        job: 0,
        resume: args.resume,
    };
    let outcome = match train(&cfg, &mut ctx) {
        Err(melxai::Error::Cancelled) => {
            eprintln!(
                "cancelled; the last finished epoch is saved. Continue with: melxai train --resume --name {}",
                cfg.name
            );
            return Ok(130);
        }
        r => r?,
    };
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
        println!("best epoch {} -> {}", s.best_epoch, s.checkpoint.display());
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
    #[arg(long)]
    pub checkpoint: PathBuf,
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
    let device = parse_device(&config.device)?;
    let meta = read_meta(&args.checkpoint)?;
    let model = Classifier::from_checkpoint(&args.checkpoint, device)?;
    let data = scan(&config.data.root, true)?;
    let ids: Option<Vec<String>> = match (args.split.as_str(), &meta.split) {
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
    let samples: Vec<_> = match &ids {
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
    };
    let cache = ImageCache::build(&samples, meta.input_size)?;
    let rows: Vec<usize> = (0..cache.len()).collect();
    let preds = predict_rows(&model, &cache, &rows, 32)?;
    let positive = data
        .class_index(&config.data.positive_class)
        .with_context(|| format!("positive class '{}' not found", config.data.positive_class))?;
    let temperature = if args.uncalibrated {
        1.0
    } else {
        meta.temperature
    };
    let m = metrics(&preds, positive, temperature)?;
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
    let per_sample: Vec<_> = preds
        .iter()
        .map(|r| r.to_prediction(positive, temperature, &args.split))
        .collect();
    if args.json {
        println!(
            "{}",
            serde_json::to_string_pretty(&json!({
                "checkpoint": args.checkpoint,
                "split": args.split,
                "temperature": temperature,
                "metrics": m,
                "auroc_ci95": auroc_ci.map(|c| [c.low, c.high]),
                "balanced_accuracy_ci95": bacc_ci.map(|c| [c.low, c.high]),
                "predictions": per_sample,
            }))?
        );
    } else {
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
    Ok(0)
}
