#!/usr/bin/env bash
# Installs the GPU runtime (ONNX Runtime's CUDA build and the NVIDIA CUDA / cuDNN libraries it
# needs, their shared libraries only, from the PyPI wheels pinned in requirements-gpu.txt:
# ~1.6 GB to download, ~2.4 GB unpacked) into DEST, replacing what is there.
#
#   install-gpu-runtime [DEST]
#
# In a checkout tools/setup.sh --gpu runs it for tools/ort/gpu. The Debian package installs it
# as /usr/lib/safed/install-gpu-runtime, whose default DEST, /usr/lib/safed/gpu, is where the
# installed safed looks (`safed doctor` says so); removing the package removes that folder.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
dest="${1:-$here/gpu}"
# Beside this script once installed; one folder up (tools/) in a checkout.
req="$here/requirements-gpu.txt"
[ -f "$req" ] || req="$here/../requirements-gpu.txt"
[ -f "$req" ] || { echo "install-gpu-runtime: requirements-gpu.txt not found beside $0" >&2; exit 1; }
command -v python3 >/dev/null && python3 -m pip --version >/dev/null 2>&1 ||
    { echo "install-gpu-runtime: needs python3 with pip (apt install python3-pip)" >&2; exit 1; }
scratch=$(mktemp -d)
trap 'rm -rf "$scratch" "$dest.new"' EXIT
echo "install-gpu-runtime: downloading the wheels of $req (~1.6 GB)" >&2
python3 -m pip download -q --disable-pip-version-check --no-deps --only-binary=:all: -r "$req" -d "$scratch"
rm -rf "$dest.new"
python3 "$here/gpu-runtime.py" "$scratch" "$dest.new"
cp "$req" "$dest.new/requirements-gpu.txt"
rm -rf "$dest"
mv "$dest.new" "$dest"
echo "install-gpu-runtime: GPU runtime in $dest; check it with: safed doctor" >&2
