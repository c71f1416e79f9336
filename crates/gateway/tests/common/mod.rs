//! Shared helpers of the gateway's integration tests: a recording
//! upstream, a gateway on ephemeral ports, and small HTTP clients.
#![allow(dead_code, clippy::unwrap_used)]

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use http::{HeaderMap, Request, Response, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo};
use rampart_audit::AuditLog;
use rampart_core::Config;
use rampart_gateway::{Gateway, Options};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpSocket, TcpStream};

/// What the upstream saw of one request.
#[derive(Clone, Debug)]
pub struct Seen {
    pub method: String,
    pub path: String,
    pub headers: HeaderMap,
    pub body_len: usize,
}

/// A recording upstream. Paths: `/status/NNN` answers NNN, `/sleep/MS`
/// waits MS milliseconds, `.../leak/sql` answers an HTML page with a
/// database error, anything else 200 "ok from NAME".
#[derive(Clone)]
pub struct Upstream {
    pub addr: SocketAddr,
    pub seen: Arc<Mutex<Vec<Seen>>>,
}

impl Upstream {
    pub async fn start(name: &'static str) -> Upstream {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        Self::serve(name, listener)
    }

    pub fn serve(name: &'static str, listener: TcpListener) -> Upstream {
        let addr = listener.local_addr().unwrap();
        let seen: Arc<Mutex<Vec<Seen>>> = Arc::default();
        let log = seen.clone();
        tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    continue;
                };
                let log = log.clone();
                tokio::spawn(async move {
                    let svc = service_fn(move |req: Request<Incoming>| {
                        let log = log.clone();
                        async move { Ok::<_, Infallible>(answer(name, log, req).await) }
                    });
                    let _ = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new())
                        .serve_connection(TokioIo::new(stream), svc)
                        .await;
                });
            }
        });
        Upstream { addr, seen }
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn count(&self) -> usize {
        self.seen.lock().unwrap().len()
    }

    pub fn last(&self) -> Seen {
        self.seen.lock().unwrap().last().cloned().expect("upstream saw a request")
    }
}

async fn answer(name: &str, log: Arc<Mutex<Vec<Seen>>>, req: Request<Incoming>) -> Response<Full<Bytes>> {
    let (parts, body) = req.into_parts();
    let body = body.collect().await.map(|b| b.to_bytes()).unwrap_or_default();
    let path = parts.uri.path().to_string();
    log.lock().unwrap().push(Seen {
        method: parts.method.to_string(),
        path: path.clone(),
        headers: parts.headers.clone(),
        body_len: body.len(),
    });
    let mut status = StatusCode::OK;
    if let Some(code) = path.strip_prefix("/status/") {
        status = StatusCode::from_u16(code.parse().unwrap_or(500)).unwrap();
    }
    if let Some(ms) = path.strip_prefix("/sleep/") {
        tokio::time::sleep(Duration::from_millis(ms.parse().unwrap_or(0))).await;
    }
    if path.ends_with("/leak/sql") {
        let page = "<html><body>Warning: You have an error in your SQL syntax; check the manual that corresponds \
                    to your MySQL server version for the right syntax to use near 'x' at line 1</body></html>";
        let mut r = Response::new(Full::new(Bytes::from(page)));
        r.headers_mut().insert("content-type", "text/html; charset=utf-8".parse().unwrap());
        return r;
    }
    let mut r = Response::new(Full::new(Bytes::from(format!("ok from {name}"))));
    *r.status_mut() = status;
    r.headers_mut().insert("server", "UpstreamServer/1.2.3".parse().unwrap());
    r.headers_mut().insert("x-powered-by", "PHP/5.6".parse().unwrap());
    r
}

/// A gateway under test with its data directory.
pub struct TestGateway {
    pub gw: Gateway,
    pub dir: tempfile::TempDir,
}

impl TestGateway {
    pub fn http(&self) -> SocketAddr {
        self.gw.http_addr().unwrap()
    }
    pub fn https(&self) -> SocketAddr {
        self.gw.https_addr().unwrap()
    }
    pub fn admin(&self) -> SocketAddr {
        self.gw.admin_addr().unwrap()
    }

    /// Every audit event so far, as JSON.
    pub fn events(&self) -> Vec<serde_json::Value> {
        self.gw.shared().audit.flush();
        audit_events(self.dir.path())
    }

