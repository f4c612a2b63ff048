//! The rewrite: copy live records of the sealed segments into new compacted segments, commit by
//! replacing the manifest, switch the index entry by entry, then delete the old files (each
//! segment file once no reader maps it any more).
//!
//! Crash safety: the new segments and their hints are synced, and their directory entries too,
//! before the manifest rename; before it they are orphans (removed at open), after it the old
//! segments are. A compaction that fails before its commit point (a full disk, a failed sync,
//! the store closing) removes every file it created at once, so on a nearly full disk a failed
//! attempt gives back the space it took instead of holding it until the next open. Concurrency: writers never wait for compaction except for one stripe lock per
//! relocated key; an entry is moved only if it still points at the copied record, so a write that
//! lands meanwhile always wins.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::compaction::{decide, Decision, SegmentUsage};
use crate::format::{
    encode_manifest, encode_record, finish_frame, start_frame, FrameSalt, RecordKind, SegmentHeader, SegmentKind,
    SEGMENT_HEADER_BYTES,
};
use crate::hints::write_hint;
use crate::io::VfsFile;
use crate::log::{
    create_segment_file, fresh_salt, hint_file_name, scan_frames, segment_file_name, Segment, MANIFEST_FILE,
};
use crate::store::Inner;
use crate::{Error, Result};

/// Records are copied in frames of about this size.
const COMPACTION_FRAME_BYTES: usize = 1 << 20;
/// An output is synced after every this many bytes, so that its write-back is spread out instead
/// of arriving as one large flush that would stall the log's syncs.
const COMPACTION_SYNC_BYTES: u64 = 4 << 20;

/// What a compaction did.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct CompactionReport {
    /// Why it ran (or why it did nothing).
    pub reason: String,
    /// Sealed segments read (and removed).
    pub segments_read: usize,
    /// Compacted segments written.
    pub segments_written: usize,
    /// Bytes of the segments read.
    pub bytes_read: u64,
    /// Bytes of the segments written.
    pub bytes_written: u64,
    /// `bytes_read - bytes_written`.
    pub bytes_reclaimed: u64,
    /// Live records copied.
    pub records_copied: u64,
    /// Overwritten, deleted and expired records and tombstones dropped.
    pub records_dropped: u64,
    /// Wall time.
    pub duration: Duration,
}

/// Compacts if the policy says so (automatic compaction).
pub(crate) fn compact_if_due(inner: &Inner) -> Result<Option<CompactionReport>> {
    let Some(_guard) = inner.compaction.try_lock() else { return Ok(None) };
    refuse_if_poisoned(inner)?;
    let usage = sealed_usage(inner);
    match decide(&usage, inner.options.compact_dead_ratio, inner.options.compact_dead_bytes_min) {
        Decision::Skip(_) => Ok(None),
        Decision::Compact { segments, reason } => run(inner, &segments, reason).map(Some),
    }
}

/// Seals the active segment and compacts every sealed segment (`Store::compact`).
pub(crate) fn compact(inner: &Inner) -> Result<CompactionReport> {
    let _guard = inner.compaction.lock();
    refuse_if_poisoned(inner)?;
    inner.writer.roll_if_nonempty(&inner.sets)?;
    let usage = sealed_usage(inner);
    match decide(&usage, 0.0, 1) {
        Decision::Skip(reason) => Ok(CompactionReport { reason, ..CompactionReport::default() }),
        Decision::Compact { segments, reason } => run(inner, &segments, reason),
    }
}

/// A poisoned store rewrites nothing: it may not sync again until reopened. (The latch would
/// refuse its first write anyway; this fails before any work is done.)
fn refuse_if_poisoned(inner: &Inner) -> Result<()> {
    inner.writer.refuse_if_poisoned()
}

fn sealed_usage(inner: &Inner) -> Vec<SegmentUsage> {
    let set = inner.sets.lock();
    set.sealed
        .values()
        .map(|s| SegmentUsage { id: s.id, data_bytes: s.data_end(), live_bytes: s.live_bytes() })
        .collect()
}

/// A record copied into an output segment, to be switched in the index after the commit.
struct Moved {
    key: Vec<u8>,
    from_id: u64,
    from_offset: u32,
    to: usize,
    to_offset: u32,
}

/// An expired record dropped, to be removed from the index after the commit.
struct Expired {
    key: Vec<u8>,
    from_id: u64,
    from_offset: u32,
}

