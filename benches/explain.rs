//! Benchmark of the explainers against Captum / pytorch-grad-cam.
//!
//! Run with `cargo bench --bench explain`. Loads EfficientNet-Lite0 with the
//! shipped ImageNet weights (`weights/`), preprocesses one real 224x224 input
//! (the first MED-NODE melanoma photograph, or the deterministic test pattern
//! when the data set is absent), explains the predicted class and times, as a
//! median over several runs after a warm-up:
//!
//! - one batched forward+backward of 16 inputs (the unit IG is made of),
//! - Integrated Gradients, 50 and 200 Gauss-Legendre steps, internal batch 16
//!   and 32, zero baseline, with the completeness delta,
//! - DeepLIFT (Rescale) and GradCAM on `_conv_head`,
//!
//! all through `melxai::explain::explain`, so each Rust time includes the
//! one-image forward pass that call makes to find / check the target class.
//!
//! The same preprocessed input is written to a temporary `.npy` and handed to
//! `benches/explain_peer.py`, which times Captum's `IntegratedGradients`
//! (same steps, rule, internal batch, delta), Captum's `DeepLift`,
//! pytorch-grad-cam's `GradCAM` on `model._conv_head` and the same
//! forward+backward of 16 on the reference `efficientnet-lite-pytorch` model,
//! with the same number of intra-op threads (`tch::get_num_threads()`).
//!
//! The interpreter is `$MELXAI_PEER_PYTHON` (default `/tmp/peervenv/bin/python`;
//! benches/README.md says how to create it). Without it the Rust timings are
//! still printed.
//!
//! Device and GPU knobs: `MELXAI_BENCH_DEVICE` (`cpu`, the default, `cuda`,
//! `cuda:N`; the model and the peer run there, every timed call ends with a
//! device synchronisation), `MELXAI_BENCH_BATCH` (batch of the forward+backward
//! row, default 16), `MELXAI_BENCH_COLD=1` (first of all, time the first
//! explanation of this fresh process: IG `MELXAI_BENCH_COLD_STEPS` (200) steps,
//! internal batch 16, predicted class; the peer does the same in its own fresh
//! process), `MELXAI_BENCH_JSON=path` (write every number there as JSON, for
//! benches/gpu.sh), `MELXAI_BENCH_ROOT` (project folder: weights, data, peer
//! scripts; default the crate). The peer also gets melxai's logits for the
//! input and prints how far its model's differ.
//!
//! Environment knobs (to keep runs short on a loaded machine):
//! `MELXAI_BENCH_REPS` (timed runs per measurement, default 3; IG 200 uses
//! at most 2 of them), `MELXAI_BENCH_IG_STEPS` (comma list, default `50,200`),
//! `MELXAI_BENCH_IG_BATCHES` (comma list, default `16,32`), `MELXAI_BENCH_IG_ONLY=1`
//! (skip DeepLIFT and GradCAM).

use std::collections::BTreeMap;
use std::hint::black_box;
use std::path::{Path, PathBuf};
use std::time::Instant;

#[path = "common/mod.rs"]
mod common;
use common::{bench_device, device_arg, env_usize, pattern, sync, PEER_HINT};

use melxai::explain::{explain, ExplainConfig, Integration, Method};
use melxai::model::{Arch, Classifier};
use tch::{Device, Kind, Tensor};

/// Median wall time of `f` in milliseconds over `reps` calls after `warmup`
/// calls, each timed call ending with a synchronisation of `device`.
fn median_ms<T>(device: Device, warmup: usize, reps: usize, mut f: impl FnMut() -> T) -> f64 {
    for _ in 0..warmup {
        black_box(f());
    }
    sync(device);
    let mut t: Vec<f64> = (0..reps.max(1))
        .map(|_| {
            let t0 = Instant::now();
            black_box(f());
            sync(device);
            t0.elapsed().as_secs_f64() * 1e3
        })
        .collect();
    t.sort_by(f64::total_cmp);
    let n = t.len();
    if n % 2 == 1 {
        t[n / 2]
    } else {
        0.5 * (t[n / 2 - 1] + t[n / 2])
    }
}

