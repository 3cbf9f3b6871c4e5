//! Attribution scores against Quantus 0.6.0 on committed fixtures
//! (`tests/fixtures/quantus/cases.json`, from
//! `scripts/fixtures/gen_quantus.py`): a linear model on 5 images of
//! 3×16×16, its grad × input attributions, lesion masks, and every random
//! draw Quantus made (subsets, noise, imputation noise, orders), replayed
//! here. Tolerances are per metric: exact for ranks, booleans and ROAD's
//! hits; relative 1e-5 where Quantus computes in float32 and melxai in
//! float64.
//!
//! Where melxai deliberately differs from Quantus the case is replayed in
//! Quantus's form and the difference is named: normalisation per map (Quantus:
//! per batch), ROAD on every channel (Quantus 0.6 only runs on one),
//! completeness against a whole baseline image (Quantus replaces channel 0
//! only) and input invariance shifting every feature (Quantus skips the
//! first).

use melxai::compare::scores::axiomatic::{all_close, completeness};
use melxai::compare::scores::complexity::{complexity, sparseness};
use melxai::compare::scores::localisation::{
    pointing_game, relevance_mass_accuracy, relevance_rank_accuracy, top_k_intersection,
};
use melxai::compare::scores::perturbation::{
    area_per_step, faithfulness_correlation, pixel_flipping,
};
use melxai::compare::scores::randomisation::{random_logit, ssim_flat};
use melxai::compare::scores::road::impute;
use melxai::compare::scores::robustness::{lipschitz_ratios, nan_max, nan_mean, sensitivity};
use melxai::compare::scores::{prepare, rows_of, Image};
use serde_json::Value;
use tch::{Kind, Tensor};

struct Shared {
    x: Vec<Vec<f32>>,
    w: Vec<f32>,
    b: Vec<f32>,
    y: Vec<usize>,
    a: Vec<Vec<f64>>,
    s: Vec<Vec<bool>>,
}

fn flat(v: &Value) -> Vec<f64> {
    match v {
        Value::Array(items) => items.iter().flat_map(flat).collect(),
        Value::Number(n) => vec![n.as_f64().unwrap()],
        Value::Bool(b) => vec![f64::from(u8::from(*b))],
        Value::Null => vec![f64::NAN],
        other => panic!("not numeric: {other}"),
    }
}

fn per_image(v: &Value) -> Vec<Vec<f64>> {
    v.as_array().unwrap().iter().map(flat).collect()
}

fn load() -> (Shared, Vec<Value>) {
    let text = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/quantus/cases.json"
    ))
    .unwrap();
    let all: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(all["quantus_version"], "0.6.0");
    let s = &all["shared"];
    let f32s = |v: &Value| flat(v).iter().map(|&x| x as f32).collect::<Vec<f32>>();
    let shared = Shared {
        x: per_image(&s["x"])
            .iter()
            .map(|r| r.iter().map(|&v| v as f32).collect())
            .collect(),
        w: f32s(&s["W"]),
        b: f32s(&s["b"]),
        y: flat(&s["y"]).iter().map(|&v| v as usize).collect(),
        // float32 values written as shortest round-trip decimals.
        a: per_image(&s["a"])
            .iter()
            .map(|r| r.iter().map(|&v| f64::from(v as f32)).collect())
            .collect(),
        s: per_image(&s["s"])
            .iter()
            .map(|r| r.iter().map(|&v| v != 0.0).collect())
            .collect(),
    };
    (shared, all["cases"].as_array().unwrap().clone())
}

fn image(x: &[f32], channels: usize) -> Image {
    Image {
        data: x.to_vec(),
        channels,
        height: 16,
        width: 16,
    }
}

/// logits = flatten(x) · Wᵀ + b (float32), softmax optional; `features`
/// columns of W (768, or 256 for the grey ROAD set-up).
fn linear(
    w: &[f32],
    b: &[f32],
    features: i64,
    softmax: bool,
) -> impl Fn(&Tensor) -> melxai::Result<Tensor> {
    let w = Tensor::from_slice(w).view([2, 768]).narrow(1, 0, features);
    let b = Tensor::from_slice(b);
    move |x: &Tensor| {
        let n = x.size()[0];
        let z = x.view([n, features]).matmul(&w.tr()) + &b;
        Ok(if softmax {
            z.softmax(-1, Kind::Float)
        } else {
            z
        })
    }
}

