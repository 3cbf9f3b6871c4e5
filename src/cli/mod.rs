//! Command-line surface. Each subcommand is a thin wrapper over the library.

mod app;
mod calibrate;
mod compare;
mod data;
mod explain;
mod progress;
mod train;
mod units;

use std::path::PathBuf;

use anyhow::{Context, Result};
use clap::{Parser, Subcommand};

use melxai::config::Config;
use melxai::ensemble::tta::TtaSetting;
use melxai::ensemble::Model;
use melxai::model::{parse_device, Arch, Classifier};

#[derive(Debug, Parser)]
#[command(
    name = "melxai",
    version,
    about = "Explainable melanoma classification in the terminal"
)]
pub struct Args {
    /// Configuration file.
    #[arg(long, global = true, default_value = "config.toml")]
    pub config: PathBuf,
    /// Compute device: auto, cpu, cuda or cuda:N (overrides config.toml).
    #[arg(long, global = true)]
    pub device: Option<String>,
    /// Run the configured pipeline headless and write a report.
    #[arg(long)]
    pub batch: bool,
    /// Run name for --batch (reports/<name>/).
    #[arg(long)]
    pub name: Option<String>,
    /// With --batch: print the final summary as JSON.
    #[arg(long)]
    pub json: bool,
    /// With --batch: `local` (this machine) or `slurm` (sbatch job arrays
    /// per stage, settings from `[slurm]`).
    #[arg(long, default_value = "local")]
    pub executor: String,
    /// With --batch: run as units in N worker processes (CPU: the cores
    /// divided between them).
    #[arg(long)]
    pub workers: Option<usize>,
    /// Open the terminal UI on a run that workers or a cluster execute: its
    /// units and trainings in the training pane (reports/<RUN>/units/).
    #[arg(long, value_name = "RUN")]
    pub watch: Option<String>,
    /// With --batch: one worker per device, e.g. cuda:0,cuda:1.
    #[arg(long, value_delimiter = ',')]
    pub devices: Vec<String>,
    /// Inline image protocol: auto, kitty, sixel, iterm2 or halfblocks.
    #[arg(long, default_value = "auto")]
    pub graphics: String,
    #[command(subcommand)]
    pub command: Option<Command>,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Fine-tune on the configured data set (one split or k folds).
    Train(train::TrainArgs),
    /// Metrics of a checkpoint on its recorded split.
    Eval(train::EvalArgs),
    /// GradCAM / Integrated Gradients / DeepLIFT maps, written as .npy and PNG.
    Explain(explain::ExplainArgs),
    /// Fit the softmax temperature on held-out predictions and store it in the checkpoint.
    Calibrate(calibrate::CalibrateArgs),
    /// Explain a split with several models and measure how far the maps agree.
    Compare(compare::CompareArgs),
    /// Decode the data set into the `[data] store` once (a job's first step;
    /// later runs start in seconds).
    Prepare(data::PrepareArgs),
    /// Write a generated data set with a public set's exact layout and
    /// column names (HAM10000, ISIC 2019/2020, PAD-UFES-20, ImageFolder).
    Lookalike(data::LookalikeArgs),
    /// The --batch run as units: plan, run-unit, worker, status, resume.
    Batch(units::BatchArgs),
    /// Check the installation: libtorch, weights, data set, config.
    Doctor {
        #[arg(long)]
        json: bool,
    },
    /// Class probabilities for images or preprocessed .npy inputs.
    Predict {
        /// Image files or .npy arrays (3,H,W)/(1,3,H,W) already preprocessed.
        #[arg(required = true)]
        inputs: Vec<PathBuf>,
        /// A melxai checkpoint (.safetensors with its .toml) or an ensemble
        /// manifest (<name>.ensemble.toml).
        #[arg(long, conflicts_with = "imagenet")]
        checkpoint: Option<PathBuf>,
        /// Use the shipped 1000-class ImageNet model.
        #[arg(long)]
        imagenet: bool,
        /// Architecture for --imagenet.
        #[arg(long, default_value = "lite0")]
        arch: String,
        /// Inference precision: fp32, bf16 or fp16 (autocast).
        #[arg(long, default_value = "fp32")]
        precision: melxai::model::precision::Precision,
        /// Number of classes to list per input.
        #[arg(long, default_value_t = 5)]
        top: usize,
        /// Show probabilities without the calibrated temperature.
        #[arg(long)]
        uncalibrated: bool,
        /// Test-time augmentation: average over the 8 flips x 90° rotations
        /// (also on with [predict] tta).
        #[arg(long)]
        tta: bool,
        #[arg(long)]
        json: bool,
    },
    /// All similarity metrics between two heatmaps (.npy float32, (H,W) or (1,H,W)).
    Similarity {
        a: PathBuf,
        b: PathBuf,
        /// Percentile for the Jaccard masks (numpy "linear" interpolation).
        #[arg(long, default_value_t = 90.0)]
        percentile: f64,
        /// Pixels for the top-k intersection (default: the same share as the Jaccard mask).
        #[arg(long)]
        top_k: Option<usize>,
        /// Gaussian-window SSIM (sigma 1.5) instead of the 7x7 uniform default.
        #[arg(long)]
        gaussian: bool,
        #[arg(long)]
        json: bool,
    },
}

