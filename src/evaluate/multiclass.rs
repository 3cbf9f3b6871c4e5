//! K-class metrics of a softmax classifier (e.g. HAM10000's 7 classes).
//!
//! Why: the binary metrics in [`crate::metrics`] cover melanoma vs naevus
//! only; a K-output model is judged by per-class one-vs-rest AUROC, balanced
//! accuracy and calibration over all classes, and the numbers must match
//! scikit-learn (checked to 1e-12 in `tests/multiclass_fixtures.rs`).
//!
//! Conventions: `probs[i]` is row `i`'s probability vector over `K ≥ 2`
//! classes, `labels[i] < K` its true class. A hard prediction is the
//! [`argmax`] (first maximum, like `np.argmax`). The plain helpers assume
//! inputs checked by [`validate`] (they document what they do otherwise);
//! [`multiclass_metrics`] validates. Undefined values are NaN (JSON `null`).
//!
//! Deliberate difference from scikit-learn: a class absent from `labels`
//! (or the only class present) has AUROC NaN and the macro AUROC averages
//! the classes where it is defined. scikit-learn's
//! `roc_auc_score(multi_class="ovr")` raises there (or returns NaN when
//! `labels=` is given); a rare class missing from a small test split should
//! not hide the other classes' discrimination.

use serde::{Deserialize, Serialize};

use super::group_bootstrap::bootstrap_by_group;
use crate::calibrate::measures;
use crate::metrics::{auroc, BootstrapOptions, Interval, MetricsError};

/// How far a row's sum may be from 1: float32 softmax outputs widened to f64
/// are off by up to ~1e-7 for K ≈ 10. (scikit-learn only warns beyond √eps.)
pub const SUM_TOLERANCE: f64 = 1e-6;

/// Checks probabilities and labels; returns `K`. Rows must have equal length
/// `K ≥ 2`, entries in [0, 1] summing to 1 within [`SUM_TOLERANCE`], and
/// `labels` must be as long as `probs` with every label `< K`.
pub fn validate(probs: &[Vec<f64>], labels: &[usize]) -> Result<usize, MetricsError> {
    if probs.len() != labels.len() {
        return Err(MetricsError::LengthMismatch {
            labels: labels.len(),
            scores: probs.len(),
        });
    }
    let k = probs.first().ok_or(MetricsError::Empty)?.len();
    if k < 2 {
        return Err(MetricsError::TooFewClasses(k));
    }
    for (row, p) in probs.iter().enumerate() {
        if p.len() != k {
            return Err(MetricsError::RaggedRow {
                row,
                expected: k,
                found: p.len(),
            });
        }
        let sum: f64 = p.iter().sum();
        let in_range = p.iter().all(|v| (0.0..=1.0).contains(v));
        if !in_range || (sum - 1.0).abs() > SUM_TOLERANCE {
            return Err(MetricsError::NotADistribution { row, sum });
        }
    }
    if let Some((index, &label)) = labels.iter().enumerate().find(|(_, &l)| l >= k) {
        return Err(MetricsError::LabelOutOfRange {
            index,
            label,
            num_classes: k,
        });
    }
    Ok(k)
}

/// Index of the first maximum, like `np.argmax`, so tied rows predict the
/// lower class index as scikit-learn pipelines do. 0 for an empty row; rows
/// are assumed NaN-free ([`validate`]).
pub fn argmax(p: &[f64]) -> usize {
    let mut best = 0;
    for (i, &v) in p.iter().enumerate().skip(1) {
        if v > p[best] {
            best = i;
        }
    }
    best
}

/// Confusion counts, rows = true class, columns = predicted class
/// (scikit-learn `confusion_matrix(y, pred, labels=range(k))`).
///
/// # Panics
/// If a label or prediction is `≥ k`, or the lengths differ.
pub fn confusion(labels: &[usize], predicted: &[usize], k: usize) -> Vec<Vec<usize>> {
    assert_eq!(labels.len(), predicted.len(), "labels vs predictions");
    let mut c = vec![vec![0usize; k]; k];
    for (&y, &p) in labels.iter().zip(predicted) {
        c[y][p] += 1;
    }
    c
}

