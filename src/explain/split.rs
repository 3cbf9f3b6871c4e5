//! Explaining every image of a split with several methods: the shared step of
//! `compare`, `--batch` and the TUI. Maps already on disk are reused, so an
//! interrupted run picks up where it stopped.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};

use serde::{Deserialize, Serialize};

use super::heatmap::{tensor_to_rgb, to_vec};
use super::{explain, output, ExplainConfig, Method};
use crate::compare::agreement::{ExplainedSample, Heatmap};
use crate::data::cache::ImageCache;
use crate::data::image::normalise;
use crate::data::npy::read_map;
use crate::engine::events::{Event, EventSink, JobId};
use crate::error::{Error, Result};
use crate::eval::EvalRow;
use crate::model::Classifier;

/// What was recorded for one map (also written beside the maps as JSON).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct MapRecord {
    pub id: String,
    pub method: Method,
    pub target: usize,
    pub output: f64,
    pub delta: Option<f64>,
    pub baseline_output: Option<f64>,
    pub seconds: f64,
}

/// File stem for a sample id (`melanoma/123.jpg` -> `melanoma_123_jpg`). The
/// extension is kept: `dup.jpg` and `dup.png` are two samples and must not
/// share map files.
pub fn stem(id: &str) -> String {
    let joined = id.replace(['/', '\\'], "_");
    match joined.rsplit_once('.') {
        Some((base, ext)) if !base.is_empty() => format!("{base}_{ext}"),
        _ => joined,
    }
}

/// Refuses a set of ids whose map files would collide (ids are unique, but
/// `a_b/c.jpg` and `a/b_c.jpg` flatten to the same stem).
fn check_distinct_stems<'a>(ids: impl Iterator<Item = &'a String>) -> Result<()> {
    let mut seen = BTreeMap::new();
    for id in ids {
        if let Some(other) = seen.insert(stem(id), id) {
            return Err(Error::Dataset(format!(
                "samples '{other}' and '{id}' would share the map file stem '{}'; rename one of them",
                stem(id)
            )));
        }
    }
    Ok(())
}

/// Explains `rows` (with their predictions) under `model`, writing maps to `out_dir`.
#[allow(clippy::too_many_arguments)]
pub fn explain_rows(
    model: &Classifier,
    cache: &ImageCache,
    rows: &[(usize, EvalRow)],
    methods: &[Method],
    cfg: &ExplainConfig,
    positive: usize,
    out_dir: &Path,
    sink: &mut dyn EventSink,
    cancel: &AtomicBool,
    job: JobId,
) -> Result<(Vec<ExplainedSample>, Vec<MapRecord>)> {
    check_distinct_stems(rows.iter().map(|(row, _)| &cache.ids[*row]))?;
    crate::files::clean_stale_temps(out_dir);
    let records_path = out_dir.join("maps.json");
    let mut records: Vec<MapRecord> = std::fs::read_to_string(&records_path)
        .ok()
        .and_then(|t| serde_json::from_str(&t).ok())
        .unwrap_or_default();
    let mut samples = Vec::new();
    let total = (rows.len() * methods.len()) as u64;
    let mut done = 0u64;
    let started = std::time::Instant::now();
    for (row, pred) in rows {
        let p = pred.probabilities(model.meta.temperature);
        let predicted = (0..p.len())
            .max_by(|&a, &b| p[a].total_cmp(&p[b]))
            .unwrap_or(0);
        let id = &cache.ids[*row];
        let s = stem(id);
        let mut maps = BTreeMap::new();
        let x = normalise(&cache.batch(&[*row]), &model.meta.normalisation).squeeze_dim(0);
        let rgb = tensor_to_rgb(&cache.batch(&[*row]).squeeze_dim(0))?;
        for &method in methods {
            if cancel.load(Ordering::Relaxed) {
                return Err(Error::Cancelled);
            }
            let map_file = output::map_path(out_dir, &s, method.key(), output::MapFile::Heatmap);
            let have = records.iter().any(|r| &r.id == id && r.method == method);
            let heatmap = if have && map_file.exists() {
                let (values, height, width) = read_map(&map_file)?;
                Heatmap {
                    values,
                    height,
                    width,
                }
            } else {
                let e = explain(model, &x, method, cfg)?;
                output::write(&e, &rgb, out_dir, &s)?;
                records.retain(|r| !(&r.id == id && r.method == method));
                records.push(MapRecord {
                    id: id.clone(),
                    method,
                    target: e.target,
                    output: e.output,
                    delta: e.delta,
                    baseline_output: e.baseline_output,
                    seconds: e.seconds,
                });
                let size = e.heatmap.size();
                let text = serde_json::to_string_pretty(&records)
                    .map_err(|e| Error::Other(e.to_string()))?;
                crate::files::write_bytes(&records_path, text.as_bytes())?;
                Heatmap {
                    values: to_vec(&e.heatmap)?,
                    height: size[0] as usize,
                    width: size[1] as usize,
                }
            };
            maps.insert(method, heatmap);
            done += 1;
            sink.send(Event::Progress {
                job,
                stage: format!("{}: {id} {}", model.meta.name, method.key()),
                done,
                total,
                eta_seconds: Some(
                    started.elapsed().as_secs_f64() / done as f64 * (total - done) as f64,
                ),
            });
        }
        samples.push(ExplainedSample {
            id: id.clone(),
            label: cache.labels[*row],
            predicted,
            probability: p.get(positive).copied().unwrap_or(f64::NAN),
            maps,
        });
    }
    Ok((samples, records))
}
