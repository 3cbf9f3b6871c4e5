//! How large an ECE a *perfectly calibrated* model would show on the same
//! predictions: consistency resampling (Bröcker & Smith 2007; the test of
//! Vaicenavicius et al. 2019).
//!
//! Why: equal-width ECE is biased upwards on small samples. With 170 images
//! and 15 bins a model whose probabilities are exactly right still scores an
//! ECE around 0.05, because each bin's accuracy is a small binomial sample.
//! A bare ECE cannot say whether 0.053 is miscalibration or sampling noise;
//! the ECE expected under perfect calibration, and how often it reaches the
//! observed value (a p-value), can.
//!
//! Each resample keeps every confidence and draws "correct" as
//! Bernoulli(confidence), which is what a calibrated model's top-label
//! outcomes are; its ECE uses the same bins as the observed one.

use rand::Rng;
use rand_chacha::rand_core::SeedableRng;
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use super::measures::{ece, CalibrationError};
use crate::metrics::{quantile_sorted, BootstrapOptions, MetricsError};

/// An observed ECE next to the ECE of perfectly calibrated outcomes.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct EceConsistency {
    /// ECE of the actual outcomes.
    pub observed: f64,
    /// Mean ECE over the resamples: what perfect calibration scores here.
    pub expected: f64,
    /// Central `level` range of the resampled ECEs.
    pub low: f64,
    pub high: f64,
    pub level: f64,
    /// `(1 + #{resampled ≥ observed}) / (1 + resamples)`: small when the
    /// observed ECE is larger than calibrated outcomes produce.
    pub p_value: f64,
    pub resamples: usize,
}

/// ECE of `(confidences, correct)` with `n_bins` equal-width bins, against
/// `opts.n_resamples` resamples of perfectly calibrated outcomes drawn with
/// `opts.seed`. Errors as [`ece`]; `n_resamples == 0` is refused.
pub fn ece_consistency(
    confidences: &[f64],
    correct: &[bool],
    n_bins: usize,
    opts: &BootstrapOptions,
) -> Result<EceConsistency, CalibrationError> {
    let observed = ece(confidences, correct, n_bins)?;
    if opts.n_resamples == 0 {
        return Err(MetricsError::NoResamples.into());
    }
    let mut rng = ChaCha8Rng::seed_from_u64(opts.seed);
    let mut drawn = vec![false; confidences.len()];
    let mut values = Vec::with_capacity(opts.n_resamples);
    for _ in 0..opts.n_resamples {
        for (slot, &c) in drawn.iter_mut().zip(confidences) {
            *slot = rng.gen::<f64>() < c;
        }
        values.push(ece(confidences, &drawn, n_bins)?);
    }
    let at_least = values.iter().filter(|&&v| v >= observed).count();
    let expected = values.iter().sum::<f64>() / values.len() as f64;
    values.sort_by(f64::total_cmp);
    Ok(EceConsistency {
        observed,
        expected,
        low: quantile_sorted(&values, (1.0 - opts.level) / 2.0),
        high: quantile_sorted(&values, (1.0 + opts.level) / 2.0),
        level: opts.level,
        p_value: (1 + at_least) as f64 / (1 + values.len()) as f64,
        resamples: values.len(),
    })
}
