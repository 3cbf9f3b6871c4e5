//! `melxai doctor`: is this install healthy? Each check says what it found and,
//! when it fails, what to do.

use std::path::Path;

use serde::Serialize;
use tch::{Device, Kind, Tensor};

use crate::config::Config;
use crate::model::{Arch, Classifier};

#[derive(Debug, Clone, Serialize)]
pub struct Check {
    pub name: String,
    pub ok: bool,
    pub detail: String,
}

fn check(name: &str, r: std::result::Result<String, String>) -> Check {
    match r {
        Ok(detail) => Check {
            name: name.into(),
            ok: true,
            detail,
        },
        Err(detail) => Check {
            name: name.into(),
            ok: false,
            detail,
        },
    }
}

/// Every check, and the CUDA probe they were made from (for `--json`).
pub struct Diagnosis {
    pub checks: Vec<Check>,
    pub cuda: crate::device::CudaReport,
}

/// Runs every check; never panics, never stops at the first failure.
pub fn run(config: &Config, config_path: &Path) -> Diagnosis {
    let mut checks = vec![check(
        "config",
        Ok(if config_path.exists() {
            format!("{} parsed", config_path.display())
        } else {
            format!(
                "{} not found; using built-in defaults",
                config_path.display()
            )
        }),
    )];
    checks.push(check("libtorch", {
        let t = Tensor::from_slice(&[1.0f32, 2.0, 3.0]).sum(Kind::Float);
        match f64::try_from(t) {
            Ok(v) if (v - 6.0).abs() < 1e-6 => Ok(format!(
                "libtorch {}: tensor ops work; {} CPU threads",
                crate::device::libtorch_build().0,
                tch::get_num_threads(),
            )),
            Ok(v) => Err(format!("1+2+3 gave {v}")),
            Err(e) => Err(e.to_string()),
        }
    }));
    let cuda = crate::device::cuda_report();
    checks.push(check("cuda", cuda_check(&cuda)));
    checks.push(check("device", device_check(&config.device, &cuda)));
    for arch in [Arch::Lite0, Arch::Lite1, Arch::Lite2] {
        let name = format!("weights {arch}");
        checks.push(check(&name, weights_check(arch, &config.model.weights_dir)));
    }
    checks.push(check("data set", data_check(config)));
    Diagnosis { checks, cuda }
}

/// CUDA being absent is fine (CPU is a supported device); a driver too old
/// for this libtorch's CUDA runtime, or a CUDA libtorch whose backend was not
/// linked, is a broken install.
fn cuda_check(cuda: &crate::device::CudaReport) -> std::result::Result<String, String> {
    let summary = cuda.summary();
    if cuda.driver_too_old || (!cuda.libtorch_cuda.is_empty() && !cuda.cuda_linked) {
        Err(summary)
    } else {
        Ok(summary)
    }
}

/// The configured device must be one this machine can use.
fn device_check(
    spec: &str,
    cuda: &crate::device::CudaReport,
) -> std::result::Result<String, String> {
    use crate::device::DeviceSpec;
    let parsed: DeviceSpec = spec.parse().map_err(|e| format!("{e}"))?;
    match parsed {
        DeviceSpec::Cpu => Ok("cpu".into()),
        DeviceSpec::Auto if cuda.available => Ok("auto -> cuda:0".into()),
        DeviceSpec::Auto => Ok("auto -> cpu (no usable GPU)".into()),
        DeviceSpec::Cuda(n) if n < cuda.device_count => Ok(format!("{parsed}")),
        DeviceSpec::Cuda(_) => Err(format!(
            "{parsed} configured but {}; set device = \"auto\" or \"cpu\" (or --device)",
            match &cuda.problem {
                Some(p) => format!("CUDA is not available: {p}"),
                None => format!("only {} GPU(s) are visible", cuda.device_count),
            }
        )),
    }
}

fn weights_check(arch: Arch, dir: &Path) -> std::result::Result<String, String> {
    let model = Classifier::imagenet(arch, dir, Device::Cpu).map_err(|e| {
        let e = e.to_string();
        // A missing file already carries the set-up hint.
        if e.contains("make setup") {
            e
        } else {
            format!("{e}; run `make setup` to recreate it")
        }
    })?;
    let res = model.meta.input_size;
    let x = Tensor::zeros([1, 3, res[0], res[1]], (Kind::Float, Device::Cpu));
    let logits = model.logits(&x);
    let finite = bool::try_from(logits.isfinite().all()).unwrap_or(false);
    if !finite {
        return Err("forward pass produced non-finite logits".into());
    }
    Ok(format!(
        "{} loaded ({} tensors), forward pass OK",
        crate::model::imagenet_weights(arch, dir)
            .map(|p| p.display().to_string())
            .unwrap_or_default(),
        model.vs.variables().len()
    ))
}

fn data_check(config: &Config) -> std::result::Result<String, String> {
    let s = crate::data::load(&config.data, config.data.store.is_none())
        .map_err(|e| format!("{e}; run `make setup` or set data.root in config.toml"))?;
    let counts = s.class_counts();
    let parts: Vec<String> = s
        .classes
        .iter()
        .zip(&counts)
        .map(|(c, n)| format!("{c} {n}"))
        .collect();
    let mut detail = format!(
        "{}: {} images ({})",
        s.root.display(),
        s.samples.len(),
        parts.join(", ")
    );
    if !s.skipped.is_empty() {
        detail.push_str(&format!("; {} files skipped", s.skipped.len()));
    }
    if s.class_index(&config.data.positive_class).is_none() {
        return Err(format!(
            "{detail}; positive class '{}' is not among the classes",
            config.data.positive_class
        ));
    }
    Ok(detail)
}
