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

use std::path::{Path, PathBuf};
use std::time::Instant;

use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use tch::{Device, Reduction, Tensor};

#[path = "common/mod.rs"]
mod common;
use common::{env_usize, PEER_HINT};

use melxai::data::augment::{augment, AugmentConfig};
use melxai::data::cache::ImageCache;
use melxai::data::image::normalise;
use melxai::eval::{balanced_class_weights, weight_tensor};
use melxai::model::{Arch, Classifier};
use melxai::progress::Event;
use melxai::train::optimizer::AdamW;
use melxai::train::{train, TrainConfig, TrainContext};

const SIZE: i64 = 224;
const BATCH: usize = 16;
const PER_CLASS_TRAIN: usize = 32;
const PER_CLASS_VAL: usize = 8;
const SEED: u64 = 42;
const LR: f64 = 2e-4;
const WEIGHT_DECAY: f64 = 1e-4;
const GRAD_CLIP: f64 = 5.0;

/// 80 images: per class the first 40 files (sorted) of MED-NODE, or seeded
/// noise. Returns the cache, class names and (train rows, val rows).
fn build_cache(root: &Path) -> (ImageCache, Vec<String>, Vec<usize>, Vec<usize>, String) {
    let per_class = PER_CLASS_TRAIN + PER_CLASS_VAL;
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
        labels,
        size: [SIZE, SIZE],
        skipped: Vec::new(),
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
) -> (usize, f64, Phases, f64) {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    tch::manual_seed(SEED as i64);
    let (mut model, _) = Classifier::for_finetuning(
        "bench",
        Arch::Lite0,
        classes.to_vec(),
        &root.join("weights"),
        Device::Cpu,
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
    let cw = weight_tensor(&balanced_class_weights(&labels, classes.len()), Device::Cpu);
    let aug = AugmentConfig::default();
    let norm = model.meta.normalisation;

    let mut phases = Phases::default();
    let mut step = |batch_rows: &[usize], rng: &mut ChaCha8Rng, ph: &mut Phases| -> f64 {
        let t0 = Instant::now();
        let x = augment(&cache.batch(batch_rows), &aug, rng);
        let x = normalise(&x, &norm);
        let y = Tensor::from_slice(
            &batch_rows
                .iter()
                .map(|&r| cache.labels[r] as i64)
                .collect::<Vec<_>>(),
        );
        let t1 = Instant::now();
        let logits = model.net.forward_t(&x, true);
        let loss = logits.cross_entropy_loss::<Tensor>(
            &y,
            Some(cw.shallow_clone()),
            Reduction::Mean,
            -100,
            0.0,
        );
        let t2 = Instant::now();
        opt.zero_grad();
        loss.backward();
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
    step(&rows[..BATCH.min(rows.len())], &mut rng, &mut scratch);

    let mut seen = 0;
    let mut loss = f64::NAN;
    let t0 = Instant::now();
    for epoch in 1..=epochs {
        let mut rng = ChaCha8Rng::seed_from_u64(SEED.wrapping_mul(7919).wrapping_add(epoch as u64));
        let mut order = rows.to_vec();
        order.shuffle(&mut rng);
        for chunk in order.chunks(BATCH) {
            loss = step(chunk, &mut rng, &mut phases);
            seen += chunk.len();
        }
    }
    (seen, t0.elapsed().as_secs_f64(), phases, loss)
}

/// `melxai::train::train` on the 80-image cache; per-epoch images/s.
fn rust_trainer(cache: &ImageCache, classes: &[String], epochs: usize) -> Result<Vec<f64>, String> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
    let cfg = TrainConfig {
        name: "bench".into(),
        arch: "lite0".into(),
        epochs,
        batch_size: BATCH,
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
            device: Device::Cpu,
            sink: &mut sink,
            cancel: &cancel,
            job: 0,
            resume: false,
        };
        let out = train(&cfg, &mut ctx).map_err(|e| e.to_string())?;
        let val = out.splits.first().map_or(0, |s| s.val.len());
        if cache.len() - val != 2 * PER_CLASS_TRAIN {
            println!("note: the trainer trained on {} images", cache.len() - val);
        }
    }
    Ok(per_epoch)
}

fn main() {
    // As the melxai binary does.
    melxai::allocator::tune_for_tensors();
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let epochs = env_usize("MELXAI_BENCH_EPOCHS", 2).max(1);
    let with_trainer = env_usize("MELXAI_BENCH_TRAINER", 1) != 0;
    let threads = tch::get_num_threads();
    let (cache, classes, train_rows, val_rows, source) = build_cache(root);
    println!(
        "training throughput, Lite0 {SIZE}x{SIZE}, batch {BATCH}, {} training images ({source}), \
         {epochs} epochs after 1 warm-up batch, frozen BN, AdamW, weighted CE, clip {GRAD_CLIP}",
        train_rows.len()
    );
    println!("threads: {threads} (both sides)");

    // The same 64 images (and labels) for the peer, as uint8 (N,3,H,W).
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

    let (seen, secs, ph, loss) = rust_loop(&cache, &classes, &train_rows, epochs);
    let rust_ips = seen as f64 / secs;
    let batches = (seen as f64 / BATCH as f64).ceil();
    println!(
        "rust loop: {seen} images in {secs:.1} s = {rust_ips:.2} img/s (last loss {loss:.3}); \
         per batch: data+augment {:.0} ms, forward {:.0} ms, backward {:.0} ms, clip+AdamW {:.0} ms",
        ph.data / batches * 1e3,
        ph.forward / batches * 1e3,
        ph.backward / batches * 1e3,
        ph.step / batches * 1e3,
    );

    let trainer = if with_trainer {
        match rust_trainer(&cache, &classes, epochs) {
            Ok(v) => {
                let s: Vec<String> = v.iter().map(|x| format!("{x:.2}")).collect();
                println!(
                    "rust melxai::train::train: img/s per epoch [{}] ({} val images, checkpoints excluded)",
                    s.join(", "),
                    val_rows.len()
                );
                v.last().copied()
            }
            Err(e) => {
                println!("note: melxai::train::train failed: {e}");
                None
            }
        }
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
        BATCH.to_string(),
        "--lr".into(),
        LR.to_string(),
        "--weight-decay".into(),
        WEIGHT_DECAY.to_string(),
        "--clip".into(),
        GRAD_CLIP.to_string(),
    ];
    let peer = common::run_peer("train_peer.py", &args);
    let _ = std::fs::remove_file(&img_npy);
    let _ = std::fs::remove_file(&lab_npy);
    let py_ips = match peer {
        Ok(v) => {
            if let Some(ver) = v.get("versions") {
                println!("python peer: {ver}");
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
        println!(
            "{:<32} {p:>10.2} {:>14}",
            "python efficientnet-lite-pytorch", "1.00x"
        );
    }
}
