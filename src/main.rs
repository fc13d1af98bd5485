use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let cli = safed::cli::Cli::parse();
    match safed::cli::run(cli) {
        Ok(code) => code,
        Err(err) => {
            eprintln!("safed: error: {err:#}");
            ExitCode::FAILURE
        }
    }
}
