//! Similarity metrics between two attribution heatmaps.
//!
//! # Why this module exists
//!
//! melxai explains one prediction with several attribution methods (GradCAM,
//! DeepLIFT, Integrated Gradients). Whether those methods *agree* is itself a
//! diagnostic, and the literature measures agreement with a handful of
//! standard scores: SSIM, Pearson and Spearman correlation, cosine similarity,
//! the Jaccard index of the top-percentile regions and the overlap of the
//! top-k pixels. Researchers compute these with NumPy / SciPy /
//! scikit-image, so the numbers printed here must be *the same numbers* those
//! libraries give, or results cannot be compared with published work. Every
//! metric below therefore documents exactly which reference it reproduces,
//! and `tests/similarity_fixtures.rs` checks that against fixtures written by
//! `scripts/fixtures/gen_similarity.py` with the real libraries.
//!
//! The second goal is speed: the agreement matrix is computed for every pair
//! of methods on every image, so the metrics avoid the temporaries and
//! repeated passes of the array-at-a-time Python formulations (SSIM uses
//! O(1)-per-pixel running box sums; percentiles and top-k use linear-time
//! selection instead of sorting).
//!
//! # Inputs
//!
//! A heatmap is a [`Map`]: a row-major `f32` slice of `height * width`
//! values (index `row * width + col`). Values may have any finite range;
//! only SSIM interprets the scale (through [`SsimOptions::data_range`],
//! default 1.0, i.e. maps normalised to `[0, 1]`). Results are accumulated
//! in `f64`; Pearson and cosine form their products and short (16-term)
//! partial sums in `f32` for speed, which stays far below the 1e-6 the
//! references are checked to (see the "fast single-pass kernels").
//!
//! Every metric validates its inputs in this order and never panics:
//! 1. options ([`SimilarityError::InvalidPercentile`],
//!    [`SimilarityError::InvalidTopK`], [`SimilarityError::InvalidOption`]);
//! 2. `data.len() == height * width` for `a`, then `b`
//!    ([`SimilarityError::LengthMismatch`]);
//! 3. equal shapes ([`SimilarityError::ShapeMismatch`]);
//! 4. size: at least one pixel, and for SSIM at least 7x7 (11x11 with the
//!    Gaussian window) ([`SimilarityError::TooSmall`]);
//! 5. all values finite, `a` then `b`, reporting the first offending flat
//!    index ([`SimilarityError::NonFinite`]).
//!
//! # Degenerate inputs (defined behaviour)
//!
//! * **Zero-variance (constant) map**: [`pearson`] and [`spearman`] return
//!   `f64::NAN`, which is what `np.corrcoef` and `scipy.stats.spearmanr`
//!   return (with a warning). A NaN is deliberately not turned into 0: "no
//!   correlation" and "correlation undefined" are different statements.
//! * **All-zero map**: [`cosine`] returns `f64::NAN` (0/0, as NumPy does).
//! * **Constant map in [`jaccard_top`]**: min-max normalisation of a
//!   constant map is *defined* as all zeros (NumPy would produce 0/0 = NaN).
//!   Its percentile is then 0, so every pixel is in its mask and the Jaccard
//!   index is computed normally. An empty union (impossible with
//!   non-empty maps, since the maximum is always selected) would give 1.0.
//! * **SSIM of constant maps** is well defined thanks to the stabilising
//!   constants C1, C2 (identical constant maps give exactly 1.0).
//! * **Serialisation**: [`SimilarityReport`] serialises NaN (and,
//!   defensively, ±inf) fields as JSON `null` and reads `null` back as NaN,
//!   because JSON has no NaN literal.
//!
//! # Deviations from the references
//!
//! * SSIM ignores the border handling of the filters (`mode='reflect'`)
//!   entirely: scikit-image averages the SSIM map only over
//!   `crop(S, (win_size - 1) // 2)`, i.e. exactly the pixels whose window
//!   lies inside the image, so the reflected border never contributes. We
//!   compute only those "valid" windows. The result agrees with
//!   scikit-image to rounding (~1e-15), not bit for bit, because the
//!   summation order differs.
//! * scikit-image computes in `float32` when given `float32` arrays; we
//!   always compute in `f64`, matching scikit-image called on `float64`.
//! * With `gaussian: true`, scikit-image still uses the *sample* covariance
//!   normalisation (`use_sample_covariance` defaults to `True` and is not
//!   changed by `gaussian_weights=True`; `NP = 11**2`, so
//!   `cov_norm = 121/120`). We reproduce that default; set
//!   [`SsimOptions::use_sample_covariance`] to `false` for the population
//!   covariance of Wang et al. (2004).

use thiserror::Error;

mod compare_maps;
mod correlation;
mod metric;
mod selection;
mod ssim;
#[cfg(test)]
mod tests;

pub use compare_maps::{compare_maps, CompareOptions, SimilarityReport};
pub use correlation::{cosine, pearson, spearman};
pub use metric::Metric;
pub use selection::{jaccard_top, top_k_intersection};
pub use ssim::{ssim, SsimOptions};

/// A row-major heatmap view: `data[row * width + col]`, `data.len()` must
/// equal `height * width`.
///
/// The fields are public so a `Map` can be built in place; every metric
/// re-validates the length, and [`Map::new`] validates it up front.
#[derive(Debug, Clone, Copy)]
pub struct Map<'a> {
    /// Row-major pixel values (any finite range), `height * width` of them.
    pub data: &'a [f32],
    /// Number of rows.
    pub height: usize,
    /// Number of columns.
    pub width: usize,
}

