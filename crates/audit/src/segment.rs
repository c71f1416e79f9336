//! Segment files on disk: naming, listing, reading records with their
//! offsets, and the index sidecar (docs/audit-log-format.md, sections 3
//! and 9).

use std::io::Write;
use std::path::{Path, PathBuf};

use crate::format::{self, Header, RecordError, HEADER_LEN, TYPE_EVENT};
use crate::keys::Keys;
use crate::merkle::{leaf_hash, Hash};

/// Bytes of an index header.
pub const IDX_HEADER_LEN: usize = 16;
/// Bytes of an index entry.
pub const IDX_ENTRY_LEN: usize = 48;
const IDX_MAGIC: &[u8; 8] = b"RAMPIDX1";

/// The segments directory of an audit directory.
pub fn segments_dir(audit_dir: &Path) -> PathBuf {
    audit_dir.join("segments")
}

/// Path of segment `n`.
pub fn segment_path(audit_dir: &Path, n: u64) -> PathBuf {
    segments_dir(audit_dir).join(format!("{n:016x}.seg"))
}

/// Path of the index of segment `n`.
pub fn index_path(audit_dir: &Path, n: u64) -> PathBuf {
    segments_dir(audit_dir).join(format!("{n:016x}.idx"))
}

/// Segment numbers present, in order.
pub fn list(audit_dir: &Path) -> Vec<u64> {
    let mut v: Vec<u64> = std::fs::read_dir(segments_dir(audit_dir))
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| {
            let name = e.file_name().into_string().ok()?;
            let hex = name.strip_suffix(".seg")?;
            (hex.len() == 16).then(|| u64::from_str_radix(hex, 16).ok()).flatten()
        })
        .collect();
    v.sort_unstable();
    v
}

/// One index entry.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct IndexEntry {
    /// The event's leaf hash.
    pub leaf: Hash,
    /// The event's time, Unix milliseconds.
    pub timestamp_ms: u64,
    /// Byte offset of its record in the segment.
    pub offset: u64,
}

impl IndexEntry {
    /// Appends the 48-byte encoding.
    pub fn encode(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.leaf);
        out.extend_from_slice(&self.timestamp_ms.to_be_bytes());
        out.extend_from_slice(&self.offset.to_be_bytes());
    }

    fn decode(b: &[u8]) -> Self {
        let mut leaf = [0u8; 32];
        leaf.copy_from_slice(&b[..32]);
        let u = |s: &[u8]| u64::from_be_bytes(s.try_into().unwrap_or_default());
        IndexEntry { leaf, timestamp_ms: u(&b[32..40]), offset: u(&b[40..48]) }
    }
}

/// The 16-byte index header.
pub fn index_header(segment: u64) -> Vec<u8> {
    let mut h = IDX_MAGIC.to_vec();
    h.extend_from_slice(&segment.to_be_bytes());
    h
}

/// Reads an index; `None` if missing or malformed.
pub fn read_index(audit_dir: &Path, segment: u64) -> Option<Vec<IndexEntry>> {
    let b = std::fs::read(index_path(audit_dir, segment)).ok()?;
    if b.len() < IDX_HEADER_LEN || &b[..8] != IDX_MAGIC || b[8..16] != segment.to_be_bytes() {
        return None;
    }
    let body = &b[IDX_HEADER_LEN..];
    // A torn last entry (the index is not synced) is ignored.
    Some(body.chunks_exact(IDX_ENTRY_LEN).map(IndexEntry::decode).collect())
}

/// Writes an index whole (after a rebuild).
pub fn write_index(audit_dir: &Path, segment: u64, entries: &[IndexEntry]) -> std::io::Result<()> {
    let mut b = index_header(segment);
    for e in entries {
        e.encode(&mut b);
    }
    let path = index_path(audit_dir, segment);
    let tmp = path.with_extension("idx.tmp");
    crate::keys::private_file_options().write(true).create(true).truncate(true).open(&tmp)?.write_all(&b)?;
    std::fs::rename(tmp, path)
}

