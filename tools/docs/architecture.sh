#!/usr/bin/env bash
# Renders docs/architecture.dot (the data-flow picture's text source) to docs/architecture.svg,
# with Debian's Graphviz. Run it after editing the .dot and commit both.
set -euo pipefail
cd "$(dirname "$0")/../.."
if ! command -v dot >/dev/null 2>&1; then
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends graphviz >/dev/null
fi
dot -Tsvg docs/architecture.dot -o docs/architecture.svg
echo "docs/architecture.svg written"