/// Each row divided by its sum: per-true-class recall profile
/// (scikit-learn `normalize="true"`); an all-zero row stays 0.
pub fn row_normalised(c: &[Vec<usize>]) -> Vec<Vec<f64>> {
    c.iter()
        .map(|row| {
            let total: usize = row.iter().sum();
            row.iter()
                .map(|&v| {
                    if total == 0 {
                        0.0
                    } else {
                        v as f64 / total as f64
                    }
                })
                .collect()
        })
        .collect()
}

/// Mean recall over the classes present in `labels`, as scikit-learn's
/// `balanced_accuracy_score` (classes only predicted are ignored). In [0, 1];
/// NaN for empty input.
///
/// # Panics
/// As [`confusion`].
pub fn balanced_accuracy(labels: &[usize], predicted: &[usize], k: usize) -> f64 {
    let c = confusion(labels, predicted, k);
    let recalls: Vec<f64> = c
        .iter()
        .enumerate()
        .filter_map(|(i, row)| {
            let total: usize = row.iter().sum();
            (total > 0).then(|| row[i] as f64 / total as f64)
        })
        .collect();
    recalls.iter().sum::<f64>() / recalls.len() as f64
}

/// Column `k` of the probability matrix: the one-vs-rest score of class `k`.
fn column(probs: &[Vec<f64>], k: usize) -> Vec<f64> {
    probs.iter().map(|p| p[k]).collect()
}

/// Number of classes (columns) of a probability matrix; 0 when empty.
fn num_classes(probs: &[Vec<f64>]) -> usize {
    probs.first().map_or(0, Vec::len)
}

/// One-vs-rest AUROC of each class `k` (`p_k` against `labels == k`), as
/// scikit-learn's `roc_auc_score(labels == k, P[:, k])`. NaN where class `k`
/// is absent or is the only class present, or the input is invalid
/// (length mismatch, NaN scores).
pub fn ovr_auroc(probs: &[Vec<f64>], labels: &[usize]) -> Vec<f64> {
    (0..num_classes(probs))
        .map(|k| auroc(labels, &column(probs, k), k).unwrap_or(f64::NAN))
        .collect()
}

/// Mean of the finite values (NaN if none): the macro average over the
/// classes whose AUROC is defined.
fn mean_defined(values: &[f64]) -> f64 {
    let defined: Vec<f64> = values.iter().copied().filter(|v| v.is_finite()).collect();
    defined.iter().sum::<f64>() / defined.len() as f64
}

/// Macro one-vs-rest AUROC: the mean of [`ovr_auroc`] over the classes where
/// it is defined (NaN if none). Equals scikit-learn's
/// `roc_auc_score(y, P, multi_class="ovr", average="macro")` whenever every
/// class occurs in `labels`; see the module docs for absent classes.
pub fn macro_auroc(probs: &[Vec<f64>], labels: &[usize]) -> f64 {
    mean_defined(&ovr_auroc(probs, labels))
}

/// Expected calibration error of the top label: confidence = max
/// probability, correct = (argmax == label), binned exactly as
/// [`measures::ece`] (`n_bins` equal-width bins `(i/n, (i+1)/n]`). In [0, 1].
///
/// Errors: invalid inputs ([`validate`]) or `n_bins == 0`.
pub fn top_label_ece(
    probs: &[Vec<f64>],
    labels: &[usize],
    n_bins: usize,
) -> Result<f64, MetricsError> {
    validate(probs, labels)?;
    if n_bins == 0 {
        return Err(MetricsError::InvalidBins);
    }
    // Validated above, so these cannot fail; NaN rather than a panic.
    Ok(measures::confidences_and_correct(probs, labels)
        .and_then(|(conf, ok)| measures::ece(&conf, &ok, n_bins))
        .unwrap_or(f64::NAN))
}

