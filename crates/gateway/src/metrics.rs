//! Prometheus metrics, kept in atomics so the request path never locks.

use std::fmt::Write;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering::Relaxed};
use std::time::Duration;

use crate::reject::Reason;

/// Upper bounds of the latency histogram, in seconds.
const LATENCY_BUCKETS: [f64; 12] = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 5.0];

/// Counters of everything the gateway does.
#[derive(Default)]
pub struct Metrics {
    responses: [AtomicU64; 6],
    rejections: [AtomicU64; Reason::ALL.len()],
    latency: [AtomicU64; LATENCY_BUCKETS.len() + 1],
    latency_sum_us: AtomicU64,
    connections_open: AtomicI64,
    connections_total: AtomicU64,
    tls_handshake_failures: AtomicU64,
    bans_total: AtomicU64,
    upstream_failures: AtomicU64,
    reloads: AtomicU64,
    reload_failures: AtomicU64,
}

impl Metrics {
    /// Counts a response sent after `elapsed`.
    pub fn response(&self, status: u16, elapsed: Duration) {
        let class = usize::from(status / 100).min(5);
        self.responses[class].fetch_add(1, Relaxed);
        let secs = elapsed.as_secs_f64();
        let bucket = LATENCY_BUCKETS.iter().position(|b| secs <= *b).unwrap_or(LATENCY_BUCKETS.len());
        self.latency[bucket].fetch_add(1, Relaxed);
        self.latency_sum_us.fetch_add(elapsed.as_micros() as u64, Relaxed);
    }

    /// Counts a refusal.
    pub fn rejection(&self, reason: Reason) {
        let i = Reason::ALL.iter().position(|r| *r == reason).unwrap_or(0);
        self.rejections[i].fetch_add(1, Relaxed);
    }

    /// Refusals counted for `reason` so far.
    pub fn rejections(&self, reason: Reason) -> u64 {
        let i = Reason::ALL.iter().position(|r| *r == reason).unwrap_or(0);
        self.rejections[i].load(Relaxed)
    }

    /// A connection was accepted.
    pub fn connection_opened(&self) {
        self.connections_open.fetch_add(1, Relaxed);
        self.connections_total.fetch_add(1, Relaxed);
    }

    /// A connection was closed.
    pub fn connection_closed(&self) {
        self.connections_open.fetch_sub(1, Relaxed);
    }

    /// A TLS handshake failed.
    pub fn tls_failure(&self) {
        self.tls_handshake_failures.fetch_add(1, Relaxed);
    }

    /// A client was banned.
    pub fn ban(&self) {
        self.bans_total.fetch_add(1, Relaxed);
    }

    /// An upstream request failed.
    pub fn upstream_failure(&self) {
        self.upstream_failures.fetch_add(1, Relaxed);
    }

    /// A configuration reload was attempted.
    pub fn reload(&self, ok: bool) {
        if ok { &self.reloads } else { &self.reload_failures }.fetch_add(1, Relaxed);
    }

    /// Renders the Prometheus text format. `extra` adds gauges owned
    /// elsewhere (active bans, upstream health).
    pub fn render(&self, extra: &str) -> String {
        let mut out = String::with_capacity(4096);
        let _ = writeln!(out, "# HELP rampart_responses_total Responses sent, by status class.");
        let _ = writeln!(out, "# TYPE rampart_responses_total counter");
        for (i, class) in ["other", "1xx", "2xx", "3xx", "4xx", "5xx"].iter().enumerate() {
            let _ = writeln!(out, "rampart_responses_total{{class=\"{class}\"}} {}", self.responses[i].load(Relaxed));
        }
        let _ = writeln!(out, "# HELP rampart_rejections_total Requests and connections refused, by reason.");
        let _ = writeln!(out, "# TYPE rampart_rejections_total counter");
        for (i, r) in Reason::ALL.iter().enumerate() {
            let _ = writeln!(
                out,
                "rampart_rejections_total{{reason=\"{}\"}} {}",
                r.as_str(),
                self.rejections[i].load(Relaxed)
            );
        }
        let _ = writeln!(out, "# HELP rampart_request_duration_seconds Time from request head to response head.");
        let _ = writeln!(out, "# TYPE rampart_request_duration_seconds histogram");
        let mut cumulative = 0;
        for (i, le) in LATENCY_BUCKETS.iter().enumerate() {
            cumulative += self.latency[i].load(Relaxed);
            let _ = writeln!(out, "rampart_request_duration_seconds_bucket{{le=\"{le}\"}} {cumulative}");
        }
        cumulative += self.latency[LATENCY_BUCKETS.len()].load(Relaxed);
        let _ = writeln!(out, "rampart_request_duration_seconds_bucket{{le=\"+Inf\"}} {cumulative}");
        let _ =
            writeln!(out, "rampart_request_duration_seconds_sum {}", self.latency_sum_us.load(Relaxed) as f64 / 1e6);
        let _ = writeln!(out, "rampart_request_duration_seconds_count {cumulative}");
        for (name, help, kind, value) in [
            ("rampart_connections_open", "Client connections open now.", "gauge", self.connections_open.load(Relaxed)),
            (
                "rampart_connections_total",
                "Client connections accepted.",
                "counter",
                self.connections_total.load(Relaxed) as i64,
            ),
            (
                "rampart_tls_handshake_failures_total",
                "TLS handshakes that failed.",
                "counter",
                self.tls_handshake_failures.load(Relaxed) as i64,
            ),
            ("rampart_bans_total", "Clients banned.", "counter", self.bans_total.load(Relaxed) as i64),
            (
                "rampart_upstream_failures_total",
                "Upstream requests that failed.",
                "counter",
                self.upstream_failures.load(Relaxed) as i64,
            ),
            (
                "rampart_config_reloads_total",
                "Configuration reloads applied.",
                "counter",
                self.reloads.load(Relaxed) as i64,
            ),
            (
                "rampart_config_reload_failures_total",
                "Configuration reloads refused.",
                "counter",
                self.reload_failures.load(Relaxed) as i64,
            ),
        ] {
            let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}\n{name} {value}");
        }
        out.push_str(extra);
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_counters_and_a_cumulative_histogram() {
        let m = Metrics::default();
        m.response(200, Duration::from_micros(300));
        m.response(503, Duration::from_millis(20));
        m.rejection(Reason::RateLimited);
        let text = m.render("");
        assert!(text.contains("rampart_responses_total{class=\"2xx\"} 1"));
        assert!(text.contains("rampart_responses_total{class=\"5xx\"} 1"));
        assert!(text.contains("rampart_rejections_total{reason=\"rate_limited\"} 1"));
        assert!(text.contains("rampart_request_duration_seconds_bucket{le=\"0.0005\"} 1"));
        assert!(text.contains("rampart_request_duration_seconds_bucket{le=\"+Inf\"} 2"));
    }
}
