//! Read-only inspection of a store directory, without opening a [`Store`](crate::Store): a
//! damaged store cannot be opened, yet it is exactly the one worth inspecting.
//!
//! Both tools take the directory lock (through the same file-system layer as the store),
//! so they never race a writer: while a `Store` has the directory open they fail with
//! [`Error::Locked`]. They never change a segment, hint or manifest file (taking the lock
//! creates the `LOCK` file if it is missing, as opening a store would).
//!
//! * [`verify`] checks everything open relies on and reports every damaged place it finds,
//!   instead of stopping at the first one as open does.
//! * [`dump`] lists the records in log order.
//!
//! Both walk frames with the same decoder and the same torn-tail rule as recovery.
//!
//! ```
//! # let dir = tempfile::tempdir().unwrap();
//! use ferrocask::{inspect, Store};
//! {
//!     let store = Store::open(dir.path())?;
//!     store.put(b"k", b"v")?;
//! } // dropped: the directory is free again
//! let report = inspect::verify(dir.path())?;
//! assert!(report.is_ok(), "{report:?}");
//! assert_eq!(report.records, 1);
//! let mut keys = Vec::new();
//! inspect::dump(dir.path(), |r| {
//!     keys.push(r.key.to_vec());
//!     std::ops::ControlFlow::Continue(())
//! })?;
//! assert_eq!(keys, vec![b"k".to_vec()]);
//! # Ok::<(), ferrocask::Error>(())
//! ```

use std::ops::ControlFlow;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::format::{
    decode_hint, decode_manifest, encoded_entry_len, HintFile, Manifest, SegmentKind, HINT_DATA_END_OFFSET,
    HINT_HEADER_BYTES, HINT_SEGMENT_ID_OFFSET, HINT_SEQ_MAX_OFFSET, SEGMENT_HEADER_FIRST_GROUP_OFFSET,
    SEGMENT_HEADER_KIND_OFFSET,
};
use crate::hash::KeyHasher;
use crate::io::{LockGuard, OpenMode, RealFs, Vfs};
use crate::log::{
    hint_file_name, is_orphan, open_segment, parse_file_name, segment_file_name, walk_segment, GroupRule, LogDir,
    SegmentFile, Walked, MANIFEST_FILE,
};
use crate::options::Options;
use crate::recovery::rebuild_read_only;
use crate::{Error, Result};

pub use crate::format::RecordKind;

/// One damaged place found by [`verify`] (or skipped by [`dump`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Damage {
    /// The damaged file (a segment, a hint file, or the manifest).
    pub path: PathBuf,
    /// Byte offset of the damage in that file.
    pub offset: u64,
    /// What is wrong.
    pub reason: String,
}

/// An incomplete write at the end of the active segment: what a crash during a group commit
/// leaves. It was never acknowledged, and the next open cuts it. Not damage.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TornTail {
    /// The active segment.
    pub path: PathBuf,
    /// Where the incomplete frame starts (the end of the valid data).
    pub offset: u64,
    /// Bytes from `offset` to the end of the file (including preallocated zeros).
    pub bytes: u64,
}

/// What rebuilding the index (exactly as open would, but read-only) found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Rebuild {
    /// Live keys after the rebuild (expired keys excluded).
    pub live_keys: usize,
    /// Records (including tombstones) read from hints and frames.
    pub records_read: u64,
    /// Segments loaded from their hint file.
    pub segments_from_hints: usize,
    /// Segments replayed frame by frame.
    pub segments_replayed: usize,
}

