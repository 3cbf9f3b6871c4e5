//! Data-set scale benchmark: a generated ISIC-2019-like set (the real
//! layout: ground-truth and metadata CSVs, one-hot labels, lesion ids,
//! `ISIC_2019_Training_Input/<image>.jpg`), 25 000 JPEGs at 1024x768 by
//! default, against a PyTorch peer on the same files.
//!
//! Run with `cargo bench --bench dataset`. Each phase is its own process
//! (wall time and peak RSS from `wait4`), one at a time:
//! 1. `melxai prepare` into a fresh store, full decode: the first run's
//!    scan + decode + resize + store, images per second;
//! 2. `melxai prepare` again: the second run's start (nothing decoded);
//! 3. and 4. the same with `decode = "reduced"` (DCT-domain 1/2..1/8 scale);
//! 5. the peer (`benches/dataset_peer.py`): a torchvision-style CSV dataset
//!    and a DataLoader with the same worker count, PIL decode + bilinear
//!    resize to 224, one pass;
//! 6. training at 224 px on the CPU from the full-decode store (streamed
//!    when the decoded set exceeds `[data] memory_budget_mb`): Lite0, batch
//!    16, the first `MELXAI_BENCH_TRAIN_BATCHES` (30) steps of epoch 1 after
//!    one warm-up step, images per second and peak RSS.
//!
//! Knobs: `MELXAI_BENCH_IMAGES` (25000), `MELXAI_BENCH_SIZE` (1024x768),
//! `MELXAI_BENCH_DATA` (folder kept between runs, default
//! `target/bench-data/isic2019-<n>-<size>`; generated once),
//! `MELXAI_BENCH_WORKERS` (peer DataLoader workers, default the core count),
//! `MELXAI_DATA_PEER_PYTHON` (default `/tmp/datapeer/bin/python`: torch and
//! Pillow; benches/README.md says how to make it).

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

#[path = "common/mod.rs"]
mod common;
use common::{env_usize, last_json, run_measured, Measured};

use melxai::data::lookalike::{self, Layout, LookalikeSpec};

const INPUT: i64 = 224;

fn main() {
    melxai::allocator::tune_for_tensors();
    let args: Vec<String> = std::env::args().collect();
    if args.get(1).map(String::as_str) == Some("train-phase") {
        train_phase(Path::new(&args[2]), args[3].parse().unwrap_or(30));
        return;
    }
    let images = env_usize("MELXAI_BENCH_IMAGES", 25_000);
    let size = std::env::var("MELXAI_BENCH_SIZE").unwrap_or_else(|_| "1024x768".into());
    let (w, h) = size
        .split_once('x')
        .and_then(|(w, h)| Some((w.parse().ok()?, h.parse().ok()?)))
        .expect("MELXAI_BENCH_SIZE as WIDTHxHEIGHT");
    let root = common::root();
    let data = std::env::var_os("MELXAI_BENCH_DATA")
        .map(PathBuf::from)
        .unwrap_or_else(|| root.join(format!("target/bench-data/isic2019-{images}-{size}")));
    let data_toml = generated_set(&data, images, w, h);
    let logs = data.join("logs");
    std::fs::create_dir_all(&logs).unwrap();
    let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
    println!(
        "data-set scale: ISIC-2019-like look-alike, {images} JPEGs at {size}, to {INPUT}x{INPUT}, {cores} cores"
    );
    let melxai = root.join("target/release/melxai");
    let mut rows = Vec::new();
    for decode in ["full", "reduced"] {
        let store = data.join(format!("store-{decode}"));
        let _ = std::fs::remove_dir_all(&store);
        let config = write_config(&data, &data_toml, &store, decode, &root);
        for pass in ["first run", "second run"] {
            let m = measure(
                Command::new(&melxai).args([
                    "--config",
                    config.to_str().unwrap(),
                    "prepare",
                    "--json",
                ]),
                &logs,
                &format!("prepare-{decode}-{}", pass.replace(' ', "-")),
            );
            let j = last_json(&m.stdout).unwrap_or_default();
            rows.push((
                format!("melxai prepare, {decode} decode, {pass}"),
                m.seconds,
                j["images_per_second"].as_f64(),
                m.peak_rss_mb,
            ));
        }
    }
    let workers = env_usize("MELXAI_BENCH_WORKERS", cores);
    let peer = peer_pass(&data, workers, &logs);
    if let Some(p) = &peer {
        rows.push((
            format!("PyTorch DataLoader ({workers} workers), PIL decode"),
            p.0,
            Some(p.1),
            p.2,
        ));
    }
    let train_config = data.join("bench-full.toml");
    let exe = std::env::current_exe().unwrap();
    let m = measure(
        Command::new(exe).args(["train-phase", train_config.to_str().unwrap(), "30"]),
        &logs,
        "train-phase",
    );
    let j = last_json(&m.stdout).unwrap_or_default();
    rows.push((
        "melxai training at 224, streamed from the store".into(),
        m.seconds,
        j["images_per_second"].as_f64(),
        m.peak_rss_mb,
    ));
    println!("\n| phase | wall s | images/s | peak RSS MB |\n|---|--:|--:|--:|");
    for (name, s, ips, rss) in &rows {
        let ips = ips.map_or("—".into(), |v| format!("{v:.0}"));
        println!("| {name} | {s:.1} | {ips} | {rss:.0} |");
    }
    if let (Some(p), Some(first)) = (&peer, rows.first()) {
        if let Some(ips) = first.2 {
            println!(
                "\nfirst-run store build vs peer decode: {:.2}x (full), {:.2}x (reduced)",
                ips / p.1,
                rows[2].2.unwrap_or(0.0) / p.1
            );
        }
    }
    println!("training: {}", j);
}