/// grad × input of the target's logit, summed over channels: (n, 256).
fn grad_x_input(w: &[f32]) -> impl Fn(&Tensor, &[i64]) -> melxai::Result<Tensor> {
    let w = Tensor::from_slice(w).view([2, 3, 16, 16]);
    move |x: &Tensor, t: &[i64]| {
        let wt = w.index_select(0, &Tensor::from_slice(t));
        Ok((wt * x.to_kind(Kind::Float))
            .sum_dim_intlist(1, false, Kind::Float)
            .view([x.size()[0], 256]))
    }
}

fn close(name: &str, got: f64, want: f64, rtol: f64, atol: f64) {
    if want.is_nan() {
        assert!(got.is_nan(), "{name}: {got} vs NaN");
        return;
    }
    assert!(
        (got - want).abs() <= atol + rtol * want.abs(),
        "{name}: {got} vs {want} (rtol {rtol}, atol {atol})"
    );
}

fn flag(c: &Value, key: &str) -> bool {
    c["args"][key].as_bool().unwrap_or(false)
}

/// Maps prepared as Quantus does (scale-free scores only: melxai
/// normalises per map, Quantus per batch).
fn prepared(sh: &Shared, c: &Value) -> Vec<Vec<f64>> {
    sh.a.iter()
        .map(|a| prepare(a, flag(c, "normalise"), flag(c, "abs")))
        .collect()
}

#[test]
fn complexity_and_localisation_equal_quantus() {
    let (sh, cases) = load();
    let mut seen = 0;
    for c in &cases {
        let metric = c["metric"].as_str().unwrap();
        let a = prepared(&sh, c);
        let got: Vec<f64> = match metric {
            "Sparseness" => a.iter().map(|a| sparseness(a)).collect(),
            "Complexity" => a.iter().map(|a| complexity(a)).collect(),
            "RelevanceMassAccuracy" => a
                .iter()
                .zip(&sh.s)
                .map(|(a, s)| relevance_mass_accuracy(a, s))
                .collect(),
            "RelevanceRankAccuracy" => a
                .iter()
                .zip(&sh.s)
                .map(|(a, s)| relevance_rank_accuracy(a, s))
                .collect(),
            "PointingGame" => a
                .iter()
                .zip(&sh.s)
                .map(|(a, s)| f64::from(u8::from(pointing_game(a, s))))
                .collect(),
            "TopKIntersection" => {
                let k = c["args"]["k"].as_u64().unwrap() as usize;
                let ci = flag(c, "concept_influence");
                a.iter()
                    .zip(&sh.s)
                    .map(|(a, s)| top_k_intersection(a, s, k, ci))
                    .collect()
            }
            _ => continue,
        };
        let want = flat(&c["scores"]);
        for (i, (g, w)) in got.iter().zip(&want).enumerate() {
            close(
                &format!("{metric} {} image {i}", c["args"]),
                *g,
                *w,
                1e-5,
                1e-9,
            );
        }
        seen += 1;
    }
    assert_eq!(seen, 14);
}

#[test]
fn faithfulness_scores_equal_quantus() {
    let (sh, cases) = load();
    let find = |m: &'static str| cases.iter().filter(move |c| c["metric"] == m);
    // Faithfulness correlation on logits with Quantus's recorded subsets.
    let first = find("FaithfulnessCorrelation").next().unwrap();
    let subsets = &first["draws"]["subsets"];
    for c in find("FaithfulnessCorrelation") {
        let model = linear(&sh.w, &sh.b, 768, false);
        let want = flat(&c["scores"]);
        for (i, x) in sh.x.iter().enumerate() {
            let chosen: Vec<Vec<usize>> = subsets
                .as_array()
                .unwrap()
                .iter()
                .map(|run| flat(&run[i]).iter().map(|&f| f as usize).collect())
                .collect();
            let a = prepare(&sh.a[i], flag(c, "normalise"), flag(c, "abs"));
            let got = faithfulness_correlation(&model, &image(x, 3), &a, sh.y[i], &chosen).unwrap();
            close(
                &format!("FaithfulnessCorrelation image {i}"),
                got,
                want[i],
                1e-5,
                1e-6,
            );
        }
    }
    // Pixel flipping on softmax with Quantus's (tie-arbitrary) feature order.
    let cases_pf: Vec<&Value> = find("PixelFlipping").collect();
    assert_eq!(cases_pf.len(), 3);
    let orders = &cases_pf[0]["draws"]["order"];
    let model = linear(&sh.w, &sh.b, 768, true);
    for (i, x) in sh.x.iter().enumerate() {
        let order: Vec<usize> = flat(&orders[i]).iter().map(|&f| f as usize).collect();
        let curve = pixel_flipping(&model, &image(x, 3), &order, 16, sh.y[i]).unwrap();
        assert_eq!(curve.len(), 48);
        for (t, (g, w)) in curve
            .iter()
            .zip(flat(&cases_pf[0]["scores"][i]))
            .enumerate()
        {
            close(
                &format!("PixelFlipping image {i} step {t}"),
                *g,
                w,
                1e-5,
                1e-6,
            );
        }
        let auc = flat(&cases_pf[1]["scores"])[i];
        close(
            &format!("PixelFlipping AUC image {i}"),
            area_per_step(&curve),
            auc,
            1e-5,
            1e-5,
        );
    }
}

