//! The explain job: every image of a split under one model with several
//! methods. Each map goes to the watcher as a `Heatmap` event; with an
//! output folder the maps are also written (`.npy` + overlays + `maps.json`)
//! and maps already there are reused when they were made by the same model
//! content, settings and input (see [`crate::explain::provenance`]), so an
//! interrupted run picks up where it stopped and a changed one recomputes.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Instant;

use super::JobContext;
use crate::data::cache::ImageCache;
use crate::data::image::normalise;
use crate::data::npy::read_map;
use crate::ensemble::explain::explain_with_agreement;
use crate::ensemble::Model;
use crate::error::{Error, Result};
use crate::explain::heatmap::{tensor_to_rgb, to_vec};
use crate::explain::split::{stem, ExplainedSample, Heatmap, MapRecord, MemberAgreement};
use crate::explain::{output, provenance, ExplainConfig, Method};
use crate::progress::{Event, HeatmapData};
use crate::verdict::EvalRow;

pub struct ExplainJob<'a> {
    /// One checkpoint or an ensemble (explained through its combined output).
    pub model: &'a Model,
    pub cache: &'a ImageCache,
    /// Cache rows with the model's evaluation of each.
    pub rows: &'a [(usize, EvalRow)],
    pub methods: &'a [Method],
    pub explain: &'a ExplainConfig,
    pub positive: usize,
    /// Where maps are written and reused; `None` keeps them in memory only.
    pub out_dir: Option<&'a Path>,
}

/// The split's maps, and (with an output folder) what is recorded on disk.
pub struct ExplainedSplit {
    pub samples: Vec<ExplainedSample>,
    pub records: Vec<MapRecord>,
}

pub fn explain_split(ctx: &mut JobContext, job: ExplainJob) -> Result<ExplainedSplit> {
    crate::explain::split::check_distinct_stems(
        job.rows.iter().map(|(row, _)| &job.cache.ids[*row]),
    )?;
    let mut store = job.out_dir.map(MapStore::open);
    // Only stored maps need a key; the model is hashed once per split.
    let model_digest = match store {
        Some(_) => Some(job.model.content_digest()?),
        None => None,
    };
    let total = (job.rows.len() * job.methods.len()) as u64;
    let mut done = 0u64;
    let started = Instant::now();
    let mut samples = Vec::with_capacity(job.rows.len());
    for (row, pred) in job.rows {
        let model = job.model;
        let p = pred.probabilities(model.meta.temperature);
        let predicted = (0..p.len())
            .max_by(|&a, &b| p[a].total_cmp(&p[b]))
            .unwrap_or(0);
        let id = &job.cache.ids[*row];
        let image = job.cache.batch(&[*row]);
        let x = normalise(&image, &model.meta.normalisation).squeeze_dim(0);
        let rgb = tensor_to_rgb(&image.squeeze_dim(0))?;
        let input_digest = match model_digest {
            Some(_) => Some(provenance::input_digest(&x)?),
            None => None,
        };
        let mut maps = BTreeMap::new();
        let mut members = BTreeMap::new();
        let mut deltas = BTreeMap::new();
        for &method in job.methods {
            ctx.cancel.check()?;
            let key = match (&model_digest, &input_digest) {
                (Some(m), Some(i)) => provenance::map_key(m, method, job.explain, i),
                _ => String::new(),
            };
            let reused = match &store {
                Some(s) => s.reuse(id, method, &key)?,
                None => None,
            };
            let (heatmap, target, delta, agreement) = match reused {
                Some(found) => found,
                None => {
                    let (e, agreement) =
                        explain_with_agreement(model, &x, method, job.explain, Some(ctx.cancel))?;
                    if let Some(s) = &mut store {
                        s.write(&e, &rgb, id, method, key, agreement.clone())?;
                    }
                    let size = e.heatmap.size();
                    let heatmap = Heatmap {
                        values: to_vec(&e.heatmap)?,
                        height: size[0] as usize,
                        width: size[1] as usize,
                    };
                    (heatmap, e.target, e.delta, agreement)
                }
            };
            if let Some(a) = agreement {
                members.insert(method, a);
            }
            ctx.sink.send(Event::Heatmap {
                job: ctx.job,
                model: model.meta.name.clone(),
                map: HeatmapData {
                    sample_id: id.clone(),
                    method: method.key().to_string(),
                    height: heatmap.height,
                    width: heatmap.width,
                    values: heatmap.values.clone(),
                    target,
                    delta,
                },
            });
            if let Some(d) = delta {
                deltas.insert(method, d);
            }
            maps.insert(method, heatmap);
            done += 1;
            ctx.sink.send(Event::Progress {
                job: ctx.job,
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
            label: job.cache.labels[*row],
            predicted,
            probability: p.get(job.positive).copied().unwrap_or(f64::NAN),
            maps,
            deltas,
            members,
        });
    }
    Ok(ExplainedSplit {
        samples,
        records: store.map(|s| s.records).unwrap_or_default(),
    })
}

/// A stored map: `(map, target, delta, members' agreement)`.
type StoredMap = (Heatmap, usize, Option<f64>, Option<MemberAgreement>);

/// The maps of one model in one folder, with their records in `maps.json`.
struct MapStore {
    dir: PathBuf,
    records_path: PathBuf,
    records: Vec<MapRecord>,
}

impl MapStore {
    /// Reads `maps.json` when there is one (a broken one starts afresh: the
    /// maps are then recomputed and the file rewritten).
    fn open(dir: &Path) -> Self {
        crate::files::clean_stale_temps(dir);
        let records_path = dir.join("maps.json");
        let records = std::fs::read_to_string(&records_path)
            .ok()
            .and_then(|t| serde_json::from_str(&t).ok())
            .unwrap_or_default();
        MapStore {
            dir: dir.to_path_buf(),
            records_path,
            records,
        }
    }

    fn map_file(&self, id: &str, method: Method) -> PathBuf {
        output::map_path(&self.dir, &stem(id), method.key(), output::MapFile::Heatmap)
    }

    /// A map recorded under `key` and on disk. A record under another key
    /// (other weights, settings or image) is stale.
    fn reuse(&self, id: &str, method: Method, key: &str) -> Result<Option<StoredMap>> {
        let Some(record) = self
            .records
            .iter()
            .find(|r| r.id == id && r.method == method && !r.key.is_empty() && r.key == key)
        else {
            return Ok(None);
        };
        let file = self.map_file(id, method);
        if !file.exists() {
            return Ok(None);
        }
        let (values, height, width) = read_map(&file)?;
        let map = Heatmap {
            values,
            height,
            width,
        };
        Ok(Some((
            map,
            record.target,
            record.delta,
            record.members.clone(),
        )))
    }

    fn write(
        &mut self,
        e: &crate::explain::Explanation,
        rgb: &image::RgbImage,
        id: &str,
        method: Method,
        key: String,
        members: Option<MemberAgreement>,
    ) -> Result<()> {
        output::write(e, rgb, &self.dir, &stem(id))?;
        self.records.retain(|r| !(r.id == id && r.method == method));
        self.records.push(MapRecord {
            id: id.to_string(),
            method,
            target: e.target,
            output: e.output,
            delta: e.delta,
            baseline_output: e.baseline_output,
            seconds: e.seconds,
            key,
            members,
        });
        let text =
            serde_json::to_string_pretty(&self.records).map_err(|e| Error::Other(e.to_string()))?;
        crate::files::write_bytes(&self.records_path, text.as_bytes())
    }
}
