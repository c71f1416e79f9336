//! `rampart audit verify` (docs/audit-log-format.md, section 12): rebuilds
//! the tree from the segments and checks every signed tree head and header
//! signature, and that the log extends the head the writer saved last
//! (`head.json`), reporting the first problem with its segment, record and
//! byte offset.

use std::fmt;
use std::path::Path;

use crate::format::{Header, SignedHead};
use crate::head::Against;
use crate::keys::{key_id_of, Keys};
use crate::merkle::{Frontier, Hash};
use crate::segment::{self, Checked};

/// What a successful verification saw.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Report {
    /// Segments checked.
    pub segments: u64,
    /// Events checked (after the retention base).
    pub events: u64,
    /// Signed tree heads checked.
    pub heads: u64,
    /// Tree size at the end.
    pub tree_size: u64,
    /// Root at the end.
    pub root: Hash,
    /// Leaves removed by retention.
    pub base_size: u64,
    /// The last signed head.
    pub last_head: Option<SignedHead>,
    /// The saved head (`head.json`) the log was found to extend.
    pub saved_head: Option<SignedHead>,
}

/// Whether the log must extend the head its writer saved (`head.json`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SavedHead {
    /// It must be there and the log must extend it: what [`verify`] does.
    Required,
    /// Not looked at: for a copy of the segments alone (a frozen fixture).
    /// The removal of the newest segments is then only caught by an
    /// exported head ([`check_exported`]).
    Ignored,
}

/// The first problem found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    /// Segment number, when the problem is in one.
    pub segment: Option<u64>,
    /// Record number within the segment.
    pub record: Option<u64>,
    /// Byte offset within the segment.
    pub offset: Option<u64>,
    /// What is wrong.
    pub message: String,
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(s) = self.segment {
            write!(f, "audit segment {s:016x}.seg")?;
            if let Some(r) = self.record {
                write!(f, ", record {r}")?;
            }
            if let Some(o) = self.offset {
                write!(f, " (offset {o})")?;
            }
            write!(f, ": ")?;
        }
        f.write_str(&self.message)
    }
}

fn fail(segment: Option<u64>, record: Option<u64>, offset: Option<u64>, message: impl Into<String>) -> Failure {
    Failure { segment, record, offset, message: message.into() }
}

/// Verifies the log in `audit_dir`, including that it extends the saved
/// head. `keys` decrypt the events (the log key; an unencrypted log needs
/// none); the signatures are checked with `public_key` alone (which must
/// be the key of `keys`, when given). With `leaves`, every leaf hash is
/// collected (for proofs against an exported head).
pub fn verify(
    audit_dir: &Path,
    keys: Option<&Keys>,
    public_key: &[u8; 32],
    leaves: Option<&mut Vec<Hash>>,
) -> Result<Report, Failure> {
    verify_with(audit_dir, keys, public_key, leaves, SavedHead::Required)
}

