//! Calibration of softmax classifiers: temperature scaling and calibration
//! metrics (ECE, adaptive ECE, MCE, Brier, NLL, reliability diagrams).
//!
//! Why: a fine-tuned CNN's softmax outputs are usually over-confident, and the
//! explanations we show are only as trustworthy as the probabilities next to
//! them. Temperature scaling (Guo et al., 2017, "On Calibration of Modern
//! Neural Networks") fits one scalar `T > 0` on held-out logits so that
//! `softmax(z / T)` minimises the negative log-likelihood; it never changes the
//! predicted class, so accuracy-type metrics are unaffected.
//!
//! Input convention: logits are given **row-major as `&[Vec<f64>]`**, one row
//! of `num_classes` raw (pre-softmax) scores per sample; all rows must have the
//! same length ≥ 2 and be finite. Labels are class indices `< num_classes`.
//! Probabilities for Brier score are given the same way (or as a positive-class
//! column for [`brier_binary`]).
//!
//! Brier score: two variants exist and differ by a factor of 2 in the binary
//! case. [`brier`] is the multi-class definition `mean_i Σ_k (p_ik − y_ik)²`
//! (range [0, 2]); [`brier_binary`] is scikit-learn's `brier_score_loss`,
//! `mean_i (p_i,pos − y_i,pos)²` (range [0, 1]). Because the task is binary
//! (melanoma vs naevus), [`CalibrationReport::brier`] — the headline number —
//! is the **binary** one; the multi-class value is reported alongside as
//! `brier_multiclass`.
//!
//! Test splits here are tiny (26 images), so point estimates of ECE are noisy
//! and biased upwards; [`calibration_bootstrap`] gives percentile intervals and
//! both the report and the bootstrap carry a warning below
//! [`SMALL_SAMPLE_THRESHOLD`] samples.

use crate::metrics::{bootstrap_statistic, BootstrapOptions, Interval, MetricsError};
use serde::{Deserialize, Serialize};

/// Number of equal-width bins used by Guo et al. (2017).
pub const DEFAULT_N_BINS: usize = 15;
/// Smallest temperature [`fit_temperature`] may return.
pub const MIN_TEMPERATURE: f64 = 0.05;
/// Largest temperature [`fit_temperature`] may return.
pub const MAX_TEMPERATURE: f64 = 20.0;
/// Below this many samples reports carry a `small_sample_warning`.
pub const SMALL_SAMPLE_THRESHOLD: usize = 100;

/// Errors for invalid calibration inputs.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum CalibrationError {
    /// No samples were given.
    #[error("no samples given")]
    Empty,
    /// Two parallel inputs differ in length.
    #[error("length mismatch: {left} vs {right}")]
    LengthMismatch {
        /// Length of the first input (logits/probabilities/confidences).
        left: usize,
        /// Length of the second input (labels/correct flags).
        right: usize,
    },
    /// A row has a different number of classes than the first row.
    #[error("row {row} has {found} classes, expected {expected}")]
    RaggedRows {
        /// Offending row.
        row: usize,
        /// Classes in row 0.
        expected: usize,
        /// Classes in the offending row.
        found: usize,
    },
    /// Fewer than two classes.
    #[error("need at least 2 classes, got {0}")]
    TooFewClasses(usize),
    /// A label (or the positive class) is not a valid class index.
    #[error("label {label} at index {index} is out of range for {num_classes} classes")]
    LabelOutOfRange {
        /// Sample index (or `usize::MAX` for the `positive` parameter).
        index: usize,
        /// The label.
        label: usize,
        /// Number of classes.
        num_classes: usize,
    },
    /// A logit or probability is NaN or infinite.
    #[error("non-finite value in row {row}")]
    NonFinite {
        /// Offending row.
        row: usize,
    },
    /// A probability or confidence is outside [0, 1].
    #[error("value {value} at index {index} is not a probability in [0, 1]")]
    NotAProbability {
        /// Offending index.
        index: usize,
        /// The value.
        value: f64,
    },
    /// The temperature is not finite and positive.
    #[error("temperature {0} must be finite and > 0")]
    InvalidTemperature(f64),
    /// `n_bins` is zero.
    #[error("n_bins must be at least 1")]
    InvalidBins,
    /// Error from the shared bootstrap machinery.
    #[error(transparent)]
    Bootstrap(#[from] MetricsError),
}

type Result<T> = std::result::Result<T, CalibrationError>;

