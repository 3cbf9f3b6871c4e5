//! Checks `compare::similarity` against NumPy / SciPy / scikit-image.
//!
//! The fixtures in `tests/fixtures/similarity/` are written by
//! `scripts/fixtures/gen_similarity.py` (regenerate with
//! `.venv/bin/python scripts/fixtures/gen_similarity.py`). Each holds a
//! pair of maps as integers over a power-of-two scale (exact in f32) and the
//! reference values: a number, `null` for NaN, or `"TooSmall"` for an
//! expected error. SSIM, Pearson, Spearman and cosine must agree to 1e-6
//! absolute; Jaccard and top-k must agree exactly (checked against the
//! integer counts the generator also writes).

use std::path::{Path, PathBuf};

use melxai::compare::similarity::*;
use serde_json::Value;

const TOL: f64 = 1e-6;

struct Fixture {
    name: String,
    height: usize,
    width: usize,
    a: Vec<f32>,
    b: Vec<f32>,
    k: usize,
    expected: Value,
    counts: Value,
}

impl Fixture {
    fn maps(&self) -> (Map<'_>, Map<'_>) {
        (
            Map::new(&self.a, self.height, self.width).expect("fixture a"),
            Map::new(&self.b, self.height, self.width).expect("fixture b"),
        )
    }
}

fn fixture_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/similarity")
}

fn decode(values: &Value, scale: f64) -> Vec<f32> {
    values
        .as_array()
        .expect("map array")
        .iter()
        // q / 2^k is exact in f64 and (|q| < 2^24) in f32.
        .map(|q| (q.as_i64().expect("integer") as f64 / scale) as f32)
        .collect()
}