/// ECE of each class's probability `p_k` against the indicator
/// `labels == k`, with the equal-width bins of [`measures::ece`]. NaN
/// entries for invalid input (e.g. `n_bins == 0`, entries outside [0, 1]).
pub fn per_class_ece(probs: &[Vec<f64>], labels: &[usize], n_bins: usize) -> Vec<f64> {
    (0..num_classes(probs))
        .map(|k| {
            let hit: Vec<bool> = labels.iter().map(|&y| y == k).collect();
            measures::ece(&column(probs, k), &hit, n_bins).unwrap_or(f64::NAN)
        })
        .collect()
}

/// Class-wise ECE (Kull et al., 2019): the mean over all K classes of
/// [`per_class_ece`]. Unlike the top-label ECE it also sees miscalibration
/// of the non-winning probabilities, which matter for rare classes. In [0, 1].
///
/// Errors: invalid inputs ([`validate`]) or `n_bins == 0`.
pub fn classwise_ece(
    probs: &[Vec<f64>],
    labels: &[usize],
    n_bins: usize,
) -> Result<f64, MetricsError> {
    let k = validate(probs, labels)?;
    if n_bins == 0 {
        return Err(MetricsError::InvalidBins);
    }
    Ok(per_class_ece(probs, labels, n_bins).iter().sum::<f64>() / k as f64)
}

/// Multi-class Brier score `mean_i Σ_k (p_ik − [y_i = k])²`, in [0, 2]
/// ([`measures::brier`]). Equals scikit-learn ≥ 1.7
/// `brier_score_loss(y, P, labels=range(K))` for K ≥ 3; for K = 2 its default
/// `scale_by_half="auto"` halves it (pass `scale_by_half=False` to match).
/// NaN for invalid input.
pub fn brier(probs: &[Vec<f64>], labels: &[usize]) -> f64 {
    measures::brier(probs, labels).unwrap_or(f64::NAN)
}

/// Probabilities are clipped to `[NLL_EPS, 1 − NLL_EPS]` before the log, as
/// scikit-learn's `log_loss` (≥ 1.5) does with `np.finfo(float64).eps`, so a
/// confident mistake costs a finite ≈ 36.04 nats instead of infinity.
pub const NLL_EPS: f64 = f64::EPSILON;

/// Mean negative log-likelihood (natural log) of the true class, exactly
/// scikit-learn's `log_loss(y, P, labels=range(K))` including its clipping
/// ([`NLL_EPS`]; no renormalisation of the rows). In `[0, ≈36.04]`.
///
/// # Panics
/// If a label is not a column index of its row.
pub fn nll(probs: &[Vec<f64>], labels: &[usize]) -> f64 {
    let total: f64 = probs
        .iter()
        .zip(labels)
        .map(|(p, &y)| -p[y].clamp(NLL_EPS, 1.0 - NLL_EPS).ln())
        .sum();
    total / labels.len() as f64
}

/// Metrics of one class, one-vs-rest.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ClassMetrics {
    /// Class name.
    pub name: String,
    /// Rows whose true class this is.
    pub n: usize,
    /// One-vs-rest AUROC with its bootstrap CI; `None` (JSON `null`) when
    /// undefined on the whole sample (class absent, or the only class).
    pub auroc: Option<Interval>,
    /// Recall (sensitivity) of the class; 0 if it never occurs.
    #[serde(with = "crate::metrics::nan_as_null")]
    pub recall: f64,
    /// Precision of the class; 0 if it is never predicted.
    #[serde(with = "crate::metrics::nan_as_null")]
    pub precision: f64,
    /// ECE of this class's probability against its indicator.
    #[serde(with = "crate::metrics::nan_as_null")]
    pub ece: f64,
}

