//! Class probabilities for individual inputs (images or preprocessed `.npy`),
//! from one checkpoint or an ensemble, with the per-sample uncertainty and,
//! when the ensemble carries an operating point, "refer" or "likely benign",
//! and its conformal prediction set when it carries conformal thresholds.

use std::path::{Path, PathBuf};

use serde::Serialize;
use tch::{Kind, Tensor};

use crate::data::image::load_input;
use crate::ensemble::Model;
use crate::error::Result;
use crate::model::Classifier;
use crate::verdict::conformal::SetVerdict;
use crate::verdict::uncertainty::{from_member_logits, softmax, Uncertainty};
use crate::verdict::Decision;

#[derive(Debug, Clone, Serialize)]
pub struct ClassScore {
    pub index: usize,
    pub class: String,
    pub probability: f64,
}

/// The operating point's verdict on one input.
#[derive(Debug, Clone, Serialize)]
pub struct Referral {
    pub decision: Decision,
    /// "refer" or "likely benign".
    pub label: String,
    /// Calibrated probability of the positive class the threshold applies to.
    pub probability: f64,
    pub threshold: f64,
    /// Sensitivity the threshold was chosen for.
    pub target_sensitivity: f64,
}

#[derive(Debug, Clone, Serialize)]
pub struct Prediction {
    pub input: PathBuf,
    /// Highest-probability classes, best first.
    pub top: Vec<ClassScore>,
    /// Raw logits (before temperature); for an ensemble the mean of the members'.
    pub logits: Vec<f64>,
    /// Whether probabilities were divided by the stored temperature.
    pub calibrated: bool,
    pub temperature: f64,
    /// Logits averaged over the 8 dihedral transforms.
    pub tta: bool,
    /// Number of networks combined (1 = a single checkpoint).
    pub members: usize,
    /// Each member's raw logits (ensembles only).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub member_logits: Vec<Vec<f64>>,
    /// Spread and entropies of the members' probabilities for the positive
    /// class, at the temperature used (None without a positive class).
    pub uncertainty: Option<Uncertainty>,
    /// Present when the model carries an operating point.
    pub referral: Option<Referral>,
    /// The conformal prediction set of the calibrated probabilities, when
    /// the model carries conformal thresholds.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub conformal_set: Option<SetVerdict>,
}

/// Predicts one input; `top_k` classes are reported; `positive` is the index
/// of the positive class (uncertainty and the operating point refer to it).
pub fn predict(
    model: &Model,
    input: &Path,
    top_k: usize,
    calibrated: bool,
    positive: Option<usize>,
) -> Result<Prediction> {
    let x = load_input(input, model.meta.input_size, &model.meta.normalisation)?;
    let (combined, members) = model.logits_with_members(&x.unsqueeze(0));
    let row = |t: &Tensor| -> Result<Vec<f64>> {
        let t = t
            .squeeze_dim(0)
            .to_kind(Kind::Double)
            .to_device(tch::Device::Cpu);
        Ok(Vec::<f64>::try_from(&t)?)
    };
    let logits_v = row(&combined)?;
    let member_logits: Vec<Vec<f64>> = members.iter().map(row).collect::<Result<_>>()?;
    let temperature = if calibrated {
        model.meta.temperature
    } else {
        1.0
    };
    let probs_v = softmax(&logits_v, temperature);
    let mut order: Vec<usize> = (0..probs_v.len()).collect();
    order.sort_by(|&a, &b| probs_v[b].total_cmp(&probs_v[a]));
    let top = order
        .into_iter()
        .take(top_k.max(1))
        .map(|i| ClassScore {
            index: i,
            class: model
                .meta
                .class_names
                .get(i)
                .cloned()
                .unwrap_or_else(|| i.to_string()),
            probability: probs_v[i],
        })
        .collect();
    let uncertainty = positive.and_then(|p| from_member_logits(&member_logits, temperature, p));
    // The threshold was chosen on calibrated probabilities; it is applied to
    // them whatever `calibrated` says about the printed ones.
    let calibrated_probs = softmax(&logits_v, model.meta.temperature);
    let conformal_set = model.conformal().map(|c| {
        c.verdict(
            &calibrated_probs,
            &model.meta.class_names,
            positive.unwrap_or(usize::MAX),
        )
    });
    let referral = match (model.operating_point(), positive) {
        (Some(op), Some(p)) => {
            let calibrated_p = calibrated_probs.get(p).copied().unwrap_or(f64::NAN);
            let decision = op.decide(calibrated_p);
            Some(Referral {
                decision,
                label: decision.label().to_string(),
                probability: calibrated_p,
                threshold: op.threshold,
                target_sensitivity: op.target_sensitivity,
            })
        }
        _ => None,
    };
    Ok(Prediction {
        input: input.to_path_buf(),
        top,
        logits: logits_v,
        calibrated,
        temperature,
        tta: model.tta,
        members: model.members().len(),
        member_logits: if model.is_ensemble() {
            member_logits
        } else {
            Vec::new()
        },
        uncertainty,
        referral,
        conformal_set,
    })
}

/// Convenience used by tests and tools: logits for an already-built batch.
pub fn logits_of(model: &Classifier, batch: &Tensor) -> Result<Vec<Vec<f32>>> {
    let l = model
        .logits(batch)
        .to_kind(Kind::Float)
        .to_device(tch::Device::Cpu);
    Ok(Vec::<Vec<f32>>::try_from(&l)?)
}
