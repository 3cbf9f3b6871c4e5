//! Performance by subgroup (skin type, site, sex, age). Reviewers of
//! dermatology models ask whether a model that works on average fails for
//! some group of patients, so every group is reported and small groups are
//! flagged, never hidden.
//!
//! Per requested metadata column the raw values are split into groups
//! ([`Binning`]): equal-width bins for a numeric column with many distinct
//! values (age), else one group per value. Missing values (empty, "unknown",
//! "nan", "NA", "missing", or no such column in a row) form their own group,
//! sorted last. Per group: AUROC and sensitivity/specificity at the operating
//! threshold with percentile-bootstrap intervals (resampling whole patients
//! when patient groups are given), and the top-label ECE.

use std::cmp::Ordering;
use std::collections::HashMap;
use std::fmt::Write as _;

use serde::{Deserialize, Serialize};

use crate::calibrate::measures::ece;
use crate::calibrate::DEFAULT_N_BINS;
use crate::evaluate::group_bootstrap::bootstrap_by_group;
use crate::metrics::{auroc, BootstrapOptions, Interval, MetricsError};

/// Label of the group of rows without a usable value.
pub const MISSING: &str = "missing";

/// A numeric column with at most this many distinct values stays categorical:
/// Fitzpatrick types 1–6 are categories, ages are not.
pub const MAX_NUMERIC_CATEGORIES: usize = 8;

/// Below this many positives (or negatives) sensitivity (or specificity) and
/// AUROC swing by tens of points between resamples, so the group is flagged.
pub const MIN_CLASS_COUNT: usize = 5;

/// Raw values meaning "not recorded" (compared trimmed, ignoring ASCII case).
const MISSING_TOKENS: [&str; 5] = ["", "unknown", "nan", "na", "missing"];

/// Whether a raw metadata value means "not recorded".
pub fn is_missing(raw: &str) -> bool {
    let t = raw.trim();
    MISSING_TOKENS.iter().any(|m| t.eq_ignore_ascii_case(m))
}

/// How the values of one column are split into groups.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub enum Binning {
    /// Bins `[k·width, (k+1)·width)`; `integral` (integer values and width)
    /// labels them "40-49" instead of "[40, 50)".
    Numeric { width: f64, integral: bool },
    /// One group per distinct trimmed value.
    Categorical,
}

impl Binning {
    /// Numeric when every non-missing value parses as a finite number and
    /// there are more than [`MAX_NUMERIC_CATEGORIES`] distinct ones (one group
    /// per age would leave every group tiny); otherwise categorical. A width
    /// that is not finite and positive turns numeric binning off.
    pub fn choose(values: &[&str], width: f64) -> Binning {
        if !(width.is_finite() && width > 0.0) {
            return Binning::Categorical;
        }
        let mut distinct = Vec::new();
        for v in values.iter().filter(|v| !is_missing(v)) {
            match v.trim().parse::<f64>() {
                Ok(x) if x.is_finite() => distinct.push(x),
                _ => return Binning::Categorical,
            }
        }
        let integral = width.fract() == 0.0 && distinct.iter().all(|x| x.fract() == 0.0);
        distinct.sort_by(f64::total_cmp);
        distinct.dedup();
        if distinct.len() > MAX_NUMERIC_CATEGORIES {
            Binning::Numeric { width, integral }
        } else {
            Binning::Categorical
        }
    }
}

/// Where a group sorts: bins by value; categories that are numbers by value,
/// before the other categories by name; missing last.
#[derive(Debug, Clone, PartialEq, PartialOrd)]
enum SortKey {
    Bin(i64),
    Number(f64),
    Name(String),
    Missing,
}

/// A number for a label: rounded so that `3 * 0.1` prints as 0.3, no "-0".
fn fmt_num(x: f64) -> String {
    format!("{}", (x * 1e9).round() / 1e9 + 0.0)
}

fn bin_label(k: i64, width: f64, integral: bool) -> String {
    let lo = k as f64 * width;
    if !integral {
        return format!("[{}, {})", fmt_num(lo), fmt_num(lo + width));
    }
    if width == 1.0 {
        fmt_num(lo)
    } else {
        format!("{}-{}", fmt_num(lo), fmt_num(lo + width - 1.0))
    }
}

