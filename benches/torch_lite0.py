"""EfficientNet-Lite in plain PyTorch, read from melxai's safetensors weights.

The peers prefer the reference package (`efficientnet-lite-pytorch`); this
module is their fallback where only torch and numpy exist (a bare GPU server).
It reproduces that package's network: the `efficientnet_pytorch` layer names
(`_conv_stem`, `_blocks.N._depthwise_conv`, `_bn0`, `_conv_head`, `_fc`, ...),
ReLU6, no squeeze-excitation, TF "same" padding, batch-norm eps 1e-3,
drop-connect 0.2 scaled by block index, dropout before `_fc`. The block list
is read off the weights' shapes (a stage starts where a block changes width;
stage strides are the EfficientNet ones), so Lite0-4 all load.

`read_safetensors` / `write_safetensors` need numpy only (no `safetensors`
package): 8-byte little-endian header length, a JSON header, raw data.
"""

import json
import struct

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

_DTYPES = {"F32": np.float32, "F16": np.float16, "F64": np.float64, "I64": np.int64}
_NAMES = {np.dtype(v): k for k, v in _DTYPES.items()}
# Stride of each EfficientNet stage's first block.
STAGE_STRIDES = [1, 2, 2, 2, 1, 2, 1]
BN_EPS = 1e-3
BN_MOMENTUM = 0.1
DROP_CONNECT = 0.2
DROPOUT = 0.2


def read_safetensors(path):
    """{name: np.ndarray} of a .safetensors file."""
    with open(path, "rb") as f:
        (n,) = struct.unpack("<Q", f.read(8))
        header = json.loads(f.read(n))
        data = f.read()
    out = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        dtype = _DTYPES.get(info["dtype"])
        if dtype is None:
            raise ValueError(f"{path}: tensor {name}: dtype {info['dtype']} not supported")
        a, b = info["data_offsets"]
        out[name] = np.frombuffer(data[a:b], dtype=dtype).reshape(info["shape"])
    return out


def write_safetensors(path, tensors):
    """Writes {name: np.ndarray} as .safetensors (names sorted, 8-byte aligned)."""
    header, blobs, offset = {}, [], 0
    for name in sorted(tensors):
        a = np.ascontiguousarray(tensors[name])
        raw = a.tobytes()
        header[name] = {
            "dtype": _NAMES[a.dtype],
            "shape": list(a.shape),
            "data_offsets": [offset, offset + len(raw)],
        }
        blobs.append(raw)
        offset += len(raw)
    text = json.dumps(header, separators=(",", ":")).encode()
    text += b" " * (-len(text) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(text)))
        f.write(text)
        for raw in blobs:
            f.write(raw)


