//! One segment file: its handle, its read mapping and its space accounting.

use std::borrow::Cow;
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};

use crate::format::hash::KeyHasher;
use crate::format::{
    decode_record_header, DecodeErrorKind, FrameSalt, RecordHeader, SegmentKind, RECORD_HEADER_BYTES,
    RECORD_HEADER_BYTES_MAX, SEGMENT_BYTES_MAX,
};
use crate::io::{Mapping, VfsFile};
use crate::log::pool::SegmentPool;

/// File name of segment `id` (zero-padded so names sort like ids).
pub(crate) fn segment_file_name(id: u64) -> String {
    format!("{id:016x}.seg")
}

/// File name of the hint file for segment `id`.
pub(crate) fn hint_file_name(id: u64) -> String {
    format!("{id:016x}.hint")
}

/// File name of a retired segment file kept for reuse (`log/pool.rs`); `n` only tells pool
/// files apart. No manifest names one, so at open it is an orphan (`log::dir::is_orphan`).
pub(crate) fn pool_file_name(n: u64) -> String {
    format!("{n:016x}{POOL_SUFFIX}")
}

/// What every pool file's name ends with.
pub(crate) const POOL_SUFFIX: &str = ".pool";

/// Parses `0000000000000001.seg` or `.hint` into `(id, is_hint)`.
pub(crate) fn parse_file_name(name: &str) -> Option<(u64, bool)> {
    let (stem, is_hint) = match name.rsplit_once('.')? {
        (stem, "seg") => (stem, false),
        (stem, "hint") => (stem, true),
        _ => return None,
    };
    if stem.len() != 16 {
        return None;
    }
    u64::from_str_radix(stem, 16).ok().map(|id| (id, is_hint))
}

/// A fresh frame salt for a new segment, from the operating system's randomness (the source of
/// the store's hash key). Nobody who writes values can know it, so no value counts as a frame.
pub(crate) fn fresh_salt() -> FrameSalt {
    let key = KeyHasher::random_key();
    let (a, b) = key.split_at(8);
    FrameSalt(u64::from_le_bytes(a.try_into().expect("8 bytes")) ^ u64::from_le_bytes(b.try_into().expect("8 bytes")))
}

/// The shortest mapping of an active segment, in bytes: later ones double (`map_len`).
pub(crate) const MAP_FIRST_BYTES: u64 = 16 << 10;
/// How many mappings one segment may have: one per power of two from `MAP_FIRST_BYTES` to
/// `SEGMENT_BYTES_MAX`, one at a segment size that is no power of two, and the first (at
/// whatever length the file had), with room to spare.
const MAPPINGS_MAX: usize = 24;
const _: () = assert!(
    ((SEGMENT_BYTES_MAX / MAP_FIRST_BYTES).ilog2() as usize + 3) <= MAPPINGS_MAX,
    "every growth of a segment's mapping has a slot"
);

/// The length to map an active segment at so that it covers `end` bytes: the next power of two,
/// at least `MAP_FIRST_BYTES`, at most `segment_bytes` (but never short of `end`). Windows cannot
/// map past the end of a file, so there mapping extends the file to this length: powers of two
/// keep the number of mappings per segment logarithmic, and a small store small.
pub(crate) fn map_len(end: u64, segment_bytes: u64) -> u64 {
    end.next_power_of_two().max(MAP_FIRST_BYTES).min(segment_bytes).max(end)
}

/// A segment's mappings, oldest first; reads use the newest. The active segment's mapping follows
/// its file (`Segment::map_through`), because Windows cannot map past the end of a file; a reader
/// may hold bytes borrowed from an older mapping for the life of its `&Segment`, so every
/// mapping is kept until the segment is dropped. Slots are filled once, in order, by one writer
/// at a time (the log mutex's holder), and only then is `count` raised, so a reader that loads
/// `count` finds its slot filled.
struct Mappings {
    /// Each mapping with its length.
    slots: [OnceLock<(Arc<dyn Mapping>, u64)>; MAPPINGS_MAX],
    count: AtomicUsize,
}

impl Mappings {
    fn new(first: (Arc<dyn Mapping>, u64)) -> Mappings {
        let slots: [OnceLock<(Arc<dyn Mapping>, u64)>; MAPPINGS_MAX] = std::array::from_fn(|_| OnceLock::new());
        let _ = slots[0].set(first);
        Mappings { slots, count: AtomicUsize::new(1) }
    }

