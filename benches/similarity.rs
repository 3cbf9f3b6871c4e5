//! Benchmark of `compare::similarity` against its Python peer.
//!
//! Run with `cargo bench --bench similarity`. Generates a seeded pair of
//! smooth 224x224 maps in `[0, 1]` (the model's input size), times each
//! metric in Rust (median over many repetitions, single thread), writes the
//! maps to temporary raw f32 files and runs `benches/similarity_peer.py` on
//! the same data, then prints Rust time, Python time and the speed-up.
//!
//! The interpreter is `$MELXAI_PYTHON`, default `.venv/bin/python`
//! (relative paths are taken from the crate root). The peer runs with
//! `OPENBLAS_NUM_THREADS=1` / `OMP_NUM_THREADS=1` unless those are already
//! set: the Rust side is single-threaded, and on small machines a threaded
//! BLAS can be orders of magnitude slower on 50k-element dot products,
//! which would flatter the Rust numbers. Without Python or its packages the
//! Rust timings are still printed, with a note.

use std::collections::BTreeMap;
use std::hint::black_box;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use melxai::compare::similarity::*;

const H: usize = 224;
const W: usize = 224;

/// xorshift64* uniform in [0, 1).
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> f64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        (self.0.wrapping_mul(0x2545_f491_4f6c_dd1d) >> 11) as f64 / (1u64 << 53) as f64
    }
}

/// Noise smoothed by repeated 5x5 box blurs (clamped edges), scaled to [0, 1].
fn smooth_map(seed: u64) -> Vec<f32> {
    let mut rng = Rng(seed);
    let mut x: Vec<f64> = (0..H * W).map(|_| rng.next()).collect();
    for _ in 0..3 {
        let mut y = vec![0.0; H * W];
        for r in 0..H {
            for c in 0..W {
                let mut s = 0.0;
                for dr in -2i64..=2 {
                    for dc in -2i64..=2 {
                        let rr = (r as i64 + dr).clamp(0, H as i64 - 1) as usize;
                        let cc = (c as i64 + dc).clamp(0, W as i64 - 1) as usize;
                        s += x[rr * W + cc];
                    }
                }
                y[r * W + c] = s / 25.0;
            }
        }
        x = y;
    }
    let (lo, hi) = x
        .iter()
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(l, h), &v| {
            (l.min(v), h.max(v))
        });
    x.iter().map(|&v| ((v - lo) / (hi - lo)) as f32).collect()
}

/// Median wall time of `f` in microseconds over `reps` calls after a warm-up.
fn median_us<T>(reps: usize, mut f: impl FnMut() -> T) -> f64 {
    for _ in 0..(reps / 10).max(3) {
        black_box(f());
    }
    let mut t: Vec<f64> = (0..reps)
        .map(|_| {
            let t0 = Instant::now();
            black_box(f());
            t0.elapsed().as_secs_f64() * 1e6
        })
        .collect();
    t.sort_by(f64::total_cmp);
    t[t.len() / 2]
}

fn write_f32(path: &Path, data: &[f32]) -> std::io::Result<()> {
    let bytes: Vec<u8> = data.iter().flat_map(|v| v.to_le_bytes()).collect();
    std::fs::write(path, bytes)
}

