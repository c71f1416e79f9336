//! The writer thread behind [`AuditLog`].

use std::fs::{File, OpenOptions};
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{self, Receiver, SyncSender, TrySendError};
use std::sync::Arc;

use rampart_core::Event;

/// Events that may wait for the writer before new ones are dropped (and
/// counted): a flood of rejected requests must not grow memory without end.
const QUEUE_CAPACITY: usize = 65_536;

/// Why the audit log could not be opened.
#[derive(Debug, thiserror::Error)]
pub enum AuditError {
    /// The directory or file could not be created or opened.
    #[error("audit log {}: {source}", path.display())]
    Open {
        /// The path.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
}

enum Message {
    Event(Box<Event>),
    Flush(SyncSender<()>),
}

/// A handle to the audit log; cheap to clone, shared by every component.
#[derive(Clone)]
pub struct AuditLog {
    tx: SyncSender<Message>,
    path: Arc<PathBuf>,
    dropped: Arc<AtomicU64>,
    written: Arc<AtomicU64>,
}

impl AuditLog {
    /// Opens (creating if needed) `DATA_DIR/audit/events.jsonl` and starts
    /// its writer thread.
    pub fn open(data_dir: &Path) -> Result<Self, AuditError> {
        let dir = data_dir.join("audit");
        let path = dir.join("events.jsonl");
        let open_err = |source| AuditError::Open { path: path.clone(), source };
        std::fs::create_dir_all(&dir).map_err(open_err)?;
        restrict_dir(&dir).map_err(open_err)?;
        let file = OpenOptions::new().create(true).append(true).open(&path).map_err(open_err)?;
        restrict_file(&path).map_err(open_err)?;
        let (tx, rx) = mpsc::sync_channel(QUEUE_CAPACITY);
        let written = Arc::new(AtomicU64::new(0));
        let w = written.clone();
        std::thread::Builder::new()
            .name("rampart-audit".into())
            .spawn(move || write_loop(rx, file, w))
            .map_err(open_err)?;
        Ok(AuditLog { tx, path: Arc::new(path), dropped: Arc::new(AtomicU64::new(0)), written })
    }

    /// Queues an event. Never blocks: if the writer is far behind, the event
    /// is counted in [`AuditLog::dropped`] and a warning is logged.
    pub fn emit(&self, event: Event) {
        match self.tx.try_send(Message::Event(Box::new(event))) {
            Ok(()) => {}
            Err(TrySendError::Full(_)) | Err(TrySendError::Disconnected(_)) => {
                let n = self.dropped.fetch_add(1, Ordering::Relaxed);
                if n.is_power_of_two() {
                    tracing::warn!(dropped = n + 1, "audit writer is behind; events dropped");
                }
            }
        }
    }

    /// Waits until every event emitted before this call is written and
    /// flushed to the file.
    pub fn flush(&self) {
        let (tx, rx) = mpsc::sync_channel(1);
        if self.tx.send(Message::Flush(tx)).is_ok() {
            let _ = rx.recv();
        }
    }

    /// The file events are appended to.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Events lost because the writer could not keep up.
    pub fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }

    /// Events written so far.
    pub fn written(&self) -> u64 {
        self.written.load(Ordering::Relaxed)
    }
}

fn write_loop(rx: Receiver<Message>, file: File, written: Arc<AtomicU64>) {
    let mut out = BufWriter::with_capacity(64 * 1024, file);
    while let Ok(first) = rx.recv() {
        let mut waiters = Vec::new();
        let mut next = Some(first);
        // Drain what is queued, then flush once: one write for a burst.
        while let Some(msg) = next.take() {
            match msg {
                Message::Event(e) => {
                    let line = e.to_json();
                    if serde_json::to_writer(&mut out, &line).is_ok() && out.write_all(b"\n").is_ok() {
                        written.fetch_add(1, Ordering::Relaxed);
                    }
                }
                Message::Flush(w) => waiters.push(w),
            }
            next = rx.try_recv().ok();
        }
        if let Err(e) = out.flush().and_then(|()| out.get_ref().sync_data()) {
            tracing::error!(error = %e, "audit log write failed");
        }
        for w in waiters {
            let _ = w.send(());
        }
    }
}

#[cfg(unix)]
fn restrict_dir(p: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(p, std::fs::Permissions::from_mode(0o700))
}

#[cfg(unix)]
fn restrict_file(p: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(p, std::fs::Permissions::from_mode(0o600))
}

#[cfg(not(unix))]
fn restrict_dir(_: &Path) -> std::io::Result<()> {
    Ok(())
}

#[cfg(not(unix))]
fn restrict_file(_: &Path) -> std::io::Result<()> {
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use rampart_core::Outcome;

    #[test]
    fn appends_one_json_line_per_event_and_survives_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let log = AuditLog::open(dir.path()).unwrap();
        for i in 0..100 {
            log.emit(Event::new("web", "request-rejected").outcome(Outcome::Failure).status(400 + i % 3));
        }
        log.flush();
        assert_eq!(log.written(), 100);
        drop(log);
        let log = AuditLog::open(dir.path()).unwrap();
        log.emit(Event::new("configuration", "config-loaded"));
        log.flush();
        let text = std::fs::read_to_string(log.path()).unwrap();
        let lines: Vec<serde_json::Value> = text.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
        assert_eq!(lines.len(), 101);
        assert_eq!(lines[0]["event"]["action"], "request-rejected");
        assert_eq!(lines[100]["event"]["action"], "config-loaded");
    }

    #[cfg(unix)]
    #[test]
    fn file_is_private_to_its_owner() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let log = AuditLog::open(dir.path()).unwrap();
        let mode = std::fs::metadata(log.path()).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }
}
