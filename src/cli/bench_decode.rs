use std::io::Write;
use std::time::Instant;

use anyhow::Context;
use serde::Serialize;

use crate::events::{self, Format, OpenOptions, PacketData};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Files to decode (each one whole, every stream).
    #[arg(required = true)]
    pub files: Vec<String>,
    /// Whole-file decodes per file; the best and the median are reported.
    #[arg(long, default_value_t = 5)]
    pub repeat: usize,
    /// One JSON object per file.
    #[arg(long)]
    pub json: bool,
    /// Read the input as this format instead of recognising it from its bytes: aedat4,
    /// aedat3.1, aedat2, evt2, evt3, dat, npz, atis-bin, text, csv, hdf5.
    #[arg(long)]
    pub input_format: Option<Format>,
    /// Threads decoding AEDAT4 packets (default: cores, at most 4; 1 decodes inline).
    #[arg(long)]
    pub threads: Option<usize>,
}

#[derive(Debug, Serialize)]
struct Result {
    file: String,
    format: &'static str,
    events: u64,
    bytes: u64,
    best_s: f64,
    median_s: f64,
    best_mev_s: f64,
    median_mev_s: f64,
}

/// Decodes the whole file once (all streams, every packet built) and counts events.
fn decode_once(file: &str, opts: &OpenOptions) -> anyhow::Result<(u64, &'static str)> {
    let mut source = events::open_with(file, opts)?;
    let format = source.info().format.name();
    let mut n = 0u64;
    while let Some(p) = source.next_packet()? {
        if let PacketData::Events(e) = &p.data {
            n += e.len() as u64;
        }
    }
    Ok((n, format))
}

pub fn run(args: Args) -> anyhow::Result<()> {
    let mut out = std::io::stdout().lock();
    let mut opts = OpenOptions { format: args.input_format, ..OpenOptions::default() };
    if let Some(t) = args.threads {
        opts.decode_threads = t.max(1);
    }
    for file in &args.files {
        let bytes = std::fs::metadata(file).with_context(|| format!("{file}: cannot stat"))?.len();
        decode_once(file, &opts)?; // warm the page cache
        let mut times = Vec::with_capacity(args.repeat);
        let mut events = 0;
        let mut format = "";
        for _ in 0..args.repeat.max(1) {
            let start = Instant::now();
            (events, format) = decode_once(file, &opts)?;
            times.push(start.elapsed().as_secs_f64());
        }
        times.sort_by(f64::total_cmp);
        let (best, median) = (times[0], times[times.len() / 2]);
        let r = Result {
            file: file.clone(),
            format,
            events,
            bytes,
            best_s: best,
            median_s: median,
            best_mev_s: events as f64 / best / 1e6,
            median_mev_s: events as f64 / median / 1e6,
        };
        if args.json {
            writeln!(out, "{}", serde_json::to_string(&r)?)?;
        } else {
            writeln!(
                out,
                "{}: {} events ({}), best {:.4} s = {:.1} Mev/s, median {:.1} Mev/s",
                r.file, r.events, r.format, r.best_s, r.best_mev_s, r.median_mev_s
            )?;
        }
    }
    Ok(())
}
