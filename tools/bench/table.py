"""Prints the decode benchmark as a Markdown table: best-of-N Mev/s of safed and of each peer
on each file (medians in brackets), and safed's ratio to the fastest peer (best to best).
Best-of-N is the steadier statistic on a shared 2-core VM; both sides are measured alike.
With several rounds (a file's lines repeated, in order), each side's cell is its best round,
and the last column adds the range of the per-round ratios.

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


def best(rows):
    return max(rows, key=lambda r: r["best_mev_s"])


def main():
    ours, peers = {}, {}
    for r in load(sys.argv[1]):
        ours.setdefault(r["file"], []).append(r)
    for r in load(sys.argv[2]):
        peers.setdefault(r["file"], {}).setdefault(r["peer"], []).append(r)
    print("| file | events | safed Mev/s | dv-processing Mev/s | faery Mev/s | h5py Mev/s | safed / fastest peer |")
    print("|---|---|---|---|---|---|---|")
    for file, rounds in ours.items():
        p = peers.get(file, {})
        cells = [cell(best(p[name])) if name in p else "—" for name in ["dv-processing", "faery", "h5py"]]
        ratio = "—"
        if p:
            fastest = max(best(rows)["best_mev_s"] for rows in p.values())
            ratio = f"{best(rounds)['best_mev_s'] / fastest:.2f}×"
            per_round = []
            for i, r in enumerate(rounds):
                peer = max((rows[i]["best_mev_s"] for rows in p.values() if i < len(rows)), default=None)
                if peer:
                    per_round.append(r["best_mev_s"] / peer)
            if len(per_round) > 1:
                ratio += f" ({min(per_round):.2f}–{max(per_round):.2f})"
        print(f"| {os.path.basename(file)} | {rounds[0]['events'] / 1e6:.0f} M | {cell(best(rounds))} | {cells[0]} | {cells[1]} | {cells[2]} | {ratio} |")


if __name__ == "__main__":
    main()
