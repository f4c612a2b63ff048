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

use std::collections::HashMap;

use parking_lot::Mutex;

use crate::compaction::policy::{
    decide, run_input_bytes_max, Decision, SegmentUsage, Thresholds, Victim, COMPACTION_FRAME_BYTES,
    SMALL_SEGMENT_DIVISOR,
};
use crate::engine::Engine;
use crate::format::{
    encode_manifest, encode_record, finish_frame, start_frame, FrameSalt, RecordKind, SegmentHeader, SegmentKind,
    COMPACTED_FRAME_GROUP, SEGMENT_HEADER_BYTES,
};
use crate::io::VfsFile;
use crate::log::{
    fresh_salt, hint_file_name, scan_frames, segment_file_name, temp_name, write_hint, Segment, MANIFEST_FILE,
};
use crate::stats::CompactionTotals;
use crate::{Error, Result};

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
    /// Segments removed without being read: every record in them was dead.
    pub segments_dropped: usize,
    /// Tombstones (and expired puts, written as tombstones) copied because an older value of
    /// their key may still be in a segment this compaction did not take.
    pub tombstones_kept: u64,
    /// Wall time.
    pub duration: Duration,
    /// Runs it took: one for an automatic compaction; [`Store::compact`](crate::Store::compact)
    /// works in runs of at most `run_input_bytes_max` input bytes each.
    pub runs: usize,
}

impl CompactionReport {
    /// Adds a later run of the same compaction (`Store::compact` runs in capped steps).
    fn add(&mut self, later: &CompactionReport) {
        self.segments_read += later.segments_read;
        self.segments_written += later.segments_written;
        self.segments_dropped += later.segments_dropped;
        self.bytes_read += later.bytes_read;
        self.bytes_written += later.bytes_written;
        self.bytes_reclaimed += later.bytes_reclaimed;
        self.records_copied += later.records_copied;
        self.records_dropped += later.records_dropped;
        self.tombstones_kept += later.tombstones_kept;
        self.duration += later.duration;
        self.runs += later.runs;
    }
}

/// Marks a run in progress in the totals for as long as it lives.
struct Running<'a>(&'a Mutex<CompactionTotals>);

impl<'a> Running<'a> {
    fn start(totals: &'a Mutex<CompactionTotals>) -> Running<'a> {
        totals.lock().running = true;
        Running(totals)
    }
}

impl Drop for Running<'_> {
    fn drop(&mut self) {
        self.0.lock().running = false;
    }
}

/// Compacts if the policy says so (automatic compaction): one capped run.
pub(crate) fn compact_if_due(engine: &Engine) -> Result<Option<CompactionReport>> {
    engine.writer.refuse_if_reentrant()?;
    let Some(_guard) = engine.compaction.try_lock() else { return Ok(None) };
    refuse_if_poisoned(engine)?;
    let o = &engine.options;
    let (sealed, store_live_bytes) = sealed_usage(engine, u64::MAX);
    let thresholds = Thresholds {
        dead_ratio: o.compact_dead_ratio,
        segment_dead_bytes: o.compact_segment_dead_bytes,
        run_dead_bytes_min: o.compact_dead_bytes_min,
        small_bytes: o.segment_bytes / SMALL_SEGMENT_DIVISOR,
        input_bytes_max: run_input_bytes_max(o.compaction_input_bytes_max, store_live_bytes, o.segment_bytes),
        now_ms: o.clock.now_ms(),
        seq_now: engine.sets.lock().active.seq_max(),
        thorough: false,
    };
    match decide(&sealed, &thresholds) {
        Decision::Skip(_) => Ok(None),
        Decision::Compact { victims, reason } => run(engine, &victims, reason).map(Some),
    }
}

