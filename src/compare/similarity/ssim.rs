//! Mean structural similarity (SSIM), as scikit-image computes it.

use serde::{Deserialize, Serialize};

use super::{check_finite_pair, check_pair, Map, SimilarityError, MOMENTS};

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

    pub(super) fn validate(&self) -> Result<(), SimilarityError> {
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

pub(super) fn ssim_unchecked(a: Map<'_>, b: Map<'_>, opts: &SsimOptions) -> f64 {
    let consts = SsimConsts::new(opts);
    if opts.gaussian {
        ssim_gaussian(a.data, b.data, a.height, a.width, &consts)
    } else {
        ssim_uniform(a.data, b.data, a.height, a.width, &consts)
    }
}

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
