"""Multiply-accumulates of one call of a SAFE graph at batch 1: every MatMul, MatMulInteger, Gemm
and Conv, with shapes from ONNX's shape inference with data propagation (attention's
activation-by-activation products included). tools/bench/model.sh divides them by the measured
time to print GMAC/s.

usage: python macs.py GRAPH.onnx [BATCH]   -> prints the count (an integer)
"""

import math
import sys

import onnx

path = sys.argv[1]
batch = int(sys.argv[2]) if len(sys.argv) > 2 else 1
model = onnx.load(path)
for value in model.graph.input:
    for dim in value.type.tensor_type.shape.dim:
        if dim.dim_param:
            dim.dim_value = batch
inferred = onnx.shape_inference.infer_shapes(model, data_prop=True)
shapes = {}
for v in list(inferred.graph.value_info) + list(inferred.graph.input) + list(inferred.graph.output):
    shapes[v.name] = [d.dim_value for d in v.type.tensor_type.shape.dim]
for t in inferred.graph.initializer:
    shapes[t.name] = list(t.dims)

macs = 0
for node in inferred.graph.node:
    if node.op_type in ("MatMul", "MatMulInteger", "Gemm"):
        a, out = shapes[node.input[0]], shapes[node.output[0]]
        if not a or not out or 0 in a + out:
            sys.exit(f"{path}: no static shape for {node.op_type} {node.name} at batch {batch}")
        k = a[-1]
        if node.op_type == "Gemm" and any(x.name == "transA" and x.i for x in node.attribute):
            k = a[0]
        macs += math.prod(out) * k
    elif node.op_type in ("Conv", "ConvInteger"):
        w, out = shapes[node.input[1]], shapes[node.output[0]]
        if not out or 0 in out:
            sys.exit(f"{path}: no static shape for {node.op_type} {node.name} at batch {batch}")
        macs += math.prod(out) * math.prod(w[1:])
print(macs)
