//! The group-commit writer.
//!
//! Protocol (DESIGN.md, "Group commit"):
//! 1. A writer encodes its records outside any lock, then queues them with a ticket.
//! 2. If no leader is active, it becomes the leader; otherwise it waits until its ticket is done.
//! 3. The leader takes queued operations in ticket order (as many as fit in the active segment),
//!    stamps their sequence numbers, writes them as one frame with one `write_at`, and syncs once.
//! 4. Only then does it publish the records to the index, in log order, mark the tickets done
//!    (the durable watermark) and wake the waiters. One of them leads the next group.
//!
//! A lone writer leads its own group at once and never waits. Groups are written, synced and
//! published strictly one after another, so the index always ends with the record that comes last
//! in the log. A failed sync poisons the writer: the group's writers and all later ones get an
//! error until the store is reopened; nothing is ever acknowledged that the sync did not cover.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;

use parking_lot::{Condvar, Mutex};

use crate::format::{
    decode_frame, decode_record_header, encode_manifest, finish_frame, put_u64, SegmentHeader, SegmentKind,
    FRAME_HEADER_BYTES, SEGMENT_HEADER_BYTES,
};
use crate::index::Index;
use crate::log::{create_segment_file, fresh_salt, LogDir, Segment, SegmentSet, MANIFEST_FILE};
use crate::options::{Options, SyncMode};
use crate::{Error, Result};

/// Records encoded by a caller, waiting for a frame. Sequence numbers are stamped by the leader.
#[derive(Debug, Default)]
pub(crate) struct Encoded {
    pub(crate) bytes: Vec<u8>,
    pub(crate) records: u32,
}

/// The tail of the log, owned by whoever holds `Writer::log`.
#[derive(Debug)]
pub(crate) struct ActiveLog {
    pub(crate) segment: Arc<Segment>,
    /// Where the next frame goes.
    pub(crate) tail: u64,
    /// The file's length: zero-filled space past `tail` is already allocated and synced.
    pub(crate) file_len: u64,
    /// The group number the next frame carries. It moves on after every sync that covered a
    /// write, so a valid frame of a later group proves every earlier frame was synced.
    pub(crate) group: u64,
    /// Frames were written since the last sync (write-back mode only).
    pub(crate) dirty: bool,
    /// The sequence number of the next record.
    pub(crate) next_seq: u64,
    /// A failed append may have left bytes of its frame past `tail`. They must go before the
    /// segment is sealed: recovery treats anything but zeros after a sealed segment's last frame
    /// as corruption.
    pub(crate) unclean_tail: bool,
}

/// Counters for `Store::stats`.
#[derive(Debug, Default)]
pub(crate) struct WriterStats {
    pub(crate) syncs: AtomicU64,
    pub(crate) synced_records: AtomicU64,
    pub(crate) frames: AtomicU64,
}

struct Pending {
    ticket: u64,
    ops: Encoded,
}

#[derive(Default)]
struct Queue {
    pending: VecDeque<Pending>,
    next_ticket: u64,
    /// Every ticket up to and including this one has its outcome.
    done_through: u64,
    failures: HashMap<u64, Error>,
    leader: bool,
    poisoned: Option<String>,
}

pub(crate) struct Writer {
    queue: Mutex<Queue>,
    wake: Condvar,
    pub(crate) log: Mutex<ActiveLog>,
    pub(crate) stats: WriterStats,
    /// Segments sealed by roll-overs, waiting for the maintenance thread (hint files).
    sealed: Mutex<Vec<u64>>,
    sealed_flag: AtomicBool,
    dir: LogDir,
    sync: SyncMode,
    segment_bytes: u64,
    preallocate_bytes: u64,
    frame_bytes_max: usize,
}