    fn newest(&self) -> &(Arc<dyn Mapping>, u64) {
        let count = self.count.load(Ordering::Acquire);
        self.slots[count - 1].get().expect("slots below `count` are filled")
    }

    /// Adds a newer mapping. The caller is the only one adding (it holds the log mutex).
    fn push(&self, map: (Arc<dyn Mapping>, u64)) -> std::io::Result<()> {
        let count = self.count.load(Ordering::Acquire);
        let slot = self.slots.get(count).ok_or_else(|| std::io::Error::other("too many mappings of one segment"))?;
        slot.set(map).map_err(|_| std::io::Error::other("a mapping slot was filled twice"))?;
        self.count.store(count + 1, Ordering::Release);
        Ok(())
    }
}

/// A segment file, shared by the index (its segment table holds an `Arc` of each segment an
/// entry points to, so a segment that compaction retired lives until no entry and no reader
/// points into it: `index/segments.rs`).
pub(crate) struct Segment {
    pub(crate) id: u64,
    /// Written by the log or by compaction.
    pub(crate) kind: SegmentKind,
    pub(crate) path: PathBuf,
    pub(crate) file: Box<dyn VfsFile>,
    /// The salt from the segment's header: every frame in it is checksummed under it.
    pub(crate) salt: FrameSalt,
    /// Its mappings (one, but for a segment that was active and grew).
    maps: Mappings,
    /// Offset just past the last published frame: written, and with `SyncMode::Always` synced
    /// (in write-back mode it may not be synced yet). Readers of records never look past it.
    data_end: AtomicU64,
    /// Bytes of records compaction would have to copy: puts the index points to, and tombstones
    /// a compaction had to keep (see `add_live`). Everything else below `data_end` is dead.
    live_bytes: AtomicU64,
    /// Records counted in `live_bytes`.
    live_records: AtomicU64,
    /// Records in the segment, live or dead.
    records: AtomicU64,
    /// Tombstones among `records`.
    tombstones: AtomicU64,
    /// Tombstones among the live records: kept by the compaction that wrote this segment.
    kept_tombstones: AtomicU64,
    /// A lower bound of the sequence numbers in the segment (`u64::MAX` while it holds none): the
    /// tombstone rule of compaction (DESIGN.md, "Which tombstones compaction may drop").
    seq_min: AtomicU64,
    /// The highest sequence number in the segment (0 while it holds none): its age.
    seq_max: AtomicU64,
    /// The earliest expiry (Unix ms) of any put in the segment, live or dead (`u64::MAX`: none).
    expiry_min_ms: AtomicU64,
    /// Its slot in the index's segment table (`index/segments.rs`, which alone reads and writes
    /// it): entries name their segment by it.
    pub(crate) index_slot: std::sync::atomic::AtomicU32,
    /// Set when compaction retires the segment. Declared last, so it drops after `maps` and
    /// `file`: the file is removed once it is no longer mapped or open.
    retired: Retired,
}

/// Removes a retired segment's file, or hands it to the pool of files kept for reuse
/// (`log/pool.rs`, which removes it if it has no room), when the segment is dropped, that is when the last `Arc`
/// of it goes (compaction's, the index's segment table's once no entry points to it, or that of
/// another holder: a backup in progress). It is `Segment`'s last field, so by then the segment's mapping
/// and handle are closed: Windows cannot remove a mapped file. Linux could remove it at once, and
/// does, unless a reader holds it: compaction drops its own references before it syncs the
/// directory. The removal is not synced when it happens later, and may fail (a poisoned store
/// refuses it): either way the manifest no longer names the file, so the next open removes it.
#[derive(Default)]
struct Retired(OnceLock<(Arc<SegmentPool>, PathBuf, u64)>);

impl Drop for Retired {
    fn drop(&mut self) {
        if let Some((pool, path, len)) = self.0.get() {
            pool.offer(path, *len);
        }
    }
}

impl fmt::Debug for Segment {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Segment").field("id", &self.id).field("data_end", &self.data_end()).finish_non_exhaustive()
    }
}

