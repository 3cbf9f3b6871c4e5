//! Tests for `melxai::calibrate`: temperature recovery on synthetic data,
//! hand-computed ECE/MCE/Brier/NLL, the NLL guarantee, and agreement with the
//! NumPy/SciPy/scikit-learn reference in `tests/fixtures/metrics/calibration.json`.

use melxai::calibrate::*;
use melxai::metrics::{BootstrapOptions, MetricsError};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::Deserialize;

const TOL: f64 = 1e-12;

fn close(what: &str, got: f64, want: f64, tol: f64) {
    assert!(
        (got - want).abs() <= tol,
        "{what}: got {got:.17}, want {want:.17}"
    );
}

fn std_normal(rng: &mut ChaCha8Rng) -> f64 {
    // Box–Muller; 1 - u avoids ln(0).
    let u1: f64 = 1.0 - rng.gen::<f64>();
    let u2: f64 = rng.gen();
    (-2.0 * u1.ln()).sqrt() * (2.0 * std::f64::consts::PI * u2).cos()
}

/// `n` samples of `k`-class "true" logits (N(0, 2²)), labels drawn from
/// softmax(true), and the presented logits `true * t0`: the perfectly
/// calibrating temperature is `t0`.
fn synthetic(n: usize, k: usize, t0: f64, seed: u64) -> (Vec<Vec<f64>>, Vec<usize>) {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut logits = Vec::with_capacity(n);
    let mut labels = Vec::with_capacity(n);
    for _ in 0..n {
        let z: Vec<f64> = (0..k).map(|_| 2.0 * std_normal(&mut rng)).collect();
        let p = softmax_with_temperature(std::slice::from_ref(&z), 1.0).expect("valid")[0].clone();
        let u: f64 = rng.gen();
        let mut acc = 0.0;
        let label = p
            .iter()
            .position(|&pk| {
                acc += pk;
                u < acc
            })
            .unwrap_or(k - 1);
        labels.push(label);
        logits.push(z.iter().map(|v| v * t0).collect());
    }
    (logits, labels)
}

/// Sample size for recovering `T0` within 2 % at ≥ 4 standard errors.
///
/// The MLE of `β = 1/T` has relative standard error `1 / sqrt(n · I)` where
/// `I = E[Var_softmax(z)(z)]` is the per-sample Fisher information at the true
/// logits. For N(0, 2²) logits `I ≈ 0.25` with 2 classes and `≈ 0.99` with 10
/// (estimated numerically), so 5000 binary samples give a 2.8 % standard
/// error: a 2 % tolerance there would be a coin flip. `n = 16 / (0.02² · I)`.
fn samples_for_two_percent(k: usize) -> usize {
    match k {
        2 => 160_000,
        10 => 40_000,
        _ => unreachable!("only 2 and 10 classes are calibrated here"),
    }
}

#[test]
fn fit_recovers_known_temperature() {
    for &(t0, k, seed) in &[
        (2.5, 2, 1),
        (0.6, 2, 2),
        (2.5, 10, 3),
        (0.6, 10, 4),
        (1.0, 2, 5),
    ] {
        let (logits, labels) = synthetic(samples_for_two_percent(k), k, t0, seed);
        let fit = fit_temperature(&logits, &labels).expect("fits");
        let rel = (fit.temperature - t0).abs() / t0;
        assert!(
            rel < 0.02,
            "T0={t0} k={k}: fitted {} ({:.2} %)",
            fit.temperature,
            rel * 100.0
        );
        assert!(!fit.at_bound);
        assert!(fit.iterations > 0 && fit.iterations < 50, "{fit:?}");
        if t0 != 1.0 {
            assert!(fit.nll_after < fit.nll_before, "{fit:?}");
        }
        eprintln!(
            "T0={t0} k={k}: T={:.5} ({:.2} %), {} iterations",
            fit.temperature,
            rel * 100.0,
            fit.iterations
        );
    }
}

