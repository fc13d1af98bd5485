"""Times the peers' whole-file decoders on the benchmark files: dv-processing's
MonoCameraRecording (AEDAT4), faery's file decoder (AEDAT4, EVT 2.0, EVT 3.0, DAT) and h5py
(HDF5, each column read whole, as DSEC's loaders do).
Prints one JSON line per (peer, file): best and median of N runs, in Mev/s.

usage: python peers.py FILE... [--repeat N]
"""

import argparse
import json
import statistics
import time

import dv_processing as dv
import faery
import numpy as np


def dv_count(path: str) -> int:
    reader = dv.io.MonoCameraRecording(path)
    n = 0
    while True:
        batch = reader.getNextEventBatch()
        if batch is None:
            return n
        n += batch.size()


def faery_count(path: str) -> int:
    n = 0
    for chunk in faery.events_stream_from_file(path):
        n += len(chunk)
    return n


def h5py_count(path: str) -> int:
    import h5py
    import hdf5plugin  # noqa: F401  (registers Blosc)
    with h5py.File(path, "r") as f:
        g = f["events"]
        t = g["t"][:].astype(np.int64) + int(f["t_offset"][()])
        x, y, p = g["x"][:], g["y"][:], g["p"][:]
    return len(t) if len(t) == len(x) == len(y) == len(p) else -1


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("files", nargs="+")
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    for path in args.files:
        peers = [("h5py", h5py_count)] if path.endswith(".h5") else [("faery", faery_count)]
        if path.endswith(".aedat4"):
            peers.insert(0, ("dv-processing", dv_count))
        for name, count in peers:
            count(path)  # warm the page cache
            times, n = [], 0
            for _ in range(args.repeat):
                start = time.perf_counter()
                n = count(path)
                times.append(time.perf_counter() - start)
            best, median = min(times), statistics.median(times)
            print(json.dumps({"peer": name, "file": path, "events": n, "best_s": best,
                              "best_mev_s": n / best / 1e6, "median_mev_s": n / median / 1e6}), flush=True)


if __name__ == "__main__":
    main()