/// A record of a segment, as the scan meets it.
pub enum Item {
    /// An event.
    Event {
        /// Its leaf index.
        leaf: u64,
        /// Offset of its record.
        offset: u64,
        /// The canonical event.
        plaintext: Vec<u8>,
    },
    /// A signed tree head.
    Head {
        /// Offset of its record.
        offset: u64,
        /// The head.
        head: format::SignedHead,
        /// Whether it is the seal that closes the segment.
        seal: bool,
    },
    /// The signature of the segment header (version 2).
    HeaderSignature {
        /// Offset of its record.
        offset: u64,
        /// The signature.
        signature: [u8; format::HEADER_SIG_LEN],
    },
    /// A record that cannot be used.
    Bad {
        /// Its offset.
        offset: u64,
        /// Its number in the segment.
        record: u64,
        /// What is wrong.
        what: BadRecord,
    },
}

/// What is wrong with a record.
pub enum BadRecord {
    /// Framing: torn, too long, checksum.
    Frame(RecordError),
    /// An event that does not decrypt at its position.
    Undecryptable,
    /// A tree head body of the wrong size.
    BadHead,
    /// A header signature body of the wrong size.
    BadHeaderSignature,
    /// An unknown record type.
    UnknownType(u8),
}

impl BadRecord {
    /// Words for reports.
    pub fn describe(&self) -> String {
        match self {
            BadRecord::Frame(e) => e.as_str().to_string(),
            BadRecord::Undecryptable => "event does not decrypt at this position (altered, inserted or moved)".into(),
            BadRecord::BadHead => "signed tree head of the wrong size".into(),
            BadRecord::BadHeaderSignature => "header signature of the wrong size".into(),
            BadRecord::UnknownType(t) => format!("unknown record type {t}"),
        }
    }
}

/// Walks the records of one segment's bytes, decrypting events (without
/// `keys`, event bodies are passed as stored), and calls `f` for each;
/// stops after the first bad record or when `f` says so.
pub fn scan(bytes: &[u8], header: &Header, keys: Option<&Keys>, mut f: impl FnMut(Item) -> bool) {
    let encrypted = header.flags & format::FLAG_ENCRYPTED != 0;
    let mut pos = HEADER_LEN;
    let mut leaf = header.first_leaf;
    let mut record = 0u64;
    loop {
        let rec = match format::decode_record(&bytes[pos..]) {
            Ok(Some(r)) => r,
            Ok(None) => return,
            Err(e) => {
                f(Item::Bad { offset: pos as u64, record, what: BadRecord::Frame(e) });
                return;
            }
        };
        let offset = pos as u64;
        let go_on = match rec.kind {
            TYPE_EVENT => {
                let plaintext = if encrypted && keys.is_some() {
                    let mut body = rec.body.to_vec();
                    match keys
                        .and_then(|k| k.open(header.nonce_prefix, header.segment, leaf, &mut body).map(|p| p.len()))
                    {
                        Some(n) => {
                            body.truncate(n);
                            Some(body)
                        }
                        None => None,
                    }
                } else {
                    Some(rec.body.to_vec())
                };
                match plaintext {
                    Some(plaintext) => {
                        leaf += 1;
                        f(Item::Event { leaf: leaf - 1, offset, plaintext })
                    }
                    None => {
                        f(Item::Bad { offset, record, what: BadRecord::Undecryptable });
                        false
                    }
                }
            }
            format::TYPE_STH | format::TYPE_SEAL => match format::SignedHead::decode(rec.body) {
                Some(head) => f(Item::Head { offset, head, seal: rec.kind == format::TYPE_SEAL }),
                None => {
                    f(Item::Bad { offset, record, what: BadRecord::BadHead });
                    false
                }
            },
            format::TYPE_HEADER_SIG => match rec.body.try_into() {
                Ok(signature) => f(Item::HeaderSignature { offset, signature }),
                Err(_) => {
                    f(Item::Bad { offset, record, what: BadRecord::BadHeaderSignature });
                    false
                }
            },
            other => {
                f(Item::Bad { offset, record, what: BadRecord::UnknownType(other) });
                false
            }
        };
        if !go_on {
            return;
        }
        pos += rec.len;
        record += 1;
    }
}

