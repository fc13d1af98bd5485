use std::io::{self, Write};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::Context;
use crossbeam_channel::RecvTimeoutError;

use crate::events::write::csv;
use crate::events::{self, Event, EventReader, Format, StreamSelector};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// A file, `-` (standard input) or a FIFO, tcp://HOST:PORT, unix:///PATH,
    /// udp://ADDR:PORT?format=F&width=W&height=H or usb:[SERIAL] (default: the bundled sample
    /// recording).
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
    /// Live sources: stop after this many seconds without events (default: wait for ever;
    /// Ctrl-C also stops, with the summary).
    #[arg(long, value_name = "SECONDS")]
    pub idle: Option<f64>,
}

/// Why the dump ended (the summary's first words).
enum End {
    Input,
    Limit,
    Idle(f64),
    Interrupted,
}

/// What the reader thread hands over.
enum Read {
    Batch(Vec<Event>),
    End(Result<(), events::EventError>),
}

pub fn run(args: Args) -> anyhow::Result<()> {
    let idle = match args.idle {
        Some(s) if !(s > 0.0 && s.is_finite()) => anyhow::bail!("--idle {s}: expected a positive number of seconds"),
        s => s.map(Duration::from_secs_f64),
    };
    let source = match &args.source {
        Some(s) => {
            // A node of its own beside a running daemon's ("safed").
            let ros2 = crate::ros2::Ros2Config { node: "safed_dump".into(), ..Default::default() };
            events::open_with(s, &events::OpenOptions { format: args.input_format, ros2, ..Default::default() })?
        }
        None => events::open_sample()?,
    };
    let live = args.source.as_deref().is_some_and(|s| events::is_live(s) || events::is_pipe(s));
    let reader = EventReader::new(source, &args.stream.unwrap_or_default())?;
    let stop = Arc::new(AtomicBool::new(false));
    let interrupted = Arc::new(AtomicBool::new(false));
    {
        let interrupted = interrupted.clone();
        // A second handler cannot be set (a test harness, a library caller): Ctrl-C then ends
        // the process as usual, without the summary.
        let _ = ctrlc::set_handler(move || interrupted.store(true, Ordering::Relaxed));
    }
    let summary = Arc::new(Mutex::new(None::<String>));
    let (tx, rx) = crossbeam_channel::bounded(64);
    spawn_reader(reader, tx, stop.clone(), summary.clone())?;

    let mut out = io::BufWriter::with_capacity(1 << 16, io::stdout().lock());
    out.write_all(csv::HEADER)?;
    let mut left = args.limit.unwrap_or(u64::MAX);
    let (mut count, mut span) = (0u64, None::<(i64, i64)>);
    let (mut line, mut num) = (Vec::with_capacity(64), itoa::Buffer::new());
    let mut last_data = Instant::now();
    let end = loop {
        if interrupted.load(Ordering::Relaxed) {
            break End::Interrupted;
        }
        if let Some(idle) = idle.filter(|i| last_data.elapsed() >= *i) {
            break End::Idle(idle.as_secs_f64());
        }
        let batch = match rx.recv_timeout(Duration::from_millis(50)) {
            Ok(Read::Batch(b)) => b,
            Ok(Read::End(result)) => {
                result?;
                break End::Input;
            }
            Err(RecvTimeoutError::Timeout) => continue,
            Err(RecvTimeoutError::Disconnected) => break End::Input,
        };
        last_data = Instant::now();
        let take = batch.len().min(left.min(usize::MAX as u64) as usize);
        for e in &batch[..take] {
            line.clear();
            csv::push_line(&mut line, &mut num, e);
            out.write_all(&line).context("writing CSV")?;
        }
        if let (Some(first), Some(last)) = (batch.first(), batch[..take].last()) {
            let (t0, _) = span.get_or_insert((first.t, last.t));
            span = Some((*t0, last.t));
        }
        count += take as u64;
        left -= take as u64;
        if left == 0 {
            break End::Limit;
        }
    };
    stop.store(true, Ordering::Relaxed);
    if !matches!(end, End::Input) {
        // A live source's reader sees the stop within its poll (~100 ms) and leaves its final
        // counts: wait for them a little, not for a blocked read.
        let until = Instant::now() + Duration::from_millis(500);
        while let Ok(r) = rx.recv_timeout(until.saturating_duration_since(Instant::now())) {
            if matches!(r, Read::End(_)) {
                break;
            }
        }
    }
    out.flush().context("writing CSV")?;
    if live || !matches!(end, End::Input) {
        let source = summary.lock().ok().and_then(|s| s.clone());
        eprintln!("{}", summary_line(&end, count, span, source.as_deref()));
    }
    Ok(())
}

/// Reads batches on a thread of its own, so that a source blocked in a read (a silent
/// socket, a pipe) cannot keep the dump from ending; the source's own counts are kept fresh
/// in `summary` (every 100 ms at most).
fn spawn_reader(
    mut reader: EventReader,
    tx: crossbeam_channel::Sender<Read>,
    stop: Arc<AtomicBool>,
    summary: Arc<Mutex<Option<String>>>,
) -> io::Result<()> {
    std::thread::Builder::new().name("dump-reader".into()).spawn(move || {
        let mut refreshed = None::<Instant>;
        let result = loop {
            if stop.load(Ordering::Relaxed) {
                break Ok(());
            }
            let batch = match reader.next_batch() {
                Ok(Some(b)) => b,
                Ok(None) => break Ok(()),
                Err(e) => break Err(e),
            };
            if refreshed.is_none_or(|r| r.elapsed() >= Duration::from_millis(100)) {
                if let Ok(mut s) = summary.lock() {
                    *s = reader.summary();
                }
                refreshed = Some(Instant::now());
            }
            // Live sources return empty batches while nothing arrives.
            if !batch.is_empty() && tx.send(Read::Batch(batch)).is_err() {
                break Ok(());
            }
        };
        if let Ok(mut s) = summary.lock() {
            *s = reader.summary();
        }
        let _ = tx.send(Read::End(result));
    })?;
    Ok(())
}

fn summary_line(end: &End, count: u64, span: Option<(i64, i64)>, source: Option<&str>) -> String {
    let why = match end {
        End::Input => "end of input".to_string(),
        End::Limit => "--limit reached".to_string(),
        End::Idle(s) => format!("no events for {s} s (--idle)"),
        End::Interrupted => "interrupted".to_string(),
    };
    let span = span.map_or_else(String::new, |(a, b)| format!(", t {a} to {b} µs"));
    let source = source.map_or_else(String::new, |s| format!("; source: {s}"));
    format!("dump: {why}: {count} events{span}{source}")
}
