//! Keeps a flood of refusals from flooding the audit log: each client gets
//! at most `PER_WINDOW` refusal events per `WINDOW`; the rest are counted
//! and reported in one `request-rejected-suppressed` event when the
//! window closes. Refusals of banned clients go through it too, so an
//! auditor sees that a banned client kept trying. Bans, reloads and other
//! events are never held back, and metrics still count every refusal.
//!
//! Callers pass the client's key (`IpPolicy::client_key`: an IPv6 client
//! is its network), so rotating addresses does not buy more events.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;

use rampart_audit::AuditLog;
use rampart_core::{Event, Outcome};

use crate::stage::bans::now_ms;
use crate::stage::conn_limit::lock;

/// Refusal events per client per window.
pub const PER_WINDOW: u32 = 20;
/// The window, in milliseconds.
pub const WINDOW_MS: u64 = 10_000;
const SHARDS: usize = 16;

#[derive(Clone, Copy)]
struct Slot {
    start_ms: u64,
    emitted: u32,
    suppressed: u32,
}

/// Per-client budgets of refusal events.
pub struct EventGate {
    shards: Vec<Mutex<HashMap<IpAddr, Slot>>>,
}

impl Default for EventGate {
    fn default() -> Self {
        EventGate { shards: (0..SHARDS).map(|_| Mutex::default()).collect() }
    }
}

fn shard(ip: IpAddr) -> usize {
    use std::hash::{BuildHasher, BuildHasherDefault};
    BuildHasherDefault::<std::collections::hash_map::DefaultHasher>::default().hash_one(ip) as usize % SHARDS
}

impl EventGate {
    /// Emits `event` for `client` unless its budget is spent (then counts
    /// it). Reports what a closed window suppressed first.
    pub fn emit(&self, audit: &AuditLog, client: IpAddr, event: Event) {
        let now = now_ms();
        let (pass, report) = {
            let mut map = lock(&self.shards[shard(client)]);
            let slot = map.entry(client).or_insert(Slot { start_ms: now, emitted: 0, suppressed: 0 });
            let mut report = None;
            if now.saturating_sub(slot.start_ms) >= WINDOW_MS {
                if slot.suppressed > 0 {
                    report = Some(*slot);
                }
                *slot = Slot { start_ms: now, emitted: 0, suppressed: 0 };
            }
            let pass = slot.emitted < PER_WINDOW;
            if pass {
                slot.emitted += 1;
            } else {
                slot.suppressed += 1;
            }
            (pass, report)
        };
        if let Some(s) = report {
            audit.emit(summary(client, s));
        }
        if pass {
            audit.emit(event);
        }
    }

    /// Reports and forgets windows that have closed.
    pub fn sweep(&self, audit: &AuditLog) {
        self.report(audit, false);
    }

    /// Reports every window with suppressed refusals now, closed or not
    /// (at shutdown: nothing counted is lost).
    pub fn flush(&self, audit: &AuditLog) {
        self.report(audit, true);
    }

    fn report(&self, audit: &AuditLog, all: bool) {
        let now = now_ms();
        for shard in &self.shards {
            let mut closed = Vec::new();
            lock(shard).retain(|ip, s| {
                let open = !all && now.saturating_sub(s.start_ms) < WINDOW_MS;
                if !open && s.suppressed > 0 {
                    closed.push((*ip, *s));
                }
                open
            });
            for (ip, s) in closed {
                audit.emit(summary(ip, s));
            }
        }
    }
}

fn summary(client: IpAddr, s: Slot) -> Event {
    Event::new("web", "request-rejected-suppressed")
        .outcome(Outcome::Failure)
        .source_ip(client)
        .reason(format!(
            "{} more refusals of this client within {} s were not logged one by one",
            s.suppressed,
            WINDOW_MS / 1000
        ))
        .label("suppressed", s.suppressed.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_flood_is_summarised_not_logged_event_by_event() {
        let dir = tempfile::tempdir().unwrap();
        let audit = AuditLog::open(dir.path()).unwrap();
        let gate = EventGate::default();
        let ip: IpAddr = "192.0.2.1".parse().unwrap();
        for _ in 0..500 {
            gate.emit(&audit, ip, Event::new("web", "request-rejected"));
        }
        gate.emit(&audit, "192.0.2.2".parse().unwrap(), Event::new("web", "request-rejected"));
        // Close the window by hand and sweep.
        for shard in &gate.shards {
            for s in lock(shard).values_mut() {
                s.start_ms = 0;
            }
        }
        gate.sweep(&audit);
        audit.flush();
        let keys = rampart_audit::Keys::load_or_create(audit.dir()).unwrap();
        let events = rampart_audit::read::all_events(audit.dir(), &keys);
        let rejected = events.iter().filter(|e| e["event"]["action"] == "request-rejected").count();
        assert_eq!(rejected, PER_WINDOW as usize + 1);
        let summary = events.iter().find(|e| e["event"]["action"] == "request-rejected-suppressed").unwrap();
        assert_eq!(summary["labels"]["suppressed"], "480");
    }
}
