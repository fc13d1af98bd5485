#!/usr/bin/env bash
# The GPU benchmark, for the day a machine with an NVIDIA GPU runs it (none is lent to the
# development machines: prepared, checked there only up to the driver check). Installs the GPU
# runtime, checks the device with `safed doctor`, imports a full-size ViT-B/16 SAFE checkpoint
# (random weights, 114 classes, as tools/bench/model.sh), then times the fp32 full graph and the
# streaming update (2 encoder passes + fusion) on CUDA, and on TensorRT where its libraries are
# found (engines cached in SAFED_TENSORRT_CACHE: the first run builds them, minutes), with 1, 4
# and 16 samples (streams' pairs) per call, for the fp32 graphs and the fp16 ones
# (`safe-train import --precision fp16`: top class kept on official-tiny, 2e-3 from fp32). One
# JSON line per figure (safed bench's, per sample), the CPU at batch 1 first as the reference
# of the same run.
#   usage: tools/bench/gpu.sh [WORK_DIR]   (default: target/bench-model); RUNS (default 20)
set -euo pipefail
cd "$(dirname "$0")/../.."
# The binaries find this checkout's runtime libraries wherever CARGO_TARGET_DIR puts them.
export SAFED_CHECKOUT="$PWD"
SAFED_GPU=1 bash tools/setup.sh
dir="${1:-target/bench-model}"
runs="${RUNS:-20}"
mkdir -p "$dir"
cargo build --release --quiet -p safed -p safe-train
safed=./target/release/safed
if ! "$safed" doctor --provider cuda >&2; then
    echo "gpu.sh: CUDA cannot start on this machine (the report above says why)" >&2
    exit 1
fi
[ -f "$dir/vitb16.pth" ] || .venv/bin/python tools/train/scripts/make_checkpoint.py "$dir/vitb16.pth" --classes 114
python3 -c 'print("\n".join(f"class {i}" for i in range(114)))' >"$dir/labels.txt"
for p in fp32 fp16; do
    [ -f "$dir/$p.onnx" ] || ./target/release/safe-train import "$dir/vitb16.pth" -o "$dir/$p.onnx" --labels "$dir/labels.txt" --precision "$p"
done
bench() { "$safed" bench --json --runs "$runs" "$@"; }
bench --model "$dir/fp32.onnx" --threads "$(nproc)"
bench --model "$dir/fp32.encoder.onnx" --streaming --threads "$(nproc)"
providers=(cuda)
"$safed" doctor --provider tensorrt >/dev/null 2>&1 && providers+=(tensorrt) ||
    echo "gpu.sh: TensorRT's libraries are not found: its rows are left out (docs/gpu.md)" >&2
for provider in "${providers[@]}"; do
    for p in fp32 fp16; do
        for batch in 1 4 16; do
            bench --model "$dir/$p.onnx" --provider "$provider" --batch "$batch"
            bench --model "$dir/$p.encoder.onnx" --streaming --provider "$provider" --batch "$batch"
        done
    done
done
