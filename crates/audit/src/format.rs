//! Byte layout of segments (docs/audit-log-format.md, section 3): the
//! header, records and signed tree heads. Readers check every length
//! against the bytes present and `MAX_RECORD` before using it.

use crate::merkle::Hash;

/// First 8 bytes of every segment.
pub const MAGIC: &[u8; 8] = b"RAMPAUD\n";
/// Format version written (section 14): 2 adds the header signature.
pub const VERSION: u16 = 2;
/// Oldest format version still read.
pub const MIN_VERSION: u16 = 1;
/// Size of a segment header.
pub const HEADER_LEN: usize = 64;
/// Header flag: event bodies are encrypted.
pub const FLAG_ENCRYPTED: u16 = 1;
/// Largest record body a reader accepts.
pub const MAX_RECORD: usize = 1 << 20;
/// Record framing: length (4) + type (1) before the body, CRC (4) after.
pub const RECORD_OVERHEAD: usize = 9;
/// Record type: an event.
pub const TYPE_EVENT: u8 = 1;
/// Record type: a signed tree head.
pub const TYPE_STH: u8 = 2;
/// Record type: the seal that closes a segment.
pub const TYPE_SEAL: u8 = 3;
/// Record type: the signature of the segment header, first record of a
/// version 2 segment.
pub const TYPE_HEADER_SIG: u8 = 4;
/// Size of a header signature body.
pub const HEADER_SIG_LEN: usize = 64;
/// Domain separation of the signed segment header.
pub const HEADER_SIG_CONTEXT: &[u8; 16] = b"RAMPART-SEG-V2\0\0";
/// Size of a signed tree head body.
pub const STH_LEN: usize = 112;
/// Domain separation of the signed message.
pub const STH_CONTEXT: &[u8; 16] = b"RAMPART-STH-V1\0\0";

/// A segment header.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Header {
    /// Format version of the segment (1 or 2).
    pub version: u16,
    /// Header flags.
    pub flags: u16,
    /// Segment number.
    pub segment: u64,
    /// Leaf index of the first event.
    pub first_leaf: u64,
    /// Creation time, Unix milliseconds.
    pub created_ms: u64,
    /// First 16 bytes of SHA-256 of the signing public key.
    pub key_id: [u8; 16],
    /// Random prefix of every nonce in the segment.
    pub nonce_prefix: [u8; 4],
}

impl Header {
    /// The 64 bytes on disk.
    pub fn encode(&self) -> [u8; HEADER_LEN] {
        let mut b = [0u8; HEADER_LEN];
        b[..8].copy_from_slice(MAGIC);
        b[8..10].copy_from_slice(&self.version.to_be_bytes());
        b[10..12].copy_from_slice(&self.flags.to_be_bytes());
        b[12..20].copy_from_slice(&self.segment.to_be_bytes());
        b[20..28].copy_from_slice(&self.first_leaf.to_be_bytes());
        b[28..36].copy_from_slice(&self.created_ms.to_be_bytes());
        b[36..52].copy_from_slice(&self.key_id);
        b[52..56].copy_from_slice(&self.nonce_prefix);
        b
    }

    /// Parses a header, naming what is wrong.
    pub fn decode(b: &[u8]) -> Result<Self, &'static str> {
        if b.len() < HEADER_LEN {
            return Err("shorter than a segment header");
        }
        if &b[..8] != MAGIC {
            return Err("not a Rampart audit segment (bad magic)");
        }
        let version = u16::from_be_bytes([b[8], b[9]]);
        if !(MIN_VERSION..=VERSION).contains(&version) {
            return Err("unsupported segment version");
        }
        // Version 2 signs the header as encoded, reserved bytes as zeros:
        // anything else there would be unsigned.
        if version >= 2 && b[56..HEADER_LEN].iter().any(|x| *x != 0) {
            return Err("reserved header bytes are not zero");
        }
        Ok(Header {
            version,
            flags: u16::from_be_bytes([b[10], b[11]]),
            segment: be64(&b[12..20]),
            first_leaf: be64(&b[20..28]),
            created_ms: be64(&b[28..36]),
            key_id: b[36..52].try_into().unwrap_or_default(),
            nonce_prefix: b[52..56].try_into().unwrap_or_default(),
        })
    }
}

