//! The configuration schema: one TOML file, `rampart.toml`.
//!
//! Every key has a safe default, so an empty file (or none) is a working
//! configuration. Unknown keys are rejected. [`Config::load`] parses and then
//! [`Config::validate`]s, and every error names the key, the value and what
//! was expected:
//!
//! ```text
//! rampart.toml: rate_limits.api.burst = 0: expected an integer of at least 1
//! ```
//!
//! The reference for every key is `docs/configuration.md`.

use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};

use ipnet::IpNet;
use serde::{Deserialize, Serialize};

use crate::duration::HumanDuration;
use crate::error::ConfigError;

/// The whole configuration file.
#[derive(Clone, Debug, Default, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// Where Rampart keeps its state: certificates it generated, the audit
    /// log, the access log, the admin token. Default `./rampart-data`.
    pub data_dir: Option<PathBuf>,
    /// Listening addresses.
    pub listen: Listen,
    /// TLS certificates and protocol settings.
    pub tls: Tls,
    /// Protocol limits and timeouts.
    pub limits: Limits,
    /// Client IP allow/deny lists and trusted proxies.
    pub ip_policy: IpPolicy,
    /// Named rate limits that routes refer to.
    pub rate_limits: BTreeMap<String, RateLimit>,
    /// Automatic bans of abusive clients.
    pub bans: Bans,
    /// Shared state across gateway replicas.
    pub redis: Redis,
    /// The JSON access log.
    pub access_log: AccessLog,
    /// Upstream pools, by name.
    pub upstreams: BTreeMap<String, Upstream>,
    /// Routes, matched in order: the first whose host and path prefix match.
    pub routes: Vec<Route>,
    /// The audit log.
    pub audit: Audit,
    /// The web application firewall (SecLang rules, such as the OWASP CRS).
    pub waf: Waf,
    /// Backup jobs.
    pub backup: Backup,
}

/// Backup jobs, by name (`rampart backup run --job NAME`; run on their
/// schedules by `rampart serve`).
#[derive(Clone, Debug, Default, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct Backup {
    /// A file whose first line is the repositories' password (else
    /// `RAMPART_BACKUP_PASSWORD`). Never the password itself.
    pub password_file: Option<PathBuf>,
    /// The jobs.
    pub jobs: BTreeMap<String, BackupJob>,
}

/// How many snapshots a job keeps (`rampart backup forget --keep-*`).
#[derive(Clone, Debug, Default, Deserialize, Serialize, PartialEq, Eq)]
#[serde(deny_unknown_fields, default)]
pub struct Keep {
    /// The newest N.
    pub last: usize,
    /// One for each of the last N hours.
    pub hourly: usize,
    /// ... days.
    pub daily: usize,
    /// ... weeks.
    pub weekly: usize,
    /// ... months.
    pub monthly: usize,
    /// ... years.
    pub yearly: usize,
}

/// One backup job: what to back up, and every repository it goes to.
#[derive(Clone, Debug, Default, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct BackupJob {
    /// Files and directories.
    pub paths: Vec<PathBuf>,
    /// Or a PostgreSQL database (dumped with pg_dump).
    pub postgres: Option<String>,
    /// Or an SQLite database file (copied consistently while in use).
    pub sqlite: Option<PathBuf>,
    /// Repositories that each get the snapshot (initialised beforehand):
    /// directories, or `s3:http(s)://HOST/BUCKET/PREFIX`.
    pub targets: Vec<String>,
    /// Glob patterns left out.
    pub exclude: Vec<String>,
    /// Snapshot tags.
    pub tags: Vec<String>,
    /// When `rampart serve` runs the job (unset: only by hand).
    pub schedule: Option<crate::Schedule>,
    /// When `rampart serve` runs a restore drill of the job's latest
    /// snapshot in every target.
    pub drill: Option<crate::Schedule>,
    /// Retention applied after each scheduled run (forget, then prune).
    pub keep: Option<Keep>,
}

/// What the WAF does with a request its rules flag.
#[derive(Clone, Copy, Debug, Default, Deserialize, Serialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum WafMode {
    /// Rules do not run.
    Off,
    /// Rules run and log; nothing is refused.
    Detection,
    /// Rules run, log and refuse.
    #[default]
    Blocking,
}

/// What a blocking WAF does with a request body it cannot read as its
/// content type says (broken JSON or XML, an ambiguous multipart
/// envelope): the application may read it all the same, so by default it
/// is refused, as ModSecurity's recommended setup does.
#[derive(Clone, Copy, Debug, Default, Deserialize, Serialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum BodyErrors {
    /// Refuse with 400.
    #[default]
    Refuse,
    /// Inspect what could be read (the body as a form, `REQUEST_BODY`)
    /// and let the rules decide.
    Inspect,
}

/// The web application firewall.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct Waf {
    /// A Core Rule Set checkout or release (the directory holding `rules/`,
    /// or `rules/` itself). Unset: Debian's `/usr/share/modsecurity-crs`
    /// when installed, otherwise Rampart's built-in baseline rules.
    pub crs_dir: Option<PathBuf>,
    /// SecLang files loaded before the rule set, after its setup file
    /// (settings and exclusions that must come first, as CRS's
    /// REQUEST-900 file).
    pub rules_before: Vec<PathBuf>,
    /// More SecLang files, loaded after the rule set (exclusions, your own
    /// rules).
    pub rules: Vec<PathBuf>,
    /// Default mode for every route.
    pub mode: WafMode,
    /// CRS paranoia level, 1 (few false positives) to 4.
    pub paranoia_level: u8,
    /// CRS inbound anomaly score at which a request is refused.
    pub inbound_threshold: u32,
    /// CRS outbound anomaly score at which a response is refused.
    pub outbound_threshold: u32,
    /// Response bodies of these MIME types are inspected.
    pub response_mime_types: Vec<String>,
    /// At most this many bytes of a response body are inspected.
    pub response_body_limit: u64,
    /// The ModSecurity-style text log of matched rules; relative to
    /// `data_dir`. Empty: no file.
    pub log_file: PathBuf,
    /// Rules or targets left out everywhere.
    pub exclusions: Vec<WafExclusion>,
    /// Score added to a client's ban score when the WAF refuses it.
    pub ban_score: u32,
    /// Unreadable request bodies on blocking routes: refused or inspected.
    pub body_errors: BodyErrors,
    /// Longest time the rules of one phase may take on a request; a
    /// blocking route refuses a request that needs more (rather than let
    /// it through half-inspected).
    pub inspection_budget: HumanDuration,
    /// Most arguments (query, form, JSON and multipart fields, cookies) a
    /// request may carry on a route with the WAF on; a blocking route
    /// refuses more with 400 (each one costs every rule's time).
    pub max_arguments: u32,
}

impl Default for Waf {
    fn default() -> Self {
        Self {
            crs_dir: None,
            rules_before: Vec::new(),
            rules: Vec::new(),
            mode: WafMode::Blocking,
            paranoia_level: 1,
            inbound_threshold: 5,
            outbound_threshold: 4,
            response_mime_types: ["text/plain", "text/html", "text/xml", "application/json"].map(String::from).to_vec(),
            response_body_limit: 512 * 1024,
            log_file: PathBuf::from("waf.log"),
            exclusions: Vec::new(),
            ban_score: 5,
            body_errors: BodyErrors::Refuse,
            inspection_budget: HumanDuration(std::time::Duration::from_secs(1)),
            max_arguments: 1000,
        }
    }
}

