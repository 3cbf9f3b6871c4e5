//! Temperature scaling of softmax classifiers, and the calibration report
//! and bootstrap built on the measures.
//!
//! Why: a fine-tuned CNN's softmax outputs are usually over-confident, and the
//! explanations we show are only as trustworthy as the probabilities next to
//! them. Temperature scaling (Guo et al., 2017, "On Calibration of Modern
//! Neural Networks") fits one scalar `T > 0` on held-out logits so that
//! `softmax(z / T)` minimises the negative log-likelihood; it never changes the
//! predicted class, so accuracy-type metrics are unaffected.
//!
//! The measures themselves (ECE, Brier, NLL, reliability bins) and their
//! input checks are [`super::measures`].
//!
//! Test splits here are tiny (26 images), so point estimates of ECE are noisy
//! and biased upwards; [`calibration_bootstrap`] gives percentile intervals and
//! both the report and the bootstrap carry a warning below
//! [`SMALL_SAMPLE_THRESHOLD`] samples.

use super::measures::*;
use crate::metrics::{bootstrap_statistic, BootstrapOptions, Interval};
use serde::{Deserialize, Serialize};

/// Number of equal-width bins used by Guo et al. (2017).
pub const DEFAULT_N_BINS: usize = 15;
/// Smallest temperature [`fit_temperature`] may return.
pub const MIN_TEMPERATURE: f64 = 0.05;
/// Largest temperature [`fit_temperature`] may return.
pub const MAX_TEMPERATURE: f64 = 20.0;
/// Below this many samples reports carry a `small_sample_warning`.
pub const SMALL_SAMPLE_THRESHOLD: usize = 100;

/// Result of [`fit_temperature`].
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct TemperatureFit {
    /// Fitted temperature in `[MIN_TEMPERATURE, MAX_TEMPERATURE]`.
    pub temperature: f64,
    /// Mean NLL at `T = 1`.
    pub nll_before: f64,
    /// Mean NLL at the fitted temperature; always `<= nll_before`.
    pub nll_after: f64,
    /// Newton/bisection iterations used (0 if the optimum is at a bound).
    pub iterations: usize,
    /// True if the optimum lies at or beyond a bound of the allowed range and
    /// the temperature was clamped (e.g. perfectly separated training logits).
    pub at_bound: bool,
}

/// Mean NLL derivatives w.r.t. the inverse temperature `beta`:
/// `(dNLL/dβ, d²NLL/dβ²) = mean_i (E_p[z] − z_y, Var_p[z])`, `p = softmax(βz)`.
fn nll_derivatives(logits: &[Vec<f64>], labels: &[usize], beta: f64) -> (f64, f64) {
    let (mut g, mut h) = (0.0, 0.0);
    for (r, &y) in logits.iter().zip(labels) {
        // Two passes over p_k = exp(βz_k − lse) instead of allocating p.
        let lse = log_sum_exp(r, beta);
        let p = |zk: f64| (beta * zk - lse).exp();
        let mean: f64 = r.iter().map(|&zk| p(zk) * zk).sum();
        let var: f64 = r.iter().map(|&zk| p(zk) * (zk - mean).powi(2)).sum();
        g += mean - r[y];
        h += var;
    }
    let n = logits.len() as f64;
    (g / n, h / n)
}

