//! Automatic bans (intrusion prevention).
//!
//! Every refused or suspicious request adds points to its client's score
//! (limit violations, 4xx floods, probes, scanners); a client whose score
//! reaches `bans.threshold` within `bans.window` is banned for
//! `bans.duration`, times `repeat_multiplier` for each earlier ban still
//! remembered, up to `max_duration`. Bans are checked on every connection
//! and request, in memory: the check is one atomic load when nobody is
//! banned.
//!
//! A client is its address, except that IPv6 clients are their network of
//! `ip_policy.ipv6_prefix` bits (see [`client_key`]): scores, bans and
//! repeat counts belong to the whole /64, so rotating through its
//! addresses does not escape them. A ban's `ip` is that key.
//!
//! With `redis.url`, scores, ban counts and bans live in Redis, changed by
//! Lua scripts (so two replicas crossing the threshold together ban once),
//! and each replica keeps its in-memory copy current through a pub/sub
//! channel plus a periodic full sync.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use rampart_audit::AuditLog;
use rampart_core::config::Bans as Config;
use rampart_core::{Event, Kind, Outcome};
use serde::Serialize;

use crate::metrics::Metrics;
use crate::netset::{client_key, NetSet};
use crate::stage::conn_limit::lock;

/// A ban in force.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct Ban {
    /// The client: its address, or for IPv6 the first address of its
    /// network of `ip_policy.ipv6_prefix` bits.
    pub ip: IpAddr,
    /// End of the ban, milliseconds since the Unix epoch.
    pub until_ms: u64,
    /// How many times this client has been banned (within `bans.memory`).
    pub count: u32,
    /// Why.
    pub reason: String,
}

/// The ban settings of one configuration, compiled.
#[derive(Clone, Debug)]
pub struct BanPolicy {
    /// `[bans]` as configured.
    pub config: Config,
    exempt: NetSet,
    /// `ip_policy.ipv6_prefix`: IPv6 clients are scored and banned by
    /// network of this many bits.
    v6_prefix: u8,
}

impl BanPolicy {
    /// Compiles `[bans]`; `v6_prefix` is `ip_policy.ipv6_prefix`.
    pub fn build(config: &Config, v6_prefix: u8) -> Self {
        BanPolicy { config: config.clone(), exempt: NetSet::new(&config.exempt), v6_prefix }
    }

    /// The key `ip` is scored and banned by.
    pub fn key(&self, ip: IpAddr) -> IpAddr {
        client_key(ip, self.v6_prefix)
    }

    fn duration_for(&self, count: u32) -> Duration {
        let c = &self.config;
        let factor = u64::from(c.repeat_multiplier).saturating_pow(count.saturating_sub(1));
        let ms = (c.duration.get().as_millis() as u64).saturating_mul(factor);
        Duration::from_millis(ms.min(c.max_duration.get().as_millis() as u64).max(1))
    }
}

struct Score {
    points: u32,
    window_end_ms: u64,
}

/// A client's past bans, for the repeat count. Kept in the bans file with
/// the bans, so that a restart does not reset escalation.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, serde::Deserialize)]
struct History {
    bans: u32,
    last_ms: u64,
}

/// One client's [`History`] as the bans file stores it.
#[derive(Serialize, serde::Deserialize)]
struct SavedHistory {
    ip: IpAddr,
    #[serde(flatten)]
    history: History,
}

/// The bans file: the bans in force and the repeat history. Files of
/// earlier versions hold only the list of bans.
#[derive(Serialize, serde::Deserialize)]
#[serde(untagged)]
enum SavedBans {
    Current { bans: Vec<Ban>, history: Vec<SavedHistory> },
    BansOnly(Vec<Ban>),
}

/// The bans of this gateway (and, with Redis, of all its replicas).
pub struct BanList {
    bans: RwLock<HashMap<IpAddr, Ban>>,
    active: AtomicUsize,
    scores: Mutex<HashMap<IpAddr, Score>>,
    history: Mutex<HashMap<IpAddr, History>>,
    redis: Option<RedisBans>,
    audit: AuditLog,
    metrics: Arc<Metrics>,
    /// Without Redis, bans are kept in this file across restarts.
    file: Option<std::path::PathBuf>,
}

