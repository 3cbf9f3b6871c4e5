//! Per-sample uncertainty from the members' probabilities.
//!
//! With member probabilities `p_m = softmax(l_m / T)` (each member's logits
//! at the ensemble's temperature) and their mean `p̄`:
//!
//! - spread: population standard deviation (ddof 0) of `p_m[positive]`;
//! - predictive entropy `H(p̄)` (total uncertainty), in nats;
//! - expected entropy `mean_m H(p_m)` (aleatoric part), in nats;
//! - mutual information `H(p̄) − mean_m H(p_m)` (epistemic part, ≥ 0 by
//!   Jensen), in nats.
//!
//! The decomposition needs the mean of probabilities, so it is computed on
//! `p̄` even though the point prediction combines logits. A single model is
//! one member: spread and mutual information are then 0 and both entropies
//! are the entropy of its prediction. Values are checked against
//! `scripts/fixtures/gen_uncertainty.py` (numpy) in `tests/uncertainty_fixtures.rs`.

use serde::{Deserialize, Serialize};

/// Predictive entropy (nats) at or above which a sample counts as uncertain:
/// 0.5 nats is a binary probability between about 0.2 and 0.8.
pub const UNCERTAIN_ENTROPY_NATS: f64 = 0.5;

#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Uncertainty {
    /// Members the numbers come from (1 = a single model).
    pub members: usize,
    pub spread: f64,
    pub predictive_entropy: f64,
    pub expected_entropy: f64,
    pub mutual_information: f64,
}

impl Uncertainty {
    /// Whether the sample should be looked at first (referred when unsure).
    pub fn is_uncertain(&self) -> bool {
        self.predictive_entropy >= UNCERTAIN_ENTROPY_NATS
    }
}

/// Softmax of `logits / temperature` (numerically stable).
pub fn softmax(logits: &[f64], temperature: f64) -> Vec<f64> {
    let scaled: Vec<f64> = logits.iter().map(|l| l / temperature).collect();
    let max = scaled.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
    let exp: Vec<f64> = scaled.iter().map(|l| (l - max).exp()).collect();
    let sum: f64 = exp.iter().sum();
    exp.into_iter().map(|e| e / sum).collect()
}

/// Shannon entropy in nats (0 · ln 0 = 0).
pub fn entropy(p: &[f64]) -> f64 {
    -p.iter()
        .filter(|&&v| v > 0.0)
        .map(|&v| v * v.ln())
        .sum::<f64>()
}

/// Uncertainty of one sample from its members' logits (`member_logits[m][c]`),
/// at `temperature`, for the class `positive`. `None` without members or with
/// members of different lengths.
pub fn from_member_logits(
    member_logits: &[Vec<f64>],
    temperature: f64,
    positive: usize,
) -> Option<Uncertainty> {
    let classes = member_logits.first()?.len();
    if positive >= classes || member_logits.iter().any(|l| l.len() != classes) {
        return None;
    }
    let probs: Vec<Vec<f64>> = member_logits
        .iter()
        .map(|l| softmax(l, temperature))
        .collect();
    let k = probs.len() as f64;
    let mean: Vec<f64> = (0..classes)
        .map(|c| probs.iter().map(|p| p[c]).sum::<f64>() / k)
        .collect();
    let mean_pos = mean[positive];
    let spread = (probs
        .iter()
        .map(|p| (p[positive] - mean_pos).powi(2))
        .sum::<f64>()
        / k)
        .sqrt();
    let predictive = entropy(&mean);
    let expected = probs.iter().map(|p| entropy(p)).sum::<f64>() / k;
    Some(Uncertainty {
        members: probs.len(),
        spread,
        predictive_entropy: predictive,
        expected_entropy: expected,
        // Jensen makes it >= 0; clamp the rounding below zero.
        mutual_information: (predictive - expected).max(0.0),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_member_has_no_epistemic_part() {
        let u = from_member_logits(&[vec![2.0, -1.0]], 1.0, 0).unwrap();
        assert_eq!(u.spread, 0.0);
        assert!(u.mutual_information.abs() < 1e-15);
        assert!((u.predictive_entropy - u.expected_entropy).abs() < 1e-15);
    }

    #[test]
    fn disagreeing_confident_members_are_epistemic() {
        let u = from_member_logits(&[vec![10.0, -10.0], vec![-10.0, 10.0]], 1.0, 0).unwrap();
        assert!((u.predictive_entropy - 2f64.ln()).abs() < 1e-6);
        assert!(u.expected_entropy < 1e-6);
        assert!((u.spread - 0.5).abs() < 1e-6);
        assert!(u.is_uncertain());
    }

    #[test]
    fn malformed_input_is_none() {
        assert!(from_member_logits(&[], 1.0, 0).is_none());
        assert!(from_member_logits(&[vec![1.0, 2.0], vec![1.0]], 1.0, 0).is_none());
        assert!(from_member_logits(&[vec![1.0, 2.0]], 1.0, 2).is_none());
    }
}
