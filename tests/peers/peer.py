"""The vendors' own tools, driven by the Rust interop tests (tests/interop.rs).

Writers record exactly what they were given in OUT.expected.csv (t,x,y,p) and, for frames,
OUT.frames.csv (t,width,height,pixel_sum), so the Rust side compares event by event.

  peer.py dv-write OUT --compression none|lz4|zstd --events N [--frames K] [--seed S]
  peer.py faery-write OUT --version evt2|evt3|aedat4|dat1|dat2 --events N [--seed S]
  peer.py dv-read FILE          # prints what dv-processing reads: events CSV, then frames
  peer.py atis-write OUT --events N [--seed S]   # N-MNIST .bin records, with overflow markers
  peer.py tonic-read FILE       # prints what tonic's read_mnist_file reads (t,x,y,p)
  peer.py text-write OUT --events N [--seed S]   # RPG events.txt: `t x y p`, t in seconds
  peer.py h5-write OUT --events N [--seed S] [--compression none|gzip|blosc-zstd|blosc-lz4]
                                # DSEC's layout: events/{x,y,t,p}, t relative to t_offset, ms_to_idx
  peer.py h5-read FILE          # prints what h5py reads (t + t_offset, x, y, p)
  peer.py faery-read FILE       # prints what faery reads (EVT 2.0 / 3.0, DAT, CSV)
  peer.py npz-read FILE         # prints what numpy.load reads (t, x, y, p)
  peer.py dv-serve --tcp PORT | --unix PATH --events N --expected CSV [--seed S] [--span-us U]
  peer.py spif-send FILE HOST:PORT [--no-timestamps] [--dimensions]
                                # what faery reads of FILE, as aestream's SPIF datagrams
                                # (src/output/dvs_to_udp.cpp); --dimensions prints WIDTH HEIGHT only
"""

import argparse
import os
import sys
import time

import dv_processing as dv
import faery
import numpy as np

WIDTH, HEIGHT = 346, 260
T0 = 1_764_000_000_000_000