/// Milliseconds since the Unix epoch.
pub fn now_ms() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_millis() as u64).unwrap_or(0)
}

impl BanList {
    /// A ban list in memory, or shared through `redis` (`conn`, the Redis
    /// client for pub/sub, key prefix).
    pub fn new(audit: AuditLog, metrics: Arc<Metrics>, redis: Option<RedisBans>) -> Arc<Self> {
        Self::with_file(audit, metrics, redis, None)
    }

    /// Like [`BanList::new`]; without Redis, bans in force are also kept in
    /// `file` (JSON) so that a restart does not pardon anyone, and read
    /// back from it now.
    pub fn with_file(
        audit: AuditLog,
        metrics: Arc<Metrics>,
        redis: Option<RedisBans>,
        file: Option<std::path::PathBuf>,
    ) -> Arc<Self> {
        let file = file.filter(|_| redis.is_none());
        let list = Arc::new(BanList {
            bans: RwLock::default(),
            active: AtomicUsize::new(0),
            scores: Mutex::default(),
            history: Mutex::default(),
            redis,
            audit,
            metrics,
            file,
        });
        if let Some(f) = &list.file {
            match std::fs::read(f) {
                Ok(bytes) => match serde_json::from_slice::<SavedBans>(&bytes) {
                    Ok(saved) => {
                        let (bans, history) = match saved {
                            SavedBans::Current { bans, history } => (bans, history),
                            SavedBans::BansOnly(bans) => (bans, Vec::new()),
                        };
                        *lock(&list.history) = history.into_iter().map(|h| (h.ip, h.history)).collect();
                        let now = now_ms();
                        let mut map = list.bans.write().unwrap_or_else(|p| p.into_inner());
                        map.extend(bans.into_iter().filter(|b| b.until_ms > now).map(|b| (b.ip, b)));
                        list.active.store(map.len(), Ordering::Release);
                    }
                    Err(e) => {
                        tracing::warn!(file = %f.display(), error = %e, "saved bans unreadable; starting without them")
                    }
                },
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => {
                    tracing::warn!(file = %f.display(), error = %e, "saved bans unreadable; starting without them")
                }
            }
        }
        list
    }

    /// Writes the bans in force and the repeat history to the file
    /// (temporary file, then rename).
    fn save(&self) {
        let Some(f) = &self.file else { return };
        let history =
            lock(&self.history).iter().map(|(ip, h)| SavedHistory { ip: *ip, history: *h }).collect::<Vec<_>>();
        let json = serde_json::to_vec(&SavedBans::Current { bans: self.list(), history }).unwrap_or_default();
        if let Err(e) = rampart_core::private_fs::write_atomic(f, &json) {
            tracing::warn!(file = %f.display(), error = %e, "cannot save bans");
        }
    }

    /// The ban of `ip` (of its network, for IPv6), if one is in force.
    pub fn banned(&self, ip: IpAddr, policy: &BanPolicy) -> Option<Ban> {
        if self.active.load(Ordering::Acquire) == 0 {
            return None;
        }
        let key = policy.key(ip);
        let ban = {
            let bans = self.bans.read().unwrap_or_else(|p| p.into_inner());
            bans.get(&key).filter(|b| b.until_ms > now_ms()).cloned()
        };
        // An exempt address shares its network's key with others that are
        // not: never banned all the same.
        ban.filter(|_| !policy.exempt.contains(ip))
    }

    /// Every ban in force.
    pub fn list(&self) -> Vec<Ban> {
        let now = now_ms();
        let bans = self.bans.read().unwrap_or_else(|p| p.into_inner());
        let mut v: Vec<Ban> = bans.values().filter(|b| b.until_ms > now).cloned().collect();
        v.sort_by_key(|b| b.until_ms);
        v
    }

