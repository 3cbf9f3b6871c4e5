//! The operating point: a decision threshold on the melanoma probability
//! chosen for a target sensitivity, with the specificity it keeps.
//!
//! Why: a clinician-engineer must know what share of naevi the model still
//! clears when it may miss almost no melanoma. The threshold is chosen on
//! out-of-fold probabilities (never on the images a model trained on).
//!
//! Honesty: a threshold chosen and evaluated on the same out-of-fold set
//! reports an optimistic sensitivity (it is at least the target by
//! construction). [`cross_fit`] chooses it on the other folds and applies it
//! to the held-out fold, which estimates what a new patient would see; the
//! report carries both. Intervals are stratified percentile bootstraps:
//! sensitivity depends only on the positives and specificity only on the
//! negatives, so each is resampled within its class (class counts fixed).

use serde::{Deserialize, Serialize};

use crate::evaluate::group_bootstrap::bootstrap_by_group;
use crate::metrics::{bootstrap_mean_ci, BootstrapOptions, Interval, MetricsError};
use crate::verdict::OperatingPoint;

/// Why an operating point could not be chosen.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum OperatingPointError {
    #[error("target sensitivity {0} is not in (0, 1]")]
    InvalidTarget(f64),
    #[error("no positive sample to choose a threshold on{0}")]
    NoPositives(String),
    #[error("fold index {fold} of sample {index} is out of range 0..{folds}")]
    BadFold {
        index: usize,
        fold: usize,
        folds: usize,
    },
    #[error(transparent)]
    Metrics(#[from] MetricsError),
}

/// Checks lengths and NaNs; returns the positive scores sorted descending.
fn positive_scores(
    labels: &[usize],
    scores: &[f64],
    positive: usize,
) -> Result<Vec<f64>, OperatingPointError> {
    if labels.is_empty() {
        return Err(MetricsError::Empty.into());
    }
    if labels.len() != scores.len() {
        return Err(MetricsError::LengthMismatch {
            labels: labels.len(),
            scores: scores.len(),
        }
        .into());
    }
    if let Some(index) = scores.iter().position(|s| s.is_nan()) {
        return Err(MetricsError::NanValue { index }.into());
    }
    let mut pos: Vec<f64> = labels
        .iter()
        .zip(scores)
        .filter(|(&y, _)| y == positive)
        .map(|(_, &s)| s)
        .collect();
    pos.sort_by(|a, b| b.total_cmp(a));
    Ok(pos)
}

/// `(sensitivity, specificity)` of "positive iff score >= threshold"; a class
/// that is absent gives 0 for its rate (scikit-learn's `zero_division=0`).
pub fn rates(labels: &[usize], scores: &[f64], positive: usize, threshold: f64) -> (f64, f64) {
    let (mut tp, mut p, mut tn, mut n) = (0usize, 0usize, 0usize, 0usize);
    for (&y, &s) in labels.iter().zip(scores) {
        if y == positive {
            p += 1;
            tp += usize::from(s >= threshold);
        } else {
            n += 1;
            tn += usize::from(s < threshold);
        }
    }
    let ratio = |a: usize, b: usize| if b == 0 { 0.0 } else { a as f64 / b as f64 };
    (ratio(tp, p), ratio(tn, n))
}

/// The largest threshold whose sensitivity is at least `target`, with the
/// sensitivity and specificity it keeps on these samples.
///
/// Sensitivity can only fall as the threshold rises, so the answer is the
/// k-th largest positive score, k the fewest positives that reach the target
/// (`k / n_pos >= target`, compared in floating point as scikit-learn's
/// `roc_curve` tpr is). Ties at that score are all referred. Errors on empty,
/// mismatched or NaN input, a target outside (0, 1], or no positive sample.
pub fn choose_threshold(
    labels: &[usize],
    scores: &[f64],
    positive: usize,
    target: f64,
) -> Result<OperatingPoint, OperatingPointError> {
    if !(target > 0.0 && target <= 1.0) {
        return Err(OperatingPointError::InvalidTarget(target));
    }
    let pos = positive_scores(labels, scores, positive)?;
    let n_pos = pos.len();
    if n_pos == 0 {
        return Err(OperatingPointError::NoPositives(String::new()));
    }
    let k = (1..=n_pos)
        .find(|&k| k as f64 / n_pos as f64 >= target)
        .unwrap_or(n_pos);
    let threshold = pos[k - 1];
    let (sensitivity, specificity) = rates(labels, scores, positive, threshold);
    Ok(OperatingPoint {
        threshold,
        target_sensitivity: target,
        sensitivity,
        specificity,
        sensitivity_ci: None,
        specificity_ci: None,
    })
}

