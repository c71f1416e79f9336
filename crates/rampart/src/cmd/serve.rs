//! `rampart serve`: runs the gateway (and, with no upstream configured, a
//! demo app behind it).

use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use clap::Args;
use rampart_core::config::RateLimit;
use rampart_core::{Config, HumanDuration};
use rampart_gateway::{Gateway, Options};

use super::{CliError, ConfigArgs};

/// Run the gateway in front of your app.
///
/// With no upstream configured (no [[routes]] and no --upstream), a small
/// demo app starts behind the gateway, and the commands to see the
/// protection work are printed.
///
/// Reloads the configuration on SIGHUP and when the file changes; stops
/// gracefully on SIGTERM or Ctrl-C.
///
/// Exit status: 0 after a clean stop, 2 invalid configuration, 3 start-up
/// failure (a port in use, a missing certificate, Redis unreachable).
#[derive(Args)]
pub struct ServeArgs {
    #[command(flatten)]
    config: ConfigArgs,
    /// How long requests in flight may take to finish at shutdown
    #[arg(long, value_name = "DURATION", default_value = "10s")]
    grace: HumanDuration,
}

/// The demo's limits: low enough to hit by hand within a minute.
fn demo_config(config: &mut Config, demo_url: &str) {
    config.set_catch_all_upstream(demo_url);
    config
        .rate_limits
        .insert("demo".into(), RateLimit { key: "ip".into(), rate: 5, per: HumanDuration::secs(1), burst: Some(10) });
    config.routes[0].rate_limits = vec!["demo".into()];
    config.routes[0].csrf = true;
    config.routes[0].max_body_bytes = Some(1024 * 1024);
    config.bans.duration = HumanDuration::secs(60);
}

pub fn run(args: ServeArgs) -> Result<ExitCode, CliError> {
    let config = args.config.load()?;
    // The control plane (admin API, reloads, health checks, the demo app)
    // runs here; the gateway starts its own worker threads, one per core
    // unless listen.workers says otherwise.
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| CliError::Other(format!("cannot start the runtime: {e}")))?;
    runtime.block_on(serve(args, config))
}

