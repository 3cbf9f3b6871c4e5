//! `melxai calibrate`: fit, store and report a temperature.

use std::path::PathBuf;

use anyhow::{Context, Result};
use melxai::calibrate::fit::CalibrationOutcome;
use melxai::calibrate::{CalibrationBootstrap, CalibrationReport};
use melxai::config::Config;
use melxai::data::cache::ImageCache;
use melxai::ensemble::{read_meta, Model};
use melxai::jobs::calibrate::{calibrate, CalibrateJob, CalibrationData};
use melxai::jobs::evaluate::{evaluate, EvaluateJob};
use melxai::jobs::{self, JobContext};
use melxai::metrics::Interval;
use melxai::train::RunOutcome;
use melxai::verdict::EvalRow;

#[derive(Debug, clap::Args)]
pub struct CalibrateArgs {
    /// A single-split checkpoint: fit on its validation split, report on its test split.
    #[arg(long, required_unless_present = "cv", conflicts_with = "cv")]
    pub checkpoint: Option<PathBuf>,
    /// A k-fold run's reports/<name>/training.json: cross-fitted on out-of-fold predictions;
    /// the temperature is stored in every fold checkpoint.
    #[arg(long)]
    pub cv: Option<PathBuf>,
    #[arg(long)]
    pub json: bool,
}

pub fn run(config: &Config, args: &CalibrateArgs) -> Result<i32> {
    let mut sink = super::progress::CliProgress::new();
    let cancel = super::progress::cancel_on_ctrl_c("the next batch");
    let mut ctx = JobContext::for_config(config, &mut sink, &cancel)?;
    let (outcome, report_dir, stored_in) = if let Some(cv) = &args.cv {
        let run = read_cross_validation(cv)?;
        let first = run.splits.first().context("the run records no splits")?;
        let meta = read_meta(&first.checkpoint)?;
        let positive = jobs::positive_class(config, &meta.class_names)?;
        let folds: Vec<Vec<EvalRow>> = run.splits.iter().map(|s| s.test.clone()).collect();
        let stored: Vec<PathBuf> = run.splits.iter().map(|s| s.checkpoint.clone()).collect();
        let job = CalibrateJob {
            data: CalibrationData::CrossValidated { folds: &folds },
            positive,
            store_in: Vec::new(),
        };
        let outcome = calibrate(&mut ctx, job)?;
        (outcome, PathBuf::from("reports").join(&run.name), stored)
    } else {
        let path = args.checkpoint.clone().context("--checkpoint or --cv")?;
        let meta = read_meta(&path)?;
        let split = meta
            .split
            .clone()
            .context("the checkpoint records no data split; use --cv for k-fold runs")?;
        if split.val.is_empty() {
            anyhow::bail!(
                "{}: no validation image is held out from every member (the members of a k-fold ensemble saw them all); use --cv with the run's training.json",
                path.display()
            );
        }
        let data = jobs::scan_data(&mut ctx)?;
        jobs::check_classes(&path, &meta.class_names, &data)?;
        let positive = jobs::positive_class(config, &data.classes)?;
        let wanted: Vec<_> = data
            .samples
            .iter()
            .filter(|s| split.val.contains(&s.id) || split.test.contains(&s.id))
            .cloned()
            .collect();
        let cache = ImageCache::for_config(
            &wanted,
            meta.input_size,
            &config.data,
            melxai::progress::progress_bars_allowed(),
        )?;
        let model = Model::load(&path, ctx.device)?;
        let all: Vec<usize> = (0..cache.len()).collect();
        let job = EvaluateJob {
            model: &model,
            cache: &cache,
            rows: &all,
        };
        let rows = evaluate(&mut ctx, job)?;
        let val: Vec<&EvalRow> = rows.iter().filter(|r| split.val.contains(&r.id)).collect();
        let test: Vec<&EvalRow> = rows.iter().filter(|r| split.test.contains(&r.id)).collect();
        let job = CalibrateJob {
            data: CalibrationData::Split { val, test },
            positive,
            store_in: Vec::new(),
        };
        let outcome = calibrate(&mut ctx, job)?;
        (
            outcome,
            PathBuf::from("reports").join(&meta.name),
            vec![path],
        )
    };
    // The job stores nothing (store_in is empty): the report first, a report folder that cannot be written must fail the
    // command before any checkpoint is changed.
    let json_path = report_dir.join("calibration.json");
    melxai::files::write_bytes(
        &json_path,
        serde_json::to_string_pretty(&outcome)?.as_bytes(),
    )?;
    // Every fold or none: a missing or torn fold refuses before any is changed.
    melxai::calibrate::fit::store_temperatures(&stored_in, &outcome)?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&outcome)?);
    } else {
        print_outcome(&outcome);
        for p in &stored_in {
            eprintln!(
                "temperature stored in {}",
                melxai::model::checkpoint::meta_path(p).display()
            );
        }
        eprintln!(
            "details (reliability bins, intervals): {}",
            json_path.display()
        );
    }
    Ok(0)
}

