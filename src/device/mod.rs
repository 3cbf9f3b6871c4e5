//! The compute device: parse `--device` / `device =`, refuse a device that
//! cannot work before any tensor touches it (libtorch would panic), and say
//! which device `auto` chose and what the CUDA stack looks like.

pub mod driver;

use std::fmt;
use std::str::FromStr;

use serde::Serialize;
use tch::Device;

use crate::error::{Error, Result};

/// What the user asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeviceSpec {
    Auto,
    Cpu,
    Cuda(usize),
}

impl FromStr for DeviceSpec {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self> {
        let bad = || {
            Error::Config(format!(
                "device: unknown device '{s}' (expected auto, cpu, cuda or cuda:N)"
            ))
        };
        match s.trim() {
            "auto" => Ok(DeviceSpec::Auto),
            "cpu" => Ok(DeviceSpec::Cpu),
            "cuda" => Ok(DeviceSpec::Cuda(0)),
            t => t
                .strip_prefix("cuda:")
                .and_then(|n| n.parse().ok())
                .map(DeviceSpec::Cuda)
                .ok_or_else(bad),
        }
    }
}

impl fmt::Display for DeviceSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DeviceSpec::Auto => write!(f, "auto"),
            DeviceSpec::Cpu => write!(f, "cpu"),
            DeviceSpec::Cuda(n) => write!(f, "cuda:{n}"),
        }
    }
}

/// Whether this binary carries libtorch's CUDA backend (see build.rs).
pub fn cuda_linked() -> bool {
    option_env!("MELXAI_LIBTORCH_CUDA_LINKED").is_some()
}

/// libtorch's version and the CUDA runtime it was built for ("" for CPU builds).
pub fn libtorch_build() -> (&'static str, &'static str) {
    (
        option_env!("MELXAI_LIBTORCH_VERSION").unwrap_or("unknown"),
        option_env!("MELXAI_LIBTORCH_CUDA").unwrap_or(""),
    )
}

/// Why libtorch sees no GPU, as precisely as the machine lets us say.
pub fn cuda_unavailable_reason() -> String {
    unavailable_reason(&driver::probe_driver())
}

/// [`cuda_unavailable_reason`] from a driver probe already made.
fn unavailable_reason(probe: &Result<driver::Driver, String>) -> String {
    let (version, cuda) = libtorch_build();
    if cuda.is_empty() {
        return format!("this libtorch ({version}) is a CPU-only build; install a CUDA build of torch (see README: On a GPU server)");
    }
    if !cuda_linked() {
        return "this melxai binary was built without libtorch_cuda.so; rebuild with `make build`"
            .into();
    }
    match probe {
        Err(why) => why.clone(),
        Ok(d) if d.gpus.is_empty() => format!(
            "the NVIDIA driver (CUDA {}.{}) sees no GPU (check CUDA_VISIBLE_DEVICES)",
            d.cuda_version.0, d.cuda_version.1
        ),
        Ok(d) => too_old(d.cuda_version, cuda).unwrap_or_else(|| {
            "the driver and GPUs are there but libtorch cannot initialise CUDA with them (check `nvidia-smi`)".into()
        }),
    }
}

/// `Some(reason)` when a driver supporting CUDA `driver` cannot run the
/// runtime `runtime` ("13.0"): a driver serves its own major version and
/// older ones (minor-version compatibility), never a newer major.
pub fn too_old(driver: (u32, u32), runtime: &str) -> Option<String> {
    let major: u32 = runtime.split('.').next()?.parse().ok()?;
    (driver.0 < major).then(|| {
        format!(
            "the NVIDIA driver supports CUDA up to {}.{}, but this libtorch needs CUDA {runtime}: update the driver, or install a torch wheel built for CUDA {}.x (README: On a GPU server)",
            driver.0, driver.1, driver.0
        )
    })
}

/// Resolves a spec to a device libtorch can really use, or a clear error.
pub fn resolve(spec: DeviceSpec) -> Result<Device> {
    match spec {
        DeviceSpec::Cpu => Ok(Device::Cpu),
        DeviceSpec::Auto => Ok(Device::cuda_if_available()),
        DeviceSpec::Cuda(n) => {
            if !tch::Cuda::is_available() {
                return Err(Error::Device(format!(
                    "{spec} requested but CUDA is not available: {}. Use --device cpu or auto.",
                    cuda_unavailable_reason()
                )));
            }
            let count = tch::Cuda::device_count().max(0) as usize;
            if n >= count {
                return Err(Error::Device(format!(
                    "{spec} requested but only {count} GPU(s) are visible (cuda:0..cuda:{})",
                    count.saturating_sub(1)
                )));
            }
            Ok(Device::Cuda(n))
        }
    }
}

/// Parses and resolves `auto|cpu|cuda|cuda:N`.
pub fn parse_device(spec: &str) -> Result<Device> {
    resolve(spec.parse()?)
}

/// "cuda:0 (NVIDIA H100 80GB HBM3, 79.1 GiB)" or "cpu (2 threads)".
pub fn describe(device: Device) -> String {
    match device {
        Device::Cuda(n) => {
            let gpu = driver::probe_driver()
                .ok()
                .and_then(|d| d.gpus.into_iter().find(|g| g.index == n));
            match gpu {
                Some(g) => format!("cuda:{n} ({}, {:.1} GiB)", g.name, gib(g.memory_bytes)),
                None => format!("cuda:{n}"),
            }
        }
        _ => format!("cpu ({} threads)", tch::get_num_threads()),
    }
}