/// Fits the temperature `T` minimising the mean NLL of `softmax(logits / T)`.
///
/// Method (and why it is robust): with `β = 1/T` the NLL
/// `mean_i [logsumexp(β z_i) − β z_iy]` is **convex** in β, so its derivative
/// is monotone and the optimum is the unique root of the derivative. We first
/// check the derivative's sign at the bounds `β ∈ [1/MAX_TEMPERATURE,
/// 1/MIN_TEMPERATURE]` (clamping and setting `at_bound` if the root lies
/// outside), then run Newton's method safeguarded by bisection on the bracket,
/// starting at β = 1. Root-finding on the exact derivative converges to machine
/// precision, unlike minimising a flat objective by comparisons.
///
/// Guarantee: `nll_after <= nll_before`. If rounding makes the fitted `T` no
/// better than `T = 1`, `T = 1` is kept (`nll_after == nll_before`).
///
/// Errors on empty/ragged/non-finite logits, < 2 classes, or bad labels.
pub fn fit_temperature(logits: &[Vec<f64>], labels: &[usize]) -> Result<TemperatureFit> {
    validate_logits(logits, labels)?;
    let nll_before = nll(logits, labels, 1.0)?;
    let (beta_lo, beta_hi) = (1.0 / MAX_TEMPERATURE, 1.0 / MIN_TEMPERATURE);
    let (g_lo, _) = nll_derivatives(logits, labels, beta_lo);
    let (g_hi, _) = nll_derivatives(logits, labels, beta_hi);
    let mut iterations = 0;
    let mut at_bound = false;
    // A zero derivative at a bound (flat objective, or probabilities that
    // saturate to one-hot at β = 20) also means "no interior root".
    let beta = if g_lo >= 0.0 {
        at_bound = true;
        beta_lo
    } else if g_hi <= 0.0 {
        at_bound = true;
        beta_hi
    } else {
        let (mut a, mut b) = (beta_lo, beta_hi);
        let mut beta = 1.0;
        while iterations < 200 {
            iterations += 1;
            let (g, h) = nll_derivatives(logits, labels, beta);
            if g == 0.0 {
                break;
            }
            if g < 0.0 {
                a = beta;
            } else {
                b = beta;
            }
            let newton = beta - g / h;
            let next = if h > 0.0 && newton > a && newton < b {
                newton
            } else {
                0.5 * (a + b)
            };
            let step = (next - beta).abs();
            beta = next;
            if step <= 1e-13 * beta || b - a <= 1e-13 * beta {
                break;
            }
        }
        beta
    };
    let temperature = 1.0 / beta;
    let nll_after = nll(logits, labels, temperature)?;
    // Anything but "strictly better" (including NaN) keeps T = 1.
    if nll_after.partial_cmp(&nll_before) != Some(std::cmp::Ordering::Less) {
        return Ok(TemperatureFit {
            temperature: 1.0,
            nll_before,
            nll_after: nll_before,
            iterations,
            at_bound: false,
        });
    }
    Ok(TemperatureFit {
        temperature,
        nll_before,
        nll_after,
        iterations,
        at_bound,
    })
}

/// What [`calibration_report`] and [`calibration_bootstrap`] evaluate.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct CalibrationConfig {
    /// Temperature applied to the logits (1.0 = uncalibrated).
    pub temperature: f64,
    /// Class index of the positive class (melanoma) for the binary Brier score.
    pub positive: usize,
    /// Equal-width / equal-mass bins for ECE, MCE and adaptive ECE.
    pub n_bins: usize,
}

impl Default for CalibrationConfig {
    /// `T = 1`, positive class 0 (melanoma in the sorted class list), 15 bins.
    fn default() -> Self {
        Self {
            temperature: 1.0,
            positive: 0,
            n_bins: DEFAULT_N_BINS,
        }
    }
}

/// Calibration summary of one split at one temperature.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CalibrationReport {
    /// Temperature the logits were divided by.
    pub temperature: f64,
    /// Number of samples.
    pub n: usize,
    /// Number of classes.
    pub num_classes: usize,
    /// Number of bins used for ECE/MCE/adaptive ECE.
    pub n_bins: usize,
    /// Top-1 accuracy (unchanged by temperature), in [0, 1].
    pub accuracy: f64,
    /// Equal-width ECE, in [0, 1].
    pub ece: f64,
    /// Equal-mass ECE, in [0, 1].
    pub adaptive_ece: f64,
    /// Maximum calibration error, in [0, 1].
    pub mce: f64,
    /// Headline Brier score: **binary** (`brier_score_loss` for the positive
    /// class), in [0, 1].
    pub brier: f64,
    /// Multi-class Brier score, in [0, 2] (twice `brier` for two classes).
    pub brier_multiclass: f64,
    /// Mean NLL, in [0, ∞).
    pub nll: f64,
    /// Equal-width reliability diagram.
    pub bins: Vec<ReliabilityBin>,
    /// Two classes only: Spiegelhalter's test and the logistic recalibration
    /// pair of the positive-class probability ([`super::small_sample`]);
    /// absent for more classes or where the fit does not exist.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub spiegelhalter: Option<super::small_sample::Spiegelhalter>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub recalibration: Option<super::small_sample::Recalibration>,
    /// Present when `n < SMALL_SAMPLE_THRESHOLD`.
    pub small_sample_warning: Option<String>,
}

