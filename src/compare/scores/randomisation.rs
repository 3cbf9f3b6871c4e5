//! Randomisation: an explanation that follows the model changes when the
//! question changes. The random-logit test (Sixt et al. 2020) explains
//! another class and compares; a map that barely changes explains the
//! input, not the decision.

use super::{rows_of, ExplainFn, Image};
use crate::error::Result;

/// Quantus's SSIM of two flattened maps: 7-wide windows along the
/// flattened vector, K1 = 0.01, K2 = 0.03, unbiased (co)variances, the data
/// range of both maps together; the mean over windows.
pub fn ssim_flat(u: &[f64], v: &[f64]) -> f64 {
    const WIN: usize = 7;
    let lo = u.iter().chain(v).copied().fold(f64::INFINITY, f64::min);
    let hi = u.iter().chain(v).copied().fold(f64::NEG_INFINITY, f64::max);
    let range = hi - lo;
    let (c1, c2) = ((0.01 * range).powi(2), (0.03 * range).powi(2));
    let cov = WIN as f64 / (WIN - 1) as f64;
    let windows = u.len().saturating_sub(WIN - 1);
    let mut total = 0.0;
    for s in 0..windows {
        let (a, b) = (&u[s..s + WIN], &v[s..s + WIN]);
        let mean = |z: &[f64]| z.iter().sum::<f64>() / WIN as f64;
        let (mx, my) = (mean(a), mean(b));
        let mxx = a.iter().map(|x| x * x).sum::<f64>() / WIN as f64;
        let myy = b.iter().map(|y| y * y).sum::<f64>() / WIN as f64;
        let mxy = a.iter().zip(b).map(|(x, y)| x * y).sum::<f64>() / WIN as f64;
        let (vx, vy, vxy) = (
            cov * (mxx - mx * mx),
            cov * (myy - my * my),
            cov * (mxy - mx * my),
        );
        total +=
            ((2.0 * mx * my + c1) * (2.0 * vxy + c2)) / ((mx * mx + my * my + c1) * (vx + vy + c2));
    }
    total / windows as f64
}

/// The random-logit score: SSIM between `a` (explaining the predicted
/// class) and the explanation of `other` (another class) on the same
/// input; low = the map depends on the class asked about.
pub fn random_logit(explain: &ExplainFn, x: &Image, a: &[f64], other: usize) -> Result<f64> {
    let b = rows_of(&explain(&x.tensor(), &[other as i64])?.view([1, -1]))?;
    Ok(ssim_flat(a, &b[0]))
}
