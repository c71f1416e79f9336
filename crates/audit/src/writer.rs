//! The writer (docs/audit-log-format.md, section 6): one thread that owns
//! the open segment, commits events in groups (one write and one sync per
//! batch), signs tree heads on schedule, rotates segments, takes events
//! from other processes' inbox files, and applies retention.
//!
//! Producers mask and encode on their own thread ([`AuditLog::emit`] and
//! [`AuditLog::append`]), so the writer only encrypts, hashes and writes.

use std::fs::{File, OpenOptions};
use std::io::{Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, SyncSender, TrySendError};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use rampart_core::Event;
use serde_json::Value;

use crate::format::{
    self, Header, SignedHead, FLAG_ENCRYPTED, HEADER_LEN, TYPE_EVENT, TYPE_HEADER_SIG, TYPE_SEAL, TYPE_STH,
};
use crate::head::Against;
use crate::keys::{KeyError, Keys};
use crate::mask::{Action, FieldRule, Masker};
use crate::merkle::{leaf_hash, Frontier};
use crate::segment::{self, IndexEntry, Item};

/// Events that may wait for the writer before `emit` drops new ones (and
/// counts them).
const QUEUE_CAPACITY: usize = 65_536;
/// Largest number of events in one group commit.
const MAX_BATCH: usize = 8192;

/// Why the audit log could not be opened or written.
#[derive(Debug, thiserror::Error)]
pub enum AuditError {
    /// A file or directory could not be created, read or written.
    #[error("audit log {}: {source}", path.display())]
    Io {
        /// The path.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The keys could not be loaded.
    #[error(transparent)]
    Keys(#[from] KeyError),
    /// Another process writes this log.
    #[error("audit log {}: another process holds the writer lock", path.display())]
    Locked {
        /// The audit directory.
        path: PathBuf,
    },
    /// The masking configuration is invalid.
    #[error("audit.mask: {0}")]
    Mask(String),
    /// The existing log cannot be continued.
    #[error("audit log {}: {message}", path.display())]
    Corrupt {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },
    /// The writer thread has stopped.
    #[error("audit writer stopped")]
    Stopped,
}

/// How to open a log.
#[derive(Clone, Debug)]
pub struct Options {
    /// Encrypt event records (AES-256-GCM).
    pub encrypt: bool,
    /// Extra wait for more events before a group commit.
    pub batch_window: Duration,
    /// Sign a tree head after this many events...
    pub sth_every_events: u64,
    /// ...or this long after the first unsigned event.
    pub sth_every: Duration,
    /// Rotate segments larger than this.
    pub segment_max_bytes: u64,
    /// Remove sealed segments older than this (`None`: keep).
    pub retention_max_age: Option<Duration>,
    /// Remove sealed segments while the log is larger (`None`: keep).
    pub retention_max_bytes: Option<u64>,
    /// Masking rules by field path.
    pub mask_fields: Vec<(String, String)>,
    /// Detector actions by name (`redact`, `hash`, `partial`, `off`).
    pub mask_detectors: std::collections::BTreeMap<String, String>,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            encrypt: true,
            batch_window: Duration::ZERO,
            sth_every_events: 10_000,
            sth_every: Duration::from_secs(1),
            segment_max_bytes: 64 << 20,
            retention_max_age: None,
            retention_max_bytes: None,
            mask_fields: Vec::new(),
            mask_detectors: Default::default(),
        }
    }
}

impl Options {
    /// The options of an `[audit]` configuration section.
    pub fn from_config(c: &rampart_core::config::Audit) -> Self {
        Options {
            encrypt: c.encrypt,
            batch_window: c.batch_window.get(),
            sth_every_events: c.sth_every_events,
            sth_every: c.sth_every.get(),
            segment_max_bytes: c.segment_max_bytes,
            retention_max_age: c.retention_max_age.map(|d| d.get()),
            retention_max_bytes: c.retention_max_bytes,
            mask_fields: c.mask.fields.iter().map(|f| (f.path.clone(), f.action.clone())).collect(),
            mask_detectors: c.mask.detectors.clone(),
        }
    }
}

