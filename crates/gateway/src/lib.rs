//! Rampart's edge gateway: the reverse proxy every request from the
//! internet meets first.
//!
//! [`Gateway::start`] binds the listeners of a validated
//! [`rampart_core::Config`] and serves until [`Gateway::shutdown`]. Each
//! request passes the stages of [`stage`] in order (connection limits, IP
//! policy and bans, protocol limits, probes, rate limits, CSRF, body limit),
//! goes to an upstream pool, and comes back with security headers. Every
//! refusal is an [`rampart_core::Event`] in the audit log, a metric on the
//! admin listener and points toward a ban.
//!
//! ```no_run
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! let dir = tempfile::tempdir()?;
//! let mut config = rampart_core::Config::default();
//! config.data_dir = Some(dir.path().into());
//! config.listen.http = "127.0.0.1:0".into();
//! config.set_catch_all_upstream("http://127.0.0.1:3000");
//! let audit = rampart_audit::AuditLog::open(dir.path())?;
//! let gateway = rampart_gateway::Gateway::start(rampart_gateway::Options::new(config, audit)).await?;
//! println!("listening on {:?}", gateway.http_addr());
//! gateway.shutdown(std::time::Duration::from_secs(5)).await;
//! # Ok(()) }
//! ```
#![forbid(unsafe_code)]
#![deny(missing_docs)]

pub mod access_log;
pub mod admin;
pub mod body;
pub mod demo;
pub mod event_gate;
pub mod metrics;
pub mod netset;
pub mod proxy;
pub mod proxy_protocol;
pub mod reject;
pub mod runtime;
pub mod server;
pub mod stage;
pub mod tls;
pub mod upstream;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use arc_swap::ArcSwap;
use rampart_audit::AuditLog;
use rampart_core::{Config, ConfigError, Event, Kind, Outcome};
use tokio::sync::{watch, Mutex};
use tokio_rustls::TlsAcceptor;

use crate::access_log::AccessLog;
use crate::metrics::Metrics;
use crate::runtime::Runtime;
use crate::server::Tracker;
use crate::stage::bans::{BanList, RedisBans};
use crate::stage::conn_limit::ConnLimiter;
use crate::stage::rate_limit::{MemoryStore, RedisStore, Store};
use crate::tls::CertResolver;

