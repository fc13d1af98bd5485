"""The timing table of tools/bench/model.sh: ROUNDS rounds, each timing every graph back to back
(`safed bench --json`), so that a ratio compares two graphs timed in the same minute of a VM
whose speed drifts. Each row gives the median over rounds of the per-round medians, the GMAC/s
that makes and its share of the CPU's VNNI peak; int8 rows give the ratio to the anchor
(ONNX Runtime's quantize_dynamic of our fp32 graph) as the median and range of the per-round
ratios.

usage: python model_rounds.py DIR THREADS RUNS ROUNDS FULL_GMAC UPDATE_GMAC PEAK
"""

import json
import statistics
import subprocess
import sys

d, threads, runs, rounds = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
gmac = {"full": float(sys.argv[5]), "update": float(sys.argv[6])}
peak = float(sys.argv[7])

# (key, label, model, mode, anchor key)
rows = [
    ("fp32", "safed, fp32 full graph", "fp32.onnx", "full", None),
    ("ort", "ONNX Runtime quantize_dynamic of our fp32 graph (anchor), full", "ort-int8.onnx", "full", None),
    ("int8", "safed, int8 full graph", "int8.onnx", "full", "ort"),
    ("fp32-u", "safed, fp32 streaming update", "fp32.encoder.onnx", "update", None),
    ("ort-u", "ONNX Runtime quantize_dynamic (anchor), streaming update", "ort-int8.encoder.onnx", "update", None),
    ("int8-u", "safed, int8 streaming update", "int8.encoder.onnx", "update", "ort-u"),
]


def bench(model, mode):
    args = ["./target/release/safed", "bench", "--json", "--threads", threads, "--runs", runs, "--model", f"{d}/{model}"]
    if mode == "update":
        args.append("--streaming")
    return json.loads(subprocess.run(args, check=True, capture_output=True, text=True).stdout)["median_ms"]


times = {key: [] for key, *_ in rows}
for _ in range(rounds):
    for key, _, model, mode, _ in rows:
        times[key].append(bench(model, mode))

print(f"| ViT-B/16 SAFE, 114 classes, batch 1, {threads} threads, {rounds} rounds | median | GMAC/s | of VNNI peak | anchor / this (range) |")
print("|---|---|---|---|---|")
for key, label, _, mode, anchor in rows:
    ms = statistics.median(times[key])
    rate = gmac[mode] / (ms / 1000)
    share = f"{100 * rate / peak:.0f}%" if peak > 0 else "-"
    ratio = ""
    if anchor:
        r = [a / b for a, b in zip(times[anchor], times[key])]
        ratio = f"{statistics.median(r):.2f}× ({min(r):.2f}–{max(r):.2f})"
    per_round = ", ".join(f"{t / 1000:.3f}" for t in times[key])
    print(f"| {label} | {ms / 1000:.3f} s ({per_round}) | {rate:.0f} | {share} | {ratio} |")
