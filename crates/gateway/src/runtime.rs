//! The compiled configuration that requests read: built once per load or
//! reload, swapped atomically, never changed in place. A request keeps the
//! snapshot it started with, so a reload never disturbs one in flight.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;

use rampart_core::config::{Config, Limits};
use rampart_core::ConfigError;

use crate::stage::bans::BanPolicy;
use crate::stage::headers::HeaderPlan;
use crate::stage::ip_policy::IpPolicy;
use crate::stage::probes::Probes;
use crate::stage::rate_limit::Limit;
use crate::stage::request_limits::RequestLimits;
use crate::stage::waf::{RoutePolicy, Waf};
use crate::upstream::Pool;

/// How a route matches a host.
#[derive(Clone, Debug)]
enum HostMatch {
    Exact(String),
    /// `*.example.com` stored as `.example.com`.
    Suffix(String),
}

/// One route, ready to use.
pub struct Route {
    /// Its name.
    pub name: Arc<str>,
    hosts: Vec<HostMatch>,
    prefix: String,
    /// Where it sends requests.
    pub pool: Arc<Pool>,
    /// Request body limit.
    pub max_body: u64,
    /// Rate limits applied, in order.
    pub limits: Vec<Arc<Limit>>,
    /// Whether CSRF checks apply.
    pub csrf: bool,
    /// What to do to responses.
    pub headers: HeaderPlan,
    /// WAF mode, paranoia level, thresholds and exclusions.
    pub waf: RoutePolicy,
}

impl Route {
    fn matches(&self, host: &str, path: &str) -> bool {
        let host_ok = self.hosts.is_empty()
            || self.hosts.iter().any(|h| match h {
                HostMatch::Exact(e) => host.eq_ignore_ascii_case(e),
                HostMatch::Suffix(s) => host.len() > s.len() && host[host.len() - s.len()..].eq_ignore_ascii_case(s),
            });
        host_ok && prefix_matches(&self.prefix, path)
    }
}

/// `/api` matches `/api`, `/api/` and `/api/x`, not `/apix`; without
/// regard to case, since many backends route without it (`/API/x` must
/// meet `/api`'s rules).
fn prefix_matches(prefix: &str, path: &str) -> bool {
    if prefix == "/" {
        return true;
    }
    let prefix = prefix.strip_suffix('/').unwrap_or(prefix);
    path.len() >= prefix.len()
        && path.as_bytes()[..prefix.len()].eq_ignore_ascii_case(prefix.as_bytes())
        && matches!(path.as_bytes().get(prefix.len()), None | Some(b'/'))
}

/// Gateway worker threads for `config`: `listen.workers`, or one per core.
pub fn worker_count(config: &Config) -> usize {
    match config.listen.workers {
        0 => std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1),
        n => n,
    }
}

/// Everything a request needs from the configuration.
pub struct Runtime {
    /// The configuration this was built from.
    pub config: Config,
    /// Routes in match order.
    pub routes: Vec<Route>,
    /// Upstream pools by name.
    pub pools: HashMap<String, Arc<Pool>>,
    /// Allow/deny lists and trusted proxies.
    pub ip_policy: IpPolicy,
    /// Ban settings.
    pub bans: BanPolicy,
    /// Probe and scanner matchers.
    pub probes: Probes,
    /// Head limits.
    pub request_limits: RequestLimits,
    /// `[limits]`.
    pub limits: Limits,
    /// Files whose change triggers a reload (IP lists).
    pub watched: Vec<PathBuf>,
    /// Port of the HTTPS listener, for redirects.
    pub https_port: Option<u16>,
    /// The WAF's compiled rules and log.
    pub waf: Waf,
}