enum Message {
    /// A masked, canonical event and its time.
    Event { bytes: Vec<u8>, timestamp_ms: u64, seq: Option<u64> },
    /// Make everything before durable and signed, then answer.
    Flush(SyncSender<()>),
    /// The last handle is gone: sign what is unsigned and stop.
    Close,
}

/// Durability progress shared with producers waiting in `append`.
#[derive(Default)]
struct Durable {
    done: Mutex<u64>,
    cond: Condvar,
}

/// A queued durable append; [`Ticket::wait`] returns once it is on disk.
pub struct Ticket {
    seq: u64,
    durable: Arc<Durable>,
    tx: SyncSender<Message>,
}

impl Ticket {
    /// Whether the event is durable already.
    pub fn is_done(&self) -> bool {
        *self.durable.done.lock().unwrap_or_else(|p| p.into_inner()) > self.seq
    }

    /// Blocks until the event is durable.
    pub fn wait(self) -> Result<(), AuditError> {
        let mut done = self.durable.done.lock().unwrap_or_else(|p| p.into_inner());
        while *done <= self.seq {
            let (d, timeout) =
                self.durable.cond.wait_timeout(done, Duration::from_secs(5)).unwrap_or_else(|p| p.into_inner());
            done = d;
            if timeout.timed_out()
                && *done <= self.seq
                && self.tx.try_send(Message::Flush(mpsc::sync_channel(1).0)).is_err()
            {
                return Err(AuditError::Stopped);
            }
        }
        Ok(())
    }
}

/// Stops the writer when the last handle goes, and waits for it, so the
/// log can be reopened at once.
struct Closer {
    tx: SyncSender<Message>,
    thread: Mutex<Option<std::thread::JoinHandle<()>>>,
}

impl Drop for Closer {
    fn drop(&mut self) {
        let _ = self.tx.send(Message::Close);
        if let Some(t) = self.thread.lock().unwrap_or_else(|p| p.into_inner()).take() {
            let _ = t.join();
        }
    }
}

/// A handle to the audit log; cheap to clone, shared by every component.
#[derive(Clone)]
pub struct AuditLog {
    _closer: Arc<Closer>,
    tx: SyncSender<Message>,
    order: Arc<Mutex<u64>>,
    durable: Arc<Durable>,
    masker: Arc<Masker>,
    dir: Arc<PathBuf>,
    dropped: Arc<AtomicU64>,
    written: Arc<AtomicU64>,
}

impl AuditLog {
    /// Opens (creating if needed) the log in `DATA_DIR/audit/` with default
    /// options and starts its writer.
    pub fn open(data_dir: &Path) -> Result<Self, AuditError> {
        Self::open_with(data_dir, Options::default())
    }