/// Validates logits and labels; returns the number of classes.
fn validate_logits(logits: &[Vec<f64>], labels: &[usize]) -> Result<usize> {
    let k = validate_rows(logits)?;
    validate_labels(labels, logits.len(), k)?;
    Ok(k)
}

fn validate_rows(rows: &[Vec<f64>]) -> Result<usize> {
    let first = rows.first().ok_or(CalibrationError::Empty)?;
    let k = first.len();
    if k < 2 {
        return Err(CalibrationError::TooFewClasses(k));
    }
    for (row, r) in rows.iter().enumerate() {
        if r.len() != k {
            return Err(CalibrationError::RaggedRows {
                row,
                expected: k,
                found: r.len(),
            });
        }
        if r.iter().any(|v| !v.is_finite()) {
            return Err(CalibrationError::NonFinite { row });
        }
    }
    Ok(k)
}

fn validate_labels(labels: &[usize], n: usize, k: usize) -> Result<()> {
    if labels.len() != n {
        return Err(CalibrationError::LengthMismatch {
            left: n,
            right: labels.len(),
        });
    }
    if let Some((index, &label)) = labels.iter().enumerate().find(|(_, &l)| l >= k) {
        return Err(CalibrationError::LabelOutOfRange {
            index,
            label,
            num_classes: k,
        });
    }
    Ok(())
}

fn validate_temperature(t: f64) -> Result<()> {
    if t.is_finite() && t > 0.0 {
        Ok(())
    } else {
        Err(CalibrationError::InvalidTemperature(t))
    }
}

fn validate_positive(positive: usize, k: usize) -> Result<()> {
    if positive < k {
        Ok(())
    } else {
        Err(CalibrationError::LabelOutOfRange {
            index: usize::MAX,
            label: positive,
            num_classes: k,
        })
    }
}

/// `log Σ exp(scale · z_k)`, numerically stable. `row` must be non-empty.
fn log_sum_exp(row: &[f64], scale: f64) -> f64 {
    let m = row.iter().fold(f64::NEG_INFINITY, |a, &v| a.max(scale * v));
    m + row.iter().map(|&v| (scale * v - m).exp()).sum::<f64>().ln()
}

/// Softmax of one row at inverse temperature `beta`.
fn softmax_row(row: &[f64], beta: f64) -> Vec<f64> {
    let lse = log_sum_exp(row, beta);
    row.iter().map(|&v| (beta * v - lse).exp()).collect()
}

/// `softmax(z / T)` for every row. Rows sum to 1 (up to rounding).
///
/// `temperature` must be finite and > 0; `T = 1` is the plain softmax, `T > 1`
/// softens, `T < 1` sharpens.
pub fn softmax_with_temperature(logits: &[Vec<f64>], temperature: f64) -> Result<Vec<Vec<f64>>> {
    validate_rows(logits)?;
    validate_temperature(temperature)?;
    Ok(logits
        .iter()
        .map(|r| softmax_row(r, 1.0 / temperature))
        .collect())
}

/// Per-sample NLL `−log softmax(z / T)_y`, computed via log-sum-exp so that it
/// stays finite for extreme logits. Inputs must be validated.
fn per_sample_nll(logits: &[Vec<f64>], labels: &[usize], beta: f64) -> Vec<f64> {
    logits
        .iter()
        .zip(labels)
        .map(|(r, &y)| log_sum_exp(r, beta) - beta * r[y])
        .collect()
}

/// Mean negative log-likelihood (natural log) of `softmax(logits / T)`;
/// in `[0, ∞)`. Equals scikit-learn's `log_loss` on those probabilities
/// (without its probability clipping).
pub fn nll(logits: &[Vec<f64>], labels: &[usize], temperature: f64) -> Result<f64> {
    validate_logits(logits, labels)?;
    validate_temperature(temperature)?;
    let v = per_sample_nll(logits, labels, 1.0 / temperature);
    Ok(v.iter().sum::<f64>() / v.len() as f64)
}