/// What the copy pass found to switch in the index after the commit.
struct Copied {
    moved: Vec<Moved>,
    expired: Vec<Expired>,
}

/// The compacted segment being filled.
struct OpenOutput {
    id: u64,
    path: PathBuf,
    file: Box<dyn VfsFile>,
    /// Offset just past the last frame written.
    end: u64,
    /// The salt in the segment's header, under which its frames are checksummed.
    salt: FrameSalt,
}

/// Compaction's output: segments being filled.
struct Output<'a> {
    inner: &'a Inner,
    /// Ids of every output segment created (or attempted), so a failure can remove them all.
    created: Vec<u64>,
    unsynced: u64,
    done: Vec<Arc<Segment>>,
    current: Option<OpenOutput>,
    frame: Vec<u8>,
    frame_start: usize,
    frame_records: u32,
}

fn run(inner: &Inner, ids: &[u64], reason: String) -> Result<CompactionReport> {
    let started = Instant::now();
    let victims: Vec<Arc<Segment>> = {
        let set = inner.sets.lock();
        ids.iter().filter_map(|id| set.sealed.get(id).cloned()).collect()
    };
    let mut report = CompactionReport { reason, segments_read: victims.len(), ..CompactionReport::default() };
    let mut out = Output::new(inner);
    let copied = copy_live(inner, &victims, &mut out, &mut report).and_then(|copied| Ok((copied, out.finish()?)));
    let (Copied { moved, expired }, outputs) = copied.inspect_err(|_| out.discard())?;
    report.segments_written = outputs.len();
    report.bytes_written = outputs.iter().map(|s| s.data_end()).sum();
    if let Err(Uncommitted { error, outputs_maybe_named }) = commit(inner, &victims, &outputs) {
        // A failed commit poisons through the latch if what is durable became unknown (a failed
        // sync of the manifest or the directory); a full disk before the rename changed nothing.
        if !outputs_maybe_named {
            out.discard();
        }
        return Err(error);
    }
    for m in moved {
        inner.index.relocate(&m.key, m.from_id, m.from_offset, &outputs[m.to], m.to_offset);
    }
    for e in expired {
        inner.index.remove_if_at(&e.key, e.from_id, e.from_offset);
    }
    remove_files(inner, victims);
    inner.compactions.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    report.bytes_reclaimed = report.bytes_read.saturating_sub(report.bytes_written);
    report.duration = started.elapsed();
    Ok(report)
}

/// Walks the victims and copies their live, unexpired records into `out`.
fn copy_live(
    inner: &Inner,
    victims: &[Arc<Segment>],
    out: &mut Output<'_>,
    report: &mut CompactionReport,
) -> Result<Copied> {
    let mut pacer = Pacer::new(inner.options.compaction_bytes_per_sec);
    let mut copied = Copied { moved: Vec::new(), expired: Vec::new() };
    let now_ms = inner.options.clock.now_ms();
    for victim in victims {
        report.bytes_read += victim.file.len().map_err(|e| Error::io("stat", victim.path(), e))?;
        let bytes = victim.read(0, victim.data_end() as usize).ok_or_else(|| unreadable(victim))?;
        let mut records = Vec::new();
        let end = scan_frames(&bytes, victim.salt, SEGMENT_HEADER_BYTES, None, |at, frame| {
            for r in frame.records().flatten() {
                records.push((u32::try_from(at + r.frame_offset).expect("offset fits u32"), r));
            }
        });
        if !matches!(end, crate::log::ScanEnd::Clean { .. }) {
            return Err(unreadable(victim));
        }
        for (offset, r) in records {
            pacer.consumed(r.len() as u64);
            let live = r.kind == RecordKind::Put
                && inner.index.with(r.key, |f| f.is_some_and(|f| f.entry.is_at(victim.id, offset)));
            if !live {
                report.records_dropped += 1;
                continue;
            }
            if r.expires_ms != 0 && r.expires_ms <= now_ms {
                report.records_dropped += 1;
                copied.expired.push(Expired { key: r.key.to_vec(), from_id: victim.id, from_offset: offset });
                continue;
            }
            let (to, to_offset) = out.append(r.seq, r.expires_ms, r.key, r.value)?;
            copied.moved.push(Moved { key: r.key.to_vec(), from_id: victim.id, from_offset: offset, to, to_offset });
            report.records_copied += 1;
        }
    }
    Ok(copied)
}