/// The brief's ~5000-sample setting: with 10 classes the standard error is
/// 1.4 %, so only a looser 5 % (3.5 σ) is a fair requirement.
#[test]
fn fit_recovers_temperature_from_5000_samples() {
    for &(t0, seed) in &[(2.5, 6), (0.6, 7)] {
        let (logits, labels) = synthetic(5000, 10, t0, seed);
        let fit = fit_temperature(&logits, &labels).expect("fits");
        let rel = (fit.temperature - t0).abs() / t0;
        assert!(
            rel < 0.05,
            "T0={t0}: fitted {} ({:.2} %)",
            fit.temperature,
            rel * 100.0
        );
    }
}

#[test]
fn nll_never_increases_on_the_fitting_set() {
    for seed in 10..22u64 {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let t0 = [0.3, 0.8, 1.0, 1.3, 4.0, 12.0][(seed % 6) as usize];
        let n = rng.gen_range(5..400);
        let (logits, labels) = synthetic(n, 2 + (seed % 3) as usize, t0, seed);
        let fit = fit_temperature(&logits, &labels).expect("fits");
        assert!(fit.nll_after <= fit.nll_before, "seed {seed}: {fit:?}");
        let recomputed = nll(&logits, &labels, fit.temperature).expect("valid");
        assert_eq!(recomputed, fit.nll_after, "seed {seed}");
        assert!((MIN_TEMPERATURE..=MAX_TEMPERATURE).contains(&fit.temperature));
    }
}

#[test]
fn fit_handles_degenerate_inputs() {
    // Perfectly separated, always right: sharper is always better -> clamp at T_min.
    let logits = vec![vec![3.0, -3.0], vec![-2.0, 2.0], vec![1.0, -1.0]];
    let fit = fit_temperature(&logits, &[0, 1, 0]).expect("fits");
    assert_eq!(fit.temperature, MIN_TEMPERATURE);
    assert!(fit.at_bound && fit.nll_after < fit.nll_before);
    // Always confidently wrong: flatter is better -> clamp at T_max.
    let fit = fit_temperature(&logits, &[1, 0, 1]).expect("fits");
    assert_eq!(fit.temperature, MAX_TEMPERATURE);
    assert!(fit.at_bound && fit.nll_after < fit.nll_before);
    // Constant logits: the temperature does not matter, T = 1 is kept.
    let flat = vec![vec![0.5, 0.5, 0.5]; 4];
    let fit = fit_temperature(&flat, &[0, 1, 2, 0]).expect("fits");
    assert_eq!(fit.temperature, 1.0);
    assert_eq!(fit.nll_after, fit.nll_before);
    close("ln 3", fit.nll_before, 3f64.ln(), TOL);
}

#[test]
fn invalid_inputs_are_errors() {
    assert_eq!(fit_temperature(&[], &[]), Err(CalibrationError::Empty));
    assert_eq!(
        fit_temperature(&[vec![1.0, 2.0], vec![1.0]], &[0, 0]),
        Err(CalibrationError::RaggedRows {
            row: 1,
            expected: 2,
            found: 1
        })
    );
    assert_eq!(
        fit_temperature(&[vec![1.0]], &[0]),
        Err(CalibrationError::TooFewClasses(1))
    );
    assert!(matches!(
        nll(&[vec![1.0, 2.0]], &[2], 1.0),
        Err(CalibrationError::LabelOutOfRange { label: 2, .. })
    ));
    assert_eq!(
        nll(&[vec![1.0, f64::NAN]], &[0], 1.0),
        Err(CalibrationError::NonFinite { row: 0 })
    );
    assert_eq!(
        nll(&[vec![1.0, 2.0]], &[0], 0.0),
        Err(CalibrationError::InvalidTemperature(0.0))
    );
    assert_eq!(ece(&[0.5], &[true], 0), Err(CalibrationError::InvalidBins));
    assert!(matches!(
        ece(&[1.5], &[true], 15),
        Err(CalibrationError::NotAProbability { index: 0, .. })
    ));
    assert!(matches!(
        ece(&[0.5, 0.6], &[true], 15),
        Err(CalibrationError::LengthMismatch { .. })
    ));
    let cfg = CalibrationConfig {
        positive: 5,
        ..CalibrationConfig::default()
    };
    assert!(matches!(
        calibration_report(&[vec![1.0, 2.0]], &[0], &cfg),
        Err(CalibrationError::LabelOutOfRange { label: 5, .. })
    ));
}

