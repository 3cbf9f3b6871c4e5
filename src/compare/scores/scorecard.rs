//! The scorecard: every score of each method's map on each image, their
//! means with bootstrap intervals over images, and paired comparisons
//! between methods (a bootstrap of the per-image difference), so the report
//! can say which method is more faithful, concise and class-sensitive, and
//! by how much.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::complexity::{complexity, sparseness};
use super::localisation::{
    pointing_game, relevance_mass_accuracy, relevance_rank_accuracy, top_k_intersection,
};
use super::perturbation::{
    area_per_step, faithfulness_correlation, feature_order, pixel_flipping, random_subsets,
};
use super::randomisation::ssim_flat;
use super::road::{road, RoadOptions};
use super::{rows_of, ExplainFn, Image, ModelFn};
use crate::error::Result;
use crate::metrics::{bootstrap_statistic, BootstrapOptions, Interval};

/// `[explain.scores]`: which scores `--batch` and `explain --scores`
/// compute, and how.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ScoreSettings {
    /// Score the reference model's maps in `--batch`.
    pub enabled: bool,
    /// ROAD removal fractions and imputation noise (input scale).
    pub road_fractions: Vec<f64>,
    pub road_noise: f64,
    /// Faithfulness correlation: random subsets, each this share of the
    /// input features.
    pub correlation_runs: usize,
    pub correlation_subset: f64,
    /// Pixel-flipping steps over the whole image.
    pub flipping_steps: usize,
    /// Re-explain the other class (one more explanation per image and
    /// method).
    pub random_logit: bool,
    /// Max/avg-sensitivity and the local Lipschitz estimate: `samples` more
    /// explanations per image and method (opt-in: the cost of IG × samples).
    pub robustness: bool,
    pub robustness_samples: usize,
    /// Uniform noise radius for sensitivity, normal std for Lipschitz, in
    /// the model's (normalised) input units.
    pub robustness_radius: f64,
    /// The cascading model-parameter randomisation as a score (single
    /// networks; one explanation per layer group, image and method: opt-in).
    pub parameter_randomisation: bool,
    /// Score every model of `--batch`, not only the reference (× models).
    pub all_models: bool,
    /// Top-k intersection's k as a share of the pixels.
    pub top_k_share: f64,
    pub seed: u64,
}

impl Default for ScoreSettings {
    fn default() -> Self {
        ScoreSettings {
            enabled: true,
            road_fractions: super::road::default_fractions(),
            road_noise: 0.01,
            correlation_runs: 20,
            correlation_subset: 0.02,
            flipping_steps: 20,
            random_logit: true,
            robustness: false,
            robustness_samples: 5,
            robustness_radius: 0.1,
            parameter_randomisation: false,
            all_models: false,
            top_k_share: 0.05,
            seed: 0,
        }
    }
}

/// Against a lesion mask.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct LocalisationScores {
    #[serde(deserialize_with = "crate::progress::null_as_nan")]
    pub relevance_mass: f64,
    #[serde(deserialize_with = "crate::progress::null_as_nan")]
    pub relevance_rank: f64,
    pub pointing_game: bool,
    #[serde(deserialize_with = "crate::progress::null_as_nan")]
    pub top_k: f64,
}

