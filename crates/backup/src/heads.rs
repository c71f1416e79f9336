//! Series records, for rollback detection (docs/backup-format.md, "Heads:
//! rollback and deletion"). A *series* is the snapshots of one host,
//! source and set of paths (what `forget`'s policy applies to). Its
//! record, `heads/<series id>/<record id>`, is a sealed list of every
//! snapshot the series holds, with a sequence number that grows with each
//! record: written after each snapshot, rewritten by `forget`. A snapshot a
//! record names that is not in the storage was deleted, or the repository
//! was rolled back; `check` reports it and `restore latest` refuses.
//!
//! Concurrent backups (shared locks) never lose each other's entries: a
//! writer merges every record of its series that it read into its new one,
//! then deletes only those; a record written meanwhile stays, and readers
//! take the union of all the records of a series.
//!
//! The repository's records cannot tell a consistent rollback of the whole
//! storage (records and snapshots together) from the real thing: the
//! [`LocalState`] kept on the client remembers the newest record it wrote or
//! saw per series, and catches what happened after it looked.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::backend::Backend;
use crate::crypto::Keys;
use crate::repo::{now_ns, Snapshot};
use crate::{hex, Error, Result};

/// Where records live.
const PREFIX: &str = "heads/";
/// The envelope kind (AAD) of a record.
const KIND: &str = "heads";
/// A listed record that vanished before it could be read was merged into a
/// newer one by a concurrent writer: list again, this many times at most.
const RELIST: usize = 5;

/// The snapshots of one host, source and paths.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Series {
    /// The machine.
    pub hostname: String,
    /// `files`, `postgres:<db>`, ...
    pub source: String,
    /// What was backed up.
    pub paths: Vec<String>,
}

impl Series {
    /// The series `s` belongs to.
    pub fn of(s: &Snapshot) -> Series {
        Series { hostname: s.hostname.clone(), source: s.source.clone(), paths: s.paths.clone() }
    }

    /// Its id: keyed, so it reveals neither host nor paths.
    pub fn id(&self, keys: &Keys) -> String {
        let canonical = serde_json::json!([self.hostname, self.source, self.paths]).to_string();
        hex(&keys.series_id(canonical.as_bytes()))
    }

    /// For messages.
    pub fn label(&self) -> String {
        format!("{} {} {}", self.hostname, self.source, self.paths.join(" "))
    }
}

/// A record object's content.
#[derive(Serialize, Deserialize)]
struct Record {
    v: u8,
    series: Series,
    seq: u64,
    time: u64,
    snapshots: BTreeSet<String>,
}

/// The records of one series, merged.
#[derive(Debug)]
pub(crate) struct Head {
    pub(crate) series: Series,
    /// The highest sequence number among them.
    pub(crate) seq: u64,
    /// Every snapshot one of them names.
    pub(crate) snapshots: BTreeSet<String>,
    /// Their object names.
    names: Vec<String>,
}

/// Every series' merged records (by series id), and a line per record
/// that does not open.
pub(crate) type Heads = (BTreeMap<String, Head>, Vec<String>);

/// Reads the records under `prefix` (`heads/` or one series' folder).
fn read(backend: &dyn Backend, keys: &Keys, prefix: &str) -> Result<Heads> {
    'again: for _ in 0..RELIST {
        let mut heads: BTreeMap<String, Head> = BTreeMap::new();
        let mut damaged = Vec::new();
        for name in backend.list(prefix)? {
            let data = match backend.get(&name) {
                Ok(d) => d,
                Err(Error::Io { source, .. }) if source.kind() == std::io::ErrorKind::NotFound => continue 'again,
                Err(e) => return Err(e),
            };
            let sid = name.strip_prefix(PREFIX).and_then(|r| r.split_once('/')).map(|(s, _)| s.to_string());
            let record = keys
                .open_envelope(KIND, &data, &name)
                .ok()
                .and_then(|plain| serde_json::from_slice::<Record>(&plain).ok())
                .filter(|r| r.v == 1 && sid.as_deref() == Some(r.series.id(keys).as_str()));
            let (Some(sid), Some(r)) = (sid, record) else {
                damaged.push(format!("{name}: damaged (authentication failed, bad structure or not its series)"));
                continue;
            };
            let head = heads.entry(sid).or_insert_with(|| Head {
                series: r.series.clone(),
                seq: 0,
                snapshots: BTreeSet::new(),
                names: Vec::new(),
            });
            head.seq = head.seq.max(r.seq);
            head.snapshots.extend(r.snapshots);
            head.names.push(name);
        }
        return Ok((heads, damaged));
    }
    Err(Error::Repository(format!("{prefix}: records keep changing while read; try again")))
}

