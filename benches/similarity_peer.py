#!/usr/bin/env python3
"""Python peer of `benches/similarity.rs`: times the NumPy / SciPy /
scikit-image formulations of the similarity metrics on one pair of maps and
prints one JSON object on stdout:

    {"versions": {...}, "reps": N, "median_us": {"ssim": ..., ...}}

The maps are read from raw little-endian float32 files written by the Rust
bench (`--a`, `--b`, `--height`, `--width`), so both sides time the same
data; without them a seeded pair of smooth 224x224 maps is generated.
The float32 -> float64 conversion happens once, outside the timed region,
so scikit-image computes in float64 like the Rust code (`ssim_f32` times
scikit-image on the float32 arrays as given, which it computes in float32).
Each metric is a median over `--reps` calls after a warm-up.
"""

import argparse
import json
import sys
import time
import warnings

import numpy as np


def minmax(x):
    lo, hi = x.min(), x.max()
    if hi == lo:
        return np.zeros_like(x)
    return (x - lo) / (hi - lo)


def jaccard(a, b, q=90.0):
    na, nb = minmax(a), minmax(b)
    ma = na >= np.percentile(na, q)
    mb = nb >= np.percentile(nb, q)
    union = np.logical_or(ma, mb).sum()
    return 1.0 if union == 0 else np.logical_and(ma, mb).sum() / union


def topk(a, b, k):
    ta = np.argsort(-a.ravel(), kind="stable")[:k]
    tb = np.argsort(-b.ravel(), kind="stable")[:k]
    return len(np.intersect1d(ta, tb)) / k


def cosine(a, b):
    a, b = a.ravel(), b.ravel()
    return np.dot(a, b) / (np.linalg.norm(a) * np.linalg.norm(b))


def median_us(fn, reps):
    for _ in range(max(3, reps // 10)):
        fn()
    times = []
    for _ in range(reps):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return float(np.median(times) * 1e6)


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--a")
    p.add_argument("--b")
    p.add_argument("--height", type=int, default=224)
    p.add_argument("--width", type=int, default=224)
    p.add_argument("--reps", type=int, default=100)
    args = p.parse_args()

    try:
        import scipy
        import scipy.ndimage as ndi
        import scipy.stats
        import skimage
        from skimage.metrics import structural_similarity
    except ImportError as e:  # the Rust bench reports this and carries on
        print(f"missing Python package: {e}", file=sys.stderr)
        sys.exit(3)

    shape = (args.height, args.width)
    if args.a and args.b:
        a32 = np.fromfile(args.a, dtype="<f4").reshape(shape)
        b32 = np.fromfile(args.b, dtype="<f4").reshape(shape)
    else:
        rng = np.random.default_rng(0)
        a32 = minmax(ndi.gaussian_filter(rng.standard_normal(shape), 4.0)).astype(np.float32)
        b32 = minmax(ndi.gaussian_filter(rng.standard_normal(shape), 4.0)).astype(np.float32)
    a, b = a32.astype(np.float64), b32.astype(np.float64)
    k = max(1, int(np.ceil(a.size * 0.1)))
    reps = args.reps

    warnings.simplefilter("ignore")
    res = {
        "ssim": median_us(lambda: structural_similarity(a, b, data_range=1.0), reps),
        "ssim_f32": median_us(lambda: structural_similarity(a32, b32, data_range=1.0), reps),
        "ssim_gaussian": median_us(
            lambda: structural_similarity(a, b, data_range=1.0, gaussian_weights=True), reps
        ),
        "pearson": median_us(lambda: np.corrcoef(a.ravel(), b.ravel())[0, 1], reps),
        "spearman": median_us(
            lambda: scipy.stats.spearmanr(a.ravel(), b.ravel()).statistic, max(10, reps // 5)
        ),
        "cosine": median_us(lambda: cosine(a, b), reps),
        "jaccard": median_us(lambda: jaccard(a, b), reps),
        "topk": median_us(lambda: topk(a, b, k), max(10, reps // 5)),
    }
    out = {
        "versions": {
            "python": sys.version.split()[0],
            "numpy": np.__version__,
            "scipy": scipy.__version__,
            "skimage": skimage.__version__,
        },
        "reps": reps,
        "k": k,
        "median_us": res,
    }
    print(json.dumps(out))


if __name__ == "__main__":
    main()
