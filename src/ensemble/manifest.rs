//! The ensemble manifest: `<weights_dir>/<name>.ensemble.toml`.
//!
//! An ensemble owns no tensors. Its manifest names member checkpoints that
//! live beside it (`<member>.safetensors` + `<member>.toml`), records the
//! SHA-256 of each member's tensors as the member's own manifest states it
//! (so a member retrained or replaced under the same name is refused), the
//! fields every member must share (architecture, input size, normalisation,
//! class order), the combine rule, one temperature and an optional operating
//! point. It is written atomically like every other file.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::model::checkpoint::{self, CheckpointMeta};
use crate::model::config::{Arch, Normalisation};
use crate::verdict::conformal::ConformalPredictor;
use crate::verdict::OperatingPoint;

/// File-name suffix that marks an ensemble manifest.
pub const ENSEMBLE_SUFFIX: &str = ".ensemble.toml";

/// How member outputs become the ensemble's output (`combine` in the
/// manifest; see [`super::combine`]). Either way the combined vector is used
/// as logits: probabilities are `softmax(combined / temperature)`, so one
/// temperature, TTA (each network's logits averaged over the transforms
/// first) and explanations apply to both. The per-sample uncertainty comes
/// from the members' own probabilities (see [`crate::verdict::uncertainty`]).
///
/// - `MeanProbabilities` (what `train --folds` writes unless
///   `[train] combine` says otherwise): `ln` of the mean of the members'
///   probabilities. One over-confident member cannot outvote the others;
///   measured on MED-NODE's repeated cross-validation it ranks and scores
///   better than the mean of logits (README, "Ensembles").
/// - `MeanLogits`: the mean of the members' logit vectors. IG and DeepLIFT
///   of it are exactly the mean of the members' attributions. Manifests
///   without a `combine` key (none written by melxai) are read as this.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CombineRule {
    #[default]
    MeanProbabilities,
    MeanLogits,
}

impl CombineRule {
    /// The rule of a manifest that names none.
    fn unnamed() -> Self {
        CombineRule::MeanLogits
    }

    pub fn as_str(&self) -> &'static str {
        match self {
            CombineRule::MeanProbabilities => "mean_probabilities",
            CombineRule::MeanLogits => "mean_logits",
        }
    }
}

impl std::fmt::Display for CombineRule {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One member: a checkpoint name in the manifest's folder and the SHA-256 of
/// its tensors.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Member {
    pub name: String,
    pub sha256: String,
}

/// What every member must agree on; a member that differs is refused.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SharedFields {
    pub arch: Arch,
    /// Input (height, width) in pixels.
    pub input_size: [i64; 2],
    pub normalisation: Normalisation,
    /// Class names in logit index order.
    pub class_names: Vec<String>,
}

impl SharedFields {
    pub fn of(meta: &CheckpointMeta) -> Self {
        SharedFields {
            arch: meta.model.arch,
            input_size: meta.input_size,
            normalisation: meta.normalisation,
            class_names: meta.class_names.clone(),
        }
    }

    /// The first field where `meta` differs, as `(field, expected, found)`.
    pub fn mismatch(&self, meta: &CheckpointMeta) -> Option<(&'static str, String, String)> {
        let other = SharedFields::of(meta);
        if other.arch != self.arch {
            return Some(("arch", self.arch.to_string(), other.arch.to_string()));
        }
        if other.input_size != self.input_size {
            return Some((
                "input_size",
                format!("{:?}", self.input_size),
                format!("{:?}", other.input_size),
            ));
        }
        if other.class_names != self.class_names {
            return Some((
                "class_names",
                format!("{:?}", self.class_names),
                format!("{:?}", other.class_names),
            ));
        }
        if other.normalisation != self.normalisation {
            return Some((
                "normalisation",
                format!("{:?}", self.normalisation),
                format!("{:?}", other.normalisation),
            ));
        }
        None
    }
}