class SameConv(nn.Conv2d):
    """Conv2d with TensorFlow "same" padding (asymmetric for even totals)."""

    def forward(self, x):
        ih, iw = x.shape[-2:]
        k, s = self.kernel_size[0], self.stride[0]

        def pad(i):
            o = (i + s - 1) // s
            return max((o - 1) * s + k - i, 0)

        ph, pw = pad(ih), pad(iw)
        if ph or pw:
            x = F.pad(x, [pw // 2, pw - pw // 2, ph // 2, ph - ph // 2])
        return super().forward(x)


def _bn(c):
    return nn.BatchNorm2d(c, eps=BN_EPS, momentum=BN_MOMENTUM)


def drop_connect(x, p, training):
    """Stochastic depth: zero whole samples' residual branches with probability p."""
    if not training or p <= 0:
        return x
    keep = 1.0 - p
    mask = torch.floor(torch.rand(x.shape[0], 1, 1, 1, dtype=x.dtype, device=x.device) + keep)
    return x / keep * mask


class MBConv(nn.Module):
    def __init__(self, cin, cout, kernel, stride, expand, drop):
        super().__init__()
        mid = cin * expand
        if expand != 1:
            self._expand_conv = SameConv(cin, mid, 1, bias=False)
            self._bn0 = _bn(mid)
        self.has_expand = expand != 1
        self._depthwise_conv = SameConv(mid, mid, kernel, stride=stride, groups=mid, bias=False)
        self._bn1 = _bn(mid)
        self._project_conv = SameConv(mid, cout, 1, bias=False)
        self._bn2 = _bn(cout)
        self.residual = stride == 1 and cin == cout
        self.drop = drop
        self.act = nn.ReLU6()

    def forward(self, inputs):
        x = inputs
        if self.has_expand:
            x = self.act(self._bn0(self._expand_conv(x)))
        x = self.act(self._bn1(self._depthwise_conv(x)))
        x = self._bn2(self._project_conv(x))
        if self.residual:
            x = drop_connect(x, self.drop, self.training) + inputs
        return x


class EfficientNetLite(nn.Module):
    """EfficientNet-Lite with the `efficientnet_pytorch` names; `blocks` is a list of
    (in, out, kernel, stride, expand)."""

    def __init__(self, blocks, num_classes, stem=32, head=1280):
        super().__init__()
        self._conv_stem = SameConv(3, stem, 3, stride=2, bias=False)
        self._bn0 = _bn(stem)
        n = len(blocks)
        self._blocks = nn.ModuleList(
            MBConv(i, o, k, s, e, DROP_CONNECT * idx / n) for idx, (i, o, k, s, e) in enumerate(blocks)
        )
        self._conv_head = SameConv(blocks[-1][1], head, 1, bias=False)
        self._bn1 = _bn(head)
        self._dropout = nn.Dropout(DROPOUT)
        self._fc = nn.Linear(head, num_classes)
        self.act = nn.ReLU6()

    def forward(self, x):
        x = self.act(self._bn0(self._conv_stem(x)))
        for b in self._blocks:
            x = b(x)
        x = self.act(self._bn1(self._conv_head(x)))
        x = F.adaptive_avg_pool2d(x, 1).flatten(1)
        return self._fc(self._dropout(x))


def blocks_from_weights(w):
    """The block list encoded in a checkpoint's shapes."""
    blocks, stage = [], -1
    i = 0
    while f"_blocks.{i}._depthwise_conv.weight" in w:
        dw = w[f"_blocks.{i}._depthwise_conv.weight"]
        mid, kernel = dw.shape[0], dw.shape[-1]
        exp = w.get(f"_blocks.{i}._expand_conv.weight")
        cin = exp.shape[1] if exp is not None else mid
        cout = w[f"_blocks.{i}._project_conv.weight"].shape[0]
        # Every stage changes the width; its repeats keep it (in == out, stride 1).
        starts_stage = i == 0 or cin != cout
        if starts_stage:
            stage += 1
            if stage >= len(STAGE_STRIDES):
                raise ValueError(f"block {i}: more stages than EfficientNet has")
        stride = STAGE_STRIDES[stage] if starts_stage else 1
        blocks.append((cin, cout, kernel, stride, mid // cin))
        i += 1
    if not blocks:
        raise ValueError("no _blocks.N._depthwise_conv.weight in the weights")
    return blocks


def load_lite(path, num_classes=None, device="cpu"):
    """The network of a melxai ImageNet/checkpoint .safetensors file, in eval mode.
    With `num_classes` differing from the file's, `_fc` is a new (random) head."""
    w = read_safetensors(path)
    blocks = blocks_from_weights(w)
    file_classes = w["_fc.weight"].shape[0]
    model = EfficientNetLite(blocks, file_classes, stem=w["_conv_stem.weight"].shape[0],
                             head=w["_conv_head.weight"].shape[0])
    state = {k: torch.from_numpy(np.array(v, dtype=np.float32 if v.dtype != np.int64 else np.int64))
             for k, v in w.items()}
    missing, unexpected = model.load_state_dict(state, strict=False)
    missing = [k for k in missing if not k.endswith("num_batches_tracked")]
    if missing or unexpected:
        raise ValueError(f"{path}: missing keys {missing[:5]}, unexpected keys {unexpected[:5]}")
    if num_classes is not None and num_classes != file_classes:
        model._fc = nn.Linear(model._fc.in_features, num_classes)
    return model.to(device).eval()
