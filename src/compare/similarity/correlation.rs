//! Pearson, Spearman and cosine of flattened maps, with the summation
//! kernels they share.

use super::{check_finite_pair, check_pair, non_finite, Map, SimilarityError, MOMENTS};

/// Independent accumulators so the reductions vectorise.
const LANES: usize = 8;

/// `(sum a, sum b)` in f64.
#[inline(always)]
pub(super) fn sums<T: Copy + Into<f64>>(a: &[T], b: &[T]) -> (f64, f64) {
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
pub(super) fn centred_moments<T: Copy + Into<f64>>(
    a: &[T],
    b: &[T],
    ma: f64,
    mb: f64,
) -> (f64, f64, f64) {
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
pub(super) fn pearson_from(sxx: f64, syy: f64, sxy: f64) -> f64 {
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
pub(super) fn pearson_unchecked(a: Map<'_>, b: Map<'_>) -> Result<f64, SimilarityError> {
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

pub(super) fn spearman_unchecked(a: Map<'_>, b: Map<'_>) -> f64 {
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
pub(super) fn sort_key(x: f32) -> u32 {
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
pub(super) fn cosine_unchecked(a: Map<'_>, b: Map<'_>) -> Result<f64, SimilarityError> {
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