fn group_key(raw: &str, binning: &Binning) -> (SortKey, String) {
    if is_missing(raw) {
        return (SortKey::Missing, MISSING.to_string());
    }
    let t = raw.trim();
    let number = t.parse::<f64>().ok().filter(|x| x.is_finite());
    match (*binning, number) {
        (Binning::Numeric { width, integral }, Some(x)) => {
            let k = (x / width).floor() as i64;
            (SortKey::Bin(k), bin_label(k, width, integral))
        }
        (_, Some(x)) => (SortKey::Number(x), t.to_string()),
        (_, None) => (SortKey::Name(t.to_string()), t.to_string()),
    }
}

/// Splits row indices by value: `(group label, rows)` in report order
/// (numeric bins by value, categories by name, "missing" last). A value that
/// does not parse under a numeric binning keeps its own group.
pub fn group_rows(values: &[&str], binning: &Binning) -> Vec<(String, Vec<usize>)> {
    let mut groups: Vec<(SortKey, String, Vec<usize>)> = Vec::new();
    let mut slot_of: HashMap<String, usize> = HashMap::new();
    for (i, v) in values.iter().enumerate() {
        let (key, label) = group_key(v, binning);
        let slot = *slot_of.entry(label.clone()).or_insert_with(|| {
            groups.push((key, label, Vec::new()));
            groups.len() - 1
        });
        groups[slot].2.push(i);
    }
    groups.sort_by(|a, b| {
        a.0.partial_cmp(&b.0)
            .unwrap_or(Ordering::Equal)
            .then_with(|| a.1.cmp(&b.1))
    });
    groups.into_iter().map(|(_, l, r)| (l, r)).collect()
}

/// The raw value of `column` per row; "" (missing) where a row lacks it.
fn column_values<'a>(attributes: &'a [Vec<(String, String)>], column: &str) -> Vec<&'a str> {
    let value = |row: &'a Vec<(String, String)>| row.iter().find(|(c, _)| c == column);
    let text = |row| value(row).map_or("", |(_, v)| v.as_str());
    attributes.iter().map(text).collect()
}

/// Settings of [`subgroup_report`].
#[derive(Debug, Clone, PartialEq)]
pub struct SubgroupOptions {
    /// Resamples, seed and level of every interval (one seed for all, so the
    /// intervals of one group are paired).
    pub bootstrap: BootstrapOptions,
    /// Equal-width bins of the ECE.
    pub n_bins: usize,
    /// Groups with fewer images are flagged `small` (so are groups with fewer
    /// than [`MIN_CLASS_COUNT`] positives or negatives).
    pub min_group: usize,
    /// Width of the bins of numeric columns (10: ages by decade).
    pub numeric_bin_width: f64,
    /// Patient (or lesion) id per image: images of one patient are not
    /// independent, so the bootstrap resamples patients. Any ids, one per image.
    pub groups: Option<Vec<usize>>,
}

impl Default for SubgroupOptions {
    /// 2000 resamples with seed 0, 15 ECE bins, groups under 30 flagged,
    /// decades, images resampled independently.
    fn default() -> Self {
        Self {
            bootstrap: BootstrapOptions::default(),
            n_bins: DEFAULT_N_BINS,
            min_group: 30,
            numeric_bin_width: 10.0,
            groups: None,
        }
    }
}

/// `Interval` with NaN bounds as JSON `null`: its own bounds are plain
/// floats, which serde_json writes as `null` but cannot read back.
#[derive(Serialize, Deserialize)]
#[serde(remote = "Interval")]
struct NullableInterval {
    #[serde(with = "crate::metrics::nan_as_null")]
    point: f64,
    #[serde(with = "crate::metrics::nan_as_null")]
    low: f64,
    #[serde(with = "crate::metrics::nan_as_null")]
    high: f64,
    level: f64,
    n_valid: usize,
    n_drawn: usize,
}

/// One group of one column. Undefined values (AUROC with one class present,
/// sensitivity without positives, specificity without negatives) are NaN
/// (JSON `null`), their intervals too (`n_valid == 0`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SubgroupRow {
    pub column: String,
    pub group: String,
    /// Images in the group.
    pub n: usize,
    /// Images of the positive class in the group.
    pub positives: usize,
    #[serde(with = "NullableInterval")]
    pub auroc: Interval,
    /// At the report's threshold (refer when score >= threshold).
    #[serde(with = "NullableInterval")]
    pub sensitivity: Interval,
    #[serde(with = "NullableInterval")]
    pub specificity: Interval,
    /// Top-label ECE: confidence `max(p, 1 - p)`, correct when `p >= 0.5`
    /// agrees with the label (the crate's ECE convention, independent of the
    /// operating threshold); NaN when a score is outside [0, 1].
    #[serde(with = "crate::metrics::nan_as_null")]
    pub ece: f64,
    /// Too few images, positives or negatives to read the estimates.
    pub small: bool,
}

