//! `safed convert IN OUT`: one event stream (and the frames, into AEDAT4) from any format safed
//! reads to AEDAT4, EVT 2.0 / 3.0, DAT, npz, CSV or HDF5, a packet at a time.

use std::io::IsTerminal;

use anyhow::{bail, Context};

use crate::events::write::{self, Target, WRITABLE};
use crate::events::{self, Event, Format, PacketData, StreamKind, StreamSelector};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The input: any file safed reads, or tcp://HOST:PORT / unix:///PATH.
    pub input: String,
    /// The output file.
    pub output: String,
    /// Output format: aedat4, evt2, evt3, dat, npz, csv, hdf5 (default: from OUTPUT's
    /// extension; `.raw` is EVT 3.0).
    #[arg(long)]
    pub to: Option<Format>,
    /// Event stream to convert, by id or name (default: the first event stream).
    #[arg(long)]
    pub stream: Option<StreamSelector>,
    /// Only events with A <= t < B (µs, in the input's time); either end may be left out.
    #[arg(long, value_name = "A..B")]
    pub time_range: Option<TimeRange>,
    /// Shift times so that the first converted event is at 0 (RAW has no time origin).
    #[arg(long)]
    pub zero_time: bool,
    /// Sensor size, where the input does not state it and the output needs it.
    #[arg(long, value_name = "WIDTHxHEIGHT", value_parser = parse_size)]
    pub size: Option<(u16, u16)>,
    /// Read the input as this format instead of recognising it from its bytes.
    #[arg(long)]
    pub input_format: Option<Format>,
}

#[derive(Debug, Clone, Copy)]
pub struct TimeRange {
    from: i64,
    to: i64,
}

impl std::str::FromStr for TimeRange {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let (a, b) =
            s.split_once("..").ok_or_else(|| format!("{s:?}: expected A..B (µs), e.g. 1000..5000000 or 1000.."))?;
        let end = |v: &str, open: i64| {
            if v.is_empty() {
                Ok(open)
            } else {
                v.parse::<i64>().map_err(|_| format!("{v:?}: expected a time in µs"))
            }
        };
        let range = TimeRange { from: end(a, i64::MIN)?, to: end(b, i64::MAX)? };
        if range.from >= range.to {
            return Err(format!("{s:?}: the range is empty"));
        }
        Ok(range)
    }
}

fn parse_size(s: &str) -> Result<(u16, u16), String> {
    let bad = || format!("{s:?}: expected WIDTHxHEIGHT, e.g. 346x260");
    let (w, h) = s.split_once('x').ok_or_else(bad)?;
    Ok((w.parse().map_err(|_| bad())?, h.parse().map_err(|_| bad())?))
}

pub fn run(args: Args) -> anyhow::Result<()> {
    let format = match args.to.or_else(|| write::format_for(&args.output)) {
        Some(f) if WRITABLE.contains(&f) => f,
        Some(f) => bail!("{} is read, not written: --to aedat4, evt2, evt3, dat, npz, csv or hdf5", f.name()),
        None => bail!("{}: no format from the extension: give --to aedat4|evt2|evt3|dat|npz|csv|hdf5", args.output),
    };
    let opts = events::OpenOptions { format: args.input_format, ..Default::default() };
    let mut source = events::open_with(&args.input, &opts)?;
    let info = source.info().clone();
    let stream = args.stream.clone().unwrap_or_default().resolve(&args.input, &info)?.clone();
    if stream.kind != StreamKind::Events {
        bail!("{}: stream {} ({:?}) holds no events", args.input, stream.id, stream.name);
    }
    let frame_stream = info.first(StreamKind::Frames).map(|s| s.id);
    let frames = format == Format::Aedat4 && frame_stream.is_some();
    let target = Target { path: args.output.clone(), format, size: args.size.or(stream.size), frames };
    let mut writer = write::create(&target)?;
    if frame_stream.is_some() && !frames {
        eprintln!("safed: {}: its frames are left out ({} holds events only)", args.input, format.name());
    }
    let written = copy(source.as_mut(), writer.as_mut(), &args, stream.id, frame_stream)?;
    writer.finish().with_context(|| format!("finishing {}", args.output))?;
    eprintln!("safed: wrote {written} events to {} ({})", args.output, format.name());
    Ok(())
}

/// Copies the chosen stream's events (and the frames, where the writer takes them) in
/// range, shifted by `--zero-time`; returns the events written.
fn copy(
    source: &mut dyn events::EventSource,
    writer: &mut dyn write::EventWriter,
    args: &Args,
    stream: u32,
    frame_stream: Option<u32>,
) -> anyhow::Result<u64> {
    let range = args.time_range.unwrap_or(TimeRange { from: i64::MIN, to: i64::MAX });
    let in_range = |t: i64| t >= range.from && t < range.to;
    let bar = indicatif::ProgressBar::new_spinner();
    if !std::io::stderr().is_terminal() {
        bar.set_draw_target(indicatif::ProgressDrawTarget::hidden());
    }
    // The time --zero-time subtracts: the first event's or frame's written.
    let mut shift = None::<i64>;
    let mut zero = |t: i64| if args.zero_time { *shift.get_or_insert(t) } else { 0 };
    let (mut written, mut batch) = (0u64, Vec::<Event>::new());
    while let Some(packet) = source.next_packet()? {
        match packet.data {
            PacketData::Events(events) if packet.stream == stream => {
                batch.clear();
                batch.extend(events.into_iter().filter(|e| in_range(e.t)));
                if let Some(first) = batch.first() {
                    let s = zero(first.t);
                    batch.iter_mut().for_each(|e| e.t -= s);
                }
                writer.write_events(&batch)?;
                written += batch.len() as u64;
                bar.set_message(format!("{written} events"));
                bar.tick();
            }
            PacketData::Frame(mut frame)
                if writer.accepts_frames() && Some(packet.stream) == frame_stream && in_range(frame.t) =>
            {
                let s = zero(frame.t);
                (frame.t, frame.exposure_start, frame.exposure_end) =
                    (frame.t - s, frame.exposure_start - s, frame.exposure_end - s);
                writer.write_frame(&frame)?;
            }
            _ => {}
        }
    }
    bar.finish_and_clear();
    Ok(written)
}
