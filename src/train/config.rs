//! `[train]` settings. Defaults are what this project found to work on
//! MED-NODE on a CPU (see README, "Training defaults"); the original study's
//! values are noted beside each.

use serde::{Deserialize, Serialize};

use super::schedule::Schedule;
use crate::data::augment::AugmentConfig;
use crate::ensemble::manifest::CombineRule;
use crate::ensemble::tta::TtaSetting;
use crate::model::precision::Precision;
use crate::validation::{check, OutOfRange};

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
    /// Stochastic weight averaging: the checkpoint is the mean of the
    /// weights after each of the last `swa_epochs` epochs instead of the
    /// best-scoring epoch (0 = off; needs `patience = 0`; a window longer
    /// than the run averages every epoch, so `--epochs 5` still runs). See
    /// `train::weight_average`. Absent from recipes that do not average.
    #[serde(skip_serializing_if = "is_zero")]
    pub swa_epochs: usize,
    /// Maximum global gradient norm (0 = no clipping).
    pub grad_clip: f64,
    pub seed: u64,
    /// Study: 15 % test.
    pub test_fraction: f64,
    /// Fraction of the non-test samples used for validation.
    pub val_fraction: f64,
    /// Validation fraction inside each fold of a k-fold run (absent = the
    /// `val_fraction`). 0 trains every fold on all its non-test images:
    /// under weight averaging validation picks nothing, and the fold
    /// ensemble's temperature and operating point come from out-of-fold
    /// predictions. Needs `swa_epochs > 0`. Absent from recipes that do not set it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fold_val_fraction: Option<f64>,
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
    /// Melanoma sensitivity the operating point (decision threshold) is
    /// chosen for on out-of-fold predictions, in (0, 1]; see
    /// `crate::operating_point`.
    pub target_sensitivity: f64,
    /// Held-out predictions made at the end of training (validation, test,
    /// out-of-fold: what temperatures, the operating point and the CV
    /// metrics are fitted and measured on) averaged over the 8 dihedral
    /// transforms; "auto" = on a CUDA device. The plain test predictions are
    /// kept beside them, so TTA is measured on and off. A checkpoint records
    /// the resolved value (`[training] tta = true`, absent when off, as in
    /// recipes from before the key), which `[predict] tta = "auto"` follows.
    #[serde(skip_serializing_if = "TtaSetting::is_off")]
    pub tta: TtaSetting,
    /// How the fold ensemble `--folds K` writes combines its members. Not
    /// part of a model's recorded recipe: it changes no training.
    #[serde(skip_serializing)]
    pub combine: CombineRule,
    /// How each epoch draws its training images: `shuffle` (every image
    /// once, the loss weighted by inverse class frequency) or
    /// `class_balanced` (as many draws, with replacement, every class
    /// equally likely; the loss unweighted, so imbalance is not corrected
    /// twice). Left out of a recorded recipe while it is `shuffle`, so
    /// earlier checkpoints keep matching their recipe.
    #[serde(skip_serializing_if = "Sampler::is_shuffle")]
    pub sampler: Sampler,
}

/// `[train] sampler`: the epoch's draw of training images.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Sampler {
    #[default]
    Shuffle,
    ClassBalanced,
}

impl Sampler {
    fn is_shuffle(&self) -> bool {
        *self == Sampler::Shuffle
    }
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
            swa_epochs: 0,
            grad_clip: 5.0,
            seed: 42,
            test_fraction: 0.15,
            val_fraction: 0.15,
            fold_val_fraction: None,
            folds: 0,
            input_size: None,
            pretrained: true,
            augment: AugmentConfig::default(),
            precision: Precision::Fp32,
            target_sensitivity: 0.95,
            tta: TtaSetting::Off,
            combine: CombineRule::MeanProbabilities,
            sampler: Sampler::Shuffle,
        }
    }
}

fn is_zero(n: &usize) -> bool {
    *n == 0
}

/// Range of `input_size` overrides: below 32 pixels the network's strided
/// convolutions run out of image; above 1024 a batch no longer fits memory.
pub const INPUT_SIZE_RANGE: (i64, i64) = (32, 1024);

