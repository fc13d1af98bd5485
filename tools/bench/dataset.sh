#!/usr/bin/env bash
# Dataset replay at scale (docs/replay.md, "Replaying datasets"): the synthetic test split of the demo's
# data (`safe-train synth --seed 1`, 72 samples) through `safed replay --dataset` with the
# bundled demo model, N = 1, 2, 4, 8 streams (batch N), at --speed max: samples/s and end-to-end
# p50/p99, beside what the model alone sustains on the same clips and batch (`safed
# bench-dataset`, same run); then recorded speed (latency), and, with MEM=1, a 10,000-sample
# dataset (per-sample recordings: the test split's recordings linked over and over) replayed
# whole at max with resident memory sampled every 2 s. R=3 runs per row (median and range).
# "model + reading, serial" adds bench-dataset's one-thread reading and preprocessing time:
# the work the pipeline does beyond the model calls, when no core is spare to overlap it.
# THREADS=1 leaves the other cores to reading (the pipeline's capture and accumulate threads).
set -euo pipefail
cd "$(dirname "$0")/../.."
# The binaries find this checkout's runtime libraries wherever CARGO_TARGET_DIR puts them.
export SAFED_CHECKOUT="$PWD"
cargo build --release -q --workspace
T="${CARGO_TARGET_DIR:-target}/release"
DIR=$(mktemp -d)
trap 'rm -rf "$DIR"' EXIT
SEED="${SEED:-1}"  # the synthetic set's seed (docs/replay.md's table: 1; its check: 2)
"$T/safe-train" synth "$DIR/synth" --classes 6 --samples-per-class 60 --seed "$SEED" 2> /dev/null
echo "CPU: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), $(nproc) cores"
THREADS="${THREADS:-0}"  # ONNX Runtime intra-op threads, both sides (0: one per core)
R="${R:-3}"  # runs per row: the table gives the median and the range
echo "runs per row: $R (median, [min-max]); intra-op threads: $THREADS; synth seed: $SEED"
: > "$DIR/rows"
for run in $(seq "$R"); do
    for speed in max 1; do
        for n in 1 2 4 8; do
            [ "$speed" = 1 ] && [ "$n" = 2 -o "$n" = 8 ] && continue
            "$T/safed" bench-dataset --dataset "$DIR/synth" --batch "$n" --threads "$THREADS" > "$DIR/alone.json"
            "$T/safed" replay --dataset "$DIR/synth" --speed "$speed" --streams "$n" --batch "$n" \
                --threads "$THREADS" --report "$DIR/r.json" 2> /dev/null
            python3 - "$speed" "$n" "$DIR/alone.json" "$DIR/r.json" >> "$DIR/rows" <<'PY'
import json, sys
a, r = json.load(open(sys.argv[3])), json.load(open(sys.argv[4]))
print(json.dumps({"speed": sys.argv[1], "n": int(sys.argv[2]), "alone": a["samples_per_s"],
    "serial": a["samples"] / (a["read_s"] + a["encode_s"] + a["fuse_s"]),
    "piped": r["throughput"]["samples_per_s"], "p50": r["end_to_end"]["p50"],
    "p99": r["end_to_end"]["p99"], "top1": r["clip_top1"]}))
PY
        done
    done
done
python3 - "$DIR/rows" <<'PY'
import json, sys, statistics
rows = [json.loads(l) for l in open(sys.argv[1])]
def cell(vals, fmt):
    m = statistics.median(vals)
    return f"{m:{fmt}} [{min(vals):{fmt}}-{max(vals):{fmt}}]"
print("| speed | N | model alone (samples/s) | model + reading, serial | pipeline (samples/s) "
      "| pipeline / model alone | end-to-end p50 ms | p99 ms | clip top-1 |")
print("|---|---|---|---|---|---|---|---|---|")
for key in dict.fromkeys((r["speed"], r["n"]) for r in rows):
    g = [r for r in rows if (r["speed"], r["n"]) == key]
    col = lambda k: [r[k] for r in g]
    ratio = [r["piped"] / r["alone"] for r in g]
    print(f"| {key[0]} | {key[1]} | {cell(col('alone'), '.1f')} | {cell(col('serial'), '.1f')} "
          f"| {cell(col('piped'), '.1f')} | {cell(ratio, '.2f')} | {cell(col('p50'), '.1f')} "
          f"| {cell(col('p99'), '.1f')} | {statistics.median(col('top1')):.4f} |")
PY
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
