use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    // Logs go to stderr, one line per event, without colour: journald-friendly.
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_ansi(false)
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("SAFED_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .init();
    let cli = safed::cli::Cli::parse();
    match safed::cli::run(cli) {
        Ok(code) => code,
        Err(err) => {
            eprintln!("safed: error: {err:#}");
            ExitCode::FAILURE
        }
    }
}