/// Why the gateway could not start.
#[derive(Debug, thiserror::Error)]
pub enum GatewayError {
    /// The configuration cannot be used.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// A listener could not be bound.
    #[error("{key} = {addr}: cannot listen: {source}")]
    Bind {
        /// The configuration key.
        key: &'static str,
        /// The address.
        addr: String,
        /// Why.
        source: std::io::Error,
    },
    /// Certificates could not be loaded.
    #[error(transparent)]
    Tls(#[from] tls::TlsError),
    /// Redis could not be reached.
    #[error("redis.url = {url}: cannot connect: {message}")]
    Redis {
        /// The URL (as configured).
        url: String,
        /// Why.
        message: String,
    },
    /// A worker thread or its event loop could not be started.
    #[error("cannot start a worker thread: {source}")]
    Thread {
        /// Why.
        source: std::io::Error,
    },
    /// A file in the data directory could not be written.
    #[error("data directory {}: {source}", path.display())]
    DataDir {
        /// The path.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
}

/// Reloads the configuration from its source (the file, with command-line
/// overrides applied again).
pub type ConfigSource = Arc<dyn Fn() -> Result<Config, ConfigError> + Send + Sync>;

/// How to start the gateway.
pub struct Options {
    /// The validated configuration.
    pub config: Config,
    /// Where reloads read the configuration from; `None`: reloads re-apply
    /// `config` (certificate and list files are still re-read).
    pub source: Option<ConfigSource>,
    /// Files whose change triggers a reload (the configuration file).
    pub watch: Vec<PathBuf>,
    /// The audit log.
    pub audit: AuditLog,
    /// How often watched files are checked.
    pub poll_interval: Duration,
}

impl Options {
    /// Options with no reload source.
    pub fn new(config: Config, audit: AuditLog) -> Self {
        Options { config, source: None, watch: Vec::new(), audit, poll_interval: Duration::from_secs(1) }
    }
}

/// State shared by every connection.
pub struct Shared {
    /// The compiled configuration in force.
    pub runtime: ArcSwap<Runtime>,
    /// Counters.
    pub metrics: Arc<Metrics>,
    /// The audit log.
    pub audit: AuditLog,
    /// Bans.
    pub bans: Arc<BanList>,
    /// Whether bans live in Redis (scoring is then done off the request path).
    pub bans_shared: bool,
    /// Rate-limit counters.
    pub rates: Store,
    /// The access log.
    pub access_log: Option<AccessLog>,
    /// Open connections.
    pub conns: Arc<ConnLimiter>,
    /// Request bodies buffered at once.
    pub body_budget: body::Budget,
    /// Per-client budgets of refusal events.
    pub event_gate: event_gate::EventGate,
    /// WAF inspections of large requests running off the event loops at
    /// once (one per core): such a request waits for a permit while the
    /// worker goes on serving other connections.
    pub waf_permits: tokio::sync::Semaphore,
    /// Heavy inspections waiting their turn, per client.
    pub waf_heavy: proxy::HeavyQueues,
}

/// A running gateway.
pub struct Gateway {
    shared: Arc<Shared>,
    http: Option<SocketAddr>,
    https: Option<SocketAddr>,
    admin: Option<SocketAddr>,
    shutdown: watch::Sender<bool>,
    stop: watch::Sender<bool>,
    threads: Vec<std::thread::JoinHandle<()>>,
    tracker: Arc<Tracker>,
    reloader: Arc<Reloader>,
}

struct Reloader {
    shared: Arc<Shared>,
    source: Option<ConfigSource>,
    certs: Option<Arc<CertResolver>>,
    data_dir: PathBuf,
    lock: Mutex<()>,
}

impl Gateway {
    /// Binds the listeners and starts serving.
    pub async fn start(opts: Options) -> Result<Gateway, GatewayError> {
        let config = opts.config;
        config.validate()?;
        let data_dir = config.data_dir();
        rampart_core::private_fs::create_dir(&data_dir)
            .map_err(|source| GatewayError::DataDir { path: data_dir.clone(), source })?;

        let bind = |key: &'static str, addr: &str| -> Result<Option<std::net::TcpListener>, GatewayError> {
            if addr.is_empty() {
                return Ok(None);
            }
            let parsed: SocketAddr = addr.parse().map_err(|_| ConfigError::Invalid {
                origin: String::new(),
                key: key.into(),
                value: addr.into(),
                expected: "an address such as \"0.0.0.0:8080\"".into(),
            })?;
            server::bind(parsed).map(Some).map_err(|source| GatewayError::Bind { key, addr: addr.into(), source })
        };
        let http = bind("listen.http", &config.listen.http)?;
        let https = bind("listen.https", &config.listen.https)?;
        let admin = bind("listen.admin", &config.listen.admin)?;
        let addr_of = |l: &Option<std::net::TcpListener>| l.as_ref().and_then(|l| l.local_addr().ok());
        let (http_addr, https_addr, admin_addr) = (addr_of(&http), addr_of(&https), addr_of(&admin));

        let metrics = Arc::new(Metrics::default());
        let (rates, redis_bans, redis_client) = if config.redis.url.is_empty() {
            (Store::Memory(MemoryStore::default()), None, None)
        } else {
            let redis_err =
                |e: redis::RedisError| GatewayError::Redis { url: config.redis.url.clone(), message: e.to_string() };
            let client = redis::Client::open(config.redis.url.as_str()).map_err(redis_err)?;
            let conn = tokio::time::timeout(Duration::from_secs(5), redis::aio::ConnectionManager::new(client.clone()))
                .await
                .map_err(|_| GatewayError::Redis { url: config.redis.url.clone(), message: "timed out".into() })?
                .map_err(redis_err)?;
            let prefix = if config.redis.key_prefix.is_empty() {
                "rampart:".to_string()
            } else {
                config.redis.key_prefix.clone()
            };
            (Store::Redis(RedisStore::new(conn.clone(), &prefix)), Some(RedisBans::new(conn, &prefix)), Some(client))
        };
        let bans_shared = redis_bans.is_some();
        let bans =
            BanList::with_file(opts.audit.clone(), metrics.clone(), redis_bans, Some(data_dir.join("bans.json")));
        if let Some(client) = redis_client {
            bans.sync().await;
            tokio::spawn(bans.clone().follow(client));
        }

        let access_log = if config.access_log.enabled {
            let path = data_dir.join(&config.access_log.path);
            Some(AccessLog::open(&path).map_err(|source| GatewayError::DataDir { path, source })?)
        } else {
            None
        };

        let certs = match &https {
            Some(_) => Some(CertResolver::load(&config.tls, &data_dir)?),
            None => None,
        };
        let tls_acceptor = match &certs {
            Some(c) => Some(Arc::new(TlsAcceptor::from(tls::server_config(&config.tls, c.clone())?))),
            None => None,
        };
        let token = match &admin {
            Some(_) => Some(
                admin::load_or_create_token(&data_dir)
                    .map_err(|source| GatewayError::DataDir { path: data_dir.join("admin.token"), source })?,
            ),
            None => None,
        };

        let workers = runtime::worker_count(&config);
        let max_buffered = config.limits.max_buffered_body_bytes;
        let runtime = Runtime::build(config, None, https_addr.map(|a| a.port()))?;
        let shared = Arc::new(Shared {
            runtime: ArcSwap::from_pointee(runtime),
            metrics,
            audit: opts.audit.clone(),
            bans,
            bans_shared,
            rates,
            access_log,
            conns: Arc::new(ConnLimiter::default()),
            body_budget: body::Budget::new(max_buffered),
            event_gate: event_gate::EventGate::default(),
            waf_heavy: proxy::HeavyQueues::default(),
            waf_permits: tokio::sync::Semaphore::new(
                std::thread::available_parallelism().map_or(2, std::num::NonZeroUsize::get),
            ),
        });

        let (shutdown, rx) = watch::channel(false);
        let tracker = Arc::new(Tracker::default());
        let (stop, stop_rx) = watch::channel(false);
        let mut hands = Vec::new();
        let mut threads = Vec::new();
        for i in 0..workers {
            let (tx, incoming) = tokio::sync::mpsc::unbounded_channel();
            hands.push(tx);
            let (shared, rx, stop_rx) = (shared.clone(), rx.clone(), stop_rx.clone());
            threads.push(
                std::thread::Builder::new()
                    .name(format!("rampart-worker-{i}"))
                    .spawn(move || worker(i, incoming, shared, rx, stop_rx))
                    .map_err(|source| GatewayError::Thread { source })?,
            );
        }
        for (l, tls) in http.into_iter().map(|l| (l, None)).chain(https.into_iter().map(|l| (l, tls_acceptor.clone())))
        {
            let l = tokio::net::TcpListener::from_std(l).map_err(|source| GatewayError::Thread { source })?;
            tokio::spawn(server::accept_loop(l, tls, hands.clone(), rx.clone(), tracker.clone()));
        }
        if let (Some(l), Some(t)) = (admin, token) {
            let l = tokio::net::TcpListener::from_std(l).map_err(|source| GatewayError::Thread { source })?;
            tokio::spawn(admin::serve(shared.clone(), l, t.into(), rx.clone()));
        }
        let reloader =
            Arc::new(Reloader { shared: shared.clone(), source: opts.source, certs, data_dir, lock: Mutex::new(()) });
        // Registered here, before start returns, so a SIGHUP sent as soon as
        // the gateway reports it is serving reloads instead of killing it.
        #[cfg(unix)]
        let hup = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup()).ok();
        #[cfg(not(unix))]
        let hup = None;
        tokio::spawn(watch_files(Arc::downgrade(&reloader), opts.watch, opts.poll_interval, hup, rx.clone()));
        tokio::spawn(housekeeping(Arc::downgrade(&shared), rx));

        let rt = shared.runtime.load();
        opts.audit.emit(
            Event::new("configuration", "gateway-started")
                .kind(Kind::State)
                .outcome(Outcome::Success)
                .label("listen.http", http_addr.map(|a| a.to_string()).unwrap_or_default())
                .label("listen.https", https_addr.map(|a| a.to_string()).unwrap_or_default())
                .label("routes", rt.routes.len().to_string()),
        );
        drop(rt);
        Ok(Gateway {
            shared,
            http: http_addr,
            https: https_addr,
            admin: admin_addr,
            shutdown,
            stop,
            threads,
            tracker,
            reloader,
        })
    }

