//! The one event schema every component reports through.
//!
//! Field names follow the Elastic Common Schema (ECS), so events can go to a
//! SIEM unchanged: `event.category`, `event.action`, `event.outcome`,
//! `source.ip`, `url.path`, `rule.id`, ...
//!
//! ```
//! use rampart_core::event::{Event, Outcome};
//! let e = Event::new("web", "request-rejected")
//!     .outcome(Outcome::Failure)
//!     .reason("body larger than 1048576 bytes")
//!     .status(413);
//! let json = e.to_json();
//! assert_eq!(json["event"]["action"], "request-rejected");
//! assert_eq!(json["http"]["response"]["status_code"], 413);
//! ```

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::time::SystemTime;

use serde_json::{json, Map, Value};

/// ECS `event.kind`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// Something happened.
    Event,
    /// Something happened that a person should look at.
    Alert,
    /// A state change of the system (configuration, health).
    State,
}

/// ECS `event.outcome`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// The action succeeded.
    Success,
    /// The action failed or was refused.
    Failure,
    /// Neither applies.
    Unknown,
}

/// One thing that happened, with ECS field names.
#[derive(Clone, Debug, PartialEq)]
pub struct Event {
    /// When it happened.
    pub timestamp: SystemTime,
    /// `event.kind`.
    pub kind: Kind,
    /// `event.category` (ECS: web, network, configuration,
    /// intrusion_detection, authentication, ...).
    pub category: &'static str,
    /// `event.action`, a kebab-case verb phrase (`request-rejected`).
    pub action: String,
    /// `event.outcome`.
    pub outcome: Outcome,
    /// `event.reason`: why, in words.
    pub reason: Option<String>,
    /// `event.severity` (0 = info .. 7 = emergency, as syslog reversed).
    pub severity: Option<u8>,
    /// `source.ip`: the client.
    pub source_ip: Option<IpAddr>,
    /// `url.domain`: the requested host.
    pub host: Option<String>,
    /// `url.path`.
    pub path: Option<String>,
    /// `http.request.method`.
    pub method: Option<String>,
    /// `http.request.id`.
    pub request_id: Option<String>,
    /// `http.response.status_code`.
    pub status: Option<u16>,
    /// `user_agent.original`.
    pub user_agent: Option<String>,
    /// `rule.id`.
    pub rule_id: Option<String>,
    /// `rule.name`.
    pub rule_name: Option<String>,
    /// `message`: a sentence for people.
    pub message: Option<String>,
    /// `labels`: anything else, flat string pairs.
    pub labels: BTreeMap<String, String>,
}

impl Event {
    /// A new event of `category` and `action`, now, outcome unknown.
    pub fn new(category: &'static str, action: impl Into<String>) -> Self {
        Event {
            timestamp: SystemTime::now(),
            kind: Kind::Event,
            category,
            action: action.into(),
            outcome: Outcome::Unknown,
            reason: None,
            severity: None,
            source_ip: None,
            host: None,
            path: None,
            method: None,
            request_id: None,
            status: None,
            user_agent: None,
            rule_id: None,
            rule_name: None,
            message: None,
            labels: BTreeMap::new(),
        }
    }

    /// Sets `event.kind`.
    pub fn kind(mut self, kind: Kind) -> Self {
        self.kind = kind;
        self
    }
    /// Sets `event.outcome`.
    pub fn outcome(mut self, outcome: Outcome) -> Self {
        self.outcome = outcome;
        self
    }
    /// Sets `event.reason`.
    pub fn reason(mut self, reason: impl Into<String>) -> Self {
        self.reason = Some(reason.into());
        self
    }
    /// Sets `event.severity`.
    pub fn severity(mut self, severity: u8) -> Self {
        self.severity = Some(severity);
        self
    }
    /// Sets `source.ip`.
    pub fn source_ip(mut self, ip: IpAddr) -> Self {
        self.source_ip = Some(ip);
        self
    }
    /// Sets `http.response.status_code`.
    pub fn status(mut self, status: u16) -> Self {
        self.status = Some(status);
        self
    }
    /// Sets `rule.id` and `rule.name`.
    pub fn rule(mut self, id: impl Into<String>, name: impl Into<String>) -> Self {
        self.rule_id = Some(id.into());
        self.rule_name = Some(name.into());
        self
    }
    /// Sets `message`.
    pub fn message(mut self, message: impl Into<String>) -> Self {
        self.message = Some(message.into());
        self
    }
    /// Adds a label.
    pub fn label(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.labels.insert(key.into(), value.into());
        self
    }