/// The K-class evaluation of one set of predictions.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MulticlassMetrics {
    /// Class names, in column order.
    pub classes: Vec<String>,
    /// Number of rows.
    pub n: usize,
    /// Per-class metrics, in column order.
    pub per_class: Vec<ClassMetrics>,
    /// Macro OvR AUROC over the classes where it is defined, with its CI;
    /// `None` when no class has a defined AUROC (one class present).
    pub macro_auroc: Option<Interval>,
    /// Balanced accuracy with its CI.
    pub balanced_accuracy: Interval,
    /// Fraction of rows whose argmax is the label.
    #[serde(with = "crate::metrics::nan_as_null")]
    pub accuracy: f64,
    /// Counts, rows = true class, columns = predicted class.
    pub confusion: Vec<Vec<usize>>,
    /// `confusion` divided by its row sums.
    pub confusion_normalised: Vec<Vec<f64>>,
    /// Top-label ECE.
    #[serde(with = "crate::metrics::nan_as_null")]
    pub top_label_ece: f64,
    /// Class-wise ECE (mean of the per-class ECEs).
    #[serde(with = "crate::metrics::nan_as_null")]
    pub classwise_ece: f64,
    /// Multi-class Brier score, in [0, 2].
    #[serde(with = "crate::metrics::nan_as_null")]
    pub brier: f64,
    /// Mean NLL (scikit-learn `log_loss`).
    #[serde(with = "crate::metrics::nan_as_null")]
    pub nll: f64,
    /// Equal-width bins used for every ECE.
    pub n_bins: usize,
}

/// Gathers resampled rows into reusable buffers for the bootstrap statistics.
struct Resample<'a> {
    labels: &'a [usize],
    predicted: &'a [usize],
    columns: Vec<Vec<f64>>,
    l: Vec<usize>,
    s: Vec<f64>,
}

impl<'a> Resample<'a> {
    fn new(probs: &[Vec<f64>], labels: &'a [usize], predicted: &'a [usize]) -> Self {
        let columns = (0..num_classes(probs)).map(|k| column(probs, k)).collect();
        Self {
            labels,
            predicted,
            columns,
            l: Vec::new(),
            s: Vec::new(),
        }
    }

    fn take_labels(&mut self, idx: &[usize]) {
        self.l.clear();
        self.l.extend(idx.iter().map(|&i| self.labels[i]));
    }

    /// OvR AUROC of class `k` on the rows whose labels were taken last.
    fn auroc(&mut self, idx: &[usize], k: usize) -> f64 {
        let col = &self.columns[k];
        self.s.clear();
        self.s.extend(idx.iter().map(|&i| col[i]));
        auroc(&self.l, &self.s, k).unwrap_or(f64::NAN)
    }

    /// Macro AUROC over `classes`; NaN (resample skipped) as soon as one of
    /// them is undefined, so every valid resample averages the same classes
    /// as the point estimate.
    fn macro_auroc(&mut self, idx: &[usize], classes: &[usize]) -> f64 {
        self.take_labels(idx);
        let mut sum = 0.0;
        for &k in classes {
            sum += self.auroc(idx, k);
        }
        sum / classes.len() as f64
    }

    fn balanced_accuracy(&mut self, idx: &[usize], k: usize) -> f64 {
        self.take_labels(idx);
        let p: Vec<usize> = idx.iter().map(|&i| self.predicted[i]).collect();
        balanced_accuracy(&self.l, &p, k)
    }
}