    /// Opens the log with `options`.
    pub fn open_with(data_dir: &Path, options: Options) -> Result<Self, AuditError> {
        let dir = data_dir.join("audit");
        let io = |path: &Path| {
            let path = path.to_path_buf();
            move |source| AuditError::Io { path, source }
        };
        for d in [dir.clone(), segment::segments_dir(&dir), dir.join("inbox")] {
            crate::keys::create_private_dir(&d).map_err(io(&d))?;
        }
        let lock_path = dir.join("LOCK");
        let lock = crate::keys::private_file_options()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&lock_path)
            .map_err(io(&lock_path))?;
        match lock.try_lock() {
            Ok(()) => {}
            Err(std::fs::TryLockError::WouldBlock) => return Err(AuditError::Locked { path: dir }),
            Err(std::fs::TryLockError::Error(e)) => return Err(io(&lock_path)(e)),
        }
        let keys = Arc::new(Keys::load_or_create(&dir)?);
        let masker = Arc::new(build_masker(keys.clone(), &options)?);
        let mut state = State::recover(&dir, keys, options.clone())?;
        state.retention();
        let (tx, rx) = mpsc::sync_channel(QUEUE_CAPACITY);
        let durable = Arc::new(Durable::default());
        let written = Arc::new(AtomicU64::new(0));
        let (d, w, m) = (durable.clone(), written.clone(), masker.clone());
        let thread = std::thread::Builder::new()
            .name("rampart-audit".into())
            .spawn(move || {
                let _lock = lock;
                state.run(rx, d, w, m)
            })
            .map_err(io(&dir))?;
        Ok(AuditLog {
            _closer: Arc::new(Closer { tx: tx.clone(), thread: Mutex::new(Some(thread)) }),
            tx,
            order: Arc::default(),
            durable,
            masker,
            dir: Arc::new(dir),
            dropped: Arc::default(),
            written,
        })
    }

    /// Queues an event (buffered mode). Never blocks: if the writer is far
    /// behind, the event is counted in [`AuditLog::dropped`].
    pub fn emit(&self, event: Event) {
        let (bytes, timestamp_ms) = self.encode(event.to_json(), event.timestamp);
        if let Err(TrySendError::Full(_) | TrySendError::Disconnected(_)) =
            self.tx.try_send(Message::Event { bytes, timestamp_ms, seq: None })
        {
            let n = self.dropped.fetch_add(1, Ordering::Relaxed);
            if n.is_power_of_two() {
                tracing::warn!(dropped = n + 1, "audit writer is behind; events dropped");
            }
        }
    }

    /// Appends an event and returns once it is durable (synced to disk).
    pub fn append(&self, event: Event) -> Result<(), AuditError> {
        self.submit(event)?.wait()
    }

    /// Queues an event for durable append and returns at once; the
    /// [`Ticket`] waits for durability. Lets one producer keep many events
    /// in flight (group commit then batches them).
    pub fn submit(&self, event: Event) -> Result<Ticket, AuditError> {
        let (bytes, ts) = self.encode(event.to_json(), event.timestamp);
        self.submit_encoded(bytes, ts)
    }

    /// Appends a JSON event (masked here) and returns once it is durable.
    pub fn append_value(&self, value: Value) -> Result<(), AuditError> {
        let (bytes, ts) = self.encode(value, SystemTime::now());
        self.append_encoded(bytes, ts)
    }

    fn append_encoded(&self, bytes: Vec<u8>, timestamp_ms: u64) -> Result<(), AuditError> {
        self.submit_encoded(bytes, timestamp_ms)?.wait()
    }

    fn submit_encoded(&self, bytes: Vec<u8>, timestamp_ms: u64) -> Result<Ticket, AuditError> {
        // Sequence numbers are taken and sent under one lock, so the
        // writer sees them in order and can publish "durable up to".
        let mut next = self.order.lock().unwrap_or_else(|p| p.into_inner());
        let seq = *next;
        self.tx.send(Message::Event { bytes, timestamp_ms, seq: Some(seq) }).map_err(|_| AuditError::Stopped)?;
        *next += 1;
        Ok(Ticket { seq, durable: self.durable.clone(), tx: self.tx.clone() })
    }

    fn encode(&self, mut value: Value, at: SystemTime) -> (Vec<u8>, u64) {
        if value.get("@timestamp").is_none() {
            if let Value::Object(m) = &mut value {
                m.insert("@timestamp".into(), Value::String(rampart_core::event::rfc3339(at)));
            }
        }
        self.masker.mask_value(&mut value);
        let ts = at.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis() as u64);
        (crate::canonical::to_vec(&value), ts)
    }

    /// Waits until every event emitted before this call is durable and
    /// covered by a signed tree head.
    pub fn flush(&self) {
        let (tx, rx) = mpsc::sync_channel(1);
        if self.tx.send(Message::Flush(tx)).is_ok() {
            let _ = rx.recv();
        }
    }

    /// The audit directory (`DATA_DIR/audit`).
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The masker, for other logs that must not hold secrets either (the
    /// access log).
    pub fn masker(&self) -> &Masker {
        &self.masker
    }

    /// Events lost because the writer could not keep up (buffered mode).
    pub fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }

    /// Events written by this process so far.
    pub fn written(&self) -> u64 {
        self.written.load(Ordering::Relaxed)
    }
}

fn build_masker(keys: Arc<Keys>, o: &Options) -> Result<Masker, AuditError> {
    let parse = |what: &str, a: &str| {
        Action::parse(a).ok_or_else(|| AuditError::Mask(format!("{what} = {a}: expected redact, hash, partial or off")))
    };
    let fields = o
        .mask_fields
        .iter()
        .map(|(p, a)| Ok(FieldRule { path: p.clone(), action: parse(&format!("fields.{p}"), a)? }))
        .collect::<Result<Vec<_>, AuditError>>()?;
    let detectors = o
        .mask_detectors
        .iter()
        .map(|(k, a)| Ok((k.clone(), parse(&format!("detectors.{k}"), a)?)))
        .collect::<Result<_, AuditError>>()?;
    Masker::new(keys, fields, &detectors).map_err(AuditError::Mask)
}

