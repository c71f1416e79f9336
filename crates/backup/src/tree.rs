//! Directory trees as blobs (docs/backup-format.md, "Trees and snapshots").

use serde::{Deserialize, Serialize};

/// One entry of a directory.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct Node {
    /// File name.
    pub name: String,
    /// `file`, `dir` or `symlink`.
    #[serde(rename = "type")]
    pub kind: String,
    /// Permission bits.
    pub mode: u32,
    /// Owner.
    pub uid: u32,
    /// Group.
    pub gid: u32,
    /// Modification time, nanoseconds since the epoch.
    pub mtime_ns: i128,
    /// Size in bytes (files).
    #[serde(default)]
    pub size: u64,
    /// Chunk ids, hex (files).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub content: Vec<String>,
    /// The subtree's blob id, hex (directories).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subtree: Option<String>,
    /// Link target (symlinks).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target: Option<String>,
    /// Inode, to find unchanged files.
    #[serde(default)]
    pub inode: u64,
    /// Device, with the inode.
    #[serde(default)]
    pub dev: u64,
}

/// A directory: its entries, sorted by name.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
pub struct Tree {
    /// The entries.
    pub nodes: Vec<Node>,
}
