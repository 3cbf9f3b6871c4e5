//! What each pane shows: sample rows, training progress, calibration,
//! agreement matrices and the image cache keys.

use serde_json::Value;

use crate::progress::{EpochSummary, SamplePrediction, UnitLine};

/// One row of the data set list.
#[derive(Debug, Clone, PartialEq)]
pub struct SampleRow {
    pub id: String,
    pub label: usize,
    pub prediction: Option<SamplePrediction>,
    pub agreement: Option<f64>,
}

impl SampleRow {
    /// File name part of the id (`<class>/<file>`).
    pub fn file_name(&self) -> &str {
        self.id.rsplit('/').next().unwrap_or(&self.id)
    }
}

/// A run whose units other processes execute, as their files said last.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct WatchedRun {
    pub run: String,
    pub units: Vec<UnitLine>,
    /// The training unit the charts follow: the running one updated last,
    /// else the last finished.
    pub focus: Option<String>,
}

impl WatchedRun {
    /// How many units are in `state`.
    pub fn count(&self, state: &str) -> usize {
        self.units.iter().filter(|u| u.state == state).count()
    }
}

/// Training progress as reported by `Batch` and `Epoch` events.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct TrainingState {
    pub active: bool,
    pub fold: Option<(usize, usize)>,
    pub epoch: usize,
    pub epochs: usize,
    pub batch: usize,
    pub batches: usize,
    pub last_loss: Option<f64>,
    pub learning_rate: Option<f64>,
    pub history: Vec<EpochSummary>,
    /// Latest estimate from a `Progress` event, if the engine sent one.
    pub eta_seconds: Option<f64>,
    /// How the last run ended ("finished", "cancelled", "failed"); None while running.
    pub outcome: Option<&'static str>,
}

impl TrainingState {
    /// Seconds left: the engine's estimate when there is one, else the mean
    /// epoch time times the epochs left (the current one pro rata).
    pub fn eta(&self) -> Option<f64> {
        if let Some(eta) = self.eta_seconds {
            return Some(eta);
        }
        if self.history.is_empty() || self.epochs == 0 {
            return None;
        }
        let mean = self.history.iter().map(|e| e.seconds).sum::<f64>() / self.history.len() as f64;
        let done_epochs = self.history.last().map(|e| e.epoch).unwrap_or(0);
        let current = if self.batches > 0 && self.epoch > done_epochs {
            self.batch as f64 / self.batches as f64
        } else {
            0.0
        };
        let left = (self.epochs.saturating_sub(done_epochs)) as f64 - current;
        Some((left.max(0.0)) * mean)
    }
}

/// One reliability-diagram bin.
#[derive(Debug, Clone, PartialEq)]
pub struct ReliabilityBin {
    pub lower: f64,
    pub upper: f64,
    pub mean_confidence: Option<f64>,
    pub accuracy: Option<f64>,
    pub count: u64,
}

/// Scalar calibration metrics and bins of one side (before or after).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct CalibrationMetrics {
    pub ece: Option<f64>,
    pub adaptive_ece: Option<f64>,
    pub mce: Option<f64>,
    pub brier: Option<f64>,
    pub nll: Option<f64>,
    /// Mean ECE of perfectly calibrated outcomes on the same confidences
    /// (the small-sample floor) and the p-value of the observed ECE.
    pub ece_if_calibrated: Option<f64>,
    pub ece_p_value: Option<f64>,
    /// Spiegelhalter's p-value and the recalibration slope and intercept
    /// (binary models; `None` in older reports).
    pub spiegelhalter_p: Option<f64>,
    pub slope: Option<f64>,
    pub intercept: Option<f64>,
    /// Standard errors of the slope and intercept.
    pub slope_se: Option<f64>,
    pub intercept_se: Option<f64>,
    pub bins: Vec<ReliabilityBin>,
    /// The decision curve of the same held-out predictions, and the
    /// operating point's threshold (binary models; the `after` side).
    pub decision_curve: Option<crate::evaluate::decision_curve::DecisionCurve>,
    pub operating_threshold: Option<f64>,
}

