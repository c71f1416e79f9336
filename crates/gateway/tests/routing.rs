//! Routing, forwarding headers, upstream pools and their health.
#![allow(clippy::unwrap_used)] // Tests and benchmarks may unwrap.

mod common;

use std::time::Duration;

use common::*;

#[tokio::test]
async fn forwards_with_x_forwarded_headers_and_request_id() {
    let up = Upstream::start("a").await;
    let g = gateway(&up.url(), "").await;
    let r = request(
        g.http(),
        "GET",
        "/hello?x=1",
        &[
            ("host", "shop.example"),
            ("x-forwarded-for", "6.6.6.6"),
            ("connection", "keep-alive, x-drop"),
            ("x-drop", "1"),
        ],
        "",
    )
    .await;
    assert_eq!(r.status, 200);
    assert_eq!(r.body, "ok from a");
    let seen = up.last();
    assert_eq!(seen.path, "/hello");
    // The client is not a trusted proxy: its X-Forwarded-For is replaced.
    assert_eq!(seen.headers["x-forwarded-for"], "127.0.0.1");
    assert_eq!(seen.headers["x-forwarded-proto"], "http");
    assert_eq!(seen.headers["x-forwarded-host"], "shop.example");
    assert_eq!(seen.headers["host"], "shop.example");
    assert!(seen.headers.get("x-drop").is_none(), "Connection-listed header forwarded");
    let id = seen.headers["x-request-id"].to_str().unwrap().to_string();
    assert_eq!(id.len(), 32);
    assert_eq!(r.headers["x-request-id"], id.as_str());
}

#[tokio::test]
async fn trusted_proxy_forwarding_headers_are_kept_and_extended() {
    let up = Upstream::start("a").await;
    let g = gateway(&up.url(), "[ip_policy]\ntrusted_proxies = [\"127.0.0.0/8\"]\n").await;
    let r = request(
        g.http(),
        "GET",
        "/",
        &[("x-forwarded-for", "203.0.113.7"), ("x-forwarded-proto", "https"), ("x-request-id", "lb-42")],
        "",
    )
    .await;
    assert_eq!(r.status, 200);
    let seen = up.last();
    assert_eq!(seen.headers["x-forwarded-for"], "203.0.113.7, 127.0.0.1");
    assert_eq!(seen.headers["x-forwarded-proto"], "https");
    assert_eq!(seen.headers["x-request-id"], "lb-42");
}

#[tokio::test]
async fn routes_by_host_and_path_prefix() {
    let api = Upstream::start("api").await;
    let web = Upstream::start("web").await;
    let extra = format!(
        "[upstreams.api]\naddresses = [\"{}\"]\n[upstreams.web]\naddresses = [\"{}\"]\n\
         [[routes]]\nname = \"api\"\nhosts = [\"api.example.com\"]\npath_prefix = \"/v1\"\nupstream = \"api\"\n\
         [[routes]]\nname = \"web\"\nhosts = [\"*.example.com\"]\nupstream = \"web\"\n",
        api.url(),
        web.url()
    );
    let g = gateway("unused", &extra).await;
    let host = |h: &'static str| [("host", h)];
    assert_eq!(request(g.http(), "GET", "/v1/users", &host("api.example.com"), "").await.body, "ok from api");
    assert_eq!(request(g.http(), "GET", "/v2/users", &host("api.example.com"), "").await.body, "ok from web");
    assert_eq!(request(g.http(), "GET", "/", &host("www.example.com:8080"), "").await.body, "ok from web");
    let r = request(g.http(), "GET", "/", &host("other.org"), "").await;
    assert_eq!(r.status, 404);
    assert!(r.body.contains("no route"));
}