    /// The event as nested ECS JSON.
    pub fn to_json(&self) -> Value {
        let mut root = Map::new();
        root.insert("@timestamp".into(), Value::String(rfc3339(self.timestamp)));
        let mut event = Map::new();
        event.insert(
            "kind".into(),
            json!(match self.kind {
                Kind::Event => "event",
                Kind::Alert => "alert",
                Kind::State => "state",
            }),
        );
        event.insert("category".into(), json!([self.category]));
        event.insert("action".into(), json!(self.action));
        event.insert(
            "outcome".into(),
            json!(match self.outcome {
                Outcome::Success => "success",
                Outcome::Failure => "failure",
                Outcome::Unknown => "unknown",
            }),
        );
        put(&mut event, "reason", &self.reason);
        if let Some(s) = self.severity {
            event.insert("severity".into(), json!(s));
        }
        root.insert("event".into(), Value::Object(event));
        if let Some(ip) = self.source_ip {
            root.insert("source".into(), json!({ "ip": ip.to_string() }));
        }
        let mut url = Map::new();
        put(&mut url, "domain", &self.host);
        put(&mut url, "path", &self.path);
        if !url.is_empty() {
            root.insert("url".into(), Value::Object(url));
        }
        let mut request = Map::new();
        put(&mut request, "method", &self.method);
        put(&mut request, "id", &self.request_id);
        let mut http = Map::new();
        if !request.is_empty() {
            http.insert("request".into(), Value::Object(request));
        }
        if let Some(s) = self.status {
            http.insert("response".into(), json!({ "status_code": s }));
        }
        if !http.is_empty() {
            root.insert("http".into(), Value::Object(http));
        }
        if let Some(ua) = &self.user_agent {
            root.insert("user_agent".into(), json!({ "original": ua }));
        }
        let mut rule = Map::new();
        put(&mut rule, "id", &self.rule_id);
        put(&mut rule, "name", &self.rule_name);
        if !rule.is_empty() {
            root.insert("rule".into(), Value::Object(rule));
        }
        put(&mut root, "message", &self.message);
        if !self.labels.is_empty() {
            root.insert("labels".into(), json!(self.labels));
        }
        Value::Object(root)
    }
}

fn put(map: &mut Map<String, Value>, key: &str, value: &Option<String>) {
    if let Some(v) = value {
        map.insert(key.into(), Value::String(v.clone()));
    }
}

/// RFC 3339 UTC timestamp with milliseconds.
pub fn rfc3339(t: SystemTime) -> String {
    humantime::format_rfc3339_millis(t).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn serializes_ecs_fields_and_omits_empty_ones() {
        let e = Event::new("intrusion_detection", "client-banned")
            .kind(Kind::Alert)
            .outcome(Outcome::Success)
            .source_ip("192.0.2.9".parse().unwrap())
            .label("ban.duration_seconds", "600");
        let j = e.to_json();
        assert_eq!(j["event"]["kind"], "alert");
        assert_eq!(j["event"]["category"][0], "intrusion_detection");
        assert_eq!(j["source"]["ip"], "192.0.2.9");
        assert_eq!(j["labels"]["ban.duration_seconds"], "600");
        assert!(j.get("url").is_none());
        assert!(j.get("http").is_none());
        assert!(j["@timestamp"].as_str().unwrap().ends_with('Z'));
    }
}
