//! Event streams over UDP: `udp://ADDR:PORT?format=FORMAT&width=W&height=H`, bound locally and
//! fed by faery (`faery ... output udp HOST:PORT --format F`) or aestream's SPIF output.
//!
//! Datagrams carry no header, no sequence number and no sensor size (so width and height are
//! part of the address). The formats, little endian:
//! - `t64_x16_y16_on8` (faery's default): 13 bytes an event, u64 t (µs), u16 x, u16 y, u8 on.
//! - `t32_x16_y15_on1` (faery): 8 bytes, u32 t (the low 32 bits of µs), u16 x, u16 (y << 1 | on);
//!   t is unwrapped as faery does: a drop of more than 2^31 is a wrap, not a late datagram.
//! - `spif` (aestream): u32 words, bits 30-16 x, bit 15 on, bits 14-0 y; bit 31 clear: a u32
//!   timestamp (µs, unwrapped like t32) follows the word; set: no timestamp, and the event is
//!   stamped with its arrival (µs since the source was opened).
//!
//! As in faery's reader, a datagram whose first event is older than the last event kept is
//! dropped (UDP may reorder; windows need time to move forward); those are counted, as are the
//! datagrams the kernel dropped because safed did not read fast enough (SO_RXQ_OVFL).

use std::time::{Duration, Instant};

use super::udp_socket::{DropCountingSocket, Received};
use super::{Event, EventError, EventSource, Format, Packet, PacketData, SourceInfo};

/// The receive buffer asked for by default: ~1 s of a busy camera (10 Mev/s of 13-byte events
/// cost ~2.3x their size in kernel buffers); the kernel caps it at net.core.rmem_max unless
/// safed runs as root.
pub const DEFAULT_RECV_BUFFER: usize = 64 << 20;

/// A returned batch stops growing here, so the pipeline sees events every few milliseconds.
const BATCH_EVENTS: usize = 1 << 15;

/// How long one read waits before the source returns an empty packet (so that its reader can
/// look at its stop flag).
const POLL: Duration = Duration::from_millis(100);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UdpFormat {
    T64X16Y16On8,
    T32X16Y15On1,
    Spif,
}

impl UdpFormat {
    const ALL: [UdpFormat; 3] = [UdpFormat::T64X16Y16On8, UdpFormat::T32X16Y15On1, UdpFormat::Spif];

    pub fn name(self) -> &'static str {
        match self {
            UdpFormat::T64X16Y16On8 => "t64_x16_y16_on8",
            UdpFormat::T32X16Y15On1 => "t32_x16_y15_on1",
            UdpFormat::Spif => "spif",
        }
    }

    pub fn format(self) -> Format {
        match self {
            UdpFormat::T64X16Y16On8 => Format::UdpT64,
            UdpFormat::T32X16Y15On1 => Format::UdpT32,
            UdpFormat::Spif => Format::Spif,
        }
    }
}

/// A parsed `udp://` source.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UdpEndpoint {
    /// HOST:PORT to bind.
    pub bind: String,
    pub format: UdpFormat,
    pub width: u16,
    pub height: u16,
    /// SO_RCVBUF asked for, bytes.
    pub recv_buffer: usize,
}

impl UdpEndpoint {
    /// `None` when `source` is not a `udp://` address; an error that names the part at fault
    /// when it is one but is incomplete or wrong.
    pub fn parse(source: &str) -> Option<Result<UdpEndpoint, EventError>> {
        let rest = source.strip_prefix("udp://")?;
        Some(Self::parse_rest(rest).map_err(|what| EventError::Unsupported {
            input: source.to_string(),
            what: format!("{what} (expected udp://ADDR:PORT?format=FORMAT&width=W&height=H)"),
        }))
    }

