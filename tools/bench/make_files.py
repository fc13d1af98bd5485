"""Writes the decode-benchmark files with the vendors' own writers.

AEDAT4 (none / LZ4 / ZSTD) through dv-processing's MonoCameraWriter, EVT 2.0 / EVT 3.0 through
faery. Events are time-sorted at a 4 Mev/s rate with uniform random pixels and polarities on a
DAVIS346 sensor: close to the worst case for compression, so decompression cost shows.
`dv_zstd_blob.aedat4` is the check on a file nothing was tuned on: a blob moving across the
sensor plus 20% noise, bursty in time (another seed, another shape, another compression ratio).

usage: python make_files.py OUT_DIR [--events N]
"""

import argparse
import pathlib

import dv_processing as dv
import faery
import numpy as np

WIDTH, HEIGHT = 346, 260
T0 = 1_764_000_000_000_000


def random_events(n: int, seed: int = 7) -> np.ndarray:
    rng = np.random.default_rng(seed)
    events = np.zeros(n, dtype=faery.EVENTS_DTYPE)
    events["t"] = np.arange(n, dtype=np.uint64) // 4  # 4 events per µs
    events["x"] = rng.integers(0, WIDTH, n)
    events["y"] = rng.integers(0, HEIGHT, n)
    events["on"] = rng.random(n) < 0.5
    return events


def blob_events(n: int, seed: int = 11) -> np.ndarray:
    """A disc of radius 30 px circling the sensor, 80% of the events, and 20% uniform noise;
    inter-event gaps exponential with a mean that swings between 0.3 and 3 µs (bursts)."""
    rng = np.random.default_rng(seed)
    mean_gap = 0.3 + 2.7 * (0.5 + 0.5 * np.sin(np.arange(n) / 250_000.0))
    t = np.cumsum(rng.exponential(mean_gap)).astype(np.uint64)
    phase = t.astype(np.float64) / 2e6 * 2 * np.pi  # one lap per 2 s
    cx, cy = WIDTH / 2 + 110 * np.cos(phase), HEIGHT / 2 + 80 * np.sin(phase)
    r, a = 30 * np.sqrt(rng.random(n)), rng.random(n) * 2 * np.pi
    x, y = cx + r * np.cos(a), cy + r * np.sin(a)
    noise = rng.random(n) < 0.2
    x[noise], y[noise] = rng.integers(0, WIDTH, noise.sum()), rng.integers(0, HEIGHT, noise.sum())
    events = np.zeros(n, dtype=faery.EVENTS_DTYPE)
    events["t"] = t
    events["x"] = np.clip(x, 0, WIDTH - 1).astype(np.uint16)
    events["y"] = np.clip(y, 0, HEIGHT - 1).astype(np.uint16)
    # Leading edge ON, trailing edge OFF, as a moving bright object gives.
    events["on"] = np.where(noise, rng.random(n) < 0.5, (x - cx) * -np.sin(phase) + (y - cy) * np.cos(phase) > 0)
    return events


def write_dv(events: np.ndarray, path: pathlib.Path, compression) -> None:
    store = dv.EventStore()
    for t, x, y, p in zip((events["t"] + T0).tolist(), events["x"].tolist(), events["y"].tolist(), events["on"].tolist()):
        store.push_back(t, x, y, p)
    config = dv.io.MonoCameraWriter.EventOnlyConfig("bench", (WIDTH, HEIGHT), compression)
    writer = dv.io.MonoCameraWriter(str(path), config)
    writer.writeEvents(store)
    del writer  # closes the file


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("out", type=pathlib.Path)
    parser.add_argument("--events", type=int, default=10_000_000)
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    events = random_events(args.events)
    for name, compression in [("none", dv.CompressionType.NONE), ("lz4", dv.CompressionType.LZ4), ("zstd", dv.CompressionType.ZSTD)]:
        path = args.out / f"dv_{name}.aedat4"
        if not path.exists():
            write_dv(events, path, compression)
            print(f"wrote {path}")
    path = args.out / "dv_zstd_blob.aedat4"
    if not path.exists():
        write_dv(blob_events(args.events), path, dv.CompressionType.ZSTD)
        print(f"wrote {path}")
    stream = faery.events_stream_from_array(events, dimensions=(WIDTH, HEIGHT))
    for version in ["evt2", "evt3"]:
        path = args.out / f"faery_{version}.raw"
        if not path.exists():
            stream.to_file(str(path), version=version, zero_t0=False)
            print(f"wrote {path}")
    path = args.out / "faery_dat2.dat"
    if not path.exists():
        stream.to_file(str(path), version="dat2", zero_t0=False)
        print(f"wrote {path}")
    path = args.out / "dsec_blosc.h5"
    if not path.exists():
        write_dsec(events, path)
        print(f"wrote {path}")


def write_dsec(events: np.ndarray, path: pathlib.Path) -> None:
    """DSEC's layout and compression: events/{x,y,t,p}, t (u32) after t_offset, Blosc zstd."""
    import h5py
    import hdf5plugin
    blosc = hdf5plugin.Blosc(cname="zstd", clevel=5, shuffle=hdf5plugin.Blosc.SHUFFLE)
    t_offset = int(events["t"][0])
    with h5py.File(path, "w") as f:
        g = f.create_group("events")
        g.create_dataset("x", data=events["x"].astype(np.uint16), chunks=(1 << 16,), **blosc)
        g.create_dataset("y", data=events["y"].astype(np.uint16), chunks=(1 << 16,), **blosc)
        g.create_dataset("t", data=(events["t"] - t_offset).astype(np.uint32), chunks=(1 << 16,), **blosc)
        g.create_dataset("p", data=events["on"].astype(np.uint8), chunks=(1 << 16,), **blosc)
        f.create_dataset("t_offset", data=np.int64(t_offset))


if __name__ == "__main__":
    main()