/// A rule exclusion: the rules with ids `rule` (`942100` or
/// `942100-942199`), entirely or for one `target` (`ARGS:password`).
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct WafExclusion {
    /// Rule id or id range.
    pub rule: String,
    /// A variable (`ARGS:password`, `REQUEST_COOKIES`); unset: the whole rule.
    #[serde(default)]
    pub target: Option<String>,
}

impl WafExclusion {
    /// The id range.
    pub fn ids(&self) -> Option<(u64, u64)> {
        let (lo, hi) = self.rule.split_once('-').unwrap_or((&self.rule, &self.rule));
        let (lo, hi) = (lo.trim().parse().ok()?, hi.trim().parse().ok()?);
        (lo <= hi).then_some((lo, hi))
    }
}

/// A route's own WAF settings; unset keys take the `[waf]` values.
#[derive(Clone, Debug, Default, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct RouteWaf {
    /// Off, detection or blocking.
    pub mode: Option<WafMode>,
    /// Paranoia level, 1 to 4.
    pub paranoia_level: Option<u8>,
    /// Inbound anomaly threshold.
    pub inbound_threshold: Option<u32>,
    /// Outbound anomaly threshold.
    pub outbound_threshold: Option<u32>,
    /// Exclusions for this route, added to the global ones.
    pub exclusions: Vec<WafExclusion>,
    /// Unreadable request bodies: refused or inspected.
    pub body_errors: Option<BodyErrors>,
}

/// The audit log (docs/audit-log-format.md).
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct Audit {
    /// Encrypt segments with AES-256-GCM.
    pub encrypt: bool,
    /// Extra wait for more events before a group commit (0: none; the
    /// batch is whatever queued during the previous sync).
    pub batch_window: HumanDuration,
    /// Sign a tree head after this many events...
    pub sth_every_events: u64,
    /// ...or this long after the first unsigned event.
    pub sth_every: HumanDuration,
    /// Start a new segment past this size, in bytes.
    pub segment_max_bytes: u64,
    /// Remove sealed segments older than this ("" keeps them).
    pub retention_max_age: Option<HumanDuration>,
    /// Remove the oldest sealed segments while the log is larger, in bytes.
    pub retention_max_bytes: Option<u64>,
    /// Masking.
    pub mask: AuditMask,
    /// Where events are delivered besides the log.
    pub sinks: Vec<AuditSink>,
}

impl Default for Audit {
    fn default() -> Self {
        Audit {
            encrypt: true,
            batch_window: HumanDuration::millis(0),
            sth_every_events: 10_000,
            sth_every: HumanDuration::secs(1),
            segment_max_bytes: 64 << 20,
            retention_max_age: None,
            retention_max_bytes: None,
            mask: AuditMask::default(),
            sinks: Vec::new(),
        }
    }
}

/// Masking rules of the audit log.
#[derive(Clone, Debug, Default, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct AuditMask {
    /// Rules by dotted field path: `{ path = "user.email", action = "hash" }`.
    pub fields: Vec<MaskField>,
    /// Detector actions by name (`email = "redact"`, `card = "off"`).
    pub detectors: BTreeMap<String, String>,
}

/// One masking rule by field path.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct MaskField {
    /// Dotted path.
    pub path: String,
    /// `redact`, `hash` or `partial`.
    pub action: String,
}

/// A sink: a JSON-lines file or a syslog server (RFC 5424 over TCP).
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct AuditSink {
    /// Name (its cursor file is `audit/sinks/NAME.cursor`).
    pub name: String,
    /// `file` or `syslog`.
    pub kind: String,
    /// For `file`: the file, relative to the data directory unless absolute.
    #[serde(default)]
    pub path: Option<PathBuf>,
    /// For `syslog`: `host:port` of a TCP syslog receiver.
    #[serde(default)]
    pub address: Option<String>,
}

/// Listening addresses.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct Listen {
    /// Plain HTTP listener. Empty string disables it.
    pub http: String,
    /// HTTPS listener. Empty string disables it.
    pub https: String,
    /// Admin listener (health, metrics, bans API). Keep it on loopback.
    pub admin: String,
    /// Answer plain-HTTP requests with a 308 redirect to HTTPS.
    pub redirect_https: bool,
    /// Expect a PROXY protocol (v1 or v2) header on connections from
    /// `ip_policy.trusted_proxies`.
    pub proxy_protocol: bool,
    /// Worker threads; 0 means one per CPU core.
    pub workers: usize,
}

impl Default for Listen {
    fn default() -> Self {
        Self {
            http: "0.0.0.0:8080".into(),
            https: "0.0.0.0:8443".into(),
            admin: "127.0.0.1:9090".into(),
            redirect_https: false,
            proxy_protocol: false,
            workers: 0,
        }
    }
}

/// TLS settings.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct Tls {
    /// Certificates, each chosen by SNI from the names it carries. The first
    /// one is served to clients that send no SNI. With none, a self-signed
    /// certificate is generated into the data directory.
    pub certificates: Vec<Certificate>,
    /// Lowest protocol version: "1.2" or "1.3".
    pub min_version: String,
}

impl Default for Tls {
    fn default() -> Self {
        Self { certificates: Vec::new(), min_version: "1.2".into() }
    }
}

/// One certificate chain and its private key, as PEM files.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Certificate {
    /// PEM file with the certificate chain, leaf first.
    pub cert: PathBuf,
    /// PEM file with the private key (PKCS#8, PKCS#1 or SEC1).
    pub key: PathBuf,
}

/// Protocol limits, safe by default.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct Limits {
    /// Refuse (400) paths that backends read differently: bytes that are
    /// no UTF-8 once decoded (overlong `%c0%ae`), control characters.
    /// `false` routes them by a lossy reading instead (the WAF's rules
    /// still see them as sent).
    pub refuse_ambiguous_paths: bool,
    /// Connections open at once, all clients together.
    pub max_connections: usize,
    /// Connections open at once from one client address.
    pub max_connections_per_ip: usize,
    /// Time a client has to send a request's complete header block.
    pub header_read_timeout: HumanDuration,
    /// Longest pause allowed between two pieces of a request body.
    pub body_read_timeout: HumanDuration,
    /// Time a keep-alive connection may sit with no request.
    pub idle_timeout: HumanDuration,
    /// Total size of the request line and headers, in bytes.
    pub max_header_bytes: usize,
    /// Number of request headers.
    pub max_headers: usize,
    /// Length of the request target (path and query), in bytes.
    pub max_uri_bytes: usize,
    /// Request body size, in bytes, unless a route sets its own.
    pub max_body_bytes: u64,
    /// HTTP/2: streams open at once on one connection.
    pub h2_max_concurrent_streams: u32,
    /// Request bodies of unannounced size are buffered before forwarding;
    /// all of them together may hold this many bytes (then 503).
    pub max_buffered_body_bytes: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_connections: 20_000,
            max_connections_per_ip: 512,
            header_read_timeout: HumanDuration::secs(10),
            body_read_timeout: HumanDuration::secs(15),
            idle_timeout: HumanDuration::secs(60),
            max_header_bytes: 16 * 1024,
            max_headers: 100,
            max_uri_bytes: 8 * 1024,
            refuse_ambiguous_paths: true,
            max_body_bytes: 10 * 1024 * 1024,
            h2_max_concurrent_streams: 128,
            max_buffered_body_bytes: 256 << 20,
        }
    }
}

