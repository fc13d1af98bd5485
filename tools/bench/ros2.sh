#!/usr/bin/env bash
# End-to-end latency over ROS 2: EventPackets published at a camera's pace (1 ms of sensor time a
# packet, a 4 Mev/s recording) by a Cyclone DDS peer, recognised by `safed run` (release build),
# Classifications received by a second peer; latency = reception - the stamp of the newest
# packet the recognition used (its publication time). Beside it, in the same run, the same
# recording replayed from its file (`safed replay --speed 1`: its end-to-end latency).
#   usage: tools/bench/ros2.sh [BENCH_DIR]   (default: target/bench-data; ROUNDS=2)
set -euo pipefail
cd "$(dirname "$0")/../.."
export SAFED_CHECKOUT="$PWD"
bash tools/setup.sh
dir="${1:-target/bench-data}"
rounds="${ROUNDS:-2}"
.venv/bin/python tools/bench/make_files.py "$dir" >/dev/null
cargo build --release --quiet
bin="$(cd "${CARGO_TARGET_DIR:-target}" && pwd)/release/safed"
file="$dir/faery_evt3.raw"
export CYCLONEDDS_URI="file://$PWD/tests/peers/cyclonedds-loopback.xml"
peer=(.venv/bin/python tests/peers/ros2_peer.py)
work=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$work"' EXIT
echo "CPU: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | xargs), $(nproc) cores"
for round in $(seq "$rounds"); do
    domain=$((150 + round))
    cat > "$work/safed.toml" <<TOML
[source]
events = "ros2:/bench/events"
name = "cam0"
[ros2]
domain_id = $domain
[output]
jsonl = "$work/lines.jsonl"
[output.ros2]
topic = "/safed/{stream}/classification"
TOML
    "$bin" run --config "$work/safed.toml" 2> "$work/safed.log" &
    daemon=$!
    "${peer[@]}" listen --topic /safed/cam0/classification --domain "$domain" --count 100000 --timeout 40 > "$work/received.jsonl" &
    listener=$!
    sleep 2
    "${peer[@]}" publish-evt3 "$file" --topic /bench/events --domain "$domain" --delay 3 --width 346 --height 260
    sleep 2
    kill "$listener" "$daemon" 2>/dev/null || true
    wait "$daemon" 2>/dev/null || true
    "$bin" replay "$file" --speed 1 --report "$work/replay.json" > /dev/null 2> /dev/null
    python3 - "$work/received.jsonl" "$work/replay.json" "$round" <<'PY'
import json, sys
lat = sorted(json.loads(l)["latency_ms"] for l in open(sys.argv[1]) if l.startswith("{"))
rep = json.load(open(sys.argv[2]))
def pct(v, p):
    return v[min(len(v) - 1, int(p / 100 * len(v)))] if v else float("nan")
e2e = rep["latency_ms"]["end_to_end"]
print(f"round {sys.argv[3]}: ROS 2 packets -> Classification: {len(lat)} recognitions, p50 {pct(lat, 50):.1f} ms, p99 {pct(lat, 99):.1f} ms;"
      f" the file replayed ({rep['recognitions']} recognitions): p50 {e2e['p50']:.1f} ms, p99 {e2e['p99']:.1f} ms")
PY
done