/// Every series' records.
pub(crate) fn read_all(backend: &dyn Backend, keys: &Keys) -> Result<Heads> {
    read(backend, keys, PREFIX)
}

/// Writes a series' new record.
fn write(backend: &dyn Backend, keys: &Keys, series: &Series, seq: u64, snapshots: BTreeSet<String>) -> Result<()> {
    let r = Record { v: 1, series: series.clone(), seq, time: now_ns(), snapshots };
    let plain = serde_json::to_vec(&r).map_err(|e| Error::Repository(e.to_string()))?;
    let data = keys.envelope(KIND, &plain);
    let rid = hex(&ring::digest::digest(&ring::digest::SHA256, &data).as_ref()[..16]);
    backend.put(&format!("{PREFIX}{}/{rid}", series.id(keys)), &data)
}

/// Deletes records that a newer one now covers (one already gone was
/// deleted by a concurrent writer that covered it too).
fn delete(backend: &dyn Backend, names: &[String]) -> Result<()> {
    for n in names {
        match backend.delete(n) {
            Err(Error::Io { source, .. }) if source.kind() == std::io::ErrorKind::NotFound => {}
            r => r?,
        }
    }
    Ok(())
}

/// Records snapshot `id` (just written) in its series; returns the new
/// record's sequence number. Under a shared lock: merges the series'
/// records into a new one naming `id` too, then deletes what it merged.
/// A record that does not open is left alone (`check` names it).
pub(crate) fn add(backend: &dyn Backend, keys: &Keys, series: &Series, id: &str) -> Result<u64> {
    Adding::read(backend, keys, series)?.commit(backend, keys, id)
}

/// Before the first snapshot of a series is written: an empty record, so
/// that a crash between that snapshot and its record does not leave a
/// series without one (which `check` reports as a deleted record).
pub(crate) fn ensure(backend: &dyn Backend, keys: &Keys, series: &Series) -> Result<()> {
    let prefix = format!("{PREFIX}{}/", series.id(keys));
    if backend.list(&prefix)?.is_empty() {
        write(backend, keys, series, 1, BTreeSet::new())?;
    }
    Ok(())
}

/// A series' records as one writer read them, before it writes the next
/// (two steps, so a test can interleave two writers).
struct Adding {
    series: Series,
    seq: u64,
    snapshots: BTreeSet<String>,
    names: Vec<String>,
}

impl Adding {
    fn read(backend: &dyn Backend, keys: &Keys, series: &Series) -> Result<Adding> {
        let sid = series.id(keys);
        let (mut heads, _) = read(backend, keys, &format!("{PREFIX}{sid}/"))?;
        Ok(match heads.remove(&sid) {
            Some(h) => Adding { series: series.clone(), seq: h.seq, snapshots: h.snapshots, names: h.names },
            None => Adding { series: series.clone(), seq: 0, snapshots: BTreeSet::new(), names: Vec::new() },
        })
    }

    /// Writes the record naming `id` too, then deletes the records read.
    fn commit(mut self, backend: &dyn Backend, keys: &Keys, id: &str) -> Result<u64> {
        self.snapshots.insert(id.to_string());
        write(backend, keys, &self.series, self.seq + 1, self.snapshots)?;
        delete(backend, &self.names)?;
        Ok(self.seq + 1)
    }
}

