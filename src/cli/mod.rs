//! The `safed` command line: one module per subcommand.

mod bench;
mod bench_dataset;
mod bench_decode;
mod bench_parity;
mod bench_view;
mod cameras;
mod check_config;
mod classify;
mod convert;
mod doctor;
mod dump;
mod infer_args;
mod info;
mod npy;
mod replay;
mod replay_dataset;
mod report;
mod run;

use std::io;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

#[derive(Debug, Parser)]
#[command(name = "safed", version, about = "Event-camera + RGB recognition daemon (SAFE)")]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Print the events of a file or live stream as CSV (t,x,y,p).
    Dump(dump::Args),
    /// Convert one event stream (and frames, into AEDAT4) to AEDAT4, EVT 2.0 / 3.0, DAT, npz,
    /// CSV or HDF5.
    Convert(convert::Args),
    /// Describe a file or live stream: format, streams, counts, time span, rate.
    Info(info::Args),
    /// Measure whole-file decoding speed (events/s).
    BenchDecode(bench_decode::Args),
    /// Classify samples with a SAFE model: one JSON line per sample.
    Classify(classify::Args),
    /// Measure a SAFE model's per-sample latency.
    Bench(bench::Args),
    /// What the model alone (encoder and fusion calls) sustains on a dataset split.
    BenchDataset(bench_dataset::Args),
    /// What the live view's JPEGs cost per image: jpeg-encoder (used) beside the image crate's.
    BenchView(bench_view::Args),
    /// Run the whole pipeline on a recording and report latency (no arguments: the bundled
    /// demo recording through the bundled demo model), or every sample of a dataset split
    /// (`--dataset`) and report accuracy and latency.
    Replay(Box<replay::Args>),
    /// Reports of dataset replays: `safed report merge SHARD.jsonl...`.
    Report(report::Args),
    /// Run the daemon with a TOML configuration (config/safed.toml documents every option).
    Run(run::Args),
    /// Check a configuration file: unknown keys and bad values are named.
    CheckConfig(check_config::Args),
    /// The USB event cameras connected (type, serial), or why none can be used and how to fix it.
    Cameras(cameras::Args),
    /// Which ONNX Runtime and execution providers this machine can run, what the NVIDIA driver
    /// sees, and what to install for what is missing.
    Doctor(doctor::Args),
}

pub fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    let result = match cli.command {
        Command::Dump(args) => dump::run(args),
        Command::Convert(args) => convert::run(args),
        Command::Info(args) => info::run(args),
        Command::BenchDecode(args) => bench_decode::run(args),
        Command::Classify(args) => classify::run(args),
        Command::Bench(args) => bench::run(args),
        Command::BenchDataset(args) => bench_dataset::run(args),
        Command::BenchView(args) => bench_view::run(args),
        Command::Replay(args) => replay::run(*args),
        Command::Report(args) => report::run(args),
        Command::Run(args) => run::run(args),
        Command::CheckConfig(args) => check_config::run(args),
        Command::Cameras(args) => cameras::run(args),
        Command::Doctor(args) => return doctor::run(args),
    };
    match result {
        // A closed pipe (`safed dump ... | head`) is a normal end, not an error.
        Err(e) if is_broken_pipe(&e) => Ok(ExitCode::SUCCESS),
        other => other.map(|()| ExitCode::SUCCESS),
    }
}

fn is_broken_pipe(e: &anyhow::Error) -> bool {
    e.chain().any(|c| c.downcast_ref::<io::Error>().is_some_and(|io| io.kind() == io::ErrorKind::BrokenPipe))
}