impl TrainConfig {
    /// The input side (pixels) this recipe trains at: the override, or the
    /// architecture's own.
    pub fn resolved_input_size(&self) -> crate::Result<i64> {
        let arch: crate::model::Arch = self.arch.parse()?;
        Ok(self
            .input_size
            .unwrap_or(crate::model::EfficientNetConfig::new(arch, 2).resolution))
    }

    /// File-name stem of the `[batch]` model `name` trained with this recipe:
    /// `<name>-swa<N>` under weight averaging, else `name`, so that a
    /// finished best-epoch run is never reused (nor refused) for an averaged
    /// one, or the other way round.
    ///
    /// A k-fold run (`folds = true`) whose folds hold no validation images
    /// is `<name>-swa<N>-val0`: its folds' splits differ from a run with
    /// validation, which the name would otherwise reuse and refuse.
    pub fn batch_stem(&self, name: &str, folds: bool) -> String {
        let mut stem = match self.swa_epochs {
            0 => name.to_string(),
            n => format!("{name}-swa{n}"),
        };
        if folds && self.fold_val_fraction() == 0.0 {
            stem.push_str("-val0");
        }
        stem
    }

    /// The validation fraction of a fold's non-test images.
    pub fn fold_val_fraction(&self) -> f64 {
        self.fold_val_fraction.unwrap_or(self.val_fraction)
    }

    /// Reads a `[train]` table (a checkpoint's recorded recipe; config.toml
    /// is parsed by `Config::load`). Missing keys take defaults; unknown keys
    /// and out-of-range values are errors.
    pub fn from_table(table: &toml::Table) -> crate::Result<Self> {
        let cfg: TrainConfig = toml::Value::Table(table.clone())
            .try_into()
            .map_err(|e| crate::Error::Config(format!("[train]: {e}")))?;
        cfg.validate().map_err(|e| e.in_section("[train]"))?;
        Ok(cfg)
    }

    /// Range checks; the error names the key (`learning_rate`, ...).
    pub fn validate(&self) -> Result<(), OutOfRange> {
        check::file_name("name", &self.name)?;
        check::at_least("epochs", self.epochs, 1)?;
        check::at_least("batch_size", self.batch_size, 1)?;
        check::positive("learning_rate", self.learning_rate)?;
        check::non_negative("weight_decay", self.weight_decay)?;
        if self.warmup_epochs > self.epochs {
            return Err(OutOfRange::new(
                "warmup_epochs",
                self.warmup_epochs,
                &format!("<= epochs ({})", self.epochs),
            ));
        }
        // Early stopping would end the run before (or inside) the window the
        // average is taken over, and pick epochs by the validation score that
        // averaging is there to ignore.
        if self.swa_epochs > 0 && self.patience > 0 {
            return Err(OutOfRange::new(
                "patience",
                self.patience,
                "0 when swa_epochs is set (the average is of the last epochs; early stopping would end the run before them)",
            ));
        }
        check::non_negative("grad_clip", self.grad_clip)?;
        // One "fold" would hold out every image at once; it used to fall back
        // to one split silently.
        if self.folds == 1 {
            return Err(OutOfRange::new("folds", 1, "0 (one split) or at least 2"));
        }
        check::open_fraction("test_fraction", self.test_fraction)?;
        check::open_fraction("val_fraction", self.val_fraction)?;
        if let Some(v) = self.fold_val_fraction {
            if !(v.is_finite() && (0.0..1.0).contains(&v)) {
                return Err(OutOfRange::new("fold_val_fraction", v, "in [0, 1)"));
            }
            // Without validation images nothing can pick a best epoch.
            if v == 0.0 && self.swa_epochs == 0 {
                return Err(OutOfRange::new(
                    "fold_val_fraction",
                    v,
                    "above 0 when swa_epochs is 0 (the best epoch is picked on the validation images)",
                ));
            }
        }
        check::half_open_fraction("target_sensitivity", self.target_sensitivity)?;
        if let Some(size) = self.input_size {
            let (lo, hi) = INPUT_SIZE_RANGE;
            check::within("input_size", size, lo, hi)?;
        }
        self.augment.validate().map_err(|e| OutOfRange {
            key: format!("augment.{}", e.key),
            ..e
        })
    }
}
