//! `rampart bans list|add|remove`: the ban list of a running gateway,
//! through its admin API.

use std::process::ExitCode;

use bytes::Bytes;
use clap::{Args, Subcommand};
use http_body_util::{BodyExt, Full};
use hyper::Request;
use hyper_util::rt::TokioIo;

use super::{CliError, ConfigArgs};

/// List, add or remove bans on a running gateway.
///
/// Talks to the admin listener (listen.admin) with the token in
/// DATA_DIR/admin.token. With Redis configured, the change reaches every
/// replica.
///
/// Exit status: 0 done, 1 the gateway refused or cannot be reached.
#[derive(Args)]
pub struct BansArgs {
    #[command(subcommand)]
    action: Action,
    #[command(flatten)]
    config: ConfigArgs,
    /// Print JSON
    #[arg(long, global = true)]
    json: bool,
}

#[derive(Subcommand)]
enum Action {
    /// Show the bans in force
    List,
    /// Ban an address
    Add {
        /// IPv4 or IPv6 address
        ip: std::net::IpAddr,
        /// How long [default: the configured bans.duration]
        #[arg(long)]
        duration: Option<String>,
        /// Why (goes to the audit log)
        #[arg(long)]
        reason: Option<String>,
    },
    /// Lift a ban
    Remove {
        /// IPv4 or IPv6 address
        ip: std::net::IpAddr,
    },
}

pub fn run(args: BansArgs) -> Result<ExitCode, CliError> {
    let config = args.config.load()?;
    if config.listen.admin.is_empty() {
        return Err(CliError::Other("listen.admin is disabled; the bans API needs the admin listener".into()));
    }
    let token_path = config.data_dir().join("admin.token");
    let token = std::fs::read_to_string(&token_path).map_err(|e| {
        CliError::Other(format!("{}: {e} (is `rampart serve` running with this data directory?)", token_path.display()))
    })?;
    let (method, path, body) = match &args.action {
        Action::List => ("GET", "/bans".to_string(), String::new()),
        Action::Add { ip, duration, reason } => {
            let mut v = serde_json::json!({ "ip": ip });
            if let Some(d) = duration {
                v["duration"] = d.clone().into();
            }
            if let Some(r) = reason {
                v["reason"] = r.clone().into();
            }
            ("POST", "/bans".to_string(), v.to_string())
        }
        Action::Remove { ip } => ("DELETE", format!("/bans/{ip}"), String::new()),
    };
    let admin = config.listen.admin.replace("0.0.0.0", "127.0.0.1").replace("[::]", "[::1]");
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| CliError::Other(e.to_string()))?;
    let (status, text) = rt
        .block_on(call(&admin, method, &path, token.trim(), body))
        .map_err(|e| CliError::Other(format!("admin API at {admin}: {e}")))?;
    if !(200..300).contains(&status) {
        return Err(CliError::Other(format!("admin API answered {status}: {}", text.trim())));
    }
    match (&args.action, args.json) {
        (_, true) => println!("{}", text.trim()),
        (Action::List, false) => {
            let bans: Vec<serde_json::Value> = serde_json::from_str(&text).unwrap_or_default();
            if bans.is_empty() {
                println!("no bans in force");
            }
            let now = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_millis() as u64)
                .unwrap_or(0);
            for b in bans {
                let left = b["until_ms"].as_u64().unwrap_or(0).saturating_sub(now) / 1000;
                println!(
                    "{:<40} {:>6}s left  ban #{}  {}",
                    b["ip"].as_str().unwrap_or("?"),
                    left,
                    b["count"],
                    b["reason"].as_str().unwrap_or("")
                );
            }
        }
        (Action::Add { ip, .. }, false) => println!("banned {ip}"),
        (Action::Remove { ip }, false) => println!("unbanned {ip}"),
    }
    Ok(ExitCode::SUCCESS)
}

async fn call(
    addr: &str,
    method: &str,
    path: &str,
    token: &str,
    body: String,
) -> Result<(u16, String), Box<dyn std::error::Error>> {
    let stream = tokio::net::TcpStream::connect(addr).await?;
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream)).await?;
    tokio::spawn(conn);
    let req = Request::builder()
        .method(method)
        .uri(path)
        .header("host", addr)
        .header("authorization", format!("Bearer {token}"))
        .header("content-type", "application/json")
        .body(Full::new(Bytes::from(body)))?;
    let resp = sender.send_request(req).await?;
    let status = resp.status().as_u16();
    let bytes = resp.into_body().collect().await?.to_bytes();
    Ok((status, String::from_utf8_lossy(&bytes).into_owned()))
}
