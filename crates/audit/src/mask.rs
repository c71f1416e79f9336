//! Masking (docs/audit-log-format.md, section 11): nothing sensitive
//! reaches the disk. Field rules by dotted path come first; then every
//! remaining string is scanned by detectors (emails, payment cards with a
//! Luhn check, IBANs with their mod-97 check, JWTs, bearer and basic
//! credentials, passwords in URLs, secrets in query strings, form fields and
//! headers, provider API keys); object members whose name says "secret"
//! (password, token, authorization, cookie, ...) are masked whole.
//!
//! Actions: `redact` (`[REDACTED:kind]`), `hash` (`hmac:` + 16 bytes of
//! HMAC-SHA-256 under the masking key, base64url: equal values stay
//! correlatable), `partial` (all but the last 4 characters as `*`).

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::sync::Arc;

use regex::{Captures, Regex, RegexSet};
use serde_json::Value;

use crate::keys::Keys;

/// What to do with a sensitive value.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Action {
    /// Replace by `[REDACTED:kind]`.
    Redact,
    /// Replace by a keyed hash.
    Hash,
    /// Keep the last 4 characters.
    Partial,
    /// Leave as is (a detector turned off).
    Off,
}

impl Action {
    /// Parses `redact`, `hash`, `partial` or `off`.
    pub fn parse(s: &str) -> Option<Action> {
        Some(match s {
            "redact" => Action::Redact,
            "hash" => Action::Hash,
            "partial" => Action::Partial,
            "off" => Action::Off,
            _ => return None,
        })
    }
}

/// The detectors, their names (used in configuration and in
/// `[REDACTED:name]`) and default actions.
pub const DETECTORS: &[(&str, Action)] = &[
    ("private_key", Action::Redact),
    ("jwt", Action::Redact),
    ("credentials", Action::Redact),
    ("url_password", Action::Redact),
    ("secret_param", Action::Redact),
    ("api_key", Action::Redact),
    ("card", Action::Partial),
    ("iban", Action::Partial),
    ("email", Action::Hash),
];

fn pattern(name: &str) -> &'static str {
    match name {
        "private_key" => r"-----BEGIN [A-Z ]*PRIVATE KEY-----[\s\S]*?(?:-----END [A-Z ]*PRIVATE KEY-----|$)",
        "jwt" => r"\beyJ[A-Za-z0-9_-]{5,}\.[A-Za-z0-9_-]{5,}\.[A-Za-z0-9_-]*",
        "credentials" => r"(?i)\b(?:bearer|basic|token|digest)\s+[A-Za-z0-9._~+/=-]{8,}",
        "url_password" => r"(?i)\b[a-z][a-z0-9+.-]*://[^/\s:@]+:([^@\s/]+)@",
        "secret_param" => {
            r"(?i)(?:^|[?&;\s,])(?:password|passwd|pwd|pass|passphrase|secret|token|access_token|refresh_token|id_token|api_?key|apikey|client_secret|auth|session|sessionid|sid|jsessionid|phpsessid|csrf_?token|otp|code_verifier)=([^&\s;,]+)"
        }
        "api_key" => {
            r"\b(?:AKIA|ASIA)[0-9A-Z]{16}\b|\b(?:ghp|gho|ghu|ghs|ghr)_[A-Za-z0-9]{36}\b|\bgithub_pat_[A-Za-z0-9_]{22,}|\bxox[abposr]-[A-Za-z0-9-]{10,}|\b[sr]k_(?:live|test)_[A-Za-z0-9]{16,}|\bAIza[0-9A-Za-z_-]{35}|\bsk-(?:proj-|ant-)?[A-Za-z0-9_-]{20,}|\bglpat-[A-Za-z0-9_-]{20,}|\bnpm_[A-Za-z0-9]{36}\b|\bSG\.[A-Za-z0-9_-]{22}\.[A-Za-z0-9_-]{43}"
        }
        "card" => r"\b\d(?:[ .-]?\d){12,18}\b",
        "iban" => r"\b[A-Z]{2}\d{2}(?: ?[A-Z0-9]){11,30}\b",
        "email" => r"\b[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}\b",
        _ => r"$^",
    }
}

