//! Events as text, one per line: `t x y p` with t in seconds as a decimal (the RPG event-camera
//! datasets' `events.txt`), or the CSV that `safed dump` and faery write (a `t,x,y,p` or
//! `t,x,y,on` header, then t in integer µs). Fields are separated by commas, spaces or tabs;
//! `#` lines and blank lines are skipped; p is 1 (ON), 0 or -1 (OFF).

use std::io::BufRead;

use super::{ByteInput, Event, EventError, EventSource, Format, Packet, PacketData, SourceInfo};

/// Bytes read at a time, at first and at most (doubling while reads fill the buffer); a packet
/// holds the events of one read.
const START_CHUNK: usize = 64 << 10;
const CHUNK: usize = 1 << 20;
/// Longest line accepted (a real event line is under 40 bytes).
const MAX_LINE: usize = 4096;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Unit {
    Seconds,
    Micros,
}

/// The CSV header, if `line` is one.
fn is_csv_header(line: &[u8]) -> bool {
    let fields: Vec<&[u8]> = line.split(|&b| b == b',').map(|f| f.trim_ascii()).collect();
    matches!(fields.as_slice(), [b"t", b"x", b"y", b"p" | b"on"])
}

/// Whether the first line of `head` is a CSV header, or its first line that is not a `#`
/// comment or blank is a `t x y p` event line.
pub fn looks_like_text(head: &[u8]) -> bool {
    let head = head.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(head);
    // The last piece may be a line cut by the end of `head`: only whole lines count.
    let Some(end) = memchr::memrchr(b'\n', head) else { return false };
    let mut lines = head[..end].split(|&b| b == b'\n').map(|l| l.strip_suffix(b"\r").unwrap_or(l)).peekable();
    if lines.peek().is_some_and(|l| is_csv_header(l)) {
        return true;
    }
    lines
        .map(|l| l.trim_ascii())
        .find(|l| !l.is_empty() && l[0] != b'#')
        .is_some_and(|l| parse_line(l, Unit::Seconds).is_ok())
}

/// Splits a line into its fields (commas, spaces, tabs).
fn fields(line: &[u8]) -> impl Iterator<Item = &[u8]> {
    line.split(|&b| b == b',' || b == b' ' || b == b'\t').filter(|f| !f.is_empty())
}

fn parse_line(line: &[u8], unit: Unit) -> Result<Event, String> {
    let mut f = fields(line);
    let (Some(t), Some(x), Some(y), Some(p), None) = (f.next(), f.next(), f.next(), f.next(), f.next()) else {
        return Err("expected 4 fields `t x y p`".into());
    };
    let t = match unit {
        Unit::Seconds => seconds_to_us(t),
        Unit::Micros => integer(t).ok_or(()),
    }
    .map_err(|()| format!("t {:?}: expected {}", String::from_utf8_lossy(t), unit_name(unit)))?;
    let coord = |v: &[u8], what: &str| {
        integer(v)
            .and_then(|n| u16::try_from(n).ok())
            .ok_or_else(|| format!("{what} {:?}: expected an integer in 0..=65535", String::from_utf8_lossy(v)))
    };
    let (x, y) = (coord(x, "x")?, coord(y, "y")?);
    let p = match p {
        b"1" => true,
        b"0" | b"-1" => false,
        other => return Err(format!("p {:?}: expected 1, 0 or -1", String::from_utf8_lossy(other))),
    };
    Ok(Event { t, x, y, p })
}

fn unit_name(unit: Unit) -> &'static str {
    match unit {
        Unit::Seconds => "seconds as a decimal",
        Unit::Micros => "an integer (µs)",
    }
}

/// A decimal integer, optionally signed, that fits an i64.
fn integer(v: &[u8]) -> Option<i64> {
    let (neg, digits) = match v.split_first() {
        Some((b'-', rest)) => (true, rest),
        _ => (false, v),
    };
    if digits.is_empty() || digits.len() > 18 || !digits.iter().all(u8::is_ascii_digit) {
        return None;
    }
    let n = digits.iter().fold(0i64, |n, &d| n * 10 + (d - b'0') as i64);
    Some(if neg { -n } else { n })
}

/// Seconds written as a decimal (`12.345678901`) to µs, rounded to nearest, exactly: the digits
/// are read as integers, never through a float. Exponent forms go through f64.
fn seconds_to_us(v: &[u8]) -> Result<i64, ()> {
    let (int, frac) = match memchr::memchr(b'.', v) {
        Some(dot) => (&v[..dot], &v[dot + 1..]),
        None => (v, &b""[..]),
    };
    let neg = int.first() == Some(&b'-');
    let whole = match int {
        b"" | b"-" if !frac.is_empty() => 0,
        _ => match integer(int) {
            Some(n) if n.unsigned_abs() < 1 << 40 => n.abs(),
            _ => return exponent_form(v),
        },
    };
    if !frac.iter().all(u8::is_ascii_digit) {
        return exponent_form(v);
    }
    let mut us = 0i64;
    for i in 0..6 {
        us = us * 10 + frac.get(i).map_or(0, |d| (d - b'0') as i64);
    }
    if frac.get(6).is_some_and(|&d| d >= b'5') {
        us += 1;
    }
    let total = whole * 1_000_000 + us;
    Ok(if neg { -total } else { total })
}