#[test]
fn softmax_and_nll_hand_values() {
    let p = softmax_with_temperature(&[vec![2.0, 0.0], vec![1000.0, -1000.0]], 2.0).expect("ok");
    close("p00", p[0][0], 1.0 / (1.0 + (-1f64).exp()), TOL);
    close("row sum", p[0].iter().sum(), 1.0, TOL);
    assert_eq!(p[1], vec![1.0, 0.0]);
    close(
        "nll ln2",
        nll(&[vec![0.0, 0.0]], &[0], 1.0).expect("ok"),
        2f64.ln(),
        TOL,
    );
    let got = nll(&[vec![2.0, 0.0]], &[0], 2.0).expect("ok");
    close("nll T=2", got, (1.0 + (-1f64).exp()).ln(), TOL);
    // Log-sum-exp keeps extreme logits finite: -log softmax = 2000.
    close(
        "extreme",
        nll(&[vec![1000.0, -1000.0]], &[1], 1.0).expect("ok"),
        2000.0,
        1e-9,
    );
}

#[test]
fn brier_hand_values() {
    let probs = vec![vec![0.8, 0.2], vec![0.3, 0.7], vec![0.5, 0.5]];
    let labels = [0, 0, 1];
    // (0.04 + 0.04) + (0.49 + 0.49) + (0.25 + 0.25) = 1.56 over 3.
    close("multi", brier(&probs, &labels).expect("ok"), 0.52, TOL);
    // Positive class 0: (0.2² + 0.7² + 0.5²) / 3 = 0.78 / 3.
    let pos: Vec<f64> = probs.iter().map(|p| p[0]).collect();
    close(
        "binary",
        brier_binary(&pos, &labels, 0).expect("ok"),
        0.26,
        TOL,
    );
    close(
        "three-class",
        brier(&[vec![0.7, 0.2, 0.1]], &[1]).expect("ok"),
        1.14,
        TOL,
    );
}

/// 7 samples, 10 bins. Edge cases: confidence exactly 0 (bin 0), exactly 0.3
/// and 0.7 (upper edges of bins 2 and 6), and 1.0 (bin 9).
fn ece_case() -> (Vec<f64>, Vec<bool>) {
    (
        vec![0.0, 0.25, 0.3, 0.7, 0.75, 0.95, 1.0],
        vec![false, false, true, true, false, true, true],
    )
}

#[test]
fn ece_mce_hand_values_with_edges_and_empty_bins() {
    let (conf, correct) = ece_case();
    // bin0 {0.0 F}: gap 0; bin2 {0.25 F, 0.3 T}: |0.5 - 0.275| = 0.225;
    // bin6 {0.7 T}: 0.3; bin7 {0.75 F}: 0.75; bin9 {0.95 T, 1.0 T}: 0.025.
    // ECE = (0 + 2*0.225 + 0.3 + 0.75 + 2*0.025) / 7 = 1.55 / 7.
    close(
        "ece",
        ece(&conf, &correct, 10).expect("ok"),
        1.55 / 7.0,
        TOL,
    );
    close("mce", mce(&conf, &correct, 10).expect("ok"), 0.75, TOL);
    let bins = reliability_bins(&conf, &correct, 10).expect("ok");
    let counts: Vec<usize> = bins.iter().map(|b| b.count).collect();
    assert_eq!(counts, [1, 0, 2, 0, 0, 0, 1, 1, 0, 2]);
    assert_eq!(bins[1].mean_confidence, None);
    assert_eq!(bins[1].accuracy, None);
    close(
        "bin2 conf",
        bins[2].mean_confidence.expect("non-empty"),
        0.275,
        TOL,
    );
    assert_eq!(bins[2].accuracy, Some(0.5));
    assert_eq!((bins[2].lower, bins[2].upper), (0.2, 0.3));
    let json = serde_json::to_string(&bins[1]).expect("serializes");
    assert!(json.contains("\"mean_confidence\":null"), "{json}");
}

