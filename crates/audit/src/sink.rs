//! Sinks (docs/audit-log-format.md, section 10): each follows the log from
//! its persistent cursor and delivers events in order, at least once: the
//! cursor moves only after a delivery succeeded, so an outage of a sink
//! loses nothing; the events wait in the log.
//!
//! - `file`: JSON lines appended to a file (synced per batch).
//! - `syslog`: RFC 5424 messages over TCP with octet-counting framing
//!   (RFC 6587), facility "log audit" (13), the event as the message.

use std::io::Write;
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use serde_json::Value;

use crate::keys::Keys;
use crate::read::{self, Stored};

/// Where a sink delivers.
#[derive(Clone, Debug)]
pub enum Target {
    /// A JSON-lines file.
    File(PathBuf),
    /// A syslog receiver, `host:port`, over TCP.
    Syslog(String),
}

/// A configured sink.
#[derive(Clone, Debug)]
pub struct Sink {
    /// Its name (cursor file `sinks/NAME.cursor`).
    pub name: String,
    /// Its target.
    pub target: Target,
}

/// Events delivered per batch.
const BATCH: usize = 1000;

/// Starts one thread per sink, following the log in `audit_dir` until
/// `stop` is set.
pub fn spawn(audit_dir: &Path, sinks: Vec<Sink>, stop: Arc<AtomicBool>) -> std::io::Result<()> {
    let keys = Arc::new(Keys::load_or_create(audit_dir).map_err(std::io::Error::other)?);
    crate::keys::create_private_dir(&audit_dir.join("sinks"))?;
    for sink in sinks {
        let (dir, keys, stop) = (audit_dir.to_path_buf(), keys.clone(), stop.clone());
        std::thread::Builder::new()
            .name(format!("rampart-sink-{}", sink.name))
            .spawn(move || follow(&dir, &keys, sink, &stop))?;
    }
    Ok(())
}

/// The cursor file of a sink.
pub fn cursor_path(audit_dir: &Path, name: &str) -> PathBuf {
    audit_dir.join("sinks").join(format!("{name}.cursor"))
}

fn read_cursor(audit_dir: &Path, name: &str) -> u64 {
    std::fs::read_to_string(cursor_path(audit_dir, name)).ok().and_then(|s| s.trim().parse().ok()).unwrap_or(0)
}

fn follow(dir: &Path, keys: &Keys, sink: Sink, stop: &AtomicBool) {
    let mut cursor = read_cursor(dir, &sink.name);
    let mut conn: Option<TcpStream> = None;
    let mut backoff = Duration::from_millis(200);
    while !stop.load(Ordering::Relaxed) {
        let batch = read::events_from(dir, keys, cursor, BATCH);
        if batch.is_empty() {
            std::thread::sleep(Duration::from_millis(200));
            continue;
        }
        let result = match &sink.target {
            Target::File(path) => deliver_file(path, &batch),
            Target::Syslog(addr) => deliver_syslog(addr, &mut conn, &batch),
        };
        match result {
            Ok(()) => {
                cursor = batch.last().map_or(cursor, |s| s.index + 1);
                if let Err(e) =
                    crate::keys::write_private(&cursor_path(dir, &sink.name), format!("{cursor}\n").as_bytes())
                {
                    tracing::error!(sink = %sink.name, error = %e, "cannot save the sink cursor");
                }
                backoff = Duration::from_millis(200);
            }
            Err(e) => {
                conn = None;
                tracing::warn!(sink = %sink.name, error = %e, retry_in = ?backoff, "audit sink delivery failed; events wait in the log");
                std::thread::sleep(backoff);
                backoff = (backoff * 2).min(Duration::from_secs(30));
            }
        }
    }
}

fn deliver_file(path: &Path, batch: &[Stored]) -> std::io::Result<()> {
    let mut buf = Vec::new();
    for s in batch {
        serde_json::to_writer(&mut buf, &s.event)?;
        buf.push(b'\n');
    }
    // Created for its owner only: masked events are still the log's content.
    let mut f = crate::keys::private_file_options().create(true).append(true).open(path)?;
    f.write_all(&buf)?;
    f.sync_data()
}

fn deliver_syslog(addr: &str, conn: &mut Option<TcpStream>, batch: &[Stored]) -> std::io::Result<()> {
    if conn.is_none() {
        let s = TcpStream::connect(addr)?;
        s.set_write_timeout(Some(Duration::from_secs(10)))?;
        *conn = Some(s);
    }
    let host = hostname();
    let mut buf = Vec::new();
    for s in batch {
        let msg = rfc5424(&s.event, s.index, &host);
        buf.extend_from_slice(format!("{} ", msg.len()).as_bytes());
        buf.extend_from_slice(msg.as_bytes());
    }
    match conn.as_mut() {
        Some(c) => c.write_all(&buf).and_then(|()| c.flush()),
        None => Err(std::io::Error::other("not connected")),
    }
}

/// One RFC 5424 message: `<PRI>1 TIMESTAMP HOST rampart PID audit [meta] JSON`.
pub fn rfc5424(event: &Value, index: u64, host: &str) -> String {
    let severity = match (event["event"]["kind"].as_str(), event["event"]["outcome"].as_str()) {
        (Some("alert"), _) => 1,
        (_, Some("failure")) => 4,
        _ => 6,
    };
    let pri = 13 * 8 + severity;
    let ts = event["@timestamp"].as_str().unwrap_or("-");
    format!("<{pri}>1 {ts} {host} rampart {} audit [rampart@32473 index=\"{index}\"] {event}", std::process::id())
}

fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_string())
        .ok()
        .filter(|h| !h.is_empty() && h.bytes().all(|b| b.is_ascii_graphic()))
        .unwrap_or_else(|| "-".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc5424_header_and_severity() {
        let e = serde_json::json!({"@timestamp": "2026-01-01T00:00:00.000Z", "event": {"kind": "alert", "outcome": "success"}});
        let m = rfc5424(&e, 7, "gw1");
        assert!(m.starts_with("<105>1 2026-01-01T00:00:00.000Z gw1 rampart "), "{m}");
        assert!(m.contains("[rampart@32473 index=\"7\"] {"));
    }
}
