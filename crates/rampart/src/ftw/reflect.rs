//! The reflecting backend the CRS regression tests expect behind the WAF:
//! any request gets 200 with an empty body, except `POST /reflect`, whose
//! JSON body `{status, headers, body, encodedBody}` says what to answer
//! (how the RESPONSE-95x tests make the backend leak content).

use std::convert::Infallible;
use std::net::SocketAddr;

use base64::Engine as _;
use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper::header::{HeaderName, HeaderValue};
use hyper::{Method, Request, Response, StatusCode};

/// Starts the backend on `127.0.0.1:0` and returns its address.
pub async fn start() -> std::io::Result<SocketAddr> {
    rampart_gateway::demo::serve_local(handle).await
}

#[derive(serde::Deserialize, Default)]
#[serde(rename_all = "camelCase")]
struct Reflect {
    status: Option<u16>,
    #[serde(default)]
    headers: std::collections::BTreeMap<String, String>,
    body: Option<String>,
    encoded_body: Option<String>,
}

async fn handle(req: Request<Incoming>) -> Result<Response<Full<Bytes>>, Infallible> {
    let reflect = req.method() == Method::POST && req.uri().path() == "/reflect";
    let body = Limited::new(req.into_body(), 16 << 20).collect().await.map(|b| b.to_bytes()).unwrap_or_default();
    if !reflect {
        return Ok(Response::new(Full::new(Bytes::new())));
    }
    let spec: Reflect = serde_json::from_slice(&body).unwrap_or_default();
    let content = match (&spec.encoded_body, &spec.body) {
        (Some(b64), _) => base64::engine::general_purpose::STANDARD.decode(b64.trim()).unwrap_or_default(),
        (None, Some(text)) => text.clone().into_bytes(),
        (None, None) => Vec::new(),
    };
    let mut r = Response::new(Full::new(Bytes::from(content)));
    *r.status_mut() = spec.status.and_then(|s| StatusCode::from_u16(s).ok()).unwrap_or(StatusCode::OK);
    // A body without a type gets what a Go or Python test backend would
    // send: text/plain.
    if !spec.headers.keys().any(|k| k.eq_ignore_ascii_case("content-type")) {
        r.headers_mut().insert(hyper::header::CONTENT_TYPE, HeaderValue::from_static("text/plain; charset=utf-8"));
    }
    for (k, v) in &spec.headers {
        if let (Ok(k), Ok(v)) = (HeaderName::from_bytes(k.as_bytes()), HeaderValue::from_str(v)) {
            if k != hyper::header::CONTENT_LENGTH {
                r.headers_mut().append(k, v);
            }
        }
    }
    Ok(r)
}
