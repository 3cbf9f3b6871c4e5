//! Foreign EfficientNet checkpoint layouts (torchvision, timm, Hugging Face
//! transformers) must load exactly into the native model, each tensor landing on
//! the right native variable. Fixtures (names and shapes of the real libraries'
//! state_dicts): scripts/fixtures/gen_layouts.py.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use melxai::model::weights::{self, Layout, LoadError};
use melxai::model::{Arch, Classifier, EfficientNetConfig};
use tch::{Device, Kind, Tensor};

struct Fixture {
    library: String,
    model: String,
    tensors: Vec<(String, Vec<i64>)>,
}

fn fixture(file: &str) -> Fixture {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/layouts")
        .join(file);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let json: serde_json::Value = serde_json::from_str(&text).expect("fixture json");
    assert_eq!(json["num_classes"], 1000);
    let tensors = json["tensors"]
        .as_array()
        .expect("tensors")
        .iter()
        .map(|t| {
            let name = t[0].as_str().expect("name").to_string();
            let shape = t[1]
                .as_array()
                .expect("shape")
                .iter()
                .map(|d| d.as_i64().expect("dim"))
                .collect();
            (name, shape)
        })
        .collect();
    Fixture {
        library: json["library"].as_str().expect("library").into(),
        model: json["model"].as_str().expect("model").into(),
        tensors,
    }
}

/// FNV-1a of the name: a per-tensor value that identifies where a tensor came from.
fn name_hash(name: &str) -> u64 {
    name.bytes().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ b as u64).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

/// Deterministic contents: an offset in [1, 2) from the name's hash plus a small
/// per-element ramp. `num_batches_tracked` counters are int64 as in PyTorch.
fn make_tensor(name: &str, shape: &[i64]) -> Tensor {
    let h = name_hash(name);
    if name.ends_with("num_batches_tracked") {
        return Tensor::from((h % 100_000) as i64).reshape(shape);
    }
    let offset = 1.0 + (h >> 40) as f64 / (1u64 << 24) as f64;
    let numel: i64 = shape.iter().product();
    let ramp = Tensor::arange(numel, (Kind::Float, Device::Cpu)).remainder(97) * 1e-3;
    (ramp + offset).reshape(shape)
}

fn write_checkpoint(
    dir: &Path,
    tensors: &[(String, Vec<i64>)],
) -> (PathBuf, HashMap<String, Tensor>) {
    let made: Vec<(String, Tensor)> = tensors
        .iter()
        .map(|(n, s)| (n.clone(), make_tensor(n, s)))
        .collect();
    let path = dir.join("checkpoint.safetensors");
    Tensor::write_safetensors(&made, &path).expect("write safetensors");
    (path, made.into_iter().collect())
}

fn native(arch: Arch) -> Classifier {
    let names = (0..1000).map(|i| format!("class_{i}")).collect();
    Classifier::new(
        "layout-test",
        EfficientNetConfig::new(arch, 1000),
        names,
        Device::Cpu,
    )
}

/// Loads the fixture's checkpoint into a fresh `arch` model and checks the report,
/// the detected layout and every (foreign, native) pair of `pairs`.
fn check(file: &str, arch: Arch, layout: Layout, prefix: &str, pairs: &[(&str, &str)]) {
    let fx = fixture(file);
    let tensors: Vec<(String, Vec<i64>)> = fx
        .tensors
        .iter()
        .map(|(n, s)| (format!("{prefix}{n}"), s.clone()))
        .collect();
    let dir = tempfile::tempdir().expect("tempdir");
    let (path, written) = write_checkpoint(dir.path(), &tensors);
    let c = native(arch);
    let report = weights::load_into(&c.vs, &path, |r| r.is_exact()).unwrap_or_else(|e| {
        panic!(
            "{} {} ({file}) does not load exactly:\n{e}",
            fx.library, fx.model
        )
    });
    assert!(report.is_exact());
    assert_eq!(report.layout, Some(layout), "{file}: detected layout");
    assert_eq!(
        report.loaded,
        c.vs.variables().len(),
        "{file}: every native variable loaded"
    );
    let vars = c.vs.variables();
    for (foreign, native_name) in pairs {
        let src = written
            .get(&format!("{prefix}{foreign}"))
            .unwrap_or_else(|| {
                panic!("{file}: pair names a tensor the library does not have: {foreign}")
            });
        let var = vars
            .get(*native_name)
            .unwrap_or_else(|| panic!("no native variable {native_name}"));
        assert_eq!(var.size(), src.size(), "{foreign} -> {native_name}: shape");
        assert!(
            var.equal(src),
            "{file}: native {native_name} does not hold the tensor written as {foreign}"
        );
    }
}

