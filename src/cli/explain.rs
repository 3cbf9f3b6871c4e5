//! `melxai explain`: GradCAM / IG / DeepLIFT maps for images, written to disk.

use std::path::PathBuf;

use anyhow::{Context, Result};
use melxai::compare::sanity::randomisation;
use melxai::config::Config;
use melxai::data::image::{denormalise, load_input};
use melxai::ensemble::explain::explain_with_agreement;
use melxai::ensemble::Model;
use melxai::explain::faithfulness::curves;
use melxai::explain::heatmap::tensor_to_rgb;
use melxai::explain::{output, Baseline, ExplainConfig, Integration, Method};
use melxai::model::{parse_device, Arch, Classifier};
use serde_json::json;

#[derive(Debug, clap::Args)]
pub struct ExplainArgs {
    /// Images or preprocessed .npy inputs.
    #[arg(required = true)]
    pub inputs: Vec<PathBuf>,
    #[arg(long, conflicts_with = "imagenet")]
    pub checkpoint: Option<PathBuf>,
    /// Explain the shipped ImageNet model instead of a checkpoint.
    #[arg(long)]
    pub imagenet: bool,
    #[arg(long, default_value = "lite0")]
    pub arch: String,
    /// Comma-separated: gradcam, gradcam++, ig, deeplift.
    #[arg(long, default_value = "gradcam,ig,deeplift")]
    pub method: String,
    /// Class to explain, by name (`mel`, `melanoma`) or logit index
    /// (default: [explain] target, else the predicted class).
    #[arg(long)]
    pub target: Option<String>,
    /// IG steps (default: [explain] steps).
    #[arg(long)]
    pub steps: Option<usize>,
    /// IG rule: gausslegendre, riemann_left, riemann_right, riemann_middle, riemann_trapezoid
    /// (default: [explain] integration).
    #[arg(long)]
    pub integration: Option<String>,
    /// IG inputs per forward/backward pass (default: [explain] internal_batch).
    #[arg(long)]
    pub internal_batch: Option<usize>,
    /// Baseline for IG and DeepLIFT: zero, black, blur, noise (default: [explain] baseline).
    #[arg(long)]
    pub baseline: Option<String>,
    /// GradCAM layer (default: [explain] cam_layer).
    #[arg(long)]
    pub layer: Option<String>,
    #[arg(long, default_value = "reports/explain")]
    pub out: PathBuf,
    /// Also compute deletion/insertion curves (AUC) per map.
    #[arg(long)]
    pub faithfulness: bool,
    /// Also run the model-randomisation sanity check (slow).
    #[arg(long)]
    pub sanity: bool,
    /// Also score each map: ROAD, faithfulness correlation, pixel flipping,
    /// sparseness, complexity, random logit (and robustness when `[scores]
    /// robustness` is on); see `[scores]` in config.toml.
    #[arg(long)]
    pub scores: bool,
    /// A lesion mask (white = lesion) for the localisation scores of
    /// `--scores`; resized to the input.
    #[arg(long)]
    pub mask: Option<PathBuf>,
    #[arg(long)]
    pub json: bool,
    /// Print the overlays in the terminal after the run.
    #[arg(long)]
    pub show: bool,
}

/// `[explain]` of config.toml with the flags given on top, range-checked
/// with the flag named.
fn explain_config(config: &Config, args: &ExplainArgs) -> Result<ExplainConfig> {
    let mut cfg = config.explain.clone();
    if let Some(v) = args.steps {
        cfg.steps = v;
    }
    if let Some(v) = &args.integration {
        cfg.integration = v.parse::<Integration>()?;
    }
    if let Some(v) = args.internal_batch {
        cfg.internal_batch = v;
    }
    if let Some(v) = &args.baseline {
        cfg.baseline = v.parse::<Baseline>()?;
    }
    if let Some(v) = &args.layer {
        cfg.cam_layer = v.clone();
    }
    cfg.validate().map_err(|e| {
        e.for_flags(
            &[
                ("steps", "--steps"),
                ("internal_batch", "--internal-batch"),
                ("cam_layer", "--layer"),
            ],
            "[explain]",
        )
    })?;
    Ok(cfg)
}

/// The logit index of `--target`: a class name of the model, or an index.
fn target_class(classes: &[String], target: &str) -> Result<usize> {
    if let Some(i) = classes.iter().position(|c| c == target) {
        return Ok(i);
    }
    match target.parse::<usize>() {
        Ok(i) if i < classes.len() => Ok(i),
        _ => anyhow::bail!("--target {target}: not a class of the model (its classes: {classes:?}) nor an index below {}", classes.len()),
    }
}

/// The checkpoint (a model or an ensemble) or the bare ImageNet network.
fn load_model(config: &Config, args: &ExplainArgs, device: tch::Device) -> Result<Model> {
    match &args.checkpoint {
        Some(p) => Ok(Model::load(p, device)?),
        None if args.imagenet => {
            let arch: Arch = args.arch.parse()?;
            Ok(Classifier::imagenet(arch, &config.model.weights_dir, device)?.into())
        }
        None => anyhow::bail!("explain needs --checkpoint PATH or --imagenet"),
    }
}

