#!/usr/bin/env bash
# The decode benchmark: writes 10 M-event files with the vendors' writers (once, into
# BENCH_DIR), then times whole-file decoding by safed and by the peers (dv-processing's reader,
# faery's decoder, h5py) in the same run, and prints the table in docs/formats.md.
#   usage: tools/bench/decode.sh [BENCH_DIR]   (default: target/bench-data)
# REPEAT (default 7) decodes per timing, ROUNDS (default 3) passes over all files: the table
# gives each side's best over the rounds and the range of the per-round ratios (the spread).
set -euo pipefail
cd "$(dirname "$0")/../.."
# The binaries find this checkout's runtime libraries wherever CARGO_TARGET_DIR puts them.
export SAFED_CHECKOUT="$PWD"
bash tools/setup.sh
dir="${1:-target/bench-data}"
repeat="${REPEAT:-7}"
rounds="${ROUNDS:-3}"
.venv/bin/python tools/bench/make_files.py "$dir"
cargo build --release --quiet
# The one ZSTD run that fell under 1.5x began as this build ended, and every safed row in it was
# slow: wait (up to 3 minutes) for the 1-minute load average to fall under 0.3 per core.
cores=$(nproc)
for _ in $(seq 36); do
    awk -v c="$cores" '{exit !($1 < 0.3 * c)}' /proc/loadavg && break
    sleep 5
done
files=("$dir"/dv_none.aedat4 "$dir"/dv_lz4.aedat4 "$dir"/dv_zstd.aedat4 "$dir"/dv_zstd_blob.aedat4 "$dir"/faery_evt2.raw "$dir"/faery_evt3.raw "$dir"/faery_dat2.dat "$dir"/dsec_blosc.h5)
ours=$(mktemp) peers=$(mktemp)
trap 'rm -f "$ours" "$peers"' EXIT
# File by file, safed then its peers: a shared VM's speed drifts by a third over minutes, so
# a ratio only holds when both sides are timed in the same minute; rounds show how much a slow
# minute moves it.
for round in $(seq "$rounds"); do
    for f in "${files[@]}"; do
        ./target/release/safed bench-decode --json --repeat "$repeat" "$f" >>"$ours"
        .venv/bin/python tools/bench/peers.py --repeat "$repeat" "$f" >>"$peers"
    done
done
.venv/bin/python tools/bench/table.py "$ours" "$peers"
