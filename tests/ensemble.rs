//! Ensemble checkpoints on tiny randomly initialised Lite0 members (32 px):
//! save, load and combine; refusing a mismatched, changed or missing member;
//! TTA invariance; the split an ensemble evaluates on; explanations of the
//! combined output; and `predict --json` with an ensemble and an operating
//! point through the real binary.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use melxai::ensemble::manifest::CombineRule::{MeanLogits, MeanProbabilities};
use melxai::ensemble::manifest::{self, ensemble_path};
use melxai::ensemble::model::ensemble_split;
use melxai::ensemble::{write_ensemble, Model};
use melxai::model::checkpoint::{self, SplitRecord};
use melxai::model::{Classifier, EfficientNetConfig};
use melxai::verdict::OperatingPoint;
use tch::{Device, Kind, Tensor};

const SIDE: i64 = 32;

/// libtorch's generator is process-global; tests that seed it take turns.
static TORCH_RNG: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn classes() -> Vec<String> {
    vec!["melanoma".into(), "naevus".into()]
}

/// Saves a randomly initialised member `name` (seeded) in `dir`; returns its stem.
fn member(
    dir: &Path,
    name: &str,
    seed: i64,
    config: EfficientNetConfig,
    classes: Vec<String>,
) -> PathBuf {
    tch::manual_seed(seed);
    let mut c = Classifier::new(name, config, classes, Device::Cpu);
    c.meta.input_size = [SIDE, SIDE];
    let stem = dir.join(name);
    c.save(&stem).unwrap();
    stem
}

/// Three members with the ImageNet backbone (so their outputs follow the
/// input) and different random heads scaled up (so their logits are far from
/// zero and far apart: near-uniform outputs make the two combine rules
/// nearly coincide).
fn three_loud_members(dir: &Path) -> Vec<PathBuf> {
    let weights = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("weights");
    (0..3)
        .map(|i| {
            tch::manual_seed(20 + i);
            let name = format!("loud{i}");
            let (mut c, _) = Classifier::for_finetuning(
                &name,
                melxai::model::Arch::Lite0,
                classes(),
                &weights,
                Device::Cpu,
            )
            .expect("ImageNet weights: run `make setup`");
            c.meta.input_size = [SIDE, SIDE];
            tch::no_grad(|| {
                for (name, mut t) in c.vs.variables() {
                    if name.starts_with("_fc.") {
                        let _ = t.f_mul_scalar_(8.0).unwrap();
                    }
                }
            });
            let stem = dir.join(&name);
            c.save(&stem).unwrap();
            stem
        })
        .collect()
}

fn three_members(dir: &Path) -> Vec<PathBuf> {
    (0..3)
        .map(|i| {
            member(
                dir,
                &format!("m{i}"),
                10 + i,
                EfficientNetConfig::lite0(2),
                classes(),
            )
        })
        .collect()
}

/// A fixed, orientation-dependent input `(1, 3, SIDE, SIDE)`.
fn input() -> Tensor {
    tch::manual_seed(99);
    let ramp = Tensor::arange(SIDE, (Kind::Float, Device::Cpu)).view([1, 1, 1, SIDE]) / SIDE as f64;
    Tensor::randn([1, 3, SIDE, SIDE], (Kind::Float, Device::Cpu)) * 0.3 + ramp * 2.0
}

fn max_abs(a: &Tensor, b: &Tensor) -> f64 {
    (a - b).abs().max().double_value(&[])
}

