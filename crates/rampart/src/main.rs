//! `rampart`: one binary for every Rampart capability.
//!
//! Parses the command line, starts logging, runs the command, and turns
//! its error into a message and an exit code (see `docs/cli.md`).
#![forbid(unsafe_code)]

mod cmd;
mod ftw;

use std::process::ExitCode;

use clap::Parser;

/// mimalloc: the WAF allocates and frees many small buffers per request,
/// where it is markedly faster than the system allocator (docs/decisions.md).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    let cli = cmd::Cli::parse();
    let filter = tracing_subscriber::EnvFilter::try_from_env("RAMPART_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr).with_target(false).init();
    match cmd::run(cli) {
        Ok(code) => code,
        Err(e) => {
            // Library errors already carry their cause in their message.
            eprintln!("rampart: {e}");
            ExitCode::from(e.exit_code())
        }
    }
}
