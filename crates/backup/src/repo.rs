//! A repository: `init`, `open`, `backup`, `snapshots`, `restore`
//! (docs/backup-format.md).

use std::collections::HashMap;
use std::io::Write;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

use crate::backend::Backend;
use crate::crypto::{KeyFile, Keys};
use crate::heads::{LocalState, Series};
pub use crate::lock::Lock;
use crate::packer::Packer;
use crate::tree::{Node, Tree};
use crate::{hex, Error, Result};

/// Packs stay within this size (a blob larger than the room left starts
/// the next pack; prune closes its packs once past it).
pub(crate) const PACK_TARGET: usize = 8 << 20;

/// `config`: the repository's public settings.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Config {
    /// Repository format version (1).
    pub version: u32,
    /// Random id.
    pub id: String,
    /// Chunk sizes.
    pub chunker: Chunker,
    /// `zstd`.
    pub compression: String,
}

/// FastCDC sizes.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Chunker {
    /// Smallest chunk.
    pub min: u32,
    /// Average chunk.
    pub avg: u32,
    /// Largest chunk.
    pub max: u32,
}

/// Where a blob is.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub(crate) struct Location {
    pub(crate) pack: String,
    pub(crate) offset: u64,
    pub(crate) length: u32,
    pub(crate) plain: u32,
    pub(crate) compressed: bool,
    pub(crate) kind: u8,
}

/// An index entry: blob id, kind, offset, stored length, plaintext
/// length, compressed.
pub(crate) type IndexEntry = (String, u8, u64, u32, u32, bool);

/// One pack's entries in an index object.
#[derive(Serialize, Deserialize)]
pub(crate) struct IndexPack {
    pub(crate) id: String,
    pub(crate) blobs: Vec<IndexEntry>,
}

#[derive(Serialize, Deserialize, Default)]
pub(crate) struct IndexFile {
    pub(crate) packs: Vec<IndexPack>,
    #[serde(default)]
    supersedes: Vec<String>,
}

/// A snapshot object.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Snapshot {
    /// When it was taken, nanoseconds since the epoch (orders snapshots).
    pub time: u64,
    /// The machine.
    pub hostname: String,
    /// What was backed up.
    pub paths: Vec<String>,
    /// Labels.
    #[serde(default)]
    pub tags: Vec<String>,
    /// Root tree blob id.
    pub tree: String,
    /// The snapshot this one was compared with.
    #[serde(default)]
    pub parent: Option<String>,
    /// `files`.
    pub source: String,
    /// Counts.
    pub summary: Summary,
}

/// What a backup did.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct Summary {
    /// Files seen.
    pub files: u64,
    /// Directories seen.
    pub dirs: u64,
    /// Bytes of file content seen.
    pub bytes: u64,
    /// Files whose content was read (the others were unchanged).
    pub files_read: u64,
    /// Bytes added to the repository (before compression).
    pub new_bytes: u64,
    /// Blobs added.
    pub new_blobs: u64,
    /// Milliseconds.
    pub duration_ms: u64,
}

/// What a restore did.
#[derive(Clone, Debug, Default)]
pub struct Restored {
    /// Files written.
    pub files: u64,
    /// Bytes written, every one checked against its chunk id.
    pub bytes: u64,
}

/// Which snapshots `forget` keeps: the newest `last`, and the newest
/// snapshot of each of the most recent `hourly` hours, `daily` days, ...
/// (UTC), as restic's `--keep-*` options do.
#[derive(Clone, Debug, Default)]
pub struct KeepPolicy {
    /// Newest snapshots.
    pub last: usize,
    /// One per hour.
    pub hourly: usize,
    /// One per day.
    pub daily: usize,
    /// One per week.
    pub weekly: usize,
    /// One per month (30 days).
    pub monthly: usize,
    /// One per year (365 days).
    pub yearly: usize,
}

impl KeepPolicy {
    /// Whether the policy keeps nothing at all (refused: use no policy).
    pub fn is_empty(&self) -> bool {
        self.last + self.hourly + self.daily + self.weekly + self.monthly + self.yearly == 0
    }
}

/// What `prune` did.
#[derive(Clone, Debug, Default)]
pub struct Pruned {
    /// Packs deleted.
    pub packs_deleted: usize,
    /// Packs rewritten with only their used blobs.
    pub packs_repacked: usize,
    /// Bytes of unused blobs removed.
    pub bytes_freed: u64,
}

/// An open repository.
pub struct Repository {
    backend: Arc<dyn Backend>,
    keys: Arc<Keys>,
    config: Config,
    index: HashMap<[u8; 32], Location>,
    /// Patterns of files and directories left out of backups.
    excludes: Vec<glob::Pattern>,
    /// Told (files, bytes) as a backup or restore goes.
    progress: Option<std::sync::Mutex<Progress>>,
    /// The client's record of the newest heads it wrote or saw.
    local: Option<LocalState>,
    /// What went wrong that did not stop the work.
    warnings: std::sync::Mutex<Vec<String>>,
}

/// A progress callback: files and bytes done so far.
pub type Progress = Box<dyn FnMut(u64, u64) + Send>;

#[derive(Default)]
pub(crate) struct PackWriter {
    pub(crate) buf: Vec<u8>,
    pub(crate) entries: Vec<([u8; 32], u8, u64, u32, u32, bool)>,
}

fn parse_id(s: &str) -> Option<[u8; 32]> {
    if s.len() != 64 {
        return None;
    }
    let mut out = [0u8; 32];
    for (i, b) in out.iter_mut().enumerate() {
        *b = u8::from_str_radix(s.get(2 * i..2 * i + 2)?, 16).ok()?;
    }
    Some(out)
}

fn sha256(data: &[u8]) -> [u8; 32] {
    let d = ring::digest::digest(&ring::digest::SHA256, data);
    let mut out = [0u8; 32];
    out.copy_from_slice(d.as_ref());
    out
}

/// Chunks this small are hashed by the reading thread (a worker's round
/// trip would cost more than the hash).
const HASH_INLINE_BELOW: usize = 256 << 10;

/// Blobs on their way into packs during one backup.
struct Pipeline {
    packer: Packer,
    /// Ids handed to the packer (not yet in the index).
    pending: std::collections::HashSet<[u8; 32]>,
    /// The chunker and its buffer, reused from file to file.
    chunker: Option<crate::chunker::Chunker>,
}

/// Closes a pack: appends its sealed header and the header's length;
/// returns the pack's id (the SHA-256 of the whole) and the header.
pub(crate) fn finish_pack(keys: &Keys, w: &mut PackWriter) -> Result<(String, Vec<IndexEntry>)> {
    let header: Vec<IndexEntry> = w.entries.iter().map(|(id, k, o, l, p, c)| (hex(id), *k, *o, *l, *p, *c)).collect();
    let plain = serde_json::to_vec(&header).map_err(|e| Error::Repository(e.to_string()))?;
    let env = keys.envelope("pack", &plain);
    w.buf.extend_from_slice(&env);
    w.buf.extend_from_slice(&(env.len() as u32).to_le_bytes());
    Ok((hex(&sha256(&w.buf)), header))
}

/// Where crash tests stop a process: when `RAMPART_BACKUP_PAUSE_AT`
/// names this point, the process says so on standard error and waits
/// there (for the test's SIGKILL). Unset, as in every real run, it costs
/// one lookup per process.
fn pause_point(name: &str) {
    static AT: std::sync::OnceLock<Option<String>> = std::sync::OnceLock::new();
    if AT.get_or_init(|| std::env::var("RAMPART_BACKUP_PAUSE_AT").ok()).as_deref() == Some(name) {
        eprintln!("paused at {name}");
        loop {
            std::thread::sleep(std::time::Duration::from_secs(3600));
        }
    }
}

/// Nanoseconds since the epoch.
pub(crate) fn now_ns() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_nanos() as u64).unwrap_or(0)
}

/// This machine's name, for snapshots and locks.
pub(crate) fn hostname() -> String {
    std::fs::read_to_string("/etc/hostname").map(|h| h.trim().to_string()).unwrap_or_default()
}

