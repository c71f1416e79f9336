//! Reading a log: events in order (decrypted), and leaf hashes for proofs.

use std::path::Path;

use serde_json::Value;

use crate::format::Header;
use crate::keys::Keys;
use crate::merkle::Hash;
use crate::segment::{self, Item};

/// One event as read back.
#[derive(Clone, Debug, PartialEq)]
pub struct Stored {
    /// Its leaf index.
    pub index: u64,
    /// Its time (Unix milliseconds).
    pub timestamp_ms: u64,
    /// The event.
    pub event: Value,
}

/// Reads the events of the log in `audit_dir` whose time is within
/// `[since_ms, until_ms]`, oldest first, using the indexes to skip
/// segments entirely outside the range. Stops at the first unreadable
/// record of a segment (`verify` says why).
pub fn events(audit_dir: &Path, keys: &Keys, since_ms: u64, until_ms: u64) -> Vec<Stored> {
    let mut out = Vec::new();
    for n in segment::list(audit_dir) {
        if let Some(idx) = segment::read_index(audit_dir, n) {
            let (lo, hi) =
                idx.iter().fold((u64::MAX, 0), |(lo, hi), e| (lo.min(e.timestamp_ms), hi.max(e.timestamp_ms)));
            if !idx.is_empty() && (hi < since_ms || lo > until_ms) {
                continue;
            }
        }
        let Ok(bytes) = std::fs::read(segment::segment_path(audit_dir, n)) else { continue };
        let Ok(header) = Header::decode(&bytes) else { continue };
        segment::scan(&bytes, &header, Some(keys), |item| match item {
            Item::Event { leaf, plaintext, .. } => {
                let ts = segment::timestamp_of(&plaintext);
                if ts >= since_ms && ts <= until_ms {
                    if let Ok(event) = serde_json::from_slice(&plaintext) {
                        out.push(Stored { index: leaf, timestamp_ms: ts, event });
                    }
                }
                true
            }
            Item::Head { .. } | Item::HeaderSignature { .. } => true,
            Item::Bad { .. } => false,
        });
    }
    out
}

/// Every event of the log (tests, export).
pub fn all_events(audit_dir: &Path, keys: &Keys) -> Vec<Value> {
    events(audit_dir, keys, 0, u64::MAX).into_iter().map(|s| s.event).collect()
}

/// The leaf hashes of the remaining segments, from their indexes, and the
/// leaf index of the first one (the retention base).
pub fn leaves(audit_dir: &Path, keys: &Keys) -> (u64, Vec<Hash>) {
    let base = crate::retention::read_base(audit_dir).ok().flatten().map_or(0, |b| b.tree_size);
    let mut out = Vec::new();
    for n in segment::list(audit_dir) {
        let entries = match segment::read_index(audit_dir, n) {
            Some(e) => e,
            None => {
                let Ok(bytes) = std::fs::read(segment::segment_path(audit_dir, n)) else { break };
                let Ok(header) = Header::decode(&bytes) else { break };
                segment::rebuild_index(&bytes, &header, keys)
            }
        };
        out.extend(entries.iter().map(|e| e.leaf));
    }
    (base, out)
}

/// Up to `max` events from leaf index `from` on, oldest first, reading only
/// the segments that hold them (for sinks following the log): headers say
/// where each segment starts, and the index of the last one says whether
/// anything new is there at all, so a caught-up sink reads no segment.
pub fn events_from(audit_dir: &Path, keys: &Keys, from: u64, max: usize) -> Vec<Stored> {
    use std::io::Read;
    let mut starts = Vec::new();
    for n in segment::list(audit_dir) {
        let mut head = [0u8; crate::format::HEADER_LEN];
        let ok = std::fs::File::open(segment::segment_path(audit_dir, n)).and_then(|mut f| f.read_exact(&mut head));
        if let (Ok(()), Ok(h)) = (ok, Header::decode(&head)) {
            starts.push((n, h.first_leaf));
        }
    }
    if let Some(&(n, first)) = starts.last() {
        if segment::read_index(audit_dir, n).is_some_and(|idx| first + idx.len() as u64 <= from) {
            return Vec::new();
        }
    }
    let mut out = Vec::new();
    for (i, &(n, _)) in starts.iter().enumerate() {
        if starts.get(i + 1).is_some_and(|&(_, next)| next <= from) {
            continue;
        }
        let Ok(bytes) = std::fs::read(segment::segment_path(audit_dir, n)) else { continue };
        let Ok(header) = Header::decode(&bytes) else { continue };
        segment::scan(&bytes, &header, Some(keys), |item| match item {
            Item::Event { leaf, plaintext, .. } => {
                if leaf >= from {
                    if let Ok(event) = serde_json::from_slice(&plaintext) {
                        out.push(Stored { index: leaf, timestamp_ms: segment::timestamp_of(&plaintext), event });
                    }
                }
                out.len() < max
            }
            Item::Head { .. } | Item::HeaderSignature { .. } => true,
            Item::Bad { .. } => false,
        });
        if out.len() >= max {
            break;
        }
    }
    out
}