/// Each series' new record after a `forget`, by series id: the series,
/// its sequence number, its snapshots.
pub(crate) type Rewritten = BTreeMap<String, (Series, u64, BTreeSet<String>)>;

/// After `forget` (under the exclusive lock): every series' record
/// rewritten to name what it named, plus the series' snapshots in
/// `present`, minus `removed`. A snapshot a record names that is already
/// missing stays named (forget does not hide a rollback). Returns the new
/// heads' sequence numbers and snapshots by series id.
pub(crate) fn rewrite(
    backend: &dyn Backend,
    keys: &Keys,
    present: &[(String, Snapshot)],
    removed: &BTreeSet<String>,
) -> Result<Rewritten> {
    let (heads, _) = read_all(backend, keys)?;
    let mut next = Rewritten::new();
    for (sid, h) in &heads {
        next.insert(sid.clone(), (h.series.clone(), h.seq + 1, h.snapshots.clone()));
    }
    for (id, s) in present {
        let series = Series::of(s);
        next.entry(series.id(keys)).or_insert_with(|| (series, 1, BTreeSet::new())).2.insert(id.clone());
    }
    for (series, seq, snapshots) in next.values_mut() {
        snapshots.retain(|id| !removed.contains(id));
        if !snapshots.is_empty() {
            write(backend, keys, series, *seq, snapshots.clone())?;
        }
    }
    for h in heads.values() {
        delete(backend, &h.names)?;
    }
    next.retain(|_, (_, _, snapshots)| !snapshots.is_empty());
    Ok(next)
}

/// What the records and the client's own state say is wrong with the
/// snapshots `present`: one line per missing snapshot, per series with
/// no record, per record that does not open, per series the client saw
/// further along than the repository is.
pub(crate) fn problems(heads: &Heads, present: &[(String, Snapshot)], keys: &Keys, local: &LocalFile) -> Vec<String> {
    let (heads, damaged) = heads;
    let mut out = damaged.clone();
    let ids: BTreeSet<&str> = present.iter().map(|(id, _)| id.as_str()).collect();
    for h in heads.values() {
        for id in h.snapshots.iter().filter(|id| !ids.contains(id.as_str())) {
            out.push(format!(
                "snapshot {id} (series {}) is missing: the series' record (seq {}) names it; it was deleted, or the \
                 repository was rolled back",
                h.series.label(),
                h.seq
            ));
        }
    }
    let mut unrecorded: BTreeMap<String, (Series, Vec<&str>)> = BTreeMap::new();
    for (id, s) in present {
        let series = Series::of(s);
        let sid = series.id(keys);
        if !heads.contains_key(&sid) {
            unrecorded.entry(sid).or_insert_with(|| (series, Vec::new())).1.push(id);
        }
    }
    for (series, ids) in unrecorded.values() {
        out.push(format!(
            "series {} has no record (snapshots {}): its record was deleted, or it was written before records \
             existed (the next backup of the series, or a forget, writes one)",
            series.label(),
            ids.iter().map(|id| &id[..8.min(id.len())]).collect::<Vec<_>>().join(" ")
        ));
    }
    for (sid, seen) in &local.series {
        let why = match heads.get(sid) {
            None => "the repository has no record of it (its snapshots and record deleted?)".to_string(),
            Some(h) if h.seq < seen.seq => format!("the repository's record is at seq {}", h.seq),
            Some(h) if h.seq == seen.seq && !h.snapshots.contains(&seen.newest) => {
                format!("the repository's record at seq {} does not name that snapshot", h.seq)
            }
            Some(_) => continue,
        };
        out.push(format!(
            "series {}: this client saw its record at seq {} with snapshot {}, but {why}: the repository was \
             rolled back",
            seen.series.label(),
            seen.seq,
            seen.newest
        ));
    }
    out
}

