//! [`Model`]: what every command and pane that takes a checkpoint loads —
//! one checkpoint, or an ensemble of member checkpoints — with optional
//! test-time augmentation. Callers read `meta` (input size, normalisation,
//! class order, temperature) and ask for logits; whether one network or k
//! answers is the model's business.

use std::path::{Path, PathBuf};

use tch::{Device, Kind, Tensor};

use super::combine::combine;
use super::manifest::{self, member_tensors_hash, CombineRule, EnsembleManifest};
use super::tta::{mean_over_dihedral, TtaSetting};
use crate::error::{Error, Result};
use crate::model::checkpoint::{self, CheckpointMeta, SplitRecord};
use crate::model::precision::Precision;
use crate::model::Classifier;
use crate::verdict::OperatingPoint;

/// A loaded model: one network, or the members of an ensemble.
pub struct Model {
    members: Vec<Classifier>,
    /// For one checkpoint its metadata; for an ensemble the members' shared
    /// fields with the ensemble's name, temperature and a split that no
    /// member breaks (see [`ensemble_split`]).
    pub meta: CheckpointMeta,
    /// The manifest, for an ensemble.
    pub manifest: Option<EnsembleManifest>,
    /// Average every network's logits over the 8 dihedral transforms.
    pub tta: bool,
}

impl std::fmt::Debug for Model {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Model")
            .field("name", &self.meta.name)
            .field("members", &self.members.len())
            .field("tta", &self.tta)
            .finish()
    }
}

impl From<Classifier> for Model {
    fn from(c: Classifier) -> Self {
        Model {
            meta: c.meta.clone(),
            members: vec![c],
            manifest: None,
            tta: false,
        }
    }
}

impl Model {
    /// Loads `path`: an ensemble manifest (`*.ensemble.toml`) or a checkpoint
    /// (either file of it, or its stem).
    pub fn load(path: &Path, device: Device) -> Result<Model> {
        if manifest::is_ensemble_path(path) {
            load_ensemble(path, device)
        } else {
            Ok(Classifier::from_checkpoint(path, device)?.into())
        }
    }

    /// Whether every network's temperature-fitting predictions were TTA
    /// ones: its recorded recipe says `tta = true` (see `[train] tta`).
    pub fn fitted_with_tta(&self) -> bool {
        self.members
            .iter()
            .all(|m| m.meta.training.get("tta").and_then(toml::Value::as_bool) == Some(true))
    }

    /// Turns TTA on or off as `setting` says for this model ("auto": as its
    /// temperature was fitted).
    pub fn set_tta(&mut self, setting: TtaSetting) {
        self.tta = setting.for_model(self.fitted_with_tta());
    }

    /// For an ensemble of the k fold models of one cross-validation (every
    /// member records a non-empty test split and no image is held out by two
    /// of them): per member, its held-out rows of `rows` with that member's
    /// own logits. These are the out-of-fold predictions the ensemble's
    /// temperature is fitted on; the ensemble's combined output on them is
    /// not out of fold (the other members trained on those images). `rows`
    /// must carry the members' logits (an ensemble's evaluation does).
    /// `None` for one network or any other ensemble.
    pub fn out_of_fold_rows(
        &self,
        rows: &[crate::verdict::EvalRow],
    ) -> Option<Vec<Vec<crate::verdict::EvalRow>>> {
        if !self.is_ensemble() {
            return None;
        }
        let mut held_out_by = std::collections::HashMap::new();
        for (j, m) in self.members.iter().enumerate() {
            let test = &m.meta.split.as_ref()?.test;
            if test.is_empty() {
                return None;
            }
            for id in test {
                if held_out_by.insert(id.as_str(), j).is_some() {
                    return None;
                }
            }
        }
        let mut folds = vec![Vec::new(); self.members.len()];
        for r in rows {
            if let Some(&j) = held_out_by.get(r.id.as_str()) {
                folds[j].push(crate::verdict::EvalRow {
                    id: r.id.clone(),
                    label: r.label,
                    logits: r.members.get(j)?.clone(),
                    members: Vec::new(),
                });
            }
        }
        folds.iter().all(|f| !f.is_empty()).then_some(folds)
    }

