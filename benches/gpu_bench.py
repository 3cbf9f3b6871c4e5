#!/usr/bin/env python3
"""The GPU benchmark of issue 12: melxai and its PyTorch peer side by side, in
one run, on whatever CUDA machine this runs on. Started by `benches/gpu.sh`
(which sets the time limit and finds the interpreter); needs Python 3 with
torch and numpy only. Captum, pytorch-grad-cam and efficientnet-lite-pytorch
are used when importable; otherwise the peers run their plain-torch
equivalents and say so.

Steps, each a fresh process under its own time limit (the whole run stays
inside `--total-s`):

1. `melxai --version` and `melxai doctor`: can the prebuilt binary load the
   libtorch found here (it was built against 2.13.0; see benches/README.md)?
   If not, the melxai rows are skipped with the loader's message and the
   peer still runs on its own (seeded inputs).
2. `explain` bench (MELXAI_BENCH_COLD=1): the first explanation of a fresh
   process (IG-200, internal batch 16), then warm medians of IG-50/200 at
   internal batch 16 and 32, DeepLIFT, GradCAM, forward+backward of 16;
   its peer `explain_peer.py --cold` in its own fresh process.
3. `train` bench at batch 16 (cold: the trainer's first epoch in a fresh
   process) and at batch 64; peer `train_peer.py`.
4. The shipped `melxai --batch` (config.toml as shipped; data, weights and
   reports redirected), wall time; `batch_peer.py` only with
   `--with-batch-peer` and its packages importable (it has no GPU support).
5. Peak GPU memory: `nvidia-smi --query-compute-apps` sampled every 100 ms
   in the background (per process id where the ids match, else the total of
   all processes during the step), and `torch.cuda.max_memory_allocated` of
   the peers.

Results: `<out>/results.txt` (the table, then the whole JSON) and
`<out>/results.json`; every step's output in `<out>/logs.txt`.
`--cpu` runs the same flow on the CPU with tiny sizes, to check the mechanics
on a machine without a GPU.
"""

import argparse
import glob
import json
import lzma
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

# Knobs of each bench: (GPU run, CPU dry run).
EXPLAIN_ENV = (
    dict(MELXAI_BENCH_COLD="1", MELXAI_BENCH_COLD_STEPS="200", MELXAI_BENCH_REPS="5",
         MELXAI_BENCH_IG_STEPS="50,200", MELXAI_BENCH_IG_BATCHES="16,32", MELXAI_BENCH_BATCH="16"),
    dict(MELXAI_BENCH_COLD="1", MELXAI_BENCH_COLD_STEPS="4", MELXAI_BENCH_REPS="1",
         MELXAI_BENCH_IG_STEPS="4", MELXAI_BENCH_IG_BATCHES="4", MELXAI_BENCH_BATCH="2"),
)
TRAIN_ENV = (
    dict(MELXAI_BENCH_TRAIN_PER_CLASS="56", MELXAI_BENCH_EPOCHS="5"),
    dict(MELXAI_BENCH_TRAIN_PER_CLASS="4", MELXAI_BENCH_EPOCHS="1"),
)
TRAIN_BATCHES = ((16, 64), (4, 8))
# Seconds each step may take at most (GPU run); the dry run on a slow CPU gets more.
STEP_LIMIT_S = {"version": 30, "doctor": 60, "explain": 240, "train": 200, "batch": 300, "batch_peer": 300,
                "precision": 90, "cold_diag": 120}
# Mixed precision of training (issue 12): one `melxai train` per precision on
# the shipped split, test AUROC and wall time side by side.
PRECISIONS = ("fp32", "bf16", "fp16")
DRY_LIMIT_FACTOR = 3
BATCH_TARGET_S = 45.0
COLD_TARGET_RATIO = 1.5
SAMPLE_INTERVAL_S = 0.1


class Log:
    """Every step's output, one file."""

    def __init__(self, path):
        self.f = open(path, "w")

    def step(self, name, cmd, env_delta, out, err, rc, secs):
        self.f.write(f"===== {name}: rc {rc}, {secs:.1f} s\n$ {' '.join(cmd)}\n")
        if env_delta:
            self.f.write("env: " + " ".join(f"{k}={v}" for k, v in sorted(env_delta.items())) + "\n")
        self.f.write("--- stdout\n" + (out or "") + "\n--- stderr\n" + (err or "") + "\n")
        self.f.flush()

    def note(self, text):
        self.f.write(text + "\n")
        self.f.flush()


