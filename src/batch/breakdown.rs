//! The figures beyond "melanoma vs rest": every class of a K-class model
//! (per-class AUROC, balanced accuracy, the KxK confusion, class-wise
//! calibration) and every subgroup of the configured attribute columns
//! (skin type, site, sex, age), with intervals that resample patients when
//! the data set has patient or lesion groups.

use std::collections::HashMap;
use std::path::Path;

use crate::data::groups::{dense_groups, is_ungrouped};
use crate::data::scan::{Sample, Scan};
use crate::error::{Error, Result};
use crate::evaluate::group_bootstrap::bootstrap_by_group;
use crate::evaluate::multiclass::multiclass_metrics;
use crate::evaluate::subgroups::{subgroup_report, to_csv, SubgroupOptions, SubgroupReport};
use crate::metrics::average_precision;
use crate::metrics::BootstrapOptions;
use crate::report::figures;
use crate::report::run::{Breakdown, Figure, PositiveView};
use crate::verdict::EvalRow;

use super::Run;

/// Equal-width bins of every ECE in the reports.
const N_BINS: usize = crate::calibrate::DEFAULT_N_BINS;

/// What the breakdown is computed from: held-out predictions by image id.
pub(super) struct HeldOut<'a> {
    pub ids: Vec<&'a str>,
    /// Calibrated probabilities, every class.
    pub probabilities: &'a [Vec<f64>],
    pub labels: &'a [usize],
    pub positive: usize,
    /// The operating point's referral threshold on p(positive).
    pub threshold: f64,
    pub bootstrap: BootstrapOptions,
}

/// K-class metrics (K > 2) and subgroups (with attribute columns) of
/// `held`, writing `confusion_<stem>.png`, `subgroups_<stem>.csv` and
/// `subgroups_<stem>.png` into `dir`.
pub(super) fn breakdown(
    dir: &Path,
    stem: &str,
    title: &str,
    data: &Scan,
    attribute_columns: &[String],
    held: &HeldOut,
) -> Result<Breakdown> {
    let by_id: HashMap<&str, &Sample> = data.samples.iter().map(|s| (s.id.as_str(), s)).collect();
    let samples: Vec<&Sample> = held
        .ids
        .iter()
        .map(|id| {
            by_id.get(id).copied().ok_or_else(|| {
                Error::Other(format!("held-out image '{id}' is not in the data set"))
            })
        })
        .collect::<Result<_>>()?;
    let keys: Vec<Option<String>> = samples.iter().map(|s| s.group.clone()).collect();
    let groups = dense_groups(&keys);
    let grouped = !is_ungrouped(&groups);
    let mut out = Breakdown {
        images: samples.len(),
        groups: grouped.then(|| groups.iter().max().map_or(0, |m| m + 1)),
        ..Breakdown::default()
    };
    let patient_groups = grouped.then_some(groups.as_slice());
    out.positive = positive_view(data, held, patient_groups);
    if data.classes.len() > 2 {
        let m = multiclass_metrics(
            held.probabilities,
            held.labels,
            &data.classes,
            N_BINS,
            &held.bootstrap,
            patient_groups,
        )
        .map_err(|e| Error::Other(format!("K-class metrics of {title}: {e}")))?;
        let file = format!("confusion_classes_{stem}.png");
        let labels: Vec<&str> = data.classes.iter().map(String::as_str).collect();
        let counts: Vec<Vec<u64>> = m
            .confusion
            .iter()
            .map(|r| r.iter().map(|&c| c as u64).collect())
            .collect();
        figures::confusion_matrix_k(&dir.join(&file), &labels, &counts, title)
            .map_err(|e| Error::Other(format!("{file}: {e}")))?;
        out.figures
            .push(Figure::new(file, "Confusion matrix, every class"));
        out.multiclass = Some(m);
    }
    if !attribute_columns.is_empty() {
        out.subgroups = Some(subgroups(
            dir,
            stem,
            title,
            &samples,
            held,
            attribute_columns,
            patient_groups,
            &mut out.figures,
        )?);
    }
    Ok(out)
}

/// AUPRC of the positive class with a (group) bootstrap interval; `None`
/// when it is undefined (no positive image held out).
fn positive_view(data: &Scan, held: &HeldOut, groups: Option<&[usize]>) -> Option<PositiveView> {
    let scores: Vec<f64> = held
        .probabilities
        .iter()
        .map(|p| p[held.positive])
        .collect();
    let ap = |rows: &[usize]| {
        let l: Vec<usize> = rows.iter().map(|&i| held.labels[i]).collect();
        let s: Vec<f64> = rows.iter().map(|&i| scores[i]).collect();
        average_precision(&l, &s, held.positive).unwrap_or(f64::NAN)
    };
    let all: Vec<usize> = (0..scores.len()).collect();
    let point = ap(&all);
    if !point.is_finite() {
        return None;
    }
    let auprc = bootstrap_by_group(
        scores.len(),
        groups,
        point,
        |rows| ap(rows),
        &held.bootstrap,
    )
    .ok()?;
    let positives = held.labels.iter().filter(|&&l| l == held.positive).count();
    Some(PositiveView {
        class: data.classes.get(held.positive).cloned().unwrap_or_default(),
        prevalence: positives as f64 / held.labels.len().max(1) as f64,
        auprc,
    })
}