pub(crate) fn random_hex() -> String {
    let mut b = [0u8; 16];
    let _ = ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut b);
    hex(&b)
}

fn io(what: &Path) -> impl FnOnce(std::io::Error) -> Error + '_ {
    move |source| Error::Io { what: what.display().to_string(), source }
}

pub(crate) fn blob_aad(id: &[u8; 32], kind: u8, compressed: bool) -> [u8; 34] {
    let mut aad = [0u8; 34];
    aad[..32].copy_from_slice(id);
    aad[32] = kind;
    aad[33] = u8::from(compressed);
    aad
}

impl Repository {
    /// Creates a repository in `backend`, its master key wrapped under
    /// `password`. Refuses a place that already holds one.
    pub fn init(backend: Box<dyn Backend>, password: &[u8]) -> Result<Repository> {
        let config = Config {
            version: 1,
            id: random_hex(),
            chunker: Chunker { min: 512 << 10, avg: 1 << 20, max: 8 << 20 },
            compression: "zstd".into(),
        };
        Repository::create(Arc::from(backend), Arc::new(Keys::generate()), config, password)
    }

    /// Creates a repository in `backend` that shares `from`'s master key and
    /// settings (its copy: the same chunk ids, so `copy` and `repair` move
    /// packs between them as they are). Its key is wrapped under
    /// `password`.
    pub fn init_copy_of(backend: Box<dyn Backend>, password: &[u8], from: &Repository) -> Result<Repository> {
        Repository::create(Arc::from(backend), from.keys.clone(), from.config.clone(), password)
    }

    /// Writes a new repository's key (wrapped under `password`) and config.
    fn create(backend: Arc<dyn Backend>, keys: Arc<Keys>, config: Config, password: &[u8]) -> Result<Repository> {
        if backend.exists("config")? {
            return Err(Error::Repository(format!("{}: a repository already exists here", backend.location())));
        }
        let key = serde_json::to_vec(&keys.wrap(password)?).map_err(|e| Error::Repository(e.to_string()))?;
        backend.put(&format!("keys/{}", random_hex()), &key)?;
        let text = serde_json::to_vec_pretty(&config).map_err(|e| Error::Repository(e.to_string()))?;
        backend.put("config", &text)?;
        Ok(Repository::new(backend, keys, config))
    }

    /// An open repository with no index loaded yet.
    fn new(backend: Arc<dyn Backend>, keys: Arc<Keys>, config: Config) -> Repository {
        Repository {
            backend,
            keys,
            config,
            index: HashMap::new(),
            excludes: Vec::new(),
            progress: None,
            local: None,
            warnings: Default::default(),
        }
    }

    fn same_repository(&self, other: &Repository) -> Result<()> {
        if self.config.id != other.config.id {
            return Err(Error::Repository(format!(
                "{} is not a copy of {} (create it with `rampart backup init --from-repo`)",
                other.backend.location(),
                self.backend.location()
            )));
        }
        Ok(())
    }

    /// Copies to `dest` (a copy of this repository) every snapshot it does
    /// not have, with the packs they need, each pack checked against its
    /// name on the way; returns the snapshot ids copied.
    pub fn copy_to(&self, dest: &mut Repository) -> Result<Vec<String>> {
        self.same_repository(dest)?;
        let _locks = (self.lock(false)?, dest.lock(false)?);
        let have: std::collections::HashSet<String> = dest.snapshots()?.into_iter().map(|(id, _)| id).collect();
        let mut copied = Vec::new();
        for (sid, snap) in self.snapshots()? {
            if have.contains(&sid) {
                continue;
            }
            // The packs this snapshot needs that `dest` does not index.
            let mut packs: std::collections::BTreeSet<String> = Default::default();
            let mut stack = vec![snap.tree.clone()];
            let mut seen = std::collections::HashSet::new();
            while let Some(tid) = stack.pop() {
                let id = parse_id(&tid).ok_or_else(|| Error::Damaged(format!("tree id {tid}")))?;
                if !seen.insert(id) {
                    continue;
                }
                let mut ids = vec![id];
                let tree = self.load_tree(&tid)?;
                for n in tree.nodes {
                    stack.extend(n.subtree);
                    ids.extend(n.content.iter().filter_map(|c| parse_id(c)));
                }
                for id in ids {
                    if !dest.index.contains_key(&id) {
                        let loc = self.index.get(&id).ok_or_else(|| Error::MissingBlob(hex(&id)))?;
                        packs.insert(loc.pack.clone());
                    }
                }
            }
            let mut index = IndexFile::default();
            for pack in packs {
                let name = format!("data/{}/{pack}", &pack[..2]);
                let data = self.backend.get(&name)?;
                if hex(&sha256(&data)) != pack {
                    return Err(Error::Damaged(name));
                }
                dest.backend.put(&name, &data)?;
                let blobs: Vec<IndexEntry> = self
                    .index
                    .iter()
                    .filter(|(_, l)| l.pack == pack)
                    .map(|(id, l)| (hex(id), l.kind, l.offset, l.length, l.plain, l.compressed))
                    .collect();
                for (id, l) in self.index.iter().filter(|(_, l)| l.pack == pack) {
                    dest.index.insert(*id, l.clone());
                }
                index.packs.push(IndexPack { id: pack, blobs });
            }
            dest.write_index(&index)?;
            let name = format!("snapshots/{sid}");
            crate::heads::ensure(&*dest.backend, &dest.keys, &Series::of(&snap))?;
            dest.backend.put(&name, &self.backend.get(&name)?)?;
            dest.record(&sid, &snap)?;
            copied.push(sid);
        }
        Ok(copied)
    }

    /// Replaces every pack of this repository that is missing or damaged
    /// with the same pack from `other` (a copy), checked against its name;
    /// returns the packs repaired. Packs no copy holds stay as they are
    /// (`check` names them).
    pub fn repair_from(&self, other: &Repository) -> Result<Vec<String>> {
        self.same_repository(other)?;
        let _locks = (self.lock(true)?, other.lock(false)?);
        let packs: std::collections::BTreeSet<&str> = self.index.values().map(|l| l.pack.as_str()).collect();
        let mut repaired = Vec::new();
        for pack in packs {
            let name = format!("data/{}/{pack}", &pack[..2]);
            let good = self.backend.get(&name).map(|d| hex(&sha256(&d)) == pack).unwrap_or(false);
            if good {
                continue;
            }
            if let Ok(data) = other.backend.get(&name) {
                if hex(&sha256(&data)) == pack {
                    self.backend.put(&name, &data)?;
                    repaired.push(name);
                }
            }
        }
        Ok(repaired)
    }

    /// Opens the repository in `backend` with `password`, and reads its
    /// indexes.
    pub fn open(backend: Box<dyn Backend>, password: &[u8]) -> Result<Repository> {
        let backend: Arc<dyn Backend> = Arc::from(backend);
        let text = backend.get("config").map_err(|_| {
            Error::Repository(format!("{}: no repository here (run `rampart backup init`)", backend.location()))
        })?;
        let config: Config = serde_json::from_slice(&text).map_err(|_| Error::Damaged("config".into()))?;
        if config.version != 1 {
            return Err(Error::Repository(format!("repository version {} is not supported", config.version)));
        }
        // `config` is not sealed (it is read before the key): chunk sizes
        // outside FastCDC's bounds would make a backup store nothing, or
        // panic.
        use fastcdc::v2020::{AVERAGE_MAX, AVERAGE_MIN, MAXIMUM_MAX, MAXIMUM_MIN, MINIMUM_MAX, MINIMUM_MIN};
        let c = &config.chunker;
        let (min, avg, max) = (c.min as usize, c.avg as usize, c.max as usize);
        if !((MINIMUM_MIN..=MINIMUM_MAX).contains(&min)
            && (AVERAGE_MIN..=AVERAGE_MAX).contains(&avg)
            && (MAXIMUM_MIN..=MAXIMUM_MAX).contains(&max)
            && min <= avg
            && avg <= max)
        {
            return Err(Error::Damaged(format!("config (chunk sizes {min}/{avg}/{max} are out of bounds)")));
        }
        // A key file that cannot be used (out-of-bounds parameters, say)
        // does not stop the others being tried: it is named only when no
        // key opens.
        let mut keys = None;
        let mut unusable = None;
        for name in backend.list("keys/")? {
            let Ok(file) = serde_json::from_slice::<KeyFile>(&backend.get(&name)?) else { continue };
            match Keys::unwrap(&file, password) {
                Ok(k) => {
                    keys = Some(k);
                    break;
                }
                Err(Error::WrongPassword) => continue,
                Err(e) => {
                    unusable.get_or_insert(Error::Repository(format!("{name}: {e}")));
                }
            }
        }
        let keys = keys.ok_or_else(|| unusable.unwrap_or(Error::WrongPassword))?;
        let mut repo = Repository::new(backend, Arc::new(keys), config);
        repo.load_index()?;
        Ok(repo)
    }