/// The writer's state.
struct State {
    dir: PathBuf,
    keys: Arc<Keys>,
    options: Options,
    frontier: Frontier,
    file: File,
    header: Header,
    offset: u64,
    index: File,
    unsigned: u64,
    first_unsigned: Option<Instant>,
    last_head_ms: u64,
}

fn now_ms() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis() as u64)
}

impl State {
    /// Opens the log: rebuilds the frontier, repairs a torn tail, seals the
    /// last segment and starts a new one.
    fn recover(dir: &Path, keys: Arc<Keys>, options: Options) -> Result<State, AuditError> {
        let corrupt = |path: &Path, message: String| AuditError::Corrupt { path: path.to_path_buf(), message };
        let mut frontier = match crate::retention::read_base(dir) {
            Ok(Some(base)) => base.frontier().ok_or_else(|| corrupt(&dir.join("base.json"), "bad frontier".into()))?,
            Ok(None) => Frontier::new(),
            Err(e) => return Err(corrupt(&dir.join("base.json"), e)),
        };
        // The saved head must still be in the log: a log cut short or
        // rewritten while no writer ran is refused, not continued (which
        // would save a head of the shortened log over the evidence).
        let head_path = crate::head::path(dir);
        let refuse = |m: String| {
            corrupt(
                &head_path,
                format!(
                    "{m}; refusing to continue the log (run `rampart audit verify`; once the loss is \
                     understood, removing {} lets the log continue as it is)",
                    crate::head::FILE
                ),
            )
        };
        let mut against = match crate::head::read(dir).map_err(|e| corrupt(&head_path, e))? {
            Some(h) if !h.verify(&keys.public_key()) => {
                return Err(refuse(format!("the signature of the saved head ({}) is invalid", crate::head::FILE)))
            }
            Some(h) => Some(Against::new(h)),
            None => None,
        };
        let step = |a: &mut Option<Against>, f: &Frontier| a.as_mut().map_or(Ok(()), |a| a.step(f));
        step(&mut against, &frontier).map_err(&refuse)?;
        let mut last_head = crate::retention::read_base(dir).ok().flatten().map(|b| b.sth);
        let segments = segment::list(dir);
        let mut last_head_ms = 0;
        for (i, &n) in segments.iter().enumerate() {
            let path = segment::segment_path(dir, n);
            let bytes = std::fs::read(&path).map_err(|source| AuditError::Io { path: path.clone(), source })?;
            let last = i + 1 == segments.len();
            if last && bytes.len() < HEADER_LEN {
                // A crash while the segment was being created: nothing in it.
                tracing::warn!(segment = %path.display(), "audit log: removing a segment cut while being created");
                let _ = std::fs::remove_file(&path);
                let _ = std::fs::remove_file(segment::index_path(dir, n));
                continue;
            }
            let header = Header::decode(&bytes).map_err(|e| corrupt(&path, e.into()))?;
            if last && header.version >= 2 && !matches!(format::decode_record(&bytes[HEADER_LEN..]), Ok(Some(_))) {
                // Cut while being created, before its header signature (the
                // header and the signature are one write): nothing in it.
                tracing::warn!(segment = %path.display(), "audit log: removing a segment cut while being created");
                let _ = std::fs::remove_file(&path);
                let _ = std::fs::remove_file(segment::index_path(dir, n));
                continue;
            }
            if header.first_leaf < frontier.size() && frontier.size() > 0 && !last {
                // Retention wrote base.json but crashed before removing this
                // segment: it is already accounted for in the base.
                let events = segment::rebuild_index(&bytes, &header, &keys).len() as u64;
                if header.first_leaf + events <= frontier.size() {
                    tracing::warn!(segment = %path.display(), "audit log: removing a segment retention had already retired");
                    let _ = std::fs::remove_file(&path);
                    let _ = std::fs::remove_file(segment::index_path(dir, n));
                    continue;
                }
            }
            if header.key_id != keys.key_id() {
                return Err(corrupt(
                    &path,
                    "written with another signing key: were the files in audit/keys/ replaced?".into(),
                ));
            }
            if header.first_leaf != frontier.size() {
                return Err(corrupt(
                    &path,
                    format!("starts at leaf {} but the log has {}", header.first_leaf, frontier.size()),
                ));
            }
            let entries = match segment::read_index(dir, n) {
                Some(e) if !last && index_matches(&bytes, &e) && seal_matches(&bytes, &header, &frontier, &e) => e,
                _ => {
                    let e = segment::rebuild_index(&bytes, &header, &keys);
                    let _ = segment::write_index(dir, n, &e);
                    e
                }
            };
            for e in &entries {
                frontier.push(e.leaf);
                step(&mut against, &frontier).map_err(&refuse)?;
            }
            if last {
                // Cut a torn tail, then seal unless already sealed.
                let (good_end, sealed, head) = tail_state(&bytes, &header, &keys).map_err(|e| corrupt(&path, e))?;
                last_head_ms = head.as_ref().map_or(0, |h| h.timestamp_ms);
                if head.is_some() {
                    last_head = head;
                }
                let mut f = OpenOptions::new()
                    .write(true)
                    .open(&path)
                    .map_err(|source| AuditError::Io { path: path.clone(), source })?;
                if good_end < bytes.len() as u64 {
                    tracing::warn!(segment = %path.display(), cut = bytes.len() as u64 - good_end, "audit log: torn tail cut after a crash");
                    f.set_len(good_end)
                        .and_then(|()| f.sync_data())
                        .map_err(|source| AuditError::Io { path: path.clone(), source })?;
                }
                if !sealed {
                    let ts = now_ms().max(last_head_ms);
                    let head = keys.sign(frontier.size(), ts, frontier.root());
                    let mut rec = Vec::new();
                    format::encode_record(&mut rec, TYPE_SEAL, &head.encode());
                    f.seek(SeekFrom::End(0))
                        .and_then(|_| f.write_all(&rec))
                        .and_then(|()| f.sync_data())
                        .map_err(|source| AuditError::Io { path: path.clone(), source })?;
                    last_head_ms = ts;
                    last_head = Some(head);
                }
            }
        }
        if let Some(a) = &against {
            a.finish(&frontier).map_err(&refuse)?;
        }
        let next = segments.last().map_or(1, |n| n + 1);
        let (file, header, index, offset) = create_segment(dir, next, frontier.size(), &keys, options.encrypt)?;
        // A new log has no head yet: the head of the empty tree is saved, so
        // that from now on a missing head.json means it was removed.
        let head = match last_head {
            Some(h) => h,
            None => {
                let ts = now_ms().max(last_head_ms);
                last_head_ms = ts;
                keys.sign(frontier.size(), ts, frontier.root())
            }
        };
        crate::head::save(dir, &head).map_err(|source| AuditError::Io { path: head_path.clone(), source })?;
        Ok(State {
            dir: dir.to_path_buf(),
            keys,
            options,
            frontier,
            file,
            header,
            offset,
            index,
            unsigned: 0,
            first_unsigned: None,
            last_head_ms,
        })
    }