#[test]
fn an_ensemble_saves_loads_and_averages_member_logits() {
    let _turn = TORCH_RNG.lock().unwrap_or_else(|e| e.into_inner());
    let dir = tempfile::tempdir().unwrap();
    let stems = three_members(dir.path());
    let path = write_ensemble(dir.path(), "e", &stems, MeanLogits, 1.3, "test").unwrap();
    assert_eq!(path, ensemble_path(dir.path(), "e"));
    let m = Model::load(&path, Device::Cpu).unwrap();
    assert!(m.is_ensemble() && m.single().is_none());
    assert_eq!(m.members().len(), 3);
    assert_eq!(m.meta.name, "e");
    assert_eq!(m.meta.temperature, 1.3);
    assert_eq!(m.meta.input_size, [SIDE, SIDE]);
    let x = input();
    let singles: Vec<Tensor> = stems
        .iter()
        .map(|s| {
            Classifier::from_checkpoint(s, Device::Cpu)
                .unwrap()
                .logits(&x)
        })
        .collect();
    let mean = Tensor::stack(&singles, 0).mean_dim(0, false, None);
    let (combined, members) = m.logits_with_members(&x);
    assert_eq!(members.len(), 3);
    assert!(max_abs(&combined, &mean) < 1e-5);
    // The members differ, so the mean is not just one of them.
    assert!(max_abs(&singles[0], &singles[1]) > 1e-4);
    let p = m.probabilities(&x, true);
    let want = (&mean / 1.3).softmax(-1, Kind::Float);
    assert!(max_abs(&p, &want) < 1e-5);
    // A plain checkpoint loads through the same door as one member.
    let one = Model::load(&stems[0], Device::Cpu).unwrap();
    assert!(!one.is_ensemble() && one.single().is_some());
    assert!(max_abs(&one.logits(&x), &singles[0]) < 1e-6);
    // The manifest round-trips, operating point included.
    let mut text = manifest::read(&path).unwrap();
    text.operating_point = Some(OperatingPoint {
        threshold: 0.25,
        target_sensitivity: 0.95,
        sensitivity: 0.96,
        specificity: 0.55,
        sensitivity_ci: Some([0.9, 1.0]),
        specificity_ci: Some([0.45, 0.65]),
    });
    manifest::write(&path, &text).unwrap();
    let again = Model::load(&path, Device::Cpu).unwrap();
    assert_eq!(again.operating_point().map(|o| o.threshold), Some(0.25));
}

#[test]
fn mismatched_changed_or_missing_members_are_refused_by_name() {
    let _turn = TORCH_RNG.lock().unwrap_or_else(|e| e.into_inner());
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let mut stems = three_members(d);

    // Building: another architecture, or another class order.
    let b0 = member(d, "wide", 5, EfficientNetConfig::b0(2), classes());
    let e = write_ensemble(d, "bad", &[stems[0].clone(), b0], MeanLogits, 1.0, "")
        .unwrap_err()
        .to_string();
    assert!(e.contains("'wide'") && e.contains("arch"), "{e}");
    let swapped = member(
        d,
        "swapped",
        6,
        EfficientNetConfig::lite0(2),
        vec!["naevus".into(), "melanoma".into()],
    );
    let e = write_ensemble(d, "bad", &[stems[0].clone(), swapped], MeanLogits, 1.0, "")
        .unwrap_err()
        .to_string();
    assert!(e.contains("'swapped'") && e.contains("class_names"), "{e}");

    // Loading: a member whose metadata changed class order after the fact.
    let path = write_ensemble(d, "e", &stems, MeanLogits, 1.0, "").unwrap();
    Model::load(&path, Device::Cpu).unwrap();
    let mut meta = checkpoint::read_meta(&stems[1]).unwrap();
    let original = meta.clone();
    meta.class_names.reverse();
    checkpoint::write_meta(&stems[1], &meta).unwrap();
    let e = Model::load(&path, Device::Cpu).unwrap_err().to_string();
    assert!(e.contains("'m1'") && e.contains("class_names"), "{e}");
    checkpoint::write_meta(&stems[1], &original).unwrap();
    Model::load(&path, Device::Cpu).unwrap();

    // A member retrained (replaced) under the same name.
    member(d, "m2", 77, EfficientNetConfig::lite0(2), classes());
    let e = Model::load(&path, Device::Cpu).unwrap_err().to_string();
    assert!(e.contains("'m2'") && e.contains("changed"), "{e}");
    let e = melxai::ensemble::read_meta(&path).unwrap_err().to_string();
    assert!(e.contains("'m2'"), "{e}");

    // A member deleted.
    stems.truncate(2);
    let path = write_ensemble(d, "e2", &stems, MeanLogits, 1.0, "").unwrap();
    std::fs::remove_file(checkpoint::tensors_path(&stems[0])).unwrap();
    let e = Model::load(&path, Device::Cpu).unwrap_err().to_string();
    assert!(e.contains("'m0'") && e.contains("missing"), "{e}");

    // A hand-edited manifest with an unknown key.
    let text = std::fs::read_to_string(&path)
        .unwrap()
        .replace("temperature =", "temprature =");
    std::fs::write(&path, text).unwrap();
    let e = Model::load(&path, Device::Cpu).unwrap_err().to_string();
    assert!(e.contains("temprature"), "{e}");
}