/// Whether a segment's header is authenticated: for version 2, its first
/// record is a valid header signature; version 1 headers are not signed.
pub fn header_is_signed(bytes: &[u8], header: &Header, public_key: &[u8; 32]) -> bool {
    let Some(Ok(Some(rec))) = bytes.get(HEADER_LEN..).map(format::decode_record) else { return false };
    let Ok(signature) = rec.body.try_into() else { return false };
    header.version >= 2 && rec.kind == format::TYPE_HEADER_SIG && header.verify_signature(&signature, public_key)
}

/// Rebuilds a segment's index from its bytes (events that decrypt, up to
/// the first bad record).
pub fn rebuild_index(bytes: &[u8], header: &Header, keys: &Keys) -> Vec<IndexEntry> {
    let mut entries = Vec::new();
    scan(bytes, header, Some(keys), |item| {
        if let Item::Event { offset, plaintext, .. } = item {
            entries.push(IndexEntry { leaf: leaf_hash(&plaintext), timestamp_ms: timestamp_of(&plaintext), offset });
        }
        true
    });
    entries
}

/// The `@timestamp` of a canonical event, in Unix milliseconds (0 if none).
pub fn timestamp_of(plaintext: &[u8]) -> u64 {
    // Canonical events start with "{\"@timestamp\":\"" since '@' sorts first.
    let Some(rest) = plaintext.strip_prefix(b"{\"@timestamp\":\"") else { return 0 };
    let end = rest.iter().position(|b| *b == b'"').unwrap_or(0);
    std::str::from_utf8(&rest[..end])
        .ok()
        .and_then(|s| humantime::parse_rfc3339(s).ok())
        .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
        .map_or(0, |d| d.as_millis() as u64)
}

/// A record as verification needs it: events reduced to their leaf hash.
pub enum Checked {
    /// An event and its leaf hash.
    Event {
        /// Offset of its record.
        offset: u64,
        /// `leaf_hash` of its plaintext.
        hash: Hash,
    },
    /// A signed tree head (boxed: heads are rare, events many).
    Head {
        /// Offset of its record.
        offset: u64,
        /// The head.
        head: Box<format::SignedHead>,
        /// Whether it is the seal.
        seal: bool,
    },
    /// The signature of the segment header (version 2).
    HeaderSignature {
        /// Offset of its record.
        offset: u64,
        /// The signature.
        signature: [u8; format::HEADER_SIG_LEN],
    },
    /// The first record that cannot be used; nothing follows it.
    Bad {
        /// Its offset.
        offset: u64,
        /// Its number in the segment.
        record: u64,
        /// What is wrong.
        what: BadRecord,
    },
}