/// Who may connect, and whose forwarding headers are believed.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct IpPolicy {
    /// When not empty, only these networks may connect.
    #[serde(deserialize_with = "nets")]
    pub allow: Vec<IpNet>,
    /// These networks are refused.
    #[serde(deserialize_with = "nets")]
    pub deny: Vec<IpNet>,
    /// Files of networks to allow, one CIDR or address a line, `#` comments;
    /// reloaded when they change.
    pub allow_files: Vec<PathBuf>,
    /// Files of networks to deny, same format as `allow_files`.
    pub deny_files: Vec<PathBuf>,
    /// Proxies and load balancers in front of Rampart: only their
    /// X-Forwarded-For and PROXY protocol headers are trusted.
    #[serde(deserialize_with = "nets")]
    pub trusted_proxies: Vec<IpNet>,
    /// IPv6 clients are counted by network of this prefix length for rate
    /// limits, bans and per-client connection limits: one subscriber
    /// usually holds a whole /64 and can rotate through it.
    pub ipv6_prefix: u8,
}

impl Default for IpPolicy {
    fn default() -> Self {
        IpPolicy {
            allow: Vec::new(),
            deny: Vec::new(),
            allow_files: Vec::new(),
            deny_files: Vec::new(),
            trusted_proxies: Vec::new(),
            ipv6_prefix: IPV6_PREFIX_DEFAULT,
        }
    }
}

/// The usual IPv6 end-site assignment (RFC 6177 recommends /56, many
/// providers hand out /64): a client rotating within it is one client.
pub const IPV6_PREFIX_DEFAULT: u8 = 64;
/// Shorter prefixes than a /32 (a whole provider's allocation) would lump
/// unrelated customers together.
pub const IPV6_PREFIX_MIN: u8 = 32;

impl IpPolicy {
    fn validate(&self) -> Result<(), ConfigError> {
        if !(IPV6_PREFIX_MIN..=128).contains(&self.ipv6_prefix) {
            return Err(invalid(
                "ip_policy.ipv6_prefix",
                &self.ipv6_prefix.to_string(),
                &format!("a prefix length from {IPV6_PREFIX_MIN} to 128"),
            ));
        }
        Ok(())
    }
}

/// A rate limit (GCRA): `rate` requests per `per`, with bursts of `burst`.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct RateLimit {
    /// What a client is: `"ip"`, `"route"` (everyone together) or
    /// `"header:NAME"` (for example an API key header).
    #[serde(default = "default_rate_key")]
    pub key: String,
    /// Requests allowed per `per`.
    pub rate: u32,
    /// The period `rate` is counted over.
    #[serde(default = "default_rate_per")]
    pub per: HumanDuration,
    /// Requests allowed at once above the steady rate.
    #[serde(default)]
    pub burst: Option<u32>,
}

fn default_rate_key() -> String {
    "ip".into()
}

fn default_rate_per() -> HumanDuration {
    HumanDuration::secs(1)
}

/// The key a rate limit counts by.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RateKey {
    /// The client address.
    Ip,
    /// All clients of the route together.
    Route,
    /// The value of a request header (lower-case name).
    Header(String),
}

impl RateLimit {
    /// The parsed `key`.
    pub fn parsed_key(&self) -> Option<RateKey> {
        match self.key.as_str() {
            "ip" => Some(RateKey::Ip),
            "route" => Some(RateKey::Route),
            other => other
                .strip_prefix("header:")
                .filter(|h| !h.is_empty() && http_token(h))
                .map(|h| RateKey::Header(h.to_ascii_lowercase())),
        }
    }

    /// The burst, defaulting to `rate`.
    pub fn burst(&self) -> u32 {
        self.burst.unwrap_or(self.rate)
    }
}

fn http_token(s: &str) -> bool {
    s.bytes().all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b))
}

/// Automatic bans (intrusion prevention).
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct Bans {
    /// Ban clients whose score crosses `threshold` within `window`.
    pub enabled: bool,
    /// Score at which a client is banned.
    pub threshold: u32,
    /// Window over which a client's score is summed.
    pub window: HumanDuration,
    /// First ban's length.
    pub duration: HumanDuration,
    /// Each further ban of the same client lasts this many times longer.
    pub repeat_multiplier: u32,
    /// Longest ban.
    pub max_duration: HumanDuration,
    /// How long a past ban still counts as "repeat".
    pub memory: HumanDuration,
    /// Score of a request refused by a limit (size, rate, timeout, malformed).
    pub limit_score: u32,
    /// Score of a 4xx answer from the upstream.
    pub client_error_score: u32,
    /// Score of a probe for a well-known sensitive path.
    pub probe_score: u32,
    /// Score of a request from a known scanner's user agent.
    pub scanner_score: u32,
    /// Path prefixes that only attackers ask for (matched without case).
    pub probe_paths: Vec<String>,
    /// Substrings of scanner user agents (matched without case).
    pub scanner_user_agents: Vec<String>,
    /// Networks never banned (your office, your monitoring).
    #[serde(deserialize_with = "nets")]
    pub exempt: Vec<IpNet>,
}

impl Default for Bans {
    fn default() -> Self {
        Self {
            enabled: true,
            threshold: 20,
            window: HumanDuration::secs(60),
            duration: HumanDuration::secs(600),
            repeat_multiplier: 4,
            max_duration: HumanDuration::secs(24 * 3600),
            memory: HumanDuration::secs(7 * 24 * 3600),
            limit_score: 1,
            client_error_score: 1,
            probe_score: 10,
            scanner_score: 20,
            probe_paths: [
                "/.env",
                "/.git/",
                "/.git/config",
                "/.svn/",
                "/.hg/",
                "/.aws/",
                "/.ssh/",
                "/.DS_Store",
                "/wp-login.php",
                "/wp-admin",
                "/xmlrpc.php",
                "/phpmyadmin",
                "/pma/",
                "/server-status",
                "/actuator/env",
                "/etc/passwd",
                "/cgi-bin/",
                "/vendor/phpunit/",
                "/config.json",
                "/.htaccess",
                "/.htpasswd",
                "/backup.sql",
                "/dump.sql",
            ]
            .map(String::from)
            .to_vec(),
            scanner_user_agents: [
                "sqlmap",
                "nikto",
                "nmap",
                "masscan",
                "zgrab",
                "wpscan",
                "dirbuster",
                "gobuster",
                "nuclei",
                "acunetix",
                "nessus",
                "openvas",
                "w3af",
                "havij",
                "netsparker",
                "ffuf",
                "feroxbuster",
                "wfuzz",
                "jaeles",
                "arachni",
                "whatweb",
            ]
            .map(String::from)
            .to_vec(),
            exempt: Vec::new(),
        }
    }
}