/// The manifest as stored.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EnsembleManifest {
    pub name: String,
    pub created: String,
    pub melxai_version: String,
    #[serde(default = "CombineRule::unnamed")]
    pub combine: CombineRule,
    /// Softmax temperature applied to the combined logits (1.0 = uncalibrated).
    pub temperature: f64,
    /// Which predictions the temperature was fitted on (free text, e.g.
    /// "out_of_fold (pooled, 170 images)").
    #[serde(default)]
    pub temperature_fitted_on: String,
    pub shared: SharedFields,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub operating_point: Option<OperatingPoint>,
    /// Conformal thresholds calibrated on the out-of-fold predictions at
    /// `temperature`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub conformal: Option<ConformalPredictor>,
    pub members: Vec<Member>,
}

/// Whether `path` names an ensemble manifest.
pub fn is_ensemble_path(path: &Path) -> bool {
    path.file_name()
        .and_then(|n| n.to_str())
        .is_some_and(|n| n.ends_with(ENSEMBLE_SUFFIX))
}

/// `<dir>/<name>.ensemble.toml`.
pub fn ensemble_path(dir: &Path, name: &str) -> PathBuf {
    dir.join(format!("{name}{ENSEMBLE_SUFFIX}"))
}

/// The name an ensemble manifest's file gives it (`x` for `x.ensemble.toml`).
pub fn name_of(path: &Path) -> Option<String> {
    path.file_name()
        .and_then(|n| n.to_str())
        .and_then(|n| n.strip_suffix(ENSEMBLE_SUFFIX))
        .map(str::to_string)
}

fn invalid(path: &Path, message: String) -> Error {
    Error::Checkpoint {
        path: path.to_path_buf(),
        message,
    }
}

impl EnsembleManifest {
    /// Checks the values a loader relies on; the message names the key.
    pub fn validate(&self) -> std::result::Result<(), String> {
        if self.members.is_empty() {
            return Err("members is empty (an ensemble needs at least one member)".into());
        }
        for (i, m) in self.members.iter().enumerate() {
            crate::validation::check::file_name(&format!("members[{i}].name"), &m.name)
                .map_err(|e| e.to_string())?;
            if self.members[..i].iter().any(|o| o.name == m.name) {
                return Err(format!("members[{i}].name = {:?} is listed twice", m.name));
            }
            let hex = m.sha256.len() == 64 && m.sha256.chars().all(|c| c.is_ascii_hexdigit());
            if !hex {
                return Err(format!(
                    "members[{i}].sha256 = {:?} is not a SHA-256 in hex",
                    m.sha256
                ));
            }
        }
        if !(self.temperature.is_finite() && self.temperature > 0.0) {
            return Err(format!(
                "temperature = {} must be finite and > 0 (1.0 = uncalibrated)",
                self.temperature
            ));
        }
        if self.shared.class_names.len() < 2 {
            return Err("shared.class_names needs at least two classes".into());
        }
        if let Some(op) = &self.operating_point {
            op.validate().map_err(|e| format!("operating_point.{e}"))?;
        }
        if let Some(c) = &self.conformal {
            c.validate().map_err(|e| format!("conformal.{e}"))?;
            let classes = self.shared.class_names.len();
            let per_class = c.settings.class_conditional;
            if per_class && c.quantiles.len() != classes {
                return Err(format!(
                    "conformal.quantiles has {} thresholds for {classes} classes",
                    c.quantiles.len()
                ));
            }
            if !per_class && c.quantiles.len() != 1 {
                return Err(format!(
                    "conformal.quantiles has {} thresholds; one without class_conditional",
                    c.quantiles.len()
                ));
            }
        }
        Ok(())
    }

    /// Path stem of member `m` (in the manifest's folder).
    pub fn member_path(manifest_path: &Path, m: &Member) -> PathBuf {
        manifest_path
            .parent()
            .unwrap_or_else(|| Path::new("."))
            .join(&m.name)
    }
}

/// Reads and validates a manifest.
pub fn read(path: &Path) -> Result<EnsembleManifest> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| invalid(path, format!("cannot read ensemble manifest: {e}")))?;
    let manifest: EnsembleManifest = toml::from_str(&text)
        .map_err(|e| invalid(path, format!("invalid ensemble manifest: {e}")))?;
    manifest
        .validate()
        .map_err(|e| invalid(path, format!("invalid ensemble manifest: {e}")))?;
    Ok(manifest)
}

/// Writes a manifest atomically.
pub fn write(path: &Path, manifest: &EnsembleManifest) -> Result<()> {
    crate::files::write_bytes(path, text(path, manifest)?.as_bytes())
}

