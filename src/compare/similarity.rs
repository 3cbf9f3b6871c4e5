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

use serde::{Deserialize, Serialize};
use thiserror::Error;

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

/// Options of [`ssim`]. The default is scikit-image's
/// `structural_similarity(a, b, data_range=1.0)`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct SsimOptions {
    /// `false`: 7x7 uniform window (skimage default). `true`: 11-tap
    /// Gaussian window, sigma 1.5, truncate 3.5 (skimage
    /// `gaussian_weights=True`); maps must then be at least 11x11.
    pub gaussian: bool,
    /// Dynamic range of the values (`data_range`), > 0. Default 1.0.
    pub data_range: f64,
    /// Stabiliser `K1` (>= 0). Default 0.01.
    pub k1: f64,
    /// Stabiliser `K2` (>= 0). Default 0.03.
    pub k2: f64,
    /// Scale (co)variances by `NP / (NP - 1)` with `NP = win_size**2`
    /// (skimage `use_sample_covariance`, default `true` for both windows).
    pub use_sample_covariance: bool,
}

impl Default for SsimOptions {
    fn default() -> Self {
        SsimOptions {
            gaussian: false,
            data_range: 1.0,
            k1: 0.01,
            k2: 0.03,
            use_sample_covariance: true,
        }
    }
}

impl SsimOptions {
    /// skimage `structural_similarity(a, b, data_range=1.0, gaussian_weights=True)`.
    pub fn gaussian() -> Self {
        SsimOptions {
            gaussian: true,
            ..SsimOptions::default()
        }
    }

    /// Side of the square window: 7 (uniform) or 11 (Gaussian).
    pub fn win_size(&self) -> usize {
        if self.gaussian {
            2 * GAUSS_RADIUS + 1
        } else {
            UNIFORM_WIN
        }
    }

    fn validate(&self) -> Result<(), SimilarityError> {
        let bad = |name, value: f64| Err(SimilarityError::InvalidOption { name, value });
        if !(self.data_range.is_finite() && self.data_range > 0.0) {
            return bad("data_range", self.data_range);
        }
        if !(self.k1.is_finite() && self.k1 >= 0.0) {
            return bad("k1", self.k1);
        }
        if !(self.k2.is_finite() && self.k2 >= 0.0) {
            return bad("k2", self.k2);
        }
        Ok(())
    }
}