fn small_sample_warning(n: usize, n_bins: usize) -> Option<String> {
    (n < SMALL_SAMPLE_THRESHOLD).then(|| {
        format!(
            "only {n} samples (< {SMALL_SAMPLE_THRESHOLD}): calibration estimates are very \
             noisy, bootstrap intervals are wide, and ECE with {n_bins} bins is biased upwards; \
             interpret differences between models with care"
        )
    })
}

/// Per-sample quantities every calibration metric is built from.
struct PerSample {
    conf: Vec<f64>,
    correct: Vec<bool>,
    pos_prob: Vec<f64>,
    sq_err_multi: Vec<f64>,
    nll: Vec<f64>,
}

fn per_sample(
    logits: &[Vec<f64>],
    labels: &[usize],
    config: &CalibrationConfig,
) -> Result<PerSample> {
    let k = validate_logits(logits, labels)?;
    validate_temperature(config.temperature)?;
    validate_positive(config.positive, k)?;
    if config.n_bins == 0 {
        return Err(CalibrationError::InvalidBins);
    }
    let beta = 1.0 / config.temperature;
    let probs: Vec<Vec<f64>> = logits.iter().map(|r| softmax_row(r, beta)).collect();
    let (conf, correct) = confidences_and_correct(&probs, labels)?;
    Ok(PerSample {
        // Rounding can push a probability a hair above 1; keep ECE inputs valid.
        conf: conf.into_iter().map(|c| c.clamp(0.0, 1.0)).collect(),
        correct,
        pos_prob: probs
            .iter()
            .map(|p| p[config.positive].clamp(0.0, 1.0))
            .collect(),
        sq_err_multi: probs
            .iter()
            .zip(labels)
            .map(|(p, &y)| {
                p.iter()
                    .enumerate()
                    .map(|(c, &pk)| (pk - if c == y { 1.0 } else { 0.0 }).powi(2))
                    .sum()
            })
            .collect(),
        nll: per_sample_nll(logits, labels, beta),
    })
}

fn mean(v: impl Iterator<Item = f64>, n: usize) -> f64 {
    v.sum::<f64>() / n as f64
}

/// Full calibration report of `softmax(logits / config.temperature)`.
///
/// Errors on invalid logits/labels, a bad temperature, `positive >=
/// num_classes`, or `n_bins == 0`.
pub fn calibration_report(
    logits: &[Vec<f64>],
    labels: &[usize],
    config: &CalibrationConfig,
) -> Result<CalibrationReport> {
    let ps = per_sample(logits, labels, config)?;
    let n = logits.len();
    let bins = reliability_bins(&ps.conf, &ps.correct, config.n_bins)?;
    let binary = logits.first().map_or(0, Vec::len) == 2;
    let outcome: Vec<usize> = labels
        .iter()
        .map(|&l| usize::from(l == config.positive))
        .collect();
    let finite = |v: f64| v.is_finite().then_some(v);
    let spiegelhalter = binary
        .then(|| super::small_sample::spiegelhalter(&ps.pos_prob, &outcome).ok())
        .flatten()
        .filter(|s| finite(s.z).is_some());
    let recalibration = binary
        .then(|| super::small_sample::recalibration(&ps.pos_prob, &outcome).ok())
        .flatten()
        .filter(|r| finite(r.slope).is_some() && finite(r.intercept).is_some());
    Ok(CalibrationReport {
        spiegelhalter,
        recalibration,
        temperature: config.temperature,
        n,
        num_classes: logits.first().map_or(0, Vec::len),
        n_bins: config.n_bins,
        accuracy: ps.correct.iter().filter(|&&c| c).count() as f64 / n as f64,
        ece: ece(&ps.conf, &ps.correct, config.n_bins)?,
        adaptive_ece: adaptive_ece(&ps.conf, &ps.correct, config.n_bins)?,
        mce: mce(&ps.conf, &ps.correct, config.n_bins)?,
        brier: brier_binary(&ps.pos_prob, labels, config.positive)?,
        brier_multiclass: mean(ps.sq_err_multi.iter().copied(), n),
        nll: mean(ps.nll.iter().copied(), n),
        bins,
        small_sample_warning: small_sample_warning(n, config.n_bins),
    })
}

