//! The tch EfficientNet-Lite must reproduce the Python reference implementation
//! (efficientnet-lite-pytorch, eval mode) on the shipped ImageNet weights.
//! Fixtures: scripts/fixtures/gen_logits.py.

mod common;

use melxai::model::{Arch, Classifier};
use tch::{Device, Tensor};

fn check(arch: Arch, fixture: &str) {
    let text = std::fs::read_to_string(common::root().join("tests/fixtures").join(fixture))
        .expect("fixture");
    let json: serde_json::Value = serde_json::from_str(&text).expect("fixture json");
    let size = json["input_size"].as_u64().expect("input_size") as usize;
    let expected: Vec<f64> = json["logits"]
        .as_array()
        .expect("logits")
        .iter()
        .map(|v| v.as_f64().unwrap())
        .collect();
    assert_eq!(expected.len(), 1000);

    let model =
        Classifier::imagenet(arch, &common::weights_dir(), Device::Cpu).expect("load weights");
    let x = Tensor::from_slice(&common::pattern(size)).view([1, 3, size as i64, size as i64]);
    let got = &melxai::evaluate::predict::logits_of(&model, &x).expect("logits")[0];

    let range = expected.iter().cloned().fold(f64::MIN, f64::max)
        - expected.iter().cloned().fold(f64::MAX, f64::min);
    let max_abs = got
        .iter()
        .zip(&expected)
        .map(|(g, e)| (*g as f64 - e).abs())
        .fold(0.0, f64::max);
    assert!(
        max_abs / range <= 1e-4,
        "{arch}: max |diff| {max_abs:.3e} relative to logit range {range:.3} = {:.3e} > 1e-4",
        max_abs / range
    );
    // Same ranking of the top classes, not just close numbers.
    let argmax = |v: &[f64]| (0..v.len()).max_by(|&a, &b| v[a].total_cmp(&v[b])).unwrap();
    let got64: Vec<f64> = got.iter().map(|&v| v as f64).collect();
    assert_eq!(argmax(&got64), argmax(&expected));
}

#[test]
fn lite0_matches_reference_logits() {
    check(Arch::Lite0, "logits_lite0.json");
}

#[test]
fn lite1_matches_reference_logits() {
    check(Arch::Lite1, "logits_lite1.json");
}

#[test]
fn lite2_matches_reference_logits() {
    check(Arch::Lite2, "logits_lite2.json");
}
