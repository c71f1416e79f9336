//! One request through the gateway: the stages in order, then the upstream,
//! then the response hardening. Every refusal goes through [`Handler::refuse`],
//! which makes the response, the event, the metric and the ban score.

use std::convert::Infallible;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::{Instant, SystemTime};

use bytes::Bytes;
use http::header::{self, HeaderMap, HeaderName, HeaderValue};
use http::request::Parts;
use http::{Request, Response, StatusCode, Uri, Version};
use hyper::body::Incoming;
use rampart_core::event::rfc3339;
use rampart_core::{Event, Outcome};

use crate::access_log::Entry;
use crate::body::{collect, read_prefix, BodyError, ProxyBody, ResponseBody};
use crate::reject::{Offense, Reason};
use crate::runtime::{Route, Runtime};
use crate::stage::waf as waf_stage;
use crate::stage::{csrf, ip_policy, rate_limit::Subject};
use crate::Shared;
use rampart_core::config::WafMode;
use rampart_waf::engine::{Transaction, Verdict};
use rampart_waf::request::{self, RequestData, ResponseData};

static X_FORWARDED_FOR: HeaderName = HeaderName::from_static("x-forwarded-for");
static X_FORWARDED_PROTO: HeaderName = HeaderName::from_static("x-forwarded-proto");
static X_FORWARDED_HOST: HeaderName = HeaderName::from_static("x-forwarded-host");
static X_REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// Heavy inspections queue per client: each client (its address, or its
/// IPv6 network) has at most one in the shared queue of blocking threads,
/// its others wait their turn behind it. So a client sending many large
/// requests delays its own, not everyone's, and clients behind one
/// address (a NAT, a proxy not declared trusted) are slowed, not refused.
#[derive(Default)]
pub struct HeavyQueues {
    clients: std::sync::Mutex<std::collections::HashMap<IpAddr, Arc<tokio::sync::Semaphore>>>,
}

/// A client's turn at the shared queue; the next of its requests goes on
/// when this drops.
struct Turn<'a> {
    queues: &'a HeavyQueues,
    key: IpAddr,
    queue: Arc<tokio::sync::Semaphore>,
    permit: Option<tokio::sync::OwnedSemaphorePermit>,
}

impl HeavyQueues {
    /// Waits for `key`'s turn.
    async fn turn(&self, key: IpAddr) -> Option<Turn<'_>> {
        let queue = {
            let mut map = self.clients.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
            map.entry(key).or_insert_with(|| Arc::new(tokio::sync::Semaphore::new(1))).clone()
        };
        // Made before waiting, so a cancelled wait still cleans up.
        let mut turn = Turn { queues: self, key, queue, permit: None };
        turn.permit = Some(turn.queue.clone().acquire_owned().await.ok()?);
        Some(turn)
    }
}

impl Drop for Turn<'_> {
    fn drop(&mut self) {
        drop(self.permit.take());
        let mut map = self.queues.clients.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        // Only the map and this turn hold the queue: nobody waits on it.
        if Arc::strong_count(&self.queue) == 2 {
            map.remove(&self.key);
        }
    }
}

/// A request with more arguments than this, or a body larger than
/// [`HEAVY_BODY_BYTES`], has its body phase run off the event loop.
const HEAVY_ARGUMENTS: usize = 48;
const HEAVY_BODY_BYTES: usize = 16 * 1024;

fn body_len(b: &ProxyBody) -> usize {
    match b {
        ProxyBody::Full(Some(b)) => b.len(),
        _ => 0,
    }
}

static X_REAL_IP: HeaderName = HeaderName::from_static("x-real-ip");

/// Headers in which a client claims what only a proxy in front may say:
/// who the client is, which port or URL it used. Applications and
/// frameworks believe them (`X-Original-URL` rewrites the path in IIS and
/// Symfony), so a client's own are dropped unless it is a trusted proxy.
const CLIENT_CLAIMS: [HeaderName; 25] = [
    HeaderName::from_static("forwarded"),
    HeaderName::from_static("x-real-ip"),
    HeaderName::from_static("true-client-ip"),
    HeaderName::from_static("x-client-ip"),
    HeaderName::from_static("x-cluster-client-ip"),
    HeaderName::from_static("cf-connecting-ip"),
    HeaderName::from_static("fastly-client-ip"),
    HeaderName::from_static("x-forwarded-port"),
    HeaderName::from_static("x-forwarded-prefix"),
    HeaderName::from_static("x-original-url"),
    HeaderName::from_static("x-rewrite-url"),
    HeaderName::from_static("x-original-uri"),
    HeaderName::from_static("x-forwarded-uri"),
    HeaderName::from_static("x-envoy-original-path"),
    HeaderName::from_static("x-forwarded-ssl"),
    HeaderName::from_static("front-end-https"),
    HeaderName::from_static("x-forwarded-scheme"),
    HeaderName::from_static("x-url-scheme"),
    HeaderName::from_static("x-forwarded-server"),
    HeaderName::from_static("x-host"),
    HeaderName::from_static("client-ip"),
    HeaderName::from_static("x-originating-ip"),
    HeaderName::from_static("x-remote-ip"),
    HeaderName::from_static("x-remote-addr"),
    HeaderName::from_static("x-proxyuser-ip"),
];

/// Headers that describe one connection, not the message (RFC 9110 §7.6.1),
/// never forwarded in either direction.
const HOP_BY_HOP: [HeaderName; 7] = [
    header::CONNECTION,
    HeaderName::from_static("keep-alive"),
    HeaderName::from_static("proxy-connection"),
    header::TE,
    header::TRAILER,
    header::TRANSFER_ENCODING,
    header::UPGRADE,
];

