//! Opening a store: the manifest, orphan clean-up, index rebuild (from hint files where they are
//! valid, by replaying frames where not), and the torn-tail decision for the active segment.
//!
//! Decision table for a bad frame (DESIGN.md, "Recovery"):
//!
//! | where                       | valid frame of a later sync group after it? | outcome                    |
//! |-----------------------------|---------------------------------------------|----------------------------|
//! | active segment              | no                                          | torn tail: cut, open       |
//! | active segment              | yes                                         | `Corruption` (or salvage)  |
//! | sealed or compacted segment | either                                      | `Corruption` (or salvage)  |

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::format::hash::KeyHasher;
use crate::format::{
    decode_hint_with, decode_manifest, encode_manifest, hint_entry_count, is_expired, DecodeError, DecodeErrorKind,
    FrameSalt, FrameView, Manifest, RecordKind, SegmentHeader, SegmentKind, FORMAT_VERSION, LIVE_SEGMENTS_MAX,
    SEGMENT_HEADER_BYTES, SEGMENT_HEADER_KIND_OFFSET,
};
use crate::index::{ByStripe, Index, LoadItem};
use crate::io::{OpenMode, VfsFile};
use crate::log::{
    check_hint, create_segment_file, fresh_salt, hint_file_name, is_orphan, map_len, open_segment, parse_file_name,
    segment_file_name, walk_segment, ActiveLog, GroupRule, LogDir, Replayed, Segment, SegmentFile, SegmentSet, Walked,
    MANIFEST_FILE,
};
use crate::options::Options;
use crate::{Error, Result};

/// What open found and did, for [`Store::recovery_report`](crate::Store::recovery_report).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RecoveryReport {
    /// Segments whose index entries came from a hint file.
    pub segments_from_hints: usize,
    /// Segments replayed frame by frame.
    pub segments_replayed: usize,
    /// Records (including tombstones) read from frames or hints.
    pub records_read: u64,
    /// Bytes of an incomplete write cut from the end of the active segment.
    pub torn_tail_bytes: u64,
    /// Files left by an interrupted roll-over or compaction and removed.
    pub orphans_removed: usize,
    /// Hint files that were present but unusable (their segment was replayed instead).
    pub hints_rejected: usize,
    /// Damaged ranges skipped in salvage mode (empty otherwise).
    pub dropped: Vec<DroppedRange>,
}

/// A damaged byte range skipped by salvage mode.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DroppedRange {
    /// The segment file.
    pub path: PathBuf,
    /// First damaged byte.
    pub start: u64,
    /// One past the last skipped byte.
    pub end: u64,
    /// What was wrong at `start`.
    pub reason: String,
}

/// Everything an opened store starts from.
pub(crate) struct Opened {
    pub(crate) set: SegmentSet,
    pub(crate) active: ActiveLog,
    pub(crate) index: Index,
    pub(crate) report: RecoveryReport,
    /// Sealed segments with no valid hint file yet.
    pub(crate) need_hints: Vec<u64>,
}

/// The sealed segments, loaded.
struct Sealed {
    segments: BTreeMap<u64, Arc<Segment>>,
    /// Those with no usable hint file.
    need_hints: Vec<u64>,
}

/// A sealed segment read and decoded on a loader thread, not yet applied to the index.
struct Decoded {
    segment: Arc<Segment>,
    frames: Frames,
    /// Its records came from its hint file.
    hinted: bool,
    /// It had a hint file that was unusable.
    hint_rejected: bool,
    /// Its frames were replayed.
    replayed: bool,
    /// Damage salvage skipped in it.
    dropped: Vec<DroppedRange>,
}

/// What reading a segment's hint file gave.
enum HintRead {
    Missing,
    Rejected,
    Good(Frames),
}

/// Most segments a manifest may list: what the index's segment table is sized for (a writer
/// stops at `LIVE_SEGMENTS_MAX`, and compaction's outputs fit in the rest).
const MANIFEST_SEGMENTS_MAX: usize = 2 * LIVE_SEGMENTS_MAX;

/// Sealed segments decoded at once at open, each on a thread of its own: this machine's
/// parallelism, at most this many (each holds its segment's load items, 32 bytes a record,
/// until applied).
const LOAD_THREADS_MAX: usize = 4;

fn load_threads() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get()).clamp(1, LOAD_THREADS_MAX)
}

/// A record recovery saw that must not stay in the index: a tombstone, or an expired put.
struct Doomed {
    segment: Arc<Segment>,
    offset: u32,
}

struct Loader<'a> {
    dir: &'a LogDir,
    options: &'a Options,
    now_ms: u64,
    index: Index,
    report: RecoveryReport,
    doomed: Vec<Doomed>,
    seq_max: u64,
    /// Rebuild only: open every file read-only, remove nothing, cut nothing, sync nothing.
    read_only: bool,
    /// Where the frames of the active segment's last group start, once it is replayed.
    last_group_start: Option<u64>,
    /// Sealed segments decoded at once ([`load_threads`]).
    threads: usize,
}

/// Opens (or creates) the store in `dir`.
pub(crate) fn recover(dir: &LogDir, options: &Options) -> Result<Opened> {
    recover_mode(dir, options, false, load_threads())
}

