#!/usr/bin/env bash
# A fleet on one machine (docs/fleet.md, "Load"): P=8 safed processes, S=3 streams each (the
# bundled recording looped at --speed max, the demo model, one intra-op thread each),
# publishing at QoS 1 to one local mosquitto for D=300 s, and one subscriber taking
# everything. Prints messages/s received, loss (lines written by the processes that never
# arrived, by (topic, seq)), drops counted by the processes' queues, resident memory per
# process over time (first / last / max sample, every 10 s) and the broker's CPU.
set -euo pipefail
cd "$(dirname "$0")/../.."
# The binaries find this checkout's runtime libraries wherever CARGO_TARGET_DIR puts them.
export SAFED_CHECKOUT="$PWD"
cargo build --release -q -p safed
T="${CARGO_TARGET_DIR:-target}/release"
P="${P:-8}" S="${S:-3}" D="${D:-300}" QUEUE="${QUEUE:-10000}"
DIR=$(mktemp -d)
PIDS=()
cleanup() { kill "${PIDS[@]}" 2> /dev/null || true; rm -rf "$DIR"; }
trap cleanup EXIT
PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
printf 'listener %s 127.0.0.1\nallow_anonymous true\npersistence false\nmax_queued_messages 0\n' "$PORT" > "$DIR/m.conf"
mosquitto -c "$DIR/m.conf" 2> "$DIR/mosquitto.log" & BROKER=$!
PIDS+=("$BROKER")
sleep 0.5
mosquitto_sub -h 127.0.0.1 -p "$PORT" -q 1 -t 'bench/#' -v > "$DIR/received" & PIDS+=($!)
sleep 0.5
echo "CPU: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), $(nproc) cores"
echo "$P processes x $S streams, bundled recording at max speed, QoS 1, queue $QUEUE, $D s"
SAFEDS=()
for p in $(seq "$P"); do
    {
        printf '[source]\nevents = "bundled"\nloop = true\nspeed = "max"\nname = "s1"\n'
        for s in $(seq 2 "$S"); do printf '[[streams]]\nname = "s%s"\nevents = "bundled"\n' "$s"; done
        printf '[model]\nthreads = 1\n[output]\njsonl = "%s"\n' "$DIR/p$p.jsonl"
        printf '[output.mqtt]\nurl = "mqtt://127.0.0.1:%s"\nclient_id = "bench-p%s"\n' "$PORT" "$p"
        printf 'topic = "bench/p%s/{stream}"\nstatus_topic = "status/p%s"\nhealth_interval_s = 0\nqueue = %s\n' "$p" "$p" "$QUEUE"
        printf '[metrics]\nlisten = "127.0.0.1:0"\n'
    } > "$DIR/p$p.toml"
    SAFED_LOG=info "$T/safed" run --config "$DIR/p$p.toml" 2> "$DIR/p$p.log" & SAFEDS+=($!)
done
PIDS+=("${SAFEDS[@]}")
ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
b0=$(ticks "$BROKER"); t0=$(date +%s.%N)
for _ in $(seq $((D / 10))); do
    sleep 10
    line=""
    for pid in "${SAFEDS[@]}"; do line="$line $(awk '/VmRSS/ {print $2}' "/proc/$pid/status")"; done
    echo "$line" >> "$DIR/rss"
done
b1=$(ticks "$BROKER"); t1=$(date +%s.%N)
dropped=0
for p in $(seq "$P"); do
    at=$(grep -o 'metrics on http://[^ ]*' "$DIR/p$p.log" | head -1 | cut -d' ' -f3)
    n=$(curl -s "$at" | awk '/^safed_mqtt_dropped_total/ {print $2}')
    dropped=$((dropped + ${n%.*}))
done
echo "dropped by the processes' full queues: $dropped"
kill -TERM "${SAFEDS[@]}"
wait "${SAFEDS[@]}" || true
sleep 2
python3 - "$DIR" "$P" "$t0" "$t1" "$b0" "$b1" "$(getconf CLK_TCK)" <<'PY'
import json, sys, os
d, P = sys.argv[1], int(sys.argv[2])
t0, t1, b0, b1, hz = map(float, sys.argv[3:8])
secs = t1 - t0
written = set()
for p in range(1, P + 1):
    for line in open(os.path.join(d, f"p{p}.jsonl")):
        v = json.loads(line)
        written.add((f"bench/p{p}/{v['stream']}", v["seq"]))
received, total = set(), 0
for line in open(os.path.join(d, "received")):
    topic, _, payload = line.partition(" ")
    total += 1
    received.add((topic, json.loads(payload)["seq"]))
lost = written - received
rss = [list(map(int, l.split())) for l in open(os.path.join(d, "rss"))]
per = list(zip(*rss))
print(f"lines written: {len(written)} ({len(written) / secs:.0f}/s over {secs:.0f} s)")
print(f"received: {total} messages ({total / secs:.0f}/s), {len(received)} distinct, duplicates {total - len(received)}")
print(f"lost at QoS 1: {len(lost)}")
marks = sorted({0, min(5, len(rss) - 1), len(rss) // 2, len(rss) - 1})
print("resident memory per process, MB, at " + ", ".join(f"{10 * (m + 1)} s" for m in marks) + " (max):")
for i, s in enumerate(per):
    print(f"  p{i + 1}: " + " / ".join(f"{s[m] / 1024:.1f}" for m in marks) + f" ({max(s) / 1024:.1f})")
print(f"broker CPU: {100 * (b1 - b0) / hz / secs:.1f}% of one core")
PY
for p in $(seq "$P"); do
    { grep -h "WARN\|ERROR" "$DIR/p$p.log" || true; } | sed "s/^/p$p: /" | tail -3
done