pub fn run(config: &Config, args: &ExplainArgs) -> Result<i32> {
    let mut cfg = explain_config(config, args)?;
    let device = parse_device(&config.device)?;
    let model = load_model(config, args, device)?;
    // A fresh copy of the network, for the checks that perturb its weights.
    let load = || -> melxai::Result<Classifier> {
        match &args.checkpoint {
            Some(p) => Classifier::from_checkpoint(p, device),
            None => Classifier::imagenet(args.arch.parse()?, &config.model.weights_dir, device),
        }
    };
    if let Some(t) = &args.target {
        cfg.target = Some(target_class(&model.meta.class_names, t)?);
    }
    // The faithfulness curves and the randomisation check perturb one network.
    if args.faithfulness {
        model.require_single("--faithfulness")?;
    }
    if args.sanity {
        model.require_single("--sanity")?;
    }
    let methods = Method::parse_list(&args.method)?;
    let mut results = Vec::new();
    let mut overlays = Vec::new();
    let mut failures = 0;
    let stems = melxai::explain::output::input_stems(&args.inputs)?;
    melxai::files::clean_stale_temps(&args.out);
    for (input, stem) in args.inputs.iter().zip(&stems) {
        let x = match load_input(input, model.meta.input_size, &model.meta.normalisation) {
            Ok(x) => x,
            Err(e) => {
                eprintln!("error: {e}");
                failures += 1;
                continue;
            }
        };
        let rgb = tensor_to_rgb(&denormalise(&x, &model.meta.normalisation))?;
        for &method in &methods {
            // An ensemble: the combined map, and how far its members' maps agree.
            let (e, agreement) = explain_with_agreement(&model, &x, method, &cfg, None)
                .with_context(|| format!("{} on {}", method.label(), input.display()))?;
            let files = output::write(&e, &rgb, &args.out, stem)?;
            let faith = if args.faithfulness {
                let b = Baseline::Blur.build(&x.unsqueeze(0), &model.meta.normalisation, 0);
                Some(curves(
                    model.require_single("--faithfulness")?,
                    &x.unsqueeze(0),
                    &b,
                    &e.heatmap,
                    e.target,
                    // ROAD's grid: 0, 10, …, 100 % in the same order.
                    10,
                )?)
            } else {
                None
            };
            let class = model
                .meta
                .class_names
                .get(e.target)
                .cloned()
                .unwrap_or_default();
            if !args.json {
                print_explanation(stem, method, &class, &e, faith.as_ref(), &files.overlay);
                if let Some(a) = &agreement {
                    print_member_agreement(a);
                }
            }
            overlays.push(files.overlay.clone());
            results.push(json!({
                "input": input,
                "method": method.key(),
                "target": e.target,
                "class": class,
                "output": e.output,
                "baseline_output": e.baseline_output,
                "delta": e.delta,
                "seconds": e.seconds,
                "files": files,
                "faithfulness": faith,
                "member_agreement": agreement,
            }));
        }
        if args.scores {
            let single = model.single().is_some();
            let reload = single.then_some(&load as melxai::jobs::scores::Reload);
            let request = ScoreRequest {
                model: &model,
                x: &x,
                methods: &methods,
                cfg: &cfg,
                mask: args.mask.as_deref(),
                reload,
            };
            let scores = score_input(config, request)?;
            if !args.json {
                print_scores(&scores);
            }
            results.push(json!({ "input": input, "scores": scores }));
        }
        if args.sanity {
            let steps = randomisation(load, &x, &methods, &cfg)?;
            if !args.json {
                print_sanity(&steps);
            }
            results.push(json!({ "input": input, "sanity": steps }));
        }
    }
    if args.json {
        println!("{}", serde_json::to_string_pretty(&results)?);
    }
    if args.show {
        show_overlays(&overlays);
    }
    Ok(if failures > 0 { 2 } else { 0 })
}

/// One line per (input, method): target, logit, completeness delta,
/// faithfulness AUCs, time and the overlay written.
fn print_explanation(
    stem: &str,
    method: Method,
    class: &str,
    e: &melxai::explain::Explanation,
    faith: Option<&melxai::explain::faithfulness::Faithfulness>,
    overlay: &std::path::Path,
) {
    let delta = e.delta.map(|d| {
        let span = (e.output - e.baseline_output.unwrap_or(0.0)).abs();
        format!(
            "  delta {d:+.2e} ({:.2e} relative)",
            d.abs() / span.max(1e-12)
        )
    });
    let f = faith.map(|f| {
        format!(
            "  deletion AUC {:.3} insertion AUC {:.3}",
            f.deletion.auc, f.insertion.auc
        )
    });
    println!(
        "{} {:<9} target {} ({class}) logit {:.3}{}{}  {:.2}s -> {}",
        stem,
        method.key(),
        e.target,
        e.output,
        delta.unwrap_or_default(),
        f.unwrap_or_default(),
        e.seconds,
        overlay.display()
    );
}