    fn parse_rest(rest: &str) -> Result<UdpEndpoint, String> {
        let (bind, query) = rest.split_once('?').unwrap_or((rest, ""));
        let bind = bind.trim_end_matches('/');
        if bind.rsplit_once(':').is_none_or(|(_, port)| port.parse::<u16>().is_err()) {
            return Err(format!("{bind:?} is not ADDR:PORT"));
        }
        let (mut format, mut width, mut height) = (UdpFormat::T64X16Y16On8, None, None);
        let mut recv_buffer = DEFAULT_RECV_BUFFER;
        for pair in query.split('&').filter(|p| !p.is_empty()) {
            let (key, value) = pair.split_once('=').ok_or_else(|| format!("{pair:?} is not KEY=VALUE"))?;
            let number = || value.parse::<u64>().map_err(|_| format!("{key}={value:?} is not a whole number"));
            match key {
                "format" => {
                    format = UdpFormat::ALL.into_iter().find(|f| f.name() == value).ok_or_else(|| {
                        let names: Vec<_> = UdpFormat::ALL.iter().map(|f| f.name()).collect();
                        format!("unknown format {value:?}: one of {}", names.join(", "))
                    })?
                }
                "width" => width = Some(number()?),
                "height" => height = Some(number()?),
                "buffer" => recv_buffer = number()?.min(1 << 30) as usize,
                _ => return Err(format!("unknown parameter {key:?} (format, width, height, buffer)")),
            }
        }
        let size = |v: Option<u64>, what: &str| match v {
            Some(v @ 1..=32767) => Ok(v as u16),
            Some(v) => Err(format!("{what}={v} is outside 1..32767")),
            None => Err(format!("{what} is missing: UDP carries no sensor size")),
        };
        Ok(UdpEndpoint {
            bind: bind.to_string(),
            format,
            width: size(width, "width")?,
            height: size(height, "height")?,
            recv_buffer,
        })
    }
}

/// What a UDP source counted so far.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct UdpCounts {
    pub datagrams: u64,
    pub events: u64,
    /// Dropped by the kernel: the receive buffer was full (SO_RXQ_OVFL).
    pub kernel_dropped: u64,
    /// Dropped because they went back in time (reordered or late).
    pub reordered: u64,
    /// Datagrams with bytes that are not whole events, or cut by the read buffer.
    pub malformed: u64,
    /// Events outside the sensor, left out.
    pub outside: u64,
}

/// Turns datagrams into events, keeping the time state across them.
#[derive(Debug, Clone)]
pub struct DatagramDecoder {
    format: UdpFormat,
    width: u16,
    height: u16,
    /// The last kept event's time (faery's `previous_t`).
    previous_t: i64,
    /// 32-bit time formats: what the wraps so far add.
    wraps: i64,
    counts: UdpCounts,
}

const WRAP: i64 = 1 << 32;

impl DatagramDecoder {
    pub fn new(format: UdpFormat, width: u16, height: u16) -> Self {
        DatagramDecoder { format, width, height, previous_t: 0, wraps: 0, counts: UdpCounts::default() }
    }

    pub fn counts(&self) -> UdpCounts {
        self.counts
    }

    /// Appends the datagram's events to `out`; `arrived_us` stamps SPIF events that carry no
    /// time. A datagram that goes back in time adds nothing (counted).
    pub fn decode(&mut self, datagram: &[u8], arrived_us: i64, out: &mut Vec<Event>) {
        self.counts.datagrams += 1;
        let (start, wraps) = (out.len(), self.wraps);
        let whole = match self.format {
            UdpFormat::T64X16Y16On8 => self.t64(datagram, out),
            UdpFormat::T32X16Y15On1 => self.t32(datagram, out),
            UdpFormat::Spif => self.spif(datagram, arrived_us, out),
        };
        if !whole {
            self.counts.malformed += 1;
        }
        let Some(first) = out.get(start).map(|e| e.t) else { return };
        if first < self.previous_t {
            // A dropped datagram leaves no wrap behind either.
            self.counts.reordered += 1;
            self.wraps = wraps;
            out.truncate(start);
            return;
        }
        self.counts.outside += super::keep_inside(out, start, self.width, self.height);
        let kept = out.len();
        if kept > start {
            self.previous_t = out[kept - 1].t;
        }
        self.counts.events += (kept - start) as u64;
    }