fn unreadable(segment: &Segment) -> Error {
    Error::Corruption {
        path: segment.path().to_path_buf(),
        offset: 0,
        reason: "sealed segment no longer scans cleanly".into(),
    }
}

/// Why [`commit`] failed, and whether the manifest on disk may now name the outputs (if not,
/// they are orphans and can go at once).
struct Uncommitted {
    error: Error,
    outputs_maybe_named: bool,
}

/// The commit point: a manifest without the victims and with the outputs.
///
/// Records were judged dead because the index points at a newer record (or a tombstone removed
/// the key). In write-back mode that newer record may not be synced yet, and once the victims are
/// gone a power loss would take both it and the older value it replaced. So the log is synced
/// first: every record the index pointed at during the rewrite is durable before the manifest
/// drops what it shadowed. (In `SyncMode::Always` there is nothing to sync.)
fn commit(inner: &Inner, victims: &[Arc<Segment>], outputs: &[Arc<Segment>]) -> std::result::Result<(), Uncommitted> {
    let uncommitted = |error| Uncommitted { error, outputs_maybe_named: false };
    inner.writer.sync_now().map_err(uncommitted)?;
    inner.dir.sync_dir().map_err(uncommitted)?;
    let mut set = inner.sets.lock();
    let mut manifest = set.manifest();
    manifest.segments.retain(|id| !victims.iter().any(|v| v.id == *id));
    manifest.segments.extend(outputs.iter().map(|s| s.id));
    manifest.segments.sort_unstable();
    inner.dir.write_file_atomic(MANIFEST_FILE, &encode_manifest(&manifest)).map_err(|error| {
        // `DiskFull` comes only from steps before the rename takes effect (creating, writing or
        // syncing the temporary file, or a rename refused for space); a failed directory sync
        // after the rename is always `Error::Io`. So on `DiskFull` the old manifest is in force.
        let outputs_maybe_named = !matches!(error, Error::DiskFull { .. });
        Uncommitted { error, outputs_maybe_named }
    })?;
    for v in victims {
        set.sealed.remove(&v.id);
    }
    for s in outputs {
        set.sealed.insert(s.id, Arc::clone(s));
    }
    Ok(())
}

/// Deletes the victims' files. A segment file goes when the last `Arc` of its segment does
/// (`Segment::retire`): here, as `victims` is dropped, unless a reader still holds it, and then
/// once the reader is done (Windows cannot remove a mapped file). Hint files are never mapped
/// after open, so they go at once. A failure leaves orphans that the next open removes.
fn remove_files(inner: &Inner, victims: Vec<Arc<Segment>>) {
    for v in &victims {
        v.retire(&inner.dir.vfs);
        let _ = inner.dir.remove_if_exists(&hint_file_name(v.id));
    }
    drop(victims);
    let _ = inner.dir.sync_dir();
}

