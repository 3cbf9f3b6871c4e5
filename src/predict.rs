//! Class probabilities for individual inputs (images or preprocessed `.npy`).

use std::path::{Path, PathBuf};

use serde::Serialize;
use tch::{Kind, Tensor};

use crate::data::image::load_input;
use crate::error::Result;
use crate::model::Classifier;

#[derive(Debug, Clone, Serialize)]
pub struct ClassScore {
    pub index: usize,
    pub class: String,
    pub probability: f64,
}

#[derive(Debug, Clone, Serialize)]
pub struct Prediction {
    pub input: PathBuf,
    /// Highest-probability classes, best first.
    pub top: Vec<ClassScore>,
    /// Raw logits (before temperature).
    pub logits: Vec<f64>,
    /// Whether probabilities were divided by the stored temperature.
    pub calibrated: bool,
    pub temperature: f64,
}

/// Predicts one input; `top_k` classes are reported.
pub fn predict(
    model: &Classifier,
    input: &Path,
    top_k: usize,
    calibrated: bool,
) -> Result<Prediction> {
    let x = load_input(input, model.meta.input_size, &model.meta.normalisation)?;
    let logits = model
        .logits(&x.unsqueeze(0))
        .squeeze_dim(0)
        .to_kind(Kind::Double);
    let temperature = if calibrated {
        model.meta.temperature
    } else {
        1.0
    };
    let probs = (&logits / temperature).softmax(-1, Kind::Double);
    let logits_v: Vec<f64> = Vec::<f64>::try_from(&logits)?;
    let probs_v: Vec<f64> = Vec::<f64>::try_from(&probs)?;
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
    Ok(Prediction {
        input: input.to_path_buf(),
        top,
        logits: logits_v,
        calibrated,
        temperature,
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