// torchvision efficientnet_b0: features.0 stem, features.1..=7 stages of MBConv
// whose `block` is Sequential[Conv2dNormActivation (expand, only when ratio != 1),
// Conv2dNormActivation (depthwise), SqueezeExcitation (fc1, fc2), Conv2dNormActivation
// (project)], features.8 head, classifier = [Dropout, Linear].
const TORCHVISION_B0: &[(&str, &str)] = &[
    ("features.0.0.weight", "_conv_stem.weight"),
    ("features.0.1.running_mean", "_bn0.running_mean"),
    (
        "features.1.0.block.0.0.weight",
        "_blocks.0._depthwise_conv.weight",
    ),
    // Stage 1 has no expansion: its first BN is the depthwise BN.
    ("features.1.0.block.0.1.weight", "_blocks.0._bn1.weight"),
    (
        "features.1.0.block.1.fc1.weight",
        "_blocks.0._se_reduce.weight",
    ),
    ("features.1.0.block.2.1.bias", "_blocks.0._bn2.bias"),
    // Expand BN and depthwise BN: same shape [96].
    ("features.2.0.block.0.1.weight", "_blocks.1._bn0.weight"),
    ("features.2.0.block.1.1.weight", "_blocks.1._bn1.weight"),
    (
        "features.2.0.block.1.1.running_var",
        "_blocks.1._bn1.running_var",
    ),
    // SE reduce vs expand (biases differ in shape, weights are transposed shapes).
    ("features.2.1.block.2.fc1.bias", "_blocks.2._se_reduce.bias"),
    (
        "features.2.1.block.2.fc2.weight",
        "_blocks.2._se_expand.weight",
    ),
    (
        "features.4.2.block.3.0.weight",
        "_blocks.7._project_conv.weight",
    ),
    // Blocks 13 and 14 are shaped alike: the flat index must follow (stage, repeat).
    (
        "features.6.2.block.1.0.weight",
        "_blocks.13._depthwise_conv.weight",
    ),
    (
        "features.6.3.block.1.0.weight",
        "_blocks.14._depthwise_conv.weight",
    ),
    (
        "features.7.0.block.0.0.weight",
        "_blocks.15._expand_conv.weight",
    ),
    ("features.8.0.weight", "_conv_head.weight"),
    ("features.8.1.running_var", "_bn1.running_var"),
    ("classifier.1.weight", "_fc.weight"),
    ("classifier.1.bias", "_fc.bias"),
];

