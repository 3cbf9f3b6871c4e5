//! What the pipeline says of one image: its prediction row (raw logits, and
//! each ensemble member's), the row shown in the sample list, the members'
//! uncertainty, and the operating point's decision.
//!
//! Ground floor: progress events, calibration, evaluation, ensembles and the
//! faces all carry these, so none of them has to import another for its
//! data types.

pub mod conformal;
pub mod operating_point;
pub mod uncertainty;

use serde::{Deserialize, Serialize};

pub use operating_point::{Decision, OperatingPoint};
pub use uncertainty::{from_member_logits, Uncertainty};

/// One evaluated sample with its raw logits (temperature is applied later).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EvalRow {
    pub id: String,
    pub label: usize,
    pub logits: Vec<f64>,
    /// Each ensemble member's raw logits (empty for a single model); the
    /// per-sample uncertainty is computed from them.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub members: Vec<Vec<f64>>,
}

impl EvalRow {
    /// Softmax probabilities at `temperature`.
    pub fn probabilities(&self, temperature: f64) -> Vec<f64> {
        uncertainty::softmax(&self.logits, temperature)
    }

    /// Uncertainty at `temperature` from the members' probabilities (a
    /// single model counts as its one member).
    pub fn uncertainty(&self, temperature: f64, positive: usize) -> Option<Uncertainty> {
        if self.members.is_empty() {
            from_member_logits(std::slice::from_ref(&self.logits), temperature, positive)
        } else {
            from_member_logits(&self.members, temperature, positive)
        }
    }

    pub fn to_prediction(
        &self,
        positive: usize,
        temperature: f64,
        split: &str,
    ) -> SamplePrediction {
        let p = self.probabilities(temperature);
        let pu = self.probabilities(1.0);
        let predicted = (0..p.len())
            .max_by(|&a, &b| p[a].total_cmp(&p[b]))
            .unwrap_or(0);
        SamplePrediction {
            id: self.id.clone(),
            label: self.label,
            predicted,
            probability: p.get(positive).copied().unwrap_or(f64::NAN),
            probability_uncalibrated: pu.get(positive).copied().unwrap_or(f64::NAN),
            split: split.to_string(),
            uncertainty: self.uncertainty(temperature, positive),
            decision: None,
            conformal_set: None,
        }
    }
}

/// One row of the data set list: a sample with the current model's verdict.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SamplePrediction {
    /// Stable id: `<class>/<file name>`.
    pub id: String,
    pub label: usize,
    pub predicted: usize,
    /// Probability of the positive class after temperature scaling.
    pub probability: f64,
    /// Same, without temperature scaling.
    pub probability_uncalibrated: f64,
    /// Which split the sample belonged to for the model that predicted it.
    pub split: String,
    /// Spread and entropies of the members' probabilities (absent for rows
    /// recorded before uncertainty existed).
    pub uncertainty: Option<Uncertainty>,
    /// "refer" or "likely benign", when the model carries an operating point.
    pub decision: Option<Decision>,
    /// Class indices of the conformal prediction set, when the model carries
    /// conformal thresholds.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub conformal_set: Option<Vec<usize>>,
}

impl SamplePrediction {
    pub fn correct(&self) -> bool {
        self.label == self.predicted
    }

    /// A conformal set of more than one class (the case is ambiguous at the
    /// promised coverage).
    pub fn set_of_two_or_more(&self) -> bool {
        self.conformal_set.as_ref().is_some_and(|s| s.len() >= 2)
    }
}
