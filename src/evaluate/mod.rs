//! Evaluation of a model's predictions: running a model over a split
//! ([`predictions`]), selective prediction (risk-coverage), choosing the
//! operating point, repeated cross-validation, conformal sets out of fold, and
//! predicting single images.
//!
//! Above ensembles and calibration (an evaluated model may be an ensemble;
//! repeated CV refits temperatures); the rows it produces are
//! [`crate::verdict::EvalRow`]s, which every layer can read.

pub mod conformal;
pub mod decision_curve;
pub mod decisions;
pub mod group_bootstrap;
pub mod multiclass;
pub mod operating_point;
pub mod predict;
pub mod predictions;
pub mod repeated_cv;
pub mod selective;
pub mod subgroups;

pub use predictions::{
    balanced_class_weights, metrics, predict_model_rows, predict_rows, weight_tensor,
    weighted_cross_entropy,
};

use serde::{Deserialize, Serialize};

use crate::ensemble::tta::TtaSetting;

/// `[predict]`: how loaded models predict (predict, eval, the TUI, `--batch`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PredictConfig {
    /// Test-time augmentation: average the logits over the 8 flips and
    /// 90° rotations (8x the inference time); "auto" = exactly for models
    /// whose temperature was fitted on TTA predictions. `--tta` turns it on
    /// per command.
    pub tta: TtaSetting,
    /// Conformal prediction sets: calibrated on a k-fold run's out-of-fold
    /// predictions and stored with its ensemble.
    pub conformal: crate::verdict::conformal::ConformalSettings,
}