#[test]
fn ece_edge_cases() {
    // Perfect calibration in one bin.
    close(
        "perfect",
        ece(&[0.5, 0.5], &[true, false], 15).expect("ok"),
        0.0,
        TOL,
    );
    // One bin: |acc - mean conf| overall.
    close(
        "1 bin",
        ece(&[0.9, 0.6], &[true, true], 1).expect("ok"),
        0.25,
        TOL,
    );
    // 15 bins: 1/15 exactly on an edge belongs to bin 0 with 0.05.
    let e = ece(&[1.0 / 15.0, 0.05], &[true, false], 15).expect("ok");
    close(
        "edge 1/15",
        e,
        (0.5 - (1.0 / 15.0 + 0.05) / 2.0f64).abs(),
        TOL,
    );
}

#[test]
fn bin_edges_survive_floating_point_rounding() {
    // 0.28 == 7/25 but 0.28 * 25 rounds to 7.000000000000001: still bin 6,
    // whose inclusive upper edge it is.
    let bins = reliability_bins(&[0.28], &[true], 25).expect("ok");
    assert_eq!(bins[6].count, 1, "0.28 with 25 bins");
    assert_eq!(bins[6].upper, 0.28);
    // The double just above 11/15 times 15 rounds to exactly 11.0, yet it is
    // above the edge, so it belongs to bin 11; 11/15 itself stays in bin 10.
    let edge = 11.0 / 15.0;
    let above = 0.7333333333333334;
    assert!(above > edge);
    let bins = reliability_bins(&[edge, above], &[true, true], 15).expect("ok");
    assert_eq!((bins[10].count, bins[11].count), (1, 1));
}

#[test]
fn adaptive_ece_hand_values() {
    let (conf, correct) = ece_case();
    // 7 samples in 3 equal-mass bins: sizes 3, 2, 2 (np.array_split).
    // {0.0F 0.25F 0.3T}: |1/3 - 0.55/3| = 0.15; {0.7T 0.75F}: 0.225;
    // {0.95T 1.0T}: 0.025. AECE = (3*0.15 + 2*0.225 + 2*0.025) / 7.
    close(
        "aece",
        adaptive_ece(&conf, &correct, 3).expect("ok"),
        0.95 / 7.0,
        TOL,
    );
    // More bins than samples: empty groups contribute nothing.
    close(
        "sparse",
        adaptive_ece(&[0.9, 0.2], &[false, true], 5).expect("ok"),
        0.85,
        TOL,
    );
}

