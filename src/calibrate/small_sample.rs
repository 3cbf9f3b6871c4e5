//! Calibration statistics that still say something at n = 170 (a binary
//! classifier: `p` is the probability of the positive class, `y` its 0/1
//! outcome).
//!
//! Why: a 15-bin ECE of 0.05 cannot be told apart from perfect calibration at
//! this size (a perfectly calibrated model scores about that). Clinical
//! reporting (TRIPOD+AI) asks instead for a test and for the logistic
//! recalibration pair:
//!
//! - Spiegelhalter's Z (1986): `Σ (y−p)(1−2p) / sqrt(Σ (1−2p)² p(1−p))`, standard
//!   normal under perfect calibration; two-sided p-value.
//! - Calibration slope: `b` of `logit P(y=1) = a + b·logit(p)` (1 when the
//!   spread of the predictions is right, < 1 when over-confident).
//!   Calibration-in-the-large (the intercept): `a` of
//!   `logit P(y=1) = a + logit(p)` (0 when the average risk is right).
//!   Both are maximum-likelihood fits (Newton–Raphson), with the standard
//!   errors of the observed information, as statsmodels' GLM reports them.
//! - Debiased ECE (Kumar, Liang & Ma 2019): the squared ℓ2 calibration error
//!   of the top-label confidences over equal-mass bins, minus each bin's
//!   sampling variance of its accuracy; its square root when positive.
//! - Class-wise ECE: the mean over the classes of each class's 15-bin ECE.
//! - ACE as netcal computes it: equal-width bins, each non-empty bin's gap
//!   weighted equally.
//!
//! Checked against statsmodels, scipy and numpy in
//! `tests/decision_fixtures.rs` (fixtures from `scripts/fixtures/gen_decisions.py`).

use serde::{Deserialize, Serialize};

use super::measures::{CalibrationError, Result};

/// Spiegelhalter's calibration test.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Spiegelhalter {
    pub z: f64,
    /// Two-sided: the chance of a |Z| this large if the model were calibrated.
    pub p_value: f64,
}

/// The logistic recalibration pair and its standard errors.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Recalibration {
    /// `b` of `logit P(y=1) = a + b·logit(p)`; 1 = spread right.
    pub slope: f64,
    pub slope_se: f64,
    /// `a` of `logit P(y=1) = a + logit(p)`; 0 = mean risk right.
    pub intercept: f64,
    pub intercept_se: f64,
}

fn check(p: &[f64], y: &[usize]) -> Result<()> {
    if p.is_empty() {
        return Err(CalibrationError::Empty);
    }
    if p.len() != y.len() {
        return Err(CalibrationError::LengthMismatch {
            left: p.len(),
            right: y.len(),
        });
    }
    if let Some(index) = p.iter().position(|v| !(0.0..=1.0).contains(v)) {
        return Err(CalibrationError::NotAProbability {
            index,
            value: p[index],
        });
    }
    if let Some(index) = y.iter().position(|&l| l > 1) {
        return Err(CalibrationError::LabelOutOfRange {
            index,
            label: y[index],
            num_classes: 2,
        });
    }
    Ok(())
}

/// Standard normal upper tail, `P(Z > z)`.
fn normal_sf(z: f64) -> f64 {
    0.5 * libm::erfc(z / std::f64::consts::SQRT_2)
}

/// Spiegelhalter's Z and its two-sided p-value. NaN when every `p` is 0,
/// ½ or 1 (the variance is 0).
pub fn spiegelhalter(p: &[f64], y: &[usize]) -> Result<Spiegelhalter> {
    check(p, y)?;
    let (mut num, mut var) = (0.0, 0.0);
    for (&pi, &yi) in p.iter().zip(y) {
        let w = 1.0 - 2.0 * pi;
        num += (yi as f64 - pi) * w;
        var += w * w * pi * (1.0 - pi);
    }
    let z = num / var.sqrt();
    Ok(Spiegelhalter {
        z,
        p_value: 2.0 * normal_sf(z.abs()),
    })
}

/// Probabilities are clipped this far inside (0, 1) before the logit, so a
/// prediction of exactly 0 or 1 stays finite.
const LOGIT_CLIP: f64 = 1e-12;

fn logit(p: f64) -> f64 {
    let p = p.clamp(LOGIT_CLIP, 1.0 - LOGIT_CLIP);
    (p / (1.0 - p)).ln()
}

fn sigmoid(z: f64) -> f64 {
    if z >= 0.0 {
        1.0 / (1.0 + (-z).exp())
    } else {
        let e = z.exp();
        e / (1.0 + e)
    }
}

