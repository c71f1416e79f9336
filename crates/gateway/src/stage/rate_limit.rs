//! Rate limiting with GCRA (the generic cell rate algorithm): `rate`
//! requests per `per`, with bursts of up to `burst` at once.
//!
//! GCRA keeps one number per key, the theoretical arrival time (TAT) of the
//! next request. A request at `now` moves it to `max(TAT, now) + T`, where
//! `T = per / rate`, and is allowed while the new TAT is at most
//! `now + burst * T`. So `burst` requests pass at once, then one every `T`.
//!
//! Counters live in memory, or in Redis when `redis.url` is set, so all
//! gateway replicas share them. Redis runs the same arithmetic in one Lua
//! script against its own clock. If Redis cannot be reached, requests are
//! allowed (fail open) and the failure is logged: a cache outage must not
//! take the site down.
//!
//! Limits keyed by client address count an IPv6 client by its network of
//! `ip_policy.ipv6_prefix` bits (see [`client_key`]): rotating through the
//! addresses of one /64 does not buy more requests.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rampart_core::config::{RateKey, RateLimit};

use crate::netset::client_key;
use crate::stage::conn_limit::lock;

const SHARDS: usize = 32;
/// Entries a shard may hold before expired ones are swept inline.
const SWEEP_AT: usize = 50_000;

/// One configured limit, ready to use.
#[derive(Clone, Debug)]
pub struct Limit {
    /// Name from `[rate_limits.NAME]`.
    pub name: Arc<str>,
    /// What is counted.
    pub key: RateKey,
    /// Emission interval `T`, in microseconds.
    pub interval_us: u64,
    /// Burst size.
    pub burst: u32,
    /// `ip_policy.ipv6_prefix`: IPv6 clients count by network.
    pub v6_prefix: u8,
}

impl Limit {
    /// Compiles `[rate_limits.NAME]` (already validated); `v6_prefix` is
    /// `ip_policy.ipv6_prefix`.
    pub fn build(name: &str, c: &RateLimit, v6_prefix: u8) -> Self {
        let interval_us = (c.per.get().as_micros() as u64 / u64::from(c.rate.max(1))).max(1);
        let key = c.parsed_key().unwrap_or(RateKey::Ip);
        Limit { name: name.into(), key, interval_us, burst: c.burst().max(1), v6_prefix }
    }
}

/// The counted thing of one request.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Subject {
    /// A client address.
    Ip(IpAddr),
    /// A route, all clients together.
    Route(Arc<str>),
    /// A header's value (an API key).
    Text(Box<str>),
}

impl Subject {
    /// What is counted: a client address becomes its [`client_key`].
    fn keyed(self, limit: &Limit) -> Subject {
        match self {
            Subject::Ip(ip) => Subject::Ip(client_key(ip, limit.v6_prefix)),
            other => other,
        }
    }

    fn redis_part(&self) -> String {
        match self {
            Subject::Ip(ip) => format!("ip:{ip}"),
            Subject::Route(r) => format!("route:{r}"),
            Subject::Text(t) => format!("h:{t}"),
        }
    }
}

/// The outcome of one check.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Decision {
    /// Whether the request may go on.
    pub allowed: bool,
    /// Requests left in the current burst.
    pub remaining: u32,
    /// When refused: how long until one request would pass.
    pub retry_after: Duration,
    /// How long until the burst is whole again.
    pub reset: Duration,
}

impl Decision {
    fn from_tat(allowed: bool, new_tat: u64, now: u64, limit: &Limit) -> Self {
        let tol = limit.interval_us * u64::from(limit.burst);
        let used = new_tat.saturating_sub(now);
        let remaining = (tol.saturating_sub(used) / limit.interval_us) as u32;
        let retry_after = if allowed { 0 } else { used.saturating_sub(tol) };
        Decision {
            allowed,
            remaining,
            retry_after: Duration::from_micros(retry_after),
            reset: Duration::from_micros(used),
        }
    }
}

