"""The timing table of tools/bench/model.sh: ROUNDS rounds, each timing every graph back to back
(`safed bench --json`), so that a ratio compares two graphs timed in the same minute of a VM
whose speed drifts. Each row gives the median over rounds of the per-round medians, the GMAC/s
that makes and its share of the CPU's VNNI peak; int8 rows give the ratio to the anchor
(ONNX Runtime's quantize_dynamic of our fp32 graph) as the median and range of the per-round
ratios.

OpenVINO rows (openvino_bench.py) join when OV_PYTHON names a Python with the openvino wheel:
our fp32 graph at OpenVINO's f32 and at its default precision (bf16 where the CPU has AVX-512
BF16 or AMX), and OpenVINO on our int8 graph; then safed's own OpenVINO backend
(`--backend openvino`) at f32 and bf16; then our int8-static (QDQ) graph on OpenVINO itself,
on safed's OpenVINO backend and on ONNX Runtime.

usage: python model_rounds.py DIR THREADS RUNS ROUNDS FULL_GMAC UPDATE_GMAC PEAK
"""

import json
import os
import statistics
import subprocess
import sys

d, threads, runs, rounds = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
gmac = {"full": float(sys.argv[5]), "update": float(sys.argv[6])}
peak = float(sys.argv[7])

# (key, label, model, mode, anchor key, OpenVINO precision or None for safed)
rows = [
    ("fp32", "safed, fp32 full graph", "fp32.onnx", "full", None, None),
    ("ort", "ONNX Runtime quantize_dynamic of our fp32 graph (anchor), full", "ort-int8.onnx", "full", None, None),
    ("int8", "safed, int8 full graph", "int8.onnx", "full", "ort", None),
    ("fp32-u", "safed, fp32 streaming update", "fp32.encoder.onnx", "update", None, None),
    ("ort-u", "ONNX Runtime quantize_dynamic (anchor), streaming update", "ort-int8.encoder.onnx", "update", None, None),
    ("int8-u", "safed, int8 streaming update", "int8.encoder.onnx", "update", "ort-u", None),
]
ov_python = os.environ.get("OV_PYTHON")
if ov_python:
    rows += [
        ("ov-f32", "OpenVINO, our fp32 graph at f32, full", "fp32.onnx", "full", "ort", "f32"),
        ("ov-def", "OpenVINO, our fp32 graph at its default precision, full", "fp32.onnx", "full", "ort", "default"),
        ("ov-f32-u", "OpenVINO, our fp32 graph at f32, streaming update", "fp32.encoder.onnx", "update", "ort-u", "f32"),
        ("ov-def-u", "OpenVINO, our fp32 graph at its default precision, streaming update", "fp32.encoder.onnx", "update", "ort-u", "default"),
        ("ov-int8-u", "OpenVINO, our int8 graph, streaming update", "int8.encoder.onnx", "update", "ort-u", "default"),
        ("safed-ov-u", "safed --backend openvino, f32, streaming update", "fp32.encoder.onnx", "update", "ort-u", "safed:f32"),
        ("safed-ov-bf16-u", "safed --backend openvino, bf16, streaming update", "fp32.encoder.onnx", "update", "ort-u", "safed:bf16"),
        # int8-static (QDQ, calibrated): the int8 OpenVINO is built for, on both runtimes.
        ("ov-int8s", "OpenVINO, our int8-static graph, full", "int8s.onnx", "full", "ort", "default"),
        ("safed-ov-int8s", "safed --backend openvino, int8-static full graph", "int8s.onnx", "full", "ort", "safed:f32"),
        ("safed-ov-int8s-bf16", "safed --backend openvino at bf16, int8-static full graph", "int8s.onnx", "full", "ort", "safed:bf16"),
        ("ort-int8s", "safed (ONNX Runtime), int8-static full graph", "int8s.onnx", "full", "ort", None),
        ("ov-int8s-u", "OpenVINO, our int8-static graph, streaming update", "int8s.encoder.onnx", "update", "ort-u", "default"),
        ("safed-ov-int8s-u", "safed --backend openvino, int8-static streaming update", "int8s.encoder.onnx", "update", "ort-u", "safed:f32"),
        ("safed-ov-int8s-bf16-u", "safed --backend openvino at bf16, int8-static streaming update", "int8s.encoder.onnx", "update", "ort-u", "safed:bf16"),
        ("ort-int8s-u", "safed (ONNX Runtime), int8-static streaming update", "int8s.encoder.onnx", "update", "ort-u", None),
    ]


def bench(model, mode, precision):
    if precision is not None and not precision.startswith("safed:"):
        args = [ov_python, "tools/bench/openvino_bench.py", f"{d}/{model}", mode, threads, runs, precision]
        return json.loads(subprocess.run(args, check=True, capture_output=True, text=True).stdout)["median_ms"]
    args = ["./target/release/safed", "bench", "--json", "--threads", threads, "--runs", runs, "--model", f"{d}/{model}"]
    if mode == "update":
        args.append("--streaming")
    if precision is not None:
        args += ["--backend", "openvino", "--openvino-precision", precision.removeprefix("safed:")]
    return json.loads(subprocess.run(args, check=True, capture_output=True, text=True).stdout)["median_ms"]


times = {key: [] for key, *_ in rows}
for _ in range(rounds):
    for key, _, model, mode, _, precision in rows:
        times[key].append(bench(model, mode, precision))

print(f"| ViT-B/16 SAFE, 114 classes, batch 1, {threads} threads, {rounds} rounds | median | GMAC/s | of the int8 (VNNI) peak | anchor / this (range) |")
print("|---|---|---|---|---|")
for key, label, _, mode, anchor, _ in rows:
    ms = statistics.median(times[key])
    rate = gmac[mode] / (ms / 1000)
    share = f"{100 * rate / peak:.0f}%" if peak > 0 else "-"
    ratio = ""
    if anchor:
        r = [a / b for a, b in zip(times[anchor], times[key])]
        ratio = f"{statistics.median(r):.2f}× ({min(r):.2f}–{max(r):.2f})"
    per_round = ", ".join(f"{t / 1000:.3f}" for t in times[key])
    print(f"| {label} | {ms / 1000:.3f} s ({per_round}) | {rate:.0f} | {share} | {ratio} |")

# The targets: safed's best row (either backend) against OpenVINO's own best and against
# the anchor, per round (each ratio compares graphs timed in the same minute).
if ov_python:
    print()
    print("| per call | safed's best | OpenVINO's own best | ONNX Runtime quantize_dynamic | OpenVINO's / safed's (range) | anchor / safed's (range) |")
    print("|---|---|---|---|---|---|")
    labels = {key: label for key, label, *_ in rows}
    for mode, anchor in (("full", "ort"), ("update", "ort-u")):
        ours = [k for k, _, _, m, _, p in rows if m == mode and (p is None or p.startswith("safed:")) and k != anchor]
        theirs = [k for k, _, _, m, _, p in rows if m == mode and p is not None and not p.startswith("safed:")]
        best = lambda keys: min(keys, key=lambda k: statistics.median(times[k]))
        a, b = best(ours), best(theirs)
        cells = []
        for other in (b, anchor):
            r = [x / y for x, y in zip(times[other], times[a])]
            cells.append(f"{statistics.median(r):.2f}× ({min(r):.2f}–{max(r):.2f})")
        ms = lambda k: f"{statistics.median(times[k]) / 1000:.3f} s"
        print(f"| {mode} | {ms(a)}: {labels[a]} | {ms(b)}: {labels[b]} | {ms(anchor)} | {cells[0]} | {cells[1]} |")