fn env_list(name: &str, default: &[usize]) -> Vec<usize> {
    std::env::var(name)
        .ok()
        .map(|v| {
            v.split(',')
                .filter_map(|p| p.trim().parse().ok())
                .collect::<Vec<_>>()
        })
        .filter(|v| !v.is_empty())
        .unwrap_or_else(|| default.to_vec())
}

/// First melanoma photograph of MED-NODE, if the data set is there.
fn first_melanoma(root: &Path) -> Option<PathBuf> {
    let dir = root.join("complete_mednode_dataset/melanoma");
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .ok()?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            p.is_file()
                && p.extension().and_then(|e| e.to_str()).is_some_and(|e| {
                    ["jpg", "jpeg", "png"].contains(&e.to_ascii_lowercase().as_str())
                })
        })
        .collect();
    files.sort();
    files.into_iter().next()
}

/// Runs the Python peer: its median milliseconds per row, and its whole JSON.
fn run_peer(args: &[String]) -> Result<(BTreeMap<String, f64>, serde_json::Value), String> {
    let v = common::run_peer("explain_peer.py", args)?;
    if let Some(versions) = v.get("versions") {
        println!("python peer: {versions}");
    }
    if let Some(imp) = v.get("impl").and_then(|i| i.as_str()) {
        println!("python peer implementation: {imp}");
    }
    if let Some(notes) = v.get("notes").and_then(|n| n.as_object()) {
        for (k, n) in notes {
            println!("python peer {k}: {n}");
        }
    }
    let med = v["median_ms"]
        .as_object()
        .ok_or("peer JSON lacks median_ms")?;
    let med = med
        .iter()
        .filter_map(|(k, x)| x.as_f64().map(|x| (k.clone(), x)))
        .collect();
    Ok((med, v))
}