impl Writer {
    pub(crate) fn new(dir: LogDir, options: &Options, log: ActiveLog) -> Writer {
        Writer {
            queue: Mutex::new(Queue { next_ticket: 1, ..Queue::default() }),
            wake: Condvar::new(),
            log: Mutex::new(log),
            stats: WriterStats::default(),
            sealed: Mutex::new(Vec::new()),
            sealed_flag: AtomicBool::new(false),
            dir,
            sync: options.sync,
            segment_bytes: options.segment_bytes,
            preallocate_bytes: options.preallocate_bytes,
            frame_bytes_max: options.frame_bytes_max(),
        }
    }

    /// The largest `Encoded::bytes` one operation may carry.
    pub(crate) fn ops_bytes_max(&self) -> usize {
        self.frame_bytes_max - FRAME_HEADER_BYTES
    }

    /// Why writes are refused, if they are.
    #[allow(dead_code, reason = "not read yet: writes report the cause themselves")]
    pub(crate) fn poisoned(&self) -> Option<String> {
        self.queue.lock().poisoned.clone()
    }

    /// Appends `ops` as part of a group, makes it durable (per the sync mode) and publishes it to
    /// `index`. Returns once all of that happened, or with the error that prevented it.
    pub(crate) fn commit(&self, sets: &Mutex<SegmentSet>, index: &Index, ops: Encoded) -> Result<()> {
        assert!(ops.records > 0 && ops.bytes.len() <= self.ops_bytes_max(), "caller checked the batch size");
        let mut q = self.queue.lock();
        if let Some(cause) = &q.poisoned {
            return Err(Error::Poisoned { cause: cause.clone() });
        }
        let ticket = q.next_ticket;
        q.next_ticket += 1;
        q.pending.push_back(Pending { ticket, ops });
        loop {
            if let Some(err) = q.failures.remove(&ticket) {
                return Err(err);
            }
            if q.done_through >= ticket {
                return Ok(());
            }
            if !q.leader {
                q.leader = true;
                let group = self.take_group(&mut q);
                drop(q);
                let outcome = self.lead(sets, index, &group);
                q = self.queue.lock();
                self.finish_group(&mut q, &group, outcome);
                self.wake.notify_all();
                continue;
            }
            self.wake.wait(&mut q);
        }
    }

    /// Takes queued operations in ticket order, as many as fit in one frame.
    fn take_group(&self, q: &mut Queue) -> Vec<Pending> {
        let mut group = Vec::new();
        let mut bytes = 0;
        while let Some(next) = q.pending.front() {
            if !group.is_empty() && bytes + next.ops.bytes.len() > self.ops_bytes_max() {
                break;
            }
            bytes += next.ops.bytes.len();
            group.push(q.pending.pop_front().expect("front exists"));
        }
        group
    }

    fn finish_group(&self, q: &mut Queue, group: &[Pending], outcome: Result<()>) {
        q.leader = false;
        let last = group.last().expect("a group is never empty").ticket;
        debug_assert!(last > q.done_through, "groups finish in ticket order");
        q.done_through = last;
        let Err(err) = outcome else { return };
        if !matches!(err, Error::DiskFull { .. }) {
            q.poisoned.get_or_insert_with(|| err.to_string());
        }
        for p in group {
            q.failures.insert(p.ticket, err.duplicate());
        }
        if let Some(cause) = q.poisoned.clone() {
            // Nothing queued after a poisoning may be written: fail it now.
            while let Some(p) = q.pending.pop_front() {
                q.failures.insert(p.ticket, Error::Poisoned { cause: cause.clone() });
                q.done_through = p.ticket;
            }
        }
    }