/// The validated text of a manifest to be written at `path`.
fn text(path: &Path, manifest: &EnsembleManifest) -> Result<String> {
    manifest
        .validate()
        .map_err(|e| invalid(path, format!("refusing to write: {e}")))?;
    toml::to_string_pretty(manifest)
        .map_err(|e| invalid(path, format!("cannot serialise ensemble manifest: {e}")))
}

/// SHA-256 of a member's tensors: the one its own manifest records, or (for a
/// checkpoint written before manifests) the hash of the file itself.
pub fn member_tensors_hash(meta: &CheckpointMeta, stem: &Path) -> Result<String> {
    let tensors = checkpoint::tensors_path(stem);
    let key = tensors
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    match meta.files.get(&key) {
        Some(h) => Ok(h.clone()),
        None => checkpoint::hash_file(&tensors),
    }
}

/// Builds the manifest of an ensemble of the checkpoints `members` (path
/// stems, all in `dir`) combined by `combine`, refusing members that
/// disagree on a shared field. The temperature starts at 1.0 and there is no
/// operating point.
pub fn from_members(
    dir: &Path,
    name: &str,
    members: &[PathBuf],
    combine: CombineRule,
) -> Result<EnsembleManifest> {
    let target = ensemble_path(dir, name);
    let mut shared: Option<SharedFields> = None;
    let mut listed = Vec::new();
    for stem in members {
        let meta = checkpoint::read_meta(stem)?;
        let member_name = stem
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .map(|n| {
                n.strip_suffix(".safetensors")
                    .or_else(|| n.strip_suffix(".toml"))
                    .map(str::to_string)
                    .unwrap_or(n)
            })
            .unwrap_or_default();
        let parent = stem.parent().map(Path::to_path_buf).unwrap_or_default();
        let canonical = |p: &Path| {
            let p = if p.as_os_str().is_empty() {
                Path::new(".")
            } else {
                p
            };
            p.canonicalize().unwrap_or_else(|_| p.to_path_buf())
        };
        let same_dir = canonical(&parent) == canonical(dir);
        if !same_dir {
            return Err(invalid(
                &target,
                format!(
                    "member {} is not in {} (members live beside the manifest)",
                    stem.display(),
                    dir.display()
                ),
            ));
        }
        match &shared {
            None => shared = Some(SharedFields::of(&meta)),
            Some(s) => {
                if let Some((field, want, got)) = s.mismatch(&meta) {
                    return Err(invalid(
                        &target,
                        format!("member '{member_name}' differs in {field}: {got}, the first member has {want}"),
                    ));
                }
            }
        }
        listed.push(Member {
            sha256: member_tensors_hash(&meta, stem)?,
            name: member_name,
        });
    }
    let shared = shared.ok_or_else(|| invalid(&target, "no members given".into()))?;
    Ok(EnsembleManifest {
        name: name.to_string(),
        created: humantime::format_rfc3339_seconds(std::time::SystemTime::now()).to_string(),
        melxai_version: env!("CARGO_PKG_VERSION").to_string(),
        combine,
        temperature: 1.0,
        temperature_fitted_on: String::new(),
        shared,
        operating_point: None,
        conformal: None,
        members: listed,
    })
}

/// Stores `temperature` (and where it was fitted) in a manifest, atomically.
/// A manifest that already holds both is left untouched: a rewrite would
/// change the file the model's cached predictions are keyed on, and the next
/// evaluation would predict everything again for nothing.
pub fn store_temperature(path: &Path, temperature: f64, fitted_on: &str) -> Result<()> {
    match temperature_update(path, temperature, fitted_on)? {
        Some(text) => crate::files::write_bytes(path, &text),
        None => Ok(()),
    }
}