fn load_all() -> Vec<Fixture> {
    let mut paths: Vec<PathBuf> = std::fs::read_dir(fixture_dir())
        .expect("fixture dir")
        .map(|e| e.expect("dir entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .collect();
    paths.sort();
    paths
        .iter()
        .map(|p| {
            let text = std::fs::read_to_string(p).expect("read fixture");
            let v: Value = serde_json::from_str(&text).expect("parse fixture");
            let scale = v["scale"].as_f64().expect("scale");
            Fixture {
                name: v["name"].as_str().expect("name").to_owned(),
                height: v["height"].as_u64().expect("height") as usize,
                width: v["width"].as_u64().expect("width") as usize,
                a: decode(&v["a"], scale),
                b: decode(&v["b"], scale),
                k: v["k"].as_u64().expect("k") as usize,
                expected: v["expected"].clone(),
                counts: v["counts"].clone(),
            }
        })
        .collect()
}

/// Compares a Rust result with a fixture entry (number / null / "TooSmall").
fn check(fx: &str, metric: &str, got: Result<f64, SimilarityError>, want: &Value, tol: f64) {
    match want {
        Value::Null => {
            let v = got.unwrap_or_else(|e| panic!("{fx}/{metric}: unexpected error {e}"));
            assert!(v.is_nan(), "{fx}/{metric}: expected NaN, got {v}");
        }
        Value::String(s) if s == "TooSmall" => {
            assert!(
                matches!(got, Err(SimilarityError::TooSmall { .. })),
                "{fx}/{metric}: expected TooSmall, got {got:?}"
            );
        }
        Value::Number(n) => {
            let want = n.as_f64().expect("f64");
            let v = got.unwrap_or_else(|e| panic!("{fx}/{metric}: unexpected error {e}"));
            if tol == 0.0 {
                assert_eq!(v, want, "{fx}/{metric}");
            } else {
                assert!(
                    (v - want).abs() <= tol,
                    "{fx}/{metric}: got {v}, want {want}, diff {:e}",
                    (v - want).abs()
                );
            }
        }
        other => panic!("{fx}/{metric}: bad expectation {other}"),
    }
}

/// Bit-exact check of a count ratio against the fixture's integer counts.
fn check_ratio(fx: &str, metric: &str, got: Result<f64, SimilarityError>, num: u64, den: u64) {
    let want = if den == 0 {
        1.0
    } else {
        num as f64 / den as f64
    };
    let v = got.unwrap_or_else(|e| panic!("{fx}/{metric}: unexpected error {e}"));
    assert_eq!(v, want, "{fx}/{metric}: got {v}, want {num}/{den}");
}

#[test]
fn fixtures_are_present() {
    let all = load_all();
    assert!(
        all.len() >= 10,
        "expected >= 10 fixtures, found {}",
        all.len()
    );
    for fx in &all {
        assert_eq!(fx.a.len(), fx.height * fx.width, "{}", fx.name);
    }
}

#[test]
fn ssim_uniform_matches_skimage() {
    for fx in load_all() {
        let (a, b) = fx.maps();
        let got = ssim(a, b, &SsimOptions::default());
        check(&fx.name, "ssim", got, &fx.expected["ssim"], TOL);
    }
}

#[test]
fn ssim_gaussian_matches_skimage() {
    for fx in load_all() {
        let (a, b) = fx.maps();
        let got = ssim(a, b, &SsimOptions::gaussian());
        check(
            &fx.name,
            "ssim_gaussian",
            got,
            &fx.expected["ssim_gaussian"],
            TOL,
        );
    }
}

#[test]
fn correlations_and_cosine_match_numpy_scipy() {
    for fx in load_all() {
        let (a, b) = fx.maps();
        check(
            &fx.name,
            "pearson",
            pearson(a, b),
            &fx.expected["pearson"],
            TOL,
        );
        check(
            &fx.name,
            "spearman",
            spearman(a, b),
            &fx.expected["spearman"],
            TOL,
        );
        check(
            &fx.name,
            "cosine",
            cosine(a, b),
            &fx.expected["cosine"],
            TOL,
        );
    }
}

#[test]
fn jaccard_matches_numpy_percentile_masks() {
    for fx in load_all() {
        let (a, b) = fx.maps();
        let table = fx.counts["jaccard"].as_object().expect("jaccard counts");
        assert!(!table.is_empty());
        for (q, counts) in table {
            let inter = counts[0].as_u64().expect("intersection");
            let union = counts[1].as_u64().expect("union");
            let q: f64 = q.parse().expect("percentile key");
            let metric = format!("jaccard@{q}");
            check_ratio(&fx.name, &metric, jaccard_top(a, b, q), inter, union);
        }
    }
}

#[test]
fn top_k_matches_stable_argsort() {
    for fx in load_all() {
        let (a, b) = fx.maps();
        let got = top_k_intersection(a, b, fx.k);
        let shared = fx.counts["topk_shared"].as_u64().expect("topk_shared");
        check_ratio(&fx.name, "topk", got, shared, fx.k as u64);
    }
}

#[test]
fn compare_maps_agrees_with_single_metrics() {
    for fx in load_all() {
        let (a, b) = fx.maps();
        let opts = CompareOptions {
            k: Some(fx.k),
            ..CompareOptions::default()
        };
        let rep = compare_maps(a, b, &opts).expect(&fx.name);
        let same = |x: f64, y: f64| (x.is_nan() && y.is_nan()) || x == y;
        assert!(same(rep.ssim, ssim(a, b, &SsimOptions::default()).unwrap()));
        assert!(same(rep.pearson, pearson(a, b).unwrap()));
        assert!(same(rep.spearman, spearman(a, b).unwrap()));
        assert!(same(rep.cosine, cosine(a, b).unwrap()));
        assert_eq!(rep.jaccard, jaccard_top(a, b, 90.0).unwrap());
        assert_eq!(
            rep.topk_intersection,
            top_k_intersection(a, b, fx.k).unwrap()
        );
        assert_eq!((rep.percentile, rep.k), (90.0, fx.k));

        // NaN fields become JSON null and come back as NaN.
        let json = serde_json::to_value(rep).expect("serialise");
        for field in [
            "ssim",
            "pearson",
            "spearman",
            "cosine",
            "jaccard",
            "topk_intersection",
        ] {
            let v: f64 = match field {
                "ssim" => rep.ssim,
                "pearson" => rep.pearson,
                "spearman" => rep.spearman,
                "cosine" => rep.cosine,
                "jaccard" => rep.jaccard,
                _ => rep.topk_intersection,
            };
            assert_eq!(json[field].is_null(), v.is_nan(), "{}/{field}", fx.name);
        }
        let back: SimilarityReport = serde_json::from_value(json).expect("deserialise");
        assert_eq!(back.pearson.is_nan(), rep.pearson.is_nan());
    }
}

#[test]
fn errors_on_mismatched_or_non_finite_fixture_maps() {
    let all = load_all();
    let (x, y) = (&all[0], &all[1]);
    assert_ne!((x.height, x.width), (y.height, y.width));
    let (xa, _) = x.maps();
    let (ya, _) = y.maps();
    assert_eq!(
        pearson(xa, ya),
        Err(SimilarityError::ShapeMismatch {
            a: (x.height, x.width),
            b: (y.height, y.width),
        })
    );
    let mut bad = x.b.clone();
    bad[7] = f32::NAN;
    let bad_map = Map::new(&bad, x.height, x.width).unwrap();
    let opts = CompareOptions::default();
    assert_eq!(
        compare_maps(xa, bad_map, &opts).unwrap_err(),
        SimilarityError::NonFinite {
            which: "b",
            index: 7
        }
    );
}