/// Runs the parsed command; returns the process exit code.
pub fn run(args: Args) -> Result<i32> {
    let explicit_config = args.config.as_path() != std::path::Path::new("config.toml");
    let mut config = Config::load(&args.config, explicit_config)?;
    if let Some(d) = &args.device {
        config.device = d.clone();
    }
    check_device(&config, &args)?;
    match args.command {
        Some(Command::Train(a)) => train::run_train(
            &config,
            &a,
            explicit_config.then_some(args.config.as_path()),
        ),
        Some(Command::Eval(a)) => train::run_eval(&config, &a),
        Some(Command::Explain(a)) => explain::run(&config, &a),
        Some(Command::Calibrate(a)) => calibrate::run(&config, &a),
        Some(Command::Compare(a)) => compare::run(&config, &a),
        Some(Command::Doctor { json }) => doctor(&config, &args.config, json),
        Some(Command::Prepare(a)) => data::prepare(&config, &a),
        Some(Command::Lookalike(a)) => data::lookalike(&a),
        Some(Command::Predict {
            inputs,
            checkpoint,
            imagenet,
            arch,
            precision,
            top,
            uncalibrated,
            tta,
            json,
        }) => {
            let device = parse_device(&config.device)?;
            let mut model: Model = match (checkpoint, imagenet) {
                (Some(path), _) => Model::load(&path, device)
                    .with_context(|| format!("loading checkpoint {}", path.display()))?,
                (None, true) => {
                    let arch: Arch = arch.parse()?;
                    Classifier::imagenet(arch, &config.model.weights_dir, device)?.into()
                }
                (None, false) => anyhow::bail!("predict needs --checkpoint PATH or --imagenet"),
            };
            model.set_precision(precision);
            model.set_tta(if tta {
                TtaSetting::On
            } else {
                config.predict.tta
            });
            // The positive class by name among the model's classes; the
            // ImageNet model has none, and then nothing refers to it.
            let positive = model
                .meta
                .class_names
                .iter()
                .position(|c| c == &config.data.positive_class);
            let mut out = Vec::new();
            let mut failures = 0;
            for input in &inputs {
                match melxai::evaluate::predict::predict(
                    &model,
                    input,
                    top,
                    !uncalibrated,
                    positive,
                ) {
                    Ok(p) => out.push(p),
                    Err(e) => {
                        failures += 1;
                        eprintln!("error: {e}");
                    }
                }
            }
            if json {
                println!("{}", serde_json::to_string_pretty(&out)?);
            } else {
                for p in &out {
                    print_prediction(p);
                }
            }
            Ok(if failures > 0 { 2 } else { 0 })
        }
        Some(Command::Similarity {
            a,
            b,
            percentile,
            top_k,
            gaussian,
            json,
        }) => similarity(&a, &b, percentile, top_k, gaussian, json),
        Some(Command::Batch(a)) => units::run(&config, &args.config, args.device.as_deref(), a),
        None if args.batch
            && (args.executor != "local" || args.workers.is_some() || !args.devices.is_empty()) =>
        {
            let ex = units::Executor {
                kind: &args.executor,
                workers: args.workers,
                devices: &args.devices,
                config_path: &args.config,
                device: args.device.as_deref(),
            };
            units::start(&config, args.name.as_deref(), &ex)
        }
        None if args.batch => batch(&config, args.name.as_deref(), args.json),
        None => app::run(config, &args.graphics, args.watch),
    }
}

/// Refuses an unusable device before any work starts (libtorch would panic
/// deep inside), and says on stderr what `auto` chose for headless runs.
fn check_device(config: &Config, args: &Args) -> Result<()> {
    use melxai::device::{auto_choice, resolve, DeviceSpec};
    if matches!(
        args.command,
        Some(Command::Doctor { .. })
            | Some(Command::Similarity { .. })
            | Some(Command::Lookalike(_))
            | Some(Command::Prepare(_))
    ) {
        return Ok(());
    }
    let spec: DeviceSpec = config
        .device
        .parse()
        .with_context(|| format!("--device / device in {}", args.config.display()))?;
    let device = resolve(spec)?;
    let headless = args.batch || args.command.is_some();
    if headless {
        if let Some(line) = auto_choice(spec, device) {
            eprintln!("{line}");
        }
    }
    Ok(())
}

