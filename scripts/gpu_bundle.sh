#!/usr/bin/env bash
# Packs everything the GPU benchmark needs into one git-ignored folder that a
# machine with Python + torch but no Rust can run (benches/README.md, GPU):
#
#   bash scripts/gpu_bundle.sh            # -> gpu-bundle/ (or $MELXAI_BUNDLE_DIR)
#   bash gpu-bundle/benches/gpu.sh        # there; results under $OUT
#
# Contents: bin/{melxai,explain,train}.xz (release builds, stripped, xz; the
# benchmark unpacks them), weights/efficientnet-lite{0,1}-imagenet.safetensors
# (Lite0 as shipped; Lite1, needed only by the shipped --batch, stored as fp16
# and expanded back to fp32 on arrival: both in fp32 and the data set do not
# fit in the 64 MiB a device call carries; $MELXAI_BUNDLE_FP16 lists the
# models to halve, default "lite1"), the MED-NODE
# images, the shipped config.toml, the benchmark and peer scripts, RUN.txt
# (the exact command) and MANIFEST.txt (what was built against what).
#
# The binaries need the libtorch they were built against (torch-sys's
# version, see MANIFEST.txt) on the machine that runs them; see
# benches/README.md for a GPU machine with another torch.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"
dest=${MELXAI_BUNDLE_DIR:-gpu-bundle}
limit_mib=${MELXAI_BUNDLE_LIMIT_MIB:-64}
py=${MELXAI_PYTHON:-.venv/bin/python}
[ -x "$py" ] || py=python3
"$py" -c 'import numpy, torch' 2>/dev/null || {
    echo "gpu_bundle.sh: $py lacks numpy/torch (needed to store the weights as fp16); set MELXAI_PYTHON" >&2
    exit 1
}

echo "building melxai and the benches (release)..."
cargo build --release
# The bench executables' paths, from cargo's own report.
mapfile -t exes < <(cargo bench --no-run --bench explain --bench train --message-format=json 2>/dev/null |
    "$py" -c 'import json, sys
for line in sys.stdin:
    try:
        m = json.loads(line)
    except ValueError:
        continue
    if m.get("reason") == "compiler-artifact" and m.get("executable") and m["target"]["name"] in ("explain", "train"):
        print(m["target"]["name"] + "=" + m["executable"])')
[ "${#exes[@]}" = 2 ] || {
    echo "gpu_bundle.sh: cargo bench --no-run did not report the explain and train executables" >&2
    exit 1
}

rm -rf "$dest"
mkdir -p "$dest/bin" "$dest/weights" "$dest/benches" "$dest/complete_mednode_dataset"
pack() { # name path
    strip -o "$dest/bin/$1" "$2"
    xz -T0 -9 "$dest/bin/$1"
}
pack melxai target/release/melxai
for e in "${exes[@]}"; do pack "${e%%=*}" "${e#*=}"; done

fp16=" ${MELXAI_BUNDLE_FP16-lite1} "
for w in lite0 lite1; do
    src=weights/efficientnet-$w-imagenet.safetensors
    [ -e "$src" ] || { echo "gpu_bundle.sh: $src missing (make setup)" >&2; exit 1; }
    if [[ "$fp16" != *" $w "* ]]; then
        cp -L "$src" "$dest/weights/"
        continue
    fi
    "$py" - "$src" "$dest/weights/$(basename "$src")" <<'PY'
import sys
import numpy as np
sys.path.insert(0, "benches")
import torch_lite0
t = torch_lite0.read_safetensors(sys.argv[1])
torch_lite0.write_safetensors(sys.argv[2], {k: v.astype(np.float16) if v.dtype == np.float32 else v for k, v in t.items()})
PY
done
for cls in melanoma naevus; do
    [ -d "complete_mednode_dataset/$cls" ] || { echo "gpu_bundle.sh: complete_mednode_dataset/$cls missing (make setup)" >&2; exit 1; }
    cp -rL "complete_mednode_dataset/$cls" "$dest/complete_mednode_dataset/"
done
cp config.toml "$dest/"
cp benches/gpu.sh benches/gpu_bench.py benches/explain_peer.py benches/train_peer.py \
    benches/batch_peer.py benches/torch_lite0.py benches/torch_attr.py "$dest/benches/"

torch_version=$("$py" -c 'import torch; print(torch.__version__)')
cat >"$dest/MANIFEST.txt" <<MAN
built: $(date -u +%Y-%m-%dT%H:%M:%SZ) from $(git rev-parse --short HEAD)$(git diff --quiet || echo ' (uncommitted changes)')
tch / torch-sys: $(grep -E '^(tch|torch-sys) = ' Cargo.toml | tr '\n' ' ')
libtorch the binaries need: $torch_version (LIBTORCH=${LIBTORCH:-unset})
weights stored as fp16 (expanded to fp32 on arrival): ${MELXAI_BUNDLE_FP16-lite1}; the others as shipped
MAN
cat >"$dest/RUN.txt" <<'RUN'
# On the GPU machine, from the folder that holds gpu-bundle/ (results under $OUT):
bash gpu-bundle/benches/gpu.sh
# By hand, the binaries find libtorch through the local torch wheel:
#   TL=$(python3 -c 'import os, torch; print(os.path.dirname(torch.__file__))')
#   export LD_LIBRARY_PATH=$TL/lib:$(ls -d "$TL"/../nvidia/*/lib | tr '\n' ':')$LD_LIBRARY_PATH
# (gpu.sh does exactly this for every step it runs.)
RUN

bundle=$(du -sb "$dest" | cut -f1)
tracked=$(git ls-files -z | xargs -0 du -cb 2>/dev/null | tail -1 | cut -f1)
total=$((bundle + tracked))
echo "$dest: $((bundle / 1048576)) MiB; with the tracked files that travel too: $((total / 1048576)) MiB of $limit_mib"
if [ "$total" -gt $((limit_mib * 1048576)) ]; then
    echo "gpu_bundle.sh: over the ${limit_mib} MiB a device call carries; MELXAI_BUNDLE_FP16=\"lite0 lite1\" saves 9 MiB" >&2
    exit 1
fi