    fn run(mut self, rx: Receiver<Message>, durable: Arc<Durable>, written: Arc<AtomicU64>, masker: Arc<Masker>) {
        let mut buf: Vec<u8> = Vec::with_capacity(1 << 20);
        let mut idx: Vec<u8> = Vec::with_capacity(64 << 10);
        let mut last_inbox = Instant::now();
        let mut last_retention = Instant::now();
        loop {
            let wait = match self.first_unsigned {
                Some(t) => self.options.sth_every.saturating_sub(t.elapsed()).max(Duration::from_millis(1)),
                None => Duration::from_secs(1),
            };
            let first = match rx.recv_timeout(wait) {
                Ok(m) => Some(m),
                Err(RecvTimeoutError::Timeout) => None,
                Err(RecvTimeoutError::Disconnected) => {
                    if self.unsigned > 0 {
                        let _ = self.sign(TYPE_STH);
                    }
                    return;
                }
            };
            let mut waiters = Vec::new();
            let mut closing = false;
            let mut count = 0usize;
            let mut max_seq = None;
            if let Some(first) = first {
                let mut next = Some(first);
                let window_end = Instant::now() + self.options.batch_window;
                loop {
                    match next.take() {
                        Some(Message::Event { bytes, timestamp_ms, seq }) => {
                            self.add(&bytes, timestamp_ms, &mut buf, &mut idx);
                            count += 1;
                            if seq.is_some() {
                                max_seq = seq;
                            }
                        }
                        Some(Message::Flush(w)) => waiters.push(w),
                        Some(Message::Close) => closing = true,
                        None => {}
                    }
                    if count >= MAX_BATCH || closing {
                        break;
                    }
                    next = match rx.try_recv() {
                        Ok(m) => Some(m),
                        Err(_) if Instant::now() < window_end => rx.recv_timeout(window_end - Instant::now()).ok(),
                        Err(_) => break,
                    };
                    if next.is_none() {
                        break;
                    }
                }
            }
            if last_inbox.elapsed() >= Duration::from_millis(500) {
                last_inbox = Instant::now();
                count += self.take_inbox(&masker, &mut buf, &mut idx);
            }
            if !buf.is_empty() {
                // Nothing is acknowledged until this succeeds: retry (a full
                // disk, say) with the batch, its waiters and any close
                // request kept, after undoing a partial write.
                let mut pause = Duration::from_millis(50);
                while let Err(e) = self.commit(&mut buf, &mut idx) {
                    let _ = self.file.set_len(self.offset);
                    tracing::error!(error = %e, retry_in = ?pause, "audit log write failed; events wait");
                    std::thread::sleep(pause);
                    pause = (pause * 2).min(Duration::from_secs(5));
                }
                written.fetch_add(count as u64, Ordering::Relaxed);
            }
            if let Some(seq) = max_seq {
                *durable.done.lock().unwrap_or_else(|p| p.into_inner()) = seq + 1;
                durable.cond.notify_all();
            }
            let head_due = self.unsigned >= self.options.sth_every_events
                || self.first_unsigned.is_some_and(|t| t.elapsed() >= self.options.sth_every)
                || (!waiters.is_empty() && self.unsigned > 0);
            if head_due {
                if let Err(e) = self.sign(TYPE_STH) {
                    tracing::error!(error = %e, "audit log: cannot write a signed tree head");
                }
            }
            if self.offset >= self.options.segment_max_bytes {
                if let Err(e) = self.rotate() {
                    tracing::error!(error = %e, "audit log: cannot rotate segment");
                }
            }
            for w in waiters {
                let _ = w.send(());
            }
            if closing {
                if self.unsigned > 0 {
                    let _ = self.sign(TYPE_STH);
                }
                return;
            }
            if last_retention.elapsed() >= Duration::from_secs(60) {
                last_retention = Instant::now();
                self.retention();
            }
        }
    }

