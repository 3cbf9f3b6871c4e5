//! Per-image attribution scores kept beside a model's maps (`scores.json`),
//! keyed by everything they depend on, so that scores computed once (by an
//! explanation unit of a split run, or an interrupted run) are reused and a
//! changed model, temperature, image, map, setting or mask recomputes them.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use serde_json::json;
use sha2::{Digest, Sha256};
use tch::Tensor;

use crate::compare::scores::scorecard::{MapScores, ScoreSettings};
use crate::error::{Error, Result};
use crate::explain::split::ExplainedSample;
use crate::explain::ExplainConfig;

/// One image's scores under one key.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ScoreRecord {
    pub id: String,
    pub key: String,
    pub scores: BTreeMap<String, MapScores>,
}

/// The records of one model's maps folder.
pub struct ScoreStore {
    path: PathBuf,
    records: Vec<ScoreRecord>,
}

/// The file a model's scores are kept in.
pub fn scores_path(dir: &Path) -> PathBuf {
    dir.join("scores.json")
}

impl ScoreStore {
    /// Reads `dir/scores.json` when there is one (a broken file starts
    /// afresh: its scores are recomputed).
    pub fn open(dir: &Path) -> ScoreStore {
        let path = scores_path(dir);
        let records = std::fs::read_to_string(&path)
            .ok()
            .and_then(|t| serde_json::from_str(&t).ok())
            .unwrap_or_default();
        ScoreStore { path, records }
    }

    pub fn get(&self, id: &str, key: &str) -> Option<BTreeMap<String, MapScores>> {
        self.records
            .iter()
            .find(|r| r.id == id && r.key == key)
            .map(|r| r.scores.clone())
    }

    /// Records `scores` for `id` (replacing an older record of it) and
    /// rewrites the file atomically.
    pub fn put(
        &mut self,
        id: &str,
        key: String,
        scores: BTreeMap<String, MapScores>,
    ) -> Result<()> {
        self.records.retain(|r| r.id != id);
        self.records.push(ScoreRecord {
            id: id.to_string(),
            key,
            scores,
        });
        let text =
            serde_json::to_string_pretty(&self.records).map_err(|e| Error::Other(e.to_string()))?;
        crate::files::write_bytes(&self.path, text.as_bytes())
    }
}

/// What one image's scores depend on, hashed: the model's content and
/// temperature (the scores read calibrated probabilities), the input, the
/// maps and deltas scored, the class explained, the settings and the mask.
pub struct ScoreKey<'a> {
    pub model_digest: &'a str,
    pub temperature: f64,
    pub x: &'a Tensor,
    pub sample: &'a ExplainedSample,
    pub explain: &'a ExplainConfig,
    pub settings: &'a ScoreSettings,
    pub mask: Option<&'a [bool]>,
}

impl ScoreKey<'_> {
    pub fn digest(&self) -> Result<String> {
        let mut h = Sha256::new();
        h.update(
            json!({
                "model": self.model_digest,
                "temperature": self.temperature.to_bits(),
                "input": crate::explain::provenance::input_digest(self.x)?,
                "explain": self.explain,
                "settings": self.settings,
                "predicted": self.sample.predicted,
            })
            .to_string(),
        );
        for (method, map) in &self.sample.maps {
            h.update(method.key().as_bytes());
            for v in &map.values {
                h.update(v.to_bits().to_le_bytes());
            }
        }
        for (method, delta) in &self.sample.deltas {
            h.update(method.key().as_bytes());
            h.update(delta.to_bits().to_le_bytes());
        }
        match self.mask {
            Some(m) => h.update(m.iter().map(|&b| u8::from(b)).collect::<Vec<u8>>()),
            None => h.update(b"no mask"),
        }
        Ok(h.finalize().iter().map(|b| format!("{b:02x}")).collect())
    }
}
