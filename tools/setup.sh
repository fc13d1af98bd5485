#!/usr/bin/env bash
# Sets up a fresh Debian 12 / Ubuntu machine (as root) to build, run and test safed.
# Idempotent: every step checks before it acts. What it does:
#   1. apt: a C toolchain (liblz4/zstd are built from source by their crates), Python venv,
#      clang and OpenCV (RGB cameras and video files).
#   2. Rust: uses the cargo on PATH (>= 1.88); a missing one is installed from apt where
#      the distribution's is new enough, else the script says how to get one.
#   3. .venv/: the vendors' tools from PyPI (dv-processing, faery) for interop tests.
#   4. tools/ort/lib/: the ONNX Runtime shared library, out of the onnxruntime wheel.
#   5. tools/openvino/lib/: OpenVINO's runtime for the CPU (the C API, the ONNX reader and the CPU
#      plugin, with TBB), out of the openvino wheel: safed's second backend (~88 MB).
#   6. With --gpu (or SAFED_GPU=1): tools/ort/gpu/, ONNX Runtime's CUDA build and the NVIDIA
#      CUDA / cuDNN libraries it needs, from their PyPI wheels (tools/requirements-gpu.txt):
#      ~1.6 GB to download, ~2.4 GB unpacked. The CPU library stays where it is.
set -euo pipefail
cd "$(dirname "$0")/.."
gpu="${SAFED_GPU:-0}"
for arg in "$@"; do
    case "$arg" in
        --gpu) gpu=1 ;;
        *) echo "usage: tools/setup.sh [--gpu]" >&2; exit 2 ;;
    esac
done

ORT_VERSION=1.32.0
OPENVINO_VERSION=2026.4.1
say() { printf 'setup: %s\n' "$*" >&2; }

need_apt=()
# clang + libopencv-dev: the opencv crate generates its bindings with libclang (RGB capture).
# mosquitto (+ clients, mosquitto_passwd) and prometheus (+ promtool): the real broker and
# server the fleet tests start on loopback ports; openssl makes their TLS certificates.
# slurm-wlm + munge: the one-node Slurm cluster tools/slurm/local-cluster.sh starts for the
# cluster replay test (slurmctld, slurmd, munged run as root without systemd).
# chromium + chromium-driver: the real browser the live view's test drives over WebDriver.
for pkg in build-essential pkg-config python3-venv python3-pip ca-certificates clang libclang-dev libopencv-dev \
    libhdf5-dev mosquitto mosquitto-clients prometheus openssl slurm-wlm munge chromium chromium-driver; do
    dpkg -s "$pkg" >/dev/null 2>&1 || need_apt+=("$pkg")
done
if [ "${#need_apt[@]}" -gt 0 ]; then
    say "apt-get install ${need_apt[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends "${need_apt[@]}" >/dev/null
fi

rust_ok() {
    command -v cargo >/dev/null 2>&1 || return 1
    local v
    v=$(rustc --version | awk '{print $2}')
    [ "$(printf '%s\n1.88.0\n' "$v" | sort -V | head -n1)" = "1.88.0" ]
}
if ! rust_ok; then
    say "no Rust >= 1.88 on PATH; trying the distribution's"
    apt-get install -y -qq --no-install-recommends cargo rustc >/dev/null 2>&1 || true
    rust_ok || { say "Rust >= 1.88 is needed: install it with rustup (https://rustup.rs), then re-run"; exit 1; }
fi

if [ ! -x .venv/bin/python ] || ! .venv/bin/python -c 'import dv_processing, faery, h5py, hdf5plugin, expelliarmus, cyclonedds' 2>/dev/null \
    || [ ! -f .venv/lib/python3*/site-packages/tonic/io.py ]; then
    say "creating .venv with the interop peers (dv-processing, faery, h5py, hdf5plugin, expelliarmus, cyclonedds, tonic)"
    rm -rf .venv
    python3 -m venv .venv
    .venv/bin/python -m pip install -q --disable-pip-version-check -r tools/requirements-test.txt
    # tonic only for its N-MNIST reader (tonic/io.py, loaded by path): none of its heavy
    # dependencies (librosa, torch) are needed for that.
    .venv/bin/python -m pip install -q --disable-pip-version-check --no-deps tonic==1.7.0
fi

# Wheels are downloaded into one scratch folder, removed on exit whatever happens (one trap:
# a second `trap ... EXIT` would replace the first and leak its folder).
scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT
# pip_download DIR ARGS...: the named wheels only (no dependencies, no source builds) into DIR.
pip_download() {
    local dir="$1"
    shift
    python3 -m pip download -q --disable-pip-version-check --no-deps --only-binary=:all: "$@" -d "$dir"
}

lib=tools/ort/lib/libonnxruntime.so
if [ ! -f "$lib" ]; then
    say "fetching the ONNX Runtime $ORT_VERSION library (onnxruntime wheel from PyPI)"
    pip_download "$scratch/ort" "onnxruntime==$ORT_VERSION"
    mkdir -p tools/ort/lib
    python3 - "$scratch"/ort/onnxruntime-*.whl "$lib" <<'PY'
import sys, zipfile
wheel, out = sys.argv[1], sys.argv[2]
with zipfile.ZipFile(wheel) as z:
    name = next(n for n in z.namelist() if n.startswith("onnxruntime/capi/libonnxruntime.so"))
    with z.open(name) as src, open(out, "wb") as dst:
        dst.write(src.read())
PY
fi
ov_dir=tools/openvino/lib
if [ ! -f "$ov_dir/openvino-$OPENVINO_VERSION" ]; then
    say "fetching the OpenVINO $OPENVINO_VERSION runtime (openvino wheel from PyPI)"
    pip_download "$scratch/openvino" "openvino==$OPENVINO_VERSION"
    rm -rf "$ov_dir" && mkdir -p "$ov_dir"
    # The C API safed calls, the core, the ONNX reader and the CPU plugin (found beside the
    # core), and TBB; not the GPU/NPU plugins or the other frameworks' readers.
    python3 - "$scratch"/openvino/openvino-*.whl "$ov_dir" <<'PY'
import os, re, sys, zipfile
wheel, out = sys.argv[1], sys.argv[2]
keep = re.compile(r"openvino/libs/(libopenvino(_c|_onnx_frontend|_intel_cpu_plugin)?\.so[.0-9]*|libtbb(malloc)?\.so\.[0-9]+)$")
with zipfile.ZipFile(wheel) as z:
    for name in z.namelist():
        if keep.match(name):
            with z.open(name) as src, open(os.path.join(out, os.path.basename(name)), "wb") as dst:
                dst.write(src.read())
PY
    touch "$ov_dir/openvino-$OPENVINO_VERSION"
fi
gpu_dir=tools/ort/gpu
if [ "$gpu" = 1 ] && ! cmp -s tools/requirements-gpu.txt "$gpu_dir/requirements-gpu.txt"; then
    say "fetching the GPU runtime (onnxruntime-gpu and NVIDIA's CUDA / cuDNN wheels, ~1.6 GB)"
    bash tools/ort/install-gpu-runtime.sh "$gpu_dir"
    say "GPU runtime in $gpu_dir; check it with: cargo run --release -- doctor"
fi
say "ready"