/// One method's map on one image. Read back (a score store) with NaN
/// for the `null` serde_json writes for it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MapScores {
    /// ROAD: mean probability of the explained class with the most (MoRF,
    /// lower = more faithful) and least (LeRF, higher) relevant pixels
    /// imputed, and LeRF − MoRF (higher = more faithful).
    #[serde(deserialize_with = "crate::progress::null_as_nan")]
    pub road_morf: f64,
    #[serde(deserialize_with = "crate::progress::null_as_nan")]
    pub road_lerf: f64,
    #[serde(deserialize_with = "crate::progress::null_as_nan")]
    pub road_gap: f64,
    /// Pearson of the attribution removed and the probability lost over
    /// random subsets (higher = more faithful).
    #[serde(deserialize_with = "crate::progress::null_as_nan")]
    pub faithfulness_correlation: f64,
    /// Area under the pixel-flipping curve, fraction axis (lower = more
    /// faithful).
    #[serde(deserialize_with = "crate::progress::null_as_nan")]
    pub pixel_flipping_auc: f64,
    /// Gini index (higher = more concise) and entropy (lower).
    #[serde(deserialize_with = "crate::progress::null_as_nan")]
    pub sparseness: f64,
    #[serde(deserialize_with = "crate::progress::null_as_nan")]
    pub complexity: f64,
    /// SSIM of the maps of the explained and the other class (lower = the
    /// map depends on the class asked about).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub random_logit: Option<f64>,
    /// IG and DeepLIFT: |Σ attribution − (f(x) − f(baseline))| in logits
    /// (0 = complete).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub completeness_gap: Option<f64>,
    /// Mean Spearman between the map and the maps of the cascadingly
    /// randomised network (lower = the map depends on the parameters).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parameter_randomisation: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_sensitivity: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub avg_sensitivity: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub local_lipschitz: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub localisation: Option<LocalisationScores>,
}

/// One score: its name (in metrics.json and the CSV), its label in tables
/// and figures, and which way is better.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ScoreInfo {
    pub name: &'static str,
    pub label: &'static str,
    pub higher_is_better: bool,
}

impl ScoreInfo {
    /// "higher" or "lower".
    pub fn better(&self) -> &'static str {
        if self.higher_is_better {
            "higher"
        } else {
            "lower"
        }
    }
}

const fn info(name: &'static str, label: &'static str, higher_is_better: bool) -> ScoreInfo {
    ScoreInfo {
        name,
        label,
        higher_is_better,
    }
}

/// Every score, in display order.
pub const SCORE_INFO: [ScoreInfo; 16] = [
    info("road_morf", "ROAD, most relevant removed", false),
    info("road_lerf", "ROAD, least relevant removed", true),
    info("road_gap", "ROAD LeRF − MoRF", true),
    info("faithfulness_correlation", "faithfulness correlation", true),
    info("pixel_flipping_auc", "pixel-flipping AUC", false),
    info("sparseness", "sparseness, Gini", true),
    info("complexity", "complexity, entropy", false),
    info("random_logit", "random-logit SSIM", false),
    info(
        "parameter_randomisation",
        "parameter randomisation, Spearman",
        false,
    ),
    info("completeness_gap", "completeness gap, logits", false),
    info("max_sensitivity", "max-sensitivity", false),
    info("avg_sensitivity", "avg-sensitivity", false),
    info("local_lipschitz", "local Lipschitz", false),
    info("relevance_mass", "relevance mass in lesion", true),
    info("relevance_rank", "relevance rank in lesion", true),
    info("top_k", "top-5 % in lesion", true),
];

/// The scores the paired comparison decides on (one per question: ROAD's
/// gap stands for its two curves, max-sensitivity for robustness).
pub const PAIRED: [&str; 9] = [
    "road_gap",
    "faithfulness_correlation",
    "pixel_flipping_auc",
    "sparseness",
    "random_logit",
    "parameter_randomisation",
    "completeness_gap",
    "max_sensitivity",
    "relevance_mass",
];

/// The [`ScoreInfo`] of `name`.
pub fn score_info(name: &str) -> Option<&'static ScoreInfo> {
    SCORE_INFO.iter().find(|s| s.name == name)
}

impl MapScores {
    /// Every computed score as `(name, value)`, in [`SCORE_INFO`] order.
    pub fn pairs(&self) -> Vec<(String, f64)> {
        SCORE_INFO
            .iter()
            .map(|s| (s.name.to_string(), self.get(s.name)))
            .filter(|(_, v)| !v.is_nan())
            .collect()
    }