def random_events(n, seed, t0=T0, span_us=None):
    """Time-sorted random events; `span_us` spreads them over that long (default 20 per µs)."""
    rng = np.random.default_rng(seed)
    events = np.zeros(n, dtype=faery.EVENTS_DTYPE)
    span = span_us if span_us is not None else max(1, n // 20)
    events["t"] = t0 + np.sort(rng.integers(0, span, n)).astype(np.uint64)
    events["x"] = rng.integers(0, WIDTH, n)
    events["y"] = rng.integers(0, HEIGHT, n)
    events["on"] = rng.random(n) < 0.5
    return events


def write_csv(path, events):
    with open(path, "w") as f:
        f.write("t,x,y,p\n")
        for t, x, y, p in zip(events["t"].tolist(), events["x"].tolist(), events["y"].tolist(), events["on"].tolist()):
            f.write(f"{t},{x},{y},{int(p)}\n")


def event_store(events):
    store = dv.EventStore()
    for t, x, y, p in zip(events["t"].tolist(), events["x"].tolist(), events["y"].tolist(), events["on"].tolist()):
        store.push_back(t, x, y, p)
    return store


def dv_write(args):
    compression = {"none": dv.CompressionType.NONE, "lz4": dv.CompressionType.LZ4, "zstd": dv.CompressionType.ZSTD}[args.compression]
    events = random_events(args.events, args.seed)
    config = dv.io.MonoCameraWriter.Config("peer")
    config.addEventStream((WIDTH, HEIGHT))
    if args.frames:
        config.addFrameStream((WIDTH, HEIGHT))
    config.compression = compression
    writer = dv.io.MonoCameraWriter(args.out, config)
    rng = np.random.default_rng(args.seed + 1)
    frames = []
    # Interleave: a frame, then the events up to the next frame time, as a camera would.
    chunks = np.array_split(events, max(1, args.frames))
    for i, chunk in enumerate(chunks):
        if args.frames:
            t = int(chunk["t"][0]) if len(chunk) else T0 + i
            image = rng.integers(0, 256, (HEIGHT, WIDTH), dtype=np.uint8)
            writer.writeFrame(dv.Frame(t, image))
            frames.append((t, WIDTH, HEIGHT, int(image.sum(dtype=np.int64))))
        if len(chunk):
            writer.writeEvents(event_store(chunk))
    del writer
    write_csv(args.out + ".expected.csv", events)
    with open(args.out + ".frames.csv", "w") as f:
        f.write("t,width,height,pixel_sum\n")
        for row in frames:
            f.write(",".join(map(str, row)) + "\n")


def faery_write(args):
    # EVT 3.0 keeps 24 bits of time: spread over 40 s so the 2^24 µs wrap is crossed twice.
    events = random_events(args.events, args.seed, t0=1000, span_us=40_000_000)
    dimensions = (WIDTH, HEIGHT)
    if args.version == "dat1":
        # DAT version 1 keeps 8 bits of y.
        dimensions = (WIDTH, 240)
        events["y"] %= 240
    stream = faery.events_stream_from_array(events, dimensions=dimensions)
    kwargs = {"version": args.version} if args.version != "aedat4" else {}
    stream.to_file(args.out, zero_t0=False, **kwargs)
    write_csv(args.out + ".expected.csv", events)


def dv_read(args):
    reader = dv.io.MonoCameraRecording(args.file)
    out = sys.stdout
    out.write("t,x,y,p\n")
    while True:
        batch = reader.getNextEventBatch()
        if batch is None:
            break
        for t, x, y, p in zip(batch.timestamps().tolist(), batch.coordinates()[:, 0].tolist(),
                              batch.coordinates()[:, 1].tolist(), batch.polarities().tolist()):
            out.write(f"{t},{x},{y},{int(p)}\n")
    if reader.isFrameStreamAvailable():
        while True:
            frame = reader.getNextFrame()
            if frame is None:
                break
            image = frame.image
            out.write(f"frame,{frame.timestamp},{image.shape[1]},{image.shape[0]},{int(image.sum(dtype=np.int64))}\n")


def dv_serve(args):
    events = random_events(args.events, args.seed, span_us=args.span_us)
    write_csv(args.expected, events)
    stream = dv.io.Stream.EventStream(0, "events", "peer", (WIDTH, HEIGHT))
    if args.tcp:
        server = dv.io.NetworkWriter("127.0.0.1", args.tcp, stream)
    else:
        server = dv.io.NetworkWriter(args.unix, stream)
    print("listening", flush=True)
    deadline = time.monotonic() + 30
    while server.getClientCount() < 1:
        if time.monotonic() > deadline:
            sys.exit("no client connected within 30 s")
        time.sleep(0.01)
    for chunk in np.array_split(events, 20):
        server.writeEvents(event_store(chunk))
    while server.getQueuedPacketCount() > 0 and time.monotonic() < deadline:
        time.sleep(0.01)
    time.sleep(0.3)
    # The end of the stream is the server going away. NetworkWriter's destructor can block
    # joining its I/O thread, so leave the way a killed server would: the kernel closes sockets.
    sys.stdout.flush()
    os._exit(0)


def atis_write(args):
    """N-MNIST's layout: x, y, p<<7 | t>>16, t>>8, t; y = 240 marks a time overflow. There is no
    vendor writer, so the file is checked through tonic's reader (tonic-read)."""
    rng = np.random.default_rng(args.seed)
    n = args.events
    t = np.sort(rng.integers(0, (1 << 23) - 1, n))
    records = np.zeros((n, 5), dtype=np.uint8)
    records[:, 0] = rng.integers(0, 34, n)
    records[:, 1] = rng.integers(0, 34, n)
    records[:, 2] = (rng.random(n) < 0.5).astype(np.uint8) << 7 | (t >> 16).astype(np.uint8)
    records[:, 3] = (t >> 8) & 0xFF
    records[:, 4] = t & 0xFF
    # Three overflow markers (x 0, y 240, time 0) spread through the file.
    marker = np.array([[0, 240, 0, 0, 0]], dtype=np.uint8)
    parts = np.array_split(records, 4)
    out = parts[0]
    for part in parts[1:]:
        out = np.concatenate([out, marker, part])
    out.tofile(args.out)


def tonic_read(args):
    # tonic/io.py alone (loaded by path): the package's __init__ wants librosa and torch.
    import importlib.util
    import site
    for root in site.getsitepackages():
        path = os.path.join(root, "tonic", "io.py")
        if os.path.exists(path):
            break
    spec = importlib.util.spec_from_file_location("tonic_io", path)
    tonic_io = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(tonic_io)
    dtype = np.dtype([("x", np.int16), ("y", np.int16), ("t", np.int64), ("p", bool)])
    events = tonic_io.read_mnist_file(args.file, dtype=dtype)
    out = sys.stdout
    out.write("t,x,y,p\n")
    for t, x, y, p in zip(events["t"].tolist(), events["x"].tolist(), events["y"].tolist(), events["p"].tolist()):
        out.write(f"{t},{x},{y},{int(p)}\n")


def text_write(args):
    events = random_events(args.events, args.seed, t0=0, span_us=5_000_000)
    with open(args.out, "w") as f:
        for t, x, y, p in zip(events["t"].tolist(), events["x"].tolist(), events["y"].tolist(), events["on"].tolist()):
            f.write(f"{t // 1_000_000}.{t % 1_000_000:06d}000 {x} {y} {int(p)}\n")
    write_csv(args.out + ".expected.csv", events)


def h5_write(args):
    import h5py
    import hdf5plugin
    events = random_events(args.events, args.seed, span_us=3_000_000)
    filters = {
        "none": {},
        "gzip": {"compression": "gzip"},
        "blosc-zstd": hdf5plugin.Blosc(cname="zstd", clevel=5, shuffle=hdf5plugin.Blosc.SHUFFLE),
        "blosc-lz4": hdf5plugin.Blosc(cname="lz4", clevel=5, shuffle=hdf5plugin.Blosc.SHUFFLE),
    }[args.compression]
    t_offset = int(events["t"][0])
    t = (events["t"] - t_offset).astype(np.uint32)
    chunk = {"chunks": (min(len(events), 40_000),)} if len(events) else {}
    with h5py.File(args.out, "w") as f:
        group = f.create_group("events")
        group.create_dataset("x", data=events["x"].astype(np.uint16), **chunk, **filters)
        group.create_dataset("y", data=events["y"].astype(np.uint16), **chunk, **filters)
        group.create_dataset("t", data=t, **chunk, **filters)
        group.create_dataset("p", data=events["on"].astype(np.uint8), **chunk, **filters)
        f.create_dataset("t_offset", data=np.int64(t_offset))
        f.create_dataset("ms_to_idx", data=np.searchsorted(t, np.arange(0, int(t[-1]) // 1000 + 1) * 1000).astype(np.uint64))
    write_csv(args.out + ".expected.csv", events)


def h5_read(args):
    import h5py
    import hdf5plugin  # noqa: F401  (registers the Blosc filter)
    with h5py.File(args.file, "r") as f:
        group = f["events"] if "events" in f else f
        t = group["t"][:].astype(np.int64)
        if "t_offset" in f:
            t += int(f["t_offset"][()])
        x, y, p = group["x"][:], group["y"][:], group["p"][:]
    out = sys.stdout
    out.write("t,x,y,p\n")
    for row in zip(t.tolist(), x.tolist(), y.tolist(), p.tolist()):
        out.write(f"{row[0]},{row[1]},{row[2]},{int(row[3] > 0)}\n")


def faery_read(args):
    out = sys.stdout
    out.write("t,x,y,p\n")
    for events in faery.events_stream_from_file(args.file):
        for t, x, y, p in zip(events["t"].tolist(), events["x"].tolist(), events["y"].tolist(), events["on"].tolist()):
            out.write(f"{t},{x},{y},{int(p)}\n")


def npz_read(args):
    arrays = np.load(args.file)
    out = sys.stdout
    out.write("t,x,y,p\n")
    assert arrays["t"].dtype == np.int64 and arrays["x"].dtype == np.uint16 and arrays["p"].dtype == np.bool_
    for row in zip(arrays["t"].tolist(), arrays["x"].tolist(), arrays["y"].tolist(), arrays["p"].tolist()):
        out.write(f"{row[0]},{row[1]},{row[2]},{int(row[3])}\n")


def spif_send(args):
    """aestream's UDP layout: host-order u32 words, x (15 bits) << 16 | polarity << 15 | y (15
    bits); bit 31 set when no timestamp follows, else a u32 timestamp (us) after each word.
    aestream fills a datagram up to its 512-byte maximum before sending."""
    import socket

    stream = faery.events_stream_from_file(args.file)
    if args.dimensions:
        print(*stream.dimensions())
        return
    host, port = args.address.rsplit(":", 1)
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    per_datagram = 512 // (4 if args.no_timestamps else 8)
    for events in stream:
        words = (events["x"].astype(np.uint32) & 0x7FFF) << 16
        words |= (events["on"].astype(np.uint32) << 15) | (events["y"].astype(np.uint32) & 0x7FFF)
        if args.no_timestamps:
            packed = (words | np.uint32(1 << 31)).astype("=u4")
        else:
            packed = np.empty(2 * len(words), dtype="=u4")
            packed[0::2] = words
            packed[1::2] = (events["t"] & 0xFFFFFFFF).astype(np.uint32)
        step = per_datagram * (1 if args.no_timestamps else 2)
        for i in range(0, len(packed), step):
            sock.sendto(packed[i : i + step].tobytes(), (host, int(port)))


def main():
    parser = argparse.ArgumentParser()
    sub = parser.add_subparsers(dest="cmd", required=True)
    p = sub.add_parser("dv-write")
    p.add_argument("out")
    p.add_argument("--compression", required=True)
    p.add_argument("--events", type=int, required=True)
    p.add_argument("--frames", type=int, default=0)
    p.add_argument("--seed", type=int, default=1)
    p = sub.add_parser("faery-write")
    p.add_argument("out")
    p.add_argument("--version", required=True)
    p.add_argument("--events", type=int, required=True)
    p.add_argument("--seed", type=int, default=1)
    p = sub.add_parser("dv-read")
    p.add_argument("file")
    for name in ("atis-write", "text-write"):
        p = sub.add_parser(name)
        p.add_argument("out")
        p.add_argument("--events", type=int, required=True)
        p.add_argument("--seed", type=int, default=1)
    p = sub.add_parser("tonic-read")
    p.add_argument("file")
    p = sub.add_parser("h5-write")
    p.add_argument("out")
    p.add_argument("--events", type=int, required=True)
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--compression", default="none")
    for name in ("h5-read", "faery-read", "npz-read"):
        p = sub.add_parser(name)
        p.add_argument("file")
    p = sub.add_parser("dv-serve")
    p.add_argument("--tcp", type=int)
    p.add_argument("--unix")
    p.add_argument("--events", type=int, required=True)
    p.add_argument("--expected", required=True)
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--span-us", type=int, default=None)
    p = sub.add_parser("spif-send")
    p.add_argument("file")
    p.add_argument("address", nargs="?")
    p.add_argument("--no-timestamps", action="store_true")
    p.add_argument("--dimensions", action="store_true")
    args = parser.parse_args()
    commands = {
        "spif-send": spif_send,
        "dv-write": dv_write,
        "faery-write": faery_write,
        "dv-read": dv_read,
        "dv-serve": dv_serve,
        "atis-write": atis_write,
        "tonic-read": tonic_read,
        "text-write": text_write,
        "h5-write": h5_write,
        "h5-read": h5_read,
        "faery-read": faery_read,
        "npz-read": npz_read,
    }
    commands[args.cmd](args)


if __name__ == "__main__":
    main()