/// The operating point of a model from its out-of-fold `rows` (each image
/// predicted by a model that did not train on it) at `temperature`: the
/// threshold on the calibrated melanoma probability. The ensemble manifest
/// stores what this returns. Errors as [`choose_threshold`], and on a
/// `positive` index outside a row.
pub fn from_out_of_fold(
    rows: &[crate::verdict::EvalRow],
    temperature: f64,
    positive: usize,
    target: f64,
) -> Result<OperatingPoint, OperatingPointError> {
    let labels: Vec<usize> = rows.iter().map(|r| r.label).collect();
    let scores: Vec<f64> = rows
        .iter()
        .map(|r| {
            r.probabilities(temperature)
                .get(positive)
                .copied()
                .unwrap_or(f64::NAN)
        })
        .collect();
    choose_threshold(&labels, &scores, positive, target)
}

/// Stratified percentile-bootstrap intervals of sensitivity and specificity
/// at a fixed threshold (the threshold itself is not re-chosen per resample).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct RateIntervals {
    pub sensitivity: Interval,
    pub specificity: Interval,
}

/// [`RateIntervals`] at `threshold`: each class's hit indicators resampled
/// within the class (seeds `opts.seed` and `opts.seed + 1`). Errors when a
/// class is absent.
pub fn rate_intervals(
    labels: &[usize],
    scores: &[f64],
    positive: usize,
    threshold: f64,
    opts: &BootstrapOptions,
) -> Result<RateIntervals, OperatingPointError> {
    rate_intervals_grouped(labels, scores, positive, threshold, opts, None)
}

/// As [`rate_intervals`], resampling each class's patient/lesion groups
/// (`groups[i]`: sample i's group) instead of its images when given; with
/// every image its own group the intervals are the same.
pub fn rate_intervals_grouped(
    labels: &[usize],
    scores: &[f64],
    positive: usize,
    threshold: f64,
    opts: &BootstrapOptions,
    groups: Option<&[usize]>,
) -> Result<RateIntervals, OperatingPointError> {
    positive_scores(labels, scores, positive)?;
    let class_rows = |want_positive: bool| -> Vec<usize> {
        (0..labels.len())
            .filter(|&i| (labels[i] == positive) == want_positive)
            .collect()
    };
    let interval = |want_positive: bool, opts: &BootstrapOptions| {
        let rows = class_rows(want_positive);
        let hits: Vec<f64> = rows
            .iter()
            .map(|&i| f64::from(u8::from((scores[i] >= threshold) == want_positive)))
            .collect();
        let Some(groups) = groups else {
            return bootstrap_mean_ci(&hits, opts);
        };
        let of_rows: Vec<usize> = rows.iter().map(|&i| groups[i]).collect();
        let mean = |idx: &[usize]| idx.iter().map(|&i| hits[i]).sum::<f64>() / idx.len() as f64;
        let all: Vec<usize> = (0..hits.len()).collect();
        bootstrap_by_group(hits.len(), Some(&of_rows), mean(&all), mean, opts)
    };
    let second = BootstrapOptions {
        seed: opts.seed.wrapping_add(1),
        ..*opts
    };
    Ok(RateIntervals {
        sensitivity: interval(true, opts)?,
        specificity: interval(false, &second)?,
    })
}

/// A threshold chosen on the other folds and applied to each held-out fold.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CrossFitted {
    /// Threshold used for fold f (chosen without fold f's samples).
    pub fold_thresholds: Vec<f64>,
    /// Pooled over the held-out folds.
    pub sensitivity: f64,
    pub specificity: f64,
    pub intervals: RateIntervals,
}

/// Cross-fitted operating point: `folds[i]` is sample i's fold in
/// `0..n_folds`. Each fold is decided with the threshold
/// [`choose_threshold`] picks on every other fold; the decisions are pooled
/// and bootstrapped as [`rate_intervals`] does. Errors as
/// [`choose_threshold`], on a fold index out of range, and when some fold's
/// complement holds no positive sample.
pub fn cross_fit(
    labels: &[usize],
    scores: &[f64],
    folds: &[usize],
    n_folds: usize,
    positive: usize,
    target: f64,
    opts: &BootstrapOptions,
) -> Result<CrossFitted, OperatingPointError> {
    cross_fit_grouped(
        labels,
        scores,
        (folds, n_folds),
        positive,
        target,
        opts,
        None,
    )
}