    /// Takes a lock: shared (backups, restores, copies) or exclusive
    /// (forget, prune, repair); see [`crate::lock`].
    pub fn lock(&self, exclusive: bool) -> Result<Lock> {
        crate::lock::take(&self.backend, &self.keys, exclusive)
    }

    /// Keeps this client's record of the newest snapshot of each series it
    /// writes or sees in `dir` (`DATA_DIR/backup-heads`): a rollback of the
    /// whole repository to an earlier state, records and all, is then
    /// detected too (docs/backup-format.md, "Heads: rollback and
    /// deletion").
    pub fn set_state_dir(&mut self, dir: &Path) {
        self.local = Some(LocalState::new(dir, &self.config.id, &self.backend.location()));
    }

    /// Where this client's record of the repository is kept, if anywhere.
    pub fn state_file(&self) -> Option<&Path> {
        self.local.as_ref().map(LocalState::path)
    }

    /// What went wrong that did not stop the work (the client's record
    /// could not be written, say), once.
    pub fn take_warnings(&self) -> Vec<String> {
        self.warnings.lock().map(|mut w| std::mem::take(&mut *w)).unwrap_or_default()
    }

    fn warn(&self, text: String) {
        if let Ok(mut w) = self.warnings.lock() {
            w.push(text);
        }
    }

    /// Raises the client's record to `seen` (series id, series, sequence
    /// number, newest snapshot); a failure is a warning.
    fn remember(&self, seen: &[(String, Series, u64, String)]) {
        if let Some(local) = &self.local {
            if let Err(e) = local.raise(seen) {
                self.warn(format!("this client's record of the repository's newest snapshots was not updated: {e}"));
            }
        }
    }

    /// Records snapshot `id`, just written, in its series' record (and
    /// the client's).
    fn record(&self, id: &str, snap: &Snapshot) -> Result<()> {
        let series = Series::of(snap);
        let seq = crate::heads::add(&*self.backend, &self.keys, &series, id)?;
        self.remember(&[(series.id(&self.keys), series, seq, id.to_string())]);
        Ok(())
    }

    /// What the series' records and this client's record say is wrong
    /// with the snapshots `present`: missing snapshots, series without a
    /// record, records that do not open, a repository behind what this
    /// client saw. When nothing is, the client's record is raised to what
    /// the repository holds.
    fn heads_problems(&self, present: &[(String, Snapshot)]) -> Result<Vec<String>> {
        let heads = crate::heads::read_all(&*self.backend, &self.keys)?;
        let mut problems = Vec::new();
        let local = match self.local.as_ref().map(LocalState::load).transpose() {
            Ok(l) => l.unwrap_or_default(),
            Err(e) => {
                problems.push(e.to_string());
                Default::default()
            }
        };
        problems.extend(crate::heads::problems(&heads, present, &self.keys, &local));
        if problems.is_empty() {
            let seen: Vec<_> = heads
                .0
                .iter()
                .filter_map(|(sid, h)| {
                    let newest = present.iter().rev().find(|(id, _)| h.snapshots.contains(id))?;
                    Some((sid.clone(), h.series.clone(), h.seq, newest.0.clone()))
                })
                .collect();
            self.remember(&seen);
        }
        Ok(problems)
    }

    /// Checks the snapshots against the series' records and this client's
    /// record (as `check` does, and `latest` needs): one line per problem.
    pub fn verify_heads(&self) -> Result<Vec<String>> {
        let present = self.snapshots()?;
        self.heads_problems(&present)
    }

    /// Leaves out of the next backups every file or directory whose name or
    /// whole path matches one of `patterns` (`*.tmp`, `node_modules`,
    /// `/srv/app/cache/*`).
    pub fn set_excludes(&mut self, patterns: &[String]) -> Result<()> {
        self.excludes = patterns
            .iter()
            .map(|p| glob::Pattern::new(p).map_err(|e| Error::Repository(format!("exclude pattern {p:?}: {e}"))))
            .collect::<Result<_>>()?;
        Ok(())
    }

    /// Calls `f(files, bytes)` after each file a backup or restore handles.
    pub fn set_progress(&mut self, f: Progress) {
        self.progress = Some(std::sync::Mutex::new(f));
    }

    fn report(&self, files: u64, bytes: u64) {
        if let Some(p) = &self.progress {
            if let Ok(mut f) = p.lock() {
                f(files, bytes);
            }
        }
    }

    fn excluded(&self, path: &Path, name: &str) -> bool {
        self.excludes.iter().any(|p| p.matches(name) || p.matches_path(path))
    }

    /// The repository's public settings.
    pub fn config(&self) -> &Config {
        &self.config
    }

    fn load_index(&mut self) -> Result<()> {
        let names = self.backend.list("index/")?;
        let mut files = Vec::new();
        let mut superseded = std::collections::HashSet::new();
        for name in names {
            let data = self.backend.get(&name)?;
            let plain = self.keys.open_envelope("index", &data, &name)?;
            let file: IndexFile = serde_json::from_slice(&plain).map_err(|_| Error::Damaged(name.clone()))?;
            superseded.extend(file.supersedes.iter().cloned());
            files.push((name, file));
        }
        for (name, file) in files {
            if superseded.contains(name.trim_start_matches("index/")) {
                continue;
            }
            for p in file.packs {
                for (id, kind, offset, length, plain, compressed) in p.blobs {
                    let id = parse_id(&id).ok_or_else(|| Error::Damaged(name.clone()))?;
                    self.index.insert(id, Location { pack: p.id.clone(), offset, length, plain, compressed, kind });
                }
            }
        }
        Ok(())
    }

    /// The snapshots, oldest first, with their ids.
    pub fn snapshots(&self) -> Result<Vec<(String, Snapshot)>> {
        let mut out = Vec::new();
        for name in self.backend.list("snapshots/")? {
            let data = self.backend.get(&name)?;
            // A snapshot's name is the SHA-256 of its object: one copied or
            // renamed by someone with access to the storage is refused.
            if name.strip_prefix("snapshots/") != Some(hex(&sha256(&data)).as_str()) {
                return Err(Error::Damaged(format!("{name} (its name is not the hash of its content)")));
            }
            let plain = self.keys.open_envelope("snapshot", &data, &name)?;
            let s: Snapshot = serde_json::from_slice(&plain).map_err(|_| Error::Damaged(name.clone()))?;
            out.push((name.trim_start_matches("snapshots/").to_string(), s));
        }
        out.sort_by_key(|(_, s)| s.time);
        Ok(out)
    }

    /// The snapshot `id` (a prefix will do) or `latest`.
    pub fn snapshot(&self, id: &str) -> Result<(String, Snapshot)> {
        let all = self.snapshots()?;
        let found = if id == "latest" {
            // `latest` must be the latest: refused when a newer snapshot is
            // known to have existed (an id still restores).
            let problems = self.heads_problems(&all)?;
            if !problems.is_empty() {
                return Err(Error::Rollback(format!(
                    "`latest` is refused: {}; the newest snapshot here may not be the newest one written (restore \
                     a snapshot by id to use it anyway; `rampart backup check` lists every problem)",
                    problems.join("; ")
                )));
            }
            all.into_iter().last()
        } else {
            let mut m: Vec<_> = all.into_iter().filter(|(sid, _)| sid.starts_with(id)).collect();
            if m.len() > 1 {
                return Err(Error::Repository(format!("snapshot id {id} is ambiguous")));
            }
            m.pop()
        };
        found.ok_or_else(|| Error::Repository(format!("no snapshot {id}")))
    }

