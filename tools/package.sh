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
# dpkg-dev (dpkg-shlibdeps, for Depends), binutils (ar, readelf), help2man (man pages from
# --help); for tests/package.rs, lintian and systemd (systemd-analyze verify).
need_apt=()
for pkg in dpkg-dev binutils help2man lintian systemd; do
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

# Depends, from what every ELF file of the package links: one dpkg-shlibdeps run over the
# binaries and the bundled libraries together, the private folders searched (-l), and Debian's
# libtbb12 left out since the package ships its own TBB. cargo-deb's own $auto
# runs dpkg-shlibdeps per file, cannot find the OpenVINO plugin's sibling libraries, and keeps
# every version it saw ("libstdc++6 (>= 5.2), libstdc++6 (>= 10.2)"), which lintian refuses.
# Only the small control member of the .deb is rewritten; the data member is kept as is.
set_depends() {
    local deb="$1" repo="$PWD" work depends
    work=$(mktemp -d)
    mkdir -p "$work/shlibs/debian" && touch "$work/shlibs/debian/control"
    depends=$(cd "$work/shlibs" && dpkg-shlibdeps --ignore-missing-info -xlibtbb12 -O \
        -l"$repo/tools/openvino/lib" -l"$repo/tools/ort/lib" \
        "$release/safed" "$release/safe-train" "$repo/tools/ort/lib/libonnxruntime.so" "$repo"/tools/openvino/lib/lib* \
        2>"$work/shlibs.log" | sed -n 's/^shlibs:Depends=//p') ||
        { cat "$work/shlibs.log" >&2; exit 1; }
    [ -n "$depends" ] || { cat "$work/shlibs.log" >&2; say "dpkg-shlibdeps found no dependencies"; exit 1; }
    (
        cd "$work"
        ar x "$deb"
        mkdir control
        tar -xf control.tar.* -C control
        sed -i "s|^Depends: .*|Depends: $depends|" control/control
        rm control.tar.*
        tar --owner=0 --group=0 --numeric-owner --sort=name -C control -cJf control.tar.xz .
        rm "$deb"
        ar rc "$deb" debian-binary control.tar.xz data.tar.*
    )
    rm -rf "$work"
    say "Depends: $depends"
}

export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/safed-target}"
out="${1:-$CARGO_TARGET_DIR/debian}"
mkdir -p "$out" && out=$(cd "$out" && pwd)
cargo build --release --locked --workspace --bins
release="$CARGO_TARGET_DIR/release"
mkdir -p "$release/man"
for bin in safed safe-train; do
    help2man --no-info --section=1 --name="$("$release/$bin" --help | head -n1)" "$release/$bin" |
        gzip -9n >"$release/man/$bin.1.gz"
done
rm -f "$out"/safed_*.deb "$out"/safed-dbgsym_*.ddeb
# --quiet: its own per-file dpkg-shlibdeps warnings (set_depends computes Depends instead).
cargo deb -p safed --no-build --locked --quiet --dbgsym --compress-debug-symbols=zlib --output "$out" >&2
deb=$(ls "$out"/safed_*.deb)
set_depends "$deb"
say "$(du -h "$deb" | cut -f1) $deb"
echo "$deb"