/// Seals the active segment and compacts every sealed segment that holds anything to reclaim
/// (`Store::compact`), in runs of at most `run_input_bytes_max` each: every run commits and
/// removes its inputs before the next starts, so the extra disk stays bounded by that budget
/// plus one segment.
pub(crate) fn compact(engine: &Engine) -> Result<CompactionReport> {
    // Before the lock: from inside a transaction, waiting for a running compaction would hold
    // up the whole group.
    engine.writer.refuse_if_reentrant()?;
    let _guard = engine.compaction.lock();
    refuse_if_poisoned(engine)?;
    engine.writer.roll_if_nonempty(&engine.sets)?;
    // Outputs of the runs below get higher ids: they are not compacted again by this call.
    let last = engine.sets.lock().sealed.keys().next_back().copied().unwrap_or(0);
    let mut total: Option<CompactionReport> = None;
    loop {
        let o = &engine.options;
        let (sealed, store_live_bytes) = sealed_usage(engine, last);
        let t = Thresholds::everything(
            run_input_bytes_max(o.compaction_input_bytes_max, store_live_bytes, o.segment_bytes),
            o.segment_bytes / SMALL_SEGMENT_DIVISOR,
            o.clock.now_ms(),
        );
        match decide(&sealed, &t) {
            Decision::Skip(reason) => return Ok(total.unwrap_or(CompactionReport { reason, ..Default::default() })),
            Decision::Compact { victims, reason } => {
                let report = run(engine, &victims, reason)?;
                match &mut total {
                    None => total = Some(report),
                    Some(total) => total.add(&report),
                }
            }
        }
    }
}

/// A poisoned store rewrites nothing: it may not sync again until reopened. (The latch would
/// refuse its first write anyway; this fails before any work is done.)
fn refuse_if_poisoned(engine: &Engine) -> Result<()> {
    engine.writer.refuse_writes()
}

/// The sealed segments with ids up to `last`, as the policy sees them, and the live bytes of
/// the whole store (every segment, the active one included), which the run's budget scales with.
fn sealed_usage(engine: &Engine, last: u64) -> (Vec<SegmentUsage>, u64) {
    let set = engine.sets.lock();
    let store_live_bytes = set.sealed.values().chain([&set.active]).map(|s| s.live_bytes()).sum();
    let sealed = set
        .sealed
        .range(..=last)
        .map(|(_, s)| SegmentUsage {
            id: s.id,
            data_bytes: s.data_end(),
            live_bytes: s.live_bytes(),
            live_records: s.live_records(),
            records: s.records(),
            seq_max: s.seq_max(),
            tombstones: s.tombstones(),
            expiry_min_ms: s.expiry_min_ms(),
        })
        .collect();
    (sealed, store_live_bytes)
}

/// A record copied into an output segment, to be switched in the index after the commit.
struct Moved {
    key: Vec<u8>,
    from_id: u64,
    from_offset: u32,
    to: usize,
    to_offset: u32,
}

/// An expired record the index points to, to be removed from the index after the commit.
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
    /// A reused pool file: its old contents follow `end` until the seal cuts them.
    reused: bool,
    /// Offset just past the last frame written.
    end: u64,
    /// The salt in the segment's header, under which its frames are checksummed.
    salt: FrameSalt,
    /// What it holds, for the segment's accounting once it is sealed.
    records: u64,
    tombstones: u64,
    tombstone_bytes: u64,
    seq_min: u64,
    seq_max: u64,
    expiry_min_ms: u64,
}

/// Compaction's output: segments being filled.
struct Output<'a> {
    engine: &'a Engine,
    /// Ids of every output segment created (or attempted), so a failure can remove them all.
    created: Vec<u64>,
    unsynced: u64,
    done: Vec<Arc<Segment>>,
    current: Option<OpenOutput>,
    frame: Vec<u8>,
    frame_start: usize,
    frame_records: u32,
}

