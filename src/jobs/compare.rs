//! The compare job: explain one split with every model (first = reference)
//! and method, then compute within-model and cross-model agreement and write
//! `agreement.json` and the CSVs.

use std::collections::HashMap;
use std::path::PathBuf;

use super::evaluate::evaluate_all;
use super::explain::{explain_split, ExplainJob};
use super::JobContext;
use crate::compare::agreement::{cross_model, members_agreement, within_model, ExplainedSample};
use crate::compare::run::{write, ComparisonReport, ModelAgreement};
use crate::compare::scores::scorecard::MapScores;
use crate::compare::scores::scorecard::{scorecard, ScoreSettings, Scorecard};
use crate::compare::similarity::CompareOptions;
use crate::data::cache::ImageCache;
use crate::data::masks::{load_mask, mask_path};
use crate::data::scan::Scan;
use crate::ensemble::Model;
use crate::error::{Error, Result};
use crate::explain::{ExplainConfig, Method};
use crate::jobs::score_store::{ScoreKey, ScoreStore};
use crate::jobs::scores::score_sample;
use crate::metrics::BootstrapOptions;
use crate::progress::progress_bars_allowed as bars;

pub struct CompareJob<'a> {
    pub data: &'a Scan,
    /// `(checkpoint, model)`; the first is the reference of cross-model agreement.
    pub models: &'a [(PathBuf, Model)],
    pub sample_ids: Vec<String>,
    /// Name of the split, for the report.
    pub split: String,
    pub methods: Vec<Method>,
    pub explain: ExplainConfig,
    pub positive: usize,
    /// Maps go to `<out_dir>/<model>/`, the agreement files to `out_dir`.
    pub out_dir: PathBuf,
    /// Score the reference model's maps (`[scores]`), with lesion masks
    /// from this folder when given.
    pub scores: Option<ScoreSettings>,
    pub masks: Option<PathBuf>,
}

pub fn compare(ctx: &mut JobContext, job: CompareJob) -> Result<ComparisonReport> {
    let CompareJob {
        data,
        models,
        sample_ids,
        split,
        methods,
        explain,
        positive,
        out_dir,
        scores,
        masks,
    } = job;
    let samples: Vec<_> = data
        .samples
        .iter()
        .filter(|s| sample_ids.contains(&s.id))
        .cloned()
        .collect();
    if samples.is_empty() {
        return Err(Error::Dataset(
            "none of the split's samples are in the data set".into(),
        ));
    }
    let opts = CompareOptions::default();
    let mut caches: HashMap<[i64; 2], ImageCache> = HashMap::new();
    let mut explained: Vec<(String, Vec<ExplainedSample>)> = Vec::new();
    let mut per_model = Vec::new();
    let mut scorecards = Vec::new();
    for ((path, model), label) in models.iter().zip(labels(models)) {
        let size = model.meta.input_size;
        let cache = match caches.entry(size) {
            std::collections::hash_map::Entry::Occupied(e) => e.into_mut(),
            std::collections::hash_map::Entry::Vacant(e) => e.insert(ImageCache::for_config(
                &samples,
                size,
                &ctx.config.data,
                bars(),
            )?),
        };
        let pairs = evaluate_all(ctx, model, cache)?;
        let dir = out_dir.join(&label);
        std::fs::create_dir_all(&dir).map_err(|e| Error::io(&dir, e))?;
        let split_maps = explain_split(
            ctx,
            ExplainJob {
                model,
                cache,
                rows: &pairs,
                methods: &methods,
                explain: &explain,
                positive,
                out_dir: Some(&dir),
            },
        )?;
        let wanted = scores
            .as_ref()
            .filter(|s| explained.is_empty() || s.all_models);
        if let Some(settings) = wanted {
            let job = ScoreJob {
                model,
                path,
                label: &label,
                cache,
                samples: &split_maps.samples,
                data,
                explain: &explain,
                settings,
                masks: masks.as_deref(),
                store: Some(&dir),
            };
            scorecards.push(score_split(ctx, job)?);
        }
        let within = within_model(&split_maps.samples, &methods, &data.classes, &opts);
        per_model.push(ModelAgreement {
            model: label.clone(),
            checkpoint: path.clone(),
            within,
            members: members_agreement(&split_maps.samples, &methods),
            maps: split_maps.records,
        });
        explained.push((label, split_maps.samples));
    }
    let mut cross = Vec::new();
    if let Some((ref_name, ref_maps)) = explained.first() {
        for (name, maps) in explained.iter().skip(1) {
            cross.push(cross_model(ref_name, ref_maps, name, maps, &methods, &opts));
        }
    }
    let report = ComparisonReport {
        split,
        sample_ids: samples.iter().map(|s| s.id.clone()).collect(),
        methods,
        models: per_model,
        cross,
        scores: scorecards,
    };
    write(&report, &out_dir)?;
    Ok(report)
}

/// What scoring one model's explained split needs.
pub struct ScoreJob<'a> {
    pub model: &'a Model,
    pub path: &'a std::path::Path,
    pub label: &'a str,
    pub cache: &'a ImageCache,
    pub samples: &'a [ExplainedSample],
    pub data: &'a Scan,
    pub explain: &'a ExplainConfig,
    pub settings: &'a ScoreSettings,
    pub masks: Option<&'a std::path::Path>,
    /// The model's maps folder: scores are kept there (`scores.json`) and
    /// reused when their key matches.
    pub store: Option<&'a std::path::Path>,
}