impl CalibrationMetrics {
    /// The calibration statement at this sample size: Spiegelhalter's p at
    /// or above 0.05, and slope 1 and intercept 0 within 1.96 standard
    /// errors (the Wald form of the report's bootstrap check). `None`
    /// without the evidence.
    pub fn consistent(&self) -> Option<bool> {
        let p = self.spiegelhalter_p?;
        let within = |v: f64, target: f64, se: f64| (v - target).abs() <= 1.96 * se;
        Some(
            p >= 0.05
                && within(self.slope?, 1.0, self.slope_se?)
                && within(self.intercept?, 0.0, self.intercept_se?),
        )
    }

    /// Reads the engine's report JSON leniently: missing or null fields stay `None`.
    pub fn from_json(v: &Value) -> Self {
        let num = |k: &str| v.get(k).and_then(Value::as_f64);
        let bins = v
            .get("bins")
            .and_then(Value::as_array)
            .map(|bins| {
                bins.iter()
                    .map(|b| ReliabilityBin {
                        lower: b.get("lower").and_then(Value::as_f64).unwrap_or(0.0),
                        upper: b.get("upper").and_then(Value::as_f64).unwrap_or(0.0),
                        mean_confidence: b.get("mean_confidence").and_then(Value::as_f64),
                        accuracy: b.get("accuracy").and_then(Value::as_f64),
                        count: b.get("count").and_then(Value::as_u64).unwrap_or(0),
                    })
                    .collect()
            })
            .unwrap_or_default();
        CalibrationMetrics {
            ece: num("ece"),
            spiegelhalter_p: v.pointer("/spiegelhalter/p_value").and_then(Value::as_f64),
            slope: v.pointer("/recalibration/slope").and_then(Value::as_f64),
            intercept: v
                .pointer("/recalibration/intercept")
                .and_then(Value::as_f64),
            decision_curve: v
                .get("decision_curve")
                .and_then(|d| serde_json::from_value(d.clone()).ok()),
            operating_threshold: num("operating_threshold"),
            slope_se: v.pointer("/recalibration/slope_se").and_then(Value::as_f64),
            intercept_se: v
                .pointer("/recalibration/intercept_se")
                .and_then(Value::as_f64),
            adaptive_ece: num("adaptive_ece"),
            mce: num("mce"),
            brier: num("brier"),
            nll: num("nll"),
            ece_if_calibrated: v
                .pointer("/ece_if_calibrated/expected")
                .and_then(Value::as_f64),
            ece_p_value: v
                .pointer("/ece_if_calibrated/p_value")
                .and_then(Value::as_f64),
            bins,
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct CalibrationState {
    pub model: String,
    pub temperature: f64,
    pub before: CalibrationMetrics,
    pub after: CalibrationMetrics,
}

/// A square method × method similarity matrix.
#[derive(Debug, Clone, PartialEq)]
pub struct AgreementMatrix {
    pub methods: Vec<String>,
    pub values: Vec<Vec<f64>>,
}

impl AgreementMatrix {
    /// Mean of the off-diagonal entries (the per-sample agreement score).
    pub fn mean_off_diagonal(&self) -> Option<f64> {
        let mut sum = 0.0;
        let mut n = 0usize;
        for (i, row) in self.values.iter().enumerate() {
            for (j, v) in row.iter().enumerate() {
                if i != j && v.is_finite() {
                    sum += v;
                    n += 1;
                }
            }
        }
        (n > 0).then(|| sum / n as f64)
    }
}

/// Which image an on-screen rectangle shows (for graphics protocols and screenshots).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum ImageKind {
    Photo,
    Heatmap(String),
    /// A heatmap blended over the photo, `opacity` in percent.
    Overlay {
        method: String,
        opacity: u8,
    },
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ImageKey {
    pub sample_id: String,
    pub kind: ImageKind,
}

/// A square matrix over `methods`, or `None` when the shapes disagree.
pub(super) fn square(methods: Vec<String>, values: Vec<Vec<f64>>) -> Option<AgreementMatrix> {
    let n = methods.len();
    (n > 0 && values.len() == n && values.iter().all(|r| r.len() == n))
        .then_some(AgreementMatrix { methods, values })
}
