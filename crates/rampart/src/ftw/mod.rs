//! `rampart waf test`: runs go-ftw regression tests (the CRS project's
//! format) against the real gateway. It starts the gateway on an ephemeral
//! port, in front of the [`reflect`] backend, with the WAF in detection-only
//! mode at paranoia level 4 and the settings the CRS project tests with;
//! sends each test's request as raw bytes; reads the ids the WAF logged
//! for that transaction (the log lines carry the transaction id, which the
//! response's `X-Request-Id` names); and checks them against the test.
//!
//! Browsers speak HTTP/2, where the host travels in `:authority` and
//! connection headers do not exist, so the same tests also run over
//! HTTP/2 ([`Protocol::H2c`] with prior knowledge, [`Protocol::H2`] over
//! TLS with ALPN): each test's request is rebuilt as an HTTP/2 request
//! (its `Host` as the authority). Tests that cannot be said in HTTP/2
//! (raw encoded requests, HTTP/1.0, targets that are no URI) are skipped.

pub mod format;
mod h2;
pub mod reflect;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use base64::Engine as _;
use rampart_gateway::{Gateway, Options};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use format::{File, Input, Output};

/// What a run found.
#[derive(Default)]
pub struct Summary {
    /// Tests whose every stage met its expectations.
    pub passed: usize,
    /// `rule-test: why` of the others.
    pub failed: Vec<String>,
    /// Tests not run (unreadable files, overrides without expectations).
    pub skipped: usize,
    /// Tests whose expectations an override replaced.
    pub overridden: usize,
}

/// How the tests' requests travel.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Protocol {
    /// HTTP/1.1, the request's bytes as the test has them.
    Http1,
    /// HTTP/2 over plain TCP, prior knowledge (h2c).
    H2c,
    /// HTTP/2 over TLS, negotiated with ALPN as browsers do.
    H2,
}

impl std::str::FromStr for Protocol {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "http1" | "http/1.1" => Ok(Protocol::Http1),
            "h2c" => Ok(Protocol::H2c),
            "h2" => Ok(Protocol::H2),
            _ => Err(format!("{s:?}: expected http1, h2c or h2")),
        }
    }
}

/// The settings the CRS project's own test setup uses (its README).
const TEST_SETTINGS: &str = "SecAction \"id:9900001,phase:1,nolog,pass,t:none,\
setvar:tx.crs_validate_utf8_encoding=1,setvar:tx.arg_name_length=100,setvar:tx.arg_length=400,\
setvar:tx.total_arg_length=6400,setvar:tx.max_num_args=255,setvar:tx.max_file_size=64100,\
setvar:tx.combined_file_sizes=65535\"\n";

