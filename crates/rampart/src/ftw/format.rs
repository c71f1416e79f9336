//! The go-ftw test format (the CRS project's regression tests) and its
//! overrides files, as far as the runner reads them.

use std::collections::BTreeMap;

use serde::Deserialize;

/// One test file: the tests of one rule.
#[derive(Deserialize)]
pub struct File {
    /// The tests.
    pub tests: Vec<Test>,
}

/// One test: requests sent in order, each with what must follow.
#[derive(Deserialize)]
pub struct Test {
    /// Its number within the file.
    pub test_id: u64,
    /// The requests.
    pub stages: Vec<Stage>,
}

/// One request and its expectations.
#[derive(Deserialize)]
pub struct Stage {
    /// What to send.
    #[serde(default)]
    pub input: Input,
    /// What must be seen.
    #[serde(default)]
    pub output: Output,
}

/// A request, field by field or raw.
#[derive(Deserialize, Default)]
pub struct Input {
    /// Method, default `GET`.
    pub method: Option<String>,
    /// Request target, default `/`.
    pub uri: Option<String>,
    /// Protocol version, default `HTTP/1.1`.
    pub version: Option<String>,
    /// Headers in order.
    #[serde(default)]
    pub headers: serde_yaml::Mapping,
    /// The body.
    pub data: Option<String>,
    /// A whole raw request, base64, sent as is.
    pub encoded_request: Option<String>,
    /// Add `Content-Length` and `Connection: close` when absent (default).
    pub autocomplete_headers: Option<bool>,
}

/// Expectations.
#[derive(Deserialize, Default, Clone)]
pub struct Output {
    /// Rule ids that must and must not have matched.
    pub log: Option<Log>,
    /// The response status (one, or any of several).
    pub status: Option<Status>,
    /// The connection fails without a response.
    pub expect_error: Option<bool>,
}

/// A status or a list of them.
#[derive(Deserialize, Clone)]
#[serde(untagged)]
pub enum Status {
    /// One status.
    One(u16),
    /// Any of these.
    Any(Vec<u16>),
}

impl Status {
    /// Whether `s` is expected.
    pub fn accepts(&self, s: u16) -> bool {
        match self {
            Status::One(x) => *x == s,
            Status::Any(v) => v.contains(&s),
        }
    }
}

/// Log expectations.
#[derive(Deserialize, Default, Clone)]
pub struct Log {
    /// Ids that must appear.
    #[serde(default)]
    pub expect_ids: Vec<u64>,
    /// Ids that must not appear.
    #[serde(default)]
    pub no_expect_ids: Vec<u64>,
    /// A pattern the transaction's log lines must match.
    pub match_regex: Option<String>,
    /// A pattern they must not match.
    pub no_match_regex: Option<String>,
}

/// An overrides file: expectations replaced for named tests, each with
/// its reason.
#[derive(Deserialize)]
pub struct Overrides {
    /// The replaced tests.
    #[serde(default)]
    pub test_overrides: Vec<Override>,
}

/// One override.
#[derive(Deserialize)]
pub struct Override {
    /// The rule whose tests it names.
    pub rule_id: u64,
    /// The tests.
    #[serde(default)]
    pub test_ids: Vec<u64>,
    /// Why (required: an override without a reason is refused).
    pub reason: String,
    /// The expectations that replace the test's; none: the test is skipped.
    pub output: Option<Output>,
}

impl Overrides {
    /// Overrides by (rule, test).
    pub fn index(&self) -> Result<BTreeMap<(u64, u64), &Override>, String> {
        let mut out = BTreeMap::new();
        for o in &self.test_overrides {
            if o.reason.trim().is_empty() {
                return Err(format!("override of rule {} has no reason", o.rule_id));
            }
            for t in &o.test_ids {
                out.insert((o.rule_id, *t), o);
            }
        }
        Ok(out)
    }
}
