//! The run report of `--batch`: typed results, written as `metrics.json` and
//! rendered into `report.md` ([`super::markdown`]).
//!
//! The JSON keeps the shape users script against: top-level `run`,
//! `melxai_version`, `libtorch`, `config`, `batch`, `steps`, `metrics`; under
//! `metrics` the keys `data`, `cross_validation`, `model:<name>` (one per
//! model), `ensemble` (repeated cross-validation: single models against
//! their ensemble, with the operating point) and `agreement`, each present
//! only when its step ran. Every figure
//! a section links is listed in that section (`figures`), written by the step
//! that made it, so the report never links a file that is not there.

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde::Serialize;

use crate::calibrate::fit::CalibrationOutcome;
use crate::compare::agreement::Summary;
use crate::data::scan::Skipped;
use crate::metrics::{BinaryMetrics, FoldSummary};
use crate::progress::EpochSummary;

/// The whole `metrics.json`.
#[derive(Debug, Clone, Serialize)]
pub struct RunReport {
    pub run: String,
    pub melxai_version: String,
    pub libtorch: String,
    /// The device the run used, as `doctor` names it: "cuda:0 (NVIDIA H100
    /// 80GB HBM3, 79.1 GiB)" or "cpu (2 threads)".
    pub device: String,
    /// The configuration as run (a record for the reader; nothing reads it back).
    pub config: serde_json::Value,
    /// `[batch]` as run.
    pub batch: serde_json::Value,
    pub steps: Vec<StepRecord>,
    pub metrics: RunMetrics,
    /// Pane screenshots, relative to the run folder.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub screens: Vec<Figure>,
}

/// The outcome of one step.
#[derive(Debug, Clone, Serialize)]
pub struct StepRecord {
    pub step: String,
    pub ok: bool,
    pub seconds: f64,
    pub error: Option<String>,
}

/// A PNG of the run folder and what it shows.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Figure {
    /// File name inside the run folder.
    pub file: String,
    pub caption: String,
}