class GpuSampler(threading.Thread):
    """Samples `nvidia-smi --query-compute-apps` every 100 ms: (time, pid, MiB)."""

    def __init__(self):
        super().__init__(daemon=True)
        self.samples, self.stop, self.error = [], threading.Event(), None

    def run(self):
        cmd = ["nvidia-smi", "--query-compute-apps=pid,used_memory", "--format=csv,noheader,nounits"]
        while not self.stop.is_set():
            t = time.time()
            try:
                out = subprocess.run(cmd, capture_output=True, text=True, timeout=5).stdout
            except (OSError, subprocess.TimeoutExpired) as e:
                self.error = str(e)
                return
            for line in out.splitlines():
                parts = [p.strip() for p in line.split(",")]
                if len(parts) == 2 and parts[0].isdigit():
                    try:
                        self.samples.append((t, int(parts[0]), float(parts[1])))
                    except ValueError:
                        pass
            self.stop.wait(max(0.0, SAMPLE_INTERVAL_S - (time.time() - t)))

    def peak(self, t0, t1, pid=None):
        """Peak MiB of `pid` in [t0, t1], or of all processes together when pid is None."""
        window = [s for s in self.samples if t0 <= s[0] <= t1]
        if pid is not None:
            vals = [s[2] for s in window if s[1] == pid]
            return max(vals) if vals else None
        by_time = {}
        for t, _, mib in window:
            by_time[t] = by_time.get(t, 0.0) + mib
        return max(by_time.values()) if by_time else None


class Runner:
    def __init__(self, args, log, sampler, env):
        self.args, self.log, self.sampler, self.env = args, log, sampler, env
        self.deadline = time.time() + args.total_s
        self.steps = []

    def limit(self, key):
        base = STEP_LIMIT_S[key] * (DRY_LIMIT_FACTOR if self.args.cpu else 1)
        return max(1.0, min(base, self.deadline - time.time() - 5))

    def run(self, name, key, cmd, env_delta=None, cwd=None):
        """Runs one step; returns its record (stdout in `out`)."""
        env = dict(self.env, **(env_delta or {}))
        limit = self.limit(key)
        rec = {"step": name, "limit_s": round(limit, 1)}
        if limit <= 1.0:
            rec.update(rc=None, skipped="no time left in --total-s")
            self.steps.append(rec)
            return rec
        t0 = time.time()
        try:
            p = subprocess.Popen(cmd, env=env, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                 text=True, start_new_session=True)
        except OSError as e:
            rec.update(rc=None, error=f"cannot start {cmd[0]}: {e}")
            self.log.note(f"===== {name}: {rec['error']}")
            self.steps.append(rec)
            return rec
        rec["pid"] = p.pid
        # stderr lines carry their time since the start ("+12.345s"), so the
        # log shows where a step's time went.
        chunks = {"out": [], "err": []}

        def pump(stream, key, stamp):
            for line in stream:
                chunks[key].append(f"+{time.time() - t0:8.3f}s {line}" if stamp else line)

        pumps = [threading.Thread(target=pump, args=(p.stdout, "out", False), daemon=True),
                 threading.Thread(target=pump, args=(p.stderr, "err", True), daemon=True)]
        for th in pumps:
            th.start()
        try:
            p.wait(timeout=limit)
            rc = p.returncode
        except subprocess.TimeoutExpired:
            os.killpg(p.pid, 9)
            p.wait()
            rc = "timeout"
        for th in pumps:
            th.join(timeout=10)
        out, err = "".join(chunks["out"]), "".join(chunks["err"])
        t1 = time.time()
        rec.update(rc=rc, seconds=round(t1 - t0, 3), t0=t0, t1=t1, out=out)
        if rc != 0:
            rec["stderr_tail"] = " | ".join((err or "").strip().splitlines()[-4:])
        self.log.step(name, cmd, env_delta, out, err, rc, t1 - t0)
        self.steps.append(rec)
        return rec


def last_json(text):
    """The last JSON object in `text`: a one-line object, or a pretty-printed
    one that starts with `{` at the start of a line and runs to the end."""
    lines = (text or "").splitlines()
    for i in range(len(lines) - 1, -1, -1):
        if lines[i].lstrip().startswith("{"):
            for cand in (lines[i].strip(), "\n".join(lines[i:])):
                try:
                    return json.loads(cand)
                except ValueError:
                    pass
    return None


