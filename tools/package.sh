#!/usr/bin/env bash
# Builds the Debian package of safed (docs/service.md): safed and safe-train (release, stripped;
# their debug information split off into a -dbgsym .ddeb beside it), ONNX Runtime's and
# OpenVINO's CPU runtimes, the config as a conffile, the systemd unit, man pages, the demo
# model and recording. Depends is computed by dpkg-shlibdeps from what the binaries link.
#
#   bash tools/package.sh [OUT_DIR]     (default: $CARGO_TARGET_DIR/debian)
#
# Prints the .deb's path last. amd64 only: see docs/service.md for arm64.
set -euo pipefail
cd "$(dirname "$0")/.."
CARGO_DEB_VERSION=3.8.0
say() { printf 'package: %s\n' "$*" >&2; }

bash tools/setup.sh
# dpkg-dev (dpkg-shlibdeps, for Depends), help2man (man pages from --help), lintian (the check).
need_apt=()
for pkg in dpkg-dev help2man lintian; do
    dpkg -s "$pkg" >/dev/null 2>&1 || need_apt+=("$pkg")
done
if [ "${#need_apt[@]}" -gt 0 ]; then
    say "apt-get install ${need_apt[*]}"
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need_apt[@]}" >/dev/null
fi
if [ "$(cargo deb --version 2>/dev/null | awk '{print $2}')" != "$CARGO_DEB_VERSION" ]; then
    say "cargo install cargo-deb $CARGO_DEB_VERSION"
    cargo install -q --locked cargo-deb --version "$CARGO_DEB_VERSION"
fi

# cargo-deb runs dpkg-shlibdeps once per binary and keeps every version it saw of a library
# ("libstdc++6 (>= 5.2), libstdc++6 (>= 10.2)"), which dpkg and lintian refuse: keep the
# strictest of each. Only the small control member is rewritten; the data member is kept as is.
merge_depends() {
    local deb="$1" work
    work=$(mktemp -d)
    (
        cd "$work"
        ar x "$deb"
        mkdir control
        tar -xf control.tar.* -C control
        python3 - control/control <<'PY'
import re, subprocess, sys
path = sys.argv[1]
lines = open(path).read().split("\n")
for i, line in enumerate(lines):
    if not line.startswith("Depends: "):
        continue
    best = {}
    for dep in (d.strip() for d in line[len("Depends: "):].split(",")):
        m = re.fullmatch(r"(\S+)(?: \(>= ([^)]+)\))?", dep)
        if not m:
            sys.exit(f"package.sh: a Depends entry this script does not know: {dep!r}")
        name, version = m.groups()
        if name not in best:
            best[name] = version
        elif version is not None and (best[name] is None or subprocess.run(
                ["dpkg", "--compare-versions", version, "gt", best[name]]).returncode == 0):
            best[name] = version
    lines[i] = "Depends: " + ", ".join(n if v is None else f"{n} (>= {v})" for n, v in best.items())
open(path, "w").write("\n".join(lines))
PY
        rm control.tar.*
        tar --owner=0 --group=0 --numeric-owner --sort=name -C control -cJf control.tar.xz .
        rm "$deb"
        ar rc "$deb" debian-binary control.tar.xz data.tar.*
    )
    rm -rf "$work"
}

export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/safed-target}"
out="${1:-$CARGO_TARGET_DIR/debian}"
cargo build --release --locked --workspace --bins
release="$CARGO_TARGET_DIR/release"
mkdir -p "$release/man"
for bin in safed safe-train; do
    help2man --no-info --section=1 --name="$("$release/$bin" --help | head -n1)" "$release/$bin" |
        gzip -9n >"$release/man/$bin.1.gz"
done
mkdir -p "$out"
rm -f "$out"/safed_*.deb "$out"/safed-dbgsym_*.ddeb
cargo deb -p safed --no-build --locked --dbgsym --compress-debug-symbols=zlib --output "$out" >&2
deb=$(ls "$out"/safed_*.deb)
merge_depends "$deb"
say "$(du -h "$deb" | cut -f1) $deb"
echo "$deb"