/// Runs every test under `tests` against `rules`; `only` limits the run
/// to one rule's tests.
pub async fn run(
    rules: &Path,
    tests: &Path,
    overrides: Option<&Path>,
    only: Option<u64>,
    protocol: Protocol,
) -> Result<Summary, String> {
    let overrides = match overrides {
        Some(p) => {
            let text = std::fs::read_to_string(p).map_err(|e| format!("{}: {e}", p.display()))?;
            serde_yaml::from_str::<format::Overrides>(&text).map_err(|e| format!("{}: {e}", p.display()))?
        }
        None => format::Overrides { test_overrides: Vec::new() },
    };
    let overrides = overrides.index()?;
    let dir = tempfile_dir()?;
    let backend = reflect::start().await.map_err(|e| format!("backend: {e}"))?;
    let settings = dir.join("ftw-settings.conf");
    std::fs::write(&settings, TEST_SETTINGS).map_err(|e| e.to_string())?;
    let https = if protocol == Protocol::H2 { "127.0.0.1:0" } else { "" };
    let text = format!(
        "data_dir = {dir:?}\n\
         [listen]\nhttp = \"127.0.0.1:0\"\nhttps = {https:?}\nadmin = \"\"\n\
         [limits]\nrefuse_ambiguous_paths = false\nmax_uri_bytes = 65536\nmax_header_bytes = 65536\nmax_headers = 512\nmax_body_bytes = 67108864\n\
         [bans]\nenabled = false\nprobe_paths = []\nscanner_user_agents = []\n\
         [access_log]\nenabled = false\n\
         [waf]\ncrs_dir = {rules:?}\nrules_before = [{settings:?}]\nmode = \"detection\"\nparanoia_level = 4\n\
         [upstreams.backend]\naddresses = [\"http://{backend}\"]\n\
         [[routes]]\nname = \"all\"\nupstream = \"backend\"\n"
    );
    let config = rampart_core::Config::from_toml(&text, "waf test").map_err(|e| e.to_string())?;
    config.validate().map_err(|e| e.to_string())?;
    let audit = rampart_audit::AuditLog::open(&dir).map_err(|e| e.to_string())?;
    let gateway = Gateway::start(Options::new(config, audit)).await.map_err(|e| e.to_string())?;
    let addr = gateway.http_addr().ok_or("the gateway has no HTTP listener")?;
    let client = match protocol {
        Protocol::Http1 => Client::Http1(addr),
        Protocol::H2c => Client::H2c(addr),
        Protocol::H2 => {
            let tls_addr = gateway.https_addr().ok_or("the gateway has no HTTPS listener")?;
            let pem =
                std::fs::read(dir.join("tls/self-signed.crt")).map_err(|e| format!("gateway certificate: {e}"))?;
            Client::H2(tls_addr, h2::tls_config(&pem)?)
        }
    };
    let mut log = LogTail { path: dir.join("waf.log"), offset: 0 };

    let mut summary = Summary::default();
    for file in test_files(tests)? {
        let rule = file.file_stem().and_then(|s| s.to_str()).and_then(|s| s.parse::<u64>().ok());
        if only.is_some() && rule != only {
            continue;
        }
        let text = std::fs::read_to_string(&file).map_err(|e| format!("{}: {e}", file.display()))?;
        let parsed: File = match serde_yaml::from_str(&text) {
            Ok(p) => p,
            Err(e) => {
                eprintln!("skipped {}: {e}", file.display());
                summary.skipped += 1;
                continue;
            }
        };
        let rule = rule.unwrap_or(0);
        for test in parsed.tests {
            let name = format!("{rule}-{}", test.test_id);
            let replaced = overrides.get(&(rule, test.test_id));
            if let Some(o) = replaced {
                summary.overridden += 1;
                if o.output.is_none() {
                    summary.skipped += 1;
                    continue;
                }
            }
            let mut failure = None;
            for stage in &test.stages {
                let expected = replaced.and_then(|o| o.output.clone()).unwrap_or_else(|| stage.output.clone());
                let got = match client.send(&stage.input).await {
                    Sent::Reply(r) => r,
                    Sent::Inexpressible => {
                        failure = Some(SKIP.to_string());
                        break;
                    }
                };
                let lines = match &got {
                    Ok(r) => r.request_id.as_deref().map(|id| log.lines_of(id)).unwrap_or_default(),
                    Err(_) => String::new(),
                };
                if let Err(why) = check(&expected, &got, &lines) {
                    failure = Some(why);
                    break;
                }
            }
            match failure {
                None => summary.passed += 1,
                Some(why) if why == SKIP => summary.skipped += 1,
                Some(why) => summary.failed.push(format!("{name}: {why}")),
            }
        }
    }
    gateway.shutdown(Duration::from_secs(1)).await;
    let _ = std::fs::remove_dir_all(&dir);
    Ok(summary)
}

/// A test whose request the protocol cannot carry.
const SKIP: &str = "\0skip";

/// Where and how requests go.
enum Client {
    Http1(SocketAddr),
    H2c(SocketAddr),
    H2(SocketAddr, std::sync::Arc<rustls::ClientConfig>),
}

/// What sending a test's request gave.
enum Sent {
    Reply(Result<Reply, String>),
    /// The request cannot be said in this protocol.
    Inexpressible,
}

impl Client {
    async fn send(&self, input: &Input) -> Sent {
        match self {
            Client::Http1(addr) => Sent::Reply(send(*addr, input).await),
            Client::H2c(addr) => match h2::request(input) {
                Some(req) => Sent::Reply(h2::send_plain(*addr, req).await),
                None => Sent::Inexpressible,
            },
            Client::H2(addr, tls) => match h2::request(input) {
                Some(req) => Sent::Reply(h2::send_tls(*addr, tls.clone(), req).await),
                None => Sent::Inexpressible,
            },
        }
    }
}

fn tempfile_dir() -> Result<PathBuf, String> {
    let dir = std::env::temp_dir().join(format!("rampart-waf-test-{}-{:x}", std::process::id(), rand_u64()));
    std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    Ok(dir)
}