/// Every group of every requested column, in column order.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SubgroupReport {
    pub columns: Vec<String>,
    pub rows: Vec<SubgroupRow>,
    pub min_group: usize,
    pub threshold: f64,
    pub bin_width: f64,
}

/// The per-image inputs shared by every group.
struct Data<'a> {
    scores: &'a [f64],
    labels: &'a [usize],
    positive: usize,
    threshold: f64,
}

/// Errors: scores and labels of other lengths, `attributes` or `opts.groups`
/// not one per label ([`MetricsError::WrongLength`]), empty input, a NaN
/// score or threshold, zero ECE bins, invalid bootstrap settings.
fn validate(d: &Data, attributes: usize, opts: &SubgroupOptions) -> Result<(), MetricsError> {
    let (n, scores) = (d.labels.len(), d.scores.len());
    if scores != n {
        return Err(MetricsError::LengthMismatch { labels: n, scores });
    }
    let groups = opts.groups.as_ref().map_or(n, Vec::len);
    let sides = [("attributes", attributes), ("groups", groups)];
    if let Some(&(what, found)) = sides.iter().find(|(_, len)| *len != n) {
        let expected = n;
        return Err(MetricsError::WrongLength {
            what,
            expected,
            found,
        });
    }
    if n == 0 {
        return Err(MetricsError::Empty);
    }
    if let Some(index) = d.scores.iter().position(|s| s.is_nan()) {
        return Err(MetricsError::NanValue { index });
    }
    if d.threshold.is_nan() {
        return Err(MetricsError::NanThreshold);
    }
    if opts.n_bins == 0 {
        return Err(MetricsError::InvalidBins);
    }
    if opts.bootstrap.n_resamples == 0 {
        return Err(MetricsError::NoResamples);
    }
    let level = opts.bootstrap.level;
    if !(level > 0.0 && level < 1.0) {
        return Err(MetricsError::InvalidLevel(level));
    }
    Ok(())
}

/// Per group and column: AUROC, sensitivity and specificity at `threshold`
/// (refer when `scores[i] >= threshold`) with bootstrap intervals, ECE, and
/// the small-group flag. `scores[i]` is p(`positive`) of image `i`,
/// `attributes[i]` its raw metadata `(column, value)` pairs (the first pair
/// of a column counts). Errors: mismatched lengths, empty input, NaN scores
/// or threshold, zero ECE bins, invalid bootstrap settings.
pub fn subgroup_report(
    scores: &[f64],
    labels: &[usize],
    positive: usize,
    threshold: f64,
    attributes: &[Vec<(String, String)>],
    columns: &[String],
    opts: &SubgroupOptions,
) -> Result<SubgroupReport, MetricsError> {
    let data = Data {
        scores,
        labels,
        positive,
        threshold,
    };
    validate(&data, attributes.len(), opts)?;
    let mut rows = Vec::new();
    for column in columns {
        let values = column_values(attributes, column);
        let binning = Binning::choose(&values, opts.numeric_bin_width);
        for (group, members) in group_rows(&values, &binning) {
            rows.push(subgroup_row(&data, column, group, &members, opts)?);
        }
    }
    Ok(SubgroupReport {
        columns: columns.to_vec(),
        rows,
        min_group: opts.min_group,
        threshold,
        bin_width: opts.numeric_bin_width,
    })
}

/// Renumbers ids to 0.. in order of first appearance (what the group
/// bootstrap expects of the subgroup's rows).
fn dense(ids: impl Iterator<Item = usize>) -> Vec<usize> {
    let mut seen: HashMap<usize, usize> = HashMap::new();
    ids.map(|id| {
        let next = seen.len();
        *seen.entry(id).or_insert(next)
    })
    .collect()
}

fn no_interval(point: f64, level: f64, n_drawn: usize) -> Interval {
    Interval {
        point,
        low: f64::NAN,
        high: f64::NAN,
        level,
        n_valid: 0,
        n_drawn,
    }
}

/// A bootstrap interval, or none (NaN bounds) where the statistic is
/// undefined on the group or on every resample: an undefined value in one
/// group must not abort the whole report.
fn interval<F: FnMut(&[usize]) -> f64>(
    groups: Option<&[usize]>,
    n: usize,
    point: f64,
    statistic: F,
    opts: &BootstrapOptions,
) -> Result<Interval, MetricsError> {
    if !point.is_finite() {
        return Ok(no_interval(point, opts.level, 0));
    }
    match bootstrap_by_group(n, groups, point, statistic, opts) {
        Err(MetricsError::NoValidResamples { drawn }) => Ok(no_interval(point, opts.level, drawn)),
        other => other,
    }
}