/// Newton–Raphson for a logistic model with `k` (1 or 2) coefficients on
/// the columns `x(i) = [1, l_i]` (or `[1]`) and an offset. Returns the
/// coefficients and the inverse of the observed information (their
/// covariance).
fn logistic_fit(
    y: &[usize],
    columns: usize,
    x: impl Fn(usize) -> [f64; 2],
    offset: impl Fn(usize) -> f64,
) -> Option<([f64; 2], [[f64; 2]; 2])> {
    let mut beta = [0.0f64; 2];
    for _ in 0..100 {
        let (mut g, mut h) = ([0.0f64; 2], [[0.0f64; 2]; 2]);
        for (i, &yi) in y.iter().enumerate() {
            let xi = x(i);
            let eta = offset(i) + (0..columns).map(|j| beta[j] * xi[j]).sum::<f64>();
            let mu = sigmoid(eta);
            let w = mu * (1.0 - mu);
            for j in 0..columns {
                g[j] += (yi as f64 - mu) * xi[j];
                for k in 0..columns {
                    h[j][k] += w * xi[j] * xi[k];
                }
            }
        }
        let inv = invert(h, columns)?;
        let mut step = [0.0f64; 2];
        for j in 0..columns {
            step[j] = (0..columns).map(|k| inv[j][k] * g[k]).sum();
            beta[j] += step[j];
        }
        if step
            .iter()
            .all(|s| s.abs() < 1e-12 * (1.0 + beta.iter().map(|b| b.abs()).sum::<f64>()))
        {
            return Some((beta, inv));
        }
    }
    None
}

/// The inverse of a 1x1 or 2x2 symmetric matrix; `None` when singular.
fn invert(h: [[f64; 2]; 2], columns: usize) -> Option<[[f64; 2]; 2]> {
    if columns == 1 {
        return (h[0][0] > 0.0).then(|| [[1.0 / h[0][0], 0.0], [0.0, 0.0]]);
    }
    let det = h[0][0] * h[1][1] - h[0][1] * h[1][0];
    (det.abs() > 1e-300).then(|| {
        [
            [h[1][1] / det, -h[0][1] / det],
            [-h[1][0] / det, h[0][0] / det],
        ]
    })
}

/// The calibration slope and its standard error: `b` of
/// `logit P(y=1) = a + b·logit(p)`. NaN where the fit does not exist (one
/// class only, or perfectly separated outcomes).
pub fn calibration_slope(p: &[f64], y: &[usize]) -> Result<(f64, f64)> {
    check(p, y)?;
    let l: Vec<f64> = p.iter().map(|&pi| logit(pi)).collect();
    Ok(logistic_fit(y, 2, |i| [1.0, l[i]], |_| 0.0)
        .map_or((f64::NAN, f64::NAN), |(b, cov)| (b[1], cov[1][1].sqrt())))
}

/// Calibration-in-the-large and its standard error: `a` of
/// `logit P(y=1) = a + logit(p)`. NaN where the fit does not exist.
pub fn calibration_intercept(p: &[f64], y: &[usize]) -> Result<(f64, f64)> {
    check(p, y)?;
    let l: Vec<f64> = p.iter().map(|&pi| logit(pi)).collect();
    Ok(logistic_fit(y, 1, |_| [1.0, 0.0], |i| l[i])
        .map_or((f64::NAN, f64::NAN), |(b, cov)| (b[0], cov[0][0].sqrt())))
}

/// Calibration slope and calibration-in-the-large by maximum likelihood.
pub fn recalibration(p: &[f64], y: &[usize]) -> Result<Recalibration> {
    let (slope, slope_se) = calibration_slope(p, y)?;
    let (intercept, intercept_se) = calibration_intercept(p, y)?;
    Ok(Recalibration {
        slope,
        slope_se,
        intercept,
        intercept_se,
    })
}

/// The top-label confidence of a binary probability and whether the top
/// label is right.
pub fn top_label(p: &[f64], y: &[usize]) -> (Vec<f64>, Vec<bool>) {
    p.iter()
        .zip(y)
        .map(|(&pi, &yi)| {
            let predicted = usize::from(pi >= 0.5);
            (pi.max(1.0 - pi), predicted == yi)
        })
        .unzip()
}

