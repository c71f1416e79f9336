//! A go-ftw test's request over HTTP/2: rebuilt from its method, target,
//! headers and body, the `Host` header as the `:authority`, the headers
//! HTTP/2 forbids (RFC 9113 8.2.2) left out, sent on a connection of its
//! own, over h2c or TLS with ALPN `h2`.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::{Request, Uri};
use http_body_util::{BodyExt, Full};
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::net::TcpStream;

use super::format::Input;
use super::{render, yaml_text, Reply};

/// Headers that describe an HTTP/1.1 connection: HTTP/2 has none.
const CONNECTION_HEADERS: [&str; 6] =
    ["connection", "keep-alive", "proxy-connection", "transfer-encoding", "upgrade", "te"];

/// The request of `input` as HTTP/2, or `None` when HTTP/2 cannot carry
/// it (a raw encoded request, another version than HTTP/1.1, a target or
/// header that is no valid HTTP/2 field).
pub fn request(input: &Input) -> Option<Request<Full<Bytes>>> {
    if input.encoded_request.is_some() || input.version.as_deref().is_some_and(|v| v != "HTTP/1.1") {
        return None;
    }
    let method = input.method.as_deref().unwrap_or("GET");
    let target = input.uri.as_deref().unwrap_or("/");
    let data = render(input.data.as_deref().unwrap_or(""));
    let mut host = None;
    let mut headers = Vec::new();
    for (k, v) in &input.headers {
        let (k, v) = (yaml_text(k), yaml_text(v));
        let lower = k.to_ascii_lowercase();
        if lower == "host" {
            host = Some(v);
        } else if !CONNECTION_HEADERS.contains(&lower.as_str()) {
            headers.push((lower, v));
        }
    }
    // HTTP/2 frames the body itself: a Content-Length that disagrees with
    // it is a stream error before anything is sent.
    let declared = headers.iter().find(|(k, _)| k == "content-length").map(|(_, v)| v.trim().to_string());
    if declared.is_some_and(|v| v != data.len().to_string()) {
        return None;
    }
    if input.autocomplete_headers.unwrap_or(true)
        && !data.is_empty()
        && !headers.iter().any(|(k, _)| k == "content-type")
    {
        headers.push(("content-type".into(), "application/x-www-form-urlencoded".into()));
    }
    // The authority comes from Host; without one the request has none
    // (the rules then see no Host, as the test means).
    let uri: Uri = match (&host, target.starts_with('/')) {
        (Some(h), true) => format!("http://{h}{target}").parse().ok()?,
        (None, true) => target.parse().ok()?,
        (_, false) => target.parse().ok()?,
    };
    let mut b = Request::builder().method(method).uri(uri).version(http::Version::HTTP_2);
    for (k, v) in headers {
        b = b.header(k, v);
    }
    b.body(Full::new(Bytes::from(data))).ok()
}

/// A client configuration for TLS with ALPN `h2`, trusting `ca_pem`.
pub fn tls_config(ca_pem: &[u8]) -> Result<Arc<rustls::ClientConfig>, String> {
    use rustls_pki_types::pem::PemObject;
    let mut roots = rustls::RootCertStore::empty();
    for c in rustls_pki_types::CertificateDer::pem_slice_iter(ca_pem) {
        roots.add(c.map_err(|e| e.to_string())?).map_err(|e| e.to_string())?;
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut cfg = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?
        .with_root_certificates(roots)
        .with_no_client_auth();
    cfg.alpn_protocols = vec![b"h2".to_vec()];
    Ok(Arc::new(cfg))
}

/// Sends `req` over h2c (prior knowledge).
pub async fn send_plain(addr: SocketAddr, req: Request<Full<Bytes>>) -> Result<Reply, String> {
    let tcp = TcpStream::connect(addr).await.map_err(|e| e.to_string())?;
    exchange(tcp, req).await
}

/// Sends `req` over TLS, HTTP/2 negotiated with ALPN.
pub async fn send_tls(
    addr: SocketAddr,
    tls: Arc<rustls::ClientConfig>,
    req: Request<Full<Bytes>>,
) -> Result<Reply, String> {
    let tcp = TcpStream::connect(addr).await.map_err(|e| e.to_string())?;
    let name = rustls_pki_types::ServerName::try_from("localhost").map_err(|e| e.to_string())?;
    let stream = tokio_rustls::TlsConnector::from(tls).connect(name, tcp).await.map_err(|e| e.to_string())?;
    if stream.get_ref().1.alpn_protocol() != Some(b"h2") {
        return Err("the gateway did not choose h2".into());
    }
    exchange(stream, req).await
}

async fn exchange<S>(stream: S, req: Request<Full<Bytes>>) -> Result<Reply, String>
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let work = async {
        let (mut sender, conn) = hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(stream))
            .await
            .map_err(|e| e.to_string())?;
        tokio::spawn(conn);
        let resp = sender.send_request(req).await.map_err(|e| e.to_string())?;
        let status = resp.status().as_u16();
        let request_id = resp.headers().get("x-request-id").and_then(|v| v.to_str().ok()).map(str::to_string);
        let _ = resp.into_body().collect().await;
        Ok(Reply { status, request_id })
    };
    tokio::time::timeout(Duration::from_secs(3), work).await.map_err(|_| "no response".to_string())?
}