    /// Adds `points` to the score of `ip` for `why`; bans it when the score
    /// reaches the threshold.
    pub async fn offend(&self, ip: IpAddr, points: u32, why: &str, policy: &BanPolicy) {
        let c = &policy.config;
        if !c.enabled || points == 0 || policy.exempt.contains(ip) || self.banned(ip, policy).is_some() {
            return;
        }
        let key = policy.key(ip);
        let reached = match &self.redis {
            Some(r) => r.score(key, points, c.window.get()).await.is_some_and(|s| s >= c.threshold),
            None => {
                let now = now_ms();
                let mut scores = lock(&self.scores);
                let s = scores.entry(key).or_insert(Score { points: 0, window_end_ms: 0 });
                if s.window_end_ms <= now {
                    *s = Score { points: 0, window_end_ms: now + c.window.get().as_millis() as u64 };
                }
                s.points = s.points.saturating_add(points);
                let reached = s.points >= c.threshold;
                if reached {
                    scores.remove(&key);
                }
                reached
            }
        };
        if reached {
            let reason = format!(
                "score of {} reached within {} (last: {why})",
                c.threshold,
                rampart_core::HumanDuration(c.window.get())
            );
            self.ban(ip, None, &reason, policy).await;
        }
    }

    /// Bans `addr` (its network, for IPv6) for `duration`, or for the
    /// policy's duration for its repeat count when `None`. Returns the ban
    /// in force.
    pub async fn ban(&self, addr: IpAddr, duration: Option<Duration>, reason: &str, policy: &BanPolicy) -> Option<Ban> {
        let ip = policy.key(addr);
        let ban = match &self.redis {
            Some(r) => {
                let (created, ban) = r.ban(ip, duration, reason, policy).await?;
                if !created {
                    self.insert(ban.clone());
                    return Some(ban);
                }
                ban
            }
            None => {
                let now = now_ms();
                let count = {
                    let mut history = lock(&self.history);
                    let memory = policy.config.memory.get().as_millis() as u64;
                    // Forgotten past bans go now (the map is saved with every
                    // ban, so it must not grow without bound).
                    history.retain(|_, h| now.saturating_sub(h.last_ms) <= memory);
                    let h = history.entry(ip).or_insert(History { bans: 0, last_ms: 0 });
                    h.bans = h.bans.saturating_add(1);
                    h.last_ms = now;
                    h.bans
                };
                let d = duration.unwrap_or_else(|| policy.duration_for(count));
                Ban { ip, until_ms: now + d.as_millis() as u64, count, reason: reason.to_string() }
            }
        };
        self.insert(ban.clone());
        self.metrics.ban();
        let secs = ban.until_ms.saturating_sub(now_ms()) / 1000;
        tracing::warn!(client = %addr, banned = %ip, seconds = secs, count = ban.count, reason, "client banned");
        let mut event = Event::new("intrusion_detection", "client-banned")
            .kind(Kind::Alert)
            .outcome(Outcome::Success)
            .source_ip(addr)
            .reason(reason)
            .severity(5)
            .label("ban.duration_seconds", secs.to_string())
            .label("ban.count", ban.count.to_string());
        if ip.is_ipv6() {
            event = event.label("ban.network", format!("{ip}/{}", policy.v6_prefix));
        }
        self.audit.emit(event);
        Some(ban)
    }

    /// Lifts the ban of `ip` (of its network, for IPv6). Returns whether
    /// one was in force.
    pub async fn unban(&self, ip: IpAddr, policy: &BanPolicy) -> bool {
        let ip = policy.key(ip);
        let had_remote = match &self.redis {
            Some(r) => r.unban(ip).await,
            None => false,
        };
        let had = self.remove(ip) || had_remote;
        lock(&self.scores).remove(&ip);
        if had {
            self.audit
                .emit(Event::new("intrusion_detection", "client-unbanned").outcome(Outcome::Success).source_ip(ip));
        }
        had
    }

    fn insert(&self, ban: Ban) {
        {
            let mut bans = self.bans.write().unwrap_or_else(|p| p.into_inner());
            bans.insert(ban.ip, ban);
            self.active.store(bans.len(), Ordering::Release);
        }
        self.save();
    }

    fn remove(&self, ip: IpAddr) -> bool {
        let had = {
            let mut bans = self.bans.write().unwrap_or_else(|p| p.into_inner());
            let had = bans.remove(&ip).is_some_and(|b| b.until_ms > now_ms());
            self.active.store(bans.len(), Ordering::Release);
            had
        };
        self.save();
        had
    }