/// Redis, for state shared by several gateway replicas.
#[derive(Clone, Debug, Default, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct Redis {
    /// `redis://host:port/db`. Empty keeps rate limits and bans in memory.
    pub url: String,
    /// Prefix of every key Rampart writes, so replicas of one deployment
    /// share state and different deployments do not.
    pub key_prefix: String,
}

/// The JSON access log, one line a request.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct AccessLog {
    /// Write the access log.
    pub enabled: bool,
    /// File, relative to the data directory unless absolute.
    pub path: PathBuf,
}

impl Default for AccessLog {
    fn default() -> Self {
        Self { enabled: true, path: "access.log".into() }
    }
}

/// An upstream pool: several addresses of one service.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Upstream {
    /// Base URLs, `http://host:port` or `https://host:port`.
    pub addresses: Vec<String>,
    /// Time to establish a connection.
    #[serde(default = "default_connect_timeout")]
    pub connect_timeout: HumanDuration,
    /// Time to wait for the response headers once the request is sent.
    #[serde(default = "default_read_timeout")]
    pub read_timeout: HumanDuration,
    /// Extra CA certificates (PEM) trusted for HTTPS upstreams, besides the
    /// system's.
    #[serde(default)]
    pub ca_file: Option<PathBuf>,
    /// Active health checks.
    #[serde(default)]
    pub health_check: HealthCheck,
    /// Passive health: an address that fails `failures` times in a row is
    /// taken out of rotation for `eject_for`.
    #[serde(default)]
    pub passive: PassiveHealth,
}

fn default_connect_timeout() -> HumanDuration {
    HumanDuration::secs(5)
}

fn default_read_timeout() -> HumanDuration {
    HumanDuration::secs(60)
}

/// Active health checks of an upstream pool.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct HealthCheck {
    /// Path to GET; empty disables active checks.
    pub path: String,
    /// Time between checks.
    pub interval: HumanDuration,
    /// Time a check may take.
    pub timeout: HumanDuration,
    /// Failed checks in a row before an address is marked down.
    pub unhealthy_after: u32,
    /// Passed checks in a row before it is marked up again.
    pub healthy_after: u32,
}

impl Default for HealthCheck {
    fn default() -> Self {
        Self {
            path: String::new(),
            interval: HumanDuration::secs(5),
            timeout: HumanDuration::secs(2),
            unhealthy_after: 3,
            healthy_after: 2,
        }
    }
}

/// Passive health of an upstream pool.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct PassiveHealth {
    /// Failures in a row (connection errors, timeouts, 502-504) before an
    /// address is ejected; 0 disables.
    pub failures: u32,
    /// How long it stays out.
    pub eject_for: HumanDuration,
}

impl Default for PassiveHealth {
    fn default() -> Self {
        Self { failures: 3, eject_for: HumanDuration::secs(10) }
    }
}

/// A route: which requests go to which upstream, and how they are treated.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Route {
    /// Name used in events, metrics and rate-limit keys.
    pub name: String,
    /// Host names this route serves (`example.com`, `*.example.com`);
    /// empty matches any host.
    #[serde(default)]
    pub hosts: Vec<String>,
    /// Path prefix, matched on segment boundaries (`/api` matches `/api`
    /// and `/api/x`, not `/apix`).
    #[serde(default = "default_prefix")]
    pub path_prefix: String,
    /// Name of the upstream pool.
    pub upstream: String,
    /// Request body limit for this route, in bytes.
    #[serde(default)]
    pub max_body_bytes: Option<u64>,
    /// Names of rate limits (from `rate_limits`) applied to this route.
    #[serde(default)]
    pub rate_limits: Vec<String>,
    /// Refuse cross-site state-changing requests (CSRF) with 403.
    #[serde(default)]
    pub csrf: bool,
    /// Security headers added to responses.
    #[serde(default)]
    pub headers: SecurityHeaders,
    /// WAF settings for this route (mode, paranoia level, thresholds,
    /// exclusions).
    #[serde(default)]
    pub waf: RouteWaf,
}

fn default_prefix() -> String {
    "/".into()
}

/// Security headers added to a route's responses. An empty string leaves
/// the header out; an upstream's own value is kept unless `override` is set.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct SecurityHeaders {
    /// Strict-Transport-Security, sent on HTTPS responses only.
    pub hsts: String,
    /// Content-Security-Policy.
    pub content_security_policy: String,
    /// X-Content-Type-Options.
    pub content_type_options: String,
    /// X-Frame-Options.
    pub frame_options: String,
    /// Referrer-Policy.
    pub referrer_policy: String,
    /// Permissions-Policy.
    pub permissions_policy: String,
    /// Cross-Origin-Opener-Policy.
    pub cross_origin_opener_policy: String,
    /// Cross-Origin-Resource-Policy.
    pub cross_origin_resource_policy: String,
    /// Response headers removed because they leak versions.
    pub remove: Vec<String>,
    /// Replace the upstream's own values of these headers.
    #[serde(rename = "override")]
    pub override_upstream: bool,
}

impl Default for SecurityHeaders {
    fn default() -> Self {
        Self {
            hsts: "max-age=31536000; includeSubDomains".into(),
            content_security_policy: String::new(),
            content_type_options: "nosniff".into(),
            frame_options: "DENY".into(),
            referrer_policy: "strict-origin-when-cross-origin".into(),
            permissions_policy: "camera=(), microphone=(), geolocation=(), payment=()".into(),
            cross_origin_opener_policy: "same-origin".into(),
            cross_origin_resource_policy: "same-origin".into(),
            remove: ["server", "x-powered-by", "x-aspnet-version", "x-aspnetmvc-version"].map(String::from).to_vec(),
            override_upstream: false,
        }
    }
}

/// A route's name for the catch-all route made by `--upstream`.
pub const CATCH_ALL: &str = "default";

impl Config {
    /// Parses TOML text. `origin` names the file in error messages.
    pub fn from_toml(text: &str, origin: &str) -> Result<Self, ConfigError> {
        let config: Config = match toml::from_str(text) {
            Ok(c) => c,
            Err(e) => {
                // toml's own error knows the line; serde_path_to_error knows
                // the dotted key. Parse again (errors only) to have both.
                let line = e.span().map(|s| text[..s.start.min(text.len())].matches('\n').count() + 1);
                let key = match serde_path_to_error::deserialize::<_, Config>(toml::Deserializer::new(text)) {
                    Err(pe) => pe.path().to_string(),
                    Ok(_) => String::new(),
                };
                return Err(ConfigError::Parse {
                    origin: origin.to_string(),
                    key,
                    line,
                    message: e.message().to_string(),
                });
            }
        };
        config.validate().map_err(|e| e.with_origin(origin))?;
        Ok(config)
    }