    fn t64(&mut self, d: &[u8], out: &mut Vec<Event>) -> bool {
        let chunks = d.chunks_exact(13);
        let whole = chunks.remainder().is_empty();
        for c in chunks {
            let t = u64::from_le_bytes([c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7]]);
            let Ok(t) = i64::try_from(t) else {
                self.counts.outside += 1;
                continue;
            };
            out.push(Event {
                t,
                x: u16::from_le_bytes([c[8], c[9]]),
                y: u16::from_le_bytes([c[10], c[11]]),
                p: c[12] != 0,
            });
        }
        whole
    }

    /// A 32-bit time, unwrapped against the last time seen (faery: a drop of more than 2^31 is
    /// a wrap).
    fn unwrap32(&mut self, raw: u32, last: i64) -> i64 {
        let mut t = raw as i64 + self.wraps;
        if last - t > (1 << 31) {
            self.wraps += WRAP;
            t += WRAP;
        }
        t
    }

    fn t32(&mut self, d: &[u8], out: &mut Vec<Event>) -> bool {
        let chunks = d.chunks_exact(8);
        let whole = chunks.remainder().is_empty();
        let mut last = self.previous_t;
        for c in chunks {
            let t = self.unwrap32(u32::from_le_bytes([c[0], c[1], c[2], c[3]]), last);
            last = t;
            let y_on = u16::from_le_bytes([c[6], c[7]]);
            out.push(Event { t, x: u16::from_le_bytes([c[4], c[5]]), y: y_on >> 1, p: y_on & 1 == 1 });
        }
        whole
    }

    fn spif(&mut self, d: &[u8], arrived_us: i64, out: &mut Vec<Event>) -> bool {
        let mut words = d.chunks_exact(4).map(|w| u32::from_le_bytes([w[0], w[1], w[2], w[3]]));
        let mut whole = d.len().is_multiple_of(4);
        let mut last = self.previous_t;
        while let Some(word) = words.next() {
            let t = if word & (1 << 31) != 0 {
                arrived_us
            } else if let Some(raw) = words.next() {
                let t = self.unwrap32(raw, last);
                last = t;
                t
            } else {
                whole = false;
                break;
            };
            let (x, y) = (((word >> 16) & 0x7FFF) as u16, (word & 0x7FFF) as u16);
            out.push(Event { t, x, y, p: word & 0x8000 != 0 });
        }
        whole
    }
}

/// A bound UDP socket decoding one format.
pub struct UdpSource {
    name: String,
    info: SourceInfo,
    socket: DropCountingSocket,
    decoder: DatagramDecoder,
    opened: Instant,
    buf: Vec<u8>,
}

impl UdpSource {
    pub fn open(source: &str, endpoint: &UdpEndpoint) -> Result<UdpSource, EventError> {
        let io = |err| EventError::Io { input: source.to_string(), offset: 0, err };
        let socket = DropCountingSocket::bind(&endpoint.bind, endpoint.recv_buffer, POLL).map_err(io)?;
        if socket.recv_buffer() < endpoint.recv_buffer / 2 {
            tracing::warn!(
                "{source}: the kernel gave a {} KiB receive buffer ({} KiB asked): raise net.core.rmem_max \
                 (sysctl -w net.core.rmem_max={}) or events will be dropped at high rates",
                socket.recv_buffer() >> 10,
                endpoint.recv_buffer >> 10,
                endpoint.recv_buffer
            );
        }
        let size = Some((endpoint.width, endpoint.height));
        Ok(UdpSource {
            name: source.to_string(),
            info: SourceInfo::single_event_stream(
                endpoint.format.format(),
                size,
                Some(format!("udp {}", endpoint.bind)),
            ),
            socket,
            decoder: DatagramDecoder::new(endpoint.format, endpoint.width, endpoint.height),
            opened: Instant::now(),
            buf: vec![0; 1 << 16],
        })
    }