    /// The plain HTTP listener's address.
    pub fn http_addr(&self) -> Option<SocketAddr> {
        self.http
    }

    /// The HTTPS listener's address.
    pub fn https_addr(&self) -> Option<SocketAddr> {
        self.https
    }

    /// The admin listener's address.
    pub fn admin_addr(&self) -> Option<SocketAddr> {
        self.admin
    }

    /// State shared by all connections (metrics, bans, runtime).
    pub fn shared(&self) -> &Arc<Shared> {
        &self.shared
    }

    /// Reloads configuration, certificates and list files now. On error the
    /// configuration in force stays, and the error is returned and logged.
    pub async fn reload(&self) -> Result<(), String> {
        self.reloader.reload("requested").await
    }

    /// Stops accepting, lets requests in flight finish (up to `grace`),
    /// then returns.
    pub async fn shutdown(mut self, grace: Duration) {
        let _ = self.shutdown.send(true);
        let drained = self.tracker.drained(grace).await;
        // End the workers and wait for them, so that what they hold (the
        // audit log among it) is released when this returns.
        let _ = self.stop.send(true);
        let threads = std::mem::take(&mut self.threads);
        let _ = tokio::task::spawn_blocking(move || threads.into_iter().for_each(|t| drop(t.join()))).await;
        self.shared.event_gate.flush(&self.shared.audit);
        self.shared.audit.emit(
            Event::new("configuration", "gateway-stopped")
                .kind(Kind::State)
                .outcome(if drained { Outcome::Success } else { Outcome::Failure })
                .reason(if drained { "all connections finished" } else { "grace period over; connections cut" }),
        );
        self.shared.audit.flush();
    }
}