    /// Reads and validates a file.
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        let text = read_bounded(path, MAX_FILE_BYTES)?;
        Self::from_toml(&text, &path.display().to_string())
    }

    /// The data directory, defaulting to `./rampart-data`.
    pub fn data_dir(&self) -> PathBuf {
        self.data_dir.clone().unwrap_or_else(|| PathBuf::from("rampart-data"))
    }

    /// Replaces all routes with one catch-all route to `url`.
    pub fn set_catch_all_upstream(&mut self, url: &str) {
        self.upstreams.insert(
            CATCH_ALL.into(),
            Upstream {
                addresses: vec![url.to_string()],
                connect_timeout: default_connect_timeout(),
                read_timeout: default_read_timeout(),
                ca_file: None,
                health_check: HealthCheck::default(),
                passive: PassiveHealth::default(),
            },
        );
        self.routes = vec![Route::catch_all(CATCH_ALL)];
    }

    /// Checks what the types alone cannot: addresses, references between
    /// sections, ranges.
    pub fn validate(&self) -> Result<(), ConfigError> {
        self.validate_waf()?;
        self.ip_policy.validate()?;
        self.validate_rest()
    }

    fn validate_waf(&self) -> Result<(), ConfigError> {
        let w = &self.waf;
        let levels = std::iter::once(("waf.paranoia_level".to_string(), w.paranoia_level)).chain(
            self.routes
                .iter()
                .enumerate()
                .filter_map(|(i, r)| r.waf.paranoia_level.map(|p| (format!("routes[{i}].waf.paranoia_level"), p))),
        );
        if !(1..=100_000).contains(&w.max_arguments) {
            return Err(invalid("waf.max_arguments", &w.max_arguments.to_string(), "a number from 1 to 100000"));
        }
        for (key, level) in levels {
            if !(1..=4).contains(&level) {
                return Err(invalid(&key, &level.to_string(), "a paranoia level from 1 to 4"));
            }
        }
        let thresholds = [
            ("waf.inbound_threshold".to_string(), w.inbound_threshold),
            ("waf.outbound_threshold".to_string(), w.outbound_threshold),
        ]
        .into_iter()
        .chain(self.routes.iter().enumerate().flat_map(|(i, r)| {
            [
                r.waf.inbound_threshold.map(|t| (format!("routes[{i}].waf.inbound_threshold"), t)),
                r.waf.outbound_threshold.map(|t| (format!("routes[{i}].waf.outbound_threshold"), t)),
            ]
            .into_iter()
            .flatten()
        }));
        for (key, t) in thresholds {
            if t == 0 {
                return Err(invalid(&key, "0", "an anomaly score of at least 1"));
            }
        }
        let exclusions = w.exclusions.iter().enumerate().map(|(j, e)| (format!("waf.exclusions[{j}]"), e)).chain(
            self.routes.iter().enumerate().flat_map(|(i, r)| {
                r.waf.exclusions.iter().enumerate().map(move |(j, e)| (format!("routes[{i}].waf.exclusions[{j}]"), e))
            }),
        );
        for (key, e) in exclusions {
            if e.ids().is_none() {
                return Err(invalid(
                    &format!("{key}.rule"),
                    &e.rule,
                    "a rule id or an id range such as \"942100-942199\"",
                ));
            }
            if let Some(t) = &e.target {
                let ok = !t.is_empty()
                    && t.split_once(':')
                        .map_or(t.as_str(), |(n, _)| n)
                        .bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b == b'_');
                if !ok {
                    return Err(invalid(
                        &format!("{key}.target"),
                        t,
                        "a variable such as \"ARGS:password\" or \"REQUEST_COOKIES\"",
                    ));
                }
            }
        }
        Ok(())
    }

    fn validate_backup(&self) -> Result<(), ConfigError> {
        for (name, job) in &self.backup.jobs {
            if job.targets.is_empty() {
                return Err(invalid(&format!("backup.jobs.{name}.targets"), "[]", "at least one repository"));
            }
            let sources = usize::from(!job.paths.is_empty())
                + usize::from(job.postgres.is_some())
                + usize::from(job.sqlite.is_some());
            if sources != 1 {
                return Err(invalid(
                    &format!("backup.jobs.{name}"),
                    "paths, postgres and sqlite",
                    "exactly one of paths, postgres or sqlite",
                ));
            }
            if let Some(keep) = &job.keep {
                if keep.last + keep.hourly + keep.daily + keep.weekly + keep.monthly + keep.yearly == 0 {
                    return Err(invalid(
                        &format!("backup.jobs.{name}.keep"),
                        "{}",
                        "at least one of last, hourly, daily, weekly, monthly, yearly",
                    ));
                }
            }
        }
        Ok(())
    }

    /// Upper (and some lower) bounds on durations and counts: a value far
    /// outside what any deployment needs is a typo, and some would harm
    /// the server (a zero health-check interval is a busy loop, an hour of
    /// group-commit window keeps every event in memory).
    fn validate_bounds(&self) -> Result<(), ConfigError> {
        use std::time::Duration as D;
        const HOUR: D = D::from_secs(3600);
        const DAY: D = D::from_secs(86_400);
        let l = &self.limits;
        let mut durations: Vec<(String, HumanDuration, D, D)> = vec![
            ("limits.header_read_timeout".into(), l.header_read_timeout, D::ZERO, HOUR),
            ("limits.body_read_timeout".into(), l.body_read_timeout, D::ZERO, HOUR),
            ("limits.idle_timeout".into(), l.idle_timeout, D::ZERO, DAY),
            ("audit.batch_window".into(), self.audit.batch_window, D::ZERO, D::from_secs(1)),
            ("waf.inspection_budget".into(), self.waf.inspection_budget, D::from_millis(10), D::from_secs(60)),
            ("audit.sth_every".into(), self.audit.sth_every, D::ZERO, DAY),
            ("bans.window".into(), self.bans.window, D::ZERO, 30 * DAY),
            ("bans.duration".into(), self.bans.duration, D::ZERO, 365 * DAY),
        ];
        for (name, up) in &self.upstreams {
            let k = |s: &str| format!("upstreams.{name}.{s}");
            durations.push((k("connect_timeout"), up.connect_timeout, D::ZERO, HOUR));
            durations.push((k("read_timeout"), up.read_timeout, D::ZERO, DAY));
            if !up.health_check.path.is_empty() {
                durations.push((k("health_check.interval"), up.health_check.interval, D::from_millis(100), DAY));
                durations.push((k("health_check.timeout"), up.health_check.timeout, D::from_millis(1), HOUR));
            }
        }
        for (name, rl) in &self.rate_limits {
            durations.push((format!("rate_limits.{name}.per"), rl.per, D::ZERO, 30 * DAY));
        }
        for (key, value, min, max) in durations {
            let d = value.get();
            if d < min || d > max {
                let expected = format!(
                    "a duration from {} to {}",
                    humantime::format_duration(min),
                    humantime::format_duration(max)
                );
                return Err(invalid(&key, &value.to_string(), &expected));
            }
        }
        let counts = [
            ("limits.max_connections", l.max_connections as u64, 10_000_000),
            ("limits.max_connections_per_ip", l.max_connections_per_ip as u64, 10_000_000),
            ("limits.max_header_bytes", l.max_header_bytes as u64, 1 << 20),
            ("limits.max_headers", l.max_headers as u64, 10_000),
            ("limits.max_uri_bytes", l.max_uri_bytes as u64, 1 << 20),
            ("limits.h2_max_concurrent_streams", l.h2_max_concurrent_streams as u64, 10_000),
        ];
        for (key, value, max) in counts {
            if value > max {
                return Err(invalid(key, &value.to_string(), &format!("at most {max}")));
            }
        }
        Ok(())
    }

    fn validate_rest(&self) -> Result<(), ConfigError> {
        self.validate_backup()?;
        for (key, value) in [
            ("listen.http", &self.listen.http),
            ("listen.https", &self.listen.https),
            ("listen.admin", &self.listen.admin),
        ] {
            if !value.is_empty() && value.parse::<SocketAddr>().is_err() {
                return Err(invalid(
                    key,
                    value,
                    "an address such as \"0.0.0.0:8080\" or \"[::]:8443\", or \"\" to disable",
                ));
            }
        }
        if self.listen.redirect_https && self.listen.https.is_empty() {
            return Err(invalid("listen.redirect_https", "true", "an HTTPS listener (listen.https) to redirect to"));
        }
        if !matches!(self.tls.min_version.as_str(), "1.2" | "1.3") {
            return Err(invalid("tls.min_version", &self.tls.min_version, "\"1.2\" or \"1.3\""));
        }
        if self.listen.workers > 1024 {
            return Err(invalid("listen.workers", &self.listen.workers.to_string(), "0 (one per core) to 1024"));
        }
        self.validate_bounds()?;
        let l = &self.limits;
        for (key, value, min) in [
            ("limits.max_connections", l.max_connections as u64, 1),
            ("limits.max_connections_per_ip", l.max_connections_per_ip as u64, 1),
            ("limits.max_header_bytes", l.max_header_bytes as u64, 1024),
            ("limits.max_headers", l.max_headers as u64, 8),
            ("limits.max_uri_bytes", l.max_uri_bytes as u64, 256),
            ("limits.h2_max_concurrent_streams", l.h2_max_concurrent_streams as u64, 1),
        ] {
            if value < min {
                return Err(invalid(key, &value.to_string(), &format!("an integer of at least {min}")));
            }
        }
        for (key, value) in [
            ("limits.header_read_timeout", l.header_read_timeout),
            ("limits.body_read_timeout", l.body_read_timeout),
            ("limits.idle_timeout", l.idle_timeout),
        ] {
            if value.get().is_zero() {
                return Err(invalid(key, &value.to_string(), "a duration above zero"));
            }
        }
        for (name, rl) in &self.rate_limits {
            let key = |k: &str| format!("rate_limits.{name}.{k}");
            if rl.parsed_key().is_none() {
                return Err(invalid(&key("key"), &rl.key, "\"ip\", \"route\" or \"header:NAME\""));
            }
            if rl.rate == 0 {
                return Err(invalid(&key("rate"), "0", "an integer of at least 1"));
            }
            if rl.burst == Some(0) {
                return Err(invalid(&key("burst"), "0", "an integer of at least 1"));
            }
            if rl.per.get().is_zero() {
                return Err(invalid(&key("per"), &rl.per.to_string(), "a duration above zero"));
            }
        }
        let b = &self.bans;
        if b.enabled {
            if b.threshold == 0 {
                return Err(invalid("bans.threshold", "0", "an integer of at least 1"));
            }
            if b.repeat_multiplier == 0 {
                return Err(invalid("bans.repeat_multiplier", "0", "an integer of at least 1"));
            }
            for (key, value) in [("bans.window", b.window), ("bans.duration", b.duration)] {
                if value.get().is_zero() {
                    return Err(invalid(key, &value.to_string(), "a duration above zero"));
                }
            }
        }
        let redis_schemes = ["redis://", "rediss://", "unix://"];
        if !self.redis.url.is_empty() && !redis_schemes.iter().any(|s| self.redis.url.starts_with(s)) {
            return Err(invalid("redis.url", &self.redis.url, "a URL such as \"redis://127.0.0.1:6379/0\""));
        }
        for (name, up) in &self.upstreams {
            if up.addresses.is_empty() {
                return Err(invalid(&format!("upstreams.{name}.addresses"), "[]", "at least one address"));
            }
            for (i, addr) in up.addresses.iter().enumerate() {
                if parse_upstream_url(addr).is_none() {
                    return Err(invalid(
                        &format!("upstreams.{name}.addresses[{i}]"),
                        addr,
                        "a URL such as \"http://127.0.0.1:3000\" or \"https://app.internal:443\"",
                    ));
                }
            }
            if up.connect_timeout.get().is_zero() {
                return Err(invalid(&format!("upstreams.{name}.connect_timeout"), "0s", "a duration above zero"));
            }
            if up.read_timeout.get().is_zero() {
                return Err(invalid(&format!("upstreams.{name}.read_timeout"), "0s", "a duration above zero"));
            }
            if !up.health_check.path.is_empty() && !up.health_check.path.starts_with('/') {
                return Err(invalid(
                    &format!("upstreams.{name}.health_check.path"),
                    &up.health_check.path,
                    "a path starting with \"/\"",
                ));
            }
        }
        let a = &self.audit;
        if a.sth_every_events == 0 {
            return Err(invalid("audit.sth_every_events", "0", "an integer of at least 1"));
        }
        if a.sth_every.get().is_zero() {
            return Err(invalid("audit.sth_every", &a.sth_every.to_string(), "a duration above zero"));
        }
        if a.segment_max_bytes < 4096 {
            return Err(invalid("audit.segment_max_bytes", &a.segment_max_bytes.to_string(), "at least 4096"));
        }
        for (i, f) in a.mask.fields.iter().enumerate() {
            if !matches!(f.action.as_str(), "redact" | "hash" | "partial") {
                return Err(invalid(
                    &format!("audit.mask.fields[{i}].action"),
                    &f.action,
                    "\"redact\", \"hash\" or \"partial\"",
                ));
            }
        }
        for (k, v) in &a.mask.detectors {
            if !matches!(v.as_str(), "redact" | "hash" | "partial" | "off") {
                return Err(invalid(
                    &format!("audit.mask.detectors.{k}"),
                    v,
                    "\"redact\", \"hash\", \"partial\" or \"off\"",
                ));
            }
        }
        let mut sink_names = std::collections::BTreeSet::new();
        for (i, s) in a.sinks.iter().enumerate() {
            let key = |k: &str| format!("audit.sinks[{i}].{k}");
            if s.name.is_empty()
                || !s.name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
                || !sink_names.insert(&s.name)
            {
                return Err(invalid(&key("name"), &s.name, "a unique name of letters, digits, - and _"));
            }
            match s.kind.as_str() {
                "file" if s.path.is_none() => return Err(invalid(&key("path"), "", "a file path for a file sink")),
                "syslog"
                    if s.address
                        .as_deref()
                        .and_then(|a| a.rsplit_once(':'))
                        .and_then(|(_, p)| p.parse::<u16>().ok())
                        .is_none() =>
                {
                    return Err(invalid(
                        &key("address"),
                        s.address.as_deref().unwrap_or(""),
                        "host:port of a TCP syslog receiver",
                    ));
                }
                "file" | "syslog" => {}
                other => return Err(invalid(&key("kind"), other, "\"file\" or \"syslog\"")),
            }
        }
        let mut seen = std::collections::BTreeSet::new();
        for (i, route) in self.routes.iter().enumerate() {
            let key = |k: &str| format!("routes[{i}].{k}");
            if route.name.is_empty() {
                return Err(invalid(&key("name"), "", "a name"));
            }
            if !seen.insert(route.name.as_str()) {
                return Err(invalid(&key("name"), &route.name, "a name no other route uses"));
            }
            if !route.path_prefix.starts_with('/') {
                return Err(invalid(&key("path_prefix"), &route.path_prefix, "a path starting with \"/\""));
            }
            if !self.upstreams.contains_key(&route.upstream) {
                let known: Vec<_> = self.upstreams.keys().map(String::as_str).collect();
                return Err(invalid(
                    &key("upstream"),
                    &route.upstream,
                    &format!(
                        "the name of an upstream in [upstreams] (known: {})",
                        if known.is_empty() { "none".into() } else { known.join(", ") }
                    ),
                ));
            }
            for (j, rl) in route.rate_limits.iter().enumerate() {
                if !self.rate_limits.contains_key(rl) {
                    return Err(invalid(
                        &format!("routes[{i}].rate_limits[{j}]"),
                        rl,
                        "the name of a rate limit in [rate_limits]",
                    ));
                }
            }
            for (j, h) in route.hosts.iter().enumerate() {
                let bare = h.strip_prefix("*.").unwrap_or(h);
                if bare.is_empty() || !bare.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.') {
                    return Err(invalid(
                        &format!("routes[{i}].hosts[{j}]"),
                        h,
                        "a host name such as \"example.com\" or \"*.example.com\"",
                    ));
                }
            }
            for (j, h) in route.headers.remove.iter().enumerate() {
                if !http_token(h) {
                    return Err(invalid(&format!("routes[{i}].headers.remove[{j}]"), h, "a header name"));
                }
            }
        }
        Ok(())
    }
}