#[tokio::test]
async fn round_robin_and_passive_ejection_of_a_dead_address() {
    let a = Upstream::start("a").await;
    let b = Upstream::start("b").await;
    // A port nobody listens on.
    let dead = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap();
    let extra = format!(
        "[upstreams.app]\naddresses = [\"{}\", \"{}\", \"http://{dead}\"]\npassive = {{ failures = 1, eject_for = \"60s\" }}\n\
         [[routes]]\nname = \"app\"\nupstream = \"app\"\n",
        a.url(),
        b.url()
    );
    let g = gateway("unused", &extra).await;
    for _ in 0..12 {
        // Every request succeeds: a refused connection is retried elsewhere.
        assert_eq!(get(g.http(), "/").await.status, 200);
    }
    assert_eq!(a.count() + b.count(), 12);
    assert!(a.count() >= 4 && b.count() >= 4, "a={} b={}", a.count(), b.count());
    let ejected = g.events().into_iter().filter(|e| e["event"]["action"] == "upstream-ejected").count();
    assert_eq!(ejected, 1, "the dead address is ejected once");
}

#[tokio::test]
async fn active_health_checks_take_an_address_out_and_back() {
    let a = Upstream::start("a").await;
    let b_listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let b_addr = b_listener.local_addr().unwrap();
    drop(b_listener);
    let extra = format!(
        "[upstreams.app]\naddresses = [\"{}\", \"http://{b_addr}\"]\n\
         health_check = {{ path = \"/healthz\", interval = \"100ms\", timeout = \"200ms\", unhealthy_after = 1, healthy_after = 1 }}\n\
         passive = {{ failures = 0 }}\n[[routes]]\nname = \"app\"\nupstream = \"app\"\n",
        a.url()
    );
    let g = gateway("unused", &extra).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let metrics = get(g.admin(), "/metrics").await.body;
    assert!(metrics.contains(&format!("address=\"http://{b_addr}\"}} 0")), "{metrics}");
    // The address comes back when it answers its health check.
    let b = Upstream::serve("b", tokio::net::TcpListener::bind(b_addr).await.unwrap());
    tokio::time::sleep(Duration::from_millis(600)).await;
    let metrics = get(g.admin(), "/metrics").await.body;
    assert!(metrics.contains(&format!("address=\"http://{b_addr}\"}} 1")), "{metrics}");
    for _ in 0..4 {
        assert_eq!(get(g.http(), "/").await.status, 200);
    }
    assert!(b.seen.lock().unwrap().iter().any(|s| s.path == "/"));
}

#[tokio::test]
async fn upstream_failures_map_to_502_and_504() {
    let dead = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap();
    let g = gateway(&format!("http://{dead}"), "").await;
    let r = get(g.http(), "/").await;
    assert_eq!(r.status, 502);
    let up = Upstream::start("slow").await;
    let extra = format!(
        "[upstreams.app]\naddresses = [\"{}\"]\nread_timeout = \"300ms\"\n[[routes]]\nname = \"app\"\nupstream = \"app\"\n",
        up.url()
    );
    let g = gateway("unused", &extra).await;
    let r = get(g.http(), "/sleep/2000").await;
    assert_eq!(r.status, 504);
    g.wait_event("upstream_timeout").await;
}

#[tokio::test]
async fn https_upstream_is_verified_against_the_configured_ca() {
    let dir = tempfile::tempdir().unwrap();
    let (cert, key, _) = write_cert(dir.path(), &["localhost"], "up");
    // A TLS upstream: a second gateway with that certificate, in front of a
    // plain upstream.
    let plain = Upstream::start("tls-backend").await;
    let extra = format!("[[tls.certificates]]\ncert = {cert:?}\nkey = {key:?}\n");
    let tls_up = gateway(&plain.url(), &extra).await;
    let url = format!("https://localhost:{}", tls_up.https().port());

    let trusting = format!(
        "[upstreams.app]\naddresses = [\"{url}\"]\nca_file = {cert:?}\n[[routes]]\nname = \"app\"\nupstream = \"app\"\n"
    );
    let g = gateway("unused", &trusting).await;
    let r = get(g.http(), "/").await;
    assert_eq!((r.status, r.body.as_str()), (200, "ok from tls-backend"));

    // Without the CA the certificate is refused and nothing is forwarded.
    let before = plain.count();
    let g = gateway(&url, "").await;
    assert_eq!(get(g.http(), "/").await.status, 502);
    assert_eq!(plain.count(), before);
}