/// [`verify`], saying whether the saved head is required.
pub fn verify_with(
    audit_dir: &Path,
    keys: Option<&Keys>,
    public_key: &[u8; 32],
    mut leaves: Option<&mut Vec<Hash>>,
    saved: SavedHead,
) -> Result<Report, Failure> {
    if !crate::keys::is_usable_public_key(public_key) {
        return Err(fail(
            None,
            None,
            None,
            "the public key (keys/signing.pub) is not a valid Ed25519 key (all zero, or of small order): \
             signatures checked with it would prove nothing",
        ));
    }
    if keys.is_some_and(|k| k.public_key() != *public_key) {
        return Err(fail(
            None,
            None,
            None,
            "the public key (keys/signing.pub) is not the key of keys/signing.key: one of them was replaced",
        ));
    }
    // Read before the segments: the writer saves a head only once it is in
    // a segment, so a log being written concurrently is never shorter.
    let mut against = match saved {
        SavedHead::Ignored => None,
        SavedHead::Required => match crate::head::read(audit_dir).map_err(|e| fail(None, None, None, e))? {
            Some(h) if !h.verify(public_key) => {
                return Err(fail(None, None, None, "head.json: the signature of the saved head is invalid"))
            }
            Some(h) => Some(Against::new(h)),
            None => {
                return Err(fail(
                    None,
                    None,
                    None,
                    "no saved head (head.json): the newest segments or the whole log may have been removed \
                     (a log last written before format version 2 has none: opening it once with the writer, \
                     `rampart serve`, saves one for the log as it is)",
                ))
            }
        },
    };
    let key_id = key_id_of(public_key);
    let mut frontier = Frontier::new();
    let mut base_size = 0;
    let mut last_head: Option<SignedHead> = None;
    if let Some(base) =
        crate::retention::read_base(audit_dir).map_err(|e| fail(None, None, None, format!("base.json: {e}")))?
    {
        let f = base
            .frontier()
            .ok_or_else(|| fail(None, None, None, "base.json: frontier does not match its tree size"))?;
        if base.sth.tree_size != f.size() || base.sth.root != f.root() {
            return Err(fail(None, None, None, "base.json: frontier does not hash to its signed root"));
        }
        if !base.sth.verify(public_key) {
            return Err(fail(None, None, None, "base.json: signature of its tree head is invalid"));
        }
        base_size = f.size();
        frontier = f;
        last_head = Some(base.sth);
    }
    if let Some(a) = against.as_mut() {
        a.step(&frontier).map_err(|m| fail(None, None, None, m))?;
    }
    let segments = segment::list(audit_dir);
    let segments = &segments;
    let mut report = Report {
        segments: 0,
        events: 0,
        heads: 0,
        tree_size: 0,
        root: [0; 32],
        base_size,
        last_head: None,
        saved_head: None,
    };
    let mut expected_segment: Option<u64> = None;
    let mut version = crate::format::MIN_VERSION;
    // Segments are read and checked (checksums, decryption, leaf hashes)
    // by one worker per core, each on a whole segment; this thread takes
    // the results in order and builds the tree, overlapping with them.
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get()).clamp(1, 8);
    let workers = cores.min(segments.len()).max(1);
    let per_segment_threads = if segments.len() == 1 { cores } else { 1 };
    let next = std::sync::atomic::AtomicUsize::new(0);
    let stop = std::sync::atomic::AtomicBool::new(false);
    type Loaded = Result<(Header, Vec<Checked>), Failure>;
    let (tx, rx) = std::sync::mpsc::sync_channel::<(usize, Loaded)>(workers * 2);
    // Many segments: each worker streams whole segments through a reused
    // window of a few MiB (fresh 64 MiB buffers would cost more in page
    // faults than the reading). One segment: read it and use every core.
    let load = |i: usize, window: &mut Vec<u8>| -> Loaded {
        let n = segments[i];
        let cannot = |e: std::io::Error| fail(Some(n), None, None, format!("cannot read: {e}"));
        let path = segment::segment_path(audit_dir, n);
        if per_segment_threads > 1 {
            let bytes = std::fs::read(&path).map_err(cannot)?;
            let header = Header::decode(&bytes).map_err(|e| fail(Some(n), None, Some(0), e))?;
            let checked = segment::check_segment(&bytes, &header, keys, per_segment_threads);
            return Ok((header, checked));
        }
        let f = std::fs::File::open(&path).map_err(cannot)?;
        let size = f.metadata().map_or(0, |m| m.len());
        segment::check_segment_stream(f, keys, window, size).map_err(|e| match e {
            segment::StreamError::Io(e) => cannot(e),
            segment::StreamError::Header(m) => fail(Some(n), None, Some(0), m),
        })
    };
    let result = std::thread::scope(|s| {
        for _ in 0..workers {
            let (tx, next, stop, load) = (tx.clone(), &next, &stop, &load);
            s.spawn(move || {
                let mut buf = Vec::new();
                loop {
                    let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    if i >= segments.len() || stop.load(std::sync::atomic::Ordering::Relaxed) {
                        return;
                    }
                    if tx.send((i, load(i, &mut buf))).is_err() {
                        return;
                    }
                }
            });
        }
        drop(tx);
        // The receiver is owned here, so that it is dropped as soon as the
        // tree is done: a worker blocked in `send` then gets an error and
        // returns, and the scope can join it (issue 10, point 6).
        let rx = rx;
        let mut pending = std::collections::BTreeMap::new();
        let mut results = rx.iter();
        let r = (|| {
            for (i, &n) in segments.iter().enumerate() {
                let loaded = loop {
                    if let Some(l) = pending.remove(&i) {
                        break l;
                    }
                    match results.next() {
                        Some((j, l)) => {
                            pending.insert(j, l);
                        }
                        None => return Err(fail(Some(n), None, None, "cannot read")),
                    }
                };
                let (header, checked): (Header, Vec<Checked>) = loaded?;
                if header.segment != n {
                    return Err(fail(
                        Some(n),
                        None,
                        Some(0),
                        format!("header says segment {:016x}: a segment was renamed or copied in", header.segment),
                    ));
                }
                if header.key_id != key_id {
                    return Err(fail(
                        Some(n),
                        None,
                        Some(0),
                        "signed by another key: a segment from another log was swapped in",
                    ));
                }
                if let Some(e) = expected_segment {
                    if n != e {
                        return Err(fail(Some(n), None, Some(0), format!("segment {e:016x} is missing")));
                    }
                }
                if header.first_leaf != frontier.size() {
                    return Err(fail(
                        Some(n),
                        None,
                        Some(0),
                        format!(
                            "starts at event {} but {} events precede it: events were removed or inserted",
                            header.first_leaf,
                            frontier.size()
                        ),
                    ));
                }
                if header.version < version {
                    return Err(fail(
                        Some(n),
                        None,
                        Some(0),
                        format!(
                            "format version {} after a segment of version {version}: a segment was rewritten \
                             as an older version (to drop its header signature)",
                            header.version
                        ),
                    ));
                }
                version = header.version;
                expected_segment = Some(n + 1);
                let mut error: Option<Failure> = None;
                let mut sealed = false;
                let mut signed_header = header.version < 2;
                for (record, item) in checked.into_iter().enumerate() {
                    let record = record as u64;
                    if !signed_header && !matches!(item, Checked::HeaderSignature { .. } | Checked::Bad { .. }) {
                        error = Some(fail(
                            Some(n),
                            Some(record),
                            None,
                            "the header signature is missing: the header was replaced or the segment cut",
                        ));
                        break;
                    }
                    match item {
                        Checked::HeaderSignature { offset, signature } => {
                            let at = |m: &str| Some(fail(Some(n), Some(record), Some(offset), m));
                            if signed_header {
                                error = at("a header signature that is not the first record of a version 2 segment");
                            } else if !header.verify_signature(&signature, public_key) {
                                error = at("the header signature is invalid: the segment header \
                                            (its creation time, number, first event or key) was altered");
                            }
                            if error.is_some() {
                                break;
                            }
                            signed_header = true;
                        }
                        Checked::Event { hash, offset } => {
                            if sealed {
                                error = Some(fail(
                                    Some(n),
                                    Some(record),
                                    Some(offset),
                                    "event after the seal: events were appended to a closed segment",
                                ));
                                break;
                            }
                            frontier.push(hash);
                            if let Some(l) = leaves.as_deref_mut() {
                                l.push(hash);
                            }
                            report.events += 1;
                            if let Some(Err(m)) = against.as_mut().map(|a| a.step(&frontier)) {
                                error = Some(fail(Some(n), Some(record), Some(offset), m));
                                break;
                            }
                        }
                        Checked::Head { offset, head, seal } => {
                            let at = |m: String| Some(fail(Some(n), Some(record), Some(offset), m));
                            if sealed {
                                error = at("record after the seal: events were appended to a closed segment".into());
                            } else if head.tree_size != frontier.size() {
                                error = at(format!(
                                "signed tree head covers {} events but {} precede it: events were removed or inserted",
                                head.tree_size,
                                frontier.size()
                            ));
                            } else if head.root != frontier.root() {
                                let since = last_head.as_ref().map_or(base_size, |h| h.tree_size);
                                error = at(format!(
                            "leaf hash does not match the signed head: an event between index {since} and {} was altered",
                            head.tree_size
                        ));
                            } else if !head.verify(public_key) {
                                error = at("signature of the tree head is invalid".into());
                            } else if last_head.as_ref().is_some_and(|h| h.timestamp_ms > head.timestamp_ms) {
                                error = at("tree head timestamp goes backwards".into());
                            }
                            if error.is_some() {
                                break;
                            }
                            sealed = seal;
                            report.heads += 1;
                            last_head = Some(*head);
                        }
                        Checked::Bad { offset, record, what } => {
                            error = Some(fail(Some(n), Some(record), Some(offset), what.describe()));
                            break;
                        }
                    }
                }
                if let Some(e) = error {
                    return Err(e);
                }
                if !signed_header {
                    return Err(fail(Some(n), None, None, "the header signature is missing: the segment was cut"));
                }
                let last = i + 1 == segments.len();
                if !last && !sealed {
                    return Err(fail(Some(n), None, None, "closed segment has no seal: its tail was truncated"));
                }
                report.segments += 1;
            }
            Ok(())
        })();
        // Workers still running stop at their next segment; those waiting
        // to hand over a result are released by dropping the receiver
        // (with the results queued in it) before the scope joins them.
        stop.store(true, std::sync::atomic::Ordering::Relaxed);
        drop(pending);
        drop(rx);
        r
    });
    result?;
    if let Some(a) = &against {
        if segments.is_empty() {
            return Err(fail(None, None, None, "the log has no segment left but a saved head: it was removed"));
        }
        a.finish(&frontier).map_err(|m| fail(None, None, None, m))?;
        // The writer saves heads only after it created a segment of version
        // 2, so a log with a saved head ends with one: a log whose segments
        // were all rewritten as version 1 (dropping the signed headers)
        // does not.
        if version < 2 {
            return Err(fail(
                segments.last().copied(),
                None,
                None,
                "the newest segment is of format version 1 but the log has a saved head: \
                 segments were rewritten as an older version (to drop their header signatures)",
            ));
        }
        report.saved_head = Some(a.head().clone());
    }
    report.tree_size = frontier.size();
    report.root = frontier.root();
    report.last_head = last_head;
    Ok(report)
}