    /// Backs up `paths` into a new snapshot: every file's chunks that the
    /// repository does not hold yet are stored; files unchanged since the
    /// latest snapshot of the same paths (size, mtime, inode) are not read.
    pub fn backup(&mut self, paths: &[PathBuf], tags: &[String]) -> Result<(String, Snapshot)> {
        let _lock = self.lock(false)?;
        let start = Instant::now();
        let names: Vec<String> = paths.iter().map(|p| p.display().to_string()).collect();
        let parent = self.snapshots()?.into_iter().rev().find(|(_, s)| s.paths == names);
        let parent_tree = match &parent {
            Some((_, s)) => Some(self.load_tree(&s.tree)?),
            None => None,
        };
        let mut pipe = self.pipeline();
        let mut summary = Summary::default();
        // The root: one node per path given.
        let mut root = Tree::default();
        for p in paths {
            let meta = std::fs::symlink_metadata(p).map_err(io(p))?;
            // `.`, `..` and `/` have no name of their own: the directory's
            // real name, and `root` for `/`.
            let name = p
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .or_else(|| std::fs::canonicalize(p).ok()?.file_name().map(|n| n.to_string_lossy().into_owned()))
                .unwrap_or_else(|| "root".into());
            let prev = parent_tree.as_ref().and_then(|t| t.nodes.iter().find(|n| n.name == name)).cloned();
            let node = self.store(p, &name, &meta, prev.as_ref(), &mut pipe, &mut summary)?;
            root.nodes.push(node);
        }
        root.nodes.sort_by(|a, b| a.name.cmp(&b.name));
        let root_id = self.store_tree(&root, &mut pipe, &mut summary)?;
        self.finish_pipeline(pipe)?;
        summary.duration_ms = start.elapsed().as_millis() as u64;
        self.write_snapshot(names, tags, root_id, parent.map(|(id, _)| id), "files", summary)
    }

    /// Backs up one stream (a database dump, stdin) as the file `name` of
    /// a new snapshot whose source is `source` (`postgres:app`, `stdin`).
    /// `finished` is asked, once the stream has ended, whether it ended
    /// well (the dump tool's exit status); if not, no snapshot is written.
    pub fn backup_stream(
        &mut self,
        name: &str,
        reader: impl std::io::Read,
        source: &str,
        tags: &[String],
        finished: impl FnOnce() -> Result<()>,
    ) -> Result<(String, Snapshot)> {
        let _lock = self.lock(false)?;
        let start = Instant::now();
        let mut pipe = self.pipeline();
        let mut summary = Summary { files: 1, files_read: 1, ..Default::default() };
        let mut content = Vec::new();
        let mut chunker = pipe.chunker.take().unwrap_or_else(|| self.chunker());
        let read = chunker.chunks(reader, |chunk| {
            summary.bytes += chunk.len() as u64;
            content.push(hex(&self.add_blob(chunk, 0, &mut pipe, &mut summary)?));
            Ok(())
        });
        read.map_err(|e| Error::Io { what: name.to_string(), source: e })??;
        finished()?;
        let node = Node {
            name: name.to_string(),
            kind: "file".into(),
            mode: 0o600,
            uid: 0,
            gid: 0,
            mtime_ns: i128::from(now_ns()),
            size: summary.bytes,
            content,
            subtree: None,
            target: None,
            inode: 0,
            dev: 0,
        };
        let root = Tree { nodes: vec![node] };
        let root_id = self.store_tree(&root, &mut pipe, &mut summary)?;
        self.finish_pipeline(pipe)?;
        summary.duration_ms = start.elapsed().as_millis() as u64;
        let parent = self.snapshots()?.into_iter().rev().find(|(_, s)| s.source == source).map(|(id, _)| id);
        self.write_snapshot(vec![name.to_string()], tags, root_id, parent, source, summary)
    }

    fn write_index(&mut self, index: &IndexFile) -> Result<()> {
        if !index.packs.is_empty() {
            let plain = serde_json::to_vec(index).map_err(|e| Error::Repository(e.to_string()))?;
            let data = self.keys.envelope("index", &plain);
            self.backend.put(&format!("index/{}", hex(&sha256(&data))), &data)?;
        }
        Ok(())
    }

    fn write_snapshot(
        &mut self,
        paths: Vec<String>,
        tags: &[String],
        tree: String,
        parent: Option<String>,
        source: &str,
        summary: Summary,
    ) -> Result<(String, Snapshot)> {
        let snap = Snapshot {
            time: now_ns(),
            hostname: hostname(),
            paths,
            tags: tags.to_vec(),
            tree,
            parent,
            source: source.to_string(),
            summary,
        };
        let plain = serde_json::to_vec(&snap).map_err(|e| Error::Repository(e.to_string()))?;
        let data = self.keys.envelope("snapshot", &plain);
        let id = hex(&sha256(&data));
        crate::heads::ensure(&*self.backend, &self.keys, &Series::of(&snap))?;
        self.backend.put(&format!("snapshots/{id}"), &data)?;
        // Then its series' record: a crash between the two leaves a
        // snapshot no record names, which is no rollback.
        self.record(&id, &snap)?;
        Ok((id, snap))
    }

    /// The content of the file `name` at the root of snapshot `id`,
    /// written to `out` (a database dump, to hand to its restore tool).
    pub fn restore_stream(&self, id: &str, name: &str, out: &mut impl Write) -> Result<u64> {
        let _lock = self.lock(false)?;
        let (_, snap) = self.snapshot(id)?;
        let root = self.load_tree(&snap.tree)?;
        let node = root
            .nodes
            .iter()
            .find(|n| n.name == name && n.kind == "file")
            .ok_or_else(|| Error::Repository(format!("snapshot {id} has no {name}")))?;
        let mut n = 0u64;
        for c in &node.content {
            let cid = parse_id(c).ok_or_else(|| Error::Damaged(format!("chunk id {c}")))?;
            let data = self.read_blob_at(&cid, None)?;
            out.write_all(&data).map_err(|e| Error::Io { what: name.to_string(), source: e })?;
            n += data.len() as u64;
        }
        Ok(n)
    }

