//! Binary classification metrics for the melanoma-vs-naevus task.
//!
//! Why this module exists: the reported numbers must be comparable with the
//! literature, most of which computes them with scikit-learn. Every metric here
//! is therefore defined to reproduce the corresponding scikit-learn function
//! (checked against generated fixtures to 1e-12 in `tests/metrics_fixtures.rs`),
//! and every place where we *deliberately* differ is documented on the function.
//!
//! Conventions used throughout:
//! * `labels[i]` is a class index; the sample is **positive** iff
//!   `labels[i] == positive` (melanoma). Every other index counts as negative, so
//!   the module also works on a multi-class label vector in one-vs-rest fashion.
//!   With the sorted class list `["melanoma", "naevus"]` the positive index is 0.
//! * `scores[i]` is the model's probability (or any monotone score) of the
//!   positive class. Scores must not be NaN; ±∞ are accepted for ranking.
//! * A hard prediction is positive iff `score >= threshold`
//!   ([`DEFAULT_THRESHOLD`] = 0.5).
//! * Ratios whose denominator is zero are `0.0`, matching scikit-learn's
//!   `zero_division=0` (e.g. precision when nothing is predicted positive).
//! * Ranking metrics that are undefined (AUROC with only one class present,
//!   AUPRC with no positive sample) are `f64::NAN`, never a panic. NaN values
//!   serialize to JSON `null` and deserialize back to NaN.
//!
//! Small test splits (the MED-NODE test split has 26 images) make point
//! estimates noisy, which is why the seeded percentile bootstrap
//! ([`bootstrap_ci`], [`bootstrap_mean_ci`], [`bootstrap_statistic`]) and the
//! fold aggregation ([`summarize_folds`]) live next to the metrics.

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

/// Decision threshold used for hard predictions unless stated otherwise.
pub const DEFAULT_THRESHOLD: f64 = 0.5;

/// Confidence level used for bootstrap intervals unless stated otherwise.
pub const DEFAULT_LEVEL: f64 = 0.95;

/// Errors for invalid inputs. Undefined-but-valid situations (one class
/// present) are *not* errors: they yield NaN as documented per function.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum MetricsError {
    /// No samples were given.
    #[error("no samples given")]
    Empty,
    /// `labels` and `scores` differ in length.
    #[error("length mismatch: {labels} labels but {scores} scores")]
    LengthMismatch {
        /// Number of labels.
        labels: usize,
        /// Number of scores.
        scores: usize,
    },
    /// A score (or a value to aggregate) is NaN.
    #[error("value at index {index} is NaN")]
    NanValue {
        /// Index of the first NaN value.
        index: usize,
    },
    /// The decision threshold is NaN.
    #[error("threshold is NaN")]
    NanThreshold,
    /// The confidence level is not strictly inside (0, 1).
    #[error("confidence level {0} is not in (0, 1)")]
    InvalidLevel(f64),
    /// Zero bootstrap resamples were requested.
    #[error("n_resamples must be at least 1")]
    NoResamples,
    /// Every bootstrap resample produced a NaN statistic (e.g. AUROC on data
    /// with a single class), so no interval exists.
    #[error("no bootstrap resample produced a finite statistic ({drawn} drawn)")]
    NoValidResamples {
        /// Resamples drawn before giving up.
        drawn: usize,
    },
    /// Fewer than two classes: one-vs-rest metrics need a "rest".
    #[error("need at least 2 classes, got {0}")]
    TooFewClasses(usize),
    /// A probability row has another length than the first row.
    #[error("row {row} has {found} probabilities, expected {expected}")]
    RaggedRow {
        /// Offending row.
        row: usize,
        /// Classes in row 0.
        expected: usize,
        /// Classes in the offending row.
        found: usize,
    },
    /// A label is not a valid class index.
    #[error("label {label} at index {index} is out of range for {num_classes} classes")]
    LabelOutOfRange {
        /// Sample index.
        index: usize,
        /// The label.
        label: usize,
        /// Number of classes.
        num_classes: usize,
    },
    /// A row has an entry outside [0, 1] (or NaN) or does not sum to 1.
    #[error("row {row} is not a probability distribution (entries in [0, 1], sum {sum})")]
    NotADistribution {
        /// Offending row.
        row: usize,
        /// Its sum.
        sum: f64,
    },
    /// A side input given per row or per class has the wrong length.
    #[error("{what}: expected {expected} entries, got {found}")]
    WrongLength {
        /// What the input is ("groups", "class names").
        what: &'static str,
        /// Required length.
        expected: usize,
        /// Given length.
        found: usize,
    },
    /// `n_bins` is zero.
    #[error("n_bins must be at least 1")]
    InvalidBins,
}

