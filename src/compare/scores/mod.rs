//! Which explanation to trust: scores of an attribution map itself, in the
//! groups of Quantus 0.6 (Hedström et al. 2023), each checked against Quantus
//! on committed fixtures (`tests/quantus_fixtures.rs`).
//!
//! * [`complexity`]: sparseness (Gini index) and complexity (entropy).
//! * [`localisation`]: relevance mass and rank accuracy, the pointing game
//!   and top-k intersection against a lesion mask.
//! * [`perturbation`]: faithfulness correlation and pixel flipping.
//! * [`road`]: ROAD, removal with noisy linear imputation (Rong et al. 2022).
//! * [`robustness`]: max- and average-sensitivity and the local Lipschitz
//!   estimate.
//! * [`randomisation`]: the random-logit test.
//! * [`axiomatic`]: completeness and input invariance.
//! * [`scorecard`]: all of them per image and method, summarised with
//!   bootstrap intervals and paired method comparisons.
//!
//! Attributions are per pixel (`H·W`, channels summed, as melxai's maps
//! are); where a score perturbs the input it works on the `C·H·W` features
//! with the pixel's attribution broadcast over channels, as Quantus does.
//! Models and explainers are closures over tensors, so the same code scores
//! a libtorch network and the fixtures' linear model.

pub mod axiomatic;
pub mod complexity;
pub mod localisation;
pub mod perturbation;
pub mod randomisation;
pub mod road;
pub mod robustness;
pub mod scorecard;

use tch::Tensor;

use crate::error::Result;

/// A batch `(n, C, H, W)` to per-image outputs `(n, K)` (logits or
/// probabilities: the caller decides).
pub type ModelFn<'a> = dyn Fn(&Tensor) -> Result<Tensor> + 'a;

/// A batch `(n, C, H, W)` and a target class per image to attributions
/// `(n, H·W)` (or any shape with `H·W` values per image).
pub type ExplainFn<'a> = dyn Fn(&Tensor, &[i64]) -> Result<Tensor> + 'a;

/// One input image: `C·H·W` values, channel-major.
#[derive(Debug, Clone, PartialEq)]
pub struct Image {
    pub data: Vec<f32>,
    pub channels: usize,
    pub height: usize,
    pub width: usize,
}

impl Image {
    pub fn pixels(&self) -> usize {
        self.height * self.width
    }

    /// As a batch of one, `(1, C, H, W)`.
    pub fn tensor(&self) -> Tensor {
        Tensor::from_slice(&self.data).view([
            1,
            self.channels as i64,
            self.height as i64,
            self.width as i64,
        ])
    }

    /// A batch of `C·H·W` feature vectors as `(n, C, H, W)`.
    pub fn batch(&self, rows: &[Vec<f32>]) -> Tensor {
        let flat: Vec<f32> = rows.iter().flatten().copied().collect();
        Tensor::from_slice(&flat).view([
            rows.len() as i64,
            self.channels as i64,
            self.height as i64,
            self.width as i64,
        ])
    }
}

/// Quantus's `normalise` (divide by the largest magnitude) then `abs`.
/// melxai normalises each map by its own maximum; Quantus divides by the
/// maximum over the whole batch, so its scores can depend on the other
/// images in the batch. Scale-free scores do not notice.
pub fn prepare(a: &[f64], normalise: bool, absolute: bool) -> Vec<f64> {
    let max = a.iter().fold(0.0_f64, |m, v| m.max(v.abs()));
    a.iter()
        .map(|&v| {
            let v = if normalise && max > 0.0 { v / max } else { v };
            if absolute {
                v.abs()
            } else {
                v
            }
        })
        .collect()
}

/// Rows of a `(n, K)` output tensor as `f64`.
pub fn rows_of(t: &Tensor) -> Result<Vec<Vec<f64>>> {
    let t = t
        .to_kind(tch::Kind::Double)
        .to_device(tch::Device::Cpu)
        .contiguous();
    Ok(Vec::<Vec<f64>>::try_from(&t)?)
}

/// Pixel indices by descending attribution, ties by index.
pub fn descending(a: &[f64]) -> Vec<usize> {
    let mut order: Vec<usize> = (0..a.len()).collect();
    order.sort_by(|&i, &j| a[j].total_cmp(&a[i]));
    order
}

/// Pearson correlation; NaN when either side is constant.
pub fn pearson(u: &[f64], v: &[f64]) -> f64 {
    let n = u.len() as f64;
    let (mu, mv) = (u.iter().sum::<f64>() / n, v.iter().sum::<f64>() / n);
    let (mut uv, mut uu, mut vv) = (0.0, 0.0, 0.0);
    for (a, b) in u.iter().zip(v) {
        uv += (a - mu) * (b - mv);
        uu += (a - mu) * (a - mu);
        vv += (b - mv) * (b - mv);
    }
    uv / (uu * vv).sqrt()
}

/// Euclidean norm.
pub fn norm(v: impl Iterator<Item = f64>) -> f64 {
    v.map(|x| x * x).sum::<f64>().sqrt()
}

/// A standard normal draw (Box–Muller).
pub fn standard_normal(rng: &mut impl rand::Rng) -> f64 {
    let u: f64 = 1.0 - rng.gen::<f64>();
    let v: f64 = rng.gen();
    (-2.0 * u.ln()).sqrt() * (std::f64::consts::TAU * v).cos()
}