impl<'a> Map<'a> {
    /// Wraps `data` as a `height x width` map, checking only the length
    /// (finiteness is checked by each metric, which must scan anyway).
    pub fn new(data: &'a [f32], height: usize, width: usize) -> Result<Self, SimilarityError> {
        let map = Map {
            data,
            height,
            width,
        };
        map.check_len()?;
        Ok(map)
    }

    /// `(height, width)`.
    pub fn shape(&self) -> (usize, usize) {
        (self.height, self.width)
    }

    /// Number of pixels (`data.len()`).
    pub fn len(&self) -> usize {
        self.data.len()
    }

    /// True when the map has no pixels.
    pub fn is_empty(&self) -> bool {
        self.data.is_empty()
    }

    fn check_len(&self) -> Result<(), SimilarityError> {
        // An overflowing product can never match a real slice length.
        let expected = self.height.saturating_mul(self.width);
        if expected == self.data.len() {
            Ok(())
        } else {
            Err(SimilarityError::LengthMismatch {
                expected,
                got: self.data.len(),
            })
        }
    }
}

/// Why a similarity could not be computed.
#[derive(Debug, Clone, PartialEq, Error)]
pub enum SimilarityError {
    /// The two maps have different `(height, width)`.
    #[error("shape mismatch: a is {a:?}, b is {b:?}")]
    ShapeMismatch {
        /// Shape of the first map.
        a: (usize, usize),
        /// Shape of the second map.
        b: (usize, usize),
    },
    /// `data.len()` differs from `height * width` (`expected` saturates at
    /// `usize::MAX` if the product overflows).
    #[error("data length {got} does not match height * width = {expected}")]
    LengthMismatch {
        /// `height * width`.
        expected: usize,
        /// `data.len()`.
        got: usize,
    },
    /// A NaN or infinite value; `which` is `"a"` or `"b"`, `index` the first
    /// offending flat (row-major) index.
    #[error("non-finite value in map {which} at flat index {index}")]
    NonFinite {
        /// `"a"` or `"b"`.
        which: &'static str,
        /// First offending flat index.
        index: usize,
    },
    /// The map is smaller than `min x min` pixels (SSIM: 7, or 11 with the
    /// Gaussian window; other metrics: 1, i.e. the map is empty).
    #[error("map of shape {got:?} is too small: need at least {min}x{min}")]
    TooSmall {
        /// Minimum side length.
        min: usize,
        /// Actual shape.
        got: (usize, usize),
    },
    /// The percentile is not a finite number in `[0, 100]`.
    #[error("percentile must be finite and in [0, 100], got {0}")]
    InvalidPercentile(f64),
    /// `k` is 0 or larger than the number of pixels.
    #[error("top-k size k = {k} must be in 1..={pixels}")]
    InvalidTopK {
        /// Requested k.
        k: usize,
        /// Number of pixels in each map.
        pixels: usize,
    },
    /// An SSIM option is out of range (`data_range` must be finite and > 0,
    /// `k1`, `k2` finite and >= 0).
    #[error("invalid SSIM option {name} = {value}")]
    InvalidOption {
        /// Option name.
        name: &'static str,
        /// Rejected value.
        value: f64,
    },
}

/// Number of moment images: x, y, x*x, y*y, x*y.
const MOMENTS: usize = 5;

// ---------------------------------------------------------------------------
// Validation helpers
// ---------------------------------------------------------------------------

fn check_pair(a: Map<'_>, b: Map<'_>, min_side: usize) -> Result<(), SimilarityError> {
    a.check_len()?;
    b.check_len()?;
    if a.shape() != b.shape() {
        return Err(SimilarityError::ShapeMismatch {
            a: a.shape(),
            b: b.shape(),
        });
    }
    let min = min_side.max(1);
    if a.height < min || a.width < min {
        return Err(SimilarityError::TooSmall {
            min,
            got: a.shape(),
        });
    }
    Ok(())
}

fn non_finite(which: &'static str, data: &[f32]) -> SimilarityError {
    let index = data.iter().position(|x| !x.is_finite()).unwrap_or(0);
    SimilarityError::NonFinite { which, index }
}

fn check_finite(which: &'static str, data: &[f32]) -> Result<(), SimilarityError> {
    // Branch-free reduction (vectorises); locate the culprit only on failure.
    if data.iter().fold(false, |acc, x| acc | !x.is_finite()) {
        Err(non_finite(which, data))
    } else {
        Ok(())
    }
}

fn check_finite_pair(a: Map<'_>, b: Map<'_>) -> Result<(), SimilarityError> {
    check_finite("a", a.data)?;
    check_finite("b", b.data)
}

fn check_percentile(q: f64) -> Result<(), SimilarityError> {
    if q.is_finite() && (0.0..=100.0).contains(&q) {
        Ok(())
    } else {
        Err(SimilarityError::InvalidPercentile(q))
    }
}

fn check_k(k: usize, pixels: usize) -> Result<(), SimilarityError> {
    if k == 0 || k > pixels {
        Err(SimilarityError::InvalidTopK { k, pixels })
    } else {
        Ok(())
    }
}