impl Header {
    /// What the header signature covers (section 3.1):
    /// `"RAMPART-SEG-V2\0\0" || header (64)`.
    pub fn signed_message(&self) -> [u8; 16 + HEADER_LEN] {
        let mut m = [0u8; 16 + HEADER_LEN];
        m[..16].copy_from_slice(HEADER_SIG_CONTEXT);
        m[16..].copy_from_slice(&self.encode());
        m
    }

    /// Checks a header signature with the public key.
    pub fn verify_signature(&self, signature: &[u8; HEADER_SIG_LEN], public_key: &[u8; 32]) -> bool {
        let key = ring::signature::UnparsedPublicKey::new(&ring::signature::ED25519, public_key);
        key.verify(&self.signed_message(), signature).is_ok()
    }
}

fn be64(b: &[u8]) -> u64 {
    let mut a = [0u8; 8];
    a.copy_from_slice(&b[..8]);
    u64::from_be_bytes(a)
}

/// Appends one framed record to `out`.
pub fn encode_record(out: &mut Vec<u8>, kind: u8, body: &[u8]) {
    out.extend_from_slice(&(body.len() as u32).to_be_bytes());
    out.push(kind);
    out.extend_from_slice(body);
    let mut crc = crc32fast::Hasher::new();
    crc.update(&[kind]);
    crc.update(body);
    out.extend_from_slice(&crc.finalize().to_be_bytes());
}

/// One record as read.
#[derive(Debug, PartialEq, Eq)]
pub struct Record<'a> {
    /// Its type.
    pub kind: u8,
    /// Its body.
    pub body: &'a [u8],
    /// Bytes it occupies, framing included.
    pub len: usize,
}

/// Why the bytes at some offset are not a record.
#[derive(Debug, PartialEq, Eq, Clone, Copy)]
pub enum RecordError {
    /// The file ends inside the record (a torn write).
    Truncated,
    /// The length field is over `MAX_RECORD`.
    TooLong,
    /// The CRC does not match.
    BadCrc,
}

impl RecordError {
    /// Words for reports.
    pub fn as_str(self) -> &'static str {
        match self {
            RecordError::Truncated => "record cut short (torn write or truncation)",
            RecordError::TooLong => "record length over the 1 MiB limit",
            RecordError::BadCrc => "record checksum mismatch",
        }
    }
}

/// Reads the record at the start of `b`; `Ok(None)` at the end of data.
pub fn decode_record(b: &[u8]) -> Result<Option<Record<'_>>, RecordError> {
    if b.is_empty() {
        return Ok(None);
    }
    if b.len() < 5 {
        return Err(RecordError::Truncated);
    }
    let len = u32::from_be_bytes([b[0], b[1], b[2], b[3]]) as usize;
    if len > MAX_RECORD {
        return Err(RecordError::TooLong);
    }
    let total = RECORD_OVERHEAD + len;
    if b.len() < total {
        return Err(RecordError::Truncated);
    }
    let kind = b[4];
    let body = &b[5..5 + len];
    let stored = u32::from_be_bytes([b[5 + len], b[6 + len], b[7 + len], b[8 + len]]);
    let mut crc = crc32fast::Hasher::new();
    crc.update(&[kind]);
    crc.update(body);
    if crc.finalize() != stored {
        return Err(RecordError::BadCrc);
    }
    Ok(Some(Record { kind, body, len: total }))
}

/// A signed tree head.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct SignedHead {
    /// Leaves covered.
    pub tree_size: u64,
    /// Signing time, Unix milliseconds.
    pub timestamp_ms: u64,
    /// Root hash, hex.
    #[serde(with = "hex32")]
    pub root: Hash,
    /// Ed25519 signature, hex.
    #[serde(with = "hex64")]
    pub signature: [u8; 64],
}

impl SignedHead {
    /// The message the signature covers.
    pub fn message(tree_size: u64, timestamp_ms: u64, root: &Hash) -> [u8; 64] {
        let mut m = [0u8; 64];
        m[..16].copy_from_slice(STH_CONTEXT);
        m[16..24].copy_from_slice(&tree_size.to_be_bytes());
        m[24..32].copy_from_slice(&timestamp_ms.to_be_bytes());
        m[32..].copy_from_slice(root);
        m
    }

    /// The record body.
    pub fn encode(&self) -> [u8; STH_LEN] {
        let mut b = [0u8; STH_LEN];
        b[..8].copy_from_slice(&self.tree_size.to_be_bytes());
        b[8..16].copy_from_slice(&self.timestamp_ms.to_be_bytes());
        b[16..48].copy_from_slice(&self.root);
        b[48..].copy_from_slice(&self.signature);
        b
    }

