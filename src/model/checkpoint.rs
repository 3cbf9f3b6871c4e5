//! Checkpoints: `weights/<name>.safetensors` (tensors, native names) plus
//! `weights/<name>.toml` (everything needed to use them again). Both writes are
//! atomic (temp file + rename) so an interrupted save never leaves half a file.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use tch::nn;

use super::config::{EfficientNetConfig, Normalisation};
use crate::error::{Error, Result};

/// Metadata stored beside the tensors.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CheckpointMeta {
    pub name: String,
    pub model: EfficientNetConfig,
    /// Input (height, width) in pixels.
    pub input_size: [i64; 2],
    pub normalisation: Normalisation,
    /// Class names in logit index order.
    pub class_names: Vec<String>,
    /// Softmax temperature from calibration (1.0 = uncalibrated).
    #[serde(default = "one")]
    pub temperature: f64,
    pub created: String,
    pub melxai_version: String,
    /// Training configuration as used (free-form table; see `train`).
    #[serde(default)]
    pub training: toml::Table,
    /// Data split by file name, for reproducible evaluation.
    #[serde(default)]
    pub split: Option<SplitRecord>,
    /// Headline metrics at save time.
    #[serde(default)]
    pub metrics: BTreeMap<String, f64>,
    /// Resume state (epoch, optimiser step) for interrupted training.
    #[serde(default)]
    pub progress: Option<TrainingProgress>,
}

fn one() -> f64 {
    1.0
}

/// Which files went where. Paths are relative to the data root.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct SplitRecord {
    pub seed: u64,
    /// Fold index and count for k-fold runs.
    #[serde(default)]
    pub fold: Option<(usize, usize)>,
    pub train: Vec<String>,
    pub val: Vec<String>,
    pub test: Vec<String>,
}

/// Where a training run stood when this checkpoint was written.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct TrainingProgress {
    pub epochs_done: usize,
    pub epochs_total: usize,
    pub best_epoch: usize,
    pub best_score: f64,
    pub finished: bool,
}

impl CheckpointMeta {
    pub fn new(name: &str, model: EfficientNetConfig, class_names: Vec<String>) -> Self {
        let res = model.resolution;
        CheckpointMeta {
            name: name.to_string(),
            input_size: [res, res],
            normalisation: model.normalisation(),
            model,
            class_names,
            temperature: 1.0,
            created: humantime::format_rfc3339_seconds(std::time::SystemTime::now()).to_string(),
            melxai_version: env!("CARGO_PKG_VERSION").to_string(),
            training: toml::Table::new(),
            split: None,
            metrics: BTreeMap::new(),
            progress: None,
        }
    }
}

/// `path` with its checkpoint extension replaced by `ext` (or `ext` appended
/// when `path` is a bare stem such as `weights/run-1.5`).
fn with_checkpoint_extension(path: &Path, ext: &str) -> PathBuf {
    match path.extension().and_then(|e| e.to_str()) {
        Some("toml") | Some("safetensors") => path.with_extension(ext),
        _ => {
            let mut s = path.as_os_str().to_owned();
            s.push(".");
            s.push(ext);
            PathBuf::from(s)
        }
    }
}

/// The `.toml` beside a checkpoint (`path` names either file or the stem).
pub fn meta_path(path: &Path) -> PathBuf {
    with_checkpoint_extension(path, "toml")
}

/// The `.safetensors` of a checkpoint (`path` names either file or the stem).
pub fn tensors_path(path: &Path) -> PathBuf {
    with_checkpoint_extension(path, "safetensors")
}

/// Whether both files of a checkpoint exist.
pub fn exists(path: &Path) -> bool {
    tensors_path(path).exists() && meta_path(path).exists()
}

pub(crate) fn atomic_write(path: &Path, write: impl FnOnce(&Path) -> Result<()>) -> Result<()> {
    if let Some(dir) = path.parent() {
        if !dir.as_os_str().is_empty() {
            std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
        }
    }
    // Keep the extension last: tch picks the format from it.
    let file = path
        .file_name()
        .and_then(|f| f.to_str())
        .unwrap_or("checkpoint");
    let tmp = path.with_file_name(format!(
        ".{file}.tmp-{}.{}",
        std::process::id(),
        extension(path)
    ));
    write(&tmp)?;
    std::fs::rename(&tmp, path).map_err(|e| Error::io(path, e))
}

fn extension(path: &Path) -> String {
    path.extension()
        .and_then(|e| e.to_str())
        .unwrap_or("bin")
        .to_string()
}

/// Writes tensors and metadata. `path` may name either file or the stem.
pub fn save(vs: &nn::VarStore, meta: &CheckpointMeta, path: &Path) -> Result<PathBuf> {
    let tensors = tensors_path(path);
    atomic_write(&tensors, |tmp| {
        let mut vars: Vec<(String, tch::Tensor)> = vs.variables().into_iter().collect();
        vars.sort_by(|a, b| a.0.cmp(&b.0));
        let cpu: Vec<(String, tch::Tensor)> = vars
            .into_iter()
            .map(|(n, t)| (n, t.to_device(tch::Device::Cpu)))
            .collect();
        tch::Tensor::write_safetensors(&cpu, tmp).map_err(Error::from)
    })?;
    write_meta(&tensors, meta)?;
    Ok(tensors)
}

/// Rewrites only the metadata of a checkpoint, atomically (`path` may name
/// either file); the tensors are left alone.
pub fn write_meta(path: &Path, meta: &CheckpointMeta) -> Result<()> {
    let meta_file = meta_path(path);
    let text = toml::to_string_pretty(meta).map_err(|e| Error::Checkpoint {
        path: meta_file.clone(),
        message: format!("cannot serialise metadata: {e}"),
    })?;
    atomic_write(&meta_file, |tmp| {
        std::fs::write(tmp, text).map_err(|e| Error::io(tmp, e))
    })
}

/// Reads the metadata of a checkpoint (`path` may name either file).
pub fn read_meta(path: &Path) -> Result<CheckpointMeta> {
    let meta_file = meta_path(path);
    let text = std::fs::read_to_string(&meta_file).map_err(|e| Error::Checkpoint {
        path: meta_file.clone(),
        message: format!("cannot read metadata: {e}"),
    })?;
    toml::from_str(&text).map_err(|e| Error::Checkpoint {
        path: meta_file,
        message: format!("invalid metadata: {e}"),
    })
}
