//! Robustness: a small change of the input should not change the
//! explanation much (Yeh et al. 2019; Alvarez-Melis & Jaakkola 2018).

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use super::{norm, rows_of, standard_normal, ExplainFn, Image};
use crate::error::Result;

/// `samples` noise vectors of `features` values uniform in `[−radius, radius]`.
pub fn uniform_noise(features: usize, radius: f64, samples: usize, seed: u64) -> Vec<Vec<f64>> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    (0..samples)
        .map(|_| {
            (0..features)
                .map(|_| rng.gen_range(-radius..=radius))
                .collect()
        })
        .collect()
}

/// `samples` noise vectors of `features` normal values with `std`.
pub fn normal_noise(features: usize, std: f64, samples: usize, seed: u64) -> Vec<Vec<f64>> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    (0..samples)
        .map(|_| {
            (0..features)
                .map(|_| std * standard_normal(&mut rng))
                .collect()
        })
        .collect()
}

/// `‖a − ã‖` for each noise vector, ã the explanation of `x + noise` (one
/// batch).
fn distances(
    explain: &ExplainFn,
    x: &Image,
    a: &[f64],
    target: usize,
    noises: &[Vec<f64>],
) -> Result<Vec<f64>> {
    let rows: Vec<Vec<f32>> = noises
        .iter()
        .map(|n| {
            x.data
                .iter()
                .zip(n)
                .map(|(&v, &e)| (f64::from(v) + e) as f32)
                .collect()
        })
        .collect();
    let targets = vec![target as i64; rows.len()];
    let maps = explain(&x.batch(&rows), &targets)?;
    Ok(rows_of(&maps.view([rows.len() as i64, -1]))?
        .iter()
        .map(|b| norm(a.iter().zip(b).map(|(p, q)| p - q)))
        .collect())
}

/// Per noise sample: `‖a − ã‖ / ‖a‖`, ã the explanation of the perturbed
/// input. Max- and average-sensitivity are their maximum and mean.
pub fn sensitivity(
    explain: &ExplainFn,
    x: &Image,
    a: &[f64],
    target: usize,
    noises: &[Vec<f64>],
) -> Result<Vec<f64>> {
    let size = norm(a.iter().copied());
    let moved = distances(explain, x, a, target, noises)?;
    Ok(moved.iter().map(|d| d / size).collect())
}

/// Per noise sample: `‖a − ã‖ / (‖noise‖ + 1e-10)`; the local Lipschitz
/// estimate is their maximum.
pub fn lipschitz_ratios(
    explain: &ExplainFn,
    x: &Image,
    a: &[f64],
    target: usize,
    noises: &[Vec<f64>],
) -> Result<Vec<f64>> {
    let moved = distances(explain, x, a, target, noises)?;
    Ok(moved
        .iter()
        .zip(noises)
        .map(|(d, n)| d / (norm(n.iter().copied()) + 1e-10))
        .collect())
}

/// Maximum, ignoring NaN.
pub fn nan_max(v: &[f64]) -> f64 {
    v.iter()
        .copied()
        .filter(|x| !x.is_nan())
        .fold(f64::NAN, f64::max)
}

/// Mean, ignoring NaN.
pub fn nan_mean(v: &[f64]) -> f64 {
    let kept: Vec<f64> = v.iter().copied().filter(|x| !x.is_nan()).collect();
    kept.iter().sum::<f64>() / kept.len() as f64
}
