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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::explain::split::Heatmap;
    use crate::explain::Method;

    fn scores(gap: f64) -> BTreeMap<String, MapScores> {
        let s = MapScores {
            road_morf: 0.2,
            road_lerf: 0.2 + gap,
            road_gap: gap,
            faithfulness_correlation: f64::NAN,
            pixel_flipping_auc: 0.123_456_789_012_345_67,
            sparseness: 0.5,
            complexity: 7.25,
            random_logit: Some(0.1),
            completeness_gap: None,
            parameter_randomisation: None,
            max_sensitivity: None,
            avg_sensitivity: None,
            local_lipschitz: None,
            localisation: None,
        };
        BTreeMap::from([("ig".to_string(), s)])
    }

    #[test]
    fn stored_scores_come_back_exactly_with_nan_for_null() {
        let dir = tempfile::tempdir().unwrap();
        let mut store = ScoreStore::open(dir.path());
        store.put("a.jpg", "k1".into(), scores(0.3)).unwrap();
        store.put("b.jpg", "k2".into(), scores(0.4)).unwrap();
        store.put("a.jpg", "k3".into(), scores(0.5)).unwrap();
        let again = ScoreStore::open(dir.path());
        assert!(again.get("a.jpg", "k1").is_none(), "replaced by k3");
        let got = again.get("a.jpg", "k3").unwrap();
        let (want, got) = (&scores(0.5)["ig"], &got["ig"]);
        assert!(got.faithfulness_correlation.is_nan());
        assert_eq!(
            got.pixel_flipping_auc.to_bits(),
            want.pixel_flipping_auc.to_bits()
        );
        assert_eq!(
            (got.road_gap, got.random_logit, got.completeness_gap),
            (0.5, Some(0.1), None)
        );
        assert!(again.get("b.jpg", "k2").is_some());
    }

    #[test]
    fn the_key_changes_with_the_temperature_the_maps_and_the_mask() {
        let x = Tensor::from_slice(&[0.1f32, 0.2, 0.3]).reshape([3, 1, 1]);
        let sample = ExplainedSample {
            id: "a.jpg".into(),
            label: 0,
            predicted: 1,
            probability: 0.7,
            maps: BTreeMap::from([(
                Method::IntegratedGradients,
                Heatmap {
                    values: vec![0.5],
                    height: 1,
                    width: 1,
                },
            )]),
            deltas: BTreeMap::new(),
            members: BTreeMap::new(),
        };
        let explain = ExplainConfig::default();
        let settings = ScoreSettings::default();
        let key = |t: f64, s: &ExplainedSample, mask: Option<&[bool]>| {
            ScoreKey {
                model_digest: "m",
                temperature: t,
                x: &x,
                sample: s,
                explain: &explain,
                settings: &settings,
                mask,
            }
            .digest()
            .unwrap()
        };
        let base = key(1.0, &sample, None);
        assert_eq!(base, key(1.0, &sample, None));
        assert_ne!(base, key(1.2, &sample, None));
        assert_ne!(base, key(1.0, &sample, Some(&[true])));
        let mut other = sample.clone();
        other
            .maps
            .get_mut(&Method::IntegratedGradients)
            .unwrap()
            .values[0] = 0.25;
        assert_ne!(base, key(1.0, &other, None));
    }
}
