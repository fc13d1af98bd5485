#!/usr/bin/env bash
# The whole test suite: setup, `cargo fmt --check` and clippy with warnings as errors, the
# Debian package (tools/package.sh), unit + integration tests (fixtures, bad input, live
# streams, interop with dv-processing and faery, the package installed, the house rules of
# tests/architecture.rs), then a short fuzz run of every decoder.
# FUZZ_SECONDS (default 10) sets each fuzz target's run; 0 skips fuzzing. SAFED_GPU=1 installs
# the GPU runtime too (tools/setup.sh --gpu), so that tests/gpu.rs checks the GPU build's
# behaviour on a machine without a GPU; .ci/run sets it.
set -euo pipefail
cd "$(dirname "$0")/.."
bash tools/setup.sh

# Keep build products between runs outside the clone when the caller does not choose.
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/safed-target}"
export SAFED_VENV="$PWD/.venv"

# Style holds without anyone remembering it: formatting, then every lint as an error.
cargo fmt --all --check 2>&1
cargo clippy --workspace --all-targets --locked -- -D warnings 2>&1

# The Debian package (release build, stripped, lintian's tools): tests/package.rs checks it,
# unpacks it and installs it on this machine.
bash tools/package.sh >/dev/null

cargo test --workspace --locked 2>&1

if [ "${FUZZ_SECONDS:-10}" != 0 ]; then
    bash tools/fuzz-smoke.sh "${FUZZ_SECONDS:-10}"
fi