/// Member names whose whole value is a secret (compared without case,
/// `-` and `_` ignored).
const SECRET_NAMES: &[&str] = &[
    "password",
    "passwd",
    "pwd",
    "secret",
    "token",
    "accesstoken",
    "refreshtoken",
    "idtoken",
    "apikey",
    "authorization",
    "proxyauthorization",
    "cookie",
    "setcookie",
    "clientsecret",
    "privatekey",
    "xapikey",
    "xauthtoken",
    "session",
    "sessionid",
    "creditcard",
    "cardnumber",
    "cvv",
    "cvc",
    "otp",
];

/// A rule for one field, by dotted path (`user.email`, `http.request.headers.authorization`).
#[derive(Clone, Debug)]
pub struct FieldRule {
    /// Dotted path.
    pub path: String,
    /// What to do.
    pub action: Action,
}

/// The compiled masking rules.
pub struct Masker {
    set: RegexSet,
    detectors: Vec<(&'static str, Regex, Action)>,
    fields: Vec<FieldRule>,
    keys: Arc<Keys>,
}

impl std::fmt::Debug for Masker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Masker").field("fields", &self.fields).finish_non_exhaustive()
    }
}

impl Masker {
    /// Builds the masker; `overrides` sets a detector's action by name.
    /// Unknown detector names are returned as errors.
    pub fn new(keys: Arc<Keys>, fields: Vec<FieldRule>, overrides: &BTreeMap<String, Action>) -> Result<Self, String> {
        for name in overrides.keys() {
            if !DETECTORS.iter().any(|(n, _)| n == name) {
                let known: Vec<&str> = DETECTORS.iter().map(|(n, _)| *n).collect();
                return Err(format!("unknown detector \"{name}\" (known: {})", known.join(", ")));
            }
        }
        let mut detectors = Vec::new();
        for (name, default) in DETECTORS {
            let action = overrides.get(*name).copied().unwrap_or(*default);
            if action == Action::Off {
                continue;
            }
            let re = Regex::new(pattern(name)).map_err(|e| e.to_string())?;
            detectors.push((*name, re, action));
        }
        let set = RegexSet::new(detectors.iter().map(|(n, _, _)| pattern(n))).map_err(|e| e.to_string())?;
        Ok(Masker { set, detectors, fields, keys })
    }

    /// Masks every sensitive value of an event in place.
    pub fn mask_value(&self, v: &mut Value) {
        let mut path = String::new();
        self.walk(v, &mut path);
    }

    fn walk(&self, v: &mut Value, path: &mut String) {
        if let Some(rule) = self.fields.iter().find(|r| r.path == *path) {
            if rule.action == Action::Off {
                return;
            }
            if let Some(s) = scalar_text(v) {
                *v = Value::String(self.apply(rule.action, "field", &s));
                return;
            }
        }
        match v {
            Value::String(s) => {
                if let Cow::Owned(m) = self.mask_str(s) {
                    *s = m;
                }
            }
            Value::Array(a) => {
                for x in a {
                    self.walk(x, path);
                }
            }
            Value::Object(m) => {
                for (k, x) in m.iter_mut() {
                    let len = path.len();
                    if !path.is_empty() {
                        path.push('.');
                    }
                    path.push_str(k);
                    if is_secret_name(k) && !matches!(x, Value::Object(_) | Value::Null) {
                        redact_all(x, &|t| self.apply(Action::Redact, "field", t));
                    } else {
                        self.walk(x, path);
                    }
                    path.truncate(len);
                }
            }
            _ => {}
        }
    }

