//! Calibration measures of softmax outputs: ECE, adaptive ECE, MCE, Brier,
//! NLL and reliability bins, with the input checks and the error type that
//! temperature scaling ([`super::scaling`]) and the ECE consistency test
//! ([`super::consistency`]) share.
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
//! (melanoma vs naevus), `CalibrationReport::brier` — the headline number —
//! is the **binary** one; the multi-class value is reported alongside as
//! `brier_multiclass`.

use crate::metrics::MetricsError;
use serde::{Deserialize, Serialize};

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

pub(super) type Result<T> = std::result::Result<T, CalibrationError>;

/// Validates logits and labels; returns the number of classes.
pub(super) fn validate_logits(logits: &[Vec<f64>], labels: &[usize]) -> Result<usize> {
    let k = validate_rows(logits)?;
    validate_labels(labels, logits.len(), k)?;
    Ok(k)
}

pub(super) fn validate_rows(rows: &[Vec<f64>]) -> Result<usize> {
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

pub(super) fn validate_labels(labels: &[usize], n: usize, k: usize) -> Result<()> {
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

pub(super) fn validate_temperature(t: f64) -> Result<()> {
    if t.is_finite() && t > 0.0 {
        Ok(())
    } else {
        Err(CalibrationError::InvalidTemperature(t))
    }
}

pub(super) fn validate_positive(positive: usize, k: usize) -> Result<()> {
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
pub(super) fn log_sum_exp(row: &[f64], scale: f64) -> f64 {
    let m = row.iter().fold(f64::NEG_INFINITY, |a, &v| a.max(scale * v));
    m + row.iter().map(|&v| (scale * v - m).exp()).sum::<f64>().ln()
}

/// Softmax of one row at inverse temperature `beta`.
pub(super) fn softmax_row(row: &[f64], beta: f64) -> Vec<f64> {
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
pub(super) fn per_sample_nll(logits: &[Vec<f64>], labels: &[usize], beta: f64) -> Vec<f64> {
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

pub(super) fn check_unit_interval(values: &[f64]) -> Result<()> {
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
pub(super) fn argmax(row: &[f64]) -> (usize, f64) {
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

pub(super) fn validate_conf(confidences: &[f64], correct: &[bool], n_bins: usize) -> Result<()> {
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
pub(super) fn bin_index(c: f64, n_bins: usize) -> usize {
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
pub(super) fn bin_gaps(bins: &[ReliabilityBin], n: usize) -> impl Iterator<Item = (f64, f64)> + '_ {
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