    pub fn is_ensemble(&self) -> bool {
        self.manifest.is_some()
    }

    /// The networks: one, or the ensemble's members in manifest order.
    pub fn members(&self) -> &[Classifier] {
        &self.members
    }

    /// The network of a single-checkpoint model.
    pub fn single(&self) -> Option<&Classifier> {
        match (&self.manifest, self.members.as_slice()) {
            (None, [one]) => Some(one),
            _ => None,
        }
    }

    /// The single checkpoint's network, or an error naming what to do instead.
    pub fn require_single(&self, what: &str) -> Result<&Classifier> {
        self.single().ok_or_else(|| {
            Error::Config(format!(
                "{what} takes one checkpoint; '{}' is an ensemble of {} members (pass a member checkpoint)",
                self.meta.name,
                self.members.len()
            ))
        })
    }

    pub fn operating_point(&self) -> Option<&OperatingPoint> {
        self.manifest.as_ref()?.operating_point.as_ref()
    }

    /// The conformal thresholds an ensemble manifest carries.
    pub fn conformal(&self) -> Option<&crate::verdict::conformal::ConformalPredictor> {
        self.manifest.as_ref()?.conformal.as_ref()
    }

    pub fn device(&self) -> Device {
        self.members.first().map_or(Device::Cpu, Classifier::device)
    }

    pub fn set_precision(&mut self, precision: Precision) {
        for m in &mut self.members {
            m.precision = precision;
        }
    }

    /// Each member's eval-mode logits `(N, classes)` (float) for
    /// preprocessed inputs `(N, 3, H, W)`, TTA-averaged when `tta` is on.
    pub fn member_logits(&self, xs: &Tensor) -> Vec<Tensor> {
        self.members
            .iter()
            .map(|m| {
                if self.tta {
                    mean_over_dihedral(xs, |x| m.logits(x))
                } else {
                    m.logits(xs)
                }
                .to_kind(Kind::Float)
            })
            .collect()
    }

    /// How the members' outputs are combined (one checkpoint: its own).
    pub fn combine_rule(&self) -> CombineRule {
        self.manifest
            .as_ref()
            .map_or(CombineRule::MeanLogits, |m| m.combine)
    }

    /// Combined logits `(N, classes)` (by the manifest's rule) and the member
    /// logits they came from.
    pub fn logits_with_members(&self, xs: &Tensor) -> (Tensor, Vec<Tensor>) {
        let members = self.member_logits(xs);
        (combine(self.combine_rule(), &members), members)
    }

    /// Combined logits `(N, classes)`.
    pub fn logits(&self, xs: &Tensor) -> Tensor {
        self.logits_with_members(xs).0
    }

    /// SHA-256 of what the model computes, for keying stored explanation
    /// maps: one network's [`crate::explain::provenance::model_digest`], or
    /// for an ensemble the digest of its members' digests in order (a map
    /// of the combined output changes when any member does).
    pub fn content_digest(&self) -> Result<String> {
        use sha2::{Digest, Sha256};
        if let Some(one) = self.single() {
            return crate::explain::provenance::model_digest(one);
        }
        let mut h = Sha256::new();
        h.update(format!("ensemble:{}", self.combine_rule()).as_bytes());
        for m in &self.members {
            h.update(crate::explain::provenance::model_digest(m)?.as_bytes());
        }
        Ok(h.finalize().iter().map(|b| format!("{b:02x}")).collect())
    }

    /// Softmax probabilities, divided by the stored temperature when `calibrated`.
    pub fn probabilities(&self, xs: &Tensor, calibrated: bool) -> Tensor {
        let t = if calibrated {
            self.meta.temperature
        } else {
            1.0
        };
        (self.logits(xs) / t).softmax(-1, Kind::Float)
    }
}

fn refuse(path: &Path, message: String) -> Error {
    Error::Checkpoint {
        path: path.to_path_buf(),
        message,
    }
}

/// The metadata callers read for `path` (ensemble manifest or checkpoint),
/// without loading tensors: for an ensemble every member is checked as
/// [`Model::load`] would (present, same shared fields, unchanged).
pub fn read_meta(path: &Path) -> Result<CheckpointMeta> {
    if manifest::is_ensemble_path(path) {
        Ok(checked_members(path)?.1)
    } else {
        checkpoint::read_meta(path)
    }
}

