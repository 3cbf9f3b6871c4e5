//! What explaining a split produces: every method's heatmap per image, and
//! the record kept beside the maps on disk (the job itself is
//! [`crate::jobs::explain`]).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::Method;

/// One heatmap `(H,W)` in [0, 1], row-major.
#[derive(Debug, Clone)]
pub struct Heatmap {
    pub values: Vec<f32>,
    pub height: usize,
    pub width: usize,
}

/// Every method's heatmap for one image under one model.
#[derive(Debug, Clone)]
pub struct ExplainedSample {
    pub id: String,
    pub label: usize,
    pub predicted: usize,
    /// Calibrated probability of the positive class.
    pub probability: f64,
    pub maps: BTreeMap<Method, Heatmap>,
    /// IG's and DeepLIFT's completeness delta, Σ attribution − (f(x) −
    /// f(baseline)), in logits.
    pub deltas: BTreeMap<Method, f64>,
    /// For an ensemble: how far its members' maps of this image agree, per
    /// method (empty for one checkpoint).
    pub members: BTreeMap<Method, MemberAgreement>,
}

/// How far an ensemble's members' heatmaps of one image and method agree:
/// each similarity metric averaged over the member pairs (the study's
/// question "do explanations stay consistent across models of similar
/// performance?", asked of k models instead of two).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MemberAgreement {
    pub members: usize,
    pub pairs: usize,
    /// metric name (`compare::similarity::Metric::name`; read back with
    /// `MemberAgreement::get` there) -> mean
    /// over the pairs where it is defined (a metric undefined for every
    /// pair, e.g. correlations of flat maps, is absent).
    pub metrics: BTreeMap<String, f64>,
}

/// What was recorded for one map (also written beside the maps as JSON).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct MapRecord {
    pub id: String,
    pub method: Method,
    pub target: usize,
    pub output: f64,
    pub delta: Option<f64>,
    pub baseline_output: Option<f64>,
    pub seconds: f64,
    /// What produced the map ([`super::provenance::map_key`]): a stored map
    /// is reused only under the same key. Records from before keys existed
    /// have none and are recomputed.
    #[serde(default)]
    pub key: String,
    /// For an ensemble's map: the agreement of its members' maps, kept so a
    /// reused map keeps it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub members: Option<MemberAgreement>,
}

/// File stem for a sample id (`melanoma/123.jpg` -> `melanoma_123_jpg`). The
/// extension is kept: `dup.jpg` and `dup.png` are two samples and must not
/// share map files.
pub fn stem(id: &str) -> String {
    let joined = id.replace(['/', '\\'], "_");
    match joined.rsplit_once('.') {
        Some((base, ext)) if !base.is_empty() => format!("{base}_{ext}"),
        _ => joined,
    }
}

/// Refuses a set of ids whose map files would collide (ids are unique, but
/// `a_b/c.jpg` and `a/b_c.jpg` flatten to the same stem).
pub fn check_distinct_stems<'a>(ids: impl Iterator<Item = &'a String>) -> crate::Result<()> {
    let mut seen = BTreeMap::new();
    for id in ids {
        if let Some(other) = seen.insert(stem(id), id) {
            return Err(crate::Error::Dataset(format!(
                "samples '{other}' and '{id}' would share the map file stem '{}'; rename one of them",
                stem(id)
            )));
        }
    }
    Ok(())
}
