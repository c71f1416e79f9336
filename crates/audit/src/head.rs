//! The saved head (docs/audit-log-format.md, section 2 and 12): the writer
//! keeps the newest signed tree head it produced in `head.json`, so that a
//! verification without an exported head still notices a log cut short
//! (newest segments or the whole log removed) or rewritten.

use std::path::{Path, PathBuf};

use crate::format::SignedHead;
use crate::merkle::Frontier;

/// File name of the saved head in the audit directory.
pub const FILE: &str = "head.json";

/// Path of the saved head.
pub fn path(audit_dir: &Path) -> PathBuf {
    audit_dir.join(FILE)
}

/// Reads the saved head; `Ok(None)` when there is none.
pub fn read(audit_dir: &Path) -> Result<Option<SignedHead>, String> {
    match std::fs::read(path(audit_dir)) {
        Ok(b) => serde_json::from_slice(&b).map(Some).map_err(|e| format!("{FILE}: not a signed tree head: {e}")),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(format!("{FILE}: {e}")),
    }
}

/// Saves a head: temporary file (0600), synced, renamed over the old one.
pub fn save(audit_dir: &Path, head: &SignedHead) -> std::io::Result<()> {
    let mut json = serde_json::to_vec_pretty(head).map_err(std::io::Error::other)?;
    json.push(b'\n');
    crate::keys::write_private(&path(audit_dir), &json)
}

/// Follows a tree as it grows, leaf by leaf, and checks it against a saved
/// head when it reaches the head's size.
pub struct Against {
    head: SignedHead,
    reached: bool,
}

impl Against {
    /// Checks against `head`.
    pub fn new(head: SignedHead) -> Self {
        Against { head, reached: false }
    }

    /// Call with the tree before its first leaf and after each leaf: at the
    /// head's size, the root must be the head's.
    pub fn step(&mut self, tree: &Frontier) -> Result<(), String> {
        if self.reached || tree.size() != self.head.tree_size {
            return Ok(());
        }
        self.reached = true;
        if tree.root() != self.head.root {
            return Err(format!(
                "the first {} events do not hash to the saved head ({FILE}): the log was rewritten",
                self.head.tree_size
            ));
        }
        Ok(())
    }

    /// Call with the whole tree: it must have reached the head's size.
    pub fn finish(&self, tree: &Frontier) -> Result<(), String> {
        if self.reached {
            return Ok(());
        }
        if tree.size() < self.head.tree_size {
            return Err(format!(
                "the log has {} events but the saved head ({FILE}) covers {}: \
                 the newest events, segments or the whole log were removed",
                tree.size(),
                self.head.tree_size
            ));
        }
        Err(format!(
            "the saved head ({FILE}) covers {} events, fewer than retention removed: an older head was put back",
            self.head.tree_size
        ))
    }

    /// The head checked against.
    pub fn head(&self) -> &SignedHead {
        &self.head
    }
}