fn run(engine: &Engine, plan: &[Victim], reason: String) -> Result<CompactionReport> {
    let started = Instant::now();
    let _running = Running::start(&engine.compaction_totals);
    let (victims, shadow_bound) = {
        let set = engine.sets.lock();
        let victims: Vec<(Arc<Segment>, bool)> =
            plan.iter().filter_map(|v| set.sealed.get(&v.id).map(|s| (Arc::clone(s), v.drop_whole))).collect();
        (victims, shadow_bound(&set, plan))
    };
    let mut report = CompactionReport { reason, segments_read: victims.len(), runs: 1, ..CompactionReport::default() };
    let mut out = Output::new(engine);
    let copied =
        copy_live(engine, &victims, shadow_bound, &mut out, &mut report).and_then(|copied| Ok((copied, out.finish()?)));
    let (Copied { moved, expired }, outputs) = copied.inspect_err(|_| out.discard())?;
    let victims: Vec<Arc<Segment>> = victims.into_iter().map(|(s, _)| s).collect();
    report.segments_written = outputs.len();
    report.bytes_written = outputs.iter().map(|s| s.data_end()).sum();
    if let Err(Uncommitted { error, outputs_maybe_named }) = commit(engine, &victims, &outputs) {
        // A failed commit poisons through the latch if what is durable became unknown (a failed
        // sync of the manifest or the directory); a full disk before the rename changed nothing.
        if !outputs_maybe_named {
            out.discard();
        }
        return Err(error);
    }
    for m in moved {
        engine.index.relocate(&m.key, m.from_id, m.from_offset, &outputs[m.to], m.to_offset);
    }
    for e in expired {
        engine.index.remove_if_at(&e.key, e.from_id, e.from_offset);
    }
    remove_files(engine, victims);
    report.bytes_reclaimed = report.bytes_read.saturating_sub(report.bytes_written);
    report.duration = started.elapsed();
    engine.compaction_totals.lock().add_run(report.bytes_read, report.bytes_written);
    Ok(report)
}

/// The tombstone rule (DESIGN.md, "Which tombstones compaction may drop"). A record that may be
/// the newest of its key although the index holds no entry for the key (a tombstone, or an
/// expired put that recovery swept from the index) shadows every older put of that key, so it
/// may be dropped only if no segment that survives this run holds one. A surviving segment can
/// hold an older put of an absent key only if it has a dead put (a put the index points to is
/// not of an absent key) and a record older than the tombstone. So the shadowing records with a
/// sequence number up to the lowest `seq_min` of the survivors that have dead puts may go;
/// `u64::MAX` when no survivor has one. Computed under the segment-set lock, once per run: the
/// survivors' records do not change, and a put that dies later died after the tombstone.
fn shadow_bound(set: &crate::log::SegmentSet, plan: &[Victim]) -> u64 {
    set.sealed
        .values()
        .filter(|s| !plan.iter().any(|v| v.id == s.id))
        .chain(std::iter::once(&set.active))
        .filter(|s| s.dead_puts() > 0)
        .map(|s| s.seq_min())
        .min()
        .unwrap_or(u64::MAX)
}