/// The outcome of [`verify`]. The store is sound when [`VerifyReport::is_ok`].
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct VerifyReport {
    /// Segments checked (those the manifest lists).
    pub segments: usize,
    /// Bytes of segment files checked.
    pub segment_bytes: u64,
    /// Valid frames.
    pub frames: u64,
    /// Valid records (puts and tombstones) in those frames.
    pub records: u64,
    /// Tombstones among `records`.
    pub tombstones: u64,
    /// Hint files compared with their segments.
    pub hints_checked: usize,
    /// The index rebuild; `None` if it was not attempted (unreadable manifest, or a hint file that
    /// disagrees with its segment, which open would trust).
    pub rebuild: Option<Rebuild>,
    /// A torn tail of the active segment, if any (not damage: the next open cuts it).
    pub torn_tail: Option<TornTail>,
    /// Files the manifest does not list (leftovers of an interrupted roll-over or compaction),
    /// which the next open removes. Not damage.
    pub orphans: Vec<PathBuf>,
    /// Every damaged place found. Empty for a sound store.
    pub damage: Vec<Damage>,
}

impl VerifyReport {
    /// True if no damage was found (a torn tail and orphan files are not damage).
    pub fn is_ok(&self) -> bool {
        self.damage.is_empty()
    }
}

/// One record, as [`dump`] yields it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DumpRecord<'a> {
    /// The segment holding the record.
    pub segment_id: u64,
    /// Offset of the record in the segment file.
    pub offset: u64,
    /// The sync group of the record's frame.
    pub group: u64,
    /// The record's sequence number.
    pub seq: u64,
    /// Put or delete (tombstone).
    pub kind: RecordKind,
    /// The key.
    pub key: &'a [u8],
    /// Length of the value in bytes (0 for a tombstone).
    pub value_len: usize,
    /// Expiry in Unix milliseconds; 0 = never.
    pub expires_ms: u64,
}

/// What [`dump`] walked.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct DumpReport {
    /// Records passed to the callback.
    pub records: u64,
    /// A torn tail of the active segment (its bytes are not records, and are not passed on).
    pub torn_tail: Option<TornTail>,
    /// Damaged ranges skipped.
    pub damage: Vec<Damage>,
}

/// Verifies the store in `dir` without opening it; see [`verify_with_progress`].
pub fn verify(dir: impl AsRef<Path>) -> Result<VerifyReport> {
    verify_with_progress(dir, |_, _| {})
}

