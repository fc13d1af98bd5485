#!/usr/bin/env bash
# How throughput adds up across Slurm tasks (docs/cluster.md): a split of N copies of the
# bundled recording (default 96) with the bundled demo model at --speed max, replayed
#   - by one process, no Slurm (the peer every row is compared with),
#   - as 1 Slurm task with both cores (--cpus 2, --threads 2),
#   - as 2 Slurm tasks with a core each (--cpus 1, --threads 1),
# on the one-node cluster of tools/slurm/local-cluster.sh. For each: the wall time from
# submission to the merged report, the report's samples/s (the sum of the shards' rates) and
# clip top-1 (must equal the single process's). R runs (default 3): median and [range].
set -euo pipefail
cd "$(dirname "$0")/../.."
# The binaries find this checkout's runtime libraries wherever CARGO_TARGET_DIR puts them.
export SAFED_CHECKOUT="$PWD"
cargo build --release -q -p safed
safed="$(pwd)/${CARGO_TARGET_DIR:-target}/release/safed"
[ -x "$safed" ] || safed="${CARGO_TARGET_DIR:-target}/release/safed"
N="${N:-96}"
R="${R:-3}"
work=$(mktemp -d)
export SAFED_SLURM_DIR="$work/slurm"
cleanup() {
    bash tools/slurm/local-cluster.sh down >/dev/null 2>&1 || true
    rm -rf "$work"
}
trap cleanup EXIT
for i in $(seq 0 $((N - 1))); do
    class=$([ $((i % 4)) = 3 ] && echo circle || echo triangle)
    mkdir -p "$work/data/test/$class"
    cp onnx/demo-sample.aedat4 "$work/data/test/$class/s$(printf %03d "$i").aedat4"
done
bash tools/slurm/local-cluster.sh up 2>/dev/null
eval "$(bash tools/slurm/local-cluster.sh env)"
echo "CPU: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), $(nproc) cores; $N samples, $R runs per row"

# row NAME SECONDS REPORT: one line of JSON per run.
row() {
    python3 - "$1" "$2" "$3" <<'PY'
import json, sys
r = json.load(open(sys.argv[3]))
print(json.dumps({"row": sys.argv[1], "wall": float(sys.argv[2]), "rate": r["throughput"]["samples_per_s"],
                  "samples": r["samples"], "top1": r["clip_top1"]}))
PY
}

: >"$work/rows"
for run in $(seq "$R"); do
    t0=$(date +%s.%N)
    "$safed" replay --dataset "$work/data" --speed max --threads 2 --report "$work/one.json" >/dev/null 2>&1
    row "one process, 2 threads" "$(awk -v a="$(date +%s.%N)" -v b="$t0" 'BEGIN { print a - b }')" "$work/one.json" >>"$work/rows"
    for tasks in 1 2; do
        cpus=$((2 / tasks))
        out="$work/out.$run.$tasks"
        t0=$(date +%s.%N)
        ids=$(bash tools/slurm/submit-replay.sh --dataset "$work/data" --tasks "$tasks" --cpus "$cpus" \
            --out "$out" --safed "$safed" -- --speed max --threads "$cpus")
        merge=$(echo "$ids" | sed -E 's/.*merge job ([0-9]+).*/\1/')
        while [ -n "$(squeue -h -j "$merge" 2>/dev/null)" ]; do sleep 0.2; done
        [ -f "$out/report.json" ] || { echo "no report for $tasks tasks: $(cat "$out"/logs/*.log)" >&2; exit 1; }
        row "slurm, $tasks task(s) x $cpus core(s)" "$(awk -v a="$(date +%s.%N)" -v b="$t0" 'BEGIN { print a - b }')" "$out/report.json" >>"$work/rows"
    done
done

python3 - "$work/rows" <<'PY'
import json, statistics, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
names = list(dict.fromkeys(r["row"] for r in rows))
peer = statistics.median(r["rate"] for r in rows if r["row"] == names[0])
fmt = lambda v: f"{statistics.median(v):.1f} [{min(v):.1f}-{max(v):.1f}]"
print("| how | wall s (submission to report) | samples/s (report) | / one process | clip top-1 |")
print("|---|---|---|---|---|")
for n in names:
    rs = [r for r in rows if r["row"] == n]
    ratios = [r["rate"] / peer for r in rs]
    top1 = sorted({round(r["top1"], 4) for r in rs})
    print(f"| {n} | {fmt([r['wall'] for r in rs])} | {fmt([r['rate'] for r in rs])} | "
          f"{statistics.median(ratios):.2f} [{min(ratios):.2f}-{max(ratios):.2f}] | {', '.join(map(str, top1))} |")
PY