#[test]
fn road_imputation_and_hits_equal_quantus() {
    let (sh, cases) = load();
    let c = cases.iter().find(|c| c["metric"] == "ROAD").unwrap();
    let setup = &c["extra"]["setup"];
    let y_grey: Vec<usize> = flat(&setup["y_grey"]).iter().map(|&v| v as usize).collect();
    let model = linear(&sh.w, &sh.b, 256, true);
    let per_image = per_image(&c["extra"]["per_image"]);
    let percentages = flat(&c["args"]["percentages"]);
    let calls = c["draws"]["calls"].as_array().unwrap();
    assert_eq!(calls.len(), 25);
    let mut max_diff = 0.0_f64;
    for call in calls {
        let i = call["image"].as_u64().unwrap() as usize;
        let pct = call["percentage"].as_f64().unwrap();
        let grey = image(&sh.x[i][..256], 1);
        let removed: Vec<usize> = flat(&call["indices"]).iter().map(|&v| v as usize).collect();
        assert_eq!(removed.len(), call["k"].as_u64().unwrap() as usize);
        // The removed pixels are the most relevant k (no ties in a).
        let order = melxai::compare::scores::descending(&sh.a[i]);
        assert_eq!(
            removed,
            melxai::compare::scores::road::removed_at(&order, pct / 100.0)
        );
        let randn: Vec<f64> = flat(&call["randn_k"]).iter().map(|k| k / 256.0).collect();
        let got = impute(&grey, &removed, &randn, 0.01, 1e-12);
        for (k, (&p, want)) in removed
            .iter()
            .zip(flat(&call["perturbed_values"]))
            .enumerate()
        {
            let diff = (f64::from(got[p]) - f64::from(want as f32)).abs();
            max_diff = max_diff.max(diff);
            assert!(
                diff <= 2e-7,
                "ROAD image {i} {pct}% pixel {k}: {} vs {want}",
                got[p]
            );
        }
        let out = rows_of(&model(&grey.batch(&[got])).unwrap()).unwrap();
        let hit = out[0][y_grey[i]] >= out[0][1 - y_grey[i]];
        let j = percentages.iter().position(|&q| q == pct).unwrap();
        assert_eq!(
            f64::from(u8::from(hit)),
            per_image[i][j],
            "ROAD hit image {i} {pct}%"
        );
    }
    assert!(max_diff < 2e-7, "{max_diff}");
}