/// What the handler knows about the connection a request came on.
pub struct ConnInfo {
    /// The TCP peer (a load balancer, when one is in front).
    pub peer: IpAddr,
    /// The client, after the PROXY protocol header if any.
    pub client: IpAddr,
    /// Whether the connection is TLS.
    pub tls: bool,
}

/// The per-connection request handler.
pub struct Handler {
    pub(crate) shared: Arc<Shared>,
    pub(crate) conn: ConnInfo,
}

/// What the gateway knows about a request, kept for its events and its
/// access-log line once the head itself has gone upstream (cheap clones:
/// `Uri` and `HeaderValue` share their bytes).
struct Facts {
    method: http::Method,
    uri: Uri,
    user_agent: Option<HeaderValue>,
    /// The client's side is HTTPS: our TLS, or a trusted proxy's
    /// (X-Forwarded-Proto: https from a trusted peer).
    https: bool,
    client: IpAddr,
    host: String,
    request_id: String,
    start: Instant,
}

impl Facts {
    fn user_agent(&self) -> Option<&str> {
        self.user_agent.as_ref().and_then(|v| v.to_str().ok())
    }
}

/// What the access log and events need about a request once it is done.
struct Outcome2<'a> {
    route: &'a str,
    upstream: &'a str,
    reason: &'a str,
}

