"""Tables for tools/bench/train.sh.

    train_report.py DIR SEED...        per-seed fit results (DIR/run-SEED/metrics.jsonl,
                                       DIR/time-SEED.txt: wall seconds and peak KB)
    train_report.py --steps FILE       step time by phase, safe-train beside PyTorch (the median
                                       over rounds, and each round's step ratio)
"""

import json
import statistics
import sys


def fits(d, seeds):
    rows = []
    print("| synth seed | last epoch test top-1 | best (epoch) | first epoch >= 95% | wall | peak memory |")
    print("|---|---|---|---|---|---|")
    for seed in seeds:
        m = [json.loads(l) for l in open(f"{d}/run-{seed}/metrics.jsonl") if l.strip()]
        wall, kb = open(f"{d}/time-{seed}.txt").read().split()[-2:]
        last = m[-1]["val_top1"]
        best = max(m, key=lambda r: r["val_top1"])
        first = next((r["epoch"] for r in m if r["val_top1"] >= 0.95), None)
        rows.append(last)
        print(f"| {seed} | {100 * last:.1f}% | {100 * best['val_top1']:.1f}% ({best['epoch']}) | "
              f"{first if first else 'never'} of {len(m)} | {float(wall) / 60:.1f} min | {int(kb) / 1024:.0f} MB |")
    med = statistics.median(rows)
    print(f"\nmedian last-epoch top-1 {100 * med:.1f}%, lowest {100 * min(rows):.1f}%: "
          f"every seed >= 95%: {'yes' if min(rows) >= 0.95 else 'NO'}; median >= 97%: {'yes' if med >= 0.97 else 'NO'}")


def steps(path):
    runs = [json.loads(l) for l in open(path) if l.strip()]
    by = {k: [r for r in runs if r["impl"] == k] for k in ("safe-train", "pytorch")}
    phases = ["batch", "forward", "backward", "clip", "optimizer", "step"]
    med = {k: {p: statistics.median(r[f"{p}_ms"] for r in v) for p in phases} for k, v in by.items() if v}
    ours = by["safe-train"][0]
    print(f"\nstep time, median of {len(by['safe-train'])} rounds x {ours['steps']} steps "
          f"({ours['parameters']:,} parameters, batch 8, 5 frames per modality):")
    if "pytorch" in med:
        torch = by["pytorch"][0]
        print(f"| phase | safe-train (ms) | PyTorch {torch['torch']} (ms) | ratio |")
        print("|---|---|---|---|")
        for p in phases:
            a, b = med["safe-train"][p], med["pytorch"][p]
            print(f"| {p} | {a:.1f} | {b:.1f} | {a / b:.2f}x |")
        ratios = [a["step_ms"] / b["step_ms"] for a, b in zip(by["safe-train"], by["pytorch"])]
        print(f"\nper-round step ratio safe-train / PyTorch: {', '.join(f'{r:.2f}x' for r in ratios)}")
    else:
        for p in phases:
            print(f"  {p:<10} {med['safe-train'][p]:8.1f} ms")


if __name__ == "__main__":
    if sys.argv[1] == "--steps":
        steps(sys.argv[2])
    else:
        fits(sys.argv[1], sys.argv[2:])