/// Among `idx` rows of one class (`class_positive`), the fraction classified
/// as that class: sensitivity for positives, specificity for negatives.
/// NaN when the class is absent.
fn class_rate(idx: &[usize], is_pos: &[bool], referred: &[bool], class_positive: bool) -> f64 {
    let (mut right, mut total) = (0usize, 0usize);
    for &i in idx.iter().filter(|&&i| is_pos[i] == class_positive) {
        total += 1;
        right += usize::from(referred[i] == class_positive);
    }
    if total == 0 {
        f64::NAN
    } else {
        right as f64 / total as f64
    }
}

fn top_label_ece(scores: &[f64], is_pos: &[bool], n_bins: usize) -> f64 {
    let top = |(&p, &y): (&f64, &bool)| (p.max(1.0 - p), (p >= 0.5) == y);
    let (conf, correct): (Vec<f64>, Vec<bool>) = scores.iter().zip(is_pos).map(top).unzip();
    ece(&conf, &correct, n_bins).unwrap_or(f64::NAN)
}

fn subgroup_row(
    d: &Data,
    column: &str,
    group: String,
    members: &[usize],
    opts: &SubgroupOptions,
) -> Result<SubgroupRow, MetricsError> {
    let n = members.len();
    let scores: Vec<f64> = members.iter().map(|&i| d.scores[i]).collect();
    let labels: Vec<usize> = members.iter().map(|&i| d.labels[i]).collect();
    let is_pos: Vec<bool> = labels.iter().map(|&l| l == d.positive).collect();
    let referred: Vec<bool> = scores.iter().map(|&s| s >= d.threshold).collect();
    let patients = |g: &Vec<usize>| dense(members.iter().map(|&i| g[i]));
    let groups = opts.groups.as_ref().map(patients);
    let groups = groups.as_deref();
    let boot = &opts.bootstrap;
    let all: Vec<usize> = (0..n).collect();
    let auroc_stat = |idx: &[usize]| {
        let l: Vec<usize> = idx.iter().map(|&i| labels[i]).collect();
        let s: Vec<f64> = idx.iter().map(|&i| scores[i]).collect();
        auroc(&l, &s, d.positive).unwrap_or(f64::NAN) // validated: cannot fail
    };
    let point = auroc(&labels, &scores, d.positive)?;
    let auroc_ci = interval(groups, n, point, auroc_stat, boot)?;
    let rate = |class_positive: bool| {
        let point = class_rate(&all, &is_pos, &referred, class_positive);
        let stat = |idx: &[usize]| class_rate(idx, &is_pos, &referred, class_positive);
        interval(groups, n, point, stat, boot)
    };
    let positives = is_pos.iter().filter(|&&p| p).count();
    Ok(SubgroupRow {
        column: column.to_string(),
        group,
        n,
        positives,
        auroc: auroc_ci,
        sensitivity: rate(true)?,
        specificity: rate(false)?,
        ece: top_label_ece(&scores, &is_pos, opts.n_bins),
        small: n < opts.min_group || positives < MIN_CLASS_COUNT || n - positives < MIN_CLASS_COUNT,
    })
}

/// RFC 4180 quoting, for group names such as "lower extremity, left".
fn csv_field(s: &str) -> String {
    if s.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_string()
    }
}

/// NaN as an empty field, which spreadsheets and pandas read as missing.
fn csv_num(x: f64) -> String {
    Some(x)
        .filter(|x| !x.is_nan())
        .map_or(String::new(), |x| x.to_string())
}

/// One line per group under a fixed header, full precision, for analysis
/// outside melxai.
pub fn to_csv(report: &SubgroupReport) -> String {
    let mut out = String::from(
        "column,group,n,positives,auroc,auroc_low,auroc_high,sensitivity,sens_low,sens_high,\
         specificity,spec_low,spec_high,ece,small\n",
    );
    for r in &report.rows {
        let mut fields = vec![csv_field(&r.column), csv_field(&r.group)];
        fields.extend([r.n, r.positives].map(|c| c.to_string()));
        for i in [&r.auroc, &r.sensitivity, &r.specificity] {
            fields.extend([i.point, i.low, i.high].map(csv_num));
        }
        fields.push(csv_num(r.ece));
        fields.push(r.small.to_string());
        out.push_str(&fields.join(","));
        out.push('\n');
    }
    out
}

