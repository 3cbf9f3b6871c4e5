//! Every metric of one pair of maps at once ([`compare_maps`]) and the
//! serialisable report it returns.

use serde::{Deserialize, Serialize};

use super::correlation::{cosine_unchecked, pearson_unchecked, spearman_unchecked};
use super::selection::{jaccard_unchecked, top_k_unchecked};
use super::ssim::{ssim_unchecked, SsimOptions};
use super::{check_finite_pair, check_k, check_pair, check_percentile, Map, SimilarityError};

/// Options of [`compare_maps`].
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct CompareOptions {
    /// SSIM settings.
    pub ssim: SsimOptions,
    /// Percentile `q` in `[0, 100]` for [`jaccard_top`](super::jaccard_top).
    /// Default 90.
    pub percentile: f64,
    /// `k` for [`top_k_intersection`](super::top_k_intersection). `None`
    /// (default) means the same fraction of pixels as the Jaccard masks
    /// nominally select: `max(1, ceil(n * (100 - percentile) / 100))`.
    pub k: Option<usize>,
}

impl Default for CompareOptions {
    fn default() -> Self {
        CompareOptions {
            ssim: SsimOptions::default(),
            percentile: 90.0,
            k: None,
        }
    }
}

/// All agreement scores of one pair of maps.
///
/// NaN fields (undefined correlations, see the module docs) serialise as
/// JSON `null` and deserialise from `null` as NaN.
#[derive(Debug, Clone, Copy, Serialize, Deserialize)]
pub struct SimilarityReport {
    /// Mean SSIM, in `[-1, 1]`.
    #[serde(with = "nan_as_null")]
    pub ssim: f64,
    /// Pearson correlation, in `[-1, 1]` or NaN.
    #[serde(with = "nan_as_null")]
    pub pearson: f64,
    /// Spearman rank correlation, in `[-1, 1]` or NaN.
    #[serde(with = "nan_as_null")]
    pub spearman: f64,
    /// Cosine similarity of the flattened maps, in `[-1, 1]` or NaN.
    #[serde(with = "nan_as_null")]
    pub cosine: f64,
    /// Jaccard index of the top-`percentile` masks, in `[0, 1]`.
    #[serde(with = "nan_as_null")]
    pub jaccard: f64,
    /// Fraction of shared top-`k` pixels, in `[0, 1]`.
    #[serde(with = "nan_as_null")]
    pub topk_intersection: f64,
    /// Percentile used for `jaccard`.
    pub percentile: f64,
    /// `k` used for `topk_intersection` (resolved if it was `None`).
    pub k: usize,
}

/// Serde adapter: non-finite `f64` <-> JSON `null`.
mod nan_as_null {
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(v: &f64, s: S) -> Result<S::Ok, S::Error> {
        if v.is_finite() {
            s.serialize_some(v)
        } else {
            s.serialize_none()
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<f64, D::Error> {
        Ok(Option::<f64>::deserialize(d)?.unwrap_or(f64::NAN))
    }
}

/// Resolved `k` of [`CompareOptions::k`] for `pixels` pixels.
pub(super) fn resolve_k(opts: &CompareOptions, pixels: usize) -> usize {
    opts.k.unwrap_or_else(|| {
        let frac = (100.0 - opts.percentile) / 100.0;
        ((pixels as f64 * frac).ceil() as usize).clamp(1, pixels.max(1))
    })
}

/// Computes every metric of [`SimilarityReport`] for one pair of maps
/// (same shape, at least the SSIM window size), validating the inputs once.
pub fn compare_maps(
    a: Map<'_>,
    b: Map<'_>,
    opts: &CompareOptions,
) -> Result<SimilarityReport, SimilarityError> {
    check_percentile(opts.percentile)?;
    opts.ssim.validate()?;
    check_pair(a, b, 1)?;
    let k = resolve_k(opts, a.len());
    check_k(k, a.len())?;
    check_pair(a, b, opts.ssim.win_size())?;
    check_finite_pair(a, b)?;
    Ok(SimilarityReport {
        ssim: ssim_unchecked(a, b, &opts.ssim),
        pearson: pearson_unchecked(a, b)?,
        spearman: spearman_unchecked(a, b),
        cosine: cosine_unchecked(a, b)?,
        jaccard: jaccard_unchecked(a, b, opts.percentile),
        topk_intersection: top_k_unchecked(a, b, k),
        percentile: opts.percentile,
        k,
    })
}