/// Rebuilds the index of the store in `dir` exactly as open would, but without changing any
/// file: no store is created, no orphan removed, no torn tail cut, nothing synced. For
/// [`crate::inspect::verify`], which holds the directory lock.
pub(crate) fn rebuild_read_only(dir: &LogDir, options: &Options) -> Result<Opened> {
    recover_mode(dir, options, true, load_threads())
}

/// Recovery with `threads` sealed segments decoded at once (1: one after another).
fn recover_mode(dir: &LogDir, options: &Options, read_only: bool, threads: usize) -> Result<Opened> {
    let names = dir.vfs.list(&dir.dir).map_err(|e| Error::io("list", &dir.dir, e))?;
    let manifest = match dir.read_file(MANIFEST_FILE)? {
        Some(bytes) => decode_manifest(&bytes).map_err(|e| manifest_error(dir, e))?,
        None => without_manifest(dir, &names, read_only)?,
    };
    if manifest.segments.len() > MANIFEST_SEGMENTS_MAX {
        // No writer makes such a store (it stops at LIVE_SEGMENTS_MAX): the index could not name
        // them all, so it is refused here, as damage, rather than by a panic when the index
        // runs out of slots.
        let reason = format!(
            "the manifest lists {} segments, more than a store holds ({MANIFEST_SEGMENTS_MAX})",
            manifest.segments.len()
        );
        return Err(Error::Corruption { path: dir.path(MANIFEST_FILE), offset: 0, reason });
    }
    let mut loader = Loader::new(dir, options, manifest.hash_key, read_only);
    loader.threads = threads;
    if !read_only {
        loader.report.orphans_removed = remove_orphans(dir, &names, &manifest.segments)?;
    }
    let Sealed { segments: sealed, need_hints } = loader.load_sealed_all(&manifest)?;
    let active = loader.load_active(manifest.active)?;
    loader.sweep();
    // The ordered set is built from what survived: the load reads no key, the sweep is done.
    // With a keyspace registry, keyspace keys are ordered too (DESIGN.md, "Keyspaces").
    let keyspaces = loader.index.with(&crate::format::registry_key(), |found| found.is_some());
    loader.index.order_prefixes(&options.ordered_prefixes, keyspaces);
    let set = SegmentSet {
        sealed,
        active: Arc::clone(&active.segment),
        next_segment_id: manifest.next_segment_id,
        hash_key: manifest.hash_key,
    };
    let active = ActiveLog { next_seq: loader.seq_max + 1, ..active };
    Ok(Opened { set, active, index: loader.index, report: loader.report, need_hints })
}

/// A manifest that does not decode, as open reports it: one of another format version is
/// refused as such (nothing is changed), anything else is corruption.
fn manifest_error(dir: &LogDir, e: DecodeError) -> Error {
    let path = dir.path(MANIFEST_FILE);
    match e.kind {
        DecodeErrorKind::Version(found) => Error::UnsupportedVersion { path, found, supported: FORMAT_VERSION },
        _ => Error::Corruption { path, offset: 0, reason: e.to_string() },
    }
}

/// The manifest of a directory that has none: a new store's, if nothing was ever acknowledged
/// there; otherwise the store is damaged, and never silently started empty.
fn without_manifest(dir: &LogDir, names: &[String], read_only: bool) -> Result<Manifest> {
    if !read_only && interrupted_creation(dir, names) {
        // The first open crashed after segment 1's entry became durable but before the
        // manifest did: no open ever completed, so nothing was acknowledged. Start afresh.
        dir.remove_if_exists(&segment_file_name(1))?;
        return create_fresh(dir);
    }
    if read_only || names.iter().any(|n| parse_file_name(n).is_some()) {
        let reason = "segment files exist but the manifest is missing".into();
        return Err(Error::Corruption { path: dir.path(MANIFEST_FILE), offset: 0, reason });
    }
    create_fresh(dir)
}

/// How many records the sealed segments' hint files announce (to size the index once).
fn hinted_records(dir: &LogDir, ids: &[u64]) -> usize {
    ids.iter()
        .filter_map(|&id| {
            let (map, len) = dir.map_file(&hint_file_name(id)).ok()??;
            hint_entry_count(&map.read(0, len)?)
        })
        .sum()
}

/// A new, empty store: segment 1 and a manifest naming it.
fn create_fresh(dir: &LogDir) -> Result<Manifest> {
    let header = SegmentHeader { kind: SegmentKind::Log, id: 1, first_group: 1, salt: fresh_salt() };
    create_segment_file(dir, &header)?;
    dir.sync_dir()?;
    let set = Manifest { segments: vec![1], active: 1, next_segment_id: 2, hash_key: KeyHasher::random_key() };
    dir.write_file_atomic(MANIFEST_FILE, &encode_manifest(&set))?;
    Ok(set)
}

/// Whether the only store file is what `create_fresh` makes before the manifest: segment 1
/// holding at most its header (so no frame, and nothing acknowledged, can be in it).
fn interrupted_creation(dir: &LogDir, names: &[String]) -> bool {
    let mut store_files = names.iter().filter_map(|n| parse_file_name(n));
    store_files.all(|file| file == (1, false))
        && dir.file_len(&segment_file_name(1)).is_some_and(|len| len <= SEGMENT_HEADER_BYTES as u64)
}