/// Verifies the store in `dir` without opening it, calling `progress(bytes_done, bytes_total)`
/// as segment bytes are checked.
///
/// Checks the manifest, every segment header, every frame's checksum and records, the order of
/// sync groups (within each log segment and from one log segment to the next), that sequence
/// numbers increase within each log segment, that every hint file matches its segment entry by
/// entry, and finally that the index rebuilds as open would rebuild it. Each damaged place is
/// reported with its file, offset and reason; the walk resumes at the next valid frame. A torn
/// tail of the active segment is reported as such, not as damage.
///
/// Fails with [`Error::Locked`] if a store has the directory open, and with an I/O error if `dir`
/// holds no store (neither a manifest nor a segment file).
pub fn verify_with_progress(dir: impl AsRef<Path>, mut progress: impl FnMut(u64, u64)) -> Result<VerifyReport> {
    let (dir, _lock, names) = lock_store(dir.as_ref())?;
    let mut report = VerifyReport::default();
    let manifest = match read_manifest(&dir)? {
        Ok(m) => Some(m),
        Err(damage) => {
            report.damage.push(damage);
            None
        }
    };
    // Hint entries hold key hashes made with the manifest's key; without it they cannot be checked.
    let hasher = manifest.as_ref().map(|m| KeyHasher::new(m.hash_key));
    let hasher = hasher.as_ref();
    // Without a manifest, check the segment files that are there, the newest as the active one.
    let (ids, active) = match &manifest {
        Some(m) => (m.segments.clone(), m.active),
        None => {
            let mut ids: Vec<u64> =
                names.iter().filter_map(|n| parse_file_name(n)).filter(|(_, h)| !h).map(|(id, _)| id).collect();
            ids.sort_unstable();
            let active = ids.last().copied().unwrap_or(0);
            (ids, active)
        }
    };
    report.orphans = names.iter().filter(|n| is_orphan(n, &ids)).map(|n| dir.path(n)).collect();
    let total: u64 = ids.iter().filter_map(|&id| dir.file_len(&segment_file_name(id))).sum();
    let mut done = 0;
    progress(0, total);
    let mut hint_damage = false;
    // The last group of the previous log segment that held a frame, and that segment's id.
    let mut last_log_group: Option<(u64, u64)> = None;
    for &id in &ids {
        report.segments += 1;
        let is_active = id == active;
        let segment = match open_listed(&dir, id)? {
            Ok(s) => s,
            Err(damage) => {
                report.damage.push(damage);
                continue;
            }
        };
        done += segment.file_len;
        report.segment_bytes += segment.file_len;
        if is_active && segment.header.kind != SegmentKind::Log {
            let reason = "the active segment is not a log segment".into();
            report.damage.push(damage_in(&segment, SEGMENT_HEADER_KIND_OFFSET as u64, reason));
        }
        let log = segment.header.kind == SegmentKind::Log;
        if log {
            if let Some((group, prev)) = last_log_group {
                if segment.header.first_group <= group {
                    let reason = format!(
                        "first group {} does not follow group {group} of log segment {prev}",
                        segment.header.first_group
                    );
                    report.damage.push(damage_in(&segment, SEGMENT_HEADER_FIRST_GROUP_OFFSET as u64, reason));
                }
            }
        }
        let hint = if is_active { None } else { dir.read_file(&hint_file_name(id))? };
        let mut expected = Vec::new();
        let mut seq_max = 0;
        let mut last_seq: Option<u64> = None;
        let mut seq_damage = Vec::new();
        let mut skipped = Vec::new();
        let bytes = segment.map.read(0, segment.file_len as usize).unwrap_or_default();
        let rule = log.then(|| GroupRule::new(segment.header.first_group));
        let walked = walk_segment(
            &bytes,
            segment.header.salt,
            rule,
            is_active,
            |at, frame| {
                report.frames += 1;
                for r in frame.records().flatten() {
                    let offset = (at + r.frame_offset) as u64;
                    report.records += 1;
                    report.tombstones += u64::from(r.kind == RecordKind::Delete);
                    seq_max = seq_max.max(r.seq);
                    if log && last_seq.is_some_and(|last| r.seq <= last) {
                        let reason =
                            format!("sequence number {} does not increase (previous {})", r.seq, last_seq.unwrap_or(0));
                        seq_damage.push((offset, reason));
                    }
                    last_seq = Some(r.seq);
                    if hint.is_some() {
                        let hash = hasher.map(|h| h.hash(r.key));
                        expected.push((
                            r.kind,
                            offset,
                            r.value.len() as u64,
                            r.seq,
                            r.expires_ms,
                            r.key.len() as u64,
                            hash,
                        ));
                    }
                }
            },
            |bad| {
                skipped.push((bad.start as u64, bad.reason.clone()));
                true
            },
        );
        for (offset, reason) in skipped.into_iter().chain(seq_damage) {
            report.damage.push(damage_in(&segment, offset, reason));
        }
        let Walked::Done(end) = walked else { unreachable!("damage is always skipped") };
        if let Some(at) = end.torn_at {
            report.torn_tail = Some(TornTail { path: segment.path.clone(), offset: at, bytes: segment.file_len - at });
        }
        if let Some(rule) = end.rule {
            if !rule.first {
                last_log_group = Some((rule.last, id));
            }
        }
        if let Some(hint) = hint {
            report.hints_checked += 1;
            let path = dir.path(&hint_file_name(id));
            let check = match decode_hint(&hint) {
                Ok(decoded) => compare_hint(&decoded, id, end.data_end, seq_max, &expected),
                Err(e) => Some((0, format!("{e}; open will replay the segment instead"))),
            };
            if let Some((offset, reason)) = check {
                hint_damage = true;
                report.damage.push(Damage { path, offset, reason });
            }
        }
        progress(done, total);
    }
    if manifest.is_some() && !hint_damage {
        let clean = report.damage.is_empty();
        let options = Options { salvage: !clean, ..Options::default() };
        match rebuild_read_only(&dir, &options) {
            Ok(opened) => {
                let rebuild = Rebuild {
                    live_keys: opened.index.len(),
                    records_read: opened.report.records_read,
                    segments_from_hints: opened.report.segments_from_hints,
                    segments_replayed: opened.report.segments_replayed,
                };
                if clean && rebuild.records_read != report.records {
                    report.damage.push(Damage {
                        path: dir.dir.clone(),
                        offset: 0,
                        reason: format!(
                            "the index rebuild read {} records but the segments hold {}",
                            rebuild.records_read, report.records
                        ),
                    });
                }
                report.rebuild = Some(rebuild);
            }
            Err(e) if clean => report.damage.push(damage_of(&dir, e)),
            Err(_) => {} // already reported, more precisely, above
        }
    }
    Ok(report)
}