/// What a client remembers of one series.
#[derive(Clone, Serialize, Deserialize)]
pub(crate) struct Seen {
    series: Series,
    /// The highest record sequence number it wrote or saw.
    seq: u64,
    /// A snapshot that record names (the newest it knew of).
    newest: String,
}

/// A client's state file for one repository.
#[derive(Default, Serialize, Deserialize)]
pub(crate) struct LocalFile {
    #[serde(default)]
    repository: String,
    #[serde(default)]
    location: String,
    #[serde(default)]
    series: BTreeMap<String, Seen>,
}

/// The client's record of the newest heads it wrote or saw in one
/// repository: `<state dir>/<hash of repository id and location>.json`,
/// mode 0600, updated under a lock file beside it.
pub struct LocalState {
    path: PathBuf,
    repository: String,
    location: String,
}

impl LocalState {
    /// The state of the repository `id` at `location`, under `dir`.
    pub fn new(dir: &Path, id: &str, location: &str) -> LocalState {
        // The same directory named two ways is one repository.
        let location =
            std::fs::canonicalize(location).map(|p| p.display().to_string()).unwrap_or_else(|_| location.to_string());
        let key = ring::digest::digest(&ring::digest::SHA256, format!("{id}\n{location}").as_bytes());
        let path = dir.join(format!("{}.json", hex(&key.as_ref()[..16])));
        LocalState { path, repository: id.to_string(), location }
    }