/// The shipped ImageNet Lite0 (random 32 px members barely see orientation).
fn imagenet() -> Classifier {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("weights");
    Classifier::imagenet(melxai::model::Arch::Lite0, &dir, Device::Cpu)
        .expect("ImageNet weights: run `make setup`")
}

#[test]
fn tta_output_is_invariant_to_flips_and_quarter_turns() {
    let _turn = TORCH_RNG.lock().unwrap_or_else(|e| e.into_inner());
    let dir = tempfile::tempdir().unwrap();
    let stems = three_members(dir.path());
    let path = write_ensemble(dir.path(), "e", &stems, MeanProbabilities, 1.0, "").unwrap();
    for (mut m, sees_orientation) in [
        (Model::from(imagenet()), true),
        (Model::load(&path, Device::Cpu).unwrap(), false),
    ] {
        let x = input();
        let views = [
            x.flip([3]),
            x.flip([2]),
            x.rot90(1, [2, 3]),
            x.rot90(3, [2, 3]),
        ];
        m.tta = false;
        let plain = m.logits(&x);
        let scale = plain.abs().max().double_value(&[]).max(1e-3);
        if sees_orientation {
            // Without TTA the network does see the orientation (the test can fail).
            let moved = views
                .iter()
                .map(|v| max_abs(&m.logits(v), &plain))
                .fold(0.0, f64::max);
            assert!(moved > 1e-2 * scale, "moved {moved}, scale {scale}");
        }
        m.tta = true;
        let tta = m.logits(&x);
        for v in &views {
            let d = max_abs(&m.logits(v), &tta);
            assert!(d < 1e-4 * scale.max(1.0), "{}: {d}", m.meta.name);
        }
        // Member logits come out after TTA, one per member.
        let (_, members) = m.logits_with_members(&x);
        assert_eq!(members.len(), m.members().len());
    }
}

#[test]
fn an_ensemble_evaluates_only_on_images_every_member_held_out() {
    let meta = |train: &[&str], val: &[&str], test: &[&str]| {
        let mut m =
            melxai::model::CheckpointMeta::new("m", EfficientNetConfig::lite0(2), classes());
        let v = |s: &[&str]| s.iter().map(|x| x.to_string()).collect();
        m.split = Some(SplitRecord {
            seed: 1,
            fold: None,
            train: v(train),
            val: v(val),
            test: v(test),
        });
        m
    };
    // Seeds on one split: that split.
    let a = meta(&["a", "b"], &["c"], &["d", "e"]);
    let b = meta(&["b", "a"], &["c"], &["e", "d"]);
    let s = ensemble_split(&[&a, &b]).unwrap();
    assert_eq!(s.test, ["d", "e"]);
    assert_eq!(s.val, ["c"]);
    // Folds of one cross-validation: nothing held out by all.
    let f0 = meta(&["c", "d"], &["b"], &["a"]);
    let f1 = meta(&["a", "d"], &["c"], &["b"]);
    let s = ensemble_split(&[&f0, &f1]).unwrap();
    assert!(s.test.is_empty() && s.val.is_empty());
    assert_eq!(s.train, ["a", "c", "d"]);
}

fn copy(e: &melxai::explain::Explanation) -> melxai::explain::Explanation {
    melxai::explain::Explanation {
        method: e.method,
        target: e.target,
        output: e.output,
        attribution: e.attribution.shallow_clone(),
        heatmap: e.heatmap.shallow_clone(),
        delta: e.delta,
        baseline_output: e.baseline_output,
        seconds: e.seconds,
    }
}

