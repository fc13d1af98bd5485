#!/usr/bin/env bash
# Several streams through one model, with and without batching: STREAMS copies of the bundled
# recording (default 4), each looped at SPEED x its recorded rate (default 20: more than a CPU
# takes), for SECONDS each run (default 20). Runs model.batch = 1 and model.batch = STREAMS in
# the same session and prints, per run, pairs encoded per second (all streams), recognitions per
# second, mean pairs per encoder call and mean end-to-end latency, then the batched / unbatched
# throughput ratio.
set -euo pipefail
cd "$(dirname "$0")/../.."
# The binaries find this checkout's runtime libraries wherever CARGO_TARGET_DIR puts them.
export SAFED_CHECKOUT="$PWD"
STREAMS="${1:-4}"
SECONDS_TO_RUN="${2:-20}"
SPEED="${SPEED:-20.0}"
cargo build --release -q
BIN=target/release/safed
DIR=$(mktemp -d)
trap 'rm -rf "$DIR"' EXIT
run() { # batch -> "pairs/s recognitions/s mean_batch mean_e2e_ms"
    local batch=$1 port
    port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
    {
        printf '[source]\nevents = "bundled"\nloop = true\nspeed = %s\nname = "s0"\n' "$SPEED"
        for ((i = 1; i < STREAMS; i++)); do printf '[[streams]]\nname = "s%d"\nevents = "bundled"\n' "$i"; done
        printf '[queue]\ncapacity = 64\n[model]\nbatch = %s\n' "$batch"
        printf '[output]\njsonl = "%s/lines%s.jsonl"\n[metrics]\nlisten = "127.0.0.1:%s"\n' "$DIR" "$batch" "$port"
    } > "$DIR/b$batch.toml"
    "$BIN" run --config "$DIR/b$batch.toml" 2> "$DIR/log$batch" & local pid=$!
    sleep 3 # warm-up, not counted
    local m0 m1
    m0=$(curl -s "http://127.0.0.1:$port/metrics")
    sleep "$SECONDS_TO_RUN"
    m1=$(curl -s "http://127.0.0.1:$port/metrics")
    kill -TERM $pid; wait $pid
    python3 - "$SECONDS_TO_RUN" "$m0" "$m1" <<'PY'
import sys
secs = float(sys.argv[1])
def parse(text):
    out = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            k, v = line.rsplit(" ", 1)
            out[k] = float(v)
    return out
a, b = parse(sys.argv[2]), parse(sys.argv[3])
d = lambda k: b.get(k, 0.0) - a.get(k, 0.0)
rec = sum(d(k) for k in b if k.startswith("safed_recognitions_total"))
pairs, calls = d("safed_batch_pairs_sum"), d("safed_batch_pairs_count")
e2e = d('safed_stage_seconds_sum{stage="end_to_end"}') / max(d('safed_stage_seconds_count{stage="end_to_end"}'), 1)
print(f"{pairs / secs:.1f} {rec / secs:.1f} {pairs / max(calls, 1):.2f} {e2e * 1e3:.1f}")
PY
}
echo "streams=$STREAMS speed=${SPEED}x seconds=$SECONDS_TO_RUN (after 3 s warm-up)"
printf '%-8s %10s %14s %11s %12s\n' batch "pairs/s" "recognitions/s" "pairs/call" "e2e mean ms"
one=$(run 1); many=$(run "$STREAMS")
printf '%-8s %10s %14s %11s %12s\n' 1 $one
printf '%-8s %10s %14s %11s %12s\n' "$STREAMS" $many
python3 -c "import sys; a, b = float(sys.argv[1]), float(sys.argv[2]); print(f'batched / unbatched pairs/s: {b / a:.2f}x')" "${one%% *}" "${many%% *}"
