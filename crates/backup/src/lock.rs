//! Repository locks (docs/backup-format.md, "Locks"): a sealed object
//! under `locks/` naming its holder, shared (backups, restores, copies)
//! or exclusive (forget, prune, repair), refreshed while held and removed
//! when released.
//!
//! A lock is stale, and removed by whoever finds it, when it was not
//! refreshed for [`STALE_LOCK_NS`] (its holder's machine died, or lost the
//! storage), or when its holder was a process of this machine that no
//! longer runs (killed before it could remove it).

use std::path::Path;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::backend::Backend;
use crate::crypto::Keys;
use crate::repo::{hostname, now_ns, random_hex};
use crate::{Error, Result};

/// A lock older than this (not refreshed) is stale, wherever its holder
/// ran.
pub const STALE_LOCK_NS: u64 = 30 * 60 * 1_000_000_000;
const REFRESH: std::time::Duration = std::time::Duration::from_secs(300);

/// A held lock: refreshed in the background, removed when dropped.
pub struct Lock {
    name: String,
    backend: Arc<dyn Backend>,
    stop: Option<std::sync::mpsc::Sender<()>>,
    refresher: Option<std::thread::JoinHandle<()>>,
}

impl Drop for Lock {
    fn drop(&mut self) {
        drop(self.stop.take());
        if let Some(t) = self.refresher.take() {
            let _ = t.join();
        }
        let _ = self.backend.delete(&self.name);
    }
}

/// A lock's content.
#[derive(Serialize, Deserialize)]
struct LockFile {
    time: u64,
    hostname: String,
    pid: u32,
    exclusive: bool,
    /// The holder's PID namespace (`pid:[4026531836]`): containers that
    /// share a host name do not share process ids.
    #[serde(default)]
    pid_ns: String,
}

/// This process's PID namespace, or "" where it cannot be told.
fn pid_namespace() -> String {
    std::fs::read_link("/proc/self/ns/pid").map(|p| p.to_string_lossy().into_owned()).unwrap_or_default()
}

impl LockFile {
    fn is_stale(&self, now: u64) -> bool {
        now.saturating_sub(self.time) > STALE_LOCK_NS || self.holder_is_gone()
    }

    /// Whether the holder is a process of this machine and namespace that
    /// no longer runs. Only when that can be told for sure: a known host
    /// name and namespace, and a /proc that shows every process (with
    /// `hidepid`, init's entry is hidden, and so may the holder's be).
    fn holder_is_gone(&self) -> bool {
        let here = hostname();
        let ns = pid_namespace();
        !here.is_empty()
            && self.hostname == here
            && !ns.is_empty()
            && self.pid_ns == ns
            && self.pid != std::process::id()
            && Path::new("/proc/1").exists()
            && !Path::new(&format!("/proc/{}", self.pid)).exists()
    }
}

/// An error naming the holder of a live lock that conflicts with taking
/// one (`exclusive` or not), other than `ours`; stale locks are removed on
/// the way. A lock that cannot be read counts as held.
fn conflicts(backend: &Arc<dyn Backend>, keys: &Keys, exclusive: bool, ours: Option<&str>) -> Result<()> {
    let now = now_ns();
    for name in backend.list("locks/")? {
        if Some(name.as_str()) == ours {
            continue;
        }
        let data = match backend.get(&name) {
            Ok(d) => d,
            // Released between the listing and now.
            Err(Error::Io { source, .. }) if source.kind() == std::io::ErrorKind::NotFound => continue,
            Err(e) => return Err(Error::Repository(format!("cannot read the lock {name}: {e}"))),
        };
        // Not sealed with this repository's key: not a lock of ours.
        let Ok(plain) = keys.open_envelope("lock", &data, &name) else { continue };
        let Ok(l) = serde_json::from_slice::<LockFile>(&plain) else { continue };
        if l.is_stale(now) {
            let _ = backend.delete(&name);
            continue;
        }
        if exclusive || l.exclusive {
            return Err(Error::Repository(format!(
                "the repository is locked ({}) by {} pid {}; try again when it is done",
                if l.exclusive { "exclusively" } else { "for a backup or restore" },
                l.hostname,
                l.pid
            )));
        }
    }
    Ok(())
}