#[test]
fn ensemble_explanations_attribute_the_combined_logit() {
    use melxai::ensemble::explain::{explain_model, member_explanations};
    use melxai::explain::{ExplainConfig, Method};
    let _turn = TORCH_RNG.lock().unwrap_or_else(|e| e.into_inner());
    let dir = tempfile::tempdir().unwrap();
    let stems = three_members(dir.path());
    let path = write_ensemble(dir.path(), "e", &stems[..2], MeanLogits, 1.0, "").unwrap();
    let m = Model::load(&path, Device::Cpu).unwrap();
    let x = input().squeeze_dim(0);
    let cfg = ExplainConfig::default();
    let target = m
        .logits(&x.unsqueeze(0))
        .argmax(-1, false)
        .int64_value(&[0]) as usize;
    let (combined, members) = member_explanations(&m, &x, Method::DeepLift, &cfg, None).unwrap();
    let e = combined.unwrap();
    assert_eq!(e.target, target);
    assert!(members.iter().all(|mm| mm.target == target));
    // DeepLIFT is linear over the members: the mean attribution, whose
    // completeness gap is the mean of theirs.
    let mean = (&members[0].attribution + &members[1].attribution) / 2.0;
    assert!(max_abs(&e.attribution, &mean) < 1e-6);
    let want_output = m.logits(&x.unsqueeze(0)).double_value(&[0, target as i64]);
    assert!(
        (e.output - want_output).abs() < 1e-4,
        "{} vs {want_output}",
        e.output
    );
    let sum = e.attribution.sum(Kind::Double).double_value(&[]);
    let delta = e.delta.unwrap();
    assert!((sum - (e.output - e.baseline_output.unwrap()) - delta).abs() < 1e-3);
    assert_eq!(e.heatmap.size(), [SIDE, SIDE]);
    // The members' maps agree with each other to some degree, one pair of them.
    let agreement = melxai::ensemble::explain::member_agreement(&members)
        .unwrap()
        .expect("two members");
    assert_eq!((agreement.members, agreement.pairs), (2, 1));
    use melxai::compare::similarity::Metric;
    assert!(
        (-1.0..=1.0).contains(&agreement.get(Metric::Ssim))
            && (0.0..=1.0).contains(&agreement.get(Metric::Jaccard))
    );
    assert_eq!(agreement.metrics.len(), Metric::ALL.len());
    let same = melxai::ensemble::explain::member_agreement(&[copy(&members[0]), copy(&members[0])]);
    let same = same.unwrap().unwrap();
    assert!((same.get(Metric::Ssim) - 1.0).abs() < 1e-9);
    assert!((same.get(Metric::Jaccard) - 1.0).abs() < 1e-9);
    assert!(melxai::ensemble::explain::member_agreement(&members[..1])
        .unwrap()
        .is_none());
    // GradCAM: the members' maps averaged, then normalised to [0, 1].
    let g = explain_model(&m, &x, Method::GradCam, &cfg).unwrap();
    let (lo, hi) = (
        g.heatmap.min().double_value(&[]),
        g.heatmap.max().double_value(&[]),
    );
    assert!((0.0..=1.0).contains(&lo) && hi <= 1.0 + 1e-6);
}

