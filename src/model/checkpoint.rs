//! Checkpoints: `weights/<name>.safetensors` (tensors, native names) plus
//! `weights/<name>.toml` (everything needed to use them again).
//!
//! A checkpoint is committed as one unit. Every part (tensors, and for the
//! per-epoch "last" checkpoint the optimiser state and history) is written
//! atomically first; the metadata is written last and carries the SHA-256 of
//! each part under `[files]`, so it is the manifest. A run killed between two
//! renames leaves parts that do not match the manifest, and loading refuses
//! them instead of mixing epochs. Metadata without `[files]` (written before
//! manifests existed) is accepted unchecked.
//!
//! Metadata is validated on read: every value that sizes an allocation or a
//! layer, or enters the softmax, is range-checked and the error names the key.

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
    /// Manifest: SHA-256 (hex) of every file committed with this metadata, by
    /// file name in the metadata's folder.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub files: BTreeMap<String, String>,
}

/// Smallest and largest input side (pixels) a checkpoint may declare; below 32
/// a convolution kernel outgrows its input, above 4096 activations do not fit.
pub const INPUT_SIDE_RANGE: std::ops::RangeInclusive<i64> = 32..=4096;
/// Number of classes a checkpoint may declare.
pub const NUM_CLASSES_RANGE: std::ops::RangeInclusive<i64> = 2..=100_000;

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
            files: BTreeMap::new(),
        }
    }

    /// Checks every value that sizes the network or enters the softmax.
    /// The error names the key and the allowed range.
    pub fn validate(&self) -> std::result::Result<(), String> {
        // The name becomes folder and file names (reports/<name>/, maps).
        crate::validation::check::file_name("name", &self.name).map_err(|e| e.to_string())?;
        let m = &self.model;
        let unit = |key: &str, v: f64, lo: f64, hi: f64| {
            if v.is_finite() && v >= lo && v < hi {
                Ok(())
            } else {
                Err(format!("{key} = {v} is outside [{lo}, {hi})"))
            }
        };
        unit("model.width", m.width, 0.1, 8.0)?;
        unit("model.depth", m.depth, 0.1, 8.0)?;
        unit("model.dropout", m.dropout, 0.0, 1.0)?;
        unit("model.drop_connect", m.drop_connect, 0.0, 1.0)?;
        if !INPUT_SIDE_RANGE.contains(&m.resolution) {
            return Err(format!(
                "model.resolution = {} is outside {}..={}",
                m.resolution,
                INPUT_SIDE_RANGE.start(),
                INPUT_SIDE_RANGE.end()
            ));
        }
        if !NUM_CLASSES_RANGE.contains(&m.num_classes) {
            return Err(format!(
                "model.num_classes = {} is outside {}..={}",
                m.num_classes,
                NUM_CLASSES_RANGE.start(),
                NUM_CLASSES_RANGE.end()
            ));
        }
        for (i, side) in self.input_size.iter().enumerate() {
            if !INPUT_SIDE_RANGE.contains(side) {
                return Err(format!(
                    "input_size[{i}] = {side} is outside {}..={} pixels",
                    INPUT_SIDE_RANGE.start(),
                    INPUT_SIDE_RANGE.end()
                ));
            }
        }
        for (i, (mean, std)) in self
            .normalisation
            .mean
            .iter()
            .zip(&self.normalisation.std)
            .enumerate()
        {
            if !mean.is_finite() {
                return Err(format!("normalisation.mean[{i}] = {mean} is not finite"));
            }
            if !(std.is_finite() && *std > 0.0) {
                return Err(format!(
                    "normalisation.std[{i}] = {std} must be finite and > 0"
                ));
            }
        }
        if self.class_names.len() as i64 != m.num_classes {
            return Err(format!(
                "class_names has {} names but the model has {} outputs (model.num_classes)",
                self.class_names.len(),
                m.num_classes
            ));
        }
        if !(self.temperature.is_finite() && self.temperature > 0.0) {
            return Err(format!(
                "temperature = {} must be finite and > 0 (1.0 = uncalibrated)",
                self.temperature
            ));
        }
        Ok(())
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

/// SHA-256 (hex) of a file's content.
pub fn hash_file(path: &Path) -> Result<String> {
    use sha2::{Digest, Sha256};
    use std::io::Read;
    let mut f = std::fs::File::open(path).map_err(|e| Error::io(path, e))?;
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = f.read(&mut buf).map_err(|e| Error::io(path, e))?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
    }
    Ok(hasher
        .finalize()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect())
}

/// Fills the temporary path it is given with one part's content.
/// `Send`, so a checkpoint can be committed from a background thread.
pub type PartWriter<'a> = Box<dyn FnOnce(&Path) -> Result<()> + Send + 'a>;

/// Something committed together with a checkpoint (optimiser state, history):
/// a file name in the checkpoint's folder and the writer that fills the
/// temporary path it is given.
pub struct Part<'a> {
    pub path: PathBuf,
    pub write: PartWriter<'a>,
}

