#!/usr/bin/env bash
# Replays a dataset split on a Slurm cluster: an array job of N tasks, each replaying one shard
# of the split (`safed replay --shard I/N --results OUT/results.I.jsonl --resume`), requeueable
# so that a preempted task starts again and goes on where it stopped; then a merge job, after
# all of them (afterany), that writes OUT/report.json with its CSV and PNG files.
#
#   tools/slurm/submit-replay.sh --dataset ROOT [--split S] [--model M] --tasks N --out DIR \
#       [--safed BIN] [--partition P] [--cpus C] [--time T] [-- REPLAY_ARGS...]
#
# REPLAY_ARGS go to every task's `safed replay` (e.g. --speed max --streams 2 --batch 4).
# On a cluster of several nodes, DIR, ROOT, the model and the safed binary must be on storage
# every node sees at the same path (docs/cluster.md). Prints the two job ids.
set -euo pipefail

usage() {
    sed -n '7,8p' "$0" | sed 's/^# *//' >&2
    exit 2
}
die() { printf 'submit-replay: %s\n' "$*" >&2; exit 1; }

dataset="" split="test" model="" tasks="" out="" safed="${SAFED:-}" partition="" cpus=2 time_limit=""
replay_args=()
while [ $# -gt 0 ]; do
    case "$1" in
        --dataset) dataset="${2:?}"; shift 2 ;;
        --split) split="${2:?}"; shift 2 ;;
        --model) model="${2:?}"; shift 2 ;;
        --tasks) tasks="${2:?}"; shift 2 ;;
        --out) out="${2:?}"; shift 2 ;;
        --safed) safed="${2:?}"; shift 2 ;;
        --partition) partition="${2:?}"; shift 2 ;;
        --cpus) cpus="${2:?}"; shift 2 ;;
        --time) time_limit="${2:?}"; shift 2 ;;
        --) shift; replay_args=("$@"); break ;;
        -h | --help) usage ;;
        *) printf 'submit-replay: unknown argument %s\n' "$1" >&2; usage ;;
    esac
done
[ -n "$dataset" ] && [ -n "$tasks" ] && [ -n "$out" ] || usage
[[ "$tasks" =~ ^[1-9][0-9]*$ ]] || die "--tasks must be a positive number, not '$tasks'"
[ -d "$dataset" ] || die "--dataset $dataset is not a folder"
[ -z "$model" ] || [ -f "$model" ] || die "--model $model does not exist"
if [ -z "$safed" ]; then
    safed=$(command -v safed || true)
    [ -n "$safed" ] || die "no safed on PATH: give --safed PATH (or SAFED=PATH)"
fi
[ -x "$safed" ] || die "safed binary $safed is not executable"
command -v sbatch >/dev/null || die "sbatch not found (is this a Slurm login node? locally: tools/slurm/local-cluster.sh up)"

# Every path the jobs see is absolute: they run from wherever Slurm starts them.
abs() { (cd "$(dirname "$1")" && printf '%s/%s' "$PWD" "$(basename "$1")"); }
mkdir -p "$out/logs"
out=$(cd "$out" && pwd)
dataset=$(cd "$dataset" && pwd)
safed=$(abs "$safed")
[ -z "$model" ] || model=$(abs "$model")

# The job scripts stay in OUT, so what ran can be read (and resubmitted) afterwards.
{
    printf '#!/usr/bin/env bash\n'
    printf '# One shard of %s (split %s), written by tools/slurm/submit-replay.sh.\n' "$dataset" "$split"
    printf 'set -euo pipefail\n'
    printf 'i="$SLURM_ARRAY_TASK_ID" n="$SLURM_ARRAY_TASK_COUNT"\n'
    printf 'echo "task $i/$n on $(hostname), start $((${SLURM_RESTART_COUNT:-0} + 1)), $(date -Is)" >&2\n'
    printf 'exec %q replay --dataset %q --split %q' "$safed" "$dataset" "$split"
    [ -z "$model" ] || printf ' --model %q' "$model"
    printf ' --shard "$i/$n" --results %q/results."$i".jsonl --resume' "$out"
    [ ${#replay_args[@]} -eq 0 ] || printf ' %q' "${replay_args[@]}"
    printf ' >>%q/logs/lines."$i".jsonl\n' "$out"
} >"$out/replay-task.sh"
{
    printf '#!/usr/bin/env bash\n'
    printf '# Merges the shards of %s, written by tools/slurm/submit-replay.sh.\n' "$dataset"
    printf 'set -euo pipefail\n'
    printf 'files=()\n'
    printf 'for i in $(seq 0 %d); do\n' "$((tasks - 1))"
    printf '    f=%q/results."$i".jsonl\n' "$out"
    printf '    [ -f "$f" ] && files+=("$f") || echo "task $i left no results ($f)" >&2\n'
    printf 'done\n'
    printf '[ ${#files[@]} -gt 0 ] || { echo "no task left results" >&2; exit 1; }\n'
    printf 'exec %q report merge "${files[@]}" --report %q/report.json --dataset %q --split %q --complete\n' \
        "$safed" "$out" "$dataset" "$split"
} >"$out/merge.sh"
chmod +x "$out/replay-task.sh" "$out/merge.sh"

common=()
[ -z "$partition" ] || common+=(--partition "$partition")
[ -z "$time_limit" ] || common+=(--time "$time_limit")
# --requeue: a preempted or requeued task runs again; --open-mode=append keeps its earlier log.
array_id=$(sbatch --parsable "${common[@]}" --job-name=safed-replay --array="0-$((tasks - 1))" \
    --requeue --cpus-per-task="$cpus" --open-mode=append \
    --output="$out/logs/replay_%A_%a.log" "$out/replay-task.sh") ||
    die "sbatch refused the array job (above). No cluster configured? Locally: tools/slurm/local-cluster.sh up, then eval \"\$(tools/slurm/local-cluster.sh env)\""
array_id="${array_id%%;*}"
merge_id=$(sbatch --parsable "${common[@]}" --job-name=safed-merge --dependency="afterany:$array_id" \
    --kill-on-invalid-dep=no --output="$out/logs/merge_%j.log" "$out/merge.sh") ||
    die "sbatch refused the merge job (above); the array job $array_id is queued: merge by hand with $out/merge.sh"
merge_id="${merge_id%%;*}"
printf 'array job %s (%s tasks), merge job %s; report: %s/report.json\n' "$array_id" "$tasks" "$merge_id" "$out"
