#!/usr/bin/env python3
"""Repeated-CV figures recomputed in numpy from a --batch run's saved
out-of-fold predictions, with and without test-time augmentation.

    .venv/bin/python benches/tta_offline.py reports/RUN [reports/RUN2 ...] [--tta]

Reads every `training_<name>-cv.json` of each run folder (one repetition of
k-fold each: its `splits[].test` rows are the out-of-fold logits). With
`--tta` it also runs `melxai eval --checkpoint <fold checkpoint> --tta
--uncalibrated --json` for every fold model (cached in
target/tta-offline/) and evaluates those predictions the same way. Several
run folders are also pooled into one ensemble (e.g. 224 px and 320 px
repetitions). An independent re-implementation of src/repeated_cv.rs: mean
of the repetitions' probabilities, one temperature cross-fitted on the first
repetition's folds, ECE over 15 equal-width bins of the top-label confidence,
AURC as the mean selective risk, the ECE a perfectly calibrated model would
score on the ensemble's confidences and the share of such draws at or above
the observed ECE (consistency resampling; `--combine logit`: the mean of logits instead), seed-to-seed |dp| between repetitions and
between the ensembles of two halves that share no seed. On plain predictions it
reproduces melxai's metrics.json `ensemble` numbers to the printed digits.
"""
import argparse
import glob
import itertools
import json
import os
import re
import subprocess
import sys

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def load_repetition(path, source, melxai, cache):
    """One repetition's out-of-fold log-probabilities. `source`: "saved" (the
    `test` rows: TTA ones when the run had `[train] tta` on), "plain" (its
    `test_without_tta` rows) or "eval-tta" (`melxai eval --tta` of each fold
    model)."""
    d = json.load(open(path))
    fold, label, logp = {}, {}, {}
    for f, split in enumerate(d["splits"]):
        rows = split["test_without_tta"] if source == "plain" else split["test"]
        for r in rows:
            fold[r["id"]], label[r["id"]] = f, r["label"]
            z = np.array(r["logits"], dtype=float)
            logp[r["id"]] = z - np.logaddexp.reduce(z)
        if source == "eval-tta":
            ckpt = split["checkpoint"]
            out = os.path.join(cache, os.path.basename(ckpt).replace(".safetensors", ".json"))
            if not os.path.exists(out):
                text = subprocess.run([melxai, "eval", "--checkpoint", ckpt, "--tta", "--uncalibrated", "--json"],
                                      cwd=ROOT, capture_output=True, text=True, check=True).stdout
                with open(out, "w") as fh:
                    fh.write(text)
            ev = json.load(open(out))
            assert len(ev["predictions"]) == len(split["test"]), f"{ckpt}: another split"
            for p in ev["predictions"]:
                # Two classes: the positive (melanoma, index 0) probability gives both.
                q = min(max(p["probability_uncalibrated"], 1e-12), 1 - 1e-12)
                logp[p["id"]] = np.log(np.array([q, 1 - q]))
    return d["name"], fold, label, logp, d["config"]["seed"]


def sources(path, tta):
    """What can be evaluated for one run's repetition file, with labels."""
    d = json.load(open(path))
    saved_tta = all(s.get("test_without_tta") for s in d["splits"])
    out = [("saved", "TTA ([train] tta)" if saved_tta else "plain")]
    if saved_tta:
        out.append(("plain", "plain (test_without_tta)"))
    if tta:
        out.append(("eval-tta", "TTA (melxai eval --tta)"))
    return out


def auroc(y, s):
    pos, neg = s[y == 1], s[y == 0]
    return np.mean(pos[:, None] > neg[None, :]) + 0.5 * np.mean(pos[:, None] == neg[None, :])


def scale(lp, t):
    z = lp / t
    return z - np.logaddexp.reduce(z, axis=1, keepdims=True)


def nll(lp, lab):
    return -np.mean(lp[np.arange(len(lab)), lab])


def fit_temperature(lp, lab):
    lo, hi, g = np.log(0.05), np.log(20.0), (np.sqrt(5) - 1) / 2
    for _ in range(100):
        a, b = hi - g * (hi - lo), lo + g * (hi - lo)
        if nll(scale(lp, np.exp(a)), lab) < nll(scale(lp, np.exp(b)), lab):
            hi = b
        else:
            lo = a
    return np.exp((lo + hi) / 2)


def cross_fit(lp, lab, fold):
    out = np.zeros_like(lp)
    for f in np.unique(fold):
        m = fold == f
        out[m] = scale(lp[m], fit_temperature(lp[~m], lab[~m]))
    return out


def metrics(lp, lab, positive=0):
    p = np.exp(lp)
    y = (lab == positive).astype(int)
    conf, correct = p.max(1), p.argmax(1) == lab
    bins = np.minimum((conf * 15).astype(int), 14)
    ece = sum(abs(correct[bins == b].mean() - conf[bins == b].mean()) * (bins == b).mean()
              for b in range(15) if (bins == b).any())
    pp = p[:, positive]
    sens = ((pp >= 0.5) & (y == 1)).sum() / y.sum()
    spec = ((pp < 0.5) & (y == 0)).sum() / (y == 0).sum()
    # Selective risk, most confident first; ties share their expected errors.
    order = np.argsort(-conf, kind="stable")
    c, e = conf[order], (~correct[order]).astype(float)
    for v in np.unique(c):
        e[c == v] = e[c == v].mean()
    aurc = np.mean(np.cumsum(e) / np.arange(1, len(e) + 1))
    return dict(auroc=auroc(y, pp), bal_acc=(sens + spec) / 2, ece=ece,
                brier=np.mean((pp - y) ** 2), nll=nll(lp, lab), aurc=aurc)