    #[allow(clippy::too_many_arguments)]
    fn store(
        &mut self,
        path: &Path,
        name: &str,
        meta: &std::fs::Metadata,
        prev: Option<&Node>,
        pipe: &mut Pipeline,
        summary: &mut Summary,
    ) -> Result<Node> {
        let mtime_ns = i128::from(meta.mtime()) * 1_000_000_000 + i128::from(meta.mtime_nsec());
        let mut node = Node {
            name: name.to_string(),
            kind: String::new(),
            mode: meta.permissions().mode() & 0o7777,
            uid: meta.uid(),
            gid: meta.gid(),
            mtime_ns,
            size: 0,
            content: Vec::new(),
            subtree: None,
            target: None,
            inode: meta.ino(),
            dev: meta.dev(),
        };
        let ft = meta.file_type();
        if ft.is_symlink() {
            node.kind = "symlink".into();
            node.target = Some(std::fs::read_link(path).map_err(io(path))?.to_string_lossy().into_owned());
        } else if ft.is_dir() {
            summary.dirs += 1;
            node.kind = "dir".into();
            let prev_tree = match prev.and_then(|p| p.subtree.as_deref()) {
                Some(id) => Some(self.load_tree(id)?),
                None => None,
            };
            let mut entries: Vec<_> = std::fs::read_dir(path).map_err(io(path))?.flatten().collect();
            entries.sort_by_key(|e| e.file_name());
            let mut tree = Tree::default();
            for e in entries {
                let child = e.path();
                let cname = e.file_name().to_string_lossy().into_owned();
                if self.excluded(&child, &cname) {
                    continue;
                }
                let cmeta = std::fs::symlink_metadata(&child).map_err(io(&child))?;
                let cprev = prev_tree.as_ref().and_then(|t| t.nodes.iter().find(|n| n.name == cname));
                tree.nodes.push(self.store(&child, &cname, &cmeta, cprev, pipe, summary)?);
            }
            node.subtree = Some(self.store_tree(&tree, pipe, summary)?);
        } else if ft.is_file() {
            summary.files += 1;
            node.kind = "file".into();
            node.size = meta.len();
            summary.bytes += meta.len();
            let unchanged = prev.filter(|p| {
                p.kind == "file"
                    && p.size == node.size
                    && p.mtime_ns == mtime_ns
                    && p.inode == node.inode
                    && p.dev == node.dev
            });
            let reusable = unchanged
                .filter(|p| p.content.iter().all(|c| parse_id(c).is_some_and(|id| self.index.contains_key(&id))));
            self.report(summary.files, summary.bytes);
            match reusable {
                Some(p) => node.content = p.content.clone(),
                None => {
                    summary.files_read += 1;
                    let f = std::fs::File::open(path).map_err(io(path))?;
                    let mut chunker = pipe.chunker.take().unwrap_or_else(|| self.chunker());
                    // Large chunks are hashed by the workers, a few at a
                    // time, their ids taken in order.
                    let mut waiting = std::collections::VecDeque::new();
                    let mut read_bytes = 0u64;
                    let read = chunker.chunks(f, |chunk| {
                        read_bytes += chunk.len() as u64;
                        if chunk.len() < HASH_INLINE_BELOW {
                            waiting.push_back(Ok(self.add_blob(chunk, 0, pipe, summary)?));
                        } else {
                            waiting.push_back(Err(pipe.packer.hash(chunk)?));
                        }
                        while waiting.len() > crate::packer::HASH_WINDOW {
                            let id = self.settle(waiting.pop_front(), pipe, summary)?;
                            node.content.push(hex(&id));
                        }
                        Ok(())
                    });
                    pipe.chunker = Some(chunker);
                    read.map_err(io(path))??;
                    while !waiting.is_empty() {
                        let id = self.settle(waiting.pop_front(), pipe, summary)?;
                        node.content.push(hex(&id));
                    }
                    // What was read, if the file changed meanwhile.
                    node.size = read_bytes;
                }
            }
        } else {
            // Sockets, devices, FIFOs: recorded by kind only.
            node.kind = "other".into();
        }
        Ok(node)
    }

    fn store_tree(&mut self, tree: &Tree, pipe: &mut Pipeline, s: &mut Summary) -> Result<String> {
        let plain = serde_json::to_vec(tree).map_err(|e| Error::Repository(e.to_string()))?;
        Ok(hex(&self.add_blob(&plain, 1, pipe, s)?))
    }

    /// Starts the workers that compress, seal and pack new blobs.
    fn pipeline(&self) -> Pipeline {
        Pipeline {
            packer: Packer::start(self.keys.clone(), self.backend.clone()),
            pending: std::collections::HashSet::new(),
            chunker: None,
        }
    }

    fn chunker(&self) -> crate::chunker::Chunker {
        let c = &self.config.chunker;
        crate::chunker::Chunker::new(c.min as usize, c.avg as usize, c.max as usize)
    }

    /// Waits for the pipeline, then indexes what it wrote.
    fn finish_pipeline(&mut self, pipe: Pipeline) -> Result<()> {
        let packed = pipe.packer.finish()?;
        self.index.extend(packed.locations);
        self.write_index(&packed.index)
    }

    /// Hands a blob to the pipeline unless the repository (or the
    /// pipeline) already has it; returns its id.
    fn add_blob(&mut self, data: &[u8], kind: u8, pipe: &mut Pipeline, s: &mut Summary) -> Result<[u8; 32]> {
        let id = self.keys.blob_id(data);
        if self.index.contains_key(&id) || !pipe.pending.insert(id) {
            return Ok(id);
        }
        s.new_bytes += data.len() as u64;
        s.new_blobs += 1;
        pipe.packer.add(id, kind, data)?;
        Ok(id)
    }

    /// The id of a chunk that was hashed here (`Ok`) or by a worker
    /// (`Err(receiver)`); a new chunk goes on to be packed.
    fn settle(
        &self,
        waiting: Option<std::result::Result<[u8; 32], std::sync::mpsc::Receiver<crate::packer::Hashed>>>,
        pipe: &mut Pipeline,
        s: &mut Summary,
    ) -> Result<[u8; 32]> {
        let hashed = match waiting {
            Some(Ok(id)) => return Ok(id),
            Some(Err(rx)) => rx.recv().map_err(|_| Error::Repository("backup pipeline stopped".into()))?,
            None => return Err(Error::Repository("backup pipeline: nothing to settle".into())),
        };
        let (id, data) = hashed;
        if self.index.contains_key(&id) || !pipe.pending.insert(id) {
            pipe.packer.recycle(data);
            return Ok(id);
        }
        s.new_bytes += data.len() as u64;
        s.new_blobs += 1;
        pipe.packer.add_owned(id, 0, data)?;
        Ok(id)
    }

    fn flush_pack(&mut self, w: &mut PackWriter, index: &mut IndexFile) -> Result<()> {
        if w.entries.is_empty() {
            return Ok(());
        }
        let (pack_id, header) = finish_pack(&self.keys, w)?;
        self.backend.put(&format!("data/{}/{pack_id}", &pack_id[..2]), &w.buf)?;
        for (id, kind, offset, length, plain, compressed) in w.entries.drain(..) {
            self.index.insert(id, Location { pack: pack_id.clone(), offset, length, plain, compressed, kind });
        }
        index.packs.push(IndexPack { id: pack_id, blobs: header });
        w.buf.clear();
        Ok(())
    }

    /// A blob's plaintext, checked against its id. With `cache`, whole
    /// packs are read and hashed (`check --read-data`); without, only the
    /// blob's bytes are read (each is authenticated on its own).
    fn read_blob(&self, id: &[u8; 32], cache: &mut Option<(String, Vec<u8>)>) -> Result<Vec<u8>> {
        self.read_blob_at(id, Some(cache))
    }

    fn read_blob_at(&self, id: &[u8; 32], cache: Option<&mut Option<(String, Vec<u8>)>>) -> Result<Vec<u8>> {
        let loc = self.index.get(id).ok_or_else(|| Error::MissingBlob(hex(id)))?;
        let name = format!("data/{}/{}", &loc.pack[..2], loc.pack);
        let what = format!("blob {} in pack {}", hex(id), loc.pack);
        // A pack the index names that the storage does not hold was
        // deleted: damage (exit 4), not a failure of the storage.
        let missing = |e: Error| match e {
            Error::Io { source, .. } if source.kind() == std::io::ErrorKind::NotFound => {
                Error::MissingPack(loc.pack.clone())
            }
            e => e,
        };
        let sealed = match cache {
            Some(cache) => {
                if cache.as_ref().is_none_or(|(p, _)| *p != loc.pack) {
                    let data = self.backend.get(&name).map_err(missing)?;
                    if hex(&sha256(&data)) != loc.pack {
                        return Err(Error::Damaged(name));
                    }
                    *cache = Some((loc.pack.clone(), data));
                }
                let pack = &cache.as_ref().ok_or_else(|| Error::MissingBlob(hex(id)))?.1;
                let start = usize::try_from(loc.offset).map_err(|_| Error::Damaged(what.clone()))?;
                pack.get(start..start + loc.length as usize).ok_or_else(|| Error::Damaged(what.clone()))?.to_vec()
            }
            None => self.backend.get_range(&name, loc.offset, loc.length as usize).map_err(missing)?,
        };
        let stored = self.keys.open(&sealed, &blob_aad(id, loc.kind, loc.compressed), &what)?;
        let plain = if loc.compressed {
            zstd::bulk::decompress(&stored, loc.plain as usize).map_err(|_| Error::Damaged(what.clone()))?
        } else {
            stored
        };
        if self.keys.blob_id(&plain) != *id {
            return Err(Error::Damaged(what));
        }
        Ok(plain)
    }

    fn load_tree(&self, id: &str) -> Result<Tree> {
        let id = parse_id(id).ok_or_else(|| Error::Damaged(format!("tree id {id}")))?;
        let plain = self.read_blob_at(&id, None)?;
        serde_json::from_slice(&plain).map_err(|_| Error::Damaged(format!("tree {}", hex(&id))))
    }