    /// Drops expired bans and scores.
    pub fn sweep(&self) {
        let now = now_ms();
        {
            let mut bans = self.bans.write().unwrap_or_else(|p| p.into_inner());
            bans.retain(|_, b| b.until_ms > now);
            self.active.store(bans.len(), Ordering::Release);
        }
        lock(&self.scores).retain(|_, s| s.window_end_ms > now);
    }

    /// Replaces the local copy with Redis' bans (the periodic full sync).
    pub async fn sync(&self) {
        let Some(r) = &self.redis else { return };
        let Some(remote) = r.all().await else { return };
        let mut bans = self.bans.write().unwrap_or_else(|p| p.into_inner());
        *bans = remote.into_iter().map(|b| (b.ip, b)).collect();
        self.active.store(bans.len(), Ordering::Release);
    }

    /// Follows the ban channel and syncs periodically, until `self` is the
    /// last reference. Returns at once without Redis.
    pub async fn follow(self: Arc<Self>, client: redis::Client) {
        let Some(r) = &self.redis else { return };
        let channel = r.channel();
        let weak = Arc::downgrade(&self);
        drop(self);
        let sync_weak = weak.clone();
        tokio::spawn(async move {
            loop {
                let Some(list) = sync_weak.upgrade() else {
                    return;
                };
                list.sync().await;
                list.sweep();
                drop(list);
                tokio::time::sleep(Duration::from_secs(5)).await;
            }
        });
        loop {
            if weak.strong_count() == 0 {
                return;
            }
            match client.get_async_pubsub().await {
                Ok(mut pubsub) => {
                    if pubsub.subscribe(&channel).await.is_ok() {
                        use futures_util::StreamExt;
                        let mut stream = pubsub.on_message();
                        while let Some(msg) = stream.next().await {
                            let Some(list) = weak.upgrade() else { return };
                            if let Ok(text) = msg.get_payload::<String>() {
                                list.apply_message(&text);
                            }
                        }
                    }
                }
                Err(e) => tracing::warn!(error = %e, "redis ban channel unavailable; retrying"),
            }
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
    }

    fn apply_message(&self, text: &str) {
        let mut parts = text.splitn(5, ' ');
        match (parts.next(), parts.next().and_then(|s| s.parse::<IpAddr>().ok())) {
            (Some("ban"), Some(ip)) => {
                let until_ms = parts.next().and_then(|s| s.parse().ok()).unwrap_or(0);
                let count = parts.next().and_then(|s| s.parse().ok()).unwrap_or(1);
                let reason = parts.next().unwrap_or("").to_string();
                self.insert(Ban { ip, until_ms, count, reason });
            }
            (Some("unban"), Some(ip)) => {
                self.remove(ip);
            }
            _ => tracing::debug!(message = text, "ignored malformed ban message"),
        }
    }
}

const SCORE_LUA: &str = r#"
local v = redis.call('INCRBY', KEYS[1], ARGV[1])
if v == tonumber(ARGV[1]) then redis.call('PEXPIRE', KEYS[1], ARGV[2]) end
return v
"#;

const BAN_LUA: &str = r#"
local fixed = tonumber(ARGV[1])
local base = tonumber(ARGV[2])
local mult = tonumber(ARGV[3])
local max = tonumber(ARGV[4])
local memory = tonumber(ARGV[5])
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
if fixed == 0 and redis.call('EXISTS', KEYS[1]) == 1 then
  local v = redis.call('GET', KEYS[1])
  return {0, v}
end
local n = redis.call('INCR', KEYS[2])
redis.call('PEXPIRE', KEYS[2], memory)
local d = fixed
if d == 0 then
  d = base * (mult ^ (n - 1))
  if d > max then d = max end
end
d = math.floor(d)
if d < 1 then d = 1 end
local value = string.format('%d %d %s', now + d, n, ARGV[6])
redis.call('SET', KEYS[1], value, 'PX', d)
redis.call('DEL', KEYS[3])
redis.call('PUBLISH', ARGV[7], 'ban ' .. ARGV[8] .. ' ' .. value)
return {1, value}
"#;

/// Ban state in Redis.
pub struct RedisBans {
    conn: redis::aio::ConnectionManager,
    prefix: String,
    score: redis::Script,
    ban: redis::Script,
}

impl RedisBans {
    /// Keys start with `prefix`.
    pub fn new(conn: redis::aio::ConnectionManager, prefix: &str) -> Self {
        RedisBans {
            conn,
            prefix: prefix.to_string(),
            score: redis::Script::new(SCORE_LUA),
            ban: redis::Script::new(BAN_LUA),
        }
    }