// timm efficientnet_b0: DepthwiseSeparableConv first block (conv_dw, bn1, se,
// conv_pw, bn2), InvertedResidual elsewhere (conv_pw, bn1, conv_dw, bn2, se,
// conv_pwl, bn3); stem bn1, head conv_head + bn2.
const TIMM_B0: &[(&str, &str)] = &[
    ("conv_stem.weight", "_conv_stem.weight"),
    ("bn1.weight", "_bn0.weight"),
    (
        "blocks.0.0.conv_dw.weight",
        "_blocks.0._depthwise_conv.weight",
    ),
    ("blocks.0.0.bn1.running_mean", "_blocks.0._bn1.running_mean"),
    (
        "blocks.0.0.se.conv_reduce.weight",
        "_blocks.0._se_reduce.weight",
    ),
    (
        "blocks.0.0.conv_pw.weight",
        "_blocks.0._project_conv.weight",
    ),
    ("blocks.0.0.bn2.bias", "_blocks.0._bn2.bias"),
    ("blocks.1.0.conv_pw.weight", "_blocks.1._expand_conv.weight"),
    // Expand BN (bn1) and depthwise BN (bn2): same shape [96].
    ("blocks.1.0.bn1.weight", "_blocks.1._bn0.weight"),
    ("blocks.1.0.bn2.weight", "_blocks.1._bn1.weight"),
    ("blocks.1.0.bn2.running_var", "_blocks.1._bn1.running_var"),
    ("blocks.1.0.bn3.weight", "_blocks.1._bn2.weight"),
    (
        "blocks.2.1.se.conv_reduce.bias",
        "_blocks.4._se_reduce.bias",
    ),
    (
        "blocks.2.1.se.conv_expand.weight",
        "_blocks.4._se_expand.weight",
    ),
    (
        "blocks.2.1.se.conv_expand.bias",
        "_blocks.4._se_expand.bias",
    ),
    (
        "blocks.5.2.conv_pwl.weight",
        "_blocks.13._project_conv.weight",
    ),
    (
        "blocks.5.3.conv_dw.weight",
        "_blocks.14._depthwise_conv.weight",
    ),
    ("conv_head.weight", "_conv_head.weight"),
    ("bn2.running_var", "_bn1.running_var"),
    ("classifier.bias", "_fc.bias"),
];

// timm tf_efficientnet_lite0: as timm B0 without SE and with ReLU6.
const TIMM_LITE0: &[(&str, &str)] = &[
    ("conv_stem.weight", "_conv_stem.weight"),
    ("bn1.running_mean", "_bn0.running_mean"),
    (
        "blocks.0.0.conv_dw.weight",
        "_blocks.0._depthwise_conv.weight",
    ),
    ("blocks.0.0.bn1.weight", "_blocks.0._bn1.weight"),
    (
        "blocks.0.0.conv_pw.weight",
        "_blocks.0._project_conv.weight",
    ),
    ("blocks.0.0.bn2.running_var", "_blocks.0._bn2.running_var"),
    ("blocks.1.0.bn1.bias", "_blocks.1._bn0.bias"),
    ("blocks.1.0.bn2.bias", "_blocks.1._bn1.bias"),
    (
        "blocks.3.2.conv_pwl.weight",
        "_blocks.7._project_conv.weight",
    ),
    ("blocks.5.3.bn2.weight", "_blocks.14._bn1.weight"),
    ("blocks.5.2.bn2.weight", "_blocks.13._bn1.weight"),
    (
        "blocks.6.0.conv_pw.weight",
        "_blocks.15._expand_conv.weight",
    ),
    ("conv_head.weight", "_conv_head.weight"),
    ("bn2.weight", "_bn1.weight"),
    ("classifier.weight", "_fc.weight"),
];

// transformers EfficientNetForImageClassification (B0 config): flat block list,
// each block expansion (expand_conv, expand_bn; absent when ratio 1),
// depthwise_conv (depthwise_conv, depthwise_norm), squeeze_excite (reduce, expand),
// projection (project_conv, project_bn).
const TRANSFORMERS_B0: &[(&str, &str)] = &[
    (
        "efficientnet.embeddings.convolution.weight",
        "_conv_stem.weight",
    ),
    (
        "efficientnet.embeddings.batchnorm.running_var",
        "_bn0.running_var",
    ),
    (
        "efficientnet.encoder.blocks.0.depthwise_conv.depthwise_conv.weight",
        "_blocks.0._depthwise_conv.weight",
    ),
    (
        "efficientnet.encoder.blocks.0.depthwise_conv.depthwise_norm.weight",
        "_blocks.0._bn1.weight",
    ),
    (
        "efficientnet.encoder.blocks.0.projection.project_bn.weight",
        "_blocks.0._bn2.weight",
    ),
    (
        "efficientnet.encoder.blocks.1.expansion.expand_conv.weight",
        "_blocks.1._expand_conv.weight",
    ),
    // Expand BN and depthwise BN: same shape [96].
    (
        "efficientnet.encoder.blocks.1.expansion.expand_bn.weight",
        "_blocks.1._bn0.weight",
    ),
    (
        "efficientnet.encoder.blocks.1.depthwise_conv.depthwise_norm.weight",
        "_blocks.1._bn1.weight",
    ),
    (
        "efficientnet.encoder.blocks.1.depthwise_conv.depthwise_norm.running_mean",
        "_blocks.1._bn1.running_mean",
    ),
    (
        "efficientnet.encoder.blocks.4.squeeze_excite.reduce.weight",
        "_blocks.4._se_reduce.weight",
    ),
    (
        "efficientnet.encoder.blocks.4.squeeze_excite.expand.bias",
        "_blocks.4._se_expand.bias",
    ),
    (
        "efficientnet.encoder.blocks.13.projection.project_conv.weight",
        "_blocks.13._project_conv.weight",
    ),
    (
        "efficientnet.encoder.blocks.14.depthwise_conv.depthwise_conv.weight",
        "_blocks.14._depthwise_conv.weight",
    ),
    ("efficientnet.encoder.top_conv.weight", "_conv_head.weight"),
    (
        "efficientnet.encoder.top_bn.running_mean",
        "_bn1.running_mean",
    ),
    ("classifier.weight", "_fc.weight"),
    ("classifier.bias", "_fc.bias"),
];