    /// Removes the snapshots `policy` does not keep, applied to each series
    /// of snapshots of the same host, source and paths; returns their ids.
    /// Their data stays until `prune`.
    pub fn forget(&self, policy: &KeepPolicy) -> Result<Vec<String>> {
        if policy.is_empty() {
            return Err(Error::Repository("a policy that keeps nothing: give at least one --keep-* option".into()));
        }
        let _lock = self.lock(true)?;
        let mut all = self.snapshots()?;
        all.reverse(); // newest first
                       // The policy applies to each series of snapshots of the same data
                       // (host, source, paths), as restic groups them: one job's
                       // retention never removes another's snapshots.
        let mut keep = vec![false; all.len()];
        let mut series: Vec<(&str, &str, &[String])> = Vec::new();
        for (_, s) in &all {
            let key = (s.hostname.as_str(), s.source.as_str(), s.paths.as_slice());
            if !series.contains(&key) {
                series.push(key);
            }
        }
        for key in series {
            let members: Vec<usize> = (0..all.len())
                .filter(|&i| (all[i].1.hostname.as_str(), all[i].1.source.as_str(), all[i].1.paths.as_slice()) == key)
                .collect();
            for &i in members.iter().take(policy.last) {
                keep[i] = true;
            }
            const HOUR: u64 = 3_600_000_000_000;
            for (count, unit) in [
                (policy.hourly, HOUR),
                (policy.daily, 24 * HOUR),
                (policy.weekly, 7 * 24 * HOUR),
                (policy.monthly, 30 * 24 * HOUR),
                (policy.yearly, 365 * 24 * HOUR),
            ] {
                let mut seen = Vec::new();
                for &i in &members {
                    let bucket = all[i].1.time / unit;
                    if seen.len() < count && !seen.contains(&bucket) {
                        seen.push(bucket);
                        keep[i] = true;
                    }
                }
            }
        }
        let removed: Vec<String> =
            all.iter().zip(&keep).filter(|(_, kept)| !**kept).map(|((id, _), _)| id.clone()).collect();
        // The records first: a crash after them leaves snapshots no record
        // names (no rollback), never records naming deleted snapshots.
        let doomed: std::collections::BTreeSet<String> = removed.iter().cloned().collect();
        let heads = crate::heads::rewrite(&*self.backend, &self.keys, &all, &doomed)?;
        for id in &removed {
            self.backend.delete(&format!("snapshots/{id}"))?;
        }
        let seen: Vec<_> = heads
            .into_iter()
            .filter_map(|(sid, (series, seq, snapshots))| {
                let newest = all.iter().find(|(id, _)| snapshots.contains(id))?;
                Some((sid, series, seq, newest.0.clone()))
            })
            .collect();
        self.remember(&seen);
        Ok(removed)
    }

    /// Deletes the data no snapshot needs, in an order that a crash at any
    /// point cannot make lose data a snapshot references
    /// (docs/backup-format.md, "Prune, crash safety"): used blobs of
    /// partly used packs are copied into new packs, one new index covering
    /// every remaining pack is written (superseding the old ones), and only
    /// then are the old indexes and the unused packs deleted.
    pub fn prune(&mut self) -> Result<Pruned> {
        let _lock = self.lock(true)?;
        // Every blob a snapshot reaches.
        let mut used = std::collections::HashSet::new();
        for (_, snap) in self.snapshots()? {
            let mut stack = vec![snap.tree.clone()];
            while let Some(tid) = stack.pop() {
                let id = parse_id(&tid).ok_or_else(|| Error::Damaged(format!("tree id {tid}")))?;
                if !used.insert(id) {
                    continue;
                }
                let tree = self.load_tree(&tid)?;
                for n in tree.nodes {
                    stack.extend(n.subtree);
                    for c in n.content {
                        used.insert(parse_id(&c).ok_or_else(|| Error::Damaged(format!("chunk id {c}")))?);
                    }
                }
            }
        }
        let mut by_pack: HashMap<String, Vec<([u8; 32], Location)>> = HashMap::new();
        for (id, loc) in &self.index {
            by_pack.entry(loc.pack.clone()).or_default().push((*id, loc.clone()));
        }
        let mut out = Pruned::default();
        let mut doomed = Vec::new();
        let mut w = PackWriter::default();
        let mut fresh = IndexFile::default();
        let mut new_index: HashMap<[u8; 32], Location> = HashMap::new();
        for (pack, blobs) in by_pack {
            let live = blobs.iter().filter(|(id, _)| used.contains(id)).count();
            if live == blobs.len() {
                for (id, loc) in blobs {
                    new_index.insert(id, loc);
                }
                continue;
            }
            let name = format!("data/{}/{pack}", &pack[..2]);
            out.bytes_freed +=
                blobs.iter().filter(|(id, _)| !used.contains(id)).map(|(_, l)| u64::from(l.length)).sum::<u64>();
            if live > 0 {
                // Copy the live blobs as they are: sealed blobs carry their
                // own authentication, whatever pack holds them.
                for (id, loc) in blobs.iter().filter(|(id, _)| used.contains(id)) {
                    let sealed = self.backend.get_range(&name, loc.offset, loc.length as usize)?;
                    let offset = w.buf.len() as u64;
                    w.buf.extend_from_slice(&sealed);
                    w.entries.push((*id, loc.kind, offset, loc.length, loc.plain, loc.compressed));
                    if w.buf.len() >= PACK_TARGET {
                        self.write_pack(&mut w, &mut fresh, &mut new_index)?;
                    }
                }
                out.packs_repacked += 1;
            } else {
                out.packs_deleted += 1;
            }
            doomed.push(name);
        }
        self.write_pack(&mut w, &mut fresh, &mut new_index)?;
        // Packs no index names: left by a backup that was killed before it
        // wrote its index (no snapshot can reference them; no backup runs
        // now, under the exclusive lock).
        let indexed: std::collections::HashSet<&str> =
            self.index.values().chain(new_index.values()).map(|l| l.pack.as_str()).collect();
        let orphans: Vec<String> = self
            .backend
            .list("data/")?
            .into_iter()
            .filter(|n| n.rsplit('/').next().is_none_or(|id| !indexed.contains(id)))
            .collect();
        drop(indexed);
        out.packs_deleted += orphans.len();
        if doomed.is_empty() {
            for name in &orphans {
                self.backend.delete(name)?;
            }
            return Ok(out);
        }
        // One index for everything that remains, superseding the old ones.
        let old: Vec<String> = self.backend.list("index/")?;
        let mut all = IndexFile {
            packs: Vec::new(),
            supersedes: old.iter().map(|n| n.trim_start_matches("index/").to_string()).collect(),
        };
        let mut packs: HashMap<String, Vec<IndexEntry>> = HashMap::new();
        for (id, l) in &new_index {
            packs.entry(l.pack.clone()).or_default().push((hex(id), l.kind, l.offset, l.length, l.plain, l.compressed));
        }
        all.packs = packs.into_iter().map(|(id, blobs)| IndexPack { id, blobs }).collect();
        pause_point("prune: new packs written");
        self.write_index(&all)?;
        pause_point("prune: superseding index written");
        // Only now may anything go.
        for n in &old {
            self.backend.delete(n)?;
            pause_point("prune: an old index deleted");
        }
        for name in doomed.iter().chain(&orphans) {
            self.backend.delete(name)?;
            pause_point("prune: an unused pack deleted");
        }
        self.index = new_index;
        Ok(out)
    }

    /// Writes the pack being filled during a prune and records its blobs.
    fn write_pack(
        &mut self,
        w: &mut PackWriter,
        fresh: &mut IndexFile,
        new_index: &mut HashMap<[u8; 32], Location>,
    ) -> Result<()> {
        if w.entries.is_empty() {
            return Ok(());
        }
        let entries = w.entries.clone();
        self.flush_pack(w, fresh)?;
        if let Some(p) = fresh.packs.last() {
            for (id, kind, offset, length, plain, compressed) in entries {
                new_index.insert(id, Location { pack: p.id.clone(), offset, length, plain, compressed, kind });
            }
        }
        Ok(())
    }

