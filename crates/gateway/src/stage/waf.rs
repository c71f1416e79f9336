//! The web application firewall stage: SecLang rules (the OWASP CRS, or the
//! built-in baseline) run by `rampart-waf` on every request of a route whose
//! WAF is on. Phase 1 sees the head, phase 2 the buffered body, phase 3 the
//! response head, phase 4 the response body (for the configured MIME types,
//! up to a limit), phase 5 everything, before the log lines are written.
//!
//! A route chooses its mode (off, detection, blocking), paranoia level,
//! anomaly thresholds and exclusions; they reach the rules as pinned `TX`
//! values and per-transaction removals, so one compiled rule set serves
//! every route.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

use http::HeaderMap;
use rampart_core::config::{BodyErrors, Config, RouteWaf, WafMode};
use rampart_core::ConfigError;
use rampart_waf::engine::{Engine, Transaction};
use rampart_waf::seclang::EngineMode;

/// The compiled rules and the WAF log, shared by every route.
pub struct Waf {
    /// The rules; `None` when every route has the WAF off.
    pub engine: Option<Arc<Engine>>,
    /// Where the rules came from.
    pub origin: String,
    /// The text log of matches.
    pub log: Option<Arc<WafLog>>,
    /// Response MIME types whose bodies are inspected (lower case).
    pub mime_types: Vec<String>,
    /// At most this many response body bytes are inspected.
    pub response_body_limit: usize,
    /// Ban score of a refused request.
    pub ban_score: u32,
    /// What the engine was built from, to reuse it across reloads.
    key: Option<Key>,
}

/// The inputs of a compiled engine: settings, the files read and their
/// modification times.
#[derive(Clone, PartialEq)]
struct Key {
    crs_dir: Option<PathBuf>,
    rules_before: Vec<PathBuf>,
    rules: Vec<PathBuf>,
    files: Vec<PathBuf>,
    stamps: Vec<Option<SystemTime>>,
}

fn stamps(files: &[PathBuf]) -> Vec<Option<SystemTime>> {
    files.iter().map(|f| std::fs::metadata(f).and_then(|m| m.modified()).ok()).collect()
}

impl Waf {
    /// Loads and compiles the rules `config` asks for, or reuses
    /// `previous`'s when neither the settings nor the files changed.
    pub fn build(config: &Config, previous: Option<&Waf>) -> Result<Self, ConfigError> {
        let w = &config.waf;
        let needed =
            w.mode != WafMode::Off || config.routes.iter().any(|r| r.waf.mode.is_some_and(|m| m != WafMode::Off));
        let invalid = |e: String| ConfigError::Invalid {
            origin: String::new(),
            key: if w.crs_dir.is_some() { "waf.crs_dir".into() } else { "waf.rules".into() },
            value: w.crs_dir.as_ref().map(|p| p.display().to_string()).unwrap_or_default(),
            expected: format!("a rule set that loads: {e}"),
        };
        let (engine, origin, key) = if !needed {
            (None, "off".to_string(), None)
        } else {
            let reused = previous.and_then(|p| {
                let k = p.key.as_ref()?;
                let same = k.crs_dir == w.crs_dir
                    && k.rules_before == w.rules_before
                    && k.rules == w.rules
                    && stamps(&k.files) == k.stamps;
                same.then(|| (p.engine.clone(), p.origin.clone(), Some(k.clone())))
            });
            match reused {
                Some(r) => r,
                None => {
                    let loaded = rampart_waf::sources::load(w.crs_dir.as_deref(), &w.rules_before, &w.rules)
                        .map_err(|e| invalid(e.to_string()))?;
                    if let Some(warning) = &loaded.warning {
                        tracing::warn!("{warning}");
                    }
                    let engine = Engine::new(&loaded.set).map_err(|e| invalid(e.to_string()))?;
                    tracing::info!(rules = engine.len(), source = %loaded.origin, "WAF rules loaded");
                    let key = Key {
                        crs_dir: w.crs_dir.clone(),
                        rules_before: w.rules_before.clone(),
                        rules: w.rules.clone(),
                        stamps: stamps(&loaded.files),
                        files: loaded.files,
                    };
                    (Some(Arc::new(engine)), loaded.origin, Some(key))
                }
            }
        };
        let log = if w.log_file.as_os_str().is_empty() || engine.is_none() {
            None
        } else {
            let path = config.data_dir().join(&w.log_file);
            Some(Arc::new(WafLog::open(&path).map_err(|e| ConfigError::Invalid {
                origin: String::new(),
                key: "waf.log_file".into(),
                value: path.display().to_string(),
                expected: format!("a file Rampart can append to ({e})"),
            })?))
        };
        Ok(Waf {
            engine,
            origin,
            log,
            mime_types: w.response_mime_types.iter().map(|m| m.to_ascii_lowercase()).collect(),
            response_body_limit: usize::try_from(w.response_body_limit).unwrap_or(usize::MAX),
            ban_score: w.ban_score,
            key,
        })
    }

    /// Whether a response with this `Content-Type` has its body inspected.
    pub fn inspects_body_of(&self, content_type: Option<&str>) -> bool {
        let essence = content_type.unwrap_or("").split(';').next().unwrap_or("").trim().to_ascii_lowercase();
        !essence.is_empty() && self.mime_types.contains(&essence)
    }
}

