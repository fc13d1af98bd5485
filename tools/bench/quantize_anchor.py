"""The int8 anchor of tools/bench/model.sh: ONNX Runtime's own dynamic quantizer
(onnxruntime.quantization.quantize_dynamic, default settings: per-tensor int8 weights, every
MatMul it finds, activation-by-activation ones included) applied to one of our fp32 graphs, its
metadata kept so that safed loads the result like any graph safe-train writes.

usage: python quantize_anchor.py IN.onnx OUT.onnx
"""

import sys

import onnx
from onnxruntime.quantization import QuantType, quantize_dynamic

src, dst = sys.argv[1], sys.argv[2]
quantize_dynamic(src, dst, weight_type=QuantType.QInt8)
model = onnx.load(dst)
# quantize_dynamic keeps the graph's metadata_props; say what the weights are now.
props = {p.key: p for p in model.metadata_props}
if "safe.weights" in props:
    props["safe.weights"].value = "int8-ort-quantize-dynamic"
onnx.save(model, dst)
print(f"wrote {dst}")