def find_binaries(root, bin_dir, scratch):
    """{name: path} for melxai, explain, train: `bin_dir` (a bundle's `bin/`,
    `.xz` files unpacked to scratch) or a checkout's target/release."""
    found = {}
    if bin_dir and os.path.isdir(bin_dir):
        for name in ("melxai", "explain", "train"):
            p = os.path.join(bin_dir, name)
            if os.path.exists(p):
                found[name] = p
            elif os.path.exists(p + ".xz"):
                dst = os.path.join(scratch, "bin", name)
                os.makedirs(os.path.dirname(dst), exist_ok=True)
                with lzma.open(p + ".xz") as src, open(dst, "wb") as out:
                    shutil.copyfileobj(src, out)
                os.chmod(dst, 0o755)
                found[name] = dst
        return found
    release = os.path.join(root, "target", "release")
    if os.path.exists(os.path.join(release, "melxai")):
        found["melxai"] = os.path.join(release, "melxai")
    for name in ("explain", "train"):
        cands = [p for p in glob.glob(os.path.join(release, "deps", f"{name}-*"))
                 if os.access(p, os.X_OK) and "." not in os.path.basename(p)]
        if cands:
            found[name] = max(cands, key=os.path.getmtime)
    return found


def prepare_root(root, scratch, log):
    """A project folder for the benches: fp32 weights (a bundle carries fp16,
    expanded here), and links to the data set, benches and config."""
    import numpy as np
    import torch_lite0

    work = os.path.join(scratch, "root")
    wdir = os.path.join(work, "weights")
    os.makedirs(wdir, exist_ok=True)
    for src in sorted(glob.glob(os.path.join(root, "weights", "*.safetensors"))):
        dst = os.path.join(wdir, os.path.basename(src))
        tensors = torch_lite0.read_safetensors(src)
        if any(t.dtype == np.float16 for t in tensors.values()):
            torch_lite0.write_safetensors(
                dst, {k: (v.astype(np.float32) if v.dtype == np.float16 else v) for k, v in tensors.items()})
            log.note(f"weights: {src} is fp16 (bundle), expanded to fp32 in {dst}")
        else:
            os.symlink(os.path.abspath(src), dst)
    for name in ("complete_mednode_dataset", "benches", "config.toml"):
        src = os.path.join(root, name)
        if os.path.exists(src):
            os.symlink(os.path.abspath(src), os.path.join(work, name))
    return work


def torch_lib_path(python):
    """torch's lib/ and the nvidia-* wheels' lib/ folders of `python`'s torch."""
    code = ("import os, glob, torch; d = os.path.dirname(torch.__file__); "
            "sp = os.path.dirname(d); "
            "print(':'.join([os.path.join(d, 'lib')] + sorted(glob.glob(os.path.join(sp, 'nvidia', '*', 'lib')))))")
    try:
        return subprocess.run([python, "-c", code], capture_output=True, text=True, timeout=120).stdout.strip()
    except (OSError, subprocess.TimeoutExpired):
        return ""


def gpu_probe(python):
    """(ok, description): does this machine have a GPU torch can use?"""
    try:
        smi = subprocess.run(["nvidia-smi", "--query-gpu=name,memory.total,driver_version", "--format=csv,noheader"],
                             capture_output=True, text=True, timeout=30)
        gpus = smi.stdout.strip()
        if smi.returncode != 0 or not gpus:
            return False, f"nvidia-smi lists no GPU ({(smi.stderr or smi.stdout).strip()[:200]})"
    except (OSError, subprocess.TimeoutExpired) as e:
        return False, f"nvidia-smi not available ({e})"
    code = "import torch; print(torch.__version__, torch.version.cuda, torch.cuda.is_available())"
    try:
        out = subprocess.run([python, "-c", code], capture_output=True, text=True, timeout=120).stdout.split()
    except (OSError, subprocess.TimeoutExpired) as e:
        return False, f"{python} cannot import torch ({e})"
    if len(out) != 3 or out[2] != "True":
        return False, f"GPU(s) {gpus!r} present, but {python}'s torch ({' '.join(out[:2]) or 'not importable'}) cannot use CUDA"
    return True, f"{gpus} (torch {out[0]}, CUDA runtime {out[1]})"


def rewrite_config(text, changes):
    """Replaces `key = value` lines (first occurrence under each [section] given
    as 'section.key'); the shipped comments stay."""
    lines, section = text.splitlines(), ""
    done = set()
    for i, line in enumerate(lines):
        s = line.strip()
        if s.startswith("[") and s.endswith("]"):
            section = s.strip("[]")
            continue
        for full, value in changes.items():
            sec, _, key = full.rpartition(".")
            if full in done or sec != section:
                continue
            if s.startswith(key + " ") or s.startswith(key + "="):
                lines[i] = f"{key} = {value}"
                done.add(full)
    missing = set(changes) - done
    return "\n".join(lines) + "\n", missing