#[test]
fn a_mean_of_probabilities_ensemble_predicts_the_averaged_probabilities() {
    let _turn = TORCH_RNG.lock().unwrap_or_else(|e| e.into_inner());
    let dir = tempfile::tempdir().unwrap();
    // Members far apart, so the two rules give visibly different outputs.
    let stems = three_loud_members(dir.path());
    let path = write_ensemble(dir.path(), "e", &stems, MeanProbabilities, 1.3, "t").unwrap();
    let text = std::fs::read_to_string(&path).unwrap();
    assert!(text.contains("combine = \"mean_probabilities\""), "{text}");
    let m = Model::load(&path, Device::Cpu).unwrap();
    assert_eq!(m.combine_rule(), MeanProbabilities);
    let x = Tensor::cat(&[input(), input().flip([3]) * 3.0], 0);
    let (combined, members) = m.logits_with_members(&x);
    let mean_p = Tensor::stack(
        &members
            .iter()
            .map(|l| l.softmax(-1, Kind::Float))
            .collect::<Vec<_>>(),
        0,
    )
    .mean_dim(0, false, None);
    assert!(max_abs(&combined.exp(), &mean_p) < 1e-6);
    // Uncalibrated, the prediction is the members' mean probability; the
    // temperature scales its log.
    assert!(max_abs(&m.probabilities(&x, false), &mean_p) < 1e-6);
    let want = (mean_p.log() / 1.3).softmax(-1, Kind::Float);
    assert!(max_abs(&m.probabilities(&x, true), &want) < 1e-6);
    let mean_l = Tensor::stack(&members, 0).mean_dim(0, false, None);
    assert!(max_abs(&mean_l.softmax(-1, Kind::Float), &mean_p) > 1e-4);
    // Maps of the two rules are keyed apart.
    let mut other = manifest::read(&path).unwrap();
    other.combine = MeanLogits;
    let logits_path = ensemble_path(dir.path(), "l");
    manifest::write(&logits_path, &other).unwrap();
    let l = Model::load(&logits_path, Device::Cpu).unwrap();
    assert_ne!(l.content_digest().unwrap(), m.content_digest().unwrap());
    // A manifest that names no rule is read as the mean of logits.
    let unnamed = text
        .lines()
        .filter(|line| !line.starts_with("combine"))
        .collect::<Vec<_>>()
        .join("\n");
    std::fs::write(&path, unnamed).unwrap();
    assert_eq!(manifest::read(&path).unwrap().combine, MeanLogits);
    // An unknown rule is refused by name.
    std::fs::write(&path, text.replace("mean_probabilities", "median")).unwrap();
    let err = Model::load(&path, Device::Cpu).unwrap_err().to_string();
    assert!(err.contains("median"), "{err}");
}

#[test]
fn mean_of_probabilities_explanations_attribute_the_combined_output() {
    use melxai::ensemble::explain::member_explanations;
    use melxai::explain::{ExplainConfig, Method};
    let _turn = TORCH_RNG.lock().unwrap_or_else(|e| e.into_inner());
    let dir = tempfile::tempdir().unwrap();
    let stems = three_loud_members(dir.path());
    let path = write_ensemble(dir.path(), "e", &stems, MeanProbabilities, 1.0, "").unwrap();
    let m = Model::load(&path, Device::Cpu).unwrap();
    let x = input().squeeze_dim(0) * 4.0;
    let combined = m.logits(&x.unsqueeze(0));
    let target = combined.argmax(-1, false).int64_value(&[0]) as usize;
    let f_x = combined.double_value(&[0, target as i64]);
    let cfg = ExplainConfig {
        steps: 400,
        ..ExplainConfig::default()
    };
    for method in [Method::DeepLift, Method::IntegratedGradients] {
        let (e, members) = member_explanations(&m, &x, method, &cfg, None).unwrap();
        let e = e.unwrap();
        assert_eq!(e.target, target);
        assert_eq!(members.len(), 3);
        // The explained output is ln of the members' mean probability...
        assert!(
            (e.output - f_x).abs() < 1e-4,
            "{method:?}: {} vs {f_x}",
            e.output
        );
        // ...and the attributions add up to its change from the baseline.
        let sum = e.attribution.sum(Kind::Double).double_value(&[]);
        let change = e.output - e.baseline_output.unwrap();
        let gap = (sum - change).abs();
        assert!(
            change.abs() > 0.05,
            "{method:?}: a test input that moves the output: {} {:?}",
            e.output,
            e.baseline_output
        );
        assert!(
            gap < 2e-2 * change.abs(),
            "{method:?}: sum {sum}, change {change}"
        );
        assert!((e.delta.unwrap() - (sum - change)).abs() < 1e-6);
        // It is not the mean of the members' maps of their own logits.
        let mean = Tensor::stack(
            &members
                .iter()
                .map(|mm| mm.attribution.shallow_clone())
                .collect::<Vec<_>>(),
            0,
        )
        .mean_dim(0, false, None);
        let scale = mean.abs().max().double_value(&[]);
        assert!(
            max_abs(&e.attribution, &mean) > 1e-2 * scale,
            "{method:?}: {} vs scale {scale}; logits {:?}",
            max_abs(&e.attribution, &mean),
            Vec::<f64>::try_from(&m.member_logits(&x.unsqueeze(0))[0].view([-1])).unwrap()
        );
        assert_eq!(e.heatmap.size(), [SIDE, SIDE]);
    }
}

