"""A ROS 2 peer without ROS: Eclipse Cyclone DDS (PyPI `cyclonedds`), speaking the ROS 2 wire
format (topic rt/NAME, type pkg::msg::dds_::T_, plain CDR), for tests/ros2.rs. Loopback only:
run it with CYCLONEDDS_URI pointing at tests/peers/cyclonedds-loopback.xml.

  ros2_peer.py publish-evt3 FILE --topic T --domain D [--speed S] [--start-seq N] [--width W --height H]
      # a RAW file's EVT 3.0 words as metavision_driver publishes them: ~1 ms of sensor time a
      # packet, header stamped with the wall clock, at recorded pace (speed 0: as fast as it goes)
  ros2_peer.py publish-libcaer-cmp FILE --topic T --domain D --expected CSV
      # a file's events (as faery reads them) in libcaer_cmp packets, as event_camera_codecs
      # defines them; writes the events as safed must decode them (µs) to CSV
  ros2_peer.py publish-davis FILE --events-topic T --image-topic T --domain D [--speed S]
      # a DV recording's events (libcaer_cmp) and frames (mono8 Images), stamped in ROS time
  ros2_peer.py publish-hostile --topic T --domain D
      # valid evt3 packets between an unknown encoding, a cut word, another size, a seq jump,
      # a 100 MB packet
  ros2_peer.py listen-images --topic T --domain D --count N --timeout S
      # prints each sensor_msgs/Image's size and encoding as a JSON line
  ros2_peer.py listen --topic T --domain D --count N --timeout S
      # prints each vision_msgs/Classification as a JSON line, with its latency from the
      # publication of the newest packet it used (its stamp) to its reception
"""

import argparse
import json
import sys
import time
from dataclasses import dataclass

from cyclonedds.core import Policy, Qos
from cyclonedds.domain import DomainParticipant
from cyclonedds.idl import IdlStruct
from cyclonedds.idl.types import float64, int32, sequence, uint8, uint32, uint64
from cyclonedds.pub import DataWriter
from cyclonedds.sub import DataReader
from cyclonedds.topic import Topic
from cyclonedds.util import duration


@dataclass
class Time(IdlStruct, typename="builtin_interfaces::msg::dds_::Time_"):
    sec: int32
    nanosec: uint32


@dataclass
class Header(IdlStruct, typename="std_msgs::msg::dds_::Header_"):
    stamp: Time
    frame_id: str


@dataclass
class EventPacket(IdlStruct, typename="event_camera_msgs::msg::dds_::EventPacket_"):
    header: Header
    height: uint32
    width: uint32
    seq: uint64
    time_base: uint64
    encoding: str
    is_bigendian: bool
    events: sequence[uint8]


@dataclass
class Image(IdlStruct, typename="sensor_msgs::msg::dds_::Image_"):
    header: Header
    height: uint32
    width: uint32
    encoding: str
    is_bigendian: uint8
    step: uint32
    data: sequence[uint8]


@dataclass
class ObjectHypothesis(IdlStruct, typename="vision_msgs::msg::dds_::ObjectHypothesis_"):
    class_id: str
    score: float64


@dataclass
class Classification(IdlStruct, typename="vision_msgs::msg::dds_::Classification_"):
    header: Header
    results: sequence[ObjectHypothesis]


def ros_topic(name):
    return "rt" + (name if name.startswith("/") else "/" + name)