fn main() {
    // As the melxai binary does.
    melxai::allocator::tune_for_tensors();
    let root_buf = common::root();
    let root = root_buf.as_path();
    let device = bench_device();
    let unit_batch = env_usize("MELXAI_BENCH_BATCH", 16).max(1) as i64;
    let cold = env_usize("MELXAI_BENCH_COLD", 0) != 0;
    let cold_steps = env_usize("MELXAI_BENCH_COLD_STEPS", 200).max(2);
    let reps = env_usize("MELXAI_BENCH_REPS", 3).max(1);
    let steps_list = env_list("MELXAI_BENCH_IG_STEPS", &[50, 200]);
    let batch_list = env_list("MELXAI_BENCH_IG_BATCHES", &[16, 32]);
    let ig_only = env_usize("MELXAI_BENCH_IG_ONLY", 0) != 0;
    let threads = tch::get_num_threads();

    let model = match Classifier::imagenet(Arch::Lite0, &root.join("weights"), device) {
        Ok(m) => m,
        Err(e) => {
            eprintln!("cannot load Lite0 ImageNet weights ({e}); run `make setup` first");
            std::process::exit(1);
        }
    };
    let size = model.meta.input_size;
    let (input, source) = match first_melanoma(root) {
        Some(p) => {
            let x = melxai::data::image::load_input(&p, size, &model.meta.normalisation)
                .expect("load bench input");
            (x, p.strip_prefix(root).unwrap_or(&p).display().to_string())
        }
        None => (
            Tensor::from_slice(&pattern(size[0] as usize)).view([3, size[0], size[1]]),
            "deterministic pattern (MED-NODE absent)".to_string(),
        ),
    };
    sync(device);
    // The first explanation of this process, before anything else runs on the
    // device: what a user waits for after start-up.
    let cold_ms = cold.then(|| {
        let c = ExplainConfig {
            target: None,
            steps: cold_steps,
            internal_batch: 16,
            integration: Integration::GaussLegendre,
            ..Default::default()
        };
        let t0 = Instant::now();
        let e = explain(&model, &input, Method::IntegratedGradients, &c);
        sync(device);
        let ms = t0.elapsed().as_secs_f64() * 1e3;
        if let Err(e) = e {
            eprintln!("cold IG failed: {e}");
            std::process::exit(1);
        }
        println!("  rust first IG {cold_steps}/b16 of the process (cold): {ms:.0} ms");
        ms
    });
    let logits = model.logits(&input.unsqueeze(0).to_device(device));
    let target = logits.argmax(-1, false).int64_value(&[0]) as usize;
    println!(
        "explainers, Lite0 ImageNet, {}x{} input: {source}, target class {target}, device {}",
        size[0],
        size[1],
        melxai::device::describe(device)
    );
    println!("threads: {threads} (both sides); timed runs per measurement: {reps} (median), after a warm-up");

    let cfg = ExplainConfig {
        target: Some(target),
        integration: Integration::GaussLegendre,
        ..Default::default()
    };

    // (row label, peer key, rust ms)
    let mut rows: Vec<(String, String, f64)> = Vec::new();

    // The unit cost: one batched forward+backward of `unit_batch` (16) inputs.
    let batch16 = input
        .unsqueeze(0)
        .repeat([unit_batch, 1, 1, 1])
        .to_device(device);
    let fwd_bwd = median_ms(device, 2, reps, || {
        let xs = batch16.detach().set_requires_grad(true);
        let out = model
            .net
            .forward_t(&xs, false)
            .select(1, target as i64)
            .sum(Kind::Float);
        Tensor::run_backward(&[&out], &[&xs], false, false)
    });
    rows.push((
        format!("fwd+bwd, batch {unit_batch}"),
        "fwd_bwd16".into(),
        fwd_bwd,
    ));
    println!("  rust fwd+bwd {unit_batch}: {fwd_bwd:.0} ms");

    let mut deltas = Vec::new();
    let mut first_ig = true;
    for &steps in &steps_list {
        for &batch in &batch_list {
            let c = ExplainConfig {
                steps,
                internal_batch: batch,
                ..cfg.clone()
            };
            // Long runs: the warm-up of the first IG row serves the rest.
            let (warm, n) = if steps > 100 {
                (0, reps.min(2))
            } else {
                (usize::from(first_ig), reps)
            };
            first_ig = false;
            let mut delta = f64::NAN;
            let t = median_ms(device, warm, n, || {
                let e = explain(&model, &input, Method::IntegratedGradients, &c).expect("IG");
                delta = e.delta.unwrap_or(f64::NAN);
            });
            deltas.push(format!("IG {steps}/b{batch} delta {delta:+.4}"));
            println!("  rust IG {steps}/b{batch}: {t:.0} ms");
            rows.push((
                format!("IG {steps} steps GL, b{batch}"),
                format!("ig{steps}_b{batch}"),
                t,
            ));
        }
    }
    if !ig_only {
        let mut dl_delta = f64::NAN;
        let dl = median_ms(device, 1, reps, || {
            let e = explain(&model, &input, Method::DeepLift, &cfg).expect("DeepLIFT");
            dl_delta = e.delta.unwrap_or(f64::NAN);
        });
        deltas.push(format!("DeepLIFT delta {dl_delta:+.4}"));
        rows.push(("DeepLIFT (Rescale)".into(), "deeplift".into(), dl));
        println!("  rust DeepLIFT: {dl:.0} ms");
        let cam = median_ms(device, 1, reps, || {
            explain(&model, &input, Method::GradCam, &cfg).expect("GradCAM")
        });
        rows.push(("GradCAM _conv_head".into(), "gradcam".into(), cam));
        println!("  rust GradCAM: {cam:.0} ms");
    }
    println!("rust completeness: {}", deltas.join(", "));

    // The peer, on the very same preprocessed input.
    let npy = std::env::temp_dir().join(format!("melxai_explain_bench_{}.npy", std::process::id()));
    let data = Vec::<f32>::try_from(input.reshape([-1])).expect("input to vec");
    melxai::data::npy::write_f32(&npy, &data, &[3, size[0], size[1]]).expect("write .npy");
    let logits_npy =
        std::env::temp_dir().join(format!("melxai_explain_logits_{}.npy", std::process::id()));
    let logits_vec =
        Vec::<f32>::try_from(logits.to_device(Device::Cpu).reshape([-1])).expect("logits to vec");
    melxai::data::npy::write_f32(&logits_npy, &logits_vec, &[logits_vec.len() as i64])
        .expect("write logits .npy");
    let join = |v: &[usize]| {
        v.iter()
            .map(|s| s.to_string())
            .collect::<Vec<_>>()
            .join(",")
    };
    let args: Vec<String> = vec![
        "--input".into(),
        npy.to_string_lossy().into_owned(),
        "--target".into(),
        target.to_string(),
        "--threads".into(),
        threads.to_string(),
        "--reps".into(),
        reps.to_string(),
        "--steps".into(),
        join(&steps_list),
        "--batches".into(),
        join(&batch_list),
        "--batch".into(),
        unit_batch.to_string(),
        "--device".into(),
        device_arg(device),
        "--weights".into(),
        root.join("weights/efficientnet-lite0-imagenet.safetensors")
            .to_string_lossy()
            .into_owned(),
        "--ref-logits".into(),
        logits_npy.to_string_lossy().into_owned(),
    ];
    let args = if cold {
        [
            args,
            vec![
                "--cold".to_string(),
                "--cold-steps".into(),
                cold_steps.to_string(),
            ],
        ]
        .concat()
    } else {
        args
    };
    let args = if ig_only {
        [args, vec!["--ig-only".to_string()]].concat()
    } else {
        args
    };
    let peer = run_peer(&args);
    let _ = std::fs::remove_file(&npy);
    let _ = std::fs::remove_file(&logits_npy);
    let (peer, peer_json) = match peer {
        Ok((p, v)) => (Some(p), v),
        Err(why) => {
            println!("note: Python peer unavailable, Rust timings only ({why})");
            println!("      {PEER_HINT}");
            (None, serde_json::json!({ "error": why }))
        }
    };
    let peer_cold = peer_json.get("cold_ms").and_then(|c| c.as_f64());
    common::write_result(&serde_json::json!({
        "bench": "explain",
        "device": common::device_arg(device),
        "device_name": melxai::device::describe(device),
        "unit_batch": unit_batch,
        "rust": {
            "pid": std::process::id(),
            "median_ms": rows.iter().map(|r| (r.1.clone(), r.2)).collect::<BTreeMap<_, _>>(),
            "cold_ms": cold_ms,
            "cold_steps": cold.then_some(cold_steps),
            "completeness": deltas,
        },
        "peer": peer_json,
    }));

    println!();
    println!(
        "{:<26} {:>11} {:>12} {:>9}",
        "method", "rust (ms)", "python (ms)", "speed-up"
    );
    let print_row = |name: &str, rust: f64, py: Option<f64>| match py {
        Some(py) => println!("{name:<26} {rust:>11.0} {py:>12.0} {:>8.2}x", py / rust),
        None => println!("{name:<26} {rust:>11.0} {:>12} {:>9}", "-", "-"),
    };
    if let Some(c) = cold_ms {
        print_row(&format!("first IG {cold_steps}/b16 (cold)"), c, peer_cold);
    }
    for (name, key, rust) in &rows {
        let py = peer.as_ref().and_then(|p| p.get(key)).copied();
        print_row(name, *rust, py);
    }
    // Lower bounds: IG evaluates `steps` gradients; at best it costs steps/16
    // batched forward+backward passes of 16.
    println!();
    println!(
        "IG lower bound = steps/{unit_batch} x fwd+bwd({unit_batch}), and how far each run is above it:"
    );
    let py_unit = peer.as_ref().and_then(|p| p.get("fwd_bwd16")).copied();
    for &steps in &steps_list {
        let lb = steps as f64 / unit_batch as f64 * fwd_bwd;
        let py_lb = py_unit.map(|u| steps as f64 / unit_batch as f64 * u);
        print_row(&format!("IG {steps} lower bound"), lb, py_lb);
        for &batch in &batch_list {
            let key = format!("ig{steps}_b{batch}");
            let r = rows.iter().find(|r| r.1 == key).map(|r| r.2);
            let p = peer.as_ref().and_then(|p| p.get(&key)).copied();
            if let Some(r) = r {
                let py = match (p, py_lb) {
                    (Some(p), Some(l)) => format!("{:.2}x", p / l),
                    _ => "-".into(),
                };
                println!("  b{batch}: rust {:.2}x the bound, python {py}", r / lb);
            }
        }
    }
}
