//! The GPU path without a GPU: the binary really links libtorch's CUDA
//! backend, an unusable device is a clear error (exit 2, never a panic), and
//! `doctor` reads the driver (a fake `libcuda.so.1` built from
//! tests/fixtures/fake_libcuda.c stands in for NVIDIA's).

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn melxai(args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_melxai"));
    cmd.args(args).current_dir(env!("CARGO_MANIFEST_DIR"));
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.output().expect("run melxai")
}

fn libtorch_lib() -> PathBuf {
    let dir = std::env::var("LIBTORCH")
        .map(PathBuf::from)
        .unwrap_or_else(|_| Path::new(env!("CARGO_MANIFEST_DIR")).join(".venv/libtorch"));
    dir.canonicalize().unwrap_or(dir).join("lib")
}

#[test]
fn binary_links_libtorch_cuda_when_libtorch_has_it() {
    let lib = libtorch_lib();
    if !lib.join("libtorch_cuda.so").exists() {
        eprintln!(
            "skipped: {} has no libtorch_cuda.so (CPU-only libtorch)",
            lib.display()
        );
        return;
    }
    let out = Command::new("readelf")
        .args(["-d", env!("CARGO_BIN_EXE_melxai")])
        .output()
        .expect("readelf (binutils) is needed to inspect the binary");
    let dynamic = String::from_utf8_lossy(&out.stdout);
    assert!(
        dynamic.contains("[libtorch_cuda.so]"),
        "melxai does not depend on libtorch_cuda.so although {} has it; --device cuda could never work:\n{dynamic}",
        lib.display()
    );
}

#[test]
fn cuda_without_a_gpu_is_exit_2_with_the_reason() {
    let doctor = melxai(&["doctor", "--json"], &[]);
    let report: serde_json::Value = serde_json::from_slice(&doctor.stdout).unwrap();
    if report["cuda"]["available"] == true {
        eprintln!("skipped: this machine has a usable GPU");
        return;
    }
    for device in ["cuda", "cuda:1"] {
        let out = melxai(
            &["--device", device, "predict", "--imagenet", "no-such.jpg"],
            &[],
        );
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{device}: {err}");
        assert!(err.contains("requested but CUDA is not available"), "{err}");
        assert!(!err.contains("panicked"), "{err}");
    }
    // doctor fails on a configured device it cannot use, and names it.
    let out = melxai(&["--device", "cuda", "doctor", "--json"], &[]);
    assert_eq!(out.status.code(), Some(1));
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let device = report["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == "device")
        .unwrap();
    assert_eq!(device["ok"], false);
    assert!(device["detail"]
        .as_str()
        .unwrap()
        .contains("cuda:0 configured"));
}

#[test]
fn unknown_device_is_refused_everywhere() {
    let out = melxai(
        &["--device", "banana", "predict", "--imagenet", "x.jpg"],
        &[],
    );
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("unknown device 'banana'"), "{err}");
    let out = melxai(&["--device", "banana", "doctor"], &[]);
    assert_eq!(
        out.status.code(),
        Some(1),
        "doctor must not call banana healthy"
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("unknown device 'banana'"));
}

#[test]
fn auto_says_which_device_it_chose() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("x.png");
    image::RgbImage::from_pixel(32, 32, image::Rgb([120, 80, 60]))
        .save(&input)
        .unwrap();
    let out = melxai(
        &[
            "--device",
            "auto",
            "predict",
            "--imagenet",
            input.to_str().unwrap(),
        ],
        &[],
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{err}");
    assert!(err.contains("device: auto -> "), "{err}");
}

/// Builds the fake driver; `None` (test skipped, said why) without a C compiler.
fn fake_driver(dir: &Path) -> Option<PathBuf> {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/fake_libcuda.c");
    let out = dir.join("libcuda.so.1");
    let status = Command::new("cc")
        .args(["-shared", "-fPIC", "-o"])
        .arg(&out)
        .arg(&src)
        .status();
    match status {
        Ok(s) if s.success() => Some(dir.to_path_buf()),
        other => {
            eprintln!("skipped: cannot compile the fake driver with cc: {other:?}");
            None
        }
    }
}

#[test]
fn doctor_reads_the_driver_and_fails_when_it_is_too_old() {
    let lib = libtorch_lib();
    if !lib.join("libtorch_cuda.so").exists() {
        eprintln!("skipped: CPU-only libtorch");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let Some(fake) = fake_driver(dir.path()) else {
        return;
    };
    let fake = fake.to_str().unwrap();
    let cuda_major: u32 = {
        let out = melxai(&["doctor", "--json"], &[]);
        let r: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        r["cuda"]["libtorch_cuda"]
            .as_str()
            .unwrap()
            .split('.')
            .next()
            .unwrap()
            .parse()
            .unwrap()
    };
    let older = format!("{}080", cuda_major - 1);
    let out = melxai(
        &["doctor", "--json"],
        &[("LD_LIBRARY_PATH", fake), ("FAKE_CUDA_VERSION", &older)],
    );
    assert_eq!(out.status.code(), Some(1));
    let r: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let cuda = &r["cuda"];
    assert_eq!(cuda["driver_cuda"], format!("{}.8", cuda_major - 1));
    assert_eq!(cuda["driver_too_old"], true);
    assert_eq!(cuda["gpus"][0]["name"], "Fake GPU Alpha");
    assert_eq!(cuda["gpus"][1]["memory_bytes"], 32u64 << 30);
    assert!(cuda["problem"]
        .as_str()
        .unwrap()
        .contains(&format!("supports CUDA up to {}.8", cuda_major - 1)));

    // A new enough driver is not blamed, and the GPUs are still listed.
    let current = format!("{cuda_major}000");
    let out = melxai(
        &["doctor", "--json"],
        &[("LD_LIBRARY_PATH", fake), ("FAKE_CUDA_VERSION", &current)],
    );
    let r: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(r["cuda"]["driver_too_old"], false);
    assert_eq!(r["cuda"]["gpus"].as_array().unwrap().len(), 2);
}
