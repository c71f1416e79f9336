//! The admin listener (loopback by default): `/healthz`, `/readyz`,
//! Prometheus `/metrics`, and the bans API that `rampart bans` uses.
//!
//! | method and path        | auth  | answer                              |
//! |------------------------|-------|-------------------------------------|
//! | `GET /healthz`         | none  | 200 while the process serves        |
//! | `GET /readyz`          | none  | 200 when every pool has a healthy address, else 503 |
//! | `GET /metrics`         | none  | Prometheus text format              |
//! | `GET /bans`            | token | JSON list of bans in force          |
//! | `POST /bans`           | token | `{"ip":..,"duration":"1h","reason":..}` bans |
//! | `DELETE /bans/IP`      | token | lifts a ban                         |
//!
//! The token is `DATA_DIR/admin.token` (mode 0600), sent as
//! `Authorization: Bearer TOKEN` and compared in constant time.

use std::convert::Infallible;
use std::net::IpAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::{header, Method, Request, Response, StatusCode};
use http_body_util::{BodyExt, Limited};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use rampart_core::{Event, HumanDuration, Outcome};
use subtle::ConstantTimeEq;
use tokio::net::TcpListener;
use tokio::sync::watch;

use crate::body::ResponseBody;
use crate::Shared;

/// Reads the admin token, creating it (random, 0600) the first time.
pub fn load_or_create_token(data_dir: &Path) -> std::io::Result<String> {
    let path = data_dir.join("admin.token");
    if let Ok(t) = std::fs::read_to_string(&path) {
        let t = t.trim().to_string();
        if t.len() >= 32 {
            return Ok(t);
        }
    }
    rampart_core::private_fs::create_dir(data_dir)?;
    let mut bytes = [0u8; 32];
    ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut bytes)
        .map_err(|_| std::io::Error::other("no secure random numbers"))?;
    let token: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(0o600);
    }
    use std::io::Write;
    opts.open(&path)?.write_all(token.as_bytes())?;
    Ok(token)
}

/// Serves the admin API until shutdown.
pub async fn serve(shared: Arc<Shared>, listener: TcpListener, token: Arc<str>, mut shutdown: watch::Receiver<bool>) {
    loop {
        let (stream, _) = tokio::select! {
            a = listener.accept() => match a {
                Ok(a) => a,
                Err(_) => {
                    // Out of descriptors: back off instead of spinning.
                    tokio::time::sleep(Duration::from_millis(20)).await;
                    continue;
                }
            },
            _ = shutdown.changed() => return,
        };
        let shared = shared.clone();
        let token = token.clone();
        tokio::spawn(async move {
            let svc = service_fn(move |req| handle(shared.clone(), token.clone(), req));
            let _ = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new())
                .http1()
                .timer(TokioTimer::new())
                .header_read_timeout(Duration::from_secs(10))
                .serve_connection(TokioIo::new(stream), svc)
                .await;
        });
    }
}

async fn handle(
    shared: Arc<Shared>,
    token: Arc<str>,
    req: Request<Incoming>,
) -> Result<Response<ResponseBody>, Infallible> {
    let path = req.uri().path().to_string();
    let resp = match (req.method(), path.as_str()) {
        (&Method::GET, "/healthz") => text(StatusCode::OK, "ok\n"),
        (&Method::GET, "/readyz") => {
            let rt = shared.runtime.load();
            let down: Vec<&str> = rt.pools.values().filter(|p| !p.any_healthy()).map(|p| &*p.name).collect();
            if down.is_empty() {
                text(StatusCode::OK, "ready\n")
            } else {
                text(StatusCode::SERVICE_UNAVAILABLE, &format!("no healthy address in: {}\n", down.join(", ")))
            }
        }
        (&Method::GET, "/metrics") => {
            let rt = shared.runtime.load();
            let mut extra = String::new();
            extra.push_str("# HELP rampart_upstream_healthy Whether an upstream address takes requests.\n# TYPE rampart_upstream_healthy gauge\n");
            for p in rt.pools.values() {
                p.render_health(&mut extra);
            }
            extra.push_str(&format!(
                "# HELP rampart_bans_active Clients banned now.\n# TYPE rampart_bans_active gauge\nrampart_bans_active {}\n\
                 # HELP rampart_audit_events_dropped_total Audit events lost to a full queue.\n# TYPE rampart_audit_events_dropped_total counter\nrampart_audit_events_dropped_total {}\n",
                shared.bans.list().len(),
                shared.audit.dropped()
            ));
            let mut r = text(StatusCode::OK, &shared.metrics.render(&extra));
            r.headers_mut().insert(header::CONTENT_TYPE, header::HeaderValue::from_static("text/plain; version=0.0.4"));
            r
        }
        (_, p) if p == "/bans" || p.starts_with("/bans/") => {
            if !authorized(&req, &token) {
                let mut r = text(StatusCode::UNAUTHORIZED, "missing or wrong admin token\n");
                r.headers_mut().insert(header::WWW_AUTHENTICATE, header::HeaderValue::from_static("Bearer"));
                return Ok(r);
            }
            bans(&shared, req).await
        }
        _ => text(StatusCode::NOT_FOUND, "not found\n"),
    };
    Ok(resp)
}