    /// The address the socket is bound to (the port, when 0 was asked for).
    pub fn local_addr(&self) -> std::io::Result<std::net::SocketAddr> {
        self.socket.local_addr()
    }

    pub fn counts(&self) -> UdpCounts {
        UdpCounts { kernel_dropped: self.socket.kernel_dropped(), ..self.decoder.counts() }
    }
}

impl EventSource for UdpSource {
    fn info(&self) -> &SourceInfo {
        &self.info
    }

    fn input_name(&self) -> &str {
        &self.name
    }

    /// Blocks up to 100 ms for the first datagram, then takes what else is queued without
    /// waiting; nothing in time gives an empty packet.
    fn next_packet(&mut self) -> Result<Option<Packet>, EventError> {
        let mut events = Vec::new();
        let mut wait = true;
        while events.len() < BATCH_EVENTS {
            let received = self.socket.recv(&mut self.buf, wait).map_err(|err| EventError::Io {
                input: self.name.clone(),
                offset: self.decoder.counts().datagrams,
                err,
            })?;
            let (len, truncated) = match received {
                Received::Datagram { len, truncated } => (len, truncated),
                Received::Nothing => break,
            };
            let arrived = self.opened.elapsed().as_micros() as i64;
            self.decoder.decode(&self.buf[..len], arrived, &mut events);
            if truncated {
                self.decoder.counts.malformed += 1;
            }
            wait = false;
        }
        Ok(Some(Packet { stream: 0, data: PacketData::Events(events) }))
    }

    fn dropped(&self) -> u64 {
        let c = self.counts();
        c.kernel_dropped + c.reordered
    }

    fn summary(&self) -> Option<String> {
        let c = self.counts();
        Some(format!(
            "{} datagrams, {} events; dropped: {} by the kernel (receive buffer full), {} out of order; \
             {} malformed datagrams, {} events outside the sensor",
            c.datagrams, c.events, c.kernel_dropped, c.reordered, c.malformed, c.outside
        ))
    }
}