#[test]
fn the_combine_stage_multipliers_carry_the_whole_change() {
    use melxai::ensemble::combine::log_mean_probabilities_f64;
    use melxai::ensemble::explain::combine_multipliers;
    let from = vec![vec![0.5, -1.0], vec![-2.0, 3.0], vec![8.0, -8.0]];
    let to = vec![vec![4.0, 1.0], vec![1.0, -6.0], vec![-3.0, 2.0]];
    for target in 0..2 {
        let f = |l: &[Vec<f64>]| log_mean_probabilities_f64(l)[target];
        let mu = combine_multipliers(&from, &to, target);
        let sum: f64 = mu
            .iter()
            .zip(from.iter().zip(&to))
            .map(|(m, (a, b))| {
                m.iter()
                    .zip(a.iter().zip(b))
                    .map(|(w, (u, v))| w * (v - u))
                    .sum::<f64>()
            })
            .sum();
        assert!((sum - (f(&to) - f(&from))).abs() < 1e-9, "{sum}");
        // With no change the multipliers are the gradient (finite differences).
        let mu0 = combine_multipliers(&from, &from, target);
        for m in 0..3 {
            for j in 0..2 {
                let h = 1e-6;
                let mut up = from.clone();
                up[m][j] += h;
                let mut down = from.clone();
                down[m][j] -= h;
                let numeric = (f(&up) - f(&down)) / (2.0 * h);
                assert!((mu0[m][j] - numeric).abs() < 1e-6, "m{m} j{j}");
            }
        }
    }
}

#[test]
fn predict_json_with_an_ensemble_reports_members_uncertainty_and_referral() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let stems = {
        let _turn = TORCH_RNG.lock().unwrap_or_else(|e| e.into_inner());
        three_members(d)
    };
    let path = write_ensemble(d, "e", &stems, MeanLogits, 1.5, "test").unwrap();
    let img = image::RgbImage::from_fn(40, 40, |x, y| {
        image::Rgb([(x * 6) as u8, (y * 6) as u8, 90])
    });
    img.save(d.join("lesion.png")).unwrap();
    let predict = |extra: &[&str]| {
        let mut args = vec!["--device", "cpu", "predict", "--json", "--checkpoint"];
        let p = path.to_str().unwrap();
        args.push(p);
        args.extend_from_slice(extra);
        args.push("lesion.png");
        let out = Command::new(env!("CARGO_BIN_EXE_melxai"))
            .args(&args)
            .current_dir(d)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        v[0].clone()
    };
    let p = predict(&["--tta"]);
    assert_eq!(p["members"], 3);
    assert_eq!(p["tta"], true);
    assert_eq!(p["temperature"], 1.5);
    assert_eq!(p["member_logits"].as_array().unwrap().len(), 3);
    let u = &p["uncertainty"];
    assert_eq!(u["members"], 3);
    for key in [
        "spread",
        "predictive_entropy",
        "expected_entropy",
        "mutual_information",
    ] {
        assert!(u[key].as_f64().unwrap() >= 0.0, "{key}: {u}");
    }
    let h = u["predictive_entropy"].as_f64().unwrap();
    let e = u["expected_entropy"].as_f64().unwrap();
    let mi = u["mutual_information"].as_f64().unwrap();
    assert!((h - e - mi).abs() < 1e-12);
    // The combined logits are the mean of the members'.
    let mean: f64 = p["member_logits"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l[0].as_f64().unwrap())
        .sum::<f64>()
        / 3.0;
    assert!((p["logits"][0].as_f64().unwrap() - mean).abs() < 1e-5);
    assert!(p["referral"].is_null(), "no operating point, no referral");

    // With an operating point: refer at or above the threshold.
    let prob = p["top"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["class"] == "melanoma")
        .unwrap()["probability"]
        .as_f64()
        .unwrap();
    for (threshold, label) in [(prob, "refer"), ((prob + 1e-3).min(1.0), "likely benign")] {
        let mut m = manifest::read(&path).unwrap();
        m.operating_point = Some(OperatingPoint {
            threshold,
            target_sensitivity: 0.95,
            sensitivity: 0.95,
            specificity: 0.5,
            sensitivity_ci: None,
            specificity_ci: None,
        });
        manifest::write(&path, &m).unwrap();
        let p = predict(&["--tta"]);
        assert_eq!(
            p["referral"]["label"], label,
            "threshold {threshold}, p {prob}"
        );
    }

    // Under the mean of probabilities the combined logits are ln of the
    // members' mean probabilities.
    let mut m = manifest::read(&path).unwrap();
    m.combine = MeanProbabilities;
    manifest::write(&path, &m).unwrap();
    let p = predict(&[]);
    let softmax0 = |l: &serde_json::Value| {
        let (a, b) = (l[0].as_f64().unwrap(), l[1].as_f64().unwrap());
        1.0 / (1.0 + (b - a).exp())
    };
    let members = p["member_logits"].as_array().unwrap();
    let mean_p = members.iter().map(softmax0).sum::<f64>() / members.len() as f64;
    let got = p["logits"][0].as_f64().unwrap();
    assert!((got - mean_p.ln()).abs() < 1e-5, "{got} vs ln {mean_p}");
}