#[test]
fn torchvision_b0_loads_exactly() {
    check(
        "torchvision_efficientnet_b0.json",
        Arch::B0,
        Layout::Torchvision,
        "",
        TORCHVISION_B0,
    );
}

#[test]
fn timm_b0_loads_exactly() {
    check(
        "timm_efficientnet_b0.json",
        Arch::B0,
        Layout::Timm,
        "",
        TIMM_B0,
    );
}

#[test]
fn timm_lite0_loads_exactly() {
    check(
        "timm_tf_efficientnet_lite0.json",
        Arch::Lite0,
        Layout::Timm,
        "",
        TIMM_LITE0,
    );
}

#[test]
fn transformers_b0_loads_exactly() {
    check(
        "transformers_efficientnet_b0.json",
        Arch::B0,
        Layout::HuggingFace,
        "",
        TRANSFORMERS_B0,
    );
}

#[test]
fn wrapper_prefixes_are_stripped() {
    check(
        "torchvision_efficientnet_b0.json",
        Arch::B0,
        Layout::Torchvision,
        "module.",
        TORCHVISION_B0,
    );
    check(
        "timm_efficientnet_b0.json",
        Arch::B0,
        Layout::Timm,
        "module.",
        TIMM_B0,
    );
    check(
        "transformers_efficientnet_b0.json",
        Arch::B0,
        Layout::HuggingFace,
        "_orig_mod.",
        TRANSFORMERS_B0,
    );
    // torch.compile over DDP, and DDP over torch.compile.
    check(
        "timm_tf_efficientnet_lite0.json",
        Arch::Lite0,
        Layout::Timm,
        "_orig_mod.module.",
        TIMM_LITE0,
    );
    check(
        "timm_tf_efficientnet_lite0.json",
        Arch::Lite0,
        Layout::Timm,
        "module._orig_mod.",
        TIMM_LITE0,
    );
}

/// Loads `file` without the tensors `drop` into `arch` and returns the refusal's report.
fn refused_without(file: &str, arch: Arch, drop: &[&str]) -> weights::LoadReport {
    let fx = fixture(file);
    let tensors: Vec<(String, Vec<i64>)> = fx
        .tensors
        .into_iter()
        .filter(|(n, _)| !drop.contains(&n.as_str()))
        .collect();
    let dir = tempfile::tempdir().expect("tempdir");
    let (path, _) = write_checkpoint(dir.path(), &tensors);
    match weights::load_into(&native(arch).vs, &path, |r| r.is_exact()) {
        Err(LoadError::WeightsMismatch { report, .. }) => report,
        other => panic!("{file} without {drop:?}: expected WeightsMismatch, got {other:?}"),
    }
}