impl Route {
    /// A route that sends everything to `upstream`.
    pub fn catch_all(upstream: &str) -> Self {
        Route {
            name: CATCH_ALL.into(),
            hosts: Vec::new(),
            path_prefix: "/".into(),
            upstream: upstream.into(),
            max_body_bytes: None,
            rate_limits: Vec::new(),
            csrf: false,
            headers: SecurityHeaders::default(),
            waf: RouteWaf::default(),
        }
    }
}

/// Splits an upstream URL into scheme-is-https, host and port.
pub fn parse_upstream_url(url: &str) -> Option<(bool, String, u16)> {
    let (tls, rest) = if let Some(r) = url.strip_prefix("http://") {
        (false, r)
    } else if let Some(r) = url.strip_prefix("https://") {
        (true, r)
    } else {
        return None;
    };
    let authority = rest.strip_suffix('/').unwrap_or(rest);
    if authority.is_empty() || authority.contains(['/', '?', '#', '@', ' ']) {
        return None;
    }
    let default_port = if tls { 443 } else { 80 };
    let (host, port) = if let Some(v6) = authority.strip_prefix('[') {
        let (h, after) = v6.split_once(']')?;
        h.parse::<std::net::Ipv6Addr>().ok()?;
        let port = match after.strip_prefix(':') {
            Some(p) => p.parse().ok()?,
            None if after.is_empty() => default_port,
            None => return None,
        };
        (h.to_string(), port)
    } else {
        match authority.rsplit_once(':') {
            Some((h, p)) => (h.to_string(), p.parse().ok()?),
            None => (authority.to_string(), default_port),
        }
    };
    if host.is_empty() || port == 0 {
        return None;
    }
    Some((tls, host, port))
}

