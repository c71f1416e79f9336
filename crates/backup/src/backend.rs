//! Where a repository's objects live. Objects are written once (to a
//! temporary name, synced, then renamed into place, so a crash never
//! leaves a half-written object under its real name) and never modified.

use std::io::Write;
use std::path::{Path, PathBuf};

use crate::{Error, Result};

/// Object storage as a repository needs it.
pub trait Backend: Send + Sync {
    /// Stores `data` under `name` (replacing nothing: names are unique).
    fn put(&self, name: &str, data: &[u8]) -> Result<()>;
    /// The object `name`.
    fn get(&self, name: &str) -> Result<Vec<u8>>;
    /// Names of the objects under `prefix` (`snapshots/`).
    fn list(&self, prefix: &str) -> Result<Vec<String>>;
    /// `length` bytes of `name` from `offset`.
    fn get_range(&self, name: &str, offset: u64, length: usize) -> Result<Vec<u8>> {
        let all = self.get(name)?;
        let start = usize::try_from(offset).map_err(|_| crate::Error::Damaged(name.to_string()))?;
        all.get(start..start + length).map(<[u8]>::to_vec).ok_or_else(|| crate::Error::Damaged(name.to_string()))
    }
    /// Removes `name`.
    fn delete(&self, name: &str) -> Result<()>;
    /// Whether `name` exists.
    fn exists(&self, name: &str) -> Result<bool>;
    /// Where, for messages.
    fn location(&self) -> String;
}

/// The backend for a repository location: `s3:...` (see [`crate::s3`])
/// or a local directory.
pub fn open(location: &str) -> Result<Box<dyn Backend>> {
    if crate::s3::S3Location::parse(location).is_some() {
        return Ok(Box::new(crate::s3::S3::new(location)?));
    }
    Ok(Box::new(LocalDir::new(Path::new(location))))
}

/// The mode of the objects of a repository in a directory.
pub const OBJECT_MODE: u32 = 0o600;
/// The mode of the directories a repository creates.
pub const OBJECT_DIR_MODE: u32 = 0o700;

/// A repository in a local directory.
pub struct LocalDir {
    root: PathBuf,
}

impl LocalDir {
    /// The repository at `root` (created on first write).
    pub fn new(root: &Path) -> Self {
        LocalDir { root: root.to_path_buf() }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.root.join(name)
    }
}

fn io(what: impl Into<String>) -> impl FnOnce(std::io::Error) -> Error {
    let what = what.into();
    move |source| Error::Io { what, source }
}

impl Backend for LocalDir {
    fn put(&self, name: &str, data: &[u8]) -> Result<()> {
        use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
        let path = self.path(name);
        let dir = path.parent().map(Path::to_path_buf).unwrap_or_else(|| self.root.clone());
        // Readable by the owner only: the repository holds the wrapped
        // master key (which lets whoever reads it guess passwords offline)
        // and reveals sizes and times. Directories this creates are 0700,
        // objects 0600 (whatever the umask would allow).
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(OBJECT_DIR_MODE)
            .create(&dir)
            .map_err(io(dir.display().to_string()))?;
        let tmp = dir.join(format!(".tmp-{}-{}", std::process::id(), crate::hex(&rand_bytes())));
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(OBJECT_MODE)
            .open(&tmp)
            .map_err(io(tmp.display().to_string()))?;
        f.write_all(data).map_err(io(tmp.display().to_string()))?;
        f.sync_all().map_err(io(tmp.display().to_string()))?;
        std::fs::rename(&tmp, &path).map_err(io(path.display().to_string()))?;
        if let Ok(d) = std::fs::File::open(&dir) {
            let _ = d.sync_all();
        }
        Ok(())
    }

    fn get(&self, name: &str) -> Result<Vec<u8>> {
        let path = self.path(name);
        std::fs::read(&path).map_err(io(format!("{} ({})", name, path.display())))
    }

    fn get_range(&self, name: &str, offset: u64, length: usize) -> Result<Vec<u8>> {
        use std::io::{Read, Seek, SeekFrom};
        let path = self.path(name);
        let mut f = std::fs::File::open(&path).map_err(io(name))?;
        f.seek(SeekFrom::Start(offset)).map_err(io(name))?;
        let mut buf = vec![0u8; length];
        f.read_exact(&mut buf).map_err(|e| match e.kind() {
            std::io::ErrorKind::UnexpectedEof => crate::Error::Damaged(format!("{name} (truncated)")),
            _ => crate::Error::Io { what: name.to_string(), source: e },
        })?;
        Ok(buf)
    }

    fn list(&self, prefix: &str) -> Result<Vec<String>> {
        let mut out = Vec::new();
        let base = self.path(prefix);
        let mut stack = vec![base.clone()];
        while let Some(d) = stack.pop() {
            let entries = match std::fs::read_dir(&d) {
                Ok(e) => e,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
                Err(e) => return Err(io(d.display().to_string())(e)),
            };
            for e in entries.flatten() {
                let p = e.path();
                if p.is_dir() {
                    stack.push(p);
                } else if !e.file_name().to_string_lossy().starts_with(".tmp-") {
                    if let Ok(rel) = p.strip_prefix(&self.root) {
                        out.push(rel.to_string_lossy().replace('\\', "/"));
                    }
                }
            }
        }
        out.sort();
        Ok(out)
    }

    fn delete(&self, name: &str) -> Result<()> {
        std::fs::remove_file(self.path(name)).map_err(io(name))
    }

    fn exists(&self, name: &str) -> Result<bool> {
        Ok(self.path(name).exists())
    }

    fn location(&self) -> String {
        self.root.display().to_string()
    }
}

fn rand_bytes() -> [u8; 8] {
    let mut b = [0u8; 8];
    let _ = ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut b);
    b
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    /// The review found a repository (and its wrapped master key)
    /// world-readable: objects are 0600, directories 0700.
    #[test]
    fn objects_and_directories_are_private() {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path().join("repo");
        let b = LocalDir::new(&root);
        b.put("keys/abc", b"wrapped").unwrap();
        b.put("config", b"{}").unwrap();
        let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&root), 0o700);
        assert_eq!(mode(&root.join("keys")), 0o700);
        assert_eq!(mode(&root.join("keys/abc")), 0o600);
        assert_eq!(mode(&root.join("config")), 0o600);
    }
}