impl Handler {
    /// Serves one request. Never fails: every error becomes a response.
    pub async fn serve(self: Arc<Self>, req: Request<Incoming>) -> Result<Response<ResponseBody>, Infallible> {
        let start = Instant::now();
        let rt = self.shared.runtime.load_full();
        let (mut parts, body) = req.into_parts();
        let host_error = settle_host(&mut parts).err();
        let trusted_peer = rt.ip_policy.is_trusted(self.conn.peer);
        // Several X-Forwarded-For lines (a proxy that adds its own line
        // rather than appending) are one list, in order (RFC 9110 5.3).
        let forwarded_for = if trusted_peer { joined(&parts.headers, &X_FORWARDED_FOR) } else { None };
        let forwarded = trusted_peer.then(|| {
            let lines = parts.headers.get_all(&X_FORWARDED_FOR).iter().map(HeaderValue::as_bytes);
            ip_policy::client_ip(self.conn.client, lines, &rt.ip_policy)
        });
        let client = forwarded.and_then(Result::ok).unwrap_or(self.conn.client);
        let https = self.conn.tls
            || trusted_peer
                && parts.headers.get(&X_FORWARDED_PROTO).is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"https"));
        let facts = Facts {
            method: parts.method.clone(),
            uri: parts.uri.clone(),
            user_agent: parts.headers.get(header::USER_AGENT).cloned(),
            https,
            client,
            host: host_of(&parts).to_string(),
            request_id: request_id(&parts.headers, trusted_peer),
            start,
        };
        let (host, request_id) = (&facts.host, &facts.request_id);
        if let Some(reason) = host_error {
            return Ok(self.refuse(&rt, &facts, reason, "-", None).await);
        }
        if let Some(Err(_)) = forwarded {
            return Ok(self.refuse(&rt, &facts, Reason::ForwardedForUnreadable, "-", None).await);
        }

        if rt.config.listen.redirect_https && !https {
            let resp = redirect_to_https(&parts, host, rt.https_port);
            self.finish(&facts, resp.status().as_u16(), Outcome2 { route: "-", upstream: "-", reason: "" });
            return Ok(resp);
        }
        let decision = self.admit(&rt, &parts, client, host, https).await;
        let route = match decision {
            Ok(route) => route,
            Err((reason, route_name, extra)) => {
                return Ok(self.refuse(&rt, &facts, reason, route_name, extra).await);
            }
        };

        // The WAF's phase 1 sees the head before any of the body is read.
        let engine = rt.waf.engine.as_ref().filter(|_| route.waf.mode != WafMode::Off);
        let mut waf = engine.map(|e| route.waf.begin(e));
        let waf_headers = if waf.is_some() { waf_stage::headers_of(&parts.headers) } else { Vec::new() };
        let uri_text = if waf.is_some() { waf_uri(&parts.uri, parts.version) } else { String::new() };
        let client_text = if waf.is_some() { client.to_string() } else { String::new() };
        let request = RequestData {
            method: parts.method.as_str(),
            uri: &uri_text,
            protocol: version_text(parts.version),
            headers: &waf_headers,
            body: b"",
            remote_addr: &client_text,
            unique_id: request_id,
        };
        if let Some(tx) = &mut waf {
            request::load_head(tx, &request);
            if let Some(reason) = waf_stage::unreadable(tx, &route.waf) {
                self.waf_log(&facts, tx, reason.status());
                return Ok(self.refuse(&rt, &facts, reason, &route.name, None).await);
            }
            tx.run_phase(1);
            if let Some(reason) = waf_stage::unreadable(tx, &route.waf) {
                self.waf_log(&facts, tx, reason.status());
                return Ok(self.refuse(&rt, &facts, reason, &route.name, None).await);
            }
            if let Some(resp) = self.waf_verdict(&rt, &facts, tx, route, Reason::WafBlocked).await {
                return Ok(resp);
            }
        }

        // Body: refuse oversized announced bodies before anything is sent;
        // buffer bodies of unannounced size so that an oversized one never
        // starts to reach the upstream, and every body the WAF reads.
        let stall = rt.limits.body_read_timeout.get();
        // Keeps a buffered body's bytes counted until the exchange is over.
        let mut _held = None;
        let announced = parts.headers.get(header::CONTENT_LENGTH).and_then(|v| v.to_str().ok()?.parse::<u64>().ok());
        if announced.is_some_and(|n| n > route.max_body) {
            return Ok(self.refuse(&rt, &facts, Reason::BodyTooLarge, &route.name, None).await);
        }
        let body = if announced == Some(0) || http_body::Body::is_end_stream(&body) {
            ProxyBody::Empty
        } else if announced.is_some() && waf.is_none() {
            ProxyBody::stream(body, route.max_body, stall)
        } else {
            match collect(body, route.max_body, stall, &self.shared.body_budget).await {
                Ok((bytes, held)) => {
                    _held = Some(held);
                    ProxyBody::Full(Some(bytes))
                }
                Err(e) => {
                    let reason = body_reason(&e);
                    return Ok(self.refuse(&rt, &facts, reason, &route.name, None).await);
                }
            }
        };
        if let Some(tx) = &mut waf {
            let bytes = match &body {
                ProxyBody::Full(Some(b)) => b.clone(),
                _ => Bytes::new(),
            };
            request::load_body(tx, &waf_headers, &bytes);
            if let Some(reason) = waf_stage::unreadable(tx, &route.waf) {
                self.waf_log(&facts, tx, reason.status());
                return Ok(self.refuse(&rt, &facts, reason, &route.name, None).await);
            }
        }
        if let Some(tx) = waf.take() {
            let heavy = tx.arguments() > HEAVY_ARGUMENTS || body_len(&body) > HEAVY_BODY_BYTES;
            let key = crate::netset::client_key(client, rt.config.ip_policy.ipv6_prefix);
            match self.run_phase(tx, 2, heavy, key).await {
                Ok(tx) => waf = Some(tx),
                Err(reason) => return Ok(self.refuse(&rt, &facts, reason, &route.name, None).await),
            }
        }
        if let Some(tx) = &mut waf {
            if let Some(reason) = waf_stage::unreadable(tx, &route.waf) {
                self.waf_log(&facts, tx, reason.status());
                return Ok(self.refuse(&rt, &facts, reason, &route.name, None).await);
            }
            if let Some(resp) = self.waf_verdict(&rt, &facts, tx, route, Reason::WafBlocked).await {
                return Ok(resp);
            }
        }

        self.prepare_upstream_request(&mut parts, client, trusted_peer, forwarded_for.as_deref(), host, request_id);
        match self.forward(route, parts, body).await {
            Ok((resp, backend)) => {
                let mut resp = match &mut waf {
                    Some(tx) => match self.waf_response(&rt, &facts, tx, route, resp).await {
                        Ok(r) => r,
                        Err(refused) => return Ok(refused),
                    },
                    None => resp.map(ResponseBody::Upstream),
                };
                strip_hop_by_hop(resp.headers_mut());
                route.headers.apply(resp.headers_mut(), https);
                if let Ok(v) = HeaderValue::from_str(request_id) {
                    resp.headers_mut().insert(X_REQUEST_ID.clone(), v);
                }
                let status = resp.status().as_u16();
                if (400..500).contains(&status) {
                    let points = rt.bans.config.client_error_score;
                    self.score(&rt, client, points, "client error from upstream").await;
                }
                if let Some(tx) = &mut waf {
                    self.waf_log(&facts, tx, status);
                }
                self.finish(&facts, status, Outcome2 { route: &route.name, upstream: &backend, reason: "" });
                Ok(resp)
            }
            Err(reason) => {
                if let Some(tx) = &mut waf {
                    self.waf_log(&facts, tx, reason.status());
                }
                Ok(self.refuse(&rt, &facts, reason, &route.name, None).await)
            }
        }
    }

    /// Runs a WAF phase: on this event loop when the request is small, on
    /// a blocking thread when it is `heavy` (many arguments, a large body),
    /// so that its rules never hold up the other connections this worker
    /// serves. One client (`key`: its address, or its IPv6 network) has at
    /// most one heavy inspection running or waiting for a thread; its
    /// others wait behind it ([`HeavyQueues`]), so one client cannot queue
    /// the others out of the threads. An error
    /// when the rules' thread failed: the request is then refused, never
    /// let through uninspected.
    async fn run_phase(&self, mut tx: Transaction, phase: u8, heavy: bool, key: IpAddr) -> Result<Transaction, Reason> {
        if !heavy {
            tx.run_phase(phase);
            return Ok(tx);
        }
        let _turn = self.shared.waf_heavy.turn(key).await.ok_or(Reason::WafBlocked)?;
        let _permit = self.shared.waf_permits.acquire().await.map_err(|_| Reason::WafBlocked)?;
        let ran = tokio::task::spawn_blocking(move || {
            tx.run_phase(phase);
            tx
        })
        .await;
        ran.map_err(|e| {
            tracing::error!(error = %e, phase, "WAF inspection failed; request refused");
            Reason::WafBlocked
        })
    }

    /// Phase 3 on the response head, phase 4 on its body (when its type is
    /// inspected): the response to send, or the refusal.
    async fn waf_response(
        &self,
        rt: &Arc<Runtime>,
        facts: &Facts,
        tx: &mut Transaction,
        route: &Route,
        resp: Response<Incoming>,
    ) -> Result<Response<ResponseBody>, Response<ResponseBody>> {
        let headers = waf_stage::headers_of(resp.headers());
        request::load_response_head(
            tx,
            &ResponseData { status: resp.status().as_u16(), protocol: version_text(resp.version()), headers: &headers },
        );
        tx.run_phase(3);
        if let Some(r) = self.waf_verdict(rt, facts, tx, route, Reason::WafResponseBlocked).await {
            return Err(r);
        }
        let content_type = resp.headers().get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok());
        let engine_reads_body = tx.mode() != rampart_waf::seclang::EngineMode::Off;
        if !engine_reads_body || !rt.waf.inspects_body_of(content_type) || !self.waf_has_phase(rt, 4) {
            return Ok(resp.map(ResponseBody::Upstream));
        }
        let (head, body) = resp.into_parts();
        let limit = rt.waf.response_body_limit;
        let (bytes, rest) = match read_prefix(body, limit, rt.limits.body_read_timeout.get()).await {
            Ok(r) => r,
            Err(e) => {
                tracing::debug!(error = %e, "upstream response body failed");
                self.waf_log(facts, tx, 502);
                return Err(self.refuse(rt, facts, Reason::UpstreamUnavailable, &route.name, None).await);
            }
        };
        request::load_response_body(tx, &bytes[..bytes.len().min(limit)]);
        tx.run_phase(4);
        if let Some(r) = self.waf_verdict(rt, facts, tx, route, Reason::WafResponseBlocked).await {
            return Err(r);
        }
        let body = match rest {
            Some(rest) => ResponseBody::Prefixed(Some(bytes), rest),
            None => ResponseBody::Full(Some(bytes)),
        };
        Ok(Response::from_parts(head, body))
    }

    fn waf_has_phase(&self, rt: &Runtime, phase: u8) -> bool {
        rt.waf.engine.as_ref().is_some_and(|e| e.has_phase(phase))
    }

    /// Turns the verdict of the phases run so far, when it refuses, into
    /// the response (logged, counted, scored).
    async fn waf_verdict(
        &self,
        rt: &Arc<Runtime>,
        facts: &Facts,
        tx: &mut Transaction,
        route: &Route,
        reason: Reason,
    ) -> Option<Response<ResponseBody>> {
        let (status, extra) = match tx.verdict() {
            Verdict::Pass | Verdict::Allow => return None,
            Verdict::Deny(s) => (*s, None),
            Verdict::Drop => (403, None),
            Verdict::Redirect(url) => {
                let mut h = HeaderMap::new();
                h.insert(header::LOCATION, HeaderValue::from_str(url).ok()?);
                (302, Some(h))
            }
        };
        self.waf_log(facts, tx, status);
        Some(self.refuse_with(rt, facts, reason, &route.name, extra, Some(status)).await)
    }

    /// Phase 5, then the log lines and events of every logged match.
    fn waf_log(&self, facts: &Facts, tx: &mut Transaction, status: u16) {
        tx.run_phase(5);
        let logged: Vec<_> = tx.matches().iter().filter(|m| m.log).collect();
        if logged.is_empty() {
            return;
        }
        let masker = self.shared.audit.masker();
        let ts = rfc3339(SystemTime::now());
        let client = facts.client.to_string();
        let path = masker.mask_str(facts.uri.path());
        let host = masker.mask_str(&facts.host);
        let context = rampart_waf::log::Context {
            timestamp: &ts,
            client: &client,
            hostname: &host,
            uri: &path,
            unique_id: &facts.request_id,
        };
        let rt = self.shared.runtime.load();
        let mut lines = String::new();
        for m in &logged {
            // Only what the request put in the line can hold a secret: the
            // message and data (macros over request values) and the
            // variable's name; the rule's own text is left as it is. When
            // the matched variable is a secret's (a password field, a
            // cookie, an API key header), nothing of its value is kept.
            let mut masked = (*m).clone();
            masked.msg = masker.mask_str(&m.msg).into_owned();
            masked.variable = masker.mask_str(&m.variable).into_owned();
            masked.data = if rampart_audit::mask::is_secret_variable(&m.variable) {
                format!("[REDACTED:secret_variable] within {}", masked.variable)
            } else {
                masker.mask_str(&m.data).into_owned()
            };
            if rt.waf.log.is_some() {
                lines.push_str(&rampart_waf::log::line(&masked, Some(status), &context));
                lines.push('\n');
            }
            let mut event = Event::new("intrusion_detection", "waf-match")
                .outcome(if m.disruptive { Outcome::Failure } else { Outcome::Unknown })
                .source_ip(facts.client)
                .rule(m.id.to_string(), masked.msg.clone())
                .message(masked.data.clone())
                .label("waf.variable", masked.variable.clone())
                .label("waf.phase", m.phase.to_string());
            if !m.rule.tags.is_empty() {
                event = event.label("waf.tags", m.rule.tags.join(","));
            }
            if let Some(sev) = &m.rule.severity {
                event = event.label("waf.severity", sev.clone());
            }
            if m.disruptive {
                event = event.status(status);
            }
            event.host = Some(facts.host.clone());
            event.path = Some(path.to_string());
            event.method = Some(facts.method.to_string());
            event.request_id = Some(facts.request_id.clone());
            self.shared.event_gate.emit(&self.shared.audit, rt.ip_policy.client_key(facts.client), event);
        }
        if let Some(log) = &rt.waf.log {
            log.write(&lines);
        }
    }

    /// The stages before the upstream, in order. On refusal: the reason,
    /// the route name if known, and extra headers for the response.
    async fn admit<'r>(
        &self,
        rt: &'r Runtime,
        parts: &Parts,
        client: IpAddr,
        host: &str,
        https: bool,
    ) -> Result<&'r Route, (Reason, &'r str, Option<HeaderMap>)> {
        if let Some(ban) = self.shared.bans.banned(client, &rt.bans) {
            let secs = ban.until_ms.saturating_sub(crate::stage::bans::now_ms()).div_ceil(1000);
            let mut h = HeaderMap::new();
            h.insert(header::RETRY_AFTER, HeaderValue::from(secs));
            return Err((Reason::Banned, "-", Some(h)));
        }
        if client != self.conn.client {
            if let Some(r) = rt.ip_policy.check(client) {
                return Err((r, "-", None));
            }
        }
        if let Some(r) = rt.request_limits.check(parts) {
            return Err((r, "-", None));
        }
        // Judged on the path the backend will act on (`stage::path`).
        let strict = rt.config.limits.refuse_ambiguous_paths;
        let Ok(path) = crate::stage::path::normalize_with(parts.uri.path(), strict) else {
            return Err((Reason::AmbiguousPath, "-", None));
        };
        if let Some(r) = rt.probes.check(&path, parts.headers.get(header::USER_AGENT).map(|v| v.as_bytes())) {
            return Err((r, "-", None));
        }
        let Some(route) = rt.route(host, &path) else {
            return Err((Reason::NoRoute, "-", None));
        };
        for limit in &route.limits {
            let subject = match &limit.key {
                rampart_core::config::RateKey::Ip => Subject::Ip(client),
                rampart_core::config::RateKey::Route => Subject::Route(route.name.clone()),
                // The key is one line: with two, the upstream may read the
                // other one (a fresh value in the first would dodge the
                // limit while the app reads the real key in the second).
                rampart_core::config::RateKey::Header(h) => {
                    let mut lines = parts.headers.get_all(h.as_str()).iter();
                    match (lines.next().and_then(|v| v.to_str().ok()), lines.next()) {
                        (_, Some(_)) => return Err((Reason::Malformed, &route.name, None)),
                        (Some(v), None) => Subject::Text(v.into()),
                        (None, None) => Subject::Ip(client),
                    }
                }
            };
            let d = self.shared.rates.check(limit, subject).await;
            if !d.allowed {
                let mut h = HeaderMap::new();
                let retry = d.retry_after.as_secs_f64().ceil().max(1.0) as u64;
                h.insert(header::RETRY_AFTER, HeaderValue::from(retry));
                h.insert("ratelimit-limit", HeaderValue::from(limit.burst));
                h.insert("ratelimit-remaining", HeaderValue::from(0u32));
                h.insert("ratelimit-reset", HeaderValue::from(retry));
                return Err((Reason::RateLimited, &route.name, Some(h)));
            }
        }
        if route.csrf {
            if let Some(r) = csrf::check(parts, if https { "https" } else { "http" }) {
                return Err((r, &route.name, None));
            }
        }
        Ok(route)
    }

    /// Sends the request to the route's pool: round-robin, passive health,
    /// one retry on another address when the request was not sent and its
    /// body can be sent again.
    async fn forward(
        &self,
        route: &Route,
        head: Parts,
        body: ProxyBody,
    ) -> Result<(Response<Incoming>, String), Reason> {
        let pool = &route.pool;
        let timeout = pool.config.read_timeout.get();
        let attempts = if pool.backends.len() > 1 { 2 } else { 1 };
        let mut avoid = None;
        let mut head = Some(head);
        let mut body = Some(body);
        for attempt in 0..attempts {
            let i = pool.pick(avoid);
            let backend = &pool.backends[i];
            let (Some(h), Some(b)) = (head.take(), body.take()) else {
                break;
            };
            let retry = if attempt + 1 < attempts { b.replayable().map(|rb| (h.clone_head(), rb)) } else { None };
            let mut h = h;
            let mut uri = http::uri::Parts::default();
            uri.scheme = Some(backend.scheme.clone());
            uri.authority = Some(backend.authority.clone());
            uri.path_and_query =
                h.uri.path_and_query().cloned().or_else(|| Some(http::uri::PathAndQuery::from_static("/")));
            h.uri = Uri::from_parts(uri).map_err(|_| Reason::Malformed)?;
            let mut b = b;
            let sent = b.sent();
            let req = Request::from_parts(h, b);
            // The read timeout runs from the end of the request body: a slow
            // upload is the client's pace (bounded by the body stall timeout),
            // not the upstream's slowness.
            let deadline = async {
                if let Some(sent) = sent {
                    let _ = sent.await;
                }
                tokio::time::sleep(timeout).await;
            };
            let outcome = tokio::select! {
                r = pool.client().request(req) => Ok(r),
                () = deadline => Err(()),
            };
            match outcome {
                Ok(Ok(resp)) => {
                    if matches!(resp.status().as_u16(), 502..=504) {
                        self.upstream_down(pool, i);
                    } else {
                        pool.success(i);
                    }
                    return Ok((resp, backend.url.clone()));
                }
                Ok(Err(e)) => {
                    if let Some(be) = find_body_error(&e) {
                        return Err(body_reason(be));
                    }
                    self.shared.metrics.upstream_failure();
                    self.upstream_down(pool, i);
                    tracing::debug!(upstream = %backend.url, error = %e, "upstream request failed");
                    match retry {
                        Some((h, b)) if e.is_connect() => {
                            head = Some(h);
                            body = Some(b);
                            avoid = Some(i);
                        }
                        _ => return Err(Reason::UpstreamUnavailable),
                    }
                }
                Err(_) => {
                    self.shared.metrics.upstream_failure();
                    self.upstream_down(pool, i);
                    return Err(Reason::UpstreamTimeout);
                }
            }
        }
        Err(Reason::UpstreamUnavailable)
    }

    fn upstream_down(&self, pool: &crate::upstream::Pool, i: usize) {
        if pool.failure(i) {
            let b = &pool.backends[i];
            self.shared.audit.emit(
                Event::new("network", "upstream-ejected")
                    .outcome(Outcome::Failure)
                    .reason(format!("{} failures in a row", pool.config.passive.failures))
                    .label("upstream.pool", pool.name.to_string())
                    .label("upstream.address", b.url.clone()),
            );
        }
    }

    fn prepare_upstream_request(
        &self,
        parts: &mut Parts,
        client: IpAddr,
        trusted: bool,
        forwarded_for: Option<&str>,
        host: &str,
        request_id: &str,
    ) {
        let h = &mut parts.headers;
        strip_hop_by_hop(h);
        // One pass over the names first: most requests carry none of them.
        if !trusted && h.keys().any(|k| CLIENT_CLAIMS.contains(k)) {
            for name in &CLIENT_CLAIMS {
                h.remove(name);
            }
        }
        if let Ok(v) = HeaderValue::from_str(&client.to_string()) {
            h.insert(X_REAL_IP.clone(), v);
        }
        let peer = if trusted { self.conn.peer } else { client };
        let xff = match (trusted, forwarded_for) {
            (true, Some(prev)) => format!("{prev}, {peer}"),
            _ => client.to_string(),
        };
        if let Ok(v) = HeaderValue::from_str(&xff) {
            h.insert(X_FORWARDED_FOR.clone(), v);
        }
        if !trusted || !h.contains_key(&X_FORWARDED_PROTO) {
            h.insert(X_FORWARDED_PROTO.clone(), HeaderValue::from_static(if self.conn.tls { "https" } else { "http" }));
        }
        if !trusted || !h.contains_key(&X_FORWARDED_HOST) {
            if let Ok(v) = HeaderValue::from_str(host) {
                h.insert(X_FORWARDED_HOST.clone(), v);
            }
        }
        if let Ok(v) = HeaderValue::from_str(request_id) {
            h.insert(X_REQUEST_ID.clone(), v);
        }
        // HTTP/2 sends each cookie as its own field; an HTTP/1.1 upstream
        // expects one line, joined with "; " (RFC 9113 8.2.3).
        if parts.version == Version::HTTP_2 && h.get_all(header::COOKIE).iter().nth(1).is_some() {
            let joined: Vec<&[u8]> = h.get_all(header::COOKIE).iter().map(|v| v.as_bytes()).collect();
            if let Ok(v) = HeaderValue::from_bytes(&joined.join(&b"; "[..])) {
                h.insert(header::COOKIE, v);
            }
        }
        if !h.contains_key(header::HOST) {
            if let Some(a) = parts.uri.authority().and_then(|a| HeaderValue::from_str(a.as_str()).ok()) {
                h.insert(header::HOST, a);
            }
        }
        parts.version = Version::HTTP_11;
    }

    /// Adds `points` to the client's ban score.
    async fn score(&self, rt: &Arc<Runtime>, client: IpAddr, points: u32, why: &'static str) {
        if points == 0 || !rt.bans.config.enabled {
            return;
        }
        if self.shared.bans_shared {
            let bans = self.shared.bans.clone();
            let rt = rt.clone();
            tokio::spawn(async move { bans.offend(client, points, why, &rt.bans).await });
        } else {
            self.shared.bans.offend(client, points, why, &rt.bans).await;
        }
    }

    /// Turns a refusal into a response, an event, a metric and ban points.
    async fn refuse(
        &self,
        rt: &Arc<Runtime>,
        facts: &Facts,
        reason: Reason,
        route: &str,
        extra: Option<HeaderMap>,
    ) -> Response<ResponseBody> {
        self.refuse_with(rt, facts, reason, route, extra, None).await
    }

    /// [`Handler::refuse`] with a status other than the reason's own (a
    /// WAF rule's `status:`).
    async fn refuse_with(
        &self,
        rt: &Arc<Runtime>,
        facts: &Facts,
        reason: Reason,
        route: &str,
        extra: Option<HeaderMap>,
        status: Option<u16>,
    ) -> Response<ResponseBody> {
        let (client, request_id) = (facts.client, facts.request_id.as_str());
        self.shared.metrics.rejection(reason);
        let status = StatusCode::from_u16(status.unwrap_or(reason.status())).unwrap_or(StatusCode::FORBIDDEN);
        let c = &rt.bans.config;
        let points = match reason.offense() {
            Offense::Limit => c.limit_score,
            Offense::Probe => c.probe_score,
            Offense::Scanner => c.scanner_score,
            Offense::Waf => rt.waf.ban_score,
            Offense::None => 0,
        };
        // A banned client's refusals are events too (through the gate: the
        // first few one by one, the rest counted), never ban points.
        {
            let mut event = Event::new("web", "request-rejected")
                .outcome(Outcome::Failure)
                .reason(reason.as_str())
                .source_ip(client)
                .status(status.as_u16())
                .rule(format!("gateway.{}", reason.as_str()), route);
            event.host = Some(facts.host.clone());
            event.path = Some(facts.uri.path().to_string());
            event.method = Some(facts.method.to_string());
            event.request_id = Some(facts.request_id.clone());
            event.user_agent = facts.user_agent().map(str::to_string);
            self.shared.event_gate.emit(&self.shared.audit, rt.ip_policy.client_key(client), event);
            self.score(rt, client, points, reason.as_str()).await;
        }
        let text = format!(
            "{} {}\nrefused by rampart: {}\nrequest id: {}\n",
            status.as_u16(),
            status.canonical_reason().unwrap_or(""),
            reason.as_str().replace('_', " "),
            request_id
        );
        let mut resp = Response::new(ResponseBody::text(Bytes::from(text)));
        *resp.status_mut() = status;
        let h = resp.headers_mut();
        h.insert(header::CONTENT_TYPE, HeaderValue::from_static("text/plain; charset=utf-8"));
        h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
        if let Ok(v) = HeaderValue::from_str(request_id) {
            h.insert(X_REQUEST_ID.clone(), v);
        }
        if let Some(extra) = extra {
            h.extend(extra);
        }
        if matches!(reason, Reason::BodyTooLarge | Reason::BodyTimeout | Reason::Malformed) {
            h.insert(header::CONNECTION, HeaderValue::from_static("close"));
        }
        if let Some(route) = rt.routes.iter().find(|r| &*r.name == route) {
            route.headers.apply(resp.headers_mut(), facts.https);
        }
        self.finish(facts, status.as_u16(), Outcome2 { route, upstream: "-", reason: reason.as_str() });
        resp
    }

    /// Metrics and the access-log line of a finished request.
    fn finish(&self, facts: &Facts, status: u16, o: Outcome2<'_>) {
        let elapsed = facts.start.elapsed();
        self.shared.metrics.response(status, elapsed);
        if let Some(log) = &self.shared.access_log {
            let ts = rfc3339(SystemTime::now());
            // The access log is not encrypted: what it keeps of the request
            // goes through the audit log's masking first.
            let masker = self.shared.audit.masker();
            let path = masker.mask_str(facts.uri.path());
            let host = masker.mask_str(&facts.host);
            let user_agent = masker.mask_str(facts.user_agent().unwrap_or(""));
            log.write(
                Entry {
                    timestamp: &ts,
                    client: facts.client,
                    method: facts.method.as_str(),
                    host: &host,
                    path: &path,
                    status,
                    duration: elapsed,
                    request_id: &facts.request_id,
                    route: o.route,
                    upstream: o.upstream,
                    user_agent: &user_agent,
                    reason: o.reason,
                }
                .to_line(),
            );
        }
    }
}

