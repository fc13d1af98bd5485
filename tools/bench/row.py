"""One Markdown table row from a `safed bench --json` line on stdin: label, median, p90 (s); or,
from a `safed bench --against --json` line, label, top-1 agreement, max log-prob drift and the
mean of the per-sample maxima.
   usage: safed bench --json ... | python row.py LABEL"""

import json
import sys

r = json.loads(sys.stdin.read())
if "top1_agree" in r:
    print(f"| {sys.argv[1]} | {r['top1_agree']}/{r['samples']} | {r['max_log_prob_drift']:.3f} | "
          f"{r['mean_max_log_prob_drift']:.3f} |")
else:
    print(f"| {sys.argv[1]} | {r['median_ms'] / 1000:.2f} s | {r['p90_ms'] / 1000:.2f} s |")
