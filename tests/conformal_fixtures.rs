//! Conformal prediction sets against MAPIE 1.6.0 on committed fixtures
//! (`tests/fixtures/conformal/cases.json`, from
//! `scripts/fixtures/gen_conformal.py`): the conformity scores, the
//! finite-sample quantile(s), every test row's set (rows that sit within
//! ±2e-8 of a threshold included, so MAPIE's 1e-8 slack is checked), and
//! coverage and mean set size. LAC, APS and RAPS; split, class-conditional
//! (Mondrian) and cross-conformal (out-of-fold scores, mean of the fold
//! models at test time); MAPIE's three last-label rules.

use melxai::evaluate::conformal::summarise;
use melxai::verdict::conformal::{
    conformal_quantile, conformity_score, prediction_set, ConformalPredictor, ConformalSettings,
    LastLabel, ScoreName,
};
use serde_json::Value;

fn floats(v: &Value) -> Vec<f64> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_f64().unwrap())
        .collect()
}

fn rows(v: &Value) -> Vec<Vec<f64>> {
    v.as_array().unwrap().iter().map(floats).collect()
}

fn labels(v: &Value) -> Vec<usize> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_u64().unwrap() as usize)
        .collect()
}

fn cases() -> Vec<Value> {
    let text = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/conformal/cases.json"
    ))
    .unwrap();
    let all: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(all["mapie_version"], "1.6.0");
    all["cases"].as_array().unwrap().clone()
}

fn settings(c: &Value) -> ConformalSettings {
    let score = match c["score"].as_str().unwrap() {
        "lac" => ScoreName::Lac,
        "aps" => ScoreName::Aps,
        "raps" => ScoreName::Raps,
        other => panic!("unknown score {other}"),
    };
    ConformalSettings {
        alpha: c["alpha"].as_f64().unwrap(),
        score,
        class_conditional: c["kind"] == "class_conditional",
        k_reg: c["k_reg"].as_u64().unwrap_or(1) as usize,
        lambda: c["lambda"].as_f64().unwrap_or(0.0),
    }
}

#[test]
fn sets_coverage_and_sizes_equal_mapie() {
    let cases = cases();
    assert!(cases.len() >= 20, "{} cases", cases.len());
    let mut checked_rows = 0;
    for c in &cases {
        let name = c["name"].as_str().unwrap();
        let s = settings(c);
        let cal_p = rows(&c["cal_probs"]);
        let cal_y = labels(&c["cal_labels"]);
        let cal_u = if c["cal_u"].is_null() {
            vec![0.0; cal_p.len()]
        } else {
            floats(&c["cal_u"])
        };
        // Scores (RAPS: with the rank penalty, MAPIE's regularised ones).
        let want = if s.score == ScoreName::Raps {
            floats(&c["regularized_scores"])
        } else {
            floats(&c["conformity_scores"])
        };
        for (i, w) in want.iter().enumerate() {
            let got = conformity_score(&cal_p[i], cal_y[i], &s, cal_u[i]);
            assert!((got - w).abs() < 1e-12, "{name}: score {i}: {got} vs {w}");
        }
        // Quantile(s).
        let quantiles = floats(&c["quantiles"]);
        let predictor = ConformalPredictor::calibrate(&cal_p, &cal_y, s, &cal_u, 0).unwrap();
        assert_eq!(predictor.quantiles.len(), quantiles.len(), "{name}");
        for (got, w) in predictor.quantiles.iter().zip(&quantiles) {
            assert!((got - w).abs() < 1e-12, "{name}: quantile {got} vs {w}");
        }
        if !s.class_conditional {
            let scores: Vec<f64> = (0..cal_p.len())
                .map(|i| conformity_score(&cal_p[i], cal_y[i], &s, cal_u[i]))
                .collect();
            assert_eq!(conformal_quantile(&scores, s.alpha), predictor.quantiles[0]);
        }
        // Sets, row by row.
        let test_p = rows(&c["test_probs"]);
        let test_y = labels(&c["test_labels"]);
        let test_u = (!c["test_u"].is_null()).then(|| floats(&c["test_u"]));
        let want_sets: Vec<Vec<bool>> = c["sets"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| {
                r.as_array()
                    .unwrap()
                    .iter()
                    .map(|b| b.as_bool().unwrap())
                    .collect()
            })
            .collect();
        let mut sets = Vec::new();
        for (i, p) in test_p.iter().enumerate() {
            let last = match (&c["include_last_label"], &test_u) {
                (Value::Bool(true), _) => LastLabel::Include,
                (Value::Bool(false), _) => LastLabel::Exclude,
                (_, Some(u)) => LastLabel::Randomized(u[i]),
                (other, None) => panic!("{name}: include_last_label {other} without test_u"),
            };
            let got = if s.class_conditional {
                predictor.membership(p, last)
            } else {
                prediction_set(p, predictor.quantiles[0], &s, last)
            };
            assert_eq!(got, want_sets[i], "{name}: test row {i} ({p:?})");
            sets.push((0..got.len()).filter(|&k| got[k]).collect::<Vec<_>>());
            checked_rows += 1;
        }
        let summary = summarise(&sets, &test_y, c["n_classes"].as_u64().unwrap() as usize);
        let (cov, size) = (
            c["coverage"].as_f64().unwrap(),
            c["mean_set_size"].as_f64().unwrap(),
        );
        assert!((summary.coverage - cov).abs() < 1e-12, "{name}: coverage");
        assert!(
            (summary.mean_size - size).abs() < 1e-12,
            "{name}: mean size"
        );
    }
    assert!(checked_rows > 900, "{checked_rows} rows");
}

#[test]
fn every_score_kind_and_last_label_rule_is_covered() {
    let cases = cases();
    let has = |kind: &str, score: &str| {
        cases
            .iter()
            .any(|c| c["kind"] == kind && c["score"] == score)
    };
    for (kind, score) in [
        ("split", "lac"),
        ("split", "aps"),
        ("split", "raps"),
        ("class_conditional", "lac"),
        ("class_conditional", "aps"),
        ("cross", "lac"),
        ("cross", "aps"),
    ] {
        assert!(has(kind, score), "{kind} {score}");
    }
    for rule in [
        Value::Bool(true),
        Value::Bool(false),
        Value::from("randomized"),
    ] {
        assert!(
            cases.iter().any(|c| c["include_last_label"] == rule),
            "{rule}"
        );
    }
}
