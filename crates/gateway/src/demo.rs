//! A small demo application, started behind the gateway when no upstream
//! is configured, so that a new user sees the protection work at once.
//!
//! It serves a page (`/`), a JSON API (`/api/hello`), an echo of POSTed
//! bodies (`/api/echo`) and `/healthz`, on an ephemeral loopback port.

use std::convert::Infallible;
use std::net::SocketAddr;

use bytes::Bytes;
use http::{header, Method, Request, Response, StatusCode};
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::net::TcpListener;

const PAGE: &str = r#"<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Rampart demo app</title></head>
<body>
<h1>Demo app, protected by Rampart</h1>
<p>This page comes from a small app running behind the Rampart gateway.
Every response you see passed Rampart's checks and carries its security headers.</p>
<ul>
<li><a href="/api/hello">/api/hello</a>: a JSON API (rate limited)</li>
<li><code>POST /api/echo</code>: echoes the body size (body size limited)</li>
<li><a href="/.env">/.env</a>: a probe; two of these and your address is banned</li>
</ul>
</body></html>
"#;

/// Starts the demo app on `127.0.0.1:0` and returns its address.
pub async fn start() -> std::io::Result<SocketAddr> {
    serve_local(handle).await
}

/// Serves `handler` on an ephemeral loopback port (HTTP/1.1 and HTTP/2)
/// and returns the address: the demo app, and the reflecting backend of
/// `rampart waf test`.
pub async fn serve_local<F, Fut>(handler: F) -> std::io::Result<SocketAddr>
where
    F: Fn(Request<Incoming>) -> Fut + Clone + Send + Sync + 'static,
    Fut: std::future::Future<Output = Result<Response<Full<Bytes>>, Infallible>> + Send + 'static,
{
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                continue;
            };
            let handler = handler.clone();
            tokio::spawn(async move {
                let _ = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new())
                    .serve_connection(TokioIo::new(stream), service_fn(handler))
                    .await;
            });
        }
    });
    Ok(addr)
}

async fn handle(req: Request<Incoming>) -> Result<Response<Full<Bytes>>, Infallible> {
    let (status, ctype, body): (StatusCode, &str, Bytes) = match (req.method(), req.uri().path()) {
        (&Method::GET, "/") => (StatusCode::OK, "text/html; charset=utf-8", Bytes::from_static(PAGE.as_bytes())),
        (&Method::GET, "/healthz") => (StatusCode::OK, "text/plain", Bytes::from_static(b"ok\n")),
        (&Method::GET, "/api/hello") => {
            let who = req.headers().get("x-forwarded-for").and_then(|v| v.to_str().ok()).unwrap_or("?").to_string();
            (StatusCode::OK, "application/json", Bytes::from(format!("{{\"hello\":\"world\",\"you\":\"{who}\"}}\n")))
        }
        (&Method::POST, "/api/echo") => match Limited::new(req.into_body(), 64 << 20).collect().await {
            Ok(b) => {
                let n = b.to_bytes().len();
                (StatusCode::OK, "application/json", Bytes::from(format!("{{\"received_bytes\":{n}}}\n")))
            }
            Err(_) => (StatusCode::BAD_REQUEST, "text/plain", Bytes::from_static(b"bad body\n")),
        },
        _ => (StatusCode::NOT_FOUND, "text/plain", Bytes::from_static(b"not found\n")),
    };
    let mut r = Response::new(Full::new(body));
    *r.status_mut() = status;
    r.headers_mut().insert(header::CONTENT_TYPE, header::HeaderValue::from_static(ctype));
    // What an unhardened app leaks; the gateway removes it.
    r.headers_mut().insert("x-powered-by", header::HeaderValue::from_static("DemoFramework/1.0"));
    Ok(r)
}
