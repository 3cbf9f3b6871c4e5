"""Integrated Gradients, GradCAM and DeepLIFT (Rescale) in plain PyTorch.

The explain peer uses Captum and pytorch-grad-cam where they are installed;
this module is its fallback where only torch and numpy exist (a bare GPU
server), written to do the same work:

- `integrated_gradients`: Captum's rules (`gausslegendre`, `riemann_*`: the
  same alphas and step sizes), the scaled inputs cut into chunks of
  `internal_batch`, one forward+backward per chunk, and the convergence delta
  as Captum computes it (sum of attributions minus the output difference,
  from one extra forward pass of input and baseline).
- `GradCam`: hooks on one layer (forward output + its gradient), channel
  weights = mean gradient over space, ReLU of the weighted sum, bilinear
  resize to the input and min-max to [0,1]; the map is returned on the host,
  as pytorch-grad-cam returns a numpy array.
- `deeplift_rescale`: input and baseline in one batch, every ReLU6 module of
  the model swapped for the Rescale rule (multiplier (f(x)-f(x0))/(x-x0),
  the gradient where x ≈ x0) while the call runs. On a network whose only
  non-linearities are ReLU6 modules (the vendored Lite) this is exact
  DeepLIFT (completeness delta ~0), like melxai's and unlike Captum's, which
  leaves ReLU6 out of its list.
"""

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

RESCALE_EPS = 1e-6


def rule(method, n):
    """(alphas, step sizes) of Captum's approximation methods."""
    if method == "gausslegendre":
        x, w = np.polynomial.legendre.leggauss(n)
        return list(0.5 * (1 + x)), list(0.5 * w)
    if method == "riemann_trapezoid":
        if n < 2:
            raise ValueError("riemann_trapezoid needs at least 2 steps")
        step = [1 / (2 * (n - 1))] + [1 / (n - 1)] * (n - 2) + [1 / (2 * (n - 1))]
        return list(np.linspace(0, 1, n)), step
    alphas = {
        "riemann_left": np.linspace(0, 1 - 1 / n, n),
        "riemann_right": np.linspace(1 / n, 1, n),
        "riemann_middle": np.linspace(1 / (2 * n), 1 - 1 / (2 * n), n),
    }.get(method)
    if alphas is None:
        raise ValueError(f"unknown integration method {method!r}")
    return list(alphas), [1 / n] * n


def integrated_gradients(model, x, baseline, target, steps, internal_batch, method="gausslegendre"):
    """(attributions (1,C,H,W), convergence delta) for one input `x` (1,C,H,W)."""
    alphas, sizes = rule(method, steps)
    diff = x - baseline
    total = torch.zeros_like(x)
    for i in range(0, steps, internal_batch):
        a = torch.tensor(alphas[i : i + internal_batch], dtype=x.dtype, device=x.device).view(-1, 1, 1, 1)
        w = torch.tensor(sizes[i : i + internal_batch], dtype=x.dtype, device=x.device).view(-1, 1, 1, 1)
        scaled = (baseline + a * diff).requires_grad_(True)
        out = model(scaled)[:, target].sum()
        (g,) = torch.autograd.grad(out, scaled)
        total += (g * w).sum(0, keepdim=True)
    attr = diff * total
    with torch.no_grad():
        ends = model(torch.cat([x, baseline]))[:, target]
    delta = attr.sum() - (ends[0] - ends[1])
    return attr, float(delta)


class GradCam:
    """GradCAM on `layer` of `model`, hooks registered once (as pytorch-grad-cam's
    object does), maps returned as numpy (N,H,W) in [0,1]."""

    def __init__(self, model, layer):
        self.model, self.acts = model, None
        self.handle = layer.register_forward_hook(self._keep)

    def _keep(self, _module, _inputs, output):
        self.acts = output
        output.retain_grad()

    def __call__(self, x, target):
        x = x.detach().requires_grad_(True)
        out = self.model(x)
        self.model.zero_grad(set_to_none=True)
        out[:, target].sum().backward()
        acts, grads = self.acts, self.acts.grad
        weights = grads.mean(dim=(2, 3), keepdim=True)
        cam = F.relu((weights * acts).sum(1, keepdim=True))
        cam = F.interpolate(cam, size=x.shape[-2:], mode="bilinear", align_corners=False)[:, 0]
        lo = cam.amin(dim=(1, 2), keepdim=True)
        hi = cam.amax(dim=(1, 2), keepdim=True)
        cam = (cam - lo) / (hi - lo + 1e-7)
        return cam.detach().cpu().numpy()

    def close(self):
        self.handle.remove()


class _RescaleRelu6(nn.Module):
    """ReLU6 under DeepLIFT's Rescale rule; the batch is [inputs; baselines]."""

    def forward(self, z):
        n = z.shape[0] // 2
        zx, zb = z[:n], z[n:]
        fx, fb = F.relu6(zx), F.relu6(zb)
        dz = zx - zb
        with torch.no_grad():
            small = dz.abs() < RESCALE_EPS
            deriv = ((zx > 0) & (zx < 6)).to(z.dtype)
            m = torch.where(small, deriv, (fx - fb) / torch.where(small, torch.ones_like(dz), dz))
        linear = fb + dz * m
        return torch.cat([linear + (fx - linear).detach(), fb])


def _swap_relu6(module, replacement):
    """Replaces every nn.ReLU6 child (recursively); returns the undo list."""
    undo = []
    for name, child in module.named_children():
        if isinstance(child, nn.ReLU6):
            setattr(module, name, replacement)
            undo.append((module, name, child))
        else:
            undo.extend(_swap_relu6(child, replacement))
    return undo


def deeplift_rescale(model, x, baseline, target):
    """(attributions (1,C,H,W), completeness delta); `model` must use nn.ReLU6 modules
    for all its non-linearities (the vendored Lite does)."""
    undo = _swap_relu6(model, _RescaleRelu6())
    try:
        xs = x.detach().requires_grad_(True)
        out = model(torch.cat([xs, baseline]))
        (g,) = torch.autograd.grad(out[0, target], xs)
    finally:
        for parent, name, child in undo:
            setattr(parent, name, child)
    attr = (x - baseline) * g
    delta = attr.sum() - (out[0, target] - out[1, target]).detach()
    return attr, float(delta)