/// Serde helper: NaN <-> `null`, so undefined metrics round-trip through JSON.
pub(crate) mod nan_as_null {
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(v: &f64, s: S) -> Result<S::Ok, S::Error> {
        if v.is_nan() {
            s.serialize_none()
        } else {
            s.serialize_f64(*v)
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<f64, D::Error> {
        Ok(Option::<f64>::deserialize(d)?.unwrap_or(f64::NAN))
    }
}

/// 2x2 confusion matrix with melanoma as the positive class.
///
/// Relation to scikit-learn: for `confusion_matrix(y, p)` with `labels=[neg, pos]`
/// the layout is `[[tn, fp], [fn_, tp]]`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct ConfusionMatrix {
    /// Positive samples predicted positive.
    pub tp: usize,
    /// Negative samples predicted positive.
    pub fp: usize,
    /// Negative samples predicted negative.
    pub tn: usize,
    /// Positive samples predicted negative (`fn` is a keyword).
    #[serde(rename = "fn")]
    pub fn_: usize,
}

impl ConfusionMatrix {
    /// Total number of samples.
    pub fn total(&self) -> usize {
        self.tp + self.fp + self.tn + self.fn_
    }

    /// Element-wise sum, for pooling folds.
    pub fn add(&self, other: &ConfusionMatrix) -> ConfusionMatrix {
        ConfusionMatrix {
            tp: self.tp + other.tp,
            fp: self.fp + other.fp,
            tn: self.tn + other.tn,
            fn_: self.fn_ + other.fn_,
        }
    }
}

/// All headline metrics for one evaluation. Every value is in `[0, 1]`, except
/// `auroc`/`auprc`, which may be NaN (see field docs).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct BinaryMetrics {
    /// `(tp + tn) / n`, in `[0, 1]`.
    pub accuracy: f64,
    /// Mean recall over the classes present in the labels, in `[0, 1]`
    /// (scikit-learn `balanced_accuracy_score`; with one class present it is
    /// that class's recall).
    pub balanced_accuracy: f64,
    /// `tp / (tp + fp)`, `0.0` if nothing is predicted positive.
    pub precision: f64,
    /// Sensitivity `tp / (tp + fn)`, `0.0` if there are no positives.
    pub recall: f64,
    /// `tn / (tn + fp)`, `0.0` if there are no negatives.
    pub specificity: f64,
    /// `2 tp / (2 tp + fp + fn)`, `0.0` if that denominator is zero.
    pub f1: f64,
    /// Area under the ROC curve in `[0, 1]`; NaN if only one class is present.
    #[serde(with = "nan_as_null")]
    pub auroc: f64,
    /// Average precision in `[0, 1]`; NaN if there is no positive sample.
    #[serde(with = "nan_as_null")]
    pub auprc: f64,
    /// Counts at the decision threshold.
    pub confusion: ConfusionMatrix,
    /// Number of samples.
    pub n: usize,
}

fn ratio(num: usize, den: usize) -> f64 {
    if den == 0 {
        0.0
    } else {
        num as f64 / den as f64
    }
}

fn validate(labels: &[usize], scores: &[f64]) -> Result<(), MetricsError> {
    if labels.len() != scores.len() {
        return Err(MetricsError::LengthMismatch {
            labels: labels.len(),
            scores: scores.len(),
        });
    }
    if labels.is_empty() {
        return Err(MetricsError::Empty);
    }
    if let Some(index) = scores.iter().position(|s| s.is_nan()) {
        return Err(MetricsError::NanValue { index });
    }
    Ok(())
}

/// Confusion matrix at `threshold` (prediction positive iff `score >= threshold`).
///
/// Errors on empty input, length mismatch, NaN scores or a NaN threshold.
pub fn confusion_matrix(
    labels: &[usize],
    scores: &[f64],
    positive: usize,
    threshold: f64,
) -> Result<ConfusionMatrix, MetricsError> {
    validate(labels, scores)?;
    if threshold.is_nan() {
        return Err(MetricsError::NanThreshold);
    }
    let mut cm = ConfusionMatrix::default();
    for (&l, &s) in labels.iter().zip(scores) {
        match (l == positive, s >= threshold) {
            (true, true) => cm.tp += 1,
            (true, false) => cm.fn_ += 1,
            (false, true) => cm.fp += 1,
            (false, false) => cm.tn += 1,
        }
    }
    Ok(cm)
}