impl Drop for Gateway {
    fn drop(&mut self) {
        // Stop accepting and end the worker threads (cutting what is left).
        let _ = self.shutdown.send(true);
        let _ = self.stop.send(true);
    }
}

/// One worker thread: its own single-threaded event loop and upstream
/// connections, serving the connections the accept loops hand it, like an
/// nginx worker. Runs until the hard stop.
fn worker(
    index: usize,
    incoming: tokio::sync::mpsc::UnboundedReceiver<server::Accepted>,
    shared: Arc<Shared>,
    shutdown: watch::Receiver<bool>,
    stop: watch::Receiver<bool>,
) {
    upstream::set_worker(index);
    let rt = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            tracing::error!(worker = index, error = %e, "cannot start a worker event loop");
            return;
        }
    };
    rt.block_on(server::serve_handed(shared, incoming, shutdown, stop));
}

impl Reloader {
    async fn reload(&self, why: &str) -> Result<(), String> {
        let _one_at_a_time = self.lock.lock().await;
        let result = self.try_reload();
        let shared = &self.shared;
        shared.metrics.reload(result.is_ok());
        match &result {
            Ok(()) => {
                tracing::info!(trigger = why, "configuration reloaded");
                shared.audit.emit(
                    Event::new("configuration", "config-reloaded")
                        .kind(Kind::State)
                        .outcome(Outcome::Success)
                        .reason(why),
                );
            }
            Err(e) => {
                tracing::error!(trigger = why, error = %e, "configuration reload refused; the previous one stays in force");
                shared.audit.emit(
                    Event::new("configuration", "config-reload-failed")
                        .kind(Kind::State)
                        .outcome(Outcome::Failure)
                        .reason(e.clone()),
                );
            }
        }
        result
    }

