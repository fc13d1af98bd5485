use std::collections::BTreeMap;
use std::io::Write;

use serde::Serialize;

use crate::events::{self, EventError, EventSource, Format, PacketData, StreamInfo};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// A file, tcp://HOST:PORT or unix:///PATH (default: the bundled sample recording).
    pub source: Option<String>,
    /// Read the input as this format instead of recognising it from its bytes: aedat4,
    /// aedat3.1, aedat2, evt2, evt3, dat, npz, atis-bin, text, csv, hdf5.
    #[arg(long)]
    pub input_format: Option<Format>,
    /// Print one JSON object instead of text.
    #[arg(long)]
    pub json: bool,
}

/// What `info` reports about one stream, after reading it to its end.
#[derive(Debug, Default, Serialize)]
pub struct StreamStats {
    pub packets: u64,
    pub elements: u64,
    pub first_t: Option<i64>,
    pub last_t: Option<i64>,
}

impl StreamStats {
    fn add(&mut self, n: usize, first: Option<i64>, last: Option<i64>) {
        self.packets += 1;
        self.elements += n as u64;
        if self.first_t.is_none() {
            self.first_t = first;
        }
        if last.is_some() {
            self.last_t = last;
        }
    }

    pub fn duration_us(&self) -> Option<i64> {
        Some(self.last_t? - self.first_t?)
    }
}

#[derive(Debug, Serialize)]
pub struct Report {
    pub source: String,
    pub format: Format,
    pub sensor_size: Option<(u16, u16)>,
    pub streams: Vec<StreamReport>,
    pub events: u64,
    pub first_t: Option<i64>,
    pub last_t: Option<i64>,
    pub duration_s: Option<f64>,
    pub event_rate_hz: Option<f64>,
    pub frames: u64,
}

#[derive(Debug, Serialize)]
pub struct StreamReport {
    #[serde(flatten)]
    pub info: StreamInfo,
    #[serde(flatten)]
    pub stats: StreamStats,
}

/// Reads a whole source and summarises it.
pub fn summarise(name: &str, mut source: Box<dyn EventSource>) -> Result<Report, EventError> {
    let mut stats: BTreeMap<u32, StreamStats> = BTreeMap::new();
    while let Some(packet) = source.next_packet()? {
        let s = stats.entry(packet.stream).or_default();
        match &packet.data {
            PacketData::Events(e) => s.add(e.len(), e.first().map(|e| e.t), e.last().map(|e| e.t)),
            PacketData::Frame(f) => s.add(1, Some(f.t), Some(f.t)),
            PacketData::Imu(v) => s.add(v.len(), v.first().map(|i| i.t), v.last().map(|i| i.t)),
            PacketData::Triggers(v) => s.add(v.len(), v.first().map(|i| i.t), v.last().map(|i| i.t)),
        }
    }
    let info = source.info().clone();
    let streams: Vec<StreamReport> = info
        .streams
        .into_iter()
        .map(|i| StreamReport { stats: stats.remove(&i.id).unwrap_or_default(), info: i })
        .collect();
    let first_events = streams.iter().find(|s| s.info.kind == events::StreamKind::Events);
    let frames = streams.iter().filter(|s| s.info.kind == events::StreamKind::Frames).map(|s| s.stats.elements).sum();
    let (events, first_t, last_t, duration) = match first_events {
        Some(s) => (s.stats.elements, s.stats.first_t, s.stats.last_t, s.stats.duration_us()),
        None => (0, None, None, None),
    };
    let duration_s = duration.map(|d| d as f64 / 1e6);
    Ok(Report {
        source: name.to_string(),
        format: info.format,
        sensor_size: first_events.and_then(|s| s.info.size),
        event_rate_hz: duration_s.filter(|d| *d > 0.0).map(|d| events as f64 / d),
        streams,
        events,
        first_t,
        last_t,
        duration_s,
        frames,
    })
}

pub fn run(args: Args) -> anyhow::Result<()> {
    let mut out = std::io::stdout().lock();
    let source = match &args.source {
        Some(s) => events::open_with(s, &events::OpenOptions { format: args.input_format, ..Default::default() })?,
        None => events::open_sample()?,
    };
    let name = source.input_name().to_string();
    let report = summarise(&name, source)?;
    if args.json {
        writeln!(out, "{}", serde_json::to_string(&report)?)?;
        return Ok(());
    }
    writeln!(out, "source:      {}", report.source)?;
    writeln!(out, "format:      {}", report.format.name())?;
    match report.sensor_size {
        Some((w, h)) => writeln!(out, "sensor:      {w}x{h}"),
        None => writeln!(out, "sensor:      (not stated)"),
    }?;
    writeln!(out, "events:      {}", report.events)?;
    if let (Some(a), Some(b)) = (report.first_t, report.last_t) {
        writeln!(out, "time:        {a} .. {b} µs")?;
    }
    if let Some(d) = report.duration_s {
        writeln!(out, "duration:    {d:.6} s")?;
    }
    if let Some(r) = report.event_rate_hz {
        writeln!(out, "event rate:  {r:.0} ev/s")?;
    }
    writeln!(out, "frames:      {}", report.frames)?;
    writeln!(out, "streams:")?;
    for s in &report.streams {
        let size = s.info.size.map(|(w, h)| format!(" {w}x{h}")).unwrap_or_default();
        writeln!(
            out,
            "  {:>3} {:<10} {:<6} {:<8} compression={}{}  packets={} elements={}",
            s.info.id,
            s.info.name,
            s.info.type_id,
            format!("{:?}", s.info.kind).to_lowercase(),
            s.info.compression,
            size,
            s.stats.packets,
            s.stats.elements
        )?;
    }
    Ok(())
}