#[test]
fn report_and_bootstrap() {
    let (logits, labels) = synthetic(26, 2, 2.0, 99);
    let cfg = CalibrationConfig::default();
    let r = calibration_report(&logits, &labels, &cfg).expect("ok");
    assert_eq!((r.n, r.num_classes, r.bins.len()), (26, 2, 15));
    close("brier x2", r.brier_multiclass, 2.0 * r.brier, TOL);
    assert!(r
        .small_sample_warning
        .as_deref()
        .is_some_and(|w| w.contains("wide")));
    assert_eq!(r.bins.iter().map(|b| b.count).sum::<usize>(), 26);
    assert!(serde_json::to_string(&r).is_ok());

    let opts = BootstrapOptions::new(1000, 3);
    let b = calibration_bootstrap(&logits, &labels, &cfg, &opts).expect("ok");
    assert_eq!(
        b,
        calibration_bootstrap(&logits, &labels, &cfg, &opts).expect("ok")
    );
    assert_eq!(
        (b.ece.point, b.brier.point, b.nll.point),
        (r.ece, r.brier, r.nll)
    );
    for iv in [&b.brier, &b.nll] {
        assert!(iv.low <= iv.point && iv.point <= iv.high, "{iv:?}");
        assert_eq!(iv.n_valid, 1000);
    }
    assert!(b.ece.low <= b.ece.high);
    assert!(b.small_sample_warning.is_some());
    assert!(matches!(
        calibration_bootstrap(&logits, &labels, &cfg, &BootstrapOptions::new(0, 1)),
        Err(CalibrationError::Bootstrap(MetricsError::NoResamples))
    ));

    let (big_logits, big_labels) = synthetic(150, 2, 2.0, 98);
    let big = calibration_report(&big_logits, &big_labels, &cfg).expect("ok");
    assert!(big.small_sample_warning.is_none());
    // Temperature scaling never changes accuracy and, fitted on the same data,
    // never worsens NLL.
    let fit = fit_temperature(&big_logits, &big_labels).expect("fits");
    let cal = calibration_report(
        &big_logits,
        &big_labels,
        &CalibrationConfig {
            temperature: fit.temperature,
            ..cfg
        },
    )
    .expect("ok");
    assert_eq!(cal.accuracy, big.accuracy);
    assert!(cal.nll <= big.nll);
    close("report nll", cal.nll, fit.nll_after, TOL);
}

#[derive(Deserialize)]
struct Fixture {
    cases: Vec<Case>,
}

#[derive(Deserialize)]
struct Case {
    name: String,
    positive: usize,
    n_bins: usize,
    labels: Vec<usize>,
    logits: Vec<Vec<f64>>,
    fitted_temperature: f64,
    report_t1: Reference,
    report_fitted: Reference,
}

#[derive(Deserialize)]
struct Reference {
    temperature: f64,
    accuracy: f64,
    ece: f64,
    mce: f64,
    adaptive_ece: f64,
    bin_counts: Vec<usize>,
    brier: f64,
    brier_multiclass: f64,
    nll: f64,
    sklearn_log_loss: f64,
}

#[test]
fn matches_numpy_scipy_sklearn_reference() {
    let f: Fixture =
        serde_json::from_str(include_str!("fixtures/metrics/calibration.json")).expect("parses");
    assert_eq!(f.cases.len(), 2);
    for c in &f.cases {
        let fit = fit_temperature(&c.logits, &c.labels).expect("fits");
        // SciPy's bounded Brent minimises a flat objective, so it is only
        // accurate to ~1e-8 relative; we agree to 1e-6.
        let rel = (fit.temperature - c.fitted_temperature).abs() / c.fitted_temperature;
        assert!(
            rel < 1e-6,
            "{}: T {} vs scipy {}",
            c.name,
            fit.temperature,
            c.fitted_temperature
        );
        assert!(fit.nll_after <= c.report_fitted.nll + 1e-12, "{}", c.name);
        for want in [&c.report_t1, &c.report_fitted] {
            let cfg = CalibrationConfig {
                temperature: want.temperature,
                positive: c.positive,
                n_bins: c.n_bins,
            };
            let r = calibration_report(&c.logits, &c.labels, &cfg).expect("ok");
            let what = |m: &str| format!("{} T={}: {m}", c.name, want.temperature);
            close(&what("accuracy"), r.accuracy, want.accuracy, TOL);
            close(&what("ece"), r.ece, want.ece, TOL);
            close(&what("mce"), r.mce, want.mce, TOL);
            close(
                &what("adaptive_ece"),
                r.adaptive_ece,
                want.adaptive_ece,
                TOL,
            );
            close(&what("brier"), r.brier, want.brier, TOL);
            close(
                &what("brier_multiclass"),
                r.brier_multiclass,
                want.brier_multiclass,
                TOL,
            );
            close(&what("nll"), r.nll, want.nll, TOL);
            close(&what("log_loss"), r.nll, want.sklearn_log_loss, 1e-9);
            let counts: Vec<usize> = r.bins.iter().map(|b| b.count).collect();
            assert_eq!(counts, want.bin_counts, "{}", what("bin counts"));
        }
    }
}
