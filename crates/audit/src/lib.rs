//! Rampart's audit pipeline.
//!
//! Every component hands what it did to an [`AuditLog`] as a
//! [`rampart_core::Event`]; the log appends it to `audit/events.jsonl` in the
//! data directory, one JSON object a line, from a writer thread of its own so
//! that a request never waits on the disk.
//!
//! This first version is a plain append-only JSON-lines file. The format that
//! makes it tamper-evident (hash tree, signed heads, masking, encryption) is
//! specified separately and replaces the file writer behind the same API.
//!
//! ```
//! # let dir = tempfile::tempdir().unwrap();
//! use rampart_core::Event;
//! let log = rampart_audit::AuditLog::open(dir.path()).unwrap();
//! log.emit(Event::new("configuration", "config-loaded"));
//! log.flush();
//! let lines = std::fs::read_to_string(log.path()).unwrap();
//! assert!(lines.contains("\"config-loaded\""));
//! ```
#![forbid(unsafe_code)]
#![deny(missing_docs)]

mod writer;

pub use writer::{AuditError, AuditLog};