    fn add(&mut self, bytes: &[u8], timestamp_ms: u64, buf: &mut Vec<u8>, idx: &mut Vec<u8>) {
        let leaf = self.frontier.size();
        let hash = leaf_hash(bytes);
        let record_offset = self.offset + buf.len() as u64;
        if self.options.encrypt {
            let mut body = Vec::with_capacity(bytes.len() + 16);
            body.extend_from_slice(bytes);
            self.keys.seal(self.header.nonce_prefix, self.header.segment, leaf, &mut body);
            format::encode_record(buf, TYPE_EVENT, &body);
        } else {
            format::encode_record(buf, TYPE_EVENT, bytes);
        }
        self.frontier.push(hash);
        IndexEntry { leaf: hash, timestamp_ms, offset: record_offset }.encode(idx);
        self.unsigned += 1;
        self.first_unsigned.get_or_insert_with(Instant::now);
    }

    /// One write and one sync for the whole batch.
    fn commit(&mut self, buf: &mut Vec<u8>, idx: &mut Vec<u8>) -> std::io::Result<()> {
        debug_assert!(!buf.is_empty());
        self.file.write_all(buf)?;
        self.file.sync_data()?;
        self.offset += buf.len() as u64;
        buf.clear();
        let _ = self.index.write_all(idx);
        idx.clear();
        Ok(())
    }