/// Reads a text file the configuration names, refusing what is not a
/// regular file (`/dev/zero`, a FIFO) or is larger than `max` bytes.
pub fn read_bounded(path: &Path, max: u64) -> Result<String, ConfigError> {
    use std::io::Read;
    let err = |source: std::io::Error| ConfigError::Read { path: path.to_path_buf(), source };
    let file = std::fs::File::open(path).map_err(err)?;
    let meta = file.metadata().map_err(err)?;
    if !meta.is_file() {
        return Err(err(std::io::Error::new(std::io::ErrorKind::InvalidInput, "not a regular file")));
    }
    let mut text = String::new();
    file.take(max + 1).read_to_string(&mut text).map_err(err)?;
    if text.len() as u64 > max {
        let msg = format!("larger than {max} bytes");
        return Err(err(std::io::Error::new(std::io::ErrorKind::InvalidData, msg)));
    }
    Ok(text)
}

/// Most bytes of a configuration or list file.
pub const MAX_FILE_BYTES: u64 = 64 << 20;

/// Parses a list file of networks: one CIDR or address a line, `#` starts
/// a comment. Errors name the line.
pub fn parse_net_list(text: &str, origin: &str) -> Result<Vec<IpNet>, ConfigError> {
    let mut nets = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let entry = line.split('#').next().unwrap_or("").trim();
        if entry.is_empty() {
            continue;
        }
        nets.push(parse_net(entry).ok_or_else(|| ConfigError::Invalid {
            origin: format!("{origin}:{}", i + 1),
            key: String::new(),
            value: entry.to_string(),
            expected: "an address or CIDR network such as 192.0.2.0/24 or 2001:db8::/32".into(),
        })?);
    }
    Ok(nets)
}

/// A list of networks in the configuration: CIDRs or single addresses.
fn nets<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Vec<IpNet>, D::Error> {
    let texts = Vec::<String>::deserialize(d)?;
    texts
        .iter()
        .map(|t| {
            parse_net(t.trim()).ok_or_else(|| {
                serde::de::Error::custom(format!(
                    "{t:?} is not an address or CIDR network such as 192.0.2.1, 192.0.2.0/24 or 2001:db8::/32"
                ))
            })
        })
        .collect()
}

/// Parses `192.0.2.1`, `192.0.2.0/24`, `2001:db8::1` or `2001:db8::/32`.
pub fn parse_net(s: &str) -> Option<IpNet> {
    s.parse::<IpNet>().ok().or_else(|| s.parse::<IpAddr>().ok().map(IpNet::from))
}