fn doctor(config: &Config, path: &std::path::Path, json: bool) -> Result<i32> {
    let melxai::doctor::Diagnosis { checks, cuda } = melxai::doctor::run(config, path);
    let ok = checks.iter().all(|c| c.ok);
    if json {
        println!(
            "{}",
            serde_json::to_string_pretty(&serde_json::json!({
                "healthy": ok,
                "checks": checks,
                "cuda": cuda,
            }))?
        );
    } else {
        for c in &checks {
            println!(
                "{} {:<15} {}",
                if c.ok { " ok " } else { "FAIL" },
                c.name,
                c.detail
            );
        }
        println!("{}", if ok { "healthy" } else { "problems found" });
    }
    Ok(if ok { 0 } else { 1 })
}

fn similarity(
    a: &std::path::Path,
    b: &std::path::Path,
    percentile: f64,
    k: Option<usize>,
    gaussian: bool,
    json: bool,
) -> Result<i32> {
    use melxai::compare::similarity::{compare_maps, CompareOptions, Map, SsimOptions};
    let (da, ha, wa) = melxai::data::npy::read_map(a)?;
    let (db, hb, wb) = melxai::data::npy::read_map(b)?;
    let opts = CompareOptions {
        ssim: if gaussian {
            SsimOptions::gaussian()
        } else {
            SsimOptions::default()
        },
        percentile,
        k,
    };
    let report = compare_maps(Map::new(&da, ha, wa)?, Map::new(&db, hb, wb)?, &opts)?;
    if json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        println!("ssim      {:.6}", report.ssim);
        println!("pearson   {:.6}", report.pearson);
        println!("spearman  {:.6}", report.spearman);
        println!("cosine    {:.6}", report.cosine);
        println!(
            "jaccard   {:.6}  (top {}% masks)",
            report.jaccard,
            100.0 - report.percentile
        );
        println!(
            "top-k     {:.6}  (k = {})",
            report.topk_intersection, report.k
        );
    }
    Ok(0)
}

fn batch(config: &Config, name: Option<&str>, json: bool) -> Result<i32> {
    let mut sink = progress::CliProgress::new();
    let t0 = std::time::Instant::now();
    let cancel = progress::cancel_on_ctrl_c("the next step boundary");
    let mut screens = melxai::tui::report_screens::render_run_screens;
    let summary = melxai::batch::run(config, name, &mut sink, &cancel, Some(&mut screens))?;
    if json {
        println!("{}", serde_json::to_string_pretty(&summary)?);
    } else {
        for s in &summary.steps {
            println!(
                "{} {:<45} {:>7.1}s{}",
                if s.ok { " ok " } else { "FAIL" },
                s.step,
                s.seconds,
                s.error
                    .as_ref()
                    .map(|e| format!("  {e}"))
                    .unwrap_or_default()
            );
        }
        println!("{}", serde_json::to_string_pretty(&summary.headline)?);
        println!(
            "report: {} ({:.0}s)",
            summary.report_dir.join("report.md").display(),
            t0.elapsed().as_secs_f64()
        );
    }
    if summary.cancelled {
        eprintln!(
            "cancelled: finished steps are kept in {}; a re-run reuses them",
            summary.report_dir.display()
        );
        return Ok(130);
    }
    Ok(if summary.succeeded() { 0 } else { 1 })
}

/// The text form of one `melxai predict` result.
fn print_prediction(p: &melxai::evaluate::predict::Prediction) {
    println!("{}", p.input.display());
    if let Some(r) = &p.referral {
        println!(
            "  {}  (p = {:.3} vs threshold {:.3}, chosen for sensitivity {:.2})",
            r.label.to_uppercase(),
            r.probability,
            r.threshold,
            r.target_sensitivity
        );
    }
    if let Some(c) = &p.conformal_set {
        println!(
            "  set {{{}}}{}  ({:.0}% conformal set: {})",
            c.label,
            if c.refer { ": refer" } else { "" },
            c.coverage * 100.0,
            c.method
        );
    }
    if let (Some(u), true) = (&p.uncertainty, p.members > 1) {
        println!(
            "  uncertainty: spread {:.3}  entropy {:.3} nats  mutual information {:.3} nats ({} members{})",
            u.spread,
            u.predictive_entropy,
            u.mutual_information,
            p.members,
            if p.tta { ", TTA" } else { "" }
        );
    }
    for c in &p.top {
        println!(
            "  {:>7.3}%  {} (#{})",
            c.probability * 100.0,
            c.class,
            c.index
        );
    }
}
