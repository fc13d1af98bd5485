#!/usr/bin/env bash
# Rebuilds the bundled demo: a synthetic 6-class set, the tiny preset trained on it, the
# exported graphs in onnx/demo*.onnx, and one held-out test recording as onnx/demo-sample.aedat4.
# Deterministic for a given seed on a given machine (takes ~6 min on 2 cores).
set -euo pipefail
cd "$(dirname "$0")/../.."
# The binaries find this checkout's runtime libraries wherever CARGO_TARGET_DIR puts them.
export SAFED_CHECKOUT="$PWD"
SEED="${SEED:-1}"
WORK="${WORK:-$(mktemp -d)}"
cargo build --release -p safe-train
BIN=target/release/safe-train
"$BIN" synth "$WORK/data" --classes 6 --samples-per-class 60 --seed "$SEED"
"$BIN" fit --data "$WORK/data" --preset tiny --out "$WORK/run"
"$BIN" eval "$WORK/run/last" --data "$WORK/data" --split test
"$BIN" export "$WORK/run/last" -o onnx/demo.onnx
cp "$WORK/data/test/triangle/triangle_0059/triangle_0059.aedat4" onnx/demo-sample.aedat4
echo "demo rebuilt from $WORK (metrics: $WORK/run/metrics.jsonl)"