/// The manifest at `path` with `temperature` stored, as the bytes to write;
/// `None` when it already holds it (see [`store_temperature`]).
pub fn temperature_update(
    path: &Path,
    temperature: f64,
    fitted_on: &str,
) -> Result<Option<Vec<u8>>> {
    let mut m = read(path)?;
    if m.temperature == temperature && m.temperature_fitted_on == fitted_on {
        return Ok(None);
    }
    m.temperature = temperature;
    m.temperature_fitted_on = fitted_on.to_string();
    Ok(Some(text(path, &m)?.into_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn manifest() -> EnsembleManifest {
        EnsembleManifest {
            name: "e".into(),
            created: "now".into(),
            melxai_version: "0".into(),
            combine: CombineRule::MeanLogits,
            temperature: 1.5,
            temperature_fitted_on: String::new(),
            shared: SharedFields {
                arch: Arch::Lite0,
                input_size: [32, 32],
                normalisation: crate::model::EfficientNetConfig::lite0(2).normalisation(),
                class_names: vec!["melanoma".into(), "naevus".into()],
            },
            operating_point: None,
            conformal: None,
            members: vec![Member {
                name: "a".into(),
                sha256: "0".repeat(64),
            }],
        }
    }

    #[test]
    fn suffix_helpers_agree() {
        let p = ensemble_path(Path::new("w"), "run-cv");
        assert!(is_ensemble_path(&p));
        assert_eq!(name_of(&p).as_deref(), Some("run-cv"));
        assert!(!is_ensemble_path(Path::new("w/run.toml")));
    }

    #[test]
    fn invalid_values_name_their_key() {
        type Change = Box<dyn Fn(&mut EnsembleManifest)>;
        let cases: Vec<(Change, &str)> = vec![
            (Box::new(|m| m.members.clear()), "members"),
            (
                Box::new(|m| m.members[0].name = "../x".into()),
                "members[0].name",
            ),
            (
                Box::new(|m| m.members[0].sha256 = "abc".into()),
                "members[0].sha256",
            ),
            (
                Box::new(|m| {
                    let again = m.members[0].clone();
                    m.members.push(again)
                }),
                "members[1].name",
            ),
            (Box::new(|m| m.temperature = 0.0), "temperature"),
            (
                Box::new(|m| {
                    m.operating_point = Some(OperatingPoint {
                        threshold: 1.5,
                        target_sensitivity: 0.95,
                        sensitivity: 0.95,
                        specificity: 0.5,
                        sensitivity_ci: None,
                        specificity_ci: None,
                    })
                }),
                "operating_point.threshold",
            ),
            (
                Box::new(|m| {
                    m.conformal = Some(ConformalPredictor {
                        settings: Default::default(),
                        quantiles: vec![0.5],
                        calibrated_on: vec![10],
                        seed: 0,
                    })
                }),
                "conformal.quantiles",
            ),
        ];
        assert_eq!(manifest().validate(), Ok(()));
        for (change, key) in cases {
            let mut m = manifest();
            change(&mut m);
            let e = m.validate().unwrap_err();
            assert!(e.contains(key), "{key}: {e}");
        }
    }

    #[test]
    fn round_trips_through_toml() {
        let mut m = manifest();
        m.operating_point = Some(OperatingPoint {
            threshold: 0.2,
            target_sensitivity: 0.95,
            sensitivity: 0.96,
            specificity: 0.61,
            sensitivity_ci: Some([0.9, 1.0]),
            specificity_ci: None,
        });
        m.conformal = Some(ConformalPredictor {
            settings: Default::default(),
            quantiles: vec![0.8, f64::INFINITY],
            calibrated_on: vec![100, 8],
            seed: 3,
        });
        let text = toml::to_string_pretty(&m).unwrap();
        let back: EnsembleManifest = toml::from_str(&text).unwrap();
        assert_eq!(back, m);
        let typo = text.replace("temperature =", "temprature =");
        assert!(toml::from_str::<EnsembleManifest>(&typo).is_err());
    }

    #[test]
    fn storing_the_same_temperature_leaves_the_file_alone() {
        use std::os::unix::fs::MetadataExt;
        let dir = tempfile::tempdir().unwrap();
        let path = ensemble_path(dir.path(), "e");
        write(&path, &manifest()).unwrap();
        let inode = |p: &Path| std::fs::metadata(p).unwrap().ino();
        let before = inode(&path);
        store_temperature(&path, 1.5, "").unwrap();
        assert_eq!(inode(&path), before, "unchanged manifest was rewritten");
        store_temperature(&path, 1.25, "val").unwrap();
        assert_ne!(inode(&path), before);
        let m = read(&path).unwrap();
        assert_eq!(
            (m.temperature, m.temperature_fitted_on.as_str()),
            (1.25, "val")
        );
    }
}
