use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    keep_freed_memory();
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

/// Decoder threads hand packets of a few hundred KiB to other threads, which free them.
/// glibc's default then mmaps, trims and re-faults those pages over and over (60-90k page
/// faults per 10 M ZSTD events on 2 workers, 8k with this, about a tenth of the decode time):
/// a fixed mmap threshold and a high trim threshold keep freed memory for reuse instead.
fn keep_freed_memory() {
    #[cfg(target_env = "gnu")]
    // SAFETY: mallopt only sets allocator parameters; called before any other thread exists.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, 32 << 20);
        libc::mallopt(libc::M_TRIM_THRESHOLD, 64 << 20);
    }
}
