//! `melxai::calibrate::ece_consistency`: the ECE perfectly calibrated
//! outcomes score on given confidences, checked against the exact
//! expectation (a Poisson-binomial sum per bin, computed here independently
//! of the resampling), and its p-value at the extremes.

use melxai::calibrate::{ece, ece_consistency, CalibrationError};
use melxai::metrics::{BootstrapOptions, MetricsError};

/// Exact `E[ECE]` when sample i is correct with probability `conf[i]`:
/// ECE = Σ_b (1/n) |S_b − Σ_{i∈b} conf_i| with S_b Poisson-binomial, so its
/// expectation is a finite sum over each bin's count distribution.
fn exact_expected_ece(groups: &[Vec<f64>]) -> f64 {
    let n: usize = groups.iter().map(Vec::len).sum();
    groups
        .iter()
        .map(|g| {
            // dist[k] = P(k of the bin's samples are correct).
            let mut dist = vec![1.0];
            for &p in g {
                let mut next = vec![0.0; dist.len() + 1];
                for (k, &q) in dist.iter().enumerate() {
                    next[k] += q * (1.0 - p);
                    next[k + 1] += q * p;
                }
                dist = next;
            }
            let total: f64 = g.iter().sum();
            dist.iter()
                .enumerate()
                .map(|(k, &q)| q * (k as f64 - total).abs())
                .sum::<f64>()
                / n as f64
        })
        .sum()
}

#[test]
fn mean_matches_the_exact_expectation_of_calibrated_outcomes() {
    // Three of the 15 bins, (0.533, 0.6], (0.733, 0.8], (0.933, 1], with
    // different confidences inside each: 45 samples.
    let groups: Vec<Vec<f64>> = vec![
        (0..20).map(|i| 0.55 + 0.002 * i as f64).collect(),
        (0..15).map(|i| 0.74 + 0.004 * i as f64).collect(),
        (0..10).map(|i| 0.94 + 0.005 * i as f64).collect(),
    ];
    let conf: Vec<f64> = groups.concat();
    let correct = vec![true; conf.len()];
    let want = exact_expected_ece(&groups);
    let r = ece_consistency(&conf, &correct, 15, &BootstrapOptions::new(40_000, 7)).unwrap();
    // ECE is bounded by 1, so its sd is below 0.5 and the Monte-Carlo error
    // of 40k draws below 0.0025; in practice the sd here is ~0.03.
    assert!(
        (r.expected - want).abs() < 0.002,
        "resampled {} vs exact {want}",
        r.expected
    );
    assert!(want > 0.05 && want < 0.12, "exact {want}");
    assert!(r.low < r.expected && r.expected < r.high);
    assert_eq!(r.resamples, 40_000);
    assert_eq!(r.observed, ece(&conf, &correct, 15).unwrap());
    // All correct while the confidences say 55–99 %: beyond sampling noise.
    assert!(r.p_value < 0.001, "p {}", r.p_value);
}

#[test]
fn exact_calibration_is_never_rejected_and_miscalibration_is() {
    // 100 samples at 0.8 confidence, 80 correct: observed ECE 0, which every
    // resample reaches.
    let conf = vec![0.8; 100];
    let correct: Vec<bool> = (0..100).map(|i| i < 80).collect();
    let opts = BootstrapOptions::new(2000, 1);
    let r = ece_consistency(&conf, &correct, 15, &opts).unwrap();
    assert!(r.observed.abs() < 1e-12);
    assert_eq!(r.p_value, 1.0);
    // The exact expectation of |Binomial(100, 0.8) − 80| / 100.
    let want = exact_expected_ece(std::slice::from_ref(&conf));
    assert!(
        (r.expected - want).abs() < 0.002,
        "{} vs {want}",
        r.expected
    );

    // Same confidence, 60 correct: a 0.2 gap no calibrated draw comes near.
    let wrong: Vec<bool> = (0..100).map(|i| i < 60).collect();
    let m = ece_consistency(&conf, &wrong, 15, &opts).unwrap();
    assert!((m.observed - 0.2).abs() < 1e-12);
    assert_eq!(m.p_value, 1.0 / 2001.0);
}

#[test]
fn resampling_is_seeded_and_inputs_are_checked() {
    let conf: Vec<f64> = (0..60).map(|i| 0.5 + i as f64 / 130.0).collect();
    let correct: Vec<bool> = (0..60).map(|i| i % 4 != 0).collect();
    let a = ece_consistency(&conf, &correct, 15, &BootstrapOptions::new(500, 3)).unwrap();
    let b = ece_consistency(&conf, &correct, 15, &BootstrapOptions::new(500, 3)).unwrap();
    let c = ece_consistency(&conf, &correct, 15, &BootstrapOptions::new(500, 4)).unwrap();
    assert_eq!(a, b);
    assert_ne!(a.expected, c.expected);
    assert!(matches!(
        ece_consistency(&conf, &correct, 15, &BootstrapOptions::new(0, 3)),
        Err(CalibrationError::Bootstrap(MetricsError::NoResamples))
    ));
    assert!(matches!(
        ece_consistency(&[], &[], 15, &BootstrapOptions::new(10, 3)),
        Err(CalibrationError::Empty)
    ));
    assert!(matches!(
        ece_consistency(&[1.2], &[true], 15, &BootstrapOptions::new(10, 3)),
        Err(CalibrationError::NotAProbability { .. })
    ));
}
