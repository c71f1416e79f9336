//! The backup pipeline's second half: new blobs are compressed and sealed
//! by worker threads (one per core), gathered into packs and written,
//! while the first half (the caller: reading, chunking, chunk ids,
//! deduplication) goes on. Chunk ids are computed before a blob comes
//! here, so trees never wait for this side.
//!
//! Memory stays bounded: at most [`QUEUE_PER_WORKER`] blobs wait per
//! worker, one pack fills, and each worker writes at most one full pack
//! at a time.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{sync_channel, Receiver, SyncSender};
use std::sync::{Arc, Mutex, PoisonError};
use std::thread::JoinHandle;

use crate::backend::Backend;
use crate::crypto::Keys;
use crate::repo::{blob_aad, finish_pack, IndexFile, IndexPack, Location, PackWriter, PACK_TARGET};
use crate::{Error, Result};

/// Blobs a worker may have waiting.
const QUEUE_PER_WORKER: usize = 4;
/// zstd's level: restic's default ratio or better, at a fraction of
/// level 3's time.
pub const ZSTD_LEVEL: i32 = 1;

/// A blob on its way: its id, kind (0 data, 1 tree) and plaintext.
struct Job {
    id: [u8; 32],
    kind: u8,
    data: Vec<u8>,
}

/// What the workers share.
struct Shared {
    keys: Arc<Keys>,
    backend: Arc<dyn Backend>,
    /// The pack being filled.
    filling: Mutex<PackWriter>,
    /// What has been written: packs for the index, blob locations.
    written: Mutex<Written>,
    failed: AtomicBool,
    error: Mutex<Option<Error>>,
}

#[derive(Default)]
struct Written {
    index: IndexFile,
    locations: HashMap<[u8; 32], Location>,
}

/// The running pipeline.
pub(crate) struct Packer {
    queue: Option<SyncSender<Job>>,
    workers: Vec<JoinHandle<()>>,
    shared: Arc<Shared>,
}

/// What a finished pipeline wrote.
pub(crate) struct Packed {
    /// The index object's content for the packs written.
    pub index: IndexFile,
    /// Where each new blob is.
    pub locations: HashMap<[u8; 32], Location>,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

impl Packer {
    /// Starts one worker per core.
    pub fn start(keys: Arc<Keys>, backend: Arc<dyn Backend>) -> Packer {
        let n = std::thread::available_parallelism().map_or(2, |n| n.get()).clamp(1, 8);
        let (queue, jobs) = sync_channel::<Job>(n * QUEUE_PER_WORKER);
        let jobs = Arc::new(Mutex::new(jobs));
        let shared = Arc::new(Shared {
            keys,
            backend,
            filling: Mutex::new(PackWriter::default()),
            written: Mutex::new(Written::default()),
            failed: AtomicBool::new(false),
            error: Mutex::new(None),
        });
        let workers = (0..n)
            .map(|i| {
                let (jobs, shared) = (jobs.clone(), shared.clone());
                std::thread::Builder::new()
                    .name(format!("rampart-pack-{i}"))
                    .spawn(move || work(&jobs, &shared))
                    .unwrap_or_else(|e| panic!("cannot start a backup worker thread: {e}"))
            })
            .collect();
        Packer { queue: Some(queue), workers, shared }
    }

    /// Hands a new blob over; fails once the pipeline has failed (the
    /// storage is gone, say), so the caller stops early.
    pub fn add(&self, id: [u8; 32], kind: u8, data: Vec<u8>) -> Result<()> {
        if self.shared.failed.load(Ordering::Relaxed) {
            return Err(self.take_error());
        }
        let queue = self.queue.as_ref().ok_or_else(|| Error::Repository("backup pipeline closed".into()))?;
        queue.send(Job { id, kind, data }).map_err(|_| Error::Repository("backup pipeline stopped".into()))
    }

    fn take_error(&self) -> Error {
        lock(&self.shared.error).take().unwrap_or_else(|| Error::Repository("backup pipeline failed".into()))
    }

    /// Waits for every blob to be stored, writes the last pack, and
    /// returns what was written.
    pub fn finish(mut self) -> Result<Packed> {
        drop(self.queue.take());
        for w in self.workers.drain(..) {
            if w.join().is_err() {
                return Err(Error::Repository("a backup worker thread panicked".into()));
            }
        }
        if self.shared.failed.load(Ordering::Relaxed) {
            return Err(self.take_error());
        }
        let last = std::mem::take(&mut *lock(&self.shared.filling));
        write_pack(&self.shared, last)?;
        let written = std::mem::take(&mut *lock(&self.shared.written));
        Ok(Packed { index: written.index, locations: written.locations })
    }
}

impl Drop for Packer {
    fn drop(&mut self) {
        drop(self.queue.take());
        for w in self.workers.drain(..) {
            let _ = w.join();
        }
    }
}

/// A worker: compress, seal, add to the filling pack; write the pack when
/// it is full.
fn work(jobs: &Mutex<Receiver<Job>>, shared: &Shared) {
    loop {
        let job = match lock(jobs).recv() {
            Ok(job) => job,
            Err(_) => return,
        };
        if shared.failed.load(Ordering::Relaxed) {
            continue; // drain the queue so the sender never blocks
        }
        let sealed = seal(&shared.keys, &job);
        let full = {
            let mut w = lock(&shared.filling);
            let offset = w.buf.len() as u64;
            w.buf.extend_from_slice(&sealed.bytes);
            w.entries.push((
                job.id,
                job.kind,
                offset,
                sealed.bytes.len() as u32,
                job.data.len() as u32,
                sealed.compressed,
            ));
            (w.buf.len() >= PACK_TARGET).then(|| std::mem::take(&mut *w))
        };
        if let Some(pack) = full {
            if let Err(e) = write_pack(shared, pack) {
                let mut slot = lock(&shared.error);
                slot.get_or_insert(e);
                shared.failed.store(true, Ordering::Relaxed);
            }
        }
    }
}

struct Sealed {
    bytes: Vec<u8>,
    compressed: bool,
}

/// zstd (kept only when it saves space), then AES-256-GCM with the id,
/// kind and compression flag as associated data.
fn seal(keys: &Keys, job: &Job) -> Sealed {
    let packed = zstd::bulk::compress(&job.data, ZSTD_LEVEL).ok().filter(|p| p.len() < job.data.len());
    let compressed = packed.is_some();
    let plain = packed.as_deref().unwrap_or(&job.data);
    Sealed { bytes: keys.seal(plain, &blob_aad(&job.id, job.kind, compressed)), compressed }
}

/// Writes a pack and records it.
fn write_pack(shared: &Shared, mut pack: PackWriter) -> Result<()> {
    if pack.entries.is_empty() {
        return Ok(());
    }
    let (pack_id, header) = finish_pack(&shared.keys, &mut pack)?;
    shared.backend.put(&format!("data/{}/{pack_id}", &pack_id[..2]), &pack.buf)?;
    let mut written = lock(&shared.written);
    for (id, kind, offset, length, plain, compressed) in pack.entries {
        written.locations.insert(id, Location { pack: pack_id.clone(), offset, length, plain, compressed, kind });
    }
    written.index.packs.push(IndexPack { id: pack_id, blobs: header });
    Ok(())
}