    /// Parses a record body.
    pub fn decode(b: &[u8]) -> Option<Self> {
        if b.len() != STH_LEN {
            return None;
        }
        Some(SignedHead {
            tree_size: be64(&b[..8]),
            timestamp_ms: be64(&b[8..16]),
            root: b[16..48].try_into().ok()?,
            signature: b[48..].try_into().ok()?,
        })
    }

    /// Checks the signature with the public key.
    pub fn verify(&self, public_key: &[u8; 32]) -> bool {
        let key = ring::signature::UnparsedPublicKey::new(&ring::signature::ED25519, public_key);
        key.verify(&Self::message(self.tree_size, self.timestamp_ms, &self.root), &self.signature).is_ok()
    }
}

/// Lower-case hex.
pub fn to_hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// Parses hex of exactly `N` bytes.
pub fn from_hex<const N: usize>(s: &str) -> Option<[u8; N]> {
    if s.len() != N * 2 {
        return None;
    }
    let mut out = [0u8; N];
    for (i, o) in out.iter_mut().enumerate() {
        *o = u8::from_str_radix(s.get(2 * i..2 * i + 2)?, 16).ok()?;
    }
    Some(out)
}

macro_rules! hex_serde {
    ($name:ident, $n:literal) => {
        mod $name {
            use serde::{Deserialize, Deserializer, Serializer};
            pub fn serialize<S: Serializer>(v: &[u8; $n], s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str(&super::to_hex(v))
            }
            pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<[u8; $n], D::Error> {
                let s = String::deserialize(d)?;
                super::from_hex::<$n>(&s)
                    .ok_or_else(|| serde::de::Error::custom(concat!("expected ", $n, " bytes of hex")))
            }
        }
    };
}
hex_serde!(hex32, 32);
hex_serde!(hex64, 64);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_round_trip_and_errors() {
        let h = Header {
            version: VERSION,
            flags: 1,
            segment: 7,
            first_leaf: 1000,
            created_ms: 42,
            key_id: [9; 16],
            nonce_prefix: [1, 2, 3, 4],
        };
        assert_eq!(Header::decode(&h.encode()).unwrap(), h);
        assert!(Header::decode(&h.encode()[..10]).is_err());
        let mut bad = h.encode();
        bad[0] = b'X';
        assert_eq!(Header::decode(&bad).unwrap_err(), "not a Rampart audit segment (bad magic)");
        let mut reserved = h.encode();
        reserved[60] = 1;
        assert_eq!(Header::decode(&reserved).unwrap_err(), "reserved header bytes are not zero");
        let v1 = Header { version: 1, ..h.clone() };
        assert_eq!(Header::decode(&v1.encode()).unwrap(), v1);
        let mut v3 = h.encode();
        v3[9] = 3;
        assert_eq!(Header::decode(&v3).unwrap_err(), "unsupported segment version");
    }

    #[test]
    fn records_detect_truncation_and_corruption() {
        let mut buf = Vec::new();
        encode_record(&mut buf, TYPE_EVENT, b"hello");
        encode_record(&mut buf, TYPE_STH, b"world!");
        let r = decode_record(&buf).unwrap().unwrap();
        assert_eq!((r.kind, r.body), (TYPE_EVENT, &b"hello"[..]));
        let r2 = decode_record(&buf[r.len..]).unwrap().unwrap();
        assert_eq!(r2.body, b"world!");
        assert_eq!(decode_record(&buf[r.len + r2.len..]).unwrap(), None);
        for cut in 1..r.len {
            assert_eq!(decode_record(&buf[..cut]), Err(RecordError::Truncated), "cut {cut}");
        }
        let mut flipped = buf.clone();
        flipped[6] ^= 0x20;
        assert_eq!(decode_record(&flipped), Err(RecordError::BadCrc));
        let huge = [0xff, 0xff, 0xff, 0xff, 1, 0, 0];
        assert_eq!(decode_record(&huge), Err(RecordError::TooLong));
    }

    #[test]
    fn signed_head_round_trip() {
        let h = SignedHead { tree_size: 5, timestamp_ms: 6, root: [7; 32], signature: [8; 64] };
        assert_eq!(SignedHead::decode(&h.encode()).unwrap(), h);
        let json = serde_json::to_string(&h).unwrap();
        assert_eq!(serde_json::from_str::<SignedHead>(&json).unwrap(), h);
        assert!(SignedHead::decode(&[0; 10]).is_none());
    }
}
