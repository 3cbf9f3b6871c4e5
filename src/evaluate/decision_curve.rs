//! Decision curve analysis (Vickers & Elkin 2006): the net benefit of
//! referring a case when its calibrated melanoma probability is at least a
//! threshold probability `t`, against referring everyone and no one.
//!
//! `NB(t) = TP/n − FP/n · t/(1−t)`: true referrals, less the false ones
//! weighted by the odds at which a clinician would accept a referral (at
//! `t` = 5 % one melanoma found is worth 19 needless referrals). "Refer all"
//! is `π − (1−π) · t/(1−t)` for prevalence `π`; "refer none" is 0. A model
//! is worth using at `t` only where its curve lies above both. Checked
//! against numpy in `tests/decision_fixtures.rs`.

use serde::{Deserialize, Serialize};

use crate::metrics::{bootstrap_statistic, BootstrapOptions, Interval, MetricsError};

/// The thresholds a report shows: 1 % to 60 % in steps of 1 %.
pub fn default_thresholds() -> Vec<f64> {
    (1..=60).map(|i| i as f64 / 100.0).collect()
}

/// One threshold of the curve.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NetBenefitPoint {
    pub threshold: f64,
    pub model: f64,
    pub treat_all: f64,
    /// Bootstrap interval of the model's net benefit, when computed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model_ci: Option<[f64; 2]>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DecisionCurve {
    pub n: usize,
    pub prevalence: f64,
    pub points: Vec<NetBenefitPoint>,
}

fn check(p: &[f64], y: &[usize], thresholds: &[f64]) -> Result<(), MetricsError> {
    if p.is_empty() {
        return Err(MetricsError::Empty);
    }
    if p.len() != y.len() {
        return Err(MetricsError::LengthMismatch {
            labels: y.len(),
            scores: p.len(),
        });
    }
    if let Some(index) = p.iter().position(|v| v.is_nan()) {
        return Err(MetricsError::NanValue { index });
    }
    if let Some(index) = thresholds.iter().position(|t| !(*t > 0.0 && *t < 1.0)) {
        return Err(MetricsError::NanValue { index });
    }
    Ok(())
}

/// The model's net benefit at threshold `t` over the samples `idx` of
/// (`p`, `y`), where `y` is 1 for the positive class.
fn model_nb(p: &[f64], y: &[usize], idx: impl Iterator<Item = usize>, t: f64) -> f64 {
    let (mut tp, mut fp, mut n) = (0usize, 0usize, 0usize);
    for i in idx {
        n += 1;
        if p[i] >= t {
            if y[i] == 1 {
                tp += 1;
            } else {
                fp += 1;
            }
        }
    }
    (tp as f64 - fp as f64 * t / (1.0 - t)) / n as f64
}

/// Net benefit of referring iff `p >= t`, for each threshold.
pub fn net_benefit(p: &[f64], y: &[usize], thresholds: &[f64]) -> Result<Vec<f64>, MetricsError> {
    check(p, y, thresholds)?;
    Ok(thresholds
        .iter()
        .map(|&t| model_nb(p, y, 0..p.len(), t))
        .collect())
}

/// The curve for the model, refer-all and refer-none (0), with percentile
/// bootstrap intervals of the model's net benefit when `bootstrap` is given
/// (the same resamples at every threshold: one seed).
pub fn decision_curve(
    p: &[f64],
    y: &[usize],
    thresholds: &[f64],
    bootstrap: Option<&BootstrapOptions>,
) -> Result<DecisionCurve, MetricsError> {
    let model = net_benefit(p, y, thresholds)?;
    let n = p.len();
    let prevalence = y.iter().filter(|&&l| l == 1).count() as f64 / n as f64;
    let mut points = Vec::with_capacity(thresholds.len());
    for (&t, &nb) in thresholds.iter().zip(&model) {
        let model_ci = match bootstrap {
            Some(opts) => {
                let ci: Interval =
                    bootstrap_statistic(n, nb, |idx| model_nb(p, y, idx.iter().copied(), t), opts)?;
                Some([ci.low, ci.high])
            }
            None => None,
        };
        points.push(NetBenefitPoint {
            threshold: t,
            model: nb,
            treat_all: prevalence - (1.0 - prevalence) * t / (1.0 - t),
            model_ci,
        });
    }
    Ok(DecisionCurve {
        n,
        prevalence,
        points,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hand_values_and_bounds() {
        // 2 positives, 2 negatives; at t = 0.5 one of each is referred.
        let p = [0.9, 0.4, 0.6, 0.1];
        let y = [1, 1, 0, 0];
        let nb = net_benefit(&p, &y, &[0.5]).unwrap();
        assert!((nb[0] - (1.0 - 1.0) / 4.0).abs() < 1e-12);
        let c = decision_curve(&p, &y, &[0.2], Some(&BootstrapOptions::new(200, 1))).unwrap();
        assert_eq!(c.prevalence, 0.5);
        // t = 0.2: refer 0.9, 0.4, 0.6 -> TP 2, FP 1: (2 - 0.25) / 4.
        assert!((c.points[0].model - 1.75 / 4.0).abs() < 1e-12);
        assert!((c.points[0].treat_all - (0.5 - 0.5 * 0.25)).abs() < 1e-12);
        let [lo, hi] = c.points[0].model_ci.unwrap();
        assert!(lo <= c.points[0].model && c.points[0].model <= hi);
        assert!(net_benefit(&p, &y, &[1.0]).is_err());
        assert!(net_benefit(&[], &[], &[0.5]).is_err());
    }
}