/// Runs the Python peer; `Err` carries a human-readable reason.
fn run_peer(a: &[f32], b: &[f32], reps: usize) -> Result<BTreeMap<String, f64>, String> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let python = std::env::var("MELXAI_PYTHON").unwrap_or_else(|_| ".venv/bin/python".into());
    let python = if Path::new(&python).is_relative() && python.contains('/') {
        root.join(python)
    } else {
        PathBuf::from(python)
    };
    let script = root.join("benches/similarity_peer.py");
    let tmp = std::env::temp_dir();
    let pa = tmp.join(format!("melxai_sim_bench_{}_a.f32", std::process::id()));
    let pb = tmp.join(format!("melxai_sim_bench_{}_b.f32", std::process::id()));
    write_f32(&pa, a).map_err(|e| format!("cannot write {}: {e}", pa.display()))?;
    write_f32(&pb, b).map_err(|e| format!("cannot write {}: {e}", pb.display()))?;

    let mut cmd = Command::new(&python);
    cmd.arg(&script)
        .args(["--a", &pa.to_string_lossy(), "--b", &pb.to_string_lossy()])
        .args(["--height", &H.to_string(), "--width", &W.to_string()])
        .args(["--reps", &reps.to_string()]);
    for var in ["OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"] {
        if std::env::var_os(var).is_none() {
            cmd.env(var, "1");
        }
    }
    let out = cmd.output();
    let _ = std::fs::remove_file(&pa);
    let _ = std::fs::remove_file(&pb);
    let out = out.map_err(|e| format!("cannot run {}: {e}", python.display()))?;
    if !out.status.success() {
        let err = String::from_utf8_lossy(&out.stderr);
        let tail: Vec<&str> = err.lines().rev().take(3).collect();
        return Err(format!(
            "{} exited with {}: {}",
            python.display(),
            out.status,
            tail.into_iter().rev().collect::<Vec<_>>().join(" | ")
        ));
    }
    let v: serde_json::Value =
        serde_json::from_slice(&out.stdout).map_err(|e| format!("peer printed no JSON ({e})"))?;
    if let Some(versions) = v.get("versions") {
        println!("python peer: {versions}");
    }
    let med = v["median_us"]
        .as_object()
        .ok_or("peer JSON lacks median_us")?;
    Ok(med
        .iter()
        .filter_map(|(k, x)| x.as_f64().map(|x| (k.clone(), x)))
        .collect())
}

fn main() {
    let a = smooth_map(0x9e37_79b9_7f4a_7c15);
    let b = smooth_map(0xd1b5_4a32_d192_ed03);
    let (ma, mb) = (
        Map::new(&a, H, W).expect("bench map a"),
        Map::new(&b, H, W).expect("bench map b"),
    );
    let k = (H * W).div_ceil(10);
    let ssim_u = SsimOptions::default();
    let ssim_g = SsimOptions::gaussian();
    let cmp = CompareOptions::default();

    // (metric, peer key, rust median us)
    let rows: Vec<(&str, &str, f64)> = vec![
        (
            "ssim (7x7 uniform)",
            "ssim",
            median_us(300, || ssim(ma, mb, &ssim_u)),
        ),
        ("ssim vs skimage f32", "ssim_f32", f64::NAN),
        (
            "ssim (gaussian)",
            "ssim_gaussian",
            median_us(100, || ssim(ma, mb, &ssim_g)),
        ),
        ("pearson", "pearson", median_us(1000, || pearson(ma, mb))),
        ("spearman", "spearman", median_us(50, || spearman(ma, mb))),
        ("cosine", "cosine", median_us(1000, || cosine(ma, mb))),
        (
            "jaccard (q=90)",
            "jaccard",
            median_us(300, || jaccard_top(ma, mb, 90.0)),
        ),
        (
            "top-k (k=10%)",
            "topk",
            median_us(100, || top_k_intersection(ma, mb, k)),
        ),
        (
            "compare_maps (all)",
            "",
            median_us(50, || compare_maps(ma, mb, &cmp)),
        ),
    ];
    // Same Rust code; the peer row differs in skimage's precision only.
    let rows: Vec<(&str, &str, f64)> = rows
        .iter()
        .map(|&(n, key, t)| (n, key, if t.is_nan() { rows[0].2 } else { t }))
        .collect();

    println!("similarity metrics, one pair of {H}x{W} maps, median per call, single thread");
    let peer = run_peer(&a, &b, 100);
    let peer = match peer {
        Ok(p) => Some(p),
        Err(why) => {
            println!("note: Python peer unavailable, Rust timings only ({why})");
            println!("      set MELXAI_PYTHON to an interpreter with numpy, scipy, scikit-image");
            None
        }
    };
    println!(
        "{:<22} {:>12} {:>14} {:>10}",
        "metric", "rust (us)", "python (us)", "speed-up"
    );
    for (name, key, rust) in rows {
        let py = peer.as_ref().and_then(|p| p.get(key)).copied();
        match py {
            Some(py) => println!("{name:<22} {rust:>12.1} {py:>14.1} {:>9.1}x", py / rust),
            None => println!("{name:<22} {rust:>12.1} {:>14} {:>10}", "-", "-"),
        }
    }
    if let Some(p) = &peer {
        let sum: f64 = ["ssim", "pearson", "spearman", "cosine", "jaccard", "topk"]
            .iter()
            .filter_map(|k| p.get(*k))
            .sum();
        println!("python sum of the six compare_maps metrics: {sum:.1} us");
    }
}