    fn sign(&mut self, kind: u8) -> std::io::Result<SignedHead> {
        let ts = now_ms().max(self.last_head_ms);
        let head = self.keys.sign(self.frontier.size(), ts, self.frontier.root());
        let mut rec = Vec::with_capacity(128);
        format::encode_record(&mut rec, kind, &head.encode());
        if let Err(e) = self.file.write_all(&rec).and_then(|()| self.file.sync_data()) {
            let _ = self.file.set_len(self.offset);
            return Err(e);
        }
        self.offset += rec.len() as u64;
        // Only once the head is durable in the segment: the saved head never
        // covers more than the log holds.
        if let Err(e) = crate::head::save(&self.dir, &head) {
            tracing::error!(error = %e, "audit log: cannot save the signed tree head to head.json");
        }
        self.unsigned = 0;
        self.first_unsigned = None;
        self.last_head_ms = ts;
        Ok(head)
    }

    fn rotate(&mut self) -> Result<(), AuditError> {
        self.sign(TYPE_SEAL).map_err(|source| AuditError::Io { path: self.dir.clone(), source })?;
        let (file, header, index, offset) =
            create_segment(&self.dir, self.header.segment + 1, self.frontier.size(), &self.keys, self.options.encrypt)?;
        self.file = file;
        self.header = header;
        self.index = index;
        self.offset = offset;
        self.retention();
        Ok(())
    }

    /// Appends the events other processes left in `inbox/`.
    fn take_inbox(&mut self, masker: &Masker, buf: &mut Vec<u8>, idx: &mut Vec<u8>) -> usize {
        let inbox = self.dir.join("inbox");
        let mut files: Vec<PathBuf> = std::fs::read_dir(&inbox)
            .into_iter()
            .flatten()
            .flatten()
            .map(|e| e.path())
            .filter(|p| p.extension().is_some_and(|e| e == "json"))
            .collect();
        files.sort();
        let mut n = 0;
        for f in files {
            let Ok(text) = std::fs::read(&f) else { continue };
            match serde_json::from_slice::<Value>(&text) {
                Ok(mut v) => {
                    masker.mask_value(&mut v);
                    let bytes = crate::canonical::to_vec(&v);
                    let ts = segment::timestamp_of(&bytes);
                    self.add(&bytes, ts, buf, idx);
                    n += 1;
                }
                Err(e) => tracing::warn!(file = %f.display(), error = %e, "audit inbox: not a JSON event; removed"),
            }
            // Removed after the batch commit would be stricter; the events
            // are in `buf` and committed before the next message is read.
            let _ = std::fs::remove_file(&f);
        }
        n
    }

    fn retention(&mut self) {
        let (age, bytes) = (self.options.retention_max_age, self.options.retention_max_bytes);
        if age.is_none() && bytes.is_none() {
            return;
        }
        match crate::retention::apply(&self.dir, &self.keys, age, bytes, self.header.segment) {
            Ok(removed) if !removed.is_empty() => {
                tracing::info!(segments = ?removed, "audit retention removed old segments")
            }
            Ok(_) => {}
            Err(e) => tracing::error!(error = %e, "audit retention failed"),
        }
    }
}

/// Whether an index's last entry points at an event record of the segment
/// and the segment has no event beyond it.
fn index_matches(bytes: &[u8], entries: &[IndexEntry]) -> bool {
    let Some(last) = entries.last() else {
        // No event anywhere in the segment (version 2 starts with the
        // header signature, so looking at the first record is not enough).
        let mut pos = HEADER_LEN;
        while let Some(Ok(Some(r))) = bytes.get(pos..).map(format::decode_record) {
            if r.kind == TYPE_EVENT {
                return false;
            }
            pos += r.len;
        }
        return true;
    };
    let Some(rest) = bytes.get(last.offset as usize..) else { return false };
    match format::decode_record(rest) {
        Ok(Some(r)) if r.kind == TYPE_EVENT => {
            // No further event after it.
            let mut pos = last.offset as usize + r.len;
            while let Ok(Some(n)) = format::decode_record(&bytes[pos..]) {
                if n.kind == TYPE_EVENT {
                    return false;
                }
                pos += n.len;
            }
            true
        }
        _ => false,
    }
}

