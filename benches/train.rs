//! Training-throughput benchmark against a PyTorch peer.
//!
//! Run with `cargo bench --bench train`. EfficientNet-Lite0 from the shipped
//! ImageNet weights with a new 2-class head, 224x224, batch 16, on a fixed set
//! of 64 MED-NODE images (32 melanoma + 32 naevus; seeded random images when
//! the data set is absent), frozen batch norm (melxai's default), 2 epochs after
//! one untimed warm-up batch. Reported: images per second.
//!
//! Rust, two ways:
//! 1. **loop**: the trainer's inner loop written out with the library's own
//!    pieces (`data::augment::augment`, `data::image::normalise`,
//!    `EfficientNet::forward_t(train=true)`, class-weighted cross-entropy,
//!    `train::optimizer::AdamW` with gradient clipping at 5.0) on exactly the
//!    64 images, with a per-phase breakdown.
//! 2. **trainer**: `melxai::train::train` itself (TrainConfig: 2 epochs, no
//!    early stop, one stratified split with 16 extra validation images so that
//!    exactly the same 64 images train; checkpoints in a temp dir). Its
//!    per-epoch `images_per_second` covers the batches only (validation and
//!    checkpoint writing excluded); epoch 1 includes first-batch warm-up.
//!
//! Python (`benches/train_peer.py`): the reference `efficientnet-lite-pytorch`
//! Lite0, ImageNet weights, new `nn.Linear(1280, 2)` head, `model.train()` with
//! every BatchNorm put back in `eval()`, the same augmentation written in torch,
//! `torch.optim.AdamW` (decay on >1-D tensors only, as melxai), weighted CE,
//! `clip_grad_norm_(5.0)`, on the same 64 images (uint8 `.npy`) and labels,
//! same batch size, epochs, warm-up and intra-op thread count.
//!
//! The interpreter is `$MELXAI_PEER_PYTHON` (default `/tmp/peervenv/bin/python`);
//! without it the Rust numbers are still printed. `MELXAI_BENCH_TRAINER=0`
//! skips the (slower, checkpoint-writing) trainer run;
//! `MELXAI_BENCH_EPOCHS` changes the number of timed epochs (default 2).
//!
//! Device and GPU knobs: `MELXAI_BENCH_DEVICE` (`cpu`, the default, `cuda`,
//! `cuda:N`: model, images and augmentation on that device, as the trainer
//! keeps them; timed spans end with a device synchronisation, and on CUDA the
//! loop also synchronises at each phase boundary so its breakdown means
//! something, which makes it a lower bound: the trainer row is the real
//! number), `MELXAI_BENCH_BATCH` (batch size, default 16),
//! `MELXAI_BENCH_TRAIN_PER_CLASS` (training images per class, default 32;
//! a quarter as many more per class validate the trainer), `MELXAI_BENCH_COLD=1`
//! (the trainer runs first, so its first epoch is the first of this fresh
//! process, and is reported alone; the peer does the same with `--cold`),
//! `MELXAI_BENCH_JSON=path` (every number as JSON, for benches/gpu.sh),
//! `MELXAI_BENCH_ROOT` (project folder; default the crate).

use std::path::{Path, PathBuf};
use std::time::Instant;

use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use tch::{Device, Reduction, Tensor};

#[path = "common/mod.rs"]
mod common;
use common::{bench_device, device_arg, env_usize, sync, PEER_HINT};

use melxai::data::augment::{augment, AugmentConfig};
use melxai::data::cache::ImageCache;
use melxai::data::image::normalise;
use melxai::evaluate::{balanced_class_weights, weight_tensor};
use melxai::model::{Arch, Classifier};
use melxai::progress::Event;
use melxai::train::optimizer::AdamW;
use melxai::train::{train, TrainConfig, TrainContext};

const SIZE: i64 = 224;
const DEFAULT_BATCH: usize = 16;
const DEFAULT_PER_CLASS_TRAIN: usize = 32;
const SEED: u64 = 42;
const LR: f64 = 2e-4;
const WEIGHT_DECAY: f64 = 1e-4;
const GRAD_CLIP: f64 = 5.0;