/// Checks every record of a segment, decrypting and hashing events on all
/// cores: framing first (lengths only), then checksums, decryption and leaf
/// hashes in parallel chunks. The result is in record order and ends at the
/// first bad record.
pub fn check_segment(bytes: &[u8], header: &Header, keys: Option<&Keys>, threads: usize) -> Vec<Checked> {
    // 1. Framing: where each record is, and the leaf index of each event.
    let mut frames: Vec<(usize, usize, u8, u64)> = Vec::new();
    let mut tail_error = None;
    let mut pos = HEADER_LEN;
    let mut leaf = header.first_leaf;
    while pos < bytes.len() {
        let rest = &bytes[pos..];
        if rest.len() < 5 {
            tail_error = Some(RecordError::Truncated);
            break;
        }
        let len = u32::from_be_bytes([rest[0], rest[1], rest[2], rest[3]]) as usize;
        if len > format::MAX_RECORD {
            tail_error = Some(RecordError::TooLong);
            break;
        }
        if rest.len() < format::RECORD_OVERHEAD + len {
            tail_error = Some(RecordError::Truncated);
            break;
        }
        frames.push((pos, len, rest[4], leaf));
        if rest[4] == TYPE_EVENT {
            leaf += 1;
        }
        pos += format::RECORD_OVERHEAD + len;
    }
    // 2. Checksums, decryption and hashes, in parallel.
    let check = |&(pos, len, kind, leaf): &(usize, usize, u8, u64), buf: &mut Vec<u8>, record: u64| -> Checked {
        let stored = u32::from_be_bytes(bytes[pos + 5 + len..pos + 9 + len].try_into().unwrap_or_default());
        buf.clear();
        buf.extend_from_slice(&bytes[pos + 5..pos + 5 + len]);
        check_record(header, keys, kind, buf, stored, leaf, pos as u64, record)
    };
    if threads <= 1 {
        let mut buf = Vec::with_capacity(4096);
        let mut out = Vec::with_capacity(frames.len() + 1);
        for (i, f) in frames.iter().enumerate() {
            let c = check(f, &mut buf, i as u64);
            let bad = matches!(c, Checked::Bad { .. });
            out.push(c);
            if bad {
                return out;
            }
        }
        if let Some(e) = tail_error {
            out.push(Checked::Bad { offset: pos as u64, record: frames.len() as u64, what: BadRecord::Frame(e) });
        }
        return out;
    }
    let chunk = frames.len().div_ceil(threads.max(1)).max(1024);
    let mut out: Vec<Checked> = Vec::with_capacity(frames.len() + 1);
    std::thread::scope(|s| {
        let handles: Vec<_> = frames
            .chunks(chunk)
            .enumerate()
            .map(|(c, part)| {
                s.spawn(move || {
                    let mut buf = Vec::with_capacity(4096);
                    part.iter().enumerate().map(|(i, f)| check(f, &mut buf, (c * chunk + i) as u64)).collect::<Vec<_>>()
                })
            })
            .collect();
        for h in handles {
            match h.join() {
                Ok(part) => out.extend(part),
                Err(_) => out.push(Checked::Bad { offset: 0, record: 0, what: BadRecord::BadHead }),
            }
        }
    });
    if let Some(first_bad) = out.iter().position(|c| matches!(c, Checked::Bad { .. })) {
        out.truncate(first_bad + 1);
        return out;
    }
    if let Some(e) = tail_error {
        out.push(Checked::Bad { offset: pos as u64, record: frames.len() as u64, what: BadRecord::Frame(e) });
    }
    out
}

/// Checks one record: checksum, then decryption and leaf hash for an event,
/// decoding for a head.
#[allow(clippy::too_many_arguments)]
fn check_record(
    header: &Header,
    keys: Option<&Keys>,
    kind: u8,
    body: &mut [u8],
    stored_crc: u32,
    leaf: u64,
    offset: u64,
    record: u64,
) -> Checked {
    let mut crc = crc32fast::Hasher::new();
    crc.update(&[kind]);
    crc.update(body);
    if crc.finalize() != stored_crc {
        return Checked::Bad { offset, record, what: BadRecord::Frame(RecordError::BadCrc) };
    }
    match kind {
        // Decrypted in place: the caller's copy of the record is not reused.
        TYPE_EVENT if header.flags & format::FLAG_ENCRYPTED != 0 => {
            match keys.and_then(|k| k.open(header.nonce_prefix, header.segment, leaf, body)) {
                Some(plain) => Checked::Event { offset, hash: leaf_hash(plain) },
                None => Checked::Bad { offset, record, what: BadRecord::Undecryptable },
            }
        }
        TYPE_EVENT => Checked::Event { offset, hash: leaf_hash(body) },
        format::TYPE_STH | format::TYPE_SEAL => match format::SignedHead::decode(body) {
            Some(head) => Checked::Head { offset, head: Box::new(head), seal: kind == format::TYPE_SEAL },
            None => Checked::Bad { offset, record, what: BadRecord::BadHead },
        },
        format::TYPE_HEADER_SIG => match (&*body).try_into() {
            Ok(signature) => Checked::HeaderSignature { offset, signature },
            Err(_) => Checked::Bad { offset, record, what: BadRecord::BadHeaderSignature },
        },
        other => Checked::Bad { offset, record, what: BadRecord::UnknownType(other) },
    }
}