#[tokio::test]
async fn path_tricks_do_not_escape_a_stricter_route() {
    let up = Upstream::start("a").await;
    let extra = "[bans]\nenabled = false\n[upstreams.app]\naddresses = [\"{UP}\"]\n\
                 [[routes]]\nname = \"api\"\npath_prefix = \"/api\"\nupstream = \"app\"\ncsrf = true\n\
                 [[routes]]\nname = \"rest\"\nupstream = \"app\"\n";
    let g = gateway(&up.url(), extra).await;
    for p in
        ["/api/transfer", "//api/transfer", "/API/transfer", "/%61pi/transfer", "/x/../api/transfer", "/./api/transfer"]
    {
        let r = request(g.http(), "POST", p, &[("origin", "http://evil.example")], "a=1").await;
        assert_eq!(r.status, 403, "{p} escaped the api route's CSRF check");
    }
    assert_eq!(request(g.http(), "POST", "/other", &[("origin", "http://evil.example")], "a=1").await.status, 200);
    for p in ["/%2eenv", "//.env", "/x/../.git/config"] {
        assert_eq!(get(g.http(), p).await.status, 404, "{p} is a probe");
    }
    assert_eq!(up.count(), 1);
}

/// Headers in which a client claims to be someone else or to have asked
/// for another URL are dropped (a trusted proxy's are kept); a second
/// `Host` is malformed; a header-keyed rate limit counts every line of
/// its header.
#[tokio::test]
async fn client_claims_are_dropped_and_duplicate_hosts_refused() {
    let up = Upstream::start("a").await;
    let extra = "[rate_limits.per_key]\nrate = 2\nper = \"1m\"\nburst = 2\nkey = \"header:x-api-key\"\n\
                 [upstreams.app]\naddresses = [\"{UP}\"]\n[[routes]]\nname = \"app\"\nupstream = \"app\"\nrate_limits = [\"per_key\"]\n";
    let g = gateway(&up.url(), extra).await;
    let claims = [
        ("x-original-url", "/admin"),
        ("x-rewrite-url", "/admin"),
        ("x-real-ip", "10.0.0.1"),
        ("forwarded", "for=10.0.0.1"),
        ("true-client-ip", "10.0.0.1"),
        ("x-forwarded-port", "443"),
        ("x-forwarded-ssl", "on"),
        ("front-end-https", "on"),
        ("client-ip", "10.0.0.1"),
        ("x-original-uri", "/admin"),
    ];
    let r = request(g.http(), "GET", "/x", &claims, "").await;
    assert_eq!(r.status, 200);
    let seen = up.last();
    for (name, _) in claims {
        if name == "x-real-ip" {
            assert_eq!(seen.headers[name], "127.0.0.1", "the gateway says who the client is");
        } else {
            assert!(seen.headers.get(name).is_none(), "{name} forwarded");
        }
    }
    let raw_req = b"GET / HTTP/1.1\r\nHost: a.example\r\nHost: b.example\r\nConnection: close\r\n\r\n";
    assert_eq!(status_of(&raw(g.http(), raw_req, Duration::from_secs(2)).await), 400);
    let raw_req = b"GET / HTTP/1.1\r\nHost: 127.0.0.1, evil.example\r\nConnection: close\r\n\r\n";
    assert_eq!(status_of(&raw(g.http(), raw_req, Duration::from_secs(2)).await), 400);
    // A rate-limit key given twice (a fresh one first, the app's real key
    // second) is refused rather than counted as a new key.
    for i in 0..3 {
        let req =
            format!("GET / HTTP/1.1\r\nHost: x\r\nX-Api-Key: fresh{i}\r\nX-Api-Key: k1\r\nConnection: close\r\n\r\n");
        assert_eq!(status_of(&raw(g.http(), req.as_bytes(), Duration::from_secs(2)).await), 400);
    }
}

