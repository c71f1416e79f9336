//! Retention (docs/audit-log-format.md, section 8): sealed segments are
//! removed oldest first by age and by total size, after `base.json` records
//! the frontier and the signed head at the end of the last removed segment,
//! so what remains stays verifiable.

use std::path::Path;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

use crate::format::{self, from_hex, to_hex, SignedHead};
use crate::keys::Keys;
use crate::merkle::Frontier;
use crate::segment::{self, Item};

/// The starting point of a log whose oldest segments were removed.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct Base {
    /// Format version (1).
    pub version: u32,
    /// Leaves before the first remaining segment.
    pub tree_size: u64,
    /// The frontier at that size, hex.
    pub frontier: Vec<String>,
    /// The seal of the last removed segment.
    pub sth: SignedHead,
}

impl Base {
    /// The frontier, if well-formed.
    pub fn frontier(&self) -> Option<Frontier> {
        let nodes = self.frontier.iter().map(|h| from_hex::<32>(h)).collect::<Option<Vec<_>>>()?;
        Frontier::from_parts(self.tree_size, nodes)
    }
}

/// Reads `base.json`; `Ok(None)` when there is none.
pub fn read_base(audit_dir: &Path) -> Result<Option<Base>, String> {
    match std::fs::read(audit_dir.join("base.json")) {
        Ok(b) => serde_json::from_slice(&b).map(Some).map_err(|e| e.to_string()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e.to_string()),
    }
}

/// Removes sealed segments (numbers below `open_segment`) older than
/// `max_age` or while the log is larger than `max_bytes`. Returns the
/// segments removed.
pub fn apply(
    audit_dir: &Path,
    keys: &Keys,
    max_age: Option<Duration>,
    max_bytes: Option<u64>,
    open_segment: u64,
) -> Result<Vec<u64>, String> {
    let segments = segment::list(audit_dir);
    let size = |n: u64| std::fs::metadata(segment::segment_path(audit_dir, n)).map_or(0, |m| m.len());
    let mut total: u64 = segments.iter().map(|n| size(*n)).sum();
    let now = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis() as u64);
    let mut frontier = match read_base(audit_dir)? {
        Some(b) => b.frontier().ok_or("base.json: bad frontier")?,
        None => Frontier::new(),
    };
    let mut removed = Vec::new();
    for &n in segments.iter().filter(|n| **n < open_segment) {
        let path = segment::segment_path(audit_dir, n);
        let bytes = std::fs::read(&path).map_err(|e| format!("{}: {e}", path.display()))?;
        let header = format::Header::decode(&bytes).map_err(|e| format!("{}: {e}", path.display()))?;
        // The age comes from the header: only a signed one is believed
        // (version 1 headers are not signed; kept readable as they were).
        if header.version >= 2 && !segment::header_is_signed(&bytes, &header, &keys.public_key()) {
            return Err(format!(
                "{}: header signature invalid; not removed (run `rampart audit verify`)",
                path.display()
            ));
        }
        let too_old = max_age.is_some_and(|a| now.saturating_sub(header.created_ms) > a.as_millis() as u64);
        let too_big = max_bytes.is_some_and(|b| total > b);
        if !(too_old || too_big) {
            break;
        }
        let entries = match segment::read_index(audit_dir, n) {
            Some(e) => e,
            None => segment::rebuild_index(&bytes, &header, keys),
        };
        for e in &entries {
            frontier.push(e.leaf);
        }
        let mut seal = None;
        segment::scan(&bytes, &header, None, |item| match item {
            Item::Head { head, seal: true, .. } => {
                seal = Some(head);
                true
            }
            Item::Bad { .. } => false,
            _ => true,
        });
        let Some(seal) = seal.filter(|s| s.tree_size == frontier.size() && s.root == frontier.root()) else {
            return Err(format!("{}: no seal matching its events; not removed", path.display()));
        };
        let base = Base {
            version: 1,
            tree_size: frontier.size(),
            frontier: frontier.nodes().iter().map(|h| to_hex(h)).collect(),
            sth: seal,
        };
        let json = serde_json::to_vec_pretty(&base).map_err(|e| e.to_string())?;
        crate::keys::write_private(&audit_dir.join("base.json"), &json).map_err(|e| format!("base.json: {e}"))?;
        std::fs::remove_file(&path).map_err(|e| format!("{}: {e}", path.display()))?;
        let _ = std::fs::remove_file(segment::index_path(audit_dir, n));
        total = total.saturating_sub(bytes.len() as u64);
        removed.push(n);
    }
    Ok(removed)
}