fn rand_u64() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_nanos() as u64).unwrap_or(0)
}

/// `*.yaml` files under `dir`, in name order.
fn test_files(dir: &Path) -> Result<Vec<PathBuf>, String> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).map_err(|e| format!("{}: {e}", d.display()))?.flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
            } else if p.extension().is_some_and(|x| x == "yaml" || x == "yml") {
                out.push(p);
            }
        }
    }
    out.sort();
    Ok(out)
}

/// The WAF log, read from where the last read stopped.
struct LogTail {
    path: PathBuf,
    offset: u64,
}

impl LogTail {
    /// The new lines of transaction `id` (only what was appended since the
    /// last read is read).
    fn lines_of(&mut self, id: &str) -> String {
        use std::io::{Read, Seek, SeekFrom};
        let mut new = Vec::new();
        let read = std::fs::File::open(&self.path)
            .and_then(|mut f| f.seek(SeekFrom::Start(self.offset)).and_then(|_| f.read_to_end(&mut new)));
        if read.is_err() {
            return String::new();
        }
        self.offset += new.len() as u64;
        let marker = format!("[unique_id \"{id}\"]");
        String::from_utf8_lossy(&new).lines().filter(|l| l.contains(&marker)).map(|l| l.to_string() + "\n").collect()
    }
}

/// What came back for one request.
pub(crate) struct Reply {
    pub(crate) status: u16,
    pub(crate) request_id: Option<String>,
}

/// The request of `input` as bytes, as go-ftw sends it: with
/// `autocomplete_headers` (the default), a body without `Content-Type` is
/// sent as a form, and `Content-Length` and `Connection: close` are added
/// when absent.
pub fn raw_request(input: &Input) -> Vec<u8> {
    if let Some(b64) = &input.encoded_request {
        // YAML folds long values: whitespace is not part of the encoding.
        let b64: String = b64.chars().filter(|c| !c.is_whitespace()).collect();
        return base64::engine::general_purpose::STANDARD.decode(b64).unwrap_or_default();
    }
    let method = input.method.as_deref().unwrap_or("GET");
    let uri = input.uri.as_deref().unwrap_or("/");
    let version = input.version.as_deref().unwrap_or("HTTP/1.1");
    let data = render(input.data.as_deref().unwrap_or(""));
    let data = data.as_str();
    let mut head = format!("{method} {uri} {version}\r\n");
    let mut names = Vec::new();
    for (k, v) in &input.headers {
        let k = yaml_text(k);
        let v = yaml_text(v);
        head.push_str(&format!("{k}: {v}\r\n"));
        names.push(k.to_ascii_lowercase());
    }
    if input.autocomplete_headers.unwrap_or(true) {
        if !data.is_empty() && !names.iter().any(|n| n == "content-type") {
            head.push_str("Content-Type: application/x-www-form-urlencoded\r\n");
        }
        if !data.is_empty() && !names.iter().any(|n| n == "content-length" || n == "transfer-encoding") {
            head.push_str(&format!("Content-Length: {}\r\n", data.len()));
        }
        if !names.iter().any(|n| n == "connection") {
            head.push_str("Connection: close\r\n");
        }
    }
    head.push_str("\r\n");
    let mut out = head.into_bytes();
    out.extend_from_slice(data.as_bytes());
    out
}

/// go-ftw's templates in `data`: `{{ "x" | repeat N }}` is `x` N times.
pub(crate) fn render(data: &str) -> String {
    let mut out = String::with_capacity(data.len());
    let mut rest = data;
    while let Some(start) = rest.find("{{") {
        let Some(len) = rest[start..].find("}}") else { break };
        out.push_str(&rest[..start]);
        let inner = rest[start + 2..start + len].trim();
        let repeated = inner.split_once('|').and_then(|(text, f)| {
            let text = text.trim().strip_prefix('"')?.strip_suffix('"')?;
            let n: usize = f.trim().strip_prefix("repeat")?.trim().parse().ok()?;
            Some(text.repeat(n.min(16 << 20)))
        });
        match repeated {
            Some(r) => out.push_str(&r),
            None => out.push_str(&rest[start..start + len + 2]),
        }
        rest = &rest[start + len + 2..];
    }
    out.push_str(rest);
    out
}