/// The line faces print when `auto` chose: "device: auto -> cpu (2 threads); CUDA not available: ...".
pub fn auto_choice(spec: DeviceSpec, device: Device) -> Option<String> {
    (spec == DeviceSpec::Auto).then(|| match device {
        Device::Cpu => format!(
            "device: auto -> {}; CUDA not available: {}",
            describe(device),
            cuda_unavailable_reason()
        ),
        d => format!("device: auto -> {}", describe(d)),
    })
}

fn gib(bytes: u64) -> f64 {
    bytes as f64 / (1u64 << 30) as f64
}

/// Everything `doctor` reports about CUDA.
#[derive(Debug, Clone, Serialize)]
pub struct CudaReport {
    pub libtorch_version: String,
    /// CUDA runtime libtorch was built for; empty for a CPU build.
    pub libtorch_cuda: String,
    pub cuda_linked: bool,
    pub available: bool,
    pub device_count: usize,
    pub driver_cuda: Option<String>,
    pub gpus: Vec<driver::Gpu>,
    pub cudnn: Option<String>,
    pub runtime_loaded: Option<String>,
    /// Set when CUDA cannot work here; `driver_too_old` makes doctor fail.
    pub problem: Option<String>,
    pub driver_too_old: bool,
}

/// Probes libtorch, the driver and cuDNN; never panics.
pub fn cuda_report() -> CudaReport {
    let (version, cuda) = libtorch_build();
    let probe = driver::probe_driver();
    let available = tch::Cuda::is_available();
    let device_count = if available {
        tch::Cuda::device_count().max(0) as usize
    } else {
        0
    };
    let major_hint = cuda.split('.').next().and_then(|m| m.parse().ok());
    let too_old_why = probe
        .as_ref()
        .ok()
        .and_then(|d| too_old(d.cuda_version, cuda));
    let driver_too_old = too_old_why.is_some();
    let problem = (!available).then(|| too_old_why.unwrap_or_else(|| unavailable_reason(&probe)));
    CudaReport {
        libtorch_version: version.into(),
        libtorch_cuda: cuda.into(),
        cuda_linked: cuda_linked(),
        available,
        device_count,
        driver_cuda: probe
            .as_ref()
            .ok()
            .map(|d| format!("{}.{}", d.cuda_version.0, d.cuda_version.1)),
        gpus: probe.map(|d| d.gpus).unwrap_or_default(),
        cudnn: driver::cudnn_version(),
        runtime_loaded: driver::runtime_version(major_hint).map(|(a, b)| format!("{a}.{b}")),
        problem,
        driver_too_old,
    }
}

impl CudaReport {
    /// One line for doctor's table.
    pub fn summary(&self) -> String {
        let build = if self.libtorch_cuda.is_empty() {
            format!("libtorch {} (CPU build)", self.libtorch_version)
        } else {
            format!(
                "libtorch {} (CUDA {} runtime{})",
                self.libtorch_version,
                self.libtorch_cuda,
                if self.cuda_linked { "" } else { ", NOT linked" }
            )
        };
        let mut parts = vec![build];
        if let Some(d) = &self.driver_cuda {
            parts.push(format!("driver supports CUDA {d}"));
        }
        if let Some(c) = &self.cudnn {
            parts.push(format!("cuDNN {c}"));
        }
        for g in &self.gpus {
            parts.push(format!(
                "cuda:{} {} {:.1} GiB",
                g.index,
                g.name,
                gib(g.memory_bytes)
            ));
        }
        match &self.problem {
            None => parts.push(format!("{} GPU(s) usable", self.device_count)),
            Some(p) => parts.push(format!("CUDA not available: {p}")),
        }
        parts.join("; ")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_specs_and_names_bad_ones() {
        assert_eq!("auto".parse::<DeviceSpec>().unwrap(), DeviceSpec::Auto);
        assert_eq!(" cpu ".parse::<DeviceSpec>().unwrap(), DeviceSpec::Cpu);
        assert_eq!("cuda".parse::<DeviceSpec>().unwrap(), DeviceSpec::Cuda(0));
        assert_eq!("cuda:3".parse::<DeviceSpec>().unwrap(), DeviceSpec::Cuda(3));
        for bad in ["banana", "cuda:", "cuda:-1", "gpu", ""] {
            let e = bad.parse::<DeviceSpec>().unwrap_err().to_string();
            assert!(
                e.contains("expected auto, cpu, cuda or cuda:N"),
                "{bad}: {e}"
            );
        }
    }

    #[test]
    fn driver_older_than_runtime_major_is_refused() {
        assert!(too_old((12, 8), "13.0")
            .unwrap()
            .contains("CUDA up to 12.8"));
        assert!(too_old((13, 0), "13.0").is_none());
        // Minor-version compatibility: a 13.0 driver runs a 13.2 runtime.
        assert!(too_old((13, 0), "13.2").is_none());
        assert!(too_old((12, 2), "").is_none());
    }

    #[test]
    fn cuda_request_without_gpu_is_an_error_not_a_panic() {
        if tch::Cuda::is_available() {
            return;
        }
        let e = parse_device("cuda").unwrap_err().to_string();
        assert!(
            e.contains("cuda:0 requested but CUDA is not available"),
            "{e}"
        );
        assert!(parse_device("cuda:1").is_err());
        assert_eq!(parse_device("auto").unwrap(), Device::Cpu);
    }
}
