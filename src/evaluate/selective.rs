//! Selective prediction: the risk–coverage curve and its area (AURC).
//!
//! Why: a triage tool may refer its least certain cases to a dermatologist
//! and decide only the rest. The risk–coverage curve says what error rate the
//! accepted cases keep at each fraction accepted (coverage), accepting the
//! most confident first; AURC (Geifman et al. 2019) sums it into one number
//! (lower is better), and E-AURC subtracts the AURC of the best possible
//! ordering (every error ranked below every correct case), leaving what is due
//! to the ranking alone rather than to the error rate.
//!
//! Ties: samples of equal confidence cannot be ordered, so within a group of
//! tied samples the accepted errors are counted as their expectation under a
//! random order (the group's error rate times the number accepted from it).
//! The result does not depend on the input order, and without ties it equals
//! the plain sort-and-accumulate definition. Curve points are reported at the
//! end of each tie group only (the coverages a threshold can realise).

use serde::{Deserialize, Serialize};

use crate::metrics::MetricsError;

/// One realisable operating point of selective prediction.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct RiskCoveragePoint {
    /// Fraction of samples accepted, in (0, 1].
    pub coverage: f64,
    /// Error rate of the accepted samples, in [0, 1].
    pub risk: f64,
    /// Lowest confidence accepted at this point.
    pub threshold: f64,
}

/// The risk–coverage curve and its areas.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RiskCoverage {
    /// One point per distinct confidence, coverage increasing.
    pub curve: Vec<RiskCoveragePoint>,
    /// `(1/n) Σ_{k=1..n} risk(k/n)`, in [0, 1]; lower is better.
    pub aurc: f64,
    /// AURC of the optimal ordering for the same errors.
    pub optimal_aurc: f64,
    /// `aurc − optimal_aurc` (≥ 0 up to rounding).
    pub excess_aurc: f64,
    /// Overall error rate (the risk at full coverage).
    pub risk_at_full_coverage: f64,
    pub n: usize,
}

/// Risk–coverage curve of samples with `confidence[i]` (higher = more
/// certain, any finite or infinite value) and `correct[i]` (the decision was
/// right). Errors on empty or mismatched input and on NaN confidences.
pub fn risk_coverage(confidence: &[f64], correct: &[bool]) -> Result<RiskCoverage, MetricsError> {
    let n = confidence.len();
    if n == 0 {
        return Err(MetricsError::Empty);
    }
    if correct.len() != n {
        return Err(MetricsError::LengthMismatch {
            labels: correct.len(),
            scores: n,
        });
    }
    if let Some(index) = confidence.iter().position(|c| c.is_nan()) {
        return Err(MetricsError::NanValue { index });
    }
    let mut order: Vec<usize> = (0..n).collect();
    order.sort_by(|&a, &b| confidence[b].total_cmp(&confidence[a]));
    let mut curve = Vec::new();
    let mut area = 0.0;
    let (mut accepted, mut errors) = (0usize, 0usize);
    let mut start = 0;
    while start < n {
        let c = confidence[order[start]];
        let end = start + order[start..].partition_point(|&i| confidence[i] == c);
        let size = end - start;
        let group_errors = order[start..end].iter().filter(|&&i| !correct[i]).count();
        let rate = group_errors as f64 / size as f64;
        // Expected errors after accepting j of the group's `size` samples.
        for j in 1..=size {
            area += (errors as f64 + j as f64 * rate) / (accepted + j) as f64;
        }
        accepted += size;
        errors += group_errors;
        curve.push(RiskCoveragePoint {
            coverage: accepted as f64 / n as f64,
            risk: errors as f64 / accepted as f64,
            threshold: c,
        });
        start = end;
    }
    let aurc = area / n as f64;
    let optimal_aurc = optimal_aurc(n, errors);
    Ok(RiskCoverage {
        curve,
        aurc,
        optimal_aurc,
        excess_aurc: aurc - optimal_aurc,
        risk_at_full_coverage: errors as f64 / n as f64,
        n,
    })
}

/// AURC when the `errors` wrong samples of `n` are all ranked last:
/// `(1/n) Σ_k max(0, k − (n − errors)) / k`.
pub fn optimal_aurc(n: usize, errors: usize) -> f64 {
    if n == 0 {
        return f64::NAN;
    }
    let right = n - errors.min(n);
    let sum: f64 = (right + 1..=n).map(|k| (k - right) as f64 / k as f64).sum();
    sum / n as f64
}

/// Top-label confidence and correctness of a binary classifier from its
/// positive-class probabilities: confidence `max(p, 1 − p)`, decision
/// positive iff `p >= 0.5` (the module-wide threshold of [`crate::metrics`]).
pub fn binary_confidence(
    labels: &[usize],
    pos_probs: &[f64],
    positive: usize,
) -> (Vec<f64>, Vec<bool>) {
    labels
        .iter()
        .zip(pos_probs)
        .map(|(&y, &p)| {
            let said_positive = p >= crate::metrics::DEFAULT_THRESHOLD;
            (p.max(1.0 - p), said_positive == (y == positive))
        })
        .unzip()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn perfect_ranking_has_zero_excess() {
        let conf = [0.9, 0.8, 0.7, 0.6];
        let correct = [true, true, false, false];
        let rc = risk_coverage(&conf, &correct).unwrap();
        assert!((rc.aurc - rc.optimal_aurc).abs() < 1e-15);
        // k=3: 1/3, k=4: 2/4 -> (1/3 + 1/2) / 4
        assert!((rc.aurc - (1.0 / 3.0 + 0.5) / 4.0).abs() < 1e-15);
        assert_eq!(rc.curve.len(), 4);
        assert_eq!(rc.risk_at_full_coverage, 0.5);
    }

    #[test]
    fn worst_ranking_is_worse_than_optimal() {
        let conf = [0.9, 0.8, 0.7, 0.6];
        let correct = [false, false, true, true];
        let rc = risk_coverage(&conf, &correct).unwrap();
        // 1 + 1 + 2/3 + 2/4
        assert!((rc.aurc - (1.0 + 1.0 + 2.0 / 3.0 + 0.5) / 4.0).abs() < 1e-15);
        assert!(rc.excess_aurc > 0.5);
    }

    #[test]
    fn ties_count_the_expected_errors_and_ignore_input_order() {
        let a = risk_coverage(&[0.5, 0.5], &[true, false]).unwrap();
        let b = risk_coverage(&[0.5, 0.5], &[false, true]).unwrap();
        assert_eq!(a, b);
        // k=1: 0.5 expected errors; k=2: 1/2.
        assert!((a.aurc - (0.5 + 0.5) / 2.0).abs() < 1e-15);
        assert_eq!(a.curve.len(), 1);
    }

    #[test]
    fn bad_input_is_an_error() {
        assert_eq!(risk_coverage(&[], &[]), Err(MetricsError::Empty));
        assert!(risk_coverage(&[0.1], &[true, false]).is_err());
        assert_eq!(
            risk_coverage(&[0.1, f64::NAN], &[true, false]),
            Err(MetricsError::NanValue { index: 1 })
        );
    }

    #[test]
    fn binary_confidence_uses_the_half_threshold() {
        let (c, ok) = binary_confidence(&[0, 1, 0], &[0.9, 0.2, 0.3], 0);
        assert_eq!(c, vec![0.9, 0.8, 0.7]);
        assert_eq!(ok, vec![true, true, false]);
    }
}