def now_stamp():
    ns = time.time_ns()
    return Time(ns // 1_000_000_000, ns % 1_000_000_000)


def writer(domain, topic, kind, reliable=False):
    dp = DomainParticipant(domain)
    policies = [Policy.DataRepresentation(use_cdrv0_representation=True), Policy.History.KeepLast(1000)]
    if reliable:
        policies.append(Policy.Reliability.Reliable(duration(seconds=1)))
    else:
        policies.append(Policy.Reliability.BestEffort)
    qos = Qos(*policies)
    t = Topic(dp, ros_topic(topic), kind, qos=qos)
    return dp, DataWriter(dp, t, qos=qos)


def wait_for_reader(w, timeout=30.0):
    until = time.time() + timeout
    while w.get_matched_subscriptions() == [] and time.time() < until:
        time.sleep(0.05)
    if not w.get_matched_subscriptions():
        sys.exit("no subscriber matched")
    time.sleep(0.3)


def raw_words(path):
    data = open(path, "rb").read()
    at = 0
    while data[at : at + 1] == b"%":
        at = data.index(b"\n", at) + 1
    body = data[at:]
    return body[: len(body) & ~1]


def evt3_packets(body, packet_us=1000):
    """Cuts EVT 3.0 words into packets of ~packet_us of sensor time, at word boundaries; yields
    (sensor time of the packet's end in us, bytes)."""
    high, t, start, cut_at = None, 0, 0, None
    n = len(body) // 2
    for i in range(n):
        w = body[2 * i] | (body[2 * i + 1] << 8)
        kind = w >> 12
        if kind == 0x8:
            high = w & 0xFFF
            t = high << 12 | (t & 0xFFF)
        elif kind == 0x6 and high is not None:
            t = (high << 12) | (w & 0xFFF)
            if cut_at is None:
                cut_at = t + packet_us
            elif t >= cut_at:
                yield t, body[2 * start : 2 * i]
                start, cut_at = i, t + packet_us
    yield t, body[2 * start :]


def publish_evt3(args):
    body = raw_words(args.file)
    packets = list(evt3_packets(body))
    if args.seconds:
        first = packets[0][0]
        packets = [(t, c) for t, c in packets if t - first <= args.seconds * 1e6]
    if args.cut_file:
        # What was published, as a RAW file of its own (for `safed replay`).
        data = open(args.file, "rb").read()
        at = 0
        while data[at : at + 1] == b"%":
            at = data.index(b"\n", at) + 1
        with open(args.cut_file, "wb") as f:
            f.write(data[:at] + b"".join(c for _, c in packets))
    dp, w = writer(args.domain, args.topic, EventPacket)
    wait_for_reader(w)
    time.sleep(args.delay)
    seq = args.start_seq
    wall0, first = time.time(), None
    for t, chunk in packets:
        if args.speed > 0:
            first = t if first is None else first
            due = wall0 + (t - first) / 1e6 / args.speed
            delay = due - time.time()
            if delay > 0:
                time.sleep(delay)
        w.write(EventPacket(Header(now_stamp(), "cam"), args.height, args.width, seq, 0, "evt3", False, chunk))
        seq += 1
    time.sleep(1.0)


def cmp_words(events, time_base_us):
    """libcaer_cmp words for events sharing one x run where it can: TIME_HIGH/TIME_LOW relative to
    the packet's time base, ADDR_X, then ADDR_Y (y, polarity) per event."""
    out, last_high, last_low, last_x = [], None, None, None
    for t, x, y, on in events:
        dt = t - time_base_us
        high, low = (dt >> 12) & 0xFFF, dt & 0xFFF
        if high != last_high:
            out.append(0x0000 | high)
            last_high = high
            last_low = None
        if low != last_low:
            out.append(0x1000 | low)
            last_low = low
        if x != last_x:
            out.append(0x2000 | (x & 0x7FF))
            last_x = x
        out.append(0x3000 | (on << 11) | (y & 0x7FF))
    return b"".join(v.to_bytes(2, "little") for v in out)


def publish_libcaer_cmp(args):
    import faery

    stream = faery.events_stream_from_file(args.file)
    width, height = stream.dimensions()
    events = []
    for chunk in stream:
        events.extend(zip(chunk["t"].tolist(), chunk["x"].tolist(), chunk["y"].tolist(), chunk["on"].tolist()))
    dp, w = writer(args.domain, args.topic, EventPacket)
    wait_for_reader(w)
    expected = open(args.expected, "w")
    expected.write("t,x,y,p\n")
    # Host time of the stream's start, ns, as libcaer_driver's time base.
    base_ns = 1_700_000_000_000_000_000 + 123
    seq, i = 0, 0
    while i < len(events):
        t0 = events[i][0]
        j = i
        while j < len(events) and events[j][0] - t0 < 1000 and j - i < 4000:
            j += 1
        packet = events[i:j]
        time_base_ns = base_ns + t0 * 1000
        payload = cmp_words(packet, t0)
        for t, x, y, on in packet:
            expected.write(f"{(time_base_ns + (t - t0) * 1000) // 1000},{x},{y},{int(on)}\n")
        w.write(EventPacket(Header(now_stamp(), "davis"), height, width, seq, time_base_ns, "libcaer_cmp", False, payload))
        seq += 1
        i = j
        time.sleep(0.001)
    expected.close()
    time.sleep(1.0)


def publish_davis(args):
    """A DV recording with frames as libcaer_driver and a camera driver publish it: events as
    libcaer_cmp packets of 1 ms (time_base and header stamps in ROS time = the recording's own
    µs since the epoch, in ns), frames as mono8 Images stamped with their timestamps; in time
    order, at `speed` times the recorded pace."""
    import dv_processing as dv

    reader = dv.io.MonoCameraRecording(args.file)
    width, height = reader.getEventResolution()
    events = []
    while (batch := reader.getNextEventBatch()) is not None:
        events.extend(zip(batch.timestamps().tolist(), batch.coordinates()[:, 0].tolist(),
                          batch.coordinates()[:, 1].tolist(), batch.polarities().tolist()))
    frames = []
    while (frame := reader.getNextFrame()) is not None:
        frames.append((frame.timestamp, frame.image.reshape(frame.image.shape[0], frame.image.shape[1])))
    dp = DomainParticipant(args.domain)
    qos = Qos(Policy.DataRepresentation(use_cdrv0_representation=True), Policy.History.KeepLast(1000),
              Policy.Reliability.Reliable(duration(seconds=1)))
    ev_w = DataWriter(dp, Topic(dp, ros_topic(args.events_topic), EventPacket, qos=qos), qos=qos)
    im_w = DataWriter(dp, Topic(dp, ros_topic(args.image_topic), Image, qos=qos), qos=qos)
    wait_for_reader(ev_w)
    wait_for_reader(im_w)
    time.sleep(args.delay)
    stamp = lambda us: Time(us // 1_000_000, (us % 1_000_000) * 1000)
    messages = []
    i = 0
    while i < len(events):
        t0 = events[i][0]
        j = i
        while j < len(events) and events[j][0] - t0 < 1000:
            j += 1
        packet = events[i:j]
        last = packet[-1][0]
        msg = EventPacket(Header(stamp(last), "davis"), height, width, len(messages), t0 * 1000, "libcaer_cmp", False,
                          cmp_words(packet, t0))
        messages.append((t0, 0, msg))
        i = j
    for t, image in frames:
        h, w = image.shape
        msg = Image(Header(stamp(t), "davis"), h, w, "mono8", 0, w, image.tobytes())
        messages.append((t, 1, msg))
    messages.sort(key=lambda m: (m[0], m[1]))
    seq = 0
    wall0, first = time.time(), messages[0][0]
    for t, kind, msg in messages:
        due = wall0 + (t - first) / 1e6 / args.speed
        if due > time.time():
            time.sleep(due - time.time())
        if kind == 0:
            msg.seq = seq
            seq += 1
            ev_w.write(msg)
        else:
            im_w.write(msg)
    time.sleep(1.0)


def publish_hostile(args):
    dp, w = writer(args.domain, args.topic, EventPacket)
    wait_for_reader(w)

    def words(*ws):
        return b"".join(v.to_bytes(2, "little") for v in ws)

    def send(seq, payload, encoding="evt3", width=640, height=480):
        w.write(EventPacket(Header(now_stamp(), "cam"), height, width, seq, 0, encoding, False, payload))
        time.sleep(0.05)

    # TIME_HIGH 1, then one event per packet: y = seq, x = 10 (ON).
    send(0, words(0x8001, 0x6000, 0x0000, 0x280A))
    send(1, words(0x6001, 0x0001, 0x280A), encoding="mono")  # unknown encoding
    send(2, words(0x6002, 0x0002, 0x280A) + b"\x01")  # a cut word: its event still counts
    send(3, words(0x6003, 0x0003, 0x280A), width=1280)  # another sensor size
    send(10, words(0x6004, 0x0004, 0x280A))  # 6 packets lost
    send(11, bytes(100 << 20))  # 100 MB
    time.sleep(2.0)
    send(12, words(0x6005, 0x0005, 0x280A))
    time.sleep(2.0)


def listen_images(args):
    dp = DomainParticipant(args.domain)
    qos = Qos(
        Policy.DataRepresentation(use_cdrv0_representation=True),
        Policy.Reliability.Reliable(duration(seconds=1)),
        Policy.History.KeepLast(10),
    )
    r = DataReader(dp, Topic(dp, ros_topic(args.topic), Image, qos=qos), qos=qos)
    print("listening", flush=True)
    got, until = 0, time.time() + args.timeout
    while got < args.count and time.time() < until:
        for m in r.take(N=10):
            line = {"width": m.width, "height": m.height, "encoding": m.encoding, "step": m.step, "len": len(m.data)}
            line["frame_id"] = m.header.frame_id
            print(json.dumps(line), flush=True)
            got += 1
        time.sleep(0.01)


def listen(args):
    dp = DomainParticipant(args.domain)
    qos = Qos(
        Policy.DataRepresentation(use_cdrv0_representation=True),
        Policy.Reliability.Reliable(duration(seconds=1)),
        Policy.History.KeepLast(1000),
    )
    t = Topic(dp, ros_topic(args.topic), Classification, qos=qos)
    r = DataReader(dp, t, qos=qos)
    print("listening", flush=True)
    got, until = 0, time.time() + args.timeout
    while got < args.count and time.time() < until:
        for c in r.take(N=100):
            received = time.time_ns()
            stamp = c.header.stamp.sec * 1_000_000_000 + c.header.stamp.nanosec
            results = [{"class_id": h.class_id, "score": h.score} for h in c.results]
            line = {"stamp_ns": stamp, "frame_id": c.header.frame_id, "results": results}
            # The stamp is the newest input's publication time: the end-to-end latency.
            line["latency_ms"] = (received - stamp) / 1e6
            print(json.dumps(line), flush=True)
            got += 1
        time.sleep(0.01)


def main():
    parser = argparse.ArgumentParser()
    sub = parser.add_subparsers(dest="cmd", required=True)
    for name in ("publish-evt3", "publish-libcaer-cmp", "publish-davis", "publish-hostile", "listen", "listen-images"):
        p = sub.add_parser(name)
        if name.startswith("publish-") and name != "publish-hostile":
            p.add_argument("file")
        if name == "publish-davis":
            p.add_argument("--events-topic", required=True)
            p.add_argument("--image-topic", required=True)
            p.add_argument("--speed", type=float, default=0.25)
            p.add_argument("--delay", type=float, default=3.0)
        else:
            p.add_argument("--topic", required=True)
        p.add_argument("--domain", type=int, required=True)
        if name == "publish-evt3":
            p.add_argument("--speed", type=float, default=1.0)
            p.add_argument("--seconds", type=float, default=0.0, help="only the first SECONDS of sensor time")
            p.add_argument("--cut-file", help="write what was published as a RAW file here")
            p.add_argument("--delay", type=float, default=0.0, help="seconds between a subscriber and the first packet")
            p.add_argument("--start-seq", type=int, default=0)
            p.add_argument("--width", type=int, default=346)
            p.add_argument("--height", type=int, default=260)
        if name == "publish-libcaer-cmp":
            p.add_argument("--expected", required=True)
        if name.startswith("listen"):
            p.add_argument("--count", type=int, required=True)
            p.add_argument("--timeout", type=float, default=60.0)
    args = parser.parse_args()
    {
        "publish-evt3": publish_evt3,
        "publish-libcaer-cmp": publish_libcaer_cmp,
        "publish-hostile": publish_hostile,
        "publish-davis": publish_davis,
        "listen": listen,
        "listen-images": listen_images,
    }[args.cmd](args)


if __name__ == "__main__":
    main()