/// A route's WAF settings, resolved against the global ones.
pub struct RoutePolicy {
    /// Off, detection or blocking.
    pub mode: WafMode,
    /// Unreadable bodies refused (on a blocking route) or inspected.
    pub body_errors: BodyErrors,
    /// Most arguments a request may carry.
    pub max_arguments: usize,
    /// Longest a phase's rules may take.
    pub budget: std::time::Duration,
    pins: Vec<(&'static str, String)>,
    removed: Vec<(u64, u64)>,
    removed_targets: Vec<(u64, u64, String)>,
}

impl RoutePolicy {
    /// Resolves `route` over the `[waf]` defaults of `config`.
    pub fn build(config: &Config, route: &RouteWaf) -> Self {
        let w = &config.waf;
        let level = route.paranoia_level.unwrap_or(w.paranoia_level).to_string();
        let inbound = route.inbound_threshold.unwrap_or(w.inbound_threshold).to_string();
        let outbound = route.outbound_threshold.unwrap_or(w.outbound_threshold).to_string();
        // CRS 4 and CRS 3.3 names for the same settings.
        let pins = vec![
            ("blocking_paranoia_level", level.clone()),
            ("detection_paranoia_level", level.clone()),
            ("paranoia_level", level.clone()),
            ("executing_paranoia_level", level),
            ("inbound_anomaly_score_threshold", inbound),
            ("outbound_anomaly_score_threshold", outbound),
        ];
        let mut removed = Vec::new();
        let mut removed_targets = Vec::new();
        for e in w.exclusions.iter().chain(&route.exclusions) {
            let Some((lo, hi)) = e.ids() else { continue };
            match &e.target {
                Some(t) => removed_targets.push((lo, hi, t.clone())),
                None => removed.push((lo, hi)),
            }
        }
        RoutePolicy {
            mode: route.mode.unwrap_or(w.mode),
            body_errors: route.body_errors.unwrap_or(w.body_errors),
            max_arguments: w.max_arguments as usize,
            budget: w.inspection_budget.get(),
            pins,
            removed,
            removed_targets,
        }
    }

    /// A transaction with this route's settings applied.
    pub fn begin(&self, engine: &Arc<Engine>) -> Transaction {
        let mut t = engine.transaction();
        t.set_arguments_limit(self.max_arguments);
        t.set_budget(self.budget);
        t.set_mode(match self.mode {
            WafMode::Blocking => EngineMode::On,
            WafMode::Detection => EngineMode::DetectionOnly,
            WafMode::Off => EngineMode::Off,
        });
        for (k, v) in &self.pins {
            t.pin_tx(k, v);
        }
        for (lo, hi) in &self.removed {
            t.remove_rules(*lo, *hi);
        }
        for (lo, hi, target) in &self.removed_targets {
            // Checked by config validation; a target the engine cannot
            // parse is left out rather than failing the request.
            if let Err(e) = t.remove_target(*lo, *hi, target) {
                tracing::warn!(target = %target, error = %e, "WAF exclusion ignored");
            }
        }
        t
    }
}

/// Why a blocking route refuses a request whose head or body the engine
/// has read, before its rules run: more arguments than it inspects, or a
/// body it could not read as the application will.
pub fn unreadable(t: &Transaction, policy: &RoutePolicy) -> Option<crate::reject::Reason> {
    if policy.mode != WafMode::Blocking || t.mode() != EngineMode::On {
        return None;
    }
    if t.arguments_exceeded() {
        return Some(crate::reject::Reason::TooManyArguments);
    }
    if t.over_budget() {
        return Some(crate::reject::Reason::InspectionBudget);
    }
    let flagged = |name| t.get(name).is_some_and(|v| v != b"0");
    let broken = flagged("REQBODY_ERROR") || flagged("MULTIPART_STRICT_ERROR");
    (broken && policy.body_errors == BodyErrors::Refuse).then_some(crate::reject::Reason::BodyUnparseable)
}

/// Headers as the engine reads them: names as sent, values as bytes.
pub fn headers_of(h: &HeaderMap) -> Vec<(String, Vec<u8>)> {
    h.iter().map(|(k, v)| (k.as_str().to_string(), v.as_bytes().to_vec())).collect()
}

/// The WAF log file: one ModSecurity-style line per match, appended with
/// one write per transaction so lines of concurrent requests never mix.
pub struct WafLog {
    file: Mutex<std::fs::File>,
}

impl WafLog {
    /// Opens (creates) `path` for appending.
    pub fn open(path: &Path) -> std::io::Result<Self> {
        // Matched data is masked, but what is left still describes clients'
        // requests: readable by the owner only.
        let file = rampart_core::private_fs::append(path)?;
        Ok(WafLog { file: Mutex::new(file) })
    }

    /// Appends `lines` (each ending in a newline).
    pub fn write(&self, lines: &str) {
        let mut f = match self.file.lock() {
            Ok(f) => f,
            Err(p) => p.into_inner(),
        };
        if let Err(e) = f.write_all(lines.as_bytes()) {
            tracing::warn!(error = %e, "cannot write the WAF log");
        }
    }
}