    /// Checks the repository: every snapshot's trees and chunks are in the
    /// index; with `read_data`, every pack is read, hashed, and every blob
    /// decrypted and checked against its id. Returns one line per problem,
    /// naming the snapshot, blob or pack.
    pub fn check(&self, read_data: bool) -> Result<Vec<String>> {
        let mut problems = Vec::new();
        // Each tree is walked once, whichever snapshot or directory reaches
        // it: equal directories share a tree blob, so a crafted snapshot
        // whose directories all point at the same subtree twice would
        // otherwise cost 2^depth walks.
        let mut seen = std::collections::HashSet::new();
        let present = self.snapshots()?;
        for (sid, snap) in &present {
            let mut stack = vec![snap.tree.clone()];
            while let Some(tid) = stack.pop() {
                if !seen.insert(tid.clone()) {
                    continue;
                }
                let tree = match self.load_tree(&tid) {
                    Ok(t) => t,
                    Err(e) => {
                        problems.push(format!("snapshot {}: tree {tid}: {e}", &sid[..8]));
                        continue;
                    }
                };
                for n in &tree.nodes {
                    if let Some(sub) = &n.subtree {
                        stack.push(sub.clone());
                    }
                    for c in &n.content {
                        if parse_id(c).is_none_or(|id| !self.index.contains_key(&id)) {
                            problems.push(format!("snapshot {}: {}: chunk {c} is missing", &sid[..8], n.name));
                        }
                    }
                }
            }
        }
        // Every pack the index names is there (without --read-data, by
        // listing only).
        let stored: std::collections::HashSet<String> =
            self.backend.list("data/")?.into_iter().filter_map(|n| n.rsplit('/').next().map(str::to_string)).collect();
        let indexed: std::collections::BTreeSet<&str> = self.index.values().map(|l| l.pack.as_str()).collect();
        for pack in indexed.into_iter().filter(|p| !stored.contains(*p)) {
            problems.push(format!("pack {pack} is missing from the repository"));
        }
        if read_data {
            let mut by_pack: HashMap<&str, Vec<&[u8; 32]>> = HashMap::new();
            for (id, loc) in &self.index {
                by_pack.entry(loc.pack.as_str()).or_default().push(id);
            }
            let mut packs: Vec<_> = by_pack.into_iter().collect();
            packs.sort();
            // One thread per core, a pack at a time each.
            let next = AtomicUsize::new(0);
            let found = std::sync::Mutex::new(Vec::new());
            let threads = std::thread::available_parallelism().map_or(2, |n| n.get()).clamp(1, 8);
            std::thread::scope(|scope| {
                for _ in 0..threads {
                    scope.spawn(|| {
                        while let Some((pack, ids)) = packs.get(next.fetch_add(1, Ordering::Relaxed)) {
                            let mut cache = None;
                            for id in ids {
                                if let Err(e) = self.read_blob(id, &mut cache) {
                                    if let Ok(mut f) = found.lock() {
                                        f.push(format!("pack {pack}: {e}"));
                                    }
                                    break;
                                }
                            }
                        }
                    });
                }
            });
            let mut found = found.into_inner().unwrap_or_default();
            found.sort();
            problems.extend(found);
        }
        // Deleted snapshots and rollbacks (docs/backup-format.md, "Heads:
        // rollback and deletion").
        problems.extend(self.heads_problems(&present)?);
        Ok(problems)
    }

    /// Restores snapshot `id` (or `latest`) into `target`; every byte is
    /// checked against its chunk id before it is written.
    pub fn restore(&self, id: &str, target: &Path) -> Result<Restored> {
        self.restore_selected(id, target, &[])
    }

    /// Restores the parts of snapshot `id` that `include` selects (paths
    /// inside the snapshot, such as `data/docs` or `data/*.txt`, and
    /// everything below them; none: the whole snapshot) into `target`.
    pub fn restore_selected(&self, id: &str, target: &Path, include: &[String]) -> Result<Restored> {
        let _lock = self.lock(false)?;
        let (_, snap) = self.snapshot(id)?;
        let include = Selection::new(include)?;
        std::fs::create_dir_all(target).map_err(io(target))?;
        let root = self.load_tree(&snap.tree)?;
        let mut out = Restored::default();
        let mut plan = Plan::default();
        self.plan_restore(&root, target, "", &include, &mut plan)?;
        if !include.is_all() && plan.selected == 0 {
            return Err(Error::Repository(format!(
                "nothing in snapshot {id} matches the paths to include (they are relative to the snapshot, such \
                 as {:?})",
                root.nodes.first().map(|n| n.name.as_str()).unwrap_or("")
            )));
        }
        self.restore_chunks(&plan, &mut out)?;
        // Children before their parents (the list is in that order): a
        // directory without write permission for its owner is set last.
        for (path, node) in &plan.dirs {
            set_metadata(path, node)?;
        }
        Ok(out)
    }

    /// Creates the directories, symlinks and (empty, sized) files of
    /// `tree` under `dir`, and lists the file chunks to write.
    fn plan_restore(&self, tree: &Tree, dir: &Path, at: &str, include: &Selection, plan: &mut Plan) -> Result<()> {
        for n in &tree.nodes {
            if n.name.contains('/') || n.name == ".." || n.name == "." {
                return Err(Error::Damaged(format!("tree entry name {:?}", n.name)));
            }
            let rel = if at.is_empty() { n.name.clone() } else { format!("{at}/{}", n.name) };
            let Some(whole) = include.selects(&rel, n.kind == "dir") else { continue };
            plan.selected += u64::from(whole);
            let path = dir.join(&n.name);
            match n.kind.as_str() {
                "dir" => {
                    make_private_dir(&path)?;
                    if let Some(sub) = &n.subtree {
                        let t = self.load_tree(sub)?;
                        let below = if whole { &Selection::ALL } else { include };
                        self.plan_restore(&t, &path, &rel, below, plan)?;
                    }
                    // Modes last: a read-only directory must first be filled.
                    plan.dirs.push((path, n.clone()));
                }
                "file" => {
                    let mut ids = Vec::with_capacity(n.content.len());
                    for c in &n.content {
                        ids.push(parse_id(c).ok_or_else(|| Error::Damaged(format!("chunk id {c}")))?);
                    }
                    let file = plan.files.len();
                    let mut offset = 0u64;
                    for (i, id) in ids.iter().enumerate() {
                        let len = self.index.get(id).ok_or_else(|| Error::MissingBlob(hex(id)))?.plain;
                        plan.chunks.push((file, i, offset));
                        offset += u64::from(len);
                    }
                    // Readable by nobody else until its own mode is set; a
                    // symlink planted in its place is not followed; as long
                    // as its chunks say (a file that shrank while it was
                    // read is not padded to the size seen before).
                    let f = open_nofollow(&path, true)?;
                    f.set_permissions(std::fs::Permissions::from_mode(0o600)).map_err(io(&path))?;
                    f.set_len(offset).map_err(io(&path))?;
                    plan.files.push(FileTask { path, node: n.clone(), ids, left: AtomicUsize::new(n.content.len()) });
                    if n.content.is_empty() {
                        finish_file(&plan.files[file])?;
                        plan.empty_files += 1;
                    }
                }
                "symlink" => {
                    if let Some(t) = &n.target {
                        let _ = std::fs::remove_file(&path);
                        std::os::unix::fs::symlink(t, &path).map_err(io(&path))?;
                    }
                }
                _ => {}
            }
        }
        Ok(())
    }