#[test]
fn eval_json_with_an_ensemble_carries_uncertainty_and_decisions() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let stems = {
        let _turn = TORCH_RNG.lock().unwrap_or_else(|e| e.into_inner());
        three_members(d)
    };
    let path = write_ensemble(d, "e", &stems, MeanLogits, 1.0, "test").unwrap();
    let mut m = manifest::read(&path).unwrap();
    m.operating_point = Some(OperatingPoint {
        threshold: 0.5,
        target_sensitivity: 0.95,
        sensitivity: 0.95,
        specificity: 0.5,
        sensitivity_ci: None,
        specificity_ci: None,
    });
    // LAC thresholds of 0.5 per class: a class is in the set when its
    // calibrated probability is at least one half.
    m.conformal = Some(melxai::verdict::conformal::ConformalPredictor {
        settings: Default::default(),
        quantiles: vec![0.5, 0.5],
        calibrated_on: vec![10, 10],
        seed: 0,
    });
    manifest::write(&path, &m).unwrap();
    common::dataset::make(&d.join("data"), 3, 40);
    std::fs::write(
        d.join("config.toml"),
        format!(
            "device = \"cpu\"\n[data]\nroot = \"{}\"\n",
            d.join("data").display()
        ),
    )
    .unwrap();
    let eval = |extra: &[&str]| {
        let mut args = vec!["eval", "--json", "--checkpoint", path.to_str().unwrap()];
        args.extend_from_slice(extra);
        Command::new(env!("CARGO_BIN_EXE_melxai"))
            .args(&args)
            .current_dir(d)
            .output()
            .unwrap()
    };
    // Random members record no split: the held-out split is refused by name.
    let refused = eval(&[]);
    assert!(!refused.status.success());
    let e = String::from_utf8_lossy(&refused.stderr);
    assert!(e.contains("--split all"), "{e}");
    let out = eval(&["--split", "all", "--tta"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["members"], 3);
    assert_eq!(v["tta"], true);
    let rows = v["predictions"].as_array().unwrap();
    assert_eq!(rows.len(), 6);
    for r in rows {
        assert_eq!(r["uncertainty"]["members"], 3, "{r}");
        let p = r["probability"].as_f64().unwrap();
        let want = if p >= 0.5 { "refer" } else { "likely_benign" };
        assert_eq!(r["decision"], want, "{r}");
        assert_eq!(
            r["conformal_set"],
            serde_json::json!([r["predicted"]]),
            "{r}"
        );
    }
    // The split's coverage is the share whose set holds the label.
    let covered = rows
        .iter()
        .filter(|r| r["conformal_set"][0] == r["label"])
        .count() as f64
        / 6.0;
    assert_eq!(v["conformal"]["coverage"].as_f64().unwrap(), covered);
    assert_eq!(v["conformal"]["mean_size"], 1.0);
    assert_eq!(v["conformal"]["promised"], 0.9);
    // predict names the set and says whether it refers.
    let image = std::fs::read_dir(d.join("data/melanoma"))
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    let out = common::cli::run(
        d,
        &[
            "predict",
            "--json",
            "--checkpoint",
            path.to_str().unwrap(),
            image.to_str().unwrap(),
        ],
    );
    assert!(out.status.success(), "{}", common::cli::text(&out));
    let p: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let set = &p[0]["conformal_set"];
    assert_eq!(set["classes"].as_array().unwrap().len(), 1, "{set}");
    assert_eq!(set["coverage"], 0.9);
    assert!(set["method"].as_str().unwrap().starts_with("LAC"), "{set}");
}

