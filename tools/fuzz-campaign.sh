#!/usr/bin/env bash
# A fuzz campaign outside CI: runs each named target until it has executed N inputs (default
# 10 M), split over one libFuzzer process per core on the same corpus, and appends one line per
# run to fuzz/campaign.tsv (date, target, executions, coverage edges, features, corpus size,
# seconds). A crash, hang or out-of-memory stops the campaign with its artifact named.
#   usage: tools/fuzz-campaign.sh [-n EXECUTIONS] TARGET...
#          tools/fuzz-campaign.sh --table   (the ledger summed per target, as Markdown)
set -euo pipefail
cd "$(dirname "$0")/.."
total=10000000
if [ "${1:-}" = --table ]; then
    # Runs add up (each resumes from the corpus the last one left); coverage is the latest run's.
    echo "| target | executions | runs | edges | features |"
    echo "|---|---:|---:|---:|---:|"
    awk -F'\t' 'function commas(v,  s) { s = ""; while (v >= 1000) { s = sprintf(",%03d", v % 1000) s; v = int(v / 1000) } return v s }
        NR > 1 { if (!($2 in n)) order[++k] = $2; n[$2] += $3; runs[$2]++; e[$2] = $4; f[$2] = $5 }
        END { for (i = 1; i <= k; i++) { t = order[i]; printf "| %s | %s | %d | %s | %s |\n", t, commas(n[t]), runs[t], e[t], f[t] } }' fuzz/campaign.tsv
    exit 0
fi
if [ "${1:-}" = -n ]; then total="$2"; shift 2; fi
[ $# -gt 0 ] || { echo "usage: $0 [-n EXECUTIONS] TARGET..." >&2; exit 2; }
command -v cargo-fuzz >/dev/null 2>&1 || cargo install --locked cargo-fuzz@0.13.2
export RUSTC_BOOTSTRAP=1
# Targets that go through files (aedat4_file, hdf5, dataset_text) write one per input: in memory.
[ -w /dev/shm ] && export TMPDIR=/dev/shm
python3 tools/fuzz-seeds.py fuzz/corpus
(cd fuzz && cargo fuzz build >/dev/null)
jobs=$(nproc)
ledger=fuzz/campaign.tsv
[ -f "$ledger" ] || printf 'date\ttarget\texecutions\tedges\tfeatures\tcorpus\tseconds\n' >"$ledger"
for target in "$@"; do
    bin=fuzz/target/x86_64-unknown-linux-gnu/release/$target
    [ -x "$bin" ] || { echo "fuzz-campaign: no target $target" >&2; exit 2; }
    # libhdf5 keeps process-long caches that LeakSanitizer would report (see fuzz-smoke.sh).
    leaks=1
    [ "$target" = hdf5 ] && leaks=0
    logs=$(mktemp -d)
    mkdir -p "fuzz/artifacts/$target"
    start=$(date +%s)
    for j in $(seq "$jobs"); do
        ASAN_OPTIONS="detect_leaks=$leaks" "$bin" "fuzz/corpus/$target" -artifact_prefix="fuzz/artifacts/$target/" \
            -runs=$((total / jobs + 1)) -rss_limit_mb=2048 -max_len=4096 -detect_leaks=$leaks \
            -print_final_stats=1 >"$logs/$j.log" 2>&1 &
    done
    status=0
    wait || status=$?
    seconds=$(($(date +%s) - start))
    execs=$(grep -h '^stat::number_of_executed_units' "$logs"/*.log | awk '{s += $2} END {print s + 0}')
    # The last status line of each process: "#N DONE cov: E ft: F corp: C/..." (or INITED).
    read -r edges features corpus < <(grep -h -E '^#[0-9]+.*cov: ' "$logs"/*.log | tail -n "$jobs" |
        sed -E 's/.*cov: ([0-9]+) ft: ([0-9]+) corp: ([0-9]+).*/\1 \2 \3/' | sort -n | tail -1)
    # libhdf5's own out-of-memory on corrupted metadata is its known limit (docs/formats.md).
    if [ "$target" = hdf5 ] && ls fuzz/artifacts/hdf5/oom-* >/dev/null 2>&1; then
        echo "fuzz-campaign: hdf5: libhdf5 ran out of memory (known limit), kept in fuzz/artifacts/hdf5-oom" >&2
        mkdir -p fuzz/artifacts/hdf5-oom && mv fuzz/artifacts/hdf5/oom-* fuzz/artifacts/hdf5-oom/
        status=0
    fi
    if [ "$status" -ne 0 ] || ls "fuzz/artifacts/$target"/{crash,oom,timeout,leak}-* >/dev/null 2>&1; then
        grep -h -E '^(==|SUMMARY|artifact_prefix|Test unit written)' "$logs"/*.log >&2 || true
        echo "fuzz-campaign: $target failed after $execs executions; logs in $logs" >&2
        exit 1
    fi
    printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$(date -u +%F)" "$target" "$execs" "$edges" "$features" "$corpus" "$seconds" | tee -a "$ledger"
    rm -rf "$logs"
done
