//! TLS termination: versions, ALPN, SNI, reload, self-signed fallback,
//! HTTP-to-HTTPS redirect and HSTS.
#![allow(clippy::unwrap_used)] // Tests and benchmarks may unwrap.

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::*;
use rustls_pki_types::ServerName;
use tokio_rustls::TlsConnector;

async fn handshake(
    addr: std::net::SocketAddr,
    cfg: Arc<rustls::ClientConfig>,
    sni: &str,
) -> Result<tokio_rustls::client::TlsStream<tokio::net::TcpStream>, std::io::Error> {
    let tcp = tokio::net::TcpStream::connect(addr).await?;
    TlsConnector::from(cfg).connect(ServerName::try_from(sni.to_string()).unwrap(), tcp).await
}

fn names_of_peer(s: &tokio_rustls::client::TlsStream<tokio::net::TcpStream>) -> Vec<u8> {
    s.get_ref().1.peer_certificates().unwrap()[0].as_ref().to_vec()
}

#[tokio::test]
async fn tls12_and_tls13_with_alpn_and_sni() {
    let up = Upstream::start("a").await;
    let dir = tempfile::tempdir().unwrap();
    let (c1, k1, pem1) = write_cert(dir.path(), &["one.example"], "one");
    let (c2, k2, pem2) = write_cert(dir.path(), &["*.two.example"], "two");
    let extra = format!(
        "[[tls.certificates]]\ncert = {c1:?}\nkey = {k1:?}\n[[tls.certificates]]\ncert = {c2:?}\nkey = {k2:?}\n"
    );
    let g = gateway(&up.url(), &extra).await;
    let both = format!("{pem1}{pem2}");

    let v13 = tls_client(both.as_bytes(), &[&rustls::version::TLS13], &[b"h2", b"http/1.1"]);
    let s = handshake(g.https(), v13, "one.example").await.unwrap();
    assert_eq!(s.get_ref().1.protocol_version(), Some(rustls::ProtocolVersion::TLSv1_3));
    assert_eq!(s.get_ref().1.alpn_protocol(), Some(&b"h2"[..]));

    let v12 = tls_client(both.as_bytes(), &[&rustls::version::TLS12], &[b"http/1.1"]);
    let s = handshake(g.https(), v12.clone(), "api.two.example").await.unwrap();
    assert_eq!(s.get_ref().1.protocol_version(), Some(rustls::ProtocolVersion::TLSv1_2));
    assert_eq!(s.get_ref().1.alpn_protocol(), Some(&b"http/1.1"[..]));
    // SNI picked the wildcard certificate (the handshake verified the name).
    let second = names_of_peer(&s);
    let first = names_of_peer(&handshake(g.https(), v12, "one.example").await.unwrap());
    assert_ne!(first, second);

    // An HTTP/1.1 request over TLS gets HSTS; HTTP/2 works too.
    let s =
        handshake(g.https(), tls_client(both.as_bytes(), &[&rustls::version::TLS13], &[b"http/1.1"]), "one.example")
            .await
            .unwrap();
    let r = send(s, "GET", "/", &[("host", "one.example")], "").await;
    assert_eq!(r.status, 200);
    assert!(r.headers["strict-transport-security"].to_str().unwrap().contains("max-age=31536000"));
    assert_eq!(up.last().headers["x-forwarded-proto"], "https");

    let s = handshake(g.https(), tls_client(both.as_bytes(), &[&rustls::version::TLS13], &[b"h2"]), "one.example")
        .await
        .unwrap();
    let (mut sender, conn) =
        hyper::client::conn::http2::handshake(hyper_util::rt::TokioExecutor::new(), hyper_util::rt::TokioIo::new(s))
            .await
            .unwrap();
    tokio::spawn(conn);
    let req = http::Request::get("https://one.example/h2").body(http_body_util::Empty::<bytes::Bytes>::new()).unwrap();
    let resp = sender.send_request(req).await.unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(up.last().path, "/h2");
    assert_eq!(up.last().headers["host"], "one.example");

    // Plain HTTP responses carry no HSTS.
    assert!(get(g.http(), "/").await.headers.get("strict-transport-security").is_none());
}

#[tokio::test]
async fn min_version_13_refuses_tls12() {
    let up = Upstream::start("a").await;
    let dir = tempfile::tempdir().unwrap();
    let (c, k, pem) = write_cert(dir.path(), &["one.example"], "one");
    let g =
        gateway(&up.url(), &format!("[tls]\nmin_version = \"1.3\"\n[[tls.certificates]]\ncert = {c:?}\nkey = {k:?}\n"))
            .await;
    let v12 = tls_client(pem.as_bytes(), &[&rustls::version::TLS12], &[]);
    assert!(handshake(g.https(), v12, "one.example").await.is_err());
    let v13 = tls_client(pem.as_bytes(), &[&rustls::version::TLS13], &[]);
    assert!(handshake(g.https(), v13, "one.example").await.is_ok());
}

#[tokio::test]
async fn self_signed_certificate_when_none_is_configured() {
    let up = Upstream::start("a").await;
    let g = gateway(&up.url(), "").await;
    let pem = std::fs::read(g.dir.path().join("tls/self-signed.crt")).unwrap();
    let cfg = tls_client(&pem, &[&rustls::version::TLS13], &[]);
    let s = handshake(g.https(), cfg, "localhost").await.unwrap();
    assert_eq!(send(s, "GET", "/", &[], "").await.status, 200);
    let key = g.dir.path().join("tls/self-signed.key");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(std::fs::metadata(key).unwrap().permissions().mode() & 0o777, 0o600);
    }
}

#[tokio::test]
async fn certificates_reload_when_their_files_change() {
    let up = Upstream::start("a").await;
    let dir = tempfile::tempdir().unwrap();
    let (c, k, old_pem) = write_cert(dir.path(), &["site.example"], "site");
    let g = gateway(&up.url(), &format!("[[tls.certificates]]\ncert = {c:?}\nkey = {k:?}\n")).await;
    let s = handshake(g.https(), tls_client(old_pem.as_bytes(), &[&rustls::version::TLS13], &[]), "site.example")
        .await
        .unwrap();
    let before = names_of_peer(&s);
    tokio::time::sleep(Duration::from_millis(1100)).await; // a new mtime
    let (_, _, new_pem) = write_cert(dir.path(), &["site.example"], "site");
    tokio::time::sleep(Duration::from_millis(200)).await;
    g.gw.reload().await.unwrap();
    let s = handshake(g.https(), tls_client(new_pem.as_bytes(), &[&rustls::version::TLS13], &[]), "site.example")
        .await
        .unwrap();
    assert_ne!(before, names_of_peer(&s));
    // A broken file is refused and the working certificate stays.
    std::fs::write(&c, "garbage").unwrap();
    assert!(g.gw.reload().await.is_err());
    assert!(handshake(g.https(), tls_client(new_pem.as_bytes(), &[&rustls::version::TLS13], &[]), "site.example")
        .await
        .is_ok());
    assert!(g.events().iter().any(|e| e["event"]["action"] == "config-reload-failed"));
}

#[tokio::test]
async fn http_redirects_to_https_when_asked() {
    let up = Upstream::start("a").await;
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = config(dir.path(), &up.url(), "");
    cfg.listen.redirect_https = true;
    let g = start_with(dir, cfg).await;
    let r = request(g.http(), "GET", "/login?next=/a", &[("host", "shop.example:8080")], "").await;
    assert_eq!(r.status, 308);
    assert_eq!(r.headers["location"], format!("https://shop.example:{}/login?next=/a", g.https().port()).as_str());
    assert_eq!(up.count(), 0);
}