#[test]
fn partial_torchvision_checkpoint_reports_only_what_is_missing() {
    // The expand conv of one block (its BN stays) and a whole depthwise-separable
    // block's convs: neither may shift the remaining tensors onto other roles.
    let report = refused_without(
        "torchvision_efficientnet_b0.json",
        Arch::B0,
        &[
            "features.2.0.block.0.0.weight",
            "features.1.0.block.0.0.weight",
            "features.1.0.block.2.0.weight",
        ],
    );
    assert_eq!(report.layout, Some(Layout::Torchvision));
    assert_eq!(
        report.missing,
        vec![
            "_blocks.0._depthwise_conv.weight".to_string(),
            "_blocks.0._project_conv.weight".to_string(),
            "_blocks.1._expand_conv.weight".to_string(),
        ]
    );
    assert!(report.unexpected.is_empty(), "{report}");
    assert!(report.mismatched.is_empty(), "{report}");

    // Without the stem the layout is still recognised.
    let report = refused_without(
        "torchvision_efficientnet_b0.json",
        Arch::B0,
        &["features.0.0.weight"],
    );
    assert_eq!(report.layout, Some(Layout::Torchvision));
    assert_eq!(report.missing, vec!["_conv_stem.weight".to_string()]);
    assert!(
        report.unexpected.is_empty() && report.mismatched.is_empty(),
        "{report}"
    );
}

#[test]
fn partial_timm_checkpoint_reports_only_what_is_missing() {
    // Without its projection conv an inverted-residual block is still one.
    let report = refused_without(
        "timm_efficientnet_b0.json",
        Arch::B0,
        &["blocks.1.0.conv_pwl.weight"],
    );
    assert_eq!(report.layout, Some(Layout::Timm));
    assert_eq!(
        report.missing,
        vec!["_blocks.1._project_conv.weight".to_string()]
    );
    assert!(
        report.unexpected.is_empty() && report.mismatched.is_empty(),
        "{report}"
    );
}

#[test]
fn native_layout_round_trips() {
    let src = native(Arch::Lite0);
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("native.safetensors");
    src.vs.save(&path).expect("save");
    let dst = native(Arch::Lite0);
    let report = weights::load_into(&dst.vs, &path, |r| r.is_exact()).expect("exact load");
    assert_eq!(report.layout, Some(Layout::EfficientNetPytorch));
    let (a, b) = (src.vs.variables(), dst.vs.variables());
    for (name, t) in &a {
        assert!(t.equal(&b[name]), "{name} differs after the round trip");
    }
}

#[test]
fn mismatched_checkpoint_is_refused_and_leaves_the_model_unchanged() {
    let fx = fixture("timm_efficientnet_b0.json");
    let mut tensors: Vec<(String, Vec<i64>)> = fx
        .tensors
        .into_iter()
        .filter(|(n, _)| n != "blocks.1.0.bn2.running_var")
        .collect();
    tensors.push(("head.extra.weight".into(), vec![7, 3]));
    for (n, s) in tensors.iter_mut() {
        if n == "classifier.weight" {
            *s = vec![10, 1280];
        }
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let (path, _) = write_checkpoint(dir.path(), &tensors);
    let c = native(Arch::B0);
    let before: HashMap<String, Tensor> =
        c.vs.variables()
            .into_iter()
            .map(|(n, t)| (n, t.copy()))
            .collect();
    match weights::load_into(&c.vs, &path, |r| r.is_exact()) {
        Err(LoadError::WeightsMismatch { report, .. }) => {
            assert_eq!(report.layout, Some(Layout::Timm));
            assert_eq!(
                report.missing,
                vec!["_blocks.1._bn1.running_var".to_string()]
            );
            assert_eq!(report.unexpected, vec!["head.extra.weight".to_string()]);
            assert_eq!(
                report.mismatched,
                vec![("_fc.weight".to_string(), vec![1000, 1280], vec![10, 1280])]
            );
        }
        other => panic!("expected WeightsMismatch, got {other:?}"),
    }
    let after = c.vs.variables();
    assert_eq!(after.len(), before.len());
    for (name, t) in &before {
        assert!(
            t.equal(&after[name]),
            "{name} changed although the load was refused"
        );
    }
}
