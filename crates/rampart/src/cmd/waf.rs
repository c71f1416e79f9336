//! `rampart waf check`: loads and compiles a rule set, as the gateway will,
//! and reports the first problem with its file and line. `rampart waf
//! test`: runs go-ftw regression tests through the real gateway.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Subcommand};

use super::CliError;

/// Work with WAF rule sets (SecLang, such as the OWASP Core Rule Set).
///
/// Exit status: 0 the rules load and compile (check) or every test passed
/// (test), 1 a file cannot be read or a test failed, 2 a rule set error
/// (the message names file, line and text).
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
    /// Run go-ftw regression tests (such as the CRS project's) through the
    /// real gateway, in front of a reflecting backend; prints
    /// `N passed, N failed, N skipped`
    Test {
        /// The rule set: a CRS directory or a rule file
        #[arg(long, value_name = "PATH")]
        rules: PathBuf,
        /// Directory of go-ftw YAML tests (searched recursively)
        #[arg(long, value_name = "DIR")]
        tests: PathBuf,
        /// go-ftw overrides file: tests whose expectations differ, with why
        #[arg(long, value_name = "FILE")]
        overrides: Option<PathBuf>,
        /// Only the tests of this rule id
        #[arg(long, value_name = "ID")]
        rule: Option<u64>,
        /// Print every failure, not just the count by rule
        #[arg(long, short)]
        verbose: bool,
        /// How requests travel: http1 (the tests' bytes as they are), h2c
        /// (HTTP/2 with prior knowledge) or h2 (HTTP/2 over TLS, as
        /// browsers speak it)
        #[arg(long, value_name = "PROTOCOL", default_value = "http1")]
        protocol: crate::ftw::Protocol,
    },
}

pub fn run(args: WafArgs) -> Result<ExitCode, CliError> {
    match args.action {
        Action::Check { rules } => check(&rules),
        Action::Test { rules, tests, overrides, rule, verbose, protocol } => {
            test(&rules, &tests, overrides.as_deref(), rule, verbose, protocol)
        }
    }
}

fn test(
    rules: &std::path::Path,
    tests: &std::path::Path,
    overrides: Option<&std::path::Path>,
    rule: Option<u64>,
    verbose: bool,
    protocol: crate::ftw::Protocol,
) -> Result<ExitCode, CliError> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| CliError::Other(format!("cannot start the runtime: {e}")))?;
    let s = rt.block_on(crate::ftw::run(rules, tests, overrides, rule, protocol)).map_err(CliError::Other)?;
    if verbose {
        for f in &s.failed {
            println!("FAIL {f}");
        }
    } else if !s.failed.is_empty() {
        println!("failures by rule: {:?}", crate::ftw::by_rule(&s.failed));
    }
    let total = s.passed + s.failed.len();
    println!(
        "{} passed, {} failed, {} skipped ({:.2}% of {total} run; {} overridden)",
        s.passed,
        s.failed.len(),
        s.skipped,
        100.0 * s.passed as f64 / total.max(1) as f64,
        s.overridden
    );
    Ok(if s.failed.is_empty() { ExitCode::SUCCESS } else { ExitCode::from(1) })
}

fn check(path: &std::path::Path) -> Result<ExitCode, CliError> {
    let (set, files) = rampart_waf::sources::load_crs(path, None).map_err(|e| CliError::Rules(e.to_string()))?;
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