fn exponent_form(v: &[u8]) -> Result<i64, ()> {
    let s = std::str::from_utf8(v).map_err(|_| ())?;
    let secs: f64 = s.parse().map_err(|_| ())?;
    let us = (secs * 1e6).round();
    if us.is_finite() && us.abs() < 9e18 {
        Ok(us as i64)
    } else {
        Err(())
    }
}

pub struct TextSource<R> {
    input: ByteInput<R>,
    info: SourceInfo,
    unit: Unit,
    buf: Vec<u8>,
    /// Bytes of an unfinished line at the front of `buf`.
    carry: usize,
    /// 1-based number of the next line to parse, for messages.
    line: u64,
    done: bool,
}

impl<R: BufRead> TextSource<R> {
    pub fn open(mut reader: R, name: &str) -> Result<Self, EventError> {
        let head = reader.fill_buf().map_err(|err| EventError::Io { input: name.into(), offset: 0, err })?;
        let bom = if head.starts_with(b"\xEF\xBB\xBF") { 3 } else { 0 };
        let first = &head[bom..];
        let end = memchr::memchr(b'\n', first).unwrap_or(first.len());
        let csv = is_csv_header(first[..end].strip_suffix(b"\r").unwrap_or(&first[..end]));
        let header = (bom + end + 1).min(head.len());
        let mut input = ByteInput::new(reader, name);
        let (unit, format, line) = if csv {
            input.skip(header as u64, "the CSV header")?;
            (Unit::Micros, Format::Csv, 2)
        } else {
            input.skip(bom as u64, "the byte-order mark")?;
            (Unit::Seconds, Format::Text, 1)
        };
        let info = SourceInfo::single_event_stream(format, None, None);
        Ok(TextSource { input, info, unit, buf: vec![0; START_CHUNK], carry: 0, line, done: false })
    }
}

impl<R: BufRead + Send> TextSource<R> {
    /// Parses whole lines of `bytes` (which start at input offset `start`) into `out`.
    fn parse(&mut self, end: usize, start: u64, out: &mut Vec<Event>) -> Result<(), EventError> {
        let mut at = 0;
        while at < end {
            let stop = memchr::memchr(b'\n', &self.buf[at..end]).map_or(end, |i| at + i);
            let raw = &self.buf[at..stop];
            let line = raw.strip_suffix(b"\r").unwrap_or(raw).trim_ascii();
            if !line.is_empty() && line[0] != b'#' {
                let event = parse_line(line, self.unit).map_err(|what| {
                    self.input.place().malformed_at(start + at as u64, format!("line {}: {what}", self.line))
                })?;
                out.push(event);
            }
            self.line += 1;
            at = stop + 1;
        }
        Ok(())
    }
}

impl<R: BufRead + Send> EventSource for TextSource<R> {
    fn info(&self) -> &SourceInfo {
        &self.info
    }

    fn input_name(&self) -> &str {
        &self.input.place().input
    }

    fn next_packet(&mut self) -> Result<Option<Packet>, EventError> {
        if self.done {
            return Ok(None);
        }
        let carry = self.carry;
        let got = self.input.read_some(&mut self.buf[carry..])?;
        let have = carry + got;
        let start = self.input.offset() - have as u64;
        // Whole lines only; at the end of the input the last line needs no newline.
        let end = if got == 0 {
            self.done = true;
            have
        } else {
            match memchr::memrchr(b'\n', &self.buf[..have]) {
                Some(i) => i + 1,
                None if have >= MAX_LINE => {
                    return Err(self
                        .input
                        .place()
                        .malformed_at(start, format!("line {}: longer than {MAX_LINE} bytes", self.line)))
                }
                None => 0,
            }
        };
        let mut events = Vec::with_capacity(end / 16);
        self.parse(end, start, &mut events)?;
        self.buf.copy_within(end..have, 0);
        self.carry = have - end;
        if have == self.buf.len() && self.buf.len() < CHUNK {
            self.buf.resize(self.buf.len() * 2, 0);
        }
        if self.done && events.is_empty() {
            return Ok(None);
        }
        Ok(Some(Packet { stream: 0, data: PacketData::Events(events) }))
    }
}