fn authorized(req: &Request<Incoming>, token: &str) -> bool {
    let Some(v) = req.headers().get(header::AUTHORIZATION).and_then(|v| v.to_str().ok()) else {
        return false;
    };
    let Some(given) = v.strip_prefix("Bearer ") else {
        return false;
    };
    given.as_bytes().ct_eq(token.as_bytes()).into()
}

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct BanRequest {
    ip: IpAddr,
    #[serde(default)]
    duration: Option<HumanDuration>,
    #[serde(default)]
    reason: Option<String>,
}

async fn bans(shared: &Shared, req: Request<Incoming>) -> Response<ResponseBody> {
    let rt = shared.runtime.load_full();
    let method = req.method().clone();
    let path = req.uri().path().to_string();
    match (method, path.strip_prefix("/bans").unwrap_or("")) {
        (Method::GET, "" | "/") => json(StatusCode::OK, &serde_json::to_value(shared.bans.list()).unwrap_or_default()),
        (Method::POST, "" | "/") => {
            let body = match Limited::new(req.into_body(), 4096).collect().await {
                Ok(b) => b.to_bytes(),
                Err(_) => return text(StatusCode::PAYLOAD_TOO_LARGE, "body too large\n"),
            };
            let r: BanRequest = match serde_json::from_slice(&body) {
                Ok(r) => r,
                Err(e) => {
                    return text(
                        StatusCode::BAD_REQUEST,
                        &format!(
                            "expected {{\"ip\": \"192.0.2.1\", \"duration\": \"1h\", \"reason\": \"...\"}}: {e}\n"
                        ),
                    )
                }
            };
            let reason = r.reason.unwrap_or_else(|| "banned by an operator".into());
            match shared.bans.ban(r.ip, r.duration.map(|d| d.get()), &reason, &rt.bans).await {
                Some(b) => {
                    shared.audit.emit(
                        Event::new("configuration", "ban-added")
                            .outcome(Outcome::Success)
                            .source_ip(r.ip)
                            .reason(reason),
                    );
                    json(StatusCode::CREATED, &serde_json::to_value(b).unwrap_or_default())
                }
                None => text(StatusCode::SERVICE_UNAVAILABLE, "ban store unavailable\n"),
            }
        }
        (Method::DELETE, rest) => match rest.trim_start_matches('/').parse::<IpAddr>() {
            Ok(ip) => {
                if shared.bans.unban(ip, &rt.bans).await {
                    text(StatusCode::OK, "unbanned\n")
                } else {
                    text(StatusCode::NOT_FOUND, "not banned\n")
                }
            }
            Err(_) => text(StatusCode::BAD_REQUEST, "expected DELETE /bans/IP\n"),
        },
        _ => text(StatusCode::METHOD_NOT_ALLOWED, "use GET, POST or DELETE\n"),
    }
}

fn text(status: StatusCode, body: &str) -> Response<ResponseBody> {
    let mut r = Response::new(ResponseBody::text(Bytes::copy_from_slice(body.as_bytes())));
    *r.status_mut() = status;
    r.headers_mut().insert(header::CONTENT_TYPE, header::HeaderValue::from_static("text/plain; charset=utf-8"));
    r
}

fn json(status: StatusCode, v: &serde_json::Value) -> Response<ResponseBody> {
    let mut r = Response::new(ResponseBody::text(v.to_string()));
    *r.status_mut() = status;
    r.headers_mut().insert(header::CONTENT_TYPE, header::HeaderValue::from_static("application/json"));
    r
}