fn invalid(key: &str, value: &str, expected: &str) -> ConfigError {
    ConfigError::Invalid {
        origin: String::new(),
        key: key.to_string(),
        value: value.to_string(),
        expected: expected.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backup_jobs_are_checked_key_by_key() {
        let job = |body: &str| {
            Config::from_toml(&format!("[backup.jobs.site]\ntargets = [\"/srv/b\"]\n{body}"), "b.toml")
                .map(|_| ())
                .map_err(|e| e.to_string())
        };
        assert_eq!(job("paths = [\"/srv/app\"]\nschedule = \"daily 02:30\"\nkeep = { last = 7 }\n"), Ok(()));
        let e = job("paths = [\"/a\"]\npostgres = \"app\"\n").unwrap_err();
        assert!(e.contains("backup.jobs.site") && e.contains("exactly one of paths, postgres or sqlite"), "{e}");
        let e = job("").unwrap_err();
        assert!(e.contains("exactly one of"), "{e}");
        let e = job("paths = [\"/a\"]\nkeep = {}\n").unwrap_err();
        assert!(e.contains("backup.jobs.site.keep"), "{e}");
        let e = job("paths = [\"/a\"]\nschedule = \"monthly\"\n").unwrap_err();
        assert!(e.contains("schedule") && e.contains("daily 02:30"), "{e}");
        let e = Config::from_toml("[backup.jobs.site]\npaths = [\"/a\"]\n", "b.toml").unwrap_err().to_string();
        assert!(e.contains("backup.jobs.site.targets"), "{e}");
    }

    /// docs/configuration.md says networks are CIDRs or single addresses.
    #[test]
    fn networks_are_cidrs_or_single_addresses() {
        let c = Config::from_toml(
            "[ip_policy]\ntrusted_proxies = [\"127.0.0.1\", \"10.0.0.0/8\", \"::1\"]\ndeny = [\"192.0.2.7\"]\n\
             [bans]\nexempt = [\"2001:db8::/32\"]\n",
            "t.toml",
        )
        .unwrap();
        assert_eq!(
            c.ip_policy.trusted_proxies,
            vec![parse_net("127.0.0.1/32").unwrap(), parse_net("10.0.0.0/8").unwrap(), parse_net("::1/128").unwrap()]
        );
        assert_eq!(c.ip_policy.deny.len(), 1);
        let e = Config::from_toml("[ip_policy]\nallow = [\"300.1.1.1\"]\n", "t.toml").unwrap_err().to_string();
        assert!(e.contains("300.1.1.1") && e.contains("CIDR"), "{e}");
    }

    /// Values far outside any deployment's needs are refused, naming the
    /// key; files that never end are not read.
    #[test]
    fn absurd_values_and_endless_files_are_refused() {
        for (text, key) in [
            ("[upstreams.a]\naddresses = [\"http://127.0.0.1:1\"]\nhealth_check = { path = \"/h\", interval = \"0s\" }\n", "health_check.interval"),
            ("[audit]\nbatch_window = \"1h\"\n", "audit.batch_window"),
            ("[upstreams.a]\naddresses = [\"http://127.0.0.1:1\"]\nhealth_check = { path = \"/h\", timeout = \"0s\" }\n", "health_check.timeout"),
            ("[listen]\nworkers = 1000000000\n", "listen.workers"),
            ("[limits]\nmax_headers = 100000000\n", "limits.max_headers"),
            ("[limits]\nidle_timeout = \"1000d\"\n", "limits.idle_timeout"),
        ] {
            let e = Config::from_toml(text, "t.toml").unwrap_err().to_string();
            assert!(e.contains(key), "{text}: {e}");
        }
        let e = read_bounded(Path::new("/dev/zero"), 1024).unwrap_err().to_string();
        assert!(e.contains("not a regular file"), "{e}");
        let dir = tempfile::tempdir().unwrap();
        let big = dir.path().join("big");
        std::fs::write(&big, vec![b'a'; 2000]).unwrap();
        assert!(read_bounded(&big, 1024).unwrap_err().to_string().contains("larger than 1024"));
        assert_eq!(read_bounded(&big, 4096).unwrap().len(), 2000);
    }

    #[test]
    fn empty_file_is_a_valid_configuration() {
        let c = Config::from_toml("", "t.toml").unwrap();
        assert_eq!(c, Config::default());
        assert_eq!(c.limits.max_headers, 100);
    }

    #[test]
    fn unknown_key_is_named() {
        let e = Config::from_toml("[limits]\nmax_headerz = 5\n", "t.toml").unwrap_err().to_string();
        assert!(e.contains("t.toml"), "{e}");
        assert!(e.contains("max_headerz"), "{e}");
        assert!(e.contains("line 2"), "{e}");
    }

    #[test]
    fn wrong_type_names_key_value_and_expectation() {
        let e = Config::from_toml("[limits]\nmax_headers = \"many\"\n", "t.toml").unwrap_err().to_string();
        assert!(e.contains("limits.max_headers"), "{e}");
        assert!(e.contains("many"), "{e}");
    }

    #[test]
    fn bad_duration_is_explained() {
        let e = Config::from_toml("[limits]\nidle_timeout = \"soon\"\n", "t.toml").unwrap_err().to_string();
        assert!(e.contains("limits.idle_timeout"), "{e}");
        assert!(e.contains("duration"), "{e}");
    }

    #[test]
    fn zero_burst_is_rejected_with_key_and_value() {
        let e = Config::from_toml("[rate_limits.api]\nrate = 5\nburst = 0\n", "rampart.toml").unwrap_err().to_string();
        assert_eq!(e, "rampart.toml: rate_limits.api.burst = 0: expected an integer of at least 1");
    }

    #[test]
    fn route_to_unknown_upstream_is_rejected() {
        let text = "[[routes]]\nname = \"a\"\nupstream = \"nope\"\n";
        let e = Config::from_toml(text, "r.toml").unwrap_err().to_string();
        assert!(e.contains("routes[0].upstream = nope"), "{e}");
    }

    #[test]
    fn full_example_parses() {
        let text = r#"
            data_dir = "/tmp/x"
            [listen]
            http = "127.0.0.1:0"
            [rate_limits.api]
            key = "header:X-Api-Key"
            rate = 10
            per = "1m"
            burst = 20
            [upstreams.app]
            addresses = ["http://127.0.0.1:3000", "https://[::1]:8443"]
            health_check = { path = "/health", interval = "2s" }
            [[routes]]
            name = "api"
            hosts = ["api.example.com", "*.example.org"]
            path_prefix = "/api"
            upstream = "app"
            rate_limits = ["api"]
            csrf = true
            headers = { content_security_policy = "default-src 'self'" }
        "#;
        let c = Config::from_toml(text, "x").unwrap();
        assert_eq!(c.rate_limits["api"].parsed_key(), Some(RateKey::Header("x-api-key".into())));
        assert_eq!(c.routes[0].headers.frame_options, "DENY");
        assert_eq!(c.upstreams["app"].health_check.path, "/health");
    }

    #[test]
    fn upstream_urls() {
        assert_eq!(parse_upstream_url("http://a:80"), Some((false, "a".into(), 80)));
        assert_eq!(parse_upstream_url("https://a"), Some((true, "a".into(), 443)));
        assert_eq!(parse_upstream_url("http://[::1]:9/"), Some((false, "::1".into(), 9)));
        assert_eq!(parse_upstream_url("ftp://a"), None);
        assert_eq!(parse_upstream_url("http://a/b"), None);
        assert_eq!(parse_upstream_url("http://a:x"), None);
    }

    #[test]
    fn net_list_names_bad_line() {
        let nets = parse_net_list("# c\n10.0.0.0/8\n\n192.0.2.7 # one\n", "f").unwrap();
        assert_eq!(nets.len(), 2);
        let e = parse_net_list("10.0.0.0/8\nnot-an-ip\n", "deny.txt").unwrap_err().to_string();
        assert!(e.starts_with("deny.txt:2:"), "{e}");
    }

    #[test]
    fn ipv6_prefix_defaults_to_64_and_is_bounded() {
        assert_eq!(Config::from_toml("", "t.toml").unwrap().ip_policy.ipv6_prefix, 64);
        let c = Config::from_toml("[ip_policy]\nipv6_prefix = 56\n", "t.toml").unwrap();
        assert_eq!(c.ip_policy.ipv6_prefix, 56);
        for bad in ["0", "31", "129"] {
            let e =
                Config::from_toml(&format!("[ip_policy]\nipv6_prefix = {bad}\n"), "t.toml").unwrap_err().to_string();
            assert!(e.contains("ip_policy.ipv6_prefix") && e.contains("32 to 128"), "{e}");
        }
    }
}
