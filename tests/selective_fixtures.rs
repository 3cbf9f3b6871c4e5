//! Checks `melxai::selective` (risk–coverage, AURC) and
//! `melxai::operating_point` (threshold for a target sensitivity) against
//! NumPy / scikit-learn fixtures written by `scripts/fixtures/gen_selective.py`.

use melxai::evaluate::operating_point::choose_threshold;
use melxai::evaluate::selective::risk_coverage;
use serde::Deserialize;

const TOL: f64 = 1e-12;

#[derive(Deserialize)]
struct RcFixture {
    cases: Vec<RcCase>,
}

#[derive(Deserialize)]
struct RcCase {
    name: String,
    confidence: Vec<f64>,
    correct: Vec<bool>,
    aurc: f64,
    optimal_aurc: f64,
    /// `[coverage, risk, threshold]` per distinct confidence, coverage rising.
    curve: Vec<[f64; 3]>,
}

#[derive(Deserialize)]
struct OpFixture {
    cases: Vec<OpCase>,
}

#[derive(Deserialize)]
struct OpCase {
    name: String,
    labels: Vec<usize>,
    scores: Vec<f64>,
    positive: usize,
    target: f64,
    expected: OpExpected,
}

#[derive(Deserialize)]
struct OpExpected {
    threshold: f64,
    sensitivity: f64,
    specificity: f64,
}

fn close(name: &str, what: &str, got: f64, want: f64) {
    assert!(
        (got - want).abs() <= TOL,
        "{name}: {what} = {got:.17}, reference {want:.17}"
    );
}

#[test]
fn risk_coverage_matches_the_numpy_reference() {
    let f: RcFixture =
        serde_json::from_str(include_str!("fixtures/selective/risk_coverage.json")).unwrap();
    assert!(f.cases.len() >= 5);
    for c in &f.cases {
        let rc = risk_coverage(&c.confidence, &c.correct).unwrap();
        close(&c.name, "aurc", rc.aurc, c.aurc);
        close(&c.name, "optimal_aurc", rc.optimal_aurc, c.optimal_aurc);
        close(
            &c.name,
            "excess_aurc",
            rc.excess_aurc,
            c.aurc - c.optimal_aurc,
        );
        assert_eq!(rc.curve.len(), c.curve.len(), "{}: curve length", c.name);
        for (p, [coverage, risk, threshold]) in rc.curve.iter().zip(&c.curve) {
            close(&c.name, "coverage", p.coverage, *coverage);
            close(&c.name, "risk", p.risk, *risk);
            close(&c.name, "threshold", p.threshold, *threshold);
        }
    }
}

#[test]
fn threshold_choice_matches_sklearn_roc_curve() {
    let f: OpFixture =
        serde_json::from_str(include_str!("fixtures/selective/operating_point.json")).unwrap();
    assert!(f.cases.len() >= 20);
    for c in &f.cases {
        let op = choose_threshold(&c.labels, &c.scores, c.positive, c.target).unwrap();
        close(&c.name, "threshold", op.threshold, c.expected.threshold);
        close(
            &c.name,
            "sensitivity",
            op.sensitivity,
            c.expected.sensitivity,
        );
        close(
            &c.name,
            "specificity",
            op.specificity,
            c.expected.specificity,
        );
        assert!(op.sensitivity >= c.target, "{}", c.name);
        assert_eq!(op.target_sensitivity, c.target);
    }
}