/// The GCRA step shared by memory and the tests: returns the decision and
/// the TAT to store (unchanged when refused).
pub fn gcra(tat: u64, now: u64, limit: &Limit) -> (Decision, u64) {
    let new_tat = tat.max(now) + limit.interval_us;
    let tol = limit.interval_us * u64::from(limit.burst);
    if new_tat - now > tol {
        (Decision::from_tat(false, new_tat, now, limit), tat)
    } else {
        (Decision::from_tat(true, new_tat, now, limit), new_tat)
    }
}

/// Where counters live.
pub enum Store {
    /// In this process.
    Memory(MemoryStore),
    /// In Redis, shared by every replica.
    Redis(RedisStore),
}

impl Store {
    /// Checks and counts one request of `subject` against `limit`.
    pub async fn check(&self, limit: &Limit, subject: Subject) -> Decision {
        let subject = subject.keyed(limit);
        match self {
            Store::Memory(m) => m.check(limit, subject),
            Store::Redis(r) => r.check(limit, &subject).await,
        }
    }

    /// Drops memory entries whose burst is whole again.
    pub fn sweep(&self) {
        if let Store::Memory(m) = self {
            m.sweep();
        }
    }
}

type MemKey = (Arc<str>, Subject);

/// Counters in this process, sharded to keep lock hold times tiny.
pub struct MemoryStore {
    start: Instant,
    shards: Vec<Mutex<HashMap<MemKey, u64>>>,
}

impl Default for MemoryStore {
    fn default() -> Self {
        MemoryStore { start: Instant::now(), shards: (0..SHARDS).map(|_| Mutex::default()).collect() }
    }
}

impl MemoryStore {
    fn now(&self) -> u64 {
        self.start.elapsed().as_micros() as u64
    }

    fn check(&self, limit: &Limit, subject: Subject) -> Decision {
        use std::hash::BuildHasher;
        let key = (limit.name.clone(), subject);
        let hash = std::hash::BuildHasherDefault::<std::collections::hash_map::DefaultHasher>::default().hash_one(&key);
        let shard = &self.shards[(hash as usize) % SHARDS];
        let now = self.now();
        let mut map = lock(shard);
        if map.len() >= SWEEP_AT {
            map.retain(|_, tat| *tat > now);
        }
        let tat = map.get(&key).copied().unwrap_or(0);
        let (decision, new_tat) = gcra(tat, now, limit);
        if decision.allowed {
            map.insert(key, new_tat);
        }
        decision
    }

    fn sweep(&self) {
        let now = self.now();
        for shard in &self.shards {
            lock(shard).retain(|_, tat| *tat > now);
        }
    }
}

/// GCRA in Redis: one round trip, Redis' clock, keys expire by themselves.
const GCRA_LUA: &str = r#"
local interval = tonumber(ARGV[1])
local burst = tonumber(ARGV[2])
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local tat = tonumber(redis.call('GET', KEYS[1]) or 0)
if tat < now then tat = now end
local new_tat = tat + interval
local tol = interval * burst
if new_tat - now > tol then
  return {0, new_tat - now}
end
redis.call('SET', KEYS[1], new_tat, 'PX', math.ceil((new_tat - now) / 1000) + 1)
return {1, new_tat - now}
"#;

/// Counters in Redis.
pub struct RedisStore {
    conn: redis::aio::ConnectionManager,
    prefix: String,
    script: redis::Script,
}

impl RedisStore {
    /// Uses `conn`; every key starts with `prefix`.
    pub fn new(conn: redis::aio::ConnectionManager, prefix: &str) -> Self {
        RedisStore { conn, prefix: prefix.to_string(), script: redis::Script::new(GCRA_LUA) }
    }

