//! Top-percentile Jaccard and top-k overlap, on linear-time selection of
//! order statistics.

use super::correlation::sort_key;
use super::{check_finite_pair, check_k, check_pair, check_percentile, Map, SimilarityError};

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
pub(super) fn percentile_linear(values: &[f64], q: f64) -> f64 {
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

pub(super) fn jaccard_unchecked(a: Map<'_>, b: Map<'_>, q: f64) -> f64 {
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

pub(super) fn top_k_unchecked(a: Map<'_>, b: Map<'_>, k: usize) -> f64 {
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
