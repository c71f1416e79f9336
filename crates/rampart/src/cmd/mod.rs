//! The command registry: one file per command, listed in [`Command`].

mod audit;
mod backup;
mod bans;
mod check_config;
mod init;
mod serve;
mod waf;

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};
use rampart_core::{Config, ConfigError};

/// Rampart: the security platform a SaaS company installs on day one.
#[derive(Parser)]
#[command(name = "rampart", version, about, long_about = None)]
pub struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    Serve(serve::ServeArgs),
    Init(init::InitArgs),
    CheckConfig(check_config::CheckArgs),
    Bans(bans::BansArgs),
    Audit(audit::AuditArgs),
    Waf(waf::WafArgs),
    Backup(backup::BackupArgs),
}

/// Runs the parsed command.
pub fn run(cli: Cli) -> Result<ExitCode, CliError> {
    match cli.command {
        Command::Serve(a) => serve::run(a),
        Command::Init(a) => init::run(a),
        Command::CheckConfig(a) => check_config::run(a),
        Command::Bans(a) => bans::run(a),
        Command::Audit(a) => audit::run(a),
        Command::Waf(a) => waf::run(a),
        Command::Backup(a) => backup::run(a),
    }
}

/// A command's failure, with its exit code (docs/cli.md).
#[derive(Debug, thiserror::Error)]
pub enum CliError {
    /// The configuration is invalid (exit 2).
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// The gateway could not start (exit 3).
    #[error(transparent)]
    Gateway(#[from] rampart_gateway::GatewayError),
    /// The audit log could not be opened (exit 3).
    #[error(transparent)]
    Audit(#[from] rampart_audit::AuditError),
    /// Anything else that went wrong while running (exit 1).
    #[error("{0}")]
    Other(String),
    /// A WAF rule set cannot be used (exit 2).
    #[error("{0}")]
    Rules(String),
    /// The audit log failed verification (exit 4).
    #[error("{0}")]
    Tampered(String),
}

impl CliError {
    /// The process exit code.
    pub fn exit_code(&self) -> u8 {
        match self {
            CliError::Config(_) | CliError::Rules(_) => 2,
            CliError::Gateway(_) | CliError::Audit(_) => 3,
            CliError::Other(_) => 1,
            CliError::Tampered(_) => 4,
        }
    }
}

/// Options every command that reads the configuration shares.
#[derive(Args, Clone, Debug, Default)]
pub struct ConfigArgs {
    /// Configuration file [default: ./rampart.toml when it exists]
    #[arg(long, short = 'c', value_name = "FILE", env = "RAMPART_CONFIG", global = true)]
    pub config: Option<PathBuf>,
    /// Data directory (overrides data_dir)
    #[arg(long, value_name = "DIR", global = true)]
    pub data_dir: Option<PathBuf>,
    /// Plain HTTP listener (overrides listen.http; "" disables)
    #[arg(long, value_name = "ADDR", global = true)]
    pub listen: Option<String>,
    /// HTTPS listener (overrides listen.https; "" disables)
    #[arg(long, value_name = "ADDR", global = true)]
    pub tls_listen: Option<String>,
    /// Admin listener (overrides listen.admin; "" disables)
    #[arg(long, value_name = "ADDR", global = true)]
    pub admin_listen: Option<String>,
    /// Send everything to this upstream (one catch-all route)
    #[arg(long, value_name = "URL", global = true)]
    pub upstream: Option<String>,
}

impl ConfigArgs {
    /// The file to read, if any.
    pub fn file(&self) -> Option<PathBuf> {
        self.config.clone().or_else(|| Path::new("rampart.toml").exists().then(|| PathBuf::from("rampart.toml")))
    }

    /// Reads the file (or the defaults) and applies the overrides.
    pub fn load(&self) -> Result<Config, ConfigError> {
        let mut config = match self.file() {
            Some(f) => Config::load(&f)?,
            None => Config::default(),
        };
        if let Some(d) = &self.data_dir {
            config.data_dir = Some(d.clone());
        }
        if let Some(a) = &self.listen {
            config.listen.http = a.clone();
        }
        if let Some(a) = &self.tls_listen {
            config.listen.https = a.clone();
        }
        if let Some(a) = &self.admin_listen {
            config.listen.admin = a.clone();
        }
        if let Some(u) = &self.upstream {
            config.set_catch_all_upstream(u);
        }
        config.validate().map_err(|e| e.with_origin("command line"))?;
        Ok(config)
    }
}

/// Records `event` in the audit log of `data_dir`: directly when no
/// gateway holds the log, else through the running writer's inbox (a log
/// has one writer). Failing to record is reported, not fatal.
pub fn record_event(data_dir: &Path, event: rampart_core::Event) {
    match rampart_audit::AuditLog::open(data_dir) {
        Ok(writer) => {
            if let Err(e) = writer.append(event) {
                tracing::warn!(error = %e, "cannot record the event in the audit log");
            }
        }
        Err(_) => {
            let inbox = data_dir.join("audit").join("inbox");
            let name = format!(
                "{:020}-{}.json",
                std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_nanos()),
                std::process::id()
            );
            let tmp = inbox.join(format!("{name}.tmp"));
            let written = std::fs::create_dir_all(&inbox).is_ok()
                && std::fs::write(&tmp, event.to_json().to_string()).is_ok()
                && std::fs::rename(&tmp, inbox.join(&name)).is_ok();
            if !written {
                tracing::warn!(dir = %inbox.display(), "cannot record the event in the audit log");
            }
        }
    }
}