/// [`cross_fit`] with its intervals resampling `groups` when given.
fn cross_fit_grouped(
    labels: &[usize],
    scores: &[f64],
    (folds, n_folds): (&[usize], usize),
    positive: usize,
    target: f64,
    opts: &BootstrapOptions,
    groups: Option<&[usize]>,
) -> Result<CrossFitted, OperatingPointError> {
    positive_scores(labels, scores, positive)?;
    if folds.len() != labels.len() {
        return Err(MetricsError::LengthMismatch {
            labels: labels.len(),
            scores: folds.len(),
        }
        .into());
    }
    if let Some((index, &fold)) = folds.iter().enumerate().find(|(_, &f)| f >= n_folds) {
        return Err(OperatingPointError::BadFold {
            index,
            fold,
            folds: n_folds,
        });
    }
    let mut fold_thresholds = Vec::with_capacity(n_folds);
    // Scores shifted so that "score >= fold threshold" becomes ">= 0": one
    // pooled vector of held-out decisions the interval code can take as is.
    let mut margin = vec![0.0; labels.len()];
    for f in 0..n_folds {
        let (l, s): (Vec<usize>, Vec<f64>) = (0..labels.len())
            .filter(|&i| folds[i] != f)
            .map(|i| (labels[i], scores[i]))
            .unzip();
        let chosen = choose_threshold(&l, &s, positive, target).map_err(|e| match e {
            OperatingPointError::NoPositives(_) => {
                OperatingPointError::NoPositives(format!(" outside fold {f}"))
            }
            other => other,
        })?;
        for i in (0..labels.len()).filter(|&i| folds[i] == f) {
            margin[i] = if scores[i] >= chosen.threshold {
                1.0
            } else {
                -1.0
            };
        }
        fold_thresholds.push(chosen.threshold);
    }
    let (sensitivity, specificity) = rates(labels, &margin, positive, 0.0);
    Ok(CrossFitted {
        fold_thresholds,
        sensitivity,
        specificity,
        intervals: rate_intervals_grouped(labels, &margin, positive, 0.0, opts, groups)?,
    })
}

/// The operating point as reported: chosen on all out-of-fold predictions
/// (optimistic, the one stored with the model) and cross-fitted (honest).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OperatingPointReport {
    pub chosen: OperatingPoint,
    /// Intervals of `chosen` on the set it was chosen on.
    pub intervals: RateIntervals,
    pub cross_fitted: CrossFitted,
}

/// Chooses, bootstraps and cross-fits the operating point of out-of-fold
/// `scores` (see [`choose_threshold`], [`rate_intervals`], [`cross_fit`]).
pub fn operating_point_report(
    labels: &[usize],
    scores: &[f64],
    folds: &[usize],
    n_folds: usize,
    positive: usize,
    target: f64,
    opts: &BootstrapOptions,
) -> Result<OperatingPointReport, OperatingPointError> {
    operating_point_report_grouped(
        labels,
        scores,
        (folds, n_folds),
        positive,
        target,
        opts,
        None,
    )
}

