//! Train-time augmentation for skin-lesion photographs, on float batches.
//!
//! Dermoscopic and clinical lesion photos have no canonical orientation, so
//! flips and 90-degree rotations are label-preserving; a mild random resized
//! crop and colour jitter cover framing and lighting differences. Parameters
//! are drawn from a seeded ChaCha stream per (seed, epoch), so runs repeat.

use rand::Rng;
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};
use tch::{Kind, Tensor};

use crate::validation::OutOfRange;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AugmentConfig {
    pub enabled: bool,
    pub flip: bool,
    pub rotate90: bool,
    /// Smallest crop area as a fraction of the image (1.0 disables cropping).
    pub crop_min_scale: f64,
    /// Brightness/contrast/saturation factors are drawn from [1 - j, 1 + j].
    pub colour_jitter: f64,
}

impl Default for AugmentConfig {
    fn default() -> Self {
        AugmentConfig {
            enabled: true,
            flip: true,
            rotate90: true,
            crop_min_scale: 0.75,
            colour_jitter: 0.15,
        }
    }
}

impl AugmentConfig {
    /// Range checks: a crop keeps a fraction in (0, 1] of the area; jitter
    /// factors `1 ± j` stay positive, so `j` in [0, 1).
    pub fn validate(&self) -> Result<(), OutOfRange> {
        let crop = self.crop_min_scale;
        if !(crop.is_finite() && crop > 0.0 && crop <= 1.0) {
            return Err(OutOfRange::new("crop_min_scale", crop, "in (0, 1]"));
        }
        let jitter = self.colour_jitter;
        if !(jitter.is_finite() && (0.0..1.0).contains(&jitter)) {
            return Err(OutOfRange::new("colour_jitter", jitter, "in [0, 1)"));
        }
        Ok(())
    }
}

/// Augments a batch `(B,3,H,W)` with values in 0..1; returns the same shape.
///
/// Crops, flips and rotations are per image; the colour jitter is applied
/// to the whole batch at once with per-image factors, so a training step
/// launches a dozen kernels for it instead of ~20 per image (on a GPU the
/// launches, not the arithmetic, were the cost). The random draws keep
/// their per-image order.
pub fn augment(batch: &Tensor, cfg: &AugmentConfig, rng: &mut ChaCha8Rng) -> Tensor {
    if !cfg.enabled {
        return batch.shallow_clone();
    }
    let size = batch.size();
    let (b, h, w) = (size[0], size[2], size[3]);
    let mut out = Vec::with_capacity(b as usize);
    let mut factors = Vec::with_capacity(3 * b as usize);
    for i in 0..b {
        let mut x = batch.get(i);
        if cfg.crop_min_scale < 1.0 {
            let scale = rng.gen_range(cfg.crop_min_scale..=1.0);
            let ratio = (rng.gen_range((3.0f64 / 4.0).ln()..=(4.0f64 / 3.0).ln())).exp();
            let ch = ((h as f64) * (scale / ratio).sqrt())
                .round()
                .clamp(8.0, h as f64) as i64;
            let cw = ((w as f64) * (scale * ratio).sqrt())
                .round()
                .clamp(8.0, w as f64) as i64;
            let top = rng.gen_range(0..=(h - ch));
            let left = rng.gen_range(0..=(w - cw));
            let crop = x.narrow(1, top, ch).narrow(2, left, cw).unsqueeze(0);
            x = crop
                .upsample_bilinear2d([h, w], false, None, None)
                .squeeze_dim(0);
        }
        if cfg.flip {
            if rng.gen_bool(0.5) {
                x = x.flip([2]);
            }
            if rng.gen_bool(0.5) {
                x = x.flip([1]);
            }
        }
        if cfg.rotate90 && h == w {
            let k = rng.gen_range(0..4i64);
            if k > 0 {
                x = x.rot90(k, [1, 2]);
            }
        }
        if cfg.colour_jitter > 0.0 {
            let j = cfg.colour_jitter;
            for _ in 0..3 {
                factors.push(rng.gen_range(1.0 - j..=1.0 + j) as f32);
            }
        }
        out.push(x);
    }
    let x = Tensor::stack(&out, 0);
    if factors.is_empty() {
        return x;
    }
    // (brightness, contrast, saturation) per image, as (B,1,1,1) columns.
    let f = crate::data::image::constant(&factors, x.device()).view([b, 3]);
    let column = |k: i64| f.select(1, k).view([b, 1, 1, 1]);
    let x = &x * column(0);
    let mean = luma(&x).mean_dim([1, 2, 3].as_slice(), true, Kind::Float);
    let x = (&x - &mean) * column(1) + &mean;
    let grey = luma(&x);
    ((&x - &grey) * column(2) + &grey).clamp(0.0, 1.0)
}

