"""Where a SAFE graph's time goes: ONNX Runtime's own profiler (the onnxruntime wheel in .venv,
the same version as safed's library) over RUNS runs at THREADS threads, summed per operator
type after ONNX Runtime's fusions, as a Markdown table row of shares.
   usage: python profile.py LABEL GRAPH.onnx [BATCH] [THREADS] [RUNS]"""

import collections
import json
import os
import sys
import tempfile

import numpy as np
import onnxruntime as ort

label, path = sys.argv[1], sys.argv[2]
batch, threads, runs = (int(a) for a in (sys.argv[3:] + ["1", "2", "5"][len(sys.argv) - 3:])[:3])
options = ort.SessionOptions()
options.intra_op_num_threads = threads
options.enable_profiling = True
options.profile_file_prefix = os.path.join(tempfile.mkdtemp(), "safe")
session = ort.InferenceSession(path, options, providers=["CPUExecutionProvider"])
rng = np.random.default_rng(0)
feeds = {}
for i in session.get_inputs():
    shape = [batch if isinstance(d, str) else d for d in i.shape]
    feeds[i.name] = rng.uniform(-1, 1, shape).astype(np.float32)
for _ in range(runs):
    session.run(None, feeds)
with open(session.end_profiling()) as f:
    events = json.load(f)
per_op = collections.Counter()
for e in events:
    if e.get("cat") == "Node" and e["name"].endswith("_kernel_time"):
        per_op[e["args"]["op_name"]] += e["dur"]
total = sum(per_op.values())
top = per_op.most_common(6)
rest = total - sum(v for _, v in top)
cells = [f"{op} {100 * v / total:.0f}%" for op, v in top] + [f"other {100 * rest / total:.0f}%"]
print(f"| {label} | {total / runs / 1000:.0f} ms | " + ", ".join(cells) + " |")
