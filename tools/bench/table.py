"""Prints the decode benchmark as a Markdown table: best-of-N Mev/s of safed and of each peer
on each file (medians in brackets), and safed's ratio to the fastest peer (best to best).
Best-of-N is the steadier statistic on a shared 2-core VM; both sides are measured alike.

usage: python table.py OURS.jsonl PEERS.jsonl
"""

import json
import os
import sys


def load(path):
    with open(path) as f:
        return [json.loads(line) for line in f if line.strip()]


def cell(r):
    return f"{r['best_mev_s']:.0f} ({r['median_mev_s']:.0f})"


def main():
    ours = {r["file"]: r for r in load(sys.argv[1])}
    peers = {}
    for r in load(sys.argv[2]):
        peers.setdefault(r["file"], {})[r["peer"]] = r
    print("| file | events | safed Mev/s | dv-processing Mev/s | faery Mev/s | h5py Mev/s | safed / fastest peer |")
    print("|---|---|---|---|---|---|---|")
    for file, r in ours.items():
        p = peers.get(file, {})
        cells = []
        for name in ["dv-processing", "faery", "h5py"]:
            cells.append(cell(p[name]) if name in p else "—")
        fastest = max((v["best_mev_s"] for v in p.values()), default=None)
        ratio = f"{r['best_mev_s'] / fastest:.2f}×" if fastest else "—"
        print(f"| {os.path.basename(file)} | {r['events'] / 1e6:.0f} M | {cell(r)} | {cells[0]} | {cells[1]} | {cells[2]} | {ratio} |")


if __name__ == "__main__":
    main()