    async fn check(&self, limit: &Limit, subject: &Subject) -> Decision {
        let key = format!("{}rl:{}:{}", self.prefix, limit.name, subject.redis_part());
        let mut conn = self.conn.clone();
        let result: redis::RedisResult<(i64, i64)> =
            self.script.key(key).arg(limit.interval_us).arg(limit.burst).invoke_async(&mut conn).await;
        match result {
            Ok((allowed, used)) => {
                let now = 1_000_000_000u64;
                Decision::from_tat(allowed == 1, now + used.max(0) as u64, now, limit)
            }
            Err(e) => {
                tracing::warn!(error = %e, limit = %limit.name, "redis rate limit check failed; allowing (fail open)");
                Decision { allowed: true, remaining: limit.burst, retry_after: Duration::ZERO, reset: Duration::ZERO }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rampart_core::HumanDuration;

    fn limit(rate: u32, per_secs: u64, burst: u32) -> Limit {
        let c = RateLimit { key: "ip".into(), rate, per: HumanDuration::secs(per_secs), burst: Some(burst) };
        Limit::build("t", &c, 64)
    }

    #[test]
    fn burst_then_steady_rate() {
        let l = limit(10, 1, 5); // T = 100 ms
        let mut tat = 0;
        let now = 10_000_000;
        for i in 0..5 {
            let (d, t) = gcra(tat, now, &l);
            assert!(d.allowed, "request {i}");
            assert_eq!(d.remaining, 4 - i);
            tat = t;
        }
        let (d, _) = gcra(tat, now, &l);
        assert!(!d.allowed);
        assert_eq!(d.retry_after, Duration::from_millis(100));
        // One interval later exactly one more passes.
        let (d, t) = gcra(tat, now + 100_000, &l);
        assert!(d.allowed);
        let (d, _) = gcra(t, now + 100_000, &l);
        assert!(!d.allowed);
    }

    #[test]
    fn memory_store_counts_keys_separately() {
        let s = MemoryStore::default();
        let l = limit(1, 60, 2);
        let a = Subject::Ip("192.0.2.1".parse().unwrap());
        let b = Subject::Ip("192.0.2.2".parse().unwrap());
        assert!(s.check(&l, a.clone()).allowed);
        assert!(s.check(&l, a.clone()).allowed);
        assert!(!s.check(&l, a.clone()).allowed);
        assert!(s.check(&l, b).allowed);
        s.sweep();
        assert!(!s.check(&l, a).allowed, "sweep keeps live entries");
    }

    /// Issue 10, point 8: two addresses of one /64 share a bucket, in
    /// memory and in Redis; a mapped IPv4 address is its IPv4 client.
    #[tokio::test]
    async fn an_ipv6_network_shares_one_bucket() {
        let l = limit(1, 60, 2);
        let a = || Subject::Ip("2001:db8:5:6::1".parse().unwrap());
        let b = || Subject::Ip("2001:db8:5:6:a:b:c:d".parse().unwrap());
        let other = || Subject::Ip("2001:db8:5:7::1".parse().unwrap());
        let client = redis::Client::open("redis://127.0.0.1:6379/0").unwrap();
        let conn = redis::aio::ConnectionManager::new(client).await.expect("redis on 127.0.0.1:6379");
        let prefix = format!("rampart-test:{:016x}:", fastrand::u64(..));
        for store in [Store::Memory(MemoryStore::default()), Store::Redis(RedisStore::new(conn, &prefix))] {
            assert!(store.check(&l, a()).await.allowed);
            assert!(store.check(&l, b()).await.allowed);
            assert!(!store.check(&l, a()).await.allowed, "the /64's burst is spent");
            assert!(!store.check(&l, b()).await.allowed);
            assert!(store.check(&l, other()).await.allowed, "another /64 has its own");
            let v4 = Subject::Ip("192.0.2.1".parse().unwrap());
            let mapped = Subject::Ip("::ffff:192.0.2.1".parse().unwrap());
            assert!(store.check(&l, v4.clone()).await.allowed);
            assert!(store.check(&l, mapped).await.allowed);
            assert!(!store.check(&l, v4).await.allowed, "the mapped address counted as the IPv4 one");
        }
    }
}
