//! Rampart's audit log: tamper-evident, masked, encrypted at rest.
//!
//! Every component reports what it did as a [`rampart_core::Event`] to an
//! [`AuditLog`]. The event is masked ([`mask`]) on the producer's thread,
//! encoded canonically, then appended by the writer thread with group
//! commit: encrypted (AES-256-GCM), hashed into a Merkle tree in the style
//! of RFC 9162 ([`merkle`]) whose root is signed (Ed25519) at regular
//! intervals; the writer also keeps the newest signed head in `head.json`
//! ([`head`]). [`verify::verify`] rebuilds the tree, checks every signed
//! head and segment header signature, and that the log extends the saved
//! head. The format is specified in `docs/audit-log-format.md`.
//!
//! ```
//! # let dir = tempfile::tempdir().unwrap();
//! use rampart_core::Event;
//! let log = rampart_audit::AuditLog::open(dir.path()).unwrap();
//! log.append(Event::new("configuration", "config-loaded")).unwrap(); // durable on return
//! log.flush(); // and covered by a signed tree head
//! let keys = rampart_audit::Keys::load_or_create(log.dir()).unwrap();
//! let report = rampart_audit::verify::verify(log.dir(), Some(&keys), &keys.public_key(), None).unwrap();
//! assert_eq!(report.tree_size, 1);
//! ```
#![forbid(unsafe_code)]
#![deny(missing_docs)]

pub mod canonical;
pub mod format;
pub mod head;
pub mod keys;
pub mod mask;
pub mod merkle;
pub mod read;
pub mod retention;
pub mod segment;
pub mod sink;
pub mod verify;
mod writer;

pub use keys::Keys;
pub use writer::{AuditError, AuditLog, Options, Ticket};