/// For the fuzz target: decodes `bytes` as datagrams of each format (the first two bytes say
/// where datagrams end), looking for panics and overflows.
#[doc(hidden)]
pub fn fuzz_datagrams(bytes: &[u8]) {
    let Some((&[cut, size], rest)) = bytes.split_first_chunk::<2>() else { return };
    for format in UdpFormat::ALL {
        let mut d = DatagramDecoder::new(format, size as u16 + 1, 256);
        let mut out = Vec::new();
        for (i, datagram) in rest.chunks(cut as usize + 1).enumerate() {
            d.decode(datagram, i as i64 * 1000, &mut out);
        }
        assert_eq!(d.counts().events as usize, out.len());
        assert!(out.iter().all(|e| e.x <= size as u16 && e.y < 256), "an event outside the sensor was kept");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t64(events: &[(u64, u16, u16, u8)]) -> Vec<u8> {
        let mut d = Vec::new();
        for &(t, x, y, on) in events {
            d.extend(t.to_le_bytes());
            d.extend(x.to_le_bytes());
            d.extend(y.to_le_bytes());
            d.push(on);
        }
        d
    }

    fn t32(events: &[(u32, u16, u16, bool)]) -> Vec<u8> {
        let mut d = Vec::new();
        for &(t, x, y, on) in events {
            d.extend(t.to_le_bytes());
            d.extend(x.to_le_bytes());
            d.extend(((y << 1) | on as u16).to_le_bytes());
        }
        d
    }

    #[test]
    fn parses_the_address_and_names_what_is_wrong() {
        let e =
            UdpEndpoint::parse("udp://127.0.0.1:3333?format=t32_x16_y15_on1&width=1280&height=720").unwrap().unwrap();
        assert_eq!(
            (e.bind.as_str(), e.format, e.width, e.height),
            ("127.0.0.1:3333", UdpFormat::T32X16Y15On1, 1280, 720)
        );
        assert!(UdpEndpoint::parse("tcp://x:1").is_none());
        let err = |s: &str| UdpEndpoint::parse(s).unwrap().unwrap_err().to_string();
        assert!(
            err("udp://0.0.0.0:3333?width=10").contains("height is missing"),
            "{}",
            err("udp://0.0.0.0:3333?width=10")
        );
        assert!(err("udp://0.0.0.0:3333?format=evt9&width=1&height=1").contains("unknown format \"evt9\""));
        assert!(err("udp://0.0.0.0?width=1&height=1").contains("not ADDR:PORT"));
        assert!(err("udp://0.0.0.0:1?width=1&height=1&colour=red").contains("unknown parameter \"colour\""));
    }

    #[test]
    fn t64_keeps_events_and_drops_a_datagram_from_the_past_as_faery_does() {
        let mut d = DatagramDecoder::new(UdpFormat::T64X16Y16On8, 640, 480);
        let mut out = Vec::new();
        d.decode(&t64(&[(10, 1, 2, 1), (20, 3, 4, 0)]), 0, &mut out);
        d.decode(&t64(&[(15, 5, 6, 1)]), 0, &mut out);
        d.decode(&t64(&[(20, 7, 8, 0), (30, 700, 8, 0)]), 0, &mut out);
        let got: Vec<_> = out.iter().map(|e| (e.t, e.x, e.y, e.p)).collect();
        assert_eq!(got, [(10, 1, 2, true), (20, 3, 4, false), (20, 7, 8, false)]);
        let c = d.counts();
        assert_eq!((c.datagrams, c.events, c.reordered, c.outside, c.malformed), (3, 3, 1, 1, 0));
        d.decode(&[0; 14], 0, &mut out);
        assert_eq!(d.counts().malformed, 1, "a byte past the last whole event");
    }

    #[test]
    fn t32_unwraps_its_time_within_and_across_datagrams() {
        let mut d = DatagramDecoder::new(UdpFormat::T32X16Y15On1, 640, 480);
        let mut out = Vec::new();
        d.decode(&t32(&[(u32::MAX - 5, 1, 2, true), (3, 1, 479, false)]), 0, &mut out);
        d.decode(&t32(&[(9, 2, 3, true)]), 0, &mut out);
        let t: Vec<_> = out.iter().map(|e| e.t).collect();
        assert_eq!(t, [u32::MAX as i64 - 5, WRAP + 3, WRAP + 9]);
        assert_eq!((out[1].y, out[1].p), (479, false));
        // A late datagram (back by less than 2^31) is dropped, not taken for a wrap.
        d.decode(&t32(&[(5, 2, 3, true)]), 0, &mut out);
        assert_eq!((out.len(), d.counts().reordered), (3, 1));
    }

    #[test]
    fn spif_reads_words_with_and_without_timestamps() {
        let word = |x: u32, y: u32, on: bool, stamped: bool| {
            (if stamped { 0 } else { 1 << 31 }) | (x << 16) | if on { 0x8000 } else { 0 } | y
        };
        let mut bytes = Vec::new();
        for w in [word(345, 259, true, true), 77, word(0, 1, false, true), 78] {
            bytes.extend(w.to_le_bytes());
        }
        let mut d = DatagramDecoder::new(UdpFormat::Spif, 346, 260);
        let mut out = Vec::new();
        d.decode(&bytes, 5, &mut out);
        d.decode(&word(2, 3, true, false).to_le_bytes(), 900, &mut out);
        let got: Vec<_> = out.iter().map(|e| (e.t, e.x, e.y, e.p)).collect();
        assert_eq!(got, [(77, 345, 259, true), (78, 0, 1, false), (900, 2, 3, true)]);
        d.decode(&word(2, 3, true, true).to_le_bytes(), 900, &mut out);
        assert_eq!(d.counts().malformed, 1, "a stamped word without its timestamp");
    }
}