/// Options of [`compare_maps`].
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct CompareOptions {
    /// SSIM settings.
    pub ssim: SsimOptions,
    /// Percentile `q` in `[0, 100]` for [`jaccard_top`]. Default 90.
    pub percentile: f64,
    /// `k` for [`top_k_intersection`]. `None` (default) means the same
    /// fraction of pixels as the Jaccard masks nominally select:
    /// `max(1, ceil(n * (100 - percentile) / 100))`.
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

// ---------------------------------------------------------------------------
// SSIM
// ---------------------------------------------------------------------------

const UNIFORM_WIN: usize = 7;
const GAUSS_SIGMA: f64 = 1.5;
/// `int(truncate * sigma + 0.5)` with truncate = 3.5, as scipy.ndimage.
const GAUSS_RADIUS: usize = 5;

/// Constants of the SSIM formula.
struct SsimConsts {
    c1: f64,
    c2: f64,
    cov_norm: f64,
}

impl SsimConsts {
    fn new(opts: &SsimOptions) -> Self {
        let win = opts.win_size() as f64;
        let np = win * win;
        SsimConsts {
            c1: (opts.k1 * opts.data_range).powi(2),
            c2: (opts.k2 * opts.data_range).powi(2),
            cov_norm: if opts.use_sample_covariance {
                np / (np - 1.0)
            } else {
                1.0
            },
        }
    }

    /// SSIM of one window from its (weighted) means `ux, uy` and raw second
    /// moments `uxx, uyy, uxy` (skimage's formula, term for term).
    #[inline(always)]
    fn eval(&self, ux: f64, uy: f64, uxx: f64, uyy: f64, uxy: f64) -> f64 {
        let vx = self.cov_norm * (uxx - ux * ux);
        let vy = self.cov_norm * (uyy - uy * uy);
        let vxy = self.cov_norm * (uxy - ux * uy);
        let a1 = 2.0 * ux * uy + self.c1;
        let a2 = 2.0 * vxy + self.c2;
        let b1 = ux * ux + uy * uy + self.c1;
        let b2 = vx + vy + self.c2;
        (a1 * a2) / (b1 * b2)
    }
}

/// Mean structural similarity of `a` and `b` (same shape, at least 7x7, or
/// 11x11 with [`SsimOptions::gaussian`]), in `[-1, 1]`; 1.0 for identical
/// maps.
///
/// Reproduces `skimage.metrics.structural_similarity(a, b,
/// data_range=opts.data_range)` on `float64` arrays (plus
/// `gaussian_weights=True` when `opts.gaussian`): local means and
/// (sample-)covariances over a 7x7 uniform (or 11-tap, sigma 1.5 Gaussian)
/// window, SSIM map averaged over the windows that fit inside the image
/// (skimage's `crop(S, pad).mean()`). The uniform window uses separable
/// running sums, O(1) per pixel.
pub fn ssim(a: Map<'_>, b: Map<'_>, opts: &SsimOptions) -> Result<f64, SimilarityError> {
    opts.validate()?;
    check_pair(a, b, opts.win_size())?;
    check_finite_pair(a, b)?;
    Ok(ssim_unchecked(a, b, opts))
}

fn ssim_unchecked(a: Map<'_>, b: Map<'_>, opts: &SsimOptions) -> f64 {
    let consts = SsimConsts::new(opts);
    if opts.gaussian {
        ssim_gaussian(a.data, b.data, a.height, a.width, &consts)
    } else {
        ssim_uniform(a.data, b.data, a.height, a.width, &consts)
    }
}

/// Number of moment images: x, y, x*x, y*y, x*y.
const MOMENTS: usize = 5;

/// Uniform-window SSIM over the valid windows, with running sums:
/// horizontal window sums per row (add the entering column, subtract the
/// leaving one), vertical sums kept per column over a ring buffer of the
/// last `WIN` rows of horizontal sums.
fn ssim_uniform(a: &[f32], b: &[f32], h: usize, w: usize, c: &SsimConsts) -> f64 {
    const WIN: usize = UNIFORM_WIN;
    let ow = w + 1 - WIN;
    let oh = h + 1 - WIN;
    let inv_np = 1.0 / (WIN * WIN) as f64;

    // ring[slot][moment][col] and col_sums[moment][col].
    let mut ring = vec![0.0f64; WIN * MOMENTS * ow];
    let mut col_sums = vec![0.0f64; MOMENTS * ow];
    let mut fresh = vec![0.0f64; MOMENTS * ow];
    let mut total = 0.0f64;

    for (r, (ra, rb)) in a.chunks_exact(w).zip(b.chunks_exact(w)).enumerate() {
        // Horizontal running sums of the five moments along this row.
        let mut s = [0.0f64; MOMENTS];
        for (&x, &y) in ra[..WIN].iter().zip(&rb[..WIN]) {
            add_moments(&mut s, f64::from(x), f64::from(y), 1.0);
        }
        store_moments(&mut fresh, ow, 0, &s);
        for col in 1..ow {
            let (xo, yo) = (f64::from(ra[col - 1]), f64::from(rb[col - 1]));
            let (xi, yi) = (f64::from(ra[col + WIN - 1]), f64::from(rb[col + WIN - 1]));
            add_moments(&mut s, xi, yi, 1.0);
            add_moments(&mut s, xo, yo, -1.0);
            store_moments(&mut fresh, ow, col, &s);
        }

        // Vertical running sums: add this row's sums, drop the row WIN back.
        let slot = &mut ring[(r % WIN) * MOMENTS * ow..][..MOMENTS * ow];
        for ((cs, old), &new) in col_sums.iter_mut().zip(slot.iter_mut()).zip(&fresh) {
            *cs += new - *old;
            *old = new;
        }

        if r + 1 >= WIN {
            let (sx, rest) = col_sums.split_at(ow);
            let (sy, rest) = rest.split_at(ow);
            let (sxx, rest) = rest.split_at(ow);
            let (syy, sxy) = rest.split_at(ow);
            let mut row_total = 0.0;
            for i in 0..ow {
                row_total += c.eval(
                    sx[i] * inv_np,
                    sy[i] * inv_np,
                    sxx[i] * inv_np,
                    syy[i] * inv_np,
                    sxy[i] * inv_np,
                );
            }
            total += row_total;
        }
    }
    total / (oh * ow) as f64
}

#[inline(always)]
fn add_moments(s: &mut [f64; MOMENTS], x: f64, y: f64, sign: f64) {
    s[0] += sign * x;
    s[1] += sign * y;
    s[2] += sign * (x * x);
    s[3] += sign * (y * y);
    s[4] += sign * (x * y);
}

#[inline(always)]
fn store_moments(dst: &mut [f64], stride: usize, col: usize, s: &[f64; MOMENTS]) {
    for (m, &v) in s.iter().enumerate() {
        dst[m * stride + col] = v;
    }
}

/// scipy.ndimage `_gaussian_kernel1d(sigma, 0, radius)`: normalised
/// `exp(-0.5 / sigma^2 * x^2)` for `x in -radius..=radius`.
fn gaussian_kernel() -> [f64; 2 * GAUSS_RADIUS + 1] {
    let mut k = [0.0f64; 2 * GAUSS_RADIUS + 1];
    let scale = -0.5 / (GAUSS_SIGMA * GAUSS_SIGMA);
    for (i, v) in k.iter_mut().enumerate() {
        let x = i as f64 - GAUSS_RADIUS as f64;
        *v = (scale * (x * x)).exp();
    }
    let sum: f64 = k.iter().sum();
    for v in &mut k {
        *v /= sum;
    }
    k
}

/// Gaussian-window SSIM over the valid windows: separable 11-tap
/// correlation (horizontal into planes, then vertical per output row).
fn ssim_gaussian(a: &[f32], b: &[f32], h: usize, w: usize, c: &SsimConsts) -> f64 {
    let kernel = gaussian_kernel();
    let win = kernel.len();
    let ow = w + 1 - win;
    let oh = h + 1 - win;

    // Horizontal pass: planes[moment][row][col], col in 0..ow.
    let mut planes = vec![0.0f64; MOMENTS * h * ow];
    let mut prod = vec![0.0f64; MOMENTS * w];
    for (r, (ra, rb)) in a.chunks_exact(w).zip(b.chunks_exact(w)).enumerate() {
        for (j, (&x, &y)) in ra.iter().zip(rb).enumerate() {
            let (x, y) = (f64::from(x), f64::from(y));
            prod[j] = x;
            prod[w + j] = y;
            prod[2 * w + j] = x * x;
            prod[3 * w + j] = y * y;
            prod[4 * w + j] = x * y;
        }
        for m in 0..MOMENTS {
            let out = &mut planes[(m * h + r) * ow..][..ow];
            let src_row = &prod[m * w..][..w];
            for (t, &wt) in kernel.iter().enumerate() {
                for (o, &s) in out.iter_mut().zip(&src_row[t..t + ow]) {
                    *o += wt * s;
                }
            }
        }
    }

    // Vertical pass per output row, then the SSIM formula.
    let mut acc = vec![0.0f64; MOMENTS * ow];
    let mut total = 0.0f64;
    for orow in 0..oh {
        acc.fill(0.0);
        for m in 0..MOMENTS {
            let dst = &mut acc[m * ow..][..ow];
            for (t, &wt) in kernel.iter().enumerate() {
                let src = &planes[(m * h + orow + t) * ow..][..ow];
                for (d, &s) in dst.iter_mut().zip(src) {
                    *d += wt * s;
                }
            }
        }
        let (ux, rest) = acc.split_at(ow);
        let (uy, rest) = rest.split_at(ow);
        let (uxx, rest) = rest.split_at(ow);
        let (uyy, uxy) = rest.split_at(ow);
        let mut row_total = 0.0;
        for i in 0..ow {
            row_total += c.eval(ux[i], uy[i], uxx[i], uyy[i], uxy[i]);
        }
        total += row_total;
    }
    total / (oh * ow) as f64
}

// ---------------------------------------------------------------------------
// Correlations and cosine
// ---------------------------------------------------------------------------

/// Independent accumulators so the reductions vectorise.
const LANES: usize = 8;

/// `(sum a, sum b)` in f64.
#[inline(always)]
fn sums<T: Copy + Into<f64>>(a: &[T], b: &[T]) -> (f64, f64) {
    let mut sa = [0.0f64; LANES];
    let mut sb = [0.0f64; LANES];
    let ((ca, ta), (cb, tb)) = (a.as_chunks::<LANES>(), b.as_chunks::<LANES>());
    for (xa, xb) in ca.iter().zip(cb) {
        // One statement per quantity and lane array: vectorises across lanes.
        for (s, &x) in sa.iter_mut().zip(xa) {
            *s += x.into();
        }
        for (s, &y) in sb.iter_mut().zip(xb) {
            *s += y.into();
        }
    }
    let mut ra: f64 = sa.iter().sum();
    let mut rb: f64 = sb.iter().sum();
    for (&x, &y) in ta.iter().zip(tb) {
        ra += x.into();
        rb += y.into();
    }
    (ra, rb)
}

/// `(sum (a-ma)^2, sum (b-mb)^2, sum (a-ma)(b-mb))` in f64.
#[inline(always)]
fn centred_moments<T: Copy + Into<f64>>(a: &[T], b: &[T], ma: f64, mb: f64) -> (f64, f64, f64) {
    let mut sxx = [0.0f64; LANES];
    let mut syy = [0.0f64; LANES];
    let mut sxy = [0.0f64; LANES];
    let ((ca, ta), (cb, tb)) = (a.as_chunks::<LANES>(), b.as_chunks::<LANES>());
    for (xa, xb) in ca.iter().zip(cb) {
        let dx: [f64; LANES] = std::array::from_fn(|l| xa[l].into() - ma);
        let dy: [f64; LANES] = std::array::from_fn(|l| xb[l].into() - mb);
        for l in 0..LANES {
            sxx[l] += dx[l] * dx[l];
        }
        for l in 0..LANES {
            syy[l] += dy[l] * dy[l];
        }
        for l in 0..LANES {
            sxy[l] += dx[l] * dy[l];
        }
    }
    let (mut rxx, mut ryy, mut rxy): (f64, f64, f64) =
        (sxx.iter().sum(), syy.iter().sum(), sxy.iter().sum());
    for (&x, &y) in ta.iter().zip(tb) {
        let dx = x.into() - ma;
        let dy = y.into() - mb;
        rxx += dx * dx;
        ryy += dy * dy;
        rxy += dx * dy;
    }
    (rxx, ryy, rxy)
}

// Fast single-pass kernels for Pearson and cosine.
//
// The inputs are f32, so the products and squares are formed in f32
// (relative rounding 2^-24 per term, like rounding the inputs) and summed
// in f32 over short runs only: `F32_LANES` independent accumulators, each
// taking `F32_BLOCK / F32_LANES` terms before the block's partial sums are
// promoted to f64 lane accumulators. The accumulated f32 error is thus
// bounded by ~`F32_BLOCK / F32_LANES` ulps of a block's partial sums and in
// practice is orders of magnitude below the 1e-6 the references are
// checked to. The plain `f32` loops autovectorise at the baseline x86-64
// target (SSE2, 4 lanes per register).
//
// Results outside the range where f32 is trustworthy (a square or product
// that overflows, sums of squares so small that subnormal rounding could
// matter, non-finite input, or a constant map) are recomputed by the exact
// f64 two-pass code, which also reports non-finite input and returns NaN
// for constant maps.

/// f32 accumulators per quantity (4 SSE2 registers).
const F32_LANES: usize = 8;
/// Elements summed in f32 before promotion to f64 (16 per lane).
const F32_BLOCK: usize = 128;

/// `[sum a, sum b, sum a*a, sum b*b, sum a*b]` of `a - ca`, `b - cb`, with
/// f32 terms, f32 partial sums per block and f64 accumulation.
fn shifted_moments(a: &[f32], b: &[f32], ca: f32, cb: f32) -> [f64; MOMENTS] {
    let mut out = [0.0f64; MOMENTS];
    let (ba, ta) = a.as_chunks::<F32_BLOCK>();
    let (bb, tb) = b.as_chunks::<F32_BLOCK>();
    for (xa, xb) in ba.iter().zip(bb) {
        add_lanes(&mut out, &block_moments(xa, xb, ca, cb));
    }
    for (&x, &y) in ta.iter().zip(tb) {
        let (dx, dy) = (x - ca, y - cb);
        out[0] += f64::from(dx);
        out[1] += f64::from(dy);
        out[2] += f64::from(dx * dx);
        out[3] += f64::from(dy * dy);
        out[4] += f64::from(dx * dy);
    }
    out
}

/// Per-lane f32 moments of one block for [`shifted_moments`] (out of line
/// for the reason given at [`block_products`]).
#[inline(never)]
fn block_moments(xa: &[f32], xb: &[f32], ca: f32, cb: f32) -> [[f32; F32_LANES]; MOMENTS] {
    let mut p = [[0.0f32; F32_LANES]; MOMENTS];
    let (xs, _) = xa.as_chunks::<F32_LANES>();
    let (ys, _) = xb.as_chunks::<F32_LANES>();
    for (x, y) in xs.iter().zip(ys) {
        let dx: [f32; F32_LANES] = std::array::from_fn(|l| x[l] - ca);
        let dy: [f32; F32_LANES] = std::array::from_fn(|l| y[l] - cb);
        for l in 0..F32_LANES {
            p[0][l] += dx[l];
        }
        for l in 0..F32_LANES {
            p[1][l] += dy[l];
        }
        for l in 0..F32_LANES {
            p[2][l] += dx[l] * dx[l];
        }
        for l in 0..F32_LANES {
            p[3][l] += dy[l] * dy[l];
        }
        for l in 0..F32_LANES {
            p[4][l] += dx[l] * dy[l];
        }
    }
    p
}

/// `[sum a*a, sum b*b, sum a*b]` with f32 terms, f32 partial sums per block
/// and f64 accumulation.
fn raw_products(a: &[f32], b: &[f32]) -> [f64; 3] {
    let mut out = [0.0f64; 3];
    let (ba, ta) = a.as_chunks::<F32_BLOCK>();
    let (bb, tb) = b.as_chunks::<F32_BLOCK>();
    for (xa, xb) in ba.iter().zip(bb) {
        add_lanes(&mut out, &block_products(xa, xb));
    }
    for (&x, &y) in ta.iter().zip(tb) {
        out[0] += f64::from(x * x);
        out[1] += f64::from(y * y);
        out[2] += f64::from(x * y);
    }
    out
}

/// Per-lane f32 `[sum a*a, sum b*b, sum a*b]` of one block. Kept out of
/// line: inlined into the block loop, LLVM's SLP vectoriser interleaves it
/// with the f64 promotion and produces far worse code.
#[inline(never)]
fn block_products(xa: &[f32], xb: &[f32]) -> [[f32; F32_LANES]; 3] {
    let mut p = [[0.0f32; F32_LANES]; 3];
    let (ca, _) = xa.as_chunks::<F32_LANES>();
    let (cb, _) = xb.as_chunks::<F32_LANES>();
    for (x, y) in ca.iter().zip(cb) {
        for l in 0..F32_LANES {
            p[0][l] += x[l] * x[l];
        }
        for l in 0..F32_LANES {
            p[1][l] += y[l] * y[l];
        }
        for l in 0..F32_LANES {
            p[2][l] += x[l] * y[l];
        }
    }
    p
}

/// `out[m] += sum_l f64::from(p[m][l])`, lane by lane in f64.
#[inline(always)]
fn add_lanes<const M: usize>(out: &mut [f64; M], p: &[[f32; F32_LANES]; M]) {
    for (s, q) in out.iter_mut().zip(p) {
        for &q in q {
            *s += f64::from(q);
        }
    }
}

/// Smallest sum of squares (per pixel) trusted from the f32 kernels: below
/// it, subnormal rounding of the squares (at most 2^-149 each) could be
/// visible.
const F32_MIN_SQ_PER_PIXEL: f64 = 1e-30;

/// Mean of up to 64 evenly spaced samples, as an f32 shift for
/// [`shifted_moments`] (any finite value is correct; one near the mean
/// avoids cancellation).
fn sample_mean(data: &[f32]) -> f32 {
    let s = data.len().min(64);
    let sum: f64 = (0..s).map(|k| f64::from(data[k * data.len() / s])).sum();
    (sum / s as f64) as f32
}

/// Single-pass Pearson from f32 moments; `None` when the exact path must
/// decide (see the section comment).
fn pearson_fast(a: &[f32], b: &[f32]) -> Option<f64> {
    let n = a.len() as f64;
    let (mut ca, mut cb) = (sample_mean(a), sample_mean(b));
    for _ in 0..2 {
        let [sx, sy, sxx, syy, sxy] = shifted_moments(a, b, ca, cb);
        if ![sx, sy, sxx, syy, sxy].iter().all(|v| v.is_finite()) {
            return None;
        }
        let cxx = sxx - sx * sx / n;
        let cyy = syy - sy * sy / n;
        let cxy = sxy - sx * sy / n;
        let floor = n * F32_MIN_SQ_PER_PIXEL;
        if !(cxx > floor && cyy > floor) {
            return None;
        }
        // Shift far from the mean (unrepresentative sample): the raw sums
        // would cancel, so shift by the mean just found and redo.
        if sxx > 4.0 * cxx || syy > 4.0 * cyy {
            ca = (f64::from(ca) + sx / n) as f32;
            cb = (f64::from(cb) + sy / n) as f32;
            continue;
        }
        return Some(pearson_from(cxx, cyy, cxy));
    }
    None
}

/// Pearson correlation from the centred sums; NaN when either variance is 0.
fn pearson_from(sxx: f64, syy: f64, sxy: f64) -> f64 {
    if sxx == 0.0 || syy == 0.0 {
        return f64::NAN;
    }
    // np.corrcoef divides by each standard deviation, then clips.
    (sxy / sxx.sqrt() / syy.sqrt()).clamp(-1.0, 1.0)
}

/// Pearson correlation of the flattened maps, in `[-1, 1]`, as
/// `np.corrcoef(a.ravel(), b.ravel())[0, 1]`. `NaN` if either map is
/// constant.
pub fn pearson(a: Map<'_>, b: Map<'_>) -> Result<f64, SimilarityError> {
    check_pair(a, b, 1)?;
    pearson_unchecked(a, b)
}

/// Finiteness is detected from the sums themselves: the f64 sum of finite
/// f32 values cannot overflow, so a non-finite sum means a non-finite
/// input, and a separate validation pass is avoided.
fn pearson_unchecked(a: Map<'_>, b: Map<'_>) -> Result<f64, SimilarityError> {
    if let Some(r) = pearson_fast(a.data, b.data) {
        return Ok(r);
    }
    let (sa, sb) = sums(a.data, b.data);
    if !sa.is_finite() {
        return Err(non_finite("a", a.data));
    }
    if !sb.is_finite() {
        return Err(non_finite("b", b.data));
    }
    let n = a.len() as f64;
    let (sxx, syy, sxy) = centred_moments(a.data, b.data, sa / n, sb / n);
    Ok(pearson_from(sxx, syy, sxy))
}

/// Spearman rank correlation, in `[-1, 1]`, as
/// `scipy.stats.spearmanr(a.ravel(), b.ravel()).statistic`: Pearson
/// correlation of the ranks, tied values sharing their average rank
/// (`-0.0` and `0.0` are ties). `NaN` if either map is constant.
pub fn spearman(a: Map<'_>, b: Map<'_>) -> Result<f64, SimilarityError> {
    check_pair(a, b, 1)?;
    check_finite_pair(a, b)?;
    Ok(spearman_unchecked(a, b))
}

fn spearman_unchecked(a: Map<'_>, b: Map<'_>) -> f64 {
    let ra = average_ranks(a.data);
    let rb = average_ranks(b.data);
    let (sa, sb) = sums(&ra, &rb);
    let n = ra.len() as f64;
    let (sxx, syy, sxy) = centred_moments(&ra, &rb, sa / n, sb / n);
    pearson_from(sxx, syy, sxy)
}

/// Monotone `u32` key of a finite f32 (`-0.0` mapped to `0.0`, so equal
/// values get equal keys).
#[inline(always)]
fn sort_key(x: f32) -> u32 {
    let bits = (x + 0.0).to_bits();
    if bits & 0x8000_0000 != 0 {
        !bits
    } else {
        bits | 0x8000_0000
    }
}

/// 1-based ranks, ties averaged (scipy `rankdata(method='average')`).
fn average_ranks(data: &[f32]) -> Vec<f64> {
    let mut ranks = vec![0.0f64; data.len()];
    if u32::try_from(data.len()).is_ok() {
        // Pack (key, index) into one u64: sorting that is much faster.
        let mut packed: Vec<u64> = data
            .iter()
            .enumerate()
            .map(|(i, &x)| (u64::from(sort_key(x)) << 32) | i as u64)
            .collect();
        packed.sort_unstable();
        assign_ranks(
            &packed,
            |p| p >> 32,
            |p| (p & 0xffff_ffff) as usize,
            &mut ranks,
        );
    } else {
        let mut pairs: Vec<(u32, usize)> = data
            .iter()
            .enumerate()
            .map(|(i, &x)| (sort_key(x), i))
            .collect();
        pairs.sort_unstable();
        assign_ranks(&pairs, |p| u64::from(p.0), |p| p.1, &mut ranks);
    }
    ranks
}

/// Gives every run of equal keys in `sorted` (ascending) its average
/// 1-based position.
fn assign_ranks<T: Copy>(
    sorted: &[T],
    key: impl Fn(T) -> u64,
    index: impl Fn(T) -> usize,
    ranks: &mut [f64],
) {
    let mut start = 0;
    while start < sorted.len() {
        let k = key(sorted[start]);
        let mut end = start + 1;
        while end < sorted.len() && key(sorted[end]) == k {
            end += 1;
        }
        // Positions start+1 ..= end share the mean rank.
        let r = (start + end + 1) as f64 / 2.0;
        for &e in &sorted[start..end] {
            ranks[index(e)] = r;
        }
        start = end;
    }
}

/// Cosine similarity of the flattened maps, `a.b / (|a| |b|)`, in
/// `[-1, 1]`. `NaN` if either map is all zeros.
pub fn cosine(a: Map<'_>, b: Map<'_>) -> Result<f64, SimilarityError> {
    check_pair(a, b, 1)?;
    cosine_unchecked(a, b)
}

/// As [`pearson_unchecked`], finiteness is read off the sums of squares.
fn cosine_unchecked(a: Map<'_>, b: Map<'_>) -> Result<f64, SimilarityError> {
    let [saa, sbb, sab] = raw_products(a.data, b.data);
    let floor = a.len() as f64 * F32_MIN_SQ_PER_PIXEL;
    if saa.is_finite() && sbb.is_finite() && sab.is_finite() && saa > floor && sbb > floor {
        return Ok((sab / (saa.sqrt() * sbb.sqrt())).clamp(-1.0, 1.0));
    }
    // Exact f64 path: non-finite input, all-zero maps, extreme ranges.
    let (saa, sbb, sab) = centred_moments(a.data, b.data, 0.0, 0.0);
    if !saa.is_finite() {
        return Err(non_finite("a", a.data));
    }
    if !sbb.is_finite() {
        return Err(non_finite("b", b.data));
    }
    if saa == 0.0 || sbb == 0.0 {
        return Ok(f64::NAN);
    }
    Ok((sab / (saa.sqrt() * sbb.sqrt())).clamp(-1.0, 1.0))
}

// ---------------------------------------------------------------------------
// Top-percentile Jaccard and top-k
// ---------------------------------------------------------------------------

/// `(min, max)` of finite values, with independent per-lane extremes so
/// the loop vectorises (plain comparisons, not `f32::min`, which has NaN
/// semantics that block that).
fn min_max(data: &[f32]) -> (f32, f32) {
    let mut lo = [f32::INFINITY; SCAN_CHUNK];
    let mut hi = [f32::NEG_INFINITY; SCAN_CHUNK];
    let (chunks, tail) = data.as_chunks::<SCAN_CHUNK>();
    for x in chunks {
        for l in 0..SCAN_CHUNK {
            lo[l] = lo[l].min(x[l]);
            hi[l] = hi[l].max(x[l]);
        }
    }
    let (mut lo, mut hi) = lo
        .iter()
        .zip(&hi)
        .fold((f32::INFINITY, f32::NEG_INFINITY), |(a, b), (&l, &h)| {
            (if l < a { l } else { a }, if h > b { h } else { b })
        });
    for &x in tail {
        lo = if x < lo { x } else { lo };
        hi = if x > hi { x } else { hi };
    }
    (lo, hi)
}

/// NumPy's 'linear' percentile position for `n` values: the two 0-based
/// ranks `(prev, next)` to interpolate between and the weight `gamma` of
/// `next` (NumPy's exact index arithmetic).
fn percentile_index(n: usize, q: f64) -> (usize, usize, f64) {
    let last = n - 1;
    let virtual_index = last as f64 * (q / 100.0);
    let (prev, next) = if virtual_index >= last as f64 {
        (last, last)
    } else if virtual_index < 0.0 {
        (0, 0)
    } else {
        let prev = virtual_index.floor() as usize;
        (prev, prev + 1)
    };
    (prev, next, virtual_index - prev as f64)
}

/// NumPy's `_lerp(lo, hi, gamma)` (or `lo` when both ranks coincide).
fn percentile_lerp(lo: f64, hi: f64, gamma: f64, same_rank: bool) -> f64 {
    if same_rank {
        return lo;
    }
    let diff = hi - lo;
    if gamma >= 0.5 {
        hi - diff * (1.0 - gamma)
    } else {
        lo + diff * gamma
    }
}

/// `np.percentile(values, q)` of finite `values` (test oracle of the rules
/// above).
#[cfg(test)]
fn percentile_linear(values: &[f64], q: f64) -> f64 {
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    let (prev, next, gamma) = percentile_index(sorted.len(), q);
    percentile_lerp(sorted[prev], sorted[next], gamma, prev == next)
}

/// Inverse of [`sort_key`].
#[inline(always)]
fn from_sort_key(k: u32) -> f32 {
    if k & 0x8000_0000 != 0 {
        f32::from_bits(k & 0x7fff_ffff)
    } else {
        f32::from_bits(!k)
    }
}

/// Up to this many pixels the order statistics are selected directly.
const DIRECT_SELECT_MAX: usize = 8192;
/// Size of the strided sample that brackets the wanted ranks.
const SAMPLE: usize = 2048;
/// Pixels per step of the bracketing and counting passes.
const SCAN_CHUNK: usize = 16;

/// The `i`-th and `j`-th smallest (0-based, `i <= j < n`) of finite `data`
/// by value (`-0.0 == 0.0`), using `buf` as scratch.
///
/// Linear time: a strided sample of [`SAMPLE`] values gives a value bracket
/// that holds ranks `i..=j` with overwhelming probability; one vectorised
/// pass counts the pixels below it and collects the few inside it, and
/// `select_nth_unstable` finishes on those. If the bracket misses (or the
/// map is small) the selection runs on all pixels, so the result is always
/// exact.
fn order_statistics(data: &[f32], i: usize, j: usize, buf: &mut Vec<u32>) -> (f32, f32) {
    let n = data.len();
    buf.clear();
    let mut below = 0usize;
    if n > DIRECT_SELECT_MAX {
        buf.extend((0..SAMPLE).map(|k| sort_key(data[k * n / SAMPLE])));
        // Rank of i in the sample, widened by ~3 standard deviations (a miss only costs time).
        let p = i as f64 / n as f64;
        let margin = (3.0 * (SAMPLE as f64 * p * (1.0 - p)).sqrt()) as usize + 4;
        let centre = i * SAMPLE / n;
        let r_lo = centre.saturating_sub(margin);
        let r_hi = (centre + margin).min(SAMPLE - 1);
        let (_, &mut k_lo, upper) = buf.select_nth_unstable(r_lo);
        let k_hi = if r_hi == r_lo {
            k_lo
        } else {
            *upper.select_nth_unstable(r_hi - r_lo - 1).1
        };
        let plo = if r_lo == 0 {
            f32::NEG_INFINITY
        } else {
            from_sort_key(k_lo)
        };
        let phi = if r_hi == SAMPLE - 1 {
            f32::INFINITY
        } else {
            from_sort_key(k_hi)
        };
        buf.clear();
        let (chunks, tail) = data.as_chunks::<SCAN_CHUNK>();
        for chunk in chunks {
            let (mut nb, mut ni) = (0u32, 0u32);
            for &x in chunk {
                nb += u32::from(x < plo);
                ni += u32::from((x >= plo) & (x <= phi));
            }
            below += nb as usize;
            if ni > 0 {
                // Branch-free compaction: write every key, keep the inside.
                let mut k = buf.len();
                buf.resize(k + SCAN_CHUNK, 0);
                for &x in chunk {
                    buf[k] = sort_key(x);
                    k += usize::from((x >= plo) & (x <= phi));
                }
                buf.truncate(k);
            }
        }
        for &x in tail {
            below += usize::from(x < plo);
            if x >= plo && x <= phi {
                buf.push(sort_key(x));
            }
        }
        if below > i || below + buf.len() <= j {
            buf.clear();
            below = 0;
        }
    }
    if buf.is_empty() {
        buf.extend(data.iter().map(|&x| sort_key(x)));
    }
    let (ri, rj) = (i - below, j - below);
    let (_, &mut ki, upper) = buf.select_nth_unstable(ri);
    let kj = if rj == ri {
        ki
    } else {
        // Rank ri + 1 is the minimum of the part above ri.
        upper.iter().copied().min().unwrap_or(ki)
    };
    (from_sort_key(ki), from_sort_key(kj))
}

/// The mask threshold of [`jaccard_top`] in the original value space: the
/// smallest f32 `c` with `norm(c) >= np.percentile(norm(data), q)`, where
/// `norm(x) = (x - min) / (max - min)` in f64 as NumPy computes it. Since
/// `norm` is monotone (rounding is), `norm(x) >= t` holds exactly when
/// `x >= c`, so masks need no per-pixel division and match NumPy bit for
/// bit. A constant map (normalised to zeros, threshold 0) gives `-inf`.
fn top_threshold(data: &[f32], q: f64, buf: &mut Vec<u32>) -> f32 {
    let (lo, hi) = min_max(data);
    if hi <= lo {
        return f32::NEG_INFINITY;
    }
    let (lo, range) = (f64::from(lo), f64::from(hi) - f64::from(lo));
    let norm = |x: f32| (f64::from(x) - lo) / range;
    let (prev, next, gamma) = percentile_index(data.len(), q);
    // norm is monotone, so the order statistics of norm(data) are norm of
    // those of data.
    let (xp, xn) = order_statistics(data, prev, next, buf);
    let t = percentile_lerp(norm(xp), norm(xn), gamma, prev == next);
    if norm(f32::MAX) < t {
        return f32::INFINITY;
    }
    // Binary search over the finite f32 values in key (= value) order.
    let (mut lo_k, mut hi_k) = (sort_key(f32::MIN), sort_key(f32::MAX));
    while lo_k < hi_k {
        let mid = lo_k + (hi_k - lo_k) / 2;
        if norm(from_sort_key(mid)) >= t {
            hi_k = mid;
        } else {
            lo_k = mid + 1;
        }
    }
    from_sort_key(lo_k)
}

/// Jaccard index `|A ∩ B| / |A ∪ B|`, in `[0, 1]`, of the masks
/// `A = norm(a) >= np.percentile(norm(a), q)` (likewise `B`), where
/// `norm` is min-max normalisation to `[0, 1]` (a constant map normalises
/// to all zeros, so its mask is everything). `q` in `[0, 100]`; ties at the
/// threshold are all included, so a mask may hold more than
/// `(100 - q)%` of the pixels. Empty union gives 1.0.
pub fn jaccard_top(a: Map<'_>, b: Map<'_>, q: f64) -> Result<f64, SimilarityError> {
    check_percentile(q)?;
    check_pair(a, b, 1)?;
    check_finite_pair(a, b)?;
    Ok(jaccard_unchecked(a, b, q))
}

fn jaccard_unchecked(a: Map<'_>, b: Map<'_>, q: f64) -> f64 {
    let mut buf = Vec::new();
    let ta = top_threshold(a.data, q, &mut buf);
    let tb = top_threshold(b.data, q, &mut buf);
    let (mut inter, mut union) = (0usize, 0usize);
    let (ca, ra) = a.data.as_chunks::<SCAN_CHUNK>();
    let (cb, rb) = b.data.as_chunks::<SCAN_CHUNK>();
    for (xa, xb) in ca.iter().zip(cb) {
        let (mut ni, mut nu) = (0u32, 0u32);
        for (&x, &y) in xa.iter().zip(xb) {
            let (ma, mb) = (x >= ta, y >= tb);
            ni += u32::from(ma & mb);
            nu += u32::from(ma | mb);
        }
        inter += ni as usize;
        union += nu as usize;
    }
    for (&x, &y) in ra.iter().zip(rb) {
        let (ma, mb) = (x >= ta, y >= tb);
        inter += usize::from(ma & mb);
        union += usize::from(ma | mb);
    }
    if union == 0 {
        1.0
    } else {
        inter as f64 / union as f64
    }
}

/// Flat indices of the `k` highest values (`1 <= k <= n`), ties broken by
/// lower index first (the first `k` of `np.argsort(-x, kind='stable')`).
/// Order within the result is unspecified.
fn top_k_indices(data: &[f32], k: usize) -> Vec<usize> {
    if u32::try_from(data.len()).is_ok() {
        // Ascending (inverted key, index) = descending value, ascending index.
        let mut packed: Vec<u64> = data
            .iter()
            .enumerate()
            .map(|(i, &x)| (u64::from(!sort_key(x)) << 32) | i as u64)
            .collect();
        packed.select_nth_unstable(k - 1);
        packed[..k]
            .iter()
            .map(|&p| (p & 0xffff_ffff) as usize)
            .collect()
    } else {
        let mut pairs: Vec<(u32, usize)> = data
            .iter()
            .enumerate()
            .map(|(i, &x)| (!sort_key(x), i))
            .collect();
        pairs.select_nth_unstable(k - 1);
        pairs[..k].iter().map(|&(_, i)| i).collect()
    }
}

/// Fraction of the `k` highest-valued pixels of `a` that are also among the
/// `k` highest of `b`, in `[0, 1]` (`|topk(a) ∩ topk(b)| / k`). `k` must be
/// in `1..=height*width`. Ties are broken stably by flat index: among equal
/// values the lower row-major index ranks higher, as in
/// `np.argsort(-x, kind='stable')[:k]`.
pub fn top_k_intersection(a: Map<'_>, b: Map<'_>, k: usize) -> Result<f64, SimilarityError> {
    check_pair(a, b, 1)?;
    check_k(k, a.len())?;
    check_finite_pair(a, b)?;
    Ok(top_k_unchecked(a, b, k))
}

fn top_k_unchecked(a: Map<'_>, b: Map<'_>, k: usize) -> f64 {
    let mut in_a = vec![false; a.len()];
    for i in top_k_indices(a.data, k) {
        in_a[i] = true;
    }
    let shared = top_k_indices(b.data, k)
        .into_iter()
        .filter(|&i| in_a[i])
        .count();
    shared as f64 / k as f64
}

/// Resolved `k` of [`CompareOptions::k`] for `pixels` pixels.
fn resolve_k(opts: &CompareOptions, pixels: usize) -> usize {
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

#[cfg(test)]
mod tests {
    use super::*;

    fn m(data: &[f32], h: usize, w: usize) -> Map<'_> {
        Map {
            data,
            height: h,
            width: w,
        }
    }

    /// Deterministic smooth-ish test map in [0, 1].
    fn wave(h: usize, w: usize, phase: f32) -> Vec<f32> {
        (0..h * w)
            .map(|i| {
                let (r, c) = ((i / w) as f32, (i % w) as f32);
                0.5 + 0.5 * (0.3 * r + phase).sin() * (0.2 * c - phase).cos()
            })
            .collect()
    }

    #[test]
    fn shape_and_length_errors() {
        let a = [0.0f32; 64];
        let b = [0.0f32; 63];
        assert_eq!(
            pearson(m(&a, 8, 8), m(&a[..63], 7, 9)),
            Err(SimilarityError::ShapeMismatch {
                a: (8, 8),
                b: (7, 9)
            })
        );
        assert_eq!(
            cosine(m(&a, 8, 8), m(&b, 8, 8)),
            Err(SimilarityError::LengthMismatch {
                expected: 64,
                got: 63
            })
        );
        assert!(Map::new(&b, 8, 8).is_err());
        assert!(Map::new(&a, usize::MAX, 2).is_err());
        assert!(Map::new(&a, 8, 8).is_ok());
    }

    #[test]
    fn non_finite_is_an_error_everywhere() {
        let a = wave(8, 8, 0.0);
        let mut b = wave(8, 8, 1.0);
        b[13] = f32::NAN;
        let expect = Err(SimilarityError::NonFinite {
            which: "b",
            index: 13,
        });
        let (ma, mb) = (m(&a, 8, 8), m(&b, 8, 8));
        assert_eq!(ssim(ma, mb, &SsimOptions::default()), expect);
        assert_eq!(pearson(ma, mb), expect);
        assert_eq!(spearman(ma, mb), expect);
        assert_eq!(cosine(ma, mb), expect);
        assert_eq!(jaccard_top(ma, mb, 90.0), expect);
        assert_eq!(top_k_intersection(ma, mb, 3), expect);
        assert!(compare_maps(ma, mb, &CompareOptions::default()).is_err());
        let mut c = a.clone();
        c[0] = f32::NEG_INFINITY;
        c[5] = f32::INFINITY;
        let expect_a = Err(SimilarityError::NonFinite {
            which: "a",
            index: 0,
        });
        assert_eq!(pearson(m(&c, 8, 8), mb), expect_a);
        assert_eq!(cosine(m(&c, 8, 8), mb), expect_a);
    }

    #[test]
    fn too_small_and_invalid_options() {
        let a = wave(6, 9, 0.0);
        let err = ssim(m(&a, 6, 9), m(&a, 6, 9), &SsimOptions::default());
        assert_eq!(
            err,
            Err(SimilarityError::TooSmall {
                min: 7,
                got: (6, 9)
            })
        );
        let a = wave(10, 12, 0.0);
        let err = ssim(m(&a, 10, 12), m(&a, 10, 12), &SsimOptions::gaussian());
        assert_eq!(
            err,
            Err(SimilarityError::TooSmall {
                min: 11,
                got: (10, 12)
            })
        );
        assert!(ssim(m(&a, 10, 12), m(&a, 10, 12), &SsimOptions::default()).is_ok());
        let empty: [f32; 0] = [];
        assert_eq!(
            pearson(m(&empty, 0, 0), m(&empty, 0, 0)),
            Err(SimilarityError::TooSmall {
                min: 1,
                got: (0, 0)
            })
        );
        let ma = m(&a, 10, 12);
        assert_eq!(
            jaccard_top(ma, ma, 100.5),
            Err(SimilarityError::InvalidPercentile(100.5))
        );
        assert!(jaccard_top(ma, ma, f64::NAN).is_err());
        assert_eq!(
            top_k_intersection(ma, ma, 0),
            Err(SimilarityError::InvalidTopK { k: 0, pixels: 120 })
        );
        assert!(top_k_intersection(ma, ma, 121).is_err());
        let bad = SsimOptions {
            data_range: 0.0,
            ..SsimOptions::default()
        };
        assert_eq!(
            ssim(ma, ma, &bad),
            Err(SimilarityError::InvalidOption {
                name: "data_range",
                value: 0.0
            })
        );
    }

    #[test]
    fn identical_maps() {
        let a = wave(12, 15, 0.3);
        let ma = m(&a, 12, 15);
        assert_eq!(ssim(ma, ma, &SsimOptions::default()), Ok(1.0));
        assert_eq!(ssim(ma, ma, &SsimOptions::gaussian()), Ok(1.0));
        assert!((pearson(ma, ma).unwrap() - 1.0).abs() < 1e-12);
        assert!((spearman(ma, ma).unwrap() - 1.0).abs() < 1e-12);
        assert!((cosine(ma, ma).unwrap() - 1.0).abs() < 1e-12);
        assert_eq!(jaccard_top(ma, ma, 90.0), Ok(1.0));
        assert_eq!(top_k_intersection(ma, ma, 17), Ok(1.0));
    }

    #[test]
    fn hand_checked_values() {
        let a = [1.0f32, 2.0, 3.0, 4.0];
        let up = [2.0f32, 4.0, 6.0, 8.0];
        let down = [4.0f32, 3.0, 2.0, 1.0];
        let (ma, mu, md) = (m(&a, 1, 4), m(&up, 1, 4), m(&down, 1, 4));
        assert!((pearson(ma, mu).unwrap() - 1.0).abs() < 1e-15);
        assert!((pearson(ma, md).unwrap() + 1.0).abs() < 1e-15);
        assert!((spearman(ma, md).unwrap() + 1.0).abs() < 1e-15);
        // Ties: ranks [1, 2.5, 2.5, 4] vs [1, 2, 3, 4] -> 4.5 / sqrt(4.5 * 5).
        let tied = [1.0f32, 2.0, 2.0, 3.0];
        let r = spearman(m(&tied, 1, 4), ma).unwrap();
        assert!((r - 4.5 / (22.5f64).sqrt()).abs() < 1e-15);
        // Cosine: orthogonal and parallel.
        let (e1, e2) = ([1.0f32, 0.0], [0.0f32, 1.0]);
        assert_eq!(cosine(m(&e1, 1, 2), m(&e2, 1, 2)), Ok(0.0));
        assert!((cosine(ma, mu).unwrap() - 1.0).abs() < 1e-15);
        // Jaccard at q = 50: thresholds 0.5, masks {2,3} and {0,1}.
        let a0 = [0.0f32, 1.0, 2.0, 3.0];
        assert_eq!(jaccard_top(m(&a0, 2, 2), m(&down, 2, 2), 50.0), Ok(0.0));
        assert_eq!(jaccard_top(m(&a0, 2, 2), m(&down, 2, 2), 0.0), Ok(1.0));
        // q = 25 (threshold 0.25) keeps 3 of 4 pixels each:
        // {1,2,3} vs {0,1,2} -> 2/4.
        assert_eq!(jaccard_top(m(&a0, 2, 2), m(&down, 2, 2), 25.0), Ok(0.5));
        // Top-k: one shared of two.
        let b0 = [3.0f32, 0.0, 1.0, 2.0];
        assert_eq!(top_k_intersection(m(&a0, 2, 2), m(&b0, 2, 2), 2), Ok(0.5));
    }

    #[test]
    fn top_k_ties_break_by_index() {
        // All equal: top-2 is {0, 1} for both.
        let flat = [1.0f32; 6];
        assert_eq!(
            top_k_intersection(m(&flat, 2, 3), m(&flat, 2, 3), 2),
            Ok(1.0)
        );
        // a: ties at value 5 on {1, 4}; top-2 = {0 (9), 1}. b: top-2 = {4, 0}.
        let a = [9.0f32, 5.0, 0.0, 0.0, 5.0, 0.0];
        let b = [9.0f32, 0.0, 0.0, 0.0, 5.0, 0.0];
        assert_eq!(top_k_intersection(m(&a, 2, 3), m(&b, 2, 3), 2), Ok(0.5));
        // -0.0 and 0.0 are ties.
        let z = [-0.0f32, 0.0, 0.0];
        let y = [0.0f32, 0.0, -0.0];
        assert_eq!(top_k_intersection(m(&z, 1, 3), m(&y, 1, 3), 1), Ok(1.0));
    }

    #[test]
    fn degenerate_maps() {
        let c = [0.5f32; 64];
        let z = [0.0f32; 64];
        let r = wave(8, 8, 0.7);
        let (mc, mz, mr) = (m(&c, 8, 8), m(&z, 8, 8), m(&r, 8, 8));
        assert!(pearson(mc, mr).unwrap().is_nan());
        assert!(spearman(mc, mr).unwrap().is_nan());
        assert!(cosine(mz, mr).unwrap().is_nan());
        assert!(cosine(mc, mr).unwrap().is_finite());
        // Constant map: mask is everything, so Jaccard = |B| / n.
        let jb = jaccard_top(mc, mr, 75.0).unwrap();
        assert_eq!(jb, 16.0 / 64.0);
        assert_eq!(ssim(mc, mc, &SsimOptions::default()), Ok(1.0));
        assert_eq!(ssim(mz, mz, &SsimOptions::default()), Ok(1.0));
    }

    #[test]
    fn report_serialises_nan_as_null() {
        let c = [0.5f32; 64];
        let r = wave(8, 8, 0.7);
        let rep = compare_maps(m(&c, 8, 8), m(&r, 8, 8), &CompareOptions::default()).unwrap();
        assert!(rep.pearson.is_nan());
        assert_eq!(rep.k, 7);
        let json = serde_json::to_string(&rep).unwrap();
        assert!(json.contains("\"pearson\":null"), "{json}");
        assert!(json.contains("\"spearman\":null"), "{json}");
        let back: SimilarityReport = serde_json::from_str(&json).unwrap();
        assert!(back.pearson.is_nan());
        // serde_json's default float parser is not always correctly rounded.
        assert!((back.ssim - rep.ssim).abs() < 1e-15);
        assert_eq!(back.k, 7);
    }

    #[test]
    fn percentile_matches_numpy_rules() {
        let v = [0.0, 0.25, 0.5, 1.0];
        assert_eq!(percentile_linear(&v, 0.0), 0.0);
        assert_eq!(percentile_linear(&v, 100.0), 1.0);
        assert_eq!(percentile_linear(&v, 50.0), 0.375);
        // Many buckets, shuffled input.
        let vals: Vec<f64> = (0..1001)
            .map(|i| ((i * 7919) % 1001) as f64 / 1000.0)
            .collect();
        assert_eq!(percentile_linear(&vals, 90.0), 0.9);
        assert!((percentile_linear(&vals, 25.05) - 0.2505).abs() < 1e-12);
    }

    /// xorshift64* in [0, 1).
    fn rng(seed: &mut u64) -> f64 {
        *seed ^= *seed >> 12;
        *seed ^= *seed << 25;
        *seed ^= *seed >> 27;
        (seed.wrapping_mul(0x2545_f491_4f6c_dd1d) >> 11) as f64 / (1u64 << 53) as f64
    }

    /// Large maps of several kinds: smooth, noisy, coarsely quantised (many
    /// ties), signed with an offset, mostly constant.
    fn big_maps() -> Vec<(Vec<f32>, usize, usize)> {
        let mut seed = 0x1234_5678_9abc_def1u64;
        let mut out = Vec::new();
        for (h, w) in [(224, 224), (97, 131), (300, 41)] {
            let n = h * w;
            out.push((wave(h, w, 0.4), h, w));
            out.push(((0..n).map(|_| rng(&mut seed) as f32).collect(), h, w));
            out.push((
                (0..n)
                    .map(|_| (rng(&mut seed) * 7.0).floor() as f32 / 7.0)
                    .collect(),
                h,
                w,
            ));
            out.push((
                (0..n)
                    .map(|_| (1000.0 + 3.0 * (rng(&mut seed) - 0.5)) as f32)
                    .collect(),
                h,
                w,
            ));
            out.push((
                (0..n)
                    .map(|i| {
                        if i % 97 == 0 {
                            rng(&mut seed) as f32 - 0.5
                        } else {
                            -0.0
                        }
                    })
                    .collect(),
                h,
                w,
            ));
        }
        out
    }

    /// Jaccard counts exactly as the NumPy reference: normalise, sort,
    /// interpolate, compare.
    fn jaccard_reference(a: &[f32], b: &[f32], q: f64) -> f64 {
        let norm = |d: &[f32]| -> Vec<f64> {
            let lo = d.iter().copied().fold(f32::INFINITY, f32::min) as f64;
            let hi = d.iter().copied().fold(f32::NEG_INFINITY, f32::max) as f64;
            if hi == lo {
                return vec![0.0; d.len()];
            }
            d.iter().map(|&x| (f64::from(x) - lo) / (hi - lo)).collect()
        };
        let (na, nb) = (norm(a), norm(b));
        let (ta, tb) = (percentile_linear(&na, q), percentile_linear(&nb, q));
        let (mut i, mut u) = (0usize, 0usize);
        for (&x, &y) in na.iter().zip(&nb) {
            i += usize::from(x >= ta && y >= tb);
            u += usize::from(x >= ta || y >= tb);
        }
        if u == 0 {
            1.0
        } else {
            i as f64 / u as f64
        }
    }

    #[test]
    fn jaccard_fast_path_is_exact_on_large_maps() {
        let maps = big_maps();
        for pair in maps.chunks(2).filter(|p| p.len() == 2) {
            let ((a, h, w), (b, _, _)) = (&pair[0], &pair[1]);
            if a.len() != b.len() {
                continue;
            }
            for q in [0.0, 0.5, 10.0, 50.0, 75.0, 90.0, 99.0, 99.9, 100.0] {
                let got = jaccard_top(m(a, *h, *w), m(b, *h, *w), q).unwrap();
                assert_eq!(got, jaccard_reference(a, b, q), "q={q} {h}x{w}");
            }
        }
        // Every map against itself shifted by one pixel.
        for (a, h, w) in &maps {
            let mut b = a.clone();
            b.rotate_left(1);
            for q in [25.0, 90.0, 97.3] {
                let got = jaccard_top(m(a, *h, *w), m(&b, *h, *w), q).unwrap();
                assert_eq!(got, jaccard_reference(a, &b, q), "q={q} {h}x{w}");
            }
        }
    }

    /// Pearson and cosine through the f32 kernels against the exact f64
    /// two-pass sums.
    #[test]
    fn fast_correlations_are_accurate() {
        let maps = big_maps();
        let mut worst = 0.0f64;
        for (a, h, w) in &maps {
            for (b, h2, w2) in &maps {
                if (h, w) != (h2, w2) {
                    continue;
                }
                let n = a.len() as f64;
                let (sa, sb) = sums(a, b);
                let (sxx, syy, sxy) = centred_moments(a, b, sa / n, sb / n);
                let exact_p = pearson_from(sxx, syy, sxy);
                let got_p = pearson(m(a, *h, *w), m(b, *h, *w)).unwrap();
                let (saa, sbb, sab) = centred_moments(a, b, 0.0, 0.0);
                let exact_c = (sab / (saa.sqrt() * sbb.sqrt())).clamp(-1.0, 1.0);
                let got_c = cosine(m(a, *h, *w), m(b, *h, *w)).unwrap();
                for (g, e) in [(got_p, exact_p), (got_c, exact_c)] {
                    assert_eq!(g.is_nan(), e.is_nan());
                    if !e.is_nan() {
                        worst = worst.max((g - e).abs());
                    }
                }
            }
        }
        eprintln!("worst |fast - exact| = {worst:e}");
        assert!(worst < 1e-7, "{worst}");
    }

    #[test]
    fn f32_kernels_fall_back_outside_f32_range() {
        // Squares overflow f32, and squares underflow to subnormals.
        let big: Vec<f32> = (0..600).map(|i| 1e20 * (1.0 + (i % 7) as f32)).collect();
        let big2: Vec<f32> = (0..600).map(|i| 1e20 * (1.0 + (i % 5) as f32)).collect();
        let tiny: Vec<f32> = big.iter().map(|x| x * 1e-42).collect();
        let tiny2: Vec<f32> = big2.iter().map(|x| x * 1e-42).collect();
        for (a, b) in [(&big, &big2), (&tiny, &tiny2)] {
            let (ma, mb) = (m(a, 20, 30), m(b, 20, 30));
            let n = 600.0;
            let (sa, sb) = sums(a.as_slice(), b.as_slice());
            let (sxx, syy, sxy) = centred_moments(a.as_slice(), b.as_slice(), sa / n, sb / n);
            assert!((pearson(ma, mb).unwrap() - pearson_from(sxx, syy, sxy)).abs() < 1e-12);
            let (saa, sbb, sab) = centred_moments(a.as_slice(), b.as_slice(), 0.0, 0.0);
            let c = sab / (saa.sqrt() * sbb.sqrt());
            assert!((cosine(ma, mb).unwrap() - c).abs() < 1e-12);
        }
    }
}
