#!/usr/bin/env bash
# Dataset replay at scale (README "Replaying datasets"): the synthetic test split of the demo's
# data (`safe-train synth --seed 1`, 72 samples) through `safed replay --dataset` with the
# bundled demo model, N = 1, 2, 4, 8 streams (batch N), at --speed max: samples/s and end-to-end
# p50/p99, beside what the model alone sustains on the same clips and batch (`safed
# bench-dataset`, same run); then recorded speed (latency), and, with MEM=1, a 10,000-sample
# dataset (per-sample recordings: the test split's recordings linked over and over) replayed
# whole at max with resident memory sampled every 2 s.
set -euo pipefail
cd "$(dirname "$0")/../.."
cargo build --release -q --workspace
T="${CARGO_TARGET_DIR:-target}/release"
DIR=$(mktemp -d)
trap 'rm -rf "$DIR"' EXIT
"$T/safe-train" synth "$DIR/synth" --classes 6 --samples-per-class 60 --seed 1 2> /dev/null
echo "CPU: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), $(nproc) cores"
field() { python3 -c "import json,sys; d=json.load(open(sys.argv[1])); print(eval(sys.argv[2]))" "$@"; }
printf '%-8s %-6s %14s %14s %8s %10s %10s\n' speed N model_only/s pipeline/s ratio e2e_p50 e2e_p99
for speed in max 1; do
    for n in 1 2 4 8; do
        [ "$speed" = 1 ] && [ "$n" = 2 -o "$n" = 8 ] && continue
        alone=$("$T/safed" bench-dataset --dataset "$DIR/synth" --batch "$n" | python3 -c 'import json,sys; print(json.load(sys.stdin)["samples_per_s"])')
        "$T/safed" replay --dataset "$DIR/synth" --speed "$speed" --streams "$n" --batch "$n" --report "$DIR/r.json" 2> /dev/null
        piped=$(field "$DIR/r.json" 'd["throughput"]["samples_per_s"]')
        p50=$(field "$DIR/r.json" 'd["end_to_end"]["p50"]')
        p99=$(field "$DIR/r.json" 'd["end_to_end"]["p99"]')
        acc=$(field "$DIR/r.json" 'd["clip_top1"]')
        printf '%-8s %-6s %14.1f %14.1f %8.3f %10.2f %10.2f  (clip top-1 %s)\n' "$speed" "$n" "$alone" "$piped" \
            "$(python3 -c "print($piped / $alone)")" "$p50" "$p99" "$acc"
    done
done
if [ "${MEM:-0}" = 1 ]; then
    BIG="$DIR/big"
    i=0
    while [ $i -lt 10000 ]; do
        for rec in "$DIR"/synth/test/*/*/*.aedat4; do
            [ $i -ge 10000 ] && break
            class=$(basename "$(dirname "$(dirname "$rec")")")
            mkdir -p "$BIG/test/$class"
            ln -s "$rec" "$BIG/test/$class/$(printf 's%05d' $i).aedat4"
            i=$((i + 1))
        done
    done
    cp "$DIR/synth/labels.txt" "$BIG/"
    start=$(date +%s.%N)
    "$T/safed" replay --dataset "$BIG" --speed max --streams 4 --batch 4 --results "$DIR/big.jsonl" \
        --report "$DIR/big.json" 2> /dev/null & pid=$!
    : > "$DIR/rss"
    while kill -0 $pid 2> /dev/null; do
        ps -o rss= -p $pid >> "$DIR/rss" || true
        sleep 2
    done
    wait $pid
    end=$(date +%s.%N)
    python3 - "$DIR/rss" "$DIR/big.json" "$start" "$end" <<'PY'
import json, sys
rss = [int(l) / 1024 for l in open(sys.argv[1]) if l.strip()]
r = json.load(open(sys.argv[2]))
wall = float(sys.argv[4]) - float(sys.argv[3])
tail = rss[len(rss) // 10:]  # after the first tenth (start-up)
print(f"10,000 samples: {wall:.0f} s wall, {r['throughput']['samples_per_s']:.1f} samples/s, "
      f"clip top-1 {r['clip_top1']:.4f}, failed {r['failed']}")
print(f"resident memory over {len(rss)} samples (every 2 s): {min(rss):.1f}-{max(rss):.1f} MB; "
      f"after the first tenth {min(tail):.1f}-{max(tail):.1f} MB")
PY
fi