    /// Audit events whose `event.reason` is `reason`.
    pub fn events_with_reason(&self, reason: &str) -> Vec<serde_json::Value> {
        self.events().into_iter().filter(|e| e["event"]["reason"] == reason).collect()
    }

    /// Waits (up to 3 s) for an event with `event.reason == reason`.
    pub async fn wait_event(&self, reason: &str) -> serde_json::Value {
        for _ in 0..60 {
            if let Some(e) = self.events_with_reason(reason).pop() {
                return e;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("no event with reason {reason}: {:#?}", self.events());
    }

    pub fn token(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("admin.token")).unwrap()
    }
}

/// The configuration text every test starts from: ephemeral loopback
/// ports, the data directory, and `extra`. `{UP}` in `extra` is replaced
/// by `upstream`.
pub fn config(dir: &std::path::Path, upstream: &str, extra: &str) -> Config {
    let base = format!(
        "data_dir = {dir:?}\n[listen]\nhttp = \"127.0.0.1:0\"\nhttps = \"127.0.0.1:0\"\nadmin = \"127.0.0.1:0\"\n"
    );
    let mut text = base + &extra.replace("{UP}", upstream);
    if !text.contains("[[routes]]") {
        text.push_str(&format!(
            "\n[upstreams.app]\naddresses = [\"{upstream}\"]\n[[routes]]\nname = \"app\"\nupstream = \"app\"\n"
        ));
    }
    Config::from_toml(&text, "test.toml").unwrap_or_else(|e| panic!("{e}\n{text}"))
}

/// Starts a gateway in front of `upstream` with `extra` configuration.
pub async fn gateway(upstream: &str, extra: &str) -> TestGateway {
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(dir.path(), upstream, extra);
    start_with(dir, cfg).await
}

pub async fn start_with(dir: tempfile::TempDir, cfg: Config) -> TestGateway {
    // A gateway of the same data directory may still be letting go of it.
    let mut audit = AuditLog::open(dir.path());
    for _ in 0..50 {
        if audit.is_ok() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
        audit = AuditLog::open(dir.path());
    }
    let audit = audit.unwrap();
    let mut opts = Options::new(cfg, audit);
    opts.poll_interval = Duration::from_millis(100);
    let gw = Gateway::start(opts).await.unwrap();
    TestGateway { gw, dir }
}

/// Every event of the audit log in `data_dir`, decrypted.
pub fn audit_events(data_dir: &std::path::Path) -> Vec<serde_json::Value> {
    let audit = data_dir.join("audit");
    let keys = rampart_audit::Keys::load_or_create(&audit).unwrap();
    rampart_audit::read::all_events(&audit, &keys)
}

/// The audit log as text, one JSON event a line.
pub fn audit_text(data_dir: &std::path::Path) -> String {
    audit_events(data_dir).iter().map(|v| v.to_string() + "\n").collect()
}

/// A response as the tests look at it.
#[derive(Debug)]
pub struct Resp {
    pub status: u16,
    pub headers: HeaderMap,
    pub body: String,
}

/// One request on a new connection from 127.0.0.1.
pub async fn request(addr: SocketAddr, method: &str, path: &str, headers: &[(&str, &str)], body: &str) -> Resp {
    request_from("127.0.0.1", addr, method, path, headers, body).await
}

pub async fn get(addr: SocketAddr, path: &str) -> Resp {
    request(addr, "GET", path, &[], "").await
}

/// One request on a new connection from source address `from` (any
/// 127.0.0.0/8 address works on Linux loopback).
pub async fn request_from(
    from: &str,
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &str,
) -> Resp {
    let stream = connect_from(from, addr).await;
    send(stream, method, path, headers, body).await
}

pub async fn connect_from(from: &str, addr: SocketAddr) -> TcpStream {
    let socket = TcpSocket::new_v4().unwrap();
    socket.bind(format!("{from}:0").parse().unwrap()).unwrap();
    socket.connect(addr).await.unwrap()
}

pub async fn send<S>(stream: S, method: &str, path: &str, headers: &[(&str, &str)], body: &str) -> Resp
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream)).await.unwrap();
    tokio::spawn(conn);
    let mut b = Request::builder().method(method).uri(path);
    if !headers.iter().any(|(n, _)| n.eq_ignore_ascii_case("host")) {
        b = b.header("host", "localhost");
    }
    for (n, v) in headers {
        b = b.header(*n, *v);
    }
    let req = b.body(Full::new(Bytes::from(body.to_string()))).unwrap();
    read_response(sender.send_request(req).await.unwrap()).await
}