impl Segment {
    pub(crate) fn new(
        id: u64,
        kind: SegmentKind,
        salt: FrameSalt,
        path: PathBuf,
        file: Box<dyn VfsFile>,
        map: (Arc<dyn Mapping>, u64),
        data_end: u64,
    ) -> Segment {
        Segment {
            id,
            kind,
            path,
            file,
            salt,
            maps: Mappings::new(map),
            data_end: AtomicU64::new(data_end),
            live_bytes: AtomicU64::new(0),
            live_records: AtomicU64::new(0),
            records: AtomicU64::new(0),
            tombstones: AtomicU64::new(0),
            kept_tombstones: AtomicU64::new(0),
            seq_min: AtomicU64::new(u64::MAX),
            seq_max: AtomicU64::new(0),
            expiry_min_ms: AtomicU64::new(u64::MAX),
            index_slot: crate::index::new_index_slot(),
            retired: Retired::default(),
        }
    }

    /// Marks the segment retired (no manifest names it any more): once the last `Arc` of it is
    /// dropped, its file goes into `pool` or is removed (see [`Retired`]).
    pub(crate) fn retire(&self, pool: &Arc<SegmentPool>) {
        let len = self.file.len().unwrap_or(0);
        let _ = self.retired.0.set((Arc::clone(pool), self.path.clone(), len));
    }

    pub(crate) fn path(&self) -> &Path {
        &self.path
    }

