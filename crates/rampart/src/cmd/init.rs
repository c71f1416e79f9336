//! `rampart init`: writes a commented starter configuration.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Args;

use super::CliError;

/// The starter file, every section with its keys and their defaults.
pub const STARTER: &str = include_str!("starter.toml");

/// Write a commented starter rampart.toml.
///
/// Exit status: 0 written, 1 the file exists (use --force) or cannot be
/// written.
#[derive(Args)]
pub struct InitArgs {
    /// Where to write it
    #[arg(default_value = "rampart.toml")]
    path: PathBuf,
    /// Overwrite an existing file
    #[arg(long)]
    force: bool,
}

pub fn run(args: InitArgs) -> Result<ExitCode, CliError> {
    if args.path.exists() && !args.force {
        return Err(CliError::Other(format!("{} exists; use --force to overwrite it", args.path.display())));
    }
    std::fs::write(&args.path, STARTER).map_err(|e| CliError::Other(format!("{}: {e}", args.path.display())))?;
    println!("wrote {}; edit [upstreams.app] to point at your app, then run `rampart serve`", args.path.display());
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn starter_file_is_a_valid_configuration() {
        let c = rampart_core::Config::from_toml(STARTER, "starter.toml").unwrap();
        assert_eq!(c.routes.len(), 1);
        assert_eq!(c.limits, rampart_core::config::Limits::default());
        assert_eq!(c.bans, rampart_core::config::Bans { ..c.bans.clone() });
    }
}