/// Luma `(B,1,H,W)` of a batch (ITU-R 601 weights, as torchvision).
fn luma(x: &Tensor) -> Tensor {
    let w = crate::data::image::constant(&[0.299, 0.587, 0.114], x.device()).view([1, 3, 1, 1]);
    (x * w).sum_dim_intlist([1].as_slice(), true, Kind::Float)
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    #[test]
    fn keeps_shape_and_range_and_repeats_with_seed() {
        let x = Tensor::rand([3, 3, 32, 32], (Kind::Float, tch::Device::Cpu));
        let cfg = AugmentConfig::default();
        let a = augment(&x, &cfg, &mut ChaCha8Rng::seed_from_u64(1));
        let b = augment(&x, &cfg, &mut ChaCha8Rng::seed_from_u64(1));
        assert_eq!(a.size(), x.size());
        assert!(
            bool::try_from(a.ge(0.0).all()).unwrap() && bool::try_from(a.le(1.0).all()).unwrap()
        );
        assert!(a.equal(&b));
        let c = augment(&x, &cfg, &mut ChaCha8Rng::seed_from_u64(2));
        assert!(!a.equal(&c));
    }

    /// The batched colour jitter computes what the per-image formula does
    /// (torchvision's brightness, contrast about the mean luma, saturation
    /// against the luma), image by image.
    #[test]
    fn batched_jitter_matches_the_per_image_formula() {
        let x = Tensor::rand([4, 3, 16, 16], (Kind::Float, tch::Device::Cpu));
        let cfg = AugmentConfig {
            crop_min_scale: 1.0,
            flip: false,
            rotate90: false,
            ..Default::default()
        };
        let got = augment(&x, &cfg, &mut ChaCha8Rng::seed_from_u64(3));
        let mut rng = ChaCha8Rng::seed_from_u64(3);
        let j = cfg.colour_jitter;
        for i in 0..4 {
            let (b, c, s): (f64, f64, f64) = (
                rng.gen_range(1.0 - j..=1.0 + j) as f32 as f64,
                rng.gen_range(1.0 - j..=1.0 + j) as f32 as f64,
                rng.gen_range(1.0 - j..=1.0 + j) as f32 as f64,
            );
            let l =
                |t: &Tensor| {
                    (t * Tensor::from_slice(&[0.299f32, 0.587, 0.114]).view([3, 1, 1]))
                        .sum_dim_intlist([0].as_slice(), true, Kind::Float)
                };
            let xi = x.get(i) * b;
            let m = l(&xi).mean(Kind::Float);
            let xi = (&xi - &m) * c + &m;
            let g = l(&xi);
            let want = ((&xi - &g) * s + &g).clamp(0.0, 1.0);
            let diff = f64::try_from((got.get(i) - want).abs().max()).unwrap();
            assert!(diff < 1e-6, "image {i}: {diff}");
        }
    }

    #[test]
    fn disabled_is_identity() {
        let x = Tensor::rand([2, 3, 16, 16], (Kind::Float, tch::Device::Cpu));
        let cfg = AugmentConfig {
            enabled: false,
            ..Default::default()
        };
        assert!(augment(&x, &cfg, &mut ChaCha8Rng::seed_from_u64(0)).equal(&x));
    }
}
