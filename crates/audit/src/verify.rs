//! `rampart audit verify` (docs/audit-log-format.md, section 12): rebuilds
//! the tree from the segments and checks every signed tree head, reporting
//! the first problem with its segment, record and byte offset.

use std::fmt;
use std::path::Path;

use crate::format::{self, Header, SignedHead};
use crate::keys::{key_id_of, Keys};
use crate::merkle::{leaf_hash, Frontier, Hash};
use crate::segment::{self, Item};

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

/// Verifies the log in `audit_dir`. `keys` decrypt the events (the log
/// key); the signatures are checked with `public_key`. With `leaves`, every
/// leaf hash is collected (for proofs against an exported head).
pub fn verify(
    audit_dir: &Path,
    keys: &Keys,
    public_key: &[u8; 32],
    mut leaves: Option<&mut Vec<Hash>>,
) -> Result<Report, Failure> {
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
    let segments = segment::list(audit_dir);
    let mut report =
        Report { segments: 0, events: 0, heads: 0, tree_size: 0, root: [0; 32], base_size, last_head: None };
    let mut expected_segment: Option<u64> = None;
    for (i, &n) in segments.iter().enumerate() {
        let path = segment::segment_path(audit_dir, n);
        let bytes = std::fs::read(&path).map_err(|e| fail(Some(n), None, None, format!("cannot read: {e}")))?;
        let header = Header::decode(&bytes).map_err(|e| fail(Some(n), None, Some(0), e))?;
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
        expected_segment = Some(n + 1);
        let mut error: Option<Failure> = None;
        let mut sealed = false;
        let mut record = 0u64;
        segment::scan(&bytes, &header, Some(keys), |item| {
            match item {
                Item::Event { leaf, offset, plaintext } => {
                    sealed = false;
                    let h = leaf_hash(&plaintext);
                    frontier.push(h);
                    if let Some(l) = leaves.as_deref_mut() {
                        l.push(h);
                    }
                    report.events += 1;
                    let _ = (leaf, offset);
                }
                Item::Head { offset, head, seal } => {
                    if sealed {
                        error = Some(fail(
                            Some(n),
                            Some(record),
                            Some(offset),
                            "record after the seal: events were appended to a closed segment",
                        ));
                        return false;
                    }
                    sealed = seal;
                    if head.tree_size != frontier.size() {
                        error = Some(fail(
                            Some(n),
                            Some(record),
                            Some(offset),
                            format!(
                                "signed tree head covers {} events but {} precede it: events were removed or inserted",
                                head.tree_size,
                                frontier.size()
                            ),
                        ));
                        return false;
                    }
                    if head.root != frontier.root() {
                        let since = last_head.as_ref().map_or(base_size, |h| h.tree_size);
                        error = Some(fail(
                            Some(n),
                            Some(record),
                            Some(offset),
                            format!("leaf hash does not match the signed head: an event between index {since} and {} was altered", head.tree_size),
                        ));
                        return false;
                    }
                    if !head.verify(public_key) {
                        error =
                            Some(fail(Some(n), Some(record), Some(offset), "signature of the tree head is invalid"));
                        return false;
                    }
                    if last_head.as_ref().is_some_and(|h| h.timestamp_ms > head.timestamp_ms) {
                        error = Some(fail(Some(n), Some(record), Some(offset), "tree head timestamp goes backwards"));
                        return false;
                    }
                    report.heads += 1;
                    last_head = Some(head);
                }
                Item::Bad { offset, record, what } => {
                    error = Some(fail(Some(n), Some(record), Some(offset), what.describe()));
                    return false;
                }
            }
            record += 1;
            true
        });
        if let Some(e) = error {
            return Err(e);
        }
        let last = i + 1 == segments.len();
        if !last && !sealed {
            return Err(fail(Some(n), None, None, "closed segment has no seal: its tail was truncated"));
        }
        report.segments += 1;
    }
    report.tree_size = frontier.size();
    report.root = frontier.root();
    report.last_head = last_head;
    Ok(report)
}

/// Checks a head exported earlier against the log: signature, and that the
/// log extends it (the leaves are those collected by [`verify`]).
pub fn check_exported(
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
    let offset = report.base_size as usize;
    if offset > 0 {
        // Leaves before the base are gone; check from what remains.
        return Ok(());
    }
    let size = head.tree_size as usize;
    if size > leaves.len() || crate::merkle::root_of(&leaves[..size]) != head.root {
        return Err(fail(
            None,
            None,
            None,
            format!("the first {size} events do not hash to the exported head: the log was rewritten"),
        ));
    }
    let _ = format::STH_LEN;
    Ok(())
}
