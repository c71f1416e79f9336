//! `rampart waf check`: loads and compiles a rule set, as the gateway will,
//! and reports the first problem with its file and line.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Subcommand};

use super::CliError;

/// Work with WAF rule sets (SecLang, such as the OWASP Core Rule Set).
///
/// Exit status: 0 the rules load and compile, 1 a file cannot be read,
/// 2 a rule set error (the message names file, line and text).
#[derive(Args)]
pub struct WafArgs {
    #[command(subcommand)]
    action: Action,
}

#[derive(Subcommand)]
enum Action {
    /// Load and compile a rule set: a directory of *.conf files (a
    /// crs-setup.conf or crs-setup.conf.example beside or above it is read
    /// first), or a single file with Include directives
    Check {
        /// Directory or file
        #[arg(long, value_name = "PATH")]
        rules: PathBuf,
    },
}

pub fn run(args: WafArgs) -> Result<ExitCode, CliError> {
    match args.action {
        Action::Check { rules } => check(&rules),
    }
}

fn check(path: &std::path::Path) -> Result<ExitCode, CliError> {
    let mut files = Vec::new();
    if path.is_dir() {
        for setup in
            [path.join("crs-setup.conf"), path.join("../crs-setup.conf"), path.join("../crs-setup.conf.example")]
        {
            if setup.is_file() {
                files.push(setup);
                break;
            }
        }
        let mut confs: Vec<PathBuf> = std::fs::read_dir(path)
            .map_err(|e| CliError::Other(format!("{}: {e}", path.display())))?
            .flatten()
            .map(|e| e.path())
            .filter(|p| p.extension().is_some_and(|x| x == "conf"))
            .collect();
        confs.sort();
        files.extend(confs);
    } else {
        files.push(path.to_path_buf());
    }
    let set = rampart_waf::seclang::load_files(files.iter().map(PathBuf::as_path))
        .map_err(|e| CliError::Rules(e.to_string()))?;
    rampart_waf::engine::Engine::new(&set).map_err(|e| CliError::Rules(e.to_string()))?;
    println!(
        "ok: {} rules from {} file(s), {} markers{}",
        set.rules.len(),
        files.len(),
        set.markers.len(),
        set.components.first().map(|c| format!(", {c}")).unwrap_or_default()
    );
    Ok(ExitCode::SUCCESS)
}
