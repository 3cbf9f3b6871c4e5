//! `melxai prepare` (decode the data set into the `[data] store` once, so a
//! job's later runs start in seconds) and `melxai lookalike` (write a
//! generated set with a public data set's exact layout, to try a recipe or
//! measure a pipeline where the real set cannot be downloaded).

use std::path::PathBuf;
use std::time::Instant;

use anyhow::Result;
use clap::Args;
use melxai::config::Config;
use melxai::data::cache::ImageCache;
use melxai::data::lookalike::{Layout, LookalikeSpec};

#[derive(Args, Debug)]
pub struct PrepareArgs {
    /// Input size in pixels (default: `[train] input_size`, else the
    /// architecture's).
    #[arg(long)]
    pub input_size: Option<i64>,
    #[arg(long)]
    pub json: bool,
}

pub fn prepare(config: &Config, args: &PrepareArgs) -> Result<i32> {
    if config.data.store.is_none() {
        anyhow::bail!("prepare needs a store: set [data] store = \"cache/images\" in config.toml");
    }
    let size = match args.input_size {
        Some(s) => s,
        None => config.train.resolved_input_size()?,
    };
    let t0 = Instant::now();
    let data = melxai::data::load(&config.data, false)?;
    let scanned = t0.elapsed().as_secs_f64();
    let cache = ImageCache::for_config(
        &data.samples,
        [size, size],
        &config.data,
        melxai::progress::progress_bars_allowed(),
    )?;
    let seconds = t0.elapsed().as_secs_f64();
    let skipped: Vec<_> = data.skipped.iter().chain(&cache.skipped).collect();
    if args.json {
        println!(
            "{}",
            serde_json::to_string_pretty(&serde_json::json!({
                "images": cache.len(),
                "input_size": size,
                "scan_seconds": scanned,
                "seconds": seconds,
                "images_per_second": cache.len() as f64 / seconds.max(1e-9),
                "streamed": cache.streamed.is_some(),
                "skipped": skipped,
            }))?
        );
    } else {
        for s in &skipped {
            eprintln!("skipped {}: {}", s.path.display(), s.reason);
        }
        println!(
            "{} images at {size}x{size} in the store in {seconds:.1} s (scan {scanned:.1} s, {:.0} img/s){}",
            cache.len(),
            cache.len() as f64 / seconds.max(1e-9),
            if cache.streamed.is_some() {
                "; over [data] memory_budget_mb: training streams its batches"
            } else {
                ""
            }
        );
    }
    Ok(0)
}

#[derive(Args, Debug)]
pub struct LookalikeArgs {
    /// imagefolder, ham10000, isic2019, isic2020 or pad-ufes-20.
    #[arg(long)]
    pub layout: Layout,
    /// An empty or new folder.
    #[arg(long)]
    pub out: PathBuf,
    /// Rows of the table (images, for ImageFolder).
    #[arg(long, default_value_t = 200)]
    pub images: usize,
    /// WIDTHxHEIGHT of every image.
    #[arg(long, default_value = "256x192")]
    pub size: String,
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
}

pub fn lookalike(args: &LookalikeArgs) -> Result<i32> {
    let (w, h) = args
        .size
        .split_once('x')
        .and_then(|(w, h)| Some((w.parse().ok()?, h.parse().ok()?)))
        .ok_or_else(|| anyhow::anyhow!("--size {}: expected WIDTHxHEIGHT", args.size))?;
    let spec = LookalikeSpec {
        images: args.images,
        width: w,
        height: h,
        seed: args.seed,
        ..LookalikeSpec::default()
    };
    let t0 = Instant::now();
    let set = melxai::data::lookalike::write(args.layout, &args.out, &spec)?;
    eprintln!(
        "{} images written in {:.1} s; its [data] section:",
        set.images_written,
        t0.elapsed().as_secs_f64()
    );
    print!("{}", set.data_toml);
    Ok(0)
}
