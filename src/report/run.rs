//! The run report of `--batch`: typed results, written as `metrics.json` and
//! rendered into `report.md` ([`super::markdown`]).
//!
//! The JSON keeps the shape users script against: top-level `run`,
//! `melxai_version`, `libtorch`, `config`, `batch`, `steps`, `metrics`; under
//! `metrics` the keys `data`, `cross_validation`, `model:<name>` (one per
//! model) and `agreement`, each present only when its step ran. Every figure
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
    /// One entry per evaluated model, keyed `model:<name>` in the JSON.
    #[serde(flatten, serialize_with = "models_keyed")]
    pub models: BTreeMap<String, ModelReport>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub agreement: Option<AgreementReport>,
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

/// One model on its own test split.
#[derive(Debug, Clone, Serialize)]
pub struct ModelReport {
    pub checkpoint: PathBuf,
    /// A checkpoint the user gave (never rewritten) rather than one trained here.
    pub given_checkpoint: bool,
    pub best_epoch: usize,
    pub test: BinaryMetrics,
    pub calibration: CalibrationOutcome,
    pub history: Vec<EpochSummary>,
    pub figures: Vec<Figure>,
}

/// Agreement of explanations on the explained split.
#[derive(Debug, Clone, Serialize)]
pub struct AgreementReport {
    pub images: usize,
    pub methods: Vec<String>,
    /// model -> `"<method a>~<method b>"` -> metric -> summary over images.
    pub within: BTreeMap<String, BTreeMap<String, BTreeMap<String, Summary>>>,
    pub cross: Vec<CrossAgreement>,
    pub figures: Vec<Figure>,
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
