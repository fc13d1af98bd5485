//! `safed check-config FILE`: parses and validates a configuration, naming the first bad key.

use std::path::PathBuf;

use anyhow::Result;

use crate::config::Config;

#[derive(Debug, clap::Args)]
pub struct Args {
    file: PathBuf,
}

pub fn run(args: Args) -> Result<()> {
    let c = Config::load(&args.file)?;
    println!(
        "{}: ok (events {}, window {}, model {}, output {})",
        args.file.display(),
        c.source.events,
        c.window.mode,
        c.model.path.as_ref().map_or_else(|| "bundled demo".into(), |p| p.display().to_string()),
        c.output.jsonl
    );
    Ok(())
}