/// Walks the victims and copies their live, unexpired records into `out`, then the shadowing
/// records the tombstone rule keeps.
fn copy_live(
    engine: &Engine,
    victims: &[(Arc<Segment>, bool)],
    shadow_bound: u64,
    out: &mut Output<'_>,
    report: &mut CompactionReport,
) -> Result<Copied> {
    let mut pacer = Pacer::new(engine.options.compaction_bytes_per_sec);
    let mut copied = Copied { moved: Vec::new(), expired: Vec::new() };
    // Records that may shadow older puts of their key, by key: the newest one's sequence number,
    // written as a tombstone once every victim is read.
    let mut shadows: HashMap<Vec<u8>, u64> = HashMap::new();
    let now_ms = engine.options.clock.now_ms();
    for (victim, drop_whole) in victims {
        if *drop_whole {
            // No live record, no tombstone, no expired put: nothing in it can matter.
            report.segments_dropped += 1;
            report.records_dropped += victim.records();
            continue;
        }
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
            let expired = crate::format::is_expired(r.expires_ms, || now_ms);
            // Whether the index holds the key, and whether it points at this very record.
            let (present, here) = engine.index.with(r.key, |f| match f {
                Some(f) => (true, f.is_at(victim.id, offset)),
                None => (false, false),
            });
            if here && expired {
                copied.expired.push(Expired { key: r.key.to_vec(), from_id: victim.id, from_offset: offset });
            }
            if here && !expired && r.kind == RecordKind::Put {
                let (to, to_offset) = out.append(RecordKind::Put, r.seq, r.expires_ms, r.key, r.value)?;
                copied.moved.push(Moved {
                    key: r.key.to_vec(),
                    from_id: victim.id,
                    from_offset: offset,
                    to,
                    to_offset,
                });
                report.records_copied += 1;
                continue;
            }
            report.records_dropped += 1;
            // A newer record of a present key survives (the index points to it), so nothing
            // older needs shadowing; an unexpired put of an absent key is itself shadowed by
            // the newer record that removed the key.
            let shadows_older = here || (!present && (r.kind == RecordKind::Delete || expired));
            if shadows_older && r.seq > shadow_bound {
                let kept = shadows.entry(r.key.to_vec()).or_insert(r.seq);
                *kept = (*kept).max(r.seq);
            }
        }
    }
    let mut shadows: Vec<(Vec<u8>, u64)> = shadows.into_iter().collect();
    shadows.sort_unstable_by_key(|&(_, seq)| seq);
    for (key, seq) in shadows {
        out.append(RecordKind::Delete, seq, 0, &key, &[])?;
        report.tombstones_kept += 1;
        report.records_dropped = report.records_dropped.saturating_sub(1);
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
fn commit(engine: &Engine, victims: &[Arc<Segment>], outputs: &[Arc<Segment>]) -> std::result::Result<(), Uncommitted> {
    let uncommitted = |error| Uncommitted { error, outputs_maybe_named: false };
    engine.writer.sync_now().map_err(uncommitted)?;
    engine.dir.sync_dir().map_err(uncommitted)?;
    let mut set = engine.sets.lock();
    let mut manifest = set.manifest();
    manifest.segments.retain(|id| !victims.iter().any(|v| v.id == *id));
    manifest.segments.extend(outputs.iter().map(|s| s.id));
    manifest.segments.sort_unstable();
    engine.dir.write_file_atomic(MANIFEST_FILE, &encode_manifest(&manifest)).map_err(|error| {
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

/// Deletes the victims' files, or keeps a few for reuse as active segments (`log/pool.rs`, sized
/// to the live bytes after this run). A segment file goes when the last `Arc` of its segment does
/// (`Segment::retire`): here, as `victims` is dropped and the index's segment table lets go of
/// it (every entry was relocated or removed before this step, so no entry points to it), unless
/// another holder (a backup) still has it, and then once that is done (Windows cannot remove a
/// mapped file). Hint files are never mapped
/// after open, so they go at once. A failure leaves orphans that the next open removes.
fn remove_files(engine: &Engine, victims: Vec<Arc<Segment>>) {
    let live = engine.sets.lock().all().iter().map(|s| s.live_bytes()).sum();
    engine.writer.pool.set_live_bytes(live);
    for v in &victims {
        v.retire(&engine.writer.pool);
        engine.index.retire_segment(v);
        let _ = engine.dir.remove_if_exists(&hint_file_name(v.id));
    }
    drop(victims);
    let _ = engine.dir.sync_dir();
}

impl<'a> Output<'a> {
    fn new(engine: &'a Engine) -> Output<'a> {
        Output {
            engine,
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
    fn append(
        &mut self,
        kind: RecordKind,
        seq: u64,
        expires_ms: u64,
        key: &[u8],
        value: &[u8],
    ) -> Result<(usize, u32)> {
        let len = crate::format::record_header_len(expires_ms) + key.len() + value.len();
        let segment_bytes = self.engine.options.segment_bytes;
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
        let current = self.current.as_mut().expect("an output is open");
        let at = current.end + self.frame.len() as u64;
        current.records += 1;
        current.seq_min = current.seq_min.min(seq);
        current.seq_max = current.seq_max.max(seq);
        if expires_ms != 0 {
            current.expiry_min_ms = current.expiry_min_ms.min(expires_ms);
        }
        if kind == RecordKind::Delete {
            current.tombstones += 1;
            current.tombstone_bytes += len as u64;
        }
        encode_record(&mut self.frame, kind, seq, expires_ms, key, value);
        self.frame_records += 1;
        Ok((self.done.len(), u32::try_from(at).expect("segment offsets fit u32")))
    }

    fn open_next(&mut self) -> Result<()> {
        let id = self.engine.sets.lock().allocate_id();
        // Noted before the file exists: creating it may fail after the directory entry is made.
        self.created.push(id);
        // A fresh salt: a value copied here from another segment, frame-shaped or not, is not
        // a frame under it either.
        let header =
            SegmentHeader { kind: SegmentKind::Compacted, id, first_group: COMPACTED_FRAME_GROUP, salt: fresh_salt() };
        // A pooled file if there is one: the run's outputs then take the disk its inputs
        // retired (instead of a pooled file waiting beside them), and the cut at the seal
        // removes the old contents before the commit names the output.
        let (path, file, reused) = self.engine.writer.pool.new_segment_file(&header, true)?;
        self.current = Some(OpenOutput {
            id,
            path,
            file,
            reused,
            end: SEGMENT_HEADER_BYTES as u64,
            salt: header.salt,
            records: 0,
            tombstones: 0,
            tombstone_bytes: 0,
            seq_min: u64::MAX,
            seq_max: 0,
            expiry_min_ms: u64::MAX,
        });
        Ok(())
    }

    fn flush_frame(&mut self) -> Result<()> {
        if self.frame_records == 0 {
            return Ok(());
        }
        if self.engine.closing.load(std::sync::atomic::Ordering::Relaxed) {
            return Err(Error::Io {
                op: "compact",
                path: self.engine.dir.dir.clone(),
                source: std::io::Error::new(std::io::ErrorKind::Interrupted, "the store is closing"),
            });
        }
        let OpenOutput { path, file, end, salt, .. } = self.current.as_mut().expect("an output is open");
        let len = finish_frame(&mut self.frame, self.frame_start, COMPACTED_FRAME_GROUP, self.frame_records, *salt);
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
        let Some(o) = self.current.take() else { return Ok(()) };
        let OpenOutput { id, path, file, end, salt, reused, .. } = o;
        if reused {
            // Not mapped yet, so this cuts on Windows too: a sealed segment ends at its data.
            file.set_len(end).map_err(|e| Error::io("truncate", &path, e))?;
        }
        file.sync_data().map_err(|e| Error::io("sync", &path, e))?;
        let map = file.map(end).map_err(|e| Error::io("map", &path, e))?;
        let segment = Arc::new(Segment::new(id, SegmentKind::Compacted, salt, path, file, (map, end), end));
        let expiry_min = if o.expiry_min_ms == u64::MAX { 0 } else { o.expiry_min_ms };
        segment.note_records(o.records, o.tombstones, (o.seq_min, o.seq_max), expiry_min);
        // The tombstones it holds had to be kept: they count as live (`Segment::keep_tombstone`);
        // its puts become live as the index is switched to them after the commit.
        segment.keep_tombstones(o.tombstones, o.tombstone_bytes);
        if self.engine.options.write_hints {
            write_hint(&self.engine.dir, &segment, self.engine.index.hasher())?;
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
        let dir = &self.engine.dir;
        let created = std::mem::take(&mut self.created);
        for &id in &created {
            let hint = hint_file_name(id);
            let _ = dir.remove_if_exists(&segment_file_name(id));
            let _ = dir.remove_if_exists(&hint);
            let _ = dir.remove_if_exists(&temp_name(&hint));
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
