#!/usr/bin/env bash
# Overload soak: the bundled recording looped at SPEED x its recorded rate (default 50, far more
# than inference takes on a CPU) through a small queue, for SECONDS (default 120). Prints resident
# memory every 10 s and, at the end, the Prometheus counters: drops are counted, memory stays
# flat, recognitions keep coming.
set -euo pipefail
cd "$(dirname "$0")/../.."
# The binaries find this checkout's runtime libraries wherever CARGO_TARGET_DIR puts them.
export SAFED_CHECKOUT="$PWD"
SECONDS_TO_RUN="${1:-120}"
SPEED="${SPEED:-50.0}"
cargo build --release -q
BIN=target/release/safed
DIR=$(mktemp -d)
PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
cat > "$DIR/soak.toml" <<TOML
[source]
events = "bundled"
loop = true
speed = $SPEED
[queue]
capacity = 64
[output]
jsonl = "$DIR/lines.jsonl"
[metrics]
listen = "127.0.0.1:$PORT"
TOML
"$BIN" run --config "$DIR/soak.toml" & PID=$!
trap 'kill $PID 2>/dev/null || true' EXIT
for ((t = 10; t <= SECONDS_TO_RUN; t += 10)); do
    sleep 10
    printf 't=%4ss rss=%s kB lines=%s\n' "$t" "$(awk '/VmRSS/ {print $2}' /proc/$PID/status)" "$(wc -l < "$DIR/lines.jsonl")"
done
python3 - "$PORT" <<'PY'
import sys, urllib.request
body = urllib.request.urlopen(f"http://127.0.0.1:{sys.argv[1]}/metrics").read().decode()
for line in body.splitlines():
    if line.startswith(("safed_events_total", "safed_frames_total", "safed_recognitions_total",
                        "safed_ring_dropped_total", "safed_window_dropped_total",
                        'safed_stage_seconds_sum{stage="end_to_end"}', 'safed_stage_seconds_count{stage="end_to_end"}')):
        print(line)
PY
kill -TERM $PID; wait $PID && echo "exit 0 after SIGTERM"