    fn try_reload(&self) -> Result<(), String> {
        let old = self.shared.runtime.load_full();
        let config = match &self.source {
            Some(src) => src().map_err(|e| e.to_string())?,
            None => old.config.clone(),
        };
        for (key, a, b) in [
            ("listen", format!("{:?}", old.config.listen), format!("{:?}", config.listen)),
            ("redis", format!("{:?}", old.config.redis), format!("{:?}", config.redis)),
            ("data_dir", format!("{:?}", old.config.data_dir), format!("{:?}", config.data_dir)),
            ("tls.min_version", old.config.tls.min_version.clone(), config.tls.min_version.clone()),
        ] {
            if a != b {
                tracing::warn!(key, "changed; takes effect at the next restart");
            }
        }
        let mut config = config;
        config.listen = old.config.listen.clone();
        config.redis = old.config.redis.clone();
        config.data_dir = old.config.data_dir.clone();
        let runtime = Runtime::build(config, Some(&old), old.https_port).map_err(|e| e.to_string())?;
        if let Some(certs) = &self.certs {
            certs.reload_if_changed(&runtime.config.tls, &self.data_dir).map_err(|e| e.to_string())?;
        }
        self.shared.runtime.store(Arc::new(runtime));
        Ok(())
    }
}

/// Reloads when a watched file (configuration, IP lists, certificates)
/// changes, and on SIGHUP.
#[cfg(unix)]
type Hangup = tokio::signal::unix::Signal;
#[cfg(not(unix))]
type Hangup = ();

async fn watch_files(
    reloader: std::sync::Weak<Reloader>,
    config_files: Vec<PathBuf>,
    every: Duration,
    mut hup: Option<Hangup>,
    mut stop: watch::Receiver<bool>,
) {
    let stamp = |files: &[PathBuf]| -> Vec<Option<SystemTime>> {
        files.iter().map(|f| std::fs::metadata(f).and_then(|m| m.modified()).ok()).collect()
    };
    let files_now = |r: &Reloader| -> Vec<PathBuf> {
        let mut files = config_files.clone();
        files.extend(r.shared.runtime.load().watched.iter().cloned());
        if let Some(c) = &r.certs {
            files.extend(c.watched_files());
        }
        files
    };
    let Some(r) = reloader.upgrade() else { return };
    let mut files = files_now(&r);
    let mut last = stamp(&files);
    drop(r);
    loop {
        #[cfg(unix)]
        let sighup = async {
            match hup.as_mut() {
                Some(h) => h.recv().await,
                None => std::future::pending().await,
            }
        };
        #[cfg(not(unix))]
        let sighup = {
            let _ = &mut hup;
            std::future::pending::<Option<()>>()
        };
        let trigger = tokio::select! {
            _ = tokio::time::sleep(every) => None,
            _ = sighup => Some("SIGHUP"),
            _ = stop.changed() => return,
        };
        let Some(r) = reloader.upgrade() else { return };
        let now = stamp(&files);
        let trigger = trigger.or((now != last).then_some("file changed"));
        if let Some(why) = trigger {
            let _ = r.reload(why).await;
            files = files_now(&r);
            last = stamp(&files);
        }
    }
}

/// Periodic sweeps of expired rate-limit entries and bans, and summaries
/// of suppressed refusal events (within seconds of their window's end).
async fn housekeeping(shared: std::sync::Weak<Shared>, mut stop: watch::Receiver<bool>) {
    for tick in 1u64.. {
        tokio::select! {
            _ = tokio::time::sleep(Duration::from_secs(2)) => {}
            _ = stop.changed() => return,
        }
        let Some(s) = shared.upgrade() else { return };
        if tick % 5 == 0 {
            s.rates.sweep();
            s.bans.sweep();
        }
        s.event_gate.sweep(&s.audit);
    }
}
