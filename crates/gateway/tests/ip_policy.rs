//! IP policy: allow and deny lists, list files reloaded on change, trusted
//! proxies and the PROXY protocol.
#![allow(clippy::unwrap_used)] // Tests and benchmarks may unwrap.

mod common;

use std::time::Duration;

use common::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

async fn refused(from: &str, addr: std::net::SocketAddr) -> bool {
    let mut s = connect_from(from, addr).await;
    let _ = s.write_all(b"GET / HTTP/1.1\r\nhost: x\r\n\r\n").await;
    let mut buf = Vec::new();
    matches!(tokio::time::timeout(Duration::from_secs(2), s.read_to_end(&mut buf)).await, Ok(Ok(0)) | Ok(Err(_)))
}

#[tokio::test]
async fn deny_and_allow_lists() {
    let up = Upstream::start("a").await;
    let g = gateway(&up.url(), "[ip_policy]\ndeny = [\"127.0.0.5/32\"]\n").await;
    assert!(refused("127.0.0.5", g.http()).await);
    assert_eq!(request_from("127.0.0.6", g.http(), "GET", "/", &[], "").await.status, 200);
    let e = g.wait_event("ip_denied").await;
    assert_eq!(e["source"]["ip"], "127.0.0.5");

    let g = gateway(&up.url(), "[ip_policy]\nallow = [\"127.0.0.7/32\", \"::1/128\"]\n").await;
    assert!(refused("127.0.0.8", g.http()).await);
    assert_eq!(request_from("127.0.0.7", g.http(), "GET", "/", &[], "").await.status, 200);
}

#[tokio::test]
async fn deny_file_is_reloaded_when_it_changes() {
    let up = Upstream::start("a").await;
    let dir = tempfile::tempdir().unwrap();
    let list = dir.path().join("deny.txt");
    std::fs::write(&list, "# nobody yet\n").unwrap();
    let g = gateway(&up.url(), &format!("[ip_policy]\ndeny_files = [{list:?}]\n")).await;
    assert_eq!(request_from("127.0.0.9", g.http(), "GET", "/", &[], "").await.status, 200);
    tokio::time::sleep(Duration::from_millis(1100)).await;
    std::fs::write(&list, "127.0.0.9\n").unwrap();
    let mut denied = false;
    for _ in 0..30 {
        tokio::time::sleep(Duration::from_millis(100)).await;
        if refused("127.0.0.9", g.http()).await {
            denied = true;
            break;
        }
    }
    assert!(denied, "the changed list file was not applied");
    assert!(g.events().iter().any(|e| e["event"]["action"] == "config-reloaded"));
}

#[tokio::test]
async fn forwarded_client_address_is_policed_only_from_trusted_proxies() {
    let up = Upstream::start("a").await;
    let g =
        gateway(&up.url(), "[ip_policy]\ntrusted_proxies = [\"127.0.0.10/32\"]\ndeny = [\"203.0.113.0/24\"]\n").await;
    // Through the trusted proxy, the real client is denied (403 per request).
    let r = request_from("127.0.0.10", g.http(), "GET", "/", &[("x-forwarded-for", "203.0.113.50")], "").await;
    assert_eq!(r.status, 403);
    // A proxy that adds its own X-Forwarded-For line (rather than appending)
    // still wins over what the client sent in an earlier line.
    let r = request_from(
        "127.0.0.10",
        g.http(),
        "GET",
        "/",
        &[("x-forwarded-for", "198.51.100.1"), ("x-forwarded-for", "203.0.113.51")],
        "",
    )
    .await;
    assert_eq!(r.status, 403);
    // From anyone else the header is ignored: no way to spoof or frame.
    let r = request_from("127.0.0.11", g.http(), "GET", "/", &[("x-forwarded-for", "203.0.113.50")], "").await;
    assert_eq!(r.status, 200);
    assert_eq!(up.last().headers["x-forwarded-for"], "127.0.0.11");
}