/// Runs a phase alone, saying what failed instead of a number.
fn measure(cmd: &mut Command, logs: &Path, label: &str) -> Measured {
    let m = run_measured(cmd, logs, label).expect("phase starts");
    if !m.success {
        eprintln!("{label}: {} — {}", m.status, common::tail(&m.stderr, 4));
    }
    m
}

/// The look-alike under `dir` (written once; `data.toml` holds its `[data]`).
fn generated_set(dir: &Path, images: usize, w: u32, h: u32) -> String {
    let marker = dir.join("data.toml");
    if let Ok(text) = std::fs::read_to_string(&marker) {
        return text;
    }
    let _ = std::fs::remove_dir_all(dir);
    let t0 = Instant::now();
    let spec = LookalikeSpec {
        images,
        width: w,
        height: h,
        seed: 2019,
        ..LookalikeSpec::default()
    };
    let set =
        lookalike::write(Layout::Isic2019, &dir.join("set"), &spec).expect("look-alike written");
    println!(
        "generated {} JPEGs in {:.0} s",
        set.images_written,
        t0.elapsed().as_secs_f64()
    );
    std::fs::write(&marker, &set.data_toml).unwrap();
    set.data_toml
}

/// A config of the set's `[data]` with a store, and Lite0 at 224 on the CPU.
fn write_config(dir: &Path, data_toml: &str, store: &Path, decode: &str, root: &Path) -> PathBuf {
    let data = data_toml.replace(
        "[data]\n",
        &format!(
            "[data]\nstore = \"{}\"\ndecode = \"{decode}\"\n",
            store.display()
        ),
    );
    let text = format!(
        "device = \"cpu\"\n{data}\n[model]\nweights_dir = \"{}\"\n[train]\ninput_size = {INPUT}\nbatch_size = 16\nepochs = 1\nfolds = 0\n",
        root.join("weights").display()
    );
    let path = dir.join(format!("bench-{decode}.toml"));
    std::fs::write(&path, text).unwrap();
    path
}

/// The peer's one pass: (seconds, images/s, peak RSS MB of the main process).
fn peer_pass(dir: &Path, workers: usize, logs: &Path) -> Option<(f64, f64, f64)> {
    let python = std::env::var("MELXAI_DATA_PEER_PYTHON")
        .unwrap_or_else(|_| "/tmp/datapeer/bin/python".into());
    if !Path::new(&python).exists() {
        println!("peer skipped: {python} not found (benches/README.md, \"dataset\")");
        return None;
    }
    let set = dir.join("set");
    let m = measure(
        Command::new(&python).args([
            common::root()
                .join("benches/dataset_peer.py")
                .to_str()
                .unwrap(),
            set.join("ISIC_2019_Training_GroundTruth.csv")
                .to_str()
                .unwrap(),
            set.join("ISIC_2019_Training_Input").to_str().unwrap(),
            &INPUT.to_string(),
            &workers.to_string(),
            "32",
        ]),
        logs,
        "peer",
    );
    let j = last_json(&m.stdout).ok()?;
    println!("peer: {j}");
    Some((m.seconds, j["images_per_second"].as_f64()?, m.peak_rss_mb))
}

/// In a child process: the trainer on the whole store, stopped after
/// `batches` timed steps; prints images/s as JSON.
fn train_phase(config: &Path, batches: usize) {
    use melxai::progress::{CancelToken, Event};
    let config = melxai::config::Config::load(config, true).expect("bench config");
    let data = melxai::data::load(&config.data, false).expect("data set");
    let t0 = Instant::now();
    let cache = melxai::data::cache::ImageCache::for_config(
        &data.samples,
        [INPUT, INPUT],
        &config.data,
        false,
    )
    .expect("store");
    let open_seconds = t0.elapsed().as_secs_f64();
    let dir = tempfile::tempdir().unwrap();
    let cancel = CancelToken::new();
    let (mut first, mut last, mut seen) = (None::<(Instant, usize)>, None, 0usize);
    {
        let cancel_ref = &cancel;
        let mut sink = |e: Event| {
            if let Event::Batch { batch, .. } = e {
                // The first step warms up; the next `batches` are timed.
                let now = Instant::now();
                match first {
                    None => first = Some((now, batch)),
                    Some((_, b0)) => {
                        last = Some(now);
                        seen = batch - b0;
                        if seen >= batches {
                            cancel_ref.cancel();
                        }
                    }
                }
            }
        };
        let positive = data
            .classes
            .iter()
            .position(|c| c == "melanoma")
            .unwrap_or(0);
        let mut ctx = melxai::train::TrainContext {
            cache: &cache,
            class_names: data.classes.clone(),
            positive,
            weights_dir: dir.path().to_path_buf(),
            imagenet_dir: config.model.weights_dir.clone(),
            device: tch::Device::Cpu,
            sink: &mut sink,
            cancel: &cancel,
            job: 0,
            resume: false,
            config_file: None,
        };
        let cfg = melxai::train::TrainConfig {
            name: "bench".into(),
            ..config.train.clone()
        };
        let _ = melxai::train::train(&cfg, &mut ctx);
    }
    let seconds = match (first, last) {
        (Some((a, _)), Some(b)) => b.duration_since(a).as_secs_f64(),
        _ => f64::NAN,
    };
    println!(
        "{}",
        serde_json::json!({
            "images": cache.len(),
            "streamed": cache.streamed.is_some(),
            "store_open_seconds": open_seconds,
            "timed_steps": seen,
            "images_per_second": (seen * config.train.batch_size) as f64 / seconds,
        })
    );
}
