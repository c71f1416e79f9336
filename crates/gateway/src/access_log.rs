//! The JSON access log: one line a request, written by a thread of its own
//! so the request path only formats a line and queues it.

use std::io::{BufWriter, Write};
use std::path::Path;
use std::sync::mpsc::{self, SyncSender};
use std::time::Duration;

const QUEUE: usize = 65_536;

/// A handle to the access log writer.
#[derive(Clone)]
pub struct AccessLog {
    tx: SyncSender<String>,
}

impl AccessLog {
    /// Opens `path` for appending and starts the writer thread.
    pub fn open(path: &Path) -> std::io::Result<Self> {
        let file = rampart_core::private_fs::append(path)?;
        let (tx, rx) = mpsc::sync_channel::<String>(QUEUE);
        std::thread::Builder::new().name("rampart-access-log".into()).spawn(move || {
            let mut out = BufWriter::with_capacity(256 * 1024, file);
            loop {
                match rx.recv_timeout(Duration::from_millis(200)) {
                    Ok(line) => {
                        let _ = out.write_all(line.as_bytes());
                        while let Ok(line) = rx.try_recv() {
                            let _ = out.write_all(line.as_bytes());
                        }
                    }
                    Err(mpsc::RecvTimeoutError::Timeout) => {
                        let _ = out.flush();
                    }
                    Err(mpsc::RecvTimeoutError::Disconnected) => {
                        let _ = out.flush();
                        return;
                    }
                }
            }
        })?;
        Ok(AccessLog { tx })
    }

    /// Queues one line (which ends with `\n`). Drops it if the writer is
    /// far behind rather than slowing requests down.
    pub fn write(&self, line: String) {
        let _ = self.tx.try_send(line);
    }
}

/// One request's fields, formatted as JSON with ECS names.
pub struct Entry<'a> {
    /// RFC 3339 time.
    pub timestamp: &'a str,
    /// Client address.
    pub client: std::net::IpAddr,
    /// Request method.
    pub method: &'a str,
    /// Host asked for.
    pub host: &'a str,
    /// Path (without the query, which may carry secrets).
    pub path: &'a str,
    /// Response status.
    pub status: u16,
    /// Time to the response head.
    pub duration: Duration,
    /// X-Request-Id.
    pub request_id: &'a str,
    /// Route name, or "-".
    pub route: &'a str,
    /// Upstream address, or "-".
    pub upstream: &'a str,
    /// User-Agent, or "".
    pub user_agent: &'a str,
    /// Refusal reason, or "".
    pub reason: &'a str,
}

impl Entry<'_> {
    /// The JSON line, newline included.
    pub fn to_line(&self) -> String {
        let mut s = String::with_capacity(320);
        s.push_str("{\"@timestamp\":");
        push_str(&mut s, self.timestamp);
        s.push_str(",\"source\":{\"ip\":\"");
        s.push_str(&self.client.to_string());
        s.push_str("\"},\"http\":{\"request\":{\"method\":");
        push_str(&mut s, self.method);
        s.push_str(",\"id\":");
        push_str(&mut s, self.request_id);
        s.push_str("},\"response\":{\"status_code\":");
        s.push_str(itoa(self.status as u64).as_str());
        s.push_str("}},\"url\":{\"domain\":");
        push_str(&mut s, self.host);
        s.push_str(",\"path\":");
        push_str(&mut s, self.path);
        s.push_str("},\"event\":{\"duration\":");
        s.push_str(itoa(self.duration.as_nanos() as u64).as_str());
        if !self.reason.is_empty() {
            s.push_str(",\"reason\":");
            push_str(&mut s, self.reason);
        }
        s.push_str("},\"rampart\":{\"route\":");
        push_str(&mut s, self.route);
        s.push_str(",\"upstream\":");
        push_str(&mut s, self.upstream);
        s.push_str("},\"user_agent\":{\"original\":");
        push_str(&mut s, self.user_agent);
        s.push_str("}}\n");
        s
    }
}

fn itoa(n: u64) -> String {
    n.to_string()
}

/// Appends `v` as a JSON string, escaping what JSON requires.
fn push_str(s: &mut String, v: &str) {
    s.push('"');
    for c in v.chars() {
        match c {
            '"' => s.push_str("\\\""),
            '\\' => s.push_str("\\\\"),
            c if (c as u32) < 0x20 => {
                use std::fmt::Write;
                let _ = write!(s, "\\u{:04x}", c as u32);
            }
            c => s.push(c),
        }
    }
    s.push('"');
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_are_valid_json_even_with_hostile_values() {
        let e = Entry {
            timestamp: "2026-01-01T00:00:00.000Z",
            client: "192.0.2.1".parse().unwrap(),
            method: "GET",
            host: "a\"b",
            path: "/x\\y\n\u{1}",
            status: 200,
            duration: Duration::from_micros(1500),
            request_id: "r1",
            route: "default",
            upstream: "http://127.0.0.1:1",
            user_agent: "curl/8",
            reason: "",
        };
        let v: serde_json::Value = serde_json::from_str(e.to_line().trim_end()).unwrap();
        assert_eq!(v["url"]["path"], "/x\\y\n\u{1}");
        assert_eq!(v["url"]["domain"], "a\"b");
        assert_eq!(v["event"]["duration"], 1_500_000);
        assert_eq!(v["http"]["response"]["status_code"], 200);
    }
}