/// Kumar et al.'s debiased squared ℓ2 calibration error of the top-label
/// confidences over `bins` equal-mass bins (contiguous groups of the sorted
/// confidences, sizes as numpy's `array_split`); bins of one item are left
/// out. Returns (the squared estimate, which can be negative; its square
/// root when positive, else 0).
pub fn debiased_ece(p: &[f64], y: &[usize], bins: usize) -> Result<(f64, f64)> {
    check(p, y)?;
    let (conf, correct) = top_label(p, y);
    let n = conf.len();
    let mut order: Vec<usize> = (0..n).collect();
    order.sort_by(|&a, &b| conf[a].total_cmp(&conf[b]));
    let bins = bins.clamp(1, n);
    let (base, extra) = (n / bins, n % bins);
    let mut start = 0;
    let mut squared = 0.0;
    for b in 0..bins {
        let size = base + usize::from(b < extra);
        let group = &order[start..start + size];
        start += size;
        if size < 2 {
            continue;
        }
        let m = size as f64;
        let acc = group.iter().filter(|&&i| correct[i]).count() as f64 / m;
        let mean_conf = group.iter().map(|&i| conf[i]).sum::<f64>() / m;
        let bias = acc * (1.0 - acc) / (m - 1.0);
        squared += m / n as f64 * ((acc - mean_conf).powi(2) - bias);
    }
    Ok((squared, squared.max(0.0).sqrt()))
}

/// netcal's ACE ("average calibration error", netcal 1.4 `metrics.ACE` on a
/// binary problem): the positive-class probability in `bins` equal-width
/// bins, `|mean(y) − mean(p)|` per non-empty bin, averaged over those bins
/// with equal weight. Unlike the ECE, a sparse bin counts as much as a full
/// one, so it reacts to the tails of the predictions.
pub fn average_calibration_error(p: &[f64], y: &[usize], bins: usize) -> Result<f64> {
    check(p, y)?;
    if bins == 0 {
        return Err(CalibrationError::InvalidBins);
    }
    let mut sums = vec![(0.0f64, 0.0f64, 0usize); bins];
    for (&pi, &yi) in p.iter().zip(y) {
        let b = ((pi * bins as f64) as usize).min(bins - 1);
        sums[b].0 += pi;
        sums[b].1 += yi as f64;
        sums[b].2 += 1;
    }
    let gaps: Vec<f64> = sums
        .iter()
        .filter(|s| s.2 > 0)
        .map(|&(sp, sy, n)| (sy / n as f64 - sp / n as f64).abs())
        .collect();
    Ok(gaps.iter().sum::<f64>() / gaps.len() as f64)
}

/// The mean over both classes of the `bins`-bin ECE of that class's
/// probability against whether the sample is of that class.
pub fn classwise_ece(p: &[f64], y: &[usize], bins: usize) -> Result<f64> {
    check(p, y)?;
    let mut total = 0.0;
    for class in 0..2usize {
        let prob: Vec<f64> = p
            .iter()
            .map(|&pi| if class == 1 { pi } else { 1.0 - pi })
            .collect();
        let hit: Vec<bool> = y.iter().map(|&yi| yi == class).collect();
        total += super::measures::ece(&prob, &hit, bins)?;
    }
    Ok(total / 2.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn perfect_and_degenerate_inputs() {
        // Outcomes exactly at their rates: Z = 0, p = 1.
        let p = vec![0.25; 8];
        let y = vec![1, 0, 0, 0, 1, 0, 0, 0];
        let s = spiegelhalter(&p, &y).unwrap();
        assert!(s.z.abs() < 1e-12 && (s.p_value - 1.0).abs() < 1e-12);
        assert!(spiegelhalter(&[], &[]).is_err());
        assert!(spiegelhalter(&[1.5], &[1]).is_err());
        assert!(spiegelhalter(&[0.5], &[2]).is_err());
        // One class only: no recalibration fit exists.
        let r = recalibration(&[0.2, 0.7, 0.4], &[1, 1, 1]).unwrap();
        assert!(r.slope.is_nan() && r.intercept.is_nan());
    }

    #[test]
    fn debiased_ece_subtracts_each_bins_sampling_variance() {
        // One bin of 4 at confidence 0.75 with 3 right: raw gap 0, variance
        // 0.75 * 0.25 / 3, so the estimate is negative and its root 0.
        let p = [0.75, 0.75, 0.25, 0.75];
        let y = [1, 1, 0, 0];
        let (sq, root) = debiased_ece(&p, &y, 1).unwrap();
        assert!((sq + 0.0625).abs() < 1e-12, "{sq}");
        assert_eq!(root, 0.0);
    }
}