/// [`operating_point_report`] with every interval resampling patient/lesion
/// `groups` when given.
pub fn operating_point_report_grouped(
    labels: &[usize],
    scores: &[f64],
    (folds, n_folds): (&[usize], usize),
    positive: usize,
    target: f64,
    opts: &BootstrapOptions,
    groups: Option<&[usize]>,
) -> Result<OperatingPointReport, OperatingPointError> {
    let chosen = choose_threshold(labels, scores, positive, target)?;
    let fit = (folds, n_folds);
    Ok(OperatingPointReport {
        intervals: rate_intervals_grouped(
            labels,
            scores,
            positive,
            chosen.threshold,
            opts,
            groups,
        )?,
        cross_fitted: cross_fit_grouped(labels, scores, fit, positive, target, opts, groups)?,
        chosen,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn threshold_is_the_largest_that_reaches_the_target() {
        // positives 0.9 0.8 0.6 0.3; negatives 0.7 0.2 0.1
        let labels = [0, 0, 0, 0, 1, 1, 1];
        let scores = [0.9, 0.8, 0.6, 0.3, 0.7, 0.2, 0.1];
        let op = choose_threshold(&labels, &scores, 0, 0.75).unwrap();
        assert_eq!(op.threshold, 0.6);
        assert_eq!(op.sensitivity, 0.75);
        assert!((op.specificity - 2.0 / 3.0).abs() < 1e-15);
        let all = choose_threshold(&labels, &scores, 0, 1.0).unwrap();
        assert_eq!(all.threshold, 0.3);
        assert_eq!(all.sensitivity, 1.0);
        let one = choose_threshold(&labels, &scores, 0, 0.01).unwrap();
        assert_eq!(one.threshold, 0.9);
    }

    #[test]
    fn out_of_fold_rows_give_the_threshold_on_calibrated_probabilities() {
        let row = |id: &str, label: usize, z: f64| crate::verdict::EvalRow {
            id: id.into(),
            label,
            logits: vec![z, 0.0],
            members: Vec::new(),
        };
        let rows = [row("a", 0, 2.0), row("b", 0, 1.0), row("c", 1, -1.0)];
        let op = from_out_of_fold(&rows, 2.0, 0, 1.0).unwrap();
        // P(class 0) of "b" at T = 2: sigmoid(0.5).
        assert!((op.threshold - 1.0 / (1.0 + (-0.5f64).exp())).abs() < 1e-15);
        assert_eq!((op.sensitivity, op.specificity), (1.0, 1.0));
        assert_eq!(op.target_sensitivity, 1.0);
    }

    #[test]
    fn bad_targets_and_missing_positives_are_errors() {
        let labels = [1, 1];
        let scores = [0.1, 0.2];
        assert!(matches!(
            choose_threshold(&labels, &scores, 0, 0.9),
            Err(OperatingPointError::NoPositives(_))
        ));
        for t in [0.0, 1.5, f64::NAN] {
            assert!(matches!(
                choose_threshold(&[0], &[0.3], 0, t),
                Err(OperatingPointError::InvalidTarget(_))
            ));
        }
    }

    #[test]
    fn cross_fitting_never_uses_the_held_out_fold() {
        // Fold 1 holds the only low-scoring positive: chosen on fold 0 alone
        // (all positives high), its threshold misses it.
        let labels = [0, 0, 1, 0, 1];
        let scores = [0.9, 0.8, 0.1, 0.2, 0.05];
        let folds = [0, 0, 0, 1, 1];
        let opts = BootstrapOptions::new(200, 3);
        let cf = cross_fit(&labels, &scores, &folds, 2, 0, 1.0, &opts).unwrap();
        assert_eq!(cf.fold_thresholds, vec![0.2, 0.8]);
        // fold 0 with threshold 0.2: both positives referred, negative 0.1 cleared;
        // fold 1 with threshold 0.8: positive 0.2 missed, negative cleared.
        assert!((cf.sensitivity - 2.0 / 3.0).abs() < 1e-15);
        assert_eq!(cf.specificity, 1.0);
        let in_sample = choose_threshold(&labels, &scores, 0, 1.0).unwrap();
        assert_eq!(in_sample.sensitivity, 1.0);
    }

    #[test]
    fn intervals_hold_the_point_and_repeat_with_the_seed() {
        let labels: Vec<usize> = (0..60).map(|i| usize::from(i % 3 == 0)).collect();
        let scores: Vec<f64> = (0..60).map(|i| ((i * 37) % 61) as f64 / 61.0).collect();
        let opts = BootstrapOptions::new(500, 9);
        let a = rate_intervals(&labels, &scores, 0, 0.4, &opts).unwrap();
        let b = rate_intervals(&labels, &scores, 0, 0.4, &opts).unwrap();
        assert_eq!(a, b);
        let (sens, spec) = rates(&labels, &scores, 0, 0.4);
        assert_eq!(a.sensitivity.point, sens);
        assert_eq!(a.specificity.point, spec);
        assert!(a.sensitivity.low <= sens && sens <= a.sensitivity.high);
        assert!(a.specificity.low < a.specificity.high);
        assert!(matches!(
            cross_fit(&labels, &scores, &vec![5; 60], 2, 0, 0.9, &opts),
            Err(OperatingPointError::BadFold { .. })
        ));
    }

    #[test]
    fn grouped_rate_intervals_resample_lesions_and_reduce_to_the_image_bootstrap() {
        // 20 lesions x 3 identical images: hits come in blocks of three.
        let labels: Vec<usize> = (0..120).map(|i| usize::from(i >= 60)).collect();
        let scores: Vec<f64> = (0..120).map(|i| ((i / 3) % 5) as f64 / 5.0).collect();
        let opts = BootstrapOptions::new(400, 2);
        let plain = rate_intervals(&labels, &scores, 0, 0.4, &opts).unwrap();
        let singletons: Vec<usize> = (0..120).collect();
        let same =
            rate_intervals_grouped(&labels, &scores, 0, 0.4, &opts, Some(&singletons)).unwrap();
        assert_eq!(plain, same);
        let lesions: Vec<usize> = (0..120).map(|i| i / 3).collect();
        let grouped =
            rate_intervals_grouped(&labels, &scores, 0, 0.4, &opts, Some(&lesions)).unwrap();
        assert_eq!(grouped.sensitivity.point, plain.sensitivity.point);
        let width = |i: &Interval| i.high - i.low;
        assert!(
            width(&grouped.sensitivity) > 1.3 * width(&plain.sensitivity),
            "{grouped:?} vs {plain:?}"
        );
    }
}
