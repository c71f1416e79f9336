//! Time per request of the engine alone, CRS at paranoia level 1 in
//! blocking mode, for the request shapes of bench/waf.sh:
//!
//!     cargo run --release -p rampart-waf --example waf_bench [CRS_DIR] [N]
//!
//! Prints microseconds per transaction for each shape (for profiling with
//! `perf record`; the side-by-side comparison is bench/waf.sh).
#![allow(clippy::unwrap_used)] // A benchmark may unwrap.

use std::time::Instant;

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

use rampart_waf::engine::Engine;
use rampart_waf::request::{self, RequestData};

fn main() {
    let mut args = std::env::args().skip(1);
    let crs = args.next().unwrap_or_else(|| "../shared/crs".into());
    let n: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(2000);
    let (set, _) = rampart_waf::sources::load_crs(std::path::Path::new(&crs), None).unwrap();
    let engine = std::sync::Arc::new(Engine::new(&set).unwrap());
    let headers = |ct: Option<&str>| {
        let mut h: Vec<(String, Vec<u8>)> = vec![
            ("host".into(), b"127.0.0.1:18190".to_vec()),
            ("user-agent".into(), b"wrk/4.2".to_vec()),
            ("accept".into(), b"*/*".to_vec()),
        ];
        if let Some(ct) = ct {
            h.push(("content-type".into(), ct.as_bytes().to_vec()));
        }
        h
    };
    let form: String = (0..35).map(|i| format!("field{i:02}=value+number+{i:02}+ok")).collect::<Vec<_>>().join("&");
    let json = format!(
        "{{\"order\":{{\"customer\":\"Jane Doe\",\"items\":[{}]}}}}",
        (0..40)
            .map(|i| format!(
                "{{\"id\":{i},\"name\":\"item {i}\",\"tags\":[\"blue\",\"large\"],\"price\":{}.5}}",
                12 + i
            ))
            .collect::<Vec<_>>()
            .join(",")
    );
    type Case<'a> = (&'a str, &'a str, &'a str, Vec<(String, Vec<u8>)>, Vec<u8>);
    let cases: Vec<Case<'_>> = vec![
        ("get_args", "GET", "/search?q=shoes&page=2&sort=price", headers(None), Vec::new()),
        ("form_1k", "POST", "/account", headers(Some("application/x-www-form-urlencoded")), form.into_bytes()),
        ("json_4k", "POST", "/api/orders", headers(Some("application/json")), json.into_bytes()),
        ("attack", "GET", "/?id=1%27%20or%201=1--", headers(None), Vec::new()),
    ];
    let only = std::env::var("CASE").ok();
    for (name, method, uri, headers, body) in &cases {
        if only.as_deref().is_some_and(|o| o != *name) {
            continue;
        }
        let mut headers = headers.clone();
        if !body.is_empty() {
            headers.push(("content-length".into(), body.len().to_string().into_bytes()));
        }
        let headers = &headers;
        let start = Instant::now();
        let mut verdict = None;
        for _ in 0..n {
            let mut t = engine.transaction();
            t.pin_tx("blocking_paranoia_level", "1");
            t.pin_tx("detection_paranoia_level", "1");
            let r = RequestData {
                method,
                uri,
                protocol: "HTTP/1.1",
                headers,
                body,
                remote_addr: "127.0.0.1",
                unique_id: "x",
            };
            let mut v = request::inspect(&mut t, &r);
            if v == rampart_waf::engine::Verdict::Pass && std::env::var_os("REQUEST_ONLY").is_none() {
                // The response side, as the gateway runs it for a small
                // text/plain answer.
                let rh: Vec<(String, Vec<u8>)> =
                    vec![("content-type".into(), b"text/plain".to_vec()), ("content-length".into(), b"20".to_vec())];
                request::load_response_head(
                    &mut t,
                    &request::ResponseData { status: 200, protocol: "HTTP/1.1", headers: &rh },
                );
                t.run_phase(3);
                request::load_response_body(&mut t, b"hello from upstream\n");
                v = t.run_phase(4);
            }
            t.run_phase(5);
            verdict = Some(v);
        }
        let us = start.elapsed().as_secs_f64() * 1e6 / n as f64;
        println!("{name}: {us:.1} us per request ({verdict:?})");
    }
}