/// The subgroup table of `held`, its CSV and figure.
#[allow(clippy::too_many_arguments)]
fn subgroups(
    dir: &Path,
    stem: &str,
    title: &str,
    samples: &[&Sample],
    held: &HeldOut,
    columns: &[String],
    groups: Option<&[usize]>,
    figures_out: &mut Vec<Figure>,
) -> Result<SubgroupReport> {
    let scores: Vec<f64> = held
        .probabilities
        .iter()
        .map(|p| p[held.positive])
        .collect();
    let attributes: Vec<Vec<(String, String)>> =
        samples.iter().map(|s| s.attributes.clone()).collect();
    let opts = SubgroupOptions {
        bootstrap: held.bootstrap,
        groups: groups.map(<[usize]>::to_vec),
        ..SubgroupOptions::default()
    };
    let report = subgroup_report(
        &scores,
        held.labels,
        held.positive,
        held.threshold,
        &attributes,
        columns,
        &opts,
    )
    .map_err(|e| Error::Other(format!("subgroups of {title}: {e}")))?;
    let csv = dir.join(format!("subgroups_{stem}.csv"));
    crate::files::write_bytes(&csv, to_csv(&report).as_bytes())?;
    let file = format!("subgroups_{stem}.png");
    figures::subgroup_forest(&dir.join(&file), &report, title)
        .map_err(|e| Error::Other(format!("{file}: {e}")))?;
    figures_out.push(Figure::new(
        file,
        "By subgroup: AUROC, sensitivity and specificity at the operating point",
    ));
    Ok(report)
}

/// Every class and subgroup of a model's test split, at its calibrated
/// temperature; subgroups at the 0.5 threshold of its test metrics.
pub(super) fn model_breakdown(
    r: &mut Run,
    data: &Scan,
    positive: usize,
    name: &str,
    test: &[EvalRow],
    cal: &crate::calibrate::fit::CalibrationOutcome,
) -> Result<crate::report::run::Breakdown> {
    let probabilities: Vec<Vec<f64>> = test
        .iter()
        .map(|row| row.probabilities(cal.fit.temperature))
        .collect();
    let labels: Vec<usize> = test.iter().map(|row| row.label).collect();
    let held = HeldOut {
        ids: test.iter().map(|row| row.id.as_str()).collect(),
        probabilities: &probabilities,
        labels: &labels,
        positive,
        threshold: crate::metrics::DEFAULT_THRESHOLD,
        bootstrap: BootstrapOptions::new(r.batch.bootstrap_samples, r.config.train.seed),
    };
    breakdown(
        &r.dir,
        name,
        &format!("{name} test"),
        data,
        &r.config.data.attribute_columns,
        &held,
    )
}

/// Every class and subgroup of the repeated cross-validation's ensemble,
/// out of fold, at its operating point.
pub(super) fn ensemble_breakdown(
    r: &mut Run,
    data: &Scan,
    positive: usize,
    name: &str,
    repeats: usize,
    out: &crate::evaluate::repeated_cv::RepeatedCv,
    opts: &crate::evaluate::repeated_cv::RepeatedCvOptions,
) -> Result<Breakdown> {
    let held = HeldOut {
        ids: out.provenance.iter().map(|p| p.id.as_str()).collect(),
        probabilities: &out.ensemble_probabilities,
        labels: &out.labels,
        positive,
        threshold: out.report.ensemble.operating_point.chosen.threshold,
        bootstrap: opts.bootstrap,
    };
    breakdown(
        &r.dir,
        &format!("{name}_ensemble"),
        &format!("{name} ensemble of {repeats}, out-of-fold"),
        data,
        &r.config.data.attribute_columns,
        &held,
    )
}

/// Images and groups per part of a model's split, for grouped data sets
/// (train: every image in neither validation nor test).
pub(super) fn split_summary(
    data: &Scan,
    split: &crate::train::SplitOutcome,
) -> Option<crate::data::groups::SplitSummary> {
    data.group_count()?;
    let index: HashMap<&str, usize> = data
        .samples
        .iter()
        .enumerate()
        .map(|(i, s)| (s.id.as_str(), i))
        .collect();
    let rows = |part: &[EvalRow]| -> Vec<usize> {
        part.iter()
            .filter_map(|r| index.get(r.id.as_str()).copied())
            .collect()
    };
    let (val, test) = (rows(&split.val), rows(&split.test));
    let held: std::collections::HashSet<usize> = val.iter().chain(&test).copied().collect();
    let train = (0..data.samples.len())
        .filter(|i| !held.contains(i))
        .collect();
    let parts = crate::data::split::Split { train, val, test };
    let labels: Vec<usize> = data.samples.iter().map(|s| s.label).collect();
    Some(crate::data::groups::summarise(
        &parts,
        &labels,
        &data.groups(),
        data.classes.len(),
    ))
}

/// Image id -> dense patient/lesion group, for grouped data sets only.
pub(super) fn group_of(data: &Scan) -> Option<HashMap<String, usize>> {
    data.group_count()?;
    let dense = data.groups();
    Some(
        data.samples
            .iter()
            .zip(dense)
            .map(|(s, g)| (s.id.clone(), g))
            .collect(),
    )
}