#[test]
fn robustness_randomisation_and_axioms_equal_quantus() {
    let (sh, cases) = load();
    let find = |m: &str| cases.iter().find(|c| c["metric"] == m).unwrap();
    let explain = grad_x_input(&sh.w);
    let explained: Vec<Vec<f64>> =
        sh.x.iter()
            .zip(&sh.y)
            .map(|(x, &y)| {
                let t = explain(&image(x, 3).tensor(), &[y as i64]).unwrap();
                rows_of(&t).unwrap().remove(0)
            })
            .collect();
    // Sensitivity: uniform noise k/256, per sample ‖a − ã‖/‖a‖, max and mean.
    let max_case = find("MaxSensitivity");
    let noise_k = &max_case["draws"]["uniform_k"];
    for (name, reduce) in [
        ("MaxSensitivity", nan_max as fn(&[f64]) -> f64),
        ("AvgSensitivity", nan_mean),
    ] {
        let want = flat(&find(name)["scores"]);
        for (i, x) in sh.x.iter().enumerate() {
            let noises: Vec<Vec<f64>> = noise_k
                .as_array()
                .unwrap()
                .iter()
                .map(|sample| flat(&sample[i]).iter().map(|k| k / 256.0).collect())
                .collect();
            let per = sensitivity(&explain, &image(x, 3), &explained[i], sh.y[i], &noises).unwrap();
            close(
                &format!("{name} image {i}"),
                reduce(&per),
                want[i],
                1e-5,
                1e-7,
            );
        }
    }
    // Local Lipschitz: normal noise k/256, max of ‖a − ã‖/‖noise‖.
    let ll = find("LocalLipschitzEstimate");
    let want = flat(&ll["scores"]);
    for (i, x) in sh.x.iter().enumerate() {
        let noises: Vec<Vec<f64>> = ll["draws"]["normal_k"]
            .as_array()
            .unwrap()
            .iter()
            .map(|sample| flat(&sample[i]).iter().map(|k| k / 256.0).collect())
            .collect();
        let per =
            lipschitz_ratios(&explain, &image(x, 3), &explained[i], sh.y[i], &noises).unwrap();
        close(
            &format!("LocalLipschitzEstimate image {i}"),
            nan_max(&per),
            want[i],
            1e-5,
            1e-7,
        );
    }
    // Random logit: SSIM of the flattened maps for the recorded other class.
    let rl = find("RandomLogit");
    let want = flat(&rl["scores"]);
    let off = flat(&rl["draws"]["y_off"]);
    for (i, x) in sh.x.iter().enumerate() {
        let got = random_logit(&explain, &image(x, 3), &explained[i], off[i] as usize).unwrap();
        close(&format!("RandomLogit image {i}"), got, want[i], 1e-4, 1e-5);
    }
    assert!((ssim_flat(&explained[0], &explained[0]) - 1.0).abs() < 1e-12);
    // Completeness, replayed with Quantus's baseline (channel 0 only set to
    // the image's minimum): the sum and the output change as Quantus has them.
    let co = find("Completeness");
    let model = linear(&sh.w, &sh.b, 768, false);
    for (i, x) in sh.x.iter().enumerate() {
        let mut base = x.clone();
        let min = x.iter().copied().fold(f32::INFINITY, f32::min);
        base[..256].iter_mut().for_each(|v| *v = min);
        let got = completeness(
            &model,
            &image(x, 3),
            &image(&base, 3),
            &explained[i],
            sh.y[i],
        )
        .unwrap();
        close(
            "Completeness sum",
            got.attribution_sum,
            flat(&co["extra"]["attribution_sum"])[i],
            1e-5,
            1e-6,
        );
        close(
            "Completeness delta",
            got.output_delta,
            flat(&co["extra"]["output_delta"])[i],
            1e-6,
            1e-6,
        );
        assert_eq!(flat(&co["scores"])[i], 0.0);
        assert!(got.relative_gap > 0.01, "{got:?}");
    }
    // Input invariance, replayed with Quantus's shift (flat element 0 left
    // alone): grad × input moves, the plain gradient does not.
    let ii: Vec<&Value> = cases
        .iter()
        .filter(|c| c["metric"] == "InputInvariance")
        .collect();
    for (i, x) in sh.x.iter().enumerate() {
        let mut shifted = x.clone();
        shifted[1..].iter_mut().for_each(|v| *v -= 1.0);
        let t = explain(&image(&shifted, 3).tensor(), &[sh.y[i] as i64]).unwrap();
        let moved = rows_of(&t).unwrap().remove(0);
        let invariant = all_close(&explained[i], &moved, 1e-5, 1e-4);
        assert_eq!(f64::from(u8::from(invariant)), flat(&ii[0]["scores"])[i]);
        assert_eq!(flat(&ii[1]["scores"])[i], 1.0, "the gradient is shift-free");
    }

    // Model-parameter randomisation: Spearman between the map of the
    // trained and of the re-initialised linear layer (melxai's spearman).
    let mprt = find("MPRT");
    let random_w: Vec<f32> = flat(&mprt["draws"]["randomised_W"])
        .iter()
        .map(|&v| v as f32)
        .collect();
    let explain_random = grad_x_input(&random_w);
    let want = flat(&mprt["scores"]["conv"]);
    for (i, x) in sh.x.iter().enumerate() {
        let t = explain_random(&image(x, 3).tensor(), &[sh.y[i] as i64]).unwrap();
        let b: Vec<f32> = rows_of(&t).unwrap()[0].iter().map(|&v| v as f32).collect();
        let a: Vec<f32> = explained[i].iter().map(|&v| v as f32).collect();
        use melxai::compare::similarity::{spearman, Map};
        let got = spearman(Map::new(&a, 16, 16).unwrap(), Map::new(&b, 16, 16).unwrap()).unwrap();
        close(&format!("MPRT image {i}"), got, want[i], 1e-9, 1e-9);
    }
}