/// Copies a request head (method, URI, version, headers), which `Parts`
/// cannot do itself because of its extensions.
trait CloneHead {
    fn clone_head(&self) -> Parts;
}

impl CloneHead for Parts {
    fn clone_head(&self) -> Parts {
        let (mut p, ()) = Request::new(()).into_parts();
        p.method = self.method.clone();
        p.uri = self.uri.clone();
        p.version = self.version;
        p.headers = self.headers.clone();
        p
    }
}

fn strip_hop_by_hop(h: &mut HeaderMap) {
    // One pass over the names first: most messages carry none of these,
    // and comparing standard names is cheaper than hashing eight lookups.
    if !h.keys().any(|k| HOP_BY_HOP.contains(k)) {
        return;
    }
    if let Some(conn) = h.get(header::CONNECTION).and_then(|v| v.to_str().ok()).map(str::to_string) {
        for name in conn.split(',') {
            if let Ok(n) = HeaderName::from_bytes(name.trim().to_ascii_lowercase().as_bytes()) {
                h.remove(n);
            }
        }
    }
    for name in &HOP_BY_HOP {
        if h.contains_key(name) {
            h.remove(name);
        }
    }
}

/// All lines of a header joined with ", ", or `None` when absent or not
/// text.
fn joined(h: &HeaderMap, name: &HeaderName) -> Option<String> {
    let mut out: Option<String> = None;
    for v in h.get_all(name) {
        let v = v.to_str().ok()?;
        match &mut out {
            Some(s) => {
                s.push_str(", ");
                s.push_str(v);
            }
            None => out = Some(v.to_string()),
        }
    }
    out
}