pub(crate) fn yaml_text(v: &serde_yaml::Value) -> String {
    match v {
        serde_yaml::Value::String(s) => s.clone(),
        serde_yaml::Value::Number(n) => n.to_string(),
        serde_yaml::Value::Bool(b) => b.to_string(),
        serde_yaml::Value::Null => String::new(),
        other => serde_yaml::to_string(other).unwrap_or_default().trim().to_string(),
    }
}

async fn send(addr: SocketAddr, input: &Input) -> Result<Reply, String> {
    let raw = raw_request(input);
    let mut s = TcpStream::connect(addr).await.map_err(|e| e.to_string())?;
    s.write_all(&raw).await.map_err(|e| e.to_string())?;
    let mut buf = Vec::new();
    let mut chunk = [0u8; 16384];
    // Until the server closes, a whole response is in, or 3 s pass.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(3);
    loop {
        match tokio::time::timeout_at(deadline, s.read(&mut chunk)).await {
            Ok(Ok(0)) | Err(_) => break,
            Ok(Ok(n)) => {
                buf.extend_from_slice(&chunk[..n]);
                if complete(&buf) {
                    break;
                }
            }
            Ok(Err(e)) if buf.is_empty() => return Err(e.to_string()),
            Ok(Err(_)) => break,
        }
    }
    let text = String::from_utf8_lossy(&buf);
    let status = text
        .strip_prefix("HTTP/")
        .and_then(|r| r.split_whitespace().nth(1))
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| if buf.is_empty() { "no response".to_string() } else { "not an HTTP response".into() })?;
    let head = text.split("\r\n\r\n").next().unwrap_or("");
    let request_id = head.lines().find_map(|l| {
        let (k, v) = l.split_once(':')?;
        k.eq_ignore_ascii_case("x-request-id").then(|| v.trim().to_string())
    });
    Ok(Reply { status, request_id })
}

/// Whether `buf` holds a whole response (head and a Content-Length body).
fn complete(buf: &[u8]) -> bool {
    let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") else { return false };
    let head = String::from_utf8_lossy(&buf[..end]);
    let len = head.lines().find_map(|l| {
        let (k, v) = l.split_once(':')?;
        k.eq_ignore_ascii_case("content-length").then(|| v.trim().parse::<usize>().ok()).flatten()
    });
    len.is_some_and(|n| buf.len() >= end + 4 + n)
}

fn check(expected: &Output, got: &Result<Reply, String>, lines: &str) -> Result<(), String> {
    let reply = match (got, expected.expect_error) {
        (Err(_), Some(true)) => return Ok(()),
        (Err(e), _) => {
            // No response: only expectations of absence can hold.
            if expected.status.is_some() || expected.log.as_ref().is_some_and(|l| !l.expect_ids.is_empty()) {
                return Err(format!("no response ({e})"));
            }
            return Ok(());
        }
        (Ok(r), _) => r,
    };
    if let Some(s) = &expected.status {
        if !s.accepts(reply.status) {
            return Err(format!("status {}", reply.status));
        }
    }
    let Some(log) = &expected.log else { return Ok(()) };
    let ids = rampart_waf::log::ids(lines);
    let missing: Vec<u64> = log.expect_ids.iter().filter(|i| !ids.contains(i)).copied().collect();
    let unwanted: Vec<u64> = log.no_expect_ids.iter().filter(|i| ids.contains(i)).copied().collect();
    if !missing.is_empty() || !unwanted.is_empty() {
        let mut seen = ids.clone();
        seen.sort_unstable();
        seen.dedup();
        return Err(format!("missing {missing:?}, unwanted {unwanted:?}, logged {seen:?} (status {})", reply.status));
    }
    for (pattern, want) in [(&log.match_regex, true), (&log.no_match_regex, false)] {
        if let Some(p) = pattern {
            let re = regex::Regex::new(p).map_err(|e| format!("bad match_regex {p:?}: {e}"))?;
            if re.is_match(lines) != want {
                return Err(format!("log {} match {p:?}", if want { "does not" } else { "does" }));
            }
        }
    }
    Ok(())
}

/// Failures by rule, for the summary.
pub fn by_rule(failed: &[String]) -> BTreeMap<&str, usize> {
    let mut out = BTreeMap::new();
    for f in failed {
        *out.entry(f.split('-').next().unwrap_or("")).or_default() += 1;
    }
    out
}