    fn channel(&self) -> String {
        format!("{}bans", self.prefix)
    }

    async fn score(&self, ip: IpAddr, points: u32, window: Duration) -> Option<u32> {
        let mut conn = self.conn.clone();
        let key = format!("{}score:{ip}", self.prefix);
        let r: redis::RedisResult<u32> =
            self.score.key(key).arg(points).arg(window.as_millis() as u64).invoke_async(&mut conn).await;
        r.map_err(|e| tracing::warn!(error = %e, "redis ban score failed")).ok()
    }

    async fn ban(&self, ip: IpAddr, fixed: Option<Duration>, reason: &str, policy: &BanPolicy) -> Option<(bool, Ban)> {
        let c = &policy.config;
        let mut conn = self.conn.clone();
        let reason = reason.replace(['\r', '\n'], " ");
        let r: redis::RedisResult<(i32, String)> = self
            .ban
            .key(format!("{}ban:{ip}", self.prefix))
            .key(format!("{}bancount:{ip}", self.prefix))
            .key(format!("{}score:{ip}", self.prefix))
            .arg(fixed.map_or(0, |d| d.as_millis().max(1) as u64))
            .arg(c.duration.get().as_millis() as u64)
            .arg(c.repeat_multiplier)
            .arg(c.max_duration.get().as_millis() as u64)
            .arg(c.memory.get().as_millis() as u64)
            .arg(&reason)
            .arg(self.channel())
            .arg(ip.to_string())
            .invoke_async(&mut conn)
            .await;
        let (created, value) = r.map_err(|e| tracing::warn!(error = %e, "redis ban failed")).ok()?;
        Some((created == 1, parse_value(ip, &value)?))
    }

    async fn unban(&self, ip: IpAddr) -> bool {
        let mut conn = self.conn.clone();
        let removed: redis::RedisResult<u32> = redis::cmd("DEL")
            .arg(format!("{}ban:{ip}", self.prefix))
            .arg(format!("{}score:{ip}", self.prefix))
            .query_async(&mut conn)
            .await;
        let _: redis::RedisResult<u32> =
            redis::cmd("PUBLISH").arg(self.channel()).arg(format!("unban {ip}")).query_async(&mut conn).await;
        removed.is_ok_and(|n| n > 0)
    }

    async fn all(&self) -> Option<Vec<Ban>> {
        let mut conn = self.conn.clone();
        let pattern = format!("{}ban:*", self.prefix);
        let mut cursor: u64 = 0;
        let mut keys: Vec<String> = Vec::new();
        loop {
            let (next, batch): (u64, Vec<String>) = redis::cmd("SCAN")
                .arg(cursor)
                .arg("MATCH")
                .arg(&pattern)
                .arg("COUNT")
                .arg(1000)
                .query_async(&mut conn)
                .await
                .map_err(|e| tracing::warn!(error = %e, "redis ban sync failed"))
                .ok()?;
            keys.extend(batch);
            cursor = next;
            if cursor == 0 {
                break;
            }
        }
        if keys.is_empty() {
            return Some(Vec::new());
        }
        let values: Vec<Option<String>> = redis::cmd("MGET").arg(&keys).query_async(&mut conn).await.ok()?;
        let strip = format!("{}ban:", self.prefix);
        Some(
            keys.iter()
                .zip(values)
                .filter_map(|(k, v)| parse_value(k.strip_prefix(&strip)?.parse().ok()?, &v?))
                .collect(),
        )
    }
}

/// Parses a stored ban: `UNTIL_MS COUNT REASON...`.
fn parse_value(ip: IpAddr, value: &str) -> Option<Ban> {
    let mut parts = value.splitn(3, ' ');
    let until_ms = parts.next()?.parse().ok()?;
    let count = parts.next()?.parse().ok()?;
    Some(Ban { ip, until_ms, count, reason: parts.next().unwrap_or("").to_string() })
}

#[cfg(test)]
mod tests {
    use super::*;
    use rampart_core::HumanDuration;