/// Every K-class metric with bootstrap CIs for the per-class AUROCs, the macro
/// AUROC and the balanced accuracy.
///
/// All intervals use `opts` (same seed), so they come from the same resamples
/// and are paired as far as [`crate::metrics::bootstrap_statistic`] allows
/// (a resample where a class's AUROC is undefined is skipped for that
/// interval only). `groups` (one id per row, e.g. the patient or lesion)
/// makes them resample whole groups, see [`bootstrap_by_group`]. The macro
/// AUROC interval only keeps resamples where every class defined on the full
/// sample is defined again.
///
/// Errors: invalid inputs ([`validate`]), `classes.len() != K`,
/// `n_bins == 0`, bad `groups` or bootstrap options, or a bootstrap without
/// any valid resample.
pub fn multiclass_metrics(
    probs: &[Vec<f64>],
    labels: &[usize],
    classes: &[String],
    n_bins: usize,
    opts: &BootstrapOptions,
    groups: Option<&[usize]>,
) -> Result<MulticlassMetrics, MetricsError> {
    let k = validate(probs, labels)?;
    if classes.len() != k {
        return Err(MetricsError::WrongLength {
            what: "class names",
            expected: k,
            found: classes.len(),
        });
    }
    let top_label_ece = top_label_ece(probs, labels, n_bins)?;
    let n = labels.len();
    let predicted: Vec<usize> = probs.iter().map(|p| argmax(p)).collect();
    let c = confusion(labels, &predicted, k);
    let mut rs = Resample::new(probs, labels, &predicted);

    let ba_point = balanced_accuracy(labels, &predicted, k);
    let ba = bootstrap_by_group(
        n,
        groups,
        ba_point,
        |idx| rs.balanced_accuracy(idx, k),
        opts,
    )?;

    let aurocs = ovr_auroc(probs, labels);
    let defined: Vec<usize> = (0..k).filter(|&j| aurocs[j].is_finite()).collect();
    let macro_ci = if defined.is_empty() {
        None
    } else {
        let point = mean_defined(&aurocs);
        let stat = |idx: &[usize]| rs.macro_auroc(idx, &defined);
        Some(bootstrap_by_group(n, groups, point, stat, opts)?)
    };

    let eces = per_class_ece(probs, labels, n_bins);
    let mut per_class = Vec::with_capacity(k);
    for j in 0..k {
        let auroc_ci = if aurocs[j].is_finite() {
            let stat = |idx: &[usize]| {
                rs.take_labels(idx);
                rs.auroc(idx, j)
            };
            Some(bootstrap_by_group(n, groups, aurocs[j], stat, opts)?)
        } else {
            None
        };
        let true_n: usize = c[j].iter().sum();
        let predicted_n: usize = c.iter().map(|row| row[j]).sum();
        let ratio = |den: usize| {
            if den == 0 {
                0.0
            } else {
                c[j][j] as f64 / den as f64
            }
        };
        per_class.push(ClassMetrics {
            name: classes[j].clone(),
            n: true_n,
            auroc: auroc_ci,
            recall: ratio(true_n),
            precision: ratio(predicted_n),
            ece: eces[j],
        });
    }

    Ok(MulticlassMetrics {
        classes: classes.to_vec(),
        n,
        per_class,
        macro_auroc: macro_ci,
        balanced_accuracy: ba,
        accuracy: (0..k).map(|j| c[j][j]).sum::<usize>() as f64 / n as f64,
        confusion_normalised: row_normalised(&c),
        confusion: c,
        top_label_ece,
        classwise_ece: eces.iter().sum::<f64>() / k as f64,
        brier: brier(probs, labels),
        nll: nll(probs, labels),
        n_bins,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(k: usize) -> Vec<String> {
        (0..k).map(|j| format!("c{j}")).collect()
    }

    /// 12 rows, 3 classes, class 2 never predicted.
    fn three_class() -> (Vec<Vec<f64>>, Vec<usize>) {
        let probs = vec![
            vec![0.7, 0.2, 0.1],
            vec![0.5, 0.3, 0.2],
            vec![0.2, 0.6, 0.2],
            vec![0.4, 0.4, 0.2],
            vec![0.1, 0.8, 0.1],
            vec![0.3, 0.4, 0.3],
            vec![0.45, 0.1, 0.45],
            vec![0.6, 0.1, 0.3],
            vec![0.2, 0.5, 0.3],
            vec![0.5, 0.25, 0.25],
            vec![0.3, 0.35, 0.35],
            vec![0.9, 0.05, 0.05],
        ];
        let labels = vec![0, 0, 1, 1, 1, 2, 2, 2, 0, 1, 2, 0];
        (probs, labels)
    }

    #[test]
    fn argmax_takes_the_first_maximum() {
        assert_eq!(argmax(&[0.2, 0.4, 0.4]), 1);
        assert_eq!(argmax(&[0.5, 0.5]), 0);
        assert_eq!(argmax(&[0.1, 0.2, 0.7]), 2);
        assert_eq!(argmax(&[]), 0);
    }

    #[test]
    fn confusion_and_balanced_accuracy_by_hand() {
        let (probs, labels) = three_class();
        let pred: Vec<usize> = probs.iter().map(|p| argmax(p)).collect();
        assert_eq!(pred, vec![0, 0, 1, 0, 1, 1, 0, 0, 1, 0, 1, 0]);
        let c = confusion(&labels, &pred, 3);
        assert_eq!(c, vec![vec![3, 1, 0], vec![2, 2, 0], vec![2, 2, 0]]);
        let r = row_normalised(&c);
        assert_eq!(r[0], vec![0.75, 0.25, 0.0]);
        assert_eq!(
            row_normalised(&[vec![0, 0], vec![1, 3]]),
            vec![vec![0.0, 0.0], vec![0.25, 0.75]]
        );
        // Recalls 3/4, 2/4, 0/4.
        assert!((balanced_accuracy(&labels, &pred, 3) - 1.25 / 3.0).abs() < 1e-15);
        // A class only predicted (2) does not count; one only true does.
        assert_eq!(balanced_accuracy(&[0, 0, 1], &[0, 2, 1], 3), 0.75);
    }

    #[test]
    fn two_class_ovr_auroc_is_the_binary_auroc() {
        let p1 = [0.9, 0.2, 0.65, 0.4, 0.4, 0.75, 0.1, 0.55];
        let labels = [1, 0, 1, 0, 1, 1, 0, 0];
        let probs: Vec<Vec<f64>> = p1.iter().map(|&p| vec![1.0 - p, p]).collect();
        let per = ovr_auroc(&probs, &labels);
        let p0: Vec<f64> = probs.iter().map(|r| r[0]).collect();
        assert_eq!(per[1], auroc(&labels, &p1, 1).unwrap());
        assert_eq!(per[0], auroc(&labels, &p0, 0).unwrap());
        // 14.5 of 16 positive-negative pairs ordered right (one tie at 0.4).
        assert_eq!(per[1], 14.5 / 16.0);
        assert_eq!(per[0], per[1]);
        assert_eq!(macro_auroc(&probs, &labels), per[1]);
    }

    #[test]
    fn absent_class_is_nan_and_left_out_of_the_macro() {
        let (probs, mut labels) = three_class();
        labels.iter_mut().filter(|l| **l == 2).for_each(|l| *l = 1);
        let per = ovr_auroc(&probs, &labels);
        assert!(per[2].is_nan() && per[0].is_finite() && per[1].is_finite());
        assert_eq!(macro_auroc(&probs, &labels), (per[0] + per[1]) / 2.0);
        let m = multiclass_metrics(
            &probs,
            &labels,
            &names(3),
            10,
            &BootstrapOptions::new(200, 1),
            None,
        )
        .unwrap();
        assert_eq!(m.per_class[2].auroc, None);
        assert_eq!(m.per_class[2].n, 0);
        assert_eq!(m.macro_auroc.unwrap().point, (per[0] + per[1]) / 2.0);
        let one_class = vec![0; 12];
        assert!(macro_auroc(&probs, &one_class).is_nan());
    }

    #[test]
    fn calibration_measures_by_hand() {
        let probs = vec![
            vec![0.8, 0.2],
            vec![0.6, 0.4],
            vec![0.3, 0.7],
            vec![0.5, 0.5],
        ];
        let labels = [0, 1, 1, 0];
        // Top label: conf 0.8 ok, 0.6 wrong, 0.7 ok, 0.5 ok (tie -> class 0).
        // 2 bins: (0, .5] {0.5 ok}, (.5, 1] {0.8, 0.6, 0.7; acc 2/3, conf 0.7}.
        let top = top_label_ece(&probs, &labels, 2).unwrap();
        assert!(
            (top - (0.25 * 0.5 + 0.75 * (0.7 - 2.0 / 3.0))).abs() < 1e-15,
            "{top}"
        );
        // Class 0: p=[.8,.6,.3,.5] vs [1,0,0,1]; bins {.3,.5}: conf .4 acc .5,
        // {.8,.6}: conf .7 acc .5 => 0.5*0.1 + 0.5*0.2 = 0.15.
        let per = per_class_ece(&probs, &labels, 2);
        assert!((per[0] - 0.15).abs() < 1e-15, "{per:?}");
        // Class 1: bin 0 {.2,.4,.5}: conf 1.1/3, acc 1/3; bin 1 {.7}: acc 1.
        let want1 = 0.75 * (1.1 / 3.0 - 1.0 / 3.0) + 0.25 * 0.3;
        assert!((per[1] - want1).abs() < 1e-15, "{per:?}");
        let cw = classwise_ece(&probs, &labels, 2).unwrap();
        assert!((cw - (0.15 + want1) / 2.0).abs() < 1e-15);
        // Brier: .04+.04, .36+.36, .09+.09, .25+.25 => 1.48 / 4.
        assert!((brier(&probs, &labels) - 0.37).abs() < 1e-15);
        let want_nll = -(0.8f64.ln() + 0.4f64.ln() + 0.7f64.ln() + 0.5f64.ln()) / 4.0;
        assert!((nll(&probs, &labels) - want_nll).abs() < 1e-15);
        // Clipping: a certain mistake costs -ln(eps), a certain hit ~eps.
        let sure = vec![vec![1.0, 0.0]];
        assert_eq!(nll(&sure, &[1]), -f64::EPSILON.ln());
        assert_eq!(nll(&sure, &[0]), -(1.0 - f64::EPSILON).ln());
    }

    #[test]
    fn invalid_inputs_are_clear_errors() {
        let ok = vec![vec![0.5, 0.5], vec![0.2, 0.8]];
        assert_eq!(validate(&ok, &[0, 1]), Ok(2));
        assert_eq!(validate(&[], &[]), Err(MetricsError::Empty));
        assert_eq!(
            validate(&ok, &[0]),
            Err(MetricsError::LengthMismatch {
                labels: 1,
                scores: 2
            })
        );
        assert_eq!(
            validate(&[vec![1.0]], &[0]),
            Err(MetricsError::TooFewClasses(1))
        );
        let ragged = vec![vec![0.5, 0.5], vec![0.2, 0.3, 0.5]];
        assert_eq!(
            validate(&ragged, &[0, 1]),
            Err(MetricsError::RaggedRow {
                row: 1,
                expected: 2,
                found: 3
            })
        );
        let unnormalised = vec![vec![0.5, 0.5], vec![0.2, 0.7]];
        assert!(matches!(
            validate(&unnormalised, &[0, 1]),
            Err(MetricsError::NotADistribution { row: 1, sum }) if (sum - 0.9).abs() < 1e-12
        ));
        let negative = vec![vec![-0.1, 1.1], vec![0.2, 0.8]];
        assert!(matches!(
            validate(&negative, &[0, 1]),
            Err(MetricsError::NotADistribution { row: 0, .. })
        ));
        let nan = vec![vec![0.5, 0.5], vec![f64::NAN, 1.0]];
        assert!(matches!(
            validate(&nan, &[0, 1]),
            Err(MetricsError::NotADistribution { row: 1, .. })
        ));
        // Within tolerance: float32-style rounding is accepted.
        assert_eq!(validate(&[vec![0.3 + 4e-7, 0.7]], &[1]), Ok(2));
        assert_eq!(
            validate(&ok, &[0, 2]),
            Err(MetricsError::LabelOutOfRange {
                index: 1,
                label: 2,
                num_classes: 2
            })
        );
        let opts = BootstrapOptions::new(10, 0);
        assert_eq!(
            multiclass_metrics(&ok, &[0, 1], &names(3), 10, &opts, None),
            Err(MetricsError::WrongLength {
                what: "class names",
                expected: 2,
                found: 3
            })
        );
        assert_eq!(
            multiclass_metrics(&ok, &[0, 1], &names(2), 0, &opts, None),
            Err(MetricsError::InvalidBins)
        );
        assert_eq!(
            top_label_ece(&ok, &[0, 1], 0),
            Err(MetricsError::InvalidBins)
        );
    }

    #[test]
    fn full_report_is_consistent_seeded_and_round_trips() {
        let (probs, labels) = three_class();
        let opts = BootstrapOptions::new(300, 9);
        let m = multiclass_metrics(&probs, &labels, &names(3), 10, &opts, None).unwrap();
        assert_eq!(m.n, 12);
        assert_eq!(m.accuracy, 5.0 / 12.0);
        assert_eq!(
            m.per_class.iter().map(|c| c.n).collect::<Vec<_>>(),
            vec![4, 4, 4]
        );
        assert_eq!(m.per_class[0].recall, 0.75);
        assert_eq!(m.per_class[0].precision, 3.0 / 7.0);
        assert_eq!(m.per_class[2].precision, 0.0, "never predicted");
        let per = ovr_auroc(&probs, &labels);
        for (c, a) in m.per_class.iter().zip(&per) {
            let ci = c.auroc.unwrap();
            assert_eq!(ci.point, *a);
            assert!(ci.low <= ci.high && ci.n_valid == 300, "{ci:?}");
        }
        assert_eq!(m.macro_auroc.unwrap().point, macro_auroc(&probs, &labels));
        assert_eq!(m.balanced_accuracy.point, 1.25 / 3.0);
        assert_eq!(m.classwise_ece, classwise_ece(&probs, &labels, 10).unwrap());
        assert_eq!(m.top_label_ece, top_label_ece(&probs, &labels, 10).unwrap());
        assert_eq!(m.confusion_normalised, row_normalised(&m.confusion));
        let again = multiclass_metrics(&probs, &labels, &names(3), 10, &opts, None).unwrap();
        assert_eq!(again, m);
        let json = serde_json::to_string(&m).unwrap();
        let back: MulticlassMetrics = serde_json::from_str(&json).unwrap();
        assert_eq!(back, m);
    }

    #[test]
    fn patient_groups_change_only_the_intervals() {
        let (probs, labels) = three_class();
        let opts = BootstrapOptions::new(300, 9);
        let singles: Vec<usize> = (0..12).collect();
        let pairs: Vec<usize> = (0..12).map(|i| i / 2).collect();
        let plain = multiclass_metrics(&probs, &labels, &names(3), 10, &opts, None).unwrap();
        let single =
            multiclass_metrics(&probs, &labels, &names(3), 10, &opts, Some(&singles)).unwrap();
        assert_eq!(single, plain, "singleton groups = row bootstrap");
        let grouped =
            multiclass_metrics(&probs, &labels, &names(3), 10, &opts, Some(&pairs)).unwrap();
        assert_eq!(
            grouped.balanced_accuracy.point,
            plain.balanced_accuracy.point
        );
        assert_eq!(grouped.confusion, plain.confusion);
        assert_ne!(grouped.balanced_accuracy, plain.balanced_accuracy);
        let bad = multiclass_metrics(&probs, &labels, &names(3), 10, &opts, Some(&pairs[..5]));
        assert_eq!(
            bad,
            Err(MetricsError::WrongLength {
                what: "groups",
                expected: 12,
                found: 5
            })
        );
    }
}