/// Distinct-threshold cumulative counts, as scikit-learn's `_binary_clf_curve`:
/// scores sorted descending, one entry per distinct score with
/// `(threshold, cumulative tp, cumulative fp)`. Inputs must be validated.
fn binary_clf_curve(labels: &[usize], scores: &[f64], positive: usize) -> Vec<(f64, usize, usize)> {
    let mut order: Vec<usize> = (0..scores.len()).collect();
    order.sort_by(|&a, &b| scores[b].total_cmp(&scores[a]));
    let mut out = Vec::new();
    let (mut tp, mut fp) = (0usize, 0usize);
    for (k, &i) in order.iter().enumerate() {
        if labels[i] == positive {
            tp += 1;
        } else {
            fp += 1;
        }
        let last_of_group = match order.get(k + 1) {
            Some(&j) => scores[j] != scores[i],
            None => true,
        };
        if last_of_group {
            out.push((scores[i], tp, fp));
        }
    }
    out
}

/// Area under the ROC curve via the Mann–Whitney U statistic: the probability
/// that a random positive scores higher than a random negative, ties counting
/// 1/2. This equals scikit-learn's `roc_auc_score` (trapezoidal ROC area).
///
/// Returns a value in `[0, 1]`, or NaN if only one class is present
/// (scikit-learn also returns NaN, with a warning).
pub fn auroc(labels: &[usize], scores: &[f64], positive: usize) -> Result<f64, MetricsError> {
    validate(labels, scores)?;
    let n_pos = labels.iter().filter(|&&l| l == positive).count();
    let n_neg = labels.len() - n_pos;
    if n_pos == 0 || n_neg == 0 {
        return Ok(f64::NAN);
    }
    // Sum of (1-based, tie-averaged) ranks of the positives, ascending order.
    let mut order: Vec<usize> = (0..scores.len()).collect();
    order.sort_by(|&a, &b| scores[a].total_cmp(&scores[b]));
    let mut rank_sum_pos = 0.0;
    let mut start = 0;
    while start < order.len() {
        let mut end = start + 1;
        while end < order.len() && scores[order[end]] == scores[order[start]] {
            end += 1;
        }
        // Ranks start+1 ..= end share the average rank.
        let avg_rank = (start + 1 + end) as f64 / 2.0;
        let pos_in_group = order[start..end]
            .iter()
            .filter(|&&i| labels[i] == positive)
            .count();
        rank_sum_pos += avg_rank * pos_in_group as f64;
        start = end;
    }
    let np = n_pos as f64;
    let u = rank_sum_pos - np * (np + 1.0) / 2.0;
    Ok(u / (np * n_neg as f64))
}

/// Average precision exactly as scikit-learn's `average_precision_score`:
/// `AP = Σ_k (R_k − R_{k−1}) · P_k` over distinct score thresholds in
/// decreasing order (step function, no interpolation).
///
/// Returns a value in `[0, 1]`, or NaN if there is no positive sample.
/// (Deliberate difference: scikit-learn returns 0.0 with a warning there; NaN
/// keeps undefined resamples out of bootstrap intervals.)
pub fn average_precision(
    labels: &[usize],
    scores: &[f64],
    positive: usize,
) -> Result<f64, MetricsError> {
    validate(labels, scores)?;
    let n_pos = labels.iter().filter(|&&l| l == positive).count();
    if n_pos == 0 {
        return Ok(f64::NAN);
    }
    let mut ap = 0.0;
    let mut prev_recall = 0.0;
    for (_, tp, fp) in binary_clf_curve(labels, scores, positive) {
        let recall = tp as f64 / n_pos as f64;
        let precision = tp as f64 / (tp + fp) as f64;
        ap += (recall - prev_recall) * precision;
        prev_recall = recall;
    }
    Ok(ap)
}

