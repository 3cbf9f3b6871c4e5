#!/usr/bin/env python3
"""On paper: a run's units, critical path and expected wall time.

Reads a plan (`melxai batch plan --json`), gives every unit a cost from the
per-image and per-step figures below, and schedules the units:

- local workers (`--workers N` / `--devices`): a worker takes the first
  ready unit in plan order as soon as it is free (what `batch worker` does);
- Slurm (`--executor slurm`): one job array per stage, each stage starting
  when the one before has finished (`afterok`), its tasks on the cluster's
  GPUs in array order.

Usage: python3 benches/units_estimate.py PLAN.json IMAGES [--repeats R]
IMAGES is the data set's size; the costs are per unit of work, so the
figures scale with it. No queue waits, start-ups or data decoding are
counted beyond what the constants hold (see benches/README.md, "Units").
"""
import argparse
import heapq
import json

# Measured on one H200 / H100 (benches/README.md, "Measured on a GPU"):
TRAIN_IMG_PER_S = {"lite0": 750.0, "lite1": 750.0 / 1.5}  # melxai::train::train, b16;
# Lite1 (240 px, wider) taken as 1.5x Lite0's cost per image (not measured on the GPU).
# Warm explanation of one image with the three methods, Lite0: IG-50 b16
# 52 ms + DeepLIFT 33 ms + GradCAM 5.7 ms.
EXPLAIN_S_PER_IMAGE = {"lite0": 0.091, "lite1": 0.091 * 1.5}
# The fold ensemble explains through its combined output: 5 members.
ENSEMBLE_MEMBERS = 5
# [scores] on the reference model's maps: 5.8 s per image against 4.4 s for
# one model's three maps on the CPU (benches/README.md, "Attribution
# scores"), so 1.3x one model's explanation, assumed to hold on the GPU.
SCORES_PER_EXPLANATION = 1.3
# Inference, forward only: ~3x the training step's rate; TTA (on for CUDA)
# predicts 8 views.
PREDICT_IMG_PER_S = 3 * 750.0
TTA_VIEWS = 8
EPOCHS = 15
# An evaluation unit: 0.3 s on MED-NODE (26 + 26 held-out images: it reads
# recorded predictions, fits a temperature, bootstraps intervals, draws
# figures); taken as 60 s at ISIC size (7 600 held-out images), a guess.
EVALUATE_S = 60.0
TEST, VAL = 0.15, 0.15


def costs(plan, images, arch_of):
    """Seconds of each unit on one GPU."""
    explained = TEST * images
    reference = next(u["model"] for u in plan["units"] if u["kind"] == "evaluate")
    out = {}
    for u in plan["units"]:
        kind = u["kind"]
        if kind == "train":
            arch = arch_of(u["model"])
            if u.get("fold") is None:
                n = (1 - TEST - VAL) * images
            else:
                n = 0.8 * images  # k = 5 folds, fold_val_fraction 0
            out[u["id"]] = EPOCHS * n / TRAIN_IMG_PER_S[arch]
        elif kind == "ensemble":
            out[u["id"]] = images * TTA_VIEWS / PREDICT_IMG_PER_S
        elif kind == "evaluate":
            # Reads the recorded predictions, fits the temperature,
            # bootstraps the intervals, draws the figures.
            out[u["id"]] = EVALUATE_S
        elif kind == "explain":
            model = u["model"]
            if model.endswith("-cv"):
                per = EXPLAIN_S_PER_IMAGE[arch_of(model[:-3])] * ENSEMBLE_MEMBERS
            else:
                per = EXPLAIN_S_PER_IMAGE[arch_of(model)]
            if model == reference:
                # The reference model's shards also score its maps.
                per += EXPLAIN_S_PER_IMAGE[arch_of(model)] * SCORES_PER_EXPLANATION
            out[u["id"]] = explained / u["shards"] * per
        else:  # the report: held-out predictions again; the scores are the shards'.
            folds = sum(1 for v in plan["units"] if v["kind"] == "train" and v.get("fold") is not None)
            repetitions = folds / 5
            singles = sum(1 for v in plan["units"] if v["kind"] == "train" and v.get("fold") is None)
            predict = (repetitions * images + singles * (TEST + VAL) * images) * TTA_VIEWS / PREDICT_IMG_PER_S
            out[u["id"]] = predict
    return out


def critical_path(plan, cost):
    finish, prev = {}, {}
    for u in plan["units"]:
        before = max(u["deps"], key=lambda d: finish[d], default=None)
        finish[u["id"]] = (finish[before] if before else 0.0) + cost[u["id"]]
        prev[u["id"]] = before
    last = max(finish, key=finish.get)
    chain = [last]
    while prev[chain[-1]]:
        chain.append(prev[chain[-1]])
    return list(reversed(chain)), finish[last]


def local_wall(plan, cost, workers):
    """Workers take the first ready unit in plan order when free."""
    done_at = {}
    pending = list(plan["units"])
    free = [0.0] * workers
    heapq.heapify(free)
    while pending:
        t = heapq.heappop(free)
        ready = [u for u in pending if all(d in done_at and done_at[d] <= t for d in u["deps"])]
        if not ready:
            # Wait for the next unit to finish.
            later = [done_at[d] for u in pending for d in u["deps"] if d in done_at and done_at[d] > t]
            heapq.heappush(free, min(later))
            continue
        u = ready[0]
        pending.remove(u)
        done_at[u["id"]] = t + cost[u["id"]]
        heapq.heappush(free, done_at[u["id"]])
    return max(done_at.values())


def slurm_wall(plan, cost, gpus):
    total = 0.0
    for stage in range(max(u["stage"] for u in plan["units"]) + 1):
        free = [0.0] * gpus
        for u in (u for u in plan["units"] if u["stage"] == stage):
            t = heapq.heappop(free)
            heapq.heappush(free, t + cost[u["id"]])
        total += max(free)
    return total


def hours(s):
    return f"{s / 3600:.2f} h"


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("plan")
    ap.add_argument("images", type=int)
    args = ap.parse_args()
    plan = json.load(open(args.plan))
    archs = {}
    for u in plan["units"]:
        if u["kind"] == "train":
            archs.setdefault(u["model"], "lite1" if "lite1" in u["model"] else "lite0")
    cost = costs(plan, args.images, lambda m: archs.get(m, "lite1" if "lite1" in m else "lite0"))
    chain, length = critical_path(plan, cost)
    kinds = {}
    for u in plan["units"]:
        kinds[u["kind"]] = kinds.get(u["kind"], 0) + 1
    print(f"units: {len(plan['units'])} ({', '.join(f'{v} {k}' for k, v in kinds.items())}), stages: {max(u['stage'] for u in plan['units']) + 1}")
    print(f"work: {hours(sum(cost.values()))} of GPU time")
    print(f"critical path: {hours(length)}: {' -> '.join(chain)}")
    print(f"1 GPU (one worker): {hours(local_wall(plan, cost, 1))}")
    print(f"8 GPUs (--devices cuda:0,...,cuda:7): {hours(local_wall(plan, cost, 8))}")
    print(f"4 nodes x 8 GPUs (Slurm, stage by stage): {hours(slurm_wall(plan, cost, 32))}")
    for kind in kinds:
        ids = [u["id"] for u in plan["units"] if u["kind"] == kind]
        print(f"  {kind}: {len(ids)} units, {min(cost[i] for i in ids) / 60:.1f}-{max(cost[i] for i in ids) / 60:.1f} min each")


if __name__ == "__main__":
    main()
