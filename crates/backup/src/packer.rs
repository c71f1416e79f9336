//! The backup pipeline's second half: worker threads (one per core)
//! compute the ids of large chunks, and compress, seal, pack and write the
//! new blobs, while the first half (the caller: reading, chunking, the ids
//! of small chunks and trees, deduplication) goes on. The caller waits for
//! at most [`HASH_WINDOW`] ids at a time, and takes them in order, so
//! files list their chunks in order and deduplication needs no lock.
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
const QUEUE_PER_WORKER: usize = 1;
/// Chunks whose ids the reading thread may be waiting for at once.
pub(crate) const HASH_WINDOW: usize = 2;
/// zstd's level: restic's default ratio or better, at a fraction of
/// level 3's time.
pub const ZSTD_LEVEL: i32 = 1;

/// A blob on its way: its id, kind (0 data, 1 tree) and plaintext.
struct Blob {
    id: [u8; 32],
    kind: u8,
    data: Vec<u8>,
}

/// What a worker is asked to do.
enum Job {
    /// Compress, seal and pack a new blob.
    Seal(Blob),
    /// Compute a chunk's id and send it back with the chunk.
    Hash(Vec<u8>, SyncSender<Hashed>),
}

/// A chunk with its id, back from a worker.
pub(crate) type Hashed = ([u8; 32], Vec<u8>);

/// What the workers share.
struct Shared {
    /// Worker threads.
    workers: usize,
    keys: Arc<Keys>,
    backend: Arc<dyn Backend>,
    /// The pack being filled.
    filling: Mutex<PackWriter>,
    /// What has been written: packs for the index, blob locations.
    written: Mutex<Written>,
    failed: AtomicBool,
    error: Mutex<Option<Error>>,
    /// Pack buffers written out, kept for the next packs (allocating and
    /// first touching a pack's worth of memory for every pack showed in
    /// profiles).
    spare: Mutex<Vec<Vec<u8>>>,
    /// Blob buffers back from the workers, for the next blobs: with them
    /// (and each worker's own buffers) a backup allocates nothing per
    /// blob.
    blobs: Mutex<Vec<Vec<u8>>>,
}

/// A pack buffer's size: the target (or one largest blob), and the header.
const PACK_CAPACITY: usize = PACK_TARGET + (1 << 20);

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
            workers: n,
            keys,
            backend,
            filling: Mutex::new(PackWriter::default()),
            written: Mutex::new(Written::default()),
            failed: AtomicBool::new(false),
            error: Mutex::new(None),
            spare: Mutex::new(Vec::new()),
            blobs: Mutex::new(Vec::new()),
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
    pub fn add(&self, id: [u8; 32], kind: u8, bytes: &[u8]) -> Result<()> {
        let data = self.buffer(bytes);
        self.add_owned(id, kind, data)
    }

    /// [`Packer::add`] of a buffer the caller gives up.
    pub fn add_owned(&self, id: [u8; 32], kind: u8, data: Vec<u8>) -> Result<()> {
        self.send(Job::Seal(Blob { id, kind, data }))
    }

    /// Has a worker compute the id of `chunk`; the receiver gets the id
    /// and the chunk (for [`Packer::add_owned`] or [`Packer::recycle`]).
    pub fn hash(&self, chunk: &[u8]) -> Result<Receiver<Hashed>> {
        let (reply, hashed) = sync_channel(1);
        self.send(Job::Hash(self.buffer(chunk), reply))?;
        Ok(hashed)
    }

    /// Gives a buffer back for the next blobs.
    pub fn recycle(&self, data: Vec<u8>) {
        recycle(&self.shared, data);
    }

    /// A copy of `bytes` in a reused buffer.
    fn buffer(&self, bytes: &[u8]) -> Vec<u8> {
        let mut data = lock(&self.shared.blobs).pop().unwrap_or_default();
        data.clear();
        data.extend_from_slice(bytes);
        data
    }

    fn send(&self, job: Job) -> Result<()> {
        if self.shared.failed.load(Ordering::Acquire) {
            return Err(self.take_error());
        }
        let queue = self.queue.as_ref().ok_or_else(|| Error::Repository("backup pipeline closed".into()))?;
        queue.send(job).map_err(|_| Error::Repository("backup pipeline stopped".into()))
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
        if self.shared.failed.load(Ordering::Acquire) {
            return Err(self.take_error());
        }
        let last = std::mem::take(&mut *lock(&self.shared.filling));
        write_pack(&self.shared, last)?;
        let written = std::mem::take(&mut *lock(&self.shared.written));
        Ok(Packed { index: written.index, locations: written.locations })
    }
}