impl Figure {
    pub fn new(file: impl Into<String>, caption: impl Into<String>) -> Self {
        Figure {
            file: file.into(),
            caption: caption.into(),
        }
    }
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct RunMetrics {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub data: Option<DataSummary>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cross_validation: Option<CrossValidationReport>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ensemble: Option<EnsembleReport>,
    /// One entry per evaluated model, keyed `model:<name>` in the JSON.
    #[serde(flatten, serialize_with = "models_keyed")]
    pub models: BTreeMap<String, ModelReport>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub agreement: Option<AgreementReport>,
    /// Which explanation to trust: the reference model's maps scored (every
    /// model's with `[scores] all_models`).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub scores: Vec<ScoresReport>,
}

/// The scorecard of the explained split, with its figure.
#[derive(Debug, Clone, Serialize)]
pub struct ScoresReport {
    #[serde(flatten)]
    pub card: crate::compare::scores::scorecard::Scorecard,
    pub figures: Vec<Figure>,
}

fn models_keyed<S: serde::Serializer>(
    models: &BTreeMap<String, ModelReport>,
    s: S,
) -> std::result::Result<S::Ok, S::Error> {
    use serde::ser::SerializeMap;
    let mut map = s.serialize_map(Some(models.len()))?;
    for (name, m) in models {
        map.serialize_entry(&format!("model:{name}"), m)?;
    }
    map.end()
}

#[derive(Debug, Clone, Serialize)]
pub struct DataSummary {
    pub root: PathBuf,
    pub classes: Vec<String>,
    /// Images per class, in class order.
    pub counts: Vec<usize>,
    pub skipped: Vec<Skipped>,
    /// Distinct patient/lesion groups, when the data set has a group column
    /// (every split then keeps a group on one side).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub groups: Option<usize>,
}

/// k-fold cross-validation of the reference model, pooled out of fold.
#[derive(Debug, Clone, Serialize)]
pub struct CrossValidationReport {
    pub model: String,
    pub folds: usize,
    pub pooled: BinaryMetrics,
    pub summary: FoldSummary,
    /// `[low, high]`.
    pub pooled_auroc_ci95: [f64; 2],
    pub pooled_balanced_accuracy_ci95: [f64; 2],
    /// Cross-fitted on the out-of-fold predictions.
    pub calibration: CalibrationOutcome,
    pub figures: Vec<Figure>,
}

/// Repeated cross-validation of the reference model: the out-of-fold
/// ensemble's headline numbers (calibrated, cross-fitted temperature) with
/// 95 % percentile-bootstrap intervals `[low, high]`, its operating point,
/// and in `repeated_cv` everything behind them (single models per
/// repetition, mean ± sd, intervals, temperatures, risk–coverage curve).
/// See [`crate::repeated_cv`] for what the ensemble is (a seed ensemble).
#[derive(Debug, Clone, Serialize)]
pub struct EnsembleReport {
    pub model: String,
    /// Models averaged per image (one per repetition).
    pub members: usize,
    pub folds: usize,
    #[serde(with = "crate::metrics::nan_as_null")]
    pub auroc: f64,
    pub auroc_ci: [f64; 2],
    pub balanced_accuracy: f64,
    pub balanced_accuracy_ci: [f64; 2],
    /// 15 equal-width bins.
    pub ece: f64,
    pub ece_ci: [f64; 2],
    /// What perfectly calibrated outcomes score on the same confidences:
    /// ECE on 170 images is biased upwards, this is its floor here.
    pub ece_if_calibrated: crate::calibrate::EceConsistency,
    pub brier: f64,
    pub brier_ci: [f64; 2],
    pub nll: f64,
    pub nll_ci: [f64; 2],
    pub aurc: f64,
    pub aurc_ci: [f64; 2],
    /// Mean |Δp| between the ensembles of two halves of the repetitions
    /// that share no seed; `null` unless each half has two members.
    pub seed_abs_diff: Option<f64>,
    /// Mean |Δp| between single models of different repetitions; `null`
    /// below 2.
    pub seed_abs_diff_single: Option<f64>,
    pub operating_point: OperatingPointSummary,
    /// With `[train] tta` on: the same models' out-of-fold figures without
    /// TTA (TTA measured on and off); absent otherwise.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub without_tta: Option<WithoutTta>,
    pub repeated_cv: crate::evaluate::repeated_cv::RepeatedCvReport,
    pub figures: Vec<Figure>,
    /// The decision curve, shown in report.md's "Decisions" section.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub decision_figure: Option<Figure>,
    /// Every class (K > 2) and every subgroup, out of fold.
    #[serde(skip_serializing_if = "Breakdown::is_empty")]
    pub breakdown: Breakdown,
}

/// The repeated cross-validation's headline figures from the same models'
/// plain (non-TTA) out-of-fold predictions, evaluated the same way.
#[derive(Debug, Clone, Serialize)]
pub struct WithoutTta {
    /// Single models: mean over repetitions.
    pub single: crate::evaluate::repeated_cv::MetricSet,
    pub ensemble: crate::evaluate::repeated_cv::MetricSet,
    pub seed_abs_diff: Option<f64>,
}

impl WithoutTta {
    pub fn of(cv: &crate::evaluate::repeated_cv::RepeatedCvReport) -> Self {
        let s = &cv.single.spread;
        WithoutTta {
            single: crate::evaluate::repeated_cv::MetricSet {
                auroc: s.auroc.mean,
                balanced_accuracy: s.balanced_accuracy.mean,
                ece: s.ece.mean,
                brier: s.brier.mean,
                nll: s.nll.mean,
                aurc: s.aurc.mean,
            },
            ensemble: cv.ensemble.calibrated,
            seed_abs_diff: cv.seed_abs_diff_ensemble,
        }
    }
}

/// The ensemble's operating point: chosen on all out-of-fold predictions
/// (`threshold`, `sensitivity`, `specificity`: optimistic, the sensitivity
/// is at least the target by construction) and cross-fitted (chosen on the
/// other folds, applied to each held-out fold: the honest estimate).
#[derive(Debug, Clone, Serialize)]
pub struct OperatingPointSummary {
    pub threshold: f64,
    pub target_sensitivity: f64,
    pub sensitivity: f64,
    pub sensitivity_ci: [f64; 2],
    pub specificity: f64,
    pub specificity_ci: [f64; 2],
    pub cross_fitted_sensitivity: f64,
    pub cross_fitted_sensitivity_ci: [f64; 2],
    pub cross_fitted_specificity: f64,
    pub cross_fitted_specificity_ci: [f64; 2],
    /// Per fold: the threshold chosen without it.
    pub cross_fitted_thresholds: Vec<f64>,
}

impl EnsembleReport {
    /// The report of `cv` (of the model `model`), listing `figures`.
    pub fn new(
        model: &str,
        cv: crate::evaluate::repeated_cv::RepeatedCvReport,
        figures: Vec<Figure>,
    ) -> Self {
        let ci = |i: &crate::metrics::Interval| [i.low, i.high];
        let e = &cv.ensemble;
        let (m, iv) = (&e.calibrated, &e.intervals);
        let op = &e.operating_point;
        let operating_point = OperatingPointSummary {
            threshold: op.chosen.threshold,
            target_sensitivity: op.chosen.target_sensitivity,
            sensitivity: op.chosen.sensitivity,
            sensitivity_ci: ci(&op.intervals.sensitivity),
            specificity: op.chosen.specificity,
            specificity_ci: ci(&op.intervals.specificity),
            cross_fitted_sensitivity: op.cross_fitted.sensitivity,
            cross_fitted_sensitivity_ci: ci(&op.cross_fitted.intervals.sensitivity),
            cross_fitted_specificity: op.cross_fitted.specificity,
            cross_fitted_specificity_ci: ci(&op.cross_fitted.intervals.specificity),
            cross_fitted_thresholds: op.cross_fitted.fold_thresholds.clone(),
        };
        EnsembleReport {
            model: model.to_string(),
            members: e.members,
            folds: cv.folds,
            auroc: m.auroc,
            auroc_ci: ci(&iv.auroc),
            balanced_accuracy: m.balanced_accuracy,
            balanced_accuracy_ci: ci(&iv.balanced_accuracy),
            ece: m.ece,
            ece_ci: ci(&iv.ece),
            ece_if_calibrated: e.ece_if_calibrated,
            brier: m.brier,
            brier_ci: ci(&iv.brier),
            nll: m.nll,
            nll_ci: ci(&iv.nll),
            aurc: m.aurc,
            aurc_ci: ci(&iv.aurc),
            seed_abs_diff: cv.seed_abs_diff_ensemble,
            seed_abs_diff_single: cv.seed_abs_diff_single,
            operating_point,
            without_tta: None,
            repeated_cv: cv,
            figures,
            decision_figure: None,
            breakdown: Breakdown::default(),
        }
    }
}

/// One model on its own test split.
#[derive(Debug, Clone, Serialize)]
pub struct ModelReport {
    pub checkpoint: PathBuf,
    /// A checkpoint the user gave (never rewritten) rather than one trained here.
    pub given_checkpoint: bool,
    pub best_epoch: usize,
    /// First epoch of a weight-averaged checkpoint's mean (`best_epoch` is
    /// its last).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub averaged_from: Option<usize>,
    pub test: BinaryMetrics,
    pub calibration: CalibrationOutcome,
    pub history: Vec<EpochSummary>,
    pub figures: Vec<Figure>,
    /// Every class (K > 2) and every subgroup, on the test split.
    #[serde(skip_serializing_if = "Breakdown::is_empty")]
    pub breakdown: Breakdown,
    /// Images, patient/lesion groups and per-class counts of each part of
    /// the model's split (grouped data sets only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub split: Option<crate::data::groups::SplitSummary>,
}

/// K-class and subgroup results of one set of held-out predictions.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Breakdown {
    /// The positive class's precision–recall view: what an honest headline
    /// looks like at a low prevalence (ISIC 2020: 1.8 % melanoma).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub positive: Option<PositiveView>,
    /// Every class, when the model has more than two.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub multiclass: Option<crate::evaluate::multiclass::MulticlassMetrics>,
    /// By `[data] attribute_columns`, at the operating point.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub subgroups: Option<crate::evaluate::subgroups::SubgroupReport>,
    /// Images and distinct patient/lesion groups the figures cover (groups
    /// only when the data set has a group column).
    pub images: usize,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub groups: Option<usize>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub figures: Vec<Figure>,
}