/// The manifest, the ensemble's metadata and the member stems, after
/// refusing a missing, mismatched or changed member (the error names it).
fn checked_members(path: &Path) -> Result<(EnsembleManifest, CheckpointMeta, Vec<PathBuf>)> {
    let manifest = manifest::read(path)?;
    let mut metas = Vec::with_capacity(manifest.members.len());
    let mut stems = Vec::with_capacity(manifest.members.len());
    for m in &manifest.members {
        let stem = EnsembleManifest::member_path(path, m);
        if !checkpoint::exists(&stem) {
            return Err(refuse(
                path,
                format!(
                    "member '{}' is missing ({} and its .toml)",
                    m.name,
                    checkpoint::tensors_path(&stem).display()
                ),
            ));
        }
        let meta = checkpoint::read_meta(&stem)?;
        if let Some((field, want, got)) = manifest.shared.mismatch(&meta) {
            return Err(refuse(
                path,
                format!(
                    "member '{}' differs in {field}: it has {got}, the ensemble {want}",
                    m.name
                ),
            ));
        }
        let hash = member_tensors_hash(&meta, &stem)?;
        if hash != m.sha256 {
            return Err(refuse(
                path,
                format!(
                    "member '{}' has changed since the ensemble was made (its tensors' SHA-256 is {}, the manifest records {}); rebuild the ensemble or restore the member",
                    m.name, hash, m.sha256
                ),
            ));
        }
        metas.push(meta);
        stems.push(stem);
    }
    let refs: Vec<&CheckpointMeta> = metas.iter().collect();
    let mut meta = metas[0].clone();
    meta.name = manifest.name.clone();
    meta.temperature = manifest.temperature;
    meta.split = ensemble_split(&refs);
    meta.metrics.clear();
    meta.files.clear();
    meta.progress = None;
    meta.created = manifest.created.clone();
    Ok((manifest, meta, stems))
}

fn load_ensemble(path: &Path, device: Device) -> Result<Model> {
    let (manifest, meta, stems) = checked_members(path)?;
    let members = stems
        .iter()
        .map(|stem| Classifier::from_checkpoint(stem, device))
        .collect::<Result<Vec<_>>>()?;
    Ok(Model {
        members,
        meta,
        manifest: Some(manifest),
        tta: false,
    })
}

/// A split no member breaks: test and validation images are those held out
/// by every member (for the k models of one cross-validation there are none;
/// for seeds on one split it is that split), training images those any
/// member trained on. `None` when a member records no split.
pub fn ensemble_split(members: &[&CheckpointMeta]) -> Option<SplitRecord> {
    let splits: Vec<&SplitRecord> = members
        .iter()
        .map(|m| m.split.as_ref())
        .collect::<Option<_>>()?;
    let first = splits.first()?;
    let held_by_all = |part: fn(&SplitRecord) -> &Vec<String>| -> Vec<String> {
        part(first)
            .iter()
            .filter(|id| splits.iter().all(|s| part(s).contains(id)))
            .cloned()
            .collect()
    };
    let mut train: Vec<String> = splits.iter().flat_map(|s| s.train.clone()).collect();
    train.sort();
    train.dedup();
    Some(SplitRecord {
        seed: first.seed,
        fold: None,
        train,
        val: held_by_all(|s| &s.val),
        test: held_by_all(|s| &s.test),
    })
}

/// Writes `<dir>/<name>.ensemble.toml` for the checkpoints `members` (stems
/// in `dir`) combined by `combine`, with `temperature`; returns its path.
pub fn write_ensemble(
    dir: &Path,
    name: &str,
    members: &[PathBuf],
    combine: CombineRule,
    temperature: f64,
    fitted_on: &str,
) -> Result<PathBuf> {
    let mut m = manifest::from_members(dir, name, members, combine)?;
    m.temperature = temperature;
    m.temperature_fitted_on = fitted_on.to_string();
    let path = manifest::ensemble_path(dir, name);
    manifest::write(&path, &m)?;
    Ok(path)
}
