//! Rampart's backups, in the repository format of `docs/backup-format.md`:
//! files cut into content-defined chunks (FastCDC), chunk ids keyed with
//! HMAC-SHA-256 (an id reveals nothing without the key), zstd, AES-256-GCM,
//! blobs gathered into packs, indexes, and snapshots as trees. Every
//! snapshot is complete; unchanged chunks are stored once.
//!
//! - [`chunker`]: content-defined chunks of a stream (FastCDC);
//! - [`crypto`]: the master key, wrapped under a passphrase with Argon2id,
//!   and the envelopes every object is sealed in;
//! - [`backend`]: where objects live: a local directory, or
//!   S3-compatible object storage ([`s3`]);
//! - [`tree`]: directory trees as blobs;
//! - [`lock`]: shared and exclusive repository locks, stale-lock removal;
//! - [`heads`]: each snapshot series' record, and the client's own, to
//!   detect deleted snapshots and rollbacks;
//! - [`repo`]: `init`, `open`, `backup`, `snapshots`, `restore`.
#![forbid(unsafe_code)]
#![deny(missing_docs)]

pub mod backend;
pub mod chunker;
pub mod crypto;
pub mod heads;
pub mod lock;
mod packer;
pub mod repo;
pub mod s3;
pub mod tree;

/// What can go wrong with a repository, with what it concerns.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The storage failed.
    #[error("{what}: {source}")]
    Io {
        /// The object or path.
        what: String,
        /// The cause.
        source: std::io::Error,
    },
    /// The passphrase opens none of the repository's keys.
    #[error("wrong password: no key of this repository opens with it")]
    WrongPassword,
    /// An object failed authentication or does not parse: corrupted,
    /// truncated or replaced.
    #[error("{0}: damaged (authentication failed or bad structure)")]
    Damaged(String),
    /// A blob a snapshot needs is in no index.
    #[error("blob {0} is missing from the repository")]
    MissingBlob(String),
    /// A pack the index names is not in the storage (deleted).
    #[error("pack {0} is missing from the repository")]
    MissingPack(String),
    /// Snapshots a record names are missing, or the repository is behind
    /// what this client saw: deleted, or rolled back.
    #[error("{0}")]
    Rollback(String),
    /// Not a repository, or one of an unknown version.
    #[error("{0}")]
    Repository(String),
}

/// Results of this crate.
pub type Result<T> = std::result::Result<T, Error>;

/// Lower-case hex of `bytes`.
pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
