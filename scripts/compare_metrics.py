"""Compares two runs' metrics.json: every numeric leaf present in both (timings left out),
printing how many were compared, those that differ beyond TOL, and the keys only one run has.

Usage: python3 scripts/compare_metrics.py reports/A/metrics.json reports/B/metrics.json [TOL]
"""
import json, sys
a = json.load(open(sys.argv[1])); b = json.load(open(sys.argv[2]))
tol = float(sys.argv[3]) if len(sys.argv) > 3 else 1e-9
skip = ("seconds", "images_per_second", "wall", "duration", "elapsed", "started", "finished", "time")
diffs, only_a, only_b, n = [], [], [], 0
def walk(x, y, path):
    global n
    if isinstance(x, dict) and isinstance(y, dict):
        for k in x:
            if k in y: walk(x[k], y[k], path + "." + k)
            else: only_a.append(path + "." + k)
        for k in y:
            if k not in x: only_b.append(path + "." + k)
    elif isinstance(x, list) and isinstance(y, list):
        if len(x) != len(y): diffs.append((path, f"len {len(x)} vs {len(y)}")); return
        for i, (u, v) in enumerate(zip(x, y)): walk(u, v, f"{path}[{i}]")
    elif isinstance(x, (int, float)) and isinstance(y, (int, float)) and not isinstance(x, bool):
        if any(s in path.lower() for s in skip): return
        n += 1
        if abs(x - y) > tol: diffs.append((path, x - y))
    elif x != y and not any(s in path.lower() for s in skip):
        diffs.append((path, f"{str(x)[:60]} vs {str(y)[:60]}"))
walk(a, b, "")
print(f"{n} numeric values compared; {len(diffs)} differ beyond {tol}")
for d in diffs[:40]: print("  DIFF", d)
print(f"only in first: {len(only_a)}"); [print("  ", k) for k in only_a[:20]]
print(f"only in second: {len(only_b)}"); [print("  ", k) for k in only_b[:30]]