    /// Writes every planned chunk, on one thread per core: each chunk
    /// read, decrypted and checked against its id, then written at its
    /// offset; a file's metadata is set when its last chunk is in.
    fn restore_chunks(&self, plan: &Plan, out: &mut Restored) -> Result<()> {
        let next = AtomicUsize::new(0);
        let (files, bytes) = (AtomicU64::new(plan.empty_files), AtomicU64::new(0));
        let failure: std::sync::Mutex<Option<Error>> = std::sync::Mutex::new(None);
        let failed = || failure.lock().map(|f| f.is_some()).unwrap_or(true);
        let threads = std::thread::available_parallelism().map_or(2, |n| n.get()).clamp(1, 8);
        std::thread::scope(|scope| {
            for _ in 0..threads {
                scope.spawn(|| loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    let Some(&(file, chunk, offset)) = plan.chunks.get(i) else { return };
                    if failed() {
                        return;
                    }
                    let task = &plan.files[file];
                    let written = self.read_blob_at(&task.ids[chunk], None).and_then(|data| {
                        use std::os::unix::fs::FileExt;
                        let f = open_nofollow(&task.path, false)?;
                        f.write_all_at(&data, offset).map_err(io(&task.path))?;
                        Ok(data.len() as u64)
                    });
                    let done = written.and_then(|n| {
                        let b = bytes.fetch_add(n, Ordering::Relaxed) + n;
                        if task.left.fetch_sub(1, Ordering::AcqRel) == 1 {
                            finish_file(task)?;
                            self.report(files.fetch_add(1, Ordering::Relaxed) + 1, b);
                        }
                        Ok(())
                    });
                    if let Err(e) = done {
                        if let Ok(mut f) = failure.lock() {
                            f.get_or_insert(e);
                        }
                        return;
                    }
                });
            }
        });
        if let Some(e) = failure.into_inner().ok().flatten() {
            return Err(e);
        }
        out.files = files.into_inner();
        out.bytes = bytes.into_inner();
        Ok(())
    }
}

/// What a restore writes: files (with their chunks), and directories
/// whose metadata is set once they are full.
#[derive(Default)]
struct Plan {
    files: Vec<FileTask>,
    /// (file, chunk number, offset in the file).
    chunks: Vec<(usize, usize, u64)>,
    dirs: Vec<(PathBuf, Node)>,
    empty_files: u64,
    /// Entries a path to include selected.
    selected: u64,
}

struct FileTask {
    path: PathBuf,
    node: Node,
    ids: Vec<[u8; 32]>,
    /// Chunks not yet written.
    left: AtomicUsize,
}

/// Sets a restored file's mode, owner and modification time.
fn finish_file(task: &FileTask) -> Result<()> {
    set_metadata(&task.path, &task.node)
}

/// Sets a restored file's or directory's time, owner and mode, through
/// one descriptor opened without following symlinks (so nothing swapped in
/// meanwhile is changed instead).
fn set_metadata(path: &Path, n: &Node) -> Result<()> {
    use std::os::unix::fs::OpenOptionsExt;
    let when = UNIX_EPOCH + std::time::Duration::from_nanos(n.mtime_ns.max(0) as u64);
    let f = std::fs::OpenOptions::new().read(true).custom_flags(libc::O_NOFOLLOW).open(path).map_err(io(path))?;
    let _ = f.set_modified(when);
    // Ownership needs privileges; without them the files are ours.
    let _ = std::os::unix::fs::fchown(&f, Some(n.uid), Some(n.gid));
    f.set_permissions(std::fs::Permissions::from_mode(n.mode)).map_err(io(path))
}

/// Opens a file for writing (creating it, mode 0600, and emptying it with
/// `create`) without following a symlink in its place.
fn open_nofollow(path: &Path, create: bool) -> Result<std::fs::File> {
    use std::os::unix::fs::OpenOptionsExt;
    std::fs::OpenOptions::new()
        .write(true)
        .create(create)
        .truncate(create)
        .mode(0o600)
        .custom_flags(libc::O_NOFOLLOW)
        .open(path)
        .map_err(io(path))
}

/// Creates a directory (and its parents) readable by its owner only until
/// its own mode is set; an existing symlink in its place is refused.
fn make_private_dir(path: &Path) -> Result<()> {
    use std::os::unix::fs::DirBuilderExt;
    std::fs::DirBuilder::new().recursive(true).mode(0o700).create(path).map_err(io(path))?;
    let meta = std::fs::symlink_metadata(path).map_err(io(path))?;
    if !meta.is_dir() {
        return Err(Error::Io {
            what: path.display().to_string(),
            source: std::io::Error::other("not a directory (a symlink in the restore's way?)"),
        });
    }
    Ok(())
}

/// Which paths of a snapshot a restore writes: patterns matched component
/// by component (`*` never crosses a `/`), each selecting what it matches
/// and everything below.
struct Selection {
    /// Each pattern, one glob per path component.
    patterns: Vec<Vec<glob::Pattern>>,
}

impl Selection {
    const ALL: Selection = Selection { patterns: Vec::new() };

    fn new(include: &[String]) -> Result<Selection> {
        let patterns = include
            .iter()
            .map(|p| {
                p.split('/')
                    .filter(|c| !c.is_empty())
                    .map(|c| {
                        glob::Pattern::new(c).map_err(|e| Error::Repository(format!("include pattern {p:?}: {e}")))
                    })
                    .collect::<Result<Vec<_>>>()
            })
            .collect::<Result<_>>()?;
        Ok(Selection { patterns })
    }

    fn is_all(&self) -> bool {
        self.patterns.is_empty()
    }

    /// `Some(true)`: `rel` and everything below it; `Some(false)`: a
    /// directory on the way to something selected; `None`: left out.
    fn selects(&self, rel: &str, dir: bool) -> Option<bool> {
        if self.patterns.is_empty() {
            return Some(true);
        }
        let parts: Vec<&str> = rel.split('/').collect();
        let prefix_matches =
            |p: &[glob::Pattern]| parts.len() <= p.len() && parts.iter().zip(p).all(|(c, g)| g.matches(c));
        if self.patterns.iter().any(|p| parts.len() == p.len() && prefix_matches(p)) {
            return Some(true);
        }
        let on_the_way = dir && self.patterns.iter().any(|p| parts.len() < p.len() && prefix_matches(p));
        on_the_way.then_some(false)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    /// A crafted snapshot of 64 directory levels, each holding the level
    /// below twice (one tree blob, shared): 2^64 paths, 65 trees. `check`
    /// walks each tree once (it used to walk every path).
    #[test]
    fn check_walks_shared_subtrees_once() {
        let tmp = tempfile::tempdir().unwrap();
        let mut r = Repository::init(Box::new(crate::backend::LocalDir::new(tmp.path())), b"pw").unwrap();
        let mut pipe = r.pipeline();
        let mut s = Summary::default();
        let mut id = r.store_tree(&Tree::default(), &mut pipe, &mut s).unwrap();
        for _ in 0..64 {
            let dir = |name: &str| Node {
                name: name.into(),
                kind: "dir".into(),
                mode: 0o700,
                uid: 0,
                gid: 0,
                mtime_ns: 0,
                size: 0,
                content: Vec::new(),
                subtree: Some(id.clone()),
                target: None,
                inode: 0,
                dev: 0,
            };
            id = r.store_tree(&Tree { nodes: vec![dir("a"), dir("b")] }, &mut pipe, &mut s).unwrap();
        }
        r.finish_pipeline(pipe).unwrap();
        r.write_snapshot(vec!["x".into()], &[], id, None, "files", Summary::default()).unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let _ = tx.send(r.check(false).map(|p| p.len()).map_err(|e| e.to_string()));
        });
        let found = rx.recv_timeout(std::time::Duration::from_secs(60)).expect("check finishes");
        assert_eq!(found, Ok(0));
    }

    #[test]
    fn include_patterns_match_component_by_component() {
        let sel = Selection::new(&["data/*/report.txt".into(), "/etc/".into(), "*.log".into()]).unwrap();
        assert_eq!(sel.selects("data", true), Some(false), "on the way");
        assert_eq!(sel.selects("data/2026", true), Some(false), "on the way, through the wildcard");
        assert_eq!(sel.selects("data/2026/report.txt", false), Some(true));
        assert_eq!(sel.selects("data/2026/other.txt", false), None);
        assert_eq!(sel.selects("data/a/b/report.txt", false), None, "* does not cross a /");
        assert_eq!(sel.selects("etc", true), Some(true), "slashes around a pattern do not matter");
        assert_eq!(sel.selects("app.log", false), Some(true));
        assert_eq!(sel.selects("data", false), None, "a file is never on the way");
        assert_eq!(Selection::ALL.selects("anything/at/all", false), Some(true));
    }
}
