//! Unit tests of the similarity metrics (the reference values live in
//! `tests/similarity_fixtures.rs`).

use super::correlation::{centred_moments, pearson_from, sums};
use super::selection::percentile_linear;
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
