#!/usr/bin/env bash
# Runs every decoder's fuzz target for N seconds (default 10), seeded from tests/data.
# cargo-fuzz needs nightly features: RUSTC_BOOTSTRAP=1 lets the stable toolchain build them.
set -euo pipefail
cd "$(dirname "$0")/.."
seconds="${1:-10}"
command -v cargo-fuzz >/dev/null 2>&1 || cargo install --locked cargo-fuzz@0.13.2
export RUSTC_BOOTSTRAP=1
# Targets that go through files (aedat4_file, hdf5, dataset_text) write one per input: in memory.
[ -w /dev/shm ] && export TMPDIR=/dev/shm
python3 tools/fuzz-seeds.py fuzz/corpus
for target in aedat4 aedat4_file aedat4_stream aedat31 aedat2 evt2 evt3 dat atis_bin text hdf5 npz detect dataset_text udp event_packet; do
    echo "fuzz: $target for ${seconds}s"
    # libhdf5 keeps caches and free lists for the process's life, which LeakSanitizer reports as
    # leaks of the first input: memory growth is still caught by the RSS limit.
    leaks=1
    [ "$target" = hdf5 ] && leaks=0
    ASAN_OPTIONS="detect_leaks=$leaks" cargo fuzz run "$target" "fuzz/corpus/$target" -- -max_total_time="$seconds" -rss_limit_mb=2048 -detect_leaks=$leaks \
        -max_len=262144 -print_final_stats=1 2>&1 | grep -E "^(stat::number_of_executed_units|==|SUMMARY|Done)" || true
    # libhdf5 (Debian's 1.10) can be driven to gigabytes while it walks a corrupted file's
    # metadata, before any of our code runs (docs/formats.md, "HDF5"): an out-of-memory there
    # is its known limit, reported but not a failure; crashes and hangs still fail.
    if [ "$target" = hdf5 ] && ls fuzz/artifacts/hdf5/oom-* >/dev/null 2>&1; then
        echo "fuzz: hdf5: libhdf5 ran out of memory on $(ls fuzz/artifacts/hdf5/oom-* | head -1) (known limit)"
        mkdir -p fuzz/artifacts/hdf5-oom && mv fuzz/artifacts/hdf5/oom-* fuzz/artifacts/hdf5-oom/
    fi
    # A crash leaves an artifact and a non-zero status: fail loudly.
    if ls "fuzz/artifacts/$target"/crash-* "fuzz/artifacts/$target"/oom-* "fuzz/artifacts/$target"/timeout-* >/dev/null 2>&1; then
        echo "fuzz: $target found a failing input in fuzz/artifacts/$target" >&2
        exit 1
    fi
done