/// Removes segment and hint files the manifest does not list, and temporary files: leftovers of
/// a roll-over or compaction that crashed before (or after) its commit point; then makes the
/// directory (the manifest read, and every file it names) durable.
fn remove_orphans(dir: &LogDir, names: &[String], live: &[u64]) -> Result<usize> {
    let mut removed = 0;
    for name in names.iter().filter(|name| is_orphan(name, live)) {
        if dir.remove_if_exists(name)? {
            removed += 1;
        }
    }
    // Always, not only after a removal: the manifest this open read may itself be a rename
    // that a previous run made but never got durable (its directory sync failed, or it crashed
    // first). Writes acknowledged from now on build on that manifest (its active segment), so
    // it must not be able to revert at a power loss (fuzz finding
    // `ops_model/manifest-renamed-but-not-durable`).
    dir.sync_dir()?;
    Ok(removed)
}

impl<'a> Loader<'a> {
    fn new(dir: &'a LogDir, options: &'a Options, hash_key: [u8; 16], read_only: bool) -> Loader<'a> {
        Loader {
            dir,
            options,
            now_ms: options.clock.now_ms(),
            index: Index::new(options.stripes, KeyHasher::new(hash_key)),
            report: RecoveryReport::default(),
            doomed: Vec::new(),
            seq_max: 0,
            read_only,
            last_group_start: None,
            threads: 1,
        }
    }

    /// Loads every sealed segment the manifest lists, [`load_threads`] at a time: their hint
    /// files are decoded (or their frames replayed) on threads of their own, then applied to
    /// the index one segment after another (each spread over two threads by stripe). A window
    /// of segments, not all of them, so the load items held at once stay bounded.
    fn load_sealed_all(&mut self, manifest: &Manifest) -> Result<Sealed> {
        let ids: Vec<u64> = manifest.segments.iter().copied().filter(|&id| id != manifest.active).collect();
        self.index.reserve(hinted_records(self.dir, &ids));
        let mut sealed = Sealed { segments: BTreeMap::new(), need_hints: Vec::new() };
        for window in ids.chunks(self.threads.max(1)) {
            for decoded in self.decode_window(window)? {
                let Decoded { segment, frames, hinted, hint_rejected, replayed, dropped } = decoded;
                self.report.hints_rejected += usize::from(hint_rejected);
                self.report.segments_replayed += usize::from(replayed);
                self.report.segments_from_hints += usize::from(hinted);
                self.report.dropped.extend(dropped);
                self.apply(&segment, frames);
                if !hinted {
                    sealed.need_hints.push(segment.id);
                }
                sealed.segments.insert(segment.id, segment);
            }
        }
        Ok(sealed)
    }

    /// Decodes the sealed segments `ids`, each on its own thread (the first on this one); in
    /// `ids`' order, so the error reported is the lowest id's, as a serial load would report.
    fn decode_window(&self, ids: &[u64]) -> Result<Vec<Decoded>> {
        let Some((&first, rest)) = ids.split_first() else { return Ok(Vec::new()) };
        if rest.is_empty() {
            return Ok(vec![self.decode_sealed(first)?]);
        }
        std::thread::scope(|s| {
            let others: Vec<_> = rest.iter().map(|&id| s.spawn(move || self.decode_sealed(id))).collect();
            let first = self.decode_sealed(first);
            std::iter::once(first).chain(others.into_iter().map(|t| t.join().expect("segment loader thread"))).collect()
        })
    }

    /// Reads a sealed segment's records from its hint file if that is valid, else by replay.
    fn decode_sealed(&self, id: u64) -> Result<Decoded> {
        let file = open_segment(self.dir, id, OpenMode::ReadOnly)?;
        let (header, file_len) = (file.header, file.file_len);
        let segment = file.into_segment();
        let empty = |hinted, hint_rejected| Decoded {
            segment: Arc::clone(&segment),
            frames: Frames::default(),
            hinted,
            hint_rejected,
            replayed: false,
            dropped: Vec::new(),
        };
        let hint_rejected = match self.decode_hint(&segment, file_len)? {
            HintRead::Good(frames) => return Ok(Decoded { frames, ..empty(true, false) }),
            HintRead::Missing => false,
            HintRead::Rejected => true,
        };
        let rule = (header.kind == SegmentKind::Log).then(|| GroupRule::new(header.first_group));
        let bytes = segment.read(0, file_len as usize).unwrap_or_default();
        let (walked, dropped) = self.replay(&bytes, header.salt, &segment.path, rule, false);
        drop(bytes);
        let (end, mut frames) = walked?;
        segment.set_data_end(end.data_end);
        // Grouped by stripe here, on this segment's own thread.
        frames.sorted = Some(ByStripe::sort(&self.index, std::mem::take(&mut frames.items)));
        Ok(Decoded { frames, replayed: true, dropped, ..empty(false, hint_rejected) })
    }

    /// Reads a hint file into load items, checked against its segment as a whole before any is
    /// used.
    fn decode_hint(&self, segment: &Arc<Segment>, file_len: u64) -> Result<HintRead> {
        let Some((map, len)) = self.dir.map_file(&hint_file_name(segment.id))? else { return Ok(HintRead::Missing) };
        let bytes = map.read(0, len).unwrap_or_default();
        // The hint holds each key's hash: nothing to hash, nothing of the segment to read. Entries
        // become load items as they are decoded; nothing is applied unless the whole file is good.
        let mut items = Vec::with_capacity(hint_entry_count(&bytes).unwrap_or(0));
        let mut frames = Frames::default();
        let decoded = decode_hint_with(&bytes, |e| {
            let record_len = u32::try_from(e.record_len()).unwrap_or(u32::MAX);
            let expires_ms = e.expires_ms;
            let item = LoadItem { hash: e.key_hash, offset: e.offset, seq: e.seq, record_len, expires_ms };
            frames.note(&item, e.kind);
            items.push(item);
        });
        let hasher = Some(self.index.hasher());
        let Some(hint) = decoded.ok().filter(|hint| check_hint(segment, file_len, hint, hasher).is_ok()) else {
            return Ok(HintRead::Rejected);
        };
        // Grouped by stripe here, on this segment's own thread.
        frames.sorted = Some(ByStripe::sort(&self.index, items));
        segment.set_data_end(hint.data_end);
        frames.seq_max = hint.seq_max;
        Ok(HintRead::Good(frames))
    }

    /// Bookkeeping for one record: tombstones and expired puts are swept after loading.
    fn note(&mut self, segment: &Arc<Segment>, offset: u32, kind: RecordKind, expires_ms: u64) {
        if kind == RecordKind::Delete || is_expired(expires_ms, || self.now_ms) {
            self.doomed.push(Doomed { segment: Arc::clone(segment), offset });
        }
    }

    /// Replays frames from a segment's bytes (`path`'s, under `salt`), collecting what they hold
    /// for [`Loader::apply`], and the damaged ranges salvage skipped. In the active segment
    /// (`active`), a bad frame not followed by a frame of a later sync group is a torn tail and
    /// ends the data there.
    fn replay(
        &self,
        bytes: &[u8],
        salt: FrameSalt,
        path: &Path,
        rule: Option<GroupRule>,
        active: bool,
    ) -> (Result<(Replayed, Frames)>, Vec<DroppedRange>) {
        let salvage = self.options.salvage;
        let mut dropped = Vec::new();
        let mut frames = Frames::default();
        let walked = walk_segment(
            bytes,
            salt,
            rule,
            active,
            |at, frame| self.collect(&mut frames, at, frame),
            |bad| {
                if salvage {
                    let (start, end, reason) = (bad.start as u64, bad.resume as u64, bad.reason.clone());
                    dropped.push(DroppedRange { path: path.to_path_buf(), start, end, reason });
                }
                salvage
            },
        );
        let walked = match walked {
            Walked::Done(replayed) => Ok((replayed, frames)),
            Walked::Stopped(bad) => {
                Err(Error::Corruption { path: path.to_path_buf(), offset: bad.start as u64, reason: bad.reason })
            }
        };
        (walked, dropped)
    }

    /// Collects the records of a replayed frame, at `at` in its segment.
    fn collect(&self, frames: &mut Frames, at: usize, frame: &FrameView<'_>) {
        if frames.last_group.is_none_or(|(group, _)| group != frame.group) {
            frames.last_group = Some((frame.group, at));
        }
        for r in frame.records().flatten() {
            let offset = u32::try_from(at + r.frame_offset).expect("segment offsets fit u32");
            frames.seq_max = frames.seq_max.max(r.seq);
            let hash = self.index.hash_key(r.key);
            let item = LoadItem { hash, offset, seq: r.seq, record_len: r.len() as u32, expires_ms: r.expires_ms };
            frames.push(item, r.kind);
        }
    }

    /// Applies what [`Loader::replay`] collected to the index, pointing into `segment`.
    fn apply(&mut self, segment: &Arc<Segment>, mut frames: Frames) {
        self.seq_max = self.seq_max.max(frames.seq_max);
        let batch = match frames.sorted.take() {
            Some(batch) => batch,
            None => ByStripe::sort(&self.index, std::mem::take(&mut frames.items)),
        };
        let seq_min = batch.items.iter().map(|i| i.seq).min().unwrap_or(u64::MAX);
        let expiry_min = frames.notes.iter().filter(|n| n.2 != 0).map(|n| n.2).min().unwrap_or(0);
        let tombstones = frames.notes.iter().filter(|n| n.1 == RecordKind::Delete).count() as u64;
        let seq_max = batch.items.iter().map(|i| i.seq).max().unwrap_or(0);
        segment.note_records(batch.items.len() as u64, tombstones, (seq_min, seq_max), expiry_min);
        for (offset, kind, expires_ms) in frames.notes {
            self.note(segment, offset, kind, expires_ms);
        }
        self.report.records_read += batch.items.len() as u64;
        self.index.load_batch(segment, batch);
    }

    /// Loads the active segment, cutting a torn tail, and returns the writer's starting state.
    ///
    /// The tail is found and cut before the segment's own mapping exists: Windows cannot cut a
    /// mapped file, and maps the active segment only after extending it to `segment_bytes`
    /// (`io/platform.rs`). So a first mapping of just what the file holds is replayed, then
    /// dropped; the segment is mapped once the file is what the writer continues from.
    fn load_active(&mut self, id: u64) -> Result<ActiveLog> {
        let mode = if self.read_only { OpenMode::ReadOnly } else { OpenMode::ReadWrite };
        let SegmentFile { path, file, file_len, map: probe, header } = open_segment(self.dir, id, mode)?;
        if header.kind != SegmentKind::Log {
            let reason = "the active segment is not a log segment".into();
            return Err(Error::Corruption { path, offset: SEGMENT_HEADER_KIND_OFFSET as u64, reason });
        }
        let bytes = probe.read(0, file_len as usize).unwrap_or_default();
        let (replayed, dropped) =
            self.replay(&bytes, header.salt, &path, Some(GroupRule::new(header.first_group)), true);
        drop(bytes);
        drop(probe);
        self.report.segments_replayed += 1;
        self.report.dropped.extend(dropped);
        let (replayed, frames) = replayed?;
        self.last_group_start = frames.last_group.map(|(_, at)| at as u64);
        let file_len = self.cut_torn_tail(&*file, &path, file_len, replayed.torn_at)?;
        let (segment, file_len) = self.map_active(header, path, file, file_len)?;
        self.apply(&segment, frames);
        if !self.read_only {
            self.rewrite_last_group(&segment, replayed.data_end)?;
            // Whatever recovery accepted is made durable now, so the next group number is safe to use.
            segment.file.sync_data().map_err(|e| Error::io("sync", &segment.path, e))?;
        }
        segment.set_data_end(replayed.data_end);
        let group = replayed.rule.map_or(header.first_group, |r| r.last.wrapping_add(1)).max(header.first_group);
        let (tail, dirty, unclean_tail) = (replayed.data_end, false, false);
        Ok(ActiveLog { segment, tail, file_len, group, dirty, unsynced_records: 0, next_seq: 0, unclean_tail })
    }

    /// Cuts the active segment's torn tail, if it has one (in a rebuild, only counts it), and
    /// returns the file's length after.
    fn cut_torn_tail(&mut self, file: &dyn VfsFile, path: &Path, file_len: u64, torn_at: Option<u64>) -> Result<u64> {
        let Some(at) = torn_at else { return Ok(file_len) };
        self.report.torn_tail_bytes = file_len - at;
        if self.read_only {
            return Ok(file_len);
        }
        file.set_len(at).map_err(|e| Error::io("truncate", path, e))?;
        Ok(at)
    }

    /// Maps the active segment as long as it is, rounded up as the writer would map it
    /// (`map_len`; a rebuild: as long as it is), and returns it with the file's length, which
    /// mapping may have changed (Windows extends the file to the whole mapping; the writer grows
    /// it, and its mapping, from there).
    fn map_active(
        &self,
        header: SegmentHeader,
        path: PathBuf,
        file: Box<dyn VfsFile>,
        file_len: u64,
    ) -> Result<(Arc<Segment>, u64)> {
        let len = if self.read_only { file_len } else { map_len(file_len, self.options.segment_bytes) };
        let map = file.map(len).map_err(|e| Error::io("map", &path, e))?;
        let file_len = if self.read_only { file_len } else { file.len().map_err(|e| Error::io("stat", &path, e))? };
        let data_end = SEGMENT_HEADER_BYTES as u64;
        Ok((Arc::new(Segment::new(header.id, header.kind, header.salt, path, file, (map, len), data_end)), file_len))
    }

    /// Writes the frames of the active segment's last group again, unchanged.
    ///
    /// A previous run may have failed to sync them (it was poisoned then, and promised nothing
    /// past its last good sync) while the page cache kept them readable: after a failed fsync,
    /// Linux may mark the pages clean without writing them, so the sync below would not persist
    /// them, and a power loss after this open had built on them would lose them beneath later,
    /// durable frames. Only the last group can be in that state: the group number moves on only
    /// after a sync that covered a write succeeded. Writing the bytes again makes them dirty, so
    /// the sync really persists everything this open accepted. It costs one frame in
    /// `SyncMode::Always`, and the frames since the last sync in write-back mode.
    fn rewrite_last_group(&self, segment: &Segment, data_end: u64) -> Result<()> {
        let Some(start) = self.last_group_start.filter(|&at| at < data_end) else { return Ok(()) };
        let len = usize::try_from(data_end - start).expect("a segment fits in memory");
        let bytes = segment.read(start, len).ok_or_else(|| Error::Corruption {
            path: segment.path.clone(),
            offset: start,
            reason: "the active segment's last frames cannot be read back".into(),
        })?;
        segment.file.write_at(&bytes, start).map_err(|e| Error::io("rewrite", &segment.path, e))
    }

    /// Drops tombstones and expired records from the index once every segment is loaded.
    fn sweep(&mut self) {
        for d in std::mem::take(&mut self.doomed) {
            let key = d.segment.record_header(d.offset).and_then(|h| d.segment.key(d.offset, &h));
            let Some(key) = key else { continue };
            let newest = self.index.remove_if_at(&key, d.segment.id, d.offset);
            // A tombstone in a compacted segment is there because a compaction had to keep it;
            // while it is its key's newest record the next compaction must copy it too, so it
            // counts as live (as it did when that compaction wrote it).
            if newest && d.segment.kind == SegmentKind::Compacted {
                if let Some(header) = d.segment.record_header(d.offset).filter(|h| h.kind == RecordKind::Delete) {
                    d.segment.keep_tombstone(header.record_len() as u64);
                }
            }
        }
    }
}

