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
    let streams: Vec<String> =
        c.streams().iter().map(|s| format!("{} <- {}", s.source.name, s.source.events)).collect();
    println!(
        "{}: ok (events {}, window {}, model {}, output {}{})",
        args.file.display(),
        streams.join(", "),
        c.window.mode,
        c.model.path.as_ref().map_or_else(|| "bundled demo".into(), |p| p.display().to_string()),
        c.output.jsonl,
        // The broker's address only: credentials never appear.
        c.output.mqtt.as_ref().map_or_else(String::new, |m| format!(", mqtt {}", m.url)),
    );
    Ok(())
}
