//! Faithfulness by perturbation: remove what the map calls relevant and
//! the model's output should drop accordingly.

use rand::seq::index::sample;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

use super::{descending, pearson, rows_of, Image, ModelFn};
use crate::error::{Error, Result};

/// The image's minimum over all features: Quantus's "black" baseline.
fn minimum(v: &[f32]) -> f32 {
    v.iter().copied().fold(f32::INFINITY, f32::min)
}

/// The model's output for class `target` on each row of a batch.
fn outputs(model: &ModelFn, x: &Image, rows: &[Vec<f32>], target: usize) -> Result<Vec<f64>> {
    rows_of(&model(&x.batch(rows))?)?
        .into_iter()
        .map(|r| {
            r.get(target)
                .copied()
                .ok_or_else(|| Error::Other(format!("scores: no output for class {target}")))
        })
        .collect()
}

/// `runs` random subsets of `size` of the `features` input features.
pub fn random_subsets(features: usize, size: usize, runs: usize, seed: u64) -> Vec<Vec<usize>> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    (0..runs)
        .map(|_| sample(&mut rng, features, size.min(features)).into_vec())
        .collect()
}

/// Faithfulness correlation (Bhatt et al. 2020): for each subset of input
/// features (indices into the `C·H·W` features, channel-major), set them to
/// the image's minimum and record the drop of the output for `target`
/// against the summed attribution of those features (a pixel's attribution
/// counts once per channel chosen); the score is their Pearson correlation.
pub fn faithfulness_correlation(
    model: &ModelFn,
    x: &Image,
    a: &[f64],
    target: usize,
    subsets: &[Vec<usize>],
) -> Result<f64> {
    let base = minimum(&x.data);
    let hw = x.pixels();
    let mut rows = vec![x.data.clone()];
    let mut sums = Vec::with_capacity(subsets.len());
    for s in subsets {
        let mut r = x.data.clone();
        for &f in s {
            r[f] = base;
        }
        rows.push(r);
        sums.push(s.iter().map(|&f| a[f % hw]).sum::<f64>());
    }
    let out = outputs(model, x, &rows, target)?;
    let drops: Vec<f64> = out[1..].iter().map(|o| out[0] - o).collect();
    Ok(pearson(&sums, &drops))
}

/// Feature indices (`C·H·W`, channel-major) most relevant pixel first, each
/// pixel's channels together.
pub fn feature_order(a: &[f64], channels: usize) -> Vec<usize> {
    let hw = a.len();
    descending(a)
        .into_iter()
        .flat_map(|p| (0..channels).map(move |c| c * hw + p))
        .collect()
}

/// Pixel flipping (Bach et al. 2015): flip `features_in_step` features at a
/// time in `order`, each step to the minimum of the image as perturbed so
/// far, and record the output for `target` after every step (the
/// unperturbed output is not part of the curve, as in Quantus).
pub fn pixel_flipping(
    model: &ModelFn,
    x: &Image,
    order: &[usize],
    features_in_step: usize,
    target: usize,
) -> Result<Vec<f64>> {
    let step = features_in_step.max(1);
    let mut current = x.data.clone();
    let mut rows = Vec::new();
    for chunk in order.chunks(step) {
        let base = minimum(&current);
        for &f in chunk {
            current[f] = base;
        }
        rows.push(current.clone());
    }
    outputs(model, x, &rows, target)
}

/// Area under a curve sampled once per step (the trapezoidal rule with unit
/// spacing: Quantus's AUC of the pixel-flipping curve).
pub fn area_per_step(curve: &[f64]) -> f64 {
    let steps: Vec<f64> = (0..curve.len()).map(|i| i as f64).collect();
    crate::explain::faithfulness::trapezoid(&steps, curve)
}