/// What one run measures (from the environment; the defaults are the CPU bench's).
struct Knobs {
    device: Device,
    batch: usize,
    /// Training images per class; a quarter as many more validate.
    per_class_train: usize,
}

impl Knobs {
    fn per_class(&self) -> usize {
        self.per_class_train + self.per_class_train / 4
    }
}

/// Per class the first `per_class()` files (sorted) of MED-NODE (default 40:
/// 80 images), or seeded noise. Returns the cache, class names and (train
/// rows, val rows).
fn build_cache(
    root: &Path,
    knobs: &Knobs,
) -> (ImageCache, Vec<String>, Vec<usize>, Vec<usize>, String) {
    let per_class = knobs.per_class();
    let data = root.join("complete_mednode_dataset");
    if let Ok(scan) = melxai::data::scan::scan(&data, false) {
        let counts = scan.class_counts();
        if counts.len() == 2 && counts.iter().all(|&c| c >= per_class) {
            let mut samples = Vec::new();
            for label in 0..2 {
                samples.extend(
                    scan.samples
                        .iter()
                        .filter(|s| s.label == label)
                        .take(per_class)
                        .cloned(),
                );
            }
            let cache = ImageCache::build(&samples, [SIZE, SIZE]).expect("decode MED-NODE");
            if cache.len() == 2 * per_class {
                let (train, val) = split_rows(&cache.labels);
                return (cache, scan.classes.clone(), train, val, "MED-NODE".into());
            }
        }
    }
    let n = 2 * per_class;
    let mut rng = ChaCha8Rng::seed_from_u64(SEED);
    let pixels: Vec<u8> = (0..n * 3 * (SIZE * SIZE) as usize)
        .map(|_| rng.gen())
        .collect();
    let labels: Vec<usize> = (0..n).map(|i| i / per_class).collect();
    let (train, val) = split_rows(&labels);
    let cache = ImageCache {
        images: Tensor::from_slice(&pixels).view([n as i64, 3, SIZE, SIZE]),
        ids: (0..n).map(|i| format!("gen/{i:03}.png")).collect(),
        paths: (0..n)
            .map(|i| PathBuf::from(format!("gen/{i:03}.png")))
            .collect(),
        groups: (0..n).collect(),
        labels,
        size: [SIZE, SIZE],
        skipped: Vec::new(),
        streamed: None,
    };
    (
        cache,
        vec!["melanoma".into(), "naevus".into()],
        train,
        val,
        "generated (MED-NODE absent)".into(),
    )
}

/// The trainer's split (test 0, val 0.2, seed 42), so that loop, trainer and
/// peer see the same 64 training images.
fn split_rows(labels: &[usize]) -> (Vec<usize>, Vec<usize>) {
    let s = melxai::data::split::stratified_split(labels, 0.0, 0.2, SEED).expect("split");
    (s.train, s.val)
}

#[derive(Default)]
struct Phases {
    data: f64,
    forward: f64,
    backward: f64,
    step: f64,
}

