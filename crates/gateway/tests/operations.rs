//! Operations: health, readiness, metrics, access log, reloads under load,
//! graceful shutdown.
#![allow(clippy::unwrap_used)] // Tests and benchmarks may unwrap.

mod common;

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use common::*;

#[tokio::test]
async fn health_readiness_and_metrics() {
    let up = Upstream::start("a").await;
    let g = gateway(&up.url(), "").await;
    assert_eq!(get(g.admin(), "/healthz").await.status, 200);
    assert_eq!(get(g.admin(), "/readyz").await.status, 200);
    get(g.http(), "/").await;
    get(g.http(), &format!("/{}", "x".repeat(9000))).await;
    let m = get(g.admin(), "/metrics").await;
    assert_eq!(m.status, 200);
    assert!(m.body.contains("rampart_responses_total{class=\"2xx\"} 1"), "{}", m.body);
    assert!(m.body.contains("rampart_rejections_total{reason=\"uri_too_long\"} 1"));
    assert!(m.body.contains("rampart_request_duration_seconds_count 2"));
    assert!(m.body.contains("rampart_upstream_healthy{pool=\"app\""));

    let dead = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap();
    let extra = format!(
        "[upstreams.app]\naddresses = [\"http://{dead}\"]\npassive = {{ failures = 1, eject_for = \"1m\" }}\n[[routes]]\nname = \"app\"\nupstream = \"app\"\n"
    );
    let g = gateway("unused", &extra).await;
    get(g.http(), "/").await;
    let r = get(g.admin(), "/readyz").await;
    assert_eq!(r.status, 503);
    assert!(r.body.contains("app"));
}

#[tokio::test]
async fn access_log_has_one_json_line_per_request_without_query_strings() {
    let up = Upstream::start("a").await;
    let g = gateway(&up.url(), "").await;
    get(g.http(), "/a?token=secret").await;
    request(g.http(), "GET", "/b", &[("user-agent", "tester/1")], "").await;
    get(g.http(), &format!("/{}", "x".repeat(9000))).await;
    let path = g.dir.path().join("access.log");
    let mut lines = Vec::new();
    for _ in 0..30 {
        tokio::time::sleep(Duration::from_millis(100)).await;
        lines = std::fs::read_to_string(&path).unwrap_or_default().lines().map(str::to_string).collect();
        if lines.len() == 3 {
            break;
        }
    }
    assert_eq!(lines.len(), 3);
    let v: Vec<serde_json::Value> = lines.iter().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(v[0]["url"]["path"], "/a");
    assert!(!lines[0].contains("secret"));
    assert_eq!(v[1]["user_agent"]["original"], "tester/1");
    assert_eq!(v[1]["rampart"]["route"], "app");
    assert_eq!(v[2]["http"]["response"]["status_code"], 414);
    assert_eq!(v[2]["event"]["reason"], "uri_too_long");
}

#[tokio::test]
async fn config_file_reload_under_load_loses_no_request() {
    let a = Upstream::start("a").await;
    let b = Upstream::start("b").await;
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("rampart.toml");
    let write = |target: &str, header: &str| {
        let text = format!(
            "data_dir = {:?}\n[listen]\nhttp = \"127.0.0.1:0\"\nhttps = \"\"\nadmin = \"\"\n[bans]\nenabled = false\n\
             [upstreams.app]\naddresses = [\"{target}\"]\n[[routes]]\nname = \"app\"\nupstream = \"app\"\n\
             [routes.headers]\nframe_options = \"{header}\"\n",
            dir.path()
        );
        std::fs::write(&file, text).unwrap();
    };
    write(&a.url(), "DENY");
    let cfg = rampart_core::Config::load(&file).unwrap();
    let audit = rampart_audit::AuditLog::open(dir.path()).unwrap();
    let mut opts = rampart_gateway::Options::new(cfg, audit);
    let f = file.clone();
    opts.source = Some(Arc::new(move || rampart_core::Config::load(&f)));
    opts.watch = vec![file.clone()];
    opts.poll_interval = Duration::from_millis(50);
    let gw = rampart_gateway::Gateway::start(opts).await.unwrap();
    let addr = gw.http_addr().unwrap();

    let stop = Arc::new(AtomicBool::new(false));
    let failures = Arc::new(AtomicUsize::new(0));
    let done = Arc::new(AtomicUsize::new(0));
    let mut workers = Vec::new();
    for _ in 0..8 {
        let (stop, failures, done) = (stop.clone(), failures.clone(), done.clone());
        workers.push(tokio::spawn(async move {
            while !stop.load(Ordering::Relaxed) {
                let r = get(addr, "/sleep/20").await;
                if r.status != 200 {
                    failures.fetch_add(1, Ordering::Relaxed);
                }
                done.fetch_add(1, Ordering::Relaxed);
            }
        }));
    }
    for i in 0..6 {
        tokio::time::sleep(Duration::from_millis(300)).await;
        let (target, header) = if i % 2 == 0 { (b.url(), "SAMEORIGIN") } else { (a.url(), "DENY") };
        write(&target, header);
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    // A broken file is refused; the configuration in force stays.
    std::fs::write(&file, "[limits]\nmax_headers = \"lots\"\n").unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    stop.store(true, Ordering::Relaxed);
    for w in workers {
        w.await.unwrap();
    }
    assert_eq!(failures.load(Ordering::Relaxed), 0, "of {} requests", done.load(Ordering::Relaxed));
    assert!(a.count() > 10 && b.count() > 10, "a={} b={}", a.count(), b.count());
    let r = get(addr, "/").await;
    assert_eq!(r.status, 200);
    assert_eq!(r.headers["x-frame-options"], "DENY", "last good configuration stays");
    gw.shared().audit.flush();
    let events = audit_text(dir.path());
    assert!(events.matches("\"config-reloaded\"").count() >= 5);
    assert!(events.contains("\"config-reload-failed\""));
    assert!(events.contains("limits.max_headers"));
}

#[tokio::test]
async fn graceful_shutdown_finishes_requests_in_flight() {
    let up = Upstream::start("a").await;
    let g = gateway(&up.url(), "").await;
    let addr = g.http();
    let slow = tokio::spawn(async move { get(addr, "/sleep/500").await });
    tokio::time::sleep(Duration::from_millis(100)).await;
    let TestGateway { gw, dir } = g;
    let start = std::time::Instant::now();
    gw.shutdown(Duration::from_secs(5)).await;
    let r = slow.await.unwrap();
    assert_eq!(r.status, 200, "the request in flight completed");
    assert!(start.elapsed() >= Duration::from_millis(300));
    // New connections are refused after shutdown.
    assert!(tokio::net::TcpStream::connect(addr).await.is_err());
    let events = audit_text(dir.path());
    assert!(events.contains("\"gateway-stopped\""));
}