    /// The leader's work: one frame, one write, one sync, then publish.
    fn lead(&self, sets: &Mutex<SegmentSet>, index: &Index, group: &[Pending]) -> Result<()> {
        let mut log = self.log.lock();
        let body_len: usize = group.iter().map(|p| p.ops.bytes.len()).sum();
        let frame_len = (FRAME_HEADER_BYTES + body_len) as u64;
        if log.tail + frame_len > self.segment_bytes {
            self.roll(&mut log, sets)?;
        }
        let frame = build_frame(&mut log, group, body_len);
        let offset = log.tail;
        self.ensure_space(&mut log, offset + frame_len)?;
        let segment = Arc::clone(&log.segment);
        if let Err(e) = segment.file.write_at(&frame, offset) {
            log.unclean_tail = true;
            return Err(Error::io("append to", segment.path(), e));
        }
        match self.sync {
            SyncMode::Always => sync_log(&mut log).inspect_err(|_| log.unclean_tail = true)?,
            SyncMode::Every(_) => log.dirty = true,
        }
        log.tail = offset + frame_len;
        segment.set_data_end(log.tail);
        self.stats.frames.fetch_add(1, Ordering::Relaxed);
        if self.sync == SyncMode::Always {
            self.stats.syncs.fetch_add(1, Ordering::Relaxed);
        }
        self.stats.synced_records.fetch_add(group.iter().map(|p| u64::from(p.ops.records)).sum(), Ordering::Relaxed);
        publish(index, &segment, offset, &frame);
        Ok(())
    }

    /// Makes sure the file is at least `end` long, growing it in zero-filled, synced steps so
    /// that the per-write sync need not also persist a new file length.
    fn ensure_space(&self, log: &mut ActiveLog, end: u64) -> Result<()> {
        if end <= log.file_len {
            return Ok(());
        }
        if self.preallocate_bytes == 0 {
            log.file_len = end;
            return Ok(());
        }
        let step = self.preallocate_bytes;
        let target = end.div_ceil(step).saturating_mul(step).min(self.segment_bytes).max(end);
        let segment = Arc::clone(&log.segment);
        let zeros = vec![0u8; (target - log.file_len) as usize];
        if let Err(e) = segment.file.write_at(&zeros, log.file_len) {
            // The length is now unknown; a later attempt starts from what the file says. A full
            // disk here leaves nothing acknowledged at risk, so it does not poison.
            log.file_len = segment.file.len().unwrap_or(log.file_len).max(log.tail);
            return Err(Error::io("grow", segment.path(), e));
        }
        // A failed sync poisons, whatever its cause (see `sync_log`).
        sync_log_file(&segment)?;
        log.file_len = target;
        Ok(())
    }

    /// Seals the active segment and starts a new one. The new segment and its directory entry
    /// are durable before the manifest names it; the manifest rename is the commit point.
    fn roll(&self, log: &mut ActiveLog, sets: &Mutex<SegmentSet>) -> Result<()> {
        if log.dirty {
            sync_log(log)?;
            self.stats.syncs.fetch_add(1, Ordering::Relaxed);
        }
        if log.unclean_tail {
            let old = Arc::clone(&log.segment);
            old.file
                .set_len(log.tail)
                .and_then(|()| old.file.sync_data())
                .map_err(|e| Error::io("truncate", old.path(), e))?;
            log.file_len = log.tail;
            log.unclean_tail = false;
        }
        let id = sets.lock().allocate_id();
        let header = SegmentHeader { kind: SegmentKind::Log, id, first_group: log.group, salt: fresh_salt() };
        let (path, file) = create_segment_file(&self.dir, &header)?;
        self.dir.sync_dir()?;
        let map = file.map(self.segment_bytes).map_err(|e| Error::io("map", &path, e))?;
        let data_end = SEGMENT_HEADER_BYTES as u64;
        let segment = Arc::new(Segment::new(id, header.salt, path, file, map, data_end));
        {
            // Persist the new manifest before changing the set in memory, so a failure leaves
            // memory agreeing with the manifest that is still in force.
            let mut set = sets.lock();
            let mut manifest = set.manifest();
            manifest.segments.push(id);
            manifest.active = id;
            self.dir.write_file_atomic(MANIFEST_FILE, &encode_manifest(&manifest))?;
            let old = std::mem::replace(&mut set.active, Arc::clone(&segment));
            self.sealed.lock().push(old.id);
            self.sealed_flag.store(true, Ordering::Release);
            set.sealed.insert(old.id, old);
        }
        log.segment = segment;
        log.tail = data_end;
        log.file_len = data_end;
        Ok(())
    }