#[tokio::test]
async fn proxy_protocol_v1_and_v2_from_trusted_peers() {
    let up = Upstream::start("a").await;
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = config(
        dir.path(),
        &up.url(),
        "[ip_policy]\ntrusted_proxies = [\"127.0.0.12/32\"]\ndeny = [\"198.51.100.66/32\"]\n",
    );
    cfg.listen.proxy_protocol = true;
    let g = start_with(dir, cfg).await;

    let mut s = connect_from("127.0.0.12", g.http()).await;
    s.write_all(b"PROXY TCP4 192.0.2.44 10.0.0.1 40000 80\r\n").await.unwrap();
    assert_eq!(send(s, "GET", "/v1", &[], "").await.status, 200);
    assert_eq!(up.last().headers["x-forwarded-for"], "192.0.2.44");

    let mut v2 = b"\r\n\r\n\0\r\nQUIT\n".to_vec();
    v2.extend_from_slice(&[0x21, 0x11, 0, 12, 192, 0, 2, 45, 10, 0, 0, 1, 0x9c, 0x40, 0, 80]);
    let mut s = connect_from("127.0.0.12", g.http()).await;
    s.write_all(&v2).await.unwrap();
    assert_eq!(send(s, "GET", "/v2", &[], "").await.status, 200);
    assert_eq!(up.last().headers["x-forwarded-for"], "192.0.2.45");

    // The proxied client address is what the IP policy judges.
    let mut s = connect_from("127.0.0.12", g.http()).await;
    s.write_all(b"PROXY TCP4 198.51.100.66 10.0.0.1 40000 80\r\nGET / HTTP/1.1\r\nhost: x\r\n\r\n").await.unwrap();
    let mut buf = Vec::new();
    let n = tokio::time::timeout(Duration::from_secs(2), s.read_to_end(&mut buf)).await.unwrap().unwrap_or(0);
    assert_eq!(n, 0);

    // A peer that is not trusted cannot send a PROXY header: it is just a
    // malformed request to us.
    let resp = {
        let mut s = connect_from("127.0.0.13", g.http()).await;
        s.write_all(b"PROXY TCP4 192.0.2.1 10.0.0.1 1 80\r\nGET / HTTP/1.1\r\nhost: x\r\n\r\n").await.unwrap();
        let mut buf = Vec::new();
        let _ = tokio::time::timeout(Duration::from_secs(2), s.read_to_end(&mut buf)).await;
        String::from_utf8_lossy(&buf).into_owned()
    };
    assert_eq!(status_of(&resp), 400, "{resp}");
}

/// A trusted proxy in front, one rate limit of two requests per minute per
/// client, no bans.
const BEHIND_PROXY: &str = "[bans]\nenabled = false\n[ip_policy]\ntrusted_proxies = [\"127.0.0.14/32\"]\n\
    [rate_limits.ip]\nrate = 1\nper = \"1m\"\nburst = 2\n\
    [upstreams.app]\naddresses = [\"{UP}\"]\n[[routes]]\nname = \"app\"\nupstream = \"app\"\nrate_limits = [\"ip\"]\n";

async fn via_proxy(g: &TestGateway, xff: &str) -> u16 {
    request_from("127.0.0.14", g.http(), "GET", "/", &[("x-forwarded-for", xff)], "").await.status
}

/// Issue 10, point 16: hops with a port or brackets name their client (not
/// the proxy, which would put every client in one bucket), and a hop that
/// names nobody is refused with 400.
#[tokio::test]
async fn forwarded_for_hops_with_ports_name_their_client_and_junk_is_refused() {
    let up = Upstream::start("a").await;
    let g = gateway(&up.url(), BEHIND_PROXY).await;
    for xff in ["198.51.100.1:5678", "198.51.100.1:5679", "[2001:db8::1]:443", "2001:db8::1", "001.002.003.004"] {
        assert_eq!(via_proxy(&g, xff).await, 200, "{xff}");
    }
    assert_eq!(via_proxy(&g, "198.51.100.1").await, 429, "the client's own bucket is spent");
    assert_eq!(via_proxy(&g, "1.2.3.4").await, 200, "001.002.003.004 is 1.2.3.4");
    assert_eq!(via_proxy(&g, "198.51.100.2:1").await, 200, "another client has its own");
    let seen = up.count();
    for junk in ["garbage", "unknown", "1.2.3.4:99999", "198.51.100.3, 1.2.3"] {
        assert_eq!(via_proxy(&g, junk).await, 400, "{junk}");
    }
    assert_eq!(up.count(), seen, "refused requests never reach the app");
    let e = g.wait_event("forwarded_for_unreadable").await;
    assert_eq!(e["source"]["ip"], "127.0.0.14");
    assert_eq!(e["http"]["response"]["status_code"], 400);
}

/// Issue 10, point 8: IPv6 clients behind the proxy are counted by /64, and
/// a mapped address is its IPv4 client.
#[tokio::test]
async fn ipv6_clients_share_a_bucket_with_their_64() {
    let up = Upstream::start("a").await;
    let g = gateway(&up.url(), BEHIND_PROXY).await;
    assert_eq!(via_proxy(&g, "2001:db8:a:b::1").await, 200);
    assert_eq!(via_proxy(&g, "2001:db8:a:b:ffff::2").await, 200);
    assert_eq!(via_proxy(&g, "2001:db8:a:b::3").await, 429, "rotating within the /64 buys nothing");
    assert_eq!(via_proxy(&g, "2001:db8:a:c::1").await, 200, "the next /64 is another client");
    assert_eq!(via_proxy(&g, "192.0.2.60").await, 200);
    assert_eq!(via_proxy(&g, "::ffff:192.0.2.60").await, 200);
    assert_eq!(via_proxy(&g, "192.0.2.60").await, 429, "the mapped address counted as 192.0.2.60");
}