impl Runtime {
    /// Compiles `config`, reusing pools of `previous` whose configuration
    /// did not change (keeping their connections and health state).
    pub fn build(config: Config, previous: Option<&Runtime>, https_port: Option<u16>) -> Result<Self, ConfigError> {
        let mut pools = HashMap::new();
        for (name, up) in &config.upstreams {
            let reuse = previous.and_then(|p| p.pools.get(name)).filter(|p| p.config == *up).cloned();
            let pool = match reuse {
                Some(p) => p,
                None => {
                    let pool = Pool::build(name, up, &format!("upstreams.{name}"), worker_count(&config))?;
                    if !up.health_check.path.is_empty() {
                        tokio::spawn(Pool::check_loop(Arc::downgrade(&pool)));
                    }
                    pool
                }
            };
            pools.insert(name.clone(), pool);
        }
        let limits: HashMap<&str, Arc<Limit>> = config
            .rate_limits
            .iter()
            .map(|(n, c)| (n.as_str(), Arc::new(Limit::build(n, c, config.ip_policy.ipv6_prefix))))
            .collect();
        let mut routes = Vec::new();
        for (i, r) in config.routes.iter().enumerate() {
            let pool = pools.get(&r.upstream).cloned().ok_or_else(|| ConfigError::Invalid {
                origin: String::new(),
                key: format!("routes[{i}].upstream"),
                value: r.upstream.clone(),
                expected: "the name of an upstream".into(),
            })?;
            routes.push(Route {
                name: r.name.as_str().into(),
                hosts: r
                    .hosts
                    .iter()
                    .map(|h| match h.strip_prefix('*') {
                        Some(suffix) => HostMatch::Suffix(suffix.to_ascii_lowercase()),
                        None => HostMatch::Exact(h.to_ascii_lowercase()),
                    })
                    .collect(),
                prefix: r.path_prefix.clone(),
                pool,
                max_body: r.max_body_bytes.unwrap_or(config.limits.max_body_bytes),
                limits: r.rate_limits.iter().filter_map(|n| limits.get(n.as_str()).cloned()).collect(),
                csrf: r.csrf,
                headers: HeaderPlan::build(&r.headers, &format!("routes[{i}].headers"))?,
                waf: RoutePolicy::build(&config, &r.waf),
            });
        }
        let ip_policy = IpPolicy::build(&config.ip_policy)?;
        let waf = Waf::build(&config, previous.map(|p| &p.waf))?;
        let watched = config.ip_policy.allow_files.iter().chain(&config.ip_policy.deny_files).cloned().collect();
        Ok(Runtime {
            waf,
            routes,
            pools,
            ip_policy,
            bans: BanPolicy::build(&config.bans, config.ip_policy.ipv6_prefix),
            probes: Probes::build(&config.bans),
            request_limits: RequestLimits::build(&config.limits),
            limits: config.limits.clone(),
            watched,
            https_port,
            config,
        })
    }

    /// The first route matching `host` (port already removed) and `path`.
    pub fn route(&self, host: &str, path: &str) -> Option<&Route> {
        self.routes.iter().find(|r| r.matches(host, path))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefixes_match_on_segment_boundaries() {
        assert!(prefix_matches("/", "/anything"));
        assert!(prefix_matches("/api", "/api"));
        assert!(prefix_matches("/api", "/api/v1"));
        assert!(prefix_matches("/api/", "/api/v1"));
        assert!(!prefix_matches("/api", "/apix"));
        assert!(!prefix_matches("/api", "/"));
    }

    #[tokio::test]
    async fn routes_match_by_host_then_prefix_in_order() {
        let text = r#"
            [upstreams.a]
            addresses = ["http://127.0.0.1:1"]
            [upstreams.b]
            addresses = ["http://127.0.0.1:2"]
            [[routes]]
            name = "api"
            hosts = ["api.example.com"]
            path_prefix = "/v1"
            upstream = "a"
            [[routes]]
            name = "wild"
            hosts = ["*.example.org"]
            upstream = "b"
            [[routes]]
            name = "rest"
            upstream = "b"
        "#;
        let rt = Runtime::build(Config::from_toml(text, "t").unwrap(), None, None).unwrap();
        assert_eq!(&*rt.route("API.example.com", "/v1/x").unwrap().name, "api");
        assert_eq!(&*rt.route("api.example.com", "/v2").unwrap().name, "rest");
        assert_eq!(&*rt.route("x.example.org", "/").unwrap().name, "wild");
        assert_eq!(&*rt.route("example.org", "/").unwrap().name, "rest");
        // An unchanged pool is reused across a rebuild.
        let again = Runtime::build(rt.config.clone(), Some(&rt), None).unwrap();
        assert!(Arc::ptr_eq(&rt.pools["a"], &again.pools["a"]));
    }
}