#[test]
fn heavy_models_are_evaluated_in_small_chunks_so_cancel_is_prompt() {
    use melxai::ensemble::tta::TtaSetting;
    use melxai::jobs::evaluate::{chunk_size, evaluate, EvaluateJob, EVAL_BATCH_SIZE};
    use melxai::jobs::JobContext;
    use melxai::progress::{CancelToken, Event};

    let _turn = TORCH_RNG.lock().unwrap_or_else(|e| e.into_inner());
    let dir = tempfile::tempdir().unwrap();
    let stems = three_members(dir.path());
    let path = write_ensemble(dir.path(), "e", &stems, MeanLogits, 1.0, "test").unwrap();
    let mut ensemble = Model::load(&path, Device::Cpu).unwrap();
    let mut single = Model::load(&stems[0], Device::Cpu).unwrap();
    // Forward passes per image: 1, 8, 3 and 24.
    assert_eq!(chunk_size(&single, Device::Cpu), EVAL_BATCH_SIZE);
    assert_eq!(chunk_size(&ensemble, Device::Cpu), EVAL_BATCH_SIZE / 3);
    single.set_tta(TtaSetting::On);
    ensemble.set_tta(TtaSetting::On);
    assert_eq!(chunk_size(&single, Device::Cpu), 4);
    assert_eq!(chunk_size(&ensemble, Device::Cpu), 4);
    assert_eq!(chunk_size(&ensemble, Device::Cuda(0)), EVAL_BATCH_SIZE);

    common::dataset::make(&dir.path().join("data"), 12, 40);
    let scan = melxai::data::scan::scan(&dir.path().join("data"), true).unwrap();
    let cache = melxai::data::cache::ImageCache::build(&scan.samples, [SIDE, SIDE]).unwrap();
    let rows: Vec<usize> = (0..cache.ids.len()).collect();
    let config = melxai::config::Config::default();
    let cancel = CancelToken::new();
    // Cancel when the first chunk reports: the job stops at the next check.
    let mut reported = Vec::new();
    let mut sink = |e: Event| {
        if let Event::Progress { done, .. } = e {
            reported.push(done);
            cancel.cancel();
        }
    };
    let mut ctx = JobContext {
        config: &config,
        device: Device::Cpu,
        sink: &mut sink,
        cancel: &cancel,
        job: 0,
    };
    let job = EvaluateJob {
        model: &ensemble,
        cache: &cache,
        rows: &rows,
    };
    let err = evaluate(&mut ctx, job).unwrap_err();
    assert!(matches!(err, melxai::Error::Cancelled), "{err}");
    assert_eq!(reported, [4], "24 images, 4 before the cancel");
}

#[test]
fn explaining_an_ensemble_stops_between_members_when_cancelled() {
    use melxai::ensemble::explain::explain_with_agreement;
    use melxai::explain::{ExplainConfig, Method};
    use melxai::progress::CancelToken;
    let _turn = TORCH_RNG.lock().unwrap_or_else(|e| e.into_inner());
    let dir = tempfile::tempdir().unwrap();
    let stems = three_members(dir.path());
    let path = write_ensemble(dir.path(), "e", &stems, MeanLogits, 1.0, "").unwrap();
    let m = Model::load(&path, Device::Cpu).unwrap();
    let x = input().squeeze_dim(0);
    let cfg = ExplainConfig::default();
    let token = CancelToken::new();
    let (e, agreement) =
        explain_with_agreement(&m, &x, Method::GradCam, &cfg, Some(&token)).unwrap();
    assert_eq!(e.method, Method::GradCam);
    assert!(agreement.is_some());
    token.cancel();
    let err = explain_with_agreement(&m, &x, Method::GradCam, &cfg, Some(&token)).unwrap_err();
    assert!(matches!(err, melxai::Error::Cancelled), "{err}");
}
