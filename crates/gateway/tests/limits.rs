//! Protocol limits: sizes, counts, timeouts, connections. A request over a
//! limit gets the right status, never reaches the upstream, and leaves an
//! event.
#![allow(clippy::unwrap_used)] // Tests and benchmarks may unwrap.

mod common;

use std::time::{Duration, Instant};

use common::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

#[tokio::test]
async fn long_uri_gets_414_and_many_headers_431() {
    let up = Upstream::start("a").await;
    let g = gateway(&up.url(), "[limits]\nmax_uri_bytes = 512\nmax_headers = 20\nmax_header_bytes = 4096\n").await;
    let r = get(g.http(), &format!("/{}", "a".repeat(600))).await;
    assert_eq!(r.status, 414);
    let many: Vec<(String, String)> = (0..25).map(|i| (format!("x-h{i}"), "v".into())).collect();
    let refs: Vec<(&str, &str)> = many.iter().map(|(a, b)| (a.as_str(), b.as_str())).collect();
    assert_eq!(request(g.http(), "GET", "/", &refs, "").await.status, 431);
    let big = "b".repeat(3000);
    assert_eq!(request(g.http(), "GET", "/", &[("x-a", &big), ("x-b", &big)], "").await.status, 431);
    assert_eq!(up.count(), 0, "nothing over a limit reached the upstream");
    let e = g.wait_event("uri_too_long").await;
    assert_eq!(e["http"]["response"]["status_code"], 414);
    assert_eq!(e["source"]["ip"], "127.0.0.1");
    g.wait_event("headers_too_large").await;
}

#[tokio::test]
async fn oversized_body_never_reaches_the_upstream() {
    let up = Upstream::start("a").await;
    let g = gateway(&up.url(), "[limits]\nmax_body_bytes = 1000\n").await;
    // Announced size.
    let r = request(g.http(), "POST", "/upload", &[], &"x".repeat(1001)).await;
    assert_eq!(r.status, 413);
    // Chunked, no size announced: refused after 1000 bytes, before forwarding.
    let mut chunked = b"POST /upload HTTP/1.1\r\nhost: x\r\ntransfer-encoding: chunked\r\n\r\n".to_vec();
    for _ in 0..5 {
        chunked.extend_from_slice(b"12c\r\n");
        chunked.extend_from_slice(&[b'y'; 300]);
        chunked.extend_from_slice(b"\r\n");
    }
    chunked.extend_from_slice(b"0\r\n\r\n");
    let resp = raw(g.http(), &chunked, Duration::from_secs(3)).await;
    assert_eq!(status_of(&resp), 413, "{resp}");
    assert_eq!(up.count(), 0);
    // Within the limit, both ways arrive whole.
    assert_eq!(request(g.http(), "POST", "/upload", &[], &"x".repeat(1000)).await.status, 200);
    assert_eq!(up.last().body_len, 1000);
    let ok = b"POST /c HTTP/1.1\r\nhost: x\r\ntransfer-encoding: chunked\r\nconnection: close\r\n\r\n5\r\nhello\r\n0\r\n\r\n";
    assert_eq!(status_of(&raw(g.http(), ok, Duration::from_secs(3)).await), 200);
    assert_eq!(up.last().body_len, 5);
    assert_eq!(g.events_with_reason("body_too_large").len(), 2);
}

#[tokio::test]
async fn route_body_limit_overrides_the_global_one() {
    let up = Upstream::start("a").await;
    let extra = format!(
        "[upstreams.app]\naddresses = [\"{}\"]\n[[routes]]\nname = \"small\"\npath_prefix = \"/small\"\nupstream = \"app\"\nmax_body_bytes = 10\n\
         [[routes]]\nname = \"rest\"\nupstream = \"app\"\n",
        up.url()
    );
    let g = gateway("unused", &extra).await;
    assert_eq!(request(g.http(), "POST", "/small", &[], &"x".repeat(11)).await.status, 413);
    assert_eq!(request(g.http(), "POST", "/big", &[], &"x".repeat(11)).await.status, 200);
}

#[tokio::test]
async fn malformed_requests_get_400_and_an_event() {
    let up = Upstream::start("a").await;
    let g = gateway(&up.url(), "").await;
    for bad in [
        &b"GARBAGE\r\n\r\n"[..],
        b"GET / HTTP/1.1\r\nhost: x\r\nbad header\r\n\r\n",
        b"GET / HTTP/1.1\r\nhost: x\r\ncontent-length: 5\r\ncontent-length: 6\r\n\r\nhello",
    ] {
        let resp = raw(g.http(), bad, Duration::from_secs(3)).await;
        assert_eq!(status_of(&resp), 400, "{:?} -> {resp}", String::from_utf8_lossy(bad));
    }
    assert_eq!(up.count(), 0);
    let e = g.wait_event("malformed_request").await;
    assert_eq!(e["event"]["action"], "connection-rejected");
}

