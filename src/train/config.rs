//! `[train]` settings. Defaults are what this project found to work on
//! MED-NODE on a CPU (see README, "Training defaults"); the original study's
//! values are noted beside each.

use serde::{Deserialize, Serialize};

use super::schedule::Schedule;
use crate::data::augment::AugmentConfig;
use crate::model::precision::Precision;

/// Which validation number decides "best epoch" and early stopping.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Monitor {
    ValLoss,
    ValAuroc,
    ValBalancedAccuracy,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TrainConfig {
    /// Run / checkpoint name (`weights/<name>.safetensors`).
    pub name: String,
    /// Architecture (study: EfficientNet-B0 via efficientnet_pytorch; here Lite0 by default).
    pub arch: String,
    /// Study: 58 epochs at lr 1e-5. A larger rate converges in far fewer epochs.
    pub epochs: usize,
    /// Study: 32.
    pub batch_size: usize,
    pub learning_rate: f64,
    pub weight_decay: f64,
    pub schedule: Schedule,
    pub warmup_epochs: usize,
    /// Train only the classifier head (backbone in eval mode).
    pub freeze_backbone: bool,
    /// Keep batch-norm statistics frozen during fine-tuning (see `EfficientNet::frozen_batch_norm`).
    pub freeze_batch_norm: bool,
    /// Stop after this many epochs without improvement (0 = never).
    pub patience: usize,
    pub monitor: Monitor,
    /// Maximum global gradient norm (0 = no clipping).
    pub grad_clip: f64,
    pub seed: u64,
    /// Study: 15 % test.
    pub test_fraction: f64,
    /// Fraction of the non-test samples used for validation.
    pub val_fraction: f64,
    /// k for stratified k-fold cross-validation (0 or 1 = one train/val/test split).
    pub folds: usize,
    /// Override of the input size in pixels (square); default: the architecture's.
    pub input_size: Option<i64>,
    /// Start from the shipped ImageNet weights.
    pub pretrained: bool,
    pub augment: AugmentConfig,
    /// fp32 | bf16 | fp16: autocast for the forward passes (fp16 with dynamic
    /// loss scaling); weights and optimiser state stay fp32.
    pub precision: Precision,
}

impl Default for TrainConfig {
    fn default() -> Self {
        TrainConfig {
            name: "lite0-mednode".into(),
            arch: "lite0".into(),
            epochs: 15,
            batch_size: 16,
            learning_rate: 2e-4,
            weight_decay: 1e-4,
            schedule: Schedule::Cosine,
            warmup_epochs: 1,
            freeze_backbone: false,
            freeze_batch_norm: true,
            patience: 8,
            monitor: Monitor::ValLoss,
            grad_clip: 5.0,
            seed: 42,
            test_fraction: 0.15,
            val_fraction: 0.15,
            folds: 0,
            input_size: None,
            pretrained: true,
            augment: AugmentConfig::default(),
            precision: Precision::Fp32,
        }
    }
}

impl TrainConfig {
    /// Reads the `[train]` table of config.toml (missing keys take defaults).
    pub fn from_table(table: &toml::Table) -> crate::Result<Self> {
        toml::Value::Table(table.clone())
            .try_into()
            .map_err(|e| crate::Error::Config(format!("[train]: {e}")))
    }
}