    /// Bytes `offset..offset + len` of the file, from the newest mapping (no syscall).
    pub(crate) fn read(&self, offset: u64, len: usize) -> Option<Cow<'_, [u8]>> {
        self.maps.newest().0.read(offset, len)
    }

    /// The newest mapping's bytes as one slice, where the file system maps them so
    /// ([`Mapping::bytes`]); a record published before this call lies within it (the writer
    /// maps through a record before publishing it). For a range reader, which takes it once per
    /// run of records in this segment and reads them by indexing it.
    pub(crate) fn mapped(&self) -> Option<&[u8]> {
        self.maps.newest().0.bytes()
    }

    /// Makes sure the mapping covers the first `end` bytes, mapping the file again at
    /// `map_len(end, segment_bytes)` if not (on Windows that extends the file with zeros to that
    /// length: the caller then takes the file's length). Called by the writer, holding the
    /// log mutex, before it writes and publishes bytes up to `end`, so a reader that found a
    /// record below `end` finds a mapping covering it.
    /// Returns whether it mapped again.
    pub(crate) fn map_through(&self, end: u64, segment_bytes: u64) -> std::io::Result<bool> {
        if end <= self.maps.newest().1 {
            return Ok(false);
        }
        let len = map_len(end, segment_bytes);
        self.maps.push((self.file.map(len)?, len))?;
        Ok(true)
    }

    /// The header of the record at `offset`.
    pub(crate) fn record_header(&self, offset: u32) -> Option<RecordHeader> {
        let fixed = self.read(u64::from(offset), RECORD_HEADER_BYTES)?;
        match decode_record_header(&fixed) {
            Ok(header) => Some(header),
            // The header carries an expiry: read it whole (only then, so a short record at the
            // very end of a file is never read past).
            Err(e) if e.kind == DecodeErrorKind::Truncated => {
                decode_record_header(&self.read(u64::from(offset), RECORD_HEADER_BYTES_MAX)?).ok()
            }
            Err(_) => None,
        }
    }

    /// The key of the record at `offset`, whose header is `header`.
    pub(crate) fn key(&self, offset: u32, header: &RecordHeader) -> Option<Cow<'_, [u8]>> {
        self.read(u64::from(offset) + header.header_len as u64, header.key_len)
    }

    /// The value of the record at `offset`, whose header is `header`.
    pub(crate) fn value(&self, offset: u32, header: &RecordHeader) -> Option<Cow<'_, [u8]>> {
        self.read(u64::from(offset) + (header.header_len + header.key_len) as u64, header.value_len)
    }

    pub(crate) fn data_end(&self) -> u64 {
        self.data_end.load(Ordering::Acquire)
    }

    pub(crate) fn set_data_end(&self, end: u64) {
        self.data_end.store(end, Ordering::Release);
    }

    pub(crate) fn live_bytes(&self) -> u64 {
        self.live_bytes.load(Ordering::Relaxed)
    }

    pub(crate) fn live_records(&self) -> u64 {
        self.live_records.load(Ordering::Relaxed)
    }

    /// Counts one put as live: the index now points to it.
    pub(crate) fn add_live(&self, bytes: u64) {
        self.add_live_records(bytes, 1);
    }

    /// Counts `records` puts of `bytes` in all as live (recovery's bulk load, once per batch).
    pub(crate) fn add_live_records(&self, bytes: u64, records: u64) {
        self.live_bytes.fetch_add(bytes, Ordering::Relaxed);
        self.live_records.fetch_add(records, Ordering::Relaxed);
    }

    /// Counts a tombstone that must stay as live: one compaction copied into this segment, or
    /// one recovery found newest for its key in a compacted segment. It stays counted until the
    /// segment itself is compacted (compaction re-decides then).
    pub(crate) fn keep_tombstone(&self, bytes: u64) {
        self.keep_tombstones(1, bytes);
    }

    /// [`Segment::keep_tombstone`] for `count` tombstones of `bytes` in all.
    pub(crate) fn keep_tombstones(&self, count: u64, bytes: u64) {
        self.live_bytes.fetch_add(bytes, Ordering::Relaxed);
        self.live_records.fetch_add(count, Ordering::Relaxed);
        self.kept_tombstones.fetch_add(count, Ordering::Relaxed);
    }

    /// Counts one live put as dead. Saturates at zero: the count is added from hint entries
    /// and subtracted from record headers, which agree unless a hint was forged (fuzz finding
    /// `hint_decode/live-bytes-underflow`); the counts only steer compaction and stats, so they
    /// must not panic on such input.
    pub(crate) fn sub_live(&self, bytes: u64) {
        let _ = self.live_bytes.fetch_update(Ordering::Relaxed, Ordering::Relaxed, |v| Some(v.saturating_sub(bytes)));
        let _ = self.live_records.fetch_update(Ordering::Relaxed, Ordering::Relaxed, |v| Some(v.saturating_sub(1)));
    }

    /// Bytes below `data_end` that compaction would not copy (overwritten or deleted records,
    /// tombstones that may go, frame and segment headers).
    pub(crate) fn dead_bytes(&self) -> u64 {
        self.data_end().saturating_sub(self.live_bytes())
    }

    pub(crate) fn records(&self) -> u64 {
        self.records.load(Ordering::Relaxed)
    }

    pub(crate) fn kept_tombstones(&self) -> u64 {
        self.kept_tombstones.load(Ordering::Relaxed)
    }

    pub(crate) fn tombstones(&self) -> u64 {
        self.tombstones.load(Ordering::Relaxed)
    }

    /// Puts in the segment that the index no longer points to (overwritten, deleted, or expired
    /// and swept). While a segment has none, it holds no older value of a key that is absent.
    pub(crate) fn dead_puts(&self) -> u64 {
        let live_puts = self.live_records().saturating_sub(self.kept_tombstones());
        self.records().saturating_sub(self.tombstones()).saturating_sub(live_puts)
    }

    pub(crate) fn seq_min(&self) -> u64 {
        self.seq_min.load(Ordering::Relaxed)
    }

    pub(crate) fn seq_max(&self) -> u64 {
        self.seq_max.load(Ordering::Relaxed)
    }

    pub(crate) fn expiry_min_ms(&self) -> u64 {
        self.expiry_min_ms.load(Ordering::Relaxed)
    }

    /// Accounts records appended to (or loaded from) the segment: how many, how many of them are
    /// tombstones, the lowest and highest sequence numbers among them, and their earliest expiry
    /// (0: none).
    pub(crate) fn note_records(&self, count: u64, tombstones: u64, (seq_min, seq_max): (u64, u64), expiry_min_ms: u64) {
        if seq_max > self.seq_max() {
            self.seq_max.fetch_max(seq_max, Ordering::Relaxed);
        }
        self.records.fetch_add(count, Ordering::Relaxed);
        if tombstones != 0 {
            self.tombstones.fetch_add(tombstones, Ordering::Relaxed);
        }
        if seq_min < self.seq_min() {
            self.seq_min.fetch_min(seq_min, Ordering::Relaxed);
        }
        if expiry_min_ms != 0 && expiry_min_ms < self.expiry_min_ms() {
            self.expiry_min_ms.fetch_min(expiry_min_ms, Ordering::Relaxed);
        }
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::io::sim::SimFs;
    use crate::io::{OpenMode, Vfs};

    /// A segment of one mapped 4 KiB file on `vfs`, under `/set` (which must exist).
    pub(crate) fn segment_on(vfs: &SimFs, id: u64) -> Arc<Segment> {
        let path = Path::new("/set").join(segment_file_name(id));
        let file = vfs.open(&path, OpenMode::CreateNew).unwrap();
        file.set_len(4096).unwrap();
        let map = file.map(4096).unwrap();
        Arc::new(Segment::new(id, SegmentKind::Log, fresh_salt(), path, file, (map, 4096), 0))
    }

    /// Fuzz finding `hint_decode/live-bytes-underflow`: live bytes are added from hint entries
    /// and subtracted from record headers, which a forged hint can make disagree; the count
    /// saturates at zero instead of panicking (a debug-build overflow) or wrapping.
    #[test]
    fn regression_live_bytes_saturate_when_a_forged_hint_undercounts_them() {
        let vfs = SimFs::new();
        vfs.create_dir_all(Path::new("/set")).unwrap();
        let segment = segment_on(&vfs, 1);
        segment.add_live(10);
        segment.sub_live(25);
        segment.sub_live(1);
        assert_eq!((segment.live_bytes(), segment.live_records()), (0, 0));
        segment.add_live(7);
        assert_eq!((segment.live_bytes(), segment.live_records()), (7, 1));
    }

    #[test]
    fn map_lengths_double_from_the_first_up_to_the_segment() {
        const MIB: u64 = 1 << 20;
        assert_eq!(map_len(40, 64 * MIB), MAP_FIRST_BYTES);
        assert_eq!(map_len(MAP_FIRST_BYTES + 1, 64 * MIB), 2 * MAP_FIRST_BYTES);
        assert_eq!(map_len(40 * MIB, 48 * MIB), 48 * MIB, "capped at a segment size that is no power of two");
        assert_eq!(map_len(20 * MIB, 16 * MIB), 20 * MIB, "a file longer than the segment size is mapped whole");
    }

    /// Under the Windows rules (no mapping past the end: mapping extends the file), the active
    /// segment's mapping follows the file in power-of-two steps instead of reaching the whole
    /// segment at once, and bytes read through an older mapping stay valid.
    #[test]
    fn the_mapping_follows_the_file_in_power_of_two_steps() {
        const SEGMENT_BYTES: u64 = 5 * MAP_FIRST_BYTES;
        let vfs = SimFs::new_windows();
        vfs.create_dir_all(Path::new("/set")).unwrap();
        let path = Path::new("/set").join(segment_file_name(1));
        let file = vfs.open(&path, OpenMode::CreateNew).unwrap();
        file.write_at(b"first", 0).unwrap();
        let len = map_len(5, SEGMENT_BYTES);
        let map = file.map(len).unwrap();
        let segment = Segment::new(1, SegmentKind::Log, fresh_salt(), path, file, (map, len), 0);
        assert_eq!(segment.file.len().unwrap(), MAP_FIRST_BYTES, "mapped, and so extended, only this far");
        let first = segment.read(0, 5).unwrap();

        segment.file.write_at(b"second", MAP_FIRST_BYTES).unwrap();
        assert!(segment.read(MAP_FIRST_BYTES, 6).is_none(), "past the first mapping");
        assert!(segment.map_through(MAP_FIRST_BYTES + 6, SEGMENT_BYTES).unwrap());
        assert_eq!(segment.file.len().unwrap(), 2 * MAP_FIRST_BYTES);
        assert_eq!(&segment.read(MAP_FIRST_BYTES, 6).unwrap()[..], b"second");
        assert_eq!(&first[..], b"first", "bytes read through the older mapping");

        assert!(!segment.map_through(2 * MAP_FIRST_BYTES, SEGMENT_BYTES).unwrap());
        assert_eq!(segment.maps.count.load(Ordering::Relaxed), 2, "already covered: no new mapping");
        segment.map_through(4 * MAP_FIRST_BYTES + 1, SEGMENT_BYTES).unwrap();
        assert_eq!(segment.file.len().unwrap(), SEGMENT_BYTES, "never past the segment size");
        assert_eq!(&segment.read(0, 5).unwrap()[..], b"first", "the newest mapping covers the start too");
    }

    #[test]
    fn file_names_round_trip() {
        assert_eq!(parse_file_name(&segment_file_name(0x2a)), Some((0x2a, false)));
        assert_eq!(parse_file_name(&hint_file_name(7)), Some((7, true)));
        assert_eq!(parse_file_name("MANIFEST"), None);
        assert_eq!(parse_file_name("12.seg"), None);
    }
}