fn print_outcome(o: &CalibrationOutcome) {
    println!(
        "temperature {:.4} fitted on {} {} predictions (NLL {:.4} -> {:.4})",
        o.fit.temperature, o.fitted_n, o.fitted_on, o.fit.nll_before, o.fit.nll_after
    );
    for r in &o.results {
        println!("{} ({} images):", r.evaluated_on, r.before.n);
        println!("  {:<14} {:>22} {:>22}", "", "before", "after");
        // One metric: its value and bootstrap interval before and after scaling.
        let row = |name: &str,
                   value: fn(&CalibrationReport) -> f64,
                   interval: fn(&CalibrationBootstrap) -> &Interval| {
            let (b, bi) = (value(&r.before), interval(&r.before_ci));
            let (a, ai) = (value(&r.after), interval(&r.after_ci));
            println!(
                "  {name:<14} {b:>7.4} [{:.3}, {:.3}] {a:>7.4} [{:.3}, {:.3}]",
                bi.low, bi.high, ai.low, ai.high
            );
        };
        row("ECE (15 bins)", |c| c.ece, |c| &c.ece);
        row("Brier", |c| c.brier, |c| &c.brier);
        row("NLL", |c| c.nll, |c| &c.nll);
        let (b, a) = (
            &r.before_ci.ece_if_calibrated,
            &r.after_ci.ece_if_calibrated,
        );
        println!(
            "  {:<14} {:>7.4} [{:.3}, {:.3}] {:>7.4} [{:.3}, {:.3}]",
            "ECE if calib.", b.expected, b.low, b.high, a.expected, a.low, a.high
        );
        println!(
            "  {:<14} {:>7.2} {:>22.2}",
            "  p (ECE)", b.p_value, a.p_value
        );
        println!(
            "  {:<14} {:>7.4} {:>22.4}",
            "adaptive ECE", r.before.adaptive_ece, r.after.adaptive_ece
        );
        println!(
            "  {:<14} {:>7.4} {:>22.4}",
            "MCE", r.before.mce, r.after.mce
        );
        if let Some(w) = &r.after.small_sample_warning {
            println!("  note: {w}");
        }
    }
}

/// Reads `--cv`: the training report of a k-fold run. Errors name the file
/// and say what was expected where another kind of file was given.
fn read_cross_validation(path: &std::path::Path) -> Result<RunOutcome> {
    const EXPECTED: &str =
        "expected the training.json that `melxai train --folds K` writes to reports/<name>/";
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    let run: RunOutcome = serde_json::from_str(&text)
        .with_context(|| format!("{}: not a training report ({EXPECTED})", path.display()))?;
    if run.splits.len() < 2 || run.cross_validation.is_none() {
        anyhow::bail!(
            "{}: the training report of `{}` is a single-split run, not a cross-validation ({EXPECTED}); \
             calibrate a single checkpoint with --checkpoint weights/{}",
            path.display(),
            run.name,
            run.name
        );
    }
    Ok(run)
}
