//! Measures the audit log on this machine (run by `bench/audit.sh`):
//! sustained durable appends of ~500-byte events, the latency of a durable
//! acknowledgement under that load, verification throughput, and this
//! machine's single-core SHA-256 speed for comparison.
//!
//! `cargo run --release -p rampart-audit --example audit_bench -- [SECONDS] [PRODUCERS] [WINDOW]`
#![allow(clippy::unwrap_used)] // Tests and benchmarks may unwrap.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use rampart_audit::{verify, AuditLog, Keys, Options};
use rampart_core::{Event, Outcome};

fn event(i: u64) -> Event {
    let mut e = Event::new("web", "request-rejected")
        .outcome(Outcome::Failure)
        .reason("rate_limited")
        .source_ip(std::net::IpAddr::from([198, 51, 100, (i % 250) as u8]))
        .status(429)
        .rule("gateway.rate_limited", "api");
    e.path = Some(format!("/api/v1/orders/{i}/items"));
    e.method = Some("POST".into());
    e.request_id = Some(format!("{:032x}", i.wrapping_mul(0x9E37_79B9_7F4A_7C15)));
    e.user_agent = Some("Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 Chrome/120.0".into());
    e.message = Some("refused by the api rate limit".into());
    e.label("http.version", "1.1")
}

enum KeepOrTemp {
    Keep(std::path::PathBuf),
    Temp(tempfile::TempDir),
}

impl KeepOrTemp {
    fn path(&self) -> &std::path::Path {
        match self {
            KeepOrTemp::Keep(p) => p,
            KeepOrTemp::Temp(t) => t.path(),
        }
    }
}

fn main() {
    let args: Vec<u64> = std::env::args().skip(1).filter_map(|a| a.parse().ok()).collect();
    let seconds = args.first().copied().unwrap_or(10);
    let producers = args.get(1).copied().unwrap_or(4);
    let window = args.get(2).copied().unwrap_or(512) as usize;
    let dir = tempfile::tempdir().expect("temp dir");
    let dir = match std::env::var("AUDIT_BENCH_KEEP") {
        Ok(_) => {
            let p = dir.keep();
            eprintln!("keeping {}", p.display());
            KeepOrTemp::Keep(p)
        }
        Err(_) => KeepOrTemp::Temp(dir),
    };
    let log = AuditLog::open_with(dir.path(), Options::default()).expect("open");
    let size = rampart_audit::canonical::to_vec(&event(1).to_json()).len();

    let stop = Arc::new(AtomicBool::new(false));
    let total = Arc::new(AtomicU64::new(0));
    let mut threads = Vec::new();
    for p in 0..producers {
        let (log, stop, total) = (log.clone(), stop.clone(), total.clone());
        threads.push(std::thread::spawn(move || {
            let mut inflight = VecDeque::with_capacity(window);
            let mut i = p * 1_000_000_000;
            while !stop.load(Ordering::Relaxed) {
                inflight.push_back(log.submit(event(i)).expect("submit"));
                i += 1;
                if inflight.len() >= window {
                    if let Some(t) = inflight.pop_front() {
                        t.wait().expect("durable");
                        total.fetch_add(1, Ordering::Relaxed);
                    }
                }
            }
            for t in inflight {
                t.wait().expect("durable");
                total.fetch_add(1, Ordering::Relaxed);
            }
        }));
    }
    // A probe: one synchronous durable append every 2 ms, timed.
    let probe = {
        let (log, stop) = (log.clone(), stop.clone());
        std::thread::spawn(move || {
            let mut lat = Vec::new();
            let mut i = u64::MAX / 2;
            while !stop.load(Ordering::Relaxed) {
                let t = Instant::now();
                log.append(event(i)).expect("durable");
                lat.push(t.elapsed());
                i += 1;
                std::thread::sleep(Duration::from_millis(2));
            }
            lat
        })
    };
    let start = Instant::now();
    std::thread::sleep(Duration::from_secs(seconds));
    stop.store(true, Ordering::Relaxed);
    for t in threads {
        t.join().expect("producer");
    }
    let elapsed = start.elapsed().as_secs_f64();
    let mut lat = probe.join().expect("probe");
    log.flush();
    drop(log);
    let n = total.load(Ordering::Relaxed);
    lat.sort();
    let pct = |p: f64| {
        lat.get(((lat.len() as f64 * p) as usize).min(lat.len().saturating_sub(1))).copied().unwrap_or_default()
    };

    let audit = dir.path().join("audit");
    let bytes: u64 = std::fs::read_dir(audit.join("segments"))
        .expect("segments")
        .flatten()
        .filter(|e| e.path().extension().is_some_and(|x| x == "seg"))
        .map(|e| e.metadata().map_or(0, |m| m.len()))
        .sum();
    let keys = Keys::load_or_create(&audit).expect("keys");
    let t = Instant::now();
    let report = verify::verify(&audit, Some(&keys), &keys.public_key(), None).expect("verifies");
    let vsecs = t.elapsed().as_secs_f64();

    // Single-core SHA-256 over 256 MiB in 1 MiB blocks: the faster of
    // ring's and sha2's, so the comparison is with this machine's best.
    let block = vec![0x5au8; 1 << 20];
    let t = Instant::now();
    let mut acc = 0u8;
    for _ in 0..256 {
        acc ^= ring::digest::digest(&ring::digest::SHA256, &block).as_ref()[0];
    }
    let ring_speed = 256.0 / t.elapsed().as_secs_f64();
    let t = Instant::now();
    for _ in 0..256 {
        use sha2::Digest;
        acc ^= sha2::Sha256::digest(&block)[0];
    }
    let sha2_speed = 256.0 / t.elapsed().as_secs_f64();
    let sha = ring_speed.max(sha2_speed);
    let verify_mb = bytes as f64 / (1 << 20) as f64 / vsecs;

    println!("event size (canonical JSON): {size} bytes; producers {producers}, {window} in flight each, {seconds} s");
    println!(
        "APPEND events_per_s {:.0} durable_acks {n} MiB_per_s {:.1}",
        n as f64 / elapsed,
        n as f64 * size as f64 / elapsed / (1 << 20) as f64
    );
    println!(
        "ACK_LATENCY p50_ms {:.2} p99_ms {:.2} samples {}",
        pct(0.5).as_secs_f64() * 1e3,
        pct(0.99).as_secs_f64() * 1e3,
        lat.len()
    );
    println!(
        "VERIFY events {} heads {} MiB {:.0} seconds {vsecs:.2} MiB_per_s {verify_mb:.0}",
        report.events,
        report.heads,
        bytes as f64 / (1 << 20) as f64
    );
    println!("SHA256 single_core_MiB_per_s {sha:.0} ({acc})");
    println!("RATIO verify_vs_sha256 {:.2}", verify_mb / sha);
}
