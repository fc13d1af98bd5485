#!/usr/bin/env bash
# The SAFE inference benchmark: a full-size ViT-B/16 SAFE checkpoint in the authors' format
# (random weights, 114 classes: PokerEvent's size), imported fp32 and int8, then per-sample
# latency at batch 1 for the full graph and for a streaming update (2 encoder passes + fusion),
# and the fp32 graph at each ONNX Runtime optimisation level. THREADS (default 2) and RUNS
# (default 7) set the runs. Prints the table in docs/models.md.
#   usage: tools/bench/model.sh [WORK_DIR]   (default: target/bench-model)
set -euo pipefail
cd "$(dirname "$0")/../.."
bash tools/setup.sh
dir="${1:-target/bench-model}"
threads="${THREADS:-2}" runs="${RUNS:-7}"
mkdir -p "$dir"
cargo build --release --quiet -p safed -p safe-train
[ -f "$dir/vitb16.pth" ] || .venv/bin/python tools/train/scripts/make_checkpoint.py "$dir/vitb16.pth" --classes 114
python3 -c 'print("\n".join(f"class {i}" for i in range(114)))' > "$dir/labels.txt"
./target/release/safe-train import "$dir/vitb16.pth" -o "$dir/fp32.onnx" --labels "$dir/labels.txt"
./target/release/safe-train import "$dir/vitb16.pth" -o "$dir/int8.onnx" --labels "$dir/labels.txt" --quantize int8
bench() { ./target/release/safed bench --json --threads "$threads" --runs "$runs" "$@"; }
row() { python3 tools/bench/row.py "$1"; }
echo "| ViT-B/16 SAFE, 114 classes, batch 1, $threads threads | median | p90 |"
echo "|---|---|---|"
bench --model "$dir/fp32.onnx" | row "safed, fp32 full graph"
bench --model "$dir/int8.onnx" | row "safed, int8 full graph"
bench --model "$dir/fp32.encoder.onnx" --streaming | row "safed, fp32 streaming update"
bench --model "$dir/int8.encoder.onnx" --streaming | row "safed, int8 streaming update"
for level in 0 1 2; do
    bench --model "$dir/fp32.onnx" --optimization "$level" | row "safed, fp32 full graph, optimisation level $level"
done
