//! Evaluation: logits for cached samples, per-sample predictions and metrics.

use tch::{Kind, Tensor};

use crate::data::cache::ImageCache;
use crate::data::image::normalise;
use crate::ensemble::Model;
use crate::error::{Error, Result};
use crate::metrics::{binary_metrics, BinaryMetrics, DEFAULT_THRESHOLD};
use crate::model::Classifier;
use crate::verdict::EvalRow;

/// Eval-mode logits of one network for `rows` of the cache, in batches of
/// `batch_size` (training's validation and test predictions); with `tta`
/// the mean over the 8 dihedral transforms ([`crate::ensemble::tta`]).
pub fn predict_rows(
    model: &Classifier,
    cache: &ImageCache,
    rows: &[usize],
    batch_size: usize,
    tta: bool,
) -> Result<Vec<EvalRow>> {
    rows_with(cache, rows, batch_size, &model.meta.normalisation, |x| {
        let logits = if tta {
            crate::ensemble::tta::mean_over_dihedral(x, |t| model.logits(t))
        } else {
            model.logits(x)
        };
        (logits, Vec::new())
    })
}

/// Combined logits of a [`Model`] (one checkpoint or an ensemble, with TTA
/// when it is on) for `rows` of the cache; an ensemble's rows also carry
/// every member's logits.
pub fn predict_model_rows(
    model: &Model,
    cache: &ImageCache,
    rows: &[usize],
    batch_size: usize,
) -> Result<Vec<EvalRow>> {
    rows_with(cache, rows, batch_size, &model.meta.normalisation, |x| {
        let (combined, members) = model.logits_with_members(x);
        if model.is_ensemble() {
            (combined, members)
        } else {
            (combined, Vec::new())
        }
    })
}

fn to_rows(t: &Tensor) -> Result<Vec<Vec<f64>>> {
    let t = t.to_kind(Kind::Double).to_device(tch::Device::Cpu);
    Ok(Vec::<Vec<f64>>::try_from(&t)?)
}

fn rows_with(
    cache: &ImageCache,
    rows: &[usize],
    batch_size: usize,
    normalisation: &crate::model::config::Normalisation,
    forward: impl Fn(&Tensor) -> (Tensor, Vec<Tensor>),
) -> Result<Vec<EvalRow>> {
    let mut out = Vec::with_capacity(rows.len());
    for chunk in rows.chunks(batch_size.max(1)) {
        let x = normalise(&cache.batch(chunk), normalisation);
        let (combined, members) = forward(&x);
        let logits = to_rows(&combined)?;
        let members: Vec<Vec<Vec<f64>>> = members.iter().map(to_rows).collect::<Result<_>>()?;
        for (i, (&r, l)) in chunk.iter().zip(logits).enumerate() {
            out.push(EvalRow {
                id: cache.ids[r].clone(),
                label: cache.labels[r],
                logits: l,
                members: members.iter().map(|m| m[i].clone()).collect(),
            });
        }
    }
    Ok(out)
}

/// Binary metrics (positive class `positive`) at `temperature`, threshold 0.5.
pub fn metrics(rows: &[EvalRow], positive: usize, temperature: f64) -> Result<BinaryMetrics> {
    let labels: Vec<usize> = rows.iter().map(|r| r.label).collect();
    let scores: Vec<f64> = rows
        .iter()
        .map(|r| r.probabilities(temperature)[positive])
        .collect();
    binary_metrics(&labels, &scores, positive, DEFAULT_THRESHOLD)
        .map_err(|e| Error::Other(format!("metrics: {e}")))
}

/// Mean cross-entropy of `rows` with per-class weights (for validation loss).
pub fn weighted_cross_entropy(rows: &[EvalRow], class_weights: &[f64]) -> f64 {
    let (mut num, mut den) = (0.0, 0.0);
    for r in rows {
        let p = r.probabilities(1.0);
        let w = class_weights.get(r.label).copied().unwrap_or(1.0);
        num += -w * p[r.label].max(1e-300).ln();
        den += w;
    }
    if den > 0.0 {
        num / den
    } else {
        f64::NAN
    }
}

/// "Balanced" class weights n / (k * n_c), as scikit-learn computes them.
pub fn balanced_class_weights(labels: &[usize], num_classes: usize) -> Vec<f64> {
    let n = labels.len() as f64;
    (0..num_classes)
        .map(|c| {
            let nc = labels.iter().filter(|&&l| l == c).count() as f64;
            if nc > 0.0 {
                n / (num_classes as f64 * nc)
            } else {
                0.0
            }
        })
        .collect()
}

/// Tensor of class weights on `device`.
pub fn weight_tensor(weights: &[f64], device: tch::Device) -> Tensor {
    Tensor::from_slice(&weights.iter().map(|&w| w as f32).collect::<Vec<_>>()).to_device(device)
}
