//! The compare job: explain one split with every model (first = reference)
//! and method, then compute within-model and cross-model agreement and write
//! `agreement.json` and the CSVs.

use std::collections::HashMap;
use std::path::PathBuf;

use super::evaluate::{evaluate, EvaluateJob};
use super::explain::{explain_split, ExplainJob};
use super::JobContext;
use crate::compare::agreement::{cross_model, members_agreement, within_model, ExplainedSample};
use crate::compare::run::{write, ComparisonReport, ModelAgreement};
use crate::compare::similarity::CompareOptions;
use crate::data::cache::ImageCache;
use crate::data::scan::Scan;
use crate::ensemble::Model;
use crate::error::{Error, Result};
use crate::explain::{ExplainConfig, Method};

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
    for ((path, model), label) in models.iter().zip(labels(models)) {
        let size = model.meta.input_size;
        let cache = match caches.entry(size) {
            std::collections::hash_map::Entry::Occupied(e) => e.into_mut(),
            std::collections::hash_map::Entry::Vacant(e) => {
                e.insert(ImageCache::build(&samples, size)?)
            }
        };
        let rows: Vec<usize> = (0..cache.len()).collect();
        let preds = evaluate(
            ctx,
            EvaluateJob {
                model,
                cache,
                rows: &rows,
            },
        )?;
        let pairs: Vec<(usize, _)> = rows.into_iter().zip(preds).collect();
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
    };
    write(&report, &out_dir)?;
    Ok(report)
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