/// "0.81 [0.70, 0.90]"; just the point without an interval; "n/a" when
/// undefined.
fn interval_cell(i: &Interval) -> String {
    if i.point.is_nan() {
        "n/a".to_string()
    } else if i.low.is_nan() || i.high.is_nan() {
        format!("{:.2}", i.point)
    } else {
        format!("{:.2} [{:.2}, {:.2}]", i.point, i.low, i.high)
    }
}

fn md_cell(s: &str) -> String {
    s.replace('|', "\\|")
}

/// Why a row is flagged, e.g. "12 images (< 30), 3 positives (< 5)".
fn small_reasons(r: &SubgroupRow, min_group: usize) -> String {
    let checks = [
        (r.n, min_group, "images"),
        (r.positives, MIN_CLASS_COUNT, "positives"),
        (r.n - r.positives, MIN_CLASS_COUNT, "negatives"),
    ];
    let failed = checks.iter().filter(|(count, min, _)| count < min);
    let reasons: Vec<String> = failed
        .map(|(c, min, what)| format!("{c} {what} (< {min})"))
        .collect();
    reasons.join(", ")
}

/// A table for reports: one row per group (small ones marked † and
/// explained in a footnote, never left out).
pub fn markdown_table(report: &SubgroupReport) -> String {
    let level = report.rows.first().map_or(0.95, |r| r.auroc.level);
    let ci = format!("[{}% CI]", fmt_num(level * 100.0));
    let mut out = format!(
        "| Attribute | Group | n | Positives | AUROC {ci} | Sensitivity {ci} | Specificity {ci} | ECE |\n\
         |---|---|--:|--:|---|---|---|--:|\n"
    );
    for r in &report.rows {
        let dagger = if r.small { " †" } else { "" };
        let ece = Some(r.ece)
            .filter(|e| !e.is_nan())
            .map(|e| format!("{e:.3}"));
        let ece = ece.as_deref().unwrap_or("n/a");
        let (column, group) = (md_cell(&r.column), md_cell(&r.group));
        let cells = [&r.auroc, &r.sensitivity, &r.specificity].map(interval_cell);
        let (n, positives, cells) = (r.n, r.positives, cells.join(" | "));
        let _ = writeln!(
            out,
            "| {column} | {group}{dagger} | {n} | {positives} | {cells} | {ece} |"
        );
    }
    let _ = write!(
        out,
        "\nSensitivity and specificity at threshold {} (refer when score ≥ threshold); \
         percentile-bootstrap intervals; n/a = undefined (one class absent).\n",
        fmt_num(report.threshold)
    );
    let small: Vec<&SubgroupRow> = report.rows.iter().filter(|r| r.small).collect();
    if !small.is_empty() {
        let _ = writeln!(
            out,
            "\n† Small group: fewer than {} images or fewer than {MIN_CLASS_COUNT} positives \
             or negatives, so its estimates are unreliable:",
            report.min_group
        );
        for r in small {
            let why = small_reasons(r, report.min_group);
            let _ = writeln!(out, "- {} {}: {why}", md_cell(&r.column), md_cell(&r.group));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metrics::bootstrap_statistic;
    use rand::{Rng, SeedableRng};
    use rand_chacha::ChaCha8Rng;

    type Attributes = Vec<Vec<(String, String)>>;

    fn attrs(values: &[&str]) -> Attributes {
        let pair = |v: &&str| vec![("site".to_string(), v.to_string())];
        values.iter().map(pair).collect()
    }

    fn opts(n_resamples: usize, seed: u64) -> SubgroupOptions {
        let bootstrap = BootstrapOptions::new(n_resamples, seed);
        SubgroupOptions {
            bootstrap,
            ..Default::default()
        }
    }

    /// The report of column "site" (positive class 0).
    fn report(s: &[f64], l: &[usize], a: &Attributes, o: &SubgroupOptions) -> SubgroupReport {
        subgroup_report(s, l, 0, 0.5, a, &["site".to_string()], o).unwrap()
    }

    fn numeric(width: f64, integral: bool) -> Binning {
        Binning::Numeric { width, integral }
    }

    fn labels_of(values: &[&str], width: f64) -> Vec<String> {
        let groups = group_rows(values, &Binning::choose(values, width));
        groups.into_iter().map(|(l, _)| l).collect()
    }

    /// Random scores, labels (0 = positive) and a site per image.
    fn random_data(n: usize, seed: u64) -> (Vec<f64>, Vec<usize>, Attributes) {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let labels: Vec<usize> = (0..n).map(|_| usize::from(rng.gen_bool(0.6))).collect();
        let shift = |l: usize| if l == 0 { 0.4 } else { 0.0 };
        let noisy = |l: &usize| (rng.gen::<f64>() + shift(*l)).min(1.0);
        let scores = labels.iter().map(noisy).collect();
        let sites = ["back", "face", "", "leg"];
        let values: Vec<&str> = (0..n).map(|_| sites[rng.gen_range(0..4)]).collect();
        (scores, labels, attrs(&values))
    }

    #[test]
    fn numeric_columns_bin_by_width_with_missing_last() {
        let mut ages: Vec<String> = (0..=95).map(|a| format!("{a}.0")).collect();
        ages.extend(["", "NA", " nan "].map(String::from));
        let values: Vec<&str> = ages.iter().map(String::as_str).collect();
        let binning = Binning::choose(&values, 10.0);
        assert_eq!(binning, numeric(10.0, true));
        let groups = group_rows(&values, &binning);
        let mut want: Vec<String> = (0..10).map(|d| format!("{}-{}9", d * 10, d)).collect();
        want[0] = "0-9".to_string();
        want.push(MISSING.to_string());
        assert_eq!(labels_of(&values, 10.0), want);
        let sizes: Vec<usize> = groups.iter().map(|(_, r)| r.len()).collect();
        assert_eq!(sizes, [10, 10, 10, 10, 10, 10, 10, 10, 10, 6, 3]);
        assert_eq!(groups[4], ("40-49".to_string(), (40..50).collect()));
        // Integer labels only for integral values and widths.
        let whole: Vec<String> = (0..20).map(|v| v.to_string()).collect();
        let values: Vec<&str> = whole.iter().map(String::as_str).collect();
        assert_eq!(labels_of(&values, 1.0)[..3], ["0", "1", "2"]);
        assert_eq!(labels_of(&values, 5.0), ["0-4", "5-9", "10-14", "15-19"]);
        let tenths: Vec<String> = (0..12).map(|v| format!("{}", v as f64 * 0.1)).collect();
        let values: Vec<&str> = tenths.iter().map(String::as_str).collect();
        let binning = Binning::choose(&values, 0.5);
        assert_eq!(binning, numeric(0.5, false));
        assert_eq!(group_rows(&values, &binning)[0].1, [0, 1, 2, 3, 4]);
        let want = ["[0, 0.5)", "[0.5, 1)", "[1, 1.5)"];
        assert_eq!(labels_of(&values, 0.5), want);
    }

    #[test]
    fn categorical_columns_keep_every_value_and_missing() {
        let values = [
            "back", "unknown", "face", "", "Back", "face", "MISSING", "acral",
        ];
        assert_eq!(Binning::choose(&values, 10.0), Binning::Categorical);
        let want = ["Back", "acral", "back", "face", MISSING];
        assert_eq!(labels_of(&values, 10.0), want);
        assert_eq!(group_rows(&values, &Binning::Categorical)[4].1, [1, 3, 6]);
        // Few distinct numbers stay categories, ordered by value.
        let types = ["3", "1", "10", "2", "3", "", "4", "5", "6"];
        let want = ["1", "2", "3", "4", "5", "6", "10", MISSING];
        assert_eq!(labels_of(&types, 10.0), want);
        // An unusable width means no numeric bins.
        let many: Vec<String> = (0..20).map(|v| v.to_string()).collect();
        let many: Vec<&str> = many.iter().map(String::as_str).collect();
        assert_eq!(Binning::choose(&many, 0.0), Binning::Categorical);
    }

    #[test]
    fn values_match_direct_computation() {
        let (scores, labels, attributes) = random_data(300, 7);
        let columns = ["site".to_string(), "absent".to_string()];
        let o = opts(200, 3);
        let r = subgroup_report(&scores, &labels, 0, 0.6, &attributes, &columns, &o).unwrap();
        let names: Vec<&str> = r.rows.iter().map(|r| r.group.as_str()).collect();
        assert_eq!(names, ["back", "face", "leg", MISSING, MISSING]);
        // A column no row has puts every image in "missing".
        assert_eq!((r.rows[4].column.as_str(), r.rows[4].n), ("absent", 300));
        for row in &r.rows[..4] {
            let value = if row.group == MISSING { "" } else { &row.group };
            let idx: Vec<usize> = (0..300).filter(|&i| attributes[i][0].1 == value).collect();
            let l: Vec<usize> = idx.iter().map(|&i| labels[i]).collect();
            let s: Vec<f64> = idx.iter().map(|&i| scores[i]).collect();
            let count =
                |f: &dyn Fn(usize, f64) -> bool| l.iter().zip(&s).filter(|p| f(*p.0, *p.1)).count();
            let (tp, pos) = (count(&|l, s| l == 0 && s >= 0.6), count(&|l, _| l == 0));
            let tn = count(&|l, s| l == 1 && s < 0.6);
            assert_eq!((row.n, row.positives), (idx.len(), pos));
            assert_eq!(row.auroc.point, auroc(&l, &s, 0).unwrap());
            assert_eq!(row.sensitivity.point, tp as f64 / pos as f64);
            assert_eq!(row.specificity.point, tn as f64 / (idx.len() - pos) as f64);
            // Image-level intervals are the plain bootstrap on the group's rows.
            let stat = |r: &[usize]| {
                let bl: Vec<usize> = r.iter().map(|&i| l[i]).collect();
                auroc(&bl, &r.iter().map(|&i| s[i]).collect::<Vec<_>>(), 0).unwrap()
            };
            let direct = bootstrap_statistic(idx.len(), row.auroc.point, stat, &o.bootstrap);
            assert_eq!(row.auroc, direct.unwrap());
            assert!(row.auroc.low < row.auroc.point && row.auroc.point < row.auroc.high);
            let top = |(&p, &y): (&f64, &usize)| (p.max(1.0 - p), (p >= 0.5) == (y == 0));
            let (conf, ok): (Vec<f64>, Vec<bool>) = s.iter().zip(&l).map(top).unzip();
            assert_eq!(row.ece, ece(&conf, &ok, 15).unwrap());
        }
    }

    #[test]
    fn small_groups_are_flagged_not_dropped() {
        // (group, images, positives): only "a" is large enough.
        let (mut values, mut labels) = (Vec::new(), Vec::new());
        for (g, n, pos) in [("a", 30, 5), ("b", 29, 5), ("c", 40, 4)] {
            values.extend(vec![g; n]);
            labels.extend((0..n).map(|i| usize::from(i >= pos)));
        }
        let scores: Vec<f64> = labels.iter().map(|&l| 0.8 - 0.5 * l as f64).collect();
        let r = report(&scores, &labels, &attrs(&values), &opts(50, 1));
        let flags: Vec<(usize, usize, bool)> =
            r.rows.iter().map(|r| (r.n, r.positives, r.small)).collect();
        assert_eq!(flags, [(30, 5, false), (29, 5, true), (40, 4, true)]);
        let md = markdown_table(&r);
        assert!(md.contains("| site | b † | 29 | 5 |"), "{md}");
        let full = "| site | a | 30 | 5 | 1.00 [1.00, 1.00] |";
        assert!(md.contains(full), "{md}");
        assert!(md.contains("- site b: 29 images (< 30)\n"), "{md}");
        assert!(md.contains("- site c: 4 positives (< 5)\n"), "{md}");
    }

    #[test]
    fn lower_sensitivity_of_a_group_is_reported_lower() {
        // Positives of the darker skin type "5" score lower: half are missed.
        let (mut scores, mut labels, mut values) = (Vec::new(), Vec::new(), Vec::new());
        for i in 0..200 {
            let (dark, positive) = (i % 2 == 1, i % 4 < 2);
            let jitter = (i % 10) as f64 * 0.02;
            scores.push(match (positive, dark && i % 8 < 4) {
                (true, false) => 0.7 + jitter,
                (true, true) => 0.2 + jitter,
                _ => 0.1 + jitter,
            });
            labels.push(usize::from(!positive));
            values.push(if dark { "5" } else { "2" });
        }
        let r = report(&scores, &labels, &attrs(&values), &opts(300, 2));
        let (light, dark) = (&r.rows[0], &r.rows[1]);
        assert_eq!((light.group.as_str(), dark.group.as_str()), ("2", "5"));
        assert_eq!(light.sensitivity.point, 1.0);
        assert_eq!(dark.sensitivity.point, 0.5);
        assert!(dark.sensitivity.high < light.sensitivity.low);
        assert_eq!(dark.specificity.point, 1.0);
    }

    #[test]
    fn undefined_metrics_have_no_interval_and_round_trip_as_null() {
        // Group "x" holds negatives only.
        let scores = [0.9, 0.1, 0.2, 0.7, 0.3, 0.6];
        let attributes = attrs(&["y", "x", "x", "x", "y", "y"]);
        let r = report(&scores, &[0, 1, 1, 1, 1, 0], &attributes, &opts(100, 0));
        let x = &r.rows[0];
        assert!(x.auroc.point.is_nan() && x.auroc.low.is_nan() && x.auroc.high.is_nan());
        assert_eq!((x.auroc.n_valid, x.auroc.n_drawn), (0, 0));
        assert!(x.sensitivity.point.is_nan());
        assert_eq!(x.specificity.point, 2.0 / 3.0);
        assert!(x.specificity.n_valid > 0);
        let json = serde_json::to_string(&r).unwrap();
        let null = r#""auroc":{"point":null,"low":null,"high":null"#;
        assert!(json.contains(null), "{json}");
        let back: SubgroupReport = serde_json::from_str(&json).unwrap();
        assert_eq!(serde_json::to_string(&back).unwrap(), json);
        assert!(markdown_table(&r).contains("| site | x † | 3 | 0 | n/a | n/a | 0.67 ["));
        let line = to_csv(&r).lines().nth(1).map(String::from).unwrap();
        let start = "site,x,3,0,,,,,,,0.6666666666666666,";
        assert!(line.starts_with(start), "{line}");
    }

    #[test]
    fn csv_lines_and_same_seed_same_report() {
        let (scores, labels, mut attributes) = random_data(150, 5);
        attributes[0][0].1 = "lower extremity, \"left\"".to_string();
        let run = |o: &SubgroupOptions| report(&scores, &labels, &attributes, o);
        // Debug text, as NaN != NaN defeats `==` on reports with undefined values.
        let same = |a: &SubgroupReport, b: SubgroupReport| format!("{a:?}") == format!("{b:?}");
        let a = run(&opts(100, 9));
        assert!(same(&a, run(&opts(100, 9))));
        assert_ne!(a.rows[0].auroc.low, run(&opts(100, 10)).rows[0].auroc.low);
        // One patient per image (ids not dense) is the image bootstrap.
        let mut singletons = opts(100, 9);
        singletons.groups = Some((0..150).map(|i| 1000 - i).collect());
        assert!(same(&a, run(&singletons)));
        assert_eq!(dense([7, 3, 7, 9, 3].into_iter()), [0, 1, 0, 2, 1]);
        let csv = to_csv(&a);
        let lines: Vec<&str> = csv.lines().collect();
        let header = "column,group,n,positives,auroc,auroc_low,auroc_high,sensitivity,\
                      sens_low,sens_high,specificity,spec_low,spec_high,ece,small";
        assert_eq!(lines[0], header);
        assert_eq!((lines.len(), a.rows.len()), (6, 5));
        let quoted = "\nsite,\"lower extremity, \"\"left\"\"\",1,";
        assert!(csv.contains(quoted), "{csv}");
        let flag = |l: &&str| l.ends_with(",true") || l.ends_with(",false");
        assert!(lines[1..].iter().all(flag));
    }

    #[test]
    fn invalid_inputs_are_errors() {
        let (a, columns, o) = (attrs(&["a", "b"]), ["site".to_string()], opts(10, 0));
        let err = |s: &[f64], t: f64, a: &Attributes, o: &SubgroupOptions| {
            let r = subgroup_report(s, &[0, 1], 0, t, a, &columns, o);
            r.unwrap_err().to_string()
        };
        let (ok, one) = ([0.5, 0.2], attrs(&["a"]));
        let short = err(&[0.5], 0.5, &a, &o);
        assert_eq!(short, "length mismatch: 2 labels but 1 scores");
        assert_eq!(err(&ok, f64::NAN, &a, &o), "threshold is NaN");
        let nan = err(&[0.5, f64::NAN], 0.5, &a, &o);
        assert_eq!(nan, "value at index 1 is NaN");
        let wrong = |what: &str| format!("{what}: expected 2 entries, got 1");
        assert_eq!(err(&ok, 0.5, &one, &o), wrong("attributes"));
        let (mut groups, mut bins) = (o.clone(), o.clone());
        (groups.groups, bins.n_bins) = (Some(vec![0]), 0);
        assert_eq!(err(&ok, 0.5, &a, &groups), wrong("groups"));
        assert_eq!(err(&ok, 0.5, &a, &bins), "n_bins must be at least 1");
        let empty = subgroup_report(&[], &[], 0, 0.5, &[], &columns, &o);
        assert_eq!(empty, Err(MetricsError::Empty));
    }
}