/// How far an ensemble's members' maps of the input agree.
fn print_member_agreement(a: &melxai::explain::split::MemberAgreement) {
    use melxai::compare::similarity::Metric;
    println!(
        "  {} members agree: SSIM {:.3}  Pearson {:.3}  Spearman {:.3}  Jaccard {:.3} (mean of {} pairs)",
        a.members,
        a.get(Metric::Ssim),
        a.get(Metric::Pearson),
        a.get(Metric::Spearman),
        a.get(Metric::Jaccard),
        a.pairs
    );
}

/// `--show`: the overlays drawn inline (kitty, sixel, iTerm2 or half-blocks).
fn show_overlays(overlays: &[std::path::PathBuf]) {
    let conf = viuer::Config {
        width: Some(40),
        absolute_offset: false,
        ..Default::default()
    };
    for p in overlays {
        println!("{}", p.display());
        let shown = image::open(p)
            .map_err(|e| e.to_string())
            .and_then(|img| viuer::print(&img, &conf).map_err(|e| e.to_string()));
        if let Err(e) = shown {
            eprintln!("cannot show {}: {e}", p.display());
        }
    }
}

/// The maps of `methods` for `x` (normalised `(3, H, W)`), each scored;
/// `reload` gives a fresh copy of a single network (parameter
/// randomisation).
struct ScoreRequest<'a> {
    model: &'a Model,
    x: &'a tch::Tensor,
    methods: &'a [Method],
    cfg: &'a ExplainConfig,
    mask: Option<&'a std::path::Path>,
    reload: Option<melxai::jobs::scores::Reload<'a>>,
}

fn score_input(
    config: &Config,
    request: ScoreRequest,
) -> Result<std::collections::BTreeMap<String, melxai::compare::scores::scorecard::MapScores>> {
    let ScoreRequest {
        model,
        x,
        methods,
        cfg,
        mask,
        reload,
    } = request;
    let size = x.size();
    let (h, w) = (size[1] as u32, size[2] as u32);
    let mask = match mask {
        Some(p) => Some(melxai::data::masks::load_mask(p, h, w)?),
        None => None,
    };
    let mut maps = std::collections::BTreeMap::new();
    let mut deltas = std::collections::BTreeMap::new();
    let mut target = 0;
    for &method in methods {
        let (e, _) = explain_with_agreement(model, x, method, cfg, None)?;
        target = e.target;
        if let Some(d) = e.delta {
            deltas.insert(method, d);
        }
        maps.insert(method, melxai::explain::heatmap::to_vec(&e.heatmap)?);
    }
    let classes = model.meta.class_names.len();
    // The random-logit test explains another class: the next one (binary:
    // the other).
    let image = melxai::jobs::scores::ImageToScore {
        x,
        maps: &maps,
        deltas: &deltas,
        target,
        other: (classes > 1).then(|| (target + 1) % classes),
        mask: mask.as_deref(),
    };
    Ok(melxai::jobs::scores::score_image(
        model,
        image,
        cfg,
        &config.scores,
        reload,
    )?)
}

/// One line per method: the headline scores, arrows saying which way is
/// better.
fn print_scores(
    scores: &std::collections::BTreeMap<String, melxai::compare::scores::scorecard::MapScores>,
) {
    println!(
        "  scores        ROAD MoRF↓ LeRF↑  gap↑   faith.corr↑ flip AUC↓ sparse↑ entropy↓ rand.logit↓"
    );
    let opt = |v: Option<f64>| v.map_or_else(|| "—".to_string(), |v| format!("{v:.3}"));
    for (method, s) in scores {
        println!(
            "  {:<12} {:>9.3} {:>6.3} {:>6.3} {:>12.3} {:>9.3} {:>7.3} {:>8.3} {:>11}",
            method,
            s.road_morf,
            s.road_lerf,
            s.road_gap,
            s.faithfulness_correlation,
            s.pixel_flipping_auc,
            s.sparseness,
            s.complexity,
            opt(s.random_logit)
        );
        if let Some(l) = &s.localisation {
            println!(
                "  {:<12} relevance mass {:.3}  rank {:.3}  pointing {}  top-5% {:.3}",
                "", l.relevance_mass, l.relevance_rank, l.pointing_game, l.top_k
            );
        }
        if s.completeness_gap.is_some() || s.parameter_randomisation.is_some() {
            println!(
                "  {:<12} completeness gap {} logits  parameter randomisation (Spearman) {}",
                "",
                opt(s.completeness_gap),
                opt(s.parameter_randomisation)
            );
        }
        if let (Some(mx), Some(avg), Some(l)) =
            (s.max_sensitivity, s.avg_sensitivity, s.local_lipschitz)
        {
            println!(
                "  {:<12} max-sensitivity {mx:.3}  avg {avg:.3}  Lipschitz {l:.3}",
                ""
            );
        }
    }
}

/// One line per randomisation step of `--sanity`.
fn print_sanity(steps: &[melxai::compare::sanity::SanityStep]) {
    for s in steps {
        println!(
            "  sanity: randomised through {:<14} SSIM {:?} Spearman {:?}",
            s.randomised_through, s.ssim, s.spearman
        );
    }
}