def peer_only_inputs(scratch, dry):
    """Seeded inputs for the peers when melxai cannot run (timings do not
    depend on the pixel values)."""
    import numpy as np

    rng = np.random.default_rng(0)
    x = rng.uniform(-1, 1, (3, 224, 224)).astype(np.float32)
    n = 8 if dry else 112
    imgs = rng.integers(0, 256, (n, 3, 224, 224), dtype=np.uint8)
    labels = np.arange(n, dtype=np.int64) % 2
    paths = {k: os.path.join(scratch, f"peer_{k}.npy") for k in ("input", "images", "labels")}
    np.save(paths["input"], x)
    np.save(paths["images"], imgs)
    np.save(paths["labels"], labels)
    return paths


def fmt(v, unit=""):
    if v is None:
        return "-"
    if isinstance(v, str):
        return v
    if abs(v) >= 100:
        return f"{v:.0f}{unit}"
    if abs(v) >= 10:
        return f"{v:.1f}{unit}"
    return f"{v:.2f}{unit}"


def ratio(a, b):
    return a / b if a is not None and b not in (None, 0) else None


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--cpu", action="store_true", help="dry run on the CPU with tiny sizes")
    ap.add_argument("--out", required=True, help="results folder")
    ap.add_argument("--root", default=os.path.dirname(HERE), help="project or bundle folder")
    ap.add_argument("--bin-dir", help="folder with melxai, explain, train (or .xz); default <root>/bin, "
                    "else target/release of a checkout")
    ap.add_argument("--python", default=sys.executable, help="the peers' interpreter")
    ap.add_argument("--total-s", type=float, default=540, help="time for the whole run")
    ap.add_argument("--with-batch-peer", action="store_true", help="also time batch_peer.py (CPU only)")
    args = ap.parse_args()
    device = "cpu" if args.cpu else "cuda"
    os.makedirs(args.out, exist_ok=True)
    log = Log(os.path.join(args.out, "logs.txt"))
    result = {"device": device, "dry_run": args.cpu, "started": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
              "python": args.python, "notes": []}
    notes = result["notes"]

    def finish(table_lines):
        result["finished"] = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        text = "\n".join(table_lines) + "\n\n" + json.dumps(result, indent=2, default=str) + "\n"
        with open(os.path.join(args.out, "results.txt"), "w") as f:
            f.write(text)
        with open(os.path.join(args.out, "results.json"), "w") as f:
            json.dump(result, f, indent=2, default=str)
        print("\n".join(table_lines))
        print(f"\nresults: {os.path.join(args.out, 'results.txt')} (table + JSON), logs: {os.path.join(args.out, 'logs.txt')}")

    if not args.cpu:
        ok, what = gpu_probe(args.python)
        result["gpu"] = what
        if not ok:
            msg = f"NO GPU: {what}. Nothing was measured. (`bash benches/gpu.sh --cpu` checks the mechanics on the CPU.)"
            result["no_gpu"] = msg
            finish([msg])
            return 0
    else:
        result["gpu"] = "none (dry run on the CPU, tiny sizes: the numbers mean nothing)"

    scratch = tempfile.mkdtemp(prefix="melxai-gpu-bench-")
    root = os.path.abspath(args.root)
    bins = find_binaries(root, args.bin_dir or os.path.join(root, "bin"), scratch)
    result["binaries"] = bins
    work = prepare_root(root, scratch, log)
    env = dict(os.environ)
    env.update(MELXAI_BENCH_ROOT=work, MELXAI_PEER_PYTHON=args.python, MELXAI_BENCH_DEVICE=device,
               PYTHONUNBUFFERED="1")
    libs = torch_lib_path(args.python)
    if libs:
        env["LD_LIBRARY_PATH"] = libs + (":" + env["LD_LIBRARY_PATH"] if env.get("LD_LIBRARY_PATH") else "")
    result["ld_library_path"] = env.get("LD_LIBRARY_PATH", "")

    sampler = None
    if not args.cpu and shutil.which("nvidia-smi"):
        sampler = GpuSampler()
        sampler.start()
    r = Runner(args, log, sampler, env)
    dry = 1 if args.cpu else 0

    # 1. Can melxai run here?
    melxai_ok, why = False, "melxai binary not found (run scripts/gpu_bundle.sh, or cargo build --release)"
    if "melxai" in bins:
        v = r.run("melxai --version", "version", [bins["melxai"], "--version"])
        melxai_ok = v["rc"] == 0
        if melxai_ok:
            result["melxai_version"] = v["out"].strip()
            d = r.run("melxai doctor", "doctor", [bins["melxai"], "--config", os.path.join(work, "config.toml"), "doctor"],
                      cwd=work)
            # Informational: a bundle carries no Lite2 weights, so doctor's "FAIL weights lite2" is expected.
            result["doctor"] = (d.get("out") or "").strip().splitlines()[-25:]
            d["informational"] = True
        else:
            why = f"melxai does not start here: {v.get('stderr_tail') or v.get('error') or v['rc']}"
    result["melxai_runs"] = melxai_ok
    if not melxai_ok:
        notes.append(f"melxai rows skipped: {why}. The bundle's binaries need libtorch 2.13.0 "
                     "(benches/README.md, GPU: the torch version mismatch).")

    def sampled(rec, pid=None):
        if sampler is None or "t0" not in rec:
            return None
        return sampler.peak(rec["t0"], rec["t1"], pid)

    # Which steps run: $MELXAI_BENCH_STEPS, a comma list of explain, train
    # (or train16 / train64), batch, precision; all by default.
    chosen = {x.strip() for x in os.environ.get("MELXAI_BENCH_STEPS", "explain,train,batch,precision").split(",")}
    want = lambda step: step in chosen
    result["steps_chosen"] = sorted(chosen)

    # 2. Explanations.
    explain, peer_explain = None, None
    if not want("explain"):
        pass
    elif melxai_ok and "explain" in bins:
        jpath = os.path.join(scratch, "explain.json")
        rec = r.run("explain bench (melxai + peer)", "explain", [bins["explain"]],
                    dict(EXPLAIN_ENV[dry], MELXAI_BENCH_JSON=jpath))
        if os.path.exists(jpath):
            explain = json.load(open(jpath))
            peer_explain = explain.get("peer")
            explain["gpu_peak_mib"] = {
                "melxai": sampled(rec, explain["rust"].get("pid")),
                "peer": sampled(rec, (peer_explain or {}).get("pid")),
                "all_processes": sampled(rec),
            }
        else:
            notes.append(f"explain bench wrote no result (rc {rec['rc']}: {rec.get('stderr_tail', '')})")
    else:
        inputs = peer_only_inputs(scratch, dry)
        e = EXPLAIN_ENV[dry]
        rec = r.run("explain peer alone", "explain",
                    [args.python, os.path.join(HERE, "explain_peer.py"), "--input", inputs["input"], "--target", "0",
                     "--device", device, "--reps", e["MELXAI_BENCH_REPS"], "--steps", e["MELXAI_BENCH_IG_STEPS"],
                     "--batches", e["MELXAI_BENCH_IG_BATCHES"], "--batch", e["MELXAI_BENCH_BATCH"], "--cold",
                     "--cold-steps", e["MELXAI_BENCH_COLD_STEPS"],
                     "--weights", os.path.join(work, "weights", "efficientnet-lite0-imagenet.safetensors")])
        peer_explain = last_json(rec.get("out"))
        explain = {"peer": peer_explain, "gpu_peak_mib": {"peer": sampled(rec, rec.get("pid"))}}
    result["explain"] = explain

    # 3. Training at two batch sizes; the first run is also the cold one.
    result["train"] = {}
    for i, batch in enumerate(TRAIN_BATCHES[dry]):
        if not (want("train") or want(f"train{batch}")):
            continue
        cold = "1" if i == 0 else "0"
        if melxai_ok and "train" in bins:
            jpath = os.path.join(scratch, f"train_b{batch}.json")
            rec = r.run(f"train bench batch {batch} (melxai + peer)", "train", [bins["train"]],
                        dict(TRAIN_ENV[dry], MELXAI_BENCH_BATCH=str(batch), MELXAI_BENCH_COLD=cold,
                             MELXAI_BENCH_JSON=jpath))
            if os.path.exists(jpath):
                t = json.load(open(jpath))
                t["gpu_peak_mib"] = {"melxai": sampled(rec, t["rust"].get("pid")),
                                     "peer": sampled(rec, (t.get("peer") or {}).get("pid")),
                                     "all_processes": sampled(rec)}
            else:
                t = None
                notes.append(f"train bench batch {batch} wrote no result (rc {rec['rc']}: {rec.get('stderr_tail', '')})")
        else:
            inputs = peer_only_inputs(scratch, dry)
            cmd = [args.python, os.path.join(HERE, "train_peer.py"), "--images", inputs["images"],
                   "--labels", inputs["labels"], "--device", device, "--batch", str(batch),
                   "--epochs", TRAIN_ENV[dry]["MELXAI_BENCH_EPOCHS"],
                   "--weights", os.path.join(work, "weights", "efficientnet-lite0-imagenet.safetensors")]
            rec = r.run(f"train peer alone batch {batch}", "train", cmd + (["--cold"] if cold == "1" else []))
            t = {"peer": last_json(rec.get("out")), "gpu_peak_mib": {"peer": sampled(rec, rec.get("pid"))}}
        result["train"][str(batch)] = t

    # 4. The shipped --batch.
    batch_res = None
    run_dir_ready = False
    if melxai_ok:
        run_dir = os.path.join(scratch, "batch-run")
        os.makedirs(run_dir, exist_ok=True)
        data = os.path.join(work, "complete_mednode_dataset")
        changes = {"data.root": json.dumps(data), "model.weights_dir": json.dumps(os.path.join(work, "weights")),
                   "device": json.dumps(device)}
        if args.cpu:
            # Tiny: 6 images per class, 1 epoch, no folds, 4 IG steps, no screenshots.
            tiny = os.path.join(scratch, "tiny-data")
            for cls in ("melanoma", "naevus"):
                os.makedirs(os.path.join(tiny, cls), exist_ok=True)
                files = sorted(glob.glob(os.path.join(data, cls, "*.jpg")))[:6]
                for f in files:
                    os.symlink(os.path.realpath(f), os.path.join(tiny, cls, os.path.basename(f)))
            changes.update({"data.root": json.dumps(tiny), "train.epochs": "1", "batch.folds": "0",
                            "explain.steps": "4", "batch.screenshots": "false"})
        # Extra `section.key=value` changes, ';'-separated (e.g. a GPU run of
        # the repeated cross-validation: "batch.cv_repeats=4").
        for item in filter(None, os.environ.get("MELXAI_BENCH_CONFIG", "").split(";")):
            key, _, value = item.partition("=")
            changes[key.strip()] = value.strip()
        result["config_changes"] = changes
        shipped = open(os.path.join(root, "config.toml")).read()
        text, missing = rewrite_config(shipped, changes)
        if missing:
            notes.append(f"config.toml: keys not found to redirect: {sorted(missing)}")
        with open(os.path.join(run_dir, "config.toml"), "w") as f:
            f.write(text)
        run_dir_ready = True
    if melxai_ok and want("batch"):
        rec = r.run(f"melxai --batch --device {device} (shipped config)", "batch",
                    [bins["melxai"], "--batch", "--json", "--device", device, "--config", "config.toml"], cwd=run_dir)
        batch_res = {"rc": rec["rc"], "wall_s": rec.get("seconds"), "summary": last_json(rec.get("out")),
                     "gpu_peak_mib": sampled(rec, rec.get("pid")), "gpu_peak_mib_all": sampled(rec),
                     "tiny_config": args.cpu}
        if rec["rc"] != 0:
            batch_res["stderr_tail"] = rec.get("stderr_tail")
        if args.with_batch_peer:
            probe = subprocess.run([args.python, "-c", "import captum, pytorch_grad_cam, sklearn, skimage, scipy, matplotlib"],
                                   capture_output=True, text=True)
            if probe.returncode == 0:
                prec = r.run("batch_peer.py (CPU)", "batch_peer",
                             [args.python, os.path.join(HERE, "batch_peer.py"), "--config", "config.toml", "--out", "peer-out"],
                             cwd=run_dir)
                batch_res["peer"] = {"rc": prec["rc"], "wall_s": prec.get("seconds"), "device": "cpu (batch_peer.py has no GPU path)"}
            else:
                batch_res["peer"] = {"skipped": "packages missing: " + probe.stderr.strip().splitlines()[-1]}
        else:
            batch_res["peer"] = {"skipped": "batch_peer.py runs on the CPU only; --with-batch-peer times it anyway"}
    result["batch"] = batch_res

    # 5. Mixed precision: the shipped split trained once per precision; the
    #    effect on test AUROC and the time it took.
    result["precision"] = {}
    if melxai_ok and run_dir_ready and want("precision"):
        for p in PRECISIONS:
            cmd = [bins["melxai"], "train", "--json", "--device", device, "--config", "config.toml",
                   "--precision", p, "--name", f"precision-{p}"]
            if args.cpu:
                cmd += ["--epochs", "1"]
            rec = r.run(f"melxai train --precision {p}", "precision", cmd, cwd=run_dir)
            head = last_json(rec.get("out")) or {}
            test = head.get("test") or {}
            result["precision"][p] = {"rc": rec["rc"], "wall_s": rec.get("seconds"), "test_auroc": test.get("auroc"),
                                      "test_balanced_accuracy": test.get("balanced_accuracy"),
                                      "best_epoch": head.get("best_epoch"),
                                      "gpu_peak_mib": sampled(rec, rec.get("pid"))}

    # 6. Diagnosis only when the cold start misses its target: the same cold
    #    explanation with cuDNN's v8 API off (the observation).
    ex_r, ex_p = (explain or {}).get("rust") or {}, (explain or {}).get("peer") or {}
    cold_ratio = ratio(ex_r.get("cold_ms"), ex_p.get("cold_ms"))
    if melxai_ok and not args.cpu and cold_ratio is not None and cold_ratio > COLD_TARGET_RATIO:
        jpath = os.path.join(scratch, "explain_v8off.json")
        r.run("explain bench, TORCH_CUDNN_V8_API_DISABLED=1 (diagnosis)", "cold_diag", [bins["explain"]],
              dict(EXPLAIN_ENV[dry], MELXAI_BENCH_REPS="1", MELXAI_BENCH_JSON=jpath, TORCH_CUDNN_V8_API_DISABLED="1"))
        if os.path.exists(jpath):
            d = json.load(open(jpath))
            result["cold_diagnosis_v8_api_disabled"] = {"melxai_cold_ms": (d.get("rust") or {}).get("cold_ms"),
                                                        "peer_cold_ms": (d.get("peer") or {}).get("cold_ms")}

    if sampler is not None:
        sampler.stop.set()
        result["nvidia_smi_samples"] = len(sampler.samples)
        if sampler.error:
            notes.append(f"nvidia-smi sampling stopped: {sampler.error}")
        elif not sampler.samples:
            notes.append("nvidia-smi listed no compute processes: no per-process GPU memory")
    result["steps"] = [{k: v for k, v in s.items() if k not in ("out", "t0", "t1")} for s in r.steps]
    finish(table(result))
    shutil.rmtree(scratch, ignore_errors=True)
    return 0


