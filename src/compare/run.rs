//! The comparison pipeline: explain one split with every model and method,
//! then compute within-model and cross-model agreement and write them out.

use std::collections::HashMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicBool;

use serde::Serialize;

use super::agreement::{cross_model, within_model, CrossModel, ExplainedSample, WithinModel};
use super::similarity::{CompareOptions, Metric};
use crate::data::cache::ImageCache;
use crate::data::scan::Scan;
use crate::engine::events::{EventSink, JobId};
use crate::error::{Error, Result};
use crate::eval::predict_rows;
use crate::explain::split::{explain_rows, MapRecord};
use crate::explain::{ExplainConfig, Method};
use crate::model::Classifier;

#[derive(Debug, Clone, Serialize)]
pub struct ModelAgreement {
    pub model: String,
    pub checkpoint: PathBuf,
    pub within: WithinModel,
    pub maps: Vec<MapRecord>,
}

#[derive(Debug, Clone, Serialize)]
pub struct ComparisonReport {
    pub split: String,
    pub sample_ids: Vec<String>,
    pub methods: Vec<Method>,
    pub models: Vec<ModelAgreement>,
    pub cross: Vec<CrossModel>,
}

/// Everything a comparison needs besides the models.
pub struct CompareJob<'a> {
    pub data: &'a Scan,
    pub sample_ids: Vec<String>,
    pub split: String,
    pub methods: Vec<Method>,
    pub explain: ExplainConfig,
    pub positive: usize,
    pub out_dir: PathBuf,
    pub sink: &'a mut dyn EventSink,
    pub cancel: &'a AtomicBool,
    pub job: JobId,
}

/// Explains the split with each model (first = reference) and compares.
pub fn compare(models: &[(PathBuf, Classifier)], job: CompareJob) -> Result<ComparisonReport> {
    let CompareJob {
        data,
        sample_ids,
        split,
        methods,
        explain,
        positive,
        out_dir,
        sink,
        cancel,
        job,
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
    for (path, model) in models {
        let size = model.meta.input_size;
        let cache = match caches.entry(size) {
            std::collections::hash_map::Entry::Occupied(e) => e.into_mut(),
            std::collections::hash_map::Entry::Vacant(e) => {
                e.insert(ImageCache::build(&samples, size)?)
            }
        };
        let rows: Vec<usize> = (0..cache.len()).collect();
        let preds = predict_rows(model, cache, &rows, 32)?;
        let pairs: Vec<(usize, _)> = rows.into_iter().zip(preds).collect();
        let dir = out_dir.join(&model.meta.name);
        std::fs::create_dir_all(&dir).map_err(|e| Error::io(&dir, e))?;
        let (maps, records) = explain_rows(
            model, cache, &pairs, &methods, &explain, positive, &dir, sink, cancel, job,
        )?;
        let within = within_model(&maps, &methods, &data.classes, &opts);
        per_model.push(ModelAgreement {
            model: model.meta.name.clone(),
            checkpoint: path.clone(),
            within,
            maps: records,
        });
        explained.push((model.meta.name.clone(), maps));
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

fn io(path: &Path) -> impl Fn(std::io::Error) -> Error + '_ {
    move |e| Error::io(path, e)
}

/// CSV rows are collected in memory and written atomically when complete.
fn csv_file(_path: &Path) -> Result<Vec<u8>> {
    Ok(Vec::new())
}

/// `agreement.json`, `within_<model>.csv` (one row per image, metric and method
/// pair) and `cross_<a>_vs_<b>.csv` (one row per image and method).
pub fn write(report: &ComparisonReport, out_dir: &Path) -> Result<()> {
    std::fs::create_dir_all(out_dir).map_err(|e| Error::io(out_dir, e))?;
    let json = out_dir.join("agreement.json");
    let text = serde_json::to_string_pretty(report).map_err(|e| Error::Other(e.to_string()))?;
    crate::files::write_bytes(&json, text.as_bytes())?;
    for m in &report.models {
        let path = out_dir.join(format!("within_{}.csv", m.model));
        let mut f = csv_file(&path)?;
        writeln!(f, "sample,label,correct,metric,method_a,method_b,value").map_err(io(&path))?;
        for s in &m.within.per_sample {
            for metric in Metric::ALL {
                let mat = &s.matrices[metric.name()];
                for (i, row) in mat.iter().enumerate() {
                    for (j, value) in row.iter().enumerate().skip(i + 1) {
                        let (a, b) = (&report.methods[i], &report.methods[j]);
                        writeln!(
                            f,
                            "{},{},{},{metric},{a},{b},{value}",
                            s.id, s.label, s.correct
                        )
                        .map_err(io(&path))?;
                    }
                }
            }
        }
        crate::files::write_bytes(&path, &f)?;
    }
    for c in &report.cross {
        let path = out_dir.join(format!("cross_{}_vs_{}.csv", c.model_a, c.model_b));
        let mut f = csv_file(&path)?;
        let names: Vec<&str> = Metric::ALL.iter().map(|m| m.name()).collect();
        writeln!(f, "sample,method,{}", names.join(",")).map_err(io(&path))?;
        for s in &c.per_sample {
            let values: Vec<String> = names.iter().map(|k| s.metrics[*k].to_string()).collect();
            writeln!(f, "{},{},{}", s.id, s.method, values.join(",")).map_err(io(&path))?;
        }
        crate::files::write_bytes(&path, &f)?;
    }
    Ok(())
}