/// Calls `on_record` with every valid record of the store in `dir`, in log order (segments in id
/// order, records in file order), without opening the store. `on_record` returns
/// `ControlFlow::Break(())` to stop early. Damaged ranges are skipped and listed in the report;
/// a torn tail of the active segment is not passed on.
///
/// Fails with [`Error::Locked`] if a store has the directory open, with an I/O error if `dir`
/// holds no store, and with [`Error::Corruption`] if the manifest is unreadable.
pub fn dump(
    dir: impl AsRef<Path>,
    mut on_record: impl FnMut(&DumpRecord<'_>) -> ControlFlow<()>,
) -> Result<DumpReport> {
    let (dir, _lock, _) = lock_store(dir.as_ref())?;
    let manifest =
        read_manifest(&dir)?.map_err(|d| Error::Corruption { path: d.path, offset: d.offset, reason: d.reason })?;
    let mut report = DumpReport::default();
    let mut stopped = false;
    for &id in &manifest.segments {
        if stopped {
            break;
        }
        let segment = match open_listed(&dir, id)? {
            Ok(s) => s,
            Err(damage) => {
                report.damage.push(damage);
                continue;
            }
        };
        let bytes = segment.map.read(0, segment.file_len as usize).unwrap_or_default();
        let rule = (segment.header.kind == SegmentKind::Log).then(|| GroupRule::new(segment.header.first_group));
        let mut skipped = Vec::new();
        let walked = walk_segment(
            &bytes,
            segment.header.salt,
            rule,
            id == manifest.active,
            |at, frame| {
                for r in frame.records().flatten() {
                    if stopped {
                        return;
                    }
                    let record = DumpRecord {
                        segment_id: id,
                        offset: (at + r.frame_offset) as u64,
                        group: frame.group,
                        seq: r.seq,
                        kind: r.kind,
                        key: r.key,
                        value_len: r.value.len(),
                        expires_ms: r.expires_ms,
                    };
                    report.records += 1;
                    stopped = on_record(&record).is_break();
                }
            },
            |bad| {
                skipped.push(Damage {
                    path: segment.path.clone(),
                    offset: bad.start as u64,
                    reason: bad.reason.clone(),
                });
                true
            },
        );
        report.damage.extend(skipped);
        if let Walked::Done(end) = walked {
            if let Some(at) = end.torn_at {
                report.torn_tail =
                    Some(TornTail { path: segment.path.clone(), offset: at, bytes: segment.file_len - at });
            }
        }
    }
    Ok(report)
}

/// Takes the directory lock of the store in `dir`; also returns the directory's file names.
fn lock_store(dir: &Path) -> Result<(LogDir, LockGuard, Vec<String>)> {
    let dir = LogDir { vfs: Arc::new(RealFs) as Arc<dyn Vfs>, dir: dir.to_path_buf() };
    let names = dir.vfs.list(&dir.dir).map_err(|e| Error::io("list", &dir.dir, e))?;
    if !names.iter().any(|n| n == MANIFEST_FILE || parse_file_name(n).is_some()) {
        let missing = std::io::Error::new(std::io::ErrorKind::NotFound, "no ferrocask store here (no MANIFEST)");
        return Err(Error::io("inspect", &dir.dir, missing));
    }
    let lock = dir.lock()?;
    Ok((dir, lock, names))
}

/// The manifest, or the damage that makes it unusable.
fn read_manifest(dir: &LogDir) -> Result<std::result::Result<Manifest, Damage>> {
    let path = dir.path(MANIFEST_FILE);
    Ok(match dir.read_file(MANIFEST_FILE)? {
        None => Err(Damage { path, offset: 0, reason: "segment files exist but the manifest is missing".into() }),
        Some(bytes) => decode_manifest(&bytes).map_err(|e| Damage { path, offset: 0, reason: e.to_string() }),
    })
}

/// Opens and maps segment `id` as open would; damage (not an error) if it is missing or its
/// header is bad, so that the walk goes on with the other segments.
fn open_listed(dir: &LogDir, id: u64) -> Result<std::result::Result<SegmentFile, Damage>> {
    match open_segment(dir, id, OpenMode::ReadOnly) {
        Ok(segment) => Ok(Ok(segment)),
        Err(Error::Corruption { path, offset, reason }) => Ok(Err(Damage { path, offset, reason })),
        Err(e) => Err(e),
    }
}

/// Damage at `offset` in `segment`.
fn damage_in(segment: &SegmentFile, offset: u64, reason: String) -> Damage {
    Damage { path: segment.path.clone(), offset, reason }
}

/// A record as a hint entry should describe it: kind, offset, value length, seq, expiry, key
/// length, and the key's hash (if the manifest, which holds the hash key, was readable).
type Expected = (RecordKind, u64, u64, u64, u64, u64, Option<u64>);

/// Compares a decoded hint with what the segment holds; the first disagreement, with its offset
/// in the hint file.
fn compare_hint(hint: &HintFile, id: u64, data_end: u64, seq_max: u64, expected: &[Expected]) -> Option<(u64, String)> {
    if hint.segment_id != id {
        let reason = format!("hint describes segment {} instead of {id}", hint.segment_id);
        return Some((HINT_SEGMENT_ID_OFFSET as u64, reason));
    }
    if hint.data_end != data_end {
        let reason = format!("hint says the data ends at {} but the segment's data ends at {data_end}", hint.data_end);
        return Some((HINT_DATA_END_OFFSET as u64, reason));
    }
    if hint.seq_max != seq_max {
        let reason = format!("hint says the highest sequence number is {} but it is {seq_max}", hint.seq_max);
        return Some((HINT_SEQ_MAX_OFFSET as u64, reason));
    }
    let mut at = HINT_HEADER_BYTES as u64;
    let mut prev = (0u32, 0u64);
    for (i, (e, want)) in hint.entries.iter().zip(expected).enumerate() {
        let hash = want.6.map(|_| e.key_hash);
        let got =
            (e.kind, u64::from(e.offset), u64::from(e.value_len), e.seq, e.expires_ms, u64::from(e.key_len), hash);
        if got != *want {
            let reason = format!(
                "hint entry {i} ({:?} at segment offset {}, seq {}) does not match the segment's record {i} ({:?} at offset {}, seq {})",
                got.0, got.1, got.3, want.0, want.1, want.3
            );
            return Some((at, reason));
        }
        at += encoded_entry_len(e, prev.0, prev.1) as u64;
        prev = (e.offset, e.seq);
    }
    if hint.entries.len() != expected.len() {
        let reason = format!("hint lists {} records but the segment holds {}", hint.entries.len(), expected.len());
        return Some((at, reason));
    }
    None
}

/// Turns an error of the index rebuild into a damage entry.
fn damage_of(dir: &LogDir, e: Error) -> Damage {
    match e {
        Error::Corruption { path, offset, reason } => Damage { path, offset, reason },
        other => Damage { path: dir.dir.clone(), offset: 0, reason: format!("index rebuild failed: {other}") },
    }
}