/// The request target as the rules see it: origin form (`/p?q`), or the
/// whole URI when the client sent an absolute one.
///
/// An HTTP/2 request always has a scheme and authority (its `:scheme` and
/// `:authority`), but its target is `:path`: the origin form. Showing the
/// rules `https://host/p` instead would look like a URL smuggled into the
/// request (CRS 931131, 934110) for every browser request.
fn waf_uri(uri: &Uri, version: Version) -> String {
    if uri.scheme().is_some() && version != Version::HTTP_2 {
        uri.to_string()
    } else {
        uri.path_and_query().map_or_else(|| "/".to_string(), |p| p.as_str().to_string())
    }
}

fn version_text(v: Version) -> &'static str {
    match v {
        Version::HTTP_09 => "HTTP/0.9",
        Version::HTTP_10 => "HTTP/1.0",
        Version::HTTP_2 => "HTTP/2.0",
        Version::HTTP_3 => "HTTP/3.0",
        _ => "HTTP/1.1",
    }
}

/// Gives the head one `Host` header that every later reader (the WAF's
/// rules, routing, the upstream) sees alike. HTTP/2 carries the host in
/// `:authority` (RFC 9113 8.3.1), which becomes `Host`; a `Host` that
/// names another host than `:authority`, or several `Host` headers (RFC
/// 9112 3.2), make the request malformed.
fn settle_host(parts: &mut Parts) -> Result<(), Reason> {
    let mut hosts = parts.headers.get_all(header::HOST).iter();
    let first = hosts.next().cloned();
    if hosts.next().is_some() {
        return Err(Reason::Malformed);
    }
    // One host and port: no list (`a, b`), no userinfo, no path, no blanks.
    let bad =
        |v: &[u8]| v.iter().any(|c| matches!(c, b',' | b'@' | b'/' | b'\\' | b'?' | b'#') || c.is_ascii_whitespace());
    if first.as_ref().is_some_and(|h| bad(h.as_bytes())) {
        return Err(Reason::Malformed);
    }
    if parts.version != Version::HTTP_2 {
        return Ok(());
    }
    let Some(authority) = parts.uri.authority() else { return Ok(()) };
    match first {
        Some(h) if !h.as_bytes().eq_ignore_ascii_case(authority.as_str().as_bytes()) => Err(Reason::Malformed),
        Some(_) => Ok(()),
        None => {
            if bad(authority.as_str().as_bytes()) {
                return Err(Reason::Malformed);
            }
            let v = HeaderValue::from_str(authority.as_str()).map_err(|_| Reason::Malformed)?;
            parts.headers.insert(header::HOST, v);
            Ok(())
        }
    }
}