impl<'a> Output<'a> {
    fn new(inner: &'a Inner) -> Output<'a> {
        Output {
            inner,
            created: Vec::new(),
            unsynced: 0,
            done: Vec::new(),
            current: None,
            frame: Vec::new(),
            frame_start: 0,
            frame_records: 0,
        }
    }

    /// Copies one record; returns (output index, offset in that output).
    fn append(&mut self, seq: u64, expires_ms: u64, key: &[u8], value: &[u8]) -> Result<(usize, u32)> {
        let len = crate::format::record_header_len(expires_ms) + key.len() + value.len();
        let segment_bytes = self.inner.options.segment_bytes;
        let fits = |o: &Self| o.current.as_ref().is_some_and(|c| c.end + (o.frame.len() + len) as u64 <= segment_bytes);
        if self.frame.len() + len > COMPACTION_FRAME_BYTES && self.frame_records > 0 {
            self.flush_frame()?;
        }
        if !fits(self) {
            self.flush_frame()?;
            self.seal_current()?;
            self.open_next()?;
        }
        if self.frame_records == 0 {
            self.frame.clear();
            self.frame_start = start_frame(&mut self.frame);
        }
        let at = self.current.as_ref().expect("an output is open").end + self.frame.len() as u64;
        encode_record(&mut self.frame, RecordKind::Put, seq, expires_ms, key, value);
        self.frame_records += 1;
        Ok((self.done.len(), u32::try_from(at).expect("segment offsets fit u32")))
    }

    fn open_next(&mut self) -> Result<()> {
        let id = self.inner.sets.lock().allocate_id();
        // Noted before the file exists: creating it may fail after the directory entry is made.
        self.created.push(id);
        // A fresh salt: a value copied here from another segment, frame-shaped or not, is not
        // a frame under it either.
        let header = SegmentHeader { kind: SegmentKind::Compacted, id, first_group: 1, salt: fresh_salt() };
        let (path, file) = create_segment_file(&self.inner.dir, &header)?;
        self.current = Some(OpenOutput { id, path, file, end: SEGMENT_HEADER_BYTES as u64, salt: header.salt });
        Ok(())
    }

    fn flush_frame(&mut self) -> Result<()> {
        if self.frame_records == 0 {
            return Ok(());
        }
        if self.inner.closing.load(std::sync::atomic::Ordering::Relaxed) {
            return Err(Error::Io {
                op: "compact",
                path: self.inner.dir.dir.clone(),
                source: std::io::Error::new(std::io::ErrorKind::Interrupted, "the store is closing"),
            });
        }
        let OpenOutput { path, file, end, salt, .. } = self.current.as_mut().expect("an output is open");
        let len = finish_frame(&mut self.frame, self.frame_start, 1, self.frame_records, *salt);
        file.write_at(&self.frame, *end).map_err(|e| Error::io("write", &*path, e))?;
        *end += len as u64;
        self.frame_records = 0;
        self.unsynced += len as u64;
        if self.unsynced >= COMPACTION_SYNC_BYTES {
            file.sync_data().map_err(|e| Error::io("sync", &*path, e))?;
            self.unsynced = 0;
        }
        Ok(())
    }

    /// Syncs the current output, maps it and writes its hint.
    fn seal_current(&mut self) -> Result<()> {
        let Some(OpenOutput { id, path, file, end, salt }) = self.current.take() else { return Ok(()) };
        file.sync_data().map_err(|e| Error::io("sync", &path, e))?;
        let map = file.map(end).map_err(|e| Error::io("map", &path, e))?;
        let segment = Arc::new(Segment::new(id, salt, path, file, map, end));
        if self.inner.options.write_hints {
            write_hint(&self.inner.dir, &segment, self.inner.index.hasher())?;
        }
        self.done.push(segment);
        Ok(())
    }

    fn finish(&mut self) -> Result<Vec<Arc<Segment>>> {
        self.flush_frame()?;
        self.seal_current()?;
        Ok(std::mem::take(&mut self.done))
    }

    /// Removes every file this output created, best-effort, and syncs the directory, so that a
    /// compaction failing before its commit point gives back the space it took. Only for
    /// outputs no manifest names; anything left behind is an orphan that the next open removes.
    fn discard(&mut self) {
        self.current = None;
        self.done.clear();
        let dir = &self.inner.dir;
        let created = std::mem::take(&mut self.created);
        for &id in &created {
            let hint = hint_file_name(id);
            let _ = dir.remove_if_exists(&segment_file_name(id));
            let _ = dir.remove_if_exists(&hint);
            let _ = dir.remove_if_exists(&format!("{hint}.tmp"));
        }
        if !created.is_empty() {
            let _ = dir.sync_dir();
        }
    }
}

/// Keeps compaction's pace through the sealed segments (bytes of records examined, live or
/// dead) at or below a limit by sleeping when it runs ahead. Pacing a background rewrite is the
/// point here; nothing waits on it.
struct Pacer {
    bytes_per_sec: u64,
    started: Instant,
    consumed: u64,
}

/// The pacer sleeps only once it is at least this far ahead, so it makes few sleep calls.
const PACER_SLEEP_MIN: Duration = Duration::from_millis(2);

impl Pacer {
    fn new(bytes_per_sec: u64) -> Pacer {
        Pacer { bytes_per_sec, started: Instant::now(), consumed: 0 }
    }

    fn consumed(&mut self, bytes: u64) {
        self.consumed += bytes;
        if self.bytes_per_sec == 0 {
            return;
        }
        let due = Duration::from_secs_f64(self.consumed as f64 / self.bytes_per_sec as f64);
        match due.checked_sub(self.started.elapsed()) {
            Some(ahead) if ahead >= PACER_SLEEP_MIN => std::thread::sleep(ahead),
            _ => {}
        }
    }
}
