//! Calibration statistics for small n and decision curves against the
//! fixtures of `scripts/fixtures/gen_decisions.py` (statsmodels GLMs, scipy,
//! netcal 1.4 ACE/ECE, numpy definitions cross-checked with the
//! `uncertainty-calibration` package and scikit-learn).

use melxai::calibrate::small_sample::{
    average_calibration_error, classwise_ece, debiased_ece, recalibration, spiegelhalter,
};
use melxai::evaluate::decision_curve::{decision_curve, net_benefit};
use serde_json::Value;

fn cases() -> Vec<Value> {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/decisions/cases.json"
    );
    let v: Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    v["cases"].as_array().unwrap().clone()
}

fn floats(v: &Value) -> Vec<f64> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_f64().unwrap())
        .collect()
}

fn labels(v: &Value) -> Vec<usize> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_u64().unwrap() as usize)
        .collect()
}

fn close(case: &str, what: &str, got: f64, want: f64, tol: f64) {
    assert!(
        (got - want).abs() <= tol * (1.0 + want.abs()),
        "{case}: {what} = {got}, reference {want}"
    );
}

#[test]
fn calibration_statistics_match_the_references() {
    for c in cases() {
        let name = c["name"].as_str().unwrap();
        let (p, y) = (floats(&c["p"]), labels(&c["y"]));
        let s = spiegelhalter(&p, &y).unwrap();
        close(
            name,
            "Spiegelhalter z",
            s.z,
            c["spiegelhalter"]["z"].as_f64().unwrap(),
            1e-10,
        );
        close(
            name,
            "Spiegelhalter p",
            s.p_value,
            c["spiegelhalter"]["p_value"].as_f64().unwrap(),
            1e-9,
        );
        let r = recalibration(&p, &y).unwrap();
        let f = |k: &str| c[k].as_f64().unwrap();
        close(name, "slope", r.slope, f("calibration_slope"), 1e-9);
        close(name, "slope se", r.slope_se, f("slope_se"), 1e-8);
        close(
            name,
            "intercept",
            r.intercept,
            f("calibration_intercept"),
            1e-9,
        );
        close(
            name,
            "intercept se",
            r.intercept_se,
            f("intercept_se"),
            1e-8,
        );
        let (sq, root) = debiased_ece(&p, &y, 15).unwrap();
        close(
            name,
            "debiased ECE squared",
            sq,
            f("debiased_l2_squared"),
            1e-12,
        );
        close(name, "debiased ECE", root, f("debiased_l2"), 1e-12);
        close(
            name,
            "class-wise ECE",
            classwise_ece(&p, &y, 15).unwrap(),
            f("classwise_ece"),
            1e-12,
        );
        let ace = average_calibration_error(&p, &y, 15).unwrap();
        close(name, "ACE (netcal)", ace, f("ace_netcal"), 1e-12);
    }
}

#[test]
fn net_benefit_matches_the_reference() {
    for c in cases() {
        let name = c["name"].as_str().unwrap();
        let (p, y, t) = (floats(&c["p"]), labels(&c["y"]), floats(&c["thresholds"]));
        let want = floats(&c["net_benefit"]["model"]);
        let want_all = floats(&c["net_benefit"]["treat_all"]);
        let got = net_benefit(&p, &y, &t).unwrap();
        let curve = decision_curve(&p, &y, &t, None).unwrap();
        for i in 0..t.len() {
            close(name, &format!("NB(t={})", t[i]), got[i], want[i], 1e-12);
            close(
                name,
                &format!("refer-all NB(t={})", t[i]),
                curve.points[i].treat_all,
                want_all[i],
                1e-12,
            );
        }
    }
}