/// Multi-class Brier score `mean_i Σ_k (p_ik − [y_i = k])²`, in `[0, 2]`.
/// For two classes this is exactly twice [`brier_binary`]. Rows are not
/// required to sum to 1, but every entry must lie in [0, 1].
pub fn brier(probs: &[Vec<f64>], labels: &[usize]) -> Result<f64> {
    let k = validate_rows(probs)?;
    validate_labels(labels, probs.len(), k)?;
    for (i, r) in probs.iter().enumerate() {
        if let Some(&value) = r.iter().find(|p| !(0.0..=1.0).contains(*p)) {
            return Err(CalibrationError::NotAProbability { index: i, value });
        }
    }
    let total: f64 = probs
        .iter()
        .zip(labels)
        .map(|(r, &y)| {
            r.iter()
                .enumerate()
                .map(|(c, &p)| (p - if c == y { 1.0 } else { 0.0 }).powi(2))
                .sum::<f64>()
        })
        .sum();
    Ok(total / probs.len() as f64)
}

/// Binary Brier score as scikit-learn's `brier_score_loss`:
/// `mean_i (p_i − [labels_i = positive])²`, in `[0, 1]`, where `pos_probs[i]`
/// is the predicted probability of the positive class (in [0, 1]).
pub fn brier_binary(pos_probs: &[f64], labels: &[usize], positive: usize) -> Result<f64> {
    if pos_probs.len() != labels.len() {
        return Err(CalibrationError::LengthMismatch {
            left: pos_probs.len(),
            right: labels.len(),
        });
    }
    if pos_probs.is_empty() {
        return Err(CalibrationError::Empty);
    }
    check_unit_interval(pos_probs)?;
    let total: f64 = pos_probs
        .iter()
        .zip(labels)
        .map(|(&p, &l)| (p - if l == positive { 1.0 } else { 0.0 }).powi(2))
        .sum();
    Ok(total / pos_probs.len() as f64)
}

fn check_unit_interval(values: &[f64]) -> Result<()> {
    match values
        .iter()
        .enumerate()
        .find(|(_, v)| !(0.0..=1.0).contains(*v))
    {
        Some((index, &value)) => Err(CalibrationError::NotAProbability { index, value }),
        None => Ok(()),
    }
}

/// Top-label confidence (max probability) and correctness (argmax == label;
/// ties resolved to the lowest index, like `np.argmax`) for each row.
pub fn confidences_and_correct(
    probs: &[Vec<f64>],
    labels: &[usize],
) -> Result<(Vec<f64>, Vec<bool>)> {
    let k = validate_rows(probs)?;
    validate_labels(labels, probs.len(), k)?;
    Ok(probs
        .iter()
        .zip(labels)
        .map(|(r, &y)| {
            let (arg, conf) = argmax(r);
            (conf, arg == y)
        })
        .unzip())
}

/// `(index, value)` of the first maximum of a non-empty row.
fn argmax(row: &[f64]) -> (usize, f64) {
    row.iter()
        .enumerate()
        .fold((0, f64::NEG_INFINITY), |(bi, bv), (i, &v)| {
            if v > bv {
                (i, v)
            } else {
                (bi, bv)
            }
        })
}

/// One bin of a reliability diagram.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct ReliabilityBin {
    /// Exclusive lower edge `i / n_bins` (bin 0 also holds confidence 0).
    pub lower: f64,
    /// Inclusive upper edge `(i + 1) / n_bins`.
    pub upper: f64,
    /// Mean confidence of the samples in the bin; `None` (JSON `null`) if empty.
    pub mean_confidence: Option<f64>,
    /// Fraction of correct samples in the bin; `None` (JSON `null`) if empty.
    pub accuracy: Option<f64>,
    /// Number of samples in the bin.
    pub count: usize,
}

fn validate_conf(confidences: &[f64], correct: &[bool], n_bins: usize) -> Result<()> {
    if confidences.len() != correct.len() {
        return Err(CalibrationError::LengthMismatch {
            left: confidences.len(),
            right: correct.len(),
        });
    }
    if confidences.is_empty() {
        return Err(CalibrationError::Empty);
    }
    if n_bins == 0 {
        return Err(CalibrationError::InvalidBins);
    }
    check_unit_interval(confidences)
}

/// Bin index of confidence `c ∈ [0, 1]` for bins `(i/n, (i+1)/n]`, with edges
/// computed as `i as f64 / n as f64` (so e.g. 0.3 with 10 bins lands in
/// (0.2, 0.3]). Confidence 0 goes to bin 0.
fn bin_index(c: f64, n_bins: usize) -> usize {
    let n = n_bins as f64;
    let edge = |i: usize| i as f64 / n;
    let mut i = ((c * n).ceil() as usize).saturating_sub(1).min(n_bins - 1);
    // Correct for rounding in c * n against the exactly-divided edges.
    while i > 0 && c <= edge(i) {
        i -= 1;
    }
    while i + 1 < n_bins && c > edge(i + 1) {
        i += 1;
    }
    i
}