    /// A score by its name in [`SCORE_INFO`] (NaN when not computed).
    pub fn get(&self, name: &str) -> f64 {
        let opt = |v: Option<f64>| v.unwrap_or(f64::NAN);
        match name {
            "road_gap" => self.road_gap,
            "road_morf" => self.road_morf,
            "road_lerf" => self.road_lerf,
            "faithfulness_correlation" => self.faithfulness_correlation,
            "pixel_flipping_auc" => self.pixel_flipping_auc,
            "sparseness" => self.sparseness,
            "complexity" => self.complexity,
            "random_logit" => opt(self.random_logit),
            "completeness_gap" => opt(self.completeness_gap),
            "parameter_randomisation" => opt(self.parameter_randomisation),
            "max_sensitivity" => opt(self.max_sensitivity),
            "avg_sensitivity" => opt(self.avg_sensitivity),
            "local_lipschitz" => opt(self.local_lipschitz),
            "relevance_mass" => opt(self.localisation.map(|l| l.relevance_mass)),
            "relevance_rank" => opt(self.localisation.map(|l| l.relevance_rank)),
            "top_k" => opt(self.localisation.map(|l| l.top_k)),
            _ => f64::NAN,
        }
    }
}

/// The scores of `map` (per pixel) that need only forward passes of
/// `model` (which returns the probabilities the scores are read on).
pub fn score_map(
    model: &ModelFn,
    x: &Image,
    map: &[f64],
    target: usize,
    mask: Option<&[bool]>,
    s: &ScoreSettings,
) -> Result<MapScores> {
    let road_opts = RoadOptions {
        fractions: s.road_fractions.clone(),
        noise: s.road_noise,
        seed: s.seed,
        ..RoadOptions::default()
    };
    let morf = road(model, x, map, target, true, &road_opts)?.mean_output();
    let lerf = road(model, x, map, target, false, &road_opts)?.mean_output();
    let features = x.data.len();
    let size = ((features as f64 * s.correlation_subset).round() as usize).max(1);
    let subsets = random_subsets(features, size, s.correlation_runs.max(2), s.seed);
    let order = feature_order(map, x.channels);
    let step = order.len().div_ceil(s.flipping_steps.max(1));
    let curve = pixel_flipping(model, x, &order, step, target)?;
    let k = ((map.len() as f64 * s.top_k_share).round() as usize).max(1);
    Ok(MapScores {
        road_morf: morf,
        road_lerf: lerf,
        road_gap: lerf - morf,
        faithfulness_correlation: faithfulness_correlation(model, x, map, target, &subsets)?,
        pixel_flipping_auc: area_per_step(&curve) / (curve.len().max(2) - 1) as f64,
        sparseness: sparseness(map),
        complexity: complexity(map),
        random_logit: None,
        completeness_gap: None,
        parameter_randomisation: None,
        max_sensitivity: None,
        avg_sensitivity: None,
        local_lipschitz: None,
        localisation: mask.map(|m| LocalisationScores {
            relevance_mass: relevance_mass_accuracy(map, m),
            relevance_rank: relevance_rank_accuracy(map, m),
            pointing_game: pointing_game(map, m),
            top_k: top_k_intersection(map, m, k, false),
        }),
    })
}

/// Adds the scores that re-explain: the random logit (the other class) and,
/// when enabled, sensitivity and the Lipschitz estimate.
pub fn add_reexplained(
    scores: &mut MapScores,
    explain: &ExplainFn,
    x: &Image,
    map: &[f64],
    target: usize,
    other: Option<usize>,
    s: &ScoreSettings,
) -> Result<()> {
    use super::robustness::{
        lipschitz_ratios, nan_max, nan_mean, normal_noise, sensitivity, uniform_noise,
    };
    if let (true, Some(other)) = (s.random_logit, other) {
        let b = rows_of(&explain(&x.tensor(), &[other as i64])?.view([1, -1]))?;
        scores.random_logit = Some(ssim_flat(map, &b[0]));
    }
    if s.robustness {
        let n = x.data.len();
        let uniform = uniform_noise(n, s.robustness_radius, s.robustness_samples, s.seed);
        let per = sensitivity(explain, x, map, target, &uniform)?;
        scores.max_sensitivity = Some(nan_max(&per));
        scores.avg_sensitivity = Some(nan_mean(&per));
        let normal = normal_noise(n, s.robustness_radius, s.robustness_samples, s.seed + 1);
        scores.local_lipschitz = Some(nan_max(&lipschitz_ratios(
            explain, x, map, target, &normal,
        )?));
    }
    Ok(())
}