#[tokio::test]
async fn slowloris_connections_do_not_stop_normal_requests() {
    let up = Upstream::start("a").await;
    let g = gateway(&up.url(), "[limits]\nheader_read_timeout = \"2s\"\nmax_connections_per_ip = 1000\n").await;
    // 400 connections from 127.0.0.2 that send a partial head, then trickle.
    let mut slow = Vec::new();
    for _ in 0..400 {
        let mut s = connect_from("127.0.0.2", g.http()).await;
        s.write_all(b"GET / HTTP/1.1\r\nhost: x\r\n").await.unwrap();
        slow.push(s);
    }
    let start = Instant::now();
    for _ in 0..20 {
        let r = request_from("127.0.0.1", g.http(), "GET", "/", &[], "").await;
        assert_eq!(r.status, 200);
    }
    assert!(start.elapsed() < Duration::from_secs(2), "normal requests were slowed: {:?}", start.elapsed());
    // Trickling does not extend the deadline: all slow connections are cut.
    for s in slow.iter_mut() {
        let _ = s.write_all(b"x-a: b\r\n").await;
    }
    tokio::time::sleep(Duration::from_millis(2500)).await;
    let mut closed = 0;
    for mut s in slow {
        let mut buf = [0u8; 64];
        match tokio::time::timeout(Duration::from_millis(100), s.read(&mut buf)).await {
            Ok(Ok(_)) | Ok(Err(_)) => closed += 1,
            Err(_) => {}
        }
    }
    assert_eq!(closed, 400);
    g.wait_event("header_timeout").await;
}

#[tokio::test]
async fn slow_post_body_gets_408() {
    let up = Upstream::start("a").await;
    let g = gateway(&up.url(), "[limits]\nbody_read_timeout = \"500ms\"\n").await;
    let mut s = tokio::net::TcpStream::connect(g.http()).await.unwrap();
    s.write_all(b"POST / HTTP/1.1\r\nhost: x\r\ntransfer-encoding: chunked\r\n\r\n5\r\nhello\r\n").await.unwrap();
    let mut out = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(3), s.read_to_end(&mut out)).await;
    assert_eq!(status_of(&String::from_utf8_lossy(&out)), 408);
    assert_eq!(up.count(), 0);
    g.wait_event("body_timeout").await;
}

#[tokio::test]
async fn connections_per_ip_are_capped() {
    let up = Upstream::start("a").await;
    let g = gateway(&up.url(), "[limits]\nmax_connections_per_ip = 5\n").await;
    let mut held = Vec::new();
    for _ in 0..5 {
        held.push(connect_from("127.0.0.3", g.http()).await);
    }
    tokio::time::sleep(Duration::from_millis(100)).await;
    // The sixth gets a 503 and is closed at once.
    let mut sixth = connect_from("127.0.0.3", g.http()).await;
    let _ = sixth.write_all(b"GET / HTTP/1.1\r\nhost: x\r\n\r\n").await;
    let mut buf = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(2), sixth.read_to_end(&mut buf)).await.unwrap();
    let text = String::from_utf8_lossy(&buf);
    assert_eq!(status_of(&text), 503, "{text}");
    assert!(text.contains("retry-after: 1"));
    assert_eq!(up.count(), 0);
    // Others are not affected.
    assert_eq!(request_from("127.0.0.4", g.http(), "GET", "/", &[], "").await.status, 200);
    g.wait_event("too_many_connections_per_ip").await;
    drop(held);
}

#[tokio::test]
async fn idle_keep_alive_connections_are_closed() {
    let up = Upstream::start("a").await;
    let g = gateway(&up.url(), "[limits]\nidle_timeout = \"300ms\"\nheader_read_timeout = \"5s\"\n").await;
    let mut s = tokio::net::TcpStream::connect(g.http()).await.unwrap();
    s.write_all(b"GET / HTTP/1.1\r\nhost: x\r\n\r\n").await.unwrap();
    let mut buf = vec![0u8; 4096];
    let n = s.read(&mut buf).await.unwrap();
    assert!(String::from_utf8_lossy(&buf[..n]).starts_with("HTTP/1.1 200"));
    let start = Instant::now();
    let n = tokio::time::timeout(Duration::from_secs(3), s.read(&mut buf)).await.unwrap().unwrap_or(0);
    assert_eq!(n, 0, "closed");
    assert!(start.elapsed() < Duration::from_secs(2));
}

#[tokio::test]
async fn buffered_bodies_share_one_memory_budget() {
    let up = Upstream::start("a").await;
    // With the WAF off: it reads (so buffers) every body it inspects.
    let g = gateway(
        &up.url(),
        "[limits]\nmax_body_bytes = 100000\nmax_buffered_body_bytes = 1000\n[waf]\nmode = \"off\"\n",
    )
    .await;
    // Announced sizes stream through: the budget does not apply.
    assert_eq!(request(g.http(), "POST", "/", &[], &"x".repeat(5000)).await.status, 200);
    // A chunked body larger than the whole budget: 503, nothing forwarded.
    let mut chunked = b"POST /big HTTP/1.1\r\nhost: x\r\ntransfer-encoding: chunked\r\n\r\n".to_vec();
    chunked.extend_from_slice(b"5dc\r\n");
    chunked.extend_from_slice(&[b'z'; 1500]);
    chunked.extend_from_slice(b"\r\n0\r\n\r\n");
    let resp = raw(g.http(), &chunked, Duration::from_secs(3)).await;
    assert_eq!(status_of(&resp), 503, "{resp}");
    assert!(up.seen.lock().unwrap().iter().all(|s| s.path != "/big"));
    // The budget is given back: a small chunked body passes again.
    let ok = b"POST /small HTTP/1.1\r\nhost: x\r\ntransfer-encoding: chunked\r\nconnection: close\r\n\r\n5\r\nhello\r\n0\r\n\r\n";
    assert_eq!(status_of(&raw(g.http(), ok, Duration::from_secs(3)).await), 200);
}