/// Whether a sealed segment's seal signs the tree that `frontier` plus the
/// index's leaves make: an index is derived data, trusted only then.
fn seal_matches(bytes: &[u8], header: &Header, frontier: &Frontier, entries: &[IndexEntry]) -> bool {
    let mut seal = None;
    segment::scan(bytes, header, None, |item| match item {
        Item::Head { head, seal: true, .. } => {
            seal = Some(head);
            true
        }
        Item::Bad { .. } => false,
        _ => true,
    });
    let mut f = frontier.clone();
    for e in entries {
        f.push(e.leaf);
    }
    seal.is_some_and(|s| s.tree_size == f.size() && s.root == f.root())
}

/// End of the last good record, whether the segment is sealed, and its
/// last signed head. A bad record is accepted as a torn
/// tail only if nothing follows it (it runs to the end of the file);
/// otherwise the damage is not a crash's, and `Err` says where it is.
fn tail_state(bytes: &[u8], header: &Header, keys: &Keys) -> Result<(u64, bool, Option<SignedHead>), String> {
    let mut end = HEADER_LEN as u64;
    let mut sealed = false;
    let mut last_head = None;
    let mut damage = None;
    segment::scan(bytes, header, Some(keys), |item| {
        match item {
            Item::Event { offset, .. } => {
                end = next_record_end(bytes, offset);
                sealed = false;
            }
            Item::Head { offset, head, seal } => {
                end = next_record_end(bytes, offset);
                sealed = seal;
                last_head = Some(head);
            }
            Item::HeaderSignature { offset, .. } => end = next_record_end(bytes, offset),
            Item::Bad { offset, record, what } => {
                let claimed_end = bytes.get(offset as usize..offset as usize + 4).map(|l| {
                    offset + format::RECORD_OVERHEAD as u64 + u64::from(u32::from_be_bytes([l[0], l[1], l[2], l[3]]))
                });
                let torn = matches!(what, segment::BadRecord::Frame(format::RecordError::Truncated))
                    || claimed_end.is_none_or(|e| e >= bytes.len() as u64);
                if !torn {
                    damage = Some(format!(
                        "record {record} (offset {offset}) is damaged ({}) and records follow it: not a torn write; \
                         refusing to cut them (run `rampart audit verify`)",
                        what.describe()
                    ));
                }
                return false;
            }
        }
        true
    });
    match damage {
        Some(d) => Err(d),
        None => Ok((end, sealed, last_head)),
    }
}

fn next_record_end(bytes: &[u8], offset: u64) -> u64 {
    let len = format::decode_record(&bytes[offset as usize..]).ok().flatten().map_or(0, |r| r.len);
    offset + len as u64
}

fn create_segment(
    dir: &Path,
    n: u64,
    first_leaf: u64,
    keys: &Keys,
    encrypt: bool,
) -> Result<(File, Header, File, u64), AuditError> {
    let path = segment::segment_path(dir, n);
    let io = |source| AuditError::Io { path: path.clone(), source };
    let header = Header {
        version: format::VERSION,
        flags: if encrypt { FLAG_ENCRYPTED } else { 0 },
        segment: n,
        first_leaf,
        created_ms: now_ms(),
        key_id: keys.key_id(),
        nonce_prefix: crate::keys::random::<4>(),
    };
    // The header and its signature in one write (section 3.1).
    let mut start = header.encode().to_vec();
    format::encode_record(&mut start, TYPE_HEADER_SIG, &keys.sign_header(&header));
    let mut file = crate::keys::private_file_options().create_new(true).append(true).open(&path).map_err(io)?;
    file.write_all(&start).and_then(|()| file.sync_all()).map_err(io)?;
    if let Ok(d) = File::open(segment::segments_dir(dir)) {
        let _ = d.sync_all();
    }
    let idx_path = segment::index_path(dir, n);
    let mut index = crate::keys::private_file_options()
        .create(true)
        .truncate(true)
        .write(true)
        .open(&idx_path)
        .map_err(|source| AuditError::Io { path: idx_path.clone(), source })?;
    index.write_all(&segment::index_header(n)).map_err(|source| AuditError::Io { path: idx_path, source })?;
    Ok((file, header, index, start.len() as u64))
}
