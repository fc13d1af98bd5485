"""Builds each fuzz target's seed corpus from the test fixtures: the part after the header or
magic that the target itself prepends, cut to 64 KB so runs stay fast.

usage: python3 fuzz-seeds.py CORPUS_DIR
"""

import pathlib
import sys

DATA = pathlib.Path(__file__).resolve().parent.parent / "tests" / "data"
LIMIT = 64 << 10


def after_line(data: bytes, marker: bytes) -> bytes:
    at = data.find(marker)
    return data[data.index(b"\n", at) + 1:] if at >= 0 else data


def after_header(data: bytes, comment: bytes) -> bytes:
    """Skips header lines starting with `comment`."""
    at = 0
    while data.startswith(comment, at):
        at = data.index(b"\n", at) + 1
    return data[at:]


def seeds():
    for path in sorted(DATA.iterdir()):
        data = path.read_bytes()
        if path.suffix == ".aedat4":
            yield "aedat4", path.name, data[14:]
            yield "aedat4_stream", path.name, data[14:]
            yield "aedat4_file", path.name, data[14:]
        elif path.suffix == ".raw":
            body = after_header(data, b"%")
            yield ("evt3" if b"evt 3.0" in data[:200] else "evt2"), path.name, body
            # Any bytes are datagrams: 100-byte datagrams, a 346-pixel-wide sensor.
            yield "udp", path.name, b"\x63\x59" + body
            # EVT 3.0 words cut into 1 KiB packets (the first byte: 255 * 4 + 1 = 1021 bytes).
            yield "event_packet", path.name, b"\xff" + body
        elif path.suffix == ".dat":
            # The target writes its own header and takes the first byte as the version.
            yield "dat", path.name, b"\x00" + after_header(data, b"%")
        elif path.suffix == ".bin":
            yield "atis_bin", path.name, data
        elif path.suffix == ".h5":
            yield "hdf5", path.name, data
            continue
        elif path.suffix == ".txt" or path.name == "rpg_events.txt.expected.csv":
            yield "text", path.name, data
        elif path.suffix == ".aedat" and data.startswith(b"#!AER-DAT3.1"):
            yield "aedat31", path.name, after_line(data, b"#!END-HEADER")
        elif path.suffix == ".aedat":
            yield "aedat2", path.name, after_header(data, b"#")
        else:
            continue
        yield "detect", path.name, data


def main():
    out = pathlib.Path(sys.argv[1])
    for target, name, data in seeds():
        d = out / target
        d.mkdir(parents=True, exist_ok=True)
        (d / name).write_bytes(data[:LIMIT])
    (out / "npz").mkdir(parents=True, exist_ok=True)
    # A small real .npz (t, x, y, p as int64/uint16/uint16/bool), written by numpy's format.
    npz = DATA / "sample_events.npz"
    if npz.exists():
        (out / "npz" / npz.name).write_bytes(npz.read_bytes()[4:])
        (out / "detect" / npz.name).write_bytes(npz.read_bytes())
    # Dataset text files, 0xFF-separated as the dataset_text target splits them: a HARDVS
    # label file and labels.txt, a DVS128 Gesture trial list, labels CSV and mapping, and a
    # results line.
    (out / "dataset_text").mkdir(parents=True, exist_ok=True)
    parts = [
        b"clips/a 8 0\nclips/b.npz 8 1\n",
        b"triangle\ncircle\n",
        b"user01_fluorescent.aedat\n",
        b"class,startTime_usec,endTime_usec\n1,80048239,85092709\n2,89431170,95231007\n",
        b"action,label\nhand_clapping,1\nright_hand_wave,2\n",
        b'{"index":0,"id":"a","label":"triangle","known":true,"pairs":8,"events":0,"seconds":0.1}\n',
    ]
    (out / "dataset_text" / "seed").write_bytes(b"\xff".join(parts))


if __name__ == "__main__":
    main()
