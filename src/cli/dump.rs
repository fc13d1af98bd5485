use std::io::{self, Write};

use anyhow::Context;

use crate::events::write::csv;
use crate::events::{self, EventReader, Format, StreamSelector};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// A file, `-` (standard input) or a FIFO, tcp://HOST:PORT or unix:///PATH (default: the
    /// bundled sample recording).
    pub source: Option<String>,
    /// Output format (only csv: t,x,y,p).
    #[arg(long, default_value = "csv", value_parser = ["csv"])]
    pub format: String,
    /// Event stream to dump, by id or name (default: the first event stream).
    #[arg(long)]
    pub stream: Option<StreamSelector>,
    /// Read the input as this format instead of recognising it from its bytes: aedat4,
    /// aedat3.1, aedat2, evt2, evt3, dat, npz, atis-bin, text, csv, hdf5.
    #[arg(long)]
    pub input_format: Option<Format>,
    /// Stop after this many events.
    #[arg(long)]
    pub limit: Option<u64>,
}

pub fn run(args: Args) -> anyhow::Result<()> {
    let source = match &args.source {
        Some(s) => events::open_with(s, &events::OpenOptions { format: args.input_format, ..Default::default() })?,
        None => events::open_sample()?,
    };
    let mut reader = EventReader::new(source, &args.stream.unwrap_or_default())?;
    let stdout = io::stdout().lock();
    let mut out = io::BufWriter::with_capacity(1 << 16, stdout);
    out.write_all(csv::HEADER)?;
    let mut left = args.limit.unwrap_or(u64::MAX);
    let mut line = Vec::with_capacity(64);
    let mut num = itoa::Buffer::new();
    'batches: while let Some(batch) = reader.next_batch()? {
        for e in batch {
            if left == 0 {
                break 'batches;
            }
            left -= 1;
            line.clear();
            csv::push_line(&mut line, &mut num, &e);
            out.write_all(&line).context("writing CSV")?;
        }
    }
    out.flush().context("writing CSV")?;
    Ok(())
}
