"""Prints the decode benchmark as a Markdown table: median Mev/s of safed and of each peer on
each file, and safed's ratio to the fastest peer.

usage: python table.py OURS.jsonl PEERS.jsonl
"""

import json
import os
import sys


def load(path):
    with open(path) as f:
        return [json.loads(line) for line in f if line.strip()]


def main():
    ours = {r["file"]: r for r in load(sys.argv[1])}
    peers = {}
    for r in load(sys.argv[2]):
        peers.setdefault(r["file"], {})[r["peer"]] = r
    print("| file | events | safed Mev/s | dv-processing Mev/s | faery Mev/s | safed / fastest peer |")
    print("|---|---|---|---|---|---|")
    for file, r in ours.items():
        p = peers.get(file, {})
        cells = []
        for name in ["dv-processing", "faery"]:
            cells.append(f"{p[name]['median_mev_s']:.0f}" if name in p else "—")
        fastest = max((v["median_mev_s"] for v in p.values()), default=None)
        ratio = f"{r['median_mev_s'] / fastest:.2f}×" if fastest else "—"
        print(f"| {os.path.basename(file)} | {r['events'] / 1e6:.0f} M | {r['median_mev_s']:.0f} | {cells[0]} | {cells[1]} | {ratio} |")


if __name__ == "__main__":
    main()
