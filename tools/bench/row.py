"""One Markdown table row from a `safed bench --json` line on stdin: label, median, p90 (s)."""

import json
import sys

r = json.loads(sys.stdin.read())
print(f"| {sys.argv[1]} | {r['median_ms'] / 1000:.2f} s | {r['p90_ms'] / 1000:.2f} s |")