/// Bytes a streaming check keeps in memory beyond one record.
const WINDOW: usize = 8 << 20;

/// Why a segment could not be streamed.
pub enum StreamError {
    /// Reading failed.
    Io(std::io::Error),
    /// The header is not a valid segment header.
    Header(&'static str),
}

/// Like [`check_segment`] on one thread, reading the segment through a
/// window of a few MiB (`window` is reused between calls) instead of
/// loading it whole.
pub fn check_segment_stream(
    mut f: impl std::io::Read,
    keys: Option<&Keys>,
    window: &mut Vec<u8>,
    size_hint: u64,
) -> Result<(Header, Vec<Checked>), StreamError> {
    use std::io::Read;
    let mut head = [0u8; HEADER_LEN];
    f.read_exact(&mut head).map_err(|e| match e.kind() {
        std::io::ErrorKind::UnexpectedEof => StreamError::Header("shorter than a segment header"),
        _ => StreamError::Io(e),
    })?;
    let header = Header::decode(&head).map_err(StreamError::Header)?;
    let cap = WINDOW + format::MAX_RECORD + format::RECORD_OVERHEAD;
    window.clear();
    window.reserve(cap);
    // Events are rarely under 256 bytes: one allocation for the results.
    let mut out = Vec::with_capacity((size_hint / 256) as usize + 16);
    let mut base = HEADER_LEN as u64; // file offset of window[0]
    let mut leaf = header.first_leaf;
    let mut record = 0u64;
    loop {
        let want = (cap - window.len()) as u64;
        let got = (&mut f).take(want).read_to_end(window).map_err(StreamError::Io)?;
        let eof = (got as u64) < want;
        let mut pos = 0;
        loop {
            let rest = &window[pos..];
            if rest.is_empty() {
                break;
            }
            let offset = base + pos as u64;
            if rest.len() < 5 {
                if eof {
                    out.push(Checked::Bad { offset, record, what: BadRecord::Frame(RecordError::Truncated) });
                    return Ok((header, out));
                }
                break;
            }
            let len = u32::from_be_bytes([rest[0], rest[1], rest[2], rest[3]]) as usize;
            if len > format::MAX_RECORD {
                out.push(Checked::Bad { offset, record, what: BadRecord::Frame(RecordError::TooLong) });
                return Ok((header, out));
            }
            if rest.len() < format::RECORD_OVERHEAD + len {
                if eof {
                    out.push(Checked::Bad { offset, record, what: BadRecord::Frame(RecordError::Truncated) });
                    return Ok((header, out));
                }
                break;
            }
            let kind = rest[4];
            let stored = u32::from_be_bytes([rest[5 + len], rest[6 + len], rest[7 + len], rest[8 + len]]);
            let c =
                check_record(&header, keys, kind, &mut window[pos + 5..pos + 5 + len], stored, leaf, offset, record);
            let bad = matches!(c, Checked::Bad { .. });
            out.push(c);
            if bad {
                return Ok((header, out));
            }
            if kind == TYPE_EVENT {
                leaf += 1;
            }
            record += 1;
            pos += format::RECORD_OVERHEAD + len;
        }
        if eof && pos == window.len() {
            return Ok((header, out));
        }
        window.drain(..pos);
        base += pos as u64;
    }
}