    /// Whether a segment was sealed since the last [`Writer::take_sealed`].
    pub(crate) fn has_sealed(&self) -> bool {
        self.sealed_flag.load(Ordering::Acquire)
    }

    /// The segments sealed since the last call.
    pub(crate) fn take_sealed(&self) -> Vec<u64> {
        self.sealed_flag.store(false, Ordering::Release);
        std::mem::take(&mut *self.sealed.lock())
    }

    /// Seals the active segment if it holds any frame, so that compaction can take all data.
    pub(crate) fn roll_if_nonempty(&self, sets: &Mutex<SegmentSet>) -> Result<()> {
        let mut log = self.log.lock();
        if log.tail > SEGMENT_HEADER_BYTES as u64 {
            self.roll(&mut log, sets).inspect_err(|e| self.poison_unless_full(e))?;
        }
        Ok(())
    }

    fn poison_unless_full(&self, e: &Error) {
        if !matches!(e, Error::DiskFull { .. }) {
            self.poison(e.to_string());
        }
    }

    /// Syncs whatever was written since the last sync (write-back mode, or `Store::sync`).
    pub(crate) fn sync_now(&self) -> Result<()> {
        let mut log = self.log.lock();
        if !log.dirty {
            return Ok(());
        }
        let result = sync_log(&mut log);
        if let Err(e) = &result {
            self.queue.lock().poisoned.get_or_insert_with(|| e.to_string());
        } else {
            self.stats.syncs.fetch_add(1, Ordering::Relaxed);
        }
        result
    }

    /// Refuses every later write with `cause` (used when a background step fails).
    pub(crate) fn poison(&self, cause: String) {
        self.queue.lock().poisoned.get_or_insert(cause);
    }
}

/// Syncs the active segment and moves to the next group. A failure is final for this store.
fn sync_log(log: &mut ActiveLog) -> Result<()> {
    sync_log_file(&log.segment)?;
    log.group += 1;
    log.dirty = false;
    Ok(())
}

/// Syncs a log segment. The error is never `DiskFull`: after a failed sync nothing about what is
/// durable may be assumed, so the caller's group fails and the writer is poisoned.
fn sync_log_file(segment: &Segment) -> Result<()> {
    segment.file.sync_data().map_err(|source| Error::Io { op: "sync", path: segment.path().to_path_buf(), source })
}

/// Builds the group's frame: header, then every operation's records with sequence numbers stamped.
fn build_frame(log: &mut ActiveLog, group: &[Pending], body_len: usize) -> Vec<u8> {
    let mut frame = Vec::with_capacity(FRAME_HEADER_BYTES + body_len);
    frame.resize(FRAME_HEADER_BYTES, 0);
    let mut records = 0u32;
    for p in group {
        let start = frame.len();
        frame.extend_from_slice(&p.ops.bytes);
        let mut at = start;
        while at < frame.len() {
            let header = decode_record_header(&frame[at..]).expect("records encoded by this process are valid");
            put_u64(&mut frame, at + 8, log.next_seq);
            log.next_seq += 1;
            records += 1;
            at += header.record_len();
        }
    }
    finish_frame(&mut frame, 0, log.group, records, log.segment.salt);
    frame
}

/// Publishes a durable frame's records to the index, in log order.
fn publish(index: &Index, segment: &Arc<Segment>, frame_offset: u64, frame: &[u8]) {
    let view = decode_frame(frame, segment.salt).expect("a frame this process built decodes");
    for record in view.records() {
        let record = record.expect("a frame this process built holds valid records");
        let offset = u32::try_from(frame_offset + record.frame_offset as u64).expect("segment offsets fit u32");
        index.apply(record.key, record.kind, segment, offset, record.len() as u64);
    }
}