def ece_if_calibrated(lp, lab, draws=20000, seed=0):
    """Consistency resampling (src/calibrate/consistency.rs, re-implemented):
    the 15-bin ECE of outcomes drawn as Bernoulli(top-label confidence), i.e.
    what a perfectly calibrated model scores on these confidences; returns
    its mean and the share of draws at or above the observed ECE."""
    conf = np.exp(lp).max(1)
    bins = np.minimum((conf * 15).astype(int), 14)
    onehot = (bins[:, None] == np.arange(15)[None, :]).astype(float)
    rng = np.random.default_rng(seed)
    correct = rng.random((draws, len(conf))) < conf[None, :]
    ece = np.abs((correct - conf[None, :]) @ onehot).sum(1) / len(conf)
    observed = metrics(lp, lab)["ece"]
    return ece.mean(), (1 + np.sum(ece >= observed)) / (1 + draws)


def evaluate(reps, combine="prob"):
    ids = sorted(reps[0][2])
    lab = np.array([reps[0][2][i] for i in ids])
    lps = [np.array([r[3][i] for i in ids]) for r in reps]
    folds = [np.array([r[1][i] for i in ids]) for r in reps]
    cal = [cross_fit(lp, lab, f) for lp, f in zip(lps, folds)]
    single = [metrics(c, lab) for c in cal]

    def ensemble(idx):
        if combine == "logit":  # the deployed ensembles' rule (src/ensemble/combine.rs)
            return cross_fit(scale(np.mean([lps[i] for i in idx], 0), 1.0), lab, folds[0])
        p = np.mean([np.exp(lps[i]) for i in idx], 0)
        return cross_fit(np.log(p), lab, folds[0])

    ens_lp = ensemble(range(len(reps)))
    ens = metrics(ens_lp, lab)
    ens["ece_if_calibrated"], ens["ece_p"] = ece_if_calibrated(ens_lp, lab)
    pos = [np.exp(c)[:, 0] for c in cal]
    d_single = np.mean([np.mean(abs(a - b)) for a, b in itertools.combinations(pos, 2)]) if len(reps) > 1 else np.nan
    # Halves that share no seed (a seed at several input sizes stays in one),
    # as src/repeated_cv.rs's seed_halves.
    seeds = list(dict.fromkeys(r[4] for r in reps))
    h = len(seeds) // 2
    a = [i for i, r in enumerate(reps) if r[4] in seeds[:h]]
    b = [i for i, r in enumerate(reps) if r[4] in seeds[h:2 * h]]
    d_ens = (np.mean(abs(np.exp(ensemble(a))[:, 0] - np.exp(ensemble(b))[:, 0]))
             if len(a) >= 2 and len(b) >= 2 else np.nan)
    mean = {k: np.mean([m[k] for m in single]) for k in single[0]}
    return mean, ens, d_single, d_ens


def show(title, reps, combine):
    mean, ens, d1, d2 = evaluate(reps, combine)
    fmt = lambda m: "  ".join(f"{k} {v:.3f}" for k, v in m.items())
    print(f"{title}\n  single (mean of {len(reps)}): {fmt(mean)}  |dp| {d1:.3f}\n"
          f"  ensemble of {len(reps)}:     {fmt(ens)}  |dp| halves {d2:.3f}")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("runs", nargs="+", help="report folders of --batch runs (reports/<run>)")
    ap.add_argument("--tta", action="store_true", help="also evaluate TTA predictions of every fold model")
    ap.add_argument("--combine", choices=["prob", "logit"], default="prob",
                    help="ensemble rule: mean of probabilities (repeated CV's) or of logits (deployed ensembles')")
    ap.add_argument("--melxai", default=os.path.join(ROOT, "target/release/melxai"))
    ap.add_argument("--cache", default=os.path.join(ROOT, "target/tta-offline"))
    a = ap.parse_args()
    os.makedirs(a.cache, exist_ok=True)
    pooled = {}
    for run in a.runs:
        # melxai's order: seed-major, the recipe's own size before extra
        # sizes (`-<size>px`). The ensemble's temperature is cross-fitted on
        # the first repetition's folds, so the order matters (file names
        # alone sort `-r1-` before a `-swa10-cv` first repetition).
        files = sorted(glob.glob(os.path.join(run, "training_*-cv.json")),
                       key=lambda f: (json.load(open(f))["config"]["seed"],
                                      re.search(r"-\d+px-", os.path.basename(f)) is not None))
        if not files:
            sys.exit(f"{run}: no training_*-cv.json (a --batch run with [batch] folds >= 2)")
        for source, label in sources(files[0], a.tta):
            reps = [load_repetition(f, source, a.melxai, a.cache) for f in files]
            pooled.setdefault(label, []).extend(reps)
            show(f"{run}, {label} ({', '.join(r[0] for r in reps)})", reps, a.combine)
    if len(a.runs) > 1:
        for label, reps in pooled.items():
            show(f"all runs pooled, {label}", reps, a.combine)


if __name__ == "__main__":
    main()
