//! Response hardening: security headers added, version-leaking headers
//! removed. Header names and values are parsed once at load time.

use http::{HeaderMap, HeaderName, HeaderValue};
use rampart_core::config::SecurityHeaders;
use rampart_core::ConfigError;

/// What to do to a route's responses.
#[derive(Clone, Debug, Default)]
pub struct HeaderPlan {
    add: Vec<(HeaderName, HeaderValue)>,
    hsts: Option<HeaderValue>,
    remove: Vec<HeaderName>,
    override_upstream: bool,
}

impl HeaderPlan {
    /// Compiles `routes[i].headers`; `key` names it in errors.
    pub fn build(h: &SecurityHeaders, key: &str) -> Result<Self, ConfigError> {
        let value = |field: &str, v: &str| -> Result<Option<HeaderValue>, ConfigError> {
            if v.is_empty() {
                return Ok(None);
            }
            HeaderValue::from_str(v).map(Some).map_err(|_| ConfigError::Invalid {
                origin: String::new(),
                key: format!("{key}.{field}"),
                value: v.into(),
                expected: "a header value of visible ASCII characters".into(),
            })
        };
        let mut add = Vec::new();
        for (field, name, v) in [
            ("content_security_policy", "content-security-policy", &h.content_security_policy),
            ("content_type_options", "x-content-type-options", &h.content_type_options),
            ("frame_options", "x-frame-options", &h.frame_options),
            ("referrer_policy", "referrer-policy", &h.referrer_policy),
            ("permissions_policy", "permissions-policy", &h.permissions_policy),
            ("cross_origin_opener_policy", "cross-origin-opener-policy", &h.cross_origin_opener_policy),
            ("cross_origin_resource_policy", "cross-origin-resource-policy", &h.cross_origin_resource_policy),
        ] {
            if let Some(v) = value(field, v)? {
                add.push((HeaderName::from_static(name), v));
            }
        }
        let remove =
            h.remove.iter().filter_map(|n| HeaderName::from_bytes(n.to_ascii_lowercase().as_bytes()).ok()).collect();
        Ok(HeaderPlan { add, hsts: value("hsts", &h.hsts)?, remove, override_upstream: h.override_upstream })
    }

    /// Applies the plan to a response's headers. HSTS only over HTTPS
    /// (RFC 6797 §7.2: not sent over plain HTTP).
    pub fn apply(&self, headers: &mut HeaderMap, https: bool) {
        for name in &self.remove {
            headers.remove(name);
        }
        let hsts = self.hsts.as_ref().filter(|_| https).map(|v| (&http::header::STRICT_TRANSPORT_SECURITY, v));
        for (name, value) in self.add.iter().map(|(n, v)| (n, v)).chain(hsts) {
            if self.override_upstream || !headers.contains_key(name) {
                headers.insert(name.clone(), value.clone());
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn adds_defaults_removes_leaks_and_keeps_upstream_values() {
        let plan = HeaderPlan::build(&SecurityHeaders::default(), "routes[0].headers").unwrap();
        let mut h = HeaderMap::new();
        h.insert("server", HeaderValue::from_static("Apache/2.4.1"));
        h.insert("x-powered-by", HeaderValue::from_static("PHP/5.6"));
        h.insert("x-frame-options", HeaderValue::from_static("SAMEORIGIN"));
        plan.apply(&mut h, true);
        assert!(h.get("server").is_none());
        assert!(h.get("x-powered-by").is_none());
        assert_eq!(h["x-frame-options"], "SAMEORIGIN");
        assert_eq!(h["x-content-type-options"], "nosniff");
        assert!(h["strict-transport-security"].to_str().unwrap().starts_with("max-age="));
        let mut plain = HeaderMap::new();
        plan.apply(&mut plain, false);
        assert!(plain.get("strict-transport-security").is_none());
    }

    #[test]
    fn override_replaces_upstream_values() {
        let cfg = SecurityHeaders { override_upstream: true, ..SecurityHeaders::default() };
        let plan = HeaderPlan::build(&cfg, "h").unwrap();
        let mut h = HeaderMap::new();
        h.insert("x-frame-options", HeaderValue::from_static("ALLOWALL"));
        plan.apply(&mut h, false);
        assert_eq!(h["x-frame-options"], "DENY");
    }

    #[test]
    fn bad_value_is_named() {
        let cfg = SecurityHeaders { content_security_policy: "a\nb".into(), ..SecurityHeaders::default() };
        let e = HeaderPlan::build(&cfg, "routes[2].headers").unwrap_err().to_string();
        assert!(e.contains("routes[2].headers.content_security_policy"), "{e}");
    }
}