    /// Where it is kept.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// What it holds (nothing when there is no file yet). A file that does
    /// not parse is an error: it would otherwise silently stop protecting.
    pub(crate) fn load(&self) -> Result<LocalFile> {
        match std::fs::read(&self.path) {
            Ok(data) => serde_json::from_slice(&data).map_err(|e| {
                Error::Repository(format!("{}: cannot be read ({e}); remove it to start over", self.path.display()))
            }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(LocalFile::default()),
            Err(source) => Err(Error::Io { what: self.path.display().to_string(), source }),
        }
    }

    /// Raises what it remembers of each series to `seen` (sequence number
    /// and newest snapshot) where that is further along.
    pub(crate) fn raise(&self, seen: &[(String, Series, u64, String)]) -> Result<()> {
        use std::io::Write;
        use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
        let io = |source| Error::Io { what: self.path.display().to_string(), source };
        let dir = self.path.parent().unwrap_or(Path::new("."));
        std::fs::DirBuilder::new().recursive(true).mode(0o700).create(dir).map_err(io)?;
        let lock = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .mode(0o600)
            .open(self.path.with_extension("lock"))
            .map_err(io)?;
        lock.lock().map_err(io)?;
        let mut file = self.load()?;
        file.repository.clone_from(&self.repository);
        file.location.clone_from(&self.location);
        let mut changed = false;
        for (sid, series, seq, newest) in seen {
            if file.series.get(sid).is_none_or(|s| s.seq < *seq) {
                file.series.insert(sid.clone(), Seen { series: series.clone(), seq: *seq, newest: newest.clone() });
                changed = true;
            }
        }
        if changed {
            let tmp = self.path.with_extension(format!("tmp-{}", std::process::id()));
            let text = serde_json::to_vec_pretty(&file).map_err(|e| Error::Repository(e.to_string()))?;
            let mut f = std::fs::OpenOptions::new()
                .write(true)
                .create(true)
                .truncate(true)
                .mode(0o600)
                .open(&tmp)
                .map_err(io)?;
            f.write_all(&text).map_err(io)?;
            f.sync_all().map_err(io)?;
            std::fs::rename(&tmp, &self.path).map_err(io)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::backend::LocalDir;

    /// Two backups of one series at once (shared locks) both read the
    /// records before either writes: neither loses the other's snapshot,
    /// and the next writer merges both.
    #[test]
    fn concurrent_writers_lose_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let backend = LocalDir::new(dir.path());
        let keys = Keys::generate();
        let series = Series { hostname: "h".into(), source: "files".into(), paths: vec!["/srv".into()] };
        let other = Series { paths: vec!["/etc".into()], ..series.clone() };
        add(&backend, &keys, &series, "s0").unwrap();
        add(&backend, &keys, &other, "o0").unwrap();
        let a = Adding::read(&backend, &keys, &series).unwrap();
        let b = Adding::read(&backend, &keys, &series).unwrap();
        let c = Adding::read(&backend, &keys, &series).unwrap();
        assert_eq!(a.commit(&backend, &keys, "sA").unwrap(), 2);
        assert_eq!(b.commit(&backend, &keys, "sB").unwrap(), 2);
        let (heads, damaged) = read_all(&backend, &keys).unwrap();
        assert!(damaged.is_empty());
        let h = &heads[&series.id(&keys)];
        assert_eq!(h.snapshots, ["s0", "sA", "sB"].map(String::from).into());
        assert_eq!(h.seq, 2);
        // A third that read before both wrote merges what it read; the
        // records it did not read stay.
        c.commit(&backend, &keys, "sC").unwrap();
        let d = Adding::read(&backend, &keys, &series).unwrap();
        d.commit(&backend, &keys, "sD").unwrap();
        let (heads, _) = read_all(&backend, &keys).unwrap();
        let h = &heads[&series.id(&keys)];
        assert_eq!(h.snapshots, ["s0", "sA", "sB", "sC", "sD"].map(String::from).into());
        assert_eq!((h.seq, h.names.len()), (3, 1), "merged into one record");
        assert_eq!(heads[&other.id(&keys)].snapshots, ["o0"].map(String::from).into(), "other series untouched");
    }

    /// A first backup killed between its snapshot and its record leaves a
    /// snapshot no record names, in a series that has a record (the empty
    /// one written before): not reported. Without any record, the series
    /// is.
    #[test]
    fn a_crash_before_the_first_record_is_no_problem() {
        let dir = tempfile::tempdir().unwrap();
        let backend = LocalDir::new(dir.path());
        let keys = Keys::generate();
        let snap = Snapshot {
            time: 1,
            hostname: "h".into(),
            paths: vec!["/srv".into()],
            tags: Vec::new(),
            tree: String::new(),
            parent: None,
            source: "files".into(),
            summary: Default::default(),
        };
        let present = vec![("s1".to_string(), snap.clone())];
        let none = problems(&read_all(&backend, &keys).unwrap(), &present, &keys, &LocalFile::default());
        assert!(none.len() == 1 && none[0].contains("has no record"), "{none:?}");
        ensure(&backend, &keys, &Series::of(&snap)).unwrap();
        ensure(&backend, &keys, &Series::of(&snap)).unwrap();
        assert_eq!(backend.list(PREFIX).unwrap().len(), 1, "once");
        let found = problems(&read_all(&backend, &keys).unwrap(), &present, &keys, &LocalFile::default());
        assert!(found.is_empty(), "{found:?}");
    }

    /// A record moved to another series' folder, or sealed with another
    /// key, is reported, not believed.
    #[test]
    fn records_out_of_place_are_damaged() {
        let dir = tempfile::tempdir().unwrap();
        let backend = LocalDir::new(dir.path());
        let keys = Keys::generate();
        let series = Series { hostname: "h".into(), source: "files".into(), paths: vec!["/srv".into()] };
        add(&backend, &keys, &series, "s0").unwrap();
        let name = backend.list(PREFIX).unwrap().pop().unwrap();
        backend.put(&format!("{PREFIX}{}/x", "0".repeat(64)), &backend.get(&name).unwrap()).unwrap();
        let (_, damaged) = read_all(&backend, &keys).unwrap();
        assert_eq!(damaged.len(), 1, "{damaged:?}");
        let (heads, damaged) = read_all(&backend, &Keys::generate()).unwrap();
        assert!(heads.is_empty() && damaged.len() == 2);
    }
}