/// Every explained image's maps scored, then summarised with intervals and
/// paired method comparisons. Masks that are missing for an image leave its
/// localisation out (and say so).
fn score_split(ctx: &mut JobContext, job: ScoreJob) -> Result<Scorecard> {
    let (per_image, missing_masks) = score_images(ctx, &job)?;
    let opts = BootstrapOptions::new(1000, job.settings.seed);
    let mut card = scorecard(job.label, per_image, &opts)?;
    card.localisation_note = match (job.masks, missing_masks) {
        (None, _) => Some("no lesion masks given ([data] masks): no localisation scores".into()),
        (Some(dir), n) if n > 0 => Some(format!(
            "{n} of {} images have no usable mask in {}: their localisation is left out",
            job.samples.len(),
            dir.display()
        )),
        _ => None,
    };
    Ok(card)
}

/// Per-image scores of the explained maps (from the store where their key
/// matches), and how many images had no usable mask.
pub type ImageScores =
    std::collections::BTreeMap<String, std::collections::BTreeMap<String, MapScores>>;

/// Scores every sample of `job` (reusing stored ones), keeping new ones in
/// the store as they come: an interrupted scoring resumes.
pub fn score_images(ctx: &mut JobContext, job: &ScoreJob) -> Result<(ImageScores, usize)> {
    let mut per_image = ImageScores::new();
    let mut missing_masks = 0;
    let mut store = job.store.map(ScoreStore::open);
    let digest = match store {
        Some(_) => Some(job.model.content_digest()?),
        None => None,
    };
    for (i, sample) in job.samples.iter().enumerate() {
        ctx.cancel.check()?;
        let [h, w] = job.model.meta.input_size;
        let mask = match (
            job.masks,
            job.data.samples.iter().find(|s| s.id == sample.id),
        ) {
            (Some(dir), Some(s)) => match load_mask(&mask_path(dir, &s.path), h as u32, w as u32) {
                Ok(m) => Some(m),
                Err(_) => {
                    missing_masks += 1;
                    None
                }
            },
            _ => None,
        };
        let key = match (&store, &digest) {
            (Some(_), Some(d)) => Some(sample_key(job, d, sample, mask.as_deref())?),
            _ => None,
        };
        let stored = match (&store, &key) {
            (Some(s), Some(k)) => s.get(&sample.id, k),
            _ => None,
        };
        let scores = match stored {
            Some(found) => found,
            None => {
                let scores = score_sample(
                    job.model,
                    job.path,
                    job.cache,
                    sample,
                    job.explain,
                    job.settings,
                    mask.as_deref(),
                )?;
                if let (Some(s), Some(k)) = (&mut store, key) {
                    s.put(&sample.id, k, scores.clone())?;
                }
                scores
            }
        };
        per_image.insert(sample.id.clone(), scores);
        ctx.sink.send(crate::progress::Event::Progress {
            job: ctx.job,
            stage: format!("{}: scoring the maps of {}", job.label, sample.id),
            done: i as u64 + 1,
            total: job.samples.len() as u64,
            eta_seconds: None,
        });
    }
    Ok((per_image, missing_masks))
}

/// The store key of one sample's scores.
fn sample_key(
    job: &ScoreJob,
    model_digest: &str,
    sample: &ExplainedSample,
    mask: Option<&[bool]>,
) -> Result<String> {
    let row = job
        .cache
        .index_of(&sample.id)
        .ok_or_else(|| Error::Dataset(format!("sample '{}' not in the data set", sample.id)))?;
    let x = crate::data::image::normalise(&job.cache.batch(&[row]), &job.model.meta.normalisation);
    ScoreKey {
        model_digest,
        temperature: job.model.meta.temperature,
        x: &x,
        sample,
        explain: job.explain,
        settings: job.settings,
        mask,
    }
    .digest()
}

/// One label per model for its maps folder, report entry and CSV names: its
/// metadata name, or where models share one the checkpoint's file stem (then
/// `-2`, `-3`, ... while still shared). Two checkpoints with one metadata name
/// must not write into (and reuse from) one folder, and a metadata name that
/// is not a plain file name (`..`, `a/b`) must not pick the folder.
fn labels(models: &[(PathBuf, Model)]) -> Vec<String> {
    let shared = |name: &str| models.iter().filter(|(_, m)| m.meta.name == name).count() > 1;
    let plain = |name: &str| crate::validation::check::file_name("name", name).is_ok();
    let mut out: Vec<String> = Vec::with_capacity(models.len());
    for (path, model) in models {
        let mut label = if shared(&model.meta.name) || !plain(&model.meta.name) {
            path.file_stem()
                .map(crate::data::scan::name_text)
                .filter(|s| plain(s))
                .unwrap_or_else(|| "model".into())
        } else {
            model.meta.name.clone()
        };
        let base = label.clone();
        let mut n = 2;
        while out.contains(&label) {
            label = format!("{base}-{n}");
            n += 1;
        }
        out.push(label);
    }
    out
}