/// The trainer's inner loop on `rows`; returns (timed images, seconds, phases, last loss).
fn rust_loop(
    cache: &ImageCache,
    classes: &[String],
    rows: &[usize],
    epochs: usize,
    knobs: &Knobs,
) -> (usize, f64, Phases, f64) {
    let root = common::root();
    let (device, batch) = (knobs.device, knobs.batch);
    // On a GPU the phases are only separable with a synchronisation at each boundary.
    let phase_sync = || sync(device);
    tch::manual_seed(SEED as i64);
    let (mut model, _) = Classifier::for_finetuning(
        "bench",
        Arch::Lite0,
        classes.to_vec(),
        &root.join("weights"),
        device,
    )
    .expect("Lite0 ImageNet weights (run `make setup`)");
    model.net.frozen_batch_norm = true;
    let params: Vec<(String, Tensor)> = model
        .vs
        .variables()
        .into_iter()
        .filter(|(_, t)| t.requires_grad())
        .collect();
    let mut opt = AdamW::new(params, LR, WEIGHT_DECAY);
    let labels: Vec<usize> = rows.iter().map(|&r| cache.labels[r]).collect();
    let cw = weight_tensor(&balanced_class_weights(&labels, classes.len()), device);
    // Images stay where the trainer keeps them (on the CPU this is the cache itself).
    let images = cache.images.to_device(device);
    let aug = AugmentConfig::default();
    let norm = model.meta.normalisation;

    let mut phases = Phases::default();
    let mut step = |batch_rows: &[usize], rng: &mut ChaCha8Rng, ph: &mut Phases| -> f64 {
        let t0 = Instant::now();
        let idx = Tensor::from_slice(&batch_rows.iter().map(|&r| r as i64).collect::<Vec<_>>())
            .to_device(device);
        let x = augment(&ImageCache::gather(&images, &idx), &aug, rng);
        let x = normalise(&x, &norm);
        let y = Tensor::from_slice(
            &batch_rows
                .iter()
                .map(|&r| cache.labels[r] as i64)
                .collect::<Vec<_>>(),
        )
        .to_device(device);
        phase_sync();
        let t1 = Instant::now();
        let logits = model.net.forward_t(&x, true);
        let loss = logits.cross_entropy_loss::<Tensor>(
            &y,
            Some(cw.shallow_clone()),
            Reduction::Mean,
            -100,
            0.0,
        );
        phase_sync();
        let t2 = Instant::now();
        opt.backward(&loss);
        phase_sync();
        let t3 = Instant::now();
        let _ = opt.clip_grad_norm(GRAD_CLIP);
        opt.step();
        let l = loss.double_value(&[]);
        let t4 = Instant::now();
        ph.data += (t1 - t0).as_secs_f64();
        ph.forward += (t2 - t1).as_secs_f64();
        ph.backward += (t3 - t2).as_secs_f64();
        ph.step += (t4 - t3).as_secs_f64();
        l
    };

    // One untimed warm-up batch.
    let mut rng = ChaCha8Rng::seed_from_u64(SEED);
    let mut scratch = Phases::default();
    step(&rows[..batch.min(rows.len())], &mut rng, &mut scratch);

    let mut seen = 0;
    let mut loss = f64::NAN;
    let t0 = Instant::now();
    for epoch in 1..=epochs {
        let mut rng = ChaCha8Rng::seed_from_u64(SEED.wrapping_mul(7919).wrapping_add(epoch as u64));
        let mut order = rows.to_vec();
        order.shuffle(&mut rng);
        for chunk in order.chunks(batch) {
            loss = step(chunk, &mut rng, &mut phases);
            seen += chunk.len();
        }
    }
    (seen, t0.elapsed().as_secs_f64(), phases, loss)
}

/// `melxai::train::train` on the cache; per-epoch images/s.
fn rust_trainer(
    cache: &ImageCache,
    classes: &[String],
    epochs: usize,
    knobs: &Knobs,
) -> Result<Vec<f64>, String> {
    let root = common::root();
    let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
    let cfg = TrainConfig {
        name: "bench".into(),
        arch: "lite0".into(),
        epochs,
        batch_size: knobs.batch,
        patience: 0,
        folds: 0,
        test_fraction: 0.0,
        val_fraction: 0.2,
        seed: SEED,
        pretrained: true,
        freeze_batch_norm: true,
        ..Default::default()
    };
    let cancel = melxai::progress::CancelToken::new();
    let mut per_epoch: Vec<f64> = Vec::new();
    {
        let mut sink = |e: Event| {
            if let Event::Epoch { summary, .. } = e {
                per_epoch.push(summary.images_per_second);
            }
        };
        let mut ctx = TrainContext {
            cache,
            class_names: classes.to_vec(),
            positive: classes.iter().position(|c| c == "melanoma").unwrap_or(0),
            weights_dir: dir.path().to_path_buf(),
            imagenet_dir: root.join("weights"),
            device: knobs.device,
            sink: &mut sink,
            cancel: &cancel,
            job: 0,
            resume: false,
            config_file: None,
        };
        let out = train(&cfg, &mut ctx).map_err(|e| e.to_string())?;
        let val = out.splits.first().map_or(0, |s| s.val.len());
        if cache.len() - val != 2 * knobs.per_class_train {
            println!("note: the trainer trained on {} images", cache.len() - val);
        }
    }
    Ok(per_epoch)
}