fn file_key(path: &Path) -> String {
    path.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default()
}

/// Writes `path` atomically through `write` and returns its content hash
/// (taken from the temporary file before the rename, so it is what landed).
fn write_part(path: &Path, write: impl FnOnce(&Path) -> Result<()>) -> Result<String> {
    let mut hash = String::new();
    crate::files::write_with_path(path, |tmp| {
        write(tmp)?;
        hash = hash_file(tmp)?;
        Ok(())
    })?;
    Ok(hash)
}

/// Writes tensors and metadata. `path` may name either file or the stem.
pub fn save(vs: &nn::VarStore, meta: &CheckpointMeta, path: &Path) -> Result<PathBuf> {
    save_with_parts(vs, meta, path, Vec::new())
}

/// Writes tensors, then every part, then the metadata naming all their hashes
/// (the commit point). Stale temp files of killed runs in the folder are removed.
pub fn save_with_parts(
    vs: &nn::VarStore,
    meta: &CheckpointMeta,
    path: &Path,
    parts: Vec<Part<'_>>,
) -> Result<PathBuf> {
    save_host_tensors(host_variables(vs), meta, path, parts)
}

/// A variable store's tensors on the host, sorted by name, copied with a
/// few device reads instead of one per tensor ([`to_host`]).
pub fn host_variables(vs: &nn::VarStore) -> Vec<(String, tch::Tensor)> {
    let mut vars: Vec<(String, tch::Tensor)> = vs.variables().into_iter().collect();
    vars.sort_by(|a, b| a.0.cmp(&b.0));
    let (names, tensors): (Vec<String>, Vec<tch::Tensor>) = vars.into_iter().unzip();
    names.into_iter().zip(to_host(&tensors)).collect()
}

/// Host copies of `tensors`. On a GPU each copy to the host waits for the
/// device, and a checkpoint has hundreds of tensors: tensors of one dtype
/// are concatenated on the device and read back once, then split on the
/// host (values unchanged).
pub fn to_host(tensors: &[tch::Tensor]) -> Vec<tch::Tensor> {
    let mut out: Vec<Option<tch::Tensor>> = (0..tensors.len()).map(|_| None).collect();
    let mut kinds: Vec<tch::Kind> = Vec::new();
    for t in tensors {
        if t.device() == tch::Device::Cpu {
            continue;
        }
        if !kinds.contains(&t.kind()) {
            kinds.push(t.kind());
        }
    }
    for (i, t) in tensors.iter().enumerate() {
        if t.device() == tch::Device::Cpu {
            out[i] = Some(t.detach().copy());
        }
    }
    for kind in kinds {
        let idx: Vec<usize> = (0..tensors.len())
            .filter(|&i| tensors[i].device() != tch::Device::Cpu && tensors[i].kind() == kind)
            .collect();
        let flat: Vec<tch::Tensor> = idx
            .iter()
            .map(|&i| tensors[i].detach().reshape([-1]))
            .collect();
        let host = tch::Tensor::cat(&flat, 0).to_device(tch::Device::Cpu);
        let mut offset = 0i64;
        for &i in &idx {
            let n = tensors[i].numel() as i64;
            out[i] = Some(host.narrow(0, offset, n).view(tensors[i].size().as_slice()));
            offset += n;
        }
    }
    out.into_iter()
        .map(|t| t.expect("every tensor copied"))
        .collect()
}

/// [`save_with_parts`] for tensors already on the host (sorted by name): what
/// a background commit runs, off the device.
pub fn save_host_tensors(
    host: Vec<(String, tch::Tensor)>,
    meta: &CheckpointMeta,
    path: &Path,
    parts: Vec<Part<'_>>,
) -> Result<PathBuf> {
    let tensors = tensors_path(path);
    if let Some(dir) = tensors.parent() {
        crate::files::clean_stale_temps(dir);
    }
    let mut files = BTreeMap::new();
    let hash = write_part(&tensors, |tmp| {
        tch::Tensor::write_safetensors(&host, tmp).map_err(Error::from)
    })?;
    files.insert(file_key(&tensors), hash);
    for part in parts {
        let hash = write_part(&part.path, part.write)?;
        files.insert(file_key(&part.path), hash);
    }
    let mut meta = meta.clone();
    meta.files = files;
    write_meta(&tensors, &meta)?;
    Ok(tensors)
}

/// Rewrites only the metadata of a checkpoint, atomically (`path` may name
/// either file); the tensors are left alone and the manifest is kept.
pub fn write_meta(path: &Path, meta: &CheckpointMeta) -> Result<()> {
    let meta_file = meta_path(path);
    crate::files::write_bytes(&meta_file, meta_text(&meta_file, meta)?.as_bytes())
}

/// The `.toml` text of `meta` (for writers that stage several files);
/// errors name `meta_file`.
pub fn meta_text(meta_file: &Path, meta: &CheckpointMeta) -> Result<String> {
    toml::to_string_pretty(meta).map_err(|e| Error::Checkpoint {
        path: meta_file.to_path_buf(),
        message: format!("cannot serialise metadata: {e}"),
    })
}