/// The host the client asked for, without port.
fn host_of(parts: &Parts) -> &str {
    let raw = parts
        .headers
        .get(header::HOST)
        .and_then(|v| v.to_str().ok())
        .or_else(|| parts.uri.authority().map(|a| a.as_str()))
        .unwrap_or("");
    strip_port(raw)
}

fn strip_port(host: &str) -> &str {
    if let Some(rest) = host.strip_prefix('[') {
        return rest.split(']').next().unwrap_or("");
    }
    host.rsplit_once(':').filter(|(_, p)| p.bytes().all(|b| b.is_ascii_digit())).map_or(host, |(h, _)| h)
}

/// A request id: the trusted proxy's, when it sent a sane one, or 128
/// random bits in hex.
fn request_id(h: &HeaderMap, trusted: bool) -> String {
    if trusted {
        if let Some(v) = h.get(&X_REQUEST_ID).and_then(|v| v.to_str().ok()) {
            if !v.is_empty()
                && v.len() <= 128
                && v.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_' || b == b'.')
            {
                return v.to_string();
            }
        }
    }
    format!("{:032x}", fastrand::u128(..))
}

fn redirect_to_https(parts: &Parts, host: &str, port: Option<u16>) -> Response<ResponseBody> {
    let authority = match port {
        Some(443) | None => host.to_string(),
        Some(p) if host.contains(':') => format!("[{host}]:{p}"),
        Some(p) => format!("{host}:{p}"),
    };
    let pq = parts.uri.path_and_query().map_or("/", |p| p.as_str());
    let location = format!("https://{authority}{pq}");
    let mut resp = Response::new(ResponseBody::empty());
    match HeaderValue::from_str(&location) {
        Ok(v) if !host.is_empty() => {
            *resp.status_mut() = StatusCode::PERMANENT_REDIRECT;
            resp.headers_mut().insert(header::LOCATION, v);
        }
        _ => *resp.status_mut() = StatusCode::BAD_REQUEST,
    }
    resp
}