    /// Masks what the detectors find in one string. A string holding
    /// percent-encodings is also read decoded (`pass%77ord=...` is a
    /// password); when that reveals something to mask, the decoded text,
    /// masked, is what comes back.
    pub fn mask_str<'a>(&self, s: &'a str) -> Cow<'a, str> {
        let masked = self.mask_plain(s);
        if !s.contains('%') {
            return masked;
        }
        let decoded = percent_decoded(&masked);
        if decoded == *masked {
            return masked;
        }
        match self.mask_plain(&decoded) {
            Cow::Owned(m) => Cow::Owned(m),
            Cow::Borrowed(_) => masked,
        }
    }

    fn mask_plain<'a>(&self, s: &'a str) -> Cow<'a, str> {
        let hits = self.set.matches(s);
        if !hits.matched_any() {
            return Cow::Borrowed(s);
        }
        let mut out = Cow::Borrowed(s);
        for i in hits.iter() {
            let (name, re, action) = &self.detectors[i];
            let replaced = re.replace_all(&out, |c: &Captures<'_>| {
                let whole = c.get(0).map_or("", |m| m.as_str());
                // Where the secret is a group (a URL password, a parameter
                // value), only the group is masked.
                let (before, secret, after) = match c.get(1) {
                    Some(g) => {
                        let m = c.get(0).map_or(0, |m| m.start());
                        (&whole[..g.start() - m], g.as_str(), &whole[g.end() - m..])
                    }
                    None => ("", whole, ""),
                };
                let valid = match *name {
                    "card" => luhn(secret),
                    "iban" => iban_ok(secret),
                    _ => true,
                };
                if valid {
                    format!("{before}{}{after}", self.apply(*action, name, secret))
                } else {
                    whole.to_string()
                }
            });
            if let Cow::Owned(o) = replaced {
                out = Cow::Owned(o);
            }
        }
        out
    }

    fn apply(&self, action: Action, kind: &str, value: &str) -> String {
        match action {
            Action::Redact | Action::Off => format!("[REDACTED:{kind}]"),
            Action::Hash => {
                let mac = self.keys.mac(value.as_bytes());
                format!("hmac:{}", base64url(&mac[..16]))
            }
            Action::Partial => {
                let chars: Vec<char> = value.chars().filter(|c| !c.is_whitespace() && *c != '-' && *c != '.').collect();
                let keep = chars.len().min(4);
                let mut s: String = "*".repeat(chars.len() - keep);
                s.extend(&chars[chars.len() - keep..]);
                s
            }
        }
    }
}

/// Replaces every scalar under `v` (a secret member's value, or a list of
/// them) by `f(text)`.
fn redact_all(v: &mut Value, f: &dyn Fn(&str) -> String) {
    match v {
        Value::Array(a) => a.iter_mut().for_each(|x| redact_all(x, f)),
        Value::Object(m) => m.values_mut().for_each(|x| redact_all(x, f)),
        Value::Null => {}
        other => {
            let text = scalar_text(other).unwrap_or_default();
            *other = Value::String(f(&text));
        }
    }
}

fn scalar_text(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

/// Whether a member or field named `k` holds a secret.
pub fn is_secret_name(k: &str) -> bool {
    let norm: String = k.chars().filter(|c| *c != '-' && *c != '_').flat_map(char::to_lowercase).collect();
    SECRET_NAMES.contains(&norm.as_str())
}

/// Parts of a name that make it a secret's wherever they occur
/// (`user_password`, `newPassphrase`, `X-Auth-Token`).
const SECRET_PARTS: &[&str] =
    &["password", "passwd", "passphrase", "secret", "token", "apikey", "sessionid", "privatekey", "authorization"];

/// Whether a rule variable (`ARGS:password`, `ARGS:json.user.pass%77ord`,
/// `REQUEST_COOKIES:sessionid`, `REQUEST_HEADERS:X-Api-Key`) holds a
/// secret: its key, percent-decoded, names one; every cookie does (session
/// cookies are named anything), and so do the Cookie and Authorization
/// headers.
pub fn is_secret_variable(variable: &str) -> bool {
    let (collection, key) = variable.split_once(':').unwrap_or((variable, ""));
    let collection = collection.to_ascii_uppercase();
    if collection.starts_with("REQUEST_COOKIES") && !collection.ends_with("_NAMES") {
        return true;
    }
    if collection.ends_with("_NAMES") {
        return false;
    }
    let key = percent_decoded(key);
    let last = key.rsplit(['.', '[', ']']).find(|p| !p.is_empty()).unwrap_or("");
    let norm: String = last.chars().filter(|c| c.is_alphanumeric()).flat_map(char::to_lowercase).collect();
    is_secret_name(last)
        || matches!(norm.as_str(), "cookie" | "pass" | "pin" | "sid" | "auth")
        || SECRET_PARTS.iter().any(|p| norm.contains(p))
}

/// `%HH` decoded (as UTF-8, lossily); the text itself when it has none.
fn percent_decoded(s: &str) -> Cow<'_, str> {
    let b = s.as_bytes();
    if !b.contains(&b'%') {
        return Cow::Borrowed(s);
    }
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' && i + 2 < b.len() {
            if let (Some(h), Some(l)) = ((b[i + 1] as char).to_digit(16), (b[i + 2] as char).to_digit(16)) {
                out.push((h * 16 + l) as u8);
                i += 3;
                continue;
            }
        }
        out.push(b[i]);
        i += 1;
    }
    match String::from_utf8_lossy(&out) {
        Cow::Borrowed(t) if t == s => Cow::Borrowed(s),
        other => Cow::Owned(other.into_owned()),
    }
}