/// Reads and validates the metadata of a checkpoint (`path` may name either file).
pub fn read_meta(path: &Path) -> Result<CheckpointMeta> {
    let meta_file = meta_path(path);
    let text = std::fs::read_to_string(&meta_file).map_err(|e| Error::Checkpoint {
        path: meta_file.clone(),
        message: format!("cannot read metadata: {e}"),
    })?;
    let meta: CheckpointMeta = toml::from_str(&text).map_err(|e| Error::Checkpoint {
        path: meta_file.clone(),
        message: format!("invalid metadata: {e}"),
    })?;
    meta.validate().map_err(|message| Error::Checkpoint {
        path: meta_file,
        message: format!("invalid metadata: {message}"),
    })?;
    Ok(meta)
}

/// Checks that `file` (beside the metadata) is the one the manifest names.
/// Metadata without a manifest, or a file it does not list, passes.
pub fn verify_part(meta: &CheckpointMeta, meta_source: &Path, file: &Path) -> Result<()> {
    let Some(expected) = meta.files.get(&file_key(file)) else {
        return Ok(());
    };
    if !file.exists() {
        return Err(Error::Checkpoint {
            path: file.into(),
            message: format!(
                "missing, but {} lists it as part of the checkpoint",
                meta_path(meta_source).display()
            ),
        });
    }
    let actual = hash_file(file)?;
    if &actual != expected {
        return Err(Error::Checkpoint {
            path: file.into(),
            message: format!(
                "content does not match {} (an interrupted save left parts of two different checkpoints); it was not used. Train again, or resume from an intact checkpoint",
                meta_path(meta_source).display()
            ),
        });
    }
    Ok(())
}

/// Checks every part the manifest lists (tensors, optimiser state, history).
pub fn verify_all(meta: &CheckpointMeta, path: &Path) -> Result<()> {
    let dir = meta_path(path)
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_default();
    for name in meta.files.keys() {
        verify_part(meta, path, &dir.join(name))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::config::EfficientNetConfig;

    fn meta() -> CheckpointMeta {
        CheckpointMeta::new(
            "t",
            EfficientNetConfig::lite0(2),
            vec!["melanoma".into(), "naevus".into()],
        )
    }

    #[test]
    fn valid_metadata_passes() {
        assert_eq!(meta().validate(), Ok(()));
    }

    #[test]
    fn out_of_range_values_name_their_key() {
        type Change = Box<dyn Fn(&mut CheckpointMeta)>;
        let cases: Vec<(Change, &str)> = vec![
            (Box::new(|m| m.input_size = [0, 224]), "input_size[0]"),
            (Box::new(|m| m.input_size = [224, -5]), "input_size[1]"),
            (Box::new(|m| m.input_size = [224, 1 << 40]), "input_size[1]"),
            (Box::new(|m| m.temperature = 0.0), "temperature"),
            (Box::new(|m| m.temperature = f64::NAN), "temperature"),
            (Box::new(|m| m.temperature = -1.0), "temperature"),
            (Box::new(|m| m.class_names.push("x".into())), "class_names"),
            (Box::new(|m| m.model.num_classes = 1), "num_classes"),
            (Box::new(|m| m.name = "../../evil".into()), "name"),
            (Box::new(|m| m.name = String::new()), "name"),
            (Box::new(|m| m.model.depth = 1e9), "model.depth"),
            (
                Box::new(|m| m.normalisation.std[1] = 0.0),
                "normalisation.std[1]",
            ),
        ];
        for (change, key) in cases {
            let mut m = meta();
            change(&mut m);
            let e = m.validate().unwrap_err();
            assert!(e.contains(key), "{key}: {e}");
        }
    }

    /// Host copies keep values, shapes and dtypes, and are copies: a
    /// background commit must not see the training change the parameters.
    #[test]
    fn host_copies_are_independent_and_exact() {
        let a = tch::Tensor::rand([2, 3], (tch::Kind::Float, tch::Device::Cpu));
        let b = tch::Tensor::from_slice(&[7i64, 8, 9]);
        let c = tch::Tensor::rand([4], (tch::Kind::Float, tch::Device::Cpu));
        let host = to_host(&[a.shallow_clone(), b.shallow_clone(), c.shallow_clone()]);
        for (h, t) in host.iter().zip([&a, &b, &c]) {
            assert_eq!(h.size(), t.size());
            assert_eq!(h.kind(), t.kind());
            assert!(h.equal(t));
        }
        let _ = a.shallow_clone().fill_(0.0);
        assert!(
            !host[0].equal(&a),
            "the copy must not alias the live tensor"
        );
        if tch::Cuda::is_available() {
            let g = [
                a.to_device(tch::Device::Cuda(0)),
                b.to_device(tch::Device::Cuda(0)),
            ];
            let h = to_host(&g);
            assert!(h[0].equal(&a) && h[1].equal(&b));
        }
    }
}