/// A mean over images with its bootstrap interval.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct ScoreSummary {
    pub mean: f64,
    pub ci: Interval,
    pub n: usize,
}

/// Method `a` against method `b` on one score: the mean per-image
/// difference `a − b` with its bootstrap interval, and which is better when
/// the interval excludes 0.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PairedComparison {
    pub score: String,
    pub a: String,
    pub b: String,
    pub mean_difference: f64,
    pub ci: Interval,
    /// The better method, `None` when the interval holds 0.
    pub better: Option<String>,
}

/// Every image's scores per method, summarised.
#[derive(Debug, Clone, Serialize)]
pub struct Scorecard {
    pub model: String,
    pub images: usize,
    /// Method → score name → summary.
    pub summary: BTreeMap<String, BTreeMap<String, ScoreSummary>>,
    pub paired: Vec<PairedComparison>,
    /// Per image (id) and method, every score.
    pub per_image: BTreeMap<String, BTreeMap<String, MapScores>>,
    /// Why localisation is absent, when it is.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub localisation_note: Option<String>,
}

/// Mean of `v` over `idx`, NaN entries skipped.
fn mean_over(v: &[f64], idx: &[usize]) -> f64 {
    super::robustness::nan_mean(&idx.iter().map(|&i| v[i]).collect::<Vec<_>>())
}

/// Summaries and paired comparisons of `per_image` (id → method → scores).
pub fn scorecard(
    model: &str,
    per_image: BTreeMap<String, BTreeMap<String, MapScores>>,
    opts: &BootstrapOptions,
) -> Result<Scorecard> {
    let methods: Vec<String> = per_image
        .values()
        .next()
        .map(|m| m.keys().cloned().collect())
        .unwrap_or_default();
    let names = SCORE_INFO.map(|s| s.name);
    let column = |method: &str, name: &str| -> Vec<f64> {
        per_image
            .values()
            .map(|m| m.get(method).map_or(f64::NAN, |s| s.get(name)))
            .collect()
    };
    let n = per_image.len();
    let all: Vec<usize> = (0..n).collect();
    let mut summary = BTreeMap::new();
    for method in &methods {
        let mut by_score = BTreeMap::new();
        for name in names {
            let v = column(method, name);
            let used = v.iter().filter(|x| !x.is_nan()).count();
            if used == 0 {
                continue;
            }
            let point = mean_over(&v, &all);
            let ci = bootstrap_statistic(n, point, |idx| mean_over(&v, idx), opts)
                .map_err(|e| crate::Error::Other(format!("scorecard: {e}")))?;
            by_score.insert(
                name.to_string(),
                ScoreSummary {
                    mean: point,
                    ci,
                    n: used,
                },
            );
        }
        summary.insert(method.clone(), by_score);
    }
    let mut paired = Vec::new();
    for (i, a) in methods.iter().enumerate() {
        for b in &methods[i + 1..] {
            for name in PAIRED {
                let higher_better = score_info(name).is_some_and(|s| s.higher_is_better);
                let (va, vb) = (column(a, name), column(b, name));
                let d: Vec<f64> = va.iter().zip(&vb).map(|(x, y)| x - y).collect();
                if d.iter().all(|x| x.is_nan()) {
                    continue;
                }
                let point = mean_over(&d, &all);
                let ci = bootstrap_statistic(n, point, |idx| mean_over(&d, idx), opts)
                    .map_err(|e| crate::Error::Other(format!("scorecard: {e}")))?;
                let better = if ci.low > 0.0 {
                    Some(if higher_better { a } else { b })
                } else if ci.high < 0.0 {
                    Some(if higher_better { b } else { a })
                } else {
                    None
                };
                paired.push(PairedComparison {
                    score: name.to_string(),
                    a: a.clone(),
                    b: b.clone(),
                    mean_difference: point,
                    ci,
                    better: better.cloned(),
                });
            }
        }
    }
    Ok(Scorecard {
        model: model.to_string(),
        images: n,
        summary,
        paired,
        per_image,
        localisation_note: None,
    })
}