impl Breakdown {
    /// Whether there is anything beyond the binary view to report.
    pub fn is_empty(&self) -> bool {
        self.multiclass.is_none() && self.subgroups.is_none() && self.positive.is_none()
    }
}

/// Average precision of the positive class with its bootstrap interval
/// (resampling patient/lesion groups when there are any), beside the
/// prevalence that is its chance level.
#[derive(Debug, Clone, Serialize)]
pub struct PositiveView {
    pub class: String,
    pub prevalence: f64,
    pub auprc: crate::metrics::Interval,
}

/// Agreement of explanations on the explained split.
#[derive(Debug, Clone, Serialize)]
pub struct AgreementReport {
    pub images: usize,
    /// Images of the explained split: `images` is a sample of them when
    /// `[batch] explain_images` is a number.
    pub of_images: usize,
    pub methods: Vec<String>,
    /// model -> `"<method a>~<method b>"` -> metric -> summary over images.
    pub within: BTreeMap<String, BTreeMap<String, BTreeMap<String, Summary>>>,
    pub cross: Vec<CrossAgreement>,
    /// Ensembles only: model -> how far its members' explanations agree.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub members: BTreeMap<String, MembersReport>,
    pub figures: Vec<Figure>,
}

/// Agreement of an ensemble's members' explanations of the same images.
#[derive(Debug, Clone, Serialize)]
pub struct MembersReport {
    pub members: usize,
    /// method -> metric -> summary over images of the mean over member pairs.
    pub per_method: BTreeMap<String, BTreeMap<String, Summary>>,
}

#[derive(Debug, Clone, Serialize)]
pub struct CrossAgreement {
    /// `[reference, other]`.
    pub models: [String; 2],
    pub prediction_agreement: f64,
    pub mean_abs_probability_difference: f64,
    /// method -> metric -> summary over images.
    pub per_method: BTreeMap<String, BTreeMap<String, Summary>>,
}

/// What a finished (or stopped) batch run knows, for faces that render it
/// (the TUI's pane screenshots): typed results, no files to parse.
pub struct RunResults<'a> {
    /// The run folder (`reports/<run>/`); maps are under `maps/<model>/`.
    pub dir: &'a std::path::Path,
    pub data: &'a crate::data::scan::Scan,
    pub positive: usize,
    /// The reference model (first of `[batch] models`) as trained or loaded.
    pub reference: Option<&'a crate::train::RunOutcome>,
    /// k-fold cross-validation of the reference model.
    pub cross_validation: Option<&'a crate::train::RunOutcome>,
    pub metrics: &'a RunMetrics,
    pub comparison: Option<&'a crate::compare::run::ComparisonReport>,
}

/// Renders a run's screenshots into the run folder; returns them as figures.
pub type ScreenshotFn<'a> = dyn FnMut(&RunResults) -> crate::Result<Vec<Figure>> + 'a;