    fn list() -> (tempfile::TempDir, Arc<BanList>) {
        let dir = tempfile::tempdir().unwrap();
        let audit = AuditLog::open(dir.path()).unwrap();
        (dir, BanList::new(audit, Arc::new(Metrics::default()), None))
    }

    fn policy() -> BanPolicy {
        BanPolicy::build(&Config { threshold: 5, duration: HumanDuration::secs(60), ..Config::default() }, 64)
    }

    #[tokio::test]
    async fn threshold_bans_and_unban_lifts() {
        let (_d, bans) = list();
        let ip: IpAddr = "192.0.2.5".parse().unwrap();
        for _ in 0..4 {
            bans.offend(ip, 1, "test", &policy()).await;
        }
        assert!(bans.banned(ip, &policy()).is_none());
        bans.offend(ip, 1, "test", &policy()).await;
        let ban = bans.banned(ip, &policy()).expect("banned");
        assert_eq!(ban.count, 1);
        assert!(ban.until_ms > now_ms() + 55_000);
        assert!(bans.unban(ip, &policy()).await);
        assert!(bans.banned(ip, &policy()).is_none());
    }

    #[tokio::test]
    async fn repeat_offenders_get_longer_bans_up_to_the_cap() {
        let p = BanPolicy::build(
            &Config {
                duration: HumanDuration::secs(10),
                repeat_multiplier: 4,
                max_duration: HumanDuration::secs(100),
                ..Config::default()
            },
            64,
        );
        assert_eq!(p.duration_for(1), Duration::from_secs(10));
        assert_eq!(p.duration_for(2), Duration::from_secs(40));
        assert_eq!(p.duration_for(3), Duration::from_secs(100));
        assert_eq!(p.duration_for(60), Duration::from_secs(100));
        let (_d, bans) = list();
        let ip: IpAddr = "2001:db8::7".parse().unwrap();
        bans.ban(ip, None, "one", &p).await;
        bans.unban(ip, &p).await;
        let second = bans.ban(ip, None, "two", &p).await.unwrap();
        assert_eq!(second.count, 2);
    }

    #[tokio::test]
    async fn exempt_networks_are_never_banned() {
        let (_d, bans) = list();
        let p = BanPolicy::build(
            &Config { threshold: 1, exempt: vec!["192.0.2.0/24".parse().unwrap()], ..Config::default() },
            64,
        );
        bans.offend("192.0.2.9".parse().unwrap(), 10, "t", &p).await;
        assert!(bans.list().is_empty());
    }

    /// Issue 10, point 8: rotating through the addresses of one /64 does
    /// not escape the score or the ban.
    #[tokio::test]
    async fn an_ipv6_client_is_scored_and_banned_by_its_network() {
        let (_d, bans) = list();
        let p = policy();
        for i in 1..=5 {
            bans.offend(format!("2001:db8:1:2::{i}").parse().unwrap(), 1, "test", &p).await;
        }
        let ban = bans.banned("2001:db8:1:2:ffff::9".parse().unwrap(), &p).expect("the /64 is banned");
        assert_eq!(ban.ip, "2001:db8:1:2::".parse::<IpAddr>().unwrap());
        assert!(bans.banned("2001:db8:1:3::1".parse().unwrap(), &p).is_none(), "the next /64 is not");
        // A mapped IPv4 address is that IPv4 client.
        bans.ban("::ffff:192.0.2.8".parse().unwrap(), None, "t", &p).await;
        assert!(bans.banned("192.0.2.8".parse().unwrap(), &p).is_some());
        // Lifting the ban by any address of the network lifts it.
        assert!(bans.unban("2001:db8:1:2::77".parse().unwrap(), &p).await);
        assert!(bans.banned("2001:db8:1:2::1".parse().unwrap(), &p).is_none());
        // With /128, addresses are clients of their own.
        let p128 = BanPolicy::build(&p.config, 128);
        bans.ban("2001:db8:9::1".parse().unwrap(), None, "t", &p128).await;
        assert!(bans.banned("2001:db8:9::2".parse().unwrap(), &p128).is_none());
        assert!(bans.banned("2001:db8:9::1".parse().unwrap(), &p128).is_some());
    }