fn find_body_error<'a>(e: &'a (dyn std::error::Error + 'static)) -> Option<&'a BodyError> {
    let mut cur: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(err) = cur {
        if let Some(b) = err.downcast_ref::<BodyError>() {
            return Some(b);
        }
        cur = err.source();
    }
    None
}

fn body_reason(e: &BodyError) -> Reason {
    match e {
        BodyError::TooLarge(_) => Reason::BodyTooLarge,
        BodyError::Stalled(_) => Reason::BodyTimeout,
        BodyError::Client(_) => Reason::Malformed,
        BodyError::Overloaded => Reason::BufferFull,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn http2_authority_becomes_the_host_header() {
        let mut p =
            Request::get("https://example.com:8443/x").version(Version::HTTP_2).body(()).unwrap().into_parts().0;
        settle_host(&mut p).unwrap();
        assert_eq!(p.headers[header::HOST], "example.com:8443");
        let p = Request::get("https://a.example/").version(Version::HTTP_2).header("host", "b.example");
        let mut p = p.body(()).unwrap().into_parts().0;
        assert_eq!(settle_host(&mut p), Err(Reason::Malformed));
        let mut p = Request::get("/").header("host", "a").header("host", "b").body(()).unwrap().into_parts().0;
        assert_eq!(settle_host(&mut p), Err(Reason::Malformed));
        let mut p = Request::get("/").header("host", "a").body(()).unwrap().into_parts().0;
        assert_eq!(settle_host(&mut p), Ok(()));
        for h in ["127.0.0.1, evil.example", "user:pw@a.example", "a.example/x", "a b"] {
            let mut p = Request::get("/").header("host", h).body(()).unwrap().into_parts().0;
            assert_eq!(settle_host(&mut p), Err(Reason::Malformed), "{h}");
        }
        let p = Request::get("https://user:pw@a.example/").version(Version::HTTP_2);
        let mut p = p.body(()).unwrap().into_parts().0;
        assert_eq!(settle_host(&mut p), Err(Reason::Malformed));
    }

    #[test]
    fn host_without_port() {
        assert_eq!(strip_port("example.com:8080"), "example.com");
        assert_eq!(strip_port("example.com"), "example.com");
        assert_eq!(strip_port("[::1]:443"), "::1");
        assert_eq!(strip_port("[::1]"), "::1");
    }

    #[test]
    fn hop_by_hop_headers_and_connection_tokens_are_removed() {
        let mut h = HeaderMap::new();
        h.insert("connection", HeaderValue::from_static("keep-alive, x-secret"));
        h.insert("x-secret", HeaderValue::from_static("1"));
        h.insert("upgrade", HeaderValue::from_static("websocket"));
        h.insert("x-keep", HeaderValue::from_static("1"));
        strip_hop_by_hop(&mut h);
        assert_eq!(h.len(), 1);
        assert!(h.contains_key("x-keep"));
    }

    #[test]
    fn request_ids_are_random_unless_a_trusted_proxy_sent_one() {
        let mut h = HeaderMap::new();
        h.insert("x-request-id", HeaderValue::from_static("abc-123"));
        assert_eq!(request_id(&h, true), "abc-123");
        let a = request_id(&h, false);
        assert_eq!(a.len(), 32);
        assert_ne!(a, request_id(&h, false));
        h.insert("x-request-id", HeaderValue::from_static("bad id with spaces"));
        assert_ne!(request_id(&h, true), "bad id with spaces");
    }
}