/// What a replay or a hint file found, to be applied to the index once the segment is mapped for
/// good.
#[derive(Default)]
struct Frames {
    items: Vec<LoadItem>,
    /// (offset, kind, expiry) of the tombstones and expiring puts, for the sweep after loading.
    notes: Vec<(u32, RecordKind, u64)>,
    /// The group of the last frame replayed, and where its first frame starts.
    last_group: Option<(u64, usize)>,
    /// The highest sequence number among the records (a hint file's header's, which its
    /// entries must agree with).
    seq_max: u64,
    /// The records grouped by stripe, once they are (then `items` is empty).
    sorted: Option<ByStripe>,
}

impl Frames {
    #[inline]
    fn push(&mut self, item: LoadItem, kind: RecordKind) {
        self.note(&item, kind);
        self.items.push(item);
    }

    /// Keeps what the sweep after loading needs of a tombstone or an expiring put.
    #[inline]
    fn note(&mut self, item: &LoadItem, kind: RecordKind) {
        if kind == RecordKind::Delete || item.expires_ms != 0 {
            self.notes.push((item.offset, kind, item.expires_ms));
        }
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use crate::format::{decode_hint, encode_hint, SEGMENT_BYTES_MIN};
    use crate::io::sim::SimFs;
    use crate::{Options, Store};

    fn options() -> Options {
        Options { segment_bytes: SEGMENT_BYTES_MIN, preallocate_bytes: 0, auto_compact: false, ..Options::default() }
    }

    /// A store whose segment 1 is sealed with a hint file, and the data it holds.
    fn store_with_hint(fs: &std::sync::Arc<SimFs>) -> Vec<(Vec<u8>, Vec<u8>)> {
        let store = Store::open_on(fs.clone(), Path::new("/db"), options()).unwrap();
        let data: Vec<_> = (0..6u8).map(|i| (vec![b'k', i], vec![i; 5000])).collect();
        for (k, v) in &data {
            store.put(k, v).unwrap();
        }
        drop(store);
        assert!(fs.read_file(Path::new("/db/0000000000000001.hint")).is_some(), "segment 1 has a hint");
        data
    }

    /// Fuzz finding (hint_decode, regression `hint_decode/offset-shifted`): a hint with a valid
    /// checksum whose entry points 49 bytes past its record was trusted, leaving an index entry
    /// that no key finds (`len` counted it, `iter` did not) instead of falling back to replay.
    /// Open now spot-checks the first and last entries against the segment, and `seq_max`
    /// against the entries; edits there (and a hint of another segment) are caught.
    #[test]
    fn regression_checksummed_hint_with_wrong_contents_falls_back_to_replay() {
        type Edit = fn(&mut crate::format::HintFile);
        let edits: [Edit; 8] = [
            |h| h.entries[0].offset += 49,
            |h| h.entries[0].seq += 100,
            |h| h.entries[0].kind = crate::format::RecordKind::Delete,
            |h| h.entries[0].key_hash ^= 1,
            |h| h.entries.last_mut().unwrap().value_len += 1,
            |h| {
                h.entries.pop();
            },
            |h| h.seq_max = 0,
            |h| h.segment_id += 1,
        ];
        for (i, edit) in edits.iter().enumerate() {
            let fs = SimFs::new();
            let data = store_with_hint(&fs);
            let path = Path::new("/db/0000000000000001.hint");
            let bytes = fs.read_file(path).unwrap();
            let mut hint = decode_hint(&bytes).unwrap();
            edit(&mut hint);
            fs.write_file_durable(path, &encode_hint(&hint));
            let store = Store::open_on(fs.clone(), Path::new("/db"), options()).unwrap();
            assert_eq!(store.recovery_report().hints_rejected, 1, "edit {i}");
            assert_eq!(store.len(), data.len(), "edit {i}");
            for (k, v) in &data {
                assert_eq!(store.get(k).unwrap().as_deref(), Some(&v[..]), "edit {i}");
            }
        }
    }

    /// Fuzz finding `hint_decode/entry-on-a-tombstone`: a checksummed hint whose middle entry
    /// (the spot checks look at the first and last) calls a tombstone a put made the index point
    /// at the tombstone, and `get` returned its empty value. Such an entry now reads as absent.
    #[test]
    fn regression_a_hint_entry_that_calls_a_tombstone_a_put_reads_as_absent() {
        let fs = SimFs::new();
        let store = Store::open_on(fs.clone(), Path::new("/db"), options()).unwrap();
        for i in 0..4u8 {
            store.put([b'k', i], vec![i; 100]).unwrap();
        }
        store.delete([b'k', 1]).unwrap();
        for i in 4..8u8 {
            store.put([b'k', i], vec![i; 100]).unwrap();
        }
        // Fill segment 1 until it rolls over, so that it is sealed and gets a hint.
        for i in 0..6u8 {
            store.put([b'f', i], vec![i; 5000]).unwrap();
        }
        drop(store);
        let path = Path::new("/db/0000000000000001.hint");
        let mut hint = decode_hint(&fs.read_file(path).expect("segment 1 has a hint")).unwrap();
        let last = hint.entries.len() - 1;
        let tombstone = hint.entries.iter().position(|e| e.kind == crate::format::RecordKind::Delete);
        let tombstone = tombstone.filter(|&i| i > 0 && i < last).expect("the tombstone is a middle entry");
        hint.entries[tombstone].kind = crate::format::RecordKind::Put;
        fs.write_file_durable(path, &encode_hint(&hint));
        let store = Store::open_on(fs.clone(), Path::new("/db"), options()).unwrap();
        assert_eq!(store.recovery_report().hints_rejected, 0, "the forged entry passes the spot checks");
        assert_eq!(store.get([b'k', 1]).unwrap(), None, "a tombstone is no value");
        for i in (0..8u8).filter(|&i| i != 1) {
            assert_eq!(store.get([b'k', i]).unwrap().as_deref(), Some(&vec![i; 100][..]));
        }
    }

    /// Issue 10, item 7: a hint whose middle entry carries a sequence number at or above
    /// COUNTER_LIMIT, checksum (and `seq_max`) fixed up, passes the first/last spot checks. The
    /// decoder rejects it now, so the segment is replayed: exactly the data written, and the next
    /// write's sequence number is one the records can hold.
    #[test]
    fn regression_a_hint_entry_with_a_sequence_number_at_the_limit_falls_back_to_replay() {
        for seq in [crate::format::COUNTER_LIMIT, u64::MAX] {
            let fs = SimFs::new();
            let data = store_with_hint(&fs);
            let path = Path::new("/db/0000000000000001.hint");
            let mut hint = decode_hint(&fs.read_file(path).unwrap()).unwrap();
            assert!(hint.entries.len() >= 3, "a middle entry to forge");
            hint.entries[1].seq = seq;
            hint.seq_max = seq;
            fs.write_file_durable(path, &encode_hint(&hint));
            let store = Store::open_on(fs.clone(), Path::new("/db"), options()).unwrap();
            assert_eq!(store.recovery_report().hints_rejected, 1, "seq {seq}");
            assert_eq!(store.len(), data.len(), "seq {seq}");
            for (k, v) in &data {
                assert_eq!(store.get(k).unwrap().as_deref(), Some(&v[..]), "seq {seq}");
            }
            store.put(b"after", b"write").unwrap();
            store.put(&data[1].0, b"newer").unwrap();
            drop(store);
            let store = Store::open_on(fs.clone(), Path::new("/db"), options()).unwrap();
            assert_eq!(store.len(), data.len() + 1, "seq {seq}");
            assert_eq!(store.get(b"after").unwrap().as_deref(), Some(&b"write"[..]));
            assert_eq!(store.get(&data[1].0).unwrap().as_deref(), Some(&b"newer"[..]));
            for (k, v) in data.iter().filter(|(k, _)| *k != data[1].0) {
                assert_eq!(store.get(k).unwrap().as_deref(), Some(&v[..]), "seq {seq}");
            }
        }
    }

    /// Fuzz finding (segment_recover, regression `segment_recover/resurrected-after-reopen`): two
    /// records of one key with the same sequence number (only forged or damaged input has that)
    /// were resolved by load order, which the stripe sort does not keep, so a key could come back
    /// after a reopen. The later record in the log now wins, every time.
    #[test]
    fn regression_equal_sequence_numbers_resolve_by_log_position() {
        use crate::format::{
            encode_manifest, encode_record, encode_segment_header, finish_frame, start_frame, FrameSalt, Manifest,
            RecordKind, SegmentHeader, SegmentKind,
        };
        let fs = SimFs::new();
        let mut seg = Vec::new();
        let header = SegmentHeader { kind: SegmentKind::Log, id: 1, first_group: 1, salt: FrameSalt(11) };
        encode_segment_header(&header, &mut seg);
        let start = start_frame(&mut seg);
        encode_record(&mut seg, RecordKind::Delete, 7, 0, b"key", b"");
        encode_record(&mut seg, RecordKind::Put, 7, 0, b"key", b"later");
        finish_frame(&mut seg, start, 1, 2, header.salt);
        fs.write_file_durable(Path::new("/db/0000000000000001.seg"), &seg);
        let manifest = Manifest { segments: vec![1], active: 1, next_segment_id: 2, hash_key: [3; 16] };
        fs.write_file_durable(Path::new("/db/MANIFEST"), &encode_manifest(&manifest));
        for _ in 0..3 {
            let store = Store::open_on(fs.clone(), Path::new("/db"), options()).unwrap();
            assert_eq!(store.get(b"key").unwrap().as_deref(), Some(&b"later"[..]));
            store.put(b"other", b"x").unwrap();
        }
    }

    /// What an open rebuilt, in a form to compare: the report, every key's location and
    /// expiry-aware count, and every segment's accounting.
    fn fingerprint(opened: &super::Opened) -> String {
        let index = &opened.index;
        let mut keys: Vec<Vec<u8>> = (0..index.stripe_count()).flat_map(|i| index.stripe_snapshot(i)).collect();
        keys.sort();
        let locations: Vec<_> = keys
            .iter()
            .map(|k| index.with(k, |f| f.map(|f| (f.segment.id, f.offset, f.value().map(|v| v.into_owned())))))
            .collect();
        let segments: Vec<_> = opened
            .set
            .all()
            .iter()
            .map(|s| (s.id, s.live_bytes(), s.live_records(), s.data_end(), s.records(), s.tombstones()))
            .collect();
        format!(
            "{:?}\n{} {} {:?}\n{keys:?}\n{locations:?}\n{segments:?}\n{:?}",
            opened.report,
            index.len(),
            index.live_len(2_000),
            index.expiring(2_000),
            opened.need_hints
        )
    }

    /// The sealed segments are decoded several at a time, on threads of their own, and applied
    /// in id order: the index, the counts and the report are those of a load one segment after
    /// another, whatever the window, with hint files good, missing, cut short and checksummed
    /// but disagreeing with their segment (the last two rejected: their segments replayed).
    #[test]
    fn an_index_loaded_in_parallel_equals_the_serial_one() {
        let fs = SimFs::new();
        let clock = std::sync::Arc::new(crate::ManualClock::new(1_000));
        let options = Options { clock: clock.clone(), background_thread: false, ..options() };
        let store = Store::open_on(fs.clone(), Path::new("/db"), options.clone()).unwrap();
        let mut model = std::collections::BTreeMap::new();
        for i in 0..600u32 {
            let key = format!("key-{:03}", (i * 7) % 150).into_bytes();
            let value = vec![i as u8; 300 + (i as usize % 5) * 100];
            match i % 10 {
                3 => {
                    store.delete(&key).unwrap();
                    model.remove(&key);
                }
                5 => {
                    // Half expire before the rebuild's clock (2,000 ms), half after.
                    let ttl = std::time::Duration::from_millis(if i % 20 == 5 { 500 } else { 5_000 });
                    store.put_with_ttl(&key, &value, ttl).unwrap();
                    model.insert(key, if i % 20 == 5 { None } else { Some(value) });
                }
                _ => {
                    store.put(&key, &value).unwrap();
                    model.insert(key, Some(value));
                }
            }
        }
        drop(store);
        let hint = |id: u64| std::path::PathBuf::from(format!("/db/{id:016x}.hint"));
        assert!(fs.read_file(&hint(9)).is_some(), "enough sealed segments with hints");
        crate::io::Vfs::remove_file(fs.as_ref(), &hint(2)).unwrap();
        let bytes = fs.read_file(&hint(3)).unwrap();
        fs.write_file_durable(&hint(3), &bytes[..bytes.len() / 2]);
        let mut forged = decode_hint(&fs.read_file(&hint(5)).unwrap()).unwrap();
        forged.entries[0].offset += 1;
        fs.write_file_durable(&hint(5), &encode_hint(&forged));
        clock.set_ms(2_000);

        let dir = crate::log::LogDir { vfs: fs.clone(), dir: Path::new("/db").to_path_buf() };
        let options = options.validated().unwrap();
        let serial = super::recover_mode(&dir, &options, true, 1).unwrap();
        assert_eq!(serial.report.hints_rejected, 2, "{:?}", serial.report);
        assert!(serial.report.segments_from_hints >= 6, "{:?}", serial.report);
        let expected = fingerprint(&serial);
        for threads in [2, 3, 4, 16] {
            let parallel = super::recover_mode(&dir, &options, true, threads).unwrap();
            assert_eq!(fingerprint(&parallel), expected, "{threads} threads");
        }
        let store = Store::open_on(fs.clone(), Path::new("/db"), options).unwrap();
        for (k, v) in &model {
            assert_eq!(store.get(k).unwrap().as_deref(), v.as_deref(), "{}", String::from_utf8_lossy(k));
        }
        assert_eq!(store.len(), model.values().filter(|v| v.is_some()).count());
    }

    #[test]
    fn the_hint_the_store_writes_is_accepted() {
        let fs = SimFs::new();
        let data = store_with_hint(&fs);
        let store = Store::open_on(fs.clone(), Path::new("/db"), options()).unwrap();
        assert_eq!(store.recovery_report().segments_from_hints, 1);
        assert_eq!(store.recovery_report().hints_rejected, 0);
        assert_eq!(store.len(), data.len());
    }

    #[test]
    fn the_hints_of_compacted_segments_are_accepted() {
        let fs = SimFs::new();
        let data = store_with_hint(&fs);
        let store = Store::open_on(fs.clone(), Path::new("/db"), options()).unwrap();
        store.put(b"k\x00", b"newer").unwrap();
        store.delete(b"k\x01").unwrap();
        store.compact().unwrap();
        drop(store);
        let store = Store::open_on(fs.clone(), Path::new("/db"), options()).unwrap();
        let report = store.recovery_report();
        assert!(report.segments_from_hints > 0, "{report:?}");
        assert_eq!(report.hints_rejected, 0, "{report:?}");
        assert_eq!(report.segments_replayed, 1, "only the active segment: {report:?}");
        assert_eq!(store.len(), data.len() - 1);
        assert_eq!(store.get(b"k\x00").unwrap().as_deref(), Some(&b"newer"[..]));
    }
}
