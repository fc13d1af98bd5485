//! `safed report merge`: the results files of several shards (or runs) as one report, the same
//! one a single run over all their samples gives.

use std::path::PathBuf;

use anyhow::{bail, Result};

use crate::dataset::results;
use crate::dataset::score::{span_seconds, Tally};
use crate::dataset::Dataset;

#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, clap::Subcommand)]
enum Command {
    /// Merge results files (`replay --dataset --results`) into one report.
    Merge(MergeArgs),
}

#[derive(Debug, clap::Args)]
struct MergeArgs {
    /// The shards' results files.
    #[arg(required = true)]
    results: Vec<PathBuf>,
    /// Write the report as JSON here (confusion and per-class CSV and PNG beside it).
    #[arg(long)]
    report: Option<PathBuf>,
    /// The dataset the shards replayed: its class order for the per-class table and the
    /// confusion matrix (without it: the labels seen, sorted).
    #[arg(long)]
    dataset: Option<PathBuf>,
    #[arg(long, default_value = "test", requires = "dataset")]
    split: String,
    /// Fail (after writing the report) when a sample of the dataset's split has no result in
    /// any file: a shard that never finished. A cluster's merge job uses it.
    #[arg(long, requires = "dataset")]
    complete: bool,
}

pub fn run(args: Args) -> Result<()> {
    let Command::Merge(a) = args.command;
    let mut all = Vec::new();
    // Shards run side by side: throughput is the sum of their rates, over the longest.
    let (mut rate, mut longest) = (0.0, 0.0f64);
    for path in &a.results {
        let r = results::read(path)?.results;
        let s = span_seconds(&r);
        if s > 0.0 {
            rate += r.len() as f64 / s;
        }
        longest = longest.max(s);
        all.extend(r);
    }
    let mut seen = std::collections::BTreeSet::new();
    if let Some(r) = all.iter().find(|r| !seen.insert(r.index)) {
        bail!("sample {} ({}) is in more than one results file: the shards overlap", r.index, r.id);
    }
    let dataset = a.dataset.as_deref().map(|root| Dataset::open(root, &a.split)).transpose()?;
    let (classes, name) = match (&dataset, &a.dataset) {
        (Some(d), Some(root)) => (d.classes.clone(), root.display().to_string()),
        _ => {
            let set: std::collections::BTreeSet<String> = all.iter().filter_map(|r| r.label.clone()).collect();
            (set.into_iter().collect(), "(merged)".to_string())
        }
    };
    let mut tally = Tally::new(&classes);
    all.iter().for_each(|r| tally.add(r));
    let mut report = tally.report(&name, "(merged)", longest);
    report.throughput.samples_per_s = rate;
    report.throughput.events_per_s =
        if longest > 0.0 { all.iter().map(|r| r.events).sum::<u64>() as f64 / longest } else { 0.0 };
    report.print();
    if let Some(path) = &a.report {
        report.write(path, &classes)?;
        eprintln!("report: {}", path.display());
    }
    if let Some(d) = &dataset {
        let missing: Vec<&str> =
            d.samples.iter().enumerate().filter(|(i, _)| !seen.contains(i)).map(|(_, s)| s.id.as_str()).collect();
        if !missing.is_empty() {
            let shown = missing.iter().take(5).copied().collect::<Vec<_>>().join(", ");
            let what = format!(
                "the results cover {} of the split's {} samples; {} missing (first: {shown})",
                seen.len(),
                d.samples.len(),
                missing.len()
            );
            if a.complete {
                bail!("{what}: a shard did not finish (rerun it with --resume)");
            }
            eprintln!("warning: {what}");
        }
    }
    Ok(())
}