/// A backend that answers with the path it will route on: Python's WSGI
/// reference server (PATH_INFO, percent-decoded as every WSGI server
/// does) or Node's WHATWG URL parser (backslashes, dot segments), started
/// as a child process; returns its address and the process.
fn start_backend(kind: &str) -> (String, std::process::Child) {
    use std::io::BufRead;
    let (program, script) = match kind {
        "wsgi" => (
            "python3",
            "import sys\n\
             from wsgiref.simple_server import make_server, WSGIRequestHandler\n\
             class Quiet(WSGIRequestHandler):\n    def log_message(self, *a): pass\n\
             def app(env, start):\n    start('200 OK', [('Content-Type', 'text/plain')])\n    \
             return [('SEEN ' + env['PATH_INFO']).encode('utf-8', 'surrogateescape')]\n\
             s = make_server('127.0.0.1', 0, app, handler_class=Quiet)\n\
             print(s.server_port, flush=True)\ns.serve_forever()\n",
        ),
        _ => (
            "node",
            "const http = require('http');\n\
             const s = http.createServer((req, res) => {\n  let p;\n  \
             try { p = decodeURIComponent(new URL(req.url, 'http://h').pathname); } catch (e) { p = '?'; }\n  \
             res.end('SEEN ' + p);\n});\n\
             s.listen(0, '127.0.0.1', () => console.log(s.address().port));\n",
        ),
    };
    let flag = if program == "python3" { "-c" } else { "-e" };
    let mut child = std::process::Command::new(program)
        .args([flag, script])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("{program} is needed for this test: {e}"));
    let mut line = String::new();
    std::io::BufReader::new(child.stdout.take().unwrap()).read_line(&mut line).unwrap();
    (format!("http://127.0.0.1:{}", line.trim()), child)
}

/// With `/admin` under CSRF checks and a lenient catch-all beside it, the
/// tricks an outside review used to reach `/admin` at a real backend
/// through the catch-all are refused: each is shown to reach the backend's
/// `/admin` when sent to it directly, and through the gateway it meets
/// `/admin`'s rules (403) or is refused as ambiguous (400).
#[tokio::test]
async fn paths_real_backends_read_as_admin_meet_the_admin_route() {
    let tricks = [
        "/admin;x",
        "/admin..;/",
        "/admin%2fx",
        "/%2fadmin",
        "/admin%3bx",
        "/admin%20",
        "/admin%09",
        "/admin.",
        "/admin\\x",
        "/%c0%ae/admin",
        "/admin%2Fdelete",
        "/x/..%2fadmin",
        "/x/%2e%2e/admin",
    ];
    for kind in ["wsgi", "node"] {
        let (url, mut child) = start_backend(kind);
        let extra = format!(
            "[bans]\nenabled = false\n[upstreams.app]\naddresses = [\"{url}\"]\n\
             [[routes]]\nname = \"admin\"\npath_prefix = \"/admin\"\nupstream = \"app\"\ncsrf = true\n\
             [[routes]]\nname = \"rest\"\nupstream = \"app\"\n"
        );
        let g = gateway(&url, &extra).await;
        let backend: std::net::SocketAddr = url.trim_start_matches("http://").parse().unwrap();
        let evil = [("origin", "http://evil.example"), ("content-type", "application/x-www-form-urlencoded")];
        let mut reached_admin = 0;
        for p in tricks {
            let req = format!("POST {p} HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nConnection: close\r\n\r\na=1");
            let direct = raw(backend, req.as_bytes(), Duration::from_secs(3)).await;
            if direct.contains("SEEN /admin") {
                reached_admin += 1;
            }
            let r = raw(g.http(), req.as_bytes(), Duration::from_secs(3)).await;
            let status = status_of(&r);
            assert!(matches!(status, 400 | 403), "{kind}: {p} escaped /admin's rules ({status}): {r}");
        }
        assert!(reached_admin >= 4, "{kind}: only {reached_admin} tricks reach /admin directly");
        // Ordinary paths still go where they should.
        let ok = request(g.http(), "POST", "/shop/cart", &evil, "a=1").await;
        assert_eq!((ok.status, ok.body.as_str()), (200, "SEEN /shop/cart"));
        let _ = child.kill();
    }
}