/// ROC curve like scikit-learn's `roc_curve(..., drop_intermediate=False)`:
/// points `(fpr, tpr, threshold)`, starting at `(0, 0, +∞)` followed by one
/// point per distinct score in decreasing order (the last point is `(1, 1)`).
///
/// If a class is absent the corresponding rate is NaN (as scikit-learn).
/// Note that `+∞` serializes to JSON `null` with serde_json.
pub fn roc_curve(
    labels: &[usize],
    scores: &[f64],
    positive: usize,
) -> Result<Vec<(f64, f64, f64)>, MetricsError> {
    validate(labels, scores)?;
    let curve = binary_clf_curve(labels, scores, positive);
    let (total_tp, total_fp) = curve.last().map_or((0, 0), |&(_, tp, fp)| (tp, fp));
    let rate = |c: usize, total: usize| {
        if total == 0 {
            f64::NAN
        } else {
            c as f64 / total as f64
        }
    };
    let mut out = Vec::with_capacity(curve.len() + 1);
    out.push((rate(0, total_fp), rate(0, total_tp), f64::INFINITY));
    for (thr, tp, fp) in curve {
        out.push((rate(fp, total_fp), rate(tp, total_tp), thr));
    }
    Ok(out)
}

/// All [`BinaryMetrics`] at `threshold`.
///
/// Errors on empty input, length mismatch, NaN scores or a NaN threshold.
pub fn binary_metrics(
    labels: &[usize],
    scores: &[f64],
    positive: usize,
    threshold: f64,
) -> Result<BinaryMetrics, MetricsError> {
    let cm = confusion_matrix(labels, scores, positive, threshold)?;
    let n = cm.total();
    let recall = ratio(cm.tp, cm.tp + cm.fn_);
    let specificity = ratio(cm.tn, cm.tn + cm.fp);
    // scikit-learn: mean of per-class recall over classes present in y_true.
    let balanced_accuracy = match (cm.tp + cm.fn_ > 0, cm.tn + cm.fp > 0) {
        (true, true) => (recall + specificity) / 2.0,
        (true, false) => recall,
        (false, _) => specificity,
    };
    Ok(BinaryMetrics {
        accuracy: ratio(cm.tp + cm.tn, n),
        balanced_accuracy,
        precision: ratio(cm.tp, cm.tp + cm.fp),
        recall,
        specificity,
        f1: ratio(2 * cm.tp, 2 * cm.tp + cm.fp + cm.fn_),
        auroc: auroc(labels, scores, positive)?,
        auprc: average_precision(labels, scores, positive)?,
        confusion: cm,
        n,
    })
}

/// Percentile bootstrap interval.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Interval {
    /// Statistic on the full sample (NaN if undefined there).
    #[serde(with = "nan_as_null")]
    pub point: f64,
    /// Lower percentile `(1 - level) / 2` of the valid resample statistics.
    pub low: f64,
    /// Upper percentile `(1 + level) / 2` of the valid resample statistics.
    pub high: f64,
    /// Confidence level in (0, 1), e.g. 0.95.
    pub level: f64,
    /// Resamples with a finite statistic (the ones the percentiles use).
    pub n_valid: usize,
    /// Resamples drawn in total (`n_drawn - n_valid` were skipped as NaN).
    pub n_drawn: usize,
}

/// Bootstrap settings shared by all bootstrap functions.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct BootstrapOptions {
    /// Number of *valid* resamples wanted (≥ 1; 1000–10000 is typical).
    pub n_resamples: usize,
    /// Seed of the ChaCha8 generator: same seed and data ⇒ same interval.
    pub seed: u64,
    /// Confidence level in (0, 1).
    pub level: f64,
}

impl BootstrapOptions {
    /// `n_resamples` and `seed` with the default level 0.95.
    pub fn new(n_resamples: usize, seed: u64) -> Self {
        Self {
            n_resamples,
            seed,
            level: DEFAULT_LEVEL,
        }
    }
}

impl Default for BootstrapOptions {
    /// 2000 resamples, seed 0, level 0.95.
    fn default() -> Self {
        Self::new(2000, 0)
    }
}

/// Linear-interpolated quantile of sorted data (NumPy's default method).
/// `q` in [0, 1]; `sorted` must be non-empty.
pub(crate) fn quantile_sorted(sorted: &[f64], q: f64) -> f64 {
    let Some(&last) = sorted.last() else {
        return f64::NAN;
    };
    let h = (sorted.len() - 1) as f64 * q;
    let lo = h.floor() as usize;
    match sorted.get(lo + 1) {
        Some(&next) => sorted[lo] + (h - lo as f64) * (next - sorted[lo]),
        None => last,
    }
}