/// Equal-width reliability diagram over (0, 1] with bin `i = (i/n, (i+1)/n]`
/// (confidence exactly 0 goes to bin 0). All `n_bins` bins are returned, empty
/// ones with `count == 0` and `None` statistics.
///
/// `confidences` must lie in [0, 1]; `n_bins ≥ 1`.
pub fn reliability_bins(
    confidences: &[f64],
    correct: &[bool],
    n_bins: usize,
) -> Result<Vec<ReliabilityBin>> {
    validate_conf(confidences, correct, n_bins)?;
    let mut sum_conf = vec![0.0; n_bins];
    let mut n_correct = vec![0usize; n_bins];
    let mut count = vec![0usize; n_bins];
    for (&c, &ok) in confidences.iter().zip(correct) {
        let b = bin_index(c, n_bins);
        sum_conf[b] += c;
        n_correct[b] += usize::from(ok);
        count[b] += 1;
    }
    Ok((0..n_bins)
        .map(|i| {
            let (mean_confidence, accuracy) = if count[i] == 0 {
                (None, None)
            } else {
                let n = count[i] as f64;
                (Some(sum_conf[i] / n), Some(n_correct[i] as f64 / n))
            };
            ReliabilityBin {
                lower: i as f64 / n_bins as f64,
                upper: (i + 1) as f64 / n_bins as f64,
                mean_confidence,
                accuracy,
                count: count[i],
            }
        })
        .collect())
}

/// `(weight |B|/n, gap |acc(B) − conf(B)|)` of the non-empty bins.
fn bin_gaps(bins: &[ReliabilityBin], n: usize) -> impl Iterator<Item = (f64, f64)> + '_ {
    bins.iter()
        .filter_map(move |b| match (b.accuracy, b.mean_confidence) {
            (Some(a), Some(c)) => Some((b.count as f64 / n as f64, (a - c).abs())),
            _ => None,
        })
}

/// Expected calibration error (Guo et al., 2017) with `n_bins` equal-width
/// bins as in [`reliability_bins`]: `Σ_b |B|/n · |acc(B) − conf(B)|`; empty
/// bins contribute 0. Range [0, 1]. Usually `confidences` are top-label
/// probabilities and `correct` whether the argmax was right
/// (see [`confidences_and_correct`]); [`DEFAULT_N_BINS`] = 15.
pub fn ece(confidences: &[f64], correct: &[bool], n_bins: usize) -> Result<f64> {
    let bins = reliability_bins(confidences, correct, n_bins)?;
    Ok(bin_gaps(&bins, confidences.len()).map(|(w, g)| w * g).sum())
}

/// Maximum calibration error: the largest `|acc(B) − conf(B)|` over non-empty
/// equal-width bins. Range [0, 1].
pub fn mce(confidences: &[f64], correct: &[bool], n_bins: usize) -> Result<f64> {
    let bins = reliability_bins(confidences, correct, n_bins)?;
    Ok(bin_gaps(&bins, confidences.len())
        .map(|(_, g)| g)
        .fold(0.0, f64::max))
}

/// Adaptive (equal-mass) ECE: samples are sorted by confidence (stable, so
/// equal confidences keep input order) and split into `n_bins` consecutive
/// groups whose sizes differ by at most one, larger groups first — exactly
/// `np.array_split`. With fewer samples than bins some groups are empty and
/// contribute 0. Range [0, 1].
pub fn adaptive_ece(confidences: &[f64], correct: &[bool], n_bins: usize) -> Result<f64> {
    validate_conf(confidences, correct, n_bins)?;
    let n = confidences.len();
    let mut order: Vec<usize> = (0..n).collect();
    order.sort_by(|&a, &b| confidences[a].total_cmp(&confidences[b]));
    let (base, extra) = (n / n_bins, n % n_bins);
    let mut start = 0;
    let mut total = 0.0;
    for b in 0..n_bins {
        let size = base + usize::from(b < extra);
        if size == 0 {
            continue;
        }
        let group = &order[start..start + size];
        start += size;
        let conf: f64 = group.iter().map(|&i| confidences[i]).sum::<f64>() / size as f64;
        let acc = group.iter().filter(|&&i| correct[i]).count() as f64 / size as f64;
        total += size as f64 / n as f64 * (acc - conf).abs();
    }
    Ok(total)
}

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
    Ok(CalibrationReport {
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