async fn serve(args: ServeArgs, mut config: Config) -> Result<ExitCode, CliError> {
    let demo = if config.routes.is_empty() {
        let addr = rampart_gateway::demo::start().await.map_err(|e| CliError::Other(format!("demo app: {e}")))?;
        let url = format!("http://{addr}");
        demo_config(&mut config, &url);
        Some(url)
    } else {
        None
    };
    let data_dir = config.data_dir();
    rampart_core::private_fs::create_dir(&data_dir)
        .map_err(|e| CliError::Other(format!("data directory {}: {e}", data_dir.display())))?;
    let audit = rampart_audit::AuditLog::open_with(&data_dir, rampart_audit::Options::from_config(&config.audit))?;
    let sinks = config
        .audit
        .sinks
        .iter()
        .map(|s| rampart_audit::sink::Sink {
            name: s.name.clone(),
            target: match (s.kind.as_str(), &s.path, &s.address) {
                ("file", Some(p), _) => rampart_audit::sink::Target::File(data_dir.join(p)),
                (_, _, Some(a)) => rampart_audit::sink::Target::Syslog(a.clone()),
                _ => rampart_audit::sink::Target::Syslog(String::new()),
            },
        })
        .collect::<Vec<_>>();
    let stop_sinks = Arc::new(std::sync::atomic::AtomicBool::new(false));
    if !sinks.is_empty() {
        rampart_audit::sink::spawn(audit.dir(), sinks, stop_sinks.clone())
            .map_err(|e| CliError::Other(format!("audit sinks: {e}")))?;
    }

    // Backup jobs and drills on their schedules (re-read with the file).
    let schedule_args = args.config.clone();
    // A broken file is reported once, not at every re-read.
    let last_error = std::sync::Mutex::new(String::new());
    let current: super::backup::schedule::Current = Arc::new(move || {
        let loaded = schedule_args.load();
        let mut last = last_error.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        match loaded {
            Ok(c) => {
                last.clear();
                Some(c)
            }
            Err(e) => {
                if *last != e.to_string() {
                    tracing::warn!(error = %e, "backup schedules: keeping the previous configuration");
                    *last = e.to_string();
                }
                None
            }
        }
    });
    let events = audit.clone();
    let record: super::backup::schedule::Record = Arc::new(move |e| {
        if let Err(err) = events.append(e) {
            tracing::warn!(error = %err, "cannot record a backup event");
        }
    });
    let _schedules = super::backup::schedule::start(&data_dir, current, record)
        .map_err(|e| CliError::Other(format!("backup schedules: {e}")))?;

    let file_args = args.config.clone();
    let demo_url = demo.clone();
    let source: rampart_gateway::ConfigSource = Arc::new(move || {
        let mut c = file_args.load()?;
        if let Some(url) = &demo_url {
            if c.routes.is_empty() {
                demo_config(&mut c, url);
            }
        }
        Ok(c)
    });
    let mut opts = Options::new(config, audit.clone());
    opts.source = Some(source);
    opts.watch = args.config.file().into_iter().collect();
    let gateway = Gateway::start(opts).await?;

    let show = |a: Option<std::net::SocketAddr>| a.map(|a| a.to_string()).unwrap_or_else(|| "off".into());
    tracing::info!(http = %show(gateway.http_addr()), https = %show(gateway.https_addr()), admin = %show(gateway.admin_addr()), "rampart is serving");
    if let (Some(url), Some(http)) = (&demo, gateway.http_addr()) {
        print_demo(url, http, gateway.https_addr(), gateway.admin_addr());
    }

    wait_for_stop().await;
    tracing::info!("stopping: finishing requests in flight");
    gateway.shutdown(args.grace.get()).await;
    audit.flush();
    Ok(ExitCode::SUCCESS)
}

fn print_demo(
    app: &str,
    http: std::net::SocketAddr,
    https: Option<std::net::SocketAddr>,
    admin: Option<std::net::SocketAddr>,
) {
    let base = format!("http://127.0.0.1:{}", http.port());
    println!(
        "\nNo upstream configured: a demo app ({app}) runs behind the gateway.\n\
         Try, from another terminal:\n\n\
         \x20 curl -i {base}/api/hello                 # passes, with security headers added\n\
         \x20 curl -i \"{base}/api/hello?id=1%27%20or%201=1--\"\n\
         \x20                                          # SQL injection: 403 from the WAF, with the request id\n\
         \x20 curl -i -d 'comment=<script>alert(1)</script>' {base}/api/echo\n\
         \x20                                          # XSS in a form body: 403 before the app sees it\n\
         \x20 for i in $(seq 20); do curl -s -o /dev/null -w '%{{http_code}} ' {base}/api/hello; done; echo\n\
         \x20                                          # a burst: 200s, then 429 from the rate limit\n\
         \x20 curl -i {base}/.env; curl -i {base}/.git/config\n\
         \x20                                          # probes: 404, and they get your address banned\n\
         \x20 curl -i {base}/                          # now 403 with Retry-After: you are banned for 60 s\n"
    );
    if let Some(h) = https {
        println!("  curl -ik https://127.0.0.1:{}/         # HTTPS with a self-signed certificate", h.port());
    }
    if let Some(a) = admin {
        println!("  curl http://{a}/metrics              # Prometheus metrics");
        println!("  rampart bans list                      # who is banned, and why");
    }
    println!(
        "\nEvents go to the audit log in the data directory (audit/; read it with `rampart audit tail`), \
         WAF matches also to waf.log there. Ctrl-C stops.\n"
    );
}

async fn wait_for_stop() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        let mut term = match signal(SignalKind::terminate()) {
            Ok(s) => s,
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
                return;
            }
        };
        tokio::select! {
            _ = term.recv() => {}
            _ = tokio::signal::ctrl_c() => {}
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
    let _ = Duration::ZERO;
}