/// The Luhn checksum of the digits in `s`.
pub fn luhn(s: &str) -> bool {
    let digits: Vec<u32> = s.chars().filter_map(|c| c.to_digit(10)).collect();
    if !(13..=19).contains(&digits.len()) {
        return false;
    }
    let sum: u32 = digits
        .iter()
        .rev()
        .enumerate()
        .map(|(i, d)| {
            if i % 2 == 1 {
                if d * 2 > 9 {
                    d * 2 - 9
                } else {
                    d * 2
                }
            } else {
                *d
            }
        })
        .sum();
    sum.is_multiple_of(10)
}

/// The ISO 13616 mod-97 check of an IBAN.
pub fn iban_ok(s: &str) -> bool {
    let c: Vec<char> = s.chars().filter(|c| !c.is_whitespace()).collect();
    if !(15..=34).contains(&c.len()) {
        return false;
    }
    let rearranged = c[4..].iter().chain(&c[..4]);
    let mut rem: u32 = 0;
    for ch in rearranged {
        let v = match ch.to_digit(36) {
            Some(v) => v,
            None => return false,
        };
        for d in v.to_string().bytes() {
            rem = (rem * 10 + u32::from(d - b'0')) % 97;
        }
    }
    rem == 1
}

fn base64url(b: &[u8]) -> String {
    const T: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let mut s = String::new();
    for chunk in b.chunks(3) {
        let n = chunk.iter().enumerate().fold(0u32, |acc, (i, x)| acc | u32::from(*x) << (16 - 8 * i));
        for i in 0..=chunk.len() {
            s.push(T[(n >> (18 - 6 * i) & 63) as usize] as char);
        }
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn masker() -> (tempfile::TempDir, Masker) {
        let dir = tempfile::tempdir().unwrap();
        let keys = Arc::new(Keys::load_or_create(dir.path()).unwrap());
        let fields = vec![FieldRule { path: "user.name".into(), action: Action::Hash }];
        (dir, Masker::new(keys, fields, &BTreeMap::new()).unwrap())
    }

    #[test]
    fn checks() {
        assert!(luhn("4111 1111 1111 1111"));
        assert!(!luhn("4111 1111 1111 1112"));
        assert!(iban_ok("GB82 WEST 1234 5698 7654 32"));
        assert!(!iban_ok("GB82 WEST 1234 5698 7654 33"));
        assert_eq!(base64url(b"\xfb\xff"), "-_8");
    }

    #[test]
    fn detectors_mask_what_they_should_and_nothing_else() {
        let (_d, m) = masker();
        let cases = [
            ("card 4111-1111-1111-1111 paid", "card ************1111 paid"),
            ("order 4111111111111112 ref", "order 4111111111111112 ref"),
            ("iban GB82WEST12345698765432", "iban ******************5432"),
            ("GET /x?user=bob&password=hunter2&x=1", "GET /x?user=bob&password=[REDACTED:secret_param]&x=1"),
            ("postgres://app:s3cr3t@db:5432/x", "postgres://app:[REDACTED:url_password]@db:5432/x"),
            ("Authorization: Bearer abcdefghijklmnop", "Authorization: [REDACTED:credentials]"),
            ("key AKIAIOSFODNN7EXAMPLE here", "key [REDACTED:api_key] here"),
            ("plain text stays", "plain text stays"),
        ];
        for (input, want) in cases {
            assert_eq!(m.mask_str(input), want, "{input}");
        }
        let jwt = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U";
        assert_eq!(m.mask_str(&format!("t {jwt}")), "t [REDACTED:jwt]");
        let e1 = m.mask_str("mail alice@example.com now").into_owned();
        let e2 = m.mask_str("from alice@example.com").into_owned();
        assert!(e1.starts_with("mail hmac:") && !e1.contains("alice"));
        assert_eq!(e1.split(' ').nth(1), e2.split(' ').nth(1), "equal values stay correlatable");
    }

    /// What an outside review found in clear in the WAF's log lines.
    #[test]
    fn encoded_names_dotted_cards_and_secret_variables() {
        let (_d, m) = masker();
        let got = m.mask_str("GET /login?user=bob&pass%77ord=hunter2").into_owned();
        assert!(!got.contains("hunter2"), "{got}");
        let got = m.mask_str("passphrase=correct-horse&x=1").into_owned();
        assert!(!got.contains("correct-horse"), "{got}");
        let got = m.mask_str("card 4111.1111.1111.1111 paid").into_owned();
        assert!(!got.contains("4111.1111.1111.1111"), "{got}");
        for v in [
            "ARGS:password",
            "ARGS_POST:pass%77ord",
            "ARGS:json.user.password",
            "ARGS:newPassphrase",
            "ARGS:token",
            "REQUEST_COOKIES:sessionid",
            "REQUEST_COOKIES:_app_session",
            "REQUEST_HEADERS:X-Api-Key",
            "REQUEST_HEADERS:Authorization",
            "REQUEST_HEADERS:Cookie",
        ] {
            assert!(is_secret_variable(v), "{v}");
        }
        for v in ["ARGS:q", "ARGS:id", "REQUEST_HEADERS:User-Agent", "REQUEST_COOKIES_NAMES:sessionid", "REQUEST_URI"] {
            assert!(!is_secret_variable(v), "{v}");
        }
    }

    #[test]
    fn secret_members_and_field_rules() {
        let (_d, m) = masker();
        let mut v = json!({
            "http": {"request": {"headers": {"Authorization": "Basic dXNlcjpwYXNz", "Cookie": "sid=abc", "Accept": "*/*"}}},
            "user": {"name": "alice", "password": "pw"},
            "message": "login from 192.0.2.1"
        });
        m.mask_value(&mut v);
        assert_eq!(v["http"]["request"]["headers"]["Authorization"], "[REDACTED:field]");
        assert_eq!(v["http"]["request"]["headers"]["Cookie"], "[REDACTED:field]");
        assert_eq!(v["http"]["request"]["headers"]["Accept"], "*/*");
        assert_eq!(v["user"]["password"], "[REDACTED:field]");
        assert!(v["user"]["name"].as_str().unwrap().starts_with("hmac:"));
        assert_eq!(v["message"], "login from 192.0.2.1");
        let mut list = json!({"cookie": ["a=1", "b=2"], "tokens": {"token": 5}});
        m.mask_value(&mut list);
        assert_eq!(list["cookie"][1], "[REDACTED:field]");
        assert_eq!(list["tokens"]["token"], "[REDACTED:field]");
    }

    #[test]
    fn detectors_can_be_turned_off_and_unknown_names_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let keys = Arc::new(Keys::load_or_create(dir.path()).unwrap());
        let off: BTreeMap<String, Action> = [("email".to_string(), Action::Off)].into();
        let m = Masker::new(keys.clone(), vec![], &off).unwrap();
        assert_eq!(m.mask_str("a@example.com"), "a@example.com");
        let bad: BTreeMap<String, Action> = [("emails".to_string(), Action::Off)].into();
        assert!(Masker::new(keys, vec![], &bad).unwrap_err().contains("unknown detector \"emails\""));
    }
}