/// Bootstrap intervals for the headline calibration numbers.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CalibrationBootstrap {
    /// Equal-width ECE.
    pub ece: Interval,
    /// Binary Brier score (the headline Brier).
    pub brier: Interval,
    /// Mean NLL.
    pub nll: Interval,
    /// The equal-width ECE that perfectly calibrated outcomes reach on these
    /// confidences, and how often they reach the observed one.
    pub ece_if_calibrated: super::consistency::EceConsistency,
    /// Number of samples.
    pub n: usize,
    /// Present when `n < SMALL_SAMPLE_THRESHOLD`.
    pub small_sample_warning: Option<String>,
}

/// Percentile bootstrap CIs of ECE, binary Brier and NLL at a **fixed**
/// temperature (the temperature is fitted on a separate split and not refitted
/// per resample, so the intervals reflect test-set sampling noise only).
///
/// All three statistics use the same seed and never produce NaN, so they are
/// computed on the same (paired) resamples. `ece_if_calibrated` draws
/// `opts.n_resamples` perfectly calibrated outcomes with the same seed.
///
/// Errors as [`calibration_report`] and [`bootstrap_statistic`].
pub fn calibration_bootstrap(
    logits: &[Vec<f64>],
    labels: &[usize],
    config: &CalibrationConfig,
    opts: &BootstrapOptions,
) -> Result<CalibrationBootstrap> {
    let ps = per_sample(logits, labels, config)?;
    let n = logits.len();
    let pos_sq_err: Vec<f64> = ps
        .pos_prob
        .iter()
        .zip(labels)
        .map(|(&p, &l)| (p - if l == config.positive { 1.0 } else { 0.0 }).powi(2))
        .collect();
    let point_ece = ece(&ps.conf, &ps.correct, config.n_bins)?;
    let (mut conf, mut correct) = (Vec::with_capacity(n), Vec::with_capacity(n));
    let ece_ci = bootstrap_statistic(
        n,
        point_ece,
        |idx| {
            conf.clear();
            correct.clear();
            conf.extend(idx.iter().map(|&i| ps.conf[i]));
            correct.extend(idx.iter().map(|&i| ps.correct[i]));
            // Inputs are valid, so this cannot fail; NaN would be skipped.
            ece(&conf, &correct, config.n_bins).unwrap_or(f64::NAN)
        },
        opts,
    )?;
    let mean_ci = |values: &[f64]| {
        bootstrap_statistic(
            n,
            mean(values.iter().copied(), n),
            |idx| mean(idx.iter().map(|&i| values[i]), idx.len()),
            opts,
        )
    };
    Ok(CalibrationBootstrap {
        ece: ece_ci,
        brier: mean_ci(&pos_sq_err)?,
        nll: mean_ci(&ps.nll)?,
        ece_if_calibrated: super::consistency::ece_consistency(
            &ps.conf,
            &ps.correct,
            config.n_bins,
            opts,
        )?,
        n,
        small_sample_warning: small_sample_warning(n, config.n_bins),
    })
}