/// Checks a head exported earlier against the log: signature, and that the
/// log extends it (the leaves are those collected by [`verify`]).
pub fn check_exported(
    audit_dir: &Path,
    head: &SignedHead,
    public_key: &[u8; 32],
    report: &Report,
    leaves: &[Hash],
) -> Result<(), Failure> {
    if !head.verify(public_key) {
        return Err(fail(None, None, None, "exported head: signature invalid (another log, or forged)"));
    }
    if head.tree_size > report.tree_size {
        return Err(fail(
            None,
            None,
            None,
            format!(
                "the log has {} events but the exported head covers {}: the log was truncated",
                report.tree_size, head.tree_size
            ),
        ));
    }
    if head.tree_size < report.base_size {
        return Err(fail(None, None, None, "exported head is older than the retention base; cannot be checked"));
    }
    // The tree at the head's size: the retention base's frontier (if any),
    // then the remaining leaves up to that size.
    let mut tree = crate::retention::read_base(audit_dir).ok().flatten().and_then(|b| b.frontier()).unwrap_or_default();
    let size = head.tree_size as usize;
    let from_leaves = size.saturating_sub(tree.size() as usize);
    if from_leaves > leaves.len() {
        return Err(fail(None, None, None, "the log is shorter than the exported head"));
    }
    for l in &leaves[..from_leaves] {
        tree.push(*l);
    }
    if tree.size() != head.tree_size || tree.root() != head.root {
        return Err(fail(
            None,
            None,
            None,
            format!("the first {size} events do not hash to the exported head: the log was rewritten"),
        ));
    }

    Ok(())
}
