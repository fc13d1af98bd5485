#!/usr/bin/env bash
# The training benchmark (issue: a recipe that holds on every seed, as fast per step as PyTorch).
#  1. Robustness: `safe-train synth` on SEEDS (default "1 0 2 3 4": the demo's, synth's own
#     default and three others; 6 classes x 60), `fit --preset tiny` on each with the preset's schedule; per seed the last
#     and best test top-1, the first epoch at >= 95%, wall time and peak memory, and the median.
#  2. Step time: `safe-train bench` (a training step split by phase, on seed 1's data) beside
#     the PyTorch twin of the tiny preset (train_torch.py: same model, batch, frames, AdamW,
#     clipping, threads), both in this run. torch comes from PyPI into a venv of this
#     benchmark only (TORCH_VENV, default WORK_DIR/torch-venv; ~5 GB); TORCH=0 leaves it out.
# STEPS (default 30) timed steps per side, ROUNDS (default 3) alternating rounds; THREADS
# (default 2). SKIP_FIT=1 runs only part 2.
#   usage: tools/bench/train.sh [WORK_DIR]   (default: target/bench-train)
set -euo pipefail
cd "$(dirname "$0")/../.."
# The binaries find this checkout's runtime libraries wherever CARGO_TARGET_DIR puts them.
export SAFED_CHECKOUT="$PWD"
dir="${1:-target/bench-train}"
seeds="${SEEDS:-1 0 2 3 4}" steps="${STEPS:-30}" rounds="${ROUNDS:-3}" threads="${THREADS:-2}"
mkdir -p "$dir"
bash tools/setup.sh
# GNU time reports each fit's wall time and peak memory: this benchmark's own package.
[ -x /usr/bin/time ] || { apt-get update -qq && apt-get install -y -qq --no-install-recommends time >/dev/null; }
cargo build --release --quiet -p safe-train
# A copy: a rebuild while the fits run must not change the binary under them.
cp target/release/safe-train "$dir/safe-train"
bin="$dir/safe-train"
export RAYON_NUM_THREADS="$threads"
echo "CPU: $(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -1), $(nproc) cores, $threads threads"

for seed in $seeds; do
    [ -f "$dir/data-$seed/labels.txt" ] || "$bin" synth "$dir/data-$seed" --classes 6 --samples-per-class 60 --seed "$seed" 2>/dev/null
done
if [ "${SKIP_FIT:-0}" != 1 ]; then
    for seed in $seeds; do
        rm -rf "$dir/run-$seed"
        /usr/bin/time -f '%e %M' -o "$dir/time-$seed.txt" \
            "$bin" fit --data "$dir/data-$seed" --preset tiny --out "$dir/run-$seed" 2>"$dir/fit-$seed.log"
    done
    python3 tools/bench/train_report.py "$dir" $seeds
fi

if [ "${TORCH:-1}" != 0 ]; then
    venv="${TORCH_VENV:-$dir/torch-venv}"
    [ -x "$venv/bin/python" ] && "$venv/bin/python" -c 'import torch, PIL' 2>/dev/null ||
        { python3 -m venv "$venv" && "$venv/bin/pip" install -q --disable-pip-version-check torch numpy pillow; }
fi
first="${seeds%% *}"
: >"$dir/steps.jsonl"
for round in $(seq "$rounds"); do
    "$bin" bench --data "$dir/data-$first" --steps "$steps" --json | sed 's/^{/{"impl":"safe-train",/' >>"$dir/steps.jsonl"
    if [ "${TORCH:-1}" != 0 ]; then
        len=$(tail -1 "$dir/steps.jsonl" | python3 -c 'import json,sys; print(json.load(sys.stdin)["text_len"])')
        "$venv/bin/python" tools/bench/train_torch.py "$dir/data-$first" --text-len "$len" --steps "$steps" \
            --threads "$threads" | sed 's/^{/{"impl":"pytorch",/' >>"$dir/steps.jsonl"
    fi
done
python3 tools/bench/train_report.py --steps "$dir/steps.jsonl"
