//! Upstream pools: several addresses of one service, picked round-robin
//! among the healthy ones, with keep-alive connection pools, passive health
//! (consecutive failures eject an address for a while) and active health
//! checks (a periodic GET).

use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Weak};
use std::time::{Duration, Instant};

use http::uri::{Authority, Scheme};
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::{TokioExecutor, TokioTimer};
use rampart_core::config::{parse_upstream_url, Upstream as Config};
use rampart_core::ConfigError;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::CertificateDer;

use crate::body::ProxyBody;

thread_local! {
    /// Index of the gateway worker thread running here (`usize::MAX` on
    /// other threads).
    static WORKER: std::cell::Cell<usize> = const { std::cell::Cell::new(usize::MAX) };
}

/// Marks the current thread as gateway worker `i`, so that it uses its
/// own upstream connections (no cross-thread wake-ups on the hot path).
pub fn set_worker(i: usize) {
    WORKER.with(|w| w.set(i));
}

/// The client type every pool uses.
pub type HttpClient = Client<HttpsConnector<HttpConnector>, ProxyBody>;

/// One address of a pool.
pub struct Backend {
    /// As configured (`http://127.0.0.1:3000`).
    pub url: String,
    /// `http` or `https`.
    pub scheme: Scheme,
    /// `host:port`.
    pub authority: Authority,
    failures: AtomicU32,
    ejected_until: AtomicU64,
    active_up: AtomicBool,
    check_streak: AtomicU32,
}

impl Backend {
    /// Whether the address may take requests now.
    pub fn healthy(&self, now: u64) -> bool {
        self.active_up.load(Ordering::Relaxed) && self.ejected_until.load(Ordering::Relaxed) <= now
    }
}

/// A pool of addresses of one service.
pub struct Pool {
    /// Name from `[upstreams.NAME]`.
    pub name: Arc<str>,
    /// The configuration it was built from (to reuse it across reloads).
    pub config: Config,
    /// Its addresses.
    pub backends: Vec<Backend>,
    /// One client (with its keep-alive connections) per worker thread, and
    /// a last one for everything else (health checks).
    clients: Vec<HttpClient>,
    next: AtomicUsize,
    epoch: Instant,
}

impl Pool {
    /// Builds the pool with a client for each of `workers` threads plus one;
    /// `key` names it in errors.
    pub fn build(name: &str, config: &Config, key: &str, workers: usize) -> Result<Arc<Self>, ConfigError> {
        let mut backends = Vec::new();
        for (i, url) in config.addresses.iter().enumerate() {
            let invalid = || ConfigError::Invalid {
                origin: String::new(),
                key: format!("{key}.addresses[{i}]"),
                value: url.clone(),
                expected: "a URL such as \"http://127.0.0.1:3000\"".into(),
            };
            let (tls, host, port) = parse_upstream_url(url).ok_or_else(invalid)?;
            let host = if host.contains(':') { format!("[{host}]") } else { host };
            let authority = Authority::try_from(format!("{host}:{port}")).map_err(|_| invalid())?;
            backends.push(Backend {
                url: url.clone(),
                scheme: if tls { Scheme::HTTPS } else { Scheme::HTTP },
                authority,
                failures: AtomicU32::new(0),
                ejected_until: AtomicU64::new(0),
                active_up: AtomicBool::new(true),
                check_streak: AtomicU32::new(0),
            });
        }
        let tls = client_tls(config, key)?;
        let clients = (0..=workers).map(|_| build_client(config, tls.clone())).collect();
        Ok(Arc::new(Pool {
            name: name.into(),
            config: config.clone(),
            backends,
            clients,
            next: AtomicUsize::new(0),
            epoch: Instant::now(),
        }))
    }

    /// The client of the calling thread.
    pub fn client(&self) -> &HttpClient {
        let i = WORKER.with(|w| w.get());
        self.clients.get(i).unwrap_or_else(|| &self.clients[self.clients.len() - 1])
    }

    fn now(&self) -> u64 {
        self.epoch.elapsed().as_millis() as u64
    }

    /// The next healthy address, round-robin, skipping `avoid`. When none
    /// is healthy, any address (a pool that is all down should still try).
    pub fn pick(&self, avoid: Option<usize>) -> usize {
        let n = self.backends.len();
        let start = self.next.fetch_add(1, Ordering::Relaxed);
        // The clock is read only if some address was ever ejected.
        let mut now = None;
        for k in 0..n {
            let i = (start + k) % n;
            let b = &self.backends[i];
            if Some(i) == avoid || !b.active_up.load(Ordering::Relaxed) {
                continue;
            }
            let until = b.ejected_until.load(Ordering::Relaxed);
            if until == 0 || until <= *now.get_or_insert_with(|| self.now()) {
                return i;
            }
        }
        match avoid {
            Some(a) if n > 1 => (a + 1) % n,
            _ => start % n,
        }
    }

    /// Whether any address is healthy.
    pub fn any_healthy(&self) -> bool {
        let now = self.now();
        self.backends.iter().any(|b| b.healthy(now))
    }

    /// Records a successful exchange with backend `i`.
    pub fn success(&self, i: usize) {
        let b = &self.backends[i];
        if b.failures.load(Ordering::Relaxed) != 0 {
            b.failures.store(0, Ordering::Relaxed);
        }
    }

    /// Records a failure of backend `i`; ejects it after enough in a row.
    /// Returns true when this failure ejected it.
    pub fn failure(&self, i: usize) -> bool {
        let p = &self.config.passive;
        let b = &self.backends[i];
        let n = b.failures.fetch_add(1, Ordering::Relaxed) + 1;
        if p.failures > 0 && n >= p.failures {
            b.failures.store(0, Ordering::Relaxed);
            b.ejected_until.store(self.now() + p.eject_for.get().as_millis() as u64, Ordering::Relaxed);
            return true;
        }
        false
    }