fn main() {
    // As the melxai binary does.
    melxai::allocator::tune_for_tensors();
    let root_buf = common::root();
    let root = root_buf.as_path();
    let knobs = Knobs {
        device: bench_device(),
        batch: env_usize("MELXAI_BENCH_BATCH", DEFAULT_BATCH).max(1),
        per_class_train: env_usize("MELXAI_BENCH_TRAIN_PER_CLASS", DEFAULT_PER_CLASS_TRAIN).max(4),
    };
    let batch = knobs.batch;
    let epochs = env_usize("MELXAI_BENCH_EPOCHS", 2).max(1);
    let cold = env_usize("MELXAI_BENCH_COLD", 0) != 0;
    let with_trainer = cold || env_usize("MELXAI_BENCH_TRAINER", 1) != 0;
    let threads = tch::get_num_threads();
    let (cache, classes, train_rows, val_rows, source) = build_cache(root, &knobs);
    println!(
        "training throughput, Lite0 {SIZE}x{SIZE}, batch {batch}, {} training images ({source}), \
         {epochs} epochs after 1 warm-up batch, frozen BN, AdamW, weighted CE, clip {GRAD_CLIP}, \
         device {}",
        train_rows.len(),
        melxai::device::describe(knobs.device)
    );
    println!("threads: {threads} (both sides)");

    // The same training images (and labels) for the peer, as uint8 (N,3,H,W).
    let idx = Tensor::from_slice(&train_rows.iter().map(|&r| r as i64).collect::<Vec<_>>());
    let imgs = cache.images.index_select(0, &idx);
    let labels = Tensor::from_slice(
        &train_rows
            .iter()
            .map(|&r| cache.labels[r] as i64)
            .collect::<Vec<_>>(),
    );
    let tmp = std::env::temp_dir();
    let pid = std::process::id();
    let img_npy = tmp.join(format!("melxai_train_bench_{pid}_images.npy"));
    let lab_npy = tmp.join(format!("melxai_train_bench_{pid}_labels.npy"));
    imgs.write_npy(&img_npy).expect("write images .npy");
    labels.write_npy(&lab_npy).expect("write labels .npy");

    // Cold: the trainer goes first, so its first epoch is this process's first
    // work on the device; it runs one extra epoch for that.
    let run_trainer = || {
        let n = epochs + usize::from(cold);
        match rust_trainer(&cache, &classes, n, &knobs) {
            Ok(v) => {
                let s: Vec<String> = v.iter().map(|x| format!("{x:.2}")).collect();
                println!(
                    "rust melxai::train::train: img/s per epoch [{}] ({} val images, checkpoints excluded)",
                    s.join(", "),
                    val_rows.len()
                );
                Some(v)
            }
            Err(e) => {
                println!("note: melxai::train::train failed: {e}");
                None
            }
        }
    };
    let mut trainer_epochs = if cold && with_trainer {
        run_trainer()
    } else {
        None
    };

    let (seen, secs, ph, loss) = rust_loop(&cache, &classes, &train_rows, epochs, &knobs);
    sync(knobs.device);
    let rust_ips = seen as f64 / secs;
    let batches = (seen as f64 / batch as f64).ceil();
    println!(
        "rust loop: {seen} images in {secs:.1} s = {rust_ips:.2} img/s (last loss {loss:.3}); \
         per batch: data+augment {:.0} ms, forward {:.0} ms, backward {:.0} ms, clip+AdamW {:.0} ms",
        ph.data / batches * 1e3,
        ph.forward / batches * 1e3,
        ph.backward / batches * 1e3,
        ph.step / batches * 1e3,
    );

    if !cold && with_trainer {
        trainer_epochs = run_trainer();
    }
    let trainer = trainer_epochs.as_ref().and_then(|v| v.last().copied());
    // First epoch of the process, seconds (batches only, as images_per_second).
    let rust_cold = if cold {
        trainer_epochs
            .as_ref()
            .and_then(|v| v.first())
            .map(|ips| train_rows.len() as f64 / ips)
    } else {
        None
    };

    let args: Vec<String> = vec![
        "--images".into(),
        img_npy.to_string_lossy().into_owned(),
        "--labels".into(),
        lab_npy.to_string_lossy().into_owned(),
        "--threads".into(),
        threads.to_string(),
        "--epochs".into(),
        epochs.to_string(),
        "--batch".into(),
        batch.to_string(),
        "--lr".into(),
        LR.to_string(),
        "--weight-decay".into(),
        WEIGHT_DECAY.to_string(),
        "--clip".into(),
        GRAD_CLIP.to_string(),
        "--device".into(),
        device_arg(knobs.device),
        "--weights".into(),
        root.join("weights/efficientnet-lite0-imagenet.safetensors")
            .to_string_lossy()
            .into_owned(),
    ];
    let args = if cold {
        [args, vec!["--cold".to_string()]].concat()
    } else {
        args
    };
    let peer = common::run_peer("train_peer.py", &args);
    let _ = std::fs::remove_file(&img_npy);
    let _ = std::fs::remove_file(&lab_npy);
    let peer_json = match &peer {
        Ok(v) => v.clone(),
        Err(why) => serde_json::json!({ "error": why }),
    };
    let py_ips = match peer {
        Ok(v) => {
            if let Some(ver) = v.get("versions") {
                println!("python peer: {ver}");
            }
            if let Some(imp) = v.get("impl").and_then(|i| i.as_str()) {
                println!("python peer implementation: {imp}");
            }
            let ips = v["images_per_second"].as_f64();
            if let (Some(ips), Some(p)) = (ips, v.get("per_batch_ms")) {
                println!(
                    "python loop: {} images in {:.1} s = {ips:.2} img/s (last loss {:.3}); per batch: {p}",
                    v["images"], v["seconds"].as_f64().unwrap_or(f64::NAN),
                    v["last_loss"].as_f64().unwrap_or(f64::NAN)
                );
            }
            ips
        }
        Err(why) => {
            println!("note: Python peer unavailable, Rust numbers only ({why})");
            println!("      {PEER_HINT}");
            None
        }
    };

    println!();
    println!("{:<32} {:>10} {:>14}", "", "img/s", "rust / python");
    let row = |name: &str, ips: Option<f64>| match (ips, py_ips) {
        (Some(r), Some(p)) => println!("{name:<32} {r:>10.2} {:>13.2}x", r / p),
        (Some(r), None) => println!("{name:<32} {r:>10.2} {:>14}", "-"),
        _ => {}
    };
    row("rust loop (library pieces)", Some(rust_ips));
    row("rust melxai::train::train", trainer);
    if let Some(p) = py_ips {
        println!("{:<32} {p:>10.2} {:>14}", "python peer", "1.00x");
    }
    let peer_cold = peer_json
        .get("first_epoch_seconds")
        .and_then(|c| c.as_f64());
    if let Some(c) = rust_cold {
        let ratio = peer_cold.map_or("-".into(), |p| format!("{:.2}x", c / p));
        let py = peer_cold.map_or("-".into(), |p| format!("{p:.2} s"));
        println!(
            "first epoch of the process (cold): rust {c:.2} s, python {py}, rust/python {ratio}"
        );
    }
    common::write_result(&serde_json::json!({
        "bench": "train",
        "device": device_arg(knobs.device),
        "device_name": melxai::device::describe(knobs.device),
        "batch": batch,
        "train_images": train_rows.len(),
        "epochs": epochs,
        "source": source,
        "rust": {
            "pid": std::process::id(),
            "loop_images_per_second": rust_ips,
            "trainer_images_per_second": trainer,
            "trainer_images_per_second_by_epoch": trainer_epochs,
            "first_epoch_seconds": rust_cold,
            "loop_per_batch_ms": {
                "data": ph.data / batches * 1e3,
                "forward": ph.forward / batches * 1e3,
                "backward": ph.backward / batches * 1e3,
                "step": ph.step / batches * 1e3,
            },
        },
        "peer": peer_json,
    }));
}