def table(res):
    """The side-by-side table; ratio = melxai / peer (times: lower is better;
    img/s: higher is better)."""
    ex = res.get("explain") or {}
    rust, peer = ex.get("rust") or {}, ex.get("peer") or {}
    rm, pm = rust.get("median_ms") or {}, peer.get("median_ms") or {}
    rows = []

    def row(name, unit, a, b, target=None, verdict=None):
        rows.append((name, unit, fmt(a), fmt(b), fmt(ratio(a, b), "x"), target or "", verdict or ""))

    def check(ok):
        if ok is None or res.get("dry_run"):
            return "-"
        return "met" if ok else "NOT met"

    cold_steps = rust.get("cold_steps") or 200
    c_ratio = ratio(rust.get("cold_ms"), peer.get("cold_ms"))
    row(f"first explanation, fresh process (IG-{cold_steps}, b16)", "ms", rust.get("cold_ms"), peer.get("cold_ms"),
        f"<= {COLD_TARGET_RATIO}x", check(None if c_ratio is None else c_ratio <= COLD_TARGET_RATIO))
    for key in sorted(k for k in set(rm) | set(pm) if k.startswith("ig")):
        steps, b = key[2:].split("_b")
        label = f"IG-{steps}, internal batch {b}, warm"
        if key == "ig200_b16":
            label = "warm explanation: " + label
        row(label, "ms", rm.get(key), pm.get(key))
    row("DeepLIFT, warm", "ms", rm.get("deeplift"), pm.get("deeplift"))
    row("GradCAM _conv_head, warm", "ms", rm.get("gradcam"), pm.get("gradcam"))
    row(f"forward+backward, batch {ex.get('unit_batch', 16)}", "ms", rm.get("fwd_bwd16"), pm.get("fwd_bwd16"))
    for batch, t in (res.get("train") or {}).items():
        t = t or {}
        tr, tp = t.get("rust") or {}, t.get("peer") or {}
        if tr.get("first_epoch_seconds") is not None or tp.get("first_epoch_seconds") is not None:
            cr = ratio(tr.get("first_epoch_seconds"), tp.get("first_epoch_seconds"))
            row(f"first training epoch, fresh process (batch {batch}, {t.get('train_images', '?')} img)", "s",
                tr.get("first_epoch_seconds"), tp.get("first_epoch_seconds"),
                f"<= {COLD_TARGET_RATIO}x", check(None if cr is None else cr <= COLD_TARGET_RATIO))
        ips = tr.get("trainer_images_per_second")
        pr = tp.get("images_per_second")
        r = ratio(ips, pr)
        row(f"training img/s, batch {batch} (melxai::train::train)", "img/s", ips, pr,
            ">= 1x" if batch == "16" else None, check(None if r is None else r >= 1.0) if batch == "16" else None)
        row(f"training img/s, batch {batch} (bench loop, synced phases)", "img/s", tr.get("loop_images_per_second"), pr)
    b = res.get("batch") or {}
    if b:
        wall = b.get("wall_s") if b.get("rc") == 0 else None
        peer_wall = (b.get("peer") or {}).get("wall_s")
        row("shipped `melxai --batch`, wall" + (" (tiny config)" if b.get("tiny_config") else ""), "s", wall,
            peer_wall, f"<= {BATCH_TARGET_S:.0f} s", check(None if wall is None or b.get("tiny_config") else wall <= BATCH_TARGET_S))
    for p, pr in (res.get("precision") or {}).items():
        row(f"train --precision {p}: test AUROC (shipped split)", "", pr.get("test_auroc"), None)
        row(f"train --precision {p}: wall", "s", pr.get("wall_s") if pr.get("rc") == 0 else None, None)
    diag = res.get("cold_diagnosis_v8_api_disabled")
    if diag:
        row("first explanation with TORCH_CUDNN_V8_API_DISABLED=1 (diagnosis)", "ms", diag.get("melxai_cold_ms"),
            diag.get("peer_cold_ms"))
    gp = ex.get("gpu_peak_mib") or {}
    row("peak GPU memory, explain (nvidia-smi)", "MiB", gp.get("melxai"), gp.get("peer"))
    row("peak GPU memory, explain peer (torch max_allocated)", "MiB", None, peer.get("peak_mem_mb"))
    for batch, t in (res.get("train") or {}).items():
        t = t or {}
        g = t.get("gpu_peak_mib") or {}
        row(f"peak GPU memory, train batch {batch} (nvidia-smi)", "MiB", g.get("melxai"), g.get("peer"))
        row(f"peak GPU memory, train batch {batch} peer (torch max_allocated)", "MiB", None,
            (t.get("peer") or {}).get("peak_mem_mb"))
    if b:
        row("peak GPU memory, `melxai --batch` (nvidia-smi)", "MiB", b.get("gpu_peak_mib"), None)

    head = ("measurement", "unit", "melxai", "peer", "melxai/peer", "target", "verdict")
    widths = [max(len(str(r[i])) for r in rows + [head]) for i in range(len(head))]
    line = lambda r: "  ".join(str(c).ljust(w) if i == 0 else str(c).rjust(w) for i, (c, w) in enumerate(zip(r, widths)))
    impls = sorted({x for x in (peer.get("impl"), *[((t or {}).get("peer") or {}).get("impl")
                                                   for t in (res.get("train") or {}).values()]) if x})
    out = [
        f"melxai GPU benchmark ({'DRY RUN on the CPU, tiny sizes' if res.get('dry_run') else 'CUDA'}), {res.get('started')}",
        f"GPU: {res.get('gpu')}",
        f"melxai: {res.get('melxai_version', 'not run')}; peer: {', '.join(impls) or 'not run'}",
    ]
    diff = (peer.get("notes") or {}).get("logits_max_abs_diff")
    if diff is not None:
        out.append(f"peer model vs melxai, max |logit difference| on the bench input: {diff}")
    out += ["", line(head), line(["-" * w for w in widths])] + [line(r) for r in rows]
    out += ["", "melxai/peer: times (ms, s) lower is better; img/s higher is better. "
            "Peak memory from nvidia-smi is per process where its pids match ours, '-' otherwise "
            "(see all_processes in the JSON)."]
    out += [f"note: {n}" for n in res.get("notes", [])]
    failed = [s for s in res.get("steps", [])
              if (s.get("rc") not in (0, None) or s.get("skipped")) and not s.get("informational")]
    out += [f"step failed: {s['step']}: rc {s.get('rc')} {s.get('stderr_tail', s.get('skipped', ''))}" for s in failed]
    return out


if __name__ == "__main__":
    sys.exit(main())