/// Generic seeded percentile bootstrap over sample indices.
///
/// `statistic` receives the indices (into the caller's `n` samples, drawn
/// uniformly with replacement) of one resample and returns its value; NaN (or
/// any non-finite) results are skipped and do **not** count towards
/// `opts.n_resamples`: drawing continues until that many valid resamples exist
/// or `max(10 * n_resamples, 100)` resamples were drawn. Consequently the
/// interval is conditional on the statistic being defined (e.g. on both
/// classes being present for AUROC). `point` is stored as given.
///
/// With the same `n`, seed and statistic, the sequence of resamples is
/// identical, so several statistics bootstrapped with one seed are paired as
/// long as none of them skips resamples.
///
/// Errors: `n == 0`, `n_resamples == 0`, a level outside (0, 1), or no valid
/// resample at all.
pub fn bootstrap_statistic<F>(
    n: usize,
    point: f64,
    statistic: F,
    opts: &BootstrapOptions,
) -> Result<Interval, MetricsError>
where
    F: FnMut(&[usize]) -> f64,
{
    if n == 0 {
        return Err(MetricsError::Empty);
    }
    percentile_bootstrap(
        point,
        |rng, idx| {
            idx.clear();
            idx.extend((0..n).map(|_| rng.gen_range(0..n)));
        },
        statistic,
        opts,
    )
}

/// The resampling loop every bootstrap here shares: `draw` fills one
/// resample's row indices from the seeded stream, `statistic` scores it;
/// non-finite values are skipped (at most `max(10 * n_resamples, 100)`
/// draws) and the interval is the NumPy-default percentiles.
pub(crate) fn percentile_bootstrap<D, F>(
    point: f64,
    mut draw: D,
    mut statistic: F,
    opts: &BootstrapOptions,
) -> Result<Interval, MetricsError>
where
    D: FnMut(&mut ChaCha8Rng, &mut Vec<usize>),
    F: FnMut(&[usize]) -> f64,
{
    if opts.n_resamples == 0 {
        return Err(MetricsError::NoResamples);
    }
    if !(opts.level > 0.0 && opts.level < 1.0) {
        return Err(MetricsError::InvalidLevel(opts.level));
    }
    let max_draws = opts.n_resamples.saturating_mul(10).max(100);
    let mut rng = ChaCha8Rng::seed_from_u64(opts.seed);
    let mut idx = Vec::new();
    let mut values = Vec::with_capacity(opts.n_resamples);
    let mut drawn = 0;
    while values.len() < opts.n_resamples && drawn < max_draws {
        draw(&mut rng, &mut idx);
        drawn += 1;
        let v = statistic(&idx);
        if v.is_finite() {
            values.push(v);
        }
    }
    if values.is_empty() {
        return Err(MetricsError::NoValidResamples { drawn });
    }
    values.sort_by(f64::total_cmp);
    let alpha = 1.0 - opts.level;
    Ok(Interval {
        point,
        low: quantile_sorted(&values, alpha / 2.0),
        high: quantile_sorted(&values, 1.0 - alpha / 2.0),
        level: opts.level,
        n_valid: values.len(),
        n_drawn: drawn,
    })
}

/// Bootstrap CI of any function of [`BinaryMetrics`] (a closure or a plain
/// `fn`, e.g. `|m| m.auroc`). Resamples whose metric is NaN (a single class
/// for AUROC, no positive for AUPRC) are skipped, see [`bootstrap_statistic`].
///
/// Errors as [`binary_metrics`] and [`bootstrap_statistic`].
pub fn bootstrap_ci<F>(
    labels: &[usize],
    scores: &[f64],
    positive: usize,
    threshold: f64,
    metric: F,
    opts: &BootstrapOptions,
) -> Result<Interval, MetricsError>
where
    F: Fn(&BinaryMetrics) -> f64,
{
    let point = metric(&binary_metrics(labels, scores, positive, threshold)?);
    let mut l = Vec::with_capacity(labels.len());
    let mut s = Vec::with_capacity(scores.len());
    bootstrap_statistic(
        labels.len(),
        point,
        |idx| {
            l.clear();
            s.clear();
            l.extend(idx.iter().map(|&i| labels[i]));
            s.extend(idx.iter().map(|&i| scores[i]));
            // Inputs were validated above, so this cannot fail; map an
            // impossible error to NaN (skipped) rather than panicking.
            binary_metrics(&l, &s, positive, threshold)
                .map(|m| metric(&m))
                .unwrap_or(f64::NAN)
        },
        opts,
    )
}

