//! `melxai compare`: within-model and cross-model agreement of explanations.

use std::path::PathBuf;

use anyhow::{Context, Result};
use melxai::compare::run::ComparisonReport;
use melxai::compare::Metric;
use melxai::config::Config;
use melxai::data::split::SplitName;
use melxai::ensemble::{read_meta, Model};
use melxai::explain::{ExplainConfig, Method};
use melxai::jobs::compare::{compare, CompareJob};
use melxai::jobs::{self, JobContext};

use super::progress::CliProgress;

#[derive(Debug, clap::Args)]
pub struct CompareArgs {
    /// Reference checkpoint (its recorded split picks the images).
    #[arg(long)]
    pub checkpoint: PathBuf,
    /// Other checkpoints to compare against (repeatable).
    #[arg(long)]
    pub against: Vec<PathBuf>,
    /// test, val, train or all.
    #[arg(long, default_value = "test")]
    pub split: SplitName,
    #[arg(long, default_value = "gradcam,ig,deeplift")]
    pub methods: String,
    /// IG steps (the study used 200).
    #[arg(long)]
    pub steps: Option<usize>,
    #[arg(long, default_value = "reports/compare")]
    pub out: PathBuf,
    /// Also score the first model's maps (`[scores]`): faithfulness,
    /// complexity, randomisation, robustness, localisation with `[data] masks`.
    #[arg(long)]
    pub scores: bool,
    #[arg(long)]
    pub json: bool,
}

pub fn run(config: &Config, args: &CompareArgs) -> Result<i32> {
    let meta = read_meta(&args.checkpoint)?;
    let cancel = super::progress::cancel_on_ctrl_c("the next map");
    let mut sink = CliProgress::new();
    let mut ctx = JobContext::for_config(config, &mut sink, &cancel)?;
    let device = ctx.device;
    let data = jobs::scan_data(&mut ctx)?;
    let ids: Vec<String> = match (args.split, &meta.split) {
        (SplitName::All, _) => data.samples.iter().map(|s| s.id.clone()).collect(),
        (SplitName::Test, Some(r)) => r.test.clone(),
        (SplitName::Val, Some(r)) => r.val.clone(),
        (SplitName::Train, Some(r)) => r.train.clone(),
        (_, None) => anyhow::bail!(
            "{} records no split; use --split all",
            args.checkpoint.display()
        ),
    };
    if ids.is_empty() {
        let why = if melxai::ensemble::is_ensemble_path(&args.checkpoint) {
            "it is a fold ensemble, and every image trained at least one of its members, \
             so it holds no image left out by all of them"
                .to_string()
        } else {
            format!("its recorded {} split is empty", args.split)
        };
        anyhow::bail!(
            "{}: no {} images to compare on: {why}. Use --split all, or a single checkpoint \
             (e.g. one fold member) as the reference model",
            args.checkpoint.display(),
            args.split
        );
    }
    let mut models = vec![(
        args.checkpoint.clone(),
        Model::load(&args.checkpoint, device)?,
    )];
    for p in &args.against {
        models.push((
            p.clone(),
            Model::load(p, device).with_context(|| format!("loading {}", p.display()))?,
        ));
    }
    for (path, model) in &models {
        jobs::check_classes(path, &model.meta.class_names, &data)?;
    }
    let mut explain: ExplainConfig = config.explain.clone();
    if let Some(s) = args.steps {
        explain.steps = s;
        explain
            .validate()
            .map_err(|e| e.for_flags(&[("steps", "--steps")], "[explain]"))?;
    }
    let positive = jobs::positive_class(config, &data.classes)?;
    let job = CompareJob {
        data: &data,
        models: &models,
        sample_ids: ids,
        split: args.split.to_string(),
        methods: Method::parse_list(&args.methods)?,
        explain,
        positive,
        out_dir: args.out.clone(),
        scores: args.scores.then(|| config.scores.clone()),
        masks: config.data.masks.clone(),
    };
    let report = match compare(&mut ctx, job) {
        Err(melxai::Error::Cancelled) => {
            eprintln!("cancelled; maps written so far are reused by the next run");
            return Ok(130);
        }
        r => r?,
    };
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print_summary(&report);
        eprintln!("written: {}/agreement.json and CSVs", args.out.display());
    }
    Ok(0)
}

pub fn print_summary(r: &ComparisonReport) {
    println!(
        "{} images ({} split), methods {}",
        r.sample_ids.len(),
        r.split,
        r.methods
            .iter()
            .map(|m| m.key())
            .collect::<Vec<_>>()
            .join(", ")
    );
    for m in &r.models {
        println!("within {}: mean [95% CI] over images", m.model);
        for metric in Metric::SHOWN.map(Metric::name) {
            let mat = &m.within.overall[metric];
            for (i, row) in mat.iter().enumerate() {
                for (j, s) in row.iter().enumerate().skip(i + 1) {
                    println!(
                        "  {metric:<8} {:>9} vs {:<9} {:.3} ± {:.3} [{:.3}, {:.3}]",
                        r.methods[i], r.methods[j], s.mean, s.std, s.ci_low, s.ci_high
                    );
                }
            }
        }
    }
    for c in &r.cross {
        println!(
            "cross {} vs {} ({} images): predictions agree {:.1}%, mean |Δp| {:.3}",
            c.model_a,
            c.model_b,
            c.images,
            100.0 * c.prediction_agreement,
            c.mean_abs_probability_difference
        );
        for (method, metrics) in &c.per_method {
            let line: Vec<String> = Metric::SHOWN
                .map(Metric::name)
                .iter()
                .map(|k| format!("{k} {:.3}", metrics[*k].mean))
                .collect();
            println!("  {method:<9} {}", line.join("  "));
        }
    }
}
