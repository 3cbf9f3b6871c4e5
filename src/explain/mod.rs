//! Explanations of one prediction: GradCAM (and GradCAM++), Integrated
//! Gradients and DeepLIFT (Rescale), with the study's heatmap post-processing,
//! overlays and faithfulness curves (the model-randomisation sanity check,
//! which compares maps, is `crate::compare::sanity`).
//!
//! Every method returns the raw attribution `(C,H,W)` and the heatmap `(H,W)`
//! in [0, 1]; gradient methods also return their completeness delta.

pub mod baseline;
pub mod colormap;
pub mod deeplift;
pub mod faithfulness;
pub mod gradcam;
pub mod heatmap;
pub mod integrated_gradients;
pub mod output;
pub mod provenance;
pub mod split;

use std::str::FromStr;
use std::time::Instant;

use serde::{Deserialize, Serialize};
use tch::{Kind, Tensor};

use crate::error::{Error, Result};
use crate::model::Classifier;
use crate::validation::{check, OutOfRange};

pub use baseline::Baseline;
pub use integrated_gradients::Integration;

/// An attribution method. Its serde name is [`Method::key`] (the name in
/// config.toml, on the command line, in file names and tables); the other
/// spellings users type are accepted as aliases.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum Method {
    #[serde(rename = "gradcam", alias = "grad-cam")]
    GradCam,
    #[serde(rename = "gradcampp", alias = "gradcam++", alias = "gradcamplusplus")]
    GradCamPlusPlus,
    #[serde(
        rename = "ig",
        alias = "integrated_gradients",
        alias = "integrated-gradients"
    )]
    IntegratedGradients,
    #[serde(rename = "deeplift", alias = "dl")]
    DeepLift,
}

impl Method {
    /// Every method, in display order.
    pub const ALL: [Method; 4] = [
        Method::GradCam,
        Method::GradCamPlusPlus,
        Method::IntegratedGradients,
        Method::DeepLift,
    ];

    /// Short name used in config.toml, file names and tables (the serde name).
    pub fn key(self) -> &'static str {
        match self {
            Method::GradCam => "gradcam",
            Method::GradCamPlusPlus => "gradcampp",
            Method::IntegratedGradients => "ig",
            Method::DeepLift => "deeplift",
        }
    }

    /// Human-readable name for titles and legends.
    pub fn label(self) -> &'static str {
        match self {
            Method::GradCam => "GradCAM",
            Method::GradCamPlusPlus => "GradCAM++",
            Method::IntegratedGradients => "Integrated Gradients",
            Method::DeepLift => "DeepLIFT",
        }
    }

    /// Parses a comma-separated list such as `gradcam,ig,deeplift`.
    pub fn parse_list(s: &str) -> Result<Vec<Method>> {
        s.split(',')
            .filter(|p| !p.trim().is_empty())
            .map(|p| p.trim().parse())
            .collect()
    }
}

impl std::fmt::Display for Method {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.pad(self.key())
    }
}

/// Case-insensitive, through the serde names and aliases (one list of
/// spellings for config.toml and the command line).
impl FromStr for Method {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        use serde::de::value::{Error as DeError, StrDeserializer};
        use serde::de::IntoDeserializer;
        let lower = s.trim().to_ascii_lowercase();
        let de: StrDeserializer<'_, DeError> = lower.as_str().into_deserializer();
        Method::deserialize(de).map_err(|_| {
            Error::Config(format!(
                "unknown method '{s}' (gradcam, gradcam++, ig, deeplift)"
            ))
        })
    }
}

/// Settings shared by the methods.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ExplainConfig {
    /// Class to explain; None = the predicted class.
    pub target: Option<usize>,
    /// IG interpolation steps (the study used 200).
    pub steps: usize,
    pub integration: Integration,
    /// IG inputs per forward/backward batch (bounds memory).
    pub internal_batch: usize,
    pub baseline: Baseline,
    /// GradCAM layer (see `EfficientNet::layer_names`).
    pub cam_layer: String,
    /// Seed for the noise baseline.
    pub seed: u64,
}

impl Default for ExplainConfig {
    fn default() -> Self {
        ExplainConfig {
            target: None,
            steps: 50,
            integration: Integration::GaussLegendre,
            internal_batch: 16,
            baseline: Baseline::Zero,
            cam_layer: crate::model::efficientnet::DEFAULT_CAM_LAYER.into(),
            seed: 0,
        }
    }
}

/// Upper bound of IG steps and inputs per pass: beyond it a run takes hours
/// on a CPU for no visible change in the maps.
pub const MAX_STEPS: usize = 10_000;

impl ExplainConfig {
    /// Range checks; the error names the key (`steps`, ...).
    pub fn validate(&self) -> std::result::Result<(), OutOfRange> {
        check::within("steps", self.steps, 1, MAX_STEPS)?;
        check::within("internal_batch", self.internal_batch, 1, MAX_STEPS)?;
        if self.cam_layer.trim().is_empty() {
            return Err(OutOfRange::new("cam_layer", "\"\"", "a layer name"));
        }
        Ok(())
    }
}

/// One explained prediction.
#[derive(Debug)]
pub struct Explanation {
    pub method: Method,
    pub target: usize,
    /// Model output (logit) of the target class for the input.
    pub output: f64,
    /// Raw attribution `(C,H,W)` float32 on the CPU (GradCAM: `(1,H,W)` upsampled CAM).
    pub attribution: Tensor,
    /// Post-processed heatmap `(H,W)` in [0, 1].
    pub heatmap: Tensor,
    /// Σ attribution − (f(x) − f(baseline)) for IG and DeepLIFT.
    pub delta: Option<f64>,
    /// Target logit of the baseline, where there is one.
    pub baseline_output: Option<f64>,
    pub seconds: f64,
}

/// Explains `input` `(3,H,W)` (normalised) with `method`.
pub fn explain(
    model: &Classifier,
    input: &Tensor,
    method: Method,
    cfg: &ExplainConfig,
) -> Result<Explanation> {
    let device = model.device();
    let x = input.to_device(device).to_kind(Kind::Float);
    let x = if x.dim() == 3 { x.unsqueeze(0) } else { x };
    if x.size().len() != 4 || x.size()[0] != 1 || x.size()[1] != 3 {
        return Err(Error::Shape {
            expected: vec![1, 3, -1, -1],
            got: x.size(),
        });
    }
    // Only the predicted class needs an extra forward pass.
    let target = match cfg.target {
        Some(t) => t,
        None => model.logits_fp32(&x).argmax(-1, false).int64_value(&[0]) as usize,
    };
    let classes = model.meta.model.num_classes as usize;
    if target >= classes {
        return Err(Error::Config(format!(
            "target class {target} out of range (model has {classes} classes)"
        )));
    }
    let t0 = Instant::now();
    let mut e = match method {
        Method::GradCam | Method::GradCamPlusPlus => gradcam::explain(
            model,
            &x,
            target,
            &cfg.cam_layer,
            method == Method::GradCamPlusPlus,
        )?,
        Method::IntegratedGradients => {
            let b = cfg.baseline.build(&x, &model.meta.normalisation, cfg.seed);
            let forward = |xs: &Tensor| model.net.forward_t(xs, false);
            integrated_gradients::explain(
                &forward,
                &x,
                &b,
                target,
                cfg.steps,
                cfg.integration,
                cfg.internal_batch,
            )?
        }
        Method::DeepLift => {
            let b = cfg.baseline.build(&x, &model.meta.normalisation, cfg.seed);
            deeplift::explain(model, &x, &b, target)?
        }
    };
    e.seconds = t0.elapsed().as_secs_f64();
    Ok(e)
}