/// Bootstrap CI of the mean of per-item values (e.g. per-image attribution
/// agreement scores). `point` is the plain mean.
///
/// Errors on empty input, NaN values, and as [`bootstrap_statistic`].
pub fn bootstrap_mean_ci(
    values: &[f64],
    opts: &BootstrapOptions,
) -> Result<Interval, MetricsError> {
    if values.is_empty() {
        return Err(MetricsError::Empty);
    }
    if let Some(index) = values.iter().position(|v| v.is_nan()) {
        return Err(MetricsError::NanValue { index });
    }
    let mean = |it: &mut dyn Iterator<Item = f64>, n: usize| it.sum::<f64>() / n as f64;
    let point = mean(&mut values.iter().copied(), values.len());
    bootstrap_statistic(
        values.len(),
        point,
        |idx| mean(&mut idx.iter().map(|&i| values[i]), idx.len()),
        opts,
    )
}

/// Mean and sample standard deviation of a set of values.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct MeanStd {
    /// Arithmetic mean of the non-NaN values (NaN if there are none).
    #[serde(with = "nan_as_null")]
    pub mean: f64,
    /// Sample standard deviation (ddof = 1) of the non-NaN values; NaN if fewer
    /// than two.
    #[serde(with = "nan_as_null")]
    pub std: f64,
    /// Number of non-NaN values used.
    pub n: usize,
}

/// Mean and sample standard deviation (ddof = 1, like `np.std(x, ddof=1)`).
///
/// NaN values are skipped and `n` reports how many were used, so a fold whose
/// AUROC is undefined does not poison the summary. `std` is NaN when `n < 2`,
/// `mean` is NaN when `n == 0`. Never panics.
pub fn mean_std(values: &[f64]) -> MeanStd {
    let used: Vec<f64> = values.iter().copied().filter(|v| !v.is_nan()).collect();
    let n = used.len();
    if n == 0 {
        return MeanStd {
            mean: f64::NAN,
            std: f64::NAN,
            n,
        };
    }
    let mean = used.iter().sum::<f64>() / n as f64;
    let std = if n < 2 {
        f64::NAN
    } else {
        (used.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / (n - 1) as f64).sqrt()
    };
    MeanStd { mean, std, n }
}

/// Cross-validation summary: mean ± sample std of each metric over folds.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct FoldSummary {
    /// Number of folds summarised.
    pub n_folds: usize,
    /// Accuracy over folds.
    pub accuracy: MeanStd,
    /// Balanced accuracy over folds.
    pub balanced_accuracy: MeanStd,
    /// Precision over folds.
    pub precision: MeanStd,
    /// Recall (sensitivity) over folds.
    pub recall: MeanStd,
    /// Specificity over folds.
    pub specificity: MeanStd,
    /// F1 over folds.
    pub f1: MeanStd,
    /// AUROC over folds (folds with NaN AUROC skipped; see `auroc.n`).
    pub auroc: MeanStd,
    /// AUPRC over folds (folds with NaN AUPRC skipped; see `auprc.n`).
    pub auprc: MeanStd,
    /// Confusion matrices summed over folds.
    pub pooled_confusion: ConfusionMatrix,
    /// Total samples over folds.
    pub n: usize,
}

/// Aggregate per-fold metrics (mean, sample std). An empty slice gives NaN
/// means with `n_folds == 0`; never panics.
pub fn summarize_folds(folds: &[BinaryMetrics]) -> FoldSummary {
    let ms = |f: fn(&BinaryMetrics) -> f64| mean_std(&folds.iter().map(f).collect::<Vec<_>>());
    FoldSummary {
        n_folds: folds.len(),
        accuracy: ms(|m| m.accuracy),
        balanced_accuracy: ms(|m| m.balanced_accuracy),
        precision: ms(|m| m.precision),
        recall: ms(|m| m.recall),
        specificity: ms(|m| m.specificity),
        f1: ms(|m| m.f1),
        auroc: ms(|m| m.auroc),
        auprc: ms(|m| m.auprc),
        pooled_confusion: folds
            .iter()
            .fold(ConfusionMatrix::default(), |acc, m| acc.add(&m.confusion)),
        n: folds.iter().map(|m| m.n).sum(),
    }
}