    /// Prometheus lines for this pool's health.
    pub fn render_health(&self, out: &mut String) {
        use std::fmt::Write;
        let now = self.now();
        for b in &self.backends {
            let _ = writeln!(
                out,
                "rampart_upstream_healthy{{pool=\"{}\",address=\"{}\"}} {}",
                self.name,
                b.url,
                u8::from(b.healthy(now))
            );
        }
    }

    /// Runs the active health checks until the pool is dropped.
    pub async fn check_loop(pool: Weak<Pool>) {
        loop {
            let Some(p) = pool.upgrade() else { return };
            let hc = p.config.health_check.clone();
            if hc.path.is_empty() {
                return;
            }
            for b in &p.backends {
                let uri = format!("{}://{}{}", b.scheme, b.authority, hc.path);
                let Ok(req) =
                    http::Request::get(uri).header("user-agent", "rampart-health-check").body(ProxyBody::Empty)
                else {
                    continue;
                };
                let ok = matches!(
                    tokio::time::timeout(hc.timeout.get(), p.client().request(req)).await,
                    Ok(Ok(resp)) if resp.status().is_success() || resp.status().is_redirection()
                );
                let streak = if ok == b.active_up.load(Ordering::Relaxed) {
                    b.check_streak.store(0, Ordering::Relaxed);
                    0
                } else {
                    b.check_streak.fetch_add(1, Ordering::Relaxed) + 1
                };
                let needed = if ok { hc.healthy_after } else { hc.unhealthy_after };
                if streak >= needed.max(1) {
                    b.active_up.store(ok, Ordering::Relaxed);
                    b.check_streak.store(0, Ordering::Relaxed);
                    tracing::warn!(pool = %p.name, address = %b.url, up = ok, "upstream health changed");
                }
            }
            let interval = hc.interval.get();
            drop(p);
            tokio::time::sleep(interval).await;
        }
    }
}

fn client_tls(config: &Config, key: &str) -> Result<rustls::ClientConfig, ConfigError> {
    let mut roots = rustls::RootCertStore::empty();
    let native = rustls_native_certs::load_native_certs();
    for cert in native.certs {
        let _ = roots.add(cert);
    }
    if let Some(ca) = &config.ca_file {
        let bad = |m: String| ConfigError::Invalid {
            origin: String::new(),
            key: format!("{key}.ca_file"),
            value: ca.display().to_string(),
            expected: format!("a PEM file of CA certificates ({m})"),
        };
        let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(ca)
            .map_err(|e| bad(e.to_string()))?
            .collect::<Result<_, _>>()
            .map_err(|e| bad(e.to_string()))?;
        if certs.is_empty() {
            return Err(bad("no certificate found".into()));
        }
        for c in certs {
            roots.add(c).map_err(|e| bad(e.to_string()))?;
        }
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let tls = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| ConfigError::Invalid {
            origin: String::new(),
            key: key.into(),
            value: String::new(),
            expected: e.to_string(),
        })?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(tls)
}

fn build_client(config: &Config, tls: rustls::ClientConfig) -> HttpClient {
    let mut http = HttpConnector::new();
    http.enforce_http(false);
    http.set_nodelay(true);
    http.set_connect_timeout(Some(config.connect_timeout.get()));
    http.set_keepalive(Some(Duration::from_secs(60)));
    let https = hyper_rustls::HttpsConnectorBuilder::new()
        .with_tls_config(tls)
        .https_or_http()
        .enable_http1()
        .wrap_connector(http);
    Client::builder(TokioExecutor::new())
        .pool_idle_timeout(Duration::from_secs(90))
        .pool_max_idle_per_host(1024)
        .pool_timer(TokioTimer::new())
        .timer(TokioTimer::new())
        .build(https)
}

#[cfg(test)]
mod tests {
    use super::*;
    use rampart_core::config::{HealthCheck, PassiveHealth};
    use rampart_core::HumanDuration;

    fn pool(addrs: &[&str], failures: u32) -> Arc<Pool> {
        let cfg = Config {
            addresses: addrs.iter().map(|s| s.to_string()).collect(),
            connect_timeout: HumanDuration::secs(1),
            read_timeout: HumanDuration::secs(1),
            ca_file: None,
            health_check: HealthCheck::default(),
            passive: PassiveHealth { failures, eject_for: HumanDuration::secs(60) },
        };
        Pool::build("p", &cfg, "upstreams.p", 1).unwrap()
    }

    #[test]
    fn round_robin_skips_ejected_addresses() {
        let p = pool(&["http://127.0.0.1:1", "http://127.0.0.1:2", "http://[::1]:3"], 2);
        let picks: Vec<usize> = (0..6).map(|_| p.pick(None)).collect();
        assert_eq!(picks, vec![0, 1, 2, 0, 1, 2]);
        assert!(!p.failure(1));
        assert!(p.failure(1));
        let picks: Vec<usize> = (0..4).map(|_| p.pick(None)).collect();
        assert!(!picks.contains(&1), "{picks:?}");
        assert_eq!(p.backends[2].authority.as_str(), "[::1]:3");
    }

    #[test]
    fn all_down_still_picks_something_and_avoid_is_honoured() {
        let p = pool(&["http://127.0.0.1:1", "http://127.0.0.1:2"], 1);
        p.failure(0);
        p.failure(1);
        assert!(!p.any_healthy());
        let i = p.pick(None);
        assert!(i < 2);
        assert_eq!(p.pick(Some(0)), 1);
    }
}