/// Takes a lock on the repository in `backend`; a live lock that
/// conflicts is an error naming its holder.
pub(crate) fn take(backend: &Arc<dyn Backend>, keys: &Arc<Keys>, exclusive: bool) -> Result<Lock> {
    conflicts(backend, keys, exclusive, None)?;
    let name = format!("locks/{}", random_hex());
    let write = {
        let (keys, backend, name) = (keys.clone(), backend.clone(), name.clone());
        let pid_ns = pid_namespace();
        move || {
            let l = LockFile {
                time: now_ns(),
                hostname: hostname(),
                pid: std::process::id(),
                exclusive,
                pid_ns: pid_ns.clone(),
            };
            let plain = serde_json::to_vec(&l).unwrap_or_default();
            backend.put(&name, &keys.envelope("lock", &plain))
        }
    };
    write()?;
    // Two processes may have looked at the same moment: look again, now
    // that ours is there, and step back on a conflict.
    if let Err(e) = conflicts(backend, keys, exclusive, Some(&name)) {
        let _ = backend.delete(&name);
        return Err(e);
    }
    let (stop, stopped) = std::sync::mpsc::channel::<()>();
    let refresher = std::thread::spawn(move || {
        while let Err(std::sync::mpsc::RecvTimeoutError::Timeout) = stopped.recv_timeout(REFRESH) {
            let _ = write();
        }
    });
    Ok(Lock { name, backend: backend.clone(), stop: Some(stop), refresher: Some(refresher) })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::backend::LocalDir;

    fn place() -> (tempfile::TempDir, Arc<dyn Backend>, Arc<Keys>) {
        let dir = tempfile::tempdir().unwrap();
        let backend: Arc<dyn Backend> = Arc::new(LocalDir::new(dir.path()));
        (dir, backend, Arc::new(Keys::generate()))
    }

    fn plant(backend: &Arc<dyn Backend>, keys: &Keys, l: &LockFile) {
        let plain = serde_json::to_vec(l).unwrap();
        backend.put(&format!("locks/{}", random_hex()), &keys.envelope("lock", &plain)).unwrap();
    }

    #[test]
    fn shared_locks_coexist_and_exclusive_ones_do_not() {
        let (_dir, backend, keys) = place();
        let a = take(&backend, &keys, false).unwrap();
        let b = take(&backend, &keys, false).unwrap();
        let err = take(&backend, &keys, true).err().unwrap().to_string();
        assert!(err.contains(&format!("pid {}", std::process::id())), "{err}");
        drop((a, b));
        assert!(backend.list("locks/").unwrap().is_empty());
        let x = take(&backend, &keys, true).unwrap();
        assert!(take(&backend, &keys, false).is_err());
        drop(x);
    }

    #[test]
    fn stale_locks_are_removed() {
        let (_dir, backend, keys) = place();
        // Not refreshed for 31 minutes, on another machine.
        let old = now_ns() - 31 * 60 * 1_000_000_000;
        plant(
            &backend,
            &keys,
            &LockFile { time: old, hostname: "elsewhere".into(), pid: 1, exclusive: true, pid_ns: String::new() },
        );
        // Held by a process of this machine that is gone.
        let mut child = std::process::Command::new("true").spawn().unwrap();
        let dead = child.id();
        child.wait().unwrap();
        plant(
            &backend,
            &keys,
            &LockFile { time: now_ns(), hostname: hostname(), pid: dead, exclusive: true, pid_ns: pid_namespace() },
        );
        let held = take(&backend, &keys, true).unwrap();
        assert_eq!(backend.list("locks/").unwrap().len(), 1);
        drop(held);
        // A fresh lock from another machine stands.
        plant(
            &backend,
            &keys,
            &LockFile { time: now_ns(), hostname: "elsewhere".into(), pid: 1, exclusive: false, pid_ns: String::new() },
        );
        let err = take(&backend, &keys, true).err().unwrap().to_string();
        assert!(err.contains("elsewhere pid 1"), "{err}");
    }
}
