//! `rampart check-config`: validates a configuration without serving.

use std::process::ExitCode;

use clap::Args;

use super::{CliError, ConfigArgs};

/// Validate the configuration (and the files it names) without serving.
///
/// Exit status: 0 valid, 2 invalid (the message names the key, the value
/// and what was expected).
#[derive(Args)]
pub struct CheckArgs {
    #[command(flatten)]
    config: ConfigArgs,
}

pub fn run(args: CheckArgs) -> Result<ExitCode, CliError> {
    let config = args.config.load()?;
    rampart_gateway::stage::ip_policy::IpPolicy::build(&config.ip_policy)?;
    for (i, c) in config.tls.certificates.iter().enumerate() {
        for (what, p) in [("cert", &c.cert), ("key", &c.key)] {
            if !p.is_file() {
                return Err(rampart_core::ConfigError::Invalid {
                    origin: args
                        .config
                        .file()
                        .map(|f| f.display().to_string())
                        .unwrap_or_else(|| "configuration".into()),
                    key: format!("tls.certificates[{i}].{what}"),
                    value: p.display().to_string(),
                    expected: "a readable PEM file".into(),
                }
                .into());
            }
        }
    }
    let origin = args.config.file().map(|f| f.display().to_string()).unwrap_or_else(|| "defaults".into());
    // What `serve` would refuse at start: certificates that do not parse,
    // WAF rules that do not load.
    if !config.tls.certificates.is_empty() {
        rampart_gateway::tls::CertResolver::load(&config.tls, &config.data_dir()).map_err(|e| {
            rampart_core::ConfigError::Invalid {
                origin: origin.clone(),
                key: "tls.certificates".into(),
                value: String::new(),
                expected: format!("certificates and keys that load ({e})"),
            }
        })?;
    }
    let mut probe = config.clone();
    probe.waf.log_file = std::path::PathBuf::new();
    rampart_gateway::stage::waf::Waf::build(&probe, None).map_err(|e| e.with_origin(&origin))?;
    println!(
        "{origin}: ok ({} route(s), {} upstream pool(s), {} rate limit(s))",
        config.routes.len(),
        config.upstreams.len(),
        config.rate_limits.len()
    );
    Ok(ExitCode::SUCCESS)
}