/// A response, its body read whole.
async fn read_response(resp: Response<Incoming>) -> Resp {
    let status = resp.status().as_u16();
    let headers = resp.headers().clone();
    let body = resp.into_body().collect().await.map(|b| b.to_bytes()).unwrap_or_default();
    Resp { status, headers, body: String::from_utf8_lossy(&body).into_owned() }
}

/// Sends raw bytes and returns everything read until the server closes or
/// `wait` passes.
pub async fn raw(addr: SocketAddr, bytes: &[u8], wait: Duration) -> String {
    let mut s = TcpStream::connect(addr).await.unwrap();
    s.write_all(bytes).await.unwrap();
    let mut out = Vec::new();
    let _ = tokio::time::timeout(wait, s.read_to_end(&mut out)).await;
    String::from_utf8_lossy(&out).into_owned()
}

/// The status code of a raw HTTP/1.1 response.
pub fn status_of(raw: &str) -> u16 {
    raw.split(' ').nth(1).and_then(|s| s.parse().ok()).unwrap_or(0)
}

/// A TLS client config that trusts `ca_pem` and offers `alpn`.
pub fn tls_client(
    ca_pem: &[u8],
    versions: &[&'static rustls::SupportedProtocolVersion],
    alpn: &[&[u8]],
) -> Arc<rustls::ClientConfig> {
    use rustls_pki_types::pem::PemObject;
    let mut roots = rustls::RootCertStore::empty();
    for c in rustls_pki_types::CertificateDer::pem_slice_iter(ca_pem) {
        roots.add(c.unwrap()).unwrap();
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut cfg = rustls::ClientConfig::builder_with_provider(provider)
        .with_protocol_versions(versions)
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    cfg.alpn_protocols = alpn.iter().map(|a| a.to_vec()).collect();
    Arc::new(cfg)
}

/// Writes a self-signed certificate for `names` into `dir`.
pub fn write_cert(
    dir: &std::path::Path,
    names: &[&str],
    stem: &str,
) -> (std::path::PathBuf, std::path::PathBuf, String) {
    let g = rcgen::generate_simple_self_signed(names.iter().map(|s| s.to_string()).collect::<Vec<_>>()).unwrap();
    let cert = dir.join(format!("{stem}.crt"));
    let key = dir.join(format!("{stem}.key"));
    std::fs::write(&cert, g.cert.pem()).unwrap();
    std::fs::write(&key, g.signing_key.serialize_pem()).unwrap();
    (cert, key, g.cert.pem())
}

/// A key prefix no other test run uses, for tests against the shared Redis.
pub fn redis_prefix() -> String {
    format!("rampart-test:{:016x}:", fastrand::u64(..))
}

/// The Redis the development machines and CI run. Tests that need it fail
/// (never skip) when it is missing.
pub const REDIS_URL: &str = "redis://127.0.0.1:6379/0";

/// Sends one request over HTTP/2 on `stream` (TLS with ALPN `h2`, or
/// plain TCP for prior-knowledge h2c), as browsers and curl do: the host
/// in `:authority`, no `Host` header.
pub async fn send_h2<S>(stream: S, method: &str, uri: &str, headers: &[(&str, &str)], body: &str) -> Resp
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let (mut sender, conn) =
        hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(stream)).await.unwrap();
    tokio::spawn(conn);
    let mut b = Request::builder().method(method).uri(uri).version(http::Version::HTTP_2);
    for (n, v) in headers {
        b = b.header(*n, *v);
    }
    let req = b.body(Full::new(Bytes::from(body.to_string()))).unwrap();
    read_response(sender.send_request(req).await.unwrap()).await
}

/// A TLS connection to `addr` for `sni`, trusting `ca_pem`, offering `alpn`.
pub async fn tls_connect(
    addr: SocketAddr,
    ca_pem: &[u8],
    sni: &str,
    alpn: &[&[u8]],
) -> tokio_rustls::client::TlsStream<TcpStream> {
    let cfg = tls_client(ca_pem, &[&rustls::version::TLS13], alpn);
    let tcp = TcpStream::connect(addr).await.unwrap();
    let name = rustls_pki_types::ServerName::try_from(sni.to_string()).unwrap();
    tokio_rustls::TlsConnector::from(cfg).connect(name, tcp).await.unwrap()
}
