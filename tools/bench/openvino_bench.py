"""OpenVINO, the peer an Intel-CPU user would pick, timing one of our graphs the way `safed bench`
does (2 warm-up runs, then RUNS timed; a streaming update is the encoder on 2 images plus the
fusion graph beside it) and printing the same JSON fields, so tools/bench/model_rounds.py treats
both alike. PRECISION is OpenVINO's INFERENCE_PRECISION_HINT: f32, bf16, or "default" (OpenVINO
picks: bf16 on CPUs with AVX-512 BF16 or AMX).

usage: python openvino_bench.py GRAPH.onnx full|update THREADS RUNS [PRECISION]
"""

import json
import statistics
import sys
import time

import numpy as np
import openvino as ov

path, mode, threads, runs = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
precision = sys.argv[5] if len(sys.argv) > 5 else "default"
core = ov.Core()
config = {"INFERENCE_NUM_THREADS": threads, "PERFORMANCE_HINT": "LATENCY"}
if precision != "default":
    config["INFERENCE_PRECISION_HINT"] = precision
rng = np.random.default_rng(0)


def compiled(graph, batch):
    """The graph compiled for a fixed batch, and random inputs of its shapes."""
    model = core.read_model(graph)
    shapes = {i.any_name: [batch if d.is_dynamic else d.get_length() for d in i.get_partial_shape()] for i in model.inputs}
    model.reshape(shapes)
    request = core.compile_model(model, "CPU", config).create_infer_request()
    feeds = {name: rng.uniform(-1, 1, shape).astype(np.float32) for name, shape in shapes.items()}
    return request, feeds


if mode == "full":
    request, feeds = compiled(path, 1)

    def once():
        request.infer(feeds)
else:
    encoder, images = compiled(path, 2)
    fusion, tokens = compiled(path.replace(".encoder.onnx", ".fusion.onnx"), 1)

    def once():
        encoder.infer(images)
        fusion.infer(tokens)

for _ in range(2):
    once()
times = []
for _ in range(runs):
    start = time.perf_counter()
    once()
    times.append((time.perf_counter() - start) * 1e3)
times.sort()
print(json.dumps({"model": path, "runtime": f"openvino {ov.__version__}", "precision": precision,
                  "mode": mode, "median_ms": statistics.median(times), "min_ms": times[0]}))