    /// Issue 10, point 8, with Redis: the score, the ban and the repeat
    /// count are the network's there too.
    #[tokio::test]
    async fn an_ipv6_client_is_banned_by_its_network_in_redis() {
        let dir = tempfile::tempdir().unwrap();
        let audit = AuditLog::open(dir.path()).unwrap();
        let client = redis::Client::open("redis://127.0.0.1:6379/0").unwrap();
        let conn = redis::aio::ConnectionManager::new(client).await.expect("redis on 127.0.0.1:6379");
        let prefix = format!("rampart-test:{:016x}:", fastrand::u64(..));
        let redis = RedisBans::new(conn, &prefix);
        let bans = BanList::new(audit, Arc::new(Metrics::default()), Some(redis));
        let p = policy();
        for i in 1..=5 {
            bans.offend(format!("2001:db8:4:5::{i}").parse().unwrap(), 1, "test", &p).await;
        }
        let ban = bans.banned("2001:db8:4:5::99".parse().unwrap(), &p).expect("the /64 is banned");
        assert_eq!(ban.ip, "2001:db8:4:5::".parse::<IpAddr>().unwrap());
        let remote = bans.redis.as_ref().unwrap().all().await.unwrap();
        assert_eq!(remote.iter().map(|b| b.ip).collect::<Vec<_>>(), vec![ban.ip]);
        assert!(bans.unban("2001:db8:4:5::1234".parse().unwrap(), &p).await);
        let again = bans.ban("2001:db8:4:5::7".parse().unwrap(), None, "t", &p).await.unwrap();
        assert_eq!(again.count, 2, "the repeat count is the network's");
        bans.unban(again.ip, &p).await;
    }

    /// Issue 10, point 13: the repeat count is saved with the bans, so a
    /// restart does not reset the escalation.
    #[tokio::test]
    async fn the_repeat_count_survives_a_restart() {
        let dir = tempfile::tempdir().unwrap();
        let audit = AuditLog::open(dir.path()).unwrap();
        let file = dir.path().join("bans.json");
        let open = || BanList::with_file(audit.clone(), Arc::new(Metrics::default()), None, Some(file.clone()));
        let p = policy();
        let ip: IpAddr = "192.0.2.70".parse().unwrap();
        let bans = open();
        assert_eq!(bans.ban(ip, None, "one", &p).await.unwrap().count, 1);
        bans.unban(ip, &p).await;
        drop(bans);
        let bans = open();
        let second = bans.ban(ip, None, "two", &p).await.unwrap();
        assert_eq!(second.count, 2, "the first ban is remembered across the restart");
        assert!(second.until_ms > now_ms() + 4 * 60_000 - 5_000, "and the second lasts four times longer");
        drop(bans);
        // The ban in force and the history both come back.
        let bans = open();
        assert_eq!(bans.banned(ip, &p).map(|b| b.count), Some(2));
        assert_eq!(bans.ban(ip, None, "three", &p).await.unwrap().count, 3);
    }

    /// Files written before the history was kept hold only the bans.
    #[test]
    fn a_bans_file_without_history_is_still_read() {
        let dir = tempfile::tempdir().unwrap();
        let audit = AuditLog::open(dir.path()).unwrap();
        let file = dir.path().join("bans.json");
        let until = now_ms() + 60_000;
        std::fs::write(&file, format!(r#"[{{"ip":"192.0.2.71","until_ms":{until},"count":1,"reason":"old"}}]"#))
            .unwrap();
        let bans = BanList::with_file(audit, Arc::new(Metrics::default()), None, Some(file));
        assert_eq!(bans.banned("192.0.2.71".parse().unwrap(), &policy()).map(|b| b.reason), Some("old".into()));
    }

    #[test]
    fn messages_and_values_parse_defensively() {
        let (_d, bans) = list();
        bans.apply_message("ban 192.0.2.1 99999999999999 2 probe of /.env");
        assert_eq!(bans.list()[0].reason, "probe of /.env");
        bans.apply_message("unban 192.0.2.1");
        assert!(bans.list().is_empty());
        bans.apply_message("ban not-an-ip 1 1 x");
        bans.apply_message("");
        assert!(bans.list().is_empty());
        assert!(parse_value("192.0.2.1".parse().unwrap(), "x y").is_none());
    }
}