impl Drop for Packer {
    /// A pipeline dropped unfinished (the backup failed): the workers
    /// drop what is queued instead of writing packs no index will name.
    fn drop(&mut self) {
        self.shared.failed.store(true, Ordering::Release);
        drop(self.queue.take());
        for w in self.workers.drain(..) {
            let _ = w.join();
        }
    }
}

/// A worker: compress, seal, add to the filling pack; write the pack when
/// it is full.
fn work(jobs: &Mutex<Receiver<Job>>, shared: &Shared) {
    let mut sealer = Sealer::new();
    loop {
        // The queue's lock is released before the work (a guard in the
        // match would hold it while hashing).
        let next = lock(jobs).recv();
        let job = match next {
            Ok(Job::Seal(blob)) => blob,
            Ok(Job::Hash(data, reply)) => {
                let _ = reply.send((shared.keys.blob_id(&data), data));
                continue;
            }
            Err(_) => return,
        };
        if shared.failed.load(Ordering::Acquire) {
            continue; // drain the queue so the sender never blocks
        }
        let compressed = sealer.seal(&shared.keys, &job);
        let full = {
            let mut w = lock(&shared.filling);
            // A blob that would take the pack past its size starts the
            // next one: packs (and their buffers) stay within the target.
            let full = (!w.entries.is_empty() && w.buf.len() + sealer.sealed.len() > PACK_TARGET).then(|| {
                let buf = lock(&shared.spare).pop().unwrap_or_else(|| Vec::with_capacity(PACK_CAPACITY));
                std::mem::replace(&mut *w, PackWriter { buf, entries: Vec::new() })
            });
            let offset = w.buf.len() as u64;
            w.buf.extend_from_slice(&sealer.sealed);
            w.entries.push((job.id, job.kind, offset, sealer.sealed.len() as u32, job.data.len() as u32, compressed));
            full
        };
        recycle(shared, job.data);
        if let Some(pack) = full {
            if let Err(e) = write_pack(shared, pack) {
                let mut slot = lock(&shared.error);
                slot.get_or_insert(e);
                shared.failed.store(true, Ordering::Release);
            }
        }
    }
}

/// Keeps `data` for the next blobs, enough for every blob that can be on
/// its way at once (the reading thread holds a few more, waiting for ids).
fn recycle(shared: &Shared, data: Vec<u8>) {
    let mut blobs = lock(&shared.blobs);
    if blobs.len() < shared.workers * (QUEUE_PER_WORKER + 1) + HASH_WINDOW + 1 {
        blobs.push(data);
    }
}

/// A worker's compressor and buffers, reused from blob to blob.
struct Sealer {
    zstd: Option<zstd::bulk::Compressor<'static>>,
    compressed: Vec<u8>,
    sealed: Vec<u8>,
}

impl Sealer {
    fn new() -> Sealer {
        Sealer { zstd: zstd::bulk::Compressor::new(ZSTD_LEVEL).ok(), compressed: Vec::new(), sealed: Vec::new() }
    }

    /// zstd (kept only when it saves space), then AES-256-GCM with the id,
    /// kind and compression flag as associated data, into `self.sealed`;
    /// returns whether the blob was compressed.
    fn seal(&mut self, keys: &Keys, job: &Blob) -> bool {
        self.compressed.clear();
        self.compressed.reserve(zstd::zstd_safe::compress_bound(job.data.len()));
        let packed = self.zstd.as_mut().and_then(|z| z.compress_to_buffer(&job.data, &mut self.compressed).ok());
        let compressed = packed.is_some_and(|n| n < job.data.len());
        let plain = if compressed { &self.compressed[..] } else { &job.data[..] };
        keys.seal_into(&mut self.sealed, plain, &blob_aad(&job.id, job.kind, compressed));
        compressed
    }
}

/// Writes a pack and records it.
fn write_pack(shared: &Shared, mut pack: PackWriter) -> Result<()> {
    if pack.entries.is_empty() {
        return Ok(());
    }
    let (pack_id, header) = finish_pack(&shared.keys, &mut pack)?;
    shared.backend.put(&format!("data/{}/{pack_id}", &pack_id[..2]), &pack.buf)?;
    {
        let mut written = lock(&shared.written);
        for (id, kind, offset, length, plain, compressed) in pack.entries {
            written.locations.insert(id, Location { pack: pack_id.clone(), offset, length, plain, compressed, kind });
        }
        written.index.packs.push(IndexPack { id: pack_id, blobs: header });
    }
    pack.buf.clear();
    let mut spare = lock(&shared.spare);
    if spare.len() < shared.workers {
        spare.push(pack.buf);
    }
    Ok(())
}
