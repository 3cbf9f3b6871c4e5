#!/usr/bin/env bash
# The GPU benchmark of issue 12 in one command: melxai against its PyTorch
# peer on this machine's CUDA GPU, results in one file.
#
#   bash benches/gpu.sh            # on a CUDA machine (a checkout after
#                                  # `make build` + `cargo bench --no-run`, or a
#                                  # folder made by scripts/gpu_bundle.sh)
#   bash benches/gpu.sh --cpu      # the same flow on the CPU, tiny sizes
#   MELXAI_BENCH_DEVICE=cpu bash benches/gpu.sh   # same as --cpu
#
# Results: $MELXAI_BENCH_OUT, else $OUT, else <root>/target/gpu-bench:
# results.txt (table + JSON), results.json, logs.txt. Without a usable GPU it
# says so and exits 0. The peers' interpreter is $MELXAI_PEER_PYTHON, else the
# first of python3 / <root>/.venv/bin/python that imports torch and numpy.
# The whole run is capped at $MELXAI_BENCH_TOTAL_S seconds (default 540);
# every step inside has its own limit. Other arguments go to
# benches/gpu_bench.py (--with-batch-peer, --bin-dir DIR, --python PATH).
set -u
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(dirname "$here")
args=()
cpu=0
[ "${MELXAI_BENCH_DEVICE:-cuda}" = cpu ] && cpu=1
for a in "$@"; do
    case "$a" in
        --cpu | --dry-run) cpu=1 ;;
        *) args+=("$a") ;;
    esac
done
[ "$cpu" = 1 ] && args+=(--cpu)

py=${MELXAI_PEER_PYTHON:-}
if [ -z "$py" ]; then
    for c in python3 "$root/.venv/bin/python" python; do
        if command -v "$c" >/dev/null 2>&1 && timeout 120 "$c" -c 'import torch, numpy' >/dev/null 2>&1; then
            py=$c
            break
        fi
    done
fi
if [ -z "$py" ]; then
    echo "benches/gpu.sh: no Python with torch and numpy found (set MELXAI_PEER_PYTHON)" >&2
    exit 1
fi

out=${MELXAI_BENCH_OUT:-${OUT:-$root/target/gpu-bench}}
total=${MELXAI_BENCH_TOTAL_S:-540}
mkdir -p "$out"
# The orchestrator budgets its steps inside $total; the outer limit is a backstop.
timeout --kill-after=10 $((total + 30)) "$py" "$here/gpu_bench.py" \
    --out "$out" --root "$root" --python "$(command -v "$py")" --total-s "$total" ${args[@]+"${args[@]}"}
rc=$?
[ "$rc" = 124 ] && echo "benches/gpu.sh: stopped after $((total + 30)) s; partial logs in $out/logs.txt" >&2
exit "$rc"
